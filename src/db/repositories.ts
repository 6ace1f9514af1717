import type { Db } from './database.js';
import type { NewEvent, StoredEvent, Webhook, WebhookAttempt, WebhookDelivery } from '../core/ports/metadata-store.js';

/** A row of `api_keys`. */
export interface ApiKeyRow {
  id: number;
  public_id: string;
  secret_hash: string;
  name: string;
  balance_micro: number | null;
  permissions: string;
  is_admin: number;
  created_by: number | null;
  created_at: number;
  revoked_at: number | null;
}

/** A row of `dropzones`. */
export interface DropzoneRow {
  id: string;
  /** Public handle for grantees (`dzs_…`): accepted in `/dropzones/:id` paths, never as an x-dropzone-id credential. */
  share_id: string;
  code: string;
  name: string | null;
  owner_key_id: number | null;
  tier: string;
  hidden: number;
  size_gb: number;
  days: number;
  max_size: number;
  max_file_size: number;
  used_space: number;
  /** Files in the dropzone, pending and uploaded; maintained with used_space by reserveSpace / releaseSpace. */
  file_count: number;
  start_time: number;
  delete_time: number;
  created_at: number;
  updated_at: number;
}

/** A row of `files`. */
export interface FileRow {
  id: string;
  dropzone_id: string;
  name: string;
  type: string;
  size: number;
  blob_key: string;
  status: 'pending' | 'uploaded';
  etag: string | null;
  uploader_key_id: number | null;
  created_at: number;
  confirmed_at: number | null;
  pending_expires_at: number | null;
  /** Who holds this pending upload made through the page (hash of the client address); null otherwise. */
  pending_holder: string | null;
  /** The multipart upload pinned to this pending file; null when none is open. */
  multipart_upload_id: string | null;
  /** The virus scan's state (`scanning`, `clean`, `quarantined`, `scan_failed`); null: confirmed with scanning off. */
  scan_state: string | null;
  /** While scanning: the claim on the scan runs until this time; null: nobody holds it. */
  scan_claim_until: number | null;
}

/**
 * Single-row lookups of `api_keys` and `dropzones` (every authenticated request makes one or two) read raw arrays of these
 * columns and build the row object here: better-sqlite3 builds a row object by internalizing every column name per row,
 * which cost ~1.8 µs of a ~4 µs dropzone lookup. A test checks these lists and mappers against `SELECT *`.
 */
export const KEY_COLUMNS = 'id, public_id, secret_hash, name, balance_micro, permissions, is_admin, created_by, created_at, revoked_at';
export const keyRowOf = (a: unknown[]): ApiKeyRow => ({
  id: a[0] as number,
  public_id: a[1] as string,
  secret_hash: a[2] as string,
  name: a[3] as string,
  balance_micro: a[4] as number | null,
  permissions: a[5] as string,
  is_admin: a[6] as number,
  created_by: a[7] as number | null,
  created_at: a[8] as number,
  revoked_at: a[9] as number | null,
});
export const DROPZONE_COLUMNS =
  'id, share_id, code, name, owner_key_id, tier, hidden, size_gb, days, max_size, max_file_size, used_space, file_count, start_time, delete_time, created_at, updated_at';
export const dropzoneRowOf = (a: unknown[]): DropzoneRow => ({
  id: a[0] as string,
  share_id: a[1] as string,
  code: a[2] as string,
  name: a[3] as string | null,
  owner_key_id: a[4] as number | null,
  tier: a[5] as string,
  hidden: a[6] as number,
  size_gb: a[7] as number,
  days: a[8] as number,
  max_size: a[9] as number,
  max_file_size: a[10] as number,
  used_space: a[11] as number,
  file_count: a[12] as number,
  start_time: a[13] as number,
  delete_time: a[14] as number,
  created_at: a[15] as number,
  updated_at: a[16] as number,
});

/** `map(r)`, or undefined when there is no row. */
export const opt = <R, T>(map: (r: R) => T, r: R | undefined): T | undefined => (r === undefined ? undefined : map(r));

/** Resource kinds that carry permissions. */
export type ResourceType = 'dropzone' | 'file';

/**
 * Prepared statements over the schema of `migrations.ts`. Pure data access: no rules, no HTTP.
 * Multi-step changes are composed by callers inside `db.transaction`.
 */
export function createRepositories(db: Db) {
  const q = <P extends unknown[] = unknown[]>(sql: string) => db.prepare<P>(sql);
  /** A statement answering arrays (see {@link KEY_COLUMNS}). */
  const qRaw = <P extends unknown[] = unknown[]>(sql: string) => db.prepare<P>(sql).raw(true);

  const s = {
    getSetting: q<[string]>('SELECT value FROM settings WHERE key = ?'),
    setSetting: q<[string, string]>('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    initSetting: q<[string, string]>('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING'),

    keyByHash: qRaw<[string]>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE secret_hash = ? AND revoked_at IS NULL`),
    keyByPublicId: qRaw<[string]>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE public_id = ?`),
    keyById: qRaw<[number]>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`),
    adminKey: qRaw<[]>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE is_admin = 1 AND revoked_at IS NULL ORDER BY id LIMIT 1`),
    listKeys: q<[]>('SELECT * FROM api_keys ORDER BY id'),
    insertKey: q(
      `INSERT INTO api_keys (public_id, secret_hash, name, balance_micro, permissions, is_admin, created_by, created_at)
       VALUES (@public_id, @secret_hash, @name, @balance_micro, @permissions, @is_admin, @created_by, @created_at)`,
    ),
    insertAdminKey: q(
      `INSERT INTO api_keys (public_id, secret_hash, name, balance_micro, permissions, is_admin, created_by, created_at)
       VALUES (@public_id, @secret_hash, @name, @balance_micro, @permissions, 1, @created_by, @created_at)
       ON CONFLICT(is_admin) WHERE is_admin = 1 AND revoked_at IS NULL DO NOTHING`,
    ),
    revokeKey: q<[number, string]>('UPDATE api_keys SET revoked_at = ? WHERE public_id = ? AND revoked_at IS NULL'),
    setKeySecret: q<[string, number]>('UPDATE api_keys SET secret_hash = ? WHERE id = ?'),
    setKeyBalance: q<[number | null, number]>('UPDATE api_keys SET balance_micro = ? WHERE id = ?'),
    debitKey: q<[number, number, number]>(
      'UPDATE api_keys SET balance_micro = balance_micro - ? WHERE id = ? AND balance_micro IS NOT NULL AND balance_micro >= ?',
    ),
    creditKey: q<[number, number]>('UPDATE api_keys SET balance_micro = balance_micro + ? WHERE id = ? AND balance_micro IS NOT NULL'),

    dropzoneById: qRaw<[string]>(`SELECT ${DROPZONE_COLUMNS} FROM dropzones WHERE id = ?`),
    dropzoneByShareId: qRaw<[string]>(`SELECT ${DROPZONE_COLUMNS} FROM dropzones WHERE share_id = ?`),
    dropzoneByCode: qRaw<[string]>(`SELECT ${DROPZONE_COLUMNS} FROM dropzones WHERE code = ?`),
    dropzoneByOwnerName: q<[number, string]>('SELECT * FROM dropzones WHERE owner_key_id = ? AND name = ? ORDER BY created_at DESC, id DESC LIMIT 1'),
    dropzonesForKey: q(
      `SELECT * FROM dropzones WHERE owner_key_id = @keyId OR id IN (
         SELECT resource_id FROM permissions WHERE resource_type = 'dropzone' AND principal = @publicId
           AND permission IN ('dropzone.get', 'dropzone.own'))
       ORDER BY created_at, id`,
    ),
    allDropzones: q<[]>('SELECT * FROM dropzones ORDER BY created_at, id'),
    // owned ones through dropzones_owner_order, granted ones through permissions_principal; each branch is cut at the
    // page size before the union, so a page costs the same however many dropzones the key cannot see
    dropzonesForKeyAfter: q(
      `SELECT * FROM (
         SELECT * FROM dropzones WHERE owner_key_id = @keyId AND (created_at, id) > (@createdAt, @id)
         ORDER BY created_at, id LIMIT @limit)
       UNION
       SELECT * FROM (
         SELECT d.* FROM permissions p JOIN dropzones d ON d.id = p.resource_id
         WHERE p.principal = @publicId AND p.resource_type = 'dropzone' AND p.permission IN ('dropzone.get', 'dropzone.own')
           AND (d.created_at, d.id) > (@createdAt, @id)
         ORDER BY d.created_at, d.id LIMIT @limit)
       ORDER BY created_at, id LIMIT @limit`,
    ),
    allDropzonesAfter: q('SELECT * FROM dropzones WHERE (created_at, id) > (@createdAt, @id) ORDER BY created_at, id LIMIT @limit'),
    releaseExpiredName: q(
      'UPDATE dropzones SET live_name = NULL WHERE owner_key_id = @owner_key_id AND live_name = @name AND delete_time <= @created_at',
    ),
    insertDropzone: q(
      `INSERT INTO dropzones (id, share_id, code, name, live_name, owner_key_id, tier, hidden, size_gb, days, max_size, max_file_size, used_space, start_time, delete_time, created_at, updated_at)
       VALUES (@id, @share_id, @code, @name, CASE WHEN @owner_key_id IS NULL THEN NULL ELSE @name END, @owner_key_id, @tier, @hidden, @size_gb, @days, @max_size, @max_file_size, 0, @start_time, @delete_time, @created_at, @updated_at)
       ON CONFLICT(owner_key_id, live_name) WHERE live_name IS NOT NULL DO NOTHING`,
    ),
    updateDropzoneSize: q(
      `UPDATE dropzones SET size_gb = @size_gb, days = @days, max_size = @max_size, max_file_size = @max_file_size,
         delete_time = @delete_time, updated_at = @updated_at WHERE id = @id`,
    ),
    reserveSpace: q(
      `UPDATE dropzones SET used_space = used_space + @bytes, file_count = file_count + 1
       WHERE id = @id AND used_space + @bytes <= max_size AND file_count < @maxFiles AND @now < delete_time`,
    ),
    releaseSpace: q<[number, string]>('UPDATE dropzones SET used_space = MAX(0, used_space - ?), file_count = MAX(0, file_count - 1) WHERE id = ?'),
    deleteDropzone: q<[string]>('DELETE FROM dropzones WHERE id = ?'),
    closeDropzone: q<[number, string]>('UPDATE dropzones SET delete_time = MIN(delete_time, ?) WHERE id = ?'),
    deleteAllGrants: q<[]>('DELETE FROM permissions'),
    deleteNonAdminKeys: q<[]>('DELETE FROM api_keys WHERE is_admin = 0'),
    expiredDropzones: q<[number]>('SELECT * FROM dropzones WHERE delete_time <= ? ORDER BY delete_time LIMIT 100'),

    fileById: q<[string]>('SELECT * FROM files WHERE id = ?'),
    fileByBlobKey: q<[string]>('SELECT * FROM files WHERE blob_key = ?'),
    filesOfDropzoneAfter: q(
      `SELECT * FROM files WHERE dropzone_id = @dropzoneId AND (@uploadedOnly = 0 OR status = 'uploaded')
         AND (created_at, id) > (@createdAt, @id)
       ORDER BY created_at, id LIMIT @limit`,
    ),
    insertFile: q(
      `INSERT INTO files (id, dropzone_id, name, type, size, blob_key, status, uploader_key_id, created_at, pending_expires_at, pending_holder)
       VALUES (@id, @dropzone_id, @name, @type, @size, @blob_key, 'pending', @uploader_key_id, @created_at, @pending_expires_at, @pending_holder)`,
    ),
    markUploaded: q<[string, number, string | null, string]>(
      "UPDATE files SET status = 'uploaded', etag = ?, confirmed_at = ?, scan_state = ?, pending_expires_at = NULL, pending_holder = NULL, multipart_upload_id = NULL WHERE id = ? AND status = 'pending'",
    ),
    claimScan: q<[number, string, number]>(
      "UPDATE files SET scan_claim_until = ? WHERE id = ? AND scan_state = 'scanning' AND (scan_claim_until IS NULL OR scan_claim_until <= ?)",
    ),
    releaseScanClaim: q<[string]>("UPDATE files SET scan_claim_until = NULL WHERE id = ? AND scan_state = 'scanning'"),
    finishScan: q<[string, string]>("UPDATE files SET scan_state = ?, scan_claim_until = NULL WHERE id = ? AND scan_state = 'scanning'"),
    filesToScan: q<[number, number]>(
      `SELECT * FROM files WHERE scan_state = 'scanning' AND (scan_claim_until IS NULL OR scan_claim_until <= ?)
       ORDER BY confirmed_at, id LIMIT ?`,
    ),
    pendingOfHolder: q<[string, string, number]>(
      `SELECT COUNT(*) AS files, COALESCE(SUM(size), 0) AS bytes FROM files
       WHERE dropzone_id = ? AND pending_holder = ? AND status = 'pending' AND pending_expires_at > ?`,
    ),
    setMultipartUpload: q<[string, string]>(
      "UPDATE files SET multipart_upload_id = ? WHERE id = ? AND status = 'pending' AND multipart_upload_id IS NULL",
    ),
    clearMultipartUpload: q<[string, string]>('UPDATE files SET multipart_upload_id = NULL WHERE id = ? AND multipart_upload_id = ?'),
    extendPending: q<[number, string, number]>(
      "UPDATE files SET pending_expires_at = ? WHERE id = ? AND status = 'pending' AND pending_expires_at < ?",
    ),
    deleteFile: q<[string]>('DELETE FROM files WHERE id = ?'),
    stalePending: q<[number]>("SELECT * FROM files WHERE status = 'pending' AND pending_expires_at <= ? LIMIT 500"),
    fileTotals: q<[]>('SELECT status, COUNT(*) AS files, COALESCE(SUM(size), 0) AS bytes FROM files GROUP BY status'),
    dropzoneTotals: q<[]>('SELECT COUNT(*) AS dropzones, COALESCE(SUM(max_size), 0) AS capacity FROM dropzones'),

    grantsOn: q<[ResourceType, string]>(
      'SELECT principal, permission FROM permissions WHERE resource_type = ? AND resource_id = ? ORDER BY principal, permission',
    ),
    grantsOnAfter: q(
      `SELECT principal, permission FROM permissions WHERE resource_type = @type AND resource_id = @id
         AND (principal, permission) > (@principal, @permission)
       ORDER BY principal, permission LIMIT @limit`,
    ),
    grantsFor: q<[ResourceType, string, string]>(
      "SELECT permission FROM permissions WHERE resource_type = ? AND resource_id = ? AND principal IN (?, 'anyone')",
    ),
    grantsForAnyone: q<[ResourceType, string]>(
      "SELECT permission FROM permissions WHERE resource_type = ? AND resource_id = ? AND principal = 'anyone'",
    ),
    insertGrant: q<[ResourceType, string, string, string, number]>(
      'INSERT OR IGNORE INTO permissions (resource_type, resource_id, principal, permission, created_at) VALUES (?, ?, ?, ?, ?)',
    ),
    deleteGrant: q<[ResourceType, string, string, string]>(
      'DELETE FROM permissions WHERE resource_type = ? AND resource_id = ? AND principal = ? AND permission = ?',
    ),
    deleteGrantsOn: q<[ResourceType, string]>('DELETE FROM permissions WHERE resource_type = ? AND resource_id = ?'),

    queueBlobDeletion: q<[string, number, number]>(
      `INSERT INTO blob_deletions (blob_key, queued_at, not_before) VALUES (?, ?, ?)
       ON CONFLICT(blob_key) DO UPDATE SET not_before = MAX(not_before, excluded.not_before)`,
    ),
    blobDeletionsDue: q(
      `SELECT blob_key, queued_at, not_before FROM blob_deletions
       WHERE (not_before <= @now OR tries = 0) AND (queued_at, blob_key) > (@afterAt, @afterKey)
       ORDER BY queued_at, blob_key LIMIT @limit`,
    ),
    markBlobDeletionTried: q<[string]>('UPDATE blob_deletions SET tries = tries + 1 WHERE blob_key = ?'),
    dequeueBlobDeletion: q<[string]>('DELETE FROM blob_deletions WHERE blob_key = ?'),

    acquireLease: q(
      `INSERT INTO leases (name, holder, expires_at) VALUES (@name, @holder, @until)
       ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.holder = excluded.holder OR leases.expires_at <= @now`,
    ),
    releaseLease: q<[string, string]>('DELETE FROM leases WHERE name = ? AND holder = ?'),
  };

  return {
    db: db as Db,
    getSetting: (key: string) => (s.getSetting.get(key) as { value: string } | undefined)?.value,
    setSetting: (key: string, value: string) => void s.setSetting.run(key, value),
    /** Stores `value` unless `key` has one; answers the stored value (the first writer wins). */
    initSetting: (key: string, value: string) => {
      s.initSetting.run(key, value);
      return (s.getSetting.get(key) as { value: string }).value;
    },

    keyByHash: (hash: string) => opt(keyRowOf, s.keyByHash.get(hash) as unknown[] | undefined),
    keyByPublicId: (publicId: string) => opt(keyRowOf, s.keyByPublicId.get(publicId) as unknown[] | undefined),
    keyById: (id: number) => opt(keyRowOf, s.keyById.get(id) as unknown[] | undefined),
    adminKey: () => opt(keyRowOf, s.adminKey.get() as unknown[] | undefined),
    listKeys: () => s.listKeys.all() as ApiKeyRow[],
    insertKey: (row: Omit<ApiKeyRow, 'id' | 'revoked_at'>) => Number(s.insertKey.run(row).lastInsertRowid),
    /** Inserts an admin key unless an active admin exists; answers the new id, or undefined when one existed. */
    insertAdminKey: (row: Omit<ApiKeyRow, 'id' | 'revoked_at' | 'is_admin'>) => {
      const r = s.insertAdminKey.run(row);
      return r.changes > 0 ? Number(r.lastInsertRowid) : undefined;
    },
    revokeKey: (publicId: string, at: number) => s.revokeKey.run(at, publicId).changes > 0,
    setKeySecret: (id: number, hash: string) => void s.setKeySecret.run(hash, id),
    setKeyBalance: (id: number, micro: number | null) => void s.setKeyBalance.run(micro, id),
    /** Debits `micro` when the balance allows; unlimited keys are not touched. Returns false when the balance is short. */
    debitKey: (id: number, micro: number) => s.debitKey.run(micro, id, micro).changes > 0,
    creditKey: (id: number, micro: number) => void s.creditKey.run(micro, id),

    dropzoneById: (id: string) => opt(dropzoneRowOf, s.dropzoneById.get(id) as unknown[] | undefined),
    /** The dropzone named by its `_id` or its `shareId` (paths accept both; only the `_id` is a credential). */
    dropzoneByRef: (ref: string) => opt(dropzoneRowOf, (s.dropzoneById.get(ref) ?? s.dropzoneByShareId.get(ref)) as unknown[] | undefined),
    dropzoneByCode: (code: string) => opt(dropzoneRowOf, s.dropzoneByCode.get(code) as unknown[] | undefined),
    dropzoneByOwnerName: (ownerId: number, name: string) => s.dropzoneByOwnerName.get(ownerId, name) as DropzoneRow | undefined,
    dropzonesForKey: (keyId: number, publicId: string) => s.dropzonesForKey.all({ keyId, publicId }) as DropzoneRow[],
    allDropzones: () => s.allDropzones.all() as DropzoneRow[],
    /** A page of {@link dropzonesForKey}: at most `limit` rows after (created_at, id) `after`; the filter is in the query. */
    dropzonesForKeyAfter: (keyId: number, publicId: string, after: Pick<DropzoneRow, 'created_at' | 'id'> | undefined, limit: number) =>
      s.dropzonesForKeyAfter.all({ keyId, publicId, createdAt: after?.created_at ?? -Number.MAX_SAFE_INTEGER, id: after?.id ?? '', limit }) as DropzoneRow[],
    /** A page of {@link allDropzones}: at most `limit` rows after (created_at, id) `after`. */
    allDropzonesAfter: (after: Pick<DropzoneRow, 'created_at' | 'id'> | undefined, limit: number) =>
      s.allDropzonesAfter.all({ createdAt: after?.created_at ?? -Number.MAX_SAFE_INTEGER, id: after?.id ?? '', limit }) as DropzoneRow[],
    /**
     * Inserts a dropzone; false (nothing inserted) when its owner already has a dropzone of that name alive at
     * `created_at`. The owner's expired dropzones of that name give the name up first (the unique index on
     * live names decides, so concurrent writers cannot both win).
     */
    insertDropzone: (row: Omit<DropzoneRow, 'used_space' | 'file_count'>) => {
      if (row.name !== null && row.owner_key_id !== null) s.releaseExpiredName.run({ owner_key_id: row.owner_key_id, name: row.name, created_at: row.created_at });
      return s.insertDropzone.run(row).changes > 0;
    },
    updateDropzoneSize: (row: Pick<DropzoneRow, 'id' | 'size_gb' | 'days' | 'max_size' | 'max_file_size' | 'delete_time' | 'updated_at'>) =>
      void s.updateDropzoneSize.run(row),
    /**
     * Reserves room for one file: adds `bytes` to used_space and 1 to file_count, only if used_space stays within
     * max_size, file_count below `maxFiles` and the dropzone has not expired at `now`. One conditional UPDATE, so
     * concurrent reservations cannot overshoot either limit.
     */
    reserveSpace: (id: string, bytes: number, now: number, maxFiles: number) => s.reserveSpace.run({ bytes, id, now, maxFiles }).changes > 0,
    /** Releases one file's reservation: `bytes` from used_space and 1 from file_count. */
    releaseSpace: (id: string, bytes: number) => void s.releaseSpace.run(bytes, id),
    deleteDropzone: (id: string) => void s.deleteDropzone.run(id),
    /** Ends a dropzone's life now (delete_time = min(delete_time, at)): no upload can be reserved in it any more. */
    closeDropzone: (id: string, at: number) => void s.closeDropzone.run(at, id),
    /** Every grant on every resource (fixture reset). */
    deleteAllGrants: () => void s.deleteAllGrants.run(),
    /** Every API key but the admin's (fixture reset). */
    deleteNonAdminKeys: () => void s.deleteNonAdminKeys.run(),
    expiredDropzones: (now: number) => s.expiredDropzones.all(now) as DropzoneRow[],

    fileById: (id: string) => s.fileById.get(id) as FileRow | undefined,
    fileByBlobKey: (key: string) => s.fileByBlobKey.get(key) as FileRow | undefined,
    /**
     * At most `limit` files of a dropzone (only uploaded ones with `uploadedOnly`) that come after `after` in the
     * order (created_at, id); from the start without `after`. Keyset pagination, for walks in bounded batches.
     */
    filesOfDropzoneAfter: (
      dropzoneId: string,
      after: Pick<FileRow, 'created_at' | 'id'> | undefined,
      limit: number,
      uploadedOnly = false,
    ) =>
      s.filesOfDropzoneAfter.all({
        dropzoneId,
        uploadedOnly: uploadedOnly ? 1 : 0,
        createdAt: after?.created_at ?? -Number.MAX_SAFE_INTEGER,
        id: after?.id ?? '',
        limit,
      }) as FileRow[],
    insertFile: (
      row: Pick<FileRow, 'id' | 'dropzone_id' | 'name' | 'type' | 'size' | 'blob_key' | 'uploader_key_id' | 'created_at' | 'pending_expires_at'> &
        Partial<Pick<FileRow, 'pending_holder'>>,
    ) => void s.insertFile.run({ pending_holder: null, ...row }),
    markUploaded: (id: string, etag: string, at: number, scanState: string | null = null) => s.markUploaded.run(etag, at, scanState, id).changes > 0,
    /** Claims a scanning file's scan until `until` when nobody holds it at `now`; false otherwise. */
    claimScan: (id: string, now: number, until: number) => s.claimScan.run(until, id, now).changes > 0,
    releaseScanClaim: (id: string) => void s.releaseScanClaim.run(id),
    /** Sets the verdict of a file still scanning; false otherwise. */
    finishScan: (id: string, state: string) => s.finishScan.run(state, id).changes > 0,
    /** Scanning files nobody holds a claim on at `now`, earliest confirmed first. */
    filesToScan: (now: number, limit: number) => s.filesToScan.all(now, limit) as FileRow[],
    /** Pending uploads of `holder` in a dropzone that have not expired at `now`: how many, and their reserved bytes. */
    pendingOfHolder: (dropzoneId: string, holder: string, now: number) =>
      s.pendingOfHolder.get(dropzoneId, holder, now) as { files: number; bytes: number },
    /** Moves a pending file's expiry forward to `until` (never backward); false when it is no longer pending. */
    setMultipartUpload: (id: string, uploadId: string) => s.setMultipartUpload.run(uploadId, id).changes > 0,
    clearMultipartUpload: (id: string, uploadId: string) => s.clearMultipartUpload.run(id, uploadId).changes > 0,
    extendPending: (id: string, until: number) => s.extendPending.run(until, id, until).changes > 0,
    deleteFile: (id: string) => s.deleteFile.run(id).changes > 0,
    stalePending: (now: number) => s.stalePending.all(now) as FileRow[],
    /** Number and bytes of files per status (one aggregate query; statuses without files are absent). */
    fileTotals: () => s.fileTotals.all() as { status: FileRow['status']; files: number; bytes: number }[],
    /** Number of dropzones and the sum of their sizes in bytes (one aggregate query). */
    dropzoneTotals: () => s.dropzoneTotals.get() as { dropzones: number; capacity: number },

    grantsOn: (type: ResourceType, id: string) => s.grantsOn.all(type, id) as { principal: string; permission: string }[],
    /** A page of {@link grantsOn}: at most `limit` grants after (principal, permission) `after`. */
    grantsOnAfter: (type: ResourceType, id: string, after: { principal: string; permission: string } | undefined, limit: number) =>
      s.grantsOnAfter.all({ type, id, principal: after?.principal ?? '', permission: after?.permission ?? '', limit }) as { principal: string; permission: string }[],
    grantsFor: (type: ResourceType, id: string, publicId: string) => (s.grantsFor.pluck().all(type, id, publicId) as string[]),
    grantsForAnyone: (type: ResourceType, id: string) => s.grantsForAnyone.pluck().all(type, id) as string[],
    insertGrant: (type: ResourceType, id: string, principal: string, permission: string, at: number) =>
      void s.insertGrant.run(type, id, principal, permission, at),
    deleteGrant: (type: ResourceType, id: string, principal: string, permission: string) =>
      void s.deleteGrant.run(type, id, principal, permission),
    deleteGrantsOn: (type: ResourceType, id: string) => void s.deleteGrantsOn.run(type, id),

    /**
     * Queues `key` for deletion; it stays queued (deleted again by later drains) until `notBefore` (default `at`).
     * Queuing a queued key again keeps the later `notBefore`.
     */
    queueBlobDeletion: (key: string, at: number, notBefore = at) => void s.queueBlobDeletion.run(key, at, notBefore),
    /**
     * Up to `limit` queued deletions to do at `now` (due ones, and never-tried ones even before their `not_before`),
     * in queue order after the cursor `(afterAt, afterKey)`, so a drain visits each row once.
     */
    blobDeletionsDue: (now: number, after: { at: number; key: string }, limit: number) =>
      s.blobDeletionsDue.all({ now, afterAt: after.at, afterKey: after.key, limit }) as { blob_key: string; queued_at: number; not_before: number }[],
    /** Records one deletion of a queued key that must stay queued until its `not_before`. */
    markBlobDeletionTried: (key: string) => void s.markBlobDeletionTried.run(key),
    dequeueBlobDeletion: (key: string) => void s.dequeueBlobDeletion.run(key),

    /** Takes or renews the lease `name` for `holder` until `now + ttlMs`; true when `holder` holds it afterwards. */
    acquireLease: (name: string, holder: string, now: number, ttlMs: number) => s.acquireLease.run({ name, holder, now, until: now + ttlMs }).changes > 0,
    releaseLease: (name: string, holder: string) => void s.releaseLease.run(name, holder),
  };
}

/** The data-access object built by {@link createRepositories}. */
export type Repositories = ReturnType<typeof createRepositories>;

/** Columns of `events` under the port's names (JSON columns parsed by the caller). */
const EVENT_COLS = `seq, id, type, created_at AS createdAt, dropzone_id AS dropzoneId, share_id AS shareId, file_id AS fileId,
  actor, owner, audience, data, dispatched_at AS dispatchedAt`;
const WEBHOOK_COLS = 'id, key_id AS keyId, url, events, secret, created_at AS createdAt';
const DELIVERY_COLS = `id, webhook_id AS webhookId, event_id AS eventId, body, status, attempts, next_attempt_at AS nextAttemptAt,
  created_at AS createdAt, updated_at AS updatedAt`;
const ATTEMPT_COLS = `delivery_id AS deliveryId, webhook_id AS webhookId, event_id AS eventId, at, status_code AS statusCode, error,
  latency_ms AS latencyMs`;

/**
 * Prepared statements of the events outbox and webhooks (migration 9), answering the port's types. Pure data access.
 */
export function createEventRepositories(db: Db) {
  const q = <P extends unknown[] = unknown[]>(sql: string) => db.prepare<P>(sql);
  const s = {
    insertEvent: q(
      `INSERT INTO events (id, type, created_at, dropzone_id, share_id, file_id, actor, owner, audience, data)
       VALUES (@id, @type, @createdAt, @dropzoneId, @shareId, @fileId, @actor, @owner, @audience, @data)`,
    ),
    undispatchedEvents: q<[number]>(`SELECT ${EVENT_COLS} FROM events WHERE dispatched_at IS NULL ORDER BY seq LIMIT ?`),
    markEventDispatched: q<[number, number]>('UPDATE events SET dispatched_at = ? WHERE seq = ?'),
    insertWebhook: q(
      'INSERT INTO webhooks (id, key_id, url, events, secret, created_at) VALUES (@id, @keyId, @url, @events, @secret, @createdAt)',
    ),
    webhookById: q<[string]>(`SELECT ${WEBHOOK_COLS} FROM webhooks WHERE id = ?`),
    webhooksOfKey: q<[number]>(`SELECT ${WEBHOOK_COLS} FROM webhooks WHERE key_id = ? ORDER BY created_at, id`),
    allWebhooks: q<[]>(`SELECT ${WEBHOOK_COLS} FROM webhooks ORDER BY created_at, id`),
    updateWebhook: q('UPDATE webhooks SET url = @url, events = @events WHERE id = @id'),
    deleteAttemptsOf: q<[string]>('DELETE FROM webhook_attempts WHERE webhook_id = ?'),
    deleteDeliveriesOf: q<[string]>('DELETE FROM webhook_deliveries WHERE webhook_id = ?'),
    deleteWebhook: q<[string]>('DELETE FROM webhooks WHERE id = ?'),
    insertDelivery: q(
      `INSERT INTO webhook_deliveries (id, webhook_id, event_id, body, status, attempts, next_attempt_at, created_at, updated_at)
       VALUES (@id, @webhookId, @eventId, @body, @status, @attempts, @nextAttemptAt, @createdAt, @createdAt)`,
    ),
    dueDeliveries: q<[number, number]>(
      `SELECT ${DELIVERY_COLS} FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`,
    ),
    updateDelivery: q(
      'UPDATE webhook_deliveries SET status = @status, attempts = @attempts, next_attempt_at = @nextAttemptAt, updated_at = @at WHERE id = @deliveryId',
    ),
    insertAttempt: q(
      `INSERT INTO webhook_attempts (delivery_id, webhook_id, event_id, at, status_code, error, latency_ms)
       SELECT @deliveryId, @webhookId, @eventId, @at, @statusCode, @error, @latencyMs WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = @webhookId)`,
    ),
    webhookAttempts: q<[string, number]>(`SELECT ${ATTEMPT_COLS} FROM webhook_attempts WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`),
    pruneDeliveries: q<[number]>(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < ?`),
    pruneAttempts: q<[number]>('DELETE FROM webhook_attempts WHERE at < ?'),
    pruneEvents: q<[number]>('DELETE FROM events WHERE dispatched_at IS NOT NULL AND dispatched_at < ?'),
  };
  // multi-statement changes run as one transaction (a savepoint inside an open one)
  const deleteWebhook = db.transaction((id: string) => {
    s.deleteAttemptsOf.run(id);
    s.deleteDeliveriesOf.run(id);
    return s.deleteWebhook.run(id).changes > 0;
  });
  const recordAttempt = db.transaction((a: WebhookAttempt, next: Pick<WebhookDelivery, 'status' | 'attempts' | 'nextAttemptAt'>) => {
    s.updateDelivery.run({ ...next, at: a.at, deliveryId: a.deliveryId });
    s.insertAttempt.run(a);
  });
  const pruneWebhookData = db.transaction(
    (before: number) => s.pruneDeliveries.run(before).changes + s.pruneAttempts.run(before).changes + s.pruneEvents.run(before).changes,
  );
  type Raw = Record<string, unknown>;
  const toEvent = (r: Raw) => ({ ...r, audience: JSON.parse(r.audience as string), data: JSON.parse(r.data as string) });
  const toWebhook = (r: Raw) => ({ ...r, events: JSON.parse(r.events as string) });
  return {
    insertEvent: (e: NewEvent) => void s.insertEvent.run({ ...e, audience: JSON.stringify(e.audience), data: JSON.stringify(e.data) }),
    undispatchedEvents: (limit: number) => (s.undispatchedEvents.all(limit) as Raw[]).map(toEvent) as StoredEvent[],
    markEventDispatched: (seq: number, at: number) => void s.markEventDispatched.run(at, seq),
    insertWebhook: (w: Webhook) => void s.insertWebhook.run({ ...w, events: JSON.stringify(w.events) }),
    webhookById: (id: string) => {
      const r = s.webhookById.get(id) as Raw | undefined;
      return r && (toWebhook(r) as Webhook);
    },
    listWebhooks: (keyId?: number) => ((keyId === undefined ? s.allWebhooks.all() : s.webhooksOfKey.all(keyId)) as Raw[]).map(toWebhook) as Webhook[],
    updateWebhook: (id: string, c: Pick<Webhook, 'url' | 'events'>) => s.updateWebhook.run({ id, url: c.url, events: JSON.stringify(c.events) }).changes > 0,
    deleteWebhook: (id: string): boolean => deleteWebhook(id),
    insertDelivery: (d: Omit<WebhookDelivery, 'updatedAt'>) => void s.insertDelivery.run(d),
    dueDeliveries: (now: number, limit: number) => s.dueDeliveries.all(now, limit) as WebhookDelivery[],
    recordAttempt: (a: WebhookAttempt, next: Pick<WebhookDelivery, 'status' | 'attempts' | 'nextAttemptAt'>): void => recordAttempt(a, next),
    webhookAttempts: (webhookId: string, limit: number) => s.webhookAttempts.all(webhookId, limit) as WebhookAttempt[],
    pruneWebhookData: (before: number): number => pruneWebhookData(before),
  };
}
