import type { Readable } from 'node:stream';
import { BlobExistsError, BlobNotFoundError, BlobSizeError, MultipartError, type BlobStore, type MultipartBlobs } from './blob-store.js';

/**
 * The operations of a {@link BlobStore} whose failures {@link observeBlobStore} reports; `multipart` stands for every
 * operation of the multipart capability.
 */
export type BlobOperation = 'put' | 'get' | 'stat' | 'delete' | 'list' | 'presignPut' | 'presignGet' | 'check' | 'multipart';

/**
 * Wraps `store` so that every failure of the store itself calls `onError(operation)` before the error is rethrown
 * unchanged. Not reported, because they are answers rather than failures: a missing object (`BlobNotFoundError`),
 * a body of the wrong size (`BlobSizeError`), a put whose body failed on the client's side (aborted upload), and the
 * multipart capability's answers about an upload (`MultipartError`, `BlobExistsError` at a write-once completion).
 * Results and backend-specific members (the local store's URL verification, for instance) pass through: the
 * wrapper inherits from `store`.
 */
export function observeBlobStore<T extends BlobStore>(store: T, onError: (operation: BlobOperation) => void): T {
  const report = (operation: BlobOperation, err: unknown, body?: Readable) => {
    if (err instanceof BlobNotFoundError || err instanceof BlobSizeError) return;
    if (operation === 'multipart' && (err instanceof MultipartError || err instanceof BlobExistsError)) return;
    if (body?.errored) return;
    onError(operation);
  };
  const guard =
    <A extends unknown[], R>(operation: BlobOperation, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await fn(...args);
      } catch (err) {
        report(operation, err);
        throw err;
      }
    };
  const observed: Omit<BlobStore, 'kind' | 'close' | 'revocableUploadUrls' | 'cleanupTemp'> = {
    async put(key, body, opts) {
      try {
        return await store.put(key, body, opts);
      } catch (err) {
        report('put', err, body);
        throw err;
      }
    },
    get: guard('get', (key, range) => store.get(key, range)),
    stat: guard('stat', (key) => store.stat(key)),
    delete: guard('delete', (key) => store.delete(key)),
    async *list(prefix) {
      try {
        yield* store.list(prefix);
      } catch (err) {
        report('list', err);
        throw err;
      }
    },
    presignPut: guard('presignPut', (input) => store.presignPut(input)),
    presignGet: guard('presignGet', (input) => store.presignGet(input)),
    check: guard('check', () => store.check()),
  };
  const inner = store.multipart;
  const multipart: MultipartBlobs | undefined = inner && {
    create: guard('multipart', (key, opts) => inner.create(key, opts)),
    presignParts: guard('multipart', (key, uploadId, parts, expires) => inner.presignParts(key, uploadId, parts, expires)),
    presignRequest: guard('multipart', (request, expires) => inner.presignRequest(request, expires)),
    listParts: guard('multipart', (key, uploadId) => inner.listParts(key, uploadId)),
    complete: guard('multipart', (key, uploadId, parts, opts) => inner.complete(key, uploadId, parts, opts)),
    abort: guard('multipart', (key, uploadId) => inner.abort(key, uploadId)),
    async *staleUploads(olderThan) {
      try {
        yield* inner.staleUploads(olderThan);
      } catch (err) {
        report('multipart', err);
        throw err;
      }
    },
  };
  return Object.assign(Object.create(store) as T, observed, multipart ? { multipart } : {});
}
