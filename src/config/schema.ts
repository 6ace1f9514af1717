import { z } from 'zod';

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
      })
      .strict()
      .prefault({}),
    /** Directory holding the database, the local blobs and the generated secrets. */
    dataDir: z.string().min(1).default('./data'),
    storage: z
      .object({
        backend: z.enum(['local', 's3']).default('local'),
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
        /** A pending upload not confirmed within this time is removed and its bytes released, seconds. */
        pendingTtlSeconds: z.number().int().min(1).default(24 * 3600),
        /** Largest single file in bytes, on top of each dropzone's own size. */
        maxFileSize: z.number().int().min(1).default(4 * BYTES_PER_GB),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        minGb: z.number().positive().default(0.2),
        maxGb: z.number().positive().default(4),
        minDays: z.number().positive().default(30),
        maxDays: z.number().positive().default(365),
      })
      .strict()
      .prefault({}),
    sweeper: z
      .object({
        /** How often expired dropzones and stale pending uploads are removed, seconds; 0 turns it off. */
        intervalSeconds: z.number().min(0).default(60),
        /** Blobs with no row younger than this are left alone by garbage collection, seconds. */
        gcGraceSeconds: z.number().min(0).default(3600),
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
    if (c.storage.backend === 's3' && !c.storage.s3.bucket)
      ctx.addIssue({ code: 'custom', path: ['storage', 's3', 'bucket'], message: 'is required when storage.backend is "s3"' });
  });

/** A fully validated, frozen configuration. */
export type Config = z.infer<typeof configSchema>;
