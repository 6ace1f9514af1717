/**
 * Events are written in the transaction of the change they describe (src/core/events.ts): a change that rolls back
 * leaves no event, and a change made outside a transaction cannot record one. The sweeper records expiries.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalBlobStore } from '../../src/blobs/local-store.js';
import { loadConfig } from '../../src/config/load.js';
import { type AppContext, createContext } from '../../src/context.js';
import { manualClock } from '../../src/core/clock.js';
import { recordEvent, recordFileQuarantined } from '../../src/core/events.js';
import { createWebhookDispatcher, createWebhookService } from '../../src/core/webhooks.js';
import type { MetadataStore } from '../../src/core/ports/metadata-store.js';
import { openDatabase } from '../../src/db/database.js';
import { createSqliteStore } from '../../src/db/sqlite-store.js';
import { createLogger } from '../../src/log/logger.js';

let dir: string;
let meta: MetadataStore;
const clock = manualClock(Date.UTC(2026, 0, 1));
const contextWith = (enabled: boolean): AppContext => {
  const config = loadConfig({ env: {}, overrides: { dataDir: dir, 'security.adminKey': 'a'.repeat(40), 'webhooks.enabled': enabled } });
  const blobs = createLocalBlobStore({ root: path.join(dir, 'blobs'), secret: 's'.repeat(32), baseUrl: () => 'http://127.0.0.1:1', clock });
  return createContext({ config, meta, blobs, clock, log: createLogger('silent') });
};
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dz-events-'));
  meta = createSqliteStore(openDatabase(path.join(dir, 'dropzone.db')));
});
afterEach(async () => {
  await meta.close();
  await rm(dir, { recursive: true, force: true });
});

describe('events in the transaction of the change', () => {
  it('a create that rolls back with its enclosing transaction leaves neither the dropzone nor its event', async () => {
    const ctx = contextWith(true);
    const { admin } = await ctx.keys.ensureAdmin();
    let id = '';
    await expect(
      meta.transaction(async () => {
        id = (await ctx.dropzones.create(admin, { gb: 1, days: 30 })).dz.id;
        expect((await meta.undispatchedEvents(10)).map((e) => e.type)).toEqual(['dropzone.created']);
        throw new Error('later step fails');
      }),
    ).rejects.toThrow('later step fails');
    expect(await meta.dropzoneById(id)).toBeUndefined();
    expect(await meta.undispatchedEvents(10)).toEqual([]);
    // committed: exactly one
    await ctx.dropzones.create(admin, { gb: 1, days: 30 });
    expect((await meta.undispatchedEvents(10)).map((e) => e.type)).toEqual(['dropzone.created']);
  });

  it('refuses to record outside a transaction; records nothing when webhooks are off', async () => {
    const ctx = contextWith(true);
    const { admin } = await ctx.keys.ensureAdmin();
    const { dz } = await ctx.dropzones.create(admin, { gb: 1, days: 30 });
    await expect(recordEvent(ctx, meta, { type: 'dropzone.updated', dz })).rejects.toThrow(/inside the transaction/);
    const off = contextWith(false);
    const before = (await meta.undispatchedEvents(10)).length;
    await off.dropzones.create(admin, { gb: 1, days: 30 });
    await meta.transaction((tx) => recordEvent(off, tx, { type: 'dropzone.updated', dz }));
    expect(await meta.undispatchedEvents(10)).toHaveLength(before);
  });

  it('the sweeper records dropzone.expired without an actor; file.quarantined carries the reason and no secret', async () => {
    const ctx = contextWith(true);
    const { admin } = await ctx.keys.ensureAdmin();
    const { dz } = await ctx.dropzones.create(admin, { gb: 1, days: 30 });
    const { file } = await ctx.files.requestUpload({ key: admin }, dz, { name: 'x.exe', type: '', size: 3 });
    await meta.transaction((tx) => recordFileQuarantined(ctx, tx, dz, file, 'Eicar-Test-Signature'));
    clock.advance(31 * 86_400_000);
    await ctx.sweeper.sweep();
    const events = await meta.undispatchedEvents(10);
    expect(events.map((e) => e.type)).toEqual(['dropzone.created', 'file.quarantined', 'dropzone.expired']);
    expect(events[1]).toMatchObject({ fileId: file.id, actor: null, data: { name: 'x.exe', size: 3, reason: 'Eicar-Test-Signature' } });
    expect(events[2]).toMatchObject({ dropzoneId: dz.id, shareId: dz.shareId, actor: null, owner: admin.publicId });
    expect(JSON.stringify(events)).not.toContain(dz.code);
  });
});

describe('webhook dispatcher', () => {
  it('delivers under a lease: a second node on the same database waits until the lease of the first expires', async () => {
    const ctx = contextWith(true);
    const posts: string[] = [];
    const transport = {
      checkTarget: async () => undefined,
      post: async (_url: string, body: string) => {
        posts.push(body);
        return { status: 200 };
      },
    };
    const first = createWebhookDispatcher(ctx, transport);
    const second = createWebhookDispatcher(ctx, transport);
    const { admin } = await ctx.keys.ensureAdmin();
    await createWebhookService(ctx, transport).create(admin, { url: 'https://hooks.example/x' });
    await ctx.dropzones.create(admin, { gb: 1, days: 30 });
    expect(await first.runOnce()).toMatchObject({ events: 1, attempts: 1 });
    await ctx.dropzones.create(admin, { gb: 1, days: 30 });
    expect(await second.runOnce()).toBeUndefined();
    expect(posts).toHaveLength(1);
    clock.advance(61_000); // the first node stopped renewing (it died): its lease expires
    expect(await second.runOnce()).toMatchObject({ events: 1, attempts: 1 });
    expect(posts.map((b) => JSON.parse(b).type)).toEqual(['dropzone.created', 'dropzone.created']);
  });

  it('prunes delivered deliveries, their attempt log and the dispatched events after webhooks.retentionSeconds', async () => {
    const ctx = contextWith(true);
    const transport = { checkTarget: async () => undefined, post: async () => ({ status: 204 }) };
    const dispatcher = createWebhookDispatcher(ctx, transport);
    const webhooks = createWebhookService(ctx, transport);
    const { admin } = await ctx.keys.ensureAdmin();
    const hook = await webhooks.create(admin, { url: 'https://hooks.example/x' });
    await ctx.dropzones.create(admin, { gb: 1, days: 30 });
    expect(await dispatcher.runOnce()).toMatchObject({ events: 1, attempts: 1 });
    expect(await webhooks.attempts(admin, hook.id)).toHaveLength(1);
    clock.advance(ctx.config.webhooks.retentionSeconds * 1000 - 1000);
    expect((await dispatcher.runOnce())?.pruned).toBe(0);
    clock.advance(ctx.config.webhooks.retentionSeconds * 1000);
    // attempt, delivery and event
    expect((await dispatcher.runOnce())?.pruned).toBe(3);
    expect(await webhooks.attempts(admin, hook.id)).toEqual([]);
  });
});
