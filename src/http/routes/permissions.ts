import type { Context } from 'hono';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { hashSecret } from '../../core/ids.js';
import {
  ANYONE,
  type Principal,
  dropzonePermissions,
  filePermissions,
  invisible,
  requirePermission,
  validatePermissionNames,
} from '../../core/permissions.js';
import type { ResourceType } from '../../db/repositories.js';
import type { ApiContext } from '../context.js';
import { type AppEnv, type RouteDef, defineRoute } from '../route.js';
import { errorResponse, permissionListSchema, permissionsBody } from '../schemas.js';

const answerSchema = z.object({
  status: z.literal('success'),
  data: z.array(z.string()).describe('GET: the caller’s effective permissions (or those granted to ?publicId=); POST/DELETE: the grantee’s permissions after the change'),
  grants: permissionListSchema.optional().describe('every grant on the resource, for callers holding *.grant'),
});

/** Routes granting and revoking permissions on dropzones and files. */
export function permissionRoutes(ctx: ApiContext): RouteDef[] {
  const { repo, clock } = ctx;

  /** The resource, the caller's effective permissions on it, and the names of its `own`/`grant` permissions. */
  const load = (type: ResourceType, p: Principal, id: string) => {
    if (type === 'dropzone') {
      const dz = repo.dropzoneById(id);
      if (!dz) throw invisible(p, new AppError('DROPZONE_NOT_FOUND'));
      return { held: dropzonePermissions(repo, p, dz) as Set<string>, own: 'dropzone.own', grant: 'dropzone.grant', notFound: new AppError('DROPZONE_NOT_FOUND') };
    }
    const file = repo.fileById(id);
    const dz = file && repo.dropzoneById(file.dropzone_id);
    if (!file || !dz) throw invisible(p, new AppError('FILE_NOT_FOUND'));
    return { held: filePermissions(repo, p, file, dz) as Set<string>, own: 'file.own', grant: 'file.grant', notFound: new AppError('FILE_NOT_FOUND') };
  };

  const grantList = (type: ResourceType, id: string) => {
    const by = new Map<string, string[]>();
    for (const g of repo.grantsOn(type, id)) by.set(g.principal, [...(by.get(g.principal) ?? []), g.permission]);
    return [...by].map(([publicId, permissions]) => ({ publicId, permissions }));
  };
  const grantsOf = (type: ResourceType, id: string, principal: string) =>
    repo.grantsOn(type, id).filter((g) => g.principal === principal).map((g) => g.permission);

  /** `anyone`, a publicId, or (SDK 0.3) a key secret → the grantee's publicId. */
  const resolveGrantee = (body: { publicId?: string; apiKey?: string }) => {
    const ref = (body.publicId ?? body.apiKey)!;
    if (ref === ANYONE) return ANYONE;
    const key = repo.keyByPublicId(ref) ?? repo.keyByHash(hashSecret(ref));
    if (!key || key.revoked_at !== null) throw new AppError('APIKEY_NOT_FOUND', `No API key with publicId "${body.publicId ?? '(given apiKey)'}".`, { field: 'publicId' });
    return key.public_id;
  };

  const routesFor = (type: ResourceType, path: string, idParam: string): RouteDef[] => {
    const body = permissionsBody(type);
    const change = (mode: 'grant' | 'revoke') => (c: Context<AppEnv>, b: z.infer<typeof body>) => {
      const p = c.var.principal;
      const id = c.req.param(idParam)!;
      validatePermissionNames(type, b.permissions);
      // changing who may do what is never anonymous, even where `anyone` was granted *.grant
      if (!p.key) throw new AppError('UNAUTHENTICATED', 'Granting and revoking permissions needs an API key.');
      const r = load(type, p, id);
      requirePermission(p, r.held, r.grant, r.notFound);
      for (const name of b.permissions) {
        if (name === r.own && !r.held.has(r.own)) throw new AppError('FORBIDDEN', `Only an owner can ${mode} ${r.own}.`, { permission: r.own });
        if (mode === 'grant' && !r.held.has(name)) throw new AppError('FORBIDDEN', `Cannot grant ${name}: you do not hold it.`, { permission: name });
      }
      const grantee = resolveGrantee(b);
      repo.db.transaction(() => {
        for (const name of b.permissions) {
          if (mode === 'grant') repo.insertGrant(type, id, grantee, name, clock.now());
          else repo.deleteGrant(type, id, grantee, name);
        }
      })();
      return c.json({ status: 'success', data: grantsOf(type, id, grantee), grants: grantList(type, id) });
    };
    const tag = [type === 'dropzone' ? 'dropzones' : 'files'];
    const security = ['ApiKeyAuth', 'BearerAuth'] as ('ApiKeyAuth' | 'BearerAuth')[];
    return [
      defineRoute({
        method: 'get',
        path,
        operationId: `get${type === 'dropzone' ? 'Dropzone' : 'File'}Permissions`,
        summary: `The caller's permissions on the ${type} (?publicId= for a grantee's, with ${type}.grant)`,
        tags: tag,
        security,
        responses: { 200: { description: 'Permissions', schema: answerSchema }, 404: errorResponse('Not found') },
        handler: (c) => {
          const p = c.var.principal;
          const id = c.req.param(idParam)!;
          const r = load(type, p, id);
          if (r.held.size === 0) throw invisible(p, r.notFound);
          const canGrant = r.held.has(r.grant);
          const who = c.req.query('publicId');
          if (who !== undefined) {
            requirePermission(p, r.held, r.grant, r.notFound);
            return c.json({ status: 'success', data: grantsOf(type, id, resolveGrantee({ publicId: who })), grants: grantList(type, id) });
          }
          return c.json({ status: 'success', data: [...r.held].sort(), ...(canGrant ? { grants: grantList(type, id) } : {}) });
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
