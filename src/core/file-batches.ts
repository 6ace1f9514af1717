import type { FileRow, Repositories } from '../db/repositories.js';

/** Most file rows read or processed in one go before giving other requests a turn. */
export const FILE_BATCH_SIZE = 500;

/** Lets the event loop run everything that is due (I/O, timers, other requests) before continuing. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The files of a dropzone in (created_at, id) order, as batches of at most {@link FILE_BATCH_SIZE} rows, yielding
 * to the event loop between batches: walking thousands of files never blocks other requests in one long
 * synchronous stretch. Files added or removed during the walk may or may not appear (each batch is one snapshot).
 */
export async function* fileBatches(
  repo: Pick<Repositories, 'filesOfDropzoneAfter'>,
  dropzoneId: string,
  opts: { uploadedOnly?: boolean } = {},
): AsyncGenerator<FileRow[]> {
  let after: FileRow | undefined;
  for (;;) {
    const batch = repo.filesOfDropzoneAfter(dropzoneId, after, FILE_BATCH_SIZE, opts.uploadedOnly ?? false);
    if (batch.length === 0) return;
    yield batch;
    if (batch.length < FILE_BATCH_SIZE) return;
    after = batch[batch.length - 1];
    await yieldToEventLoop();
  }
}

/** Every file of a dropzone as one array, read with {@link fileBatches} (for callers that need them all at once). */
export async function allFilesInBatches(
  repo: Pick<Repositories, 'filesOfDropzoneAfter'>,
  dropzoneId: string,
  opts: { uploadedOnly?: boolean } = {},
): Promise<FileRow[]> {
  const all: FileRow[] = [];
  for await (const batch of fileBatches(repo, dropzoneId, opts)) for (const f of batch) all.push(f);
  return all;
}
