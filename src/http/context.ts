import type { ApiKeyService } from '../core/api-keys.js';
import type { CoreDeps } from '../core/deps.js';
import type { DropzoneService } from '../core/dropzones.js';
import type { FileService } from '../core/files.js';
import type { GrantService } from '../core/grants.js';
import type { Sweeper } from '../core/sweeper.js';

/** Everything a route file needs, built once by `createApp`. */
export interface ApiContext extends CoreDeps {
  keys: ApiKeyService;
  dropzones: DropzoneService;
  files: FileService;
  grants: GrantService;
  sweeper: Sweeper;
  /** The public base URL (no trailing slash); known only once the server listens. */
  publicUrl(): string;
}
