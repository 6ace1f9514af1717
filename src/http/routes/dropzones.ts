import type { Context } from 'hono';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import type { Principal } from '../../core/permissions.js';
import type { Dropzone } from '../../core/ports/metadata-store.js';
import type { Viewed } from '../../core/dropzones.js';
import { fileBatches, filePage } from '../../core/file-batches.js';
import type { ApiContext } from '../context.js';
import { streamJsonList } from '../json-stream.js';
import { pageQuery, pageRequest, setNextLink } from '../paging.js';
import { dropzoneAnswerText, ok, presentDropzone, presentFile } from '../presenters.js';
import { type AppEnv, type RouteDef, defineRoute, jsonText } from '../route.js';
import {
  createDropzoneBody,
  dropzoneSchema,
  envelope,
  errorResponse,
  successMessageSchema,
  fileItemSchema,
  updateDropzoneBody,
  uploadRequestBody,
  uploadResponseSchema,
} from '../schemas.js';

/** Throws 401 unless the caller authenticated with an API key; returns the key. */
export function requireKey(p: Principal) {
  if (!p.key) throw new AppError('UNAUTHENTICATED', 'This endpoint needs an API key: send x-api-key or Authorization: Bearer.');
  return p.key;
}

/** Throws 401 (or 400 when a key was sent instead) unless `x-dropzone-id` identified a dropzone; returns its id. */
export function requireDropzoneId(p: Principal): string {
  if (p.dropzoneId) return p.dropzoneId;
  if (p.key) throw new AppError('MISSING_IDS', 'Missing dropzoneId: send the x-dropzone-id header, or use /dropzones/:id routes with an API key.');
  throw new AppError('UNAUTHENTICATED', 'Missing dropzoneId: send the x-dropzone-id header.');
}


/**
 * Shared by both generations: the files of a dropzone the caller may list. Without `limit`/`cursor` all of them,
 * streamed in batches (see streamJsonList); with them one page and a `Link` rel="next" when more follow (paging.ts).
 */
export async function listFilesOf(ctx: ApiContext, c: Context<AppEnv>, dz: Dropzone): Promise<Response> {
  const page = pageRequest(c, 'file');
  const view = await ctx.dropzones.view(c.get('principal'), dz);
  if (!page) return streamJsonList(c, fileBatches(ctx.meta, dz.id), (f) => presentFile(f, dz, view), ctx.log);
  const { items, next } = await filePage(ctx.meta, dz.id, page.after, page.limit);
  setNextLink(c, 'file', page.limit, next);
  return c.json(ok(items.map((f) => presentFile(f, dz, view))));
}

/** Shared by both generations: reserve space and answer with the signed upload URL. */
export async function requestUpload(ctx: ApiContext, c: Context<AppEnv>, dz: Dropzone, body: z.infer<typeof uploadRequestBody>) {
  const { file, upload } = await ctx.files.requestUpload(c.get('principal'), dz, body);
  const view = await ctx.dropzones.view(c.get('principal'), dz);
  return c.json(
    ok({
      fileId: file.id,
      signedUrl: upload.url,
      method: 'PUT' as const,
      headers: upload.headers,
      expiresAt: upload.expiresAt,
      file: presentFile(file, dz, view),
    }),
    200,
  );
}

/** Routes of the dropzone resource, both API generations. */
export function dropzoneRoutes(ctx: ApiContext): RouteDef[] {
  const present = async (p: Principal, dz: Dropzone) => presentDropzone(dz, await ctx.dropzones.view(p, dz), ctx.publicUrl());
  const viewedText = ({ dz, view }: Viewed) => dropzoneAnswerText(dz, view, ctx.publicUrl());
  /** The answer to a dropzone GET: at once when the dropzone came at once (then the whole request can be synchronous). */
  const answerViewed = (c: Context<AppEnv>, v: Viewed | Promise<Viewed>) => (v instanceof Promise ? v.then((w) => jsonText(c, viewedText(w))) : jsonText(c, viewedText(v)));
  const sizeErrors = {
    400: errorResponse('Invalid body, bounds, or an attempt to shrink'),
    401: errorResponse('Missing or invalid credentials'),
    402: errorResponse('Not enough GB-months (message gives needed and available)'),
  };
  const update = (method: 'patch' | 'put') =>
    defineRoute({
      method,
      path: '/dropzones/:id',
      operationId: method === 'patch' ? 'updateDropzone' : 'updateDropzonePut',
      summary: 'Extend a dropzone (gb and/or days; never lower); costs the GB-month difference',
      tags: ['dropzones'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      body: updateDropzoneBody,
      responses: { 200: { description: 'Updated', schema: envelope(dropzoneSchema) }, ...sizeErrors, 404: errorResponse('Not found'), 410: errorResponse('Expired') },
      handler: async (c, body) => {
        requireKey(c.get('principal'));
        return c.json(ok(await present(c.get('principal'), await ctx.dropzones.update(c.get('principal'), c.req.param('id')!, body))));
      },
    });

  return [
    defineRoute({
      method: 'post',
      path: '/dropzones',
      operationId: 'createDropzone',
      summary: 'Create a dropzone (or update the one of the same name the key owns)',
      tags: ['dropzones'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      body: createDropzoneBody,
      responses: { 201: { description: 'Created', schema: envelope(dropzoneSchema) }, 200: { description: 'Existing dropzone of that name updated', schema: envelope(dropzoneSchema) }, ...sizeErrors },
      handler: async (c, body) => {
        const key = requireKey(c.get('principal'));
        const { dz, created } = await ctx.dropzones.create(key, body);
        return c.json(ok(await present(c.get('principal'), dz)), created ? 201 : 200);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/dropzones',
      operationId: 'listDropzones',
      summary: "The caller's dropzones (owned or shared with the key); `?all=true` lists every dropzone (admin key only)",
      description: 'Oldest first. Paged with `limit`/`cursor` (next page in the `Link` header); all of them without.',
      tags: ['dropzones'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      query: [{ name: 'all', description: 'true: every dropzone (admin key only)', schema: { type: 'boolean' } }, ...pageQuery],
      responses: { 200: { description: 'Dropzones', schema: envelope(z.array(dropzoneSchema)) }, 400: errorResponse('Invalid all, limit or cursor'), 401: errorResponse('Missing or invalid credentials') },
      handler: async (c) => {
        const all = c.req.query('all');
        if (all !== undefined && all !== 'true' && all !== 'false') throw new AppError('VALIDATION', 'Invalid query: "all" must be true or false', { field: 'all' });
        const key = requireKey(c.get('principal'));
        const page = pageRequest(c, 'dropzone');
        const presentAll = async (list: Dropzone[]) => {
          const out = [];
          for (const dz of list) out.push(await present(c.get('principal'), dz));
          return out;
        };
        if (page) {
          const { items, next } = await ctx.dropzones.listPageFor(key, all === 'true', page.after, page.limit);
          setNextLink(c, 'dropzone', page.limit, next);
          return c.json(ok(await presentAll(items)));
        }
        // the whole list: a short one as one plain body, a long one streamed batch by batch
        const { first, rest } = await ctx.dropzones.listBatchesFor(key, all === 'true');
        if (!rest) return c.json(ok(await presentAll(first)));
        async function* presented() {
          yield await presentAll(first);
          for await (const batch of rest!) yield await presentAll(batch);
        }
        return streamJsonList(c, presented(), (d) => d, ctx.log);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/dropzones/:id',
      operationId: 'getDropzone',
      summary: 'Get a dropzone (dropzone.get)',
      tags: ['dropzones'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      responses: { 200: { description: 'The dropzone', schema: envelope(dropzoneSchema) }, 401: errorResponse('No credentials'), 403: errorResponse('Missing permission'), 404: errorResponse('Not found') },
      handler: (c) => answerViewed(c, ctx.dropzones.viewed(c.get('principal'), c.req.param('id')!, 'dropzone.get')),
    }),
    update('patch'),
    update('put'),
    defineRoute({
      method: 'delete',
      path: '/dropzones/:id',
      operationId: 'deleteDropzone',
      summary: 'Delete a dropzone with all its files and blobs (dropzone.own)',
      tags: ['dropzones'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      responses: { 200: { description: 'Deleted', schema: successMessageSchema }, 403: errorResponse('Not the owner'), 404: errorResponse('Not found') },
      handler: async (c) => {
        requireKey(c.get('principal'));
        await ctx.dropzones.remove(c.get('principal'), c.req.param('id')!);
        return c.json({ status: 'success', message: 'Dropzone deleted successfully.' });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/dropzones/:id/files',
      operationId: 'listDropzoneFiles',
      summary: 'List the files of a dropzone (dropzone.list)',
      description: 'Oldest first. Paged with `limit`/`cursor` (next page in the `Link` header); all of them without.',
      tags: ['files'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      query: pageQuery,
      responses: { 200: { description: 'Files', schema: envelope(z.array(fileItemSchema)) }, 400: errorResponse('Invalid limit or cursor'), 403: errorResponse('Missing permission'), 404: errorResponse('Not found') },
      handler: async (c) => {
        const dz = await ctx.dropzones.get(c.get('principal'), c.req.param('id')!, 'dropzone.list');
        return listFilesOf(ctx, c, dz);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/dropzones/:id/files',
      operationId: 'requestUploadUrl',
      summary: 'Reserve space and get a signed upload URL (dropzone.upload)',
      tags: ['files'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      body: uploadRequestBody,
      responses: {
        200: { description: 'Signed URL', schema: envelope(uploadResponseSchema) },
        400: errorResponse('Invalid body'),
        403: errorResponse('Missing permission'),
        404: errorResponse('Not found'),
        410: errorResponse('Dropzone expired'),
        413: errorResponse('File larger than maxFileSize, or not enough room left'),
      },
      handler: async (c, body) => requestUpload(ctx, c, await ctx.dropzones.get(c.get('principal'), c.req.param('id')!, 'dropzone.upload'), body),
    }),

    // First generation: the dropzone is named by the x-dropzone-id credential itself.
    defineRoute({
      method: 'get',
      path: '/dropzone',
      operationId: 'getDropzoneLegacy',
      summary: 'Get the dropzone named by x-dropzone-id',
      tags: ['first generation'],
      security: ['DropzoneAuth'],
      responses: { 200: { description: 'The dropzone', schema: envelope(dropzoneSchema) }, 400: errorResponse('An API key was sent instead of x-dropzone-id'), 401: errorResponse('Missing or unknown dropzone id') },
      handler: (c) => answerViewed(c, ctx.dropzones.viewed(c.get('principal'), requireDropzoneId(c.get('principal')), 'dropzone.get')),
    }),
    defineRoute({
      method: 'get',
      path: '/files',
      operationId: 'listFilesLegacy',
      summary: 'List the files of the dropzone named by x-dropzone-id',
      description: 'Oldest first. Paged with `limit`/`cursor` (next page in the `Link` header); all of them without.',
      tags: ['first generation'],
      security: ['DropzoneAuth'],
      query: pageQuery,
      responses: { 200: { description: 'Files', schema: envelope(z.array(fileItemSchema)) }, 400: errorResponse('An API key was sent instead of x-dropzone-id, or an invalid limit or cursor'), 401: errorResponse('Missing or unknown dropzone id') },
      handler: async (c) => {
        const dz = await ctx.dropzones.get(c.get('principal'), requireDropzoneId(c.get('principal')), 'dropzone.list');
        return listFilesOf(ctx, c, dz);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/files',
      operationId: 'requestUploadUrlLegacy',
      summary: 'Reserve space and get a signed upload URL in the dropzone named by x-dropzone-id',
      tags: ['first generation'],
      security: ['DropzoneAuth'],
      body: uploadRequestBody,
      responses: { 200: { description: 'Signed URL', schema: envelope(uploadResponseSchema) }, 400: errorResponse('Invalid body'), 401: errorResponse('Missing or unknown dropzone id'), 410: errorResponse('Expired'), 413: errorResponse('Too large / full') },
      handler: async (c, body) => requestUpload(ctx, c, await ctx.dropzones.get(c.get('principal'), requireDropzoneId(c.get('principal')), 'dropzone.upload'), body),
    }),
  ];
}
