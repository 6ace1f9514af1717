import type { PresignedRequest } from '../blobs/blob-store.js';
import type { DropzoneRow, FileRow } from '../db/repositories.js';
import type { CoreDeps } from './deps.js';
import { flushBlobDeletions } from './dropzones.js';
import { AppError } from './errors.js';
import { newBlobKey, newFileId } from './ids.js';
import { type FilePermission, type Principal, filePermissions, invisible, requirePermission } from './permissions.js';

/** Longest lifetime of an S3 upload URL that cannot be made conditional (`storage.s3.conditionalWrites = false`). */
export const UNCONDITIONAL_URL_TTL_SECONDS = 900;

/** What a client declares before uploading. */
export interface UploadRequestInput {
  name: string;
  type: string;
  size: number;
}

/** Files: reserving space and handing out upload URLs, confirming, deleting, and the pending-upload lifecycle. */
export function createFileService(deps: CoreDeps) {
  const { repo, clock, config, blobs, log } = deps;
  const db = repo.db;
  const notFound = () => new AppError('FILE_NOT_FOUND');

  /** Removes a file row, its grants and its reserved bytes, and queues its blob; one transaction. */
  const removeRow = (file: FileRow) =>
    db.transaction(() => {
      repo.deleteGrantsOn('file', file.id);
      repo.deleteFile(file.id);
      repo.releaseSpace(file.dropzone_id, file.size);
      repo.queueBlobDeletion(file.blob_key, clock.now());
    })();

  const service = {
    /**
     * Loads a file with its dropzone and checks `permission`. Invisible files are 404 (401 without credentials).
     * With `dropzoneId` auth the file must belong to that dropzone.
     */
    get(p: Principal, fileId: string, permission: FilePermission): { file: FileRow; dz: DropzoneRow } {
      const file = repo.fileById(fileId);
      const dz = file && repo.dropzoneById(file.dropzone_id);
      if (!file || !dz) throw invisible(p, notFound());
      requirePermission(p, filePermissions(repo, p, file, dz), permission, notFound());
      return { file, dz };
    },

    /**
     * Reserves `size` bytes in `dz` atomically and creates a pending file with a presigned upload URL.
     * Throws DROPZONE_EXPIRED (410), FILE_TOO_LARGE (413, over maxFileSize), DROPZONE_FULL (413, not enough room left).
     * The caller has checked `dropzone.upload`.
     */
    async requestUpload(p: Principal, dz: DropzoneRow, input: UploadRequestInput): Promise<{ file: FileRow; upload: PresignedRequest }> {
      const file = db.transaction(() => {
        const now = clock.now();
        const cur = repo.dropzoneById(dz.id);
        if (!cur) throw new AppError('DROPZONE_NOT_FOUND');
        if (cur.delete_time <= now) throw new AppError('DROPZONE_EXPIRED');
        if (input.size > cur.max_file_size)
          throw new AppError('FILE_TOO_LARGE', `File size ${input.size} exceeds the maximum file size of ${cur.max_file_size} bytes.`, {
            field: 'size',
            maxFileSize: cur.max_file_size,
          });
        if (!repo.reserveSpace(cur.id, input.size, now)) {
          const left = Math.max(0, cur.max_size - cur.used_space);
          throw new AppError('DROPZONE_FULL', `Not enough space left in the dropzone: ${input.size} bytes requested, ${left} available.`, {
            field: 'size',
            available: left,
          });
        }
        const id = newFileId();
        repo.insertFile({
          id,
          dropzone_id: cur.id,
          name: input.name,
          type: input.type,
          size: input.size,
          blob_key: newBlobKey(),
          uploader_key_id: p.key?.id ?? null,
          created_at: now,
          pending_expires_at: now + config.uploads.pendingTtlSeconds * 1000,
        });
        return repo.fileById(id)!;
      })();
      try {
        const upload = await blobs.presignPut({
          key: file.blob_key,
          size: file.size,
          contentType: file.type || undefined,
          expiresInSeconds: Math.min(
            config.uploads.urlTtlSeconds,
            config.uploads.pendingTtlSeconds,
            // without If-None-Match a URL could replace the object after confirm: keep such URLs short-lived
            config.storage.backend === 's3' && !config.storage.s3.conditionalWrites ? UNCONDITIONAL_URL_TTL_SECONDS : Infinity,
          ),
        });
        return { file, upload };
      } catch (err) {
        removeRow(file);
        throw err;
      }
    },

    /**
     * Marks a pending file uploaded once the store holds exactly its declared size; a second confirm returns the file.
     * Not there yet: NOT_UPLOADED (409). Wrong size: the object is deleted, the bytes released, SIZE_MISMATCH (409).
     * Deleted meanwhile: FILE_NOT_FOUND (404).
     */
    async confirm(p: Principal, fileId: string): Promise<FileRow> {
      const { file } = service.get(p, fileId, 'file.upload.confirm');
      if (file.status === 'uploaded') return file;
      if (file.pending_expires_at !== null && file.pending_expires_at <= clock.now()) {
        removeRow(file);
        await flushBlobDeletions(deps);
        throw new AppError('UPLOAD_EXPIRED', 'This upload has expired; request a new upload URL.');
      }
      const stat = await blobs.stat(file.blob_key);
      if (!stat) throw new AppError('NOT_UPLOADED', 'The file has not been uploaded yet: PUT the bytes to the signed URL, then confirm.');
      if (stat.size !== file.size) {
        log.warn('uploaded object has the wrong size; discarding it', { fileId: file.id, declared: file.size, actual: stat.size });
        removeRow(file);
        await flushBlobDeletions(deps);
        throw new AppError('SIZE_MISMATCH', `The uploaded object has ${stat.size} bytes but ${file.size} were declared; it was discarded.`, {
          declared: file.size,
          actual: stat.size,
        });
      }
      // counted only by the confirm that made the change (a concurrent second confirm changes nothing)
      if (repo.markUploaded(file.id, stat.etag, clock.now())) deps.observer?.uploadConfirmed?.(file.size);
      // deleted (file or dropzone) while the store was being checked
      const confirmed = repo.fileById(file.id);
      if (!confirmed) throw notFound();
      return confirmed;
    },

    /** Deletes a file (needs `file.delete`), releasing its bytes and deleting its blob. */
    async remove(p: Principal, fileId: string): Promise<void> {
      const { file } = service.get(p, fileId, 'file.delete');
      removeRow(file);
      await flushBlobDeletions(deps);
    },

    /** Removes a file row without permission checks (sweeper). */
    removeRow,
  };
  return service;
}

/** The service built by {@link createFileService}. */
export type FileService = ReturnType<typeof createFileService>;
