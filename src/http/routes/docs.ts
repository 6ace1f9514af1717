import { createHash } from 'node:crypto';
import type { Hono } from 'hono';
import { readAsset, readVendorAsset } from '../../runtime/assets.js';
import type { ApiContext } from '../context.js';
import type { AppEnv } from '../route.js';
import { htmlResponse, originOf, strictCsp } from '../html.js';
import { ASSET_NAME_RE } from './page.js';

const VENDOR_PKG_RE = /^[a-z0-9][a-z0-9._-]*$/;

/**
 * The interactive API reference, served entirely by this server (and embedded in the executable):
 * - `GET /api/docs` — `public/docs.html`: Swagger UI (the `swagger-ui-dist` package) started by `public/docs.js` on
 *   `GET /api/v1/openapi.json`, with "Authorize" for an API key and "Try it out" calling the API on the same origin.
 * - `GET /assets/vendor/<package>/<file>` — the vendor files listed in `src/runtime/vendor-assets.json`, read through
 *   `readVendorAsset` (embedded assets in the executable, `node_modules` otherwise).
 *
 * The page's CSP allows scripts, styles and requests from this server only (and the configured public URL's origin,
 * where try-it-out sends requests), no inline code, no framing.
 */
export function mountDocsRoutes(app: Hono<AppEnv>, ctx: ApiContext): void {
  const csp = contentSecurityPolicy(ctx);
  let page: string | undefined;
  const vendor = new Map<string, { body: Uint8Array<ArrayBuffer>; etag: string } | null>();

  app.get('/api/docs', (c) => {
    if (page === undefined) {
      const buf = readAsset('docs.html');
      if (!buf) throw new Error('missing page public/docs.html');
      page = buf.toString('utf8');
    }
    return htmlResponse(c, csp, 200, page);
  });
  // `/api/docs/` → `../docs` (relative, so a path prefix survives)
  app.get('/api/docs/', () => new Response(null, { status: 308, headers: { Location: '../docs' } }));

  // `/assets/vendor/<pkg>/<file>`, written with plain parameters checked here: Hono's RegExpRouter takes no pattern in
  // a path, nor a literal `vendor` beside the page's `/assets/:name`, and without it every request of every route is
  // matched by the slower TrieRouter
  app.get('/assets/:dir/:pkg/:file', (c) => {
    const { dir, pkg, file } = c.req.param();
    if (dir !== 'vendor' || !VENDOR_PKG_RE.test(pkg) || !ASSET_NAME_RE.test(file)) return c.notFound();
    const key = `${pkg}/${file}`;
    if (!vendor.has(key)) {
      const buf = readVendorAsset(pkg, file);
      vendor.set(key, buf && { body: new Uint8Array(buf), etag: `"${createHash('sha1').update(buf).digest('base64url')}"` });
    }
    const asset = vendor.get(key)!;
    if (!asset) return c.json({ status: 'error', message: 'No such asset.' }, 404);
    const headers = { ETag: asset.etag, 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff' };
    if (c.req.header('if-none-match') === asset.etag) return new Response(null, { status: 304, headers });
    return new Response(asset.body, { status: 200, headers: { ...headers, 'Content-Type': contentType(file), 'Content-Length': String(asset.body.length) } });
  });
}

function contentType(file: string): string {
  if (file.endsWith('.js')) return 'text/javascript; charset=utf-8';
  if (file.endsWith('.css')) return 'text/css; charset=utf-8';
  return 'text/plain; charset=utf-8';
}

/** Everything from this server; try-it-out may also call the configured public URL's origin (the document's server). */
function contentSecurityPolicy(ctx: ApiContext): string {
  const pub = ctx.config.server.publicUrl && originOf(ctx.config.server.publicUrl);
  return strictCsp(pub ? [pub] : []);
}
