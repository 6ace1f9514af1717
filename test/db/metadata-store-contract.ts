/**
 * The behaviour every {@link MetadataStore} implementation must show. An implementation's test file calls
 * {@link metadataStoreContract} once; the suite only uses the port, so it runs unchanged against SQLite and any later
 * store. Concurrent cases fire many calls at once and check the invariants the database must keep by itself.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MetadataStore, NewApiKey, NewDropzone, NewEvent, NewFile } from '../../src/core/ports/metadata-store.js';

/** What a contract `setup` returns: a fresh, empty, migrated store and how to dispose of it. */
export interface MetadataContractFixture {
  store: MetadataStore;
  /**
   * Another store on the same database (as a second node would open it), for cross-connection races of single
   * conditional operations; absent when the implementation has no such notion.
   */
  another?(): Promise<MetadataStore>;
  teardown(): Promise<void>;
}

const T0 = 1_700_000_000_000;
let seq = 0;
const uid = (p: string) => `${p}_${Date.now().toString(36)}_${(++seq).toString(36)}`;

/** A new API key with sensible defaults. */
export function newKey(over: Partial<NewApiKey> = {}): NewApiKey {
  return {
    publicId: uid('pk'),
    secretHash: uid('hash'),
    name: 'k',
    balanceMicro: null,
    permissions: ['dropzone.create'],
    isAdmin: false,
    createdBy: null,
    createdAt: T0,
    ...over,
  };
}

/** A new dropzone of `maxSize` bytes alive from T0 for a day. */
export function newDropzone(over: Partial<NewDropzone> = {}): NewDropzone {
  return {
    id: uid('dz'),
    shareId: uid('dzs'),
    code: uid('code'),
    name: null,
    ownerKeyId: null,
    tier: 'standard',
    hidden: false,
    sizeGb: 1,
    days: 1,
    maxSize: 1_000_000,
    maxFileSize: 1_000_000,
    startTime: T0,
    deleteTime: T0 + 86_400_000,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

/** A new pending file in `dropzoneId`. */
export function newFile(dropzoneId: string, over: Partial<NewFile> = {}): NewFile {
  const id = uid('f');
  return { id, dropzoneId, name: 'a.txt', type: 'text/plain', size: 10, blobKey: `b/${id}`, uploaderKeyId: null, createdAt: T0, pendingExpiresAt: T0 + 3600_000, ...over };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * Registers `describe(`MetadataStore contract: ${name}`)` with the tests every implementation must pass.
 * `setup` runs before each test.
 */
export function metadataStoreContract(name: string, setup: () => Promise<MetadataContractFixture>): void {
  describe(`MetadataStore contract: ${name}`, () => {
    let fx: MetadataContractFixture;
    let store: MetadataStore;
    const extra: MetadataStore[] = [];

    beforeEach(async () => {
      fx = await setup();
      store = fx.store;
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await fx.teardown();
    });

    /** The stores concurrent calls are spread over: this one, plus a second connection when there is one. */
    const stores = async () => {
      if (!fx.another) return [store];
      const other = await fx.another();
      extra.push(other);
      return [store, other];
    };

    describe('API keys', () => {
      it('round-trips a key in domain types and finds it by id, publicId and hash', async () => {
        const k = await store.insertKey(newKey({ permissions: ['apikey.create', 'dropzone.create'], balanceMicro: 5, isAdmin: false }));
        expect(k.id).toEqual(expect.any(Number));
        expect(k).toMatchObject({ permissions: ['apikey.create', 'dropzone.create'], balanceMicro: 5, isAdmin: false, revokedAt: null });
        expect(await store.keyById(k.id)).toEqual(k);
        expect(await store.keyByPublicId(k.publicId)).toEqual(k);
        expect(await store.keyByHash(k.secretHash)).toEqual(k);
        expect(await store.keyById(k.id + 1000)).toBeUndefined();
      });

      it('revokes once; a revoked key is no longer found by hash', async () => {
        const k = await store.insertKey(newKey());
        expect(await store.revokeKey(k.publicId, T0 + 1)).toBe(true);
        expect(await store.revokeKey(k.publicId, T0 + 2)).toBe(false);
        expect(await store.keyByHash(k.secretHash)).toBeUndefined();
        expect((await store.keyByPublicId(k.publicId))?.revokedAt).toBe(T0 + 1);
      });

      it('debits only what a limited balance covers; unlimited keys are not debited; credits add', async () => {
        const k = await store.insertKey(newKey({ balanceMicro: 100 }));
        expect(await store.debitKey(k.id, 60)).toBe(true);
        expect(await store.debitKey(k.id, 60)).toBe(false);
        expect((await store.keyById(k.id))?.balanceMicro).toBe(40);
        expect(await store.creditKey(k.id, 10)).toBe(true);
        expect((await store.keyById(k.id))?.balanceMicro).toBe(50);
        const u = await store.insertKey(newKey({ balanceMicro: null }));
        expect(await store.debitKey(u.id, 1)).toBe(false);
        expect(await store.creditKey(u.id, 1)).toBe(false);
        expect((await store.keyById(u.id))?.balanceMicro).toBeNull();
      });

      it('parallel debits never take a balance below zero', async () => {
        const k = await store.insertKey(newKey({ balanceMicro: 5 }));
        const all = await stores();
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => all[i % all.length].debitKey(k.id, 1)));
        expect(results.filter(Boolean)).toHaveLength(5);
        expect((await store.keyById(k.id))?.balanceMicro).toBe(0);
      });

      it('parallel transfers in transactions that read, wait and debit move a balance that covers one exactly once', async () => {
        const from = await store.insertKey(newKey({ balanceMicro: 10 }));
        const to = await store.insertKey(newKey({ balanceMicro: 0 }));
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, () =>
            store.transaction(async (tx) => {
              const before = await tx.keyById(from.id);
              await tick();
              if (!before || !(await tx.debitKey(from.id, 10))) throw new Error('short');
              await tick();
              await tx.creditKey(to.id, 10);
            }),
          ),
        );
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect((await store.keyById(from.id))?.balanceMicro).toBe(0);
        expect((await store.keyById(to.id))?.balanceMicro).toBe(10);
      });
    });

    describe('dropzones and reservations', () => {
      it('round-trips a dropzone and finds it by id, shareId and code', async () => {
        const owner = await store.insertKey(newKey());
        const d = newDropzone({ ownerKeyId: owner.id, name: 'n', hidden: true });
        await store.insertDropzone(d);
        const got = await store.dropzoneById(d.id);
        expect(got).toEqual({ ...d, usedSpace: 0, fileCount: 0 });
        expect(await store.dropzoneByRef(d.shareId)).toEqual(got);
        expect(await store.dropzoneByCode(d.code)).toEqual(got);
        expect(await store.dropzoneByOwnerName(owner.id, 'n')).toEqual(got);
        expect((await store.dropzonesForKey(owner.id, owner.publicId)).map((x) => x.id)).toEqual([d.id]);
      });

      it('reserves while space, file count and lifetime allow, and releases', async () => {
        const d = newDropzone({ maxSize: 100 });
        await store.insertDropzone(d);
        expect(await store.reserveSpace(d.id, 60, T0, 10)).toBe(true);
        expect(await store.reserveSpace(d.id, 41, T0, 10)).toBe(false);
        expect(await store.reserveSpace(d.id, 40, T0, 1)).toBe(false);
        expect(await store.reserveSpace(d.id, 40, d.deleteTime, 10)).toBe(false);
        expect(await store.reserveSpace(d.id, 40, T0, 10)).toBe(true);
        expect(await store.dropzoneById(d.id)).toMatchObject({ usedSpace: 100, fileCount: 2 });
        await store.releaseSpace(d.id, 60);
        expect(await store.dropzoneById(d.id)).toMatchObject({ usedSpace: 40, fileCount: 1 });
      });

      it('parallel reservations never exceed maxSize', async () => {
        const d = newDropzone({ maxSize: 100 * 7 });
        await store.insertDropzone(d);
        const all = await stores();
        const results = await Promise.all(Array.from({ length: 200 }, (_, i) => all[i % all.length].reserveSpace(d.id, 7, T0, 1_000_000)));
        expect(results.filter(Boolean)).toHaveLength(100);
        expect(await store.dropzoneById(d.id)).toMatchObject({ usedSpace: 700, fileCount: 100 });
      });

      it('parallel reservations never exceed the file limit', async () => {
        const d = newDropzone({ maxSize: 1_000_000 });
        await store.insertDropzone(d);
        const all = await stores();
        const results = await Promise.all(Array.from({ length: 60 }, (_, i) => all[i % all.length].reserveSpace(d.id, 1, T0, 25)));
        expect(results.filter(Boolean)).toHaveLength(25);
        expect((await store.dropzoneById(d.id))?.fileCount).toBe(25);
      });

      it('closing ends reservations; expired dropzones are listed', async () => {
        const d = newDropzone();
        await store.insertDropzone(d);
        await store.closeDropzone(d.id, T0);
        expect(await store.reserveSpace(d.id, 1, T0, 10)).toBe(false);
        expect((await store.expiredDropzones(T0)).map((x) => x.id)).toEqual([d.id]);
      });
    });

    describe('invariants kept by the database', () => {
      it('one live dropzone per owner and name, also when many create it at once', async () => {
        const owner = await store.insertKey(newKey());
        const all = await stores();
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) => all[i % all.length].insertDropzone(newDropzone({ ownerKeyId: owner.id, name: 'same' }))),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect((await store.dropzonesForKey(owner.id, owner.publicId)).length).toBe(1);
        // other owners, and unnamed dropzones, are not affected
        const other = await store.insertKey(newKey());
        expect(await store.insertDropzone(newDropzone({ ownerKeyId: other.id, name: 'same' }))).toBe(true);
        expect(await store.insertDropzone(newDropzone({ ownerKeyId: owner.id }))).toBe(true);
        expect(await store.insertDropzone(newDropzone({ ownerKeyId: owner.id }))).toBe(true);
      });

      it('an expired dropzone awaiting the sweeper gives its name back', async () => {
        const owner = await store.insertKey(newKey());
        const old = newDropzone({ ownerKeyId: owner.id, name: 'n' });
        expect(await store.insertDropzone(old)).toBe(true);
        const fresh = newDropzone({ ownerKeyId: owner.id, name: 'n', createdAt: old.deleteTime, startTime: old.deleteTime, deleteTime: old.deleteTime + 1000 });
        expect(await store.insertDropzone(fresh)).toBe(true);
        expect((await store.dropzoneByOwnerName(owner.id, 'n'))?.id).toBe(fresh.id);
        expect(await store.dropzoneById(old.id)).toMatchObject({ name: 'n' });
      });

      it('one active admin key, also when many bootstrap at once', async () => {
        const all = await stores();
        const results = await Promise.all(Array.from({ length: 8 }, (_, i) => all[i % all.length].ensureAdminKey(newKey({ isAdmin: true }))));
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect(new Set(results.map((r) => r.key.id)).size).toBe(1);
        expect(results[0].key.isAdmin).toBe(true);
        expect((await store.listKeys()).filter((k) => k.isAdmin)).toHaveLength(1);
        // once revoked, a new admin can be bootstrapped
        await store.revokeKey(results[0].key.publicId, T0 + 1);
        const next = await store.ensureAdminKey(newKey({ isAdmin: true }));
        expect(next.created).toBe(true);
        expect((await store.adminKey())?.id).toBe(next.key.id);
      });
    });

    describe('files', () => {
      it('confirms a pending file once and pages files in (createdAt, id) order', async () => {
        const d = newDropzone();
        await store.insertDropzone(d);
        const files = [newFile(d.id, { id: 'f_b', createdAt: T0 }), newFile(d.id, { id: 'f_a', createdAt: T0 }), newFile(d.id, { id: 'f_c', createdAt: T0 + 1 })];
        for (const f of files) await store.insertFile(f);
        expect(await store.fileById('f_a')).toMatchObject({ status: 'pending', etag: null, pendingHolder: null, dropzoneId: d.id });
        expect(await store.markUploaded('f_a', '"e"', T0 + 5)).toBe(true);
        expect(await store.markUploaded('f_a', '"e2"', T0 + 6)).toBe(false);
        expect(await store.fileById('f_a')).toMatchObject({ status: 'uploaded', etag: '"e"', confirmedAt: T0 + 5, pendingExpiresAt: null });
        const first = await store.filesOfDropzoneAfter(d.id, undefined, 2);
        expect(first.map((f) => f.id)).toEqual(['f_a', 'f_b']);
        expect((await store.filesOfDropzoneAfter(d.id, first[1], 2)).map((f) => f.id)).toEqual(['f_c']);
        expect((await store.filesOfDropzoneAfter(d.id, undefined, 10, true)).map((f) => f.id)).toEqual(['f_a']);
        expect(await store.fileByBlobKey(files[0].blobKey)).toMatchObject({ id: 'f_b' });
      });

      it('pins one multipart upload id per pending file: concurrent pins, exactly one wins; unpinned only by its id; confirm clears it', async () => {
        const d = newDropzone();
        await store.insertDropzone(d);
        const f = newFile(d.id);
        await store.insertFile(f);
        expect(await store.fileById(f.id)).toMatchObject({ multipartUploadId: null });
        const all = await stores();
        const won = await Promise.all(Array.from({ length: 6 }, (_, i) => all[i % all.length].setMultipartUpload(f.id, `up-${i}`)));
        expect(won.filter(Boolean)).toHaveLength(1);
        const pinned = `up-${won.indexOf(true)}`;
        expect(await store.fileById(f.id)).toMatchObject({ multipartUploadId: pinned });
        expect(await store.clearMultipartUpload(f.id, 'other')).toBe(false);
        expect(await store.fileById(f.id)).toMatchObject({ multipartUploadId: pinned });
        expect(await store.clearMultipartUpload(f.id, pinned)).toBe(true);
        expect(await store.setMultipartUpload(f.id, 'again')).toBe(true);
        expect(await store.markUploaded(f.id, '"e-2"', T0 + 1)).toBe(true);
        expect(await store.fileById(f.id)).toMatchObject({ status: 'uploaded', multipartUploadId: null });
        // a confirmed file takes no upload any more; a missing one neither
        expect(await store.setMultipartUpload(f.id, 'late')).toBe(false);
        expect(await store.setMultipartUpload('f_missing', 'x')).toBe(false);
      });

      it('scan state: set at confirm (none by default), one claim at a time until it expires, verdict only from scanning', async () => {
        const d = newDropzone();
        await store.insertDropzone(d);
        const plain = newFile(d.id, { id: 'f_plain', createdAt: T0 });
        const scanned = newFile(d.id, { id: 'f_scan', createdAt: T0 + 1 });
        const later = newFile(d.id, { id: 'f_later', createdAt: T0 + 2 });
        for (const f of [plain, scanned, later]) await store.insertFile(f);
        expect(await store.fileById(plain.id)).toMatchObject({ scanState: null, scanClaimUntil: null });
        expect(await store.markUploaded(plain.id, '"p"', T0 + 1)).toBe(true);
        expect(await store.fileById(plain.id)).toMatchObject({ status: 'uploaded', scanState: null });
        expect(await store.markUploaded(scanned.id, '"s"', T0 + 2, 'scanning')).toBe(true);
        expect(await store.markUploaded(later.id, '"l"', T0 + 3, 'scanning')).toBe(true);
        expect(await store.fileById(scanned.id)).toMatchObject({ status: 'uploaded', scanState: 'scanning', scanClaimUntil: null });
        // a file without a scan state is never claimed or decided
        expect(await store.claimScan(plain.id, T0, T0 + 100)).toBe(false);
        expect(await store.finishScan(plain.id, 'quarantined')).toBe(false);
        expect((await store.filesToScan(T0, 10)).map((f) => f.id)).toEqual([scanned.id, later.id]);
        // many nodes claim at once: exactly one wins
        const all = await stores();
        const won = await Promise.all(Array.from({ length: 6 }, (_, i) => all[i % all.length].claimScan(scanned.id, T0 + 10, T0 + 1000)));
        expect(won.filter(Boolean)).toHaveLength(1);
        expect(await store.fileById(scanned.id)).toMatchObject({ scanClaimUntil: T0 + 1000 });
        expect((await store.filesToScan(T0 + 10, 10)).map((f) => f.id)).toEqual([later.id]);
        // the claim expires: another node takes it over
        expect(await store.claimScan(scanned.id, T0 + 999, T0 + 2000)).toBe(false);
        expect((await store.filesToScan(T0 + 1000, 10)).map((f) => f.id)).toEqual([scanned.id, later.id]);
        expect(await store.claimScan(scanned.id, T0 + 1000, T0 + 3000)).toBe(true);
        // released: free for anyone again
        await store.releaseScanClaim(scanned.id);
        expect(await store.fileById(scanned.id)).toMatchObject({ scanClaimUntil: null });
        expect(await store.claimScan(scanned.id, T0 + 1000, T0 + 3000)).toBe(true);
        // the verdict lands once and clears the claim; a later one does not replace it
        const verdicts = await Promise.all(all.map((s, i) => s.finishScan(scanned.id, i === 0 ? 'quarantined' : 'clean')));
        expect(verdicts.filter(Boolean)).toHaveLength(1);
        const decided = await store.fileById(scanned.id);
        expect(['quarantined', 'clean']).toContain(decided?.scanState);
        expect(decided?.scanClaimUntil).toBeNull();
        expect(await store.finishScan(scanned.id, 'scan_failed')).toBe(false);
        expect(await store.claimScan(scanned.id, T0 + 5000, T0 + 6000)).toBe(false);
        expect((await store.filesToScan(T0 + 5000, 10)).map((f) => f.id)).toEqual([later.id]);
        expect(await store.finishScan(later.id, 'scan_failed')).toBe(true);
        expect(await store.fileById(later.id)).toMatchObject({ scanState: 'scan_failed' });
        expect(await store.filesToScan(T0 + 5000, 10)).toEqual([]);
      });

      it('deletes a file row once: concurrent deletes of one file report exactly one deletion', async () => {
        const d = newDropzone();
        await store.insertDropzone(d);
        const f = newFile(d.id);
        await store.insertFile(f);
        const all = await stores();
        const results = await Promise.all(Array.from({ length: 6 }, (_, i) => all[i % all.length].deleteFile(f.id)));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await store.fileById(f.id)).toBeUndefined();
        expect(await store.deleteFile(f.id)).toBe(false);
      });
    });

    describe('keyset pages (issue 10)', () => {
      /** Every id `page` yields, walking with `limit` rows per call from the start; `between` runs after each page. */
      const walk = async <T extends { id: string; createdAt: number }>(page: (after: T | undefined) => Promise<T[]>, limit: number, between?: (n: number) => Promise<void>) => {
        const seen: string[] = [];
        let after: T | undefined;
        for (let n = 0; n < 100; n++) {
          const rows = await page(after);
          expect(rows.length).toBeLessThanOrEqual(limit);
          seen.push(...rows.map((r) => r.id));
          if (rows.length < limit) return seen;
          after = rows[rows.length - 1];
          await between?.(n);
        }
        throw new Error('walk did not end');
      };

      it('files: ties in createdAt are ordered by id; rows inserted between pages appear once, behind the cursor or not at all', async () => {
        const d = newDropzone();
        await store.insertDropzone(d);
        for (const id of ['f_e', 'f_a', 'f_c', 'f_b', 'f_d']) await store.insertFile(newFile(d.id, { id, createdAt: T0 }));
        await store.insertFile(newFile(d.id, { id: 'f_0', createdAt: T0 - 1 }));
        // after each page: one row sorted before the cursor (never seen by this walk) and one after it (seen once)
        const seen = await walk((after) => store.filesOfDropzoneAfter(d.id, after, 2), 2, async (n) => {
          await store.insertFile(newFile(d.id, { id: `f_early${n}`, createdAt: T0 - 10 }));
          await store.insertFile(newFile(d.id, { id: `f_late${n}`, createdAt: T0 + 10 + n }));
        });
        expect(seen.slice(0, 6)).toEqual(['f_0', 'f_a', 'f_b', 'f_c', 'f_d', 'f_e']);
        expect(new Set(seen).size).toBe(seen.length);
        expect(seen.filter((id) => id.startsWith('f_early'))).toEqual([]);
        expect(seen.filter((id) => id.startsWith('f_late')).length).toBeGreaterThan(0);
      });

      it('dropzones of a key: owned and granted ones, each once, in (createdAt, id) order; invisible ones never shorten a page', async () => {
        const owner = await store.insertKey(newKey());
        const other = await store.insertKey(newKey());
        const visible: string[] = [];
        for (let i = 0; i < 12; i++) {
          // ties: two dropzones per createdAt; between them, dropzones of another key the owner cannot see
          const mine = newDropzone({ id: `dz_m${String(i).padStart(2, '0')}`, ownerKeyId: owner.id, createdAt: T0 + Math.floor(i / 2) });
          await store.insertDropzone(mine);
          for (let j = 0; j < 3; j++) await store.insertDropzone(newDropzone({ ownerKeyId: other.id, createdAt: T0 + Math.floor(i / 2) }));
          visible.push(mine.id);
        }
        // granted to the owner: once with get, once with get and own (listed once), once with a permission that does not list
        const granted = [newDropzone({ id: 'dz_g1', ownerKeyId: other.id, createdAt: T0 + 2 }), newDropzone({ id: 'dz_g2', ownerKeyId: other.id, createdAt: T0 + 100 })];
        for (const g of granted) await store.insertDropzone(g);
        await store.insertGrant('dropzone', 'dz_g1', owner.publicId, 'dropzone.get', T0);
        await store.insertGrant('dropzone', 'dz_g2', owner.publicId, 'dropzone.get', T0);
        await store.insertGrant('dropzone', 'dz_g2', owner.publicId, 'dropzone.own', T0);
        const hidden = newDropzone({ ownerKeyId: other.id, createdAt: T0 + 3 });
        await store.insertDropzone(hidden);
        await store.insertGrant('dropzone', hidden.id, owner.publicId, 'dropzone.upload', T0);

        const expected = (await store.dropzonesForKey(owner.id, owner.publicId)).map((d) => d.id);
        expect(expected).toHaveLength(14);
        expect(expected).toContain('dz_g1');
        expect(expected).not.toContain(hidden.id);
        for (const limit of [1, 3, 5, 14, 1000]) {
          const pages: number[] = [];
          const seen = await walk(async (after) => {
            const rows = await store.dropzonesForKeyAfter(owner.id, owner.publicId, after, limit);
            pages.push(rows.length);
            return rows;
          }, limit);
          expect(seen, `limit ${limit}`).toEqual(expected);
          // every page but the last is full: the filter is applied before the limit
          expect(pages.slice(0, -1).every((n) => n === limit), `limit ${limit}: ${pages}`).toBe(true);
        }
        expect(expected.filter((id) => id.startsWith('dz_m'))).toEqual(visible);
      });

      it('every dropzone: ties and inserts between pages, each row at most once', async () => {
        for (const id of ['dz_c', 'dz_a', 'dz_b']) await store.insertDropzone(newDropzone({ id, createdAt: T0 }));
        await store.insertDropzone(newDropzone({ id: 'dz_0', createdAt: T0 - 1 }));
        const seen = await walk((after) => store.allDropzonesAfter(after, 2), 2, async (n) => {
          await store.insertDropzone(newDropzone({ id: `dz_early${n}`, createdAt: T0 - 10 }));
          await store.insertDropzone(newDropzone({ id: `dz_late${n}`, createdAt: T0 + 10 + n }));
        });
        expect(seen.slice(0, 4)).toEqual(['dz_0', 'dz_a', 'dz_b', 'dz_c']);
        expect(new Set(seen).size).toBe(seen.length);
        expect(seen.filter((id) => id.startsWith('dz_early'))).toEqual([]);
        expect(seen.filter((id) => id.startsWith('dz_late')).length).toBeGreaterThan(0);
      });

      it('grants on a resource in (principal, permission) order, only that resource', async () => {
        const grants = [
          ['pk_b', 'dropzone.get'], ['pk_a', 'dropzone.list'], ['pk_a', 'dropzone.get'], ['anyone', 'dropzone.list'], ['pk_b', 'dropzone.upload'],
        ] as const;
        for (const [principal, permission] of grants) await store.insertGrant('dropzone', 'dz1', principal, permission, T0);
        await store.insertGrant('dropzone', 'dz2', 'pk_a', 'dropzone.get', T0);
        await store.insertGrant('file', 'dz1', 'pk_a', 'file.get', T0);
        const all: string[] = [];
        let after: { principal: string; permission: string } | undefined;
        for (;;) {
          const page = await store.grantsOnAfter('dropzone', 'dz1', after, 2);
          all.push(...page.map((g) => `${g.principal}:${g.permission}`));
          if (page.length < 2) break;
          after = page[page.length - 1];
        }
        expect(all).toEqual(['anyone:dropzone.list', 'pk_a:dropzone.get', 'pk_a:dropzone.list', 'pk_b:dropzone.get', 'pk_b:dropzone.upload']);
        expect((await store.grantsOn('dropzone', 'dz1')).map((g) => `${g.principal}:${g.permission}`)).toEqual(all);
      });
    });

    describe('leases', () => {
      it('one holder at a time; renewable by its holder; taken over once expired; released', async () => {
        expect(await store.acquireLease('sweeper', 'node-a', T0, 1000)).toBe(true);
        expect(await store.acquireLease('sweeper', 'node-b', T0 + 500, 1000)).toBe(false);
        expect(await store.acquireLease('sweeper', 'node-a', T0 + 900, 1000)).toBe(true); // renewed until T0 + 1900
        expect(await store.acquireLease('sweeper', 'node-b', T0 + 1500, 1000)).toBe(false);
        expect(await store.acquireLease('sweeper', 'node-b', T0 + 1900, 1000)).toBe(true); // expired: taken over
        expect(await store.acquireLease('sweeper', 'node-a', T0 + 2000, 1000)).toBe(false);
        expect(await store.acquireLease('other', 'node-a', T0 + 2000, 1000)).toBe(true); // leases are independent
        await store.releaseLease('sweeper', 'node-a'); // not the holder: no effect
        expect(await store.acquireLease('sweeper', 'node-a', T0 + 2000, 1000)).toBe(false);
        await store.releaseLease('sweeper', 'node-b');
        expect(await store.acquireLease('sweeper', 'node-a', T0 + 2000, 1000)).toBe(true);
      });

      it('many contenders at once: exactly one gets a free lease', async () => {
        const all = await stores();
        const won = await Promise.all(Array.from({ length: 12 }, (_, i) => all[i % all.length].acquireLease('sweeper', `node-${i}`, T0, 60_000)));
        expect(won.filter(Boolean)).toHaveLength(1);
      });
    });

    describe('grants and settings', () => {
      it('adds grants idempotently, lists them and removes them', async () => {
        await store.insertGrant('dropzone', 'dz1', 'pk_x', 'dropzone.get', T0);
        await store.insertGrant('dropzone', 'dz1', 'pk_x', 'dropzone.get', T0);
        await store.insertGrant('dropzone', 'dz1', 'anyone', 'file.get', T0);
        expect(await store.grantsOn('dropzone', 'dz1')).toEqual([
          { principal: 'anyone', permission: 'file.get' },
          { principal: 'pk_x', permission: 'dropzone.get' },
        ]);
        expect([...(await store.grantsFor('dropzone', 'dz1', 'pk_x'))].sort()).toEqual(['dropzone.get', 'file.get']);
        expect(await store.grantsForAnyone('dropzone', 'dz1')).toEqual(['file.get']);
        await store.deleteGrant('dropzone', 'dz1', 'pk_x', 'dropzone.get');
        expect(await store.grantsFor('dropzone', 'dz1', 'pk_x')).toEqual(['file.get']);
      });

      it('initSetting keeps the first value, also when many race', async () => {
        const all = await stores();
        const values = await Promise.all(Array.from({ length: 10 }, (_, i) => all[i % all.length].initSetting('s', `v${i}`)));
        expect(new Set(values).size).toBe(1);
        expect(await store.getSetting('s')).toBe(values[0]);
        await store.setSetting('s', 'other');
        expect(await store.initSetting('s', 'again')).toBe('other');
      });
    });

    describe('blob deletion queue', () => {
      it('lists due and never-tried deletions in queue order and dequeues them', async () => {
        await store.queueBlobDeletion('k1', T0);
        await store.queueBlobDeletion('k2', T0 + 1, T0 + 100);
        await store.markBlobDeletionTried('k2');
        expect(await store.blobDeletionsDue(T0 + 50, { at: -1, key: '' }, 10)).toEqual([{ blobKey: 'k1', queuedAt: T0, notBefore: T0 }]);
        expect((await store.blobDeletionsDue(T0 + 100, { at: -1, key: '' }, 10)).map((r) => r.blobKey)).toEqual(['k1', 'k2']);
        await store.dequeueBlobDeletion('k1');
        expect((await store.blobDeletionsDue(T0 + 100, { at: T0, key: 'k1' }, 10)).map((r) => r.blobKey)).toEqual(['k2']);
      });
    });

    describe('events outbox and webhooks', () => {
      const event = (over: Partial<NewEvent> = {}): NewEvent => ({
        id: uid('evt'),
        type: 'file.uploaded',
        createdAt: T0,
        dropzoneId: 'dz1',
        shareId: 'dzs1',
        fileId: 'f1',
        actor: 'pk_actor',
        owner: 'pk_owner',
        audience: ['pk_grantee'],
        data: { size: 3, name: 'a.txt' },
        ...over,
      });

      it('keeps events in order until dispatched, with their audience and data', async () => {
        const a = event();
        const b = event({ type: 'dropzone.deleted', fileId: null, actor: null, owner: null, audience: [] });
        await store.insertEvent(a);
        await store.insertEvent(b);
        const waiting = await store.undispatchedEvents(10);
        expect(waiting.map((e) => e.id)).toEqual([a.id, b.id]);
        expect(waiting[0]).toMatchObject({ ...a, dispatchedAt: null });
        expect(waiting[1]).toMatchObject({ ...b, dispatchedAt: null });
        expect(waiting[0].seq).toBeLessThan(waiting[1].seq);
        expect(await store.undispatchedEvents(1)).toHaveLength(1);
        await store.markEventDispatched(waiting[0].seq, T0 + 1);
        expect((await store.undispatchedEvents(10)).map((e) => e.id)).toEqual([b.id]);
      });

      it('an event written in a rolled-back transaction is gone with the change', async () => {
        const e = event();
        await expect(
          store.transaction(async (tx) => {
            await tx.setSetting('change', '1');
            await tx.insertEvent(e);
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        expect(await store.getSetting('change')).toBeUndefined();
        expect(await store.undispatchedEvents(10)).toEqual([]);
      });

      it('stores subscriptions per key, deliveries with their attempts, and deletes them together', async () => {
        const k1 = await store.insertKey(newKey());
        const k2 = await store.insertKey(newKey());
        const w1 = { id: uid('wh'), keyId: k1.id, url: 'https://a.example/h', events: ['file.uploaded'], secret: 's1', createdAt: T0 };
        const w2 = { id: uid('wh'), keyId: k2.id, url: 'https://b.example/h', events: [], secret: 's2', createdAt: T0 + 1 };
        await store.insertWebhook(w1);
        await store.insertWebhook(w2);
        expect(await store.webhookById(w1.id)).toEqual(w1);
        expect(await store.listWebhooks(k1.id)).toEqual([w1]);
        expect((await store.listWebhooks()).map((w) => w.id)).toEqual([w1.id, w2.id]);

        const d = { id: uid('whd'), webhookId: w1.id, eventId: 'evt_1', body: '{"x":1}', status: 'pending' as const, attempts: 0, nextAttemptAt: T0, createdAt: T0 };
        await store.insertDelivery(d);
        await store.insertDelivery({ ...d, id: uid('whd'), nextAttemptAt: T0 + 5000 });
        expect(await store.dueDeliveries(T0, 10)).toEqual([{ ...d, updatedAt: T0 }]);
        const attempt = { deliveryId: d.id, webhookId: w1.id, eventId: 'evt_1', at: T0 + 10, statusCode: 500, error: null, latencyMs: 7 };
        await store.recordAttempt(attempt, { status: 'pending', attempts: 1, nextAttemptAt: T0 + 1000 });
        expect(await store.dueDeliveries(T0 + 999, 10)).toEqual([]);
        expect((await store.dueDeliveries(T0 + 1000, 10))[0]).toMatchObject({ id: d.id, attempts: 1, updatedAt: T0 + 10 });
        await store.recordAttempt({ ...attempt, at: T0 + 1001, statusCode: null, error: 'timeout' }, { status: 'delivered', attempts: 2, nextAttemptAt: T0 + 1000 });
        expect(await store.dueDeliveries(T0 + 1000, 10)).toEqual([]);
        expect(await store.webhookAttempts(w1.id, 10)).toEqual([{ ...attempt, at: T0 + 1001, statusCode: null, error: 'timeout' }, attempt]);
        expect(await store.webhookAttempts(w1.id, 1)).toHaveLength(1);

        expect(await store.updateWebhook(w2.id, { url: 'https://c.example/h', events: ['file.deleted'] })).toBe(true);
        expect(await store.webhookById(w2.id)).toEqual({ ...w2, url: 'https://c.example/h', events: ['file.deleted'] });
        expect(await store.updateWebhook('wh_none', { url: 'https://c.example/h', events: [] })).toBe(false);

        expect(await store.deleteWebhook(w1.id)).toBe(true);
        expect(await store.deleteWebhook(w1.id)).toBe(false);
        expect(await store.webhookById(w1.id)).toBeUndefined();
        expect(await store.webhookAttempts(w1.id, 10)).toEqual([]);
        expect(await store.dueDeliveries(T0 + 10_000, 10)).toEqual([]);
        // an attempt finishing after its subscription was deleted leaves nothing behind
        await store.recordAttempt(attempt, { status: 'delivered', attempts: 1, nextAttemptAt: T0 });
        expect(await store.webhookAttempts(w1.id, 10)).toEqual([]);
      });

      it('prunes finished deliveries, old attempts and dispatched events, and keeps the rest', async () => {
        const k = await store.insertKey(newKey());
        const w = { id: uid('wh'), keyId: k.id, url: 'https://a.example/h', events: [], secret: 's', createdAt: T0 };
        await store.insertWebhook(w);
        const base = { webhookId: w.id, eventId: 'e', body: '{}', attempts: 0, nextAttemptAt: T0, createdAt: T0 };
        await store.insertDelivery({ ...base, id: 'done', status: 'pending' });
        await store.insertDelivery({ ...base, id: 'waiting', status: 'pending' });
        await store.recordAttempt({ deliveryId: 'done', webhookId: w.id, eventId: 'e', at: T0, statusCode: 200, error: null, latencyMs: 1 }, {
          status: 'delivered',
          attempts: 1,
          nextAttemptAt: T0,
        });
        const old = event();
        const fresh = event();
        await store.insertEvent(old);
        await store.insertEvent(fresh);
        const [o] = await store.undispatchedEvents(1);
        await store.markEventDispatched(o.seq, T0);
        expect(await store.pruneWebhookData(T0 + 1)).toBe(3);
        expect((await store.dueDeliveries(T0, 10)).map((d) => d.id)).toEqual(['waiting']);
        expect(await store.webhookAttempts(w.id, 10)).toEqual([]);
        expect((await store.undispatchedEvents(10)).map((e) => e.id)).toEqual([fresh.id]);
        expect(await store.pruneWebhookData(T0 + 1)).toBe(0);
      });
    });

    describe('transactions', () => {
      it('commits all changes and runs afterCommit hooks after the commit, in order', async () => {
        const seen: string[] = [];
        const value = await store.transaction(async (tx) => {
          await tx.setSetting('a', '1');
          tx.afterCommit(async () => void seen.push(`hook1:${await store.getSetting('a')}`));
          tx.afterCommit(() => void seen.push('hook2'));
          await tick();
          seen.push('body done');
          return 42;
        });
        expect(value).toBe(42);
        expect(seen).toEqual(['body done', 'hook1:1', 'hook2']);
      });

      it('rolls back every change and runs no afterCommit hook when the function rejects', async () => {
        const hooks: string[] = [];
        const boom = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            await tx.setSetting('a', '1');
            await tx.insertDropzone(newDropzone({ id: 'dz_rolled' }));
            tx.afterCommit(() => void hooks.push('ran'));
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await store.getSetting('a')).toBeUndefined();
        expect(await store.dropzoneById('dz_rolled')).toBeUndefined();
        expect(hooks).toEqual([]);
      });

      it('never interleaves two transactions: read-wait-write counters lose no increment', async () => {
        await store.setSetting('n', '0');
        await Promise.all(
          Array.from({ length: 20 }, () =>
            store.transaction(async (tx) => {
              const n = Number(await tx.getSetting('n'));
              await tick();
              await tx.setSetting('n', String(n + 1));
            }),
          ),
        );
        expect(await store.getSetting('n')).toBe('20');
      });

      it('keeps uncommitted changes from single calls of other flows', async () => {
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let wrote!: () => void;
        const written = new Promise<void>((r) => (wrote = r));
        const tx = store.transaction(async (t) => {
          await t.setSetting('x', 'uncommitted');
          wrote();
          await gate;
          throw new Error('abort');
        });
        await written;
        const read = store.getSetting('x');
        release();
        await expect(tx).rejects.toThrow('abort');
        expect(await read).toBeUndefined();
      });

      it('nested transactions join the outer one; a failed nested part rolls back alone, with its hooks', async () => {
        const hooks: string[] = [];
        await store.transaction(async (tx) => {
          await tx.setSetting('outer', '1');
          await expect(
            store.transaction(async (inner) => {
              await inner.setSetting('inner', '1');
              inner.afterCommit(() => void hooks.push('inner'));
              throw new Error('inner fails');
            }),
          ).rejects.toThrow('inner fails');
          await tx.transaction(async (inner) => {
            await inner.setSetting('inner2', '1');
            inner.afterCommit(() => void hooks.push('inner2'));
          });
          // a plain store call from inside the transaction's flow joins it too (no deadlock)
          expect(await store.getSetting('outer')).toBe('1');
        });
        expect(await store.getSetting('outer')).toBe('1');
        expect(await store.getSetting('inner')).toBeUndefined();
        expect(await store.getSetting('inner2')).toBe('1');
        expect(hooks).toEqual(['inner2']);
      });

      it('a rollback of the outer transaction undoes nested parts that succeeded', async () => {
        await expect(
          store.transaction(async (tx) => {
            await tx.transaction(async (inner) => inner.setSetting('inner', '1'));
            throw new Error('outer fails');
          }),
        ).rejects.toThrow('outer fails');
        expect(await store.getSetting('inner')).toBeUndefined();
      });

      it('refuses a transaction handle used after the transaction ended', async () => {
        let leaked!: Parameters<Parameters<MetadataStore['transaction']>[0]>[0];
        await store.transaction(async (tx) => {
          leaked = tx;
        });
        await expect(leaked.getSetting('a')).rejects.toThrow(/after it ended/);
      });
    });
  });
}
