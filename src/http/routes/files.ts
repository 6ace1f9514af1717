import { z } from 'zod';
import type { ApiContext } from '../context.js';
import { okBoth, presentFile } from '../presenters.js';
import { type RouteDef, defineRoute } from '../route.js';
import { errorResponse, fileItemSchema, successMessageSchema } from '../schemas.js';
import { sendFile } from '../send-file.js';
import type { Principal } from '../../core/permissions.js';

/** The seed documents a bare FileItem, the SDK reads `.data`: the answer carries both. */
const bothShapes = fileItemSchema.extend({ status: z.literal('success'), data: fileItemSchema });

/** Routes of the file resource (`/files/:fileId…`), for api keys and x-dropzone-id alike. */
export function fileRoutes(ctx: ApiContext): RouteDef[] {
  const security = ['ApiKeyAuth', 'BearerAuth', 'DropzoneAuth'] as const;
  const item = async (p: Principal, fileId: string, permission: 'file.get' | 'file.upload.confirm') => {
    const { file, dz } = await ctx.files.get(p, fileId, permission);
    return presentFile(file, dz, await ctx.dropzones.view(p, dz));
  };
  return [
    defineRoute({
      method: 'get',
      path: '/files/:fileId',
      operationId: 'getFile',
      summary: 'Get a file (file.get)',
      tags: ['files'],
      security: [...security],
      responses: { 200: { description: 'The FileItem (bare, and again under data)', schema: bothShapes }, 404: errorResponse('Not found') },
      handler: async (c) => c.json(okBoth(await item(c.get('principal'), c.req.param('fileId')!, 'file.get'))),
    }),
    defineRoute({
      method: 'post',
      path: '/files/:fileId/confirm',
      operationId: 'confirmUpload',
      summary: 'Confirm an upload once the bytes were PUT (file.upload.confirm); idempotent',
      tags: ['files'],
      security: [...security],
      responses: {
        200: { description: 'The FileItem, now uploaded (bare, and again under data)', schema: bothShapes },
        404: errorResponse('Not found'),
        409: errorResponse('Bytes not uploaded yet, or of the wrong size (then discarded)'),
        410: errorResponse('The pending upload expired'),
      },
      handler: async (c) => {
        const p = c.get('principal');
        const { file, dz } = await ctx.files.confirm(p, c.req.param('fileId')!);
        return c.json(okBoth(presentFile(file, dz, await ctx.dropzones.view(p, dz))));
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/files/:fileId',
      operationId: 'deleteFile',
      summary: 'Delete a file (file.delete); releases its space',
      tags: ['files'],
      security: [...security],
      responses: { 200: { description: 'Deleted', schema: successMessageSchema }, 404: errorResponse('Not found') },
      handler: async (c) => {
        await ctx.files.remove(c.get('principal'), c.req.param('fileId')!);
        return c.json({ status: 'success', message: 'File deleted successfully.' });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/files/:fileId/download',
      operationId: 'downloadFile',
      summary: 'Download the bytes (file.download); Range, If-None-Match and HEAD supported',
      tags: ['files'],
      security: [...security],
      head: true,
      responses: {
        200: { description: 'The bytes', contentType: 'application/octet-stream' },
        206: { description: 'Partial content', contentType: 'application/octet-stream' },
        302: { description: 'Redirect to a short-lived presigned URL (S3 backend in redirect mode)' },
        304: { description: 'Not modified' },
        404: errorResponse('Not found'),
        409: errorResponse('Not uploaded yet'),
        416: { description: 'Range not satisfiable' },
      },
      handler: async (c) => sendFile(c, ctx, (await ctx.files.get(c.get('principal'), c.req.param('fileId')!, 'file.download')).file),
    }),
  ];
}
