/**
 * The middleware every request passes, written for the hot path of `@hono/node-server`: a response built with
 * `c.json()`/`c.body()` stays a plain body the adapter writes in one go (its "cached response" fast path). That holds
 * only while no middleware calls `c.header()` after `next()` (Hono then rebuilds the Response and the adapter falls back
 * to web streams), so headers are set before `next()`; a handler that returns its own `Response` (downloads, 304s) gets
 * the missing ones added to that Response's headers afterwards, which keeps it as it is.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from '../log/logger.js';
import { PresetHeadersResponse } from './node-response.js';

/**
 * Headers of which Node's `IncomingMessage#headers` keeps the first when a request repeats them (its
 * `matchKnownFields`); `cookie` is joined with `; `, every other repeated header with `, `.
 */
const FIRST_ONLY = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
  'server', 'user-agent',
]);

/**
 * A request header (`name` in lower case) as Node's `IncomingMessage#headers` gives it, read from the request's raw
 * header list when it came through `@hono/node-server`: no `Headers` built and no name validated per call (the
 * adapter's Request), and no object built from every header of the request either (`#headers`, some 3,000
 * instructions per request, callgrind, Node 24) — a few lookups in a short list cost less. Of some headers repeated in
 * one request (`authorization`, `host`, `content-type`, …) Node keeps the first where the adapter joins them all: read
 * those with `c.req.header()` where that difference matters. A message without raw headers (built by hand, as tests do)
 * is read through the Request.
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const raw = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.rawHeaders;
  if (!raw || raw.length === 0) return c.req.header(name);
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i];
    if (key.length !== name.length || (key !== name && key.toLowerCase() !== name)) continue;
    if (value === undefined) value = raw[i + 1];
    else if (FIRST_ONLY.has(name)) break;
    else value += (name === 'cookie' ? '; ' : ', ') + raw[i + 1];
  }
  return value;
}

/** A `Headers`-like lookup over the request's headers (see {@link requestHeader}). */
export function requestHeaders(c: Context): Pick<Headers, 'get'> {
  return { get: (name: string) => requestHeader(c, name.toLowerCase()) ?? null };
}

/**
 * A source of request ids: 16 hex characters, a random prefix drawn once per process followed by a counter of eight hex
 * digits (0x10000000 up to 0xffffffff, then again: eight digits without padding them). Unique within the process and
 * across restarts (in practice), without drawing entropy per request. Not a secret.
 */
export function requestIdSource(start = FIRST_COUNTER): () => string {
  const prefix = randomBytes(4).toString('hex');
  let n = start - 1;
  return () => {
    n = n >= LAST_COUNTER ? FIRST_COUNTER : n + 1;
    return prefix + n.toString(16);
  };
}
const FIRST_COUNTER = 0x10000000;
const LAST_COUNTER = 0xffffffff;

/**
 * Sets response header `name` (in lower case) for whatever answer this request gets. Under `@hono/node-server` it goes
 * onto Node's response, which merges it into the head whichever way the answer is built (a context-built body, a
 * handler's own `Response`, a piped file), so the answer's own headers stay a plain object and the adapter's fast path
 * holds — `c.header()` would turn them into a `Headers` object on every request. The server's own response class
 * ({@link PresetHeadersResponse}) keeps it aside until the head is written, in one go with the answer's headers; another
 * Node response gets it through `setHeader()`. Answers true when it did; elsewhere (`app.request()` in tests) it sets it
 * with `c.header()` and answers false: the caller then also passes the value to {@link ensureHeader} after `next()`.
 */
export function presetHeader(c: Context, name: string, value: string): boolean {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (outgoing instanceof PresetHeadersResponse) {
    if (!outgoing.headersSent) {
      outgoing.presetHeader(name, value);
      return true;
    }
  } else if (outgoing && typeof outgoing.setHeader === 'function' && !outgoing.headersSent) {
    outgoing.setHeader(name, value);
    return true;
  }
  c.header(name, value);
  return false;
}

/**
 * Sets `name` on the answer when the handler returned its own `Response` (headers set with `c.header()` before `next()`
 * only reach responses built through the context). Mutates the Response's headers in place, which keeps the adapter's
 * fast path; a Response with immutable headers is copied once.
 */
export function ensureHeader(c: Context, name: string, value: string): void {
  if (!c.res.headers.has(name)) editHeaders(c, (h) => h.set(name, value));
}

/** Applies `edit` to the answer's headers in place; a Response with immutable headers is copied once. */
function editHeaders(c: Context, edit: (headers: Headers) => void): void {
  try {
    edit(c.res.headers);
  } catch {
    c.res = new Response(c.res.body, c.res);
    edit(c.res.headers);
  }
}

/**
 * One JSON line per request: method, route pattern (never the raw path or query: they may carry credentials), status,
 * duration, bytes, request id. The `x-request-id` answer header is the caller's (sanitised) or a new one.
 */
export function requestLog(log: Logger): MiddlewareHandler {
  const nextId = requestIdSource();
  const logs = log.enabled?.('info') ?? true;
  return (c, next) => {
    const start = logs ? performance.now() : 0;
    const requestId = requestHeader(c, 'x-request-id')?.slice(0, 64).replace(/[^\w.-]/g, '') || nextId();
    c.set('requestId', requestId);
    const preset = presetHeader(c, 'x-request-id', requestId);
    // nothing to do after the handler: no extra async frame for the request to pass through
    if (preset && !logs) return next();
    return finish(c, next, preset, start, requestId);
  };
  async function finish(c: Context, next: () => Promise<void>, preset: boolean, start: number, requestId: string): Promise<void> {
    await next();
    if (!preset) ensureHeader(c, 'x-request-id', requestId);
    if (!logs) return;
    log.info('request', {
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      durationMs: Math.round((performance.now() - start) * 10) / 10,
      bytes: Number(c.res.headers.get('content-length') ?? 0),
      requestId,
    });
  }
}

/** Options of {@link corsMiddleware}. */
export interface CorsOptions {
  /** Allowed origins; `*` anywhere means any origin (answered as `*`). */
  origins: readonly string[];
  allowHeaders: readonly string[];
  allowMethods: readonly string[];
  exposeHeaders: readonly string[];
  /** Seconds a preflight answer may be cached. */
  maxAge: number;
}

/**
 * CORS for the API: preflights (`OPTIONS`) are answered 204 right here; other requests get `Access-Control-Allow-Origin`
 * (when the origin is allowed), `Access-Control-Expose-Headers` and, with a list of origins, `Vary: Origin` — set before
 * the handler runs, so the response is never rebuilt.
 */
export function corsMiddleware(opts: CorsOptions): MiddlewareHandler {
  const any = opts.origins.includes('*');
  const expose = opts.exposeHeaders.join(',');
  const preflight: Record<string, string> = {
    'Access-Control-Expose-Headers': expose,
    'Access-Control-Max-Age': String(opts.maxAge),
    'Access-Control-Allow-Methods': opts.allowMethods.join(','),
    'Access-Control-Allow-Headers': opts.allowHeaders.join(','),
    Vary: any ? 'Access-Control-Request-Headers' : 'Origin, Access-Control-Request-Headers',
  };
  return (c, next) => {
    const origin = any ? '*' : opts.origins.find((o) => o === requestHeader(c, 'origin'));
    if (c.req.method === 'OPTIONS') {
      return Promise.resolve(new Response(null, { status: 204, headers: origin ? { 'Access-Control-Allow-Origin': origin, ...preflight } : preflight }));
    }
    const preset = (!origin || presetHeader(c, 'access-control-allow-origin', origin)) && presetHeader(c, 'access-control-expose-headers', expose);
    if (any && preset) return next(); // nothing to do after the handler
    if (!any) c.header('Vary', 'Origin', { append: true });
    return finish(c, next, origin, preset);
  };
  async function finish(c: Context, next: () => Promise<void>, origin: string | undefined, preset: boolean): Promise<void> {
    await next();
    if (!preset) {
      if (origin) ensureHeader(c, 'Access-Control-Allow-Origin', origin);
      ensureHeader(c, 'Access-Control-Expose-Headers', expose);
    }
    if (!any && !/(^|,)\s*origin\s*(,|$)/i.test(c.res.headers.get('vary') ?? '')) editHeaders(c, (h) => h.append('Vary', 'Origin'));
  }
}
