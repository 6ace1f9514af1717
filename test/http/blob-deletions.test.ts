/**
 * Blob deletion: the queue drains completely in one sweep (bounded batches), and on a store that accepts presigned PUTs
 * by itself until they expire (S3) a removed file's key is deleted again once its upload URL is dead, so a PUT after
 * the delete cannot leave bytes outside any quota; a scheduled scan removes whatever is left under the prefix.
 */
import { Readable } from 'node:stream';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const URL_TTL = 600;
/** The old sweeper deleted at most 500 blobs per sweep (one a minute). */
const MORE_THAN_A_BATCH = 520;
const MARGIN = 120;

describeEachBackend('blob deletions', (b: BackendContext) => {
  let t: TestServer;
  beforeEach(async () => {
    t = await b.start({
      settings: {
        'uploads.urlTtlSeconds': URL_TTL,
        // pending reservations outlive the orphan scan below (they end with their URL plus this grace)
        'uploads.reservationGraceSeconds': 3600,
        'sweeper.urlExpiryMarginSeconds': MARGIN,
        'sweeper.gcGraceSeconds': 60,
        'sweeper.gcIntervalSeconds': 1800,
      },
    });
  });
  afterEach(async () => {
    await t?.close();
  });

  /** Queued deletions, read through the port: every row is due at the far future, so all of them are returned. */
  const queued = async () => (await t.server.app.ctx.meta.blobDeletionsDue(Number.MAX_SAFE_INTEGER, { at: Number.MIN_SAFE_INTEGER, key: '' }, 100_000)).length;
  const exists = async (key: string) => (await t.server.app.ctx.blobs.stat(key)) !== null;

  it('one sweep drains a queue longer than a batch, deleting every queued blob', async () => {
    const { meta, blobs } = t.server.app.ctx;
    const real: string[] = [];
    for (let i = 0; i < 3; i++) {
      const key = `objects/queued-${i}`;
      await blobs.put(key, Readable.from([Buffer.from(`bytes ${i}`)]));
      real.push(key);
    }
    const now = t.clock.now();
    await meta.transaction(async (tx) => {
      for (let i = 0; i < MORE_THAN_A_BATCH; i++) await tx.queueBlobDeletion(`objects/gone-${String(i).padStart(4, '0')}`, now);
      for (const key of real) await tx.queueBlobDeletion(key, now);
    });
    expect(await queued()).toBe(MORE_THAN_A_BATCH + 3);
    const res = await t.server.app.ctx.sweeper.sweep();
    expect(res.blobsDeleted).toBe(MORE_THAN_A_BATCH + 3);
    expect(await queued()).toBe(0);
    for (const key of real) expect(await exists(key)).toBe(false);
  });

  it('a PUT to the URL of a deleted pending file leaves nothing once the URL is dead', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const up = await t.requestUpload(t.adminKey, dz._id, 'late.bin', 5);
    const key = (await t.server.app.ctx.meta.fileById(up.fileId))!.blobKey;
    expect((await t.req('DELETE', `/files/${up.fileId}`, { key: t.adminKey })).status).toBe(200);
    expect((await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey })).body.data.usedSpace).toBe(0);

    const put = await t.put(up, 'abcde');
    await put.arrayBuffer();
    // the local store checks the row and refuses; S3 takes the bytes (the URL is valid until it expires)
    expect(put.status).toBe(t.backend === 'local' ? 403 : 200);

    t.clock.advance((URL_TTL + MARGIN) * 1000 + 1000);
    await t.server.app.ctx.sweeper.sweep();
    expect(await exists(key)).toBe(false);
    expect(await queued()).toBe(0);
  });

  it('a PUT into a deleted dropzone leaves nothing once the URL is dead', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const kept = await t.upload(t.adminKey, dz._id, 'done.txt', 'confirmed');
    const up = await t.requestUpload(t.adminKey, dz._id, 'late.bin', 5);
    const key = (await t.server.app.ctx.meta.fileById(up.fileId))!.blobKey;
    const keptKey = (await t.server.app.ctx.meta.fileById(kept.fileId))!.blobKey;
    expect((await t.req('DELETE', `/dropzones/${dz._id}`, { key: t.adminKey })).status).toBe(200);
    // confirmed bytes go at once, as before
    expect(await exists(keptKey)).toBe(false);

    const put = await t.put(up, 'abcde');
    await put.arrayBuffer();
    expect(put.status).toBe(t.backend === 'local' ? 403 : 200);

    // not before the URL can no longer be used: an earlier sweep may not dequeue it
    t.clock.advance(60_000);
    await t.server.app.ctx.sweeper.sweep();
    if (t.backend === 's3') expect(await queued()).toBeGreaterThan(0);

    t.clock.advance((URL_TTL + MARGIN) * 1000);
    await t.server.app.ctx.sweeper.sweep();
    expect(await exists(key)).toBe(false);
    expect(await queued()).toBe(0);
  });

  it('the sweeper scans for orphans under the prefix every sweeper.gcIntervalSeconds', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const kept = await t.upload(t.adminKey, dz._id, 'kept.txt', 'still referenced');
    const pending = await t.requestUpload(t.adminKey, dz._id, 'pending.bin', 3);
    await t.server.app.ctx.blobs.put('objects/orphan', Readable.from([Buffer.from('nobody refers to me')]));

    t.clock.advance(120_000); // past the grace period, not yet the scan interval
    await t.server.app.ctx.sweeper.sweep();
    expect(await exists('objects/orphan')).toBe(true);

    t.clock.advance(1800_000);
    await t.server.app.ctx.sweeper.sweep();
    expect(await exists('objects/orphan')).toBe(false);
    expect((await t.req('GET', `/files/${kept.fileId}/download`, { key: t.adminKey })).text).toBe('still referenced');
    expect((await t.req('GET', `/files/${pending.fileId}`, { key: t.adminKey })).status).toBe(200);
  });
});
