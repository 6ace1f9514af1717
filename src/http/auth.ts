import type { Context, MiddlewareHandler } from 'hono';
import { AppError } from '../core/errors.js';
import { NOT_NOW } from '../core/ports/metadata-store.js';
import type { Principal } from '../core/permissions.js';
import type { ApiContext } from './context.js';
import { requestHeader } from './middleware.js';
import type { AppEnv } from './route.js';

/**
 * The API key secret a request carries, from `x-api-key` or else `Authorization: Bearer`. `x-api-key` is read from
 * Node's parsed headers (the adapter's Request would validate the name first); `authorization` through the Request,
 * which joins repeats where Node keeps the first (a repeated credential is then refused, not one of them picked).
 */
export function apiKeySecret(c: Context): string | undefined {
  const direct = requestHeader(c, 'x-api-key')?.trim();
  if (direct) return direct;
  const auth = c.req.header('authorization')?.trim();
  const m = auth && /^Bearer\s+(.+)$/i.exec(auth);
  return m ? m[1].trim() : undefined;
}

/**
 * Resolves the caller into `c.get('principal')`. Credentials that are present but wrong are 401 right here;
 * no credentials at all leave an anonymous principal, and each route decides (grants to `anyone` apply).
 * An API key the store can look up at once (see `ImmediateLookups`) is resolved without a wait, so a route that can
 * answer at once too answers the request synchronously.
 */
export function authMiddleware(ctx: ApiContext): MiddlewareHandler<AppEnv> {
  return (c, next) => {
    const secret = apiKeySecret(c);
    const dropzoneId = requestHeader(c, 'x-dropzone-id')?.trim();
    if (!dropzoneId) {
      const key = secret === undefined ? undefined : ctx.keys.authenticateNow(secret);
      if (key !== NOT_NOW) {
        if (secret !== undefined && !key) throw new AppError('UNAUTHENTICATED', 'Invalid API key.');
        c.set('principal', key ? { key } : {});
        return next();
      }
    }
    return resolveLater(c, next, secret, dropzoneId);
  };

  async function resolveLater(c: Context<AppEnv>, next: () => Promise<void>, secret: string | undefined, dropzoneId: string | undefined): Promise<void> {
    const principal: Principal = {};
    if (secret !== undefined) {
      const key = await ctx.keys.authenticate(secret);
      if (!key) throw new AppError('UNAUTHENTICATED', 'Invalid API key.');
      principal.key = key;
    }
    if (dropzoneId) {
      if (!ctx.config.security.dropzoneIdAuth)
        throw new AppError('UNAUTHENTICATED', 'x-dropzone-id authentication is disabled on this server; use an API key.');
      if (!(await ctx.meta.dropzoneById(dropzoneId))) throw new AppError('UNAUTHENTICATED', 'Invalid dropzone id.');
      principal.dropzoneId = dropzoneId;
    }
    c.set('principal', principal);
    await next();
  }
}
