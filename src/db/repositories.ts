import type { Db } from './database.js';

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
}

/** Resource kinds that carry permissions. */
export type ResourceType = 'dropzone' | 'file';

/**
 * Prepared statements over the schema of `migrations.ts`. Pure data access: no rules, no HTTP.
 * Multi-step changes are composed by callers inside `db.transaction`.
 */
export function createRepositories(db: Db) {
  const q = <P extends unknown[] = unknown[]>(sql: string) => db.prepare<P>(sql);

  const s = {
    getSetting: q<[string]>('SELECT value FROM settings WHERE key = ?'),
    setSetting: q<[string, string]>('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),

    keyByHash: q<[string]>('SELECT * FROM api_keys WHERE secret_hash = ? AND revoked_at IS NULL'),
    keyByPublicId: q<[string]>('SELECT * FROM api_keys WHERE public_id = ?'),
    keyById: q<[number]>('SELECT * FROM api_keys WHERE id = ?'),
    adminKey: q<[]>('SELECT * FROM api_keys WHERE is_admin = 1 AND revoked_at IS NULL ORDER BY id LIMIT 1'),
    listKeys: q<[]>('SELECT * FROM api_keys ORDER BY id'),
    insertKey: q(
      `INSERT INTO api_keys (public_id, secret_hash, name, balance_micro, permissions, is_admin, created_by, created_at)
       VALUES (@public_id, @secret_hash, @name, @balance_micro, @permissions, @is_admin, @created_by, @created_at)`,
    ),
    revokeKey: q<[number, string]>('UPDATE api_keys SET revoked_at = ? WHERE public_id = ? AND revoked_at IS NULL'),
    setKeySecret: q<[string, number]>('UPDATE api_keys SET secret_hash = ? WHERE id = ?'),
    setKeyBalance: q<[number | null, number]>('UPDATE api_keys SET balance_micro = ? WHERE id = ?'),
    debitKey: q<[number, number, number]>(
      'UPDATE api_keys SET balance_micro = balance_micro - ? WHERE id = ? AND balance_micro IS NOT NULL AND balance_micro >= ?',
    ),
    creditKey: q<[number, number]>('UPDATE api_keys SET balance_micro = balance_micro + ? WHERE id = ? AND balance_micro IS NOT NULL'),

    dropzoneById: q<[string]>('SELECT * FROM dropzones WHERE id = ?'),
    dropzoneByShareId: q<[string]>('SELECT * FROM dropzones WHERE share_id = ?'),
    dropzoneByCode: q<[string]>('SELECT * FROM dropzones WHERE code = ?'),
    dropzoneByOwnerName: q<[number, string]>('SELECT * FROM dropzones WHERE owner_key_id = ? AND name = ? ORDER BY created_at DESC, id DESC LIMIT 1'),
    dropzonesForKey: q(
      `SELECT * FROM dropzones WHERE owner_key_id = @keyId OR id IN (
         SELECT resource_id FROM permissions WHERE resource_type = 'dropzone' AND principal = @publicId
           AND permission IN ('dropzone.get', 'dropzone.own'))
       ORDER BY created_at, id`,
    ),
    allDropzones: q<[]>('SELECT * FROM dropzones ORDER BY created_at, id'),
    insertDropzone: q(
      `INSERT INTO dropzones (id, share_id, code, name, owner_key_id, tier, hidden, size_gb, days, max_size, max_file_size, used_space, start_time, delete_time, created_at, updated_at)
       VALUES (@id, @share_id, @code, @name, @owner_key_id, @tier, @hidden, @size_gb, @days, @max_size, @max_file_size, 0, @start_time, @delete_time, @created_at, @updated_at)`,
    ),
    updateDropzoneSize: q(
      `UPDATE dropzones SET size_gb = @size_gb, days = @days, max_size = @max_size, max_file_size = @max_file_size,
         delete_time = @delete_time, updated_at = @updated_at WHERE id = @id`,
    ),
    reserveSpace: q(
      'UPDATE dropzones SET used_space = used_space + @bytes WHERE id = @id AND used_space + @bytes <= max_size AND @now < delete_time',
    ),
    releaseSpace: q<[number, string]>('UPDATE dropzones SET used_space = MAX(0, used_space - ?) WHERE id = ?'),
    deleteDropzone: q<[string]>('DELETE FROM dropzones WHERE id = ?'),
    expiredDropzones: q<[number]>('SELECT * FROM dropzones WHERE delete_time <= ? ORDER BY delete_time LIMIT 100'),

    fileById: q<[string]>('SELECT * FROM files WHERE id = ?'),
    fileByBlobKey: q<[string]>('SELECT * FROM files WHERE blob_key = ?'),
    filesOfDropzone: q<[string]>('SELECT * FROM files WHERE dropzone_id = ? ORDER BY created_at, id'),
    uploadedFilesOfDropzone: q<[string]>("SELECT * FROM files WHERE dropzone_id = ? AND status = 'uploaded' ORDER BY created_at, id"),
    insertFile: q(
      `INSERT INTO files (id, dropzone_id, name, type, size, blob_key, status, uploader_key_id, created_at, pending_expires_at)
       VALUES (@id, @dropzone_id, @name, @type, @size, @blob_key, 'pending', @uploader_key_id, @created_at, @pending_expires_at)`,
    ),
    markUploaded: q<[string, number, string]>(
      "UPDATE files SET status = 'uploaded', etag = ?, confirmed_at = ?, pending_expires_at = NULL WHERE id = ? AND status = 'pending'",
    ),
    deleteFile: q<[string]>('DELETE FROM files WHERE id = ?'),
    stalePending: q<[number]>("SELECT * FROM files WHERE status = 'pending' AND pending_expires_at <= ? LIMIT 500"),
    allBlobKeys: q<[]>('SELECT blob_key FROM files'),
    fileTotals: q<[]>('SELECT status, COUNT(*) AS files, COALESCE(SUM(size), 0) AS bytes FROM files GROUP BY status'),
    dropzoneTotals: q<[]>('SELECT COUNT(*) AS dropzones, COALESCE(SUM(max_size), 0) AS capacity FROM dropzones'),

    grantsOn: q<[ResourceType, string]>(
      'SELECT principal, permission FROM permissions WHERE resource_type = ? AND resource_id = ? ORDER BY principal, permission',
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
    deleteFileGrantsOfDropzone: q<[string]>(
      "DELETE FROM permissions WHERE resource_type = 'file' AND resource_id IN (SELECT id FROM files WHERE dropzone_id = ?)",
    ),

    queueBlobDeletion: q<[string, number]>('INSERT OR IGNORE INTO blob_deletions (blob_key, queued_at) VALUES (?, ?)'),
    queuedBlobDeletions: q<[]>('SELECT blob_key FROM blob_deletions ORDER BY queued_at LIMIT 500'),
    dequeueBlobDeletion: q<[string]>('DELETE FROM blob_deletions WHERE blob_key = ?'),
  };

  return {
    db: db as Db,
    getSetting: (key: string) => (s.getSetting.get(key) as { value: string } | undefined)?.value,
    setSetting: (key: string, value: string) => void s.setSetting.run(key, value),

    keyByHash: (hash: string) => s.keyByHash.get(hash) as ApiKeyRow | undefined,
    keyByPublicId: (publicId: string) => s.keyByPublicId.get(publicId) as ApiKeyRow | undefined,
    keyById: (id: number) => s.keyById.get(id) as ApiKeyRow | undefined,
    adminKey: () => s.adminKey.get() as ApiKeyRow | undefined,
    listKeys: () => s.listKeys.all() as ApiKeyRow[],
    insertKey: (row: Omit<ApiKeyRow, 'id' | 'revoked_at'>) => Number(s.insertKey.run(row).lastInsertRowid),
    revokeKey: (publicId: string, at: number) => s.revokeKey.run(at, publicId).changes > 0,
    setKeySecret: (id: number, hash: string) => void s.setKeySecret.run(hash, id),
    setKeyBalance: (id: number, micro: number | null) => void s.setKeyBalance.run(micro, id),
    /** Debits `micro` when the balance allows; unlimited keys are not touched. Returns false when the balance is short. */
    debitKey: (id: number, micro: number) => s.debitKey.run(micro, id, micro).changes > 0,
    creditKey: (id: number, micro: number) => void s.creditKey.run(micro, id),

    dropzoneById: (id: string) => s.dropzoneById.get(id) as DropzoneRow | undefined,
    /** The dropzone named by its `_id` or its `shareId` (paths accept both; only the `_id` is a credential). */
    dropzoneByRef: (ref: string) => (s.dropzoneById.get(ref) ?? s.dropzoneByShareId.get(ref)) as DropzoneRow | undefined,
    dropzoneByCode: (code: string) => s.dropzoneByCode.get(code) as DropzoneRow | undefined,
    dropzoneByOwnerName: (ownerId: number, name: string) => s.dropzoneByOwnerName.get(ownerId, name) as DropzoneRow | undefined,
    dropzonesForKey: (keyId: number, publicId: string) => s.dropzonesForKey.all({ keyId, publicId }) as DropzoneRow[],
    allDropzones: () => s.allDropzones.all() as DropzoneRow[],
    insertDropzone: (row: Omit<DropzoneRow, 'used_space'>) => void s.insertDropzone.run(row),
    updateDropzoneSize: (row: Pick<DropzoneRow, 'id' | 'size_gb' | 'days' | 'max_size' | 'max_file_size' | 'delete_time' | 'updated_at'>) =>
      void s.updateDropzoneSize.run(row),
    /** Adds `bytes` to used_space only if it stays within max_size and the dropzone has not expired at `now`. */
    reserveSpace: (id: string, bytes: number, now: number) => s.reserveSpace.run({ bytes, id, now }).changes > 0,
    releaseSpace: (id: string, bytes: number) => void s.releaseSpace.run(bytes, id),
    deleteDropzone: (id: string) => void s.deleteDropzone.run(id),
    expiredDropzones: (now: number) => s.expiredDropzones.all(now) as DropzoneRow[],

    fileById: (id: string) => s.fileById.get(id) as FileRow | undefined,
    fileByBlobKey: (key: string) => s.fileByBlobKey.get(key) as FileRow | undefined,
    filesOfDropzone: (dropzoneId: string) => s.filesOfDropzone.all(dropzoneId) as FileRow[],
    uploadedFilesOfDropzone: (dropzoneId: string) => s.uploadedFilesOfDropzone.all(dropzoneId) as FileRow[],
    insertFile: (row: Pick<FileRow, 'id' | 'dropzone_id' | 'name' | 'type' | 'size' | 'blob_key' | 'uploader_key_id' | 'created_at' | 'pending_expires_at'>) =>
      void s.insertFile.run(row),
    markUploaded: (id: string, etag: string, at: number) => s.markUploaded.run(etag, at, id).changes > 0,
    deleteFile: (id: string) => void s.deleteFile.run(id),
    stalePending: (now: number) => s.stalePending.all(now) as FileRow[],
    /** Every blob key that still has a row (for garbage collection). */
    allBlobKeys: () => new Set(s.allBlobKeys.pluck().all() as string[]),
    /** Number and bytes of files per status (one aggregate query; statuses without files are absent). */
    fileTotals: () => s.fileTotals.all() as { status: FileRow['status']; files: number; bytes: number }[],
    /** Number of dropzones and the sum of their sizes in bytes (one aggregate query). */
    dropzoneTotals: () => s.dropzoneTotals.get() as { dropzones: number; capacity: number },

    grantsOn: (type: ResourceType, id: string) => s.grantsOn.all(type, id) as { principal: string; permission: string }[],
    grantsFor: (type: ResourceType, id: string, publicId: string) => (s.grantsFor.pluck().all(type, id, publicId) as string[]),
    grantsForAnyone: (type: ResourceType, id: string) => s.grantsForAnyone.pluck().all(type, id) as string[],
    insertGrant: (type: ResourceType, id: string, principal: string, permission: string, at: number) =>
      void s.insertGrant.run(type, id, principal, permission, at),
    deleteGrant: (type: ResourceType, id: string, principal: string, permission: string) =>
      void s.deleteGrant.run(type, id, principal, permission),
    deleteGrantsOn: (type: ResourceType, id: string) => void s.deleteGrantsOn.run(type, id),
    deleteFileGrantsOfDropzone: (dropzoneId: string) => void s.deleteFileGrantsOfDropzone.run(dropzoneId),

    queueBlobDeletion: (key: string, at: number) => void s.queueBlobDeletion.run(key, at),
    queuedBlobDeletions: () => s.queuedBlobDeletions.pluck().all() as string[],
    dequeueBlobDeletion: (key: string) => void s.dequeueBlobDeletion.run(key),
  };
}

/** The data-access object built by {@link createRepositories}. */
export type Repositories = ReturnType<typeof createRepositories>;
