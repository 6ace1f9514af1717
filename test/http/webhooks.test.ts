/**
 * Issue 13, events and webhooks: events recorded with the change they describe, delivered signed to the subscriptions
 * of the keys that may see them, retried with backoff across a restart, logged per subscription; targets refused by
 * the address policy. A receiver runs in the test process on 127.0.0.1 (allow-listed by the test configuration).
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

/** One request the receiver got. */
interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver: records every request; answers each path with the next status of its script (then 200). */
async function startReceiver() {
  const got: Received[] = [];
  const scripts = new Map<string, number[]>();
  const waiters: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      got.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const status = scripts.get(path)?.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    got,
    /** Requests to `path`. */
    at: (path: string) => got.filter((g) => g.path === path),
    /** The next statuses `path` answers with. */
    script: (path: string, statuses: number[]) => scripts.set(path, statuses),
    /** Resolves once `cond()` holds (checked after every request); gives up after 20 s with the requests seen. */
    async until(cond: () => boolean, what: string) {
      const deadline = Date.now() + 20_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`receiver: gave up waiting for ${what}; got ${JSON.stringify(got.map((g) => [g.path, g.body]))}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200).unref();
        });
      }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** True when `r` carries a valid signature of its body under `secret`. */
function verify(r: Received, secret: string): boolean {
  const ts = r.headers['dropzone-webhook-timestamp'] as string;
  const expected = `v1=${createHmac('sha256', secret).update(`${ts}.${r.body}`).digest('hex')}`;
  return r.headers['dropzone-webhook-signature'] === expected;
}

const WEBHOOK_SETTINGS = { 'webhooks.enabled': true, 'webhooks.allowTargets': ['127.0.0.1'] };

describeEachBackend('webhooks', (b: BackendContext) => {
  let t: TestServer;
  let rx: Receiver;
  beforeAll(async () => {
    rx = await startReceiver();
  });
  afterAll(async () => {
    await rx?.close();
  });
  beforeEach(async () => {
    t = await b.start({ settings: WEBHOOK_SETTINGS });
    rx.got.length = 0;
  });
  afterEach(async () => {
    await t?.close();
  });

  const subscribe = async (key: string, path: string, events?: string[]) => {
    const res = await t.req('POST', '/webhooks', { key, body: { url: rx.base + path, ...(events ? { events } : {}) } });
    expect(res.status, res.text).toBe(201);
    return res.body.data as { id: string; secret: string; url: string };
  };
  const dispatch = () => t.server.app.ctx.webhookDispatcher.runOnce();

  it('delivers each event once, signed, to the owner (with the _id), a grantee (shareId only) and the admin; never to others', async () => {
    const owner = await t.createKey([], 10);
    const grantee = await t.createKey();
    const stranger = await t.createKey();
    const ownerHook = await subscribe(owner.secret, '/owner');
    const granteeHook = await subscribe(grantee.secret, '/grantee');
    await subscribe(stranger.secret, '/stranger');
    const adminHook = await subscribe(t.adminKey, '/admin', ['file.uploaded', 'dropzone.deleted']);
    // the secret is shown once: never again
    const shown = await t.req('GET', `/webhooks/${ownerHook.id}`, { key: owner.secret });
    expect(shown.status).toBe(200);
    expect(shown.text).not.toContain(ownerHook.secret);
    expect((await t.req('GET', '/webhooks', { key: owner.secret })).text).not.toContain(ownerHook.secret);

    const dz = await t.createDropzone(owner.secret);
    const { fileId, upload } = await t.upload(owner.secret, dz._id, 'report.pdf', 'hello', 'application/pdf');
    // a second confirm changes nothing and records nothing
    expect((await t.req('POST', `/files/${fileId}/confirm`, { key: owner.secret })).status).toBe(200);
    const granted = await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: owner.secret, body: { publicId: grantee.publicId, permissions: ['dropzone.get'] } });
    expect(granted.status).toBe(200);
    // a grant change names a grantee: only those who may list grants (owners, *.grant holders) and the grantee hear of it
    const toAnyone = await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: owner.secret, body: { publicId: 'anyone', permissions: ['dropzone.list'] } });
    expect(toAnyone.status).toBe(200);
    expect((await t.req('DELETE', `/files/${fileId}`, { key: owner.secret })).status).toBe(200);
    expect((await t.req('DELETE', `/dropzones/${dz._id}`, { key: owner.secret })).status).toBe(200);
    await dispatch();
    await rx.until(() => rx.at('/owner').length >= 6 && rx.at('/admin').length >= 2 && rx.at('/grantee').length >= 3, 'every delivery');
    await dispatch();

    const events = (path: string) => rx.at(path).map((r) => JSON.parse(r.body));
    expect(events('/owner').map((e) => e.type)).toEqual(['dropzone.created', 'file.uploaded', 'permission.granted', 'permission.granted', 'file.deleted', 'dropzone.deleted']);
    // the grantee learns of what happened once it could see the dropzone, by its shareId only
    expect(events('/grantee').map((e) => e.type)).toEqual(['permission.granted', 'file.deleted', 'dropzone.deleted']);
    expect(events('/admin').map((e) => e.type)).toEqual(['file.uploaded', 'dropzone.deleted']);
    expect(rx.at('/stranger')).toEqual([]);

    const uploaded = events('/owner')[1];
    expect(uploaded).toMatchObject({ type: 'file.uploaded', dropzoneId: dz._id, shareId: dz.shareId, fileId, actor: owner.publicId, data: { name: 'report.pdf', size: 5 } });
    expect(uploaded.id).toMatch(/^evt_/);
    expect(new Date(uploaded.time).getTime()).toBe(t.clock.now());
    expect(events('/admin')[0]).toMatchObject({ id: uploaded.id, dropzoneId: dz._id });
    for (const e of events('/grantee')) {
      expect(e.dropzoneId).toBeUndefined();
      expect(e.shareId).toBe(dz.shareId);
    }
    expect(events('/grantee')[0].data).toEqual({ resource: 'dropzone', grantee: grantee.publicId, permissions: ['dropzone.get'] });

    const secrets = { '/owner': ownerHook.secret, '/grantee': granteeHook.secret, '/admin': adminHook.secret } as Record<string, string>;
    for (const r of rx.got) {
      expect(verify(r, secrets[r.path]), `signature of ${r.body}`).toBe(true);
      expect(verify(r, 'whsec_wrong'.padEnd(20, 'x'))).toBe(false);
      expect(r.headers['dropzone-webhook-id']).toBe(JSON.parse(r.body).id);
      expect(r.headers['content-type']).toBe('application/json');
      // no secret, code, signed URL or credential in any body
      for (const secret of [owner.secret, grantee.secret, t.adminKey, ownerHook.secret, granteeHook.secret, dz.code, upload.signedUrl])
        expect(r.body).not.toContain(secret);
      if (r.path !== '/owner' && r.path !== '/admin') expect(r.body).not.toContain(dz._id);
    }
    // each event once per subscription
    for (const path of ['/owner', '/grantee', '/admin']) expect(new Set(events(path).map((e) => e.id)).size).toBe(rx.at(path).length);

    const log = await t.req('GET', `/webhooks/${ownerHook.id}/deliveries`, { key: owner.secret });
    expect(log.status).toBe(200);
    expect(log.body.data).toHaveLength(6);
    expect(log.body.data[0]).toMatchObject({ statusCode: 200, error: null });
    expect(log.body.data[0].latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("README's verification snippet accepts a real delivery and rejects a changed body, another secret or an old timestamp", async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Webhooks'));
    const code = /```js\n([\s\S]*?)```/.exec(section)![1];
    const readmeVerify = new Function('require', `${code}\nreturn verify;`)(createRequire(import.meta.url)) as (
      raw: string,
      headers: IncomingHttpHeaders,
      secret: string,
      toleranceSeconds?: number,
    ) => boolean;
    const key = await t.createKey([], 10);
    const hook = await subscribe(key.secret, '/readme', ['dropzone.created']);
    await t.createDropzone(key.secret);
    await rx.until(() => rx.at('/readme').length === 1, 'the delivery');
    const [r] = rx.at('/readme');
    const lag = Math.abs(Date.now() / 1000 - Number(r.headers['dropzone-webhook-timestamp']));
    expect(readmeVerify(r.body, r.headers, hook.secret, lag + 60)).toBe(true);
    expect(readmeVerify(r.body.replace('dropzone.created', 'dropzone.deleted'), r.headers, hook.secret, lag + 60)).toBe(false);
    expect(readmeVerify(r.body, r.headers, 'another secret', lag + 60)).toBe(false);
    expect(readmeVerify(r.body, { ...r.headers, 'dropzone-webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600 - lag) }, hook.secret, 300)).toBe(false);
  });

  it('retries a receiver that fails twice, across a server restart, then stops once it answered 2xx', async () => {
    const key = await t.createKey([], 10);
    const hook = await subscribe(key.secret, '/flaky', ['dropzone.created']);
    rx.script('/flaky', [500, 503]);
    const dz = await t.createDropzone(key.secret);
    await rx.until(() => rx.at('/flaky').length === 1, 'the first attempt');
    await dispatch(); // (the attempt's outcome is recorded)

    // the outbox and the pending delivery live in the database: a restart picks them up
    t = await t.restart();
    t.clock.advance(4_000);
    expect((await dispatch())?.attempts).toBe(0); // not due yet: 5 s backoff
    t.clock.advance(1_000);
    expect((await dispatch())?.attempts).toBe(1);
    expect(rx.at('/flaky')).toHaveLength(2);
    t.clock.advance(10_000);
    expect((await dispatch())?.attempts).toBe(1);
    expect(rx.at('/flaky')).toHaveLength(3);
    t.clock.advance(3_600_000);
    expect((await dispatch())?.attempts).toBe(0); // delivered: never again

    const bodies = rx.at('/flaky').map((r) => r.body);
    expect(new Set(bodies).size).toBe(1); // every attempt sends the same body (receivers dedupe by its id)
    expect(JSON.parse(bodies[0])).toMatchObject({ type: 'dropzone.created', dropzoneId: dz._id });
    for (const r of rx.at('/flaky')) expect(verify(r, hook.secret)).toBe(true);
    const log = await t.req('GET', `/webhooks/${hook.id}/deliveries?limit=10`, { key: key.secret });
    expect(log.body.data.map((a: { statusCode: number }) => a.statusCode)).toEqual([200, 503, 500]);
  });

  it('gives a failed delivery up after webhooks.retryForSeconds, and logs connection errors', async () => {
    const key = await t.createKey([], 10);
    // a port nothing listens on (the receiver's own, once closed, would be racy: take a fresh one and close it)
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const dead = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/gone`;
    await new Promise<void>((r) => probe.close(() => r()));
    const res = await t.req('POST', '/webhooks', { key: key.secret, body: { url: dead } });
    expect(res.status).toBe(201);
    await t.createDropzone(key.secret);
    for (let i = 0; i < 40; i++) {
      await dispatch();
      t.clock.advance(3_600_000);
    }
    // 5 s, 10 s, … doubling up to an hour, within the default 24 h: a bounded number of attempts, then none
    expect((await dispatch())?.attempts).toBe(0);
    const log = await t.req('GET', `/webhooks/${res.body.data.id}/deliveries?limit=200`, { key: key.secret });
    expect(log.body.data.length).toBeGreaterThan(3);
    expect(log.body.data.length).toBeLessThan(40);
    const times = log.body.data.map((a: { time: string }) => Date.parse(a.time));
    expect(times[0] - times[times.length - 1]).toBeLessThanOrEqual(24 * 3_600_000);
    expect(log.body.data[0]).toMatchObject({ statusCode: null });
    expect(log.body.data[0].error).toMatch(/ECONNREFUSED|connect/i);
  });

  it('refuses targets outside the policy at creation, naming the problem', async () => {
    const key = await t.createKey();
    for (const [url, why] of [
      ['http://10.0.0.1/hook', /10\.0\.0\.1 is a private address/],
      ['http://169.254.169.254/latest/meta-data', /link-local\/metadata/],
      ['http://[::1]:8080/', /loopback/],
      ['http://[fd00::1]/', /ULA/],
      ['http://100.64.0.1/', /CGNAT/],
      ['http://127.0.0.2/', /loopback/], // only 127.0.0.1 is allow-listed
      ['http://[::ffff:127.0.0.2]/', /loopback/],
      ['ftp://127.0.0.1/', /scheme must be http or https/],
      ['not a url', /absolute URL/],
    ] as const) {
      const res = await t.req('POST', '/webhooks', { key: key.secret, body: { url } });
      expect(res.status, url).toBe(400);
      expect(res.body.code, url).toBe('WEBHOOK_TARGET_REFUSED');
      expect(res.body.message, url).toMatch(why);
    }
    const unknown = await t.req('POST', '/webhooks', { key: key.secret, body: { url: rx.base, events: ['file.nope'] } });
    expect(unknown.status).toBe(400);
    expect((await t.req('GET', '/webhooks', { key: key.secret })).body.data).toEqual([]);
  });

  it('a key sees and deletes only its own subscriptions, the admin every one; revoked keys receive nothing', async () => {
    const a = await t.createKey([], 10);
    const other = await t.createKey();
    const hook = await subscribe(a.secret, '/a');
    expect((await t.req('GET', `/webhooks/${hook.id}`, { key: other.secret })).status).toBe(404);
    expect((await t.req('DELETE', `/webhooks/${hook.id}`, { key: other.secret })).status).toBe(404);
    expect((await t.req('GET', `/webhooks/${hook.id}/deliveries`, { key: other.secret })).status).toBe(404);
    expect((await t.req('GET', '/webhooks', { key: other.secret })).body.data).toEqual([]);
    const all = await t.req('GET', '/webhooks', { key: t.adminKey });
    expect(all.body.data).toEqual([expect.objectContaining({ id: hook.id, publicId: a.publicId, url: rx.base + '/a', events: [] })]);

    await t.createDropzone(a.secret);
    await dispatch();
    await rx.until(() => rx.at('/a').length === 1, 'the delivery');
    await t.server.app.ctx.keys.revoke(a.publicId);
    await t.server.app.ctx.dropzones.create((await t.server.app.ctx.meta.adminKey())!, { gb: 1, days: 30 });
    await dispatch();
    expect(rx.at('/a')).toHaveLength(1);

    // changing a subscription: its key (revoked by now) or the admin only, under the same checks; the secret stays
    expect((await t.req('PATCH', `/webhooks/${hook.id}`, { key: other.secret, body: { events: ['file.deleted'] } })).status).toBe(404);
    const refused = await t.req('PATCH', `/webhooks/${hook.id}`, { key: t.adminKey, body: { url: 'http://192.168.0.10/' } });
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('WEBHOOK_TARGET_REFUSED');
    expect((await t.req('PATCH', `/webhooks/${hook.id}`, { key: t.adminKey, body: {} })).status).toBe(400);
    const patched = await t.req('PATCH', `/webhooks/${hook.id}`, { key: t.adminKey, body: { url: rx.base + '/a2', events: ['dropzone.deleted'] } });
    expect(patched.status).toBe(200);
    expect(patched.body.data).toMatchObject({ id: hook.id, url: rx.base + '/a2', events: ['dropzone.deleted'] });
    expect(patched.text).not.toContain(hook.secret);

    expect((await t.req('DELETE', `/webhooks/${hook.id}`, { key: t.adminKey })).status).toBe(200);
    expect((await t.req('GET', `/webhooks/${hook.id}`, { key: t.adminKey })).status).toBe(404);
  });

  it('a delivery waiting for a retry is not sent once its key is revoked', async () => {
    const k = await t.createKey([], 10);
    const hook = await subscribe(k.secret, '/revoked');
    rx.script('/revoked', [500]);
    await t.createDropzone(k.secret);
    await rx.until(() => rx.at('/revoked').length === 1, 'the first attempt');
    await dispatch();
    await t.server.app.ctx.keys.revoke(k.publicId);
    t.clock.advance(60_000);
    await dispatch();
    expect(rx.at('/revoked')).toHaveLength(1);
    const log = await t.req('GET', `/webhooks/${hook.id}/deliveries`, { key: t.adminKey });
    expect(log.body.data.map((a: { statusCode: number | null }) => a.statusCode)).toEqual([null, 500]);
    expect(log.body.data[0].error).toMatch(/revoked/);
    t.clock.advance(3_600_000);
    expect((await dispatch())?.attempts).toBe(0);
  });
});

describe('webhooks off (the default)', () => {
  describeEachBackend('webhooks disabled', (b: BackendContext) => {
    let t: TestServer;
    beforeAll(async () => {
      t = await b.start();
    });
    afterAll(async () => {
      await t?.close();
    });

    it('answer WEBHOOKS_DISABLED and record no event', async () => {
      const res = await t.req('POST', '/webhooks', { key: t.adminKey, body: { url: 'https://example.com/hook' } });
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('WEBHOOKS_DISABLED');
      expect((await t.req('GET', '/webhooks', { key: t.adminKey })).body.code).toBe('WEBHOOKS_DISABLED');
      const dz = await t.createDropzone(t.adminKey);
      await t.upload(t.adminKey, dz._id, 'a.txt', 'abc');
      expect(await t.server.app.ctx.meta.undispatchedEvents(10)).toEqual([]);
    });
  });
});
