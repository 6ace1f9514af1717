/**
 * `GET /metrics`: off by default, optionally behind a bearer token, Prometheus text format parsed by a real parser
 * (prom2javascript): requests by route pattern, bytes in and out, storage gauges from the database, confirm, sweeper
 * and blob store counters, uploads in flight and the process metrics; one registry per server.
 */
import { request } from 'node:http';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type PromData, type PromHistogramData, type PromMetrics, getMetricsFromIterator } from 'prom2javascript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend, startTestServer } from '../helpers/server.js';

const TOKEN = 'scrape-token-0123456789';
const DAY_MS = 24 * 3600 * 1000;

/** GETs /metrics (with `token` as a bearer token) and parses it; fails unless it is a 200 in the text format. */
async function scrape(t: TestServer, token?: string): Promise<PromMetrics> {
  const res = await fetch(`${t.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  expect(res.status, text.slice(0, 300)).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(text);
}

/**
 * Parses the text exposition format (throws on a malformed line or histogram). prom-client writes NaN as `Nan`, which
 * Prometheus reads (Go's ParseFloat ignores case) but prom2javascript does not know: such samples are allowed only for
 * the event loop lag, which is NaN until prom-client's monitor has taken its first sample, and are left out.
 */
function parse(text: string): Promise<PromMetrics> {
  const lines = text.split('\n').filter((line) => {
    if (!/ Nan$/.test(line)) return true;
    expect(line, 'only the event loop lag may be NaN').toMatch(/^nodejs_eventloop_lag_\w+ Nan$/);
    return false;
  });
  return getMetricsFromIterator(lines[Symbol.iterator]());
}

/** The value of the sample of `name` whose labels include `labels`; throws when the family or the sample is missing. */
function value(m: PromMetrics, name: string, labels: Record<string, string> = {}): number {
  const family = m[name];
  if (!family) throw new Error(`no metric family ${name}`);
  const hit = (family.data as PromData[]).find((d) => Object.entries(labels).every(([k, v]) => d.labels[k] === v));
  if (!hit) throw new Error(`no sample of ${name} with ${JSON.stringify(labels)}: ${JSON.stringify(family.data)}`);
  return hit.value;
}

/** The histogram series of `name` whose labels include `labels`. */
function histogram(m: PromMetrics, name: string, labels: Record<string, string>): PromHistogramData {
  const family = m[name];
  if (!family || family.type !== 'histogram') throw new Error(`no histogram ${name}`);
  const hit = (family.data as PromHistogramData[]).find((d) => Object.entries(labels).every(([k, v]) => d.labels[k] === v));
  if (!hit) throw new Error(`no series of ${name} with ${JSON.stringify(labels)}`);
  return hit;
}

describeEachBackend('GET /metrics', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start({ settings: { 'metrics.enabled': true } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is off by default: 404', async () => {
    const off = await b.start();
    try {
      const res = await fetch(`${off.url}/metrics`);
      expect(res.status).toBe(404);
      await res.arrayBuffer();
    } finally {
      await off.close();
    }
  });

  it('with metrics.token: a missing or wrong bearer token is 401, the right one 200', async () => {
    const guarded = await b.start({ settings: { 'metrics.enabled': true, 'metrics.token': TOKEN } });
    try {
      const attempts: Record<string, string>[] = [{}, { authorization: `Bearer ${TOKEN.slice(0, -1)}x` }, { authorization: 'Bearer short' }, { authorization: TOKEN }, { 'x-api-key': guarded.adminKey }];
      for (const headers of attempts) {
        const res = await fetch(`${guarded.url}/metrics`, { headers });
        expect(res.status, JSON.stringify(headers)).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
        expect(await res.text()).not.toContain('dropzone_http_requests_total');
      }
      const m = await scrape(guarded, TOKEN);
      expect(value(m, 'dropzone_http_requests_total', { route: '/metrics', status: '401' })).toBe(5);
    } finally {
      await guarded.close();
    }
  });

  it('counts requests and latency by method, route pattern and status; never a raw path, id or signature', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const { fileId, upload } = await t.upload(t.adminKey, dz._id, 'a.txt', 'hello metrics');
    expect((await t.req('GET', `/files/${fileId}/download`, { key: t.adminKey })).text).toBe('hello metrics');
    expect((await t.req('GET', '/files/no-such-file', { key: t.adminKey })).status).toBe(404);
    const text = await (await fetch(`${t.url}/metrics`)).text();
    const m = await parse(text);

    expect(value(m, 'dropzone_http_requests_total', { method: 'POST', route: '/api/v1/files/:fileId/confirm', status: '200' })).toBe(1);
    expect(value(m, 'dropzone_http_requests_total', { method: 'GET', route: '/api/v1/files/:fileId', status: '404' })).toBe(1);
    expect(value(m, 'dropzone_http_requests_total', { method: 'POST', route: '/api/v1/dropzones', status: '201' })).toBeGreaterThanOrEqual(1);
    const confirm = histogram(m, 'dropzone_http_request_duration_seconds', { method: 'POST', route: '/api/v1/files/:fileId/confirm', status: '200' });
    expect(confirm.count).toBe(1);
    expect(confirm.buckets['+Inf']).toBe(1);
    expect(confirm.sum).toBeGreaterThan(0);
    if (b.name === 'local') expect(value(m, 'dropzone_http_requests_total', { method: 'PUT', route: '/_blobs/*', status: '200' })).toBe(1);

    for (const secret of [dz._id, dz.code, fileId, t.adminKey, new URL(upload.signedUrl).searchParams.get('X-Amz-Signature')!]) expect(text).not.toContain(secret);
    const routes = new Set((m.dropzone_http_requests_total.data as PromData[]).map((d) => d.labels.route));
    for (const r of routes) expect(r, 'a route label is a pattern').toMatch(/^(\*|\/[\w/:*.-]*)$/);
    expect([...routes].some((r) => r.includes('fil_') || r.includes(dz._id))).toBe(false);
  });

  it('reports confirmed files and bytes, reservations and dropzones from the database, and counts confirms once', async () => {
    const s = await b.start({ settings: { 'metrics.enabled': true } });
    try {
      const before = await scrape(s);
      expect(value(before, 'dropzone_files', { status: 'uploaded' })).toBe(0);
      expect(value(before, 'dropzone_file_bytes', { status: 'pending' })).toBe(0);
      expect(value(before, 'dropzone_uploads_confirmed_total')).toBe(0);

      const dz = await s.createDropzone(s.adminKey, { gb: 1, days: 30 });
      const one = await s.upload(s.adminKey, dz._id, 'one.bin', 'x'.repeat(1000));
      await s.upload(s.adminKey, dz._id, 'two.bin', 'y'.repeat(234));
      await s.requestUpload(s.adminKey, dz._id, 'reserved.bin', 5000);
      // a second confirm of the same file answers the file again but confirms nothing new
      expect((await s.req('POST', `/files/${one.fileId}/confirm`, { key: s.adminKey })).status).toBe(200);

      const m = await scrape(s);
      expect(value(m, 'dropzone_files', { status: 'uploaded' })).toBe(2);
      expect(value(m, 'dropzone_file_bytes', { status: 'uploaded' })).toBe(1234);
      expect(value(m, 'dropzone_files', { status: 'pending' })).toBe(1);
      expect(value(m, 'dropzone_file_bytes', { status: 'pending' })).toBe(5000);
      expect(value(m, 'dropzone_dropzones')).toBe(1);
      expect(value(m, 'dropzone_dropzone_capacity_bytes')).toBe(1e9);
      expect(value(m, 'dropzone_uploads_confirmed_total')).toBe(2);
      expect(value(m, 'dropzone_uploads_confirmed_bytes_total')).toBe(1234);
      expect(m.dropzone_files.type).toBe('gauge');
      expect(m.dropzone_uploads_confirmed_total.type).toBe('counter');

      await s.req('DELETE', `/files/${one.fileId}`, { key: s.adminKey });
      const after = await scrape(s);
      expect(value(after, 'dropzone_file_bytes', { status: 'uploaded' })).toBe(234);
      expect(value(after, 'dropzone_uploads_confirmed_total'), 'a counter never goes down').toBe(2);
    } finally {
      await s.close();
    }
  });

  it('counts sweeper runs and what they removed', async () => {
    const s = await b.start({ settings: { 'metrics.enabled': true } });
    try {
      const m0 = await scrape(s);
      expect(value(m0, 'dropzone_sweeper_runs_total', { result: 'ok' })).toBe(0);
      const dz = await s.createDropzone(s.adminKey, { gb: 1, days: 30 });
      await s.requestUpload(s.adminKey, dz._id, 'never-sent.bin', 10);
      s.clock.advance(2 * DAY_MS); // past uploads.pendingTtlSeconds (1 day)
      await s.server.app.ctx.sweeper.sweep();
      const m1 = await scrape(s);
      expect(value(m1, 'dropzone_sweeper_runs_total', { result: 'ok' })).toBe(1);
      expect(value(m1, 'dropzone_sweeper_removed_total', { item: 'stale_uploads' })).toBe(1);
      expect(value(m1, 'dropzone_sweeper_removed_total', { item: 'expired_dropzones' })).toBe(0);

      s.clock.advance(31 * DAY_MS);
      await s.server.app.ctx.sweeper.sweep();
      const m2 = await scrape(s);
      expect(value(m2, 'dropzone_sweeper_runs_total', { result: 'ok' })).toBe(2);
      expect(value(m2, 'dropzone_sweeper_removed_total', { item: 'expired_dropzones' })).toBe(1);
      expect(value(m2, 'dropzone_sweeper_removed_total', { item: 'stale_uploads' })).toBe(1);
      expect(value(m2, 'dropzone_dropzones')).toBe(0);

      // garbage collection: an object no file refers to, older than sweeper.gcGraceSeconds
      await s.server.app.ctx.blobs.put('objects/orphan-for-metrics', Readable.from([Buffer.from('orphan')]));
      s.clock.advance(2 * 3600 * 1000);
      expect((await s.server.app.ctx.sweeper.gc()).orphansDeleted).toBe(1);
      const m3 = await scrape(s);
      expect(value(m3, 'dropzone_sweeper_removed_total', { item: 'orphan_blobs' })).toBe(1);
      expect(value(m3, 'dropzone_sweeper_runs_total', { result: 'ok' })).toBe(3); // gc sweeps first

      // a failing sweep is counted as an error (and retried next time)
      await s.createDropzone(s.adminKey, { gb: 1, days: 30 });
      s.clock.advance(31 * DAY_MS);
      const ctx = s.server.app.ctx;
      const destroy = ctx.dropzones.destroy;
      ctx.dropzones.destroy = () => {
        throw new Error('disk I/O error');
      };
      try {
        await expect(ctx.sweeper.sweep()).rejects.toThrow('disk I/O error');
      } finally {
        ctx.dropzones.destroy = destroy;
      }
      const m4 = await scrape(s);
      expect(value(m4, 'dropzone_sweeper_runs_total', { result: 'error' })).toBe(1);
      expect(value(m4, 'dropzone_sweeper_runs_total', { result: 'ok' })).toBe(3);
      expect(value(m4, 'dropzone_dropzones')).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('counts bytes received and sent, and serves the process metrics', async () => {
    const s = await b.start({ settings: { 'metrics.enabled': true } });
    try {
      const size = 300_000;
      const dz = await s.createDropzone(s.adminKey, { gb: 1, days: 30 });
      const { fileId } = await s.upload(s.adminKey, dz._id, 'big.bin', new Uint8Array(size).fill(7));
      const down = await s.req('GET', `/files/${fileId}/download`, { key: s.adminKey });
      expect(down.status).toBe(200);
      const m = await scrape(s);
      const received = value(m, 'dropzone_http_received_bytes_total');
      const sent = value(m, 'dropzone_http_sent_bytes_total');
      expect(sent).toBeGreaterThan(size); // the download streams through this server on both backends here
      // with S3, the browser PUTs straight to the bucket: only the API requests reach this server
      if (b.name === 'local') expect(received).toBeGreaterThan(size);
      else expect(received).toBeGreaterThan(0);
      const again = await scrape(s);
      expect(value(again, 'dropzone_http_sent_bytes_total')).toBeGreaterThan(sent); // the first scrape's answer counts
      expect(value(m, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
      expect(value(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(m.nodejs_heap_size_total_bytes.type).toBe('gauge');
    } finally {
      await s.close();
    }
  });

  it('keeps one registry per server: two servers in one process count separately', async () => {
    const other = await b.start({ settings: { 'metrics.enabled': true } });
    try {
      for (let i = 0; i < 3; i++) await other.req('GET', '//healthz');
      const mine = await scrape(t);
      const theirs = await scrape(other);
      expect(value(theirs, 'dropzone_http_requests_total', { route: '/healthz', status: '200' })).toBe(3);
      expect(() => value(mine, 'dropzone_http_requests_total', { route: '/healthz' })).toThrow(/no sample/);
    } finally {
      await other.close();
    }
  });
});

describe('GET /metrics: uploads through this server (local backend: the only one whose PUTs reach it)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ settings: { 'metrics.enabled': true } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('shows an upload in flight while its body streams in, and none after', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const size = 64 * 1024;
    const up = await t.requestUpload(t.adminKey, dz._id, 'slow.bin', size);
    const body = new Readable({ read() {} });
    const url = new URL(up.signedUrl);
    const done = new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'PUT', headers: up.headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      body.pipe(req);
    });
    body.push(Buffer.alloc(size / 2, 1));
    // the handler is streaming the first half into the store: poll (bounded) until the gauge shows it
    let inFlight = 0;
    for (let i = 0; i < 200 && inFlight !== 1; i++) {
      inFlight = value(await scrape(t), 'dropzone_uploads_in_flight');
      if (inFlight !== 1) await new Promise((r) => setTimeout(r, 10));
    }
    expect(inFlight).toBe(1);
    body.push(Buffer.alloc(size / 2, 2));
    body.push(null);
    expect(await done).toBe(200);
    expect(value(await scrape(t), 'dropzone_uploads_in_flight')).toBe(0);
  });

  it('counts blob store errors by operation (a broken blob directory fails the PUT with a 500)', async () => {
    const s = await startTestServer({ settings: { 'metrics.enabled': true } });
    try {
      const dz = await s.createDropzone(s.adminKey);
      const up = await s.requestUpload(s.adminKey, dz._id, 'x.bin', 5);
      expect(value(await scrape(s), 'dropzone_blob_store_errors_total', { operation: 'put' })).toBe(0);
      // the blob directory becomes a plain file: every write under it fails (ENOTDIR), even for root
      const blobs = join(s.dataDir, 'blobs');
      rmSync(blobs, { recursive: true, force: true });
      writeFileSync(blobs, 'not a directory');
      const put = await s.put(up, 'hello');
      expect(put.status).toBe(500);
      await put.arrayBuffer();
      const m = await scrape(s);
      expect(value(m, 'dropzone_blob_store_errors_total', { operation: 'put' })).toBe(1);
      expect(value(m, 'dropzone_http_requests_total', { method: 'PUT', route: '/_blobs/*', status: '500' })).toBe(1);
    } finally {
      await s.close();
    }
  });
});
