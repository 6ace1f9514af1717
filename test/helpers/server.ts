/**
 * In-process test servers for the HTTP suite: a real listening Dropzone Server on 127.0.0.1:0 with a fresh temporary
 * data directory and an injected clock, plus small request helpers. Blob backends are parametrised by
 * {@link describeEachBackend}; adding a backend to {@link BACKENDS} runs every suite written with it against that backend too.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { type AdjustableClock, manualClock } from '../../src/core/clock.js';
import { type LogLevel, type Logger, createLogger } from '../../src/log/logger.js';
import { type RunningServer, startServer } from '../../src/server.js';
import { MOTO_CREDENTIALS, type MotoServer, createBucket, startMoto } from './moto.js';
import { freshPostgresDatabase } from './postgres.js';

/** The API base path. */
export const API = '/api/v1';

/** The parsed answer of {@link TestServer.req}. */
export interface Res<T = any> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the body is JSON, otherwise undefined. */
  body: T;
  /** The raw body text. */
  text: string;
}

/** Options of {@link TestServer.req}. */
export interface ReqOptions {
  /** API key secret, sent as `x-api-key` (or as `Authorization: Bearer` with `bearer`). */
  key?: string;
  bearer?: boolean;
  /** Sent as `x-dropzone-id`. */
  dropzoneId?: string;
  /** JSON-encoded and sent with `Content-Type: application/json`. */
  body?: unknown;
  /** Sent verbatim (with `Content-Type: application/json` unless headers say otherwise). */
  rawBody?: string;
  headers?: Record<string, string>;
}

/** How a helper authenticates: an API key secret, or `{dropzoneId}` (first generation). */
export type Auth = string | { key?: string; dropzoneId?: string };

/** A started test server and its helpers. */
export interface TestServer {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** `${url}/api/v1`. */
  api: string;
  adminKey: string;
  clock: AdjustableClock;
  server: RunningServer;
  dataDir: string;
  /** The blob backend. */
  backend: BackendName;
  /** The metadata store. */
  database: DatabaseName;
  /** Log lines written by the server (JSON strings). */
  logs: string[];
  /** A request to the API: `path` is relative to `/api/v1` unless it is absolute (`http…`) or starts with `//` (site root, one slash kept). */
  req<T = any>(method: string, path: string, opts?: ReqOptions): Promise<Res<T>>;
  /** Creates an API key through the API (as admin unless `creator` is given); returns its secret and publicId. */
  createKey(perms?: string[], gbMonths?: number, creator?: string): Promise<{ secret: string; publicId: string }>;
  /** `POST /dropzones` (expects 201 or 200); returns the Dropzone. */
  createDropzone(key: string, body?: Record<string, unknown>): Promise<any>;
  /** Asks for an upload URL (api key: `/dropzones/:id/files`; dropzone id: `/files`); returns the `data` of the answer. */
  requestUpload(auth: Auth, dzId: string, name: string, size: number, type?: string): Promise<any>;
  /** PUTs `bytes` to a signed URL with exactly the returned headers (a real HTTP request). */
  put(upload: { signedUrl: string; headers: Record<string, string> }, bytes: Uint8Array | string, extraHeaders?: Record<string, string>): Promise<Response>;
  /** The whole flow: upload URL, real PUT, confirm. Returns the confirmed FileItem (`data`) and the upload answer. */
  upload(auth: Auth, dzId: string, name: string, bytes: Uint8Array | string, type?: string): Promise<{ fileId: string; file: any; upload: any }>;
  /** Keys of every object the blob store holds (backend-agnostic). */
  blobKeys(): Promise<string[]>;
  /** Every regular file under `dataDir/blobs` relative to it (local backend; `[]` otherwise). */
  blobFiles(): string[];
  /**
   * Stops this server and starts a new one on the same data directory, database, bucket and clock, with `settings`
   * over this one's; this server's `close()` then only stops it (the new one removes the data when closed).
   */
  restart(settings?: Record<string, unknown>): Promise<TestServer>;
  close(): Promise<void>;
}

/** Options of {@link startTestServer}. */
export interface StartTestOptions {
  /** Dotted settings over the test defaults. */
  settings?: Record<string, unknown>;
  /** Defaults to a `manualClock()` starting at the real current time. */
  clock?: AdjustableClock;
  /** Server log level; default `silent` (lines are still captured at `warn` and above in `logs`). */
  logLevel?: LogLevel;
  backend?: BackendName;
  /** Backend settings (from a {@link BackendContext}). */
  backendSettings?: Record<string, unknown>;
  /** `postgres`: a fresh database on the run's private PostgreSQL cluster, dropped at close; default SQLite in dataDir. */
  database?: DatabaseName;
  /** A restart ({@link TestServer.restart}): the data directory, admin key and database of the stopped server. */
  reuse?: { dataDir: string; adminKey: string; databaseUrl?: string; dropDatabase?: () => Promise<void> };
}

const toAuth = (auth: Auth) => (typeof auth === 'string' ? { key: auth } : auth);

/** Starts a real server on 127.0.0.1:0 with a fresh data dir; `close()` stops it and removes the directory. */
export async function startTestServer(opts: StartTestOptions = {}): Promise<TestServer> {
  const dataDir = opts.reuse?.dataDir ?? mkdtempSync(join(tmpdir(), 'dropzone-http-'));
  const adminKey = opts.reuse?.adminKey ?? `dzk_admin_${randomBytes(16).toString('hex')}`;
  const clock = opts.clock ?? manualClock(Date.now());
  const logs: string[] = [];
  const log: Logger = createLogger(opts.logLevel ?? 'warn', (line) => {
    logs.push(line);
    if (opts.logLevel && opts.logLevel !== 'silent') process.stderr.write(line + '\n');
  });
  let server: RunningServer;
  let dropDatabase: (() => Promise<void>) | undefined = opts.reuse?.dropDatabase;
  let databaseUrl = opts.reuse?.databaseUrl;
  /** Set by restart: the data now belongs to the restarted server. */
  let handedOver = false;
  try {
    const databaseSettings: Record<string, unknown> = {};
    if (databaseUrl) {
      databaseSettings['database.url'] = databaseUrl;
      databaseSettings['storage.local.shared'] = true;
    } else if (opts.database === 'postgres') {
      const db = await freshPostgresDatabase('a test server');
      if ('skipped' in db) throw new Error(`PostgreSQL unavailable: ${db.skipped}`);
      dropDatabase = db.drop;
      databaseUrl = db.url;
      databaseSettings['database.url'] = db.url;
      // the blobs of a PostgreSQL setup must be shared; the local store is, within one test process
      databaseSettings['storage.local.shared'] = true;
    }
    const config = loadConfig({
      env: {},
      overrides: {
        'server.host': '127.0.0.1',
        'server.port': 0,
        'server.shutdownTimeoutMs': 2000,
        // hundreds of test servers need no JIT warm-up (test/http/warm-up.test.ts covers it)
        'server.warmUpRequests': 0,
        'log.level': 'silent',
        'security.adminKey': adminKey,
        'sweeper.intervalSeconds': 0,
        // a small space reserve: every test server writes one
        'storage.reserveBytes': 64 * 1024,
        dataDir,
        ...databaseSettings,
        ...opts.backendSettings,
        ...opts.settings,
      },
    });
    server = await startServer(config, { clock, log });
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    await dropDatabase?.();
    throw err;
  }
  const url = server.url;
  const api = url + API;

  const req = async <T = any>(method: string, path: string, o: ReqOptions = {}): Promise<Res<T>> => {
    const target = /^https?:/.test(path) ? path : path.startsWith('//') ? url + path.slice(1) : api + path;
    const headers: Record<string, string> = {};
    if (o.key !== undefined) {
      if (o.bearer) headers.authorization = `Bearer ${o.key}`;
      else headers['x-api-key'] = o.key;
    }
    if (o.dropzoneId !== undefined) headers['x-dropzone-id'] = o.dropzoneId;
    let body: string | undefined;
    if (o.body !== undefined) body = JSON.stringify(o.body);
    if (o.rawBody !== undefined) body = o.rawBody;
    if (body !== undefined) headers['content-type'] = 'application/json';
    Object.assign(headers, o.headers);
    const res = await fetch(target, { method, headers, body, redirect: 'manual' });
    const text = await res.text();
    let parsed: any;
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  };

  const expectStatus = (what: string, res: Res, ...ok: number[]) => {
    if (!ok.includes(res.status)) throw new Error(`${what}: expected ${ok.join('/')}, got ${res.status}: ${res.text.slice(0, 500)}`);
  };

  const t: TestServer = {
    url,
    api,
    adminKey,
    clock,
    server,
    dataDir,
    backend: opts.backend ?? 'local',
    database: opts.database ?? 'sqlite',
    logs,
    req,
    async createKey(perms = [], gbMonths = 0, creator = adminKey) {
      const res = await req('POST', '/apikeys', { key: creator, body: { permissions: perms, gbMonths } });
      expectStatus('createKey', res, 201);
      return { secret: res.body.data.key, publicId: res.body.data.publicId };
    },
    async createDropzone(key, body = { gb: 1, days: 30 }) {
      const res = await req('POST', '/dropzones', { key, body });
      expectStatus('createDropzone', res, 200, 201);
      return res.body.data;
    },
    async requestUpload(auth, dzId, name, size, type = 'application/octet-stream') {
      const a = toAuth(auth);
      const res = a.key
        ? await req('POST', `/dropzones/${dzId}/files`, { key: a.key, body: { name, type, size } })
        : await req('POST', '/files', { dropzoneId: a.dropzoneId ?? dzId, body: { name, type, size } });
      expectStatus('requestUpload', res, 200);
      return res.body.data;
    },
    async put(upload, bytes, extraHeaders = {}) {
      const buf = typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes);
      return fetch(upload.signedUrl, { method: 'PUT', headers: { ...upload.headers, ...extraHeaders }, body: buf, redirect: 'manual' });
    },
    async upload(auth, dzId, name, bytes, type = 'application/octet-stream') {
      const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
      const up = await t.requestUpload(auth, dzId, name, size, type);
      const put = await t.put(up, bytes);
      if (put.status !== 200) throw new Error(`PUT to the signed URL: ${put.status} ${await put.text()}`);
      await put.arrayBuffer().catch(() => undefined);
      const a = toAuth(auth);
      const conf = await req('POST', `/files/${up.fileId}/confirm`, a.key ? { key: a.key } : { dropzoneId: a.dropzoneId ?? dzId });
      expectStatus('confirm', conf, 200);
      return { fileId: up.fileId, file: conf.body.data, upload: up };
    },
    async blobKeys() {
      const keys: string[] = [];
      for await (const e of server.app.ctx.blobs.list()) keys.push(e.key);
      return keys.sort();
    },
    blobFiles() {
      const root = join(dataDir, 'blobs');
      const out: string[] = [];
      const walk = (dir: string) => {
        let names: string[];
        try {
          names = readdirSync(dir);
        } catch {
          return;
        }
        for (const n of names) {
          const p = join(dir, n);
          if (statSync(p).isDirectory()) walk(p);
          else out.push(relative(root, p));
        }
      };
      walk(root);
      return out.sort();
    },
    async restart(settings = {}) {
      handedOver = true;
      await server.close();
      return startTestServer({ ...opts, clock, settings: { ...opts.settings, ...settings }, reuse: { dataDir, adminKey, databaseUrl, dropDatabase } });
    },
    async close() {
      if (handedOver) return server.close();
      try {
        await server.close();
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
        await dropDatabase?.();
      }
    },
  };
  return t;
}

/** Blob backends. */
export type BackendName = 'local' | 's3';
/** Metadata stores. */
export type DatabaseName = 'sqlite' | 'postgres';

/** One setup the API suite runs against: a blob backend with a metadata store. */
interface Variant {
  label: string;
  backend: BackendName;
  database: DatabaseName;
}
const VARIANTS: Record<string, Variant> = {
  local: { label: 'local', backend: 'local', database: 'sqlite' },
  s3: { label: 's3', backend: 's3', database: 'sqlite' },
  postgres: { label: 's3+postgres', backend: 's3', database: 'postgres' },
};

/**
 * The setups the API suite runs against: SQLite + the local store, SQLite + S3 (on moto) and PostgreSQL + S3 (the
 * many-node setup). `DROPZONE_TEST_BACKENDS=local,s3,postgres` (comma list) narrows it. Without moto_server on PATH the
 * S3 suites, without PostgreSQL the PostgreSQL suites, are skipped with the reason printed (in CI, `CI` set, they fail).
 */
export const BACKENDS: readonly Variant[] = (process.env.DROPZONE_TEST_BACKENDS?.split(',').map((s) => s.trim()) ?? ['local', 's3', 'postgres']).map((n) => {
  const v = VARIANTS[n];
  if (!v) throw new Error(`DROPZONE_TEST_BACKENDS: unknown "${n}" (known: ${Object.keys(VARIANTS).join(', ')})`);
  return v;
});

/** What a suite body of {@link describeEachBackend} gets: the backend and a server factory bound to it. */
export interface BackendContext {
  /** The blob backend. */
  name: BackendName;
  /** The metadata store. */
  database: DatabaseName;
  /** Starts a server on this backend (S3: a fresh bucket on the shared moto). Remember to close it. */
  start(opts?: Omit<StartTestOptions, 'backend' | 'backendSettings'> & { s3DownloadMode?: 'stream' | 'redirect' }): Promise<TestServer>;
}

let motoPromise: Promise<MotoServer | { skipped: string }> | undefined;
let motoCheck: string | false | undefined;

/** Why the S3 suites cannot run (moto_server not on PATH), or false when they can; checked once, at collection time. */
function motoMissing(): string | false {
  motoCheck ??= spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' }).status === 0 ? false : 'moto_server is not on PATH (pip install "moto[server]")';
  return motoCheck;
}
let motoUsers = 0;
let pgCheck: string | false | undefined;

/** Why the PostgreSQL suites cannot run (switched off, or no PostgreSQL installed), or false; checked once. */
function postgresMissing(): string | false {
  if (process.env.DROPZONE_TEST_PG === 'off') return 'DROPZONE_TEST_PG=off';
  pgCheck ??=
    spawnSync('sh', ['-c', 'ls /usr/lib/postgresql/*/bin/initdb || command -v initdb'], { encoding: 'utf8' }).status === 0
      ? false
      : 'PostgreSQL is not installed (initdb not found; apt-get install postgresql)';
  return pgCheck;
}

/**
 * `describe(name [backend], fn)` once per backend of {@link BACKENDS}. For S3 it starts moto once per test file and a
 * fresh bucket per server. Without moto_server on PATH the S3 suites are skipped and the reason is printed; when moto is
 * there but fails to start, `start()` throws (a loud failure, not a silent skip).
 */
export function describeEachBackend(name: string, fn: (b: BackendContext) => void): void {
  for (const { label, backend, database } of BACKENDS) {
    const missing = (backend === 's3' && motoMissing()) || (database === 'postgres' && postgresMissing());
    if (missing) {
      // CI must run the S3 and PostgreSQL suites: a missing tool fails there instead of skipping
      if (process.env.CI) throw new Error(`"${name} [${label}]" cannot run in CI: ${missing}`);
      // printed at collection time, straight to stderr (vitest hides console output of skipped tests)
      process.stderr.write(`SKIPPED "${name} [${label}]": ${missing}\n`);
      describe.skip(`${name} [${label}] (skipped: ${missing})`, () => fn({ name: backend, database, start: () => Promise.reject(new Error('skipped')) }));
      continue;
    }
    describe(`${name} [${label}]`, () => {
      let moto: MotoServer | undefined;
      let skipped: string | undefined;
      if (backend === 's3') {
        beforeAll(async () => {
          motoUsers++;
          motoPromise ??= startMoto();
          const m = await motoPromise;
          if ('skipped' in m) skipped = m.skipped;
          else moto = m;
        });
        afterAll(async () => {
          if (--motoUsers === 0 && motoPromise) {
            const m = await motoPromise;
            motoPromise = undefined;
            if (!('skipped' in m)) await m.stop();
          }
        });
      }
      fn({
        name: backend,
        database,
        async start(o = {}) {
          if (backend === 'local') return startTestServer({ ...o, backend, database });
          if (!moto) throw new Error(`S3 backend unavailable: ${skipped ?? 'moto not started'}`);
          const bucket = `dz-${randomBytes(6).toString('hex')}`;
          await createBucket(moto.endpoint, bucket);
          return startTestServer({
            ...o,
            backend,
            database,
            backendSettings: {
              'storage.backend': 's3',
              'storage.s3.endpoint': moto.endpoint,
              'storage.s3.bucket': bucket,
              'storage.s3.forcePathStyle': true,
              'storage.s3.accessKeyId': MOTO_CREDENTIALS.accessKeyId,
              'storage.s3.secretAccessKey': MOTO_CREDENTIALS.secretAccessKey,
              'storage.s3.downloadMode': o.s3DownloadMode ?? 'stream',
            },
          });
        },
      });
    });
  }
}
