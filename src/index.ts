import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from './config/load.js';
import { startServer as startConfigured } from './server.js';

/** Options of the programmatic {@link startServer}. */
export interface FixtureOptions {
  /** Dotted settings, e.g. `{ 'limits.maxGb': 10 }`; applied over defaults (no file, no env unless `useEnv`). */
  settings?: Record<string, unknown>;
  /** The admin key's secret; generated when omitted (and returned either way). */
  adminKey?: string;
  /** Keep data in this directory instead of a temporary one removed on close. */
  dataDir?: string;
  /** Enable `/__fixture/reset` and `/__fixture/clock` (default true for this entry). */
  fixture?: boolean;
  /** Also read `DROPZONE_*` environment variables (default false, so fixtures are reproducible). */
  useEnv?: boolean;
}

/** A running fixture server. */
export interface FixtureServer {
  url: string;
  /** The API base, `${url}/api/v1`. */
  apiUrl: string;
  adminKey: string;
  /** Stops the server and removes its temporary data directory. */
  close(): Promise<void>;
}

/**
 * Starts Dropzone Server for a test suite on 127.0.0.1 and a free port, with data in a fresh temporary directory
 * and fixture endpoints on. Throws ConfigError on bad settings. The caller must `close()` it.
 */
export async function startServer(opts: FixtureOptions = {}): Promise<FixtureServer> {
  const temp = opts.dataDir ? undefined : mkdtempSync(join(tmpdir(), 'dropzone-fixture-'));
  try {
    const config = loadConfig({
      env: opts.useEnv ? process.env : {},
      overrides: {
        'server.host': '127.0.0.1',
        'server.port': 0,
        'log.level': 'warn',
        'fixture.enabled': opts.fixture ?? true,
        'sweeper.intervalSeconds': 1,
        // a test suite's server: no background CPU for a JIT warm-up
        'server.warmUpRequests': 0,
        // a throw-away data directory needs no space set aside for full-disk recovery
        'storage.reserveBytes': 0,
        ...(opts.adminKey ? { 'security.adminKey': opts.adminKey } : {}),
        ...opts.settings,
        dataDir: opts.dataDir ?? temp,
      },
    });
    const server = await startConfigured(config);
    return {
      url: server.url,
      apiUrl: `${server.url}/api/v1`,
      adminKey: server.adminKey!,
      async close() {
        await server.close();
        if (temp) rmSync(temp, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (temp) rmSync(temp, { recursive: true, force: true });
    throw e;
  }
}
