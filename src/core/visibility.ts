import type { DropzonePermission, Principal } from './permissions.js';
import type { Dropzone } from './ports/metadata-store.js';

/**
 * What one caller may learn about a dropzone. The rule: no answer hands a caller a credential worth more than what the
 * caller holds.
 * - The `_id` is a credential under x-dropzone-id auth: only owners (`dropzone.own`, which the creator and the admin hold)
 *   and callers who authenticated with it see it. Everyone else sees the `shareId`, which names the dropzone in
 *   `/dropzones/:id…` paths under their own permissions but is not accepted by x-dropzone-id.
 * - The page `code` (and the `uploadUrl` built from it) lets anyone holding it upload: only callers who may upload see it.
 * - File metadata names the dropzone only to callers who may see the dropzone itself (`get`, `list`, or owners).
 */
export interface DropzoneView {
  /** The `_id` this caller sees. */
  id: string;
  /** Show `code` and `uploadUrl`. */
  showCode: boolean;
  /** The caller may see the dropzone itself, so file metadata may name it (by {@link DropzoneView.id}). */
  visible: boolean;
}

/** The view of `dz` for `p`, who holds `perms` on it (from `dropzonePermissions`). */
export function dropzoneView(p: Principal, perms: ReadonlySet<DropzonePermission>, dz: Dropzone): DropzoneView {
  const owner = perms.has('dropzone.own') || p.dropzoneId === dz.id;
  return {
    id: owner ? dz.id : dz.shareId,
    showCode: perms.has('dropzone.upload'),
    visible: owner || perms.has('dropzone.get') || perms.has('dropzone.list'),
  };
}
