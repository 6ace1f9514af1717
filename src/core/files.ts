import type { Readable } from 'node:stream';
import { BlobNotFoundError, type BlobStat, type BlobStore, type ByteRange, type PresignedRequest } from '../blobs/blob-store.js';
import type { CoreDeps } from './deps.js';
import { flushBlobDeletions, queueFileBlob } from './dropzones.js';
import { AppError } from './errors.js';
import { newBlobKey, newFileId } from './ids.js';
import { freeingWrite } from './space.js';
import { type FilePermission, type Principal, filePermissions, invisible, requirePermission } from './permissions.js';
import { fileCost } from './quota.js';
import { recordEvent, withEvents } from './events.js';
import type { ApiKey } from './ports/metadata-store.js';
import type { Dropzone, ScanState, StoredFile } from './ports/metadata-store.js';

/** Longest lifetime of an S3 upload URL that cannot be made conditional (`storage.s3.conditionalWrites = false`). */
export const UNCONDITIONAL_URL_TTL_SECONDS = 900;

/**
 * Lifetime of an upload URL (single PUT or multipart part), seconds: `uploads.urlTtlSeconds`, at most
 * `uploads.pendingTtlSeconds`, and at most {@link UNCONDITIONAL_URL_TTL_SECONDS} on S3 without conditional writes.
 */
export function uploadUrlSeconds(config: CoreDeps['config']): number {
  return Math.min(
    config.uploads.urlTtlSeconds,
    config.uploads.pendingTtlSeconds,
    // without If-None-Match a URL could replace the object after confirm: keep such URLs short-lived
    config.storage.backend === 's3' && !config.storage.s3.conditionalWrites ? UNCONDITIONAL_URL_TTL_SECONDS : Infinity,
  );
}

/** What a client declares before uploading. */
export interface UploadRequestInput {
  name: string;
  type: string;
  size: number;
}

/** Who asks for an upload through the dropzone page, and how much such a holder may keep pending in one dropzone. */
export interface PendingHolder {
  /** A stable, opaque identity (a hash of the client address). */
  id: string;
  /** 0: no limit. */
  maxFiles: number;
  /** 0: no limit. */
  maxBytes: number;
}

/** What the file service needs of the virus-scan step (core/scan.ts) at confirm. */
export interface ConfirmScanHook {
  /** The scan state a newly confirmed file gets (`scanning`, or none when scanning is off). */
  initialState(): ScanState | null;
  /** Queues the scan of a file just confirmed `scanning`. */
  enqueue(fileId: string): void;
}

/**
 * Files: reserving space and handing out upload URLs, confirming, deleting, and the pending-upload lifecycle. With
 * `scan`, a confirmed file starts in the state it names and its scan is queued once the confirm is recorded.
 */
export function createFileService(deps: CoreDeps, scan?: ConfirmScanHook) {
  const { meta, clock, config, blobs, log } = deps;
  const notFound = () => new AppError('FILE_NOT_FOUND');

  /**
   * Removes a file row, its grants and its reserved bytes, and queues its blob; one transaction. Only the remover that
   * deleted the row releases the bytes (a user's delete and the sweeper, or two nodes, may race); false when the row
   * was already gone. Once committed, the multipart upload pinned to the file (as the row held it) is aborted, so its
   * parts go with it; a failed abort is left to the sweeper's stale-upload pass. With `deletedBy`, a confirmed file's
   * removal is recorded as `file.deleted` in the same transaction (pending uploads that go record nothing).
   */
  const removeRow = async (file: StoredFile, deletedBy?: { dz: Dropzone; actor: ApiKey | undefined }): Promise<boolean> => {
    let uploadId: string | null = null;
    const removed = await meta.transaction(async (tx) => {
      const cur = await tx.fileById(file.id);
      uploadId = cur?.multipartUploadId ?? null;
      if (!(await tx.deleteFile(file.id))) return false;
      if (deletedBy && cur?.status === 'uploaded')
        await recordEvent(deps, tx, { type: 'file.deleted', dz: deletedBy.dz, file: cur, actor: deletedBy.actor, data: { name: cur.name, size: cur.size } });
      await tx.deleteGrantsOn('file', file.id);
      await tx.releaseSpace(file.dropzoneId, fileCost(file));
      await queueFileBlob(tx, deps, file, clock.now());
      return true;
    });
    if (removed && uploadId && blobs.multipart)
      await blobs.multipart.abort(file.blobKey, uploadId).catch((err) => log.warn('could not abort the multipart upload of a removed file', { err }));
    return removed;
  };

  const service = {
    /**
     * Loads a file with its dropzone and checks `permission`. Invisible files are 404 (401 without credentials).
     * With `dropzoneId` auth the file must belong to that dropzone.
     */
    async get(p: Principal, fileId: string, permission: FilePermission): Promise<{ file: StoredFile; dz: Dropzone }> {
      const file = await meta.fileById(fileId);
      const dz = file && (await meta.dropzoneById(file.dropzoneId));
      if (!file || !dz) throw invisible(p, notFound());
      requirePermission(p, await filePermissions(meta, p, file, dz), permission, notFound);
      return { file, dz };
    },

    /**
     * Reserves the file's cost ({@link fileCost}: its size plus a small overhead) and one of the dropzone's
     * `limits.maxFilesPerDropzone` places atomically, and creates a pending file with a presigned upload URL. The
     * reservation lasts until the URL expires plus `uploads.reservationGraceSeconds` (never beyond
     * `uploads.pendingTtlSeconds`); {@link renewPending} moves it forward while bytes arrive. With a `holder` (page
     * visitors), at most `holder.maxFiles` pending uploads / `holder.maxBytes` bytes of that holder may be pending in
     * `dz` at once. Throws DROPZONE_EXPIRED (410), FILE_TOO_LARGE (413, over maxFileSize), TOO_MANY_FILES (413, the
     * dropzone holds the most files allowed), DROPZONE_FULL (413, not enough room left), TOO_MANY_PENDING (429).
     * The caller has checked `dropzone.upload`.
     */
    async requestUpload(p: Principal, dz: Dropzone, input: UploadRequestInput, holder?: PendingHolder): Promise<{ file: StoredFile; upload: PresignedRequest }> {
      const urlSeconds = uploadUrlSeconds(config);
      const file = await meta.transaction(async (tx) => {
        const now = clock.now();
        const cur = await tx.dropzoneById(dz.id);
        if (!cur) throw new AppError('DROPZONE_NOT_FOUND');
        if (cur.deleteTime <= now) throw new AppError('DROPZONE_EXPIRED');
        if (input.size > cur.maxFileSize)
          throw new AppError('FILE_TOO_LARGE', `File size ${input.size} exceeds the maximum file size of ${cur.maxFileSize} bytes.`, {
            field: 'size',
            maxFileSize: cur.maxFileSize,
          });
        if (holder && (holder.maxFiles > 0 || holder.maxBytes > 0)) {
          const held = await tx.pendingOfHolder(cur.id, holder.id, now);
          if ((holder.maxFiles > 0 && held.files + 1 > holder.maxFiles) || (holder.maxBytes > 0 && held.bytes + input.size > holder.maxBytes))
            throw new AppError(
              'TOO_MANY_PENDING',
              `Too many uploads in progress from this address (${held.files} holding ${held.bytes} bytes); finish or cancel some first.`,
              { pendingUploads: held.files, pendingBytes: held.bytes, maxPendingUploads: holder.maxFiles || null, maxPendingBytes: holder.maxBytes || null },
            );
        }
        const maxFiles = config.limits.maxFilesPerDropzone;
        if (!(await tx.reserveSpace(cur.id, fileCost(input), now, maxFiles))) {
          if (cur.fileCount >= maxFiles)
            throw new AppError('TOO_MANY_FILES', `This dropzone already holds the most files allowed (${maxFiles} files, pending uploads included); delete some first.`, {
              limit: maxFiles,
            });
          // room for this file's bytes once its own overhead is paid
          const left = Math.max(0, cur.maxSize - cur.usedSpace - (fileCost(input) - input.size));
          throw new AppError('DROPZONE_FULL', `Not enough space left in the dropzone: ${input.size} bytes requested, ${left} available.`, {
            field: 'size',
            available: left,
          });
        }
        const id = newFileId();
        await tx.insertFile({
          id,
          dropzoneId: cur.id,
          name: input.name,
          type: input.type,
          size: input.size,
          blobKey: newBlobKey(),
          uploaderKeyId: p.key?.id ?? null,
          createdAt: now,
          // the URL's life (signed from this same clock, at most a second later) plus the grace, capped by pendingTtl
          pendingExpiresAt: now + Math.min(urlSeconds + config.uploads.reservationGraceSeconds, config.uploads.pendingTtlSeconds) * 1000,
          pendingHolder: holder?.id ?? null,
        });
        return (await tx.fileById(id))!;
      });
      try {
        const upload = await blobs.presignPut({
          key: file.blobKey,
          size: file.size,
          contentType: file.type || undefined,
          expiresInSeconds: urlSeconds,
        });
        return { file, upload };
      } catch (err) {
        await removeRow(file);
        throw err;
      }
    },

    /**
     * Marks a pending file uploaded once the store holds exactly its declared size; a second confirm returns the file.
     * With scanning on, the file is `scanning` (not served) and its scan is queued.
     * Not there yet: NOT_UPLOADED (409). Wrong size: the object is deleted, the bytes released, SIZE_MISMATCH (409).
     * Deleted meanwhile: FILE_NOT_FOUND (404).
     */
    async confirm(p: Principal, fileId: string): Promise<{ file: StoredFile; dz: Dropzone }> {
      const { file, dz } = await service.get(p, fileId, 'file.upload.confirm');
      if (file.status === 'uploaded') return { file, dz };
      if (file.pendingExpiresAt !== null && file.pendingExpiresAt <= clock.now()) {
        await removeRow(file);
        await flushBlobDeletions(deps);
        throw new AppError('UPLOAD_EXPIRED', 'This upload has expired; request a new upload URL.');
      }
      const stat = await blobs.stat(file.blobKey);
      if (!stat) throw new AppError('NOT_UPLOADED', 'The file has not been uploaded yet: PUT the bytes to the signed URL, then confirm.');
      if (stat.size !== file.size) {
        log.warn('uploaded object has the wrong size; discarding it', { declared: file.size, actual: stat.size });
        await removeRow(file);
        await flushBlobDeletions(deps);
        throw new AppError('SIZE_MISMATCH', `The uploaded object has ${stat.size} bytes but ${file.size} were declared; it was discarded.`, {
          declared: file.size,
          actual: stat.size,
        });
      }
      // counted (and recorded as file.uploaded, in the same transaction) only by the confirm that made the change: a
      // concurrent second confirm changes nothing
      const scanState = scan?.initialState() ?? null;
      const changed = await withEvents(deps, async (ops) => {
        if (!(await ops.markUploaded(file.id, stat.etag, clock.now(), scanState))) return false;
        await recordEvent(deps, ops, { type: 'file.uploaded', dz, file, actor: p.key, data: { name: file.name, size: file.size, type: file.type } });
        return true;
      });
      if (changed) deps.observer?.uploadConfirmed?.(file.size);
      // deleted (file or dropzone) while the store was being checked
      const confirmed = await meta.fileById(file.id);
      // queued after the read, so this confirm answers `scanning` however fast the scanner is
      if (changed && scanState === 'scanning') scan!.enqueue(file.id);
      const current = confirmed && (await meta.dropzoneById(confirmed.dropzoneId));
      if (!confirmed || !current) throw notFound();
      return { file: confirmed, dz: current };
    },

    /**
     * Keeps the reservation of a pending upload whose bytes are arriving: its expiry moves to now +
     * `uploads.reservationGraceSeconds`, never beyond creation + `uploads.pendingTtlSeconds` and never backward.
     * Returns false when the file is gone or no longer pending. No permission check: the caller verified the upload URL.
     */
    async renewPending(file: Pick<StoredFile, 'id' | 'createdAt'>): Promise<boolean> {
      const until = Math.min(clock.now() + config.uploads.reservationGraceSeconds * 1000, file.createdAt + config.uploads.pendingTtlSeconds * 1000);
      return (await meta.extendPending(file.id, until)) || (await meta.fileById(file.id))?.status === 'pending';
    },

    /** Deletes a file (needs `file.delete`), releasing its bytes and deleting its blob; works on a full disk (see freeingWrite). */
    async remove(p: Principal, fileId: string): Promise<void> {
      const { file, dz } = await service.get(p, fileId, 'file.delete');
      await freeingWrite(deps, () => removeRow(file, { dz, actor: p.key }));
      await flushBlobDeletions(deps);
    },

    /**
     * The pending upload that the presigned URL for `blobKey` writes to, with its dropzone, while it may still receive
     * bytes; undefined when the URL no longer leads anywhere (file gone, confirmed, or its dropzone gone), and
     * `expired` when the upload or its dropzone expired.
     */
    async pendingUpload(blobKey: string): Promise<{ file: StoredFile; dz: Dropzone; expired: boolean } | undefined> {
      const file = await meta.fileByBlobKey(blobKey);
      const dz = file && (await meta.dropzoneById(file.dropzoneId));
      if (!file || !dz || file.status !== 'pending') return undefined;
      const now = clock.now();
      return { file, dz, expired: (file.pendingExpiresAt ?? Infinity) <= now || dz.deleteTime <= now };
    },

    /**
     * A file served through its public link: uploaded, and `anyone` holds `file.download` on it or `dropzone.download`
     * on its dropzone. Anything else is FILE_NOT_FOUND, so a link reveals nothing about files it does not serve.
     */
    async publicDownload(fileId: string): Promise<StoredFile> {
      const file = await meta.fileById(fileId);
      const dz = file && (await meta.dropzoneById(file.dropzoneId));
      if (!file || !dz || file.status !== 'uploaded' || !(await filePermissions(meta, {}, file, dz)).has('file.download')) throw notFound();
      return file;
    },

    /** The file whose blob is `blobKey`, if a row still references it. */
    byBlobKey(blobKey: string): Promise<StoredFile | undefined> {
      return meta.fileByBlobKey(blobKey);
    },

    /** Removes a file row without permission checks (sweeper). */
    removeRow,
  };
  return service;
}

/**
 * Opens the bytes that were confirmed for `file` (or the inclusive `range` of them): confirmed bytes are the only ones
 * ever served. Throws FILE_NOT_FOUND when the object is gone (deleted concurrently) and OBJECT_CHANGED when the store
 * holds an object whose ETag differs from the one recorded at confirm (replaced behind the server's back); the stream
 * is then already destroyed.
 */
export async function openConfirmedBlob(blobs: BlobStore, file: StoredFile, range?: ByteRange): Promise<{ stream: Readable; stat: BlobStat }> {
  let opened;
  try {
    opened = await blobs.get(file.blobKey, range);
  } catch (err) {
    if (err instanceof BlobNotFoundError) throw new AppError('FILE_NOT_FOUND');
    throw err;
  }
  if (file.etag && opened.stat.etag !== file.etag) {
    opened.stream.destroy();
    throw new AppError('OBJECT_CHANGED', 'The stored object changed after it was confirmed; refusing to serve it.');
  }
  return opened;
}

/** The service built by {@link createFileService}. */
export type FileService = ReturnType<typeof createFileService>;
