import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { type App, createApp } from './app.js';
import type { BlobStore } from './blobs/blob-store.js';
import { createLocalBlobStore } from './blobs/local-store.js';
import type { Config } from './config/schema.js';
import { type AdjustableClock, systemClock } from './core/clock.js';
import { signingSecret } from './core/signing-secret.js';
import { type Db, openDatabase } from './db/database.js';
import { createRepositories } from './db/repositories.js';
import { type Logger, createLogger } from './log/logger.js';
import { loadSqliteBinding } from './runtime/native-addon.js';

/** A running server. */
export interface RunningServer {
  /** The URL it listens on, e.g. `http://127.0.0.1:3000` (the real port when 0 was asked for). */
  url: string;
  /** The admin key's secret when it is known: configured, or generated on this start (printed once). */
  adminKey?: string;
  /** True when the admin key was generated on this start. */
  adminKeyGenerated: boolean;
  /** The application and its services (fixtures, CLI, tests). */
  app: App;
  /** The server's clock (adjustable in fixture mode and tests). */
  clock: AdjustableClock;
  /**
   * Stops accepting connections, lets requests in flight finish within `server.shutdownTimeoutMs` (then cuts them),
   * stops the sweeper, closes the blob store and the database. Idempotent.
   */
  close(): Promise<void>;
}

/** Optional injections for {@link startServer} (tests, fixtures). */
export interface StartOptions {
  clock?: AdjustableClock;
  log?: Logger;
}

/** Opens the database of `config.dataDir` (created if missing), with the single executable's addon when there is one. */
export function openDataDir(config: Config): Db {
  const dir = resolve(config.dataDir);
  mkdirSync(dir, { recursive: true });
  return openDatabase(join(dir, 'dropzone.db'), { nativeBinding: loadSqliteBinding() });
}

/** Builds the configured blob store (not yet checked). The S3 client is loaded only when the S3 backend is used. */
export async function createBlobStore(config: Config, db: Db, clock: AdjustableClock, baseUrl: () => string): Promise<BlobStore> {
  if (config.storage.backend === 's3') {
    const { createS3BlobStore } = await import('./blobs/s3-store.js');
    const s3 = config.storage.s3;
    return createS3BlobStore({
      endpoint: s3.endpoint || undefined,
      region: s3.region,
      bucket: s3.bucket,
      prefix: s3.prefix,
      accessKeyId: s3.accessKeyId || undefined,
      secretAccessKey: s3.secretAccessKey || undefined,
      forcePathStyle: s3.forcePathStyle,
      createBucket: s3.createBucket,
      conditionalWrites: s3.conditionalWrites,
      clock,
    });
  }
  return createLocalBlobStore({ root: join(resolve(config.dataDir), 'blobs'), secret: signingSecret(config, createRepositories(db)), baseUrl, clock });
}

/**
 * Opens the data directory, checks the blob store, makes sure an admin key exists, and listens.
 * Throws (after releasing what it opened) when the database cannot be opened, the store is unreachable,
 * or the port is taken. The caller must `close()` the result.
 */
export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.log.level);
  const clock = opts.clock ?? systemClock();
  const db = openDataDir(config);
  let listenUrl = '';
  const publicUrl = () => (config.server.publicUrl || listenUrl).replace(/\/+$/, '');
  let blobs: BlobStore | undefined;
  let app: App | undefined;
  try {
    // signed URLs follow the host the client used (app.ctx.publicUrl) when no public URL is configured
    blobs = await createBlobStore(config, db, clock, () => (app ? app.ctx.publicUrl() : publicUrl()));
    await blobs.check();
    const created = createApp({ config, db, blobs, clock, log, publicUrl });
    app = created;
    const { admin, generatedSecret } = created.ctx.keys.ensureAdmin();
    void admin;

    const server = createAdaptorServer({ fetch: created.hono.fetch });
    created.metrics?.trackConnections(server);
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(config.server.port, config.server.host, () => {
        server.off('error', rej);
        res();
      });
    });
    const addr = server.address() as AddressInfo;
    const host = config.server.host === '0.0.0.0' || config.server.host === '::' ? '127.0.0.1' : config.server.host;
    listenUrl = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
    created.ctx.sweeper.start();

    let closing: Promise<void> | undefined;
    const store = blobs;
    return {
      url: listenUrl,
      adminKey: generatedSecret ?? (config.security.adminKey || undefined),
      adminKeyGenerated: generatedSecret !== undefined,
      app: created,
      clock,
      close() {
        closing ??= (async () => {
          const closed = new Promise<void>((res) => server.close(() => res()));
          if ('closeIdleConnections' in server) server.closeIdleConnections();
          const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), config.server.shutdownTimeoutMs).unref());
          if ((await Promise.race([closed, timeout])) === 'timeout') {
            log.warn('requests still in flight after the shutdown timeout; closing their connections');
            if ('closeAllConnections' in server) server.closeAllConnections();
            await closed;
          }
          await created.ctx.sweeper.stop();
          await store.close();
          db.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await blobs?.close().catch(() => undefined);
    db.close();
    throw err;
  }
}
