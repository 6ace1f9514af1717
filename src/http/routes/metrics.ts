import { createHash, timingSafeEqual } from 'node:crypto';
import type { Hono } from 'hono';
import { AppError } from '../../core/errors.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { AppEnv } from '../route.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * `GET /metrics` in the Prometheus text format. With a `token`, only `Authorization: Bearer <token>` may scrape
 * (compared in constant time over SHA-256 digests, so neither content nor length leaks); anything else is 401.
 */
export function mountMetricsRoute(app: Hono<AppEnv>, metrics: Metrics, token: string): void {
  const expected = token ? sha256(token) : undefined;
  app.get('/metrics', async (c) => {
    if (expected) {
      const given = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
      if (!timingSafeEqual(sha256(given), expected)) {
        c.header('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new AppError('UNAUTHENTICATED', 'Scraping /metrics needs Authorization: Bearer <metrics.token>.');
      }
    }
    return c.body(await metrics.scrape(), 200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
  });
}
