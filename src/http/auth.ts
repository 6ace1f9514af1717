import type { MiddlewareHandler } from 'hono';
import { AppError } from '../core/errors.js';
import type { Principal } from '../core/permissions.js';
import type { ApiContext } from './context.js';
import { requestHeader } from './middleware.js';
import type { AppEnv } from './route.js';

/** Reads the API key secret from `x-api-key` or `Authorization: Bearer`. */
export function apiKeySecretOf(header: (name: string) => string | undefined): string | undefined {
  return header('x-api-key')?.trim() || bearerSecretOf(header('authorization'));
}

/** The secret of an `Authorization: Bearer <secret>` header. */
function bearerSecretOf(authorization: string | undefined): string | undefined {
  const auth = authorization?.trim();
  const m = auth && /^Bearer\s+(.+)$/i.exec(auth);
  return m ? m[1].trim() : undefined;
}

/**
 * Resolves the caller into `c.get('principal')`. Credentials that are present but wrong are 401 right here;
 * no credentials at all leave an anonymous principal, and each route decides (grants to `anyone` apply).
 */
export function authMiddleware(ctx: ApiContext): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const principal: Principal = {};
    // x-api-key and x-dropzone-id straight from Node's parsed headers (the adapter would validate each name first);
    // authorization through the Request, which joins repeats where Node keeps the first
    const secret = requestHeader(c, 'x-api-key')?.trim() || bearerSecretOf(c.req.header('authorization'));
    if (secret !== undefined) {
      const key = await ctx.keys.authenticate(secret);
      if (!key) throw new AppError('UNAUTHENTICATED', 'Invalid API key.');
      principal.key = key;
    }
    const dropzoneId = requestHeader(c, 'x-dropzone-id')?.trim();
    if (dropzoneId) {
      if (!ctx.config.security.dropzoneIdAuth)
        throw new AppError('UNAUTHENTICATED', 'x-dropzone-id authentication is disabled on this server; use an API key.');
      if (!(await ctx.meta.dropzoneById(dropzoneId))) throw new AppError('UNAUTHENTICATED', 'Invalid dropzone id.');
      principal.dropzoneId = dropzoneId;
    }
    c.set('principal', principal);
    await next();
  };
}
