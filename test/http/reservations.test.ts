/**
 * A reservation (the bytes a pending upload holds) lives as long as its upload URL plus a grace period, not for
 * `uploads.pendingTtlSeconds` (24 h): an abandoned or stalled upload gives its space back soon. On the local store a PUT
 * in flight renews its reservation while bytes flow, so the sweeper never removes an upload that is still receiving.
 * One page visitor (client address) can hold only a few pending uploads of a dropzone at once.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileCost } from '../../src/core/quota.js';
import { type BackendContext, type TestServer, describeEachBackend, startTestServer } from '../helpers/server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeEachBackend('reservation lifetime', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start({ settings: { 'uploads.urlTtlSeconds': 3600, 'uploads.reservationGraceSeconds': 600 } });
  });
  afterAll(async () => {
    await t?.close();
  });
  const usedSpace = async (id: string) => (await t.req('GET', `/dropzones/${id}`, { key: t.adminKey })).body.data.usedSpace;

  it('an abandoned reservation of the whole dropzone is released once its URL expired plus the grace, not after 24 h', async () => {
    const dz = await t.createDropzone(t.adminKey, { gb: 0.2, days: 30 });
    // every byte of the dropzone: the file's size plus its per-file overhead
    const up = await t.requestUpload(t.adminKey, dz._id, 'all.bin', 2e8 - fileCost({ size: 0, name: 'all.bin', type: 'application/octet-stream' }));
    expect(up.expiresAt).toBe(Math.floor(t.clock.now() / 1000) * 1000 + 3600_000);
    expect(await usedSpace(dz._id)).toBe(2e8);
    // the owner is locked out while it holds…
    expect((await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'mine', size: 1 } })).status).toBe(413);
    // …still within URL lifetime + grace: kept (a PUT that finished at the last moment can still be confirmed)
    t.clock.advance(3600_000 + 590_000);
    expect((await t.server.app.ctx.sweeper.sweep()).stalePending).toBe(0);
    t.clock.advance(11_000);
    expect((await t.server.app.ctx.sweeper.sweep()).stalePending).toBe(1);
    expect(await usedSpace(dz._id)).toBe(0);
    expect((await t.req('GET', `/files/${up.fileId}`, { key: t.adminKey })).status).toBe(404);
    expect((await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'mine', size: 1 } })).status).toBe(200);
  });

  it('uploads.pendingTtlSeconds stays an upper bound', async () => {
    const s = await b.start({ settings: { 'uploads.urlTtlSeconds': 3600, 'uploads.pendingTtlSeconds': 1200 } });
    try {
      const dz = await s.createDropzone(s.adminKey);
      await s.requestUpload(s.adminKey, dz._id, 'x.bin', 10);
      s.clock.advance(1_199_000);
      expect((await s.server.app.ctx.sweeper.sweep()).stalePending).toBe(0);
      s.clock.advance(1000);
      expect((await s.server.app.ctx.sweeper.sweep()).stalePending).toBe(1);
    } finally {
      await s.close();
    }
  });
});

describe('a PUT in flight renews its reservation (local store)', () => {
  it('the sweeper never removes an upload that is still receiving bytes, long after its URL expired', async () => {
    const t = await startTestServer({ settings: { 'uploads.urlTtlSeconds': 600, 'uploads.reservationGraceSeconds': 300 } });
    try {
      const dz = await t.createDropzone(t.adminKey);
      const up = await t.requestUpload(t.adminKey, dz._id, 'long.bin', 300);
      const fileRow = () => t.server.app.ctx.meta.fileById(up.fileId);
      // the reservation first runs to URL + grace = 15 min; the PUT below lasts 20 min (by the clock)
      const first = (await fileRow())!;
      expect(first.pendingExpiresAt).toBe(first.createdAt + 900_000);
      let answer!: Promise<number>;
      const req = request(up.signedUrl, { method: 'PUT', headers: up.headers });
      answer = new Promise((resolve, reject) => {
        req.on('response', (r) => {
          r.resume();
          resolve(r.statusCode!);
        });
        req.on('error', reject);
      });
      req.flushHeaders();
      // the server has passed its checks and streams into a temp file
      for (let j = 0; j < 300 && !t.blobFiles().some((f) => f.endsWith('.part')); j++) await sleep(10);
      // each step: the clock moves 4 minutes, then a chunk arrives; together 20 minutes, past URL + grace (15 min)
      for (let i = 0; i < 5; i++) {
        t.clock.advance(240_000);
        if (i < 4) req.write(Buffer.alloc(60, i));
        else req.end(Buffer.alloc(60, i));
        if (i < 4) {
          // from the third step on, only a renewal by the arriving chunk keeps the reservation a grace period ahead
          const ahead = async () => (await fileRow())!.pendingExpiresAt! >= t.clock.now() + 300_000;
          for (let j = 0; j < 300 && !(await ahead()); j++) await sleep(10);
          expect(await ahead()).toBe(true);
          expect((await t.server.app.ctx.sweeper.sweep()).stalePending).toBe(0);
        }
      }
      expect(await answer).toBe(200);
      expect((await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey })).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('pending uploads per page visitor', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ settings: { 'uploads.pagePendingMaxFiles': 3, 'server.trustProxy': true } });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function pageOf(code: string) {
    const html = await (await fetch(`${t.url}/d/${code}`)).text();
    const m = /<script type="application\/json" id="dz-config">([^<]*)<\/script>/.exec(html);
    return JSON.parse(m![1]).token as string;
  }
  const reserve = (code: string, token: string, name: string, from?: string) =>
    t.req('POST', `//d/${code}/api/uploads`, {
      body: { name, type: 'application/octet-stream', size: 10 },
      headers: { authorization: `Bearer ${token}`, ...(from ? { 'x-forwarded-for': from } : {}) },
    });

  it('one address holds at most pagePendingMaxFiles pending uploads of a dropzone; 429 names the limit; confirming or cancelling frees a slot', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const token = await pageOf(dz.code);
    const ups = [];
    for (let i = 0; i < 3; i++) {
      const r = await reserve(dz.code, token, `f${i}`, '203.0.113.7');
      expect(r.status).toBe(200);
      ups.push(r.body.data);
    }
    const over = await reserve(dz.code, token, 'f3', '203.0.113.7');
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ status: 'error', data: { maxPendingUploads: 3 } });
    // another visitor is not affected; the proxy's own entry (the last one) is what counts, not a forged first one
    expect((await reserve(dz.code, token, 'g0', '203.0.113.8')).status).toBe(200);
    expect((await reserve(dz.code, token, 'f3', '198.51.100.1, 203.0.113.7')).status).toBe(429);
    // the owner's API is not limited by page visitors
    expect((await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'own', size: 10 } })).status).toBe(200);
    // cancelling one frees a slot; so does confirming one
    const cancel = await t.req('DELETE', `//d/${dz.code}/api/uploads/${ups[0].fileId}`, { headers: { authorization: `Bearer ${token}` } });
    expect(cancel.status).toBe(200);
    expect((await reserve(dz.code, token, 'f4', '203.0.113.7')).status).toBe(200);
    expect((await reserve(dz.code, token, 'f5', '203.0.113.7')).status).toBe(429);
    expect((await t.put(ups[1], Buffer.alloc(10))).status).toBe(200);
    expect((await t.req('POST', `//d/${dz.code}/api/uploads/${ups[1].fileId}/confirm`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await reserve(dz.code, token, 'f6', '203.0.113.7')).status).toBe(200);
  });

  it('IPv6 visitors are counted per /64 (one host has a whole /64 to pick addresses from)', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const token = await pageOf(dz.code);
    for (let i = 1; i <= 3; i++) expect((await reserve(dz.code, token, `v${i}`, `2001:db8:1:2::${i}`)).status).toBe(200);
    expect((await reserve(dz.code, token, 'v4', '2001:db8:1:2:ffff::9')).status).toBe(429);
    expect((await reserve(dz.code, token, 'w1', '2001:db8:1:3::1')).status).toBe(200);
  });
});
