import { type Page, readPage } from './paging.js';
import type { FileCursor, MetadataOps, StoredFile } from './ports/metadata-store.js';

/** Most file rows read or processed in one go before giving other requests a turn. */
export const FILE_BATCH_SIZE = 500;

/** Lets the event loop run everything that is due (I/O, timers, other requests) before continuing. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The files of a dropzone in (createdAt, id) order, as batches of at most {@link FILE_BATCH_SIZE} rows, yielding
 * to the event loop between batches: walking thousands of files never blocks other requests in one long
 * synchronous stretch. Files added or removed during the walk may or may not appear (each batch is one snapshot).
 */
export async function* fileBatches(
  meta: Pick<MetadataOps, 'filesOfDropzoneAfter'>,
  dropzoneId: string,
  opts: { uploadedOnly?: boolean } = {},
): AsyncGenerator<StoredFile[]> {
  let after: StoredFile | undefined;
  for (;;) {
    const batch = await meta.filesOfDropzoneAfter(dropzoneId, after, FILE_BATCH_SIZE, opts.uploadedOnly ?? false);
    if (batch.length === 0) return;
    yield batch;
    if (batch.length < FILE_BATCH_SIZE) return;
    after = batch[batch.length - 1];
    await yieldToEventLoop();
  }
}

/**
 * One page of a dropzone's files: at most `limit` after `after` in (createdAt, id) order, with where the next page
 * starts when more follow. One indexed range read, whatever the dropzone's size.
 */
export function filePage(
  meta: Pick<MetadataOps, 'filesOfDropzoneAfter'>,
  dropzoneId: string,
  after: FileCursor | undefined,
  limit: number,
): Promise<Page<StoredFile, FileCursor>> {
  return readPage((a, n) => meta.filesOfDropzoneAfter(dropzoneId, a, n), after, limit, (f) => ({ createdAt: f.createdAt, id: f.id }));
}

/**
 * Walks a dropzone's files again, in batches, yielding exactly the files named by `keys` (positions in (createdAt, id)
 * order, as an earlier walk recorded them), in that order: files added since are skipped. A file of `keys` that is gone
 * (or no longer matches `uploadedOnly`) throws, because whatever was planned from the first walk (e.g. a ZIP's
 * Content-Length) no longer holds. Holds one batch at a time.
 */
export async function* replayFiles(
  meta: Pick<MetadataOps, 'filesOfDropzoneAfter'>,
  dropzoneId: string,
  keys: { createdAt: ArrayLike<number>; id: ArrayLike<string>; length: number },
  opts: { uploadedOnly?: boolean } = {},
): AsyncGenerator<StoredFile> {
  let i = 0;
  for await (const batch of fileBatches(meta, dropzoneId, opts)) {
    for (const f of batch) {
      if (i === keys.length) return;
      const c = keys.createdAt[i]!;
      const id = keys.id[i]!;
      if (f.createdAt === c && f.id === id) {
        yield f;
        i++;
      } else if (f.createdAt > c || (f.createdAt === c && f.id > id)) {
        throw new Error(`file ${i + 1} of ${keys.length} is gone since the first walk`);
      }
    }
  }
  if (i < keys.length) throw new Error(`file ${i + 1} of ${keys.length} is gone since the first walk`);
}
