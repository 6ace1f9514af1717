import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openDatabase } from '../../src/db/database.js';
import { READ_SNAPSHOT_MS, createSqliteStore } from '../../src/db/sqlite-store.js';
import { NOT_NOW } from '../../src/core/ports/metadata-store.js';
import { metadataStoreContract, newDropzone, newKey } from './metadata-store-contract.js';
import { DROPZONE_COLUMNS, KEY_COLUMNS, dropzoneRowOf, keyRowOf } from '../../src/db/repositories.js';

// a file database in WAL mode, as the server opens it; `another` opens a second connection to the same file
metadataStoreContract('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dz-meta-'));
  const file = path.join(dir, 'dropzone.db');
  const store = createSqliteStore(openDatabase(file));
  return {
    store,
    async another() {
      return createSqliteStore(openDatabase(file));
    },
    async teardown() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

// Lookups outside a transaction share one read snapshot for a millisecond (one read transaction instead of one per
// statement); nothing else may notice, except that another connection's commit shows up when it ends.
describe('sqlite read snapshot', () => {
  let dir: string;
  let db: ReturnType<typeof openDatabase>;
  let store: ReturnType<typeof createSqliteStore>;
  /** A second connection to the same file, as another process would have. */
  let other: ReturnType<typeof openDatabase>;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dz-snap-'));
    const file = path.join(dir, 'dropzone.db');
    db = openDatabase(file);
    store = createSqliteStore(db);
    other = openDatabase(file);
  });
  afterEach(async () => {
    other.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const nextTurn = () => new Promise<void>((r) => setImmediate(r));
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  it('lookups share one snapshot for snapshotMs, across turns; then they see what another connection committed', async () => {
    const held = createSqliteStore(db, { ownsConnection: false, snapshotMs: 300 });
    await held.setSetting('colour', 'red');
    expect(await held.getSetting('colour')).toBe('red');
    other.prepare("UPDATE settings SET value = 'blue' WHERE key = 'colour'").run(); // a writer is not blocked by it
    await nextTurn();
    await nextTurn();
    expect(db.inTransaction).toBe(true); // still open on later turns
    expect(await held.getSetting('colour')).toBe('red');
    await sleep(350);
    expect(db.inTransaction).toBe(false);
    expect(await held.getSetting('colour')).toBe('blue');
    await held.close(); // ends the snapshot, leaves the connection to the other store
    expect(db.inTransaction).toBe(false);
    expect(db.open).toBe(true);
  });

  it(`by default the snapshot lasts ${READ_SNAPSHOT_MS} ms`, async () => {
    await store.setSetting('colour', 'red');
    expect(await store.getSetting('colour')).toBe('red');
    expect(db.inTransaction).toBe(true);
    other.prepare("UPDATE settings SET value = 'blue' WHERE key = 'colour'").run();
    expect(await store.getSetting('colour')).toBe('red');
    await sleep(READ_SNAPSHOT_MS + 30);
    expect(db.inTransaction).toBe(false);
    expect(await store.getSetting('colour')).toBe('blue');
  });

  it('with snapshotMs 0, lookups in one turn read one snapshot and the next turn sees what another connection committed', async () => {
    const turnly = createSqliteStore(db, { ownsConnection: false, snapshotMs: 0 });
    await turnly.setSetting('colour', 'red');
    expect(await turnly.getSetting('colour')).toBe('red');
    expect(db.inTransaction).toBe(true); // the snapshot is open for the rest of this turn
    other.prepare("UPDATE settings SET value = 'blue' WHERE key = 'colour'").run(); // a writer is not blocked by it
    expect(await turnly.getSetting('colour')).toBe('red');
    await nextTurn();
    expect(db.inTransaction).toBe(false);
    expect(await turnly.getSetting('colour')).toBe('blue');
    await turnly.close();
  });

  it('any other operation ends the snapshot first: the store reads its own writes and commits them at once', async () => {
    const read = (key: string) => (other.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value;
    await store.setSetting('colour', 'red');
    expect(await store.getSetting('colour')).toBe('red');
    other.prepare("UPDATE settings SET value = 'blue' WHERE key = 'colour'").run();
    await store.setSetting('size', 'large');
    expect(read('size')).toBe('large'); // committed, not held in the snapshot's transaction
    expect(await store.getSetting('colour')).toBe('blue'); // a new snapshot, taken after the write
    expect(await store.getSetting('size')).toBe('large');
    await store.transaction(async (tx) => {
      await tx.setSetting('shape', 'round');
    });
    expect(read('shape')).toBe('round');
    expect(await store.getSetting('shape')).toBe('round');
    // a transaction queued behind another one still starts outside any snapshot
    const first = store.transaction(async (tx) => {
      await nextTurn();
      await tx.setSetting('a', '1');
    });
    const lookup = store.getSetting('a'); // waits for the open transaction, then opens a snapshot
    const second = store.transaction(async (tx) => tx.setSetting('b', '2'));
    await Promise.all([first, second]);
    expect(await lookup).toBe('1');
    expect([read('a'), read('b')]).toEqual(['1', '2']);
  });

  it('a lookup repeated in the snapshot is answered from it (the same frozen answer), and afresh once it ends', async () => {
    const key = await store.insertKey(newKey({ name: 'first' }));
    const dz = newDropzone();
    expect(await store.insertDropzone(dz)).toBe(true);
    const a = await store.keyByHash(key.secretHash);
    expect(a?.name).toBe('first');
    expect(await store.keyByHash(key.secretHash)).toBe(a); // not a second row built
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a!.permissions)).toBe(true);
    expect(() => a!.permissions.push('dropzone.delete')).toThrow(TypeError);
    const missing = await store.dropzoneById('no-such-dropzone');
    expect(missing).toBeUndefined();
    expect(await store.dropzoneById('no-such-dropzone')).toBeUndefined();
    // another argument, another answer; the same one by another operation is its own
    expect((await store.dropzoneById(dz.id))?.id).toBe(dz.id);
    expect((await store.dropzoneByRef(dz.shareId))?.id).toBe(dz.id);
    other.prepare("UPDATE api_keys SET name = 'second' WHERE id = ?").run(key.id);
    expect(await store.keyByHash(key.secretHash)).toBe(a); // the snapshot does not see it yet
    await sleep(READ_SNAPSHOT_MS + 30);
    const b = await store.keyByHash(key.secretHash);
    expect(b).not.toBe(a);
    expect(b?.name).toBe('second');
  });

  it("the store's own write ends the snapshot and what it answered: the next lookup reads the write", async () => {
    await store.setSetting('colour', 'red');
    expect(await store.getSetting('colour')).toBe('red');
    expect(await store.getSetting('colour')).toBe('red');
    await store.setSetting('colour', 'green');
    expect(await store.getSetting('colour')).toBe('green');
    await store.transaction((tx) => tx.setSetting('colour', 'blue'));
    expect(await store.getSetting('colour')).toBe('blue');
  });

  it('immediate lookups answer what the operations answer, in the same snapshot; NOT_NOW while a transaction holds the store', async () => {
    const im = store.immediate!;
    expect(im).toBeDefined();
    const key = await store.insertKey(newKey({ name: 'k' }));
    const admin = await store.insertKey(newKey({ name: 'admin', isAdmin: true }));
    const dz = newDropzone({ ownerKeyId: key.id });
    expect(await store.insertDropzone(dz)).toBe(true);
    // the same frozen objects as the async operations, by _id and by shareId; missing ones undefined
    const k = im.keyByHash(key.secretHash);
    expect(k).toBe(await store.keyByHash(key.secretHash));
    expect((k as { name: string }).name).toBe('k');
    expect(im.keyByHash('no-such-hash')).toBeUndefined();
    expect((im.adminKey() as { id: number }).id).toBe(admin.id);
    expect(im.adminKey()).toBe(await store.adminKey());
    const d = im.dropzoneByRef(dz.id);
    expect(d).toBe(await store.dropzoneByRef(dz.id));
    expect(Object.isFrozen(d)).toBe(true);
    expect(im.dropzoneByRef(dz.shareId)).toEqual(d); // another argument: a row of its own
    expect(im.dropzoneByRef('no-such-dropzone')).toBeUndefined();
    // the store's own write ends the snapshot: the next immediate lookup reads it
    await store.revokeKey(key.publicId, 1234);
    expect(im.keyByHash(key.secretHash)).toBeUndefined();
    expect(await store.keyByHash(key.secretHash)).toBeUndefined();
    // a transaction holds the store: nothing is answered at once (the operation would wait behind it)
    let release!: () => void;
    const tx = store.transaction(() => new Promise<void>((r) => (release = r)));
    await nextTurn();
    expect(im.dropzoneByRef(dz.id)).toBe(NOT_NOW);
    expect(im.adminKey()).toBe(NOT_NOW);
    const waiting = store.dropzoneByRef(dz.id);
    release();
    await tx;
    expect((await waiting)?.id).toBe(dz.id);
    expect((im.dropzoneByRef(dz.id) as { id: string }).id).toBe(dz.id);
  });

  it('closing the store ends an open snapshot', async () => {
    await store.getSetting('anything');
    expect(db.inTransaction).toBe(true);
    await store.close();
    expect(db.open).toBe(false);
    await nextTurn(); // the scheduled end finds the connection closed
  });
});

// The hot single-row lookups read raw arrays of fixed columns (repositories.ts); a column added by a migration but not to
// these lists would silently go missing from the rows they answer.
describe('sqlite raw row mappers', () => {
  it('answer exactly what SELECT * does, for api_keys and dropzones', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dz-raw-'));
    const db = openDatabase(path.join(dir, 'dropzone.db'));
    const store = createSqliteStore(db, { ownsConnection: false });
    try {
      const key = await store.insertKey(newKey({ balanceMicro: 7 }));
      await store.insertDropzone(newDropzone({ ownerKeyId: key.id, name: 'raw' }));
      const keyRow = db.prepare('SELECT * FROM api_keys WHERE id = ?').get(key.id);
      const dzRow = db.prepare('SELECT * FROM dropzones WHERE name = ?').get('raw') as Record<string, unknown>;
      expect(keyRowOf(db.prepare(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = ?`).raw(true).get(key.id) as unknown[])).toEqual(keyRow);
      // live_name only backs the unique index on live names; no row type carries it
      const { live_name: liveName, ...dzFields } = dzRow;
      expect(liveName).toBe('raw');
      expect(dropzoneRowOf(db.prepare(`SELECT ${DROPZONE_COLUMNS} FROM dropzones WHERE id = ?`).raw(true).get(dzRow.id) as unknown[])).toEqual(dzFields);
      // and the store's lookups answer that row
      expect((await store.dropzoneById(dzRow.id as string))?.name).toBe('raw');
      expect((await store.keyById(key.id))?.balanceMicro).toBe(7);
    } finally {
      await store.close();
      db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
