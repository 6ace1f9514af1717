import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../db/migrations.js';
import { redactDatabaseUrl, resolveDatabaseUrl } from '../db/database-url.js';
import { openMetadataStore } from '../db/open-store.js';
import { loadSqliteBinding } from '../runtime/native-addon.js';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, type CliIo, configFrom, parse } from './common.js';

/** Help of `dropzone migrate`. */
export const MIGRATE_HELP = `Usage: dropzone migrate [options]

Applies the pending schema migrations of the configured database (database.url: the SQLite file
<dataDir>/dropzone.db by default, or PostgreSQL) and prints its schema version. 'dropzone serve' does the same at
start; run this to upgrade the schema explicitly, e.g. once before rolling out a new version to several nodes.
On PostgreSQL an advisory lock makes concurrent migrations (several nodes starting at once) safe.

Options:
${CONFIG_FLAGS_HELP}`;

/** `dropzone migrate`: exit 0 with the schema version, 1 when the database cannot be opened or migrated. */
export async function migrateCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, CONFIG_FLAGS);
  if (values.help) {
    io.out(MIGRATE_HELP);
    return 0;
  }
  const config = configFrom(values, io);
  const target = resolveDatabaseUrl(config.database.url, config.dataDir);
  if (target.kind === 'postgres') {
    const { default: connect } = await import('postgres');
    const { PG_LATEST, migratePostgres, postgresSchemaVersion } = await import('../db/postgres-migrations.js');
    const { pgDriverOptions } = await import('../db/postgres-store.js');
    const sql = connect(target.url, { ...pgDriverOptions({ poolSize: 1, statementTimeoutMs: 0, applicationName: 'dropzone migrate' }) });
    try {
      const before = await postgresSchemaVersion(sql);
      const after = await migratePostgres(sql);
      io.out(report(`PostgreSQL ${redactDatabaseUrl(target.url)}`, before, after, PG_LATEST));
    } finally {
      await sql.end({ timeout: 5 });
    }
    return 0;
  }
  const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
  let before = 0;
  if (target.path !== ':memory:' && existsSync(target.path)) {
    const nativeBinding = loadSqliteBinding();
    const db = new Database(target.path, { readonly: true, fileMustExist: true, ...(nativeBinding ? { nativeBinding: nativeBinding as never } : {}) });
    try {
      before = db.pragma('user_version', { simple: true }) as number;
    } finally {
      db.close();
    }
  }
  const store = await openMetadataStore(config, { nativeBinding: loadSqliteBinding(), warn: (m) => io.err(m) });
  await store.close();
  io.out(report(`SQLite ${target.path}`, before, latest, latest));
  return 0;
}

function report(what: string, before: number, after: number, latest: number): string {
  return before === after
    ? `${what}: schema version ${after}, up to date (this program's latest is ${latest}).`
    : `${what}: migrated schema version ${before} → ${after}.`;
}
