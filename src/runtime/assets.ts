import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vendorAssets from './vendor-assets.json' with { type: 'json' };

/**
 * The subset of Node's `node:sea` module used here. Declared locally because `@types/node` 20 lacks
 * `getAssetKeys()` (added in Node 24.8) and the module may be missing altogether on old runtimes.
 */
export interface SeaModule {
  /** True when the current process is a single executable application. */
  isSea(): boolean;
  /** Returns a copy of the embedded asset `key`; throws when it does not exist. */
  getAsset(key: string): ArrayBuffer;
  /** Lists every embedded asset key (Node >= 24.8 / 22.20 only). */
  getAssetKeys?: () => string[];
}

/** Prefix under which `build.mjs` embeds the files of `public/`. */
export const PUBLIC_ASSET_PREFIX = 'public/';

/** Prefix under which `build.mjs` embeds the vendor files of {@link VENDOR_ASSETS}: `vendor/<package>/<file>`. */
export const VENDOR_ASSET_PREFIX = 'vendor/';

/**
 * Browser files of npm dependencies the server serves (package name → files at the package's root), from
 * `vendor-assets.json`, which `build.mjs` reads too so the executable embeds exactly these. Nothing else of a
 * package (source maps, package.json, …) is ever served.
 */
export const VENDOR_ASSETS: Readonly<Record<string, readonly string[]>> = vendorAssets;

let seaCache: SeaModule | null | undefined;

/**
 * Returns Node's `node:sea` module when the process runs as a single executable application, otherwise
 * `undefined` (including on Node versions without `node:sea`). Works from ESM sources, the CJS bundle and SEA.
 */
export function getSea(): SeaModule | undefined {
  if (seaCache === undefined) seaCache = loadSea();
  return seaCache ?? undefined;
}

function loadSea(): SeaModule | null {
  let mod: unknown;
  try {
    // process.getBuiltinModule exists on Node >= 20.16 and works in every module format, SEA included.
    const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
    if (typeof getBuiltin === 'function') {
      mod = getBuiltin('node:sea');
    } else {
      mod = createRequire(import.meta.url)('node:sea');
    }
  } catch {
    return null;
  }
  const sea = mod as Partial<SeaModule> | undefined;
  if (!sea || typeof sea.isSea !== 'function' || typeof sea.getAsset !== 'function') return null;
  try {
    return sea.isSea() ? (sea as SeaModule) : null;
  } catch {
    return null;
  }
}

/** True when running inside the single executable built by `build.mjs`. */
export function isSea(): boolean {
  return getSea() !== undefined;
}

/**
 * Normalizes a request path relative to `public/` into `a/b/c.ext` form. Returns null for anything that
 * could escape the folder or is not a plain file name: `..` segments, absolute paths, backslashes, NUL bytes, empty paths.
 * Leading slashes and `.`/empty segments are dropped (so `/index.html` and `./index.html` both mean `index.html`).
 */
export function normalizeAssetPath(relPath: string): string | null {
  if (typeof relPath !== 'string' || relPath.includes('\0') || relPath.includes('\\')) return null;
  const parts: string[] = [];
  for (const seg of relPath.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return null;
    parts.push(seg);
  }
  return parts.length > 0 ? parts.join('/') : null;
}

/** The on-disk `public/` folder used when running from source (`<repo>/public`, resolved from this module file). */
export function sourcePublicDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'public');
}

/**
 * Reads the static web asset `public/<relPath>`: from the executable's embedded assets inside SEA, otherwise
 * from `<repo>/public` on disk. Returns null when the path is invalid (see {@link normalizeAssetPath}), does not
 * exist, is a directory, or (on disk) resolves outside `public/` through a symlink. Other I/O errors are thrown.
 */
export function readAsset(relPath: string): Buffer | null {
  const rel = normalizeAssetPath(relPath);
  if (rel === null) return null;
  const sea = getSea();
  if (sea) {
    const key = PUBLIC_ASSET_PREFIX + rel;
    try {
      return Buffer.from(sea.getAsset(key));
    } catch {
      return null; // getAsset throws when the key does not exist
    }
  }
  const root = sourcePublicDir();
  const file = path.join(root, ...rel.split('/'));
  try {
    const real = fs.realpathSync(file);
    const realRoot = fs.realpathSync(root);
    if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null;
    return fs.readFileSync(real);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
    throw e;
  }
}

/**
 * Reads the vendor file `<file>` of the npm package `pkg`, when {@link VENDOR_ASSETS} lists it: from the executable's
 * embedded assets inside SEA (`vendor/<pkg>/<file>`), otherwise from the package as Node resolves it from this module
 * (the repository's or the installing project's `node_modules`). Returns null for anything not listed or missing.
 */
export function readVendorAsset(pkg: string, file: string): Buffer | null {
  if (!Object.hasOwn(VENDOR_ASSETS, pkg) || !VENDOR_ASSETS[pkg]!.includes(file)) return null;
  const sea = getSea();
  if (sea) {
    try {
      return Buffer.from(sea.getAsset(`${VENDOR_ASSET_PREFIX}${pkg}/${file}`));
    } catch {
      return null;
    }
  }
  const dir = vendorPackageDir(pkg);
  if (dir === null) return null;
  try {
    return fs.readFileSync(path.join(dir, file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
    throw e;
  }
}

/** The root folder of the installed npm package `pkg` as resolved from this module, or null when it is not installed. */
export function vendorPackageDir(pkg: string): string | null {
  try {
    return path.dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    return null;
  }
}

/**
 * Lists the available static assets as sorted paths relative to `public/` (e.g. `index.html`, `js/app.js`).
 * Inside SEA this needs `sea.getAssetKeys()` (Node >= 24.8) and returns [] without it; from source it walks
 * `<repo>/public` (missing folder: []).
 */
export function listAssets(): string[] {
  const sea = getSea();
  if (sea) {
    const keys = sea.getAssetKeys?.() ?? [];
    return keys.filter((k) => k.startsWith(PUBLIC_ASSET_PREFIX)).map((k) => k.slice(PUBLIC_ASSET_PREFIX.length)).sort();
  }
  const root = sourcePublicDir();
  const out: string[] = [];
  const walk = (dir: string, prefix: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of entries) {
      const rel = prefix ? `${prefix}/${d.name}` : d.name;
      if (d.isDirectory()) walk(path.join(dir, d.name), rel);
      else if (d.isFile() || (d.isSymbolicLink() && readAsset(rel) !== null)) out.push(rel);
    }
  };
  walk(root, '');
  return out.sort();
}
