import { z } from 'zod';
import { MULTIPART_MAX_PARTS, MULTIPART_MIN_PART_SIZE } from '../../blobs/blob-store.js';
import type { Context } from 'hono';
import type { ApiContext } from '../context.js';
import { parseCompleteMultipartXml } from './blob-multipart.js';
import { ok, okBoth, presentFile } from '../presenters.js';
import { type RouteDef, defineRoute } from '../route.js';
import {
  completeMultipartBody,
  errorResponse,
  envelope,
  fileItemSchema,
  listPartsSchema,
  multipartStartSchema,
  signPartsBody,
  signedPartsSchema,
  successMessageSchema,
} from '../schemas.js';

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
const x = (value: string | number) => String(value).replace(/[&<>"']/g, (ch) => XML_ESCAPES[ch]);

/**
 * True when the client asked for S3's XML answers (`Accept: application/xml`): Uppy 6's `signRequest` sends the
 * create, list, complete and abort requests to URLs its callback names and reads them as S3 would answer.
 */
function wantsS3Xml(c: Context): boolean {
  return /\bapplication\/xml\b/i.test(c.req.header('accept') ?? '');
}

/** An S3-style XML answer with root element `root`. */
function s3Xml(c: Context, root: string, inner: string): Response {
  return c.body(`<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${inner}</${root}>`, 200, {
    'content-type': 'application/xml',
  });
}

/** A CompleteMultipartUpload XML document as the JSON body of the complete route; null when it is not one. */
function completeFromXml(text: string): unknown {
  const parts = parseCompleteMultipartXml(text);
  return parts && { parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) };
}

const bothShapes = fileItemSchema.extend({ status: z.literal('success'), data: fileItemSchema });

/**
 * Multipart uploads of a reserved file (`/files/:fileId/multipart…`), for big files and bad networks: start, sign
 * parts, list the stored parts (resume), complete (then the file is confirmed), abort. Same permission as confirm
 * (`file.upload.confirm`). File ids are global, so there is no dropzone-scoped copy of these routes.
 */
export function multipartRoutes(ctx: ApiContext): RouteDef[] {
  const security = ['ApiKeyAuth', 'BearerAuth', 'DropzoneAuth'] as const;
  const common = {
    400: errorResponse('Invalid body or part number, a part error (INVALID_PART, INVALID_PART_ORDER, PART_TOO_SMALL, PART_TOO_LARGE)'),
    404: errorResponse('File not found, or NO_SUCH_UPLOAD: not the upload pinned to this file'),
    409: errorResponse('The file is already uploaded'),
    410: errorResponse('The pending upload expired'),
  };
  const ids = (c: { req: { param(name: string): string | undefined } }) => ({ fileId: c.req.param('fileId')!, uploadId: c.req.param('uploadId')! });
  return [
    defineRoute({
      method: 'post',
      path: '/files/:fileId/multipart',
      operationId: 'startMultipartUpload',
      summary: 'Start a multipart upload of a reserved file, or get the one already open for it (file.upload.confirm)',
      tags: ['files'],
      security: [...security],
      responses: { 200: { description: 'The upload and the proposed part size', schema: envelope(multipartStartSchema) }, ...common },
      handler: async (c) => {
        const fileId = c.req.param('fileId')!;
        const started = await ctx.multipart.start(c.get('principal'), fileId);
        if (wantsS3Xml(c)) return s3Xml(c, 'InitiateMultipartUploadResult', `<Key>${x(fileId)}</Key><UploadId>${x(started.uploadId)}</UploadId>`);
        return c.json(ok({ ...started, minPartSize: MULTIPART_MIN_PART_SIZE, maxParts: MULTIPART_MAX_PARTS }));
      },
    }),
    defineRoute({
      method: 'post',
      path: '/files/:fileId/multipart/:uploadId/sign',
      operationId: 'signMultipartParts',
      summary: 'Presigned PUT URLs for a batch of part numbers (file.upload.confirm); keeps the reservation alive',
      tags: ['files'],
      security: [...security],
      body: signPartsBody,
      responses: { 200: { description: 'One URL per part number, in the order asked', schema: envelope(signedPartsSchema) }, ...common },
      handler: async (c, body) => {
        const { fileId, uploadId } = ids(c);
        const parts = await ctx.multipart.signParts(c.get('principal'), fileId, uploadId, body.partNumbers);
        return c.json(ok({ parts: parts.map((p) => ({ partNumber: p.partNumber, url: p.url, method: 'PUT' as const, headers: p.headers, expiresAt: p.expiresAt })) }));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/files/:fileId/multipart/:uploadId',
      operationId: 'listMultipartParts',
      summary: 'The parts stored so far, to resume (file.upload.confirm)',
      tags: ['files'],
      security: [...security],
      responses: { 200: { description: 'Parts by ascending number', schema: envelope(listPartsSchema) }, ...common },
      handler: async (c) => {
        const { fileId, uploadId } = ids(c);
        const parts = await ctx.multipart.listParts(c.get('principal'), fileId, uploadId);
        if (wantsS3Xml(c)) {
          const items = parts.map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${x(p.etag)}</ETag><Size>${p.size}</Size></Part>`);
          return s3Xml(c, 'ListPartsResult', `<Key>${x(fileId)}</Key><UploadId>${x(uploadId)}</UploadId>${items.join('')}`);
        }
        return c.json(ok({ parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag, Size: p.size })) }));
      },
    }),
    defineRoute({
      method: 'post',
      path: '/files/:fileId/multipart/:uploadId/complete',
      operationId: 'completeMultipartUpload',
      summary: 'Join the parts (their total must equal the reserved size) and confirm the file (file.upload.confirm)',
      tags: ['files'],
      security: [...security],
      body: completeMultipartBody,
      xmlBody: completeFromXml,
      responses: {
        200: { description: 'The FileItem, now uploaded (bare, and again under data)', schema: bothShapes },
        ...common,
        409: errorResponse('SIZE_MISMATCH: the parts do not add up to the reserved size (the upload stays open)'),
      },
      handler: async (c, body) => {
        const p = c.get('principal');
        const { fileId, uploadId } = ids(c);
        const parts = body.parts.map((x) => ({ partNumber: x.PartNumber, etag: x.ETag }));
        const { file, dz } = await ctx.multipart.complete(p, fileId, uploadId, parts);
        if (wantsS3Xml(c)) {
          const location = c.req.url.replace(/\/multipart\/[^?]*(\?.*)?$/, '');
          return s3Xml(c, 'CompleteMultipartUploadResult', `<Location>${x(location)}</Location><Key>${x(fileId)}</Key>`);
        }
        return c.json(okBoth(presentFile(file, dz, await ctx.dropzones.view(p, dz))));
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/files/:fileId/multipart/:uploadId',
      operationId: 'abortMultipartUpload',
      summary: 'Discard the upload, its parts and the pending file, releasing its reserved space (file.upload.confirm)',
      tags: ['files'],
      security: [...security],
      responses: { 200: { description: 'Aborted', schema: successMessageSchema }, ...common },
      handler: async (c) => {
        const { fileId, uploadId } = ids(c);
        await ctx.multipart.abort(c.get('principal'), fileId, uploadId);
        if (wantsS3Xml(c)) return c.body(null, 204);
        return c.json({ status: 'success', message: 'Multipart upload aborted.' });
      },
    }),
  ];
}
