// `dropzone migrate` and `dropzone db copy` as real child processes (`node --import tsx src/main.ts …`) against a
// seeded SQLite file and fresh PostgreSQL databases of the run's private cluster.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COPY_TABLES } from '../../src/cli/db.js';
import type { MetadataStore, NewDropzone } from '../../src/core/ports/metadata-store.js';
import { openDatabase } from '../../src/db/database.js';
import { PG_LATEST } from '../../src/db/postgres-migrations.js';
import { openPostgresStore, pgDriverOptions } from '../../src/db/postgres-store.js';
import { createSqliteStore } from '../../src/db/sqlite-store.js';
import { newDropzone, newFile, newKey } from '../db/metadata-store-contract.js';
import { tsxMain } from '../e2e/flow.js';
import { type FreshPostgresDatabase, freshPostgresDatabase } from '../helpers/postgres.js';

const exec = promisify(execFile);

/** Runs `dropzone <args>`; answers the exit code and what it printed. */
async function dropzone(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const { cmd, args: argv } = tsxMain(args);
  try {
    const r = await exec(cmd, argv, { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-dbcli-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('help', () => {
  it('migrate --help and db --help describe the commands and touch nothing', async () => {
    const m = await dropzone(['migrate', '--help']);
    expect(m.code).toBe(0);
    expect(m.out).toMatch(/Usage: dropzone migrate/);
    const d = await dropzone(['db', 'copy', '--help']);
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/Usage: dropzone db copy --from <url> --to <url>/);
    const bad = await dropzone(['db', 'copy', '--from', 'sqlite:x.db']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/needs --from <url> and --to <url>/);
  });
});

describe('the copy column lists match both schemas', () => {
  it('SQLite', () => {
    const db = openDatabase(':memory:');
    try {
      for (const t of COPY_TABLES) {
        const cols = (db.pragma(`table_info(${t.name})`) as { name: string }[]).map((c) => c.name).sort();
        expect(cols, t.name).toEqual([...t.columns].sort());
      }
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name).sort();
      expect(tables).toEqual(COPY_TABLES.map((t) => t.name).sort());
    } finally {
      db.close();
    }
  });
});

const pgA = await freshPostgresDatabase('test/cli/db.test.ts');
describe.skipIf(!('url' in pgA))('with PostgreSQL', () => {
  let pgB: FreshPostgresDatabase;
  let pgC: FreshPostgresDatabase;
  const a = pgA as FreshPostgresDatabase;
  beforeAll(async () => {
    pgB = (await freshPostgresDatabase('test/cli/db.test.ts')) as FreshPostgresDatabase;
    pgC = (await freshPostgresDatabase('test/cli/db.test.ts')) as FreshPostgresDatabase;
  });
  afterAll(async () => {
    await a.drop();
    await pgB?.drop();
    await pgC?.drop();
  });
  const s3 = { DROPZONE_STORAGE_BACKEND: 's3', DROPZONE_STORAGE_S3_BUCKET: 'b' };

  it('the copy column lists match the PostgreSQL schema', async () => {
    const sql = postgres(pgC.url, pgDriverOptions({ poolSize: 1 }));
    try {
      const { migratePostgres } = await import('../../src/db/postgres-migrations.js');
      await migratePostgres(sql);
      for (const t of COPY_TABLES) {
        const rows = await sql<{ c: string }[]>`SELECT column_name AS c FROM information_schema.columns WHERE table_name = ${t.name}`;
        expect(rows.map((r) => r.c).sort(), t.name).toEqual([...t.columns].sort());
      }
    } finally {
      await sql.end();
    }
  });

  it('migrate applies the PostgreSQL schema once and then reports it up to date; the password is not printed', async () => {
    const url = pgB.url.replace('postgres@', 'postgres:hunter2@'); // trust auth ignores the password
    const first = await dropzone(['migrate'], { DROPZONE_DATABASE_URL: url, ...s3 });
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toMatch(new RegExp(`migrated schema version 0 → ${PG_LATEST}`));
    expect(first.out + first.err).not.toContain('hunter2');
    const again = await dropzone(['migrate'], { DROPZONE_DATABASE_URL: url, ...s3 });
    expect(again.code).toBe(0);
    expect(again.out).toMatch(new RegExp(`schema version ${PG_LATEST}, up to date`));
  });

  it('migrate on SQLite migrates <dataDir>/dropzone.db', async () => {
    const dataDir = path.join(tmp, 'mig-data');
    const first = await dropzone(['migrate', '--data-dir', dataDir]);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/SQLite .*dropzone\.db: migrated schema version 0 → \d+/);
    const again = await dropzone(['migrate', '--data-dir', dataDir]);
    expect(again.out).toMatch(/up to date/);
  });

  it('db copy moves every key, balance, dropzone, file, grant, setting and queued deletion from SQLite to PostgreSQL, and back', async () => {
    const file = path.join(tmp, 'src.db');
    const sqlite = createSqliteStore(openDatabase(file));
    // seed through the port
    const admin = (await sqlite.ensureAdminKey(newKey({ isAdmin: true, permissions: ['apikey.create'] }))).key;
    const keys = [admin];
    for (let i = 0; i < 4; i++) keys.push(await sqlite.insertKey(newKey({ balanceMicro: 1000 * i, createdBy: admin.id, name: `k${i}` })));
    await sqlite.revokeKey(keys[4].publicId, 1_700_000_000_001);
    const dzs: NewDropzone[] = [];
    for (let i = 0; i < 3; i++) {
      const d = newDropzone({ ownerKeyId: keys[1].id, name: `n${i}`, hidden: i === 1, sizeGb: 0.5 });
      expect(await sqlite.insertDropzone(d)).toBe(true);
      dzs.push(d);
    }
    for (let i = 0; i < 5; i++) {
      const f = newFile(dzs[0].id, { createdAt: 1_700_000_000_000 + i, uploaderKeyId: keys[2].id, pendingHolder: i === 4 ? 'holder' : null });
      await sqlite.reserveSpace(dzs[0].id, f.size, 1_700_000_000_000, 100);
      await sqlite.insertFile(f);
      if (i < 3) await sqlite.markUploaded(f.id, `"e${i}"`, 1_700_000_000_100);
      if (i === 3) expect(await sqlite.setMultipartUpload(f.id, 'upload-id-3')).toBe(true);
    }
    await sqlite.insertGrant('dropzone', dzs[0].id, keys[3].publicId, 'dropzone.get', 1);
    await sqlite.insertGrant('dropzone', dzs[0].id, 'anyone', 'file.get', 1);
    await sqlite.setSetting('signing_secret', 'the-secret');
    await sqlite.queueBlobDeletion('gone/1', 5, 50);
    await sqlite.markBlobDeletionTried('gone/1');
    await sqlite.queueBlobDeletion('gone/2', 6);

    const snapshot = async (s: MetadataStore) => ({
      keys: await s.listKeys(),
      byHash: await Promise.all(keys.map((k) => s.keyByHash(k.secretHash))),
      dropzones: await s.allDropzones(),
      files: await s.filesOfDropzoneAfter(dzs[0].id, undefined, 100),
      grants: await s.grantsOn('dropzone', dzs[0].id),
      secret: await s.getSetting('signing_secret'),
      deletions: await s.blobDeletionsDue(100, { at: -1, key: '' }, 100),
      totals: [await s.fileTotals(), await s.dropzoneTotals()],
    });
    const before = await snapshot(sqlite);
    await sqlite.close();
    expect(before.files.map((f) => f.multipartUploadId)).toContain('upload-id-3');
    expect(before.byHash.filter(Boolean)).toHaveLength(4); // the revoked key is not found by hash

    const copy = await dropzone(['db', 'copy', '--from', `sqlite:${file}`, '--to', a.url, '--batch', '2']);
    expect(copy.err).toBe('');
    expect(copy.code).toBe(0);
    for (const line of ['settings: 1 row(s)', 'api_keys: 5 row(s)', 'dropzones: 3 row(s)', 'files: 5 row(s)', 'permissions: 2 row(s)', 'blob_deletions: 2 row(s)'])
      expect(copy.out).toContain(line);
    expect(copy.out).toMatch(/Verified: .* \(18 in all\)/);

    const pgStore = await openPostgresStore(a.url, { poolSize: 2 });
    try {
      expect(await snapshot(pgStore)).toEqual(before);
      // the identity continues after the copied ids
      const next = await pgStore.insertKey(newKey());
      expect(next.id).toBe(Math.max(...keys.map((k) => k.id)) + 1);
    } finally {
      await pgStore.close();
    }

    // a second copy into the now non-empty database is refused, and changes nothing
    const again = await dropzone(['db', 'copy', '--from', `sqlite:${file}`, '--to', a.url]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/is not empty \(api_keys has \d+ row\(s\)\)/);

    // and back: PostgreSQL → a new SQLite file (from a second copy of the original: a key was added to the first)
    const file2 = path.join(tmp, 'back.db');
    // (pgC already holds the migrated, empty schema from the column test: a migrated empty target is fine)
    const viaPg = await dropzone(['db', 'copy', '--from', `sqlite:${file}`, '--to', pgC.url]);
    expect(viaPg.code).toBe(0);
    const back = await dropzone(['db', 'copy', '--from', pgC.url, '--to', `sqlite:${file2}`]);
    expect(back.err).toBe('');
    expect(back.code).toBe(0);
    expect(fs.statSync(file2).mode & 0o777).toBe(0o600);
    const roundTrip = createSqliteStore(openDatabase(file2));
    try {
      expect(await snapshot(roundTrip)).toEqual(before);
    } finally {
      await roundTrip.close();
    }
  });
});
