/**
 * No answer hands a caller a credential worth more than what the caller holds (issue 8):
 * the dropzone `_id` (a credential under x-dropzone-id auth) goes only to owners and to callers who authenticated with it;
 * the page `code` / `uploadUrl` (which always allow uploading) only to callers who may upload.
 * Grantees name a dropzone by its `shareId`, which works in `/dropzones/:id…` paths under API-key permissions only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

describeEachBackend('credentials in answers', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  /** An owner's dropzone with one uploaded file, and a grantee holding exactly `perms` on it. */
  async function world(perms: string[]) {
    const owner = await t.createKey([], 50);
    const grantee = await t.createKey([], 50);
    const dz = await t.createDropzone(owner.secret, { gb: 1, days: 30, name: `w-${Math.random()}` });
    const { fileId } = await t.upload(owner.secret, dz._id, 'a.txt', 'hello', 'text/plain');
    if (perms.length) {
      const g = await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: owner.secret, body: { publicId: grantee.publicId, permissions: perms } });
      expect(g.status).toBe(200);
    }
    return { owner, grantee, dz, fileId };
  }

  /** True when `text` carries the dropzone's x-dropzone-id credential or its page code. */
  const leaks = (text: string, dz: { _id: string; code: string }) => ({ id: text.includes(dz._id), code: text.includes(dz.code) });

  it('the owner sees the credential _id, the code and a shareId; the _id still works as x-dropzone-id', async () => {
    const { owner, dz } = await world([]);
    expect(dz._id).toBeTruthy();
    expect(dz.code).toBeTruthy();
    expect(dz.shareId).toMatch(/^dzs_/);
    expect(dz.shareId).not.toBe(dz._id);
    const got = await t.req('GET', `/dropzones/${dz._id}`, { key: owner.secret });
    expect(got.body.data).toMatchObject({ _id: dz._id, code: dz.code, shareId: dz.shareId });
    expect((await t.req('GET', '/dropzone', { dropzoneId: dz._id })).body.data._id).toBe(dz._id);
    const listed = await t.req('GET', '/dropzones', { key: owner.secret });
    expect(listed.body.data.map((d: { _id: string }) => d._id)).toContain(dz._id);
  });

  for (const perms of [['dropzone.upload'], ['dropzone.zip'], ['dropzone.grant'], ['dropzone.download'], ['dropzone.list']]) {
    it(`GET /dropzones does not list a dropzone to a grantee holding only ${perms.join(', ')}`, async () => {
      const { grantee, dz } = await world(perms);
      const res = await t.req('GET', '/dropzones', { key: grantee.secret });
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual([]);
      expect(leaks(res.text, dz)).toEqual({ id: false, code: false });
    });
  }

  it('a dropzone.get grantee sees the shareId as _id, no code, no uploadUrl; the shareId is no x-dropzone-id credential', async () => {
    const { grantee, dz } = await world(['dropzone.get']);
    const listed = await t.req('GET', '/dropzones', { key: grantee.secret });
    expect(listed.body.data).toHaveLength(1);
    expect(leaks(listed.text, dz)).toEqual({ id: false, code: false });
    const view = listed.body.data[0];
    expect(view._id).toBe(dz.shareId);
    expect(view).not.toHaveProperty('code');
    expect(view).not.toHaveProperty('uploadUrl');
    expect(view).toMatchObject({ maxSize: dz.maxSize, name: dz.name });

    const got = await t.req('GET', `/dropzones/${dz.shareId}`, { key: grantee.secret });
    expect(got.status).toBe(200);
    expect(leaks(got.text, dz)).toEqual({ id: false, code: false });
    // the shareId is not a credential
    expect((await t.req('GET', '/dropzone', { dropzoneId: dz.shareId })).status).toBe(401);
    expect((await t.req('GET', '/files', { dropzoneId: dz.shareId })).status).toBe(401);
    expect((await t.req('GET', `/files/${'x'.repeat(22)}`, { dropzoneId: dz.shareId })).status).toBe(401);
    // …and without a grant it opens nothing
    const stranger = await t.createKey([], 0);
    expect((await t.req('GET', `/dropzones/${dz.shareId}`, { key: stranger.secret })).status).toBe(404);
  });

  it('a dropzone.list grantee lists files by shareId without learning the _id or the code', async () => {
    const { grantee, dz, fileId } = await world(['dropzone.list']);
    const res = await t.req('GET', `/dropzones/${dz.shareId}/files`, { key: grantee.secret });
    expect(res.status).toBe(200);
    expect(res.body.data.map((f: { _id: string }) => f._id)).toEqual([fileId]);
    expect(res.body.data[0].meta.dropZoneId).toBe(dz.shareId);
    expect(res.body.data[0].meta).not.toHaveProperty('dropZoneCode');
    expect(leaks(res.text, dz)).toEqual({ id: false, code: false });
  });

  it('an upload grantee gets an upload URL by shareId and the code, never the _id', async () => {
    const { grantee, dz } = await world(['dropzone.upload', 'dropzone.get']);
    const got = await t.req('GET', `/dropzones/${dz.shareId}`, { key: grantee.secret });
    expect(got.body.data).toMatchObject({ _id: dz.shareId, code: dz.code, uploadUrl: expect.stringContaining(dz.code) });
    expect(leaks(got.text, dz).id).toBe(false);
    const up = await t.req('POST', `/dropzones/${dz.shareId}/files`, { key: grantee.secret, body: { name: 'b.txt', type: 'text/plain', size: 2 } });
    expect(up.status).toBe(200);
    expect(leaks(up.text, dz).id).toBe(false);
    const put = await t.put(up.body.data, 'hi');
    expect(put.status).toBe(200);
    const conf = await t.req('POST', `/files/${up.body.data.fileId}/confirm`, { key: grantee.secret });
    expect(conf.status).toBe(200);
    expect(leaks(conf.text, dz).id).toBe(false);
  });

  it('an upload-only grantee (no get) also never sees the _id in the upload answer', async () => {
    const { grantee, dz } = await world(['dropzone.upload']);
    const up = await t.req('POST', `/dropzones/${dz.shareId}/files`, { key: grantee.secret, body: { name: 'b.txt', type: 'text/plain', size: 2 } });
    expect(up.status).toBe(200);
    expect(leaks(up.text, dz).id).toBe(false);
  });

  it('a key holding only file.get on one file learns neither the code nor the _id', async () => {
    const { owner, grantee, dz, fileId } = await world([]);
    const g = await t.req('POST', `/files/${fileId}/permissions`, { key: owner.secret, body: { publicId: grantee.publicId, permissions: ['file.get'] } });
    expect(g.status).toBe(200);
    const res = await t.req('GET', `/files/${fileId}`, { key: grantee.secret });
    expect(res.status).toBe(200);
    expect(res.body.data.meta).not.toHaveProperty('dropZoneCode');
    expect(res.body.data.meta).not.toHaveProperty('dropZoneId');
    expect(leaks(res.text, dz)).toEqual({ id: false, code: false });
  });

  it('anonymous callers where anyone holds file.get learn neither the code nor the _id', async () => {
    const { owner, dz, fileId } = await world([]);
    const g = await t.req('POST', `/files/${fileId}/permissions`, { key: owner.secret, body: { publicId: 'anyone', permissions: ['file.get'] } });
    expect(g.status).toBe(200);
    const res = await t.req('GET', `/files/${fileId}`);
    expect(res.status).toBe(200);
    expect(leaks(res.text, dz)).toEqual({ id: false, code: false });
  });

  it('x-dropzone-id callers keep seeing the _id they authenticated with, and the code', async () => {
    const { dz, fileId } = await world([]);
    const files = await t.req('GET', '/files', { dropzoneId: dz._id });
    expect(files.body.data[0].meta).toMatchObject({ dropZoneId: dz._id, dropZoneCode: dz.code });
    const one = await t.req('GET', `/files/${fileId}`, { dropzoneId: dz._id });
    expect(one.body.data.meta.dropZoneId).toBe(dz._id);
  });

  it('a dropzone.own grantee is an owner: it sees the _id', async () => {
    const { grantee, dz } = await world(['dropzone.own']);
    const got = await t.req('GET', `/dropzones/${dz.shareId}`, { key: grantee.secret });
    expect(got.body.data._id).toBe(dz._id);
  });
});

describeEachBackend('grant rules', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a dropzone.grant holder cannot revoke a permission it does not hold from another grantee', async () => {
    const owner = await t.createKey([], 50);
    const granter = await t.createKey([], 0);
    const victim = await t.createKey([], 0);
    const dz = await t.createDropzone(owner.secret);
    await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: owner.secret, body: { publicId: granter.publicId, permissions: ['dropzone.grant', 'dropzone.get'] } });
    await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: owner.secret, body: { publicId: victim.publicId, permissions: ['dropzone.list', 'dropzone.get'] } });
    const revoke = await t.req('DELETE', `/dropzones/${dz.shareId}/permissions`, { key: granter.secret, body: { publicId: victim.publicId, permissions: ['dropzone.list'] } });
    expect(revoke.status).toBe(403);
    expect(revoke.body.data).toMatchObject({ permission: 'dropzone.list' });
    // what it holds, it may revoke
    const ok = await t.req('DELETE', `/dropzones/${dz.shareId}/permissions`, { key: granter.secret, body: { publicId: victim.publicId, permissions: ['dropzone.get'] } });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toEqual(['dropzone.list']);
  });

  it('the same rule holds on files', async () => {
    const owner = await t.createKey([], 50);
    const granter = await t.createKey([], 0);
    const victim = await t.createKey([], 0);
    const dz = await t.createDropzone(owner.secret);
    const { fileId } = await t.upload(owner.secret, dz._id, 'a.txt', 'x');
    await t.req('POST', `/files/${fileId}/permissions`, { key: owner.secret, body: { publicId: granter.publicId, permissions: ['file.grant', 'file.get'] } });
    await t.req('POST', `/files/${fileId}/permissions`, { key: owner.secret, body: { publicId: victim.publicId, permissions: ['file.download'] } });
    const revoke = await t.req('DELETE', `/files/${fileId}/permissions`, { key: granter.secret, body: { publicId: victim.publicId, permissions: ['file.download'] } });
    expect(revoke.status).toBe(403);
  });

  it('anonymous callers never see who else holds grants, even where anyone holds dropzone.grant', async () => {
    const owner = await t.createKey([], 50);
    const grantee = await t.createKey([], 0);
    const dz = await t.createDropzone(owner.secret);
    await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: owner.secret, body: { publicId: grantee.publicId, permissions: ['dropzone.list'] } });
    await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: owner.secret, body: { publicId: 'anyone', permissions: ['dropzone.grant', 'dropzone.get'] } });
    const res = await t.req('GET', `/dropzones/${dz.shareId}/permissions`);
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual(['dropzone.get', 'dropzone.grant']);
    expect(res.body).not.toHaveProperty('grants');
    expect(res.text).not.toContain(grantee.publicId);
    expect((await t.req('GET', `/dropzones/${dz.shareId}/permissions?publicId=${grantee.publicId}`)).status).toBe(401);
    // a caller with an API key that holds dropzone.grant (here through anyone) does see them
    const keyed = await t.req('GET', `/dropzones/${dz.shareId}/permissions`, { key: grantee.secret });
    expect(keyed.body.grants).toEqual(expect.arrayContaining([{ publicId: grantee.publicId, permissions: ['dropzone.list'] }]));
  });
});

describe('GB-month transfers', () => {
  let t: TestServer;
  beforeAll(async () => {
    const { startTestServer } = await import('../helpers/server.js');
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a transfer to an unlimited key is refused and the sender keeps its balance', async () => {
    const sender = await t.createKey(['apikey.create'], 5);
    const admin = await t.req('GET', '/apikeys/me', { key: t.adminKey });
    expect(admin.body.data.gbMonths).toBeNull();
    const res = await t.req('POST', `/apikeys/${admin.body.data.publicId}/transfer-gbmonths`, { key: sender.secret, body: { gbMonths: 2 } });
    expect(res.status).toBe(409);
    expect(res.body.message).toMatch(/unlimited/);
    expect((await t.req('GET', '/apikeys/me', { key: sender.secret })).body.data.gbMonths).toBe(5);
  });
});
