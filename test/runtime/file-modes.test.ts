/**
 * Everything the server writes under the data directory is owner-only (0700 directories, 0600 files) whatever the
 * umask: the database and its WAL/SHM (the signing secret lands there), blobs, their sidecars and temp files, and
 * `dropzone backup` output. An existing data directory that others can read is reported at start.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/common.js';
import { main } from '../../src/main.js';
import { startTestServer } from '../helpers/server.js';

const mode = (p: string) => fs.statSync(p).mode & 0o777;
const octal = (m: number) => m.toString(8);

/** Every directory and file under `root` with its mode, as `{ 'rel/path': '700' }`. */
function modesUnder(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      out[path.relative(root, p)] = octal(st.mode & 0o777);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

let oldUmask: number;
beforeAll(() => {
  // the setting: a default umask under which new files are world-readable
  oldUmask = process.umask(0o022);
});
afterAll(() => {
  process.umask(oldUmask);
});

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-modes-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('file modes under umask 022', () => {
  it('creates the data dir, database files, blobs, sidecars and temp files owner-only', async () => {
    const dataDir = path.join(tmp, 'data');
    const t = await startTestServer({ settings: { dataDir } });
    try {
      const dz = await t.createDropzone(t.adminKey);
      await t.upload(t.adminKey, dz._id, 'secret.txt', 'top secret bytes');

      // an upload in flight: its temp file is private too
      const body = new PassThrough();
      const putting = t.server.app.ctx.blobs.put('objects/in-flight', body, { expectedSize: 8 });
      body.write('1234');
      const tmpDir = path.join(dataDir, 'blobs', '.tmp');
      let parts: string[] = [];
      for (let i = 0; i < 200 && parts.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 5));
        parts = fs.readdirSync(tmpDir).filter((n) => n.endsWith('.part'));
      }
      expect(parts).toHaveLength(1);
      expect(octal(mode(path.join(tmpDir, parts[0]!)))).toBe('600');
      body.end('5678');
      await putting;

      expect(octal(mode(dataDir))).toBe('700');
      for (const f of ['dropzone.db', 'dropzone.db-wal', 'dropzone.db-shm']) expect([f, octal(mode(path.join(dataDir, f)))]).toEqual([f, '600']);
      const modes = modesUnder(dataDir);
      const loose = Object.entries(modes).filter(([p, m]) => m !== (fs.statSync(path.join(dataDir, p)).isDirectory() ? '700' : '600'));
      expect(loose).toEqual([]);
      expect(Object.keys(modes).some((p) => p.startsWith('blobs/objects/'))).toBe(true);
      expect(Object.keys(modes).some((p) => p.startsWith('blobs/.meta/'))).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('warns at start when an existing data dir is group/world readable', async () => {
    const dataDir = path.join(tmp, 'open');
    fs.mkdirSync(dataDir);
    fs.chmodSync(dataDir, 0o755);
    const t = await startTestServer({ settings: { dataDir } });
    try {
      const warning = t.logs.map((l) => JSON.parse(l)).find((l) => l.level === 'warn' && /data directory/.test(l.msg));
      expect(warning?.msg).toMatch(/readable by other users/);
      expect(warning?.msg).toContain('chmod 700');
      // the server does not change the operator's directory, but its own database files are private
      expect(octal(mode(dataDir))).toBe('755');
      expect(octal(mode(path.join(dataDir, 'dropzone.db')))).toBe('600');
    } finally {
      await t.close();
    }
  });

  it('tightens database files an older version left world-readable', async () => {
    const dataDir = path.join(tmp, 'old');
    const first = await startTestServer({ settings: { dataDir } });
    await first.close();
    fs.chmodSync(path.join(dataDir, 'dropzone.db'), 0o644);
    const t = await startTestServer({ settings: { dataDir } });
    try {
      expect(octal(mode(path.join(dataDir, 'dropzone.db')))).toBe('600');
      expect(octal(mode(path.join(dataDir, 'dropzone.db-wal')))).toBe('600');
    } finally {
      await t.close();
    }
  });

  it('dropzone backup writes an owner-only file, also over an existing one with --force', async () => {
    const dataDir = path.join(tmp, 'data');
    const io: CliIo = { out: () => {}, err: () => {}, env: {} };
    const target = path.join(tmp, 'backup.db');
    expect(await main(['backup', target, '--data-dir', dataDir], io)).toBe(0);
    expect(octal(mode(target))).toBe('600');
    fs.chmodSync(target, 0o644);
    expect(await main(['backup', target, '--force', '--data-dir', dataDir], io)).toBe(0);
    expect(octal(mode(target))).toBe('600');
    expect(octal(mode(dataDir))).toBe('700');
  });
});
