import type { CoreDeps } from './deps.js';
import { type DropzoneService, flushBlobDeletions } from './dropzones.js';
import type { FileService } from './files.js';

/** What one sweep removed. */
export interface SweepResult {
  expiredDropzones: number;
  stalePending: number;
  blobsDeleted: number;
}

/** What one garbage collection removed. */
export interface GcResult {
  orphansDeleted: number;
  scanned: number;
}

/**
 * Background housekeeping: expired dropzones, pending uploads not confirmed in time, queued blob deletions,
 * and (on demand) orphaned blobs. Time comes from the injected clock, so tests drive it without waiting.
 */
export function createSweeper(deps: CoreDeps, services: { dropzones: DropzoneService; files: FileService }) {
  const { repo, clock, blobs, log, config } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;

  /** One sweep: expired dropzones, stale pending uploads, queued blob deletions. */
  const sweepOnce = async (): Promise<SweepResult> => {
    const now = clock.now();
    let expiredDropzones = 0;
    let stalePending = 0;
    for (let batch = repo.expiredDropzones(now); batch.length; batch = repo.expiredDropzones(now)) {
      for (const dz of batch) {
        services.dropzones.destroy(dz.id);
        expiredDropzones++;
      }
    }
    for (let batch = repo.stalePending(now); batch.length; batch = repo.stalePending(now)) {
      for (const f of batch) {
        services.files.removeRow(f);
        stalePending++;
      }
    }
    const blobsDeleted = await flushBlobDeletions(deps);
    if (expiredDropzones || stalePending || blobsDeleted) log.info('sweep', { expiredDropzones, stalePending, blobsDeleted });
    return { expiredDropzones, stalePending, blobsDeleted };
  };

  const sweeper = {
    /** Runs one sweep now; concurrent calls share the sweep in progress. */
    sweep(): Promise<SweepResult> {
      if (running) return running as Promise<SweepResult>;
      const p = (async () => {
        try {
          const result = await sweepOnce();
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
     * Deletes blobs that no file row references and that are older than `sweeper.gcGraceSeconds`
     * (younger ones may belong to an upload whose row is being written).
     */
    async gc(): Promise<GcResult> {
      await sweeper.sweep();
      const known = repo.allBlobKeys();
      const cutoff = clock.now() - config.sweeper.gcGraceSeconds * 1000;
      let orphansDeleted = 0;
      let scanned = 0;
      for await (const entry of blobs.list('objects/')) {
        scanned++;
        if (known.has(entry.key) || entry.lastModified.getTime() > cutoff) continue;
        if (repo.fileByBlobKey(entry.key)) continue;
        await blobs.delete(entry.key);
        orphansDeleted++;
      }
      log.info('gc', { scanned, orphansDeleted });
      deps.observer?.gcFinished?.({ orphansDeleted, scanned });
      return { orphansDeleted, scanned };
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
