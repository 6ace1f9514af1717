import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.js';

/** The better-sqlite3 connection type used across the project. */
export type Db = Database.Database;

/** Options for {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /** A preloaded better-sqlite3 addon (the single executable passes one); the module's own is used when omitted. */
  nativeBinding?: object;
}

/**
 * Opens (creating if needed) the SQLite database at `path` (`:memory:` allowed) with WAL, foreign keys,
 * a busy timeout and NORMAL sync, then applies pending migrations. The caller owns the connection and must `close()` it.
 * Throws when the file cannot be opened or a migration fails (the failed migration is rolled back).
 */
export function openDatabase(path: string, opts: OpenDatabaseOptions = {}): Db {
  const db = new Database(path, opts.nativeBinding ? { nativeBinding: opts.nativeBinding as never } : {});
  try {
    if (path !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = NORMAL');
    migrate(db);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/** Applies every migration newer than the database's `user_version`, each in its own transaction. */
export function migrate(db: Db): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
  if (current > latest) throw new Error(`database schema version ${current} is newer than this program (${latest}); upgrade Dropzone Server`);
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return latest;
}
