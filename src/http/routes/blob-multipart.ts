import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Hono } from 'hono';
import {
  BlobExistsError,
  BlobSizeError,
  MULTIPART_MAX_PART_SIZE,
  MultipartError,
  type CompletedPartRef,
  type MultipartErrorCode,
} from '../../blobs/blob-store.js';
import { isMultipartQuery, LOCAL_BLOB_URL_PREFIX, s3ErrorXml, type LocalBlobStore } from '../../blobs/local-store.js';
import { ERRORS, isStorageFull } from '../../core/errors.js';
import type { Logger } from '../../log/logger.js';
import type { ApiContext } from '../context.js';
import type { AppEnv } from '../route.js';
import { type RequestBody, requestBody } from '../node-body.js';

/** CORS of every `/_blobs` response: the URL itself is the credential, so any page may use it. */
export const BLOB_CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, PUT, POST, DELETE, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, Content-Length, If-None-Match',
  // browsers may read a part's ETag only when it is exposed (uploaders need it for the completion list)
  'Access-Control-Expose-Headers': 'ETag, x-amz-request-id',
  'Access-Control-Max-Age': '3600',
};

/** Largest CompleteMultipartUpload body read (10,000 parts take about 1 MB with generous whitespace). */
export const MAX_COMPLETE_BODY_BYTES = 2 * 1024 * 1024;

/** Most parts one ListParts answer holds (S3's maximum too). */
const MAX_LIST_PARTS = 1000;

const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** Whether an upload key may receive bytes now (see {@link BlobMultipartOptions.gate}). */
export type GateVerdict =
  | {
      ok: true;
      /** The exact size the finished object must have (the reservation); no limit when absent. */
      size?: number;
      /** Called while part bytes arrive (often): keeps the reservation alive; throttles itself. */
      touch?: () => void;
    }
  | { ok: false; message: string };

/** What {@link handleBlobMultipart} needs besides the store. */
export interface BlobMultipartOptions {
  /** Decides whether `key` belongs to an upload that may still receive bytes, and its exact size. */
  gate(key: string): Promise<GateVerdict>;
  /** True while `key` still belongs to a file; a completion that lost its file removes the object again. */
  stillWanted(key: string): Promise<boolean>;
  /** Honour `X-Forwarded-Host` for the signed host (behind a trusted proxy). */
  trustProxy: boolean;
  log?: Logger;
}

const STATUS_OF: Record<MultipartErrorCode, number> = {
  NoSuchUpload: 404,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  EntityTooSmall: 400,
  EntityTooLarge: 400,
  InvalidArgument: 400,
};

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
const xml = (value: string | number) => String(value).replace(/[&<>"']/g, (c) => XML_ESCAPES[c]);

/** The XML elements S3 names an object with, read path-style: `/_blobs/<Bucket>/<Key>` (keys look like `objects/<id>`). */
function bucketAndKey(key: string): string {
  const slash = key.indexOf('/');
  const bucket = slash < 0 ? '' : key.slice(0, slash);
  return `<Bucket>${xml(bucket)}</Bucket><Key>${xml(slash < 0 ? key : key.slice(slash + 1))}</Key>`;
}

function xmlDocument(root: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${S3_XMLNS}">${inner}</${root}>`;
}

/** The text of an XML element with its entities decoded; null when it holds a stray `&` or an invalid reference. */
function decodeXmlText(text: string): string | null {
  if (/&(?!(?:#x[0-9a-fA-F]{1,6}|#\d{1,7}|amp|lt|gt|quot|apos);)/.test(text)) return null;
  let bad = false;
  const out = text.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_m, ent: string) => {
    if (ent[0] === '#') {
      const code = ent[1] === 'x' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      if (code > 0x10ffff) {
        bad = true;
        return '';
      }
      return String.fromCodePoint(code);
    }
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[ent];
  });
  return bad ? null : out;
}

/**
 * Parses a CompleteMultipartUpload document: `<CompleteMultipartUpload><Part><PartNumber>n</PartNumber><ETag>e</ETag>…
 * </Part>…</CompleteMultipartUpload>` (namespace and other elements inside a Part, such as checksums, allowed).
 * Returns null when it is not one (MalformedXML).
 */
export function parseCompleteMultipartXml(body: string): CompletedPartRef[] | null {
  const doc = body
    .replace(/^\uFEFF/, '')
    .replace(/^\s*<\?xml[^>]*\?>/, '')
    .trim();
  const root = /^<CompleteMultipartUpload(?:\s[^>]*)?>([\s\S]*)<\/CompleteMultipartUpload>$/.exec(doc);
  if (!root) return null;
  const inner = root[1];
  const parts: CompletedPartRef[] = [];
  const partRe = /<Part>([\s\S]*?)<\/Part>/g;
  // one pass: between and around the parts there may be nothing but whitespace
  let pos = 0;
  for (let m = partRe.exec(inner); m; m = partRe.exec(inner)) {
    if (inner.slice(pos, m.index).trim() !== '') return null;
    pos = partRe.lastIndex;
    const number = /<PartNumber>\s*(\d{1,9})\s*<\/PartNumber>/.exec(m[1]);
    const etag = /<ETag>([^<]*)<\/ETag>/.exec(m[1]);
    if (!number || !etag) return null;
    const decoded = decodeXmlText(etag[1]);
    if (decoded === null) return null;
    parts.push({ partNumber: Number(number[1]), etag: decoded.trim() });
  }
  return inner.slice(pos).trim() === '' ? parts : null;
}

/** Reads a request body of at most `limit` bytes; null when it is longer. */
async function readLimited(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Buffer | null> {
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks, size);
}

/**
 * Answers one multipart request to the local store's `/_blobs/<key>` (a request whose query names `uploads` or
 * `uploadId`), speaking S3's protocol: `POST ?uploads` (InitiateMultipartUploadResult), `PUT ?partNumber=&uploadId=`
 * (the part streamed to disk; 200 with its ETag), `GET ?uploadId=` (ListPartsResult, `max-parts` and
 * `part-number-marker` honoured), `POST ?uploadId=` (CompleteMultipartUpload XML in, CompleteMultipartUploadResult out)
 * and `DELETE ?uploadId=` (204). Every request must carry a valid presigned-URL signature for exactly that request
 * (method, upload id and part number are signed), and, except abort, its key must pass the gate. Errors are S3 XML
 * documents with S3's codes; nothing is stored by a refused request.
 */
export async function handleBlobMultipart(
  store: LocalBlobStore,
  request: Request,
  opts: BlobMultipartOptions,
  /** The request body as a Node stream (see `requestBody`), calling `onData` per chunk; default: read `request.body`. */
  body?: (onData?: () => void) => RequestBody,
): Promise<Response> {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  const url = new URL(request.url);
  const resource = url.pathname;
  const base = { ...BLOB_CORS, 'x-amz-request-id': requestId };
  const fail = (status: number, code: string, message: string) =>
    new Response(s3ErrorXml(code, message, resource, requestId), { status, headers: { ...base, 'Content-Type': 'application/xml' } });
  const ok = (body: string) => new Response(body, { status: 200, headers: { ...base, 'Content-Type': 'application/xml' } });
  const discardBody = () => request.body?.cancel().catch(() => undefined);

  const forwardedHost = opts.trustProxy ? request.headers.get('x-forwarded-host')?.split(',')[0]?.trim() : undefined;
  const header = (n: string) => (n.toLowerCase() === 'host' && forwardedHost ? forwardedHost : (request.headers.get(n) ?? undefined));
  const verdict = store.verifyPresignedMultipart({ method: request.method, path: url.pathname, query: url.searchParams, header });
  if (!verdict.ok) {
    await discardBody();
    return fail(verdict.status, verdict.code, verdict.message);
  }
  const { key } = verdict;
  let gate: GateVerdict = { ok: true };
  if (verdict.op !== 'abort') {
    gate = await opts.gate(key);
    if (!gate.ok) {
      await discardBody();
      return fail(403, 'AccessDenied', gate.message);
    }
  }
  const size = gate.ok ? gate.size : undefined;
  let received: RequestBody | undefined;

  try {
    switch (verdict.op) {
      case 'create': {
        const contentType = verdict.contentType ?? request.headers.get('content-type') ?? undefined;
        const uploadId = await store.multipart.create(key, contentType ? { contentType } : undefined);
        return ok(xmlDocument('InitiateMultipartUploadResult', `${bucketAndKey(key)}<UploadId>${xml(uploadId)}</UploadId>`));
      }

      case 'part': {
        const declared = request.headers.get('content-length');
        if (declared === null) {
          await discardBody();
          return fail(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');
        }
        const length = /^\d{1,16}$/.test(declared.trim()) ? Number(declared) : NaN;
        if (!Number.isSafeInteger(length)) {
          await discardBody();
          return fail(400, 'InvalidArgument', 'Content-Length must be a non-negative integer.');
        }
        // no part may be larger than S3 allows, nor make the parts together larger than the upload's reserved size
        const others = await store.storedPartBytes(key, verdict.uploadId, verdict.partNumber);
        if (length > MULTIPART_MAX_PART_SIZE || (size !== undefined && others + length > size)) {
          await discardBody();
          return fail(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
        }
        // bytes are arriving: keep the reservation alive
        const touch = gate.ok ? gate.touch : undefined;
        touch?.();
        received = body?.(touch);
        const source = received ? received.stream : request.body ? Readable.fromWeb(request.body as never) : Readable.from([]);
        const part = await store.uploadPart(key, verdict.uploadId, verdict.partNumber, source, length);
        return new Response(null, { status: 200, headers: { ...base, ETag: part.etag } });
      }

      case 'list': {
        const q = url.searchParams;
        const maxRaw = q.get('max-parts');
        const markerRaw = q.get('part-number-marker');
        const maxParts = maxRaw === null ? MAX_LIST_PARTS : /^\d{1,9}$/.test(maxRaw) ? Math.min(Number(maxRaw), MAX_LIST_PARTS) : NaN;
        const marker = markerRaw === null ? 0 : /^\d{1,9}$/.test(markerRaw) ? Number(markerRaw) : NaN;
        if (Number.isNaN(maxParts)) return fail(400, 'InvalidArgument', 'max-parts must be an integer between 0 and 2147483647');
        if (Number.isNaN(marker)) return fail(400, 'InvalidArgument', 'part-number-marker must be an integer between 0 and 2147483647');
        const after = (await store.multipart.listParts(key, verdict.uploadId)).filter((p) => p.partNumber > marker);
        const page = after.slice(0, maxParts);
        const truncated = after.length > page.length;
        const next = page.length ? page[page.length - 1].partNumber : marker;
        const parts = page
          .map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${xml(p.etag)}</ETag><Size>${p.size}</Size></Part>`)
          .join('');
        return ok(
          xmlDocument(
            'ListPartsResult',
            `${bucketAndKey(key)}<UploadId>${xml(verdict.uploadId)}</UploadId><StorageClass>STANDARD</StorageClass>` +
              `<PartNumberMarker>${marker}</PartNumberMarker><NextPartNumberMarker>${next}</NextPartNumberMarker>` +
              `<MaxParts>${maxParts}</MaxParts><IsTruncated>${truncated}</IsTruncated>${parts}`,
          ),
        );
      }

      case 'complete': {
        const declared = Number(request.headers.get('content-length') ?? '0');
        if (declared > MAX_COMPLETE_BODY_BYTES) {
          await discardBody();
          return fail(400, 'MaxMessageLengthExceeded', 'Your request was too big.');
        }
        const raw = await readLimited(request.body, MAX_COMPLETE_BODY_BYTES);
        if (raw === null) return fail(400, 'MaxMessageLengthExceeded', 'Your request was too big.');
        const list = parseCompleteMultipartXml(raw.toString('utf8'));
        if (list === null || list.length === 0) {
          return fail(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema.');
        }
        let stat;
        try {
          stat = await store.multipart.complete(key, verdict.uploadId, list, size !== undefined ? { expectedSize: size } : undefined);
        } catch (err) {
          if (err instanceof BlobSizeError) {
            return err.received > err.expected
              ? fail(400, 'EntityTooLarge', `The parts hold ${err.received} bytes; this upload must have exactly ${err.expected}.`)
              : fail(400, 'InvalidRequest', `The parts hold ${err.received} bytes; this upload must have exactly ${err.expected}.`);
          }
          throw err;
        }
        // the file may have been deleted while the parts were joined: then these bytes belong to nobody
        if (!(await opts.stillWanted(key))) {
          await store.delete(key);
          return fail(403, 'AccessDenied', 'This upload URL is no longer valid.');
        }
        const location = `${url.origin}${url.pathname}`;
        return ok(xmlDocument('CompleteMultipartUploadResult', `<Location>${xml(location)}</Location>${bucketAndKey(key)}<ETag>${xml(stat.etag)}</ETag>`));
      }

      case 'abort': {
        await store.multipart.abort(key, verdict.uploadId);
        return new Response(null, { status: 204, headers: base });
      }
    }
  } catch (err) {
    if (err instanceof MultipartError) return fail(STATUS_OF[err.code], err.code, err.message);
    if (err instanceof BlobExistsError) return fail(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
    if (err instanceof BlobSizeError) {
      return err.received > err.expected
        ? fail(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size')
        : fail(400, 'IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header');
    }
    if (request.signal.aborted) {
      opts.log?.info('multipart request aborted by the client');
      return fail(ERRORS.CLIENT_CLOSED.status, 'RequestAborted', ERRORS.CLIENT_CLOSED.message);
    }
    if (isStorageFull(err)) {
      // a clear answer S3 clients retry (the part's temp file is gone): read the rest of the body so it is heard
      await received?.discardRest();
      return fail(507, 'ServiceUnavailable', ERRORS.STORAGE_FULL.message);
    }
    opts.log?.warn('multipart request failed', { err });
    return fail(500, 'InternalError', 'We encountered an internal error. Please try again.');
  }
}

/**
 * Mounts {@link handleBlobMultipart} on `/_blobs/*` ahead of the single-PUT route (requests without `uploads` or
 * `uploadId` in the query pass on to it), plus the CORS preflight answer for every `/_blobs` request. The gate admits
 * keys of pending files whose reservation and dropzone are still alive, as the single PUT does.
 */
export function mountBlobMultipartRoutes(app: Hono<AppEnv>, ctx: ApiContext, store: LocalBlobStore): void {
  const path = `${LOCAL_BLOB_URL_PREFIX}*`;
  const log = ctx.log.child('uploads');
  const renewEveryMs = (ctx.config.uploads.reservationGraceSeconds * 1000) / 4;
  const opts: BlobMultipartOptions = {
    trustProxy: ctx.config.server.trustProxy,
    log,
    async gate(key) {
      const pending = await ctx.files.pendingUpload(key);
      if (!pending) return { ok: false, message: 'This upload URL is no longer valid.' };
      if (pending.expired) return { ok: false, message: 'Request has expired' };
      const { file } = pending;
      let renewedAt = -Infinity;
      return {
        ok: true,
        size: file.size,
        touch() {
          if (ctx.clock.now() - renewedAt < renewEveryMs) return;
          renewedAt = ctx.clock.now();
          ctx.files.renewPending(file).catch((err) => log.warn('could not renew an upload reservation', { err }));
        },
      };
    },
    async stillWanted(key) {
      return (await ctx.files.byBlobKey(key)) !== undefined;
    },
  };
  app.options(path, () => new Response(null, { status: 204, headers: BLOB_CORS }));
  app.on(['GET', 'PUT', 'POST', 'DELETE'], path, async (c, next) => {
    if (!isMultipartQuery(new URL(c.req.url).searchParams)) return next();
    return handleBlobMultipart(store, c.req.raw, opts, (onData) => requestBody(c, onData));
  });
}
