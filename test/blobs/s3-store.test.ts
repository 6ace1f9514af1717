import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { BlobExistsError, BlobNotFoundError, BlobSizeError } from '../../src/blobs/blob-store.js';
import { createS3BlobStore, normalizeS3Prefix, type S3BlobStore, type S3BlobStoreOptions } from '../../src/blobs/s3-store.js';
import { manualClock, systemClock, type AdjustableClock } from '../../src/core/clock.js';
import { createBucket, freePort, MOTO_CREDENTIALS, motoClient, startMoto } from '../helpers/moto.js';
import { blobStoreContract } from './blob-store-contract.js';

// moto is started once for the whole file, before any test is collected, so that a missing or broken moto_server
// turns the whole file into visibly skipped tests (with the reason in its title and a banner on stderr).
const moto = await startMoto();
const skipReason = 'skipped' in moto ? moto.skipped : undefined;
if (skipReason !== undefined) {
  console.warn(
    [
      '',
      '#'.repeat(78),
      '### S3 BLOB STORE TESTS SKIPPED: moto_server could not be started',
      `### reason: ${skipReason}`,
      '#'.repeat(78),
      '',
    ].join('\n'),
  );
}
const endpoint = 'endpoint' in moto ? moto.endpoint : 'http://127.0.0.1:1';

afterAll(async () => {
  if ('stop' in moto) await moto.stop();
});

/** Where moto differs from S3 in what the contract checks (moto 5.x answers a fixed `Initiated` date). */
const MOTO_DEVIATIONS = {
  staleUploadsInitiated: 'moto answers ListMultipartUploads with the fixed Initiated date 2010-11-10, so every upload looks stale',
};

let bucketCounter = 0;
/** A bucket name unique to this run (S3 rules: 3-63 chars, lowercase, digits, hyphens). */
function freshBucketName(): string {
  bucketCounter += 1;
  return `dz-${randomUUID().slice(0, 8)}-${bucketCounter}`;
}

function makeStore(overrides: Partial<S3BlobStoreOptions> & { bucket: string }): S3BlobStore {
  return createS3BlobStore({
    endpoint,
    region: 'us-east-1',
    prefix: '',
    ...MOTO_CREDENTIALS,
    forcePathStyle: true,
    createBucket: false,
    conditionalWrites: true,
    clock: systemClock(),
    ...overrides,
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}

async function rawKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

function signedHeaders(url: string): string[] {
  return (new URL(url).searchParams.get('X-Amz-SignedHeaders') ?? '').split(';').filter(Boolean);
}

/** Yields `chunks` with a pause between them, like a slow network body. */
function slowBody(chunks: Buffer[], pauseMs = 20): Readable {
  return Readable.from(
    (async function* () {
      for (const c of chunks) {
        yield c;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    })(),
  );
}

describe.skipIf(skipReason !== undefined)(
  skipReason === undefined ? 'S3 blob store (moto)' : `S3 blob store (SKIPPED: ${skipReason})`,
  () => {
    blobStoreContract('s3 store, fresh bucket per setup, no prefix', async () => {
      const bucket = freshBucketName();
      await createBucket(endpoint, bucket);
      const store = makeStore({ bucket });
      return { store, teardown: () => store.close(), deviations: MOTO_DEVIATIONS };
    });

    // One bucket shared by every setup, each setup under its own prefix: the contract must not see other setups' keys.
    const sharedBucket = freshBucketName();
    let sharedBucketReady: Promise<void> | undefined;
    blobStoreContract('s3 store, shared bucket, fresh prefix per setup', async () => {
      sharedBucketReady ??= createBucket(endpoint, sharedBucket);
      await sharedBucketReady;
      const store = makeStore({ bucket: sharedBucket, prefix: `/tenants/${randomUUID()}` });
      return { store, teardown: () => store.close(), deviations: MOTO_DEVIATIONS };
    });

    describe('S3-specific behaviour', () => {
      const raw = motoClient(endpoint);
      afterAll(() => raw.destroy());

      async function storeWithBucket(overrides: Partial<S3BlobStoreOptions> = {}) {
        const bucket = freshBucketName();
        await createBucket(endpoint, bucket);
        return { bucket, store: makeStore({ bucket, ...overrides }) };
      }

      describe('multipart', () => {
        async function onePartUpload(store: S3BlobStore, key: string, data: Buffer) {
          const uploadId = await store.multipart.create(key);
          const [req] = await store.multipart.presignParts(key, uploadId, [1], 60);
          const res = await fetch(req.url, { method: 'PUT', body: new Uint8Array(data) as unknown as BodyInit });
          expect(res.status).toBe(200);
          return { uploadId, etag: res.headers.get('etag')! };
        }

        it('without conditional writes, completion over an existing object is refused by a HEAD check', async () => {
          const { store } = await storeWithBucket({ conditionalWrites: false });
          await store.put('k', Readable.from([Buffer.from('first')]), { expectedSize: 5 });
          const { uploadId, etag } = await onePartUpload(store, 'k', Buffer.from('second'));
          await expect(store.multipart.complete('k', uploadId, [{ partNumber: 1, etag }])).rejects.toBeInstanceOf(BlobExistsError);
          expect((await store.stat('k'))?.size).toBe(5);
          await store.multipart.abort('k', uploadId);
          await store.close();
        });

        it('a presigned completion carries If-None-Match: * so a client cannot complete over an existing object', async () => {
          const { store } = await storeWithBucket({ conditionalWrites: true });
          const { uploadId, etag } = await onePartUpload(store, 'k', Buffer.from('late bytes'));
          await store.put('k', Readable.from([Buffer.from('confirmed')]), { expectedSize: 9 });
          const req = await store.multipart.presignRequest({ op: 'complete', key: 'k', uploadId }, 60);
          expect(signedHeaders(req.url)).toContain('if-none-match');
          const body = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`;
          const res = await fetch(req.url, { method: 'POST', headers: req.headers, body });
          expect(res.status).toBe(412);
          expect((await store.stat('k'))?.size).toBe(9);
          await store.close();
        });

        it('staleUploads lists only uploads under the store prefix, with keys without it', async () => {
          const bucket = freshBucketName();
          await createBucket(endpoint, bucket);
          const a = makeStore({ bucket, prefix: 'a/' });
          const b = makeStore({ bucket, prefix: 'b/' });
          const idA = await a.multipart.create('x/1');
          await b.multipart.create('x/1');
          const listed = [];
          for await (const u of a.multipart.staleUploads(new Date(Date.now() + 3600_000))) listed.push(u);
          expect(listed.map((u) => [u.key, u.uploadId])).toEqual([['x/1', idA]]);
          const rawUploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
          expect((rawUploads.Uploads ?? []).map((u) => u.Key).sort()).toEqual(['a/x/1', 'b/x/1']);
          await a.close();
          await b.close();
        });
      });

      describe('presignPut', () => {
        it('signs content-length, content-type and if-none-match and returns the headers to send', async () => {
          const { store } = await storeWithBucket({ conditionalWrites: true });
          const req = await store.presignPut({ key: 'a/b', size: 5, contentType: 'text/plain', expiresInSeconds: 600 });
          expect(req.method).toBe('PUT');
          expect(signedHeaders(req.url)).toEqual(['content-length', 'content-type', 'host', 'if-none-match']);
          expect(req.headers).toEqual({ 'Content-Length': '5', 'Content-Type': 'text/plain', 'If-None-Match': '*' });
          await store.close();
        });

        it('signs only content-length (and host) without a content type and without conditional writes', async () => {
          const { store } = await storeWithBucket({ conditionalWrites: false });
          const req = await store.presignPut({ key: 'k', size: 12, expiresInSeconds: 60 });
          expect(signedHeaders(req.url)).toEqual(['content-length', 'host']);
          expect(req.headers).toEqual({ 'Content-Length': '12' });
          // Any (or no) content type is accepted then.
          const res = await fetch(req.url, { method: 'PUT', headers: { ...req.headers, 'Content-Type': 'image/png' }, body: 'twelve bytes' });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
          // No checksum of an empty body may sneak into the URL (it would make every real upload fail).
          expect(req.url).not.toMatch(/x-amz-checksum|x-amz-sdk-checksum/i);
          await store.close();
        });

        it('takes X-Amz-Date and expiresAt from the injected clock', async () => {
          const clock: AdjustableClock = manualClock(Date.UTC(2026, 0, 1));
          const { store } = await storeWithBucket({ clock });
          const a = await store.presignPut({ key: 'k', size: 1, expiresInSeconds: 900 });
          expect(new URL(a.url).searchParams.get('X-Amz-Date')).toBe('20260101T000000Z');
          expect(new URL(a.url).searchParams.get('X-Amz-Expires')).toBe('900');
          expect(a.expiresAt).toBe(Date.UTC(2026, 0, 1) + 900_000);
          clock.advance(2 * 3600_000);
          const b = await store.presignPut({ key: 'k', size: 1, expiresInSeconds: 900 });
          expect(new URL(b.url).searchParams.get('X-Amz-Date')).toBe('20260101T020000Z');
          expect(b.expiresAt).toBe(Date.UTC(2026, 0, 1, 2) + 900_000);
          await store.close();
        });

        it('rejects lifetimes S3 cannot sign', async () => {
          const { store } = await storeWithBucket();
          await expect(store.presignPut({ key: 'k', size: 1, expiresInSeconds: 0 })).rejects.toThrow(RangeError);
          await expect(store.presignPut({ key: 'k', size: 1, expiresInSeconds: 7 * 24 * 3600 + 1 })).rejects.toThrow(RangeError);
          await store.close();
        });

        it('a real presigned PUT through fetch stores exactly the bytes sent', async () => {
          const { bucket, store } = await storeWithBucket({ prefix: 'pfx' });
          const body = randomBytes(100_000);
          const req = await store.presignPut({ key: 'up/1', size: body.length, contentType: 'application/x-test', expiresInSeconds: 600 });
          const res = await fetch(req.url, { method: 'PUT', headers: req.headers, body });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
          const head = await raw.send(new HeadObjectCommand({ Bucket: bucket, Key: 'pfx/up/1' }));
          expect(head.ContentLength).toBe(body.length);
          expect(head.ContentType).toBe('application/x-test');
          const got = await store.get('up/1');
          expect((await readAll(got.stream)).equals(body)).toBe(true);
          expect(got.stat.size).toBe(body.length);
          await store.close();
        });

        it('with conditionalWrites an existing object cannot be replaced through an upload URL (412)', async () => {
          const { store } = await storeWithBucket({ conditionalWrites: true });
          const req = await store.presignPut({ key: 'once', size: 5, expiresInSeconds: 600 });
          const first = await fetch(req.url, { method: 'PUT', headers: req.headers, body: 'first' });
          expect(first.status).toBe(200);
          await first.arrayBuffer();
          const second = await fetch(req.url, { method: 'PUT', headers: req.headers, body: 'other' });
          expect(second.status).toBe(412);
          await second.arrayBuffer();
          expect((await readAll((await store.get('once')).stream)).toString()).toBe('first');
          await store.close();
        });

        it('without conditionalWrites a second PUT to the same URL replaces the object', async () => {
          const { store } = await storeWithBucket({ conditionalWrites: false });
          const req = await store.presignPut({ key: 'twice', size: 5, expiresInSeconds: 600 });
          for (const body of ['first', 'other']) {
            const res = await fetch(req.url, { method: 'PUT', headers: req.headers, body });
            expect(res.status).toBe(200);
            await res.arrayBuffer();
          }
          expect((await readAll((await store.get('twice')).stream)).toString()).toBe('other');
          await store.close();
        });
      });

      describe('presignGet', () => {
        it('returns a URL fetch can download, carrying the content-disposition and type overrides', async () => {
          const { store } = await storeWithBucket({ prefix: 'dl' });
          const body = Buffer.from('download me');
          await store.put('f', Readable.from([body]), { expectedSize: body.length, contentType: 'text/plain' });
          const disposition = 'attachment; filename="report final.txt"; filename*=UTF-8\'\'report%20final.txt';
          const req = await store.presignGet({ key: 'f', expiresInSeconds: 60, contentDisposition: disposition, contentType: 'text/csv' });
          expect(req).not.toBeNull();
          expect(req!.method).toBe('GET');
          expect(req!.headers).toEqual({});
          const url = new URL(req!.url);
          // Query parameters are part of every SigV4 signature, so these cannot be altered by the client.
          expect(url.searchParams.get('response-content-disposition')).toBe(disposition);
          expect(url.searchParams.get('response-content-type')).toBe('text/csv');
          expect(url.pathname).toBe(`/${store.bucket}/dl/f`);
          const res = await fetch(req!.url);
          expect(res.status).toBe(200);
          expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
          // moto 5.x ignores the response-* overrides (real S3, MinIO and R2 honour them), so only check when echoed.
          const echoed = res.headers.get('content-disposition');
          if (echoed !== null) expect(echoed).toBe(disposition);
          await store.close();
        });
      });

      describe('check', () => {
        it('passes for an existing bucket', async () => {
          const { store } = await storeWithBucket();
          await expect(store.check()).resolves.toBeUndefined();
          await store.close();
        });

        it('creates a missing bucket when createBucket is on', async () => {
          const bucket = freshBucketName();
          const store = makeStore({ bucket, createBucket: true });
          await expect(store.check()).resolves.toBeUndefined();
          await expect(raw.send(new HeadBucketCommand({ Bucket: bucket }))).resolves.toBeDefined();
          await expect(store.check()).resolves.toBeUndefined(); // idempotent
          await store.close();
        });

        it('fails naming endpoint and bucket when the bucket is missing and createBucket is off', async () => {
          const bucket = freshBucketName();
          const store = makeStore({ bucket, createBucket: false });
          const err = await store.check().then(
            () => undefined,
            (e: unknown) => e as Error,
          );
          expect(err).toBeInstanceOf(Error);
          expect(err!.message).toContain(endpoint);
          expect(err!.message).toContain(bucket);
          expect(err!.message).toMatch(/not found/);
          await expect(raw.send(new HeadBucketCommand({ Bucket: bucket }))).rejects.toThrow();
          await store.close();
        });

        it('fails naming endpoint and bucket when the endpoint is unreachable', async () => {
          const closed = `http://127.0.0.1:${await freePort()}`;
          const store = makeStore({ bucket: 'some-bucket', endpoint: closed, createBucket: true });
          const err = await store.check().then(
            () => undefined,
            (e: unknown) => e as Error,
          );
          expect(err).toBeInstanceOf(Error);
          expect(err!.message).toContain(closed);
          expect(err!.message).toContain('some-bucket');
          expect(err!.message).toMatch(/unreachable/);
          await store.close();
        });
      });

      describe('prefix', () => {
        it('normalises the configured prefix', () => {
          expect(normalizeS3Prefix('')).toBe('');
          expect(normalizeS3Prefix('/')).toBe('');
          expect(normalizeS3Prefix('a')).toBe('a/');
          expect(normalizeS3Prefix('/a/b')).toBe('a/b/');
          expect(normalizeS3Prefix('//a/b/')).toBe('a/b/');
        });

        it('stores under the prefix and lists only its own keys, without the prefix', async () => {
          const bucket = freshBucketName();
          await createBucket(endpoint, bucket);
          const one = makeStore({ bucket, prefix: '/tenant/one' });
          const sibling = makeStore({ bucket, prefix: 'tenant/one-more/' });
          const put = (s: S3BlobStore, key: string) => s.put(key, Readable.from([Buffer.from(key)]), { expectedSize: key.length });
          await put(one, 'x/1');
          await put(one, 'x/2');
          await put(one, 'y/1');
          await put(sibling, 'x/9');
          await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'loose', Body: 'loose' }));

          expect(await rawKeys(raw, bucket)).toEqual(['loose', 'tenant/one-more/x/9', 'tenant/one/x/1', 'tenant/one/x/2', 'tenant/one/y/1']);
          const all: string[] = [];
          for await (const e of one.list()) {
            all.push(e.key);
            expect(e.size).toBe(e.key.length);
            expect(e.lastModified).toBeInstanceOf(Date);
          }
          expect(all.sort()).toEqual(['x/1', 'x/2', 'y/1']);
          const xs: string[] = [];
          for await (const e of one.list('x/')) xs.push(e.key);
          expect(xs.sort()).toEqual(['x/1', 'x/2']);
          const sib: string[] = [];
          for await (const e of sibling.list()) sib.push(e.key);
          expect(sib).toEqual(['x/9']);
          expect(one.objectKey('x/1')).toBe('tenant/one/x/1');
          await one.close();
          await sibling.close();
        });

        it('lists across pages', async () => {
          const { store } = await storeWithBucket({ prefix: 'many' });
          const n = 1005; // ListObjectsV2 returns at most 1000 keys per page
          const keys = Array.from({ length: n }, (_, i) => `k/${String(i).padStart(4, '0')}`);
          for (let i = 0; i < n; i += 200) {
            await Promise.all(
              keys.slice(i, i + 200).map((k) => raw.send(new PutObjectCommand({ Bucket: store.bucket, Key: store.objectKey(k), Body: 'z' }))),
            );
          }
          const seen: string[] = [];
          for await (const e of store.list()) seen.push(e.key);
          expect(seen.sort()).toEqual(keys);
          await store.close();
        }, 120_000);
      });

      describe('put', () => {
        it('rejects a too-long body with BlobSizeError and leaves no object', async () => {
          const { bucket, store } = await storeWithBucket({ prefix: 'sz' });
          const err = await store.put('long', Readable.from([Buffer.alloc(10, 1)]), { expectedSize: 5 }).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(BlobSizeError);
          expect((err as BlobSizeError).expected).toBe(5);
          expect(await store.stat('long')).toBeNull();
          expect(await rawKeys(raw, bucket)).toEqual([]);
          await store.close();
        });

        it('rejects a too-short body with BlobSizeError and leaves no object', async () => {
          const { bucket, store } = await storeWithBucket({ prefix: 'sz' });
          const err = await store.put('short', Readable.from([Buffer.alloc(3, 1)]), { expectedSize: 5 }).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(BlobSizeError);
          expect((err as BlobSizeError).received).toBe(3);
          expect(await store.stat('short')).toBeNull();
          expect(await rawKeys(raw, bucket)).toEqual([]);
          await store.close();
        });

        it('stops reading a large body as soon as it exceeds the expected size', async () => {
          const { bucket, store } = await storeWithBucket();
          let produced = 0;
          const chunk = Buffer.alloc(64 * 1024, 7);
          const body = Readable.from(
            (async function* () {
              for (let i = 0; i < 1000; i++) {
                produced += chunk.length;
                yield chunk;
              }
            })(),
          );
          const expectedSize = 3 * 1024 * 1024; // above the SDK's 2 MB Expect: 100-continue threshold
          await expect(store.put('big', body, { expectedSize })).rejects.toBeInstanceOf(BlobSizeError);
          expect(produced).toBeLessThan(expectedSize + 2 * 1024 * 1024);
          expect(await rawKeys(raw, bucket)).toEqual([]);
          await store.close();
        });

        it('rejects a slow, large, too-short body and leaves no object', async () => {
          const { bucket, store } = await storeWithBucket();
          const body = slowBody([Buffer.alloc(1024 * 1024, 1), Buffer.alloc(1024 * 1024, 2), Buffer.alloc(1000, 3)]);
          await expect(store.put('slow', body, { expectedSize: 3 * 1024 * 1024 })).rejects.toBeInstanceOf(BlobSizeError);
          expect(await rawKeys(raw, bucket)).toEqual([]);
          await store.close();
        });

        it('rejects when the body stream fails and leaves no object', async () => {
          const { bucket, store } = await storeWithBucket();
          const body = Readable.from(
            (async function* () {
              yield Buffer.alloc(1000, 1);
              await new Promise((r) => setTimeout(r, 20));
              throw new Error('client went away');
            })(),
          );
          await expect(store.put('broken', body, { expectedSize: 5000 })).rejects.toThrow('client went away');
          expect(await rawKeys(raw, bucket)).toEqual([]);
          await store.close();
        });

        it('streams an exact-size body and returns its stat', async () => {
          const { store } = await storeWithBucket();
          const data = randomBytes(3 * 1024 * 1024 + 17);
          const chunks = [data.subarray(0, 1_000_000), data.subarray(1_000_000, 2_500_000), data.subarray(2_500_000)];
          const stat = await store.put('exact', slowBody(chunks, 5), { expectedSize: data.length, contentType: 'application/octet-stream' });
          expect(stat.size).toBe(data.length);
          expect(stat.etag).toMatch(/^".+"$/);
          expect(stat.lastModified).toBeInstanceOf(Date);
          expect(await store.stat('exact')).toEqual(stat);
          await store.close();
        });

        it('without expectedSize uploads large bodies in 8 MiB multipart parts', async () => {
          const { store } = await storeWithBucket({ prefix: 'mp' });
          const data = randomBytes(17 * 1024 * 1024 + 5);
          // Uneven chunks, one of them spanning a part boundary.
          const chunks = [data.subarray(0, 3_000_000), data.subarray(3_000_000, 12_000_000), data.subarray(12_000_000)];
          const stat = await store.put('big', slowBody(chunks, 1));
          expect(stat.size).toBe(data.length);
          expect(stat.etag).toMatch(/-3"$/); // 8 MiB + 8 MiB + the rest
          const whole = await store.get('big');
          expect((await readAll(whole.stream)).equals(data)).toBe(true);
          const start = 8 * 1024 * 1024 - 10;
          const ranged = await store.get('big', { start, end: start + 19 });
          expect(ranged.stat.size).toBe(data.length);
          expect((await readAll(ranged.stream)).equals(data.subarray(start, start + 20))).toBe(true);
          await store.close();
        });

        it('without expectedSize stores a small body with one PUT', async () => {
          const { store } = await storeWithBucket();
          const stat = await store.put('small', Readable.from([Buffer.from('ab'), Buffer.from('cd')]), { contentType: 'text/plain' });
          expect(stat.size).toBe(4);
          expect(stat.etag).not.toMatch(/-\d+"$/);
          expect((await readAll((await store.get('small')).stream)).toString()).toBe('abcd');
          await store.close();
        });

        it('without expectedSize aborts the multipart upload when the body fails', async () => {
          const { bucket, store } = await storeWithBucket();
          const body = Readable.from(
            (async function* () {
              yield Buffer.alloc(9 * 1024 * 1024, 1);
              throw new Error('broken after one part');
            })(),
          );
          await expect(store.put('mp-broken', body)).rejects.toThrow('broken after one part');
          expect(await rawKeys(raw, bucket)).toEqual([]);
          const uploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
          expect(uploads.Uploads ?? []).toEqual([]);
          await store.close();
        });
      });

      describe('get, stat, delete', () => {
        it('reports the whole object size for a ranged get and maps a missing key to BlobNotFoundError', async () => {
          const { store } = await storeWithBucket();
          await store.put('r', Readable.from([Buffer.from('0123456789')]), { expectedSize: 10 });
          const got = await store.get('r', { start: 2, end: 4 });
          expect((await readAll(got.stream)).toString()).toBe('234');
          expect(got.stat.size).toBe(10);
          await expect(store.get('nope')).rejects.toBeInstanceOf(BlobNotFoundError);
          expect(await store.stat('nope')).toBeNull();
          await store.delete('nope');
          await store.delete('r');
          await store.delete('r');
          expect(await store.stat('r')).toBeNull();
          await store.close();
        });
      });

      describe('construction and lifecycle', () => {
        it('refuses half-configured credentials', () => {
          expect(() => makeStore({ bucket: 'b-x', accessKeyId: 'id', secretAccessKey: '' })).toThrow(/together/);
          expect(() => makeStore({ bucket: '' })).toThrow(/bucket/);
        });

        it('has kind s3 and close is idempotent', async () => {
          const store = makeStore({ bucket: 'unused-bucket' });
          expect(store.kind).toBe('s3');
          await store.close();
          await store.close();
          await expect(store.stat('k')).rejects.toThrow(/closed/);
        });
      });
    });
  },
);
