import { mkdirSync, readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { type App, createApp } from './app.js';
import { createNodeServer } from './http/node-server.js';
import { createContext } from './context.js';
import type { BlobStore } from './blobs/blob-store.js';
import { createLocalBlobStore } from './blobs/local-store.js';
import type { Config } from './config/schema.js';
import { type AdjustableClock, systemClock } from './core/clock.js';
import { isStorageFull } from './core/errors.js';
import { signingSecret } from './core/signing-secret.js';
import { type Db, openDatabase } from './db/database.js';
import { resolveDatabaseUrl } from './db/database-url.js';
import { openMetadataStore } from './db/open-store.js';
import type { MetadataStore } from './core/ports/metadata-store.js';
import { type Logger, createLogger } from './log/logger.js';
import { loadSqliteBinding } from './runtime/native-addon.js';
import { ensurePrivateDir, ensurePrivateFile, tightenFile } from './runtime/private-files.js';
import { createSpaceReserve } from './runtime/space-reserve.js';
import { type WarmUpReport, warmUp } from './warm-up.js';

/** A running server. */
export interface RunningServer {
  /** The URL it listens on, e.g. `http://127.0.0.1:3000` (the real port when 0 was asked for). */
  url: string;
  /** The admin key's secret when it is known: configured, or generated on this start (printed once). */
  adminKey?: string;
  /** True when the admin key was generated on this start. */
  adminKeyGenerated: boolean;
  /**
   * True when it started on a full disk (or one too full to keep the space reserve): it serves read-mostly —
   * downloads and deletions work, what needs space answers 507 — until space is freed.
   */
  storageFull: boolean;
  /** The application and its services (fixtures, CLI, tests). */
  app: App;
  /**
   * Settles when the warm-up after listening is over (`server.warmUpRequests`, see src/warm-up.ts): its report, or
   * undefined when it was off or failed (logged; the server runs either way). Never rejects.
   */
  warmedUp: Promise<WarmUpReport | undefined>;
  /** The server's clock (adjustable in fixture mode and tests). */
  clock: AdjustableClock;
  /** The listening Node HTTP server (its timeouts come from `server.*TimeoutSeconds`). */
  http: HttpServer;
  /**
   * HTTPS only: re-reads `server.tls.cert` and `server.tls.key` and uses them for new connections; connections already
   * open keep theirs. Throws (keeping the current certificate) when the files cannot be read or do not match, and
   * when the server does not serve HTTPS.
   */
  reloadTls(): void;
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
  /** Listen on this already-bound, listening socket descriptor (systemd socket activation) instead of host/port. */
  listenFd?: number;
}

/** Reads the PEM files of `server.tls`; throws an Error naming the setting and file it could not read. */
export function readTlsFiles(config: Config): { cert: Buffer; key: Buffer } {
  const read = (name: 'cert' | 'key') => {
    const file = config.server.tls[name];
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`server.tls.${name}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  return { cert: read('cert'), key: read('key') };
}

/**
 * Opens the SQLite database (`database.url`, by default `<dataDir>/dropzone.db`; created if missing) directly, for
 * commands that work on the file itself (`dropzone backup`), with the single executable's addon when there is one;
 * throws when the configured database is PostgreSQL.
 * The directory is created 0700 and the database files 0600 whatever the umask (SQLite gives `-wal`/`-shm` the
 * database file's mode); `warn` hears about an existing directory other users can read.
 */
export function openDataDir(config: Config, warn: (msg: string) => void = () => {}): Db {
  const dir = resolve(config.dataDir);
  const loose = ensurePrivateDir(dir);
  if (loose) warn(loose);
  const target = resolveDatabaseUrl(config.database.url, config.dataDir);
  if (target.kind !== 'sqlite') throw new Error('this command works on the SQLite database; database.url names PostgreSQL (use pg_dump / the PostgreSQL tools)');
  const file = target.path;
  ensurePrivateFile(file);
  // left by an older version with the umask's mode
  for (const suffix of ['-wal', '-shm']) tightenFile(file + suffix);
  return openDatabase(file, { nativeBinding: loadSqliteBinding() });
}

/**
 * Opens the configured metadata store, migrated (`database.url`): the SQLite database of `config.dataDir` by default
 * (with the single executable's addon when there is one), or PostgreSQL. The data directory is made owner-only either
 * way (it holds the space reserve and local blobs). The caller closes the store.
 */
export async function openMetadata(config: Config, warn: (msg: string) => void = () => {}): Promise<MetadataStore> {
  const loose = ensurePrivateDir(resolve(config.dataDir));
  if (loose) warn(loose);
  const sqlite = resolveDatabaseUrl(config.database.url, config.dataDir).kind === 'sqlite';
  return openMetadataStore(config, {
    nativeBinding: sqlite ? loadSqliteBinding() : undefined,
    warn,
    onHookError: (err) => warn(`after-commit hook failed: ${(err as Error).message}`),
  });
}

/** Builds the configured blob store (not yet checked). The S3 client is loaded only when the S3 backend is used. */
export async function createBlobStore(config: Config, meta: MetadataStore, clock: AdjustableClock, baseUrl: () => string): Promise<BlobStore> {
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
  return createLocalBlobStore({ root: join(resolve(config.dataDir), 'blobs'), secret: await signingSecret(config, meta), baseUrl, clock });
}

/**
 * Opens the data directory, checks the blob store, makes sure an admin key exists, and listens.
 * Throws (after releasing what it opened) when the database cannot be opened, the store is unreachable,
 * or the port is taken. The caller must `close()` the result.
 */
export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger(config.log.level);
  const clock = opts.clock ?? systemClock();
  const reserve = createSpaceReserve(resolve(config.dataDir), config.storage.reserveBytes);
  let meta: MetadataStore;
  try {
    meta = await openMetadata(config, (msg) => log.warn(msg));
  } catch (err) {
    // SQLite needs a little room for its WAL index even to read
    if (!isStorageFull(err) || !reserve.release()) throw err;
    log.warn('storage is full: released the space reserve to open the database');
    meta = await openMetadata(config);
  }
  let listenUrl = '';
  const configuredUrl = config.server.publicUrl.replace(/\/+$/, '');
  const publicUrl = () => configuredUrl || listenUrl;
  let blobs: BlobStore | undefined;
  let app: App | undefined;
  try {
    // signed URLs follow the host the client used (app.ctx.publicUrl) when no public URL is configured
    blobs = await createBlobStore(config, meta, clock, () => (app ? app.ctx.publicUrl() : publicUrl()));
    // partial uploads of a crashed process, before anything else needs the space; another live process's keep being written
    const leftovers = await blobs.cleanupTemp?.(config.sweeper.tempMaxIdleSeconds * 1000).catch((err) => {
      log.warn('temp file cleanup failed', { err });
      return 0;
    });
    if (leftovers) log.info('removed upload temp files left by a crash', { count: leftovers });
    let storageFull = false;
    try {
      await blobs.check();
    } catch (err) {
      if (!isStorageFull(err)) throw err;
      storageFull = true;
    }
    // set space aside for deletions on a full disk; no room for it means the disk is (nearly) full already
    if (!reserve.held() && !(await reserve.restore())) storageFull = true;
    if (storageFull) {
      log.warn(
        'storage is full: starting read-mostly (downloads and deletions work, what needs space answers 507 "storage full") ' +
          `until space is freed on the disk of ${resolve(config.dataDir)}`,
      );
    }
    const created = createApp(createContext({ config, meta, blobs, clock, log, reserve }), { publicUrl });
    app = created;
    let generatedSecret: string | undefined;
    try {
      ({ generatedSecret } = await created.ctx.keys.ensureAdmin());
    } catch (err) {
      // an admin key exists, only a configuration change could not be written: serve with the stored one
      if (!isStorageFull(err) || !(await created.ctx.meta.adminKey())) throw err;
      log.warn('storage is full: the admin key settings could not be updated; the stored admin key stays in force');
    }

    const tls = config.server.tls.cert ? readTlsFiles(config) : undefined;
    const server = createNodeServer(created.hono, config, tls);
    created.metrics?.trackConnections(server);
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      const listening = () => {
        server.off('error', rej);
        res();
      };
      if (opts.listenFd !== undefined) server.listen({ fd: opts.listenFd }, listening);
      else server.listen(config.server.port, config.server.host, listening);
    });
    const addr = server.address() as AddressInfo;
    const bound = opts.listenFd !== undefined ? addr.address : config.server.host;
    const host = bound === '0.0.0.0' || bound === '::' ? '127.0.0.1' : bound;
    listenUrl = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
    created.ctx.sweeper.start();
    created.ctx.scan.start();
    created.ctx.webhookDispatcher.start();
    // in the background: the server answers meanwhile; close() stops it
    const warming = new AbortController();
    const warmedUp = (async () => {
      if (config.server.warmUpRequests === 0) return undefined;
      try {
        const report = await warmUp(config, { requests: config.server.warmUpRequests, signal: warming.signal, sqliteBinding: loadSqliteBinding() });
        log.debug('warmed up', { ...report });
        return report;
      } catch (err) {
        log.warn('warm-up failed (the server runs; only its first requests are slower)', { err });
        return undefined;
      }
    })();

    let closing: Promise<void> | undefined;
    const store = blobs;
    return {
      url: listenUrl,
      adminKey: generatedSecret ?? (config.security.adminKey || undefined),
      adminKeyGenerated: generatedSecret !== undefined,
      storageFull,
      app: created,
      clock,
      http: server,
      reloadTls() {
        if (!tls) throw new Error('not serving HTTPS (server.tls.cert and server.tls.key are not set)');
        (server as unknown as import('node:https').Server).setSecureContext(readTlsFiles(config));
      },
      warmedUp,
      close() {
        closing ??= (async () => {
          warming.abort();
          const closed = new Promise<void>((res) => server.close(() => res()));
          if ('closeIdleConnections' in server) server.closeIdleConnections();
          const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), config.server.shutdownTimeoutMs).unref());
          if ((await Promise.race([closed, timeout])) === 'timeout') {
            log.warn('requests still in flight after the shutdown timeout; closing their connections');
            if ('closeAllConnections' in server) server.closeAllConnections();
            await closed;
          }
          await warmedUp;
          await created.ctx.sweeper.stop();
          await created.ctx.scan.stop();
          await created.ctx.webhookDispatcher.stop();
          await store.close();
          await meta.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await blobs?.close().catch(() => undefined);
    await meta.close();
    throw err;
  }
}
