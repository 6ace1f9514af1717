/** Expiry of dropzones and of pending uploads, driven by the injected clock and explicit sweeps. */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const DAY = 86_400_000;

describeEachBackend('expiry driven by the injected clock', (b: BackendContext) => {
  let t: TestServer;
  beforeEach(async () => {
    t = await b.start({ settings: { 'uploads.pendingTtlSeconds': 600, 'uploads.urlTtlSeconds': 300 } });
  });
  afterEach(async () => {
    await t?.close();
  });

  /** What a file costs in usedSpace: size + 1000 + UTF-8 bytes of name and type (requestUpload's default type). */
  const cost = (size: number, name: string, type = 'application/octet-stream') => size + 1000 + Buffer.byteLength(name) + Buffer.byteLength(type);
  const usedSpace = async (id: string) => (await t.req('GET', `/dropzones/${id}`, { key: t.adminKey })).body.data.usedSpace;

  it('a pending upload not confirmed in time is removed by the sweeper and its bytes released', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const stale = await t.requestUpload(t.adminKey, dz._id, 'stale.bin', 1000);
    t.clock.advance(300_000);
    const young = await t.requestUpload(t.adminKey, dz._id, 'young.bin', 500);
    expect(await usedSpace(dz._id)).toBe(cost(1000, 'stale.bin') + cost(500, 'young.bin'));

    // nothing is due yet
    expect((await t.server.app.ctx.sweeper.sweep()).stalePending).toBe(0);
    expect(await usedSpace(dz._id)).toBe(cost(1000, 'stale.bin') + cost(500, 'young.bin'));

    t.clock.advance(300_001); // stale is 600.001 s old, young 300.001 s
    const swept = await t.server.app.ctx.sweeper.sweep();
    expect(swept.stalePending).toBe(1);
    expect(await usedSpace(dz._id)).toBe(cost(500, 'young.bin'));
    expect((await t.req('GET', `/files/${stale.fileId}`, { key: t.adminKey })).status).toBe(404);
    expect((await t.req('GET', `/files/${young.fileId}`, { key: t.adminKey })).status).toBe(200);
    const files = (await t.req('GET', `/dropzones/${dz._id}/files`, { key: t.adminKey })).body.data;
    expect(files.map((f: any) => f._id)).toEqual([young.fileId]);
  });

  it('creating by a name whose dropzone expired (not yet swept) makes a fresh dropzone instead of 410', async () => {
    const first = (await t.req('POST', '/dropzones', { key: t.adminKey, body: { gb: 1, days: 30, name: 'weekly' } })).body.data;
    t.clock.advance(31 * DAY);
    const res = await t.req('POST', '/dropzones', { key: t.adminKey, body: { gb: 1, days: 30, name: 'weekly' } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.data._id).not.toBe(first._id);
    // the next create by that name updates the fresh one
    const again = await t.req('POST', '/dropzones', { key: t.adminKey, body: { gb: 2, days: 30, name: 'weekly' } });
    expect(again.status).toBe(200);
    expect(again.body.data._id).toBe(res.body.data._id);
  });

  it('bytes PUT but never confirmed are deleted with the stale pending upload', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const up = await t.requestUpload(t.adminKey, dz._id, 'unconfirmed.bin', 10);
    expect((await t.put(up, '0123456789')).status).toBe(200);
    expect(await t.blobKeys()).toHaveLength(1);
    t.clock.advance(600_000);
    expect((await t.server.app.ctx.sweeper.sweep()).stalePending).toBe(1);
    expect(await t.blobKeys()).toEqual([]);
    expect(await usedSpace(dz._id)).toBe(0);
  });

  it('confirming an expired pending upload (before any sweep) is 410 and releases its bytes', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const up = await t.requestUpload(t.adminKey, dz._id, 'late.bin', 10);
    expect((await t.put(up, '0123456789')).status).toBe(200);
    t.clock.advance(600_000);
    const res = await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey });
    expect(res.status).toBe(410);
    expect(res.body.message).toMatch(/expired/);
    expect(await usedSpace(dz._id)).toBe(0);
    expect((await t.req('GET', `/files/${up.fileId}`, { key: t.adminKey })).status).toBe(404);
    expect(await t.blobKeys()).toEqual([]);
  });

  it('confirmed files are not swept as pending', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const { fileId } = await t.upload(t.adminKey, dz._id, 'kept.txt', 'kept');
    t.clock.advance(3600_000);
    expect((await t.server.app.ctx.sweeper.sweep()).stalePending).toBe(0);
    expect((await t.req('GET', `/files/${fileId}/download`, { key: t.adminKey })).text).toBe('kept');
    expect(await usedSpace(dz._id)).toBe(cost(4, 'kept.txt'));
  });

  it('after deleteTime a dropzone refuses uploads (410), and the sweep deletes it with its files and blobs', async () => {
    const dz = await t.createDropzone(t.adminKey, { gb: 1, days: 30 });
    const keep = await t.createDropzone(t.adminKey, { gb: 1, days: 60 });
    const { fileId } = await t.upload(t.adminKey, dz._id, 'a.txt', 'soon gone');
    const other = await t.upload(t.adminKey, keep._id, 'b.txt', 'stays');
    const pending = await t.requestUpload(t.adminKey, dz._id, 'p.txt', 3);
    expect(await t.blobKeys()).toHaveLength(2);

    t.clock.advance(30 * DAY - 1);
    expect((await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'x', size: 1 } })).status).toBe(200);
    t.clock.advance(1); // now == deleteTime
    const late = await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'x', size: 1 } });
    expect(late.status).toBe(410);
    expect(late.body.status).toBe('error');
    expect((await t.req('POST', '/files', { dropzoneId: dz._id, body: { name: 'x', size: 1 } })).status).toBe(410);
    expect((await t.req('PATCH', `/dropzones/${dz._id}`, { key: t.adminKey, body: { days: 90 } })).status).toBe(410);
    // a URL handed out before cannot be used any more on the local store (S3 checks expiry against real time,
    // not the injected clock, so there a late PUT may land; the sweep below must remove that object too)
    const put = await t.put(pending, 'abc');
    if (t.backend === 'local') expect(put.status).toBe(403);

    const swept = await t.server.app.ctx.sweeper.sweep();
    expect(swept.expiredDropzones).toBe(1);
    expect((await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey })).status).toBe(404);
    expect((await t.req('GET', `/files/${fileId}`, { key: t.adminKey })).status).toBe(404);
    expect((await t.req('GET', '/dropzone', { dropzoneId: dz._id })).status).toBe(401);
    const left = await t.blobKeys();
    expect(left).toHaveLength(1);
    expect((await t.req('GET', `/files/${other.fileId}/download`, { key: t.adminKey })).text).toBe('stays');
    if (t.backend === 'local') expect(t.blobFiles().filter((f) => f.startsWith('objects/'))).toHaveLength(1);
  });

  it('extending days moves deleteTime, so the dropzone survives the original expiry', async () => {
    const dz = await t.createDropzone(t.adminKey, { gb: 1, days: 30 });
    expect((await t.req('PATCH', `/dropzones/${dz._id}`, { key: t.adminKey, body: { days: 45 } })).status).toBe(200);
    t.clock.advance(31 * DAY);
    expect((await t.server.app.ctx.sweeper.sweep()).expiredDropzones).toBe(0);
    expect((await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'x', size: 1 } })).status).toBe(200);
    t.clock.advance(14 * DAY);
    expect((await t.server.app.ctx.sweeper.sweep()).expiredDropzones).toBe(1);
  });
});
