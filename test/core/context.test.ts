import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalBlobStore } from '../../src/blobs/local-store.js';
import { loadConfig } from '../../src/config/load.js';
import { createContext } from '../../src/context.js';
import { manualClock } from '../../src/core/clock.js';
import type { MetadataStore } from '../../src/core/ports/metadata-store.js';
import { openDatabase } from '../../src/db/database.js';
import { createSqliteStore } from '../../src/db/sqlite-store.js';
import { createLogger } from '../../src/log/logger.js';

let dir: string;
let meta: MetadataStore;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dz-context-'));
  meta = createSqliteStore(openDatabase(path.join(dir, 'dropzone.db')));
});
afterEach(async () => {
  await meta.close();
  await rm(dir, { recursive: true, force: true });
});

describe('composition root', () => {
  it('builds stores and services once, without an HTTP app, for CLI commands and the sweeper', async () => {
    const config = loadConfig({ env: {}, overrides: { dataDir: dir, 'security.adminKey': '' } });
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const blobs = createLocalBlobStore({ root: path.join(dir, 'blobs'), secret: 's'.repeat(32), baseUrl: () => 'http://127.0.0.1:1', clock });
    const ctx = createContext({ config, meta, blobs, clock, log: createLogger('silent') });
    try {
      const { admin, generatedSecret } = await ctx.keys.ensureAdmin();
      expect(generatedSecret).toEqual(expect.any(String));
      // the metadata store of the same context sees it, in the port's types
      expect(await ctx.meta.adminKey()).toMatchObject({ publicId: admin.publicId, isAdmin: true });
      const { dz } = await ctx.dropzones.create(admin, { gb: 1, days: 30 });
      clock.advance(31 * 86_400_000);
      expect((await ctx.sweeper.sweep()).expiredDropzones).toBe(1);
      expect(await ctx.meta.dropzoneById(dz.id)).toBeUndefined();
    } finally {
      await blobs.close();
    }
  });
});
