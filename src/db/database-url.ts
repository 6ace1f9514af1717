/**
 * `database.url`: which metadata database to use. Empty means the SQLite file `<dataDir>/dropzone.db`;
 * `sqlite:<path>` (also `sqlite://<path>`) names another SQLite file; `postgres://…` / `postgresql://…` a PostgreSQL
 * database. Pure functions, no driver loaded.
 */
import * as path from 'node:path';

/** Matches a PostgreSQL connection URL. */
export const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/** Where the metadata lives, as resolved from `database.url`. */
export type DatabaseTarget = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** True for a URL the `database.url` setting accepts (empty, `sqlite:…` or `postgres(ql)://…`). */
export function isDatabaseUrl(url: string): boolean {
  return url === '' || POSTGRES_URL.test(url) || (/^sqlite:/i.test(url) && sqlitePath(url) !== '');
}

/** True when `url` names a PostgreSQL database. */
export function isPostgresUrl(url: string): boolean {
  return POSTGRES_URL.test(url);
}

function sqlitePath(url: string): string {
  const rest = url.replace(/^sqlite:/i, '');
  return rest.startsWith('//') ? rest.slice(2) : rest;
}

/**
 * Resolves `url` (the `database.url` setting; '' means `<dataDir>/dropzone.db`). Relative SQLite paths are relative
 * to the working directory. Throws on anything else.
 */
export function resolveDatabaseUrl(url: string, dataDir: string): DatabaseTarget {
  if (url === '') return { kind: 'sqlite', path: path.resolve(dataDir, 'dropzone.db') };
  if (isPostgresUrl(url)) return { kind: 'postgres', url };
  if (/^sqlite:/i.test(url)) {
    const p = sqlitePath(url);
    if (p === '') throw new Error('database URL "sqlite:" names no file; write sqlite:<path>');
    return { kind: 'sqlite', path: p === ':memory:' ? p : path.resolve(p) };
  }
  throw new Error(`database URL must start with sqlite:, postgres:// or postgresql:// (got "${redactDatabaseUrl(url)}")`);
}

/**
 * `url` with any password replaced by `***` (and query parameters that carry one), for logs and messages. SQLite
 * paths come back unchanged.
 */
export function redactDatabaseUrl(url: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const k of [...u.searchParams.keys()]) if (/pass|secret|token|key/i.test(k)) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    // not parseable: drop everything between the scheme and the host, which is where a password would be
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1***@');
  }
}
