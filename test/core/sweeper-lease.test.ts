import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalBlobStore } from '../../src/blobs/local-store.js';
import { loadConfig } from '../../src/config/load.js';
import { type AppContext, createContext } from '../../src/context.js';
import { manualClock } from '../../src/core/clock.js';
import type { MetadataStore } from '../../src/core/ports/metadata-store.js';
import { openDatabase } from '../../src/db/database.js';
import { createSqliteStore } from '../../src/db/sqlite-store.js';
import { createLogger } from '../../src/log/logger.js';

let dir: string;
const opened: { meta: MetadataStore; ctx: AppContext }[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dz-lease-'));
});
afterEach(async () => {
  for (const { meta, ctx } of opened.splice(0)) {
    await ctx.sweeper.stop();
    await ctx.blobs.close();
    await meta.close();
  }
  await rm(dir, { recursive: true, force: true });
});

const clock = manualClock(Date.UTC(2026, 0, 1));
/** A node: its own connection to the shared database, its own services. */
function node(): AppContext {
  const config = loadConfig({ env: {}, overrides: { dataDir: dir, 'security.adminKey': '', 'sweeper.intervalSeconds': 3600 } });
  const meta = createSqliteStore(openDatabase(path.join(dir, 'dropzone.db')));
  const blobs = createLocalBlobStore({ root: path.join(dir, 'blobs'), secret: 's'.repeat(32), baseUrl: () => 'http://127.0.0.1:1', clock });
  const ctx = createContext({ config, meta, blobs, clock, log: createLogger('silent') });
  opened.push({ meta, ctx });
  return ctx;
}

describe('scheduled sweeps on several nodes sharing one database', () => {
  it('one node sweeps at a time; expiry happens once; a stopped node hands over at once, a dead one when its lease expires', async () => {
    const a = node();
    const b = node();
    const { admin } = await a.keys.ensureAdmin();
    await a.dropzones.create(admin, { gb: 1, days: 30 });
    await a.dropzones.create(admin, { gb: 1, days: 30 });
    clock.advance(31 * 86_400_000);

    const [ra, rb] = await Promise.all([a.sweeper.scheduledSweep(), b.sweeper.scheduledSweep()]);
    const ran = [ra, rb].filter((r) => r !== undefined);
    expect(ran).toHaveLength(1);
    expect(ran[0]!.expiredDropzones).toBe(2);
    const [leader, other] = ra ? [a, b] : [b, a];
    expect(await other.sweeper.scheduledSweep()).toBeUndefined();
    expect(await leader.sweeper.scheduledSweep()).toMatchObject({ expiredDropzones: 0 });

    // the leader stops (a graceful shutdown): the other node takes over on its next turn
    leader.sweeper.start();
    await leader.sweeper.stop();
    expect(await other.sweeper.scheduledSweep()).toBeDefined();
    // the new leader "dies" (stops renewing, never releases): the old one gets the lease back once it expires
    expect(await leader.sweeper.scheduledSweep()).toBeUndefined();
    clock.advance(3 * 3600 * 1000);
    expect(await leader.sweeper.scheduledSweep()).toBeDefined();
  });
});
