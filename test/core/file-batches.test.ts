/**
 * Issue 10: the ZIP walks a dropzone's files twice in batches (lengths first, bytes second) instead of holding every
 * row; the second walk yields exactly the files of the first, across batch boundaries, and refuses a gap.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FILE_BATCH_SIZE, fileBatches, replayFiles } from '../../src/core/file-batches.js';
import type { MetadataStore } from '../../src/core/ports/metadata-store.js';
import { openDatabase } from '../../src/db/database.js';
import { createSqliteStore } from '../../src/db/sqlite-store.js';
import { newDropzone, newFile } from '../db/metadata-store-contract.js';

const T0 = 1_700_000_000_000;

describe('replayFiles', () => {
  let store: MetadataStore;
  let dz: string;
  /** Rows the port was asked for, per call. */
  let asked: number[];
  let meta: Pick<MetadataStore, 'filesOfDropzoneAfter'>;

  beforeEach(async () => {
    store = createSqliteStore(openDatabase(':memory:'));
    const d = newDropzone({ maxSize: 1e15 });
    await store.insertDropzone(d);
    dz = d.id;
    // more than two batches, with ties in createdAt
    for (let i = 0; i < FILE_BATCH_SIZE * 2 + 7; i++) {
      const f = newFile(dz, { id: `f_${String(i).padStart(5, '0')}`, createdAt: T0 + Math.floor(i / 3) });
      await store.insertFile(f);
      await store.markUploaded(f.id, '"e"', T0);
    }
    asked = [];
    meta = {
      filesOfDropzoneAfter: (...args: Parameters<MetadataStore['filesOfDropzoneAfter']>) => {
        asked.push(args[2]);
        return store.filesOfDropzoneAfter(...args);
      },
    };
  });
  afterEach(async () => {
    await store.close();
  });

  const firstWalk = async () => {
    const keys = { createdAt: [] as number[], id: [] as string[], length: 0 };
    for await (const batch of fileBatches(meta, dz, { uploadedOnly: true }))
      for (const f of batch) {
        keys.createdAt.push(f.createdAt);
        keys.id.push(f.id);
      }
    keys.length = keys.id.length;
    return keys;
  };

  it('yields exactly the files of the first walk, skipping files added since, reading in bounded batches', async () => {
    const keys = await firstWalk();
    expect(keys.length).toBe(FILE_BATCH_SIZE * 2 + 7);
    // added between the walks: one sorting first, one in the middle, one last
    for (const [id, at] of [['f_a0', T0 - 1], ['f_m', T0 + 200], ['f_z', T0 + 10_000]] as const) {
      await store.insertFile(newFile(dz, { id, createdAt: at }));
      await store.markUploaded(id, '"e"', T0);
    }
    const seen: string[] = [];
    for await (const f of replayFiles(meta, dz, keys, { uploadedOnly: true })) seen.push(f.id);
    expect(seen).toEqual(keys.id);
    expect(Math.max(...asked)).toBe(FILE_BATCH_SIZE);
  });

  it('throws when a file of the first walk is gone, also the last one', async () => {
    for (const victim of ['f_00600', `f_${String(FILE_BATCH_SIZE * 2 + 6).padStart(5, '0')}`]) {
      const keys = await firstWalk();
      await store.deleteFile(victim);
      const run = async () => {
        for await (const _ of replayFiles(meta, dz, keys, { uploadedOnly: true }));
      };
      await expect(run(), victim).rejects.toThrow(/gone since the first walk/);
    }
  });
});
