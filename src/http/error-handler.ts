import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { AppError, ERRORS } from '../core/errors.js';
import type { Logger } from '../log/logger.js';

/**
 * The single error renderer: AppError → its status with `{status:"error", message, data?}`;
 * Hono HTTP exceptions keep their status; anything else is logged and becomes a generic 500.
 */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context): Response => {
    if (err instanceof AppError) {
      return c.json({ status: 'error', code: err.code, message: err.message, ...(err.data ? { data: err.data } : {}) }, err.status as never);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      return c.json({ status: 'error', code: status >= 500 ? 'INTERNAL' : 'REQUEST_REJECTED', message: err.message || ERRORS.REQUEST_REJECTED.message }, status);
    }
    log.error('unhandled error', { err, method: c.req.method, route: c.req.routePath, requestId: c.get('requestId' as never) });
    return c.json({ status: 'error', code: 'INTERNAL', message: ERRORS.INTERNAL.message }, 500);
  };
}

/** 404 for unknown routes, in the API's error shape. */
export function notFoundHandler(c: Context): Response {
  return c.json({ status: 'error', code: 'ROUTE_NOT_FOUND', message: `No route for ${c.req.method} ${c.req.path}.` }, 404);
}
