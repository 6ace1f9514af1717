import { existsSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type postgres from 'postgres';
import { type Db, openDatabase } from '../db/database.js';
import { type DatabaseTarget, redactDatabaseUrl, resolveDatabaseUrl } from '../db/database-url.js';
import { MIGRATIONS } from '../db/migrations.js';
import { loadSqliteBinding } from '../runtime/native-addon.js';
import { ensurePrivateDir, ensurePrivateFile } from '../runtime/private-files.js';
import { type CliIo, UsageError, parse } from './common.js';

/** Help of `dropzone db`. */
export const DB_HELP = `Usage: dropzone db copy --from <url> --to <url> [options]

Copies every row of the metadata database <from> (keys with their ids, balances and revocations, dropzones,
files, grants, settings including the signing secret, the blob-deletion queue) into the EMPTY database <to>, in
one transaction on <to>, then checks that every table has as many rows on both sides and prints the counts.
A target with any row is refused. Blobs are not copied: point the new setup at the same blob store.

URLs: sqlite:<path> (e.g. sqlite:./data/dropzone.db) or postgres://user:password@host:5432/db; any direction.
The source must be at the current schema version ('dropzone migrate' upgrades it); the target is migrated.
Stop the servers using <from> first: rows written during the copy are not guaranteed to be in it.

Options:
      --from <url>      the database to copy from
      --to <url>        the empty database to copy into
      --batch <n>       rows per batch (default 1000)
  -h, --help            this help`;

/**
 * The tables, parents first, with the columns both schemas share (SQLite after migration 7, PostgreSQL migration 2)
 * and their primary key, which orders the keyset batches. A test checks these lists against both schemas.
 */
export const COPY_TABLES: readonly { name: string; columns: readonly string[]; key: readonly string[]; booleans?: readonly string[] }[] = [
  { name: 'settings', columns: ['key', 'value'], key: ['key'] },
  {
    name: 'api_keys',
    columns: ['id', 'public_id', 'secret_hash', 'name', 'balance_micro', 'permissions', 'is_admin', 'created_by', 'created_at', 'revoked_at'],
    key: ['id'],
    booleans: ['is_admin'],
  },
  {
    name: 'dropzones',
    columns: [
      'id', 'share_id', 'code', 'name', 'live_name', 'owner_key_id', 'tier', 'hidden', 'size_gb', 'days', 'max_size', 'max_file_size',
      'used_space', 'file_count', 'start_time', 'delete_time', 'created_at', 'updated_at',
    ],
    key: ['id'],
    booleans: ['hidden'],
  },
  {
    name: 'files',
    columns: [
      'id', 'dropzone_id', 'name', 'type', 'size', 'blob_key', 'status', 'etag', 'uploader_key_id', 'created_at', 'confirmed_at',
      'pending_expires_at', 'pending_holder', 'multipart_upload_id', 'scan_state', 'scan_claim_until',
    ],
    key: ['id'],
  },
  { name: 'permissions', columns: ['resource_type', 'resource_id', 'principal', 'permission', 'created_at'], key: ['resource_type', 'resource_id', 'principal', 'permission'] },
  { name: 'blob_deletions', columns: ['blob_key', 'queued_at', 'not_before', 'tries'], key: ['blob_key'] },
  // who sweeps (SQLite migration 7, PostgreSQL migration 2); copied like the rest, a stale holder's lease just expires
  { name: 'leases', columns: ['name', 'holder', 'expires_at'], key: ['name'] },
  // the events outbox and webhooks (SQLite migration 9, PostgreSQL migration 4): pending deliveries go on from the copy
  {
    name: 'events',
    columns: ['seq', 'id', 'type', 'created_at', 'dropzone_id', 'share_id', 'file_id', 'actor', 'owner', 'audience', 'data', 'dispatched_at'],
    key: ['seq'],
  },
  { name: 'webhooks', columns: ['id', 'key_id', 'url', 'events', 'secret', 'created_at'], key: ['id'] },
  {
    name: 'webhook_deliveries',
    columns: ['id', 'webhook_id', 'event_id', 'body', 'status', 'attempts', 'next_attempt_at', 'created_at', 'updated_at'],
    key: ['id'],
  },
  {
    name: 'webhook_attempts',
    columns: ['id', 'delivery_id', 'webhook_id', 'event_id', 'at', 'status_code', 'error', 'latency_ms'],
    key: ['id'],
  },
];

type Table = (typeof COPY_TABLES)[number];
type Row = Record<string, unknown>;

/** Reads a consistent snapshot of a database in keyset batches. */
interface Source {
  count(t: Table): Promise<number>;
  batch(t: Table, after: Row | undefined, limit: number): Promise<Row[]>;
  close(): Promise<void>;
}

/** Writes into a database inside one transaction. */
interface Target {
  /** The first table with rows, if any. */
  firstNonEmpty(): Promise<{ table: string; rows: number } | undefined>;
  insert(t: Table, rows: Row[]): Promise<void>;
  count(t: Table): Promise<number>;
  /** Sets identity sequences past the copied ids (PostgreSQL). */
  finish(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  close(): Promise<void>;
}

/** Tables in the order an existing install is looked for in a target: the main data first, then the rest. */
const BY_IMPORTANCE = [...COPY_TABLES].sort((x, y) => rank(x.name) - rank(y.name));
function rank(name: string): number {
  const i = ['api_keys', 'dropzones', 'files'].indexOf(name);
  return i < 0 ? 3 : i;
}

const SQLITE_LATEST = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
const quoteCols = (cols: readonly string[]) => cols.map((c) => `"${c}"`).join(', ');
const keyAfter = (t: Table, first: number) => `(${quoteCols(t.key)}) > (${t.key.map((_, i) => `$${first + i}`).join(', ')})`;

function sqliteNative(): { nativeBinding?: never } {
  const nativeBinding = loadSqliteBinding();
  return nativeBinding ? { nativeBinding: nativeBinding as never } : {};
}

async function sqliteSource(file: string): Promise<Source> {
  if (!existsSync(file)) throw new Error(`source database ${file} does not exist`);
  const db = new Database(file, { readonly: true, fileMustExist: true, ...sqliteNative() });
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version !== SQLITE_LATEST) {
    db.close();
    throw new Error(`source database ${file} is at schema version ${version}, this program at ${SQLITE_LATEST}: run 'dropzone migrate' on it first (or use the matching version)`);
  }
  // one read transaction: every batch sees the same snapshot
  db.exec('BEGIN');
  const q = (t: Table, after: boolean) =>
    db.prepare(`SELECT ${quoteCols(t.columns)} FROM ${t.name}${after ? ` WHERE ${keyAfter(t, 1).replace(/\$\d+/g, '?')}` : ''} ORDER BY ${quoteCols(t.key)} LIMIT ?`);
  return {
    count: async (t) => (db.prepare(`SELECT COUNT(*) AS n FROM ${t.name}`).get() as { n: number }).n,
    async batch(t, after, limit) {
      const rows = (after ? q(t, true).all(...t.key.map((k) => after[k]), limit) : q(t, false).all(limit)) as Row[];
      for (const r of rows) for (const b of t.booleans ?? []) r[b] = r[b] === 1;
      return rows;
    },
    async close() {
      if (db.inTransaction) db.exec('COMMIT');
      db.close();
    },
  };
}

async function postgresConnect(url: string): Promise<postgres.Sql<Record<string, unknown>>> {
  const { default: connect } = await import('postgres');
  const { pgDriverOptions } = await import('../db/postgres-store.js');
  return connect(url, pgDriverOptions({ poolSize: 1, statementTimeoutMs: 0, applicationName: 'dropzone db copy' })) as unknown as postgres.Sql<Record<string, unknown>>;
}

async function postgresSource(url: string): Promise<Source> {
  const { PG_LATEST, postgresSchemaVersion } = await import('../db/postgres-migrations.js');
  const pool = await postgresConnect(url);
  try {
    const version = await postgresSchemaVersion(pool);
    if (version !== PG_LATEST)
      throw new Error(`source database ${redactDatabaseUrl(url)} is at schema version ${version}, this program at ${PG_LATEST}: run 'dropzone migrate' on it first`);
  } catch (e) {
    await pool.end({ timeout: 5 });
    throw e;
  }
  const sql = await pool.reserve();
  await sql.unsafe('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  return {
    count: async (t) => Number((await sql.unsafe(`SELECT COUNT(*)::int8 AS n FROM ${t.name}`))[0].n),
    async batch(t, after, limit) {
      const base = `SELECT ${quoteCols(t.columns)} FROM ${t.name}`;
      const rows = after
        ? await sql.unsafe(`${base} WHERE ${keyAfter(t, 1)} ORDER BY ${quoteCols(t.key)} LIMIT $${t.key.length + 1}`, [...t.key.map((k) => after[k]), limit] as never[])
        : await sql.unsafe(`${base} ORDER BY ${quoteCols(t.key)} LIMIT $1`, [limit]);
      return [...rows] as Row[];
    },
    async close() {
      await sql.unsafe('COMMIT').catch(() => {});
      sql.release();
      await pool.end({ timeout: 5 });
    },
  };
}

async function sqliteTarget(file: string): Promise<Target> {
  ensurePrivateDir(path.dirname(file));
  ensurePrivateFile(file);
  const db: Db = openDatabase(file, sqliteNative());
  db.exec('BEGIN IMMEDIATE');
  const inserts = new Map<string, Database.Statement>();
  return {
    async firstNonEmpty() {
      for (const t of BY_IMPORTANCE) {
        const n = (db.prepare(`SELECT COUNT(*) AS n FROM ${t.name}`).get() as { n: number }).n;
        if (n > 0) return { table: t.name, rows: n };
      }
      return undefined;
    },
    async insert(t, rows) {
      let stmt = inserts.get(t.name);
      if (!stmt) {
        stmt = db.prepare(`INSERT INTO ${t.name} (${quoteCols(t.columns)}) VALUES (${t.columns.map(() => '?').join(', ')})`);
        inserts.set(t.name, stmt);
      }
      for (const r of rows) stmt.run(...t.columns.map((c) => (t.booleans?.includes(c) ? (r[c] ? 1 : 0) : r[c])));
    },
    count: async (t) => (db.prepare(`SELECT COUNT(*) AS n FROM ${t.name}`).get() as { n: number }).n,
    async finish() {},
    async commit() {
      db.exec('COMMIT');
    },
    async rollback() {
      if (db.inTransaction) db.exec('ROLLBACK');
    },
    async close() {
      db.close();
    },
  };
}

async function postgresTarget(url: string): Promise<Target> {
  const { migratePostgres } = await import('../db/postgres-migrations.js');
  const pool = await postgresConnect(url);
  let sql: postgres.ReservedSql<Record<string, unknown>>;
  try {
    await migratePostgres(pool);
    sql = await pool.reserve();
    await sql.unsafe('BEGIN');
  } catch (e) {
    await pool.end({ timeout: 5 });
    throw e;
  }
  return {
    async firstNonEmpty() {
      for (const t of BY_IMPORTANCE) {
        const n = Number((await sql.unsafe(`SELECT COUNT(*)::int8 AS n FROM ${t.name}`))[0].n);
        if (n > 0) return { table: t.name, rows: n };
      }
      return undefined;
    },
    async insert(t, rows) {
      if (rows.length === 0) return;
      await sql`INSERT INTO ${sql(t.name)} ${sql(rows as never, t.columns as never)}`;
    },
    count: async (t) => Number((await sql.unsafe(`SELECT COUNT(*)::int8 AS n FROM ${t.name}`))[0].n),
    async finish() {
      // copied ids were inserted explicitly: move the identity past them so new keys do not collide
      await sql.unsafe(`SELECT setval(pg_get_serial_sequence('api_keys', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM api_keys`);
      await sql.unsafe(`SELECT setval(pg_get_serial_sequence('events', 'seq'), COALESCE(MAX(seq), 0) + 1, false) FROM events`);
      await sql.unsafe(`SELECT setval(pg_get_serial_sequence('webhook_attempts', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM webhook_attempts`);
    },
    async commit() {
      await sql.unsafe('COMMIT');
    },
    async rollback() {
      await sql.unsafe('ROLLBACK').catch(() => {});
    },
    async close() {
      sql.release();
      await pool.end({ timeout: 5 });
    },
  };
}

const openSource = (t: DatabaseTarget) => (t.kind === 'sqlite' ? sqliteSource(t.path) : postgresSource(t.url));
const openTarget = (t: DatabaseTarget) => (t.kind === 'sqlite' ? sqliteTarget(t.path) : postgresTarget(t.url));
const describeTarget = (t: DatabaseTarget) => (t.kind === 'sqlite' ? `sqlite:${t.path}` : redactDatabaseUrl(t.url));

/**
 * Copies every table of `from` into the empty `to` in one transaction on `to`, batch by batch (bounded memory),
 * verifies the per-table counts against the source snapshot, and answers them. Throws (after rolling back) when `to`
 * has rows, a schema version does not match, or a count differs.
 */
export async function copyDatabase(
  from: DatabaseTarget,
  to: DatabaseTarget,
  opts: { batch?: number; progress?: (line: string) => void } = {},
): Promise<{ table: string; rows: number }[]> {
  const batchSize = opts.batch ?? 1000;
  if (from.kind === to.kind && (from.kind === 'sqlite' ? from.path === (to as { path: string }).path : from.url === (to as { url: string }).url))
    throw new Error('--from and --to name the same database');
  const source = await openSource(from);
  let target: Target | undefined;
  try {
    target = await openTarget(to);
    const busy = await target.firstNonEmpty();
    if (busy) throw new Error(`target database ${describeTarget(to)} is not empty (${busy.table} has ${busy.rows} row(s)); db copy only fills an empty database`);
    const counts: { table: string; rows: number }[] = [];
    for (const t of COPY_TABLES) {
      let copied = 0;
      let after: Row | undefined;
      for (;;) {
        const rows = await source.batch(t, after, batchSize);
        if (rows.length === 0) break;
        await target.insert(t, rows);
        copied += rows.length;
        after = rows[rows.length - 1];
        if (rows.length < batchSize) break;
      }
      const expected = await source.count(t);
      const got = await target.count(t);
      if (copied !== expected || got !== expected)
        throw new Error(`${t.name}: the source has ${expected} row(s) but ${copied} were read and the target has ${got}; nothing was copied`);
      counts.push({ table: t.name, rows: got });
      opts.progress?.(`  ${t.name}: ${got} row(s)`);
    }
    await target.finish();
    await target.commit();
    return counts;
  } catch (e) {
    await target?.rollback();
    throw e;
  } finally {
    await target?.close();
    await source.close();
  }
}

/** `dropzone db copy --from <url> --to <url>`: exit 0 with the verified counts, 1 on failure (nothing copied). */
export async function dbCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') {
    io.out(DB_HELP);
    return 0;
  }
  if (sub === undefined) throw new UsageError('db needs a subcommand: copy');
  if (sub !== 'copy') throw new UsageError(`unknown db subcommand "${sub}" (known: copy)`);
  const { values } = parse(rest, {
    from: { type: 'string' },
    to: { type: 'string' },
    batch: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(DB_HELP);
    return 0;
  }
  if (!values.from || !values.to) throw new UsageError('db copy needs --from <url> and --to <url>');
  const batch = values.batch === undefined ? 1000 : Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) throw new UsageError('--batch must be an integer from 1 to 10000');
  const url = (u: string, flag: string) => {
    if (u === '') throw new UsageError(`${flag} needs a URL`);
    try {
      return resolveDatabaseUrl(u, '.');
    } catch (e) {
      throw new UsageError(`${flag}: ${(e as Error).message}`);
    }
  };
  const from = url(values.from, '--from');
  const to = url(values.to, '--to');
  io.out(`Copying ${describeTarget(from)} → ${describeTarget(to)}`);
  const counts = await copyDatabase(from, to, { batch, progress: io.out });
  io.out(`Verified: the target has the same number of rows as the source in every table (${counts.reduce((n, c) => n + c.rows, 0)} in all).`);
  return 0;
}
