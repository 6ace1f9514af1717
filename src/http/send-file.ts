import type { Context } from 'hono';
import type { BlobStore, ByteRange } from '../blobs/blob-store.js';
import type { Config } from '../config/schema.js';
import { AppError } from '../core/errors.js';
import { openConfirmedBlob } from '../core/files.js';
import { refuseUnservable } from '../core/scan.js';
import type { StoredFile } from '../core/ports/metadata-store.js';
import { nodeStreamResponse } from './node-body.js';

/** `attachment` with an ASCII fallback `filename` and an RFC 6266/5987 `filename*` for any Unicode name. */
export function contentDisposition(name: string, type: 'attachment' | 'inline' = 'attachment'): string {
  const fallback = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_') || 'download';
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase());
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/**
 * Parses a single-range `Range` header against `size`.
 * Returns undefined to serve the whole body (absent, malformed or multi-range), 'unsatisfiable' for 416, or the range.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** True when an `If-None-Match` list contains `etag` (weak comparison) or `*`. */
function etagMatches(header: string, etag: string): boolean {
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === bare(etag));
}

/**
 * Answers a download of an uploaded file: a 302 to a presigned GET when the store offers one and the operator chose
 * redirects; otherwise streams the bytes with Content-Type/Length/Disposition, ETag and Last-Modified, honouring
 * `Range` (206/416), `If-Range`, `If-None-Match` (304) and HEAD. Throws NOT_UPLOADED for pending files, FILE_NOT_FOUND when
 * the object vanished (deleted concurrently), and a catalog error for files the virus scan has not cleared (core/scan.ts).
 */
export async function sendFile(c: Context, deps: { blobs: BlobStore; config: Config }, file: StoredFile): Promise<Response> {
  if (file.status !== 'uploaded') throw new AppError('NOT_UPLOADED', 'The file has not been uploaded yet.');
  // FILE_SCANNING / FILE_QUARANTINED / FILE_SCAN_FAILED: not (yet) cleared by the virus scan
  refuseUnservable(deps.config, file);
  const { blobs, config } = deps;
  const disposition = contentDisposition(file.name);
  const type = file.type || 'application/octet-stream';
  const etag = file.etag ?? '';
  const lastModified = new Date(file.confirmedAt ?? file.createdAt).toUTCString();
  const common: Record<string, string> = {
    'Content-Type': type,
    'Content-Disposition': disposition,
    ETag: etag,
    'Last-Modified': lastModified,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'private, no-cache',
    'X-Content-Type-Options': 'nosniff',
  };

  const inm = c.req.header('if-none-match');
  if (inm && etag && etagMatches(inm, etag)) return new Response(null, { status: 304, headers: { ETag: etag, 'Last-Modified': lastModified } });

  if (config.storage.backend === 's3' && config.storage.s3.downloadMode === 'redirect') {
    if (!config.storage.s3.conditionalWrites) {
      // Without If-None-Match on upload URLs a confirmed object could have been replaced: check before handing it out.
      const stat = await blobs.stat(file.blobKey);
      if (!stat || (file.etag && stat.etag !== file.etag)) throw new AppError('OBJECT_CHANGED', 'The stored object changed after it was confirmed; refusing to serve it.');
    }
    const presigned = await blobs.presignGet({ key: file.blobKey, expiresInSeconds: 300, contentDisposition: disposition, contentType: type });
    if (presigned) return new Response(null, { status: 302, headers: { Location: presigned.url, 'Cache-Control': 'no-store' } });
  }

  const size = file.size;
  let range = parseRange(c.req.header('range'), size);
  const ifRange = c.req.header('if-range');
  if (range && ifRange && ifRange.trim() !== etag && ifRange.trim() !== lastModified) range = undefined;
  if (range === 'unsatisfiable') {
    return new Response(null, { status: 416, headers: { 'Content-Range': `bytes */${size}`, 'Accept-Ranges': 'bytes' } });
  }
  if (config.server.accelRedirect && blobs.filesAtKeys && c.req.method === 'GET' && size > 0) return accelRedirect(blobs, file, config.server.accelRedirect, common);
  const length = range ? range.end - range.start + 1 : size;
  const headers: Record<string, string> = { ...common, 'Content-Length': String(length) };
  if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  const status = range ? 206 : 200;
  if (c.req.method === 'HEAD' || length === 0) return new Response(null, { status, headers });

  // FILE_NOT_FOUND when deleted since the permission check, OBJECT_CHANGED when other bytes than the confirmed ones
  const { stream } = await openConfirmedBlob(blobs, file, range);
  return nodeStreamResponse(c, stream, { status, headers });
}

/**
 * `server.accelRedirect`: the caller is authorized; the proxy in front sends the file from its internal location
 * (`prefix` + key) and answers Range itself. The stored object must still be the confirmed one (else OBJECT_CHANGED,
 * or FILE_NOT_FOUND when it vanished), as when the server sends the bytes. The body is empty; the proxy sets the length.
 */
async function accelRedirect(blobs: BlobStore, file: StoredFile, prefix: string, headers: Record<string, string>): Promise<Response> {
  const stat = await blobs.stat(file.blobKey);
  if (!stat) throw new AppError('FILE_NOT_FOUND');
  if (file.etag && stat.etag !== file.etag) throw new AppError('OBJECT_CHANGED', 'The stored object changed after it was confirmed; refusing to serve it.');
  return new Response(null, { status: 200, headers: { ...headers, 'X-Accel-Redirect': prefix + encodeURI(file.blobKey) } });
}
