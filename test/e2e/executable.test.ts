// End-to-end test of the single executable: build it (`node build.mjs`; a cold build compiles better-sqlite3 for the
// embedded Node and takes minutes, later builds reuse build-cache/), copy it alone into an empty directory, start it
// with a clean environment (`env -i`), and drive create → upload → confirm → download over HTTP, then SIGTERM → exit 0.
// Skips, saying why, only when this machine cannot build it at all (not linux-x64, or no compiler toolchain).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getMetricsFromIterator } from 'prom2javascript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgresDatabase } from '../helpers/postgres.js';
import { ROOT, api, expectNoSecretsInLogs, serve, stop, uploadFlow, type Served } from './flow.js';

const BUILD_TIMEOUT_MS = 12 * 60_000;

/** Why the executable cannot be built here, or undefined when it can. */
function cannotBuildReason(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the executable targets linux-x64; this is ${process.platform}-${process.arch}`;
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  const missing = [['c++', 'g++', 'clang++'], ['make'], ['python3', 'python'], ['strip'], ['tar'], ['npm']]
    .filter((alternatives) => !alternatives.some(has))
    .map((alternatives) => alternatives.join('/'));
  if (missing.length) return `missing build tools: ${missing.join(', ')} (needed to compile better-sqlite3 for the embedded Node)`;
  if (!fs.existsSync('/usr/bin/env')) return '/usr/bin/env is missing (needed for env -i)';
  return undefined;
}

/** Runs `node build.mjs`; resolves with its output, rejects with it when the build fails. */
function build(): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'build.mjs')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS - 10_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`node build.mjs failed (${code ?? signal}):\n${out}`));
    });
  });
}

/** The names of the threads of process `pid` (Node names a worker thread `WorkerThread`). */
const threadNames = (pid: number): string[] => fs.readdirSync(`/proc/${pid}/task`).map((t) => fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim());
/** The environment of process `pid` as `NAME=value` entries (what the process was exec'd with last). */
const environOf = (pid: number): string[] => fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');

const skipReason = cannotBuildReason();
if (skipReason) console.warn(`\n[e2e] SKIPPING the executable end-to-end test: ${skipReason}\n`);

describe.skipIf(skipReason !== undefined)('the single executable (dist/dropzone)', () => {
  let work: string;
  let exe: string;
  let buildOutput = '';
  const running: Served[] = [];

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-e2e-'));
    buildOutput = await build();
    const built = path.join(ROOT, 'dist', 'dropzone');
    // Only the executable: an otherwise empty directory, no node_modules anywhere above it.
    const bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    exe = path.join(bin, 'dropzone');
    fs.copyFileSync(built, exe);
    fs.chmodSync(exe, 0o755);
    fs.mkdirSync(path.join(work, 'home'));
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const s of running.splice(0)) await stop(s);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** `env -i HOME=<work>/home [extra...] <exe> args`, from `cwd` (default: the executable's own empty directory). */
  function cleanEnvArgs(args: string[], extra: string[] = []): string[] {
    return ['-i', `HOME=${path.join(work, 'home')}`, ...extra, exe, ...args];
  }

  it('was built and reports the embedded Node 24', () => {
    expect(buildOutput).toMatch(/Built dist\/dropzone: [\d.]+ MiB/);
    // V8 flags baked into the blob: small young-generation semi-spaces keep the resident memory down; the request path
    // stays compiled (no bytecode flushing); a scavenge when the young generation is full, not at 80% (no minor-GC task)
    expect(buildOutput).toMatch(/execArgv=--max-semi-space-size=2 --no-flush-bytecode --no-minor-gc-task$/m);
    const r = spawnSync('/usr/bin/env', cleanEnvArgs(['version']), { cwd: path.dirname(exe), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^dropzone-server \S+ \(node v24\.\d+\.\d+, linux-x64\)\n$/);
    // Not a script: an ELF file with the SEA blob inside.
    const head = Buffer.alloc(4);
    const fd = fs.openSync(exe, 'r');
    fs.readSync(fd, head, 0, 4, 0);
    fs.closeSync(fd);
    expect(head.toString('latin1')).toBe('\x7fELF');
  });

  it('--help and a bad flag, with an entirely empty environment', () => {
    const help = spawnSync('/usr/bin/env', ['-i', exe, '--help'], { cwd: path.dirname(exe), encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: dropzone <command>/);
    const bad = spawnSync('/usr/bin/env', ['-i', exe, 'serve', '--port', 'eighty'], { cwd: path.dirname(exe), encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/server\.port \(from --port\)/);
  });

  it('serves create → upload → confirm → download from a clean environment, then exits 0 on SIGTERM', async () => {
    const dataDir = path.join(work, 'data');
    const s = await serve('/usr/bin/env', cleanEnvArgs(['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir]), {
      cwd: path.dirname(exe),
      waitForAdminKey: true,
      timeoutMs: 30_000,
    });
    running.push(s);
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.adminKey).toBeTruthy();
    // `serve` re-executes itself in place (same pid) with glibc's malloc arenas capped: with one arena per thread,
    // memory freed by the file-system threads stayed resident and grew with every part of a multipart upload
    expect(environOf(s.child.pid!)).toContain('MALLOC_ARENA_MAX=2');

    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    const a = await uploadFlow(s.url, s.adminKey!, { size: 3 * 1024 * 1024 + 17 });
    const b = await uploadFlow(s.url, s.adminKey!, { legacy: true, size: 1234 });
    // the executable hashes uploads with its own addon on a thread of its own: no worker thread (a second V8 isolate)
    expect(threadNames(s.child.pid!)).not.toContain('WorkerThread');
    // Many short requests (each prepares SQLite statements), then idle time so V8 collects them off the JS stack.
    // With an addon built against Node >= 24.19 headers this aborted the process (nodejs/node#65446).
    for (let i = 0; i < 300; i++) expect((await api(s.url, 'GET', `/files/${a.fileId}`, { key: s.adminKey })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    // The dropzone page and its static files come out of the executable itself (SEA assets), not a public/ folder.
    const dz = (await api(s.url, 'GET', `/dropzones/${a.dropzoneId}`, { key: s.adminKey })).body.data;
    const page = await fetch(dz.uploadUrl);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('../assets/page.js');
    for (const asset of ['page.js', 'page.css']) {
      const res = await fetch(`${s.url}/assets/${asset}`);
      expect(res.status, asset).toBe(200);
      expect((await res.text()).length, asset).toBeGreaterThan(100);
    }
    // The API reference and its vendor files (swagger-ui-dist) are embedded too: no node_modules next to the executable.
    const docs = await fetch(`${s.url}/api/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await docs.text()).toContain('../assets/vendor/swagger-ui-dist/swagger-ui-bundle.js');
    for (const asset of ['vendor/swagger-ui-dist/swagger-ui-bundle.js', 'vendor/swagger-ui-dist/swagger-ui.css', 'docs.js']) {
      const res = await fetch(`${s.url}/assets/${asset}`);
      expect(res.status, asset).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      if (asset.startsWith('vendor/')) expect(body.equals(fs.readFileSync(path.join(ROOT, 'node_modules', asset.slice('vendor/'.length)))), asset).toBe(true);
    }
    expect((await fetch(`${s.url}/assets/vendor/swagger-ui-dist/package.json`)).status).toBe(404);
    const openapi = await fetch(`${s.url}/api/v1/openapi.json`);
    expect(openapi.status).toBe(200);
    expect((await openapi.json()).openapi).toMatch(/^3\./);

    // The database is a real SQLite file in the data directory, and the addon was extracted under $HOME/.cache.
    expect(fs.statSync(path.join(dataDir, 'dropzone.db')).size).toBeGreaterThan(0);
    const cache = path.join(work, 'home', '.cache', 'dropzone-server');
    expect(fs.readdirSync(cache).filter((f) => /^better_sqlite3-[0-9a-f]{16}\.node$/.test(f))).toHaveLength(1);
    // Nothing was written next to the executable.
    expect(fs.readdirSync(path.dirname(exe))).toEqual(['dropzone']);

    expect(await stop(s)).toBe(0);
    expect(s.stderr()).not.toMatch(/ExperimentalWarning|Error/);
    expectNoSecretsInLogs(s.stderr(), { adminKey: s.adminKey!, dropzoneIds: [a.dropzoneId, b.dropzoneId], signedUrls: [a.signedUrl, b.signedUrl] });

    // Second start on the same data, with metrics behind a token: no new admin key, the uploaded file is still there.
    const metricsToken = 'e2e-metrics-token-0123456789';
    const again = await serve(
      '/usr/bin/env',
      cleanEnvArgs(['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--set', 'metrics.enabled=true'], [`DROPZONE_METRICS_TOKEN=${metricsToken}`]),
      { cwd: path.dirname(exe), timeoutMs: 30_000 },
    );
    running.push(again);
    const got = await fetch(`${again.url}/api/v1/files/${a.fileId}/download`, { headers: { 'x-api-key': s.adminKey! } });
    expect(Buffer.from(await got.arrayBuffer()).equals(a.bytes)).toBe(true);
    // prom-client is bundled: /metrics answers the Prometheus text format (parsed; NaN lag samples aside) and counted the download.
    expect((await fetch(`${again.url}/metrics`)).status).toBe(401);
    const scraped = await fetch(`${again.url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
    expect(scraped.status).toBe(200);
    const metrics = await getMetricsFromIterator((await scraped.text()).split('\n').filter((l) => !/^nodejs_eventloop_lag_\w+ Nan$/.test(l))[Symbol.iterator]());
    expect(metrics.dropzone_http_requests_total.data).toContainEqual({ labels: { method: 'GET', route: '/api/v1/files/:fileId/download', status: '200' }, value: 1 });
    expect(metrics.dropzone_files.data).toContainEqual({ labels: { status: 'uploaded' }, value: 2 });
    expect(metrics.dropzone_http_sent_bytes_total.data[0]).toMatchObject({ value: expect.any(Number) });
    expect((metrics.dropzone_http_sent_bytes_total.data[0] as { value: number }).value).toBeGreaterThan(a.bytes.length);
    expect(metrics.process_resident_memory_bytes.type).toBe('gauge');
    expect(again.stdout()).not.toMatch(/Admin API key/);
    expect(await stop(again)).toBe(0);
  });

  it('runs on PostgreSQL: the driver bundled inside the executable is loaded for a postgres:// URL, and the flow works', async () => {
    const pg = await freshPostgresDatabase('the executable on PostgreSQL');
    if ('skipped' in pg) return; // printed loudly by the helper (and a failure in CI)
    try {
      const dataDir = path.join(work, 'data-pg');
      const s = await serve(
        '/usr/bin/env',
        cleanEnvArgs(['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], [`DROPZONE_DATABASE_URL=${pg.url}`, 'DROPZONE_STORAGE_LOCAL_SHARED=true']),
        { cwd: path.dirname(exe), waitForAdminKey: true, timeoutMs: 30_000 },
      );
      running.push(s);
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
      await uploadFlow(s.url, s.adminKey!, { size: 100_000 });
      await uploadFlow(s.url, s.adminKey!, { legacy: true, size: 999 });
      // the metadata went to PostgreSQL: no SQLite database was created in the data directory
      expect(fs.existsSync(path.join(dataDir, 'dropzone.db'))).toBe(false);
      expect(await stop(s)).toBe(0);
    } finally {
      await pg.drop();
    }
  });

  it('keeps an operator-set MALLOC_ARENA_MAX (no re-exec) and answers as usual', async () => {
    const s = await serve('/usr/bin/env', ['-i', `HOME=${path.join(work, 'home')}`, 'MALLOC_ARENA_MAX=4', exe, 'serve', '--ephemeral', '--port', '0', '--host', '127.0.0.1'], {
      cwd: path.dirname(exe),
      timeoutMs: 30_000,
    });
    running.push(s);
    expect(environOf(s.child.pid!)).toContain('MALLOC_ARENA_MAX=4');
    expect(environOf(s.child.pid!)).not.toContain('MALLOC_ARENA_MAX=2');
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect(await stop(s)).toBe(0);
  });

  it('--ephemeral with nothing but TMPDIR in the environment: data lives in a temp dir removed on exit', async () => {
    const tmp = path.join(work, 'tmp');
    fs.mkdirSync(tmp);
    const s = await serve('/usr/bin/env', ['-i', `TMPDIR=${tmp}`, exe, 'serve', '--ephemeral', '--port', '0', '--host', '127.0.0.1'], {
      cwd: path.dirname(exe),
      waitForAdminKey: true,
      timeoutMs: 30_000,
    });
    running.push(s);
    // an operator's own MALLOC_ARENA_MAX is kept (here: none set by env -i, so the cap applies)
    expect(environOf(s.child.pid!)).toContain('MALLOC_ARENA_MAX=2');
    const created = await api(s.url, 'POST', '/dropzones', { key: s.adminKey, body: { gb: 1, days: 30 } });
    expect(created.status, created.text).toBe(201);
    expect(fs.readdirSync(tmp).some((d) => d.startsWith('dropzone-ephemeral-'))).toBe(true);
    expect(await stop(s)).toBe(0);
    expect(fs.readdirSync(tmp).filter((d) => d.startsWith('dropzone-ephemeral-'))).toEqual([]);
  });
});
