import type { Context } from 'hono';

/**
 * The Content-Security-Policy of the server's own HTML pages (the dropzone page, the API reference): scripts, styles
 * and images from this server only, no inline code, no forms, no framing; `connect` adds origins the page may call
 * besides its own.
 */
export function strictCsp(connect: Iterable<string> = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${["'self'", ...connect].join(' ')}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The origin of `url`, or undefined when it does not parse. */
export function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** An HTML answer with the pages' security headers: the given CSP, no caching, no referrer, no sniffing, no framing. */
export function htmlResponse(c: Context, csp: string, status: number, html: string): Response {
  return c.body(html, status as never, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': csp,
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
  });
}
