import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { MIGRATIONS } from '../../src/db/migrations.js';
import { createSqliteStore } from '../../src/db/sqlite-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dz-migrate-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A database at schema version 5 (before the database-enforced invariants), filled by `fill`. */
function databaseAtVersion5(file: string, fill: (db: Database.Database) => void): void {
  const db = new Database(file);
  for (const m of MIGRATIONS.filter((m) => m.version <= 5)) {
    db.exec(m.sql);
    db.pragma(`user_version = ${m.version}`);
  }
  fill(db);
  db.close();
}

describe('migration 6: invariants enforced by the database', () => {
  it('upgrades a database written by racing single writers: the newest same-named dropzone keeps the name, the first admin stays admin', async () => {
    const file = path.join(dir, 'dropzone.db');
    databaseAtVersion5(file, (db) => {
      const key = db.prepare(
        'INSERT INTO api_keys (public_id, secret_hash, name, permissions, is_admin, created_at) VALUES (?, ?, ?, ?, ?, 0)',
      );
      key.run('pk_admin1', 'h1', 'admin', '[]', 1);
      key.run('pk_admin2', 'h2', 'admin', '[]', 1);
      key.run('pk_user', 'h3', 'u', '[]', 0);
      const dz = db.prepare(
        `INSERT INTO dropzones (id, share_id, code, name, owner_key_id, size_gb, days, max_size, max_file_size, start_time, delete_time, created_at, updated_at)
         VALUES (?, ?, ?, ?, 3, 1, 1, 100, 100, 0, 9e15, ?, ?)`,
      );
      dz.run('dz_old', 'dzs_old', 'c1', 'same', 1, 1);
      dz.run('dz_new', 'dzs_new', 'c2', 'same', 2, 2);
    });
    const store = createSqliteStore(openDatabase(file));
    try {
      expect((await store.listKeys()).filter((k) => k.isAdmin).map((k) => k.publicId)).toEqual(['pk_admin1']);
      expect((await store.dropzoneByOwnerName(3, 'same'))?.id).toBe('dz_new');
      // both rows survive; the name is held once, so a third create with it is refused
      expect(await store.dropzoneById('dz_old')).toMatchObject({ name: 'same' });
      const now = 10;
      const created = await store.insertDropzone({
        id: 'dz_third', shareId: 'dzs_third', code: 'c3', name: 'same', ownerKeyId: 3, tier: 'standard', hidden: false,
        sizeGb: 1, days: 1, maxSize: 100, maxFileSize: 100, startTime: now, deleteTime: now + 1000, createdAt: now, updatedAt: now,
      });
      expect(created).toBe(false);
    } finally {
      await store.close();
    }
  });
});
