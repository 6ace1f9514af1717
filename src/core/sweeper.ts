import { yieldToEventLoop } from './file-batches.js';
import type { CoreDeps } from './deps.js';
import { type DropzoneService, flushBlobDeletions } from './dropzones.js';
import type { FileService } from './files.js';
import { freeingWrite } from './space.js';
import { randomId } from './ids.js';

/** The lease scheduled sweeps run under: one node sweeps at a time. */
export const SWEEPER_LEASE = 'sweeper';

/** Listed keys between two yields to the event loop during an orphan scan. */
const SCAN_YIELD_EVERY = 256;

/** What one sweep removed. */
export interface SweepResult {
  expiredDropzones: number;
  stalePending: number;
  blobsDeleted: number;
  /** Leftover temp files of uploads that died with a crashed process. */
  tempFilesRemoved: number;
  /** Multipart uploads aborted because no pending file holds them any more. */
  multipartAborted: number;
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
  const { meta, clock, blobs, log, config } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  /** When the sweep runs the next scheduled orphan scan (`sweeper.gcIntervalSeconds`), on the injected clock. */
  let nextScanAt = clock.now() + config.sweeper.gcIntervalSeconds * 1000;
  /** This process among the nodes sharing the database. */
  const holder = `sweeper-${process.pid}-${randomId(9)}`;
  /** A holder that stops renewing (it died) loses the lease after three missed sweeps (at least a minute). */
  const leaseMs = Math.max(3 * config.sweeper.intervalSeconds, 60) * 1000;

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
      if (entry.lastModified.getTime() > cutoff || (await meta.fileByBlobKey(entry.key))) continue;
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
    for (let batch = await meta.expiredDropzones(now); batch.length; batch = await meta.expiredDropzones(now)) {
      for (const dz of batch) {
        await services.dropzones.destroy(dz.id, { type: 'dropzone.expired' });
        expiredDropzones++;
      }
    }
    for (let batch = await meta.stalePending(now); batch.length; batch = await meta.stalePending(now)) {
      for (const f of batch) {
        await freeingWrite(deps, () => services.files.removeRow(f));
        stalePending++;
      }
    }
    const blobsDeleted = await flushBlobDeletions(deps);
    const tempFilesRemoved = await sweeper.cleanupTemp();
    const multipartAborted = await sweeper.abortStaleUploads();
    // once deletions made room again, set space aside for the next full disk
    if (deps.reserve && !deps.reserve.held() && (await deps.reserve.restore())) log.info('space reserve restored', { bytes: deps.reserve.bytes });
    if (expiredDropzones || stalePending || blobsDeleted || tempFilesRemoved || multipartAborted)
      log.info('sweep', { expiredDropzones, stalePending, blobsDeleted, tempFilesRemoved, multipartAborted });
    if (scheduledScan && config.sweeper.gcIntervalSeconds > 0 && clock.now() >= nextScanAt) {
      nextScanAt = clock.now() + config.sweeper.gcIntervalSeconds * 1000;
      try {
        const scan = await scanOrphans(); // (not inside the optional call: without an observer it would never run)
        deps.observer?.gcFinished?.(scan);
      } catch (err) {
        log.warn('scheduled orphan scan failed; will retry at the next interval', { err });
      }
    }
    return { expiredDropzones, stalePending, blobsDeleted, tempFilesRemoved, multipartAborted };
  };

  const sweeper = {
    /**
     * Runs one sweep now (with the orphan scan when it is due, unless `scan` is false); concurrent calls share the
     * sweep in progress. Explicit sweeps (`dropzone gc`, the fixture clock) run whoever holds the lease: every step is
     * safe beside another node's sweep (a file's space is released by the one remover that deleted its row).
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

    /**
     * Aborts the multipart uploads the store lists as started more than an upload URL lifetime
     * (`uploads.urlTtlSeconds`) ago that are not the upload pinned to a pending file: left over after the file was
     * deleted, expired or confirmed, or opened by a start that lost a race. Uploads of pending files are kept (they
     * end with their file). Failures are logged; resolves to the number aborted.
     */
    async abortStaleUploads(): Promise<number> {
      const mp = blobs.multipart;
      if (!mp) return 0;
      let aborted = 0;
      let seen = 0;
      try {
        for await (const up of mp.staleUploads(new Date(clock.now() - config.uploads.urlTtlSeconds * 1000))) {
          if (++seen % SCAN_YIELD_EVERY === 0) await yieldToEventLoop();
          const file = await meta.fileByBlobKey(up.key);
          if (file?.status === 'pending' && file.multipartUploadId === up.uploadId) continue;
          await mp.abort(up.key, up.uploadId);
          aborted++;
        }
      } catch (err) {
        log.warn('aborting stale multipart uploads failed', { err });
      }
      return aborted;
    },

    /** Runs a sweep, then deletes orphaned blobs now (see {@link scanOrphans}); what `dropzone gc` does. */
    async gc(): Promise<GcResult> {
      await sweeper.sweep({ scan: false });
      const result = await scanOrphans();
      deps.observer?.gcFinished?.(result);
      return result;
    },

    /**
     * A scheduled sweep: runs only while this process holds the sweeper lease in the metadata store (taken or renewed
     * here), so with many nodes on one database one of them sweeps at a time and a node that dies hands over when its
     * lease expires. Resolves to the sweep's result, or undefined when another node holds the lease.
     */
    async scheduledSweep(): Promise<SweepResult | undefined> {
      if (!(await meta.acquireLease(SWEEPER_LEASE, holder, clock.now(), leaseMs))) return undefined;
      return sweeper.sweep();
    },

    /**
     * Starts sweeping every `sweeper.intervalSeconds` (0: never) under the sweeper lease (see {@link scheduledSweep}).
     * The timer does not keep the process alive.
     */
    start(): void {
      if (timer || config.sweeper.intervalSeconds <= 0) return;
      timer = setInterval(() => {
        sweeper.scheduledSweep().catch((err) => log.error('sweep failed', { err }));
      }, config.sweeper.intervalSeconds * 1000);
      timer.unref();
    },

    /** Stops the timer, waits for a sweep in progress and hands the lease over (another node may sweep at once). */
    async stop(): Promise<void> {
      const wasStarted = timer !== undefined;
      if (timer) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
      if (wasStarted) await meta.releaseLease(SWEEPER_LEASE, holder).catch((err) => log.warn('could not release the sweeper lease', { err }));
    },
  };
  return sweeper;
}

/** The sweeper built by {@link createSweeper}. */
export type Sweeper = ReturnType<typeof createSweeper>;
