import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../server.js';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, type CliIo, configFrom, parse } from './common.js';

/** Help of `dropzone serve`. */
export const SERVE_HELP = `Usage: dropzone serve [options]

Starts the server (the default command). Prints the URL it listens on, and the admin API key once on a fresh
data directory. SIGTERM/SIGINT stop it gracefully (exit 0). With server.tls.cert/key it serves HTTPS, and SIGHUP
re-reads both files. Started by systemd with a socket (LISTEN_FDS), it listens on that socket.

Options:
  -p, --port <n>        port to listen on; 0 picks a free one (server.port, default 3000)
      --host <addr>     interface to listen on (server.host, default 0.0.0.0)
      --public-url <u>  URL clients use to reach this server (server.publicUrl)
      --ephemeral       keep all data in a temporary directory removed on exit, no JIT warm-up (test fixtures)
      --fixture         enable /__fixture/reset and /__fixture/clock (fixture.enabled)
      --log-level <l>   debug | info | warn | error | silent (log.level)
${CONFIG_FLAGS_HELP}`;

/** `dropzone serve`: runs until SIGTERM/SIGINT, then resolves with exit code 0. */
export async function serveCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    ...CONFIG_FLAGS,
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    'public-url': { type: 'string' },
    ephemeral: { type: 'boolean' },
    fixture: { type: 'boolean' },
    'log-level': { type: 'string' },
  });
  if (values.help) {
    io.out(SERVE_HELP);
    return 0;
  }
  const extra: Record<string, unknown> = {};
  const names: Record<string, string> = {};
  const flag = (key: string, name: string, value: unknown) => {
    if (value === undefined) return;
    extra[key] = value;
    names[key] = name;
  };
  flag('server.port', '--port', values.port);
  flag('server.host', '--host', values.host);
  flag('server.publicUrl', '--public-url', values['public-url']);
  flag('fixture.enabled', '--fixture', values.fixture ? true : undefined);
  flag('log.level', '--log-level', values['log-level']);
  let tempDir: string | undefined;
  if (values.ephemeral) {
    tempDir = mkdtempSync(join(tmpdir(), 'dropzone-ephemeral-'));
    extra.dataDir = tempDir;
    // a test fixture: no background CPU for a JIT warm-up (`--set server.warmUpRequests=N` still turns it on)
    flag('server.warmUpRequests', '--ephemeral', 0);
  }
  const removeTemp = () => tempDir && rmSync(tempDir, { recursive: true, force: true });
  // Listen for signals before anything is printed: a supervisor (or test) may signal as soon as it reads the URL line,
  // and a signal arriving before the handler exists would kill the process with the default action.
  let signalled = 0;
  let wake!: () => void;
  const stopRequested = new Promise<void>((resolve) => (wake = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    signalled++;
    if (signalled === 1) {
      wake();
      return;
    }
    // A second signal while draining: give up waiting for requests in flight.
    io.err(`dropzone: ${signal} again, exiting without waiting for requests in flight`);
    removeTemp();
    process.exit(1);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let onHangup: (() => void) | undefined;
  try {
    const config = configFrom(values.ephemeral ? { ...values, 'data-dir': undefined } : values, io, extra, names);
    const server = await startServer(config, { listenFd: systemdListenFd(io.env) });
    // SIGHUP: re-read the TLS certificate and key (renewals need no restart); without TLS there is nothing to reload
    onHangup = () => {
      if (!config.server.tls.cert) return io.err('dropzone: SIGHUP ignored: not serving HTTPS');
      try {
        server.reloadTls();
        io.err('dropzone: TLS certificate and key reloaded');
      } catch (err) {
        io.err(`dropzone: TLS reload failed, keeping the current certificate: ${(err as Error).message}`);
      }
    };
    process.on('SIGHUP', onHangup);
    io.out(`Dropzone Server listening on ${server.url} (API: ${server.url}/api/v1)`);
    if (server.adminKeyGenerated) io.out(`Admin API key (shown only once, keep it safe): ${server.adminKey}`);
    if (server.storageFull) io.err('dropzone: storage is full: serving read-mostly (downloads and deletions work, what needs space answers 507) until space is freed');
    await stopRequested;
    await server.close();
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    if (onHangup) process.off('SIGHUP', onHangup);
    removeTemp();
  }
}

/**
 * systemd socket activation: the descriptor of the socket systemd passed (always 3, the first of `LISTEN_FDS`) when
 * `LISTEN_PID` names this process; undefined otherwise. With it, `server.host`/`server.port` are not used.
 */
export function systemdListenFd(env: Record<string, string | undefined>): number | undefined {
  if (env.LISTEN_PID !== String(process.pid)) return undefined;
  const count = Number(env.LISTEN_FDS);
  return Number.isInteger(count) && count >= 1 ? 3 : undefined;
}
