/**
 * A private PostgreSQL cluster for the test suite: `initdb` into a fresh temporary directory (owned by the `postgres`
 * user when we run as root, since the server refuses to run as root), started with `pg_ctl` on a free port with its
 * Unix socket in that directory, trust authentication on 127.0.0.1 only, and no fsync (test data is disposable).
 * `stop()` shuts it down and removes the directory. No shared state, no fixed port.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './moto.js';

/** A running private cluster. */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth). */
  url: string;
  port: number;
  /** Psql-style connection URL of database `name` on this cluster. */
  urlOf(name: string): string;
  /** Runs SQL through psql against database `db` (default `postgres`); returns stdout. */
  psql(sql: string, db?: string): string;
  /** Stops the cluster and removes its directory; idempotent. */
  stop(): void;
}

/** The directory holding initdb/pg_ctl/psql: `pg_config --bindir`, else the newest /usr/lib/postgresql/N/bin. */
export function postgresBinDir(): string | undefined {
  const cfg = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const fromConfig = cfg.status === 0 ? cfg.stdout.trim() : '';
  if (fromConfig && existsSync(join(fromConfig, 'initdb'))) return fromConfig;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

/** Why no cluster can be started here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  return postgresBinDir() ? undefined : 'PostgreSQL server binaries (initdb, pg_ctl) are not installed (apt-get install postgresql)';
}

/** Starts a private cluster; throws with initdb's or the server's log when it cannot. */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(postgresMissing());
  const isRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'dropzone-pg-'));
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  // as root, everything runs as the postgres user, which must own the directory
  const asUser = (cmd: string, args: string[]) => (isRoot ? { cmd: 'runuser', args: ['-u', 'postgres', '--', cmd, ...args] } : { cmd, args });
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const run = (cmd: string, args: string[]) => {
    const c = asUser(join(bin, cmd), args);
    const r = spawnSync(c.cmd, c.args, { encoding: 'utf8', cwd: dir });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}${existsSync(log) ? spawnSync('cat', [log], { encoding: 'utf8' }).stdout : ''}`);
    return r.stdout;
  };
  const port = await freePort();
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      log,
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`,
      'start',
    ]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  const urlOf = (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}`;
  return {
    url: urlOf('postgres'),
    port,
    urlOf,
    psql(sql, db = 'postgres') {
      const r = spawnSync(join(bin, 'psql'), ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-c', sql], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
      return r.stdout;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
