/** Downloads: headers, Range, If-None-Match, HEAD, Content-Disposition, and the ZIP of a dropzone. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const CONTENT = 'The quick brown fox jumps over the lazy dog'; // 43 bytes

describeEachBackend('downloads', (b: BackendContext) => {
  let t: TestServer;
  let dzId: string;
  let fileId: string;
  let path: string;
  beforeAll(async () => {
    t = await b.start();
    dzId = (await t.createDropzone(t.adminKey))._id;
    fileId = (await t.upload(t.adminKey, dzId, 'fox.txt', CONTENT, 'text/plain')).fileId;
    path = `/files/${fileId}/download`;
  });
  afterAll(async () => {
    await t?.close();
  });
  const get = (headers: Record<string, string> = {}, method = 'GET') => t.req(method, path, { key: t.adminKey, headers });

  it('200 with Content-Type, Content-Length, Content-Disposition, ETag, Last-Modified, Accept-Ranges', async () => {
    const res = await get();
    expect(res.status).toBe(200);
    expect(res.text).toBe(CONTENT);
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(res.headers.get('content-length')).toBe(String(CONTENT.length));
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="fox.txt"; filename*=UTF-8''fox.txt`);
    expect(res.headers.get('etag')).toMatch(/^"[^"]+"$/);
    expect(Number.isNaN(Date.parse(res.headers.get('last-modified')!))).toBe(false);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
  });

  it.each([
    ['bytes=4-8', 4, 8],
    ['bytes=0-0', 0, 0],
    ['bytes=40-', 40, 42],
    ['bytes=-3', 40, 42],
    ['bytes=-100', 0, 42],
    ['bytes=10-1000', 10, 42],
  ])('Range %s → 206 with Content-Range', async (range, start, end) => {
    const res = await get({ range });
    expect(res.status).toBe(206);
    expect(res.text).toBe(CONTENT.slice(start, end + 1));
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${CONTENT.length}`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
  });

  it.each(['bytes=43-', 'bytes=100-200', 'bytes=-0'])('Range %s → 416 with bytes */size', async (range) => {
    const res = await get({ range });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe(`bytes */${CONTENT.length}`);
  });

  it('a malformed Range is ignored (200, whole body)', async () => {
    const res = await get({ range: 'pages=1-2' });
    expect(res.status).toBe(200);
    expect(res.text).toBe(CONTENT);
  });

  it('If-None-Match with the ETag → 304 without a body; another tag → 200', async () => {
    const etag = (await get()).headers.get('etag')!;
    const res = await get({ 'if-none-match': etag });
    expect(res.status).toBe(304);
    expect(res.text).toBe('');
    expect(res.headers.get('etag')).toBe(etag);
    expect((await get({ 'if-none-match': `W/${etag}` })).status).toBe(304);
    expect((await get({ 'if-none-match': `"other", ${etag}` })).status).toBe(304);
    const other = await get({ 'if-none-match': '"something-else"' });
    expect(other.status).toBe(200);
    expect(other.text).toBe(CONTENT);
  });

  it('If-Range with a stale validator serves the whole body', async () => {
    const res = await get({ range: 'bytes=0-2', 'if-range': '"stale"' });
    expect(res.status).toBe(200);
    expect(res.text).toBe(CONTENT);
    const etag = (await get()).headers.get('etag')!;
    expect((await get({ range: 'bytes=0-2', 'if-range': etag })).status).toBe(206);
  });

  it('HEAD → the headers without a body', async () => {
    const res = await get({}, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers.get('content-length')).toBe(String(CONTENT.length));
    expect(res.headers.get('etag')).toMatch(/^"/);
    const ranged = await get({ range: 'bytes=1-2' }, 'HEAD');
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 1-2/${CONTENT.length}`);
  });

  it('a pending file cannot be downloaded (409)', async () => {
    const up = await t.requestUpload(t.adminKey, dzId, 'p.txt', 3);
    const res = await t.req('GET', `/files/${up.fileId}/download`, { key: t.adminKey });
    expect(res.status).toBe(409);
    expect(res.body.status).toBe('error');
    await t.req('DELETE', `/files/${up.fileId}`, { key: t.adminKey });
  });

  it('Content-Disposition carries an RFC 6266 filename* for non-ASCII names and an ASCII fallback', async () => {
    const name = 'naïve résumé 😀 "q".pdf';
    const { fileId: id } = await t.upload(t.adminKey, dzId, name, 'x', 'application/pdf');
    const res = await t.req('GET', `/files/${id}/download`, { key: t.adminKey });
    const cd = res.headers.get('content-disposition')!;
    expect(cd).toMatch(/^attachment; /);
    const star = /filename\*=UTF-8''([^;\s]+)/.exec(cd)![1];
    expect(decodeURIComponent(star)).toBe(name);
    const fallback = /filename="([^"]*)"/.exec(cd)![1];
    expect(fallback).toMatch(/^[\x20-\x7e]+$/);
    expect(fallback).not.toContain('"');
    await t.req('DELETE', `/files/${id}`, { key: t.adminKey });
  });

  it('GET /dropzones/:id/zip: every uploaded file, duplicates made unique, exact Content-Length', async () => {
    const dz = (await t.createDropzone(t.adminKey, { gb: 1, days: 30, name: 'zipped' }))._id;
    const files: [string, string][] = [
      ['dup.txt', 'first'],
      ['dup.txt', 'second'],
      ['日本語.txt', 'unicode'],
      ['../evil.txt', 'traversal'],
    ];
    for (const [n, c] of files) await t.upload(t.adminKey, dz, n, c, 'text/plain');
    await t.requestUpload(t.adminKey, dz, 'pending.txt', 3); // not in the archive

    const head = await t.req('HEAD', `/dropzones/${dz}/zip`, { key: t.adminKey });
    expect(head.status).toBe(200);
    const res = await fetch(`${t.api}/dropzones/${dz}/zip`, { headers: { 'x-api-key': t.adminKey } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(res.headers.get('content-disposition')).toContain('zipped.zip');
    const buf = Buffer.from(await res.arrayBuffer());
    expect(res.headers.get('content-length')).toBe(String(buf.length));
    expect(head.headers.get('content-length')).toBe(String(buf.length));

    const dir = mkdtempSync(join(tmpdir(), 'dropzone-zip-'));
    try {
      const zipPath = join(dir, 'a.zip');
      writeFileSync(zipPath, buf);
      execFileSync('unzip', ['-tq', zipPath]); // CRCs and structure, exits non-zero on any error
      const py = `import json,sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nprint(json.dumps([[i.filename, z.read(i).decode()] for i in z.infolist()]))`;
      const entries = JSON.parse(execFileSync('python3', ['-c', py, zipPath], { encoding: 'utf8' })) as [string, string][];
      const names = entries.map((e) => e[0]);
      expect(new Set(names).size).toBe(4);
      expect(entries.map((e) => e[1]).sort()).toEqual(['first', 'second', 'traversal', 'unicode']);
      expect(names).toContain('dup.txt');
      expect(names).toContain('日本語.txt');
      for (const n of names) {
        expect(n.startsWith('/')).toBe(false);
        expect(n.split(/[\\/]/)).not.toContain('..');
      }
      expect(names.find((n) => n !== 'dup.txt' && n.includes('dup'))).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the ZIP of an empty dropzone is a valid empty archive', async () => {
    const dz = (await t.createDropzone(t.adminKey))._id;
    const res = await fetch(`${t.api}/dropzones/${dz}/zip`, { headers: { 'x-api-key': t.adminKey } });
    const buf = Buffer.from(await res.arrayBuffer());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(buf.length));
    expect(buf.subarray(0, 4).toString('hex')).toBe('504b0506'); // end of central directory only
  });
});

describeEachBackend('downloads in S3 redirect mode', (b: BackendContext) => {
  it('redirects to a presigned GET (S3) or streams (local)', async () => {
    const t = await b.start({ s3DownloadMode: 'redirect' });
    try {
      const dz = (await t.createDropzone(t.adminKey))._id;
      const { fileId } = await t.upload(t.adminKey, dz, 'r.txt', 'redirected', 'text/plain');
      const res = await t.req('GET', `/files/${fileId}/download`, { key: t.adminKey });
      if (t.backend === 's3') {
        expect(res.status).toBe(302);
        const follow = await fetch(res.headers.get('location')!);
        expect(await follow.text()).toBe('redirected');
      } else {
        expect(res.status).toBe(200);
        expect(res.text).toBe('redirected');
      }
    } finally {
      await t.close();
    }
  });
});
