import type { ApiContext } from '../context.js';
import { type RouteDef, defineRoute } from '../route.js';
import { errorSchema } from '../schemas.js';
import { sendFile } from '../send-file.js';

/**
 * Public links: `GET /cdn/:fileId/download` without authentication, allowed only when `anyone` holds
 * `file.download` on the file or `dropzone.download` on its dropzone; otherwise 404 (existence is not revealed).
 * Mounted both at the site root and under /api/v1.
 */
export function cdnRoutes(ctx: ApiContext, operationId = 'publicDownload'): RouteDef[] {
  return [
    defineRoute({
      method: 'get',
      path: '/cdn/:fileId/download',
      operationId,
      summary: 'Public download link (needs an `anyone` grant of file.download or dropzone.download)',
      tags: ['public'],
      security: [],
      head: true,
      responses: {
        200: { description: 'The bytes', contentType: 'application/octet-stream' },
        206: { description: 'Partial content', contentType: 'application/octet-stream' },
        304: { description: 'Not modified' },
        404: { description: 'No such public file', schema: errorSchema },
      },
      handler: async (c) => sendFile(c, ctx, await ctx.files.publicDownload(c.req.param('fileId')!)),
    }),
  ];
}
