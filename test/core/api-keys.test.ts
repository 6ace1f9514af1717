/**
 * Authentication keeps the SHA-256 of the secrets presented lately (a client sends the same one with every request), but
 * never whether a key is valid: a revoked key stops working at once, the configured admin secret is recognised, and the
 * kept digests are bounded in number and length.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createApiKeyService } from '../../src/core/api-keys.js';
import { systemClock } from '../../src/core/clock.js';
import * as ids from '../../src/core/ids.js';
import type { MetadataStore } from '../../src/core/ports/metadata-store.js';
import { openDatabase } from '../../src/db/database.js';
import { createSqliteStore } from '../../src/db/sqlite-store.js';

vi.mock('../../src/core/ids.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/core/ids.js')>();
  return { ...actual, hashSecret: vi.fn(actual.hashSecret) };
});
const hashSecret = vi.mocked(ids.hashSecret);
/** How many times `secret` was hashed since the last reset. */
const hashesOf = (secret: string) => hashSecret.mock.calls.filter(([s]) => s === secret).length;

const ADMIN_SECRET = 'configured-admin-secret-0123456789';
let dir: string;
let meta: MetadataStore;
let keys: ReturnType<typeof createApiKeyService>;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dz-api-keys-'));
  meta = createSqliteStore(openDatabase(path.join(dir, 'dropzone.db')));
  const config = loadConfig({ env: {}, overrides: { dataDir: dir, 'security.adminKey': ADMIN_SECRET } });
  keys = createApiKeyService({ meta, clock: systemClock(), config });
  await keys.ensureAdmin();
  hashSecret.mockClear();
});
afterEach(async () => {
  await meta.close();
  await rm(dir, { recursive: true, force: true });
});

describe('authenticate', () => {
  it('hashes a secret presented again once, and still finds its key every time', async () => {
    const { row, secret } = await keys.create(undefined, { name: 'client' });
    hashSecret.mockClear();
    for (let i = 0; i < 3; i++) expect((await keys.authenticate(secret))?.publicId).toBe(row.publicId);
    expect(hashesOf(secret)).toBe(1);
  });

  it('refuses a revoked key whose digest it kept', async () => {
    const { row, secret } = await keys.create(undefined, { name: 'client' });
    expect((await keys.authenticate(secret))?.publicId).toBe(row.publicId);
    expect(await keys.revoke(row.publicId)).toBe(true);
    expect(await keys.authenticate(secret)).toBeUndefined();
  });

  it('recognises the configured admin secret each time, and no other secret of its length as the admin', async () => {
    for (let i = 0; i < 2; i++) expect(await keys.authenticate(ADMIN_SECRET)).toMatchObject({ isAdmin: true });
    expect(hashesOf(ADMIN_SECRET)).toBe(1);
    const lookalike = `${ADMIN_SECRET.slice(0, -1)}X`;
    for (let i = 0; i < 2; i++) expect(await keys.authenticate(lookalike)).toBeUndefined();
    expect(await keys.authenticate('')).toBeUndefined();
  });

  it('does not keep the digest of a secret longer than 128 characters', async () => {
    const long = 'k'.repeat(129);
    await keys.authenticate(long);
    await keys.authenticate(long);
    expect(hashesOf(long)).toBe(2);
    const kept = 'k'.repeat(128);
    await keys.authenticate(kept);
    await keys.authenticate(kept);
    expect(hashesOf(kept)).toBe(1);
  });

  it('keeps at most 1,024 digests: a flood of made-up secrets empties them, and the real key is hashed again', async () => {
    const { row, secret } = await keys.create(undefined, { name: 'client' });
    await keys.authenticate(secret);
    for (let i = 0; i < 1024; i++) await keys.authenticate(`made-up-${i}`);
    hashSecret.mockClear();
    expect((await keys.authenticate(secret))?.publicId).toBe(row.publicId);
    expect(hashesOf(secret)).toBe(1);
  });
});
