/** Every endpoint of both API generations, the full flow with a real PUT, and the SDK-compatibility shapes. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const DROPZONE_FIELDS = [
  '_id', 'name', 'tier', 'hidden', 'createdAt', 'updatedAt', 'code', 'maxDuration', 'maxSize', 'maxFileSize',
  'usedSpace', 'deleteTime', 'uploadUrl', 'maxSizeGb', 'maxDurationDays',
];

function expectDropzoneShape(t: TestServer, dz: any) {
  for (const f of DROPZONE_FIELDS) expect(dz, `Dropzone.${f}`).toHaveProperty(f);
  expect(dz.uploadUrl).toBe(`${t.url}/d/${dz.code}`);
  expect(new Date(dz.createdAt).toISOString()).toBe(dz.createdAt);
  expect(new Date(dz.updatedAt).toISOString()).toBe(dz.updatedAt);
  // at least 128 random bits, URL-safe
  expect(dz._id).toMatch(/^[A-Za-z0-9_-]{22,}$/);
  expect(dz.maxSize).toBe(Math.round(dz.maxSizeGb * 1e9));
  expect(dz.maxDuration).toBe(dz.maxDurationDays * 86_400_000);
  expect(dz.deleteTime).toBe(Date.parse(dz.createdAt) + dz.maxDuration);
}

function expectFileShape(f: any, name: string, size: number, type: string, status: 'pending' | 'uploaded') {
  expect(f).toMatchObject({ size, type, name, meta: { s3Status: status } });
  expect(typeof f._id).toBe('string');
  expect(typeof f.meta.dropZoneCode).toBe('string');
  expect(new Date(f.meta.createdAt).toISOString()).toBe(f.meta.createdAt);
}

describeEachBackend('HTTP API: endpoints and flow', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('first generation (x-dropzone-id): GET /dropzone, GET/POST /files, PUT, confirm, get, download, delete', async () => {
    const dz = await t.createDropzone(t.adminKey, { gb: 1, days: 30, name: 'gen1' });
    const id = dz._id;

    const got = await t.req('GET', '/dropzone', { dropzoneId: id });
    expect(got.status).toBe(200);
    expect(got.body.status).toBe('success');
    expectDropzoneShape(t, got.body.data);
    expect(got.body.data._id).toBe(id);

    const empty = await t.req('GET', '/files', { dropzoneId: id });
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({ status: 'success', data: [] });

    const content = 'hello, first generation';
    const ask = await t.req('POST', '/files', { dropzoneId: id, body: { name: 'hello.txt', type: 'text/plain', size: content.length } });
    expect(ask.status).toBe(200);
    expect(ask.body.status).toBe('success');
    const up = ask.body.data;
    expect(up).toMatchObject({ method: 'PUT' });
    expect(typeof up.fileId).toBe('string');
    expect(typeof up.expiresAt).toBe('number');
    expectFileShape(up.file, 'hello.txt', content.length, 'text/plain', 'pending');
    if (b.name === 'local') {
      const u = new URL(up.signedUrl);
      expect(u.origin).toBe(t.url);
      for (const p of ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'])
        expect(u.searchParams.get(p), p).toBeTruthy();
    }
    // the file's bytes plus its overhead: 1000 + UTF-8 bytes of name and type
    expect((await t.req('GET', '/dropzone', { dropzoneId: id })).body.data.usedSpace).toBe(content.length + 1000 + 'hello.txt'.length + 'text/plain'.length);

    const put = await t.put(up, content);
    expect(put.status).toBe(200);
    expect(put.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);

    const conf = await t.req('POST', `/files/${up.fileId}/confirm`, { dropzoneId: id });
    expect(conf.status).toBe(200);
    // both the seed's bare FileItem and the SDK's `.data`
    expectFileShape(conf.body, 'hello.txt', content.length, 'text/plain', 'uploaded');
    expectFileShape(conf.body.data, 'hello.txt', content.length, 'text/plain', 'uploaded');
    expect(conf.body.status).toBe('success');
    expect(conf.body._id).toBe(up.fileId);

    const file = await t.req('GET', `/files/${up.fileId}`, { dropzoneId: id });
    expect(file.status).toBe(200);
    expectFileShape(file.body, 'hello.txt', content.length, 'text/plain', 'uploaded');
    expect(file.body.data._id).toBe(up.fileId);
    expect(file.body.data.meta.dropZoneId).toBe(id);

    const list = await t.req('GET', '/files', { dropzoneId: id });
    expect(list.body.data.map((f: any) => f._id)).toEqual([up.fileId]);

    const dl = await t.req('GET', `/files/${up.fileId}/download`, { dropzoneId: id });
    expect(dl.status).toBe(200);
    expect(dl.text).toBe(content);

    const del = await t.req('DELETE', `/files/${up.fileId}`, { dropzoneId: id });
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ status: 'success', message: 'File deleted successfully.' });
    expect((await t.req('GET', `/files/${up.fileId}`, { dropzoneId: id })).status).toBe(404);
    expect((await t.req('GET', '/dropzone', { dropzoneId: id })).body.data.usedSpace).toBe(0);
  });

  it('first generation errors: JSON error bodies, 401 without or with an unknown id, 400 for a key on /files, 404 across dropzones', async () => {
    const noId = await t.req('GET', '/dropzone');
    expect(noId.status).toBe(401);
    expect(noId.body).toMatchObject({ status: 'error' });
    expect(typeof noId.body.message).toBe('string');

    const unknown = await t.req('GET', '/files', { dropzoneId: 'A'.repeat(32) });
    expect(unknown.status).toBe(401);
    expect(unknown.body.status).toBe('error');

    const withKey = await t.req('GET', '/files', { key: t.adminKey });
    expect(withKey.status).toBe(400);
    expect(withKey.body.message).toMatch(/Missing dropzoneId/);

    const a = await t.createDropzone(t.adminKey);
    const other = await t.createDropzone(t.adminKey);
    const { fileId } = await t.upload({ dropzoneId: a._id }, a._id, 'a.bin', 'abc');
    for (const [method, path] of [
      ['GET', `/files/${fileId}`],
      ['GET', `/files/${fileId}/download`],
      ['POST', `/files/${fileId}/confirm`],
      ['DELETE', `/files/${fileId}`],
    ] as const) {
      const res = await t.req(method, path, { dropzoneId: other._id });
      expect(res.status, `${method} ${path} with another dropzone's id`).toBe(404);
      expect(res.body.status).toBe('error');
    }
    expect((await t.req('GET', `/files/${fileId}`, { dropzoneId: a._id })).status).toBe(200);
  });

  it('second generation (api key, x-api-key and Bearer): every endpoint through the whole flow', async () => {
    const key = await t.createKey(['apikey.create'], 100);
    for (const bearer of [false, true]) {
      const o = { key: key.secret, bearer };
      const me = await t.req('GET', '/apikeys/me', o);
      expect(me.status).toBe(200);
      expect(me.body.data).toMatchObject({ publicId: key.publicId, permissions: ['apikey.create'], admin: false });
      expect(me.body.data).not.toHaveProperty('key');

      const created = await t.req('POST', '/dropzones', { ...o, body: { gb: 1, days: 30, name: `gen2-${bearer}` } });
      expect(created.status).toBe(201);
      expect(created.body.status).toBe('success');
      const dz = created.body.data;
      expectDropzoneShape(t, dz);
      expect(dz.name).toBe(`gen2-${bearer}`);

      const listed = await t.req('GET', '/dropzones', o);
      expect(listed.status).toBe(200);
      expect(listed.body.data.map((d: any) => d._id)).toContain(dz._id);

      expect((await t.req('GET', `/dropzones/${dz._id}`, o)).body.data._id).toBe(dz._id);
      const patched = await t.req('PATCH', `/dropzones/${dz._id}`, { ...o, body: { days: 40 } });
      expect(patched.status).toBe(200);
      expect(patched.body.data.maxDurationDays).toBe(40);
      const put = await t.req('PUT', `/dropzones/${dz._id}`, { ...o, body: { gb: 2 } });
      expect(put.status).toBe(200);
      expect(put.body.data).toMatchObject({ maxSizeGb: 2, maxDurationDays: 40, maxSize: 2e9 });

      expect((await t.req('GET', `/dropzones/${dz._id}/files`, o)).body).toEqual({ status: 'success', data: [] });
      const bytes = 'second generation bytes';
      const ask = await t.req('POST', `/dropzones/${dz._id}/files`, { ...o, body: { name: 'two.txt', type: 'text/plain', size: bytes.length } });
      expect(ask.status).toBe(200);
      const up = ask.body.data;
      expectFileShape(up.file, 'two.txt', bytes.length, 'text/plain', 'pending');
      expect((await t.put(up, bytes)).status).toBe(200);
      const conf = await t.req('POST', `/files/${up.fileId}/confirm`, o);
      expect(conf.status).toBe(200);
      expectFileShape(conf.body.data, 'two.txt', bytes.length, 'text/plain', 'uploaded');
      expect(conf.body.meta.dropZoneId).toBe(dz._id);

      expect((await t.req('GET', `/files/${up.fileId}`, o)).body.name).toBe('two.txt');
      expect((await t.req('GET', `/dropzones/${dz._id}/files`, o)).body.data).toHaveLength(1);
      expect((await t.req('GET', `/files/${up.fileId}/download`, o)).text).toBe(bytes);

      // permissions on both resources
      expect((await t.req('GET', `/dropzones/${dz._id}/permissions`, o)).body.data).toContain('dropzone.own');
      expect((await t.req('GET', `/files/${up.fileId}/permissions`, o)).body.data).toContain('file.own');
      const g = await t.req('POST', `/files/${up.fileId}/permissions`, { ...o, body: { publicId: 'anyone', permissions: ['file.download'] } });
      expect(g.status).toBe(200);
      expect(g.body.data).toEqual(['file.download']);
      const cdn = await t.req('GET', `//cdn/${up.fileId}/download`);
      expect(cdn.status).toBe(200);
      expect(cdn.text).toBe(bytes);
      expect((await t.req('GET', `/cdn/${up.fileId}/download`)).text).toBe(bytes);
      const r = await t.req('DELETE', `/files/${up.fileId}/permissions`, { ...o, body: { publicId: 'anyone', permissions: ['file.download'] } });
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual([]);
      expect((await t.req('GET', `//cdn/${up.fileId}/download`)).status).toBe(404);
      const gd = await t.req('POST', `/dropzones/${dz._id}/permissions`, { ...o, body: { publicId: 'anyone', permissions: ['dropzone.get'] } });
      expect(gd.body.data).toEqual(['dropzone.get']);
      expect((await t.req('GET', `/dropzones/${dz._id}`)).status).toBe(200);
      const rd = await t.req('DELETE', `/dropzones/${dz._id}/permissions`, { ...o, body: { publicId: 'anyone', permissions: ['dropzone.get'] } });
      expect(rd.body.data).toEqual([]);
      expect((await t.req('GET', `/dropzones/${dz._id}`)).status).toBe(401);

      const zip = await t.req('GET', `/dropzones/${dz._id}/zip`, o);
      expect(zip.status).toBe(200);
      expect(zip.headers.get('content-type')).toBe('application/zip');

      const keysBefore = await t.blobKeys();
      expect(keysBefore.length).toBeGreaterThan(0);
      const del = await t.req('DELETE', `/dropzones/${dz._id}`, o);
      expect(del.status).toBe(200);
      expect(del.body.status).toBe('success');
      expect((await t.req('GET', `/dropzones/${dz._id}`, o)).status).toBe(404);
      expect((await t.req('GET', `/files/${up.fileId}`, o)).status).toBe(404);
      // the dropzone's one blob is gone, the others stay
      const keysAfter = await t.blobKeys();
      expect(keysAfter).toHaveLength(keysBefore.length - 1);
      for (const k of keysAfter) expect(keysBefore).toContain(k);
    }
  });

  it('POST /files/:id/confirm works with Content-Type: application/json and an empty body', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const up = await t.requestUpload(t.adminKey, dz._id, 'e.txt', 3, 'text/plain');
    expect((await t.put(up, 'abc')).status).toBe(200);
    const res = await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey, rawBody: '' });
    expect(res.status).toBe(200);
    expect(res.body.meta.s3Status).toBe('uploaded');
    const again = await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey, rawBody: '{}' });
    expect(again.status).toBe(200);
    expect(again.body.data).toEqual(res.body.data);
  });

  it('unknown routes and wrong credentials answer in the error shape', async () => {
    const nf = await t.req('GET', '/no/such/route', { key: t.adminKey });
    expect(nf.status).toBe(404);
    expect(nf.body).toMatchObject({ status: 'error' });
    const bad = await t.req('GET', '/apikeys/me', { key: 'dzk_wrong' });
    expect(bad.status).toBe(401);
    expect(bad.body).toMatchObject({ status: 'error', message: expect.any(String) });
    const badBearer = await t.req('GET', '/dropzones', { key: 'dzk_wrong', bearer: true });
    expect(badBearer.status).toBe(401);
    expect((await t.req('GET', '/dropzones')).status).toBe(401);
  });
});

describeEachBackend('HTTP API: operator settings', (b: BackendContext) => {
  it('security.dropzoneIdAuth = false turns x-dropzone-id off (401) while api keys keep working', async () => {
    const t = await b.start({ settings: { 'security.dropzoneIdAuth': false } });
    try {
      const dz = await t.createDropzone(t.adminKey);
      const res = await t.req('GET', '/dropzone', { dropzoneId: dz._id });
      expect(res.status).toBe(401);
      expect(res.body.message).toMatch(/disabled/);
      expect((await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey })).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
