import { keyPermissions } from '../core/permissions.js';
import type { ApiKey, Dropzone, StoredFile } from '../core/ports/metadata-store.js';
import { DAY_MS, toGbMonths } from '../core/quota.js';
import type { DropzoneView } from '../core/visibility.js';

const iso = (ms: number) => new Date(ms).toISOString();

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
    ...(view.showCode ? { code: dz.code } : {}),
    maxDuration: Math.round(dz.days * DAY_MS),
    maxSize: dz.maxSize,
    maxFileSize: dz.maxFileSize,
    usedSpace: dz.usedSpace,
    deleteTime: dz.deleteTime,
    ...(view.showCode ? { uploadUrl: `${publicUrl}/d/${dz.code}` } : {}),
    maxSizeGb: dz.sizeGb,
    maxDurationDays: dz.days,
  };
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
      ...(view.showCode ? { dropZoneCode: dz.code } : {}),
      createdAt: iso(f.createdAt),
      ...(view.visible ? { dropZoneId: view.id } : {}),
      s3Status: f.status,
      // only for files confirmed with virus scanning on
      ...(f.scanState ? { scanStatus: f.scanState } : {}),
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
