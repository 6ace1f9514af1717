import type { CoreDeps } from './deps.js';
import { randomId } from './ids.js';
import { isoDate } from '../util/iso-date.js';
import type { ApiKey, Dropzone, MetadataOps, MetadataTx, StoredEvent, StoredFile } from './ports/metadata-store.js';

/** Every event type, as webhook subscriptions name them. */
export const EVENT_TYPES = [
  'file.uploaded',
  'file.deleted',
  'file.quarantined',
  'dropzone.created',
  'dropzone.updated',
  'dropzone.expired',
  'dropzone.deleted',
  'permission.granted',
  'permission.revoked',
] as const;

/** An event type. */
export type EventType = (typeof EVENT_TYPES)[number];

/** A new event id (`evt_…`). */
export const newEventId = () => `evt_${randomId(16)}`;

/** Dropzone grants that let a key read the dropzone (and so learn of its events). */
const READS_DROPZONE = new Set(['dropzone.own', 'dropzone.get', 'dropzone.list']);
/**
 * Grants that let a key see who holds grants (`GET …/permissions` lists them only to `*.grant` holders): the audience
 * of `permission.*` events, besides the grantee the change is about.
 */
const SEES_DROPZONE_GRANTS = new Set(['dropzone.own', 'dropzone.grant']);
const SEES_FILE_GRANTS = new Set(['file.own', 'file.grant']);

/** What {@link recordEvent} is told. */
export interface EventInput {
  type: EventType;
  dz: Dropzone;
  /** The file a `file.*` event (or a permission change on a file) is about. */
  file?: Pick<StoredFile, 'id' | 'uploaderKeyId'> | null;
  /** The acting API key; none for the sweeper, x-dropzone-id callers and page visitors. */
  actor?: Pick<ApiKey, 'publicId'> | null;
  /** Type-specific details; never a secret, code, signed URL or credential. */
  data?: Record<string, unknown>;
}

/** What core needs to record events: the settings and clock, and whom to tell after a commit. */
export type EventDeps = Pick<CoreDeps, 'config' | 'clock' | 'onEventsCommitted'>;

/** True when events are recorded (`webhooks.enabled`); off, nothing is written and changes run as before. */
export const eventsEnabled = (deps: Pick<CoreDeps, 'config'>) => deps.config.webhooks.enabled;

/**
 * Runs `fn` in one metadata transaction when events are recorded, so the change and its event commit together; with
 * events off it runs on the store directly (a single conditional statement stays one statement).
 */
export function withEvents<T>(deps: Pick<CoreDeps, 'config' | 'meta'>, fn: (ops: MetadataOps) => Promise<T>): Promise<T> {
  return eventsEnabled(deps) ? deps.meta.transaction(fn) : fn(deps.meta);
}

/**
 * The keys that may learn of an event, read in the transaction writing it (before any grant it deletes goes): the
 * owner, and the publicIds holding a grant that lets them read the resource — `dropzone.own/get/list` on the dropzone;
 * for a file also any grant on the file and its uploader. A `permission.*` event names a grantee, so it goes only to
 * those who may list grants (`*.own`, `*.grant`), the uploader of a file, and the grantee itself. Grants to `anyone`
 * never make a key part of the audience.
 */
async function audienceOf(ops: MetadataOps, input: EventInput): Promise<{ owner: string | null; audience: string[] }> {
  const { dz, file } = input;
  const grantChange = input.type === 'permission.granted' || input.type === 'permission.revoked';
  const owner = dz.ownerKeyId === null ? null : ((await ops.keyById(dz.ownerKeyId))?.publicId ?? null);
  const out = new Set<string>();
  const dzGrants = grantChange ? SEES_DROPZONE_GRANTS : READS_DROPZONE;
  for (const g of await ops.grantsOn('dropzone', dz.id)) if (dzGrants.has(g.permission)) out.add(g.principal);
  if (grantChange && typeof input.data?.grantee === 'string') out.add(input.data.grantee);
  if (file) {
    for (const g of await ops.grantsOn('file', file.id)) if (!grantChange || SEES_FILE_GRANTS.has(g.permission)) out.add(g.principal);
    if (file.uploaderKeyId !== null) {
      const uploader = await ops.keyById(file.uploaderKeyId);
      if (uploader) out.add(uploader.publicId);
    }
  }
  out.delete('anyone');
  if (owner) out.delete(owner);
  return { owner, audience: [...out].sort() };
}

/**
 * Appends an event to the outbox through `ops`, which must be the transaction making the change (see
 * {@link withEvents}), and wakes the dispatcher once it commits. No-op when events are off.
 */
export async function recordEvent(deps: EventDeps, ops: MetadataOps, input: EventInput): Promise<void> {
  if (!deps.config.webhooks.enabled) return;
  const tx = ops as Partial<MetadataTx>;
  if (typeof tx.afterCommit !== 'function') throw new Error('recordEvent must run inside the transaction making the change');
  const { owner, audience } = await audienceOf(ops, input);
  await ops.insertEvent({
    id: newEventId(),
    type: input.type,
    createdAt: deps.clock.now(),
    dropzoneId: input.dz.id,
    shareId: input.dz.shareId,
    fileId: input.file?.id ?? null,
    actor: input.actor?.publicId ?? null,
    owner,
    audience,
    data: input.data ?? {},
  });
  const wake = deps.onEventsCommitted;
  if (wake) tx.afterCommit(() => wake());
}

/**
 * Records `file.quarantined` for `file` of `dz` (a scanner found it infected) inside the transaction `tx` that marks it
 * quarantined. `reason` (e.g. the signature name) is passed on; it must not be a secret.
 */
export function recordFileQuarantined(deps: EventDeps, tx: MetadataOps, dz: Dropzone, file: StoredFile, reason?: string): Promise<void> {
  return recordEvent(deps, tx, {
    type: 'file.quarantined',
    dz,
    file,
    data: { name: file.name, size: file.size, ...(reason ? { reason } : {}) },
  });
}

/** The JSON body an event is delivered with. */
export interface EventBody {
  id: string;
  type: string;
  /** ISO 8601. */
  time: string;
  /** The dropzone `_id`: only for subscriptions of its owner key and the admin key (it is a credential). */
  dropzoneId?: string;
  shareId: string;
  fileId: string | null;
  /** publicId of the acting key, or null. */
  actor: string | null;
  data: Record<string, unknown>;
}

/** Which subscribing key may receive `event`, and whether it sees the dropzone `_id`; undefined: it may not. */
export function eventViewFor(event: StoredEvent, key: Pick<ApiKey, 'publicId' | 'isAdmin'>): { showId: boolean } | undefined {
  if (key.isAdmin || key.publicId === event.owner) return { showId: true };
  if (event.audience.includes(key.publicId)) return { showId: false };
  return undefined;
}

/** The body of `event` as a subscription of a key with `view` receives it. */
export function eventBody(event: StoredEvent, view: { showId: boolean }): EventBody {
  return {
    id: event.id,
    type: event.type,
    time: isoDate(event.createdAt),
    ...(view.showId ? { dropzoneId: event.dropzoneId } : {}),
    shareId: event.shareId,
    fileId: event.fileId,
    actor: event.actor,
    data: event.data,
  };
}

/** Details of a dropzone shown in `dropzone.*` events. */
export const dropzoneEventData = (dz: Dropzone) => ({
  name: dz.name,
  gb: dz.sizeGb,
  days: dz.days,
  deleteTime: isoDate(dz.deleteTime),
});
