import { AppError } from './errors.js';
import type { ApiKey, Dropzone, MetadataOps, StoredFile } from './ports/metadata-store.js';

/** What permission checks read: the grants on a resource. */
export type GrantReader = Pick<MetadataOps, 'grantsFor' | 'grantsForAnyone'>;

/** Every permission a dropzone can grant. */
export const DROPZONE_PERMISSIONS = [
  'dropzone.own',
  'dropzone.list',
  'dropzone.update',
  'dropzone.get',
  'dropzone.zip',
  'dropzone.grant',
  'dropzone.upload',
  'dropzone.download',
] as const;
/** Every permission a file can grant. */
export const FILE_PERMISSIONS = ['file.own', 'file.get', 'file.grant', 'file.upload.confirm', 'file.delete', 'file.download'] as const;
/** Key-level permissions. */
export const KEY_PERMISSIONS = ['apikey.create'] as const;

/** A dropzone permission name. */
export type DropzonePermission = (typeof DROPZONE_PERMISSIONS)[number];
/** A file permission name. */
export type FilePermission = (typeof FILE_PERMISSIONS)[number];

/** The publicId that stands for everybody, authenticated or not. */
export const ANYONE = 'anyone';

/**
 * Who is calling. `key` is set for api-key auth; `dropzoneId` when a valid `x-dropzone-id` was sent
 * (it grants everything on that dropzone and its files). Neither: anonymous.
 */
export interface Principal {
  key?: ApiKey;
  dropzoneId?: string;
}

/**
 * What `x-dropzone-id` grants on its dropzone: the first-generation capabilities (read, list, upload, download,
 * zip, and deleting files), but not owning, granting or paying for extensions.
 */
export const DROPZONE_ID_PERMISSIONS: readonly DropzonePermission[] = ['dropzone.get', 'dropzone.list', 'dropzone.upload', 'dropzone.download', 'dropzone.zip'];

/** True when the principal presented no credential at all. */
export const isAnonymous = (p: Principal) => !p.key && !p.dropzoneId;

/** The key-level permissions of an API key (admin keys have all). */
export function keyPermissions(key: ApiKey): Set<string> {
  return new Set(key.isAdmin ? KEY_PERMISSIONS : key.permissions);
}

/** All dropzone permissions, shared by every owner's check (read-only: nothing may add to it). */
const ALL_DROPZONE_PERMISSIONS: ReadonlySet<DropzonePermission> = new Set(DROPZONE_PERMISSIONS);
const ALL_DROPZONE_PERMISSIONS_SETTLED = Promise.resolve(ALL_DROPZONE_PERMISSIONS);
/** All file permissions, shared likewise. */
const ALL_FILE_PERMISSIONS: ReadonlySet<FilePermission> = new Set(FILE_PERMISSIONS);

/**
 * All dropzone permissions when `p` owns `dz` (or is the admin key), known without asking for grants; undefined
 * otherwise (then {@link dropzonePermissions} asks). Lets the most common caller's check skip a wait.
 */
export function ownerDropzonePermissions(p: Principal, dz: Dropzone): ReadonlySet<DropzonePermission> | undefined {
  return p.key && (p.key.isAdmin || dz.ownerKeyId === p.key.id) ? ALL_DROPZONE_PERMISSIONS : undefined;
}

/** The dropzone permissions `p` holds on `dz`, with `own` expanded to all. */
export function dropzonePermissions(grants: GrantReader, p: Principal, dz: Dropzone): Promise<ReadonlySet<DropzonePermission>> {
  // owners (most callers) get one settled promise, shared: no promise made and resolved per check
  if (ownerDropzonePermissions(p, dz)) return ALL_DROPZONE_PERMISSIONS_SETTLED;
  return grantedDropzonePermissions(grants, p, dz);
}

async function grantedDropzonePermissions(grants: GrantReader, p: Principal, dz: Dropzone): Promise<ReadonlySet<DropzonePermission>> {
  const granted = p.key ? await grants.grantsFor('dropzone', dz.id, p.key.publicId) : await grants.grantsForAnyone('dropzone', dz.id);
  if (granted.includes('dropzone.own')) return ALL_DROPZONE_PERMISSIONS;
  const out = new Set(granted as DropzonePermission[]);
  if (p.dropzoneId === dz.id) for (const perm of DROPZONE_ID_PERMISSIONS) out.add(perm);
  return out;
}

/**
 * The file permissions `p` holds on `file` in `dz`: owners of the dropzone and the uploader own the file;
 * grants on the file add up; dropzone grants carry over (`download` → `file.download`, `get`/`list` → `file.get`,
 * `upload` → `file.upload.confirm`). `own` expands to all.
 */
export async function filePermissions(grants: GrantReader, p: Principal, file: StoredFile, dz: Dropzone): Promise<ReadonlySet<FilePermission>> {
  const dzPerms = await dropzonePermissions(grants, p, dz);
  if (dzPerms.has('dropzone.own')) return ALL_FILE_PERMISSIONS;
  if (p.key && file.uploaderKeyId === p.key.id) return ALL_FILE_PERMISSIONS;
  const granted = (p.key ? await grants.grantsFor('file', file.id, p.key.publicId) : await grants.grantsForAnyone('file', file.id)) as FilePermission[];
  if (granted.includes('file.own')) return ALL_FILE_PERMISSIONS;
  const out = new Set<FilePermission>(granted);
  if (p.dropzoneId === dz.id) out.add('file.delete');
  if (dzPerms.has('dropzone.download')) out.add('file.download');
  if (dzPerms.has('dropzone.get') || dzPerms.has('dropzone.list')) out.add('file.get');
  if (dzPerms.has('dropzone.upload')) out.add('file.upload.confirm');
  return out;
}

/**
 * Throws unless `held` contains `needed`. With no permission at all the resource stays invisible:
 * 401 for a caller without credentials, 404 (`notFound()`) otherwise; with some permission but not this one, 403.
 * The error is built only when thrown (a stack trace per check would cost every request).
 */
export function requirePermission(p: Principal, held: ReadonlySet<string>, needed: string, notFound: () => AppError): void {
  if (held.has(needed)) return;
  if (held.size === 0) throw invisible(p, notFound());
  throw new AppError('FORBIDDEN', `Missing permission ${needed}.`, { permission: needed });
}

/**
 * The error for a resource `p` may not see (or that does not exist — the two must look the same):
 * 401 for a caller without credentials, `notFound` otherwise.
 */
export function invisible(p: Principal, notFound: AppError): AppError {
  return isAnonymous(p) ? new AppError('UNAUTHENTICATED', 'Missing credentials: send x-api-key or Authorization: Bearer.') : notFound;
}

const VALID_NAMES = { dropzone: DROPZONE_PERMISSIONS, file: FILE_PERMISSIONS, apikey: KEY_PERMISSIONS } as const;
const KIND_LABEL = { dropzone: 'dropzone', file: 'file', apikey: 'API key' } as const;

/** Throws UNKNOWN_PERMISSION (400) naming the first name not valid for `kind`. */
export function validatePermissionNames(kind: 'dropzone' | 'file' | 'apikey', names: string[]): void {
  const valid: readonly string[] = VALID_NAMES[kind];
  for (const n of names) {
    if (!valid.includes(n))
      throw new AppError('UNKNOWN_PERMISSION', `Unknown ${KIND_LABEL[kind]} permission "${n}". Valid: ${valid.join(', ')}.`, { permission: n, valid });
  }
}
