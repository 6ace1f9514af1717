#!/usr/bin/env node
// Upload and download throughput through the server, as ratios against a plain local file copy of the same bytes
// measured in this same run (absolute speeds depend on the machine; the ratios are what to compare).
//
//   node scripts/throughput-bench.mjs [--exe dist/dropzone] [--mib 256] [--runs 3]
//
// Without --exe the server runs from source (node --import tsx src/main.ts).
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { exe: { type: 'string' }, mib: { type: 'string' }, runs: { type: 'string' } } });
const SIZE = Number(values.mib ?? 256) * 1024 * 1024;
const RUNS = Number(values.runs ?? 3);
const work = mkdtempSync(path.join(os.tmpdir(), 'dz-bench-'));
const src = path.join(work, 'src.bin');
const chunk = Buffer.alloc(1 << 20, 7);
{
  const out = createWriteStream(src);
  for (let i = 0; i < SIZE / chunk.length; i++) if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
  await new Promise((r) => out.end(r));
}

const [cmd, args] = values.exe
  ? [path.resolve(values.exe), []]
  : [process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts')]];
const child = spawn(cmd, [...args, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', path.join(work, 'data'), '--log-level', 'warn'], {
  cwd: ROOT,
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
const { url, key } = await new Promise((resolve) => {
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    const u = /listening on (\S+)/.exec(out);
    const k = /Admin API key[^:]*: (\S+)/.exec(out);
    if (u && k) resolve({ url: u[1], key: k[1] });
  });
});

const json = async (method, p, body) => {
  const res = await fetch(`${url}/api/v1${p}`, { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  return (await res.json()).data;
};
const send = (u, method, headers, body) =>
  new Promise((resolve, reject) => {
    const req = http.request(u, { method, headers }, (res) => {
      res.on('data', () => {});
      res.on('end', () => (res.statusCode < 300 ? resolve() : reject(new Error(`${method} ${res.statusCode}`))));
    });
    req.on('error', reject);
    if (body) pipeline(body, req).catch(reject);
    else req.end();
  });
const time = async (fn) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const copy = [];
const upload = [];
const download = [];
const dz = await json('POST', '/dropzones', { gb: 4, days: 30 });
for (let i = 0; i < RUNS; i++) {
  copy.push(await time(() => pipeline(createReadStream(src), createWriteStream(path.join(work, `copy-${i}.bin`)))));
  const up = await json('POST', `/dropzones/${dz._id}/files`, { name: `f${i}.bin`, type: '', size: SIZE });
  upload.push(await time(() => send(up.signedUrl, 'PUT', up.headers, createReadStream(src))));
  await json('POST', `/files/${up.fileId}/confirm`);
  download.push(await time(() => send(`${url}/api/v1/files/${up.fileId}/download`, 'GET', { 'x-api-key': key })));
}
child.kill('SIGTERM');
rmSync(work, { recursive: true, force: true });
const c = median(copy);
console.log(`${SIZE / 1048576} MiB, ${RUNS} runs, medians; baseline = local file copy of the same bytes`);
console.log(`upload (PUT to signed URL, MD5 + fsync):  ${(median(upload) / c).toFixed(2)}x the copy time`);
console.log(`download (GET /files/:id/download):       ${(median(download) / c).toFixed(2)}x the copy time`);
