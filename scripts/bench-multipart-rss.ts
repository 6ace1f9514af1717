/**
 * Peak memory of a big upload through multipart against a single PUT of the same size (issue 11), in one run.
 *
 *   node --import tsx scripts/bench-multipart-rss.ts [--exe dist/dropzone] [--mib 2048]
 *
 * Each upload goes to a fresh server process (local backend); the server's peak RSS (VmHWM) is read from /proc after
 * the upload is confirmed, and reported next to its RSS before the upload. Bodies stream from a file on disk, so the
 * client holds at most a part in memory. Prints the growth of each and their ratio.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { exe: { type: 'string', default: 'dist/dropzone' }, mib: { type: 'string', default: '2048' } } });
const exe = resolve(values.exe!);
const size = Number(values.mib) * 1024 * 1024;
const key = `dzk_rss_${randomBytes(12).toString('hex')}`;
const work = mkdtempSync(join(tmpdir(), 'dz-rss-'));

/** A file of `size` bytes (random 1 MiB block repeated) to stream from. */
const source = join(work, 'src.bin');
{
  const block = randomBytes(1024 * 1024);
  const fd = openSync(source, 'w');
  for (let i = 0; i < size / block.length; i++) writeSync(fd, block);
  closeSync(fd);
}

const hwm = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

async function server(): Promise<{ url: string; child: ChildProcess }> {
  const dir = mkdtempSync(join(work, 'data-'));
  const child = spawn(exe, ['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dir, '--log-level', 'warn'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DROPZONE_ADMIN_KEY: key, DROPZONE_STORAGE_RESERVE_BYTES: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((res) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]);
    });
  });
  return { url, child };
}

async function api(url: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { 'x-api-key': key, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}

/** PUTs bytes [start, end) of the source file to `url` with `headers`, streaming; resolves with the ETag. */
function put(url: string, headers: Record<string, string>, start: number, end: number): Promise<string> {
  return new Promise((res, rej) => {
    const req = request(url, { method: 'PUT', headers: { ...headers, 'content-length': String(end - start) } }, (r) => {
      r.resume();
      r.on('end', () => (r.statusCode === 200 ? res(String(r.headers.etag)) : rej(new Error(`PUT ${r.statusCode}`))));
    });
    req.on('error', rej);
    createReadStream(source, { start, end: end - 1 }).pipe(req);
  });
}

async function measure(mode: 'single' | 'multipart'): Promise<{ before: number; peak: number }> {
  const { url, child } = await server();
  try {
    const dz = (await api(url, 'POST', '/dropzones', { gb: 4, days: 30 })).data;
    const up = (await api(url, 'POST', `/dropzones/${dz._id}/files`, { name: 'big.bin', type: 'application/octet-stream', size })).data;
    const before = rss(child.pid!);
    if (mode === 'single') {
      await put(up.signedUrl, up.headers, 0, size);
      await api(url, 'POST', `/files/${up.fileId}/confirm`);
    } else {
      const start = (await api(url, 'POST', `/files/${up.fileId}/multipart`)).data;
      const numbers = Array.from({ length: start.partCount }, (_, i) => i + 1);
      const signed = (await api(url, 'POST', `/files/${up.fileId}/multipart/${start.uploadId}/sign`, { partNumbers: numbers })).data.parts;
      const parts: { PartNumber: number; ETag: string }[] = [];
      // four parts in flight, as the page does
      for (let i = 0; i < signed.length; i += 4) {
        const batch = signed.slice(i, i + 4);
        const etags = await Promise.all(
          batch.map((p: any) => put(p.url, p.headers, (p.partNumber - 1) * start.partSize, Math.min(size, p.partNumber * start.partSize))),
        );
        batch.forEach((p: any, j: number) => parts.push({ PartNumber: p.partNumber, ETag: etags[j] }));
      }
      await api(url, 'POST', `/files/${up.fileId}/multipart/${start.uploadId}/complete`, { parts });
    }
    return { before, peak: hwm(child.pid!) };
  } finally {
    child.kill('SIGKILL');
  }
}

try {
  const single = await measure('single');
  const multi = await measure('multipart');
  const grow = (m: { before: number; peak: number }) => m.peak - m.before;
  console.log(`${values.mib} MiB upload, local backend, server RSS in MiB (before → peak):`);
  console.log(`  single PUT: ${single.before.toFixed(0)} → ${single.peak.toFixed(0)} (grew ${grow(single).toFixed(0)})`);
  console.log(`  multipart:  ${multi.before.toFixed(0)} → ${multi.peak.toFixed(0)} (grew ${grow(multi).toFixed(0)})`);
  console.log(`  peak multipart / peak single PUT: ${(multi.peak / single.peak).toFixed(2)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
