import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { AppError, ERRORS, isStorageFull } from '../core/errors.js';
import type { Logger } from '../log/logger.js';

/**
 * The single error renderer: AppError → its status with `{status:"error", message, data?}`;
 * Hono HTTP exceptions keep their status; a full disk (see {@link isStorageFull}) is STORAGE_FULL (507); anything else
 * is logged and becomes a generic 500.
 */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context): Response => {
    if (err instanceof AppError) {
      return c.json({ status: 'error', message: err.message, ...(err.data ? { data: err.data } : {}) }, err.status as never);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      return c.json({ status: 'error', message: err.message || 'Request failed.' }, status);
    }
    if (isStorageFull(err)) {
      log.warn('storage full', { method: c.req.method, route: c.req.routePath, requestId: c.get('requestId' as never) });
      return c.json({ status: 'error', message: ERRORS.STORAGE_FULL.message }, 507);
    }
    log.error('unhandled error', { err, method: c.req.method, route: c.req.routePath, requestId: c.get('requestId' as never) });
    return c.json({ status: 'error', message: ERRORS.INTERNAL.message }, 500);
  };
}

/** 404 for unknown routes, in the API's error shape. */
export function notFoundHandler(c: Context): Response {
  return c.json({ status: 'error', message: `No route for ${c.req.method} ${c.req.path}.` }, 404);
}
