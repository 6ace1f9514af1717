/**
 * A private ClamAV daemon for the scan tests: `clamd` (Debian's clamav-daemon) started in the foreground in a fresh
 * temp directory with a clamd.conf and a signature database the test writes itself — MD5 hash signatures
 * (`md5:size:Name`, a `.hdb` file) of byte strings the test makes up. No freshclam, no download, no system daemon.
 * Without clamd the caller gets `{ skipped }` (in CI, `CI` set, it throws instead).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** Where Debian installs clamd. */
export const CLAMD_BIN = ['/usr/sbin/clamd', '/usr/bin/clamd'].find((p) => existsSync(p));

/** A running private clamd. */
export interface Clamd {
  /** Its local socket. */
  socket: string;
  /** Stops it and removes its directory; idempotent. */
  stop(): Promise<void>;
}

/** Why clamd cannot be used, or false. Throws in CI, where the tests must run. */
export function clamdMissing(): string | false {
  if (CLAMD_BIN) return false;
  const why = 'clamd is not installed (apt-get install -y clamav-daemon; `npm test` does it when run as root)';
  if (process.env.CI) throw new Error(`the virus-scan tests cannot run in CI: ${why}`);
  return why;
}

/** A hash signature line for `bytes` named `name` (clamd reports it as `<name>.UNOFFICIAL`). */
export function hashSignature(bytes: Uint8Array, name: string): string {
  return `${createHash('md5').update(bytes).digest('hex')}:${bytes.byteLength}:${name}`;
}

/** Answers true when clamd at `socket` answers PING with PONG. */
function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(socket);
    let got = '';
    s.setTimeout(2000, () => s.destroy());
    s.on('connect', () => s.write('zPING\0'));
    s.on('data', (d) => (got += d.toString()));
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(got.startsWith('PONG')));
  });
}

/** Starts clamd with `signatures` (lines of a `.hdb` file); rejects with its log when it does not come up within a minute. */
export async function startClamd(signatures: string[]): Promise<Clamd> {
  if (!CLAMD_BIN) throw new Error('clamd is not installed');
  const dir = await mkdtemp(path.join(tmpdir(), 'dz-clamd-'));
  const socket = path.join(dir, 'clamd.sock');
  const db = path.join(dir, 'db');
  const logFile = path.join(dir, 'clamd.log');
  await mkdir(db, { mode: 0o700 });
  await writeFile(path.join(db, 'dropzone-test.hdb'), signatures.join('\n') + '\n');
  await writeFile(
    path.join(dir, 'clamd.conf'),
    [
      `LocalSocket ${socket}`,
      `DatabaseDirectory ${db}`,
      `TemporaryDirectory ${dir}`,
      `LogFile ${logFile}`,
      'Foreground yes',
      'StreamMaxLength 8M',
      'MaxThreads 4',
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined = spawn(CLAMD_BIN, ['-c', path.join(dir, 'clamd.conf')], { stdio: 'ignore' });
  let exited = false;
  child.on('exit', () => (exited = true));
  const stop = async () => {
    if (child && !exited) {
      const gone = new Promise((res) => child!.once('exit', res));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((res) => setTimeout(res, 5000))]);
      if (!exited) child.kill('SIGKILL');
    }
    child = undefined;
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 240; i++) {
    if (exited) break;
    if (existsSync(socket) && (await ping(socket))) return { socket, stop };
    await new Promise((res) => setTimeout(res, 250));
  }
  const log = await readFile(logFile, 'utf8').catch(() => '(no log)');
  await stop();
  throw new Error(`clamd did not start:\n${log.slice(-2000)}`);
}
