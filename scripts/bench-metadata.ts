/**
 * Metadata throughput on SQLite and PostgreSQL, one node and three, as ratios measured in one run (issue 9).
 *
 *   node --import tsx scripts/bench-metadata.ts [--exe dist/dropzone] [--baseline <older executable>] [--seconds 10] [--runs 3]
 *
 * For each setup it starts the executable(s), creates a dropzone with the admin key and runs wrk (`-t2 -c50` in
 * total, split over the nodes) against `GET /api/v1/dropzones/:id` with an API key, `--runs` times interleaved, and
 * reports the median requests per second and p99 latency. PostgreSQL is a private cluster started for the run
 * (as the tests do). With `--baseline`, the same SQLite measurement of another build runs in the same loop, so "the
 * port made nothing slower" is a ratio of one run, not a comparison of numbers from different days.
 * Needs wrk (apt-get install wrk). Prints ratios; bare numbers are only for orientation on this machine.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { startPostgresCluster } from '../test/helpers/postgres-cluster.js';

const { values } = parseArgs({
  options: { exe: { type: 'string', default: 'dist/dropzone' }, baseline: { type: 'string' }, seconds: { type: 'string', default: '10' }, runs: { type: 'string', default: '3' } },
});
const exe = resolve(values.exe!);
const seconds = Number(values.seconds);
const runs = Number(values.runs);
if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) throw new Error('wrk is needed: apt-get install wrk');

const adminKey = `dzk_bench_${randomBytes(12).toString('hex')}`;
const dirs: string[] = [];
const children: ChildProcess[] = [];

/** Starts `bin serve` with `env`; resolves with its URL. */
function node(bin: string, env: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'dz-bench-'));
  dirs.push(dir);
  const child = spawn(bin, ['serve', '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DROPZONE_DATA_DIR: dir, DROPZONE_ADMIN_KEY: adminKey, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return new Promise((res, rej) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) res(m[1]);
    });
    child.stderr!.on('data', (d) => (out += d));
    child.once('exit', (code) => rej(new Error(`${bin} exited ${code}: ${out}`)));
  });
}

/** wrk against one URL; requests per second and p99 in ms. */
function wrk(url: string, threads: number, connections: number): Promise<{ rps: number; p99: number }> {
  return new Promise((res, rej) => {
    const child = spawn('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `x-api-key: ${adminKey}`, url]);
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', () => {
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const m = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
      if (!rps || !m) return rej(new Error(`wrk output not understood:\n${out}`));
      const p99 = Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
      res({ rps, p99 });
    });
  });
}

async function createDropzone(url: string): Promise<string> {
  const r = await fetch(`${url}/api/v1/dropzones`, {
    method: 'POST',
    headers: { 'x-api-key': adminKey, 'content-type': 'application/json' },
    body: JSON.stringify({ gb: 1, days: 30 }),
  });
  if (r.status !== 201) throw new Error(`create dropzone: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { data: { _id: string } }).data._id;
}

interface Setup {
  label: string;
  urls: string[];
  dz: string;
}
const samples = new Map<string, { rps: number; p99: number }[]>();

async function measure(s: Setup) {
  // 2 threads and 50 connections in total, split over the nodes
  const per = s.urls.length;
  const results = await Promise.all(
    s.urls.map((u) => wrk(`${u}/api/v1/dropzones/${s.dz}`, Math.max(1, Math.floor(2 / per)), Math.max(1, Math.round(50 / per)))),
  );
  const one = { rps: results.reduce((a, r) => a + r.rps, 0), p99: Math.max(...results.map((r) => r.p99)) };
  samples.set(s.label, [...(samples.get(s.label) ?? []), one]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const cluster = await startPostgresCluster();
try {
  const admin = postgres(cluster.adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe('CREATE DATABASE dz_bench_1');
  await admin.unsafe('CREATE DATABASE dz_bench_3');
  await admin.end();
  const pgUrl = (db: string) => cluster.adminUrl.replace(/\/postgres$/, `/${db}`);
  const shared = mkdtempSync(join(tmpdir(), 'dz-bench-shared-'));
  dirs.push(shared);
  const pgEnv = (db: string) => ({
    DROPZONE_DATABASE_URL: pgUrl(db),
    DROPZONE_STORAGE_LOCAL_SHARED: 'true',
    DROPZONE_DATA_DIR: shared,
  });

  const setups: Setup[] = [];
  const add = async (label: string, urls: string[]) => setups.push({ label, urls, dz: await createDropzone(urls[0]) });
  await add('sqlite, 1 node', [await node(exe, {})]);
  if (values.baseline) await add('sqlite, 1 node (baseline)', [await node(resolve(values.baseline), {})]);
  await add('postgres, 1 node', [await node(exe, pgEnv('dz_bench_1'))]);
  const three = [await node(exe, pgEnv('dz_bench_3'))];
  three.push(...(await Promise.all([node(exe, pgEnv('dz_bench_3')), node(exe, pgEnv('dz_bench_3'))])));
  await add('postgres, 3 nodes', three);

  for (let i = 0; i < runs; i++) for (const s of setups) await measure(s);

  const med = (label: string) => {
    const xs = samples.get(label)!;
    return { rps: median(xs.map((x) => x.rps)), p99: median(xs.map((x) => x.p99)) };
  };
  console.log(`GET /api/v1/dropzones/:id with an API key, wrk -t2 -c50 total, ${seconds}s × ${runs} runs (medians):`);
  for (const s of setups) {
    const m = med(s.label);
    console.log(`  ${s.label.padEnd(28)} ${m.rps.toFixed(0).padStart(7)} req/s   p99 ${m.p99.toFixed(2)} ms`);
  }
  const ratio = (a: string, b: string) => (med(a).rps / med(b).rps).toFixed(2);
  console.log('Ratios (req/s):');
  if (values.baseline) console.log(`  sqlite this build / baseline: ${ratio('sqlite, 1 node', 'sqlite, 1 node (baseline)')}`);
  console.log(`  postgres 1 node / sqlite 1 node: ${ratio('postgres, 1 node', 'sqlite, 1 node')}`);
  console.log(`  postgres 3 nodes / postgres 1 node: ${ratio('postgres, 3 nodes', 'postgres, 1 node')}`);
} finally {
  for (const c of children) c.kill('SIGKILL');
  await cluster.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
