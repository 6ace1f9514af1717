/**
 * Bodies stream end to end: a 512 MiB upload, its download and its ZIP pass through a server process whose peak
 * memory (VmHWM) grows by far less than the file. A server that buffered a whole body would grow by at least 512 MiB.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Served, api, serve, stop, tsxMain } from './flow.js';

const SIZE = 512 * 1024 * 1024;
const CHUNK = 1024 * 1024;
/** Allowed growth of the server's peak RSS over the whole test: a quarter of the file. */
const ALLOWED_GROWTH = SIZE / 4;

/** Peak resident set size of `pid` in bytes, from /proc (Linux). */
const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** SIZE bytes of a repeating pattern, produced chunk by chunk (never held whole). */
function pattern(): Readable {
  let sent = 0;
  const chunk = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i++) chunk[i] = (i * 31) & 0xff;
  return new Readable({
    read() {
      if (sent >= SIZE) return this.push(null);
      sent += CHUNK;
      this.push(chunk);
    },
  });
}

/** Streams a request body and resolves with the status, consuming the answer as a hash (never buffering it). */
function request(url: string, opts: { method: string; headers?: Record<string, string>; body?: Readable }): Promise<{ status: number; bytes: number; md5: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method, headers: opts.headers }, (res) => {
      const hash = createHash('md5');
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        hash.update(d);
      });
      res.on('end', () => resolve({ status: res.statusCode!, bytes, md5: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body) pipeline(opts.body, req).catch(reject);
    else req.end();
  });
}

let s: Served;
beforeAll(async () => {
  const { cmd, args } = tsxMain(['serve', '--ephemeral', '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn']);
  s = await serve(cmd, args, { waitForAdminKey: true, timeoutMs: 30_000 });
});
afterAll(async () => {
  if (s) expect(await stop(s)).toBe(0);
});

it('a 512 MiB file goes up, comes down and is zipped without the server holding it in memory', { timeout: 180_000 }, async () => {
  const key = s.adminKey!;
  const dz = (await api(s.url, 'POST', '/dropzones', { key, body: { gb: 1, days: 30 } })).body.data;
  // warm up every path once with a small file, so the baseline includes the code and its caches
  const small = (await api(s.url, 'POST', `/dropzones/${dz._id}/files`, { key, body: { name: 'warm.bin', type: '', size: 3 } })).body.data;
  expect((await request(small.signedUrl, { method: 'PUT', headers: small.headers, body: Readable.from([Buffer.from('abc')]) })).status).toBe(200);
  expect((await api(s.url, 'POST', `/files/${small.fileId}/confirm`, { key })).status).toBe(200);
  expect((await request(`${s.url}/api/v1/dropzones/${dz._id}/zip`, { method: 'GET', headers: { 'x-api-key': key } })).status).toBe(200);
  const baseline = peakRss(s.child.pid!);

  const up = (await api(s.url, 'POST', `/dropzones/${dz._id}/files`, { key, body: { name: 'big.bin', type: 'application/octet-stream', size: SIZE } })).body.data;
  const expected = createHash('md5');
  const body = pattern();
  body.on('data', (d: Buffer) => expected.update(d));
  const put = await request(up.signedUrl, { method: 'PUT', headers: up.headers, body });
  expect(put.status).toBe(200);
  const md5 = expected.digest('hex');
  expect((await api(s.url, 'POST', `/files/${up.fileId}/confirm`, { key })).body.data.meta.s3Status).toBe('uploaded');

  const down = await request(`${s.url}/api/v1/files/${up.fileId}/download`, { method: 'GET', headers: { 'x-api-key': key } });
  expect(down).toEqual({ status: 200, bytes: SIZE, md5 });
  const zip = await request(`${s.url}/api/v1/dropzones/${dz._id}/zip`, { method: 'GET', headers: { 'x-api-key': key } });
  expect(zip.status).toBe(200);
  expect(zip.bytes).toBeGreaterThan(SIZE);

  const growth = peakRss(s.child.pid!) - baseline;
  console.log(`[memory] server peak RSS grew by ${(growth / 1048576).toFixed(1)} MiB for a ${SIZE / 1048576} MiB file (allowed ${ALLOWED_GROWTH / 1048576} MiB)`);
  expect(growth).toBeLessThan(ALLOWED_GROWTH);
});
