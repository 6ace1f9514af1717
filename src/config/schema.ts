import { z } from 'zod';
import { isDatabaseUrl, isPostgresUrl } from '../db/database-url.js';
import { targetPolicy } from '../webhooks/transport.js';

/** Bytes in one GB as used by every quota in the API: decimal, like S3 and billing (10^9). */
export const BYTES_PER_GB = 1_000_000_000;

const logLevel = z.enum(['debug', 'info', 'warn', 'error', 'silent']);

/**
 * The one schema holding every setting of Dropzone Server and its default.
 * Sources are merged before validation: defaults < TOML file < `DROPZONE_*` env < flags.
 * Keep `config.example.toml` in step with this file (a test checks that every key is documented).
 */
export const configSchema = z
  .object({
    server: z
      .object({
        /** Interface to listen on. */
        host: z.string().min(1).default('0.0.0.0'),
        /** TCP port; 0 picks a free one. */
        port: z.number().int().min(0).max(65535).default(3000),
        /** Base URL clients reach this server at (signed URLs, upload pages); derived from host/port when empty. */
        publicUrl: z.union([z.url(), z.literal('')]).default(''),
        /** Trust `X-Forwarded-*` headers (only behind a reverse proxy you control). */
        trustProxy: z.boolean().default(false),
        /** Origins allowed to call the API from a browser; `*` allows any. */
        corsOrigins: z.array(z.string().min(1)).default(['*']),
        /** How long requests in flight may take to finish on shutdown. */
        shutdownTimeoutMs: z.number().int().min(0).default(10_000),
        /**
         * Right after it starts listening, the server answers this many requests of its own read path (against a
         * scratch in-memory instance, never its data) so the first clients meet optimized code; 0 turns it off.
         */
        warmUpRequests: z.number().int().min(0).max(1_000_000).default(3000),
        /** HTTPS without a proxy: PEM certificate chain and private key files (both or neither); reloaded on SIGHUP. */
        tls: z
          .object({
            cert: z.string().default(''),
            key: z.string().default(''),
          })
          .strict()
          .prefault({}),
        /** A client must send its complete request headers within this time, seconds. */
        headersTimeoutSeconds: z.number().int().min(1).default(60),
        /**
         * A connection with a request in progress that sends and receives no bytes for this long is closed, seconds;
         * 0 turns it off. This is what ends a stalled upload (its bytes are discarded, its URL stays usable).
         */
        idleTimeoutSeconds: z.number().int().min(0).default(120),
        /**
         * Longest time to receive one whole request (headers and body), seconds; 0 (the default) means no cap, so a
         * slow upload is limited only by the idle timeout. When set, at least `uploads.urlTtlSeconds`.
         */
        requestTimeoutSeconds: z.number().int().min(0).default(0),
        /**
         * Behind nginx: downloads of the local store are authorized here and answered with `X-Accel-Redirect: <this
         * prefix><key>`, an internal nginx location that sends the file itself. Empty (the default) turns it off; set,
         * it must start and end with `/`. See the README for the nginx location it needs.
         */
        accelRedirect: z.union([z.literal(''), z.string().regex(/^\/[A-Za-z0-9/_.-]*\/$/, 'must start and end with / (e.g. "/_dropzone_blobs/")')]).default(''),
      })
      .strict()
      .prefault({}),
    /** Directory holding the database, the local blobs and the generated secrets. */
    dataDir: z.string().min(1).default('./data'),
    database: z
      .object({
        /**
         * The metadata database: '' (the default) is the SQLite file `<dataDir>/dropzone.db`; `sqlite:<path>` another
         * SQLite file; `postgres://user:pass@host:5432/db` (or `postgresql://`) a PostgreSQL database.
         */
        url: z.string().refine(isDatabaseUrl, { message: 'must be empty, sqlite:<path>, postgres://… or postgresql://…' }).default(''),
        /** PostgreSQL: connections in this process's pool. */
        poolSize: z.number().int().min(1).max(1000).default(10),
        /** PostgreSQL: the server cancels a statement running longer than this, ms (`statement_timeout`); 0: no limit. */
        statementTimeoutMs: z.number().int().min(0).default(30_000),
      })
      .strict()
      .prefault({}),
    storage: z
      .object({
        backend: z.enum(['local', 's3']).default('local'),
        /**
         * Bytes kept in `<dataDir>/space-reserve` and released when the disk is full, so deletions through the API can
         * still commit and free space; 0 keeps none.
         */
        reserveBytes: z.number().int().min(0).max(1024 * 1024 * 1024).default(16 * 1024 * 1024),
        local: z
          .object({
            /**
             * The blob directory is shared by every node using the same database (e.g. NFS). Required to combine a
             * PostgreSQL database with the local backend: nodes must all see the same blobs.
             */
            shared: z.boolean().default(false),
          })
          .strict()
          .prefault({}),
        s3: z
          .object({
            endpoint: z.string().default(''),
            region: z.string().min(1).default('us-east-1'),
            bucket: z.string().default(''),
            prefix: z.string().default(''),
            accessKeyId: z.string().default(''),
            secretAccessKey: z.string().default(''),
            forcePathStyle: z.boolean().default(false),
            createBucket: z.boolean().default(false),
            /** `redirect`: 302 to a presigned GET; `stream`: the server relays the bytes. */
            downloadMode: z.enum(['redirect', 'stream']).default('redirect'),
            /** Sign `If-None-Match: *` on upload URLs so a confirmed object cannot be replaced. */
            conditionalWrites: z.boolean().default(true),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    security: z
      .object({
        /** HMAC secret for signed URLs and page tokens; generated and persisted in the data dir when empty. */
        signingSecret: z.string().default(''),
        /** Secret of the admin key; when empty one is generated on first start and printed once. */
        adminKey: z.string().default(''),
        /** GB-months balance of the admin key; null (unset) means unlimited. */
        adminGbMonths: z.number().min(0).max(1e9).nullable().default(null),
        /** Accept `x-dropzone-id` as a credential (first-generation DropzoneAuth). */
        dropzoneIdAuth: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    uploads: z
      .object({
        /** Lifetime of a signed upload URL, seconds. */
        urlTtlSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(3600),
        /**
         * Upper bound on how long a pending upload may hold its reserved bytes, seconds (renewals included). The
         * reservation itself ends earlier: when the upload URL expires plus `reservationGraceSeconds`.
         */
        pendingTtlSeconds: z.number().int().min(1).default(24 * 3600),
        /**
         * A pending upload keeps its reservation until its URL expires plus this time (to finish and confirm), seconds;
         * on the local store a PUT in flight renews it while bytes flow. Then the sweeper releases it.
         */
        reservationGraceSeconds: z.number().int().min(1).default(600),
        /** Pending uploads one page visitor (client address; IPv6 per /64) may hold in a dropzone at once; 0: no limit. */
        pagePendingMaxFiles: z.number().int().min(0).default(6),
        /** Bytes one page visitor may hold pending in a dropzone at once; 0 (the default): no byte limit beyond the count. */
        pagePendingMaxBytes: z.number().int().min(0).default(0),
        /**
         * The dropzone page sends files larger than this in parts (S3-style multipart: a cut part is sent again alone,
         * and an interrupted upload resumes after a reload), bytes; at least 5 MiB, S3's smallest part.
         */
        pageMultipartAboveBytes: z.number().int().min(5 * 1024 * 1024).default(64 * 1024 * 1024),
        /** Parts the dropzone page sends at once for one multipart upload. */
        pagePartsInFlight: z.number().int().min(1).max(16).default(4),
        /**
         * Largest single file in bytes, on top of each dropzone's own size (default 5 TB). On S3 a single PUT carries at
         * most 5 GiB: larger files must use a multipart upload (10,000 parts; S3 caps an object at 5 TiB).
         */
        maxFileSize: z.number().int().min(1).default(5000 * BYTES_PER_GB),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        minGb: z.number().positive().default(0.2),
        maxGb: z.number().positive().default(4),
        minDays: z.number().positive().default(30),
        maxDays: z.number().positive().default(365),
        /** Most files (pending uploads included) one dropzone may hold; each also costs a small overhead in usedSpace. */
        maxFilesPerDropzone: z.number().int().min(1).max(1_000_000).default(10_000),
      })
      .strict()
      .prefault({}),
    sweeper: z
      .object({
        /** How often expired dropzones and stale pending uploads are removed, seconds; 0 turns it off. */
        intervalSeconds: z.number().min(0).default(60),
        /** Blobs with no row younger than this are left alone by garbage collection, seconds. */
        gcGraceSeconds: z.number().min(0).default(3600),
        /**
         * How often the sweeper also scans the store for blobs no file refers to (what `dropzone gc` does), seconds;
         * 0: only on `dropzone gc`. Catches bytes PUT to an S3 URL after its file's deletion was final.
         */
        gcIntervalSeconds: z.number().min(0).default(3600),
        /**
         * Temp files of uploads (local store) nothing has written to for this long are leftovers of a crashed process and
         * are removed at start, by every sweep and by `dropzone gc`, seconds. Uploads in flight keep writing, so they stay.
         */
        tempMaxIdleSeconds: z.number().int().min(1).default(900),
        /**
         * On S3, a removed file's key is deleted again this long after its upload URL expired (clock skew between the
         * server and the store, a PUT accepted just before expiry), seconds.
         */
        urlExpiryMarginSeconds: z.number().int().min(0).max(24 * 3600).default(300),
      })
      .strict()
      .prefault({}),
    scan: z
      .object({
        /**
         * Scan every confirmed file before it is served: it is `scanning` (not downloadable, not public, not in ZIPs)
         * until the scanner answers. Off (the default): files are served as soon as they are confirmed.
         */
        enabled: z.boolean().default(false),
        /** `clamd`: ClamAV's daemon over its socket (INSTREAM); `command`: run `scan.command` per file. */
        engine: z.enum(['clamd', 'command']).default('clamd'),
        clamd: z
          .object({
            /** clamd's local (unix) socket path, e.g. /run/clamav/clamd.ctl; when set, host/port are not used. */
            socket: z.string().default(''),
            /** clamd's TCP address when no socket is set (clamd.conf TCPSocket/TCPAddr). */
            host: z.string().default(''),
            port: z.number().int().min(1).max(65535).default(3310),
          })
          .strict()
          .prefault({}),
        /**
         * `engine = "command"`: the program and its arguments (no shell). `{path}` in an argument is replaced by the path
         * of a private temporary copy of the file; without it the bytes come on stdin. Exit 0: clean, 1: infected (the
         * first line of stdout names it), anything else: the scan failed.
         */
        command: z.array(z.string().min(1)).default([]),
        /** A scan taking longer than this is abandoned and the file becomes `scan_failed`, ms. */
        timeoutMs: z.number().int().min(1).default(60_000),
        /** Scans running at once in this process. */
        concurrency: z.number().int().min(1).max(64).default(2),
        /** Files larger than this are not scanned and become `scan_failed`, bytes; 0: no limit (clamd has its own StreamMaxLength). */
        maxBytes: z.number().int().min(0).default(0),
        /** An infected file is `quarantined` and never served; `keep` leaves its bytes in the store, `delete` deletes them. */
        quarantine: z.enum(['keep', 'delete']).default('keep'),
        /** A file whose scan failed (error, timeout, too large): `hold` never serves it, `serve` serves it like a clean one. */
        onFailure: z.enum(['serve', 'hold']).default('hold'),
      })
      .strict()
      .prefault({}),
    webhooks: z
      .object({
        /**
         * Record events (file.uploaded, dropzone.created, …) and deliver them to the webhook subscriptions of API keys.
         * Off (the default): no event is written, nothing is delivered, `/webhooks` answers WEBHOOKS_DISABLED.
         */
        enabled: z.boolean().default(false),
        /** A delivery is retried with exponential backoff until this long after its event, seconds; then it has failed. */
        retryForSeconds: z.number().int().min(0).max(30 * 24 * 3600).default(24 * 3600),
        /** One delivery attempt (connect, send, response headers) may take this long, ms. */
        timeoutMs: z.number().int().min(1).max(120_000).default(10_000),
        /**
         * Targets allowed although they resolve to loopback, private, link-local, ULA, CGNAT, multicast or metadata
         * addresses: host names (exact) and IP addresses or CIDR ranges (`10.1.0.0/16`, `fd00::/8`). Empty: none.
         */
        allowTargets: z.array(z.string().min(1)).default([]),
        /** The dispatcher looks for due deliveries this often even when nothing woke it, seconds. */
        pollIntervalSeconds: z.number().int().min(1).max(3600).default(10),
        /** Delivered (and failed) deliveries, their attempt logs and fanned-out events are kept this long, seconds. */
        retentionSeconds: z.number().int().min(1).default(7 * 24 * 3600),
        /** Subscriptions one API key may hold (the admin key too). */
        maxPerKey: z.number().int().min(1).max(1000).default(20),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: logLevel.default('info'),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /** Serve `GET /metrics` in the Prometheus text format; off: 404. */
        enabled: z.boolean().default(false),
        /** Bearer token a scraper must send (`Authorization: Bearer …`); empty: no token needed. */
        token: z.string().default(''),
      })
      .strict()
      .prefault({}),
    fixture: z
      .object({
        /** Expose `/__fixture/reset` and `/__fixture/clock`. Never on by default. */
        enabled: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.limits.minGb > c.limits.maxGb)
      ctx.addIssue({ code: 'custom', path: ['limits', 'minGb'], message: 'must not exceed limits.maxGb' });
    if (c.limits.minDays > c.limits.maxDays)
      ctx.addIssue({ code: 'custom', path: ['limits', 'minDays'], message: 'must not exceed limits.maxDays' });
    if (Boolean(c.server.tls.cert) !== Boolean(c.server.tls.key))
      ctx.addIssue({ code: 'custom', path: ['server', 'tls', c.server.tls.cert ? 'key' : 'cert'], message: 'is required when the other of server.tls.cert / server.tls.key is set' });
    if (c.server.requestTimeoutSeconds > 0 && c.server.requestTimeoutSeconds < Math.max(c.uploads.urlTtlSeconds, c.server.headersTimeoutSeconds))
      ctx.addIssue({
        code: 'custom',
        path: ['server', 'requestTimeoutSeconds'],
        message: `must be 0 (no cap) or at least uploads.urlTtlSeconds (${c.uploads.urlTtlSeconds}) and server.headersTimeoutSeconds: an upload may take as long as its URL lives`,
      });
    if (isPostgresUrl(c.database.url) && c.storage.backend === 'local' && !c.storage.local.shared)
      ctx.addIssue({
        code: 'custom',
        path: ['storage', 'local', 'shared'],
        message:
          'must be true when database.url is PostgreSQL and storage.backend is "local": every node on that database must see the same ' +
          'blobs, so use storage.backend = "s3", or set storage.local.shared = true if the directory is shared (e.g. NFS)',
      });
    if (c.scan.enabled && c.scan.engine === 'command' && c.scan.command.length === 0)
      ctx.addIssue({ code: 'custom', path: ['scan', 'command'], message: 'is required when scan.enabled and scan.engine is "command"' });
    if (c.scan.enabled && c.scan.engine === 'clamd' && !c.scan.clamd.socket && !c.scan.clamd.host)
      ctx.addIssue({ code: 'custom', path: ['scan', 'clamd', 'socket'], message: 'scan.clamd.socket or scan.clamd.host is required when scan.enabled and scan.engine is "clamd"' });
    try {
      targetPolicy(c.webhooks.allowTargets);
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['webhooks', 'allowTargets'], message: (e as Error).message.replace(/^webhooks\.allowTargets: /, '') });
    }
    if (c.storage.backend === 's3' && !c.storage.s3.bucket)
      ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'bucket'], message: 'is required when storage.backend is "s3"' });
  });

/** A fully validated, frozen configuration. */
export type Config = z.infer<typeof configSchema>;
