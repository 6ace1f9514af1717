/**
 * A fresh PostgreSQL database for a test file or suite, on the run's private cluster (see `postgres-global.ts`).
 * Without PostgreSQL the caller skips loudly with the reason — except in CI (`CI` set), where it throws.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

/** A database of its own: its URL, and how to drop it (closing other connections first). */
export interface FreshPostgresDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Why there is no PostgreSQL for this run; print it loudly and skip. */
export interface PostgresSkipped {
  skipped: string;
}

let cached: Promise<{ url?: string; skipped?: string }> | undefined;

async function cluster(): Promise<{ url?: string; skipped?: string }> {
  const control = inject('postgresControl');
  if (!control) return { skipped: 'DROPZONE_TEST_PG=off (or the vitest globalSetup test/helpers/postgres-global.ts is not configured)' };
  cached ??= fetch(control).then((r) => r.json() as Promise<{ url?: string; skipped?: string }>);
  return cached;
}

/**
 * Creates `dz_<random>` on the cluster (starting the cluster first if this is the run's first use). Answers the
 * database or, when PostgreSQL is unavailable, why (after printing a banner naming `suite`); in CI it throws instead.
 */
export async function freshPostgresDatabase(suite: string): Promise<FreshPostgresDatabase | PostgresSkipped> {
  const c = await cluster();
  if (!c.url) {
    const why = c.skipped ?? 'unknown reason';
    if (process.env.CI) throw new Error(`the PostgreSQL tests of ${suite} cannot run in CI: ${why}`);
    const line = '!'.repeat(100);
    console.warn(`\n${line}\n!! SKIPPING the PostgreSQL tests of ${suite}: ${why}\n${line}\n`);
    return { skipped: why };
  }
  const { default: postgres } = await import('postgres');
  const name = `dz_${randomBytes(6).toString('hex')}`;
  const admin = postgres(c.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = c.url.replace(/\/postgres$/, `/${name}`);
  return {
    url,
    async drop() {
      const sql = postgres(c.url!, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await sql.end();
      }
    },
  };
}
