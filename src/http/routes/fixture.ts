import type { Hono } from 'hono';
import { z } from 'zod';
import { flushBlobDeletions } from '../../core/dropzones.js';
import type { AdjustableClock } from '../../core/clock.js';
import type { ApiContext } from '../context.js';
import { type AppEnv, readJsonBody } from '../route.js';

const clockBody = z.object({ advanceMs: z.number().int().min(0).max(100 * 365 * 86_400_000) });

/**
 * Test-fixture endpoints, mounted only when `fixture.enabled` is set (never by default):
 * `POST /__fixture/reset` empties everything but the admin key; `POST /__fixture/clock {advanceMs}` moves the clock
 * forward and runs a sweep, so apps can test expiry without waiting.
 */
export function mountFixtureRoutes(app: Hono<AppEnv>, ctx: ApiContext, clock: AdjustableClock): void {
  const log = ctx.log.child('fixture');
  app.post('/__fixture/reset', async (c) => {
    const { repo } = ctx;
    repo.db.transaction(() => {
      for (const dz of repo.allDropzones()) ctx.dropzones.destroy(dz.id);
      repo.db.prepare('DELETE FROM permissions').run();
      repo.db.prepare('DELETE FROM api_keys WHERE is_admin = 0').run();
    })();
    const blobsDeleted = await flushBlobDeletions(ctx);
    log.info('reset', { blobsDeleted });
    return c.json({ status: 'success', data: { reset: true } });
  });
  app.post('/__fixture/clock', async (c) => {
    const body = await readJsonBody(c, clockBody, false);
    const now = clock.advance(body.advanceMs);
    const swept = await ctx.sweeper.sweep();
    return c.json({ status: 'success', data: { now, iso: new Date(now).toISOString(), swept } });
  });
}
