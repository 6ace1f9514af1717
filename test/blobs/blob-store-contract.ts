/**
 * The behaviour every {@link BlobStore} implementation must show. An implementation's test file calls
 * {@link blobStoreContract} once; the suite only uses the `BlobStore` interface, so it runs unchanged against
 * the local store and S3-compatible stores. Keys are prefixed with a random run id so several runs can share
 * one bucket.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobExistsError, BlobNotFoundError, BlobSizeError, type BlobStore, type PresignedRequest } from '../../src/blobs/blob-store.js';

/** What a contract `setup` returns: a fresh, usable store and how to dispose of it. */
export interface ContractFixture {
  store: BlobStore;
  teardown(): Promise<void>;
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
  });
}
