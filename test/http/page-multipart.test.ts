/**
 * The dropzone page's multipart routes (`/d/:code/api/uploads/:fileId/multipart…`): the page sends big files in parts
 * through the core multipart service, lent the dropzone principal only for files of its own dropzone. On every backend.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const MIB = 1024 * 1024;

describeEachBackend('page multipart API', (b: BackendContext) => {
  let t: TestServer;
  let dz: any;
  let other: any;
  let token: string;
  let otherToken: string;
  const tokenOf = async (url: string) => {
    const html = await (await fetch(url)).text();
    return JSON.parse(/<script type="application\/json" id="dz-config">([^<]*)<\/script>/.exec(html)![1]).token as string;
  };
  beforeAll(async () => {
    t = await b.start();
    dz = await t.createDropzone(t.adminKey, { gb: 1, days: 30, name: 'page-mp' });
    other = await t.createDropzone(t.adminKey, { gb: 1, days: 30, name: 'page-mp-other' });
    token = await tokenOf(dz.uploadUrl);
    otherToken = await tokenOf(other.uploadUrl);
  });
  afterAll(async () => {
    await t?.close();
  });

  const page = async (code: string, tok: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${t.url}/d/${code}/api/${path}`, {
      method,
      headers: { authorization: `Bearer ${tok}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
  };

  it('reserves, starts, signs, lists and completes a big file in parts; the file is then uploaded with its exact bytes', async () => {
    const size = 5 * MIB + 321;
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i += 32) createHash('sha256').update(String(i)).digest().copy(data, i);
    const up = await page(dz.code, token, 'POST', 'uploads', { name: 'big.bin', type: 'application/octet-stream', size });
    expect(up.status, up.text).toBe(200);
    const fileId = up.body.data.fileId;
    const started = await page(dz.code, token, 'POST', `uploads/${fileId}/multipart`);
    expect(started.status, started.text).toBe(200);
    expect(started.body.data).toMatchObject({ partSize: 5 * MIB, partCount: 2 });
    const uploadId = started.body.data.uploadId;
    // again (a reload): the same upload
    expect((await page(dz.code, token, 'POST', `uploads/${fileId}/multipart`)).body.data.uploadId).toBe(uploadId);
    const mp = `uploads/${fileId}/multipart/${encodeURIComponent(uploadId)}`;
    const signed = await page(dz.code, token, 'POST', `${mp}/sign`, { partNumbers: [1, 2] });
    expect(signed.status, signed.text).toBe(200);
    const etags: string[] = [];
    for (const [i, s] of signed.body.data.parts.entries()) {
      const res = await fetch(s.url, { method: 'PUT', headers: s.headers, body: new Uint8Array(i === 0 ? data.subarray(0, 5 * MIB) : data.subarray(5 * MIB)) });
      expect(res.status).toBe(200);
      etags.push(res.headers.get('etag')!);
      await res.arrayBuffer();
    }
    const listed = await page(dz.code, token, 'GET', mp);
    expect(listed.body.data.parts.map((p: any) => [p.PartNumber, p.ETag, p.Size])).toEqual([
      [1, etags[0], 5 * MIB],
      [2, etags[1], 321],
    ]);
    const done = await page(dz.code, token, 'POST', `${mp}/complete`, { parts: [1, 2].map((n) => ({ PartNumber: n, ETag: etags[n - 1] })) });
    expect(done.status, done.text).toBe(200);
    expect(done.body.data.file).toMatchObject({ _id: fileId, size, status: 'uploaded' });
    expect(done.text).not.toContain(dz._id);
    const got = Buffer.from(await (await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': t.adminKey } })).arrayBuffer());
    expect(got.equals(data)).toBe(true);
  });

  it("another dropzone's page cannot touch the upload; a foreign upload id is NO_SUCH_UPLOAD; no token is 401", async () => {
    const up = await page(dz.code, token, 'POST', 'uploads', { name: 'mine.bin', type: '', size: 6 * MIB });
    const fileId = up.body.data.fileId;
    const uploadId = (await page(dz.code, token, 'POST', `uploads/${fileId}/multipart`)).body.data.uploadId;
    const mp = `uploads/${fileId}/multipart/${encodeURIComponent(uploadId)}`;
    expect((await page(other.code, otherToken, 'POST', `uploads/${fileId}/multipart`)).status).toBe(404);
    expect((await page(other.code, otherToken, 'GET', mp)).status).toBe(404);
    expect((await page(other.code, otherToken, 'POST', `${mp}/sign`, { partNumbers: [1] })).status).toBe(404);
    expect((await page(other.code, otherToken, 'POST', `${mp}/complete`, { parts: [{ PartNumber: 1, ETag: '"x"' }] })).status).toBe(404);
    // the other dropzone's token on this dropzone's code: refused
    expect((await page(dz.code, otherToken, 'GET', mp)).status).toBe(401);
    const foreign = await page(dz.code, token, 'GET', `uploads/${fileId}/multipart/not-the-upload`);
    expect(foreign.status).toBe(404);
    expect(foreign.body.code).toBe('NO_SUCH_UPLOAD');
    expect((await page(dz.code, token, 'POST', `${mp}/sign`, { partNumbers: [0] })).status).toBe(400);
  });
});
