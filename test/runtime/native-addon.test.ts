import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  dlopenAddon,
  extractAndLoad,
  loadSqliteBinding,
  nativeCacheDirCandidates,
  type CacheDirCandidate,
} from '../../src/runtime/native-addon.js';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-native-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const bytes = Buffer.from('pretend this is an ELF shared object');
const cand = (dir: string, shared = false): CacheDirCandidate => ({ dir, source: 'test', shared });
const noopLoad = (file: string) => ({ file });

describe('nativeCacheDirCandidates', () => {
  it('orders $DROPZONE_NATIVE_CACHE, $XDG_CACHE_HOME, ~/.cache, tmpdir', () => {
    const c = nativeCacheDirCandidates({
      env: { DROPZONE_NATIVE_CACHE: '/opt/dz', XDG_CACHE_HOME: '/xdg' },
      home: '/home/u',
      tmpdir: '/tmp',
      uid: 1000,
    });
    expect(c.map((x) => x.dir)).toEqual(['/opt/dz', '/xdg/dropzone-server', '/home/u/.cache/dropzone-server', '/tmp/dropzone-server-1000']);
    expect(c.map((x) => Boolean(x.shared))).toEqual([false, false, false, true]);
  });

  it('ignores empty or relative variables and a missing home, and removes duplicates', () => {
    const c = nativeCacheDirCandidates({
      env: { DROPZONE_NATIVE_CACHE: 'relative/dir', XDG_CACHE_HOME: '' },
      home: '',
      tmpdir: '/tmp',
      uid: 7,
    });
    expect(c.map((x) => x.dir)).toEqual(['/tmp/dropzone-server-7']);
    const d = nativeCacheDirCandidates({ env: { DROPZONE_NATIVE_CACHE: '/h/.cache/dropzone-server/' }, home: '/h', tmpdir: '/tmp', uid: 1 });
    expect(d.map((x) => x.dir)).toEqual(['/h/.cache/dropzone-server', '/tmp/dropzone-server-1']);
  });
});

describe('extractAndLoad', () => {
  it('skips a directory that cannot be created and writes a content-hashed file into the next one', () => {
    const blocker = path.join(tmp, 'a-file');
    fs.writeFileSync(blocker, 'x'); // mkdir below a regular file fails even for root
    const good = path.join(tmp, 'good');
    const r = extractAndLoad(bytes, [cand(path.join(blocker, 'cache')), cand(good)], noopLoad);
    expect(path.dirname(r.file)).toBe(good);
    expect(path.basename(r.file)).toMatch(/^better_sqlite3-[0-9a-f]{16}\.node$/);
    expect(fs.readFileSync(r.file)).toEqual(bytes);
    expect(r.exports).toEqual({ file: r.file });
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]).toMatchObject({ stage: 'mkdir' });
    expect(fs.readdirSync(good)).toEqual([path.basename(r.file)]); // no temp files left behind
  });

  const asRoot = process.getuid?.() === 0;
  if (asRoot) console.warn('[native-addon] SKIPPED "skips a read-only directory": running as root, where mode 0500 does not stop writes');
  it.skipIf(asRoot)('skips a read-only directory (permission based; skipped as root, where modes do not stop writes)', () => {
    const ro = path.join(tmp, 'ro');
    fs.mkdirSync(ro, { mode: 0o500 });
    const good = path.join(tmp, 'good');
    const r = extractAndLoad(bytes, [cand(ro), cand(good)], noopLoad);
    expect(path.dirname(r.file)).toBe(good);
    expect(r.skipped[0]).toMatchObject({ stage: 'write' });
  });

  it('falls back when loading fails (e.g. dlopen on a noexec mount)', () => {
    const noexec = path.join(tmp, 'noexec');
    const good = path.join(tmp, 'good');
    const r = extractAndLoad(bytes, [cand(noexec), cand(good)], (file) => {
      if (file.startsWith(noexec)) throw new Error(`${file}: failed to map segment from shared object`);
      return 'loaded';
    });
    expect(r.exports).toBe('loaded');
    expect(path.dirname(r.file)).toBe(good);
    expect(r.skipped[0]).toMatchObject({ stage: 'load' });
    expect(r.skipped[0]!.error).toContain('failed to map segment');
  });

  it('reuses an identical existing file and replaces a corrupted one', () => {
    const dir = path.join(tmp, 'cache');
    const first = extractAndLoad(bytes, [cand(dir)], noopLoad);
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(first.file, past, past);
    const second = extractAndLoad(bytes, [cand(dir)], noopLoad);
    expect(second.file).toBe(first.file);
    expect(Math.round(fs.statSync(second.file).mtimeMs)).toBe(past.getTime()); // not rewritten

    fs.writeFileSync(first.file, Buffer.alloc(bytes.length, 0)); // same size, wrong content
    extractAndLoad(bytes, [cand(dir)], noopLoad);
    expect(fs.readFileSync(first.file)).toEqual(bytes);
  });

  it('with a known digest, reads the embedded bytes only when the file has to be written, and checks them', () => {
    const digest = createHash('sha256').update(bytes).digest('hex');
    let reads = 0;
    const source = { digest, bytes: () => (reads++, bytes) };
    const dir = path.join(tmp, 'cache');
    const first = extractAndLoad(source, [cand(dir)], noopLoad);
    expect(reads).toBe(1);
    expect(fs.readFileSync(first.file)).toEqual(bytes);
    expect(path.basename(first.file)).toBe(`better_sqlite3-${digest.slice(0, 16)}.node`);
    extractAndLoad(source, [cand(dir)], noopLoad); // already there: the bytes stay unread
    expect(reads).toBe(1);
    fs.writeFileSync(first.file, 'truncated'); // damaged: rewritten from the bytes
    extractAndLoad(source, [cand(dir)], noopLoad);
    expect(reads).toBe(2);
    expect(fs.readFileSync(first.file)).toEqual(bytes);

    const other = path.join(tmp, 'other');
    const liar = { digest, bytes: () => Buffer.from('not the bytes the digest names') };
    expect(() => extractAndLoad(liar, [cand(other)], noopLoad)).toThrow(/does not match its digest/);
    expect(fs.readdirSync(other)).toEqual([]);
  });

  it('gives different builds different file names', () => {
    const dir = path.join(tmp, 'cache');
    const a = extractAndLoad(bytes, [cand(dir)], noopLoad).file;
    const b = extractAndLoad(Buffer.from('another build'), [cand(dir)], noopLoad).file;
    expect(a).not.toBe(b);
  });

  it('refuses a shared directory that is group/world-writable', () => {
    const shared = path.join(tmp, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o777);
    const good = path.join(tmp, 'good');
    const r = extractAndLoad(bytes, [cand(shared, true), cand(good)], noopLoad);
    expect(path.dirname(r.file)).toBe(good);
    expect(r.skipped[0]).toMatchObject({ stage: 'check' });
    expect(fs.readdirSync(shared)).toEqual([]);
  });

  it('accepts a shared directory it creates itself (mode 0700)', () => {
    const shared = path.join(tmp, 'fresh');
    const r = extractAndLoad(bytes, [cand(shared, true)], noopLoad);
    expect(path.dirname(r.file)).toBe(shared);
    expect(fs.statSync(shared).mode & 0o777).toBe(0o700);
  });

  it('throws an error listing every attempt when nothing works (real dlopen of a non-library)', () => {
    const blocker = path.join(tmp, 'a-file');
    fs.writeFileSync(blocker, 'x');
    const d1 = path.join(blocker, 'c');
    const d2 = path.join(tmp, 'second');
    let err: Error | undefined;
    try {
      extractAndLoad(bytes, [cand(d1), cand(d2)], dlopenAddon);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toContain(`${d1} (test): mkdir failed`);
    expect(err!.message).toContain(`${d2} (test): load failed`);
    expect(err!.message).toContain('DROPZONE_NATIVE_CACHE');
  });

  it('throws when there are no candidates', () => {
    expect(() => extractAndLoad(bytes, [], noopLoad)).toThrow(/no candidate directories/);
  });
});

describe('loadSqliteBinding', () => {
  it('returns undefined outside a single executable application', () => {
    expect(loadSqliteBinding()).toBeUndefined();
  });
});
