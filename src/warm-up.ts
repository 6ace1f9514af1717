import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Agent, type Server as HttpServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from './app.js';
import { createLocalBlobStore } from './blobs/local-store.js';
import type { Config } from './config/schema.js';
import { createContext } from './context.js';
import { systemClock } from './core/clock.js';
import { costMicro, toGbMonths } from './core/quota.js';
import type { MetadataStore } from './core/ports/metadata-store.js';
import { openMetadataStore } from './db/open-store.js';
import { createNodeServer } from './http/node-server.js';
import { createLogger } from './log/logger.js';

/** What a warm-up did. */
export interface WarmUpReport {
  /** Requests answered (any status). */
  requests: number;
  /** Requests whose status was not the one expected (a 2xx for the reads, 404 and 401 for the refusals). */
  unexpected: number;
  /** Distinct requests in the mix (5, or 4 when no ordinary key could be made). */
  kinds: number;
  /** Wall time, ms. */
  ms: number;
}

/** Requests on one connection pool before it is replaced: new connections are part of what gets warm. */
const REQUESTS_PER_POOL = 200;
/** Connections used at once. */
const CONNECTIONS = 4;

/**
 * Answers `requests` requests of the common read path right after the server starts listening, so V8 has compiled it
 * to optimized code before the first clients' burst arrives (a fresh process otherwise serves its first second or two
 * at a fraction of its speed, while the compiler catches up, and a burst of connections then waits tens of ms).
 *
 * The requests go over loopback HTTP to a scratch instance of the same application — the same code, configuration and
 * Node HTTP server with the same timeouts ({@link createNodeServer}), over an in-memory SQLite database and a blob store
 * nothing is written to — never to the real server: nothing in the real database, blob store, request log or metrics
 * changes. The mix: a dropzone read with the admin key and with an ordinary key, `/healthz`, an unknown dropzone (404)
 * and an unknown key (401).
 *
 * Stops early when `signal` aborts (the server is closing). Throws only when the scratch instance cannot be built.
 */
export async function warmUp(config: Config, opts: { requests: number; signal: AbortSignal; sqliteBinding?: object }): Promise<WarmUpReport> {
  const t0 = performance.now();
  const clock = systemClock();
  const scratchConfig: Config = {
    ...config,
    server: { ...config.server, host: '127.0.0.1', port: 0 },
    database: { ...config.database, url: 'sqlite::memory:' },
    // prom-client registers process-wide collectors per registry: the scratch instance keeps none
    metrics: { ...config.metrics, enabled: false },
    // its admin pays for the scratch dropzones whatever the real admin's balance
    security: { ...config.security, adminGbMonths: null },
  };
  const blobRoot = join(tmpdir(), `dropzone-warm-up-${randomBytes(6).toString('hex')}`);
  let meta: MetadataStore | undefined;
  let server: HttpServer | undefined;
  try {
    meta = await openMetadataStore(scratchConfig, { nativeBinding: opts.sqliteBinding });
    let url = '';
    const blobs = createLocalBlobStore({ root: blobRoot, secret: randomBytes(32).toString('hex'), baseUrl: () => url, clock });
    // the same log level (the same request-log path), written nowhere
    const log = createLogger(config.log.level, () => {});
    const app = createApp(createContext({ config: scratchConfig, meta, blobs, clock, log }), { publicUrl: () => url });
    const { ctx } = app;
    const { admin, generatedSecret } = await ctx.keys.ensureAdmin();
    const adminSecret = generatedSecret ?? config.security.adminKey;
    // the smallest dropzone the limits allow
    const size = { gb: config.limits.minGb, days: config.limits.minDays };
    const own = await ctx.dropzones.create(admin, { ...size, name: 'warm-up' });
    const adminRead = { path: `/api/v1/dropzones/${own.dz.id}`, key: adminSecret, expect: 200 };
    let keyRead = adminRead;
    try {
      // an ordinary key's lookup and ownership check; the admin's read instead when it holds no GB-months to give
      const key = await ctx.keys.create(admin, { name: 'warm-up', gbMonths: toGbMonths(costMicro(size.gb, size.days)) });
      const theirs = await ctx.dropzones.create(key.row, { ...size, name: 'warm-up' });
      keyRead = { path: `/api/v1/dropzones/${theirs.dz.id}`, key: key.secret, expect: 200 };
    } catch {
      // the admin paths still run
    }
    // reads most (their own code reaches the optimizing compiler's threshold too), the refusals and the probe less
    const targets: { path: string; key?: string; expect: number }[] = [
      adminRead,
      keyRead,
      { path: '/healthz', expect: 200 },
      adminRead,
      keyRead,
      { path: `/api/v1/dropzones/${own.dz.id}x`, key: adminSecret, expect: 404 },
      { path: `/api/v1/dropzones/${own.dz.id}`, key: 'dz_not_a_key', expect: 401 },
    ];

    server = createNodeServer(app.hono, scratchConfig);
    await new Promise<void>((res, rej) => server!.once('error', rej).listen(0, '127.0.0.1', () => res()));
    const { port } = server.address() as AddressInfo;
    url = `http://127.0.0.1:${port}`;

    let sent = 0;
    let answered = 0;
    let unexpected = 0;
    while (sent < opts.requests && !opts.signal.aborted) {
      const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
      const batchEnd = Math.min(opts.requests, sent + REQUESTS_PER_POOL);
      const lane = async () => {
        while (sent < batchEnd && !opts.signal.aborted) {
          const t = targets[sent++ % targets.length]!;
          const status = await get(agent, port, t.path, t.key);
          answered++;
          if (status !== t.expect) unexpected++;
        }
      };
      try {
        await Promise.all(Array.from({ length: CONNECTIONS }, lane));
      } finally {
        agent.destroy();
      }
    }
    return { requests: answered, unexpected, kinds: new Set(targets).size, ms: Math.round(performance.now() - t0) };
  } finally {
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((res) => server!.close(() => res()));
    }
    await meta?.close();
    rmSync(blobRoot, { recursive: true, force: true });
  }
}

/** One GET on `agent`; answers the status once the body has been read. */
function get(agent: Agent, port: number, path: string, key: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: key ? { 'x-api-key': key } : {} }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}
