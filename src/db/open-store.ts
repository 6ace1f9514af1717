/**
 * Opens the configured metadata store: SQLite (the default, `<dataDir>/dropzone.db` or `sqlite:<path>`) or
 * PostgreSQL (`postgres://…`), migrated and ready. The PostgreSQL driver is loaded only for a PostgreSQL URL.
 */
import * as path from 'node:path';
import type { Config } from '../config/schema.js';
import type { MetadataStore } from '../core/ports/metadata-store.js';
import { ensurePrivateDir, ensurePrivateFile, tightenFile } from '../runtime/private-files.js';
import { openDatabase } from './database.js';
import { resolveDatabaseUrl } from './database-url.js';
import { createSqliteStore } from './sqlite-store.js';

/** Options for {@link openMetadataStore}. */
export interface OpenMetadataStoreOptions {
  /** A preloaded better-sqlite3 addon (the single executable passes one). */
  nativeBinding?: object;
  /** Told when an after-commit hook fails (the commit stands). */
  onHookError?: (error: unknown) => void;
  /** Told about a data directory other users can read (SQLite). */
  warn?: (message: string) => void;
  /** Shown in PostgreSQL's `pg_stat_activity` (default `dropzone`). */
  applicationName?: string;
}

/**
 * Opens and migrates the store `config.database` names. SQLite files get owner-only modes (directory 0700, files
 * 0600) like the data directory; the store owns its connection or pool (`close()` releases it).
 */
export async function openMetadataStore(config: Pick<Config, 'dataDir' | 'database'>, opts: OpenMetadataStoreOptions = {}): Promise<MetadataStore> {
  const target = resolveDatabaseUrl(config.database.url, config.dataDir);
  if (target.kind === 'postgres') {
    const { openPostgresStore } = await import('./postgres-store.js');
    return openPostgresStore(target.url, {
      poolSize: config.database.poolSize,
      statementTimeoutMs: config.database.statementTimeoutMs,
      applicationName: opts.applicationName,
      onHookError: opts.onHookError,
    });
  }
  if (target.path !== ':memory:') {
    const loose = ensurePrivateDir(path.dirname(target.path));
    if (loose) opts.warn?.(loose);
    ensurePrivateFile(target.path);
    for (const suffix of ['-wal', '-shm']) tightenFile(target.path + suffix);
  }
  const db = openDatabase(target.path, { nativeBinding: opts.nativeBinding });
  return createSqliteStore(db, { ownsConnection: true, onHookError: opts.onHookError });
}
