import type { Readable } from 'node:stream';
import { BlobNotFoundError, BlobSizeError, type BlobStore } from './blob-store.js';

/** The operations of a {@link BlobStore} whose failures {@link observeBlobStore} reports. */
export type BlobOperation = 'put' | 'get' | 'stat' | 'delete' | 'list' | 'presignPut' | 'presignGet' | 'check';

/**
 * Wraps `store` so that every failure of the store itself calls `onError(operation)` before the error is rethrown
 * unchanged. Not reported, because they are answers rather than failures: a missing object (`BlobNotFoundError`),
 * a body of the wrong size (`BlobSizeError`) and a put whose body failed on the client's side (aborted upload).
 * Results and backend-specific members (the local store's URL verification, for instance) pass through: the
 * wrapper inherits from `store`.
 */
export function observeBlobStore<T extends BlobStore>(store: T, onError: (operation: BlobOperation) => void): T {
  const report = (operation: BlobOperation, err: unknown, body?: Readable) => {
    if (err instanceof BlobNotFoundError || err instanceof BlobSizeError) return;
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
  return Object.assign(Object.create(store) as T, observed);
}
