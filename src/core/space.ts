import type { CoreDeps } from './deps.js';
import { isStorageFull } from './errors.js';

/**
 * Runs `write`, a database change that frees space (a deletion). When it fails because the storage is full and a
 * space reserve is held, releases the reserve and runs it once more, so deleting through the API works on a full
 * disk; the bytes come back when the deleted blobs go, and the sweeper restores the reserve when there is room.
 * Other errors, and a second failure, are thrown.
 */
export async function freeingWrite<T>({ reserve, log }: Pick<CoreDeps, 'reserve' | 'log'>, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (!isStorageFull(err) || !reserve?.release()) throw err;
    log.warn('storage is full: released the space reserve so a deletion can commit');
    return write();
  }
}
