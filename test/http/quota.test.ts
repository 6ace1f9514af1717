/** GB-months arithmetic, API keys and transfers, upsert by name, extension rules and bounds. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

describeEachBackend('GB-months, keys and bounds', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  const balance = async (secret: string) => (await t.req('GET', '/apikeys/me', { key: secret })).body.data.gbMonths as number | null;

  it('creating costs gb × days / 30; an update costs exactly the difference; 402 names needed and available', async () => {
    const k = await t.createKey([], 10);
    expect(await balance(k.secret)).toBe(10);
    const a = await t.createDropzone(k.secret, { gb: 1, days: 30 });
    expect(await balance(k.secret)).toBe(9);
    await t.createDropzone(k.secret, { gb: 2, days: 45 });
    expect(await balance(k.secret)).toBe(6);
    // extend a: 1 GB for 60 days = 2, it cost 1 → +1
    const ext = await t.req('PATCH', `/dropzones/${a._id}`, { key: k.secret, body: { days: 60 } });
    expect(ext.status).toBe(200);
    expect(ext.body.data.deleteTime).toBe(a.deleteTime + 30 * 86_400_000);
    expect(await balance(k.secret)).toBe(5);
    // same values again: costs nothing
    expect((await t.req('PUT', `/dropzones/${a._id}`, { key: k.secret, body: { gb: 1, days: 60 } })).status).toBe(200);
    expect(await balance(k.secret)).toBe(5);
    // 4 GB for 60 days = 8, minus 2 paid = 6 > 5
    const short = await t.req('PATCH', `/dropzones/${a._id}`, { key: k.secret, body: { gb: 4 } });
    expect(short.status).toBe(402);
    expect(short.body.status).toBe('error');
    expect(short.body.message).toMatch(/needed 6\b/);
    expect(short.body.message).toMatch(/available 5\b/);
    expect(await balance(k.secret)).toBe(5);
    expect((await t.req('GET', `/dropzones/${a._id}`, { key: k.secret })).body.data.maxSizeGb).toBe(1);
    // creation that does not fit: 402, nothing created, balance untouched
    const big = await t.req('POST', '/dropzones', { key: k.secret, body: { gb: 4, days: 60 } });
    expect(big.status).toBe(402);
    expect(big.body.message).toMatch(/needed 8.*available 5/);
    expect((await t.req('GET', '/dropzones', { key: k.secret })).body.data).toHaveLength(2);
    // spending exactly the rest leaves 0, never below
    await t.createDropzone(k.secret, { gb: 2.5, days: 60 });
    expect(await balance(k.secret)).toBe(0);
    expect((await t.req('POST', '/dropzones', { key: k.secret, body: { gb: 0.2, days: 30 } })).status).toBe(402);
    expect(await balance(k.secret)).toBe(0);
  });

  it('fractional costs are exact to the micro GB-month', async () => {
    const k = await t.createKey([], 1);
    await t.createDropzone(k.secret, { gb: 0.2, days: 31 }); // 0.2066666… → 0.206667
    expect(await balance(k.secret)).toBeCloseTo(1 - 0.206667, 6);
    const dz = await t.createDropzone(k.secret, { gb: 0.3, days: 30 }); // 0.3
    expect(await balance(k.secret)).toBeCloseTo(1 - 0.206667 - 0.3, 6);
    await t.req('PATCH', `/dropzones/${dz._id}`, { key: k.secret, body: { days: 40 } }); // 0.4 − 0.3
    expect(await balance(k.secret)).toBeCloseTo(1 - 0.206667 - 0.4, 6);
  });

  it('the admin key is unlimited', async () => {
    const me = await t.req('GET', '/apikeys/me', { key: t.adminKey });
    expect(me.body.data).toMatchObject({ gbMonths: null, admin: true, permissions: ['apikey.create'] });
    for (let i = 0; i < 3; i++) await t.createDropzone(t.adminKey, { gb: 4, days: 365 });
    expect(await balance(t.adminKey)).toBeNull();
  });

  it('POST /apikeys with no body works and returns the secret once; its publicId is safe to show', async () => {
    for (const opts of [{}, { rawBody: '' }]) {
      const res = await t.req('POST', '/apikeys', { key: t.adminKey, ...opts });
      expect(res.status).toBe(201);
      const d = res.body.data;
      expect(d.key).toMatch(/^dzk_/);
      expect(d.apiKey).toBe(d.key);
      expect(d.publicId).toMatch(/^pk_/);
      expect(d.publicId).not.toContain(d.key);
      expect(d).toMatchObject({ gbMonths: 0, permissions: [], admin: false });
      const me = await t.req('GET', '/apikeys/me', { key: d.key });
      expect(me.status).toBe(200);
      expect(me.body.data.publicId).toBe(d.publicId);
      expect(me.text).not.toContain(d.key);
    }
  });

  it('creating keys needs apikey.create and moves gbMonths from the creator atomically', async () => {
    const plain = await t.createKey([], 5);
    const denied = await t.req('POST', '/apikeys', { key: plain.secret, body: {} });
    expect(denied.status).toBe(403);
    expect(denied.body.message).toMatch(/apikey\.create/);

    const creator = await t.createKey(['apikey.create'], 5);
    const child = await t.createKey([], 2, creator.secret);
    expect(await balance(child.secret)).toBe(2);
    expect(await balance(creator.secret)).toBe(3);
    const tooMuch = await t.req('POST', '/apikeys', { key: creator.secret, body: { gbMonths: 4 } });
    expect(tooMuch.status).toBe(402);
    expect(tooMuch.body.message).toMatch(/needed 4.*available 3/);
    expect(await balance(creator.secret)).toBe(3);
    // a creator cannot hand out permissions it lacks
    const escalate = await t.req('POST', '/apikeys', { key: child.secret, body: { permissions: ['apikey.create'] } });
    expect(escalate.status).toBe(403);
    const unknownPerm = await t.req('POST', '/apikeys', { key: t.adminKey, body: { permissions: ['apikey.destroy'] } });
    expect(unknownPerm.status).toBe(400);
  });

  it('transfer-gbmonths: by publicId or by secret, atomic, never negative, needs apikey.create', async () => {
    const from = await t.createKey(['apikey.create'], 5);
    const to = await t.createKey([], 0);
    const r1 = await t.req('POST', `/apikeys/${to.publicId}/transfer-gbmonths`, { key: from.secret, body: { gbMonths: 2 } });
    expect(r1.status).toBe(200);
    expect(r1.body.data).toMatchObject({ from: { publicId: from.publicId, gbMonths: 3 }, to: { publicId: to.publicId, gbMonths: 2 } });
    expect(JSON.stringify(r1.body)).not.toContain(to.secret);
    const r2 = await t.req('POST', `/apikeys/${to.secret}/transfer-gbmonths`, { key: from.secret, body: { gbMonths: 0.5 } });
    expect(r2.status).toBe(200);
    expect(r2.body.data.to).toEqual({ publicId: to.publicId, gbMonths: 2.5 });
    expect(await balance(from.secret)).toBe(2.5);

    const over = await t.req('POST', `/apikeys/${to.publicId}/transfer-gbmonths`, { key: from.secret, body: { gbMonths: 2.6 } });
    expect(over.status).toBe(402);
    expect(over.body.message).toMatch(/needed 2\.6.*available 2\.5/);
    expect(await balance(from.secret)).toBe(2.5);
    expect(await balance(to.secret)).toBe(2.5);

    // many concurrent transfers can never overdraw
    const results = await Promise.all(
      Array.from({ length: 10 }, () => t.req('POST', `/apikeys/${to.publicId}/transfer-gbmonths`, { key: from.secret, body: { gbMonths: 1 } })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(2);
    expect(results.filter((r) => r.status === 402)).toHaveLength(8);
    expect(await balance(from.secret)).toBe(0.5);
    expect(await balance(to.secret)).toBe(4.5);

    expect((await t.req('POST', `/apikeys/${from.publicId}/transfer-gbmonths`, { key: to.secret, body: { gbMonths: 1 } })).status).toBe(403);
    expect((await t.req('POST', `/apikeys/pk_nobody/transfer-gbmonths`, { key: from.secret, body: { gbMonths: 0.1 } })).status).toBe(404);
    expect((await t.req('POST', `/apikeys/${from.publicId}/transfer-gbmonths`, { key: from.secret, body: { gbMonths: 0.1 } })).status).toBe(400);
    expect((await t.req('POST', `/apikeys/${to.publicId}/transfer-gbmonths`, { key: from.secret, body: { gbMonths: 0 } })).status).toBe(400);
    expect((await t.req('POST', `/apikeys/${to.publicId}/transfer-gbmonths`, { key: from.secret, body: { gbMonths: -1 } })).status).toBe(400);
    expect((await t.req('POST', `/apikeys/${to.publicId}/transfer-gbmonths`, { body: { gbMonths: 1 } })).status).toBe(401);
    // the admin is unlimited and stays so
    const adm = await t.req('POST', `/apikeys/${to.publicId}/transfer-gbmonths`, { key: t.adminKey, body: { gbMonths: 100 } });
    expect(adm.status).toBe(200);
    expect(adm.body.data.from.gbMonths).toBeNull();
    expect(await balance(to.secret)).toBe(104.5);
  });

  it('balances stay exact: amounts over 1e9 GB-months are 400, and a balance cannot grow past exact integers', async () => {
    const k = await t.createKey([], 0);
    expect((await t.req('POST', `/apikeys/${k.publicId}/transfer-gbmonths`, { key: t.adminKey, body: { gbMonths: 1e9 + 1 } })).status).toBe(400);
    for (let i = 0; i < 9; i++)
      expect((await t.req('POST', `/apikeys/${k.publicId}/transfer-gbmonths`, { key: t.adminKey, body: { gbMonths: 1e9 } })).status).toBe(200);
    const over = await t.req('POST', `/apikeys/${k.publicId}/transfer-gbmonths`, { key: t.adminKey, body: { gbMonths: 1e9 } });
    expect(over.status).toBe(400);
    expect(over.body.data.field).toBe('gbMonths');
    expect(await balance(k.secret)).toBe(9e9);
    // still exact to the micro unit
    await t.createDropzone(k.secret, { gb: 0.2, days: 31 });
    expect(await balance(k.secret)).toBe(8_999_999_999.793333);
  });

  it('POST /dropzones with a name the key already owns updates that dropzone (and charges the difference)', async () => {
    const k = await t.createKey([], 10);
    const first = await t.req('POST', '/dropzones', { key: k.secret, body: { gb: 1, days: 30, name: 'same' } });
    expect(first.status).toBe(201);
    const second = await t.req('POST', '/dropzones', { key: k.secret, body: { gb: 2, days: 30, name: 'same' } });
    expect(second.status).toBe(200);
    expect(second.body.data._id).toBe(first.body.data._id);
    expect(second.body.data.maxSizeGb).toBe(2);
    expect(await balance(k.secret)).toBe(8);
    const lower = await t.req('POST', '/dropzones', { key: k.secret, body: { gb: 1, days: 30, name: 'same' } });
    expect(lower.status).toBe(400);
    expect(lower.body.data.field).toBe('gb');
    expect((await t.req('GET', '/dropzones', { key: k.secret })).body.data).toHaveLength(1);
    // another key's dropzone of the same name is a different one
    const other = await t.createKey([], 10);
    const theirs = await t.req('POST', '/dropzones', { key: other.secret, body: { gb: 1, days: 30, name: 'same' } });
    expect(theirs.status).toBe(201);
    expect(theirs.body.data._id).not.toBe(first.body.data._id);
  });

  it.each(['PATCH', 'PUT'])('%s with lower values is 400 naming the field; values are kept', async (method) => {
    const dz = await t.createDropzone(t.adminKey, { gb: 2, days: 60 });
    for (const [body, field] of [
      [{ gb: 1 }, 'gb'],
      [{ days: 30 }, 'days'],
      [{ gb: 3, days: 59 }, 'days'],
    ] as const) {
      const res = await t.req(method, `/dropzones/${dz._id}`, { key: t.adminKey, body });
      expect(res.status).toBe(400);
      expect(res.body.data.field).toBe(field);
      expect(res.body.message).toContain(field);
    }
    const now = (await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey })).body.data;
    expect(now).toMatchObject({ maxSizeGb: 2, maxDurationDays: 60 });
  });

  it.each([
    ['POST', { gb: 0.1, days: 30 }, 'gb'],
    ['POST', { gb: 4.01, days: 30 }, 'gb'],
    ['POST', { gb: 1, days: 29 }, 'days'],
    ['POST', { gb: 1, days: 366 }, 'days'],
    ['PATCH', { gb: 5 }, 'gb'],
    ['PATCH', { days: 400 }, 'days'],
  ] as const)('bounds: %s %j → 400 naming %s', async (method, body, field) => {
    const path = method === 'POST' ? '/dropzones' : `/dropzones/${(await t.createDropzone(t.adminKey))._id}`;
    const res = await t.req(method, path, { key: t.adminKey, body });
    expect(res.status).toBe(400);
    expect(res.body.data.field).toBe(field);
    expect(res.body.message).toContain(field);
  });

  it('the edges of the bounds are accepted', async () => {
    expect((await t.req('POST', '/dropzones', { key: t.adminKey, body: { gb: 0.2, days: 30 } })).status).toBe(201);
    expect((await t.req('POST', '/dropzones', { key: t.adminKey, body: { gb: 4, days: 365 } })).status).toBe(201);
  });
});

describeEachBackend('operator bounds', (b: BackendContext) => {
  it('limits.* change the accepted range', async () => {
    const t = await b.start({ settings: { 'limits.maxGb': 10, 'limits.minDays': 1 } });
    try {
      const ok = await t.req('POST', '/dropzones', { key: t.adminKey, body: { gb: 8, days: 1 } });
      expect(ok.status).toBe(201);
      expect(ok.body.data.maxSize).toBe(8e9);
      const over = await t.req('POST', '/dropzones', { key: t.adminKey, body: { gb: 10.5, days: 1 } });
      expect(over.status).toBe(400);
      expect(over.body.message).toMatch(/gb must be between 0\.2 and 10/);
    } finally {
      await t.close();
    }
  });

  it('security.adminGbMonths gives the admin a finite balance', async () => {
    const t = await b.start({ settings: { 'security.adminGbMonths': 1 } });
    try {
      expect((await t.req('GET', '/apikeys/me', { key: t.adminKey })).body.data.gbMonths).toBe(1);
      expect((await t.req('POST', '/dropzones', { key: t.adminKey, body: { gb: 2, days: 30 } })).status).toBe(402);
    } finally {
      await t.close();
    }
  });
});
