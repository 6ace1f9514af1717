import type { BlobStore } from '../blobs/blob-store.js';
import type { Config } from '../config/schema.js';
import type { Repositories } from '../db/repositories.js';
import type { Logger } from '../log/logger.js';
import type { Clock } from './clock.js';

/** What every domain service is built from; injected, never imported as singletons. */
export interface CoreDeps {
  config: Config;
  repo: Repositories;
  blobs: BlobStore;
  clock: Clock;
  log: Logger;
}
