import type { CompletedPartRef, PresignedRequest } from '../blobs/blob-store.js';
import type { CoreDeps } from './deps.js';
import { AppError } from './errors.js';
import { fileBatches } from './file-batches.js';
import type { FileService, PendingHolder, UploadRequestInput } from './files.js';
import type { MultipartService } from './multipart.js';
import { type PageCapability, type PageTokens, createPageTokens, pageCapabilities } from './page-tokens.js';
import { type Principal, filePermissions } from './permissions.js';
import type { Dropzone, StoredFile } from './ports/metadata-store.js';
import { servable } from './scan.js';

/** What one page request may do: the dropzone its link names and the capabilities left of its token. */
export interface PageSession {
  dz: Dropzone;
  /** The token's scope ∩ what the link allows now (a revoked `anyone` grant takes effect at once). */
  scope: PageCapability[];
  now: number;
}

/**
 * The public dropzone page (`/d/<code>`): who a link holder is and what it may do. A link holder acts inside the file
 * service as the first-generation dropzone principal — a principal it never sees and that only this module lends,
 * always after checking the page's own narrower rule (upload; list and download only with `anyone` grants; cancel
 * only pending uploads of this dropzone).
 */
export function createPageService(deps: Pick<CoreDeps, 'meta' | 'clock' | 'config'>, files: FileService, multipart: MultipartService) {
  const { meta, clock } = deps;
  const tokens: PageTokens = createPageTokens(deps);
  /** The principal lent to a page request for files of `dz`. */
  const borrowed = (dz: Dropzone): Principal => ({ dropzoneId: dz.id });
  const need = (s: PageSession, cap: PageCapability) => {
    if (!s.scope.includes(cap)) throw new AppError('FORBIDDEN', `This link does not allow ${cap.replace('dropzone.', '')}ing files.`, { permission: cap });
  };
  /** A pending or uploaded file of this dropzone, or 404 (files of other dropzones stay invisible). */
  const fileOf = async (dz: Dropzone, fileId: string): Promise<StoredFile> => {
    const file = await meta.fileById(fileId);
    if (!file || file.dropzoneId !== dz.id) throw new AppError('FILE_NOT_FOUND');
    return file;
  };
  /** The dropzone's usedSpace now (after the change a request made). */
  const usedSpace = async (dz: Dropzone) => (await meta.dropzoneById(dz.id))?.usedSpace ?? dz.usedSpace;

  return {
    /**
     * What the page itself shows for `code`: the dropzone, what its link allows now and a fresh page token; undefined
     * when no dropzone has that code. The caller renders expired dropzones as such.
     */
    async open(code: string): Promise<{ dz: Dropzone; scope: PageCapability[]; token: string; tokenExpiresAt: number } | undefined> {
      const dz = await meta.dropzoneByCode(code);
      if (!dz) return undefined;
      const scope = await pageCapabilities(meta, dz);
      if (dz.deleteTime <= clock.now()) return { dz, scope, token: '', tokenExpiresAt: 0 };
      const { token, expiresAt } = await tokens.mint(dz, scope);
      return { dz, scope, token, tokenExpiresAt: expiresAt };
    },

    /** Verifies the page token for `code` (UNAUTHENTICATED otherwise) and loads the dropzone and the effective scope. */
    async session(token: string | undefined, code: string): Promise<PageSession> {
      const claims = await tokens.verify(token, code);
      const dz = await meta.dropzoneByCode(code);
      if (!dz) throw new AppError('DROPZONE_NOT_FOUND');
      const current = new Set(await pageCapabilities(meta, dz));
      return { dz, scope: claims.scope.filter((s) => current.has(s)), now: clock.now() };
    },

    /** Throws DROPZONE_EXPIRED when the session's dropzone has expired. */
    notExpired(s: PageSession): void {
      if (s.dz.deleteTime <= s.now) throw new AppError('DROPZONE_EXPIRED');
    },

    /** Reserves an upload for a link holder (`holder`: the visitor, limited in pending uploads); see FileService.requestUpload. */
    async requestUpload(s: PageSession, input: UploadRequestInput, holder?: PendingHolder): Promise<{ file: StoredFile; upload: PresignedRequest; usedSpace: number }> {
      need(s, 'dropzone.upload');
      const { file, upload } = await files.requestUpload({}, s.dz, input, holder);
      return { file, upload, usedSpace: await usedSpace(s.dz) };
    },

    /** Confirms an upload of this dropzone. */
    async confirm(s: PageSession, fileId: string): Promise<{ file: StoredFile; usedSpace: number }> {
      need(s, 'dropzone.upload');
      await fileOf(s.dz, fileId);
      const { file } = await files.confirm(borrowed(s.dz), fileId);
      return { file, usedSpace: await usedSpace(s.dz) };
    },

    /**
     * Starts (or, after a reload, answers the already open) multipart upload of a pending file of this dropzone; the
     * page sends big files in parts. Same rule as confirm: `dropzone.upload`, files of this dropzone only.
     */
    async startMultipart(s: PageSession, fileId: string) {
      need(s, 'dropzone.upload');
      await fileOf(s.dz, fileId);
      return multipart.start(borrowed(s.dz), fileId);
    },

    /** Presigned PUT URLs for parts of this dropzone's pinned upload (keeps the reservation alive). */
    async signParts(s: PageSession, fileId: string, uploadId: string, partNumbers: number[]) {
      need(s, 'dropzone.upload');
      await fileOf(s.dz, fileId);
      return multipart.signParts(borrowed(s.dz), fileId, uploadId, partNumbers);
    },

    /** The parts stored so far (the page resumes from them). */
    async listParts(s: PageSession, fileId: string, uploadId: string) {
      need(s, 'dropzone.upload');
      await fileOf(s.dz, fileId);
      return multipart.listParts(borrowed(s.dz), fileId, uploadId);
    },

    /** Joins the parts and confirms the file (as confirm). */
    async completeMultipart(s: PageSession, fileId: string, uploadId: string, parts: CompletedPartRef[]): Promise<{ file: StoredFile; usedSpace: number }> {
      need(s, 'dropzone.upload');
      await fileOf(s.dz, fileId);
      const { file } = await multipart.complete(borrowed(s.dz), fileId, uploadId, parts);
      return { file, usedSpace: await usedSpace(s.dz) };
    },

    /** A file of this dropzone as it stands (the page follows its virus scan); same rule as confirm. */
    async upload(s: PageSession, fileId: string): Promise<StoredFile> {
      need(s, 'dropzone.upload');
      return fileOf(s.dz, fileId);
    },

    /** Cancels a pending upload of this dropzone (confirmed files cannot be deleted from the page: FORBIDDEN). */
    async cancel(s: PageSession, fileId: string): Promise<{ usedSpace: number }> {
      need(s, 'dropzone.upload');
      const file = await fileOf(s.dz, fileId);
      if (file.status !== 'pending') throw new AppError('FORBIDDEN', 'This file is already uploaded; only pending uploads can be cancelled here.');
      await files.remove(borrowed(s.dz), file.id);
      return { usedSpace: await usedSpace(s.dz) };
    },

    /**
     * The uploaded files (needs `dropzone.list` in the scope), in batches, each file with whether its public link
     * serves it (`anyone` may download it, and the virus scan, when on, cleared it).
     */
    async *uploadedFiles(s: PageSession): AsyncGenerator<{ file: StoredFile; publicDownload: boolean }[]> {
      need(s, 'dropzone.list');
      for await (const batch of fileBatches(meta, s.dz.id, { uploadedOnly: true })) {
        const out = [];
        // a file the virus scan has not cleared gets no link
        for (const file of batch)
          out.push({ file, publicDownload: servable(deps.config, file) && (await filePermissions(meta, {}, file, s.dz)).has('file.download') });
        yield out;
      }
    },
  };
}

/** The service built by {@link createPageService}. */
export type PageService = ReturnType<typeof createPageService>;
