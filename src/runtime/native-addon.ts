import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getSea } from './assets.js';

/** SEA asset key under which `build.mjs` embeds better-sqlite3's addon (built for the embedded Node). */
export const SQLITE_ADDON_ASSET = 'better_sqlite3.node';
/** SEA asset key of our MD5 addon (native/md5: OpenSSL's MD5 on a thread of its own). */
export const MD5_ADDON_ASSET = 'dropzone_md5.node';
/**
 * Suffix of the asset beside each addon that holds its SHA-256 (hex), written by `build.mjs`: with it, a start that finds
 * the addon already extracted never reads the embedded bytes — they are pages of the executable that would otherwise stay
 * in the process's resident memory (2 MiB for SQLite's) for nothing.
 */
export const ADDON_DIGEST_SUFFIX = '.sha256';

/** A native library to extract: its SHA-256 (hex) and its bytes, read only when the file has to be written. */
export interface AddonSource {
  digest: string;
  bytes: () => Uint8Array;
}

/** A directory the addon may be extracted to. */
export interface CacheDirCandidate {
  /** Absolute directory path (created with mode 0700 when missing). */
  dir: string;
  /** Where the candidate came from, for error messages (e.g. `$XDG_CACHE_HOME`). */
  source: string;
  /**
   * The directory lives in a shared location (the system temp dir): it must be owned by the current user
   * and not writable by group/others, otherwise another user could plant a library there.
   */
  shared?: boolean;
}

/** Why one candidate directory was rejected. */
export interface AddonAttempt {
  /** The candidate that was tried. */
  candidate: CacheDirCandidate;
  /** The step that failed. */
  stage: 'mkdir' | 'check' | 'write' | 'load';
  /** The underlying error message. */
  error: string;
}

/** Outcome of {@link extractAndLoad}. */
export interface ExtractResult<T> {
  /** The extracted library file that was loaded. */
  file: string;
  /** Whatever the loader returned (the addon's exports). */
  exports: T;
  /** Candidates skipped before the one that worked. */
  skipped: AddonAttempt[];
}

/** Environment inputs of {@link nativeCacheDirCandidates}; defaults come from the running process. */
export interface CandidateEnv {
  /** Environment variables (reads DROPZONE_NATIVE_CACHE, XDG_CACHE_HOME). */
  env?: NodeJS.ProcessEnv;
  /** Home directory; `''` when unknown. */
  home?: string;
  /** System temp directory. */
  tmpdir?: string;
  /** Numeric user id (or a stand-in on platforms without uids). */
  uid?: number | string;
}

/**
 * The directories to extract native addons to, in order of preference: `$DROPZONE_NATIVE_CACHE`,
 * `$XDG_CACHE_HOME/dropzone-server`, `~/.cache/dropzone-server`, `<tmpdir>/dropzone-server-<uid>`.
 * Relative or empty variables are ignored (XDG requires absolute paths); duplicates are removed.
 */
export function nativeCacheDirCandidates(input: CandidateEnv = {}): CacheDirCandidate[] {
  const env = input.env ?? process.env;
  const home = input.home ?? safeHomedir();
  const tmp = input.tmpdir ?? os.tmpdir();
  const uid = input.uid ?? (typeof process.getuid === 'function' ? process.getuid() : os.userInfo().username);
  const out: CacheDirCandidate[] = [];
  const add = (dir: string | undefined, source: string, shared = false): void => {
    if (!dir || !path.isAbsolute(dir)) return;
    const resolved = path.resolve(dir);
    if (!out.some((c) => c.dir === resolved)) out.push({ dir: resolved, source, shared });
  };
  add(env.DROPZONE_NATIVE_CACHE, '$DROPZONE_NATIVE_CACHE');
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) add(path.join(env.XDG_CACHE_HOME, 'dropzone-server'), '$XDG_CACHE_HOME');
  if (home && path.isAbsolute(home)) add(path.join(home, '.cache', 'dropzone-server'), '~/.cache');
  add(path.join(tmp, `dropzone-server-${uid}`), 'os.tmpdir()', true);
  return out;
}

function safeHomedir(): string {
  try {
    return os.homedir();
  } catch {
    return '';
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? e.message;
  return String(e);
}

/** Throws unless `dir` is a real directory owned by the current user and not writable by group or others. */
function checkPrivateDir(dir: string): void {
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error('not a directory (or a symlink)');
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`owned by uid ${st.uid}, not ${process.getuid()}`);
  if ((st.mode & 0o022) !== 0) throw new Error(`mode ${(st.mode & 0o777).toString(8)} is group/world-writable`);
}

/** True when `file` already holds the content with this SHA-256 (so a previous run's extraction can be reused). */
function hasContent(file: string, digest: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    return sha256(fs.readFileSync(file)) === digest;
  } catch {
    return false;
  }
}

/** Writes `bytes` to `file` through a unique temp file in the same directory and an atomic rename. */
function writeAtomically(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, bytes, { mode: 0o700, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* best effort */
    }
    throw e;
  }
}

/**
 * Extracts a native library (its bytes, or an {@link AddonSource} whose bytes are read only when a file has to be
 * written) into the first candidate directory where it can be written and loaded, then returns what `load(file)`
 * returned. The file name is content-hashed, an existing identical file is reused, and new files are written
 * atomically (concurrent processes are safe). A candidate is skipped when it cannot be
 * created, fails the ownership check (shared candidates), cannot be written (read-only, EACCES, ...) or when
 * `load` throws (e.g. a `noexec` mount makes dlopen fail with "failed to map segment"/EPERM).
 * Throws an Error listing every attempt when no candidate works.
 */
export function extractAndLoad<T>(
  addon: Uint8Array | AddonSource,
  candidates: readonly CacheDirCandidate[],
  load: (file: string) => T,
  baseName = 'better_sqlite3',
): ExtractResult<T> {
  const source: AddonSource = addon instanceof Uint8Array ? { digest: sha256(addon), bytes: () => addon } : addon;
  const digest = source.digest;
  const name = `${baseName}-${digest.slice(0, 16)}.node`;
  const skipped: AddonAttempt[] = [];
  for (const candidate of candidates) {
    const file = path.join(candidate.dir, name);
    let stage: AddonAttempt['stage'] = 'mkdir';
    try {
      fs.mkdirSync(candidate.dir, { recursive: true, mode: 0o700 });
      if (candidate.shared) {
        stage = 'check';
        checkPrivateDir(candidate.dir);
      }
      stage = 'write';
      if (!hasContent(file, digest)) {
        const bytes = source.bytes();
        if (sha256(bytes) !== digest) throw new Error(`the embedded ${baseName} addon does not match its digest (broken build?)`);
        writeAtomically(file, bytes);
      }
      stage = 'load';
      return { file, exports: load(file), skipped };
    } catch (e) {
      skipped.push({ candidate, stage, error: errorMessage(e) });
    }
  }
  const detail = skipped.map((a) => `  - ${a.candidate.dir} (${a.candidate.source}): ${a.stage} failed: ${a.error}`).join('\n');
  throw new Error(
    `cannot extract the native SQLite addon to any cache directory` +
      (detail ? `:\n${detail}` : ' (no candidate directories)') +
      `\nSet DROPZONE_NATIVE_CACHE to a writable directory on a filesystem that allows executable mappings (not mounted noexec).`,
  );
}

/** Loads a native addon file with `process.dlopen` and returns its exports. */
export function dlopenAddon(file: string): object {
  const mod = { exports: {} } as { exports: object };
  process.dlopen(mod as NodeJS.Module, file);
  return mod.exports;
}

/**
 * The addon embedded under `key`: its digest from the asset beside it (the bytes stay unread until needed), or — from a
 * build without digest assets — computed from the bytes. Throws when neither asset is there.
 */
function embeddedAddon(sea: NonNullable<ReturnType<typeof getSea>>, key: string): AddonSource {
  const bytes = () => new Uint8Array(sea.getAsset(key));
  let digest: string;
  try {
    digest = Buffer.from(sea.getAsset(key + ADDON_DIGEST_SUFFIX)).toString('latin1').trim();
  } catch {
    digest = sha256(bytes());
  }
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`${key}${ADDON_DIGEST_SUFFIX} is not a SHA-256 digest`);
  return { digest, bytes };
}

let cached: object | undefined;

/**
 * Returns better-sqlite3's native binding for `new Database(path, { nativeBinding })`.
 * Inside the single executable: extracts the embedded `better_sqlite3.node` asset once into a cache directory
 * (see {@link nativeCacheDirCandidates}; `DROPZONE_NATIVE_CACHE` overrides) and dlopens it; the result is memoized.
 * Outside SEA: returns undefined, so better-sqlite3 loads its own addon from node_modules.
 * Throws (listing every directory tried) when no cache directory can be used.
 */
export function loadSqliteBinding(): object | undefined {
  if (cached) return cached;
  const sea = getSea();
  if (!sea) return undefined;
  let addon: AddonSource;
  try {
    addon = embeddedAddon(sea, SQLITE_ADDON_ASSET);
  } catch (e) {
    throw new Error(`this executable has no embedded ${SQLITE_ADDON_ASSET} asset (broken build?): ${errorMessage(e)}`);
  }
  cached = extractAndLoad(addon, nativeCacheDirCandidates(), dlopenAddon).exports;
  return cached;
}

let md5Addon: { exports?: object } | undefined;

/**
 * Our MD5 addon (native/md5) inside the single executable: extracted next to the SQLite addon and dlopened, once.
 * Undefined outside SEA, or when it cannot be loaded: uploads then hash on a worker thread instead.
 */
export function loadMd5Addon(): object | undefined {
  if (md5Addon) return md5Addon.exports;
  md5Addon = {};
  const sea = getSea();
  if (!sea) return undefined;
  try {
    md5Addon.exports = extractAndLoad(embeddedAddon(sea, MD5_ADDON_ASSET), nativeCacheDirCandidates(), dlopenAddon, 'dropzone_md5').exports;
  } catch {
    // an older build without it, or no directory to extract to (the SQLite addon then says why)
  }
  return md5Addon.exports;
}
