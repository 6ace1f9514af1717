/**
 * A private PostgreSQL cluster for the test run: `initdb` in a fresh temp directory, started with `pg_ctl` on a free
 * port (TCP on 127.0.0.1 and a socket in the same directory), stopped with `-m immediate` and removed afterwards. No
 * system cluster, no fixed port, no shared state. As root the cluster runs as the `postgres` user (initdb refuses
 * root); otherwise as the current user. Used by the vitest globalSetup in `postgres-global.ts`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './moto.js';

const run = promisify(execFile);

/** A running private cluster. */
export interface PostgresCluster {
  /** Superuser URL of the `postgres` database (trust auth, no password). */
  adminUrl: string;
  /** Stops the server (immediate mode) and removes its directory; idempotent. */
  stop(): Promise<void>;
}

/** The directory holding `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest /usr/lib/postgresql/<n>/bin. */
export async function postgresBinDir(): Promise<string | undefined> {
  try {
    const { stdout } = await run('pg_config', ['--bindir']);
    const dir = stdout.trim();
    if (existsSync(path.join(dir, 'initdb'))) return dir;
  } catch {
    /* no pg_config: look in Debian's place */
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}


/**
 * Starts a private cluster. Rejects with a message saying why when PostgreSQL is not installed or does not start
 * (the directory is removed then).
 */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bin = await postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (no initdb in `pg_config --bindir` or /usr/lib/postgresql/*/bin; apt-get install -y postgresql, `npm test` does it when run as root)');
  const isRoot = process.getuid?.() === 0;
  const dir = await mkdtemp(path.join(tmpdir(), 'dz-pg-'));
  const as = (cmd: string, args: string[]) => (isRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args));
  const data = path.join(dir, 'data');
  let started = false;
  let watchdog: ChildProcess | undefined;
  const stop = async () => {
    watchdog?.kill('SIGKILL');
    watchdog = undefined;
    if (started) {
      started = false;
      await as(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await chmod(dir, 0o700);
    if (isRoot) {
      const { stdout } = await run('id', ['-u', 'postgres']).catch(() => ({ stdout: '' }));
      const { stdout: gid } = await run('id', ['-g', 'postgres']).catch(() => ({ stdout: '' }));
      if (!stdout.trim()) throw new Error('running as root but there is no `postgres` user to run the cluster as');
      await chown(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    await as(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    const port = await freePort();
    const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300`;
    started = true;
    await as(path.join(bin, 'pg_ctl'), ['-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o', opts, 'start']);
    // pg_ctl detaches the server: should this process die without its teardown (SIGKILL), a detached watchdog
    // stops the cluster and removes its directory
    const ctl = `${isRoot ? 'runuser -u postgres -- ' : ''}'${path.join(bin, 'pg_ctl')}' -D '${data}' -m immediate stop`;
    watchdog = spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 2; done; ${ctl} >/dev/null 2>&1; rm -rf '${dir}'`], {
      detached: true,
      stdio: 'ignore',
    });
    watchdog.unref();
    return { adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`, stop };
  } catch (e) {
    const log = await readFile(path.join(dir, 'log'), 'utf8').catch(() => '');
    await stop();
    const detail = e instanceof Error ? e.message : String(e);
    throw new Error(`PostgreSQL did not start: ${detail}${log ? `\n--- server log ---\n${log.slice(-2000)}` : ''}`);
  }
}
