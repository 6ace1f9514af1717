import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { AppError, ERRORS, isStorageFull } from '../core/errors.js';
import type { Logger } from '../log/logger.js';

/**
 * The single error renderer: AppError → its status with `{status:"error", message, data?}`;
 * Hono HTTP exceptions keep their status; a failure because the client closed the connection before its request was
 * complete is logged at info and recorded as 499 (CLIENT_CLOSED); a full disk (see {@link isStorageFull}) is
 * STORAGE_FULL (507); anything else is logged and becomes a generic 500.
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
    if (clientClosed(c)) {
      // the client's doing (it went away mid-body), not a server error: no 5xx, no error line
      log.info('request aborted by the client', { method: c.req.method, route: c.req.routePath, requestId: c.get('requestId' as never) });
      return c.json({ status: 'error', message: ERRORS.CLIENT_CLOSED.message }, ERRORS.CLIENT_CLOSED.status as never);
    }
    if (isStorageFull(err)) {
      log.warn('storage full', { method: c.req.method, route: c.req.routePath, requestId: c.get('requestId' as never) });
      return c.json({ status: 'error', message: ERRORS.STORAGE_FULL.message }, 507);
    }
    log.error('unhandled error', { err, method: c.req.method, route: c.req.routePath, requestId: c.get('requestId' as never) });
    return c.json({ status: 'error', code: 'INTERNAL', message: ERRORS.INTERNAL.message }, 500);
  };
}

/** 404 for unknown routes, in the API's error shape. */
export function notFoundHandler(c: Context): Response {
  return c.json({ status: 'error', code: 'ROUTE_NOT_FOUND', message: `No route for ${c.req.method} ${c.req.path}.` }, 404);
}

/** True when the client closed the connection before its request was complete (the request's signal is aborted). */
export function clientClosed(c: Context): boolean {
  return c.req.raw.signal.aborted;
}
