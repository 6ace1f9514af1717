/** Garbage collection of orphaned blobs, on every backend: what no file refers to goes, what a file refers to stays. */
import { Readable } from 'node:stream';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

describeEachBackend('gc', (b: BackendContext) => {
  let t: TestServer;
  beforeEach(async () => {
    t = await b.start({ settings: { 'sweeper.gcGraceSeconds': 60 } });
  });
  afterEach(async () => {
    await t?.close();
  });

  it('removes orphans older than the grace period and keeps referenced and young blobs', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const kept = await t.upload(t.adminKey, dz._id, 'kept.txt', 'still referenced');
    const blobs = t.server.app.ctx.blobs;
    await blobs.put('objects/orphan-old', Readable.from([Buffer.from('nobody refers to me')]));
    expect((await t.blobKeys()).sort()).toHaveLength(2);

    // within the grace period an orphan may be an upload whose row is being written: it stays
    let res = await t.server.app.ctx.sweeper.gc();
    expect(res.orphansDeleted).toBe(0);

    // S3 stamps objects with real time while the test clock stands still: past the grace by both clocks
    t.clock.advance(Math.max(0, Date.now() - t.clock.now()) + 61_000);
    res = await t.server.app.ctx.sweeper.gc();
    expect(res.orphansDeleted).toBe(1);
    expect(res.scanned).toBe(2);
    expect(await blobs.stat('objects/orphan-old')).toBeNull();
    expect((await t.req('GET', `/files/${kept.fileId}/download`, { key: t.adminKey })).text).toBe('still referenced');
  });
});
