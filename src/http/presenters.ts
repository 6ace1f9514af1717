import type { ApiKeyRow, DropzoneRow, FileRow } from '../db/repositories.js';
import { keyPermissions } from '../core/permissions.js';
import { DAY_MS, toGbMonths } from '../core/quota.js';
import type { DropzoneView } from '../core/visibility.js';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The Dropzone object as `view` allows (see core/visibility.ts): `_id` is the credential id for owners and the shareId
 * for others; `code` and `uploadUrl` (the dropzone's page `${publicUrl}/d/${code}`) only for callers who may upload.
 */
export function presentDropzone(dz: DropzoneRow, view: DropzoneView, publicUrl: string) {
  return {
    _id: view.id,
    shareId: dz.share_id,
    name: dz.name,
    tier: dz.tier,
    hidden: dz.hidden === 1,
    createdAt: iso(dz.created_at),
    updatedAt: iso(dz.updated_at),
    ...(view.showCode ? { code: dz.code } : {}),
    maxDuration: Math.round(dz.days * DAY_MS),
    maxSize: dz.max_size,
    maxFileSize: dz.max_file_size,
    usedSpace: dz.used_space,
    deleteTime: dz.delete_time,
    ...(view.showCode ? { uploadUrl: `${publicUrl}/d/${dz.code}` } : {}),
    maxSizeGb: dz.size_gb,
    maxDurationDays: dz.days,
  };
}

/**
 * The public FileItem. `meta.dropZoneId` (the id `view` allows) only when the caller may see the dropzone,
 * `meta.dropZoneCode` only when it may upload into it.
 */
export function presentFile(f: FileRow, dz: DropzoneRow, view: DropzoneView) {
  return {
    _id: f.id,
    size: f.size,
    type: f.type,
    name: f.name,
    meta: {
      ...(view.showCode ? { dropZoneCode: dz.code } : {}),
      createdAt: iso(f.created_at),
      ...(view.visible ? { dropZoneId: view.id } : {}),
      s3Status: f.status,
    },
  };
}

/** The public view of an API key (never its secret hash). */
export function presentApiKey(k: ApiKeyRow) {
  return {
    publicId: k.public_id,
    name: k.name,
    gbMonths: k.balance_micro === null ? null : toGbMonths(k.balance_micro),
    permissions: [...keyPermissions(k)],
    admin: k.is_admin === 1,
    createdAt: iso(k.created_at),
  };
}

/** `{status:"success", data}`. */
export const ok = <T>(data: T) => ({ status: 'success' as const, data });

/** A bare object that also carries `{status, data}`, so readers of the seed (bare) and of the SDK (`.data`) both work. */
export const okBoth = <T extends object>(data: T) => ({ ...data, status: 'success' as const, data });
