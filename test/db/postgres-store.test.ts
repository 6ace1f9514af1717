import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { PG_LATEST, PG_MIGRATIONS, migratePostgres, postgresSchemaVersion } from '../../src/db/postgres-migrations.js';
import { openPostgresStore, pgDriverOptions } from '../../src/db/postgres-store.js';
import { type FreshPostgresDatabase, freshPostgresDatabase } from '../helpers/postgres.js';
import { metadataStoreContract } from './metadata-store-contract.js';

// one database per test file; every contract case starts from emptied tables. `another` opens a second pool on the same
// database, as a second node would.
const db = await freshPostgresDatabase('test/db/postgres-store.test.ts');
const pg = 'url' in db ? (db as FreshPostgresDatabase) : undefined;

describe.skipIf(!pg)('PostgreSQL store', () => {
  afterAll(async () => pg?.drop());

  metadataStoreContract('postgres', async () => {
    const url = pg!.url;
    const store = await openPostgresStore(url, { poolSize: 6 });
    const admin = postgres(url, pgDriverOptions({ poolSize: 1 }));
    await admin.unsafe('TRUNCATE settings, api_keys, dropzones, files, permissions, blob_deletions, leases, events, webhooks, webhook_deliveries, webhook_attempts RESTART IDENTITY CASCADE');
    await admin.end();
    return {
      store,
      another: () => openPostgresStore(url, { poolSize: 6 }),
      async teardown() {
        await store.close();
      },
    };
  });

  describe('across pools (nodes)', () => {
    let fresh: FreshPostgresDatabase;
    beforeAll(async () => {
      fresh = (await freshPostgresDatabase('postgres across pools')) as FreshPostgresDatabase;
    });
    afterAll(async () => fresh?.drop());

    it('transactions of two stores never interleave: read-wait-write counters lose no increment', async () => {
      const a = await openPostgresStore(fresh.url, { poolSize: 3 });
      const b = await openPostgresStore(fresh.url, { poolSize: 3 });
      try {
        await a.setSetting('n', '0');
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 ? a : b).transaction(async (tx) => {
              const n = Number(await tx.getSetting('n'));
              await new Promise((r) => setTimeout(r, 2));
              await tx.setSetting('n', String(n + 1));
            }),
          ),
        );
        expect(await b.getSetting('n')).toBe('20');
      } finally {
        await a.close();
        await b.close();
      }
    });

    it('sends the statement timeout and application name as connection parameters', async () => {
      const sql = postgres(fresh.url, pgDriverOptions({ poolSize: 1, statementTimeoutMs: 50, applicationName: 'dz-test' }));
      try {
        const [row] = await sql<{ app: string; st: string }[]>`SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS st`;
        expect(row).toEqual({ app: 'dz-test', st: '50ms' });
        await expect(sql`SELECT pg_sleep(2)`).rejects.toThrow(/statement timeout/);
      } finally {
        await sql.end();
      }
    });
  });

  describe('migrations', () => {
    let fresh: FreshPostgresDatabase;
    beforeAll(async () => {
      fresh = (await freshPostgresDatabase('postgres migrations')) as FreshPostgresDatabase;
    });
    afterAll(async () => fresh?.drop());

    it('five migrators starting at once on an empty database apply the schema once, without errors', async () => {
      const pools = Array.from({ length: 5 }, () => postgres(fresh.url, pgDriverOptions({ poolSize: 1 })));
      try {
        expect(await postgresSchemaVersion(pools[0])).toBe(0);
        const versions = await Promise.all(pools.map((p) => migratePostgres(p)));
        expect(versions).toEqual(pools.map(() => PG_LATEST));
        const rows = await pools[0]<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
        // each migration once (numbers may have gaps while branches that take the ones between are unmerged)
        expect(rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((m) => m.version));
        expect(await postgresSchemaVersion(pools[0])).toBe(PG_LATEST);
      } finally {
        await Promise.all(pools.map((p) => p.end()));
      }
    });

    it('refuses a database newer than the program', async () => {
      const sql = postgres(fresh.url, pgDriverOptions({ poolSize: 1 }));
      try {
        await migratePostgres(sql);
        await sql`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${PG_LATEST + 1}, 'future', 0)`;
        await expect(migratePostgres(sql)).rejects.toThrow(/newer than this program/);
      } finally {
        await sql`DELETE FROM schema_migrations WHERE version > ${PG_LATEST}`;
        await sql.end();
      }
    });

    it('returns bigint columns as numbers and booleans as booleans, also beyond 2^31', async () => {
      const store = await openPostgresStore(fresh.url, { poolSize: 2 });
      try {
        const k = await store.insertKey({
          publicId: 'pk_big', secretHash: 'h_big', name: 'n', balanceMicro: 2 ** 40, permissions: [], isAdmin: false, createdBy: null, createdAt: 1_700_000_000_000,
        });
        expect(k.balanceMicro).toBe(2 ** 40);
        expect(k.createdAt).toBe(1_700_000_000_000);
        expect(typeof k.id).toBe('number');
        expect(k.isAdmin).toBe(false);
      } finally {
        await store.close();
      }
    });
  });
});
