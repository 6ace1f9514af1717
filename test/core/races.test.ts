import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/blobs/blob-store.js';
import { loadConfig } from '../../src/config/load.js';
import { manualClock } from '../../src/core/clock.js';
import { createApiKeyService } from '../../src/core/api-keys.js';
import { createDropzoneService } from '../../src/core/dropzones.js';
import { createFileService } from '../../src/core/files.js';
import type { MetadataOps, MetadataStore, MetadataTx } from '../../src/core/ports/metadata-store.js';
import { openDatabase } from '../../src/db/database.js';
import { createSqliteStore } from '../../src/db/sqlite-store.js';
import { createLogger } from '../../src/log/logger.js';

let dir: string;
let meta: MetadataStore;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dz-races-'));
  meta = createSqliteStore(openDatabase(path.join(dir, 'dropzone.db')));
});
afterEach(async () => {
  await meta.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * `meta` as this process sees it when another process committed just before: the first call of `method` (on the store
 * or inside a transaction) answers `stale` instead of what the database holds.
 */
function staleOnce<K extends keyof MetadataOps>(method: K, stale: Awaited<ReturnType<MetadataOps[K]>>): MetadataStore {
  let fresh = false;
  const patch = <T extends MetadataOps>(ops: T): T => ({
    ...ops,
    [method]: (...args: unknown[]) => {
      if (!fresh) {
        fresh = true;
        return Promise.resolve(stale);
      }
      return (ops[method] as (...a: unknown[]) => unknown)(...args);
    },
  });
  return { ...patch(meta), transaction: (fn: (tx: MetadataTx) => Promise<unknown>) => meta.transaction((tx) => fn(patch(tx))) } as MetadataStore;
}

describe('create-by-name when another writer wins the race', () => {
  it('updates the dropzone the other writer created instead of creating a second one, and charges only the update', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const now = clock.now();
    const key = await meta.insertKey({
      publicId: 'pk_racer', secretHash: 'h', name: 'k', balanceMicro: 10_000_000, permissions: ['dropzone.create'],
      isAdmin: false, createdBy: null, createdAt: now,
    });
    // what another process committed: a live dropzone "shared" of this key (1 GB, 30 days, already paid)
    await meta.insertDropzone({
      id: 'dz_winner', shareId: 'dzs_winner', code: 'winner', name: 'shared', ownerKeyId: key.id, tier: 'standard', hidden: false,
      sizeGb: 1, days: 30, maxSize: 1e9, maxFileSize: 1e9, startTime: now, deleteTime: now + 30 * 86_400_000, createdAt: now, updatedAt: now,
    });
    // this process looked the name up before that commit was visible to it
    const config = loadConfig({ env: {}, overrides: { dataDir: dir } });
    const service = createDropzoneService({ config, meta: staleOnce('dropzoneByOwnerName', undefined), blobs: {} as BlobStore, clock, log: createLogger('silent') });

    const { dz, created } = await service.create(key, { gb: 2, days: 30, name: 'shared' });

    expect(created).toBe(false);
    expect(dz.id).toBe('dz_winner');
    expect(dz.sizeGb).toBe(2);
    expect((await meta.dropzonesForKey(key.id, 'pk_racer')).map((d) => d.id)).toEqual(['dz_winner']);
    // 1 GB-month more (2 GB × 30 days − 1 GB × 30 days), not 2 GB-months for a dropzone that was never made
    expect((await meta.keyById(key.id))!.balanceMicro).toBe(9_000_000);
  });
});

describe('admin bootstrap when another process bootstraps at the same time', () => {
  it('keeps the admin the other process created and prints no secret of its own', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const config = loadConfig({ env: {}, overrides: { dataDir: dir } });
    const other = createApiKeyService({ config, meta, clock });
    const first = await other.ensureAdmin();
    expect(first.generatedSecret).toEqual(expect.any(String));
    // this process looked for an admin before the other one's commit was visible to it
    const mine = await createApiKeyService({ config, meta: staleOnce('adminKey', undefined), clock }).ensureAdmin();
    expect(mine.admin.id).toBe(first.admin.id);
    expect(mine.generatedSecret).toBeUndefined();
    expect((await meta.listKeys()).filter((k) => k.isAdmin)).toHaveLength(1);
  });
});

describe('a file removed twice at once (a user delete racing the sweeper, or two nodes)', () => {
  it('releases its space and its place once', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const config = loadConfig({ env: {}, overrides: { dataDir: dir } });
    const now = clock.now();
    await meta.insertDropzone({
      id: 'dz_a', shareId: 'dzs_a', code: 'a', name: null, ownerKeyId: null, tier: 'standard', hidden: false,
      sizeGb: 1, days: 30, maxSize: 1e9, maxFileSize: 1e9, startTime: now, deleteTime: now + 30 * 86_400_000, createdAt: now, updatedAt: now,
    });
    const blobs = { revocableUploadUrls: true, presignPut: async () => ({ url: 'u', headers: {}, expiresAt: 0 }) } as unknown as BlobStore;
    const files = createFileService({ config, meta, blobs, clock, log: createLogger('silent') });
    const dz = (await meta.dropzoneById('dz_a'))!;
    const keep = await files.requestUpload({}, dz, { name: 'keep.txt', type: 'text/plain', size: 10 });
    const gone = await files.requestUpload({}, dz, { name: 'gone.txt', type: 'text/plain', size: 20 });
    const before = (await meta.dropzoneById('dz_a'))!;

    const removed = await Promise.all([files.removeRow(gone.file), files.removeRow(gone.file), files.removeRow(gone.file)]);

    expect(removed.filter(Boolean)).toHaveLength(1);
    const after = (await meta.dropzoneById('dz_a'))!;
    expect(after.fileCount).toBe(before.fileCount - 1);
    expect(before.usedSpace - after.usedSpace).toBe(20 + 1000 + 'gone.txt'.length + 'text/plain'.length);
    expect(await meta.fileById(keep.file.id)).toBeDefined();
  });
});
