/**
 * The metadata-store port: everything the domain keeps about keys, dropzones, files, grants, settings and the
 * blob-deletion queue, in core's vocabulary. Implementations (SQLite in `src/db/sqlite-store.ts`; others later) map
 * these types to their own rows; no row shape, SQL dialect or driver detail crosses this seam.
 *
 * Rules every implementation keeps (checked by `test/db/metadata-store-contract.ts`):
 * - every method is async, and one call is atomic on its own;
 * - conditional changes (reserve space, debit a balance, confirm an upload, …) are single conditional statements that
 *   answer whether they applied, so their invariants hold with any number of concurrent callers and processes;
 * - {@link MetadataStore.transaction} runs a function against a {@link MetadataTx}: all of its changes commit together
 *   or not at all, transactions never interleave with each other, and after-commit hooks run only once committed;
 * - what a lookup answers is the caller's to read, not to change: an implementation may hand the same (frozen) answer
 *   to several callers (the SQLite store does within a read snapshot); copy it to change it.
 */

/** Resource kinds that carry permissions. */
export type ResourceType = 'dropzone' | 'file';

/** Status of a stored file: reserved but not confirmed, or confirmed (its bytes are then immutable). */
export type FileStatus = 'pending' | 'uploaded';

/**
 * Where a confirmed file stands with the virus scanner (`scan.enabled`): `scanning` until a scanner answers, then
 * `clean`, `quarantined` (infected; never served) or `scan_failed` (error or timeout; `scan.onFailure` decides). Files
 * confirmed while scanning was off have none (`null`) and are served as always.
 */
export type ScanState = 'scanning' | 'clean' | 'quarantined' | 'scan_failed';

/** An API key as the domain sees it. Amounts are micro GB-months; times are epoch milliseconds. */
export interface ApiKey {
  /** Internal numeric id (never shown to clients). */
  id: number;
  /** Public handle (`pk_…`), shown to clients and used as a grant principal. */
  publicId: string;
  /** Hash of the secret (or the configured-admin marker); never a secret. */
  secretHash: string;
  name: string;
  /** Balance in micro GB-months; `null` means unlimited. Never negative. */
  balanceMicro: number | null;
  /** Key-level permissions (`apikey.create`, `dropzone.create`, …). */
  permissions: string[];
  isAdmin: boolean;
  /** The key that created this one, when it still exists. */
  createdBy: number | null;
  createdAt: number;
  /** When it was revoked; `null` while active. */
  revokedAt: number | null;
}

/** What {@link MetadataOps.insertKey} needs: an API key without its generated id and revocation. */
export type NewApiKey = Omit<ApiKey, 'id' | 'revokedAt'>;

/** A dropzone: a quota-limited, expiring storage space. Sizes in bytes, times in epoch milliseconds. */
export interface Dropzone {
  id: string;
  /** Public handle for grantees (`dzs_…`): accepted in `/dropzones/:id` paths, never as an x-dropzone-id credential. */
  shareId: string;
  code: string;
  name: string | null;
  ownerKeyId: number | null;
  tier: string;
  hidden: boolean;
  sizeGb: number;
  days: number;
  maxSize: number;
  maxFileSize: number;
  /** Bytes reserved by its files (pending and uploaded, overhead included); never above `maxSize` through reservations. */
  usedSpace: number;
  /** Files in the dropzone, pending and uploaded. */
  fileCount: number;
  startTime: number;
  deleteTime: number;
  createdAt: number;
  updatedAt: number;
}

/** What {@link MetadataOps.insertDropzone} needs: a dropzone without its counters (both start at 0). */
export type NewDropzone = Omit<Dropzone, 'usedSpace' | 'fileCount'>;

/** The part of a dropzone that a resize changes. */
export type DropzoneResize = Pick<Dropzone, 'id' | 'sizeGb' | 'days' | 'maxSize' | 'maxFileSize' | 'deleteTime' | 'updatedAt'>;

/** A file's metadata; its bytes live in the blob store under `blobKey`. */
export interface StoredFile {
  id: string;
  dropzoneId: string;
  name: string;
  type: string;
  size: number;
  blobKey: string;
  status: FileStatus;
  etag: string | null;
  uploaderKeyId: number | null;
  createdAt: number;
  confirmedAt: number | null;
  pendingExpiresAt: number | null;
  /** Who holds this pending upload made through the page (hash of the client address); null otherwise. */
  pendingHolder: string | null;
  /** The multipart upload opened for this pending file (its only one); null when none is open. */
  multipartUploadId: string | null;
  /** The virus scan's verdict; null when the file was confirmed with scanning off (or is still pending). */
  scanState: ScanState | null;
  /** While `scanning`: a node claimed the scan until this time (epoch ms); null when nobody holds it. */
  scanClaimUntil: number | null;
}

/** What {@link MetadataOps.insertFile} needs: a new pending file. */
export type NewFile = Pick<
  StoredFile,
  'id' | 'dropzoneId' | 'name' | 'type' | 'size' | 'blobKey' | 'uploaderKeyId' | 'createdAt' | 'pendingExpiresAt'
> & { pendingHolder?: string | null };

/** A position in a dropzone's file order (createdAt, id), for keyset pagination. */
export type FileCursor = Pick<StoredFile, 'createdAt' | 'id'>;

/** A position in the dropzone order (createdAt, id), for keyset pagination. */
export type DropzoneCursor = Pick<Dropzone, 'createdAt' | 'id'>;

/** One grant: `principal` (a key's publicId or `anyone`) holds `permission`. */
export interface Grant {
  principal: string;
  permission: string;
}

/** A position in a resource's grant order (principal, permission), for keyset pagination. */
export type GrantCursor = Grant;

/** A queued blob deletion. */
export interface BlobDeletion {
  blobKey: string;
  queuedAt: number;
  /** The row stays queued (deleted again by later drains) until this time. */
  notBefore: number;
}

/**
 * An event in the outbox, written in the same transaction as the change it describes (`src/core/events.ts`). It holds
 * no secret, code, signed URL or credential: the dropzone `_id` is kept to tell owners, never sent to others.
 */
export interface StoredEvent {
  /** Position in the outbox (assigned by the store, increasing). */
  seq: number;
  /** Public id (`evt_…`). */
  id: string;
  type: string;
  createdAt: number;
  /** The dropzone's `_id` (shown only to owner and admin subscriptions). */
  dropzoneId: string;
  shareId: string;
  fileId: string | null;
  /** publicId of the acting key; null for the sweeper, x-dropzone-id and page visitors. */
  actor: string | null;
  /** publicId of the dropzone's owner (when it has one). */
  owner: string | null;
  /** publicIds (never `anyone`) holding a grant on the dropzone (or, for file events, the file) when it happened. */
  audience: string[];
  /** Type-specific, non-secret details. */
  data: Record<string, unknown>;
  /** When the dispatcher created its deliveries; null while waiting. */
  dispatchedAt: number | null;
}

/** What {@link MetadataOps.insertEvent} needs. */
export type NewEvent = Omit<StoredEvent, 'seq' | 'dispatchedAt'>;

/** A webhook subscription of an API key. */
export interface Webhook {
  id: string;
  keyId: number;
  url: string;
  /** Event types it receives; empty: every type. */
  events: string[];
  /** HMAC secret of its signatures (never shown after creation). */
  secret: string;
  createdAt: number;
}

/** Where a delivery stands. */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One event to deliver to one subscription, with the exact body sent on every attempt. */
export interface WebhookDelivery {
  id: string;
  webhookId: string;
  eventId: string;
  body: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number;
  createdAt: number;
  updatedAt: number;
}

/** One delivery attempt in a subscription's log. */
export interface WebhookAttempt {
  deliveryId: string;
  webhookId: string;
  eventId: string;
  at: number;
  /** HTTP status answered; null when none (refused target, timeout, connection error). */
  statusCode: number | null;
  /** Why it failed (never a secret); null when a status was answered. */
  error: string | null;
  latencyMs: number;
}

/** The data operations, the same on the store and inside a transaction. */
export interface MetadataOps {
  getSetting(key: string): Promise<string | undefined>;
  /** Sets a setting, replacing any value. */
  setSetting(key: string, value: string): Promise<void>;
  /**
   * Stores `value` under `key` unless a value is already there, and answers the value stored: the first writer wins,
   * with any number of concurrent callers (e.g. the signing secret is created once).
   */
  initSetting(key: string, value: string): Promise<string>;

  /** The active key with this secret hash. */
  keyByHash(hash: string): Promise<ApiKey | undefined>;
  keyByPublicId(publicId: string): Promise<ApiKey | undefined>;
  keyById(id: number): Promise<ApiKey | undefined>;
  /** The active admin key. */
  adminKey(): Promise<ApiKey | undefined>;
  /** Every key, oldest first. */
  listKeys(): Promise<ApiKey[]>;
  /** Inserts a key and answers it with its generated id. */
  insertKey(key: NewApiKey): Promise<ApiKey>;
  /**
   * Inserts `key` as the admin key unless an active admin exists (there is at most one, whatever the concurrency);
   * answers the active admin and whether it was inserted now.
   */
  ensureAdminKey(key: NewApiKey): Promise<{ key: ApiKey; created: boolean }>;
  /** Revokes an active key; false when there was no active key with that publicId. */
  revokeKey(publicId: string, at: number): Promise<boolean>;
  setKeySecret(id: number, secretHash: string): Promise<void>;
  /** Sets a balance; `null` makes it unlimited. */
  setKeyBalance(id: number, balanceMicro: number | null): Promise<void>;
  /** Debits `micro` only when the limited balance covers it; false otherwise (also for unlimited keys). */
  debitKey(id: number, micro: number): Promise<boolean>;
  /** Credits `micro` to a limited balance; false when the key is unlimited or missing. */
  creditKey(id: number, micro: number): Promise<boolean>;

  dropzoneById(id: string): Promise<Dropzone | undefined>;
  /** The dropzone named by its `id` or its `shareId` (paths accept both; only the `id` is a credential). */
  dropzoneByRef(ref: string): Promise<Dropzone | undefined>;
  dropzoneByCode(code: string): Promise<Dropzone | undefined>;
  /** The newest dropzone of `ownerKeyId` named `name` (it may have expired). */
  dropzoneByOwnerName(ownerKeyId: number, name: string): Promise<Dropzone | undefined>;
  /** Dropzones the key owns or holds `dropzone.get` / `dropzone.own` on, oldest first. */
  dropzonesForKey(keyId: number, publicId: string): Promise<Dropzone[]>;
  /** Every dropzone, oldest first. */
  allDropzones(): Promise<Dropzone[]>;
  /**
   * At most `limit` of the dropzones {@link dropzonesForKey} answers, after `after` in the order (createdAt, id); from
   * the start without `after`. The visibility filter is part of the query: a page is short only at the end.
   */
  dropzonesForKeyAfter(keyId: number, publicId: string, after: DropzoneCursor | undefined, limit: number): Promise<Dropzone[]>;
  /** At most `limit` dropzones after `after` in the order (createdAt, id); from the start without `after`. */
  allDropzonesAfter(after: DropzoneCursor | undefined, limit: number): Promise<Dropzone[]>;
  /**
   * Inserts a dropzone; false (nothing inserted) when its owner already has a named dropzone of the same name alive at
   * `dz.createdAt`. Expired dropzones give their name up; concurrent inserts of one name: exactly one wins.
   */
  insertDropzone(dz: NewDropzone): Promise<boolean>;
  resizeDropzone(change: DropzoneResize): Promise<void>;
  /**
   * Reserves room for one file: adds `bytes` to usedSpace and 1 to fileCount, only if usedSpace stays within maxSize,
   * fileCount below `maxFiles` and the dropzone has not expired at `now`. False when it does not fit.
   */
  reserveSpace(dropzoneId: string, bytes: number, now: number, maxFiles: number): Promise<boolean>;
  /** Releases one file's reservation: `bytes` from usedSpace and 1 from fileCount (never below 0). */
  releaseSpace(dropzoneId: string, bytes: number): Promise<void>;
  deleteDropzone(id: string): Promise<void>;
  /** Ends a dropzone's life at `at` at the latest: no upload can be reserved in it from then on. */
  closeDropzone(id: string, at: number): Promise<void>;
  /** Every grant on every resource (fixture reset). */
  deleteAllGrants(): Promise<void>;
  /** Every API key but the admin's (fixture reset). */
  deleteNonAdminKeys(): Promise<void>;
  /** Up to 100 dropzones expired at `now`, earliest first. */
  expiredDropzones(now: number): Promise<Dropzone[]>;

  fileById(id: string): Promise<StoredFile | undefined>;
  fileByBlobKey(blobKey: string): Promise<StoredFile | undefined>;
  /**
   * At most `limit` files of a dropzone (only uploaded ones with `uploadedOnly`) after `after` in the order
   * (createdAt, id); from the start without `after`.
   */
  filesOfDropzoneAfter(dropzoneId: string, after: FileCursor | undefined, limit: number, uploadedOnly?: boolean): Promise<StoredFile[]>;
  /** Inserts a pending file. */
  insertFile(file: NewFile): Promise<void>;
  /**
   * Confirms a pending file, with `scanState` as its scan state (`scanning` when a scan must follow; default none);
   * false when it is not pending (already confirmed or gone).
   */
  markUploaded(id: string, etag: string, at: number, scanState?: ScanState | null): Promise<boolean>;
  /**
   * Claims the scan of a `scanning` file until `until`, only when nobody holds it (no claim, or one expired at `now`):
   * with any number of nodes, one of them scans a file at a time.
   */
  claimScan(id: string, now: number, until: number): Promise<boolean>;
  /** Gives up a claim on a file still `scanning` (it is scanned again later, by any node). */
  releaseScanClaim(id: string): Promise<void>;
  /** Records a scan's verdict, only while the file is `scanning` (false otherwise: decided already, or gone). */
  finishScan(id: string, state: Exclude<ScanState, 'scanning'>): Promise<boolean>;
  /** Up to `limit` `scanning` files nobody holds a claim on at `now`, earliest confirmed first. */
  filesToScan(now: number, limit: number): Promise<StoredFile[]>;
  /** Pending uploads of `holder` in a dropzone that have not expired at `now`: how many, and their reserved bytes. */
  pendingOfHolder(dropzoneId: string, holder: string, now: number): Promise<{ files: number; bytes: number }>;
  /**
   * Pins `uploadId` as the pending file's multipart upload, only when it has none: false when the file is not pending
   * or already has one (concurrent starts: exactly one wins).
   */
  setMultipartUpload(id: string, uploadId: string): Promise<boolean>;
  /** Unpins `uploadId` from the file (an aborted upload); false when the file does not hold that id. */
  clearMultipartUpload(id: string, uploadId: string): Promise<boolean>;
  /** Moves a pending file's expiry forward to `until` (never backward); false when it is no longer pending. */
  extendPending(id: string, until: number): Promise<boolean>;
  /** Deletes a file row; false when there was none (so a caller racing another remover releases its space only once). */
  deleteFile(id: string): Promise<boolean>;
  /** Up to 500 pending files expired at `now`. */
  stalePending(now: number): Promise<StoredFile[]>;
  /** Number and bytes of files per status (statuses without files are absent). */
  fileTotals(): Promise<{ status: FileStatus; files: number; bytes: number }[]>;
  /** Number of dropzones and the sum of their sizes in bytes. */
  dropzoneTotals(): Promise<{ dropzones: number; capacity: number }>;

  /** Every grant on a resource, by principal then permission. */
  grantsOn(type: ResourceType, id: string): Promise<Grant[]>;
  /** At most `limit` grants on a resource after `after` in the order (principal, permission); from the start without `after`. */
  grantsOnAfter(type: ResourceType, id: string, after: GrantCursor | undefined, limit: number): Promise<Grant[]>;
  /** Permissions granted on a resource to `publicId` or to `anyone`. */
  grantsFor(type: ResourceType, id: string, publicId: string): Promise<string[]>;
  /** Permissions granted on a resource to `anyone`. */
  grantsForAnyone(type: ResourceType, id: string): Promise<string[]>;
  /** Adds a grant (no-op when it exists). */
  insertGrant(type: ResourceType, id: string, principal: string, permission: string, at: number): Promise<void>;
  deleteGrant(type: ResourceType, id: string, principal: string, permission: string): Promise<void>;
  deleteGrantsOn(type: ResourceType, id: string): Promise<void>;

  /** Queues `blobKey` for deletion, kept until `notBefore` (default `at`); queuing again keeps the later `notBefore`. */
  queueBlobDeletion(blobKey: string, at: number, notBefore?: number): Promise<void>;
  /**
   * Up to `limit` deletions due at `now` (and never-tried ones), in queue order after the cursor (finite numbers only:
   * `{ at: Number.MIN_SAFE_INTEGER, key: '' }` is the start).
   */
  blobDeletionsDue(now: number, after: { at: number; key: string }, limit: number): Promise<BlobDeletion[]>;
  /** Records one deletion of a key that must stay queued until its `notBefore`. */
  markBlobDeletionTried(blobKey: string): Promise<void>;
  dequeueBlobDeletion(blobKey: string): Promise<void>;

  /**
   * Takes or renews the lease `name` for `holder` until `now + ttlMs`: true when `holder` holds it afterwards (it was
   * free, expired at `now`, or already held by `holder`). With any number of processes, at most one holder at a time;
   * a holder that dies loses it when it expires. For work one node at a time should do (the sweeper).
   */
  acquireLease(name: string, holder: string, now: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease up if `holder` holds it. */
  releaseLease(name: string, holder: string): Promise<void>;

  /** Appends an event to the outbox. */
  insertEvent(event: NewEvent): Promise<void>;
  /** Up to `limit` events not dispatched yet, oldest first. */
  undispatchedEvents(limit: number): Promise<StoredEvent[]>;
  /** Marks an event dispatched (its deliveries are created). */
  markEventDispatched(seq: number, at: number): Promise<void>;
  insertWebhook(hook: Webhook): Promise<void>;
  webhookById(id: string): Promise<Webhook | undefined>;
  /** The subscriptions of a key (every key's with `undefined`), oldest first. */
  listWebhooks(keyId?: number): Promise<Webhook[]>;
  /** Changes a subscription's URL and event types; false when there was none. */
  updateWebhook(id: string, change: Pick<Webhook, 'url' | 'events'>): Promise<boolean>;
  /** Deletes a subscription with its deliveries and attempt log; false when there was none. */
  deleteWebhook(id: string): Promise<boolean>;
  insertDelivery(delivery: Omit<WebhookDelivery, 'updatedAt'>): Promise<void>;
  /** Up to `limit` pending deliveries due at `now`, earliest first. */
  dueDeliveries(now: number, limit: number): Promise<WebhookDelivery[]>;
  /** Records the outcome of an attempt: the delivery's new state and the attempt in the log, together. */
  recordAttempt(attempt: WebhookAttempt, next: Pick<WebhookDelivery, 'status' | 'attempts' | 'nextAttemptAt'>): Promise<void>;
  /** The last `limit` attempts of a subscription, newest first. */
  webhookAttempts(webhookId: string, limit: number): Promise<WebhookAttempt[]>;
  /**
   * Deletes what is older than `before`: finished deliveries, attempts, and dispatched events. Answers how many
   * rows went.
   */
  pruneWebhookData(before: number): Promise<number>;
}

/** Something to run once a transaction has committed (never after a rollback). */
export type AfterCommitHook = () => void | Promise<void>;

/** The handle a transaction's function works through. Valid only until that function's promise settles. */
export interface MetadataTx extends MetadataOps {
  /** Runs `hook` after the outermost transaction commits; dropped when it (or the nested part adding it) rolls back. */
  afterCommit(hook: AfterCommitHook): void;
  /** A nested transaction: joins this one; its changes roll back alone when `fn` rejects. */
  transaction<T>(fn: (tx: MetadataTx) => Promise<T>): Promise<T>;
}

/** What an {@link ImmediateLookups} lookup answers when it cannot answer at once: ask the operation itself then. */
export const NOT_NOW: unique symbol = Symbol('metadata: not now');
export type NotNow = typeof NOT_NOW;

/**
 * Optional capability of a store (as tusd's data stores declare theirs): the lookups every authenticated request makes,
 * answered synchronously when the store can — an in-process database whose connection no transaction holds or waits
 * for. Each answers exactly what the operation of the same name would answer at that moment, or {@link NOT_NOW} when it
 * cannot answer without waiting (the caller then awaits the operation). A store that never can leaves it out. What it
 * saves: a request whose every step is answered at once is answered at once, without a promise per step.
 */
export interface ImmediateLookups {
  keyByHash(hash: string): ApiKey | undefined | NotNow;
  adminKey(): ApiKey | undefined | NotNow;
  dropzoneByRef(ref: string): Dropzone | undefined | NotNow;
}

/** A metadata store. */
export interface MetadataStore extends MetadataOps {
  /** Short name of the implementation (`sqlite`, …), for logs and metrics. */
  readonly kind: string;
  /** Lookups answered synchronously when they can be (see {@link ImmediateLookups}); absent when the store never can. */
  readonly immediate?: ImmediateLookups;
  /**
   * Runs `fn` in a transaction: commits when its promise resolves, rolls back when it rejects (and rejects with the
   * same reason), then runs the after-commit hooks in order (a failing hook does not undo the commit; it is reported
   * to the store's `onHookError`). Called while another transaction of the same async flow is open, it joins it.
   * Operations inside go through `tx`; the calls of one transaction are meant to run one after another.
   */
  transaction<T>(fn: (tx: MetadataTx) => Promise<T>): Promise<T>;
  /** Releases connections; pending transactions should have settled. */
  close(): Promise<void>;
}
