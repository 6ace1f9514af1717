import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/** A running moto S3 server. */
export interface MotoServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  endpoint: string;
  /** Kills the server (its whole process group) and waits for it to exit; idempotent. */
  stop(): Promise<void>;
}

/** Why moto could not be started; the caller must print it loudly and skip its tests. */
export interface MotoSkipped {
  skipped: string;
}

/** Dummy credentials moto accepts (it does not verify signatures). */
export const MOTO_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

const START_TIMEOUT_MS = 20_000;

/**
 * `sh -c` script started with the port as `$1`: exits 127 when moto_server is missing, otherwise runs it and a
 * watchdog that kills it once stdin (a pipe from the test process) reaches EOF; exits with moto's status.
 */
const MOTO_WRAPPER = [
  'command -v moto_server >/dev/null 2>&1 || { echo "moto_server: not found" >&2; exit 127; }',
  'exec 3<&0',
  'moto_server -H 127.0.0.1 -p "$1" </dev/null &',
  'm=$!',
  '(cat <&3 >/dev/null; kill "$m" 2>/dev/null; sleep 2; kill -9 "$m" 2>/dev/null) &',
  'wait "$m"',
].join('\n');

/** Resolves a TCP port that was free a moment ago (listen on 0, read the port, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/**
 * Starts `moto_server -H 127.0.0.1 -p PORT` on a free port and waits (≤ 20 s) until it answers HTTP.
 * The server is killed by `stop()`, or at the latest when the calling process dies.
 * Returns `{skipped: reason}` instead of throwing when moto is not on PATH, exits early or never answers;
 * callers must then `console.warn` the reason visibly and skip their tests.
 */
export async function startMoto(): Promise<MotoServer | MotoSkipped> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess;
  try {
    // moto_server runs under a small sh wrapper in its own process group (detached): stop() kills the whole group,
    // and the wrapper's watchdog kills moto when our end of its stdin closes, i.e. when this test process dies
    // without calling stop() (vitest ends its workers with SIGTERM, which skips 'exit' handlers).
    child = spawn('sh', ['-c', MOTO_WRAPPER, 'moto-wrapper', String(port)], {
      detached: true,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
  } catch (err) {
    return { skipped: `could not spawn moto_server: ${(err as Error).message}` };
  }
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  let exited: string | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('error', (err) => {
      exited = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'moto_server is not on PATH' : `moto_server failed: ${err.message}`;
      resolve();
    });
    child.once('exit', (code, signal) => {
      exited ??= code === 127 ? 'moto_server is not on PATH' : `moto_server exited early (code ${code}, signal ${signal})`;
      resolve();
    });
  });

  // When the process exits normally without stop(), kill the group at once rather than waiting for the watchdog.
  const killOnExit = () => killGroup(child, 'SIGKILL');
  process.once('exit', killOnExit);
  // Our end of the watchdog pipe must not keep the event loop alive.
  (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null || exited !== undefined) {
      killGroup(child, 'SIGKILL'); // reap any grandchildren left in the group
      return;
    }
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3000);
    await exitPromise;
    clearTimeout(timer);
    killGroup(child, 'SIGKILL');
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      const tail = stderr.trim().split('\n').slice(-5).join('\n');
      await stop();
      return { skipped: tail ? `${exited}: ${tail}` : exited };
    }
    try {
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return { endpoint, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await stop();
  return { skipped: `moto_server did not answer on ${endpoint} within ${START_TIMEOUT_MS / 1000} s` };
}

/** An S3 client for a moto endpoint: region us-east-1, path-style, dummy credentials. The caller destroys it. */
export function motoClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: MOTO_CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Creates `bucket` on the moto server at `endpoint` (us-east-1, path-style, dummy credentials). */
export async function createBucket(endpoint: string, bucket: string): Promise<void> {
  const client = motoClient(endpoint);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}
