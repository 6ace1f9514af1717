import { AsyncLocalStorage } from 'node:async_hooks';
import type {
  AfterCommitHook,
  ApiKey,
  Dropzone,
  ImmediateLookups,
  MetadataOps,
  MetadataStore,
  MetadataTx,
  NewApiKey,
  ScanState,
  StoredFile,
} from '../core/ports/metadata-store.js';
import { NOT_NOW } from '../core/ports/metadata-store.js';
import type { Db } from './database.js';
import { type ApiKeyRow, type DropzoneRow, type FileRow, createEventRepositories, createRepositories, opt } from './repositories.js';
import { Mutex } from '../util/mutex.js';
import { runAfterCommitHooks } from './after-commit.js';

/** Options for {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /** Told when an after-commit hook throws or rejects (the commit stands); ignored when absent. */
  onHookError?: (error: unknown) => void;
  /** Close the connection in `close()` (default true). */
  ownsConnection?: boolean;
  /**
   * How long a read snapshot stays open, in milliseconds (default {@link READ_SNAPSHOT_MS}); 0 ends it at the end of the
   * event-loop turn that opened it. See {@link createSqliteStore}.
   */
  snapshotMs?: number;
}

/**
 * The default lifetime of a read snapshot: 1 ms holds the lookups of some 15 requests at this machine's rate under load,
 * and is far below anything a person or a second process could tell apart from "at once".
 */
export const READ_SNAPSHOT_MS = 1;

/** The state of one open transaction on the connection. */
interface TxState {
  open: boolean;
  hooks: AfterCommitHook[];
  /** Serialises nested transactions (savepoints) of this transaction. */
  nested: Mutex;
  depth: number;
}

const toKey = (r: ApiKeyRow): ApiKey => ({
  id: r.id,
  publicId: r.public_id,
  secretHash: r.secret_hash,
  name: r.name,
  balanceMicro: r.balance_micro,
  permissions: JSON.parse(r.permissions) as string[],
  isAdmin: r.is_admin === 1,
  createdBy: r.created_by,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

const toDropzone = (r: DropzoneRow): Dropzone => ({
  id: r.id,
  shareId: r.share_id,
  code: r.code,
  name: r.name,
  ownerKeyId: r.owner_key_id,
  tier: r.tier,
  hidden: r.hidden === 1,
  sizeGb: r.size_gb,
  days: r.days,
  maxSize: r.max_size,
  maxFileSize: r.max_file_size,
  usedSpace: r.used_space,
  fileCount: r.file_count,
  startTime: r.start_time,
  deleteTime: r.delete_time,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toFile = (r: FileRow): StoredFile => ({
  id: r.id,
  dropzoneId: r.dropzone_id,
  name: r.name,
  type: r.type,
  size: r.size,
  blobKey: r.blob_key,
  status: r.status,
  etag: r.etag,
  uploaderKeyId: r.uploader_key_id,
  createdAt: r.created_at,
  confirmedAt: r.confirmed_at,
  pendingExpiresAt: r.pending_expires_at,
  pendingHolder: r.pending_holder,
  multipartUploadId: r.multipart_upload_id ?? null,
  scanState: (r.scan_state ?? null) as StoredFile['scanState'],
  scanClaimUntil: r.scan_claim_until ?? null,
});

const keyRow = (k: NewApiKey) => ({
  public_id: k.publicId,
  secret_hash: k.secretHash,
  name: k.name,
  balance_micro: k.balanceMicro,
  permissions: JSON.stringify(k.permissions),
  created_by: k.createdBy,
  created_at: k.createdAt,
});

/** The operations as synchronous functions over one connection (the prepared statements of `repositories.ts`). */
function syncOps(db: Db) {
  const repo = createRepositories(db);
  const events = createEventRepositories(db);
  const creditKey = db.prepare<[number, number]>('UPDATE api_keys SET balance_micro = balance_micro + ? WHERE id = ? AND balance_micro IS NOT NULL');
  const ops = {
    getSetting: (key: string) => repo.getSetting(key),
    setSetting: (key: string, value: string) => repo.setSetting(key, value),
    initSetting: (key: string, value: string) => repo.initSetting(key, value),

    keyByHash: (hash: string) => opt(toKey, repo.keyByHash(hash)),
    keyByPublicId: (publicId: string) => opt(toKey, repo.keyByPublicId(publicId)),
    keyById: (id: number) => opt(toKey, repo.keyById(id)),
    adminKey: () => opt(toKey, repo.adminKey()),
    listKeys: () => repo.listKeys().map(toKey),
    insertKey: (k: NewApiKey) => toKey(repo.keyById(repo.insertKey({ ...keyRow(k), is_admin: k.isAdmin ? 1 : 0 }))!),
    ensureAdminKey: (k: NewApiKey) => {
      const id = repo.insertAdminKey(keyRow(k));
      if (id !== undefined) return { key: toKey(repo.keyById(id)!), created: true };
      return { key: toKey(repo.adminKey()!), created: false };
    },
    revokeKey: (publicId: string, at: number) => repo.revokeKey(publicId, at),
    setKeySecret: (id: number, secretHash: string) => repo.setKeySecret(id, secretHash),
    setKeyBalance: (id: number, micro: number | null) => repo.setKeyBalance(id, micro),
    debitKey: (id: number, micro: number) => repo.debitKey(id, micro),
    creditKey: (id: number, micro: number) => creditKey.run(micro, id).changes > 0,

    dropzoneById: (id: string) => opt(toDropzone, repo.dropzoneById(id)),
    dropzoneByRef: (ref: string) => opt(toDropzone, repo.dropzoneByRef(ref)),
    dropzoneByCode: (code: string) => opt(toDropzone, repo.dropzoneByCode(code)),
    dropzoneByOwnerName: (ownerKeyId: number, name: string) => opt(toDropzone, repo.dropzoneByOwnerName(ownerKeyId, name)),
    dropzonesForKey: (keyId: number, publicId: string) => repo.dropzonesForKey(keyId, publicId).map(toDropzone),
    allDropzones: () => repo.allDropzones().map(toDropzone),
    dropzonesForKeyAfter: (keyId: number, publicId: string, after: { createdAt: number; id: string } | undefined, limit: number) =>
      repo.dropzonesForKeyAfter(keyId, publicId, after && { created_at: after.createdAt, id: after.id }, limit).map(toDropzone),
    allDropzonesAfter: (after: { createdAt: number; id: string } | undefined, limit: number) =>
      repo.allDropzonesAfter(after && { created_at: after.createdAt, id: after.id }, limit).map(toDropzone),
    insertDropzone: (d: Parameters<MetadataOps['insertDropzone']>[0]) =>
      repo.insertDropzone({
        id: d.id,
        share_id: d.shareId,
        code: d.code,
        name: d.name,
        owner_key_id: d.ownerKeyId,
        tier: d.tier,
        hidden: d.hidden ? 1 : 0,
        size_gb: d.sizeGb,
        days: d.days,
        max_size: d.maxSize,
        max_file_size: d.maxFileSize,
        start_time: d.startTime,
        delete_time: d.deleteTime,
        created_at: d.createdAt,
        updated_at: d.updatedAt,
      }),
    resizeDropzone: (c: Parameters<MetadataOps['resizeDropzone']>[0]) =>
      repo.updateDropzoneSize({
        id: c.id,
        size_gb: c.sizeGb,
        days: c.days,
        max_size: c.maxSize,
        max_file_size: c.maxFileSize,
        delete_time: c.deleteTime,
        updated_at: c.updatedAt,
      }),
    reserveSpace: (id: string, bytes: number, now: number, maxFiles: number) => repo.reserveSpace(id, bytes, now, maxFiles),
    releaseSpace: (id: string, bytes: number) => repo.releaseSpace(id, bytes),
    deleteDropzone: (id: string) => repo.deleteDropzone(id),
    closeDropzone: (id: string, at: number) => repo.closeDropzone(id, at),
    deleteAllGrants: () => repo.deleteAllGrants(),
    deleteNonAdminKeys: () => repo.deleteNonAdminKeys(),
    expiredDropzones: (now: number) => repo.expiredDropzones(now).map(toDropzone),

    fileById: (id: string) => opt(toFile, repo.fileById(id)),
    fileByBlobKey: (key: string) => opt(toFile, repo.fileByBlobKey(key)),
    filesOfDropzoneAfter: (dropzoneId: string, after: { createdAt: number; id: string } | undefined, limit: number, uploadedOnly = false) =>
      repo.filesOfDropzoneAfter(dropzoneId, after && { created_at: after.createdAt, id: after.id }, limit, uploadedOnly).map(toFile),
    insertFile: (f: Parameters<MetadataOps['insertFile']>[0]) =>
      repo.insertFile({
        id: f.id,
        dropzone_id: f.dropzoneId,
        name: f.name,
        type: f.type,
        size: f.size,
        blob_key: f.blobKey,
        uploader_key_id: f.uploaderKeyId,
        created_at: f.createdAt,
        pending_expires_at: f.pendingExpiresAt,
        pending_holder: f.pendingHolder ?? null,
      }),
    markUploaded: (id: string, etag: string, at: number, scanState: ScanState | null = null) => repo.markUploaded(id, etag, at, scanState),
    claimScan: (id: string, now: number, until: number) => repo.claimScan(id, now, until),
    releaseScanClaim: (id: string) => repo.releaseScanClaim(id),
    finishScan: (id: string, state: Exclude<ScanState, 'scanning'>) => repo.finishScan(id, state),
    filesToScan: (now: number, limit: number) => repo.filesToScan(now, limit).map(toFile),
    pendingOfHolder: (dropzoneId: string, holder: string, now: number) => repo.pendingOfHolder(dropzoneId, holder, now),
    setMultipartUpload: (id: string, uploadId: string) => repo.setMultipartUpload(id, uploadId),
    clearMultipartUpload: (id: string, uploadId: string) => repo.clearMultipartUpload(id, uploadId),
    extendPending: (id: string, until: number) => repo.extendPending(id, until),
    deleteFile: (id: string) => repo.deleteFile(id),
    stalePending: (now: number) => repo.stalePending(now).map(toFile),
    fileTotals: () => repo.fileTotals(),
    dropzoneTotals: () => repo.dropzoneTotals(),

    grantsOn: (type: 'dropzone' | 'file', id: string) => repo.grantsOn(type, id),
    grantsOnAfter: (type: 'dropzone' | 'file', id: string, after: { principal: string; permission: string } | undefined, limit: number) =>
      repo.grantsOnAfter(type, id, after && { principal: after.principal, permission: after.permission }, limit),
    grantsFor: (type: 'dropzone' | 'file', id: string, publicId: string) => repo.grantsFor(type, id, publicId),
    grantsForAnyone: (type: 'dropzone' | 'file', id: string) => repo.grantsForAnyone(type, id),
    insertGrant: (type: 'dropzone' | 'file', id: string, principal: string, permission: string, at: number) =>
      repo.insertGrant(type, id, principal, permission, at),
    deleteGrant: (type: 'dropzone' | 'file', id: string, principal: string, permission: string) => repo.deleteGrant(type, id, principal, permission),
    deleteGrantsOn: (type: 'dropzone' | 'file', id: string) => repo.deleteGrantsOn(type, id),

    queueBlobDeletion: (key: string, at: number, notBefore?: number) => repo.queueBlobDeletion(key, at, notBefore),
    blobDeletionsDue: (now: number, after: { at: number; key: string }, limit: number) =>
      repo.blobDeletionsDue(now, after, limit).map((r) => ({ blobKey: r.blob_key, queuedAt: r.queued_at, notBefore: r.not_before })),
    markBlobDeletionTried: (key: string) => repo.markBlobDeletionTried(key),
    dequeueBlobDeletion: (key: string) => repo.dequeueBlobDeletion(key),

    acquireLease: (name: string, holder: string, now: number, ttlMs: number) => repo.acquireLease(name, holder, now, ttlMs),
    releaseLease: (name: string, holder: string) => repo.releaseLease(name, holder),

    ...events,
  };
  // the synchronous twins must cover the whole port, with the same parameters and awaited results
  return ops satisfies { [K in keyof MetadataOps]: (...args: Parameters<MetadataOps[K]>) => Awaited<ReturnType<MetadataOps[K]>> };
}

type SyncOps = ReturnType<typeof syncOps>;

/**
 * The operations that only read, single-row lookups every authenticated request makes. Outside a transaction they
 * share one read snapshot for a millisecond (see {@link createSqliteStore}); every other operation
 * ends that snapshot before it runs. An operation listed here must never write.
 */
const SNAPSHOT_READS = [
  'getSetting',
  'keyByHash',
  'keyByPublicId',
  'keyById',
  'adminKey',
  'dropzoneById',
  'dropzoneByRef',
  'dropzoneByCode',
  'dropzoneByOwnerName',
  'fileById',
  'fileByBlobKey',
  'grantsFor',
  'grantsForAnyone',
] as const satisfies readonly (keyof SyncOps)[];
const snapshotReads: ReadonlySet<string> = new Set(SNAPSHOT_READS);

/**
 * The answers one of {@link SNAPSHOT_READS} gave in the open snapshot, by its arguments (see {@link createSqliteStore}):
 * the value, and the settled promise the async operation answers with (made when first asked for).
 */
type Answers = Map<unknown, Answer>;
interface Answer {
  value: unknown;
  promise: Promise<unknown> | undefined;
}

/**
 * Decides when operation `fn(...args)` runs (its arguments are passed along rather than captured in a closure: every
 * request makes a few of these); `answers` is given for the operations of {@link SNAPSHOT_READS} (their answers in the
 * open snapshot), undefined for every other.
 */
type Gate = (fn: Operation, args: unknown[], answers: Answers | undefined) => Promise<unknown>;
type Operation = (...args: unknown[]) => unknown;

/**
 * Wraps every synchronous operation into the async port. `gate(fn, args, answers)` decides when the operation runs; it
 * must return its value as a promise (a throw becomes a rejection). `answers` holds one map per snapshot read.
 */
function asyncOps(sync: SyncOps, gate: Gate, answers?: Map<string, Answers>): MetadataOps {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(sync) as (keyof SyncOps)[]) {
    const fn = sync[name] as Operation;
    const mine: Answers | undefined = answers && snapshotReads.has(name) ? new Map() : undefined;
    if (mine) answers!.set(name, mine);
    out[name] = (...args: unknown[]) => gate(fn, args, mine);
  }
  return out as unknown as MetadataOps;
}

/** An answer of nobody's: what a snapshot read answered, shared by every caller in the snapshot, cannot be changed. */
function frozen<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) if (v !== null && typeof v === 'object') Object.freeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The key of `args` in an operation's {@link Answers}: the one argument itself, or all of them joined. */
const argsKey = (args: unknown[]): unknown => (args.length === 1 ? args[0] : args.length === 0 ? '' : args.join('\u0000'));

/** Runs `fn(...args)` now and answers its value as a promise; a throw becomes a rejection. */
function now(fn: Operation, args: unknown[]): Promise<unknown> {
  try {
    return Promise.resolve(fn(...args));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * The {@link MetadataStore} on one better-sqlite3 connection (opened and migrated by `openDatabase`).
 *
 * better-sqlite3 runs statements synchronously, so one call is atomic by itself. A transaction is `BEGIN IMMEDIATE`
 * … `COMMIT` around an async function; while it is open, the connection belongs to it: other transactions and
 * single operations from other async flows wait in a FIFO queue (a single operation runs at once when no
 * transaction is open, so the common path costs no extra hop). Operations called on the store from inside the
 * transaction's own async flow (tracked with AsyncLocalStorage) join it, as do nested `transaction` calls, which
 * become savepoints. Other processes on the same file are kept apart by SQLite's own locking (busy timeout).
 *
 * Read snapshot: outside a transaction, each statement on a file database is a read transaction of its own, and
 * starting one costs two system calls (lock and unlock a WAL read mark with `fcntl`) — about 6 µs on this machine's
 * virtualised kernel against 0.5 µs for the lookup inside an open transaction, and every authenticated request makes
 * two or three. So the lookups of {@link SNAPSHOT_READS} open a deferred read transaction that later lookups share for
 * `snapshotMs` (1 ms by default; a snapshot per event-loop turn, as before, served some 40 requests under wrk but only
 * one at a light load, where each request arrives in a turn of its own): it ends then, before this store starts a
 * transaction, and before any other operation runs, so this process always reads its own writes. Another process's
 * commit becomes visible within that millisecond, as if it had come a moment later; readers never block writers in
 * WAL mode, and a checkpoint waits at most that long.
 *
 * Nothing can change what a snapshot reads while it is open, so the same lookup with the same arguments is answered
 * once per snapshot: the answer is kept (frozen: every caller gets the same object, as the same settled promise) until
 * the snapshot ends. Under load, requests with the same key or dropzone within the millisecond (a client polling, a
 * page fetching its files) then skip the statement and the building of the row (~9,500 instructions per lookup,
 * callgrind, Node 24).
 */
export function createSqliteStore(db: Db, opts: SqliteStoreOptions = {}): MetadataStore {
  const sync = syncOps(db);
  const lock = new Mutex();
  const current = new AsyncLocalStorage<TxState>();
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const rollback = db.prepare('ROLLBACK');
  const { onHookError = () => {}, ownsConnection = true, snapshotMs = READ_SNAPSHOT_MS } = opts;
  // an end scheduled for an earlier snapshot may end a later one sooner: harmless, the next lookup opens another
  const scheduleEnd = snapshotMs > 0 ? () => setTimeout(endSnapshot, snapshotMs).unref() : () => setImmediate(endSnapshot);

  /**
   * True when the caller runs inside the open transaction's own async flow. A transaction holds the lock while it is
   * open: while nobody holds it, the context needs no lookup.
   */
  const joined = () => lock.locked && current.getStore()?.open === true;

  const beginRead = db.prepare('BEGIN DEFERRED');
  /** True while a read snapshot of this store is open (see above). */
  let snapshot = false;
  /** The snapshot reads' answers in the open snapshot, by operation. */
  const answers = new Map<string, Answers>();
  const endSnapshot = () => {
    if (!snapshot) return;
    snapshot = false;
    for (const a of answers.values()) if (a.size > 0) a.clear();
    if (!db.open || !db.inTransaction) return;
    try {
      commit.run();
    } catch {
      if (db.inTransaction) rollback.run();
    }
  };
  /** Runs a root operation that is not a snapshot read: it ends the snapshot first. */
  const runRoot = (fn: Operation, args: unknown[]): unknown => {
    endSnapshot();
    return fn(...args);
  };
  /**
   * Runs a snapshot read: it joins (or opens) the snapshot and answers what it already answered in it (the same frozen
   * value); undefined when the connection is in a transaction not this store's (it is run, not kept, then).
   */
  const readSnapshot = (fn: Operation, args: unknown[], mine: Answers): Answer | undefined => {
    if (!snapshot) {
      if (db.inTransaction) return undefined;
      beginRead.run();
      snapshot = true;
      scheduleEnd();
    }
    const key = argsKey(args);
    let answer = mine.get(key);
    if (answer === undefined) {
      answer = { value: frozen(fn(...args)), promise: undefined };
      mine.set(key, answer);
    }
    return answer;
  };
  /**
   * {@link readSnapshot} for the async operation: the same settled promise for the same answer, so a repeated lookup
   * allocates nothing and resolves nothing.
   */
  const readRoot = (fn: Operation, args: unknown[], mine: Answers): Promise<unknown> => {
    const answer = readSnapshot(fn, args, mine);
    if (answer === undefined) return Promise.resolve(fn(...args));
    return (answer.promise ??= Promise.resolve(answer.value));
  };

  const rootGate: Gate = (fn, args, mine) => {
    if (joined()) return now(fn, args);
    if (!lock.locked) {
      try {
        return mine === undefined ? Promise.resolve(runRoot(fn, args)) : readRoot(fn, args, mine);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return lock.acquire().then(() => {
      try {
        return mine === undefined ? runRoot(fn, args) : readRoot(fn, args, mine);
      } finally {
        lock.release();
      }
    });
  };

  const runHooks = (hooks: AfterCommitHook[]) => runAfterCommitHooks(hooks, onHookError);

  /** A savepoint inside the open transaction `state`. */
  const nested = async <T>(state: TxState, tx: MetadataTx, fn: (tx: MetadataTx) => Promise<T>): Promise<T> => {
    await state.nested.acquire();
    const name = `dz_sp${++state.depth}`;
    const mark = state.hooks.length;
    try {
      db.exec(`SAVEPOINT ${name}`);
      try {
        const value = await fn(tx);
        db.exec(`RELEASE ${name}`);
        return value;
      } catch (e) {
        if (db.inTransaction) {
          db.exec(`ROLLBACK TO ${name}`);
          db.exec(`RELEASE ${name}`);
        }
        state.hooks.length = mark;
        throw e;
      }
    } finally {
      state.depth--;
      state.nested.release();
    }
  };

  const makeTx = (state: TxState): MetadataTx => {
    const txGate: Gate = (fn, args) => (state.open ? now(fn, args) : Promise.reject(new Error('metadata transaction used after it ended')));
    const tx = asyncOps(sync, txGate) as MetadataTx;
    tx.afterCommit = (hook) => {
      if (!state.open) throw new Error('metadata transaction used after it ended');
      state.hooks.push(hook);
    };
    tx.transaction = (fn) => nested(state, tx, fn);
    return tx;
  };

  const store = asyncOps(sync, rootGate, answers) as MetadataStore & { kind: string };
  /**
   * A snapshot read answered synchronously, as its operation would answer now: unless a transaction holds the
   * connection or waits for it (the operation would wait behind it), when it answers NOT_NOW.
   */
  const immediately = (name: keyof ImmediateLookups) => {
    const fn = sync[name] as Operation;
    const mine = answers.get(name)!;
    return (...args: unknown[]): unknown => {
      if (lock.locked) return NOT_NOW;
      const answer = readSnapshot(fn, args, mine);
      return answer === undefined ? fn(...args) : answer.value;
    };
  };
  const immediate = {
    keyByHash: immediately('keyByHash'),
    adminKey: immediately('adminKey'),
    dropzoneByRef: immediately('dropzoneByRef'),
  } as ImmediateLookups;
  Object.assign(store, {
    kind: 'sqlite',
    immediate,
    async transaction<T>(fn: (tx: MetadataTx) => Promise<T>): Promise<T> {
      const outer = current.getStore();
      if (outer?.open) return nested(outer, (outer as TxState & { tx: MetadataTx }).tx, fn);
      await lock.acquire();
      const state: TxState & { tx?: MetadataTx } = { open: false, hooks: [], nested: new Mutex(), depth: 0 };
      let value: T;
      try {
        endSnapshot();
        begin.run();
        state.open = true;
        const tx = (state.tx = makeTx(state));
        value = await current.run(state, () => fn(tx));
        // a nested part may still be running if fn did not await it: wait for it before committing
        await state.nested.acquire();
        commit.run();
      } catch (e) {
        if (db.inTransaction) rollback.run();
        throw e;
      } finally {
        state.open = false;
        lock.release();
      }
      if (state.hooks.length > 0) await runHooks(state.hooks);
      return value;
    },
    async close() {
      endSnapshot();
      if (ownsConnection && db.open) db.close();
    },
  });
  return store;
}
