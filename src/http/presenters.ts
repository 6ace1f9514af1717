import type { ApiKeyRow, DropzoneRow, FileRow } from '../db/repositories.js';
import { keyPermissions } from '../core/permissions.js';
import { DAY_MS, toGbMonths } from '../core/quota.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** The public Dropzone object. `uploadUrl` is the dropzone's page `${publicUrl}/d/${code}`. */
export function presentDropzone(dz: DropzoneRow, publicUrl: string) {
  return {
    _id: dz.id,
    name: dz.name,
    tier: dz.tier,
    hidden: dz.hidden === 1,
    createdAt: iso(dz.created_at),
    updatedAt: iso(dz.updated_at),
    code: dz.code,
    maxDuration: Math.round(dz.days * DAY_MS),
    maxSize: dz.max_size,
    maxFileSize: dz.max_file_size,
    usedSpace: dz.used_space,
    deleteTime: dz.delete_time,
    uploadUrl: `${publicUrl}/d/${dz.code}`,
    maxSizeGb: dz.size_gb,
    maxDurationDays: dz.days,
  };
}

/**
 * The public FileItem. `meta.dropZoneId` is included only when `revealDropzoneId` (the caller can see the dropzone),
 * because under DropzoneAuth that id is a credential.
 */
export function presentFile(f: FileRow, dz: DropzoneRow, revealDropzoneId: boolean) {
  return {
    _id: f.id,
    size: f.size,
    type: f.type,
    name: f.name,
    meta: {
      dropZoneCode: dz.code,
      createdAt: iso(f.created_at),
      ...(revealDropzoneId ? { dropZoneId: dz.id } : {}),
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
