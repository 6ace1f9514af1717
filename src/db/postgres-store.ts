import { AsyncLocalStorage } from 'node:async_hooks';
import type postgres from 'postgres';
import type {
  AfterCommitHook,
  ApiKey,
  BlobDeletion,
  Dropzone,
  DropzoneCursor,
  FileCursor,
  FileStatus,
  Grant,
  GrantCursor,
  MetadataOps,
  MetadataStore,
  MetadataTx,
  NewApiKey,
  NewDropzone,
  NewEvent,
  NewFile,
  ResourceType,
  ScanState,
  StoredEvent,
  StoredFile,
  Webhook,
  WebhookAttempt,
  WebhookDelivery,
} from '../core/ports/metadata-store.js';
import { PG_LOCK_CLASS, migratePostgres } from './postgres-migrations.js';
import { Mutex } from '../util/mutex.js';
import { runAfterCommitHooks } from './after-commit.js';

/** A connection pool, or one transaction (or savepoint) scope on a connection. */
type Q = postgres.ISql<Record<string, unknown>>;
/** The pool type this store is built on. */
export type PgPool = postgres.Sql<Record<string, unknown>>;

/** Advisory lock object that serialises the store's transactions across every connection and node. */
const PG_LOCK_TX = 2;

/** Options for {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /** Told when an after-commit hook throws or rejects (the commit stands); ignored when absent. */
  onHookError?: (error: unknown) => void;
  /** End the pool in `close()` (default true). */
  ownsConnection?: boolean;
}

/** Options for {@link openPostgresStore}. */
export interface OpenPostgresStoreOptions extends PostgresStoreOptions {
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** Server-side limit for one statement, in ms (the `statement_timeout` connection parameter; default 30000, 0 = none). */
  statementTimeoutMs?: number;
  /** Shown in `pg_stat_activity` (default `dropzone`). */
  applicationName?: string;
  /** Apply pending migrations before answering (default true). */
  migrate?: boolean;
}

/**
 * The driver options every pool of this program uses: bigint (epoch ms, byte counts, ids) comes back as a JS number
 * (all values stay far below 2^53), notices are not printed, array types are not fetched (none are used).
 */
export function pgDriverOptions(opts: Pick<OpenPostgresStoreOptions, 'poolSize' | 'statementTimeoutMs' | 'applicationName'> = {}) {
  return {
    max: opts.poolSize ?? 10,
    fetch_types: false,
    onnotice: () => {},
    connection: {
      application_name: opts.applicationName ?? 'dropzone',
      statement_timeout: opts.statementTimeoutMs ?? 30_000,
    },
    types: {
      int8: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
    },
  } satisfies postgres.Options<Record<string, postgres.PostgresType>>;
}

/**
 * Opens a pool on `url` (`postgres://…`), migrates the schema (unless `migrate: false`) and answers the store over it.
 * The driver is loaded here, on first use, so SQLite-only starts never load it.
 */
export async function openPostgresStore(url: string, opts: OpenPostgresStoreOptions = {}): Promise<MetadataStore> {
  const { default: connect } = await import('postgres');
  const sql = connect(url, pgDriverOptions(opts)) as unknown as PgPool;
  try {
    if (opts.migrate !== false) await migratePostgres(sql);
  } catch (e) {
    await sql.end({ timeout: 5 });
    throw e;
  }
  return createPostgresStore(sql, opts);
}


/** One open transaction. */
interface TxState {
  open: boolean;
  hooks: AfterCommitHook[];
}

/** One level of an open transaction: the transaction itself or a savepoint in it. */
interface Level {
  root: TxState;
  /** The driver scope statements of this level go through. */
  sql: postgres.TransactionSql<Record<string, unknown>>;
  /** Serialises the savepoints opened directly in this level. */
  nested: Mutex;
  tx?: MetadataTx;
}

const KEY_COLS = `id, public_id AS "publicId", secret_hash AS "secretHash", name, balance_micro AS "balanceMicro",
  permissions, is_admin AS "isAdmin", created_by AS "createdBy", created_at AS "createdAt", revoked_at AS "revokedAt"`;
const DZ_COLS = `id, share_id AS "shareId", code, name, owner_key_id AS "ownerKeyId", tier, hidden, size_gb AS "sizeGb",
  days, max_size AS "maxSize", max_file_size AS "maxFileSize", used_space AS "usedSpace", file_count AS "fileCount",
  start_time AS "startTime", delete_time AS "deleteTime", created_at AS "createdAt", updated_at AS "updatedAt"`;
/** {@link DZ_COLS} of a dropzones table aliased `d` (for joins). */
const DZ_COLS_D = DZ_COLS.replace(/(^|, |\n  )([a-z_]+)/g, '$1d.$2');
const FILE_COLS = `id, dropzone_id AS "dropzoneId", name, type, size, blob_key AS "blobKey", status, etag,
  uploader_key_id AS "uploaderKeyId", created_at AS "createdAt", confirmed_at AS "confirmedAt",
  pending_expires_at AS "pendingExpiresAt", pending_holder AS "pendingHolder",
  multipart_upload_id AS "multipartUploadId", scan_state AS "scanState", scan_claim_until AS "scanClaimUntil"`;
const EVENT_COLS = `seq, id, type, created_at AS "createdAt", dropzone_id AS "dropzoneId", share_id AS "shareId", file_id AS "fileId",
  actor, owner, audience, data, dispatched_at AS "dispatchedAt"`;
const WEBHOOK_COLS = 'id, key_id AS "keyId", url, events, secret, created_at AS "createdAt"';
const DELIVERY_COLS = `id, webhook_id AS "webhookId", event_id AS "eventId", body, status, attempts, next_attempt_at AS "nextAttemptAt",
  created_at AS "createdAt", updated_at AS "updatedAt"`;
const ATTEMPT_COLS = `delivery_id AS "deliveryId", webhook_id AS "webhookId", event_id AS "eventId", at, status_code AS "statusCode", error,
  latency_ms AS "latencyMs"`;
const KEY_INSERT = `INSERT INTO api_keys (public_id, secret_hash, name, balance_micro, permissions, is_admin, created_by, created_at)`;

/** Every statement, prepared by the driver on first use per connection. Parameters compared with integer columns are cast to bigint. */
const S = {
  getSetting: 'SELECT value FROM settings WHERE key = $1',
  setSetting: 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  initSetting: 'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING',

  keyByHash: `SELECT ${KEY_COLS} FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL`,
  keyByPublicId: `SELECT ${KEY_COLS} FROM api_keys WHERE public_id = $1`,
  keyById: `SELECT ${KEY_COLS} FROM api_keys WHERE id = $1`,
  adminKey: `SELECT ${KEY_COLS} FROM api_keys WHERE is_admin AND revoked_at IS NULL ORDER BY id LIMIT 1`,
  listKeys: `SELECT ${KEY_COLS} FROM api_keys ORDER BY id`,
  insertKey: `${KEY_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${KEY_COLS}`,
  insertAdminKey: `${KEY_INSERT} VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7)
    ON CONFLICT (is_admin) WHERE is_admin AND revoked_at IS NULL DO NOTHING RETURNING ${KEY_COLS}`,
  revokeKey: 'UPDATE api_keys SET revoked_at = $1 WHERE public_id = $2 AND revoked_at IS NULL',
  setKeySecret: 'UPDATE api_keys SET secret_hash = $1 WHERE id = $2',
  setKeyBalance: 'UPDATE api_keys SET balance_micro = $1 WHERE id = $2',
  debitKey: 'UPDATE api_keys SET balance_micro = balance_micro - $1 WHERE id = $2 AND balance_micro IS NOT NULL AND balance_micro >= $1',
  creditKey: 'UPDATE api_keys SET balance_micro = balance_micro + $1 WHERE id = $2 AND balance_micro IS NOT NULL',

  dropzoneById: `SELECT ${DZ_COLS} FROM dropzones WHERE id = $1`,
  // one statement over both unique indexes; an id match wins over a shareId match
  dropzoneByRef: `SELECT ${DZ_COLS} FROM dropzones WHERE id = $1 OR share_id = $1 ORDER BY (id = $1) DESC LIMIT 1`,
  dropzoneByCode: `SELECT ${DZ_COLS} FROM dropzones WHERE code = $1`,
  dropzoneByOwnerName: `SELECT ${DZ_COLS} FROM dropzones WHERE owner_key_id = $1 AND name = $2 ORDER BY created_at DESC, id DESC LIMIT 1`,
  dropzonesForKey: `SELECT ${DZ_COLS} FROM dropzones WHERE owner_key_id = $1 OR id IN (
      SELECT resource_id FROM permissions WHERE resource_type = 'dropzone' AND principal = $2
        AND permission IN ('dropzone.get', 'dropzone.own'))
    ORDER BY created_at, id`,
  allDropzones: `SELECT ${DZ_COLS} FROM dropzones ORDER BY created_at, id`,
  // as SQLite's: each branch cut at the page size before the union (owned: dropzones_owner_order; granted:
  // permissions_principal), so a page costs the same however many dropzones the key cannot see
  dropzonesForKeyAfter: `(SELECT ${DZ_COLS} FROM dropzones WHERE owner_key_id = $1 AND (created_at, id) > ($3::bigint, $4::text)
      ORDER BY created_at, id LIMIT $5)
    UNION
    (SELECT ${DZ_COLS_D} FROM permissions p JOIN dropzones d ON d.id = p.resource_id
      WHERE p.principal = $2 AND p.resource_type = 'dropzone' AND p.permission IN ('dropzone.get', 'dropzone.own')
        AND (d.created_at, d.id) > ($3::bigint, $4::text)
      ORDER BY d.created_at, d.id LIMIT $5)
    ORDER BY "createdAt", id LIMIT $5`,
  allDropzonesAfter: `SELECT ${DZ_COLS} FROM dropzones WHERE (created_at, id) > ($1::bigint, $2::text) ORDER BY created_at, id LIMIT $3`,
  releaseExpiredName: 'UPDATE dropzones SET live_name = NULL WHERE owner_key_id = $1 AND live_name = $2 AND delete_time <= $3',
  insertDropzone: `INSERT INTO dropzones (id, share_id, code, name, live_name, owner_key_id, tier, hidden, size_gb, days, max_size,
      max_file_size, start_time, delete_time, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
    ON CONFLICT (owner_key_id, live_name) WHERE live_name IS NOT NULL DO NOTHING`,
  resizeDropzone: `UPDATE dropzones SET size_gb = $1, days = $2, max_size = $3, max_file_size = $4, delete_time = $5, updated_at = $6
    WHERE id = $7`,
  reserveSpace: `UPDATE dropzones SET used_space = used_space + $1::bigint, file_count = file_count + 1
    WHERE id = $2 AND used_space + $1::bigint <= max_size AND file_count < $3::bigint AND $4::bigint < delete_time`,
  releaseSpace: 'UPDATE dropzones SET used_space = GREATEST(0, used_space - $1::bigint), file_count = GREATEST(0, file_count - 1) WHERE id = $2',
  deleteDropzone: 'DELETE FROM dropzones WHERE id = $1',
  closeDropzone: 'UPDATE dropzones SET delete_time = LEAST(delete_time, $1::bigint) WHERE id = $2',
  deleteAllGrants: 'DELETE FROM permissions',
  deleteNonAdminKeys: 'DELETE FROM api_keys WHERE NOT is_admin',
  expiredDropzones: `SELECT ${DZ_COLS} FROM dropzones WHERE delete_time <= $1 ORDER BY delete_time, id LIMIT 100`,

  fileById: `SELECT ${FILE_COLS} FROM files WHERE id = $1`,
  fileByBlobKey: `SELECT ${FILE_COLS} FROM files WHERE blob_key = $1`,
  filesOfDropzoneAfter: `SELECT ${FILE_COLS} FROM files WHERE dropzone_id = $1 AND (created_at, id) > ($2::bigint, $3::text)
    ORDER BY created_at, id LIMIT $4`,
  uploadedFilesOfDropzoneAfter: `SELECT ${FILE_COLS} FROM files WHERE dropzone_id = $1 AND status = 'uploaded'
      AND (created_at, id) > ($2::bigint, $3::text)
    ORDER BY created_at, id LIMIT $4`,
  insertFile: `INSERT INTO files (id, dropzone_id, name, type, size, blob_key, status, uploader_key_id, created_at, pending_expires_at, pending_holder)
    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10)`,
  markUploaded: `UPDATE files SET status = 'uploaded', etag = $1, confirmed_at = $2, pending_expires_at = NULL, pending_holder = NULL,
    multipart_upload_id = NULL, scan_state = $4
    WHERE id = $3 AND status = 'pending'`,
  claimScan: `UPDATE files SET scan_claim_until = $1 WHERE id = $2 AND scan_state = 'scanning'
    AND (scan_claim_until IS NULL OR scan_claim_until <= $3::bigint)`,
  releaseScanClaim: `UPDATE files SET scan_claim_until = NULL WHERE id = $1 AND scan_state = 'scanning'`,
  finishScan: `UPDATE files SET scan_state = $1, scan_claim_until = NULL WHERE id = $2 AND scan_state = 'scanning'`,
  filesToScan: `SELECT ${FILE_COLS} FROM files WHERE scan_state = 'scanning' AND (scan_claim_until IS NULL OR scan_claim_until <= $1::bigint)
    ORDER BY confirmed_at, id LIMIT $2`,
  pendingOfHolder: `SELECT COUNT(*)::int8 AS files, COALESCE(SUM(size), 0)::int8 AS bytes FROM files
    WHERE dropzone_id = $1 AND pending_holder = $2 AND status = 'pending' AND pending_expires_at > $3`,
  setMultipartUpload: `UPDATE files SET multipart_upload_id = $1 WHERE id = $2 AND status = 'pending' AND multipart_upload_id IS NULL`,
  clearMultipartUpload: 'UPDATE files SET multipart_upload_id = NULL WHERE id = $1 AND multipart_upload_id = $2',
  extendPending: `UPDATE files SET pending_expires_at = $1 WHERE id = $2 AND status = 'pending' AND pending_expires_at < $1`,
  deleteFile: 'DELETE FROM files WHERE id = $1',
  stalePending: `SELECT ${FILE_COLS} FROM files WHERE status = 'pending' AND pending_expires_at <= $1 LIMIT 500`,
  fileTotals: 'SELECT status, COUNT(*)::int8 AS files, COALESCE(SUM(size), 0)::int8 AS bytes FROM files GROUP BY status ORDER BY status',
  dropzoneTotals: 'SELECT COUNT(*)::int8 AS dropzones, COALESCE(SUM(max_size), 0)::int8 AS capacity FROM dropzones',

  grantsOn: 'SELECT principal, permission FROM permissions WHERE resource_type = $1 AND resource_id = $2 ORDER BY principal, permission',
  grantsOnAfter: `SELECT principal, permission FROM permissions WHERE resource_type = $1 AND resource_id = $2
      AND (principal, permission) > ($3::text, $4::text)
    ORDER BY principal, permission LIMIT $5`,
  grantsFor: "SELECT permission FROM permissions WHERE resource_type = $1 AND resource_id = $2 AND principal IN ($3, 'anyone')",
  grantsForAnyone: "SELECT permission FROM permissions WHERE resource_type = $1 AND resource_id = $2 AND principal = 'anyone'",
  insertGrant: `INSERT INTO permissions (resource_type, resource_id, principal, permission, created_at) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT DO NOTHING`,
  deleteGrant: 'DELETE FROM permissions WHERE resource_type = $1 AND resource_id = $2 AND principal = $3 AND permission = $4',
  deleteGrantsOn: 'DELETE FROM permissions WHERE resource_type = $1 AND resource_id = $2',

  queueBlobDeletion: `INSERT INTO blob_deletions (blob_key, queued_at, not_before) VALUES ($1, $2, $3)
    ON CONFLICT (blob_key) DO UPDATE SET not_before = GREATEST(blob_deletions.not_before, excluded.not_before)`,
  blobDeletionsDue: `SELECT blob_key AS "blobKey", queued_at AS "queuedAt", not_before AS "notBefore" FROM blob_deletions
    WHERE (not_before <= $1 OR tries = 0) AND (queued_at, blob_key) > ($2::bigint, $3::text)
    ORDER BY queued_at, blob_key LIMIT $4`,
  markBlobDeletionTried: 'UPDATE blob_deletions SET tries = tries + 1 WHERE blob_key = $1',
  dequeueBlobDeletion: 'DELETE FROM blob_deletions WHERE blob_key = $1',

  acquireLease: `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3::bigint + $4::bigint)
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE leases.holder = excluded.holder OR leases.expires_at <= $3::bigint`,
  releaseLease: 'DELETE FROM leases WHERE name = $1 AND holder = $2',

  insertEvent: `INSERT INTO events (id, type, created_at, dropzone_id, share_id, file_id, actor, owner, audience, data)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
  undispatchedEvents: `SELECT ${EVENT_COLS} FROM events WHERE dispatched_at IS NULL ORDER BY seq LIMIT $1`,
  markEventDispatched: 'UPDATE events SET dispatched_at = $1 WHERE seq = $2',
  insertWebhook: 'INSERT INTO webhooks (id, key_id, url, events, secret, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
  webhookById: `SELECT ${WEBHOOK_COLS} FROM webhooks WHERE id = $1`,
  webhooksOfKey: `SELECT ${WEBHOOK_COLS} FROM webhooks WHERE key_id = $1 ORDER BY created_at, id`,
  allWebhooks: `SELECT ${WEBHOOK_COLS} FROM webhooks ORDER BY created_at, id`,
  updateWebhook: 'UPDATE webhooks SET url = $1, events = $2 WHERE id = $3',
  // deliveries and attempts go with it (ON DELETE CASCADE)
  deleteWebhook: 'DELETE FROM webhooks WHERE id = $1',
  insertDelivery: `INSERT INTO webhook_deliveries (id, webhook_id, event_id, body, status, attempts, next_attempt_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
  dueDeliveries: `SELECT ${DELIVERY_COLS} FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at, id LIMIT $2`,
  // one statement: the delivery's new state and the log line commit together (nothing when the subscription is gone)
  recordAttempt: `WITH upd AS (
      UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, updated_at = $4 WHERE id = $5 RETURNING id)
    INSERT INTO webhook_attempts (delivery_id, webhook_id, event_id, at, status_code, error, latency_ms)
    SELECT $5, $6, $7, $4, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $6)`,
  webhookAttempts: `SELECT ${ATTEMPT_COLS} FROM webhook_attempts WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2`,
  pruneDeliveries: `DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < $1`,
  pruneAttempts: 'DELETE FROM webhook_attempts WHERE at < $1',
  pruneEvents: 'DELETE FROM events WHERE dispatched_at IS NOT NULL AND dispatched_at < $1',
} as const;

type Row = Record<string, unknown>;
type Result = Row[] & { count: number };

/** Runs one prepared statement. */
const exec = (q: Q, text: keyof typeof S, params: unknown[] = []): Promise<Result> =>
  q.unsafe(S[text], params as never[], { prepare: true }) as unknown as Promise<Result>;

const toKey = (r: Row): ApiKey => ({ ...(r as unknown as ApiKey), permissions: JSON.parse(r.permissions as string) as string[] });
const first = <T>(rows: Result, map: (r: Row) => T = (r) => r as T): T | undefined => (rows.length > 0 ? map(rows[0]) : undefined);
const toEvent = (r: Row): StoredEvent =>
  ({ ...r, audience: JSON.parse(r.audience as string), data: JSON.parse(r.data as string) }) as unknown as StoredEvent;
const toWebhook = (r: Row): Webhook => ({ ...r, events: JSON.parse(r.events as string) }) as unknown as Webhook;
const keyParams = (k: NewApiKey) => [k.publicId, k.secretHash, k.name, k.balanceMicro, JSON.stringify(k.permissions)];

/** The operations, each over the query scope `q` it is given (the pool or a transaction level). */
const pgOps = (() => {
  const ops = {
    async getSetting(q: Q, key: string) {
      return first(await exec(q, 'getSetting', [key]), (r) => r.value as string);
    },
    async setSetting(q: Q, key: string, value: string) {
      await exec(q, 'setSetting', [key, value]);
    },
    async initSetting(q: Q, key: string, value: string) {
      await exec(q, 'initSetting', [key, value]);
      return (await ops.getSetting(q, key))!;
    },

    keyByHash: async (q: Q, hash: string) => first(await exec(q, 'keyByHash', [hash]), toKey),
    keyByPublicId: async (q: Q, publicId: string) => first(await exec(q, 'keyByPublicId', [publicId]), toKey),
    keyById: async (q: Q, id: number) => first(await exec(q, 'keyById', [id]), toKey),
    adminKey: async (q: Q) => first(await exec(q, 'adminKey'), toKey),
    listKeys: async (q: Q) => (await exec(q, 'listKeys')).map(toKey),
    insertKey: async (q: Q, k: NewApiKey) => toKey((await exec(q, 'insertKey', [...keyParams(k), k.isAdmin, k.createdBy, k.createdAt]))[0]),
    async ensureAdminKey(q: Q, k: NewApiKey) {
      for (;;) {
        const inserted = first(await exec(q, 'insertAdminKey', [...keyParams(k), k.createdBy, k.createdAt]), toKey);
        if (inserted) return { key: inserted, created: true };
        const existing = await ops.adminKey(q);
        // the admin that blocked the insert may have been revoked since: try again
        if (existing) return { key: existing, created: false };
      }
    },
    revokeKey: async (q: Q, publicId: string, at: number) => (await exec(q, 'revokeKey', [at, publicId])).count > 0,
    async setKeySecret(q: Q, id: number, secretHash: string) {
      await exec(q, 'setKeySecret', [secretHash, id]);
    },
    async setKeyBalance(q: Q, id: number, micro: number | null) {
      await exec(q, 'setKeyBalance', [micro, id]);
    },
    debitKey: async (q: Q, id: number, micro: number) => (await exec(q, 'debitKey', [micro, id])).count > 0,
    creditKey: async (q: Q, id: number, micro: number) => (await exec(q, 'creditKey', [micro, id])).count > 0,

    dropzoneById: async (q: Q, id: string) => first<Dropzone>(await exec(q, 'dropzoneById', [id])),
    dropzoneByRef: async (q: Q, ref: string) => first<Dropzone>(await exec(q, 'dropzoneByRef', [ref])),
    dropzoneByCode: async (q: Q, code: string) => first<Dropzone>(await exec(q, 'dropzoneByCode', [code])),
    dropzoneByOwnerName: async (q: Q, owner: number, name: string) => first<Dropzone>(await exec(q, 'dropzoneByOwnerName', [owner, name])),
    dropzonesForKey: async (q: Q, keyId: number, publicId: string) => (await exec(q, 'dropzonesForKey', [keyId, publicId])) as unknown as Dropzone[],
    allDropzones: async (q: Q) => (await exec(q, 'allDropzones')) as unknown as Dropzone[],
    dropzonesForKeyAfter: async (q: Q, keyId: number, publicId: string, after: DropzoneCursor | undefined, limit: number) =>
      (await exec(q, 'dropzonesForKeyAfter', [keyId, publicId, after?.createdAt ?? -Number.MAX_SAFE_INTEGER, after?.id ?? '', limit])) as unknown as Dropzone[],
    allDropzonesAfter: async (q: Q, after: DropzoneCursor | undefined, limit: number) =>
      (await exec(q, 'allDropzonesAfter', [after?.createdAt ?? -Number.MAX_SAFE_INTEGER, after?.id ?? '', limit])) as unknown as Dropzone[],
    /**
     * Clears the owner's expired claims on the name, then inserts unless a live dropzone holds it: the partial unique
     * index on (owner, live_name) decides between concurrent inserts, on any number of connections.
     */
    async insertDropzone(q: Q, d: NewDropzone) {
      const claims = d.name !== null && d.ownerKeyId !== null;
      if (claims) await exec(q, 'releaseExpiredName', [d.ownerKeyId, d.name, d.createdAt]);
      const r = await exec(q, 'insertDropzone', [
        d.id, d.shareId, d.code, d.name, claims ? d.name : null, d.ownerKeyId, d.tier, d.hidden, d.sizeGb, d.days,
        d.maxSize, d.maxFileSize, d.startTime, d.deleteTime, d.createdAt, d.updatedAt,
      ]);
      return r.count > 0;
    },
    async resizeDropzone(q: Q, c: Parameters<MetadataOps['resizeDropzone']>[0]) {
      await exec(q, 'resizeDropzone', [c.sizeGb, c.days, c.maxSize, c.maxFileSize, c.deleteTime, c.updatedAt, c.id]);
    },
    reserveSpace: async (q: Q, id: string, bytes: number, now: number, maxFiles: number) =>
      (await exec(q, 'reserveSpace', [bytes, id, maxFiles, now])).count > 0,
    async releaseSpace(q: Q, id: string, bytes: number) {
      await exec(q, 'releaseSpace', [bytes, id]);
    },
    async deleteDropzone(q: Q, id: string) {
      await exec(q, 'deleteDropzone', [id]);
    },
    async closeDropzone(q: Q, id: string, at: number) {
      await exec(q, 'closeDropzone', [at, id]);
    },
    async deleteAllGrants(q: Q) {
      await exec(q, 'deleteAllGrants');
    },
    async deleteNonAdminKeys(q: Q) {
      await exec(q, 'deleteNonAdminKeys');
    },
    expiredDropzones: async (q: Q, now: number) => (await exec(q, 'expiredDropzones', [now])) as unknown as Dropzone[],

    fileById: async (q: Q, id: string) => first<StoredFile>(await exec(q, 'fileById', [id])),
    fileByBlobKey: async (q: Q, key: string) => first<StoredFile>(await exec(q, 'fileByBlobKey', [key])),
    filesOfDropzoneAfter: async (q: Q, dropzoneId: string, after: FileCursor | undefined, limit: number, uploadedOnly = false) =>
      (await exec(q, uploadedOnly ? 'uploadedFilesOfDropzoneAfter' : 'filesOfDropzoneAfter', [
        dropzoneId,
        after?.createdAt ?? -Number.MAX_SAFE_INTEGER,
        after?.id ?? '',
        limit,
      ])) as unknown as StoredFile[],
    async insertFile(q: Q, f: NewFile) {
      await exec(q, 'insertFile', [
        f.id, f.dropzoneId, f.name, f.type, f.size, f.blobKey, f.uploaderKeyId, f.createdAt, f.pendingExpiresAt, f.pendingHolder ?? null,
      ]);
    },
    markUploaded: async (q: Q, id: string, etag: string, at: number, scanState: ScanState | null = null) =>
      (await exec(q, 'markUploaded', [etag, at, id, scanState])).count > 0,
    claimScan: async (q: Q, id: string, now: number, until: number) => (await exec(q, 'claimScan', [until, id, now])).count > 0,
    async releaseScanClaim(q: Q, id: string) {
      await exec(q, 'releaseScanClaim', [id]);
    },
    finishScan: async (q: Q, id: string, state: Exclude<ScanState, 'scanning'>) => (await exec(q, 'finishScan', [state, id])).count > 0,
    filesToScan: async (q: Q, now: number, limit: number) => (await exec(q, 'filesToScan', [now, limit])) as unknown as StoredFile[],
    pendingOfHolder: async (q: Q, dropzoneId: string, holder: string, now: number) =>
      (await exec(q, 'pendingOfHolder', [dropzoneId, holder, now]))[0] as { files: number; bytes: number },
    setMultipartUpload: async (q: Q, id: string, uploadId: string) => (await exec(q, 'setMultipartUpload', [uploadId, id])).count > 0,
    clearMultipartUpload: async (q: Q, id: string, uploadId: string) => (await exec(q, 'clearMultipartUpload', [id, uploadId])).count > 0,
    extendPending: async (q: Q, id: string, until: number) => (await exec(q, 'extendPending', [until, id])).count > 0,
    async deleteFile(q: Q, id: string) {
      return (await exec(q, 'deleteFile', [id])).count > 0;
    },
    stalePending: async (q: Q, now: number) => (await exec(q, 'stalePending', [now])) as unknown as StoredFile[],
    fileTotals: async (q: Q) => [...(await exec(q, 'fileTotals'))] as { status: FileStatus; files: number; bytes: number }[],
    dropzoneTotals: async (q: Q) => (await exec(q, 'dropzoneTotals'))[0] as { dropzones: number; capacity: number },

    grantsOn: async (q: Q, type: ResourceType, id: string) => [...(await exec(q, 'grantsOn', [type, id]))] as unknown as Grant[],
    grantsOnAfter: async (q: Q, type: ResourceType, id: string, after: GrantCursor | undefined, limit: number) =>
      [...(await exec(q, 'grantsOnAfter', [type, id, after?.principal ?? '', after?.permission ?? '', limit]))] as unknown as Grant[],
    grantsFor: async (q: Q, type: ResourceType, id: string, publicId: string) =>
      (await exec(q, 'grantsFor', [type, id, publicId])).map((r) => r.permission as string),
    grantsForAnyone: async (q: Q, type: ResourceType, id: string) => (await exec(q, 'grantsForAnyone', [type, id])).map((r) => r.permission as string),
    async insertGrant(q: Q, type: ResourceType, id: string, principal: string, permission: string, at: number) {
      await exec(q, 'insertGrant', [type, id, principal, permission, at]);
    },
    async deleteGrant(q: Q, type: ResourceType, id: string, principal: string, permission: string) {
      await exec(q, 'deleteGrant', [type, id, principal, permission]);
    },
    async deleteGrantsOn(q: Q, type: ResourceType, id: string) {
      await exec(q, 'deleteGrantsOn', [type, id]);
    },

    async queueBlobDeletion(q: Q, key: string, at: number, notBefore = at) {
      await exec(q, 'queueBlobDeletion', [key, at, notBefore]);
    },
    blobDeletionsDue: async (q: Q, now: number, after: { at: number; key: string }, limit: number) =>
      [...(await exec(q, 'blobDeletionsDue', [now, after.at, after.key, limit]))] as unknown as BlobDeletion[],
    async markBlobDeletionTried(q: Q, key: string) {
      await exec(q, 'markBlobDeletionTried', [key]);
    },
    async dequeueBlobDeletion(q: Q, key: string) {
      await exec(q, 'dequeueBlobDeletion', [key]);
    },

    acquireLease: async (q: Q, name: string, holder: string, now: number, ttlMs: number) =>
      (await exec(q, 'acquireLease', [name, holder, now, ttlMs])).count > 0,
    async releaseLease(q: Q, name: string, holder: string) {
      await exec(q, 'releaseLease', [name, holder]);
    },

    async insertEvent(q: Q, e: NewEvent) {
      await exec(q, 'insertEvent', [
        e.id, e.type, e.createdAt, e.dropzoneId, e.shareId, e.fileId, e.actor, e.owner, JSON.stringify(e.audience), JSON.stringify(e.data),
      ]);
    },
    undispatchedEvents: async (q: Q, limit: number) => (await exec(q, 'undispatchedEvents', [limit])).map(toEvent),
    async markEventDispatched(q: Q, seq: number, at: number) {
      await exec(q, 'markEventDispatched', [at, seq]);
    },
    async insertWebhook(q: Q, w: Webhook) {
      await exec(q, 'insertWebhook', [w.id, w.keyId, w.url, JSON.stringify(w.events), w.secret, w.createdAt]);
    },
    webhookById: async (q: Q, id: string) => first(await exec(q, 'webhookById', [id]), toWebhook),
    listWebhooks: async (q: Q, keyId?: number) =>
      (keyId === undefined ? await exec(q, 'allWebhooks') : await exec(q, 'webhooksOfKey', [keyId])).map(toWebhook),
    updateWebhook: async (q: Q, id: string, c: Pick<Webhook, 'url' | 'events'>) =>
      (await exec(q, 'updateWebhook', [c.url, JSON.stringify(c.events), id])).count > 0,
    deleteWebhook: async (q: Q, id: string) => (await exec(q, 'deleteWebhook', [id])).count > 0,
    async insertDelivery(q: Q, d: Omit<WebhookDelivery, 'updatedAt'>) {
      await exec(q, 'insertDelivery', [d.id, d.webhookId, d.eventId, d.body, d.status, d.attempts, d.nextAttemptAt, d.createdAt]);
    },
    dueDeliveries: async (q: Q, now: number, limit: number) => [...(await exec(q, 'dueDeliveries', [now, limit]))] as unknown as WebhookDelivery[],
    async recordAttempt(q: Q, a: WebhookAttempt, next: Pick<WebhookDelivery, 'status' | 'attempts' | 'nextAttemptAt'>) {
      await exec(q, 'recordAttempt', [
        next.status, next.attempts, next.nextAttemptAt, a.at, a.deliveryId, a.webhookId, a.eventId, a.statusCode, a.error, a.latencyMs,
      ]);
    },
    webhookAttempts: async (q: Q, webhookId: string, limit: number) =>
      [...(await exec(q, 'webhookAttempts', [webhookId, limit]))] as unknown as WebhookAttempt[],
    /** Three statements, each safe alone (a crash between them leaves rows the next prune removes). */
    async pruneWebhookData(q: Q, before: number) {
      let n = 0;
      for (const st of ['pruneDeliveries', 'pruneAttempts', 'pruneEvents'] as const) n += (await exec(q, st, [before])).count;
      return n;
    },
  };
  return ops;
})();

// the operations must cover the whole port, with the same parameters (after the scope) and results
pgOps satisfies { [K in keyof MetadataOps]: (q: Q, ...args: Parameters<MetadataOps[K]>) => ReturnType<MetadataOps[K]> };

/**
 * The port's operations, each first resolving its query scope with `scope()`: a throw there (a transaction handle
 * used after its end) becomes a rejection.
 */
function scoped(scope: () => Q): MetadataOps {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(pgOps) as [string, (q: Q, ...args: unknown[]) => Promise<unknown>][]) {
    out[name] = (...args: unknown[]) => {
      let q: Q;
      try {
        q = scope();
      } catch (e) {
        return Promise.reject(e);
      }
      return fn(q, ...args);
    };
  }
  return out as unknown as MetadataOps;
}

/**
 * The {@link MetadataStore} on a PostgreSQL pool (the driver `postgres`; migrated by `migratePostgres`).
 *
 * Single operations run on any pooled connection; each is one conditional statement (or, for the few two-step ones,
 * steps that are each safe alone), so their invariants hold across connections and nodes. A transaction is
 * `sql.begin` on one connection whose first statement takes a transaction-level advisory lock: transactions never
 * interleave, on one node (a local FIFO queue keeps them from holding several connections) or across nodes. Calls on
 * the store from inside a transaction's own async flow (AsyncLocalStorage) join it; nested transactions become
 * savepoints. After-commit hooks run once committed, in order; failures go to `onHookError`.
 */
export function createPostgresStore(sql: PgPool, opts: PostgresStoreOptions = {}): MetadataStore {
  const { onHookError = () => {}, ownsConnection = true } = opts;
  const lock = new Mutex();
  const current = new AsyncLocalStorage<Level>();
  const ended = () => new Error('metadata transaction used after it ended');

  const runHooks = (hooks: AfterCommitHook[]) => runAfterCommitHooks(hooks, onHookError);

  const makeTx = (level: Level): MetadataTx => {
    const tx = scoped(() => {
      if (!level.root.open) throw ended();
      return level.sql as unknown as Q;
    }) as MetadataTx;
    tx.afterCommit = (hook) => {
      if (!level.root.open) throw ended();
      level.root.hooks.push(hook);
    };
    tx.transaction = (fn) => nested(level, fn);
    return (level.tx = tx);
  };

  /** A savepoint inside `parent`; savepoints of one level run one after another. */
  const nested = async <T>(parent: Level, fn: (tx: MetadataTx) => Promise<T>): Promise<T> => {
    if (!parent.root.open) throw ended();
    await parent.nested.acquire();
    const mark = parent.root.hooks.length;
    try {
      const out = await parent.sql.savepoint(async (sp) => {
        const level: Level = { root: parent.root, sql: sp, nested: new Mutex() };
        const value = await current.run(level, () => fn(makeTx(level)));
        await level.nested.acquire();
        return { value };
      });
      return out.value as T;
    } catch (e) {
      parent.root.hooks.length = mark;
      throw e;
    } finally {
      parent.nested.release();
    }
  };

  const store = scoped(() => {
    const level = current.getStore();
    return level?.root.open ? (level.sql as unknown as Q) : (sql as unknown as Q);
  }) as MetadataStore & { kind: string };

  Object.assign(store, {
    kind: 'postgres',
    async transaction<T>(fn: (tx: MetadataTx) => Promise<T>): Promise<T> {
      const outer = current.getStore();
      if (outer?.root.open) return nested(outer, fn);
      await lock.acquire();
      const root: TxState = { open: false, hooks: [] };
      let value: T;
      try {
        const out = await sql.begin(async (tsql) => {
          await tsql.unsafe('SELECT pg_advisory_xact_lock($1::int4, $2::int4)', [PG_LOCK_CLASS, PG_LOCK_TX], { prepare: true });
          const level: Level = { root, sql: tsql, nested: new Mutex() };
          root.open = true;
          try {
            const v = await current.run(level, () => fn(makeTx(level)));
            // a nested part may still be running if fn did not await it: wait for it before committing
            await level.nested.acquire();
            return { v };
          } finally {
            root.open = false;
          }
        });
        value = out.v as T;
      } finally {
        root.open = false;
        lock.release();
      }
      if (root.hooks.length > 0) await runHooks(root.hooks);
      return value;
    },
    async close() {
      if (ownsConnection) await sql.end({ timeout: 5 });
    },
  });
  return store;
}
