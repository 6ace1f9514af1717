import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { MetadataStore } from '../../src/core/ports/metadata-store.js';
import { redactDatabaseUrl, resolveDatabaseUrl } from '../../src/db/database-url.js';
import { openMetadataStore } from '../../src/db/open-store.js';
import { type FreshPostgresDatabase, freshPostgresDatabase } from '../helpers/postgres.js';
import { newKey } from './metadata-store-contract.js';

let tmp: string;
let store: MetadataStore | undefined;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-open-'));
});
afterEach(async () => {
  await store?.close();
  store = undefined;
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('database URLs', () => {
  it('resolves the default, sqlite: paths and postgres URLs; refuses others', () => {
    expect(resolveDatabaseUrl('', '/srv/data')).toEqual({ kind: 'sqlite', path: '/srv/data/dropzone.db' });
    expect(resolveDatabaseUrl('sqlite:/a/b.db', '/x')).toEqual({ kind: 'sqlite', path: '/a/b.db' });
    expect(resolveDatabaseUrl('sqlite:///a/b.db', '/x')).toEqual({ kind: 'sqlite', path: '/a/b.db' });
    expect(resolveDatabaseUrl('sqlite:rel.db', '/x')).toEqual({ kind: 'sqlite', path: path.resolve('rel.db') });
    expect(resolveDatabaseUrl('postgres://h/db', '/x')).toEqual({ kind: 'postgres', url: 'postgres://h/db' });
    expect(() => resolveDatabaseUrl('mysql://u:pw@h/db', '/x')).toThrow(/must start with sqlite:, postgres:\/\/ or postgresql:\/\//);
    expect(() => resolveDatabaseUrl('mysql://u:pw@h/db', '/x')).not.toThrow(/pw/);
  });

  it('redacts passwords (also in query parameters) and leaves SQLite paths alone', () => {
    expect(redactDatabaseUrl('postgres://dz:s3cr%40t@db.example:5432/dz?sslmode=require')).toBe('postgres://dz:***@db.example:5432/dz?sslmode=require');
    expect(redactDatabaseUrl('postgresql://db.example/dz?user=dz&password=hunter2')).not.toContain('hunter2');
    expect(redactDatabaseUrl('postgres://dz@db.example/dz')).toBe('postgres://dz@db.example/dz');
    expect(redactDatabaseUrl('postgres://dz:pw@[bad/dz')).not.toContain('pw');
    expect(redactDatabaseUrl('sqlite:./data/dropzone.db')).toBe('sqlite:./data/dropzone.db');
  });
});

describe('openMetadataStore: SQLite', () => {
  it('opens <dataDir>/dropzone.db by default, owner-only, migrated', async () => {
    const dataDir = path.join(tmp, 'data');
    store = await openMetadataStore(loadConfig({ overrides: { dataDir } }));
    expect(store.kind).toBe('sqlite');
    const k = await store.insertKey(newKey());
    expect((await store.keyByHash(k.secretHash))?.id).toBe(k.id);
    const file = path.join(dataDir, 'dropzone.db');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);
  });

  it('opens the file a sqlite: URL names', async () => {
    const file = path.join(tmp, 'elsewhere', 'meta.db');
    store = await openMetadataStore(loadConfig({ overrides: { dataDir: path.join(tmp, 'data'), database: { url: `sqlite:${file}` } } }));
    await store.setSetting('a', '1');
    expect(fs.existsSync(file)).toBe(true);
    expect(fs.existsSync(path.join(tmp, 'data', 'dropzone.db'))).toBe(false);
  });
});

const pg = await freshPostgresDatabase('test/db/open-store.test.ts');
describe.skipIf(!('url' in pg))('openMetadataStore: PostgreSQL', () => {
  const db = pg as FreshPostgresDatabase;
  afterAll(async () => db.drop());

  it('opens and migrates the database a postgres URL names, with the configured pool', async () => {
    const config = loadConfig({ overrides: { dataDir: path.join(tmp, 'data'), database: { url: db.url, poolSize: 2 }, storage: { backend: 's3', s3: { bucket: 'b' } } } });
    store = await openMetadataStore(config);
    expect(store.kind).toBe('postgres');
    const k = await store.insertKey(newKey({ balanceMicro: 7 }));
    expect(await store.keyByHash(k.secretHash)).toEqual(k);
    // nothing is written to the data directory
    expect(fs.existsSync(path.join(tmp, 'data'))).toBe(false);
  });
});
