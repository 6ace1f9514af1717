import { randomBytes } from 'node:crypto';
import type { Hono } from 'hono';
import { BlobExistsError, BlobSizeError } from '../../blobs/blob-store.js';
import { LOCAL_BLOB_URL_PREFIX, type LocalBlobStore } from '../../blobs/local-store.js';
import { ERRORS, isStorageFull } from '../../core/errors.js';
import type { ApiContext } from '../context.js';
import { clientClosed } from '../error-handler.js';
import type { AppEnv } from '../route.js';
import { requestBody } from '../node-body.js';
import { mountBlobMultipartRoutes } from './blob-multipart.js';

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'PUT, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, Content-Length, If-None-Match',
  'Access-Control-Expose-Headers': 'ETag, x-amz-request-id',
  'Access-Control-Max-Age': '3600',
};

/**
 * The local store's S3-style upload endpoint `PUT /_blobs/<key>?X-Amz-…`: verifies the presigned URL,
 * accepts only keys of pending uploads, streams exactly the signed number of bytes into the store write-once (a key
 * that already holds bytes answers 412 PreconditionFailed, as S3 does for `If-None-Match: *`), and answers like S3
 * (200 with ETag, or an XML error). Every failure leaves nothing stored. CORS is open: the URL itself is the credential.
 */
export function mountUploadRoutes(app: Hono<AppEnv>, ctx: ApiContext, store: LocalBlobStore): void {
  const log = ctx.log.child('uploads');
  const path = `${LOCAL_BLOB_URL_PREFIX}*`;
  mountBlobMultipartRoutes(app, ctx, store); // S3 multipart requests (`?uploads`, `?uploadId=`) and the CORS preflight

  app.options(path, () => new Response(null, { status: 204, headers: CORS }));

  app.all(path, async (c) => {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    const url = new URL(c.req.url);
    const resource = url.pathname;
    const fail = (status: number, code: string, message: string) =>
      new Response(store.s3ErrorXml(code, message, resource, requestId), {
        status,
        headers: { ...CORS, 'Content-Type': 'application/xml', 'x-amz-request-id': requestId },
      });

    // Behind a trusted proxy that rewrites Host, the signature covers the host the client used.
    const forwardedHost = ctx.config.server.trustProxy ? c.req.header('x-forwarded-host')?.split(',')[0]?.trim() : undefined;
    const header = (n: string) => (n.toLowerCase() === 'host' && forwardedHost ? forwardedHost : c.req.header(n));
    const verdict = store.verifyPresignedPut({ method: c.req.method, path: url.pathname, query: url.searchParams, header });
    let key: string;
    try {
      // the verdict knows the key even when a proxy kept a path prefix in front of /_blobs/
      key = verdict.ok ? verdict.key : decodeURIComponent(url.pathname.slice(url.pathname.indexOf(LOCAL_BLOB_URL_PREFIX) + LOCAL_BLOB_URL_PREFIX.length));
    } catch {
      return fail(400, 'InvalidURI', "Couldn't parse the specified URI.");
    }
    if (!verdict.ok) {
      const declared = Number(c.req.header('content-length'));
      if (c.req.method === 'PUT' && Number.isFinite(declared)) {
        const file = await ctx.files.byBlobKey(key);
        if (file && declared > file.size) return fail(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
      }
      return fail(verdict.status, verdict.code, verdict.message);
    }
    const pending = await ctx.files.pendingUpload(key);
    if (!pending) return fail(403, 'AccessDenied', 'This upload URL is no longer valid.');
    if (pending.expired) return fail(403, 'AccessDenied', 'Request has expired');
    const { file } = pending;
    const now = ctx.clock.now();
    if (c.req.header('content-length') === undefined) return fail(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');

    // bytes are arriving: keep the reservation alive (now, and again every quarter of the grace while they flow), so
    // the sweeper never removes an upload that is still receiving
    const renewEveryMs = (ctx.config.uploads.reservationGraceSeconds * 1000) / 4;
    let renewedAt = now;
    const renew = () => ctx.files.renewPending(file).catch((err) => log.warn('could not renew an upload reservation', { err }));
    void renew();
    const body = requestBody(c, () => {
      if (ctx.clock.now() - renewedAt < renewEveryMs) return;
      renewedAt = ctx.clock.now();
      void renew();
    });
    let stat;
    try {
      // write-once, like an S3 URL signed with If-None-Match: *: bytes already there (maybe confirmed) are never replaced
      stat = await store.put(key, body.stream, { expectedSize: verdict.size, contentType: verdict.contentType, ifAbsent: true });
    } catch (err) {
      if (err instanceof BlobExistsError) return fail(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
      if (err instanceof BlobSizeError) {
        return err.received > err.expected
          ? fail(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size')
          : fail(400, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header');
      }
      if (clientClosed(c)) {
        // the client went away (or stalled past the idle timeout) mid-body: nothing stored, the URL stays usable
        log.info('upload aborted by the client');
        return fail(ERRORS.CLIENT_CLOSED.status, 'RequestAborted', ERRORS.CLIENT_CLOSED.message);
      }
      // a clear answer S3 clients treat as retryable (the temp file is gone, the space is back)
      if (isStorageFull(err)) {
        await body.discardRest();
        return fail(507, 'ServiceUnavailable', ERRORS.STORAGE_FULL.message);
      }
      log.warn('upload failed', { err });
      return fail(500, 'InternalError', 'We encountered an internal error. Please try again.');
    }
    // the file may have been deleted while the bytes streamed in: then these bytes belong to nobody
    // (confirmed meanwhile is fine: the object was absent until this put placed it, so confirm saw these bytes)
    if (!(await ctx.files.byBlobKey(key))) {
      await store.delete(key);
      return fail(403, 'AccessDenied', 'This upload URL is no longer valid.');
    }
    return new Response(null, { status: 200, headers: { ...CORS, ETag: stat.etag, 'x-amz-request-id': requestId } });
  });
}
