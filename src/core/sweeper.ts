import { yieldToEventLoop } from './file-batches.js';
import type { CoreDeps } from './deps.js';
import { type DropzoneService, flushBlobDeletions } from './dropzones.js';
import type { FileService } from './files.js';
import { freeingWrite } from './space.js';

/** Listed keys between two yields to the event loop during an orphan scan. */
const SCAN_YIELD_EVERY = 256;

/** What one sweep removed. */
export interface SweepResult {
  expiredDropzones: number;
  stalePending: number;
  blobsDeleted: number;
  /** Leftover temp files of uploads that died with a crashed process. */
  tempFilesRemoved: number;
}

/** What one garbage collection removed. */
export interface GcResult {
  orphansDeleted: number;
  scanned: number;
}

/**
 * Background housekeeping: expired dropzones, pending uploads not confirmed in time, queued blob deletions,
 * and orphaned blobs (every `sweeper.gcIntervalSeconds`, and on demand). Time comes from the injected clock, so tests drive it without waiting.
 */
export function createSweeper(deps: CoreDeps, services: { dropzones: DropzoneService; files: FileService }) {
  const { repo, clock, blobs, log, config } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  /** When the sweep runs the next scheduled orphan scan (`sweeper.gcIntervalSeconds`), on the injected clock. */
  let nextScanAt = clock.now() + config.sweeper.gcIntervalSeconds * 1000;

  /**
   * Deletes blobs under `objects/` that no file row references and that are older than `sweeper.gcGraceSeconds`
   * (younger ones may belong to an upload whose row is being written). One indexed lookup per listed key, no table
   * loaded into memory, and a yield to the event loop every {@link SCAN_YIELD_EVERY} keys.
   */
  async function scanOrphans(): Promise<GcResult> {
    const cutoff = clock.now() - config.sweeper.gcGraceSeconds * 1000;
    let orphansDeleted = 0;
    let scanned = 0;
    for await (const entry of blobs.list('objects/')) {
      scanned++;
      if (scanned % SCAN_YIELD_EVERY === 0) await yieldToEventLoop();
      if (entry.lastModified.getTime() > cutoff || repo.fileByBlobKey(entry.key)) continue;
      await blobs.delete(entry.key);
      orphansDeleted++;
    }
    log.info('gc', { scanned, orphansDeleted });
    return { orphansDeleted, scanned };
  }

  /** One sweep: expired dropzones, stale pending uploads, queued blob deletions, crash leftovers, the scheduled orphan scan. */
  const sweepOnce = async (scheduledScan: boolean): Promise<SweepResult> => {
    const now = clock.now();
    let expiredDropzones = 0;
    let stalePending = 0;
    for (let batch = repo.expiredDropzones(now); batch.length; batch = repo.expiredDropzones(now)) {
      for (const dz of batch) {
        await services.dropzones.destroy(dz.id);
        expiredDropzones++;
      }
    }
    for (let batch = repo.stalePending(now); batch.length; batch = repo.stalePending(now)) {
      for (const f of batch) {
        freeingWrite(deps, () => services.files.removeRow(f));
        stalePending++;
      }
    }
    const blobsDeleted = await flushBlobDeletions(deps);
    const tempFilesRemoved = await sweeper.cleanupTemp();
    // once deletions made room again, set space aside for the next full disk
    if (deps.reserve && !deps.reserve.held() && (await deps.reserve.restore())) log.info('space reserve restored', { bytes: deps.reserve.bytes });
    if (expiredDropzones || stalePending || blobsDeleted || tempFilesRemoved)
      log.info('sweep', { expiredDropzones, stalePending, blobsDeleted, tempFilesRemoved });
    if (scheduledScan && config.sweeper.gcIntervalSeconds > 0 && clock.now() >= nextScanAt) {
      nextScanAt = clock.now() + config.sweeper.gcIntervalSeconds * 1000;
      try {
        const scan = await scanOrphans(); // (not inside the optional call: without an observer it would never run)
        deps.observer?.gcFinished?.(scan);
      } catch (err) {
        log.warn('scheduled orphan scan failed; will retry at the next interval', { err });
      }
    }
    return { expiredDropzones, stalePending, blobsDeleted, tempFilesRemoved };
  };

  const sweeper = {
    /**
     * Runs one sweep now (with the orphan scan when it is due, unless `scan` is false); concurrent calls share the
     * sweep in progress.
     */
    sweep(opts: { scan?: boolean } = {}): Promise<SweepResult> {
      if (running) return running as Promise<SweepResult>;
      const p = (async () => {
        try {
          const result = await sweepOnce(opts.scan ?? true);
          deps.observer?.sweepFinished?.(result);
          return result;
        } catch (err) {
          deps.observer?.sweepFailed?.();
          throw err;
        }
      })().finally(() => {
        running = undefined;
      });
      running = p;
      return p;
    },

    /**
     * Removes the store's upload temp files nothing has written to for `sweeper.tempMaxIdleSeconds` (crash leftovers;
     * uploads in flight keep writing, and this process's own are skipped). Failures are logged; resolves to the count.
     */
    async cleanupTemp(): Promise<number> {
      try {
        return (await blobs.cleanupTemp?.(config.sweeper.tempMaxIdleSeconds * 1000)) ?? 0;
      } catch (err) {
        log.warn('temp file cleanup failed', { err });
        return 0;
      }
    },

    /** Runs a sweep, then deletes orphaned blobs now (see {@link scanOrphans}); what `dropzone gc` does. */
    async gc(): Promise<GcResult> {
      await sweeper.sweep({ scan: false });
      const result = await scanOrphans();
      deps.observer?.gcFinished?.(result);
      return result;
    },

    /** Starts sweeping every `sweeper.intervalSeconds` (0: never). The timer does not keep the process alive. */
    start(): void {
      if (timer || config.sweeper.intervalSeconds <= 0) return;
      timer = setInterval(() => {
        sweeper.sweep().catch((err) => log.error('sweep failed', { err }));
      }, config.sweeper.intervalSeconds * 1000);
      timer.unref();
    },

    /** Stops the timer and waits for a sweep in progress. */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
  };
  return sweeper;
}

/** The sweeper built by {@link createSweeper}. */
export type Sweeper = ReturnType<typeof createSweeper>;
