/** Dropzone permissions (src/core/permissions.ts): an owner's are known at once, everyone else's come from grants. */
import { describe, expect, it } from 'vitest';
import type { ApiKey, Dropzone } from '../../src/core/ports/metadata-store.js';
import { DROPZONE_PERMISSIONS, type GrantReader, type Principal, dropzonePermissions, ownerDropzonePermissions } from '../../src/core/permissions.js';

const key = (id: number, isAdmin = false) => ({ id, publicId: `pk_${id}`, isAdmin, permissions: [] }) as unknown as ApiKey;
const dz = { id: 'dz1', ownerKeyId: 1 } as unknown as Dropzone;
/** Grants: `dropzone.get` for key 2, nothing for anyone else; counts the lookups. */
const grants = () => {
  const asked = { n: 0 };
  const reader: GrantReader = {
    grantsFor: async (_kind: string, _id: string, publicId: string) => (asked.n++, publicId === 'pk_2' ? ['dropzone.get'] : []),
    grantsForAnyone: async () => (asked.n++, []),
  } as unknown as GrantReader;
  return { reader, asked };
};

describe('ownerDropzonePermissions', () => {
  it('gives the owner and the admin key every permission, without asking for grants', async () => {
    for (const p of [{ key: key(1) }, { key: key(9, true) }] as Principal[]) {
      expect([...ownerDropzonePermissions(p, dz)!].sort()).toEqual([...DROPZONE_PERMISSIONS].sort());
      const g = grants();
      expect([...(await dropzonePermissions(g.reader, p, dz))].sort()).toEqual([...DROPZONE_PERMISSIONS].sort());
      expect(g.asked.n).toBe(0);
    }
  });

  it('knows nothing for anyone else: another key, an x-dropzone-id caller, an anonymous one — their grants count', async () => {
    for (const p of [{ key: key(2) }, { key: key(3) }, { dropzoneId: 'dz1' }, {}] as Principal[]) {
      expect(ownerDropzonePermissions(p, dz)).toBeUndefined();
      const g = grants();
      const held = await dropzonePermissions(g.reader, p, dz);
      expect(g.asked.n).toBe(1);
      expect(held.has('dropzone.own' as never)).toBe(false);
    }
    expect([...(await dropzonePermissions(grants().reader, { key: key(2) }, dz))]).toEqual(['dropzone.get']);
  });
});
