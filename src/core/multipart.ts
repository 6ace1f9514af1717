import {
  BlobExistsError,
  BlobSizeError,
  MULTIPART_MAX_PARTS,
  MULTIPART_MAX_PART_SIZE,
  MULTIPART_MIN_PART_SIZE,
  MultipartError,
  type CompletedPartRef,
  type MultipartBlobs,
  type PresignedPart,
  type UploadedPart,
} from '../blobs/blob-store.js';
import type { CoreDeps } from './deps.js';
import { flushBlobDeletions } from './dropzones.js';
import { AppError } from './errors.js';
import { freeingWrite } from './space.js';
import { type FileService, uploadUrlSeconds } from './files.js';
import type { Principal } from './permissions.js';
import type { Dropzone, StoredFile } from './ports/metadata-store.js';

const MIB = 1024 * 1024;

/** Most part numbers one signing request may name. */
export const MAX_SIGN_BATCH = 1000;

/**
 * The part size proposed for a file of `size` bytes: the smallest whole number of MiB, at least S3's 5 MiB minimum,
 * that covers the file in at most 10,000 parts. Undefined when no allowed part size can (over 10,000 × 5 GiB).
 */
export function proposePartSize(size: number): number | undefined {
  const partSize = Math.max(MULTIPART_MIN_PART_SIZE, Math.ceil(size / MULTIPART_MAX_PARTS / MIB) * MIB);
  return partSize <= MULTIPART_MAX_PART_SIZE ? partSize : undefined;
}

/** Largest file a multipart upload can carry (10,000 parts of the largest part size). */
export const MULTIPART_MAX_OBJECT_SIZE = MULTIPART_MAX_PARTS * MULTIPART_MAX_PART_SIZE;

/** What starting (or re-starting) a multipart upload answers. */
export interface MultipartStart {
  uploadId: string;
  /** The proposed size of every part but the last. */
  partSize: number;
  /** How many parts of {@link partSize} the file takes. */
  partCount: number;
}

/** The blob store's multipart error as an API error: S3's codes become 4xx answers of the catalog. */
export function multipartAppError(err: MultipartError): AppError {
  const data = { s3Code: err.code, ...(err.partNumber !== undefined ? { partNumber: err.partNumber } : {}) };
  switch (err.code) {
    case 'NoSuchUpload':
      return new AppError('NO_SUCH_UPLOAD', undefined, data);
    case 'InvalidPart':
      return new AppError('INVALID_PART', err.message, data);
    case 'InvalidPartOrder':
      return new AppError('INVALID_PART_ORDER', err.message, data);
    case 'EntityTooSmall':
      return new AppError('PART_TOO_SMALL', `Every part but the last must have at least ${MULTIPART_MIN_PART_SIZE} bytes.`, data);
    case 'EntityTooLarge':
      return new AppError('PART_TOO_LARGE', `A part may have at most ${MULTIPART_MAX_PART_SIZE} bytes.`, data);
    case 'InvalidArgument':
      return new AppError('VALIDATION', err.message, { field: 'partNumber', ...data });
  }
}

/** Runs `fn`, turning a {@link MultipartError} into its API error. */
async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MultipartError) throw multipartAppError(err);
    throw err;
  }
}

/**
 * Multipart uploads of pending files (issue 11): the client starts one for a file it reserved, PUTs parts to presigned
 * URLs, and completes with the list of parts; the file is then confirmed as after a single PUT. The server opens the
 * upload itself and pins its id to the file: only that upload's parts are signed and only it can be completed, so a
 * repeated start answers the same upload instead of opening a parallel one. Every operation needs
 * `file.upload.confirm` on the file, like confirm. Aborting ends the upload as S3 does: its parts are discarded and
 * the pending file goes with them, releasing its reservation (the client requests a new upload to try again).
 */
export function createMultipartService(deps: CoreDeps, files: FileService) {
  const { meta, clock, config, blobs } = deps;

  const capability = (): MultipartBlobs => {
    if (!blobs.multipart) throw new AppError('MULTIPART_UNSUPPORTED');
    return blobs.multipart;
  };

  /** The pending file with `file.upload.confirm`, still alive; UPLOAD_EXPIRED / ALREADY_UPLOADED otherwise. */
  const pendingFile = async (p: Principal, fileId: string): Promise<{ file: StoredFile; dz: Dropzone }> => {
    const { file, dz } = await files.get(p, fileId, 'file.upload.confirm');
    if (file.status === 'uploaded') throw new AppError('ALREADY_UPLOADED');
    const now = clock.now();
    if ((file.pendingExpiresAt ?? Infinity) <= now || dz.deleteTime <= now)
      throw new AppError('UPLOAD_EXPIRED', 'This upload has expired; request a new upload URL.');
    return { file, dz };
  };

  /** The pending file whose pinned upload is `uploadId`; NO_SUCH_UPLOAD for any other id. */
  const pinnedFile = async (p: Principal, fileId: string, uploadId: string) => {
    const found = await pendingFile(p, fileId);
    if (found.file.multipartUploadId !== uploadId) throw new AppError('NO_SUCH_UPLOAD');
    return found;
  };

  const plan = (file: StoredFile, uploadId: string): MultipartStart => {
    const partSize = proposePartSize(file.size)!;
    return { uploadId, partSize, partCount: Math.max(1, Math.ceil(file.size / partSize)) };
  };

  const service = {
    /**
     * Starts the multipart upload of a pending file, or answers the one already open for it (resume after a reload).
     * FILE_TOO_LARGE when no allowed part size covers the file. Concurrent starts: one upload wins, the others are
     * aborted and every caller gets the winner.
     */
    async start(p: Principal, fileId: string): Promise<MultipartStart> {
      const mp = capability();
      const { file } = await pendingFile(p, fileId);
      if (proposePartSize(file.size) === undefined)
        throw new AppError('FILE_TOO_LARGE', `A multipart upload carries at most ${MULTIPART_MAX_OBJECT_SIZE} bytes.`, { field: 'size' });
      if (file.multipartUploadId) return plan(file, file.multipartUploadId);
      const uploadId = await mapped(() => mp.create(file.blobKey, file.type ? { contentType: file.type } : undefined));
      if (await meta.setMultipartUpload(file.id, uploadId)) return plan(file, uploadId);
      // another start won (or the file was confirmed/deleted meanwhile): this upload must not stay open
      await mp.abort(file.blobKey, uploadId);
      const current = await meta.fileById(file.id);
      if (current?.status === 'pending' && current.multipartUploadId) return plan(current, current.multipartUploadId);
      throw current ? new AppError('ALREADY_UPLOADED') : new AppError('FILE_NOT_FOUND');
    },

    /**
     * Presigned UploadPart URLs for `partNumbers` of the file's pinned upload. Signing counts as activity: the
     * reservation is kept for another URL lifetime plus the grace (never beyond `uploads.pendingTtlSeconds` from the
     * request), and no URL outlives it.
     */
    async signParts(p: Principal, fileId: string, uploadId: string, partNumbers: number[]): Promise<PresignedPart[]> {
      const mp = capability();
      const { file } = await pinnedFile(p, fileId, uploadId);
      const now = clock.now();
      const lastMoment = file.createdAt + config.uploads.pendingTtlSeconds * 1000;
      const seconds = Math.max(1, Math.min(uploadUrlSeconds(config), Math.floor((lastMoment - now) / 1000)));
      await meta.extendPending(file.id, Math.min(now + (seconds + config.uploads.reservationGraceSeconds) * 1000, lastMoment));
      return mapped(() => mp.presignParts(file.blobKey, uploadId, partNumbers, seconds));
    },

    /** The parts stored so far for the pinned upload, by part number (to resume: upload only the missing ones). */
    async listParts(p: Principal, fileId: string, uploadId: string): Promise<UploadedPart[]> {
      const mp = capability();
      const { file } = await pinnedFile(p, fileId, uploadId);
      return mapped(() => mp.listParts(file.blobKey, uploadId));
    },

    /**
     * Joins the listed parts into the file's object, which must then hold exactly the reserved size, and confirms the
     * file (as {@link FileService.confirm}). SIZE_MISMATCH (409) leaves the upload open so the client can fix its
     * parts; S3's part errors are 400s. Completing an upload that already completed answers the confirmed file.
     */
    async complete(p: Principal, fileId: string, uploadId: string, parts: CompletedPartRef[]) {
      const mp = capability();
      let file: StoredFile;
      try {
        file = (await pinnedFile(p, fileId, uploadId)).file;
      } catch (err) {
        // a retried completion whose first answer was lost
        if (err instanceof AppError && err.code === 'ALREADY_UPLOADED') return files.confirm(p, fileId);
        throw err;
      }
      try {
        await mapped(() => mp.complete(file.blobKey, uploadId, parts, { expectedSize: file.size }));
      } catch (err) {
        if (err instanceof BlobSizeError)
          throw new AppError('SIZE_MISMATCH', `The parts have ${err.received} bytes but ${err.expected} were declared; the upload stays open.`, {
            declared: err.expected,
            actual: err.received,
          });
        // completed by a concurrent request: the object is there, confirm it below
        if (!(err instanceof BlobExistsError || (err instanceof AppError && err.code === 'NO_SUCH_UPLOAD' && (await blobs.stat(file.blobKey))))) throw err;
      }
      return files.confirm(p, fileId);
    },

    /**
     * Discards the pinned upload and its parts and removes the pending file, releasing its reserved space (aborting
     * is how an uploader gives up; after it the upload and the file are gone). Works on a full disk (see freeingWrite).
     */
    async abort(p: Principal, fileId: string, uploadId: string): Promise<void> {
      capability();
      const { file } = await pinnedFile(p, fileId, uploadId);
      // the row goes first (in one transaction with the released space); its pinned upload is aborted once committed
      await freeingWrite(deps, () => files.removeRow(file));
      await flushBlobDeletions(deps);
    },
  };
  return service;
}

/** The service built by {@link createMultipartService}. */
export type MultipartService = ReturnType<typeof createMultipartService>;
