/**
 * The behaviour every {@link BlobStore} implementation must show. An implementation's test file calls
 * {@link blobStoreContract} once; the suite only uses the `BlobStore` interface, so it runs unchanged against
 * the local store and S3-compatible stores. Keys are prefixed with a random run id so several runs can share
 * one bucket.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BlobExistsError,
  BlobNotFoundError,
  BlobSizeError,
  MULTIPART_MIN_PART_SIZE,
  MultipartError,
  type BlobStore,
  type MultipartBlobs,
  type PresignedRequest,
} from '../../src/blobs/blob-store.js';

/** What a contract `setup` returns: a fresh, usable store and how to dispose of it. */
export interface ContractFixture {
  store: BlobStore;
  teardown(): Promise<void>;
  /**
   * Known deviations of a test double from the real service, each with the reason; the contract then skips exactly the
   * affected assertion and prints the reason.
   */
  deviations?: {
    /** The upload's `initiated` date is not when it was created (so "not older than the cutoff" cannot be checked). */
    staleUploadsInitiated?: string;
  };
}

/**
 * Performs the upload described by `req` with a real HTTP request (global fetch), sending exactly
 * `req.headers` and `body`. A stream body is sent with `duplex: 'half'` (the signed Content-Length header
 * is still sent, so it must match the stream's length). Resolves to the response; never checks its status.
 */
export async function putPresigned(req: PresignedRequest, body: Buffer | Readable): Promise<Response> {
  const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers: req.headers };
  if (Buffer.isBuffer(body)) {
    init.body = new Uint8Array(body.buffer, body.byteOffset, body.byteLength) as unknown as BodyInit;
  } else {
    init.body = Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>;
    init.duplex = 'half';
  }
  return fetch(req.url, init);
}

/** Quoted lower-case hex MD5 of `data`, i.e. the ETag S3 gives a single-part object. */
export function md5Etag(data: Buffer | string): string {
  return `"${createHash('md5').update(data).digest('hex')}"`;
}

/** Reads a stream fully into one buffer (only for small test objects). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** A deterministic pseudo-random chunk: the same (seed, index) always gives the same bytes. */
function chunkBytes(seed: string, index: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(`${seed}:${index}`).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** `count` chunks of `size` bytes produced one at a time, never held together. */
function generated(seed: string, count: number, size: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < count; i++) yield chunkBytes(seed, i, size);
    })(),
  );
}

/** Size and MD5 of a stream, consumed chunk by chunk. */
async function digest(stream: Readable): Promise<{ size: number; md5: string }> {
  const hash = createHash('md5');
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    hash.update(chunk);
  }
  return { size, md5: `"${hash.digest('hex')}"` };
}

/** A stream yielding `data`, then failing with `error` instead of ending. */
function failingAfter(data: Buffer, error: Error): Readable {
  return Readable.from(
    (async function* () {
      yield data;
      await new Promise((r) => setTimeout(r, 5));
      throw error;
    })(),
  );
}

/**
 * Registers `describe(`BlobStore contract: ${name}`)` with the tests every implementation must pass.
 * `setup` runs before each test and must return an empty (or at least isolated) store; `teardown` after it.
 */
export function blobStoreContract(name: string, setup: () => Promise<ContractFixture>): void {
  describe(`BlobStore contract: ${name}`, () => {
    let fx: ContractFixture;
    let store: BlobStore;
    let run: string;
    const k = (suffix: string) => `${run}/${suffix}`;

    beforeEach(async () => {
      fx = await setup();
      store = fx.store;
      run = `contract-${randomBytes(6).toString('hex')}`;
    });
    afterEach(async () => {
      await fx.teardown();
    });

    it('check() resolves', async () => {
      await expect(store.check()).resolves.toBeUndefined();
    });

    it('round-trips binary data and reports size and etag', async () => {
      const data = Buffer.concat([Buffer.from([0, 255, 0, 10, 13, 128]), randomBytes(70_000)]);
      const put = await store.put(k('bin'), Readable.from([data]), { expectedSize: data.length, contentType: 'application/octet-stream' });
      expect(put.size).toBe(data.length);
      expect(put.etag).toBe(md5Etag(data));
      expect(put.lastModified).toBeInstanceOf(Date);

      const { stream, stat } = await store.get(k('bin'));
      expect((await readAll(stream)).equals(data)).toBe(true);
      expect(stat.size).toBe(data.length);
      expect(stat.etag).toBe(put.etag);

      const st = await store.stat(k('bin'));
      expect(st).not.toBeNull();
      expect(st!.size).toBe(data.length);
      expect(st!.etag).toBe(put.etag);
      expect(st!.lastModified.getTime()).toBe(put.lastModified.getTime());
    });

    it('stores an empty object', async () => {
      const put = await store.put(k('empty'), Readable.from([]), { expectedSize: 0 });
      expect(put).toMatchObject({ size: 0, etag: '"d41d8cd98f00b204e9800998ecf8427e"' });
      const { stream, stat } = await store.get(k('empty'));
      expect((await readAll(stream)).length).toBe(0);
      expect(stat.size).toBe(0);
    });

    it('accepts a body without expectedSize', async () => {
      const put = await store.put(k('nosize'), Readable.from([Buffer.from('abc'), Buffer.from('def')]));
      expect(put.size).toBe(6);
      expect(put.etag).toBe(md5Etag('abcdef'));
    });

    it('streams a 5 MB body from a generator', async () => {
      const count = 80;
      const size = 64 * 1024;
      const expected = await digest(generated('big', count, size));
      expect(expected.size).toBe(5 * 1024 * 1024);
      const put = await store.put(k('big'), generated('big', count, size), { expectedSize: expected.size });
      expect(put.size).toBe(expected.size);
      expect(put.etag).toBe(expected.md5);
      const { stream, stat } = await store.get(k('big'));
      expect(await digest(stream)).toEqual(expected);
      expect(stat.etag).toBe(expected.md5);
      expect((await store.stat(k('big')))?.etag).toBe(expected.md5);
    });

    it('reads inclusive byte ranges: first byte, middle, last byte, whole', async () => {
      const data = randomBytes(10_000);
      await store.put(k('range'), Readable.from([data]), { expectedSize: data.length });
      const read = async (start: number, end: number) => {
        const { stream, stat } = await store.get(k('range'), { start, end });
        expect(stat.size).toBe(data.length);
        return readAll(stream);
      };
      expect((await read(0, 0)).equals(data.subarray(0, 1))).toBe(true);
      expect((await read(1234, 5678)).equals(data.subarray(1234, 5679))).toBe(true);
      expect((await read(9999, 9999)).equals(data.subarray(9999))).toBe(true);
      expect((await read(0, 9999)).equals(data)).toBe(true);
    });

    it('rejects a body longer than expectedSize with BlobSizeError and stores nothing', async () => {
      const err = await store.put(k('long'), Readable.from([Buffer.alloc(600, 1), Buffer.alloc(600, 2)]), { expectedSize: 1000 }).catch((e) => e);
      expect(err).toBeInstanceOf(BlobSizeError);
      expect((err as BlobSizeError).expected).toBe(1000);
      expect((err as BlobSizeError).received).toBeGreaterThan(1000);
      expect(await store.stat(k('long'))).toBeNull();
    });

    it('stops reading a too-long body early', async () => {
      let produced = 0;
      const body = Readable.from(
        (function* () {
          for (let i = 0; i < 10_000; i++) {
            produced++;
            yield Buffer.alloc(1024, i & 0xff);
          }
        })(),
      );
      await expect(store.put(k('endless'), body, { expectedSize: 4096 })).rejects.toBeInstanceOf(BlobSizeError);
      expect(produced).toBeLessThan(10_000);
      expect(await store.stat(k('endless'))).toBeNull();
    });

    it('rejects a body shorter than expectedSize with BlobSizeError and stores nothing', async () => {
      const err = await store.put(k('short'), Readable.from([Buffer.alloc(999, 7)]), { expectedSize: 1000 }).catch((e) => e);
      expect(err).toBeInstanceOf(BlobSizeError);
      expect((err as BlobSizeError).received).toBe(999);
      expect(await store.stat(k('short'))).toBeNull();
      await expect(store.get(k('short'))).rejects.toBeInstanceOf(BlobNotFoundError);
    });

    it('rejects when the body stream errors midway and stores nothing', async () => {
      const boom = new Error('client went away');
      const err = await store.put(k('broken'), failingAfter(randomBytes(50_000), boom), { expectedSize: 100_000 }).catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(BlobSizeError);
      expect(await store.stat(k('broken'))).toBeNull();
    });

    it('keeps the previous version when a replacing put fails', async () => {
      const v1 = Buffer.from('version one');
      const first = await store.put(k('keep'), Readable.from([v1]), { expectedSize: v1.length });
      await expect(store.put(k('keep'), failingAfter(Buffer.alloc(100, 1), new Error('boom')), { expectedSize: 500 })).rejects.toThrow();
      await expect(store.put(k('keep'), Readable.from([Buffer.alloc(400)]), { expectedSize: 500 })).rejects.toBeInstanceOf(BlobSizeError);
      expect(await store.stat(k('keep'))).toMatchObject({ size: v1.length, etag: first.etag });
      expect((await readAll((await store.get(k('keep'))).stream)).equals(v1)).toBe(true);
    });

    it('overwrites atomically: readers see the old object until the new one is complete', async () => {
      const v1 = Buffer.alloc(200_000, 'a');
      const v2 = Buffer.alloc(300_000, 'b');
      const first = await store.put(k('atomic'), Readable.from([v1]), { expectedSize: v1.length });

      const body = new PassThrough();
      const replacing = store.put(k('atomic'), body, { expectedSize: v2.length });
      body.write(v2.subarray(0, 150_000));
      await new Promise((r) => setTimeout(r, 50));

      // Mid-upload: the old object, whole and consistent.
      expect(await store.stat(k('atomic'))).toMatchObject({ size: v1.length, etag: first.etag });
      const during = await store.get(k('atomic'));
      expect(during.stat.etag).toBe(first.etag);
      const duringBytes = await readAll(during.stream);
      expect(duringBytes.equals(v1)).toBe(true);

      // A reader that opened the old version keeps reading it even when the new one lands meanwhile.
      const early = await store.get(k('atomic'));
      body.end(v2.subarray(150_000));
      const second = await replacing;
      expect(second.etag).toBe(md5Etag(v2));
      const earlyBytes = await readAll(early.stream);
      expect(earlyBytes.equals(v1) || earlyBytes.equals(v2)).toBe(true);
      expect(md5Etag(earlyBytes)).toBe(early.stat.etag);

      const after = await store.get(k('atomic'));
      expect(after.stat).toMatchObject({ size: v2.length, etag: second.etag });
      expect((await readAll(after.stream)).equals(v2)).toBe(true);
    });

    it('concurrent readers during repeated overwrites only ever see complete versions', async () => {
      const versions = ['x', 'y', 'z'].map((c) => Buffer.alloc(100_000, c));
      const etags = new Set(versions.map((v) => md5Etag(v)));
      await store.put(k('race'), Readable.from([versions[0]]), { expectedSize: versions[0].length });
      let writing = true;
      const writer = (async () => {
        for (let round = 0; round < 6; round++) {
          const v = versions[round % versions.length];
          await store.put(k('race'), Readable.from([v.subarray(0, 50_000), v.subarray(50_000)]), { expectedSize: v.length });
        }
        writing = false;
      })();
      let reads = 0;
      while (writing || reads < 3) {
        const { stream, stat } = await store.get(k('race'));
        const bytes = await readAll(stream);
        expect(bytes.length).toBe(100_000);
        expect(etags.has(md5Etag(bytes))).toBe(true);
        expect(stat.etag).toBe(md5Etag(bytes));
        reads++;
      }
      await writer;
    });

    it('ifAbsent: places a new object, refuses an existing one with BlobExistsError and leaves it untouched', async () => {
      const a = Buffer.from('first bytes');
      const put = await store.put(k('once'), Readable.from([a]), { expectedSize: a.length, ifAbsent: true });
      expect(put.etag).toBe(md5Etag(a));
      const b = Buffer.from('other bytes');
      const err = await store.put(k('once'), Readable.from([b]), { expectedSize: b.length, ifAbsent: true }).catch((e) => e);
      expect(err).toBeInstanceOf(BlobExistsError);
      expect(await store.stat(k('once'))).toMatchObject({ size: a.length, etag: put.etag });
      expect((await readAll((await store.get(k('once'))).stream)).equals(a)).toBe(true);
    });

    it('ifAbsent: a put that started before the object appeared does not replace it when it completes', async () => {
      const b = Buffer.alloc(100_000, 'b');
      const body = new PassThrough();
      const late = store.put(k('race'), body, { expectedSize: b.length, ifAbsent: true });
      body.write(b.subarray(0, 50_000));
      const a = Buffer.alloc(100_000, 'a');
      const first = await store.put(k('race'), Readable.from([a]), { expectedSize: a.length, ifAbsent: true });
      body.end(b.subarray(50_000));
      await expect(late).rejects.toBeInstanceOf(BlobExistsError);
      expect(await store.stat(k('race'))).toMatchObject({ size: a.length, etag: first.etag });
      expect((await readAll((await store.get(k('race'))).stream)).equals(a)).toBe(true);
    });

    it('get of a missing key throws BlobNotFoundError; stat gives null', async () => {
      const err = await store.get(k('missing')).catch((e) => e);
      expect(err).toBeInstanceOf(BlobNotFoundError);
      expect((err as BlobNotFoundError).key).toBe(k('missing'));
      expect(await store.stat(k('missing'))).toBeNull();
    });

    it('delete removes the object and is idempotent', async () => {
      await store.put(k('del/x'), Readable.from([Buffer.from('bye')]), { expectedSize: 3 });
      await store.delete(k('del/x'));
      expect(await store.stat(k('del/x'))).toBeNull();
      await expect(store.get(k('del/x'))).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(store.delete(k('del/x'))).resolves.toBeUndefined();
      await expect(store.delete(k('del/never'))).resolves.toBeUndefined();
      // The key can be used again afterwards.
      const again = await store.put(k('del/x'), Readable.from([Buffer.from('back')]), { expectedSize: 4 });
      expect(again.etag).toBe(md5Etag('back'));
    });

    it('lists objects with and without prefix', async () => {
      const keys = ['list/a/1', 'list/a/2', 'list/ab/3', 'list/b/1', 'other/x'].map(k);
      for (const key of keys) await store.put(key, Readable.from([Buffer.from(key)]), { expectedSize: Buffer.byteLength(key) });
      const collect = async (prefix?: string) => {
        const out = [];
        for await (const entry of store.list(prefix)) out.push(entry);
        return out;
      };

      const all = await collect();
      const allKeys = all.map((e) => e.key);
      for (const key of keys) expect(allKeys).toContain(key);
      expect(allKeys.filter((key) => key.startsWith(run)).sort()).toEqual([...keys].sort());

      const underA = await collect(k('list/a/'));
      expect(underA.map((e) => e.key).sort()).toEqual([k('list/a/1'), k('list/a/2')]);
      expect(underA[0].size).toBe(Buffer.byteLength(underA[0].key));
      expect(underA[0].lastModified).toBeInstanceOf(Date);

      expect((await collect(k('list/a'))).map((e) => e.key).sort()).toEqual([k('list/a/1'), k('list/a/2'), k('list/ab/3')]);
      expect((await collect(k('list/'))).map((e) => e.key).sort()).toEqual(keys.slice(0, 4).sort());
      expect(await collect(k('nothing/'))).toEqual([]);

      await store.delete(k('list/a/1'));
      expect((await collect(k('list/a/'))).map((e) => e.key)).toEqual([k('list/a/2')]);
    });

    it('presignPut returns a signed PUT URL with all six X-Amz parameters', async () => {
      const before = Date.now();
      const req = await store.presignPut({ key: k('up/file.bin'), size: 1234, contentType: 'image/png', expiresInSeconds: 600 });
      expect(req.method).toBe('PUT');
      const url = new URL(req.url);
      for (const param of ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature']) {
        expect(url.searchParams.get(param), param).toBeTruthy();
      }
      expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
      expect(url.searchParams.get('X-Amz-Expires')).toBe('600');
      expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
      const signed = url.searchParams.get('X-Amz-SignedHeaders')!.split(';');
      expect(signed).toContain('host');
      expect(signed).toContain('content-length');
      expect(signed).toContain('content-type');
      expect(url.pathname.endsWith('/up/file.bin')).toBe(true);

      const headers = Object.fromEntries(Object.entries(req.headers).map(([n, v]) => [n.toLowerCase(), v]));
      expect(headers['content-length']).toBe('1234');
      expect(headers['content-type']).toBe('image/png');

      const amz = url.searchParams.get('X-Amz-Date')!;
      const signedAt = Date.UTC(+amz.slice(0, 4), +amz.slice(4, 6) - 1, +amz.slice(6, 8), +amz.slice(9, 11), +amz.slice(11, 13), +amz.slice(13, 15));
      expect(req.expiresAt).toBe(signedAt + 600_000);
      expect(req.expiresAt).toBeGreaterThan(before);
    });

    it('presignPut without contentType does not sign one', async () => {
      const req = await store.presignPut({ key: k('up/plain'), size: 1, expiresInSeconds: 60 });
      const signed = new URL(req.url).searchParams.get('X-Amz-SignedHeaders')!.split(';');
      expect(signed).not.toContain('content-type');
      expect(Object.keys(req.headers).map((n) => n.toLowerCase())).not.toContain('content-type');
    });

    describe('multipart uploads', () => {
      let mp: MultipartBlobs;
      beforeEach(() => {
        if (!store.multipart) throw new Error('this store declares no multipart capability');
        mp = store.multipart;
      });

      /** Uploads `data` as part `partNumber` through a presigned URL (a real HTTP PUT); returns the answered ETag. */
      async function putPart(key: string, uploadId: string, partNumber: number, data: Buffer): Promise<string> {
        const [req] = await mp.presignParts(key, uploadId, [partNumber], 300);
        expect(req.partNumber).toBe(partNumber);
        const res = await putPresigned(req, data);
        expect(res.status, await res.clone().text()).toBe(200);
        const etag = res.headers.get('etag');
        expect(etag).toBe(md5Etag(data));
        return etag!;
      }

      /** S3's multipart ETag: MD5 of the concatenated binary part MD5s, dash, part count. */
      function multipartEtag(parts: Buffer[]): string {
        const md5s = parts.map((p) => createHash('md5').update(p).digest());
        return `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${parts.length}"`;
      }

      const code = async (p: Promise<unknown>) => {
        const err = await p.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(MultipartError);
        return (err as MultipartError).code;
      };

      it('joins parts uploaded out of order into identical bytes with the S3 multipart ETag; lists parts for resuming', async () => {
        const key = k('mp/whole');
        const p1 = chunkBytes('p1', 0, MULTIPART_MIN_PART_SIZE);
        const p2 = chunkBytes('p2', 0, MULTIPART_MIN_PART_SIZE + 1234);
        const p3 = chunkBytes('p3', 0, 777);
        const uploadId = await mp.create(key, { contentType: 'application/x-test' });
        expect(uploadId).toMatch(/\S/);
        const e3 = await putPart(key, uploadId, 3, p3);
        const e1 = await putPart(key, uploadId, 1, p1);
        expect(await mp.listParts(key, uploadId)).toEqual([
          { partNumber: 1, etag: e1, size: p1.length },
          { partNumber: 3, etag: e3, size: p3.length },
        ]);
        // nothing is visible under the key (nor listed) before completion
        expect(await store.stat(key)).toBeNull();
        const listed = [];
        for await (const entry of store.list(run)) listed.push(entry.key);
        expect(listed).toEqual([]);

        const e2 = await putPart(key, uploadId, 2, p2);
        const total = p1.length + p2.length + p3.length;
        const done = await mp.complete(
          key,
          uploadId,
          [
            { partNumber: 1, etag: e1 },
            { partNumber: 2, etag: e2.replace(/"/g, '') }, // S3 accepts ETags with or without quotes
            { partNumber: 3, etag: e3 },
          ],
          { expectedSize: total },
        );
        expect(done.size).toBe(total);
        expect(done.etag).toBe(multipartEtag([p1, p2, p3]));
        const { stream, stat } = await store.get(key);
        expect(await digest(stream)).toEqual({ size: total, md5: md5Etag(Buffer.concat([p1, p2, p3])) });
        expect(stat.size).toBe(total);
        expect((await store.stat(key))?.etag).toBe(done.etag);
        // the upload is finished
        expect(await code(mp.listParts(key, uploadId))).toBe('NoSuchUpload');
      });

      it('a single small part is a valid upload; a part uploaded again replaces the earlier one', async () => {
        const key = k('mp/single');
        const uploadId = await mp.create(key);
        const old = await putPart(key, uploadId, 1, Buffer.from('first try'));
        const data = Buffer.from('second try, longer');
        const etag = await putPart(key, uploadId, 1, data);
        expect(await mp.listParts(key, uploadId)).toEqual([{ partNumber: 1, etag, size: data.length }]);
        expect(await code(mp.complete(key, uploadId, [{ partNumber: 1, etag: old }]))).toBe('InvalidPart');
        const done = await mp.complete(key, uploadId, [{ partNumber: 1, etag }]);
        expect(done).toMatchObject({ size: data.length, etag: multipartEtag([data]) });
        expect((await readAll((await store.get(key)).stream)).equals(data)).toBe(true);
      });

      it('EntityTooSmall: a part other than the last below 5 MiB; nothing is stored and the upload stays open', async () => {
        const key = k('mp/small');
        const uploadId = await mp.create(key);
        const e1 = await putPart(key, uploadId, 1, Buffer.alloc(MULTIPART_MIN_PART_SIZE - 1, 1));
        const e2 = await putPart(key, uploadId, 2, Buffer.alloc(10, 2));
        const err = await mp.complete(key, uploadId, [{ partNumber: 1, etag: e1 }, { partNumber: 2, etag: e2 }]).catch((e) => e);
        expect(err).toBeInstanceOf(MultipartError);
        expect((err as MultipartError).code).toBe('EntityTooSmall');
        expect(await store.stat(key)).toBeNull();
        expect((await mp.listParts(key, uploadId)).map((p) => p.partNumber)).toEqual([1, 2]);
        await mp.abort(key, uploadId);
      });

      it('InvalidPart (missing part, wrong ETag), InvalidPartOrder, InvalidArgument; the upload stays usable', async () => {
        const key = k('mp/invalid');
        const uploadId = await mp.create(key);
        const data = Buffer.from('only part');
        const etag = await putPart(key, uploadId, 1, data);
        expect(await code(mp.complete(key, uploadId, [{ partNumber: 2, etag }]))).toBe('InvalidPart');
        expect(await code(mp.complete(key, uploadId, [{ partNumber: 1, etag: md5Etag('something else') }]))).toBe('InvalidPart');
        expect(await code(mp.complete(key, uploadId, [{ partNumber: 2, etag }, { partNumber: 1, etag }]))).toBe('InvalidPartOrder');
        expect(await code(mp.complete(key, uploadId, [{ partNumber: 1, etag }, { partNumber: 1, etag }]))).toBe('InvalidPartOrder');
        expect(await code(mp.complete(key, uploadId, []))).toBe('InvalidArgument');
        expect(await code(mp.complete(key, uploadId, [{ partNumber: 0, etag }]))).toBe('InvalidArgument');
        expect(await code(mp.presignParts(key, uploadId, [10_001], 60))).toBe('InvalidArgument');
        expect(await store.stat(key)).toBeNull();
        const err = await mp.complete(key, uploadId, [{ partNumber: 1, etag }], { expectedSize: data.length + 1 }).catch((e) => e);
        expect(err).toBeInstanceOf(BlobSizeError);
        expect(await store.stat(key)).toBeNull();
        expect((await mp.complete(key, uploadId, [{ partNumber: 1, etag }], { expectedSize: data.length })).size).toBe(data.length);
      });

      it('NoSuchUpload for unknown ids; abort discards the parts and is idempotent', async () => {
        const key = k('mp/abort');
        const unknown = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
        expect(await code(mp.listParts(key, unknown))).toBe('NoSuchUpload');
        expect(await code(mp.complete(key, unknown, [{ partNumber: 1, etag: md5Etag('x') }]))).toBe('NoSuchUpload');
        const uploadId = await mp.create(key);
        const etag = await putPart(key, uploadId, 1, Buffer.from('doomed'));
        await mp.abort(key, uploadId);
        expect(await code(mp.listParts(key, uploadId))).toBe('NoSuchUpload');
        expect(await code(mp.complete(key, uploadId, [{ partNumber: 1, etag }]))).toBe('NoSuchUpload');
        await expect(mp.abort(key, uploadId)).resolves.toBeUndefined();
        expect(await store.stat(key)).toBeNull();
      });

      it('completion is write-once: an existing object (a confirmed upload) is never replaced', async () => {
        const key = k('mp/once');
        const first = Buffer.from('confirmed bytes');
        const put = await store.put(key, Readable.from([first]), { expectedSize: first.length, ifAbsent: true });
        const uploadId = await mp.create(key);
        const etag = await putPart(key, uploadId, 1, Buffer.from('replacement'));
        expect(await mp.complete(key, uploadId, [{ partNumber: 1, etag }]).catch((e) => e)).toBeInstanceOf(BlobExistsError);
        expect(await store.stat(key)).toMatchObject({ size: first.length, etag: put.etag });
        expect((await readAll((await store.get(key)).stream)).equals(first)).toBe(true);
        await mp.abort(key, uploadId);

        // and a completed object is not replaced by a second completion either
        const key2 = k('mp/once2');
        const a = await mp.create(key2);
        const b = await mp.create(key2);
        const ea = await putPart(key2, a, 1, Buffer.from('winner'));
        const eb = await putPart(key2, b, 1, Buffer.from('loser'));
        const done = await mp.complete(key2, a, [{ partNumber: 1, etag: ea }]);
        expect(await mp.complete(key2, b, [{ partNumber: 1, etag: eb }]).catch((e) => e)).toBeInstanceOf(BlobExistsError);
        expect((await store.stat(key2))?.etag).toBe(done.etag);
        expect((await readAll((await store.get(key2)).stream)).toString()).toBe('winner');
        await mp.abort(key2, b);
      });

      it('staleUploads lists unfinished uploads initiated before the cutoff, and not finished ones', async () => {
        const key = k('mp/stale');
        const uploadId = await mp.create(key);
        const done = await mp.create(k('mp/gone'));
        await mp.abort(k('mp/gone'), done);
        const collect = async (cutoff: Date) => {
          const out = [];
          for await (const u of mp.staleUploads(cutoff)) if (u.key.startsWith(run)) out.push(u);
          return out;
        };
        const later = await collect(new Date(Date.now() + 3600_000));
        expect(later.map((u) => [u.key, u.uploadId])).toEqual([[key, uploadId]]);
        expect(later[0].initiated).toBeInstanceOf(Date);
        const deviation = fx.deviations?.staleUploadsInitiated;
        if (deviation) console.warn(`[contract ${name}] not checking that a fresh upload is not stale: ${deviation}`);
        else expect(await collect(new Date(Date.now() - 3600_000))).toEqual([]);
        await mp.abort(key, uploadId);
        expect(await collect(new Date(Date.now() + 3600_000))).toEqual([]);
      });

      it('presignRequest signs the other S3 requests for clients that speak the protocol themselves', async () => {
        const key = k('mp/signed');
        const create = await mp.presignRequest({ op: 'create', key, contentType: 'text/plain' }, 120);
        expect(create.method).toBe('POST');
        const created = await fetch(create.url, { method: 'POST', headers: create.headers });
        const createdXml = await created.text();
        expect(created.status, createdXml).toBe(200);
        const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(createdXml)?.[1];
        expect(uploadId).toBeTruthy();
        const data = Buffer.from('signed by the server, sent by the client');
        const etag = await putPart(key, uploadId!, 1, data);

        const list = await mp.presignRequest({ op: 'list', key, uploadId: uploadId! }, 120);
        const listed = await fetch(list.url, { method: list.method, headers: list.headers });
        const listedXml = await listed.text();
        expect(listed.status, listedXml).toBe(200);
        expect(listedXml).toMatch(/<PartNumber>1<\/PartNumber>/);
        expect(listedXml.replace(/&quot;/g, '"')).toContain(etag);

        const complete = await mp.presignRequest({ op: 'complete', key, uploadId: uploadId! }, 120);
        const body = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`;
        const completed = await fetch(complete.url, { method: 'POST', headers: complete.headers, body });
        const completedXml = await completed.text();
        expect(completed.status, completedXml).toBe(200);
        expect(completedXml.replace(/&quot;/g, '"')).toContain(multipartEtag([data]));
        expect((await readAll((await store.get(key)).stream)).equals(data)).toBe(true);

        const other = await mp.create(k('mp/signed2'));
        const abort = await mp.presignRequest({ op: 'abort', key: k('mp/signed2'), uploadId: other }, 120);
        const aborted = await fetch(abort.url, { method: 'DELETE', headers: abort.headers });
        expect(aborted.status).toBe(204);
        expect(await code(mp.listParts(k('mp/signed2'), other))).toBe('NoSuchUpload');
      });
    });
  });
}
