import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { resetFixture } from '../../core/fixture.js';
import type { AdjustableClock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { apiKeySecret } from '../auth.js';
import type { ApiContext } from '../context.js';
import { type AppEnv, readJsonBody } from '../route.js';

const clockBody = z.object({ advanceMs: z.number().int().min(0).max(100 * 365 * 86_400_000) });
const resetBody = z.object({}).strict();

/**
 * Test-fixture endpoints, mounted only when `fixture.enabled` is set (never by default):
 * `POST /__fixture/reset` empties everything but the admin key; `POST /__fixture/clock {advanceMs}` moves the clock
 * forward and runs a sweep, so apps can test expiry without waiting.
 *
 * Both need the admin key (`x-api-key` or `Authorization: Bearer`) and `Content-Type: application/json`. A web page
 * can send neither without a CORS preflight, and these paths answer no CORS headers, so a page a developer visits
 * cannot reset a fixture server or move its clock (`serve --fixture` listens on 0.0.0.0 by default).
 */
export function mountFixtureRoutes(app: Hono<AppEnv>, ctx: ApiContext, clock: AdjustableClock): void {
  const log = ctx.log.child('fixture');
  /** Throws 401 without a valid key, 403 for a key that is not the admin key, 415 for a body that is not JSON. */
  const guard = async (c: Context<AppEnv>) => {
    const secret = apiKeySecret(c);
    if (secret === undefined) throw new AppError('UNAUTHENTICATED', 'Fixture endpoints need the admin key: send x-api-key or Authorization: Bearer.');
    const key = await ctx.keys.authenticate(secret);
    if (!key) throw new AppError('UNAUTHENTICATED', 'Invalid API key.');
    if (!key.isAdmin) throw new AppError('FORBIDDEN', 'Fixture endpoints need the admin key.');
    const type = c.req.header('content-type')?.split(';')[0].trim().toLowerCase();
    if (type !== 'application/json')
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Fixture endpoints need Content-Type: application/json.', { contentType: type ?? null });
  };
  app.post('/__fixture/reset', async (c) => {
    await guard(c);
    await readJsonBody(c, resetBody, true);
    const blobsDeleted = await resetFixture(ctx, ctx.dropzones);
    log.info('reset', { blobsDeleted });
    return c.json({ status: 'success', data: { reset: true } });
  });
  app.post('/__fixture/clock', async (c) => {
    await guard(c);
    const body = await readJsonBody(c, clockBody, false);
    const now = clock.advance(body.advanceMs);
    const swept = await ctx.sweeper.sweep();
    return c.json({ status: 'success', data: { now, iso: new Date(now).toISOString(), swept } });
  });
}
