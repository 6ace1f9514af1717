import { createHash } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { AppError } from '../../core/errors.js';
import type { PageCapability } from '../../core/page-tokens.js';
import type { Dropzone, StoredFile } from '../../core/ports/metadata-store.js';
import { readAsset } from '../../runtime/assets.js';
import { visitorId } from '../client-address.js';
import type { ApiContext } from '../context.js';
import { streamJsonList } from '../json-stream.js';
import { ok } from '../presenters.js';
import { isoDate } from '../../util/iso-date.js';
import { formatBytes } from '../../util/units.js';
import { htmlResponse, originOf, strictCsp } from '../html.js';
import { type AppEnv, type RouteDef, defineRoute, mountRoutes } from '../route.js';
import {
  completeMultipartBody,
  envelope,
  errorResponse,
  listPartsSchema,
  multipartStartSchema,
  signPartsBody,
  signedPartsSchema,
  uploadRequestBody,
} from '../schemas.js';
import { MULTIPART_MAX_PARTS, MULTIPART_MIN_PART_SIZE } from '../../blobs/blob-store.js';
import { z } from 'zod';

/**
 * The public dropzone page and its private API.
 *
 * HTML (never JSON):
 * - `GET /d/:code` — the page (`public/page.html` rendered on the server, with `public/page.js` and `public/page.css`).
 *   Unknown code: friendly 404 page; expired dropzone: friendly 410 page.
 * - `GET /assets/<file>` — static files of `public/` (embedded in the executable), read through `readAsset`.
 *
 * Page API (JSON, `{status:"success", data}` / `{status:"error", message}`), authenticated with the page token
 * embedded in the page, sent as `Authorization: Bearer <token>`; the token is bound to `:code` (see core/page-tokens.ts):
 * - `GET    /d/:code/api/summary` — name, maxSize, usedSpace, maxFileSize, deleteTime, serverTime, permissions.
 * - `POST   /d/:code/api/uploads` `{name, type, size}` — reserve space, get `{fileId, signedUrl, method, headers, expiresAt}`;
 *   one visitor (client address) holds at most `uploads.pagePendingMaxFiles`/`pagePendingMaxBytes` pending (429 beyond).
 * - `POST   /d/:code/api/uploads/:fileId/confirm` — confirm after the PUT.
 * - `POST   /d/:code/api/uploads/:fileId/multipart` — start (or get the open) multipart upload of a big file;
 *   `…/multipart/:uploadId/sign` `{partNumbers}`, `GET …/multipart/:uploadId` (stored parts, to resume),
 *   `POST …/multipart/:uploadId/complete` `{parts}` (then confirmed) — the API's multipart routes, for this dropzone.
 * - `DELETE /d/:code/api/uploads/:fileId` — cancel a pending upload of this dropzone (releases its space).
 * - `GET    /d/:code/api/files` — uploaded files; only when `anyone` holds `dropzone.list`. Each carries a
 *   `downloadUrl` (the public `/cdn/:fileId/download`, same rule) when `anyone` may download it.
 *
 * The dropzone `_id` never appears in the page or in these answers: under `x-dropzone-id` auth it is a credential.
 * Paths in the page are relative, so the page also works behind a reverse proxy under a path prefix.
 */
export function mountPageRoutes(app: Hono<AppEnv>, ctx: ApiContext): RouteDef[] {
  const { page: pages, clock } = ctx;
  // Embedded files and the configuration never change while the process runs: read, hash and build them once,
  // not on every request (in the executable each readAsset call copies the asset).
  const csp = contentSecurityPolicy(ctx);
  const templates = new Map<string, string>();
  const templateOf = (name: string) => {
    let t = templates.get(name);
    if (t === undefined) templates.set(name, (t = template(name)));
    return t;
  };
  const assets = new Map<string, { body: Uint8Array<ArrayBuffer>; etag: string } | null>();
  const assetOf = (name: string) => {
    if (!assets.has(name)) {
      const buf = readAsset(name);
      assets.set(name, buf && { body: new Uint8Array(buf), etag: `"${createHash('sha1').update(buf).digest('base64url')}"` });
    }
    return assets.get(name)!;
  };
  const html = (c: Context, status: number, body: string) => htmlResponse(c, csp, status, body);
  const errorPage = (c: Context, status: number, title: string, message: string) =>
    html(c, status, render(templateOf('error.html'), { title, message, status: String(status) }));

  // ---- static assets ----------------------------------------------------------------------------------------
  // a plain parameter, checked here: a pattern in a path would push Hono off its RegExpRouter (see docs.ts)
  app.get('/assets/:name', (c) => {
    const name = c.req.param('name');
    if (!ASSET_NAME_RE.test(name)) return c.notFound();
    const type = CONTENT_TYPES[name.slice(name.lastIndexOf('.') + 1)];
    const asset = type ? assetOf(name) : null;
    if (!asset) return c.json({ status: 'error', message: 'No such asset.' }, 404);
    const headers = { ETag: asset.etag, 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff' };
    if (c.req.header('if-none-match') === asset.etag) return new Response(null, { status: 304, headers });
    return new Response(asset.body, { status: 200, headers: { ...headers, 'Content-Type': type, 'Content-Length': String(asset.body.length) } });
  });

  // ---- the page ---------------------------------------------------------------------------------------------
  app.get('/d/:code', async (c) => {
    const code = c.req.param('code');
    const opened = CODE_RE.test(code) ? await pages.open(code) : undefined;
    if (!opened)
      return errorPage(c, 404, 'Dropzone not found', 'There is no dropzone at this address. Check the link you were given; it may have been mistyped or deleted.');
    const { dz, scope, token, tokenExpiresAt: expiresAt } = opened;
    const now = clock.now();
    if (dz.deleteTime <= now)
      return errorPage(c, 410, 'This dropzone has expired', `It closed on ${new Date(dz.deleteTime).toUTCString()}. Ask whoever sent you the link for a new one.`);
    const config = {
      code: dz.code,
      token,
      tokenExpiresAt: expiresAt,
      ...summaryOf(dz, scope, now),
      // null: the blob store cannot take parts, every file is one PUT
      multipartAbove: ctx.blobs.multipart ? ctx.config.uploads.pageMultipartAboveBytes : null,
      partsInFlight: ctx.config.uploads.pagePartsInFlight,
    };
    const name = displayName(dz);
    const page = render(templateOf('page.html'), {
      title: `${name} · Dropzone`,
      name,
      code: dz.code,
      spaceLeft: formatBytes(Math.max(0, dz.maxSize - dz.usedSpace)),
      maxSize: formatBytes(dz.maxSize),
      maxFileSize: formatBytes(Math.min(dz.maxFileSize, dz.maxSize)),
      timeLeft: formatDuration(dz.deleteTime - now),
      deleteIso: isoDate(dz.deleteTime),
      deleteUtc: new Date(dz.deleteTime).toUTCString(),
      // JSON inside <script type="application/json">: escape what could close the element or start a comment.
      config: { raw: JSON.stringify(config).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026') },
    });
    return html(c, 200, page);
  });
  // `/d/CODE/` → `../CODE` (relative, so a path prefix survives)
  app.get('/d/:code/', (c) => new Response(null, { status: 308, headers: { Location: `../${encodeURIComponent(c.req.param('code'))}` } }));

  // ---- the page API -----------------------------------------------------------------------------------------
  /** Verifies the page token for `:code` (core/page.ts decides what the session may do). */
  const session = async (c: Context<AppEnv>) => {
    const auth = c.req.header('authorization');
    const m = auth ? /^Bearer\s+(\S+)$/i.exec(auth.trim()) : null;
    const s = await pages.session(m?.[1], c.req.param('code')!);
    c.header('Cache-Control', 'no-store');
    return s;
  };

  const base = '/d/:code/api';
  const security = ['PageToken'] as const;
  const tags = ['page'];
  const refused = {
    403: errorResponse('The link does not allow this (listing, downloading), or the upload is already confirmed'),
    410: errorResponse('The dropzone expired'),
  };
  const mpErrors = {
    400: errorResponse('Invalid body or part number, or a part error (INVALID_PART, INVALID_PART_ORDER, PART_TOO_SMALL, PART_TOO_LARGE)'),
    404: errorResponse('No such file in this dropzone, or NO_SUCH_UPLOAD'),
  };
  const defs: RouteDef[] = [
    defineRoute({
      method: 'get',
      path: `${base}/summary`,
      operationId: 'pageSummary',
      summary: 'Summary of the dropzone for its page',
      tags,
      security: [...security],
      responses: { 200: { description: 'Name, space, time left and what the link allows', schema: envelope(pageSummarySchema) }, 410: refused[410] },
      handler: async (c) => {
        const s = await session(c);
        pages.notExpired(s);
        return c.json(ok(summaryOf(s.dz, s.scope, s.now)));
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/uploads`,
      operationId: 'pageRequestUpload',
      summary: 'Reserve space and get a signed upload URL',
      tags,
      security: [...security],
      body: uploadRequestBody,
      responses: {
        200: { description: 'The signed upload URL', schema: envelope(pageUploadSchema) },
        ...refused,
        413: errorResponse('File larger than maxFileSize, or not enough room left'),
      },
      handler: async (c, body) => {
        const s = await session(c);
        // the link is shared: one visitor (client address) may hold only a few pending uploads at once
        const visitor = visitorId(c, ctx.config.server.trustProxy);
        const { pagePendingMaxFiles: maxFiles, pagePendingMaxBytes: maxBytes } = ctx.config.uploads;
        const { file, upload, usedSpace } = await pages.requestUpload(s, body, visitor ? { id: visitor, maxFiles, maxBytes } : undefined);
        return c.json(ok({ fileId: file.id, signedUrl: upload.url, method: 'PUT' as const, headers: upload.headers, expiresAt: upload.expiresAt, usedSpace }));
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/uploads/:fileId/confirm`,
      operationId: 'pageConfirmUpload',
      summary: 'Confirm an upload once its bytes were PUT',
      tags,
      security: [...security],
      responses: {
        200: { description: 'The confirmed file', schema: envelope(z.object({ file: pageFileSchema, usedSpace: z.number() })) },
        ...refused,
        409: errorResponse('Bytes not uploaded yet, or of the wrong size (then discarded)'),
      },
      handler: async (c) => {
        const { file, usedSpace } = await pages.confirm(await session(c), c.req.param('fileId')!);
        return c.json(ok({ file: presentPageFile(file), usedSpace }));
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/uploads/:fileId/multipart`,
      operationId: 'pageStartMultipart',
      summary: 'Start (or get the open) multipart upload of a reserved file',
      tags,
      security: [...security],
      responses: { 200: { description: 'The upload and the proposed part size', schema: envelope(multipartStartSchema) }, ...refused, ...mpErrors },
      handler: async (c) => {
        const started = await pages.startMultipart(await session(c), c.req.param('fileId')!);
        return c.json(ok({ ...started, minPartSize: MULTIPART_MIN_PART_SIZE, maxParts: MULTIPART_MAX_PARTS }));
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/uploads/:fileId/multipart/:uploadId/sign`,
      operationId: 'pageSignParts',
      summary: 'Presigned PUT URLs for a batch of part numbers',
      tags,
      security: [...security],
      body: signPartsBody,
      responses: { 200: { description: 'One URL per part number', schema: envelope(signedPartsSchema) }, ...refused, ...mpErrors },
      handler: async (c, body) => {
        const parts = await pages.signParts(await session(c), c.req.param('fileId')!, c.req.param('uploadId')!, body.partNumbers);
        return c.json(ok({ parts: parts.map((p) => ({ partNumber: p.partNumber, url: p.url, method: 'PUT' as const, headers: p.headers, expiresAt: p.expiresAt })) }));
      },
    }),
    defineRoute({
      method: 'get',
      path: `${base}/uploads/:fileId/multipart/:uploadId`,
      operationId: 'pageListParts',
      summary: 'The parts stored so far (to resume)',
      tags,
      security: [...security],
      responses: { 200: { description: 'Parts by ascending number', schema: envelope(listPartsSchema) }, ...refused, ...mpErrors },
      handler: async (c) => {
        const parts = await pages.listParts(await session(c), c.req.param('fileId')!, c.req.param('uploadId')!);
        return c.json(ok({ parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, Size: p.size })) }));
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/uploads/:fileId/multipart/:uploadId/complete`,
      operationId: 'pageCompleteMultipart',
      summary: 'Join the parts and confirm the file',
      tags,
      security: [...security],
      body: completeMultipartBody,
      responses: {
        200: { description: 'The confirmed file', schema: envelope(z.object({ file: pageFileSchema, usedSpace: z.number() })) },
        ...refused,
        ...mpErrors,
        409: errorResponse('SIZE_MISMATCH: the parts do not add up to the reserved size (the upload stays open)'),
      },
      handler: async (c, body) => {
        const parts = body.parts.map((x) => ({ partNumber: x.PartNumber, etag: x.ETag }));
        const { file, usedSpace } = await pages.completeMultipart(await session(c), c.req.param('fileId')!, c.req.param('uploadId')!, parts);
        return c.json(ok({ file: presentPageFile(file), usedSpace }));
      },
    }),
    defineRoute({
      method: 'get',
      path: `${base}/uploads/:fileId`,
      operationId: 'pageGetUpload',
      summary: 'An upload of this dropzone as it stands now (the page polls it while the virus scan runs)',
      tags,
      security: [...security],
      responses: { 200: { description: 'The file', schema: envelope(z.object({ file: pageFileSchema })) }, ...refused },
      handler: async (c) => {
        const file = await pages.upload(await session(c), c.req.param('fileId')!);
        return c.json(ok({ file: presentPageFile(file) }));
      },
    }),
    defineRoute({
      method: 'delete',
      path: `${base}/uploads/:fileId`,
      operationId: 'pageCancelUpload',
      summary: 'Cancel a pending upload (releases its space); confirmed files cannot be deleted from the page',
      tags,
      security: [...security],
      responses: { 200: { description: 'Cancelled', schema: envelope(z.object({ cancelled: z.literal(true), usedSpace: z.number() })) }, ...refused },
      handler: async (c) => {
        const { usedSpace } = await pages.cancel(await session(c), c.req.param('fileId')!);
        return c.json(ok({ cancelled: true as const, usedSpace }));
      },
    }),
    defineRoute({
      method: 'get',
      path: `${base}/files`,
      operationId: 'pageListFiles',
      summary: 'Uploaded files (only when anyone holds dropzone.list)',
      tags,
      security: [...security],
      responses: { 200: { description: 'The uploaded files', schema: envelope(z.array(pageFileSchema.extend({ downloadUrl: z.string().optional() }))) }, ...refused },
      handler: async (c) => {
        const files = pages.uploadedFiles(await session(c));
        // the scope check runs on the first read: before answering, so a refusal is a clean 403
        const first = await files.next();
        return streamJsonList(
          c,
          prepend(first, files),
          ({ file, publicDownload }) => ({
            ...presentPageFile(file),
            ...(publicDownload ? { downloadUrl: `../cdn/${encodeURIComponent(file.id)}/download` } : {}),
          }),
          ctx.log,
        );
      },
    }),
  ];
  mountRoutes(app, '', defs);
  return defs;
}

const pageSummarySchema = z.object({
  name: z.string(),
  maxSize: z.number(),
  usedSpace: z.number(),
  maxFileSize: z.number(),
  deleteTime: z.number(),
  serverTime: z.number(),
  permissions: z.array(z.enum(['dropzone.upload', 'dropzone.list', 'dropzone.download'])),
});
const pageUploadSchema = z.object({
  fileId: z.string(),
  signedUrl: z.string(),
  method: z.literal('PUT'),
  headers: z.record(z.string(), z.string()),
  expiresAt: z.number(),
  usedSpace: z.number(),
});
const pageFileSchema = z.object({
  _id: z.string(),
  name: z.string(),
  size: z.number(),
  type: z.string(),
  createdAt: z.string(),
  status: z.enum(['pending', 'uploaded']),
  scanStatus: z.enum(['scanning', 'clean', 'quarantined', 'scan_failed']).optional().describe('virus scan, only when the server scans'),
});

/** Codes are 128-bit base64url (22 characters); anything else cannot exist. */
const CODE_RE = /^[A-Za-z0-9_-]{16,64}$/;
/** A file name under `/assets/` (and under `/assets/vendor/<pkg>/`). */
export const ASSET_NAME_RE = /^[A-Za-z0-9._-]+$/;

const CONTENT_TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  txt: 'text/plain; charset=utf-8',
};

const displayName = (dz: Dropzone) => dz.name?.trim() || 'Dropzone';

function summaryOf(dz: Dropzone, scope: PageCapability[], now: number) {
  return {
    name: displayName(dz),
    maxSize: dz.maxSize,
    usedSpace: dz.usedSpace,
    maxFileSize: Math.min(dz.maxFileSize, dz.maxSize),
    deleteTime: dz.deleteTime,
    serverTime: now,
    permissions: scope,
  };
}

/** `first` (an already-read result of `rest`) followed by the rest of `rest`. */
async function* prepend<T>(first: IteratorResult<T, unknown>, rest: AsyncIterator<T, unknown>): AsyncGenerator<T> {
  if (first.done) return;
  yield first.value;
  for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
}

/** A file as the page sees it: never the dropzone id. */
const presentPageFile = (f: StoredFile) => ({
  _id: f.id,
  name: f.name,
  size: f.size,
  type: f.type,
  createdAt: isoDate(f.createdAt),
  status: f.status,
  ...(f.scanState ? { scanStatus: f.scanState } : {}),
});

function template(name: string): string {
  const buf = readAsset(name);
  if (!buf) throw new Error(`missing page template public/${name}`);
  return buf.toString('utf8');
}

/** Replaces `{{key}}` with the HTML-escaped value (or `{raw}` verbatim). Unknown keys become empty. */
export function render(tpl: string, values: Record<string, string | { raw: string }>): string {
  return tpl.replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    const v = values[k];
    if (v === undefined) return '';
    return typeof v === 'string' ? escapeHtml(v) : v.raw;
  });
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/**
 * CSP: everything from this server only (see strictCsp). `connect-src` also names the origin of a configured public URL
 * and, for the S3 backend, the bucket's origin, because the browser PUTs the bytes straight to the signed URL.
 */
function contentSecurityPolicy(ctx: ApiContext): string {
  const connect = new Set<string>();
  const pub = ctx.config.server.publicUrl && originOf(ctx.config.server.publicUrl);
  if (pub) connect.add(pub);
  if (ctx.config.storage.backend === 's3') {
    const s3 = ctx.config.storage.s3;
    const ep = s3.endpoint && originOf(s3.endpoint);
    if (ep) {
      connect.add(ep);
      if (!s3.forcePathStyle) {
        const u = new URL(ep);
        connect.add(`${u.protocol}//${s3.bucket}.${u.host}`);
      }
    } else {
      connect.add(`https://${s3.bucket}.s3.${s3.region}.amazonaws.com`).add(`https://s3.${s3.region}.amazonaws.com`).add(`https://${s3.bucket}.s3.amazonaws.com`);
    }
  }
  return strictCsp(connect);
}

/** `12 days`, `5 hours`, `3 minutes`, or `less than a minute`. */
export function formatDuration(ms: number): string {
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (ms <= 0) return 'expired';
  const min = Math.floor(ms / 60_000);
  if (min < 1) return 'less than a minute';
  if (min < 120) return plural(min, 'minute');
  const h = Math.floor(min / 60);
  if (h < 48) return plural(h, 'hour');
  return plural(Math.round(ms / 86_400_000), 'day');
}
