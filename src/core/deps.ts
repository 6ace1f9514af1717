import type { BlobStore } from '../blobs/blob-store.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Clock } from './clock.js';
import type { MetadataStore } from './ports/metadata-store.js';
import type { GcResult, SweepResult } from './sweeper.js';

/**
 * Space set aside on the data directory's filesystem, released so that a deletion can commit on a full disk
 * (implemented in `src/runtime/space-reserve.ts`).
 */
export interface SpaceReserve {
  /** Its size in bytes (0: none is kept). */
  readonly bytes: number;
  /** True when the reserve is in place (always when none is kept). */
  held(): boolean;
  /** Gives the space back to the filesystem; false when there was nothing to release. */
  release(): boolean;
  /** Puts the reserve back when the filesystem has room for it twice over; true when it is in place afterwards. */
  restore(): Promise<boolean>;
}

/** What every domain service is built from; injected, never imported as singletons. */
export interface CoreDeps {
  config: Config;
  /** The metadata store (SQLite or PostgreSQL): every key, dropzone, file, grant and setting. */
  meta: MetadataStore;
  blobs: BlobStore;
  clock: Clock;
  log: Logger;
  /** The data directory's space reserve; absent for commands that never need it. */
  reserve?: SpaceReserve;
  /** Told about domain events (metrics subscribe here); absent: nobody listens. */
  observer?: CoreObserver;
  /** Called after a transaction that recorded webhook events committed (wakes the dispatcher); must not throw or block. */
  onEventsCommitted?: () => void;
}

/**
 * Domain events an observer may count. Every hook is optional, is called after the event is committed, and must
 * neither throw nor block. Keeps the domain free of any metrics library.
 */
export interface CoreObserver {
  /** A pending upload of `size` bytes became an uploaded file (once per file, however often it is confirmed). */
  uploadConfirmed?(size: number): void;
  /** A sweep finished and removed what `result` says. */
  sweepFinished?(result: SweepResult): void;
  /** A sweep failed (it is retried on the next interval). */
  sweepFailed?(): void;
  /** A garbage collection finished and removed what `result` says. */
  gcFinished?(result: GcResult): void;
  /** A virus scan ended with a `clean` or `scan_failed` verdict (quarantines: {@link fileQuarantined}). */
  scanFinished?(state: 'clean' | 'scan_failed'): void;
  /** A file was found infected and quarantined (`signature`: the scanner's name for what it found). */
  fileQuarantined?(file: { id: string; dropzoneId: string }, signature: string): void;
}
