import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/common.js';
import { loadConfig } from '../../src/config/load.js';
import { MAIN_HELP, main } from '../../src/main.js';
import { startServer } from '../../src/server.js';

/** A CliIo that records what a command printed. */
function capture(env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), env };
  return { io, out, err, text: () => out.join('\n'), errText: () => err.join('\n') };
}

let tmp: string;
let dataDir: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-cli-'));
  dataDir = path.join(tmp, 'data');
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Runs `dropzone <args> --data-dir <tmp>/data` in-process. */
async function run(args: string[], env: Record<string, string | undefined> = {}) {
  const c = capture(env);
  const code = await main(args, c.io);
  return { code, out: c.text(), err: c.errText() };
}
const withData = (args: string[]) => [...args, '--data-dir', dataDir];

describe('version and help', () => {
  it('version prints the program and Node version', async () => {
    for (const argv of [['version'], ['--version'], ['-v']]) {
      const r = await run(argv);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^dropzone-server \d+\.\d+\.\d+ \(node v\d+\.\d+\.\d+, linux-x64\)$/);
    }
  });

  it('top-level help', async () => {
    for (const argv of [['--help'], ['-h'], ['help']]) {
      const r = await run(argv);
      expect(r.code).toBe(0);
      expect(r.out).toBe(MAIN_HELP);
    }
  });

  it.each([
    ['serve', /Usage: dropzone serve/],
    ['keys', /Usage: dropzone keys/],
    ['backup', /Usage: dropzone backup <file>/],
    ['gc', /Usage: dropzone gc/],
  ])('%s --help', async (cmd, usage) => {
    const r = await run([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(usage);
    expect(r.out).toMatch(/--config/);
    expect(r.err).toBe('');
    expect(fs.existsSync(dataDir)).toBe(false); // help touches nothing
  });

  it('unknown command → exit 2 with the help', async () => {
    const r = await run(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command "frobnicate"/);
    expect(r.err).toMatch(/Usage: dropzone <command>/);
    expect(r.out).toBe('');
  });

  it('unknown option → exit 2 with a hint', async () => {
    const r = await run(['gc', '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--frobnicate/);
    expect(r.err).toMatch(/dropzone gc --help/);
  });

  it('a bad configuration value → exit 2 naming the key and source', async () => {
    const r = await run(withData(['keys', 'list', '--set', 'uploads.urlTtlSeconds=soon']));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/uploads\.urlTtlSeconds \(from --set\)/);
    const e = await run(withData(['gc']), { DROPZONE_LIMITS_MAX_GB: '-1' });
    expect(e.code).toBe(2);
    expect(e.err).toMatch(/limits\.maxGb \(from DROPZONE_LIMITS_MAX_GB\)/);
  });
});

describe('keys', () => {
  it('create, list, gbmonths, revoke; a revoked key can no longer authenticate', async () => {
    const created = await run(withData(['keys', 'create', '--name', 'ci', '--gb-months', '5']));
    expect(created.code).toBe(0);
    const publicId = /publicId: (\S+)/.exec(created.out)![1];
    const secret = /secret:\s+(\S+)/.exec(created.out)![1];
    expect(created.out).toMatch(/shown only now/);

    const json = await run(withData(['keys', 'create', '--json', '--can-create-keys']));
    expect(json.code).toBe(0);
    const second = JSON.parse(json.out) as { publicId: string; key: string; permissions: string[] };
    expect(second.key).toBeTruthy();
    expect(second.permissions).toContain('apikey.create');

    const list = await run(withData(['keys', 'list']));
    expect(list.code).toBe(0);
    const line = list.out.split('\n').find((l) => l.startsWith(publicId))!;
    expect(line).toMatch(/\tci\t5 GB-months/);
    expect(list.out).not.toContain(secret); // list never shows secrets

    expect((await run(withData(['keys', 'gbmonths', publicId, '12.5']))).out).toBe(`${publicId}: 12.5 GB-months`);
    expect((await run(withData(['keys', 'gbmonths', publicId, 'unlimited']))).out).toBe(`${publicId}: unlimited`);
    const listed = JSON.parse((await run(withData(['keys', 'list', '--json']))).out) as { publicId: string; gbMonths: number | null; revoked: boolean }[];
    expect(listed.find((k) => k.publicId === publicId)).toMatchObject({ gbMonths: null, revoked: false });

    // The key works against a server on this data directory ...
    const config = loadConfig({ overrides: { dataDir, 'server.host': '127.0.0.1', 'server.port': 0, 'log.level': 'silent', 'sweeper.intervalSeconds': 0 } });
    const server = await startServer(config);
    try {
      const me = await fetch(`${server.url}/api/v1/apikeys/me`, { headers: { 'x-api-key': secret } });
      expect(me.status).toBe(200);

      // ... and is rejected once revoked (even while the server runs: the CLI writes the same database).
      const revoked = await run(withData(['keys', 'revoke', publicId]));
      expect(revoked).toMatchObject({ code: 0, out: `Revoked ${publicId}.` });
      const after = await fetch(`${server.url}/api/v1/apikeys/me`, { headers: { 'x-api-key': secret } });
      expect(after.status).toBe(401);
    } finally {
      await server.close();
    }
    expect((await run(withData(['keys', 'list']))).out.split('\n').find((l) => l.startsWith(publicId))).toMatch(/REVOKED/);
    const db = new Database(path.join(dataDir, 'dropzone.db'), { readonly: true });
    try {
      expect((db.prepare('SELECT revoked_at FROM api_keys WHERE public_id = ?').get(publicId) as { revoked_at: number | null }).revoked_at).not.toBeNull();
    } finally {
      db.close();
    }

    // Revoking again, or an unknown key: exit 1.
    const again = await run(withData(['keys', 'revoke', publicId]));
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/No active API key/);
    expect((await run(withData(['keys', 'gbmonths', 'nope', '1']))).code).toBe(1);
  });

  it('usage errors exit 2', async () => {
    expect((await run(withData(['keys']))).code).toBe(2);
    expect((await run(withData(['keys', 'explode']))).code).toBe(2);
    expect((await run(withData(['keys', 'revoke']))).code).toBe(2);
    expect((await run(withData(['keys', 'gbmonths', 'x']))).code).toBe(2);
    expect((await run(withData(['keys', 'gbmonths', 'x', '-3']))).code).toBe(2);
    expect((await run(withData(['keys', 'create', '--gb-months', 'lots']))).code).toBe(2);
  });
});

describe('backup', () => {
  it('writes a valid SQLite copy and refuses to overwrite without --force', async () => {
    for (let i = 0; i < 3; i++) expect((await run(withData(['keys', 'create', '--name', `k${i}`]))).code).toBe(0);
    const target = path.join(tmp, 'backup.db');
    const r = await run(withData(['backup', target]));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/backed up to/);
    expect(r.out).toMatch(/copy the blobs/);

    const copy = new Database(target, { readonly: true });
    try {
      expect((copy.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check).toBe('ok');
      expect((copy.prepare('SELECT count(*) AS n FROM api_keys').get() as { n: number }).n).toBe(3);
    } finally {
      copy.close();
    }

    const refused = await run(withData(['backup', target]));
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/exists; pass --force/);

    await run(withData(['keys', 'create', '--name', 'k3']));
    const forced = await run(withData(['backup', target, '--force']));
    expect(forced.code).toBe(0);
    const copy2 = new Database(target, { readonly: true });
    try {
      expect((copy2.prepare('SELECT count(*) AS n FROM api_keys').get() as { n: number }).n).toBe(4);
    } finally {
      copy2.close();
    }
  });

  it('needs exactly one file', async () => {
    expect((await run(withData(['backup']))).code).toBe(2);
    expect((await run(withData(['backup', 'a', 'b']))).code).toBe(2);
  });
});

describe('gc', () => {
  it('removes an orphan blob older than the grace period, not a referenced or a young one', async () => {
    // Initialise the data directory (schema) and get a key to own the dropzone.
    expect((await run(withData(['keys', 'create']))).code).toBe(0);
    const objects = path.join(dataDir, 'blobs', 'objects');
    fs.mkdirSync(objects, { recursive: true });
    const old = new Date(Date.now() - 2 * 3600_000);
    const write = (name: string, mtime?: Date) => {
      const f = path.join(objects, name);
      fs.writeFileSync(f, `bytes of ${name}`);
      if (mtime) fs.utimesSync(f, mtime, mtime);
      return f;
    };
    const orphan = write('orphanOld0000000000000000', old);
    const young = write('orphanYoung000000000000000');
    const referenced = write('referenced00000000000000', old);

    const db = new Database(path.join(dataDir, 'dropzone.db'));
    try {
      const now = Date.now();
      db.prepare(
        `INSERT INTO dropzones (id, code, size_gb, days, max_size, max_file_size, start_time, delete_time, created_at, updated_at)
         VALUES ('dz1', 'code1', 1, 30, 1000000000, 1000000000, ?, ?, ?, ?)`,
      ).run(now, now + 30 * 86400_000, now, now);
      db.prepare(
        `INSERT INTO files (id, dropzone_id, name, size, blob_key, status, created_at, confirmed_at)
         VALUES ('f1', 'dz1', 'a.txt', 23, 'objects/referenced00000000000000', 'uploaded', ?, ?)`,
      ).run(now, now);
    } finally {
      db.close();
    }

    const r = await run(withData(['gc']));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/1 orphaned blob\(s\) of 3 scanned/);
    expect(fs.existsSync(orphan)).toBe(false);
    expect(fs.existsSync(young)).toBe(true);
    expect(fs.existsSync(referenced)).toBe(true);

    // With no grace period the young orphan goes too; the referenced blob always stays.
    const r2 = await run(withData(['gc', '--set', 'sweeper.gcGraceSeconds=0']));
    expect(r2.out).toMatch(/1 orphaned blob\(s\) of 2 scanned/);
    expect(fs.existsSync(young)).toBe(false);
    expect(fs.existsSync(referenced)).toBe(true);
  });
});
