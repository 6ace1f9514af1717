import { chargeKey } from './api-keys.js';
import type { CoreDeps } from './deps.js';
import { AppError } from './errors.js';
import { newDropzoneCode, newDropzoneId, newShareId } from './ids.js';
import { type DropzonePermission, type Principal, dropzonePermissions, invisible, ownerDropzonePermissions, requirePermission } from './permissions.js';
import { DAY_MS, checkBounds, costMicro, gbToBytes } from './quota.js';
import { type DropzoneView, dropzoneView } from './visibility.js';
import { FILE_BATCH_SIZE, yieldToEventLoop } from './file-batches.js';
import { freeingWrite } from './space.js';
import { type Page, readPage } from './paging.js';
import { type ApiKey, type BlobDeletion, type Dropzone, type DropzoneCursor, type MetadataOps, NOT_NOW, type StoredFile } from './ports/metadata-store.js';
import { dropzoneEventData, recordEvent } from './events.js';

/** Body of create (`gb`, `days` required) and update (both optional). */
export interface DropzoneSizeInput {
  gb?: number;
  days?: number;
  name?: string;
}

/** A dropzone and what its caller may learn about it ({@link createDropzoneService}'s `getViewed`). */
export interface Viewed {
  dz: Dropzone;
  view: DropzoneView;
}

/** Thrown inside a create whose name another writer took meanwhile (never leaves this module). */
const NAME_TAKEN = new Error('dropzone name taken meanwhile');

/** Dropzones: creation with GB-month charging, extension, lookup under permissions, deletion with its blobs. */
export function createDropzoneService(deps: CoreDeps) {
  const { meta, clock, config } = deps;
  const notFound = () => new AppError('DROPZONE_NOT_FOUND');
  const maxFileSizeFor = (maxSize: number) => Math.min(maxSize, config.uploads.maxFileSize);

  /** {@link service.get} through `ops` (the store, or a transaction's handle), with the permissions `p` holds on it. */
  const loadWith = async (ops: MetadataOps, p: Principal, id: string, permission: string) => {
    const dz = await ops.dropzoneByRef(id);
    if (!dz) throw invisible(p, notFound());
    const perms = await dropzonePermissions(ops, p, dz);
    requirePermission(p, perms, permission, notFound);
    return { dz, perms };
  };
  const getWith = async (ops: MetadataOps, p: Principal, id: string, permission: string): Promise<Dropzone> =>
    (await loadWith(ops, p, id, permission)).dz;

  /** {@link service.update} inside the transaction `tx`. */
  const updateIn = async (tx: MetadataOps, p: Principal, id: string, input: { gb?: number; days?: number }): Promise<Dropzone> => {
    const dz = await getWith(tx, p, id, 'dropzone.update');
    if (!p.key) throw new AppError('UNAUTHENTICATED', 'Extending a dropzone needs an API key (it is paid in GB-months).');
    const now = clock.now();
    if (dz.deleteTime <= now) throw new AppError('DROPZONE_EXPIRED');
    checkBounds(config.limits, input.gb, input.days);
    const gb = input.gb ?? dz.sizeGb;
    const days = input.days ?? dz.days;
    if (gb < dz.sizeGb) throw new AppError('CANNOT_SHRINK', `gb cannot be lowered (current ${dz.sizeGb}, requested ${gb}).`, { field: 'gb', current: dz.sizeGb });
    if (days < dz.days) throw new AppError('CANNOT_SHRINK', `days cannot be lowered (current ${dz.days}, requested ${days}).`, { field: 'days', current: dz.days });
    await chargeKey(tx, (await tx.keyById(p.key.id))!, costMicro(gb, days) - costMicro(dz.sizeGb, dz.days));
    const maxSize = gbToBytes(gb);
    await tx.resizeDropzone({
      id: dz.id,
      sizeGb: gb,
      days,
      maxSize,
      maxFileSize: maxFileSizeFor(maxSize),
      deleteTime: dz.startTime + Math.round(days * DAY_MS),
      updatedAt: now,
    });
    const updated = (await tx.dropzoneById(dz.id))!;
    await recordEvent(deps, tx, { type: 'dropzone.updated', dz: updated, actor: p.key, data: dropzoneEventData(updated) });
    return updated;
  };

  /**
   * What {@link service.getViewed} answers once the dropzone `dz` (named by the caller) is looked up: at once for an
   * owner (whose permissions are known without a wait), as a promise when a caller's grants must be read.
   */
  const viewedFrom = (p: Principal, dz: Dropzone | undefined, permission: string): Viewed | Promise<Viewed> => {
    if (!dz) throw invisible(p, notFound());
    const owned = ownerDropzonePermissions(p, dz);
    if (owned) return viewedWith(p, dz, owned, permission);
    return dropzonePermissions(meta, p, dz).then((perms) => viewedWith(p, dz, perms, permission));
  };
  const viewedWith = (p: Principal, dz: Dropzone, perms: ReadonlySet<DropzonePermission>, permission: string): Viewed => {
    requirePermission(p, perms, permission, notFound);
    return { dz, view: dropzoneView(p, perms, dz) };
  };

  const service = {
    /**
     * Loads a dropzone named by its `_id` or `shareId` and checks `permission` for `p`; invisible ones are 404
     * (401 without credentials).
     */
    get(p: Principal, id: string, permission: string): Promise<Dropzone> {
      return getWith(meta, p, id, permission);
    },

    /**
     * {@link service.get} and what `p` may learn about the dropzone ({@link service.view}), from one permission check:
     * for a caller who is not an owner, one grant lookup instead of two.
     */
    async getViewed(p: Principal, id: string, permission: string): Promise<Viewed> {
      // loadWith's steps without its frame: this is every dropzone GET's path
      return viewedFrom(p, await meta.dropzoneByRef(id), permission);
    },

    /**
     * {@link service.getViewed}, answered at once when every step can be — the store looks the dropzone up without
     * waiting (its immediate lookups) and the caller owns it — and as a promise otherwise. Same answers; an error known
     * at once is thrown at once.
     */
    viewed(p: Principal, id: string, permission: string): Viewed | Promise<Viewed> {
      const dz = meta.immediate ? meta.immediate.dropzoneByRef(id) : NOT_NOW;
      return dz === NOT_NOW ? service.getViewed(p, id, permission) : viewedFrom(p, dz, permission);
    },

    /** What `p` may learn about `dz` (which `_id`, whether the upload code); see {@link dropzoneView}. */
    async view(p: Principal, dz: Dropzone): Promise<DropzoneView> {
      return dropzoneView(p, await dropzonePermissions(meta, p, dz), dz);
    },

    /**
     * One page of the dropzones the key owns or may get (`dropzone.get` or `dropzone.own` granted to it) — for the
     * admin key too, like any caller; with `all`, every dropzone on the server (admin key only; FORBIDDEN otherwise).
     * At most `limit` dropzones after `after` in (createdAt, id) order, with where the next page starts when more
     * follow. The visibility rule is part of the store's query, so pages are full.
     */
    listPageFor(key: ApiKey, all: boolean, after: DropzoneCursor | undefined, limit: number): Promise<Page<Dropzone, DropzoneCursor>> {
      if (all && !key.isAdmin) throw new AppError('FORBIDDEN', 'Only the admin key can list every dropzone (all=true).');
      const fetch = all
        ? (a: DropzoneCursor | undefined, n: number) => meta.allDropzonesAfter(a, n)
        : (a: DropzoneCursor | undefined, n: number) => meta.dropzonesForKeyAfter(key.id, key.publicId, a, n);
      return readPage(fetch, after, limit, (d) => ({ createdAt: d.createdAt, id: d.id }));
    },

    /**
     * Every dropzone {@link listPageFor} answers, as batches of at most {@link FILE_BATCH_SIZE} read page by page and
     * yielding to the event loop between them (a long list neither blocks nor sits whole in memory). The first batch is
     * read at once, so a refusal (FORBIDDEN) is thrown here, before anything is answered.
     */
    async listBatchesFor(key: ApiKey, all = false): Promise<{ first: Dropzone[]; rest?: AsyncGenerator<Dropzone[]> }> {
      const first = await service.listPageFor(key, all, undefined, FILE_BATCH_SIZE);
      if (!first.next) return { first: first.items };
      let after: DropzoneCursor | undefined = first.next;
      async function* rest(): AsyncGenerator<Dropzone[]> {
        while (after) {
          await yieldToEventLoop();
          const page = await service.listPageFor(key, all, after, FILE_BATCH_SIZE);
          if (page.items.length > 0) yield page.items;
          after = page.next;
        }
      }
      return { first: first.items, rest: rest() };
    },

    /**
     * Creates a dropzone owned by `key`, charging `gb × days / 30` GB-months. When `name` is given and the key already
     * owns a dropzone of that name, updates that one instead (`created: false`). Throws VALIDATION (bounds),
     * INSUFFICIENT_GB_MONTHS, and whatever {@link update} throws.
     */
    async create(key: ApiKey, input: { gb: number; days: number; name?: string }): Promise<{ dz: Dropzone; created: boolean }> {
      // another process may create the same name between the lookup and the insert: the database refuses the second
      // live holder of a name, this transaction rolls back (no charge), and a second attempt updates the winner
      try {
        return await createOnce(key, input);
      } catch (e) {
        if (e !== NAME_TAKEN) throw e;
        return createOnce(key, input);
      }
    },

    /**
     * Extends a dropzone (needs `dropzone.update` and an api key, which pays exactly the cost difference).
     * Smaller values than the current ones: CANNOT_SHRINK (400). Expired: DROPZONE_EXPIRED (410).
     */
    update(p: Principal, id: string, input: { gb?: number; days?: number }): Promise<Dropzone> {
      return meta.transaction((tx) => updateIn(tx, p, id, input));
    },

    /**
     * Deletes the dropzone, its files and grants in one transaction and queues their blobs for deletion
     * (removed right after, and by the sweeper if that fails). Needs `dropzone.own`.
     */
    async remove(p: Principal, id: string): Promise<void> {
      const dz = await service.get(p, id, 'dropzone.own');
      await service.destroy(dz.id, { type: 'dropzone.deleted', actor: p.key });
      await flushBlobDeletions(deps);
    },

    /**
     * Deletes a dropzone and everything under it, queuing blob deletions; no permission check (sweeper, fixtures).
     * Closes it first (no upload can be reserved from then on), then removes its files in transactions of at most
     * {@link FILE_BATCH_SIZE} that yield to the event loop in between; the transaction that finds the last files also
     * deletes the dropzone row and its grants, so no file can be left behind unqueued. Each step can free space on a
     * full disk (freeingWrite). A crash midway leaves a closed, expired dropzone that the sweeper finishes. With
     * `cause`, the transaction deleting the row records that event (`dropzone.deleted` or `dropzone.expired`).
     */
    async destroy(id: string, cause?: { type: 'dropzone.deleted' | 'dropzone.expired'; actor?: ApiKey }): Promise<void> {
      await freeingWrite(deps, () => meta.closeDropzone(id, clock.now()));
      for (;;) {
        const done = await freeingWrite(deps, () =>
          meta.transaction(async (tx) => {
            const batch = await tx.filesOfDropzoneAfter(id, undefined, FILE_BATCH_SIZE);
            const now = clock.now();
            for (const f of batch) {
              await queueFileBlob(tx, deps, f, now);
              const uploadId = f.multipartUploadId;
              // its parts go too (a failed abort is left to the sweeper's stale-upload pass)
              if (uploadId && deps.blobs.multipart)
                tx.afterCommit(() =>
                  deps.blobs.multipart!.abort(f.blobKey, uploadId).catch((err) => deps.log.warn('could not abort the multipart upload of a removed file', { err })),
                );
              await tx.deleteGrantsOn('file', f.id);
              await tx.deleteFile(f.id);
            }
            if (batch.length === FILE_BATCH_SIZE) return false;
            const dz = cause && (await tx.dropzoneById(id));
            if (dz) await recordEvent(deps, tx, { type: cause.type, dz, actor: cause.actor, data: { name: dz.name } });
            await tx.deleteGrantsOn('dropzone', id);
            await tx.deleteDropzone(id);
            return true;
          }),
        );
        if (done) return;
        await yieldToEventLoop();
      }
    },
  };

  /** One attempt of {@link create}; throws NAME_TAKEN when another writer took the name since the lookup. */
  const createOnce = (key: ApiKey, input: { gb: number; days: number; name?: string }): Promise<{ dz: Dropzone; created: boolean }> =>
    meta.transaction(async (tx) => {
      if (input.name) {
        const existing = await tx.dropzoneByOwnerName(key.id, input.name);
        // an expired dropzone awaiting the sweeper is gone for its owner: the name starts afresh
        if (existing && existing.deleteTime > clock.now())
          return { dz: await updateIn(tx, { key }, existing.id, { gb: input.gb, days: input.days }), created: false };
      }
      checkBounds(config.limits, input.gb, input.days);
      await chargeKey(tx, (await tx.keyById(key.id))!, costMicro(input.gb, input.days));
      const now = clock.now();
      const maxSize = gbToBytes(input.gb);
      const id = newDropzoneId();
      const inserted = await tx.insertDropzone({
        id,
        shareId: newShareId(),
        code: newDropzoneCode(),
        name: input.name ?? null,
        ownerKeyId: key.id,
        tier: 'standard',
        hidden: false,
        sizeGb: input.gb,
        days: input.days,
        maxSize,
        maxFileSize: maxFileSizeFor(maxSize),
        startTime: now,
        deleteTime: now + Math.round(input.days * DAY_MS),
        createdAt: now,
        updatedAt: now,
      });
      if (!inserted) throw NAME_TAKEN;
      const dz = (await tx.dropzoneById(id))!;
      await recordEvent(deps, tx, { type: 'dropzone.created', dz, actor: key, data: dropzoneEventData(dz) });
      return { dz, created: true };
    });

  return service;
}

/** The service built by {@link createDropzoneService}. */
export type DropzoneService = ReturnType<typeof createDropzoneService>;

/** Queued deletions handled per batch of a drain; between batches the drain yields to requests. */
export const BLOB_DELETION_BATCH = 500;
/** Store deletions a drain runs at once. */
const BLOB_DELETION_CONCURRENCY = 8;

/**
 * Queues the blob of a file whose row is being removed (call inside the removing transaction). On a store whose
 * upload URLs outlive the row (`revocableUploadUrls` false, S3) the key stays queued until no URL for it can be used
 * any more — `uploads.urlTtlSeconds` plus `sweeper.urlExpiryMarginSeconds` after the last moment one could have been
 * issued (now for a pending file, its confirmation for a confirmed one) — and is deleted again then.
 */
export function queueFileBlob(tx: MetadataOps, { blobs, config }: Pick<CoreDeps, 'blobs' | 'config'>, file: StoredFile, now: number): Promise<void> {
  let notBefore = now;
  if (!blobs.revocableUploadUrls) {
    const lastIssued = file.status === 'uploaded' && file.confirmedAt !== null ? Math.min(file.confirmedAt, now) : now;
    notBefore = Math.max(now, lastIssued + (config.uploads.urlTtlSeconds + config.sweeper.urlExpiryMarginSeconds) * 1000);
  }
  return tx.queueBlobDeletion(file.blobKey, now, notBefore);
}

/**
 * Drains the deletion queue: deletes every queued blob that is due (and, at once, every newly queued one even before
 * its `not_before`), in batches of {@link BLOB_DELETION_BATCH} that yield to the event loop in between, until the
 * queue holds nothing more to do now. A row is dequeued once its blob is gone and its `not_before` has passed;
 * failures stay queued and are logged. Resolves to the number of store deletions done.
 */
export async function flushBlobDeletions({ meta, blobs, log, clock }: Pick<CoreDeps, 'meta' | 'blobs' | 'log' | 'clock'>): Promise<number> {
  const now = clock.now();
  let done = 0;
  let after = { at: Number.MIN_SAFE_INTEGER, key: '' };
  const one = async (row: BlobDeletion) => {
    const key = row.blobKey;
    try {
      // a key that came back into use (it never does: keys are random) must not be deleted
      if (await meta.fileByBlobKey(key)) {
        await meta.dequeueBlobDeletion(key);
        return;
      }
      await blobs.delete(key);
      done++;
      if (row.notBefore <= now) await meta.dequeueBlobDeletion(key);
      else await meta.markBlobDeletionTried(key);
    } catch (err) {
      log.warn('blob deletion failed; will retry', { err });
    }
  };
  for (;;) {
    const batch = await meta.blobDeletionsDue(now, after, BLOB_DELETION_BATCH);
    if (batch.length === 0) break;
    const last = batch[batch.length - 1]!;
    after = { at: last.queuedAt, key: last.blobKey };
    for (let i = 0; i < batch.length; i += BLOB_DELETION_CONCURRENCY) {
      await Promise.all(batch.slice(i, i + BLOB_DELETION_CONCURRENCY).map(one));
    }
    if (batch.length < BLOB_DELETION_BATCH) break;
    await yieldToEventLoop();
  }
  return done;
}
