/** Test-fixture mode through the programmatic entry (`import { startServer } from 'dropzone-server'`). */
import { afterEach, describe, expect, it } from 'vitest';
import { type FixtureServer, startServer } from '../../src/index.js';

const DAY = 86_400_000;
const servers: FixtureServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(opts: Parameters<typeof startServer>[0] = {}) {
  const s = await startServer(opts);
  servers.push(s);
  return s;
}

/**
 * A request; fixture paths (`/__…`) carry the admin key and `Content-Type: application/json` unless `key` /
 * `contentType` say otherwise (`null`: leave the header out).
 */
async function call(
  s: FixtureServer,
  method: string,
  path: string,
  opts: { key?: string | null; body?: unknown; contentType?: string | null } = {},
) {
  const fixture = path.startsWith('/__');
  const url = fixture ? s.url + path : s.apiUrl + path;
  const headers: Record<string, string> = {};
  const key = opts.key === undefined ? (fixture ? s.adminKey : undefined) : opts.key;
  if (key) headers['x-api-key'] = key;
  const contentType = opts.contentType === undefined ? (opts.body !== undefined || fixture ? 'application/json' : null) : opts.contentType;
  if (contentType) headers['content-type'] = contentType;
  const res = await fetch(url, { method, headers, body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe('programmatic startServer', () => {
  it('starts on a free port with the admin key it was given', async () => {
    const s = await start({ adminKey: 'fixture-admin-key' });
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.apiUrl).toBe(`${s.url}/api/v1`);
    expect(s.adminKey).toBe('fixture-admin-key');
    expect((await call(s, 'GET', '/apikeys/me', { key: 'fixture-admin-key' })).body.data.admin).toBe(true);
  });

  it('generates an admin key when none is given, and applies settings', async () => {
    const s = await start({ settings: { 'limits.maxGb': 10 } });
    expect(s.adminKey).toMatch(/^dzk_/);
    expect((await call(s, 'POST', '/dropzones', { key: s.adminKey, body: { gb: 8, days: 30 } })).status).toBe(201);
  });
});

describe('fixture endpoints', () => {
  it('POST /__fixture/clock moves time forward and sweeps: the dropzone expires without waiting', async () => {
    const s = await start();
    const dz = (await call(s, 'POST', '/dropzones', { key: s.adminKey, body: { gb: 1, days: 30 } })).body.data;
    let moved = await call(s, 'POST', '/__fixture/clock', { body: { advanceMs: 29 * DAY } });
    expect(moved.status).toBe(200);
    expect(moved.body.data.swept.expiredDropzones).toBe(0);
    expect((await call(s, 'GET', `/dropzones/${dz._id}`, { key: s.adminKey })).status).toBe(200);
    moved = await call(s, 'POST', '/__fixture/clock', { body: { advanceMs: 1 * DAY + 1 } });
    expect(moved.body.data.swept.expiredDropzones).toBe(1);
    expect(moved.body.data.now).toBeGreaterThanOrEqual(dz.deleteTime);
    expect((await call(s, 'GET', `/dropzones/${dz._id}`, { key: s.adminKey })).status).toBe(404);
  });

  it('POST /__fixture/clock rejects bad bodies with 400', async () => {
    const s = await start();
    for (const body of [{}, { advanceMs: -1 }, { advanceMs: 'soon' }, '{not json']) {
      const res = await call(s, 'POST', '/__fixture/clock', { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.status).toBe('error');
    }
  });

  it('POST /__fixture/reset empties everything but the admin key', async () => {
    const s = await start();
    const created = (await call(s, 'POST', '/apikeys', { key: s.adminKey, body: { name: 'app' } })).body.data;
    const dz = (await call(s, 'POST', '/dropzones', { key: s.adminKey, body: { gb: 1, days: 30 } })).body.data;
    const up = (await call(s, 'POST', `/dropzones/${dz._id}/files`, { key: s.adminKey, body: { name: 'a.txt', type: 'text/plain', size: 2 } })).body.data;
    expect((await fetch(up.signedUrl, { method: 'PUT', headers: up.headers, body: 'hi' })).status).toBe(200);
    expect((await call(s, 'POST', `/files/${up.fileId}/confirm`, { key: s.adminKey })).status).toBe(200);

    const reset = await call(s, 'POST', '/__fixture/reset');
    expect(reset.status).toBe(200);
    expect((await call(s, 'GET', '/apikeys/me', { key: created.key })).status).toBe(401);
    expect((await call(s, 'GET', '/apikeys/me', { key: s.adminKey })).status).toBe(200);
    expect((await call(s, 'GET', '/dropzones?all=true', { key: s.adminKey })).body.data).toEqual([]);
    expect((await call(s, 'GET', `/files/${up.fileId}`, { key: s.adminKey })).status).toBe(404);
    // the signed URL of a reset upload is dead too
    expect((await fetch(up.signedUrl, { method: 'PUT', headers: up.headers, body: 'hi' })).status).toBe(403);
  });

  it('need the admin key: none 401, a wrong or non-admin key 401/403, and nothing is reset or moved', async () => {
    const s = await start();
    const dz = (await call(s, 'POST', '/dropzones', { key: s.adminKey, body: { gb: 1, days: 30 } })).body.data;
    const other = (await call(s, 'POST', '/apikeys', { key: s.adminKey, body: { name: 'app', permissions: ['apikey.create'] } })).body.data;
    for (const path of ['/__fixture/reset', '/__fixture/clock']) {
      const body = path.endsWith('clock') ? { advanceMs: 31 * DAY } : {};
      const none = await call(s, 'POST', path, { key: null, body });
      expect(none.status, path).toBe(401);
      expect(none.body.status).toBe('error');
      expect((await call(s, 'POST', path, { key: 'dzk_wrong', body })).status, path).toBe(401);
      const notAdmin = await call(s, 'POST', path, { key: other.key, body });
      expect(notAdmin.status, path).toBe(403);
      expect(notAdmin.body.message).toMatch(/admin key/);
    }
    // neither endpoint did anything: the dropzone and the other key are still there, and not expired
    expect((await call(s, 'GET', `/dropzones/${dz._id}`, { key: s.adminKey })).status).toBe(200);
    expect((await call(s, 'GET', '/apikeys/me', { key: other.key })).status).toBe(200);
  });

  it('need Content-Type: application/json (415 otherwise), so a cross-site form or text/plain request cannot reach them', async () => {
    const s = await start();
    const dz = (await call(s, 'POST', '/dropzones', { key: s.adminKey, body: { gb: 1, days: 30 } })).body.data;
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', null]) {
      for (const path of ['/__fixture/reset', '/__fixture/clock']) {
        const res = await call(s, 'POST', path, { body: JSON.stringify({ advanceMs: 31 * DAY }), contentType });
        expect(res.status, `${path} ${contentType}`).toBe(415);
        expect(res.body.message).toMatch(/application\/json/);
      }
    }
    expect((await call(s, 'GET', `/dropzones/${dz._id}`, { key: s.adminKey })).status).toBe(200);
    // a charset parameter is fine
    const ok = await call(s, 'POST', '/__fixture/clock', { body: { advanceMs: 1 }, contentType: 'application/json; charset=utf-8' });
    expect(ok.status).toBe(200);
  });

  it('do not exist unless enabled', async () => {
    const s = await start({ fixture: false });
    expect((await call(s, 'POST', '/__fixture/reset')).status).toBe(404);
    expect((await call(s, 'POST', '/__fixture/clock', { body: { advanceMs: 1 } })).status).toBe(404);
  });
});
