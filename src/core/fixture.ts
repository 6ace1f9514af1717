import type { CoreDeps } from './deps.js';
import { type DropzoneService, flushBlobDeletions } from './dropzones.js';

/**
 * Fixture reset (`POST /__fixture/reset`): deletes every dropzone with its files and blobs, every grant and every API
 * key but the admin's. Resolves to the number of blobs deleted.
 */
export async function resetFixture(deps: Pick<CoreDeps, 'meta' | 'blobs' | 'log' | 'clock'>, dropzones: Pick<DropzoneService, 'destroy'>): Promise<number> {
  const { meta } = deps;
  for (const dz of await meta.allDropzones()) await dropzones.destroy(dz.id);
  await meta.transaction(async (tx) => {
    await tx.deleteAllGrants();
    await tx.deleteNonAdminKeys();
  });
  return flushBlobDeletions(deps);
}
