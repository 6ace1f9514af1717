import { keyPermissions } from '../core/permissions.js';
import type { ApiKey, Dropzone, StoredFile } from '../core/ports/metadata-store.js';
import { DAY_MS, toGbMonths } from '../core/quota.js';
import type { DropzoneView } from '../core/visibility.js';
import { isoDate as iso } from '../util/iso-date.js';

/*
 * The presenters build each answer as one object literal of one shape, the fields a caller may not see set to
 * `undefined`, which JSON leaves out: the answer reads exactly as with the fields left off, but V8 builds the object from
 * its literal's template — a conditional spread (`...(cond ? { code } : {})`) made it define every later field through
 * the runtime, one call each (about 10,000 instructions per dropzone answered, callgrind, Node 24).
 */

/**
 * The Dropzone object as `view` allows (see core/visibility.ts): `_id` is the credential id for owners and the shareId
 * for others; `code` and `uploadUrl` (the dropzone's page `${publicUrl}/d/${code}`) only for callers who may upload.
 */
export function presentDropzone(dz: Dropzone, view: DropzoneView, publicUrl: string) {
  return {
    _id: view.id,
    shareId: dz.shareId,
    name: dz.name,
    tier: dz.tier,
    hidden: dz.hidden,
    createdAt: iso(dz.createdAt),
    updatedAt: iso(dz.updatedAt),
    code: view.showCode ? dz.code : undefined,
    maxDuration: Math.round(dz.days * DAY_MS),
    maxSize: dz.maxSize,
    maxFileSize: dz.maxFileSize,
    usedSpace: dz.usedSpace,
    deleteTime: dz.deleteTime,
    uploadUrl: view.showCode ? `${publicUrl}/d/${dz.code}` : undefined,
    maxSizeGb: dz.sizeGb,
    maxDurationDays: dz.days,
  };
}

/** The text of one dropzone's answer, kept beside the dropzone object it was made from (see {@link dropzoneAnswerText}). */
interface KeptAnswer {
  viewId: string;
  showCode: boolean;
  publicUrl: string;
  text: string;
}
const keptAnswers = new WeakMap<Dropzone, KeptAnswer>();

/**
 * `JSON.stringify(ok(presentDropzone(dz, view, publicUrl)))`, made once per frozen dropzone object and view. A frozen
 * dropzone is one the store shares between the lookups of a read snapshot (see the metadata port): it cannot change, so
 * its answer cannot either, and the requests of one snapshot that ask for the same dropzone (a client polling it)
 * share one text instead of presenting and serializing it again — about 12,000 instructions per answer (callgrind,
 * Node 24). The text lives as long as the object (a WeakMap); an unfrozen dropzone is presented every time.
 */
export function dropzoneAnswerText(dz: Dropzone, view: DropzoneView, publicUrl: string): string {
  const kept = keptAnswers.get(dz);
  if (kept !== undefined && kept.viewId === view.id && kept.showCode === view.showCode && kept.publicUrl === publicUrl) return kept.text;
  const text = JSON.stringify(ok(presentDropzone(dz, view, publicUrl)));
  if (Object.isFrozen(dz)) keptAnswers.set(dz, { viewId: view.id, showCode: view.showCode, publicUrl, text });
  return text;
}

/**
 * The public FileItem. `meta.dropZoneId` (the id `view` allows) only when the caller may see the dropzone,
 * `meta.dropZoneCode` only when it may upload into it.
 */
export function presentFile(f: StoredFile, dz: Dropzone, view: DropzoneView) {
  return {
    _id: f.id,
    size: f.size,
    type: f.type,
    name: f.name,
    meta: {
      dropZoneCode: view.showCode ? dz.code : undefined,
      createdAt: iso(f.createdAt),
      dropZoneId: view.visible ? view.id : undefined,
      s3Status: f.status,
      // only for files confirmed with virus scanning on
      scanStatus: f.scanState || undefined,
    },
  };
}

/** The public view of an API key (never its secret hash). */
export function presentApiKey(k: ApiKey) {
  return {
    publicId: k.publicId,
    name: k.name,
    gbMonths: k.balanceMicro === null ? null : toGbMonths(k.balanceMicro),
    permissions: [...keyPermissions(k)],
    admin: k.isAdmin,
    createdAt: iso(k.createdAt),
  };
}

/** `{status:"success", data}`. */
export const ok = <T>(data: T) => ({ status: 'success' as const, data });

/** A bare object that also carries `{status, data}`, so readers of the seed (bare) and of the SDK (`.data`) both work. */
export const okBoth = <T extends object>(data: T) => ({ ...data, status: 'success' as const, data });
