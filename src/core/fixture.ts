import type { CoreDeps } from './deps.js';
import { type DropzoneService, flushBlobDeletions } from './dropzones.js';

/**
 * Fixture reset (`POST /__fixture/reset`): deletes every dropzone with its files and blobs, every grant and every API
 * key but the admin's. Resolves to the number of blobs deleted.
 */
export async function resetFixture(deps: Pick<CoreDeps, 'repo' | 'blobs' | 'log' | 'clock'>, dropzones: Pick<DropzoneService, 'destroy'>): Promise<number> {
  const { repo } = deps;
  for (const dz of repo.allDropzones()) await dropzones.destroy(dz.id);
  repo.db.transaction(() => {
    repo.deleteAllGrants();
    repo.deleteNonAdminKeys();
  })();
  return flushBlobDeletions(deps);
}
