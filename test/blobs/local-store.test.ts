import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, readdir, readFile, rm, mkdir, writeFile, symlink, lutimes, utimes, stat as fsStat, chmod } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobSizeError } from '../../src/blobs/blob-store.js';
import { createLocalBlobStore, isValidBlobKey, InvalidBlobKeyError, s3ErrorXml, type LocalBlobStore, type PresignedPutRequest } from '../../src/blobs/local-store.js';
import { manualClock, systemClock, type AdjustableClock } from '../../src/core/clock.js';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { handleBlobMultipart } from '../../src/http/routes/blob-multipart.js';
import { blobStoreContract, md5Etag, putPresigned, readAll } from './blob-store-contract.js';

const SECRET = 'test-secret-0123456789';

async function tempRoot(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'dz-blobs-'));
}

/**
 * Serves the store's `/_blobs` multipart protocol (every key admitted, no size limit) on a free port, so the contract's
 * presigned multipart URLs can be used with real HTTP requests; `baseUrl` is known once it listens.
 */
async function serveMultipart(store: LocalBlobStore): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Hono();
  app.all('/_blobs/*', (c) =>
    handleBlobMultipart(store, c.req.raw, { trustProxy: false, gate: async () => ({ ok: true }), stillWanted: async () => true }),
  );
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

blobStoreContract('local', async () => {
  const root = await tempRoot();
  let base = 'http://127.0.0.1:1';
  const store = createLocalBlobStore({ root, secret: SECRET, baseUrl: () => base, clock: systemClock() });
  const server = await serveMultipart(store);
  base = server.url;
  return {
    store,
    async teardown() {
      await server.close();
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
});

/** Builds the verifyPresignedPut input for the request a client would make with `url` and `headers`. */
function requestFor(url: string, headers: Record<string, string>, method = 'PUT'): PresignedPutRequest {
  const u = new URL(url);
  const lower: Record<string, string> = { host: u.host };
  for (const [n, v] of Object.entries(headers)) lower[n.toLowerCase()] = v;
  return { method, path: u.pathname, query: u.searchParams, header: (name) => lower[name.toLowerCase()] };
}

describe('local blob store', () => {
  let root: string;
  let clock: AdjustableClock;
  let store: LocalBlobStore;
  let base = 'http://127.0.0.1:8080';

  beforeEach(async () => {
    root = await tempRoot();
    clock = manualClock(Date.UTC(2026, 4, 1, 12));
    base = 'http://127.0.0.1:8080';
    store = createLocalBlobStore({ root, secret: SECRET, baseUrl: () => base, clock });
  });
  afterEach(async () => {
    await chmod(root, 0o755).catch(() => {});
    await rm(root, { recursive: true, force: true });
  });

  describe('presigned PUT URLs', () => {
    it('look like <baseUrl>/_blobs/<key>?X-Amz-… and list the headers to send', async () => {
      const req = await store.presignPut({ key: 'f/abc_1.bin', size: 42, contentType: 'text/plain', expiresInSeconds: 300 });
      const url = new URL(req.url);
      expect(url.origin + url.pathname).toBe('http://127.0.0.1:8080/_blobs/f/abc_1.bin');
      expect(req.headers).toEqual({ 'Content-Length': '42', 'Content-Type': 'text/plain' });
      expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
      expect(req.expiresAt).toBe(clock.now() + 300_000);
      expect(await store.presignGet({ key: 'f/abc_1.bin', expiresInSeconds: 60 })).toBeNull();
    });

    it('verifyPresignedPut accepts a fresh URL with matching headers', async () => {
      const req = await store.presignPut({ key: 'a/b', size: 5, contentType: 'image/png', expiresInSeconds: 300 });
      expect(store.verifyPresignedPut(requestFor(req.url, req.headers))).toEqual({ ok: true, key: 'a/b', size: 5, contentType: 'image/png' });
      const plain = await store.presignPut({ key: 'a/c', size: 0, expiresInSeconds: 300 });
      expect(store.verifyPresignedPut(requestFor(plain.url, { ...plain.headers, 'Content-Type': 'whatever/else' }))).toEqual({
        ok: true,
        key: 'a/c',
        size: 0,
      });
      clock.advance(300_000);
      expect(store.verifyPresignedPut(requestFor(req.url, req.headers)).ok).toBe(true);
    });

    it('works with a base URL that has a path prefix, also when a proxy strips it', async () => {
      base = 'https://files.example.com/dz';
      const req = await store.presignPut({ key: 'k1', size: 3, expiresInSeconds: 60 });
      expect(new URL(req.url).pathname).toBe('/dz/_blobs/k1');
      const r = requestFor(req.url, req.headers);
      expect(store.verifyPresignedPut(r)).toMatchObject({ ok: true, key: 'k1', size: 3 });
      expect(store.verifyPresignedPut({ ...r, path: '/_blobs/k1' })).toMatchObject({ ok: true, key: 'k1' });
    });

    describe('rejections', () => {
      let req: Awaited<ReturnType<LocalBlobStore['presignPut']>>;
      beforeEach(async () => {
        req = await store.presignPut({ key: 'up/one', size: 10, contentType: 'application/pdf', expiresInSeconds: 600 });
        expect(store.verifyPresignedPut(requestFor(req.url, req.headers)).ok).toBe(true);
      });
      const withQuery = (name: string, value: string | null) => {
        const u = new URL(req.url);
        if (value === null) u.searchParams.delete(name);
        else u.searchParams.set(name, value);
        return u.toString();
      };
      const expectFail = (r: PresignedPutRequest, status: number, code: string, message?: string) => {
        const res = store.verifyPresignedPut(r);
        expect(res).toMatchObject({ ok: false, status, code });
        if (message !== undefined && !res.ok) expect(res.message).toBe(message);
      };

      it('tampered signature', () => {
        const sig = new URL(req.url).searchParams.get('X-Amz-Signature')!;
        const other = (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1);
        expectFail(requestFor(withQuery('X-Amz-Signature', other), req.headers), 403, 'SignatureDoesNotMatch');
        expectFail(requestFor(withQuery('X-Amz-Signature', 'nothex'), req.headers), 403, 'SignatureDoesNotMatch');
      });
      it('tampered key path', () => {
        expectFail(requestFor(req.url.replace('/_blobs/up/one', '/_blobs/up/two'), req.headers), 403, 'SignatureDoesNotMatch');
        expectFail(requestFor(req.url.replace('/_blobs/up/one', '/_blobs/up/one/x'), req.headers), 403, 'SignatureDoesNotMatch');
        expectFail(requestFor(req.url.replace('/_blobs/up/one', '/_blobs/up/..%2Fone'), req.headers), 400, 'InvalidURI');
        expectFail(requestFor(req.url.replace('/_blobs/up/one', '/elsewhere/up/one'), req.headers), 400, 'InvalidURI');
      });
      it('changed X-Amz-Expires', () => {
        expectFail(requestFor(withQuery('X-Amz-Expires', '6000'), req.headers), 403, 'SignatureDoesNotMatch');
        expectFail(requestFor(withQuery('X-Amz-Expires', '604801'), req.headers), 400, 'AuthorizationQueryParametersError');
        expectFail(requestFor(withQuery('X-Amz-Expires', '-5'), req.headers), 400, 'AuthorizationQueryParametersError');
      });
      it('missing parameters', () => {
        expectFail(requestFor(withQuery('X-Amz-Credential', null), req.headers), 400, 'AuthorizationQueryParametersError');
        expectFail(requestFor('http://127.0.0.1:8080/_blobs/up/one', req.headers), 403, 'AccessDenied');
      });
      it('expired', () => {
        clock.advance(600_001);
        expectFail(requestFor(req.url, req.headers), 403, 'AccessDenied', 'Request has expired');
      });
      it('wrong method (GET on a PUT URL)', () => {
        expectFail(requestFor(req.url, req.headers, 'GET'), 403, 'SignatureDoesNotMatch');
        expectFail(requestFor(req.url, req.headers, 'POST'), 403, 'SignatureDoesNotMatch');
      });
      it('wrong or missing Content-Length', () => {
        expectFail(requestFor(req.url, { ...req.headers, 'Content-Length': '11' }), 403, 'SignatureDoesNotMatch');
        expectFail(requestFor(req.url, { 'Content-Type': 'application/pdf' }), 403, 'SignatureDoesNotMatch');
      });
      it('wrong or missing Content-Type', () => {
        expectFail(requestFor(req.url, { ...req.headers, 'Content-Type': 'text/html' }), 403, 'SignatureDoesNotMatch');
        expectFail(requestFor(req.url, { 'Content-Length': '10' }), 403, 'SignatureDoesNotMatch');
      });
      it('wrong host', () => {
        const r = requestFor(req.url, req.headers);
        expectFail({ ...r, header: (n) => (n === 'host' ? 'evil.example:8080' : r.header(n)) }, 403, 'SignatureDoesNotMatch');
      });
      it('a URL signed with another secret', async () => {
        const other = createLocalBlobStore({ root, secret: 'another-secret', baseUrl: () => base, clock });
        const foreign = await other.presignPut({ key: 'up/one', size: 10, contentType: 'application/pdf', expiresInSeconds: 600 });
        expectFail(requestFor(foreign.url, foreign.headers), 403, 'SignatureDoesNotMatch');
      });
    });

    it('end to end: a real HTTP PUT of a stream through a minimal upload endpoint', async () => {
      const server = uploadServer(store);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const data = Buffer.alloc(300_000, 'q');
        const req = await store.presignPut({ key: 'e2e/obj', size: data.length, contentType: 'application/zip', expiresInSeconds: 60 });
        const ok = await putPresigned(req, Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]));
        expect(ok.status).toBe(200);
        expect(ok.headers.get('etag')).toBe(md5Etag(data));
        expect(await store.stat('e2e/obj')).toMatchObject({ size: data.length, etag: md5Etag(data) });

        const small = await store.presignPut({ key: 'e2e/small', size: 4, expiresInSeconds: 60 });
        expect((await putPresigned(small, Buffer.from('abcd'))).status).toBe(200);
        expect((await readAll((await store.get('e2e/small')).stream)).toString()).toBe('abcd');

        // A URL whose key was changed: refused with an S3 error document, nothing stored.
        const bad = await putPresigned({ ...small, url: small.url.replace('e2e/small', 'e2e/bad') }, Buffer.from('abcd'));
        expect(bad.status).toBe(403);
        const xml = await bad.text();
        expect(xml).toContain('<Code>SignatureDoesNotMatch</Code>');
        expect(await store.stat('e2e/bad')).toBeNull();

        clock.advance(61_000);
        const late = await putPresigned(small, Buffer.from('abcd'));
        expect(late.status).toBe(403);
        expect(await late.text()).toContain('<Message>Request has expired</Message>');
      } finally {
        await new Promise((r) => server.close(r));
      }
    });
  });

  describe('keys', () => {
    it.each(['../x', '/abs', 'a//b', 'a/../b', 'a/./b', 'a/', '.hidden', '.tmp/x', '.meta/x', 'a b', 'a\\b', '', 'ä'])(
      'refuses %j everywhere',
      async (key) => {
        expect(isValidBlobKey(key)).toBe(false);
        await expect(store.put(key, Readable.from([Buffer.from('x')]))).rejects.toBeInstanceOf(InvalidBlobKeyError);
        await expect(store.get(key)).rejects.toBeInstanceOf(InvalidBlobKeyError);
        await expect(store.stat(key)).rejects.toBeInstanceOf(InvalidBlobKeyError);
        await expect(store.delete(key)).rejects.toBeInstanceOf(InvalidBlobKeyError);
        await expect(store.presignPut({ key, size: 1, expiresInSeconds: 60 })).rejects.toBeInstanceOf(InvalidBlobKeyError);
      },
    );

    it('accepts the server-generated shapes', () => {
      for (const key of ['a', 'files/2026/01/abc-DEF_123', 'x.y/z..w', '0/1/2']) expect(isValidBlobKey(key)).toBe(true);
    });

    it('stores under <root>/<key>, never outside, and takes keys only from callers (no API accepts a file name)', async () => {
      await store.put('dir/sub/file', Readable.from([Buffer.from('hello')]), { expectedSize: 5 });
      expect(await readFile(path.join(root, 'dir', 'sub', 'file'), 'utf8')).toBe('hello');
      const meta = JSON.parse(await readFile(path.join(root, '.meta', 'dir', 'sub', 'file.json'), 'utf8'));
      expect(meta.etag).toBe(md5Etag('hello'));
      // put/presignPut take only a key; no option names a client file name.
      expect(store.put.length).toBe(3);
      const presigned = await store.presignPut({ key: 'dir/x', size: 1, expiresInSeconds: 60, ...({ fileName: '../../etc/passwd' } as object) });
      expect(new URL(presigned.url).pathname).toBe('/_blobs/dir/x');
    });
  });

  describe('filesystem behaviour', () => {
    it('leaves no temp or meta files after failed puts', async () => {
      await expect(store.put('f/long', Readable.from([Buffer.alloc(20)]), { expectedSize: 10 })).rejects.toBeInstanceOf(BlobSizeError);
      await expect(store.put('f/short', Readable.from([Buffer.alloc(5)]), { expectedSize: 10 })).rejects.toBeInstanceOf(BlobSizeError);
      const broken = Readable.from(
        (async function* () {
          yield Buffer.alloc(3);
          throw new Error('gone');
        })(),
      );
      await expect(store.put('f/broken', broken, { expectedSize: 10 })).rejects.toThrow('gone');
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
      expect(await readdir(root)).not.toContain('f');
      await expect(readdir(path.join(root, '.meta', 'f'))).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('cleans up a sidecar when the rename into place fails', async () => {
      await store.put('clash/inner', Readable.from([Buffer.from('x')]), { expectedSize: 1 });
      // "clash" is a directory now, so an object named "clash" cannot be renamed into place.
      await expect(store.put('clash', Readable.from([Buffer.from('y')]), { expectedSize: 1 })).rejects.toThrow();
      await expect(fsStat(path.join(root, '.meta', 'clash.json'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
      expect(await store.stat('clash')).toBeNull();
    });

    it('uses the clock for lastModified and recomputes the etag when the sidecar is stale or missing', async () => {
      const put = await store.put('m/obj', Readable.from([Buffer.from('content')]), { expectedSize: 7 });
      expect(put.lastModified.getTime()).toBe(clock.now());
      await rm(path.join(root, '.meta', 'm', 'obj.json'));
      expect((await store.stat('m/obj'))?.etag).toBe(md5Etag('content'));
      // Replaced behind the store's back: the sidecar's inode no longer matches.
      await store.put('m/obj2', Readable.from([Buffer.from('other!!')]), { expectedSize: 7 });
      await rm(path.join(root, 'm', 'obj2'));
      await writeFile(path.join(root, 'm', 'obj2'), 'changed');
      expect((await store.stat('m/obj2'))?.etag).toBe(md5Etag('changed'));
    });

    it('delete removes the sidecar and prunes empty directories', async () => {
      await store.put('p/q/r', Readable.from([Buffer.from('1')]), { expectedSize: 1 });
      await store.delete('p/q/r');
      expect(await readdir(root)).not.toContain('p');
      await expect(readdir(path.join(root, '.meta', 'p'))).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('list skips .tmp, .meta, symlinks and names that are not keys', async () => {
      await store.put('real', Readable.from([Buffer.from('1')]), { expectedSize: 1 });
      await mkdir(path.join(root, '.tmp'), { recursive: true });
      await writeFile(path.join(root, '.tmp', 'junk.part'), 'x');
      await writeFile(path.join(root, 'bad name'), 'x');
      await symlink(path.join(root, 'real'), path.join(root, 'link'));
      const keys: string[] = [];
      for await (const e of store.list()) keys.push(e.key);
      expect(keys).toEqual(['real']);
    });

    it('get refuses ranges outside the object', async () => {
      await store.put('r', Readable.from([Buffer.from('0123456789')]), { expectedSize: 10 });
      await expect(store.get('r', { start: 5, end: 10 })).rejects.toBeInstanceOf(RangeError);
      await expect(store.get('r', { start: 6, end: 5 })).rejects.toBeInstanceOf(RangeError);
      expect((await readAll((await store.get('r', { start: 5, end: 9 })).stream)).toString()).toBe('56789');
    });

    it('cleanupTemp removes old leftovers (files, dirs, symlinks) without following links, keeps fresh ones', async () => {
      const tmp = path.join(root, '.tmp');
      await mkdir(tmp, { recursive: true });
      const outside = path.join(root, 'precious');
      await writeFile(outside, 'keep me');
      const old = new Date(clock.now() - 2 * 3600_000);
      const fresh = new Date(clock.now() - 60_000);

      await writeFile(path.join(tmp, 'stale.part'), 'x');
      await utimes(path.join(tmp, 'stale.part'), old, old);
      await mkdir(path.join(tmp, 'evil-dir', 'nested'), { recursive: true });
      await symlink(outside, path.join(tmp, 'evil-dir', 'nested', 'link-inside'));
      await utimes(path.join(tmp, 'evil-dir'), old, old);
      await symlink(outside, path.join(tmp, 'evil-link'));
      await lutimes(path.join(tmp, 'evil-link'), old, old);
      await symlink(root, path.join(tmp, 'evil-root-link'));
      await lutimes(path.join(tmp, 'evil-root-link'), old, old);
      await writeFile(path.join(tmp, '-rf\n*'), 'x');
      await utimes(path.join(tmp, '-rf\n*'), old, old);
      await writeFile(path.join(tmp, 'recent.part'), 'x');
      await utimes(path.join(tmp, 'recent.part'), fresh, fresh);

      expect(await store.cleanupTemp(3600_000)).toBe(5);
      expect(await readdir(tmp)).toEqual(['recent.part']);
      expect(await readFile(outside, 'utf8')).toBe('keep me');
      expect((await fsStat(root)).isDirectory()).toBe(true);
      expect(await store.cleanupTemp(0)).toBe(1);
    });

    it('cleanupTemp never removes the temp file of an upload in progress', async () => {
      const body = new Readable({ read() {} });
      const pending = store.put('slow', body, { expectedSize: 4 });
      body.push(Buffer.from('ab'));
      await new Promise((r) => setTimeout(r, 30));
      clock.advance(10 * 3600_000);
      expect(await store.cleanupTemp(0)).toBe(0);
      body.push(Buffer.from('cd'));
      body.push(null);
      expect((await pending).etag).toBe(md5Etag('abcd'));
    });

    it('check() fails with a clear error when the root is not writable', async () => {
      await store.check();
      if (process.getuid?.() === 0) return expect(true).toBe(true); // root ignores permissions
      await chmod(root, 0o500);
      await rm(path.join(root, '.tmp'), { recursive: true, force: true }).catch(() => {});
      const blocked = createLocalBlobStore({ root: path.join(root, 'sub'), secret: SECRET, baseUrl: () => base, clock });
      await expect(blocked.check()).rejects.toThrow(/not writable/);
    });

    it('close() is idempotent', async () => {
      await store.close();
      await expect(store.close()).resolves.toBeUndefined();
    });
  });

  it('s3ErrorXml escapes everything', () => {
    const xml = s3ErrorXml('Bad<Code>', 'a & b "c" \'d\' \u0001', '/_blobs/x?<y>', 'id&1');
    expect(xml).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
        '<Error><Code>Bad&lt;Code&gt;</Code><Message>a &amp; b &quot;c&quot; &apos;d&apos; \uFFFD</Message>' +
        '<Resource>/_blobs/x?&lt;y&gt;</Resource><RequestId>id&amp;1</RequestId></Error>',
    );
    expect(store.s3ErrorXml('C', 'M', 'R', 'I')).toBe(s3ErrorXml('C', 'M', 'R', 'I'));
  });

  describe('multipart uploads on disk', () => {
    /** Every file and directory under `dir`, relative, with its permission bits and whether it is a directory. */
    async function modes(dir: string): Promise<Array<[string, number, boolean]>> {
      const out: Array<[string, number, boolean]> = [];
      for (const name of await readdir(dir, { recursive: true })) {
        const st = await fsStat(path.join(dir, name));
        out.push([name, st.mode & 0o777, st.isDirectory()]);
      }
      return out;
    }

    it('keeps uploads in .mpu owner-only, binds an upload id to its key, and leaves nothing after completion', async () => {
      const mp = store.multipart;
      const id = await mp.create('f/mp');
      const part = await store.uploadPart('f/mp', id, 1, Readable.from([Buffer.from('part one')]), 8);
      expect(part).toEqual({ partNumber: 1, etag: md5Etag('part one'), size: 8 });
      const files = await modes(path.join(root, '.mpu'));
      expect(files.length).toBeGreaterThanOrEqual(3);
      for (const [name, mode, isDir] of files) expect([name, mode]).toEqual([name, isDir ? 0o700 : 0o600]);
      // another key cannot use (nor learn anything about) this upload
      await expect(mp.listParts('f/other', id)).rejects.toMatchObject({ code: 'NoSuchUpload' });
      await expect(store.uploadPart('f/other', id, 2, Readable.from([Buffer.from('x')]), 1)).rejects.toMatchObject({ code: 'NoSuchUpload' });
      await expect(mp.abort('f/other', id)).rejects.toMatchObject({ code: 'NoSuchUpload' });
      await expect(mp.complete('f/other', id, [{ partNumber: 1, etag: part.etag }])).rejects.toMatchObject({ code: 'NoSuchUpload' });
      // ids that are not this store's never reach the filesystem
      await expect(mp.listParts('f/mp', '../../etc')).rejects.toMatchObject({ code: 'NoSuchUpload' });

      const done = await mp.complete('f/mp', id, [{ partNumber: 1, etag: part.etag }]);
      expect((await fsStat(path.join(root, 'f', 'mp'))).mode & 0o777).toBe(0o600);
      expect(await readdir(path.join(root, '.mpu'))).toEqual([]);
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
      expect((await store.stat('f/mp'))?.etag).toBe(done.etag);
    });

    it('a part whose bytes arrive after an abort is not stored; wrong sizes store nothing', async () => {
      const mp = store.multipart;
      const id = await mp.create('f/late');
      await expect(store.uploadPart('f/late', id, 1, Readable.from([Buffer.alloc(5)]), 6)).rejects.toBeInstanceOf(BlobSizeError);
      await expect(store.uploadPart('f/late', id, 1, Readable.from([Buffer.alloc(7)]), 6)).rejects.toBeInstanceOf(BlobSizeError);
      await expect(store.uploadPart('f/late', id, 0, Readable.from([Buffer.alloc(6)]), 6)).rejects.toMatchObject({ code: 'InvalidArgument' });
      expect(await mp.listParts('f/late', id)).toEqual([]);
      const body = new PassThrough();
      const late = store.uploadPart('f/late', id, 1, body, 6);
      body.write(Buffer.alloc(3));
      await new Promise((r) => setTimeout(r, 20));
      await mp.abort('f/late', id);
      body.end(Buffer.alloc(3));
      await expect(late).rejects.toMatchObject({ code: 'NoSuchUpload' });
      expect(await readdir(path.join(root, '.mpu'))).toEqual([]);
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
    });

    it('staleUploads judges by the store clock and removes record-less crash leftovers', async () => {
      const mp = store.multipart;
      const id = await mp.create('f/stale');
      await mkdir(path.join(root, '.mpu', 'B'.repeat(32)), { mode: 0o700 }); // crashed between mkdir and the record
      await utimes(path.join(root, '.mpu', 'B'.repeat(32)), new Date(clock.now() - 7200_000), new Date(clock.now() - 7200_000));
      const stale = async (ms: number) => {
        const out = [];
        for await (const u of mp.staleUploads(new Date(ms))) out.push(u);
        return out;
      };
      expect(await stale(clock.now())).toEqual([]);
      expect(await readdir(path.join(root, '.mpu'))).toEqual([id]);
      clock.advance(3600_000);
      expect(await stale(clock.now())).toEqual([{ key: 'f/stale', uploadId: id, initiated: new Date(clock.now() - 3600_000) }]);
    });

    it('verifyPresignedMultipart tells the request kinds apart by the signed method and query', async () => {
      const mp = store.multipart;
      const id = await mp.create('f/kinds');
      const verdictOf = (req: { url: string; method: string; headers: Record<string, string> }) => store.verifyPresignedMultipart(requestFor(req.url, req.headers, req.method));
      expect(verdictOf(await mp.presignRequest({ op: 'create', key: 'f/kinds', contentType: 'text/csv' }, 60))).toEqual({ ok: true, key: 'f/kinds', op: 'create', contentType: 'text/csv' });
      const [p7] = await mp.presignParts('f/kinds', id, [7], 60);
      expect(verdictOf({ ...p7, headers: { 'content-length': '3' } })).toEqual({ ok: true, key: 'f/kinds', op: 'part', uploadId: id, partNumber: 7 });
      expect(verdictOf(await mp.presignRequest({ op: 'list', key: 'f/kinds', uploadId: id }, 60))).toMatchObject({ ok: true, op: 'list', uploadId: id });
      expect(verdictOf(await mp.presignRequest({ op: 'complete', key: 'f/kinds', uploadId: id }, 60))).toMatchObject({ ok: true, op: 'complete' });
      expect(verdictOf(await mp.presignRequest({ op: 'abort', key: 'f/kinds', uploadId: id }, 60))).toMatchObject({ ok: true, op: 'abort' });
      // a single-PUT URL is no multipart URL, and a multipart URL is no single-PUT URL
      const put = await store.presignPut({ key: 'f/kinds', size: 3, expiresInSeconds: 60 });
      expect(verdictOf(put)).toMatchObject({ ok: false, status: 403 });
      expect(store.verifyPresignedPut(requestFor(p7.url, { 'content-length': '3' }))).toMatchObject({ ok: false });
    });
  });
});

/** A stand-in for the real HTTP layer: verify, then stream the body into the store. */
function uploadServer(store: LocalBlobStore): Server {
  return createServer(async (req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    const verdict = store.verifyPresignedPut({
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      header: (name) => {
        const v = req.headers[name.toLowerCase()];
        return Array.isArray(v) ? v.join(',') : v;
      },
    });
    if (!verdict.ok) {
      res.writeHead(verdict.status, { 'content-type': 'application/xml', connection: 'close' });
      res.end(store.s3ErrorXml(verdict.code, verdict.message, url.pathname, 'req-1'));
      req.resume();
      return;
    }
    try {
      const stat = await store.put(verdict.key, req, { expectedSize: verdict.size, contentType: verdict.contentType });
      res.writeHead(200, { etag: stat.etag });
      res.end();
    } catch (err) {
      res.writeHead(err instanceof BlobSizeError ? 400 : 500, { connection: 'close' });
      res.end(String(err));
    }
  });
}
