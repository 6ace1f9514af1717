import { AsyncLocalStorage } from 'node:async_hooks';
import { type Handler, Hono, type MiddlewareHandler } from 'hono';
import type { AppContext } from './context.js';
import { LOCAL_BLOB_URL_PREFIX, servesSignedUrls } from './blobs/local-store.js';
import { isStorageFull } from './core/errors.js';
import { authMiddleware } from './http/auth.js';
import type { ApiContext } from './http/context.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { corsMiddleware, requestHeader, requestHeaders, requestLog } from './http/middleware.js';
import { withLayers } from './http/pipeline.js';
import { requestPath } from './http/request-path.js';
import { type AppEnv, buildOpenApi, mountRoutes } from './http/route.js';
import { apiKeyRoutes } from './http/routes/api-keys.js';
import { archiveRoutes } from './http/routes/archives.js';
import { cdnRoutes } from './http/routes/cdn.js';
import { dropzoneRoutes } from './http/routes/dropzones.js';
import { fileRoutes } from './http/routes/files.js';
import { multipartRoutes } from './http/routes/multipart.js';
import { permissionRoutes } from './http/routes/permissions.js';
import { webhookRoutes } from './http/routes/webhooks.js';
import { mountFixtureRoutes } from './http/routes/fixture.js';
import { mountUploadRoutes } from './http/routes/uploads.js';
import { mountPageRoutes } from './http/routes/page.js';
import { mountMetricsRoute } from './http/routes/metrics.js';
import { mountDocsRoutes } from './http/routes/docs.js';
import { apiKeySchema, dropzoneSchema, errorSchema, fileItemSchema } from './http/schemas.js';
import type { Logger } from './log/logger.js';
import type { Metrics } from './metrics/metrics.js';
import { VERSION } from './version.js';

/** The API's mount point. */
export const API_BASE = '/api/v1';
/** Version reported by the OpenAPI document and `dropzone version` (package.json's). */
export { VERSION } from './version.js';

/** What {@link createApp} needs besides the context. */
export interface AppOptions {
  /** The public base URL, no trailing slash; may change until the server listens (port 0). */
  publicUrl: () => string;
}

/** The built application: the Hono app plus the context behind it (for fixtures and tests). */
export interface App {
  hono: Hono<AppEnv>;
  ctx: ApiContext;
  /** The Prometheus metrics when `metrics.enabled` (the server feeds them its connections). */
  metrics?: Metrics;
}

/**
 * Builds the Hono app over a context built once by `createContext` (src/context.ts); no I/O at import or build time.
 * The caller owns the context's stores.
 */
export function createApp(context: AppContext, opts: AppOptions): App {
  const { config, log, metrics } = context;
  // Without a configured public URL, links (signed URLs, upload pages) follow the host the client used.
  const origins = new AsyncLocalStorage<string>();
  const configuredUrl = config.server.publicUrl.replace(/\/+$/, '');
  const publicUrl = () => configuredUrl || origins.getStore() || opts.publicUrl();
  const ctx: ApiContext = { ...context, publicUrl };

  // Two Hono apps: `app` is the site — every route but the API's and the probes, behind `app.use` layers as usual;
  // `root` holds the API routes and the probes, each registered as one handler with those layers composed in
  // (src/http/pipeline.ts: Hono answers it on its single-handler path, cheaper than its compose path), and hands
  // everything it has no route for to the site, whose layers give unknown API paths, preflights and the rest the same
  // answers as before.
  const onError = errorHandler(log.child('http'));
  const logRequests = requestLog(log.child('http'));
  const app = new Hono<AppEnv>({ getPath: requestPath });
  app.onError(onError);
  app.notFound(notFoundHandler);
  app.use('*', logRequests);
  if (metrics) app.use('*', metrics.requests);
  const baseLayers: MiddlewareHandler<AppEnv>[] = [logRequests, ...(metrics ? [metrics.requests] : [])];

  const root = new Hono<AppEnv>({ getPath: requestPath });
  root.onError(onError);
  root.notFound((c) => app.fetch(c.req.raw, c.env));
  // the probes need no origin, CORS or credentials: the base layers only
  root.get('/healthz', withLayers(baseLayers, (c) => c.json({ status: 'ok' }), onError));
  root.get('/readyz', withLayers(baseLayers, async (c) => {
    try {
      await ctx.meta.getSetting('readyz'); // one round trip to the database
      await ctx.blobs.check();
      // released on a full disk and not yet back: the disk is still too full for it
      if (ctx.reserve && !ctx.reserve.held())
        throw Object.assign(new Error('the space reserve is released and there is no room to restore it yet'), { code: 'ENOSPC' });
      return c.json({ status: 'ok' });
    } catch (err) {
      log.warn('not ready', { err });
      const why = isStorageFull(err) ? `storage is full (${(err as Error).message})` : (err as Error).message;
      return c.json({ status: 'error', message: `Not ready: ${why}` }, 503);
    }
  }, onError));

  // requests come with the same Host header over and over: the last one's origin is kept (not behind a trusted proxy,
  // where the forwarded headers count too)
  let lastHost: string | undefined;
  let lastHttps = false;
  let lastOrigin: string | undefined;
  const findOrigin: MiddlewareHandler<AppEnv> = (c, next) => {
    if (configuredUrl) return next();
    const https = c.req.url.startsWith('https:');
    let origin: string | undefined;
    if (config.server.trustProxy) origin = requestOrigin(requestHeaders(c), true, https ? 'https:' : 'http:');
    else {
      const host = requestHeader(c, 'host');
      if (host !== lastHost || https !== lastHttps || host === undefined) {
        lastOrigin = requestOrigin(requestHeaders(c), false, https ? 'https:' : 'http:');
        lastHost = host;
        lastHttps = https;
      }
      origin = lastOrigin;
    }
    // the origin the server falls back to anyway (the address it listens on) needs no per-request context
    return origin && origin !== opts.publicUrl() ? origins.run(origin, next) : next();
  };
  app.use('*', findOrigin);

  if (metrics) mountMetricsRoute(app, metrics, config.metrics.token);
  if (config.fixture.enabled) mountFixtureRoutes(app, ctx, context.clock);
  if (servesSignedUrls(ctx.blobs)) {
    if (metrics) app.use(`${LOCAL_BLOB_URL_PREFIX}*`, metrics.uploadsInFlight);
    mountUploadRoutes(app, ctx, ctx.blobs);
  }
  const pageApi = mountPageRoutes(app, ctx); // the public dropzone page /d/:code, its page API and /assets/*
  mountDocsRoutes(app, ctx); // the API reference /api/docs and /assets/vendor/*

  const apiCors = corsMiddleware({
    origins: config.server.corsOrigins,
    allowHeaders: ['x-api-key', 'authorization', 'x-dropzone-id', 'content-type', 'range', 'if-none-match'],
    allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    exposeHeaders: ['ETag', 'Content-Disposition', 'Content-Range', 'Content-Length', 'Accept-Ranges', 'Last-Modified', 'Link'],
    maxAge: 3600,
  });
  const auth = authMiddleware(ctx);
  app.use(`${API_BASE}/*`, apiCors);
  app.use('/cdn/*', apiCors);
  app.use(`${API_BASE}/*`, auth);

  const apiLayers: MiddlewareHandler<AppEnv>[] = [...baseLayers, findOrigin, apiCors, auth];
  const asApiRoute = (h: Handler<AppEnv>) => withLayers(apiLayers, h, onError);

  const groups = [
    {
      base: API_BASE,
      authenticated: true,
      defs: [...dropzoneRoutes(ctx), ...archiveRoutes(ctx), ...fileRoutes(ctx), ...multipartRoutes(ctx), ...permissionRoutes(ctx), ...apiKeyRoutes(ctx), ...webhookRoutes(ctx), ...cdnRoutes(ctx)],
    },
    { base: '', defs: cdnRoutes(ctx, 'publicDownloadAtRoot') },
  ];
  let openapi: Record<string, unknown> | undefined;
  root.get(`${API_BASE}/openapi.json`, asApiRoute((c) => {
    openapi ??= buildOpenApi({
      title: 'Dropzone API (Dropzone Server)',
      version: VERSION,
      serverUrl: ctx.publicUrl(),
      // the page API is mounted with the page; documented here with the rest
      routes: [...groups, { base: '', defs: pageApi }],
      components: { Dropzone: dropzoneSchema, FileItem: fileItemSchema, ApiKey: apiKeySchema, Error: errorSchema },
      errorSchema,
    });
    // built once; only the server URL follows the host the client used. Paths are absolute, so the server is the origin.
    return c.json({ ...openapi, servers: [{ url: ctx.publicUrl() }] });
  }));
  mountRoutes(root, groups[0].base, groups[0].defs, asApiRoute);
  mountRoutes(app, groups[1].base, groups[1].defs);

  return { hono: root, ctx, metrics };
}

/** `proto://host` of a request; `X-Forwarded-Proto/Host` count only when the proxy is trusted. Hosts with odd characters are ignored. */
export function requestOrigin(headers: Pick<Headers, 'get'>, trustProxy: boolean, fallbackProtocol: string): string | undefined {
  const first = (v: string | null) => v?.split(',')[0]?.trim() || undefined;
  const host = (trustProxy && first(headers.get('x-forwarded-host'))) || headers.get('host') || undefined;
  if (!host || !/^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)) return undefined;
  const proto = (trustProxy && first(headers.get('x-forwarded-proto'))) || fallbackProtocol.replace(/:$/, '');
  return `${proto === 'https' ? 'https' : 'http'}://${host}`;
}
