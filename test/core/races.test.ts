import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/blobs/blob-store.js';
import { loadConfig } from '../../src/config/load.js';
import { manualClock } from '../../src/core/clock.js';
import { createApiKeyService } from '../../src/core/api-keys.js';
import { createDropzoneService } from '../../src/core/dropzones.js';
import { type Db, openDatabase } from '../../src/db/database.js';
import { createRepositories, type Repositories } from '../../src/db/repositories.js';
import { createLogger } from '../../src/log/logger.js';

let dir: string;
let db: Db;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dz-names-'));
  db = openDatabase(path.join(dir, 'dropzone.db'));
});
afterEach(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

describe('create-by-name when another writer wins the race', () => {
  it('updates the dropzone the other writer created instead of creating a second one, and charges only the update', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const repo = createRepositories(db);
    const now = clock.now();
    const keyId = repo.insertKey({
      public_id: 'pk_racer', secret_hash: 'h', name: 'k', balance_micro: 10_000_000, permissions: '["dropzone.create"]',
      is_admin: 0, created_by: null, created_at: now,
    });
    // what another process committed: a live dropzone "shared" of this key (1 GB, 30 days, already paid)
    repo.insertDropzone({
      id: 'dz_winner', share_id: 'dzs_winner', code: 'winner', name: 'shared', owner_key_id: keyId, tier: 'standard', hidden: 0,
      size_gb: 1, days: 30, max_size: 1e9, max_file_size: 1e9, start_time: now, delete_time: now + 30 * 86_400_000, created_at: now, updated_at: now,
    });
    // this process looked the name up before that commit was visible to it
    let stale = true;
    const racing: Repositories = {
      ...repo,
      dropzoneByOwnerName: (owner, name) => {
        if (stale) {
          stale = false;
          return undefined;
        }
        return repo.dropzoneByOwnerName(owner, name);
      },
    };
    const config = loadConfig({ env: {}, overrides: { dataDir: dir } });
    const service = createDropzoneService({ config, repo: racing, blobs: {} as BlobStore, clock, log: createLogger('silent') });

    const { dz, created } = service.create(repo.keyById(keyId)!, { gb: 2, days: 30, name: 'shared' });

    expect(created).toBe(false);
    expect(dz.id).toBe('dz_winner');
    expect(dz.size_gb).toBe(2);
    expect(repo.dropzonesForKey(keyId, 'pk_racer').map((d) => d.id)).toEqual(['dz_winner']);
    // 1 GB-month more (2 GB × 30 days − 1 GB × 30 days), not 2 GB-months for a dropzone that was never made
    expect(repo.keyById(keyId)!.balance_micro).toBe(9_000_000);
  });
});

describe('admin bootstrap when another process bootstraps at the same time', () => {
  it('keeps the admin the other process created and prints no secret of its own', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const repo = createRepositories(db);
    const config = loadConfig({ env: {}, overrides: { dataDir: dir } });
    const other = createApiKeyService({ config, repo, clock });
    const first = other.ensureAdmin();
    expect(first.generatedSecret).toEqual(expect.any(String));
    // this process looked for an admin before the other one's commit was visible to it
    let stale = true;
    const racing: Repositories = {
      ...repo,
      adminKey: () => {
        if (stale) {
          stale = false;
          return undefined;
        }
        return repo.adminKey();
      },
    };
    const mine = createApiKeyService({ config, repo: racing, clock }).ensureAdmin();
    expect(mine.admin.id).toBe(first.admin.id);
    expect(mine.generatedSecret).toBeUndefined();
    expect(repo.listKeys().filter((k) => k.is_admin === 1)).toHaveLength(1);
  });
});
