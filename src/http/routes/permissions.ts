import type { Context } from 'hono';
import { z } from 'zod';
import type { ResourceType } from '../../core/ports/metadata-store.js';
import type { ApiContext } from '../context.js';
import { pageQuery, pageRequest, setNextLink } from '../paging.js';
import { type AppEnv, type RouteDef, defineRoute } from '../route.js';
import { errorResponse, permissionListSchema, permissionsBody } from '../schemas.js';

const answerSchema = z.object({
  status: z.literal('success'),
  data: z.array(z.string()).describe('GET: the caller’s effective permissions (or those granted to ?publicId=); POST/DELETE: the grantee’s permissions after the change'),
  grants: permissionListSchema.optional().describe('every grant on the resource, for callers with an API key holding *.grant'),
});

/** Routes granting and revoking permissions on dropzones and files; the rules live in core/grants.ts. */
export function permissionRoutes(ctx: ApiContext): RouteDef[] {
  const routesFor = (type: ResourceType, path: string, idParam: string): RouteDef[] => {
    const body = permissionsBody(type);
    const change = (mode: 'grant' | 'revoke') => async (c: Context<AppEnv>, b: z.infer<typeof body>) =>
      c.json({ status: 'success', ...(await ctx.grants.change(mode, type, c.get('principal'), c.req.param(idParam)!, b)) });
    const tag = [type === 'dropzone' ? 'dropzones' : 'files'];
    const security = ['ApiKeyAuth', 'BearerAuth'] as ('ApiKeyAuth' | 'BearerAuth')[];
    return [
      defineRoute({
        method: 'get',
        path,
        operationId: `get${type === 'dropzone' ? 'Dropzone' : 'File'}Permissions`,
        summary: `The caller's permissions on the ${type} (?publicId= for a grantee's, with ${type}.grant)`,
        description: '`grants` is paged with `limit`/`cursor` in (grantee, permission) order (next page in the `Link` header; a grantee may continue on the next page); all of them without.',
        tags: tag,
        security,
        query: [{ name: 'publicId', description: 'a grantee whose permissions to answer in `data`', schema: { type: 'string' } }, ...pageQuery],
        responses: { 200: { description: 'Permissions', schema: answerSchema }, 400: errorResponse('Invalid limit or cursor'), 404: errorResponse('Not found') },
        handler: async (c) => {
          const page = pageRequest(c, 'grant');
          if (!page) return c.json({ status: 'success', ...(await ctx.grants.list(type, c.get('principal'), c.req.param(idParam)!, c.req.query('publicId'))) });
          const { next, ...answer } = await ctx.grants.listPage(type, c.get('principal'), c.req.param(idParam)!, c.req.query('publicId'), page.after, page.limit);
          setNextLink(c, 'grant', page.limit, next);
          return c.json({ status: 'success', ...answer });
        },
      }),
      defineRoute({
        method: 'post',
        path,
        operationId: `grant${type === 'dropzone' ? 'Dropzone' : 'File'}Permissions`,
        summary: `Grant permissions on the ${type} to a publicId or \`anyone\` (${type}.grant)`,
        tags: tag,
        security,
        body,
        responses: { 200: { description: 'Updated', schema: answerSchema }, 400: errorResponse('Unknown permission'), 403: errorResponse('Not allowed'), 404: errorResponse('Not found') },
        handler: change('grant'),
      }),
      defineRoute({
        method: 'delete',
        path,
        operationId: `revoke${type === 'dropzone' ? 'Dropzone' : 'File'}Permissions`,
        summary: `Revoke permissions on the ${type} (${type}.grant)`,
        tags: tag,
        security,
        body,
        responses: { 200: { description: 'Updated', schema: answerSchema }, 400: errorResponse('Unknown permission'), 403: errorResponse('Not allowed'), 404: errorResponse('Not found') },
        handler: change('revoke'),
      }),
    ];
  };

  return [...routesFor('dropzone', '/dropzones/:id/permissions', 'id'), ...routesFor('file', '/files/:fileId/permissions', 'fileId')];
}
