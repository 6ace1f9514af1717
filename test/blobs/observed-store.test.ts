/**
 * observeBlobStore: every failure of the store is reported with its operation; answers that are no store failure
 * (a missing object, a body of the wrong size, a client that broke off its body) are not; everything else passes through.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BlobExistsError, BlobNotFoundError, BlobSizeError, MultipartError, type BlobStore, type MultipartBlobs } from '../../src/blobs/blob-store.js';
import { observeBlobStore } from '../../src/blobs/observed-store.js';

/** A store whose every operation fails with `err` (list after yielding one entry); `extra` is a backend-specific method. */
function failingStore(err: () => Error): BlobStore & { extra(): string } {
  return {
    kind: 'fake',
    revocableUploadUrls: true,
    extra: () => 'kept',
    put: async () => Promise.reject(err()),
    get: async () => Promise.reject(err()),
    stat: async () => Promise.reject(err()),
    delete: async () => Promise.reject(err()),
    async *list() {
      yield { key: 'objects/a', size: 1, lastModified: new Date(0) };
      throw err();
    },
    presignPut: async () => Promise.reject(err()),
    presignGet: async () => Promise.reject(err()),
    check: async () => Promise.reject(err()),
    close: async () => undefined,
  };
}

describe('observeBlobStore', () => {
  it('reports each failing operation once and rethrows the original error', async () => {
    const seen: string[] = [];
    const boom = new Error('EIO');
    const store = observeBlobStore(failingStore(() => boom), (op) => seen.push(op));
    await expect(store.put('k', Readable.from(['x']))).rejects.toBe(boom);
    await expect(store.get('k')).rejects.toBe(boom);
    await expect(store.stat('k')).rejects.toBe(boom);
    await expect(store.delete('k')).rejects.toBe(boom);
    await expect(store.presignPut({ key: 'k', size: 1, expiresInSeconds: 1 })).rejects.toBe(boom);
    await expect(store.presignGet({ key: 'k', expiresInSeconds: 1 })).rejects.toBe(boom);
    await expect(store.check()).rejects.toBe(boom);
    const listed: string[] = [];
    await expect(
      (async () => {
        for await (const e of store.list('objects/')) listed.push(e.key);
      })(),
    ).rejects.toBe(boom);
    expect(listed).toEqual(['objects/a']);
    expect(seen).toEqual(['put', 'get', 'stat', 'delete', 'presignPut', 'presignGet', 'check', 'list']);
  });

  it('does not count a missing object, a wrong-size body or a body that failed on the client side', async () => {
    const seen: string[] = [];
    const notFound = observeBlobStore(failingStore(() => new BlobNotFoundError('k')), (op) => seen.push(op));
    await expect(notFound.get('k')).rejects.toBeInstanceOf(BlobNotFoundError);
    const tooBig = observeBlobStore(failingStore(() => new BlobSizeError(1, 2)), (op) => seen.push(op));
    await expect(tooBig.put('k', Readable.from(['xx']))).rejects.toBeInstanceOf(BlobSizeError);

    const aborted = new Error('aborted');
    const body = new Readable({ read() {} });
    body.destroy(aborted); // the client went away mid-body: the store rejects with the body's error
    body.on('error', () => undefined);
    const broken = observeBlobStore(failingStore(() => aborted), (op) => seen.push(op));
    await expect(broken.put('k', body)).rejects.toBe(aborted);
    expect(seen).toEqual([]);
  });

  it('passes results and backend-specific members through', async () => {
    const inner = failingStore(() => new Error('x'));
    inner.stat = async () => ({ size: 3, etag: '"e"', lastModified: new Date(1) }) as never;
    const store = observeBlobStore(inner, () => {
      throw new Error('must not be called');
    });
    expect(store.kind).toBe('fake');
    expect(store.extra()).toBe('kept');
    expect(await store.stat('k')).toEqual({ size: 3, etag: '"e"', lastModified: new Date(1) });
  });

  it('reports failures of the multipart capability as "multipart", but not S3 answers about the upload', async () => {
    const seen: string[] = [];
    let next: () => Error = () => new Error('ECONNRESET');
    const fail = async () => Promise.reject(next());
    const multipart: MultipartBlobs = {
      create: fail,
      presignParts: fail,
      presignRequest: fail,
      listParts: fail,
      complete: fail,
      abort: fail,
      async *staleUploads() {
        throw next();
      },
    };
    const store = observeBlobStore({ ...failingStore(() => new Error('x')), multipart }, (op) => seen.push(op));
    const mp = store.multipart!;
    const all = () => [
      mp.create('k'),
      mp.presignParts('k', 'u', [1], 60),
      mp.presignRequest({ op: 'abort', key: 'k', uploadId: 'u' }, 60),
      mp.listParts('k', 'u'),
      mp.complete('k', 'u', [{ partNumber: 1, etag: '"e"' }]),
      mp.abort('k', 'u'),
      (async () => {
        for await (const u of mp.staleUploads(new Date())) void u;
      })(),
    ];
    for (const p of all()) await expect(p).rejects.toThrow('ECONNRESET');
    expect(seen).toEqual(Array(7).fill('multipart'));
    seen.length = 0;
    for (const answer of [() => new MultipartError('NoSuchUpload', 'gone'), () => new BlobExistsError('k'), () => new BlobSizeError(1, 2)]) {
      next = answer;
      for (const p of all()) await expect(p).rejects.toBeInstanceOf(Error);
    }
    expect(seen).toEqual([]);
    // a store without the capability still has none
    expect(observeBlobStore(failingStore(() => new Error('x')), () => undefined).multipart).toBeUndefined();
  });
});
