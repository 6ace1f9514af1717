import type { Config } from '../config/schema.js';
import type { CoreDeps } from './deps.js';
import { AppError } from './errors.js';
import { recordFileQuarantined } from './events.js';
import { openConfirmedBlob } from './files.js';
import { randomId } from './ids.js';
import type { MetadataTx, ScanState, StoredFile } from './ports/metadata-store.js';
import type { Scanner } from './ports/scanner.js';

/** Scanning files fetched per look for work left over (at start and on each resume). */
const RESUME_BATCH = 100;
/** A claim outlives the scan's timeout by this much, so a live node always finishes (or gives up) before it expires. */
const CLAIM_MARGIN_MS = 60_000;

/**
 * True when `file`'s bytes may be served (download, public link, ZIP, page): files confirmed with scanning off and
 * `clean` ones; `scan_failed` ones only with `scan.onFailure = "serve"`; never `scanning` or `quarantined` ones.
 */
export function servable(config: Pick<Config, 'scan'>, file: Pick<StoredFile, 'scanState'>): boolean {
  switch (file.scanState) {
    case null:
    case 'clean':
      return true;
    case 'scan_failed':
      return config.scan.onFailure === 'serve';
    default:
      return false;
  }
}

/** Throws the catalog error that says why `file` is not served (see {@link servable}); returns when it may be. */
export function refuseUnservable(config: Pick<Config, 'scan'>, file: Pick<StoredFile, 'scanState'>): void {
  if (servable(config, file)) return;
  if (file.scanState === 'scanning') throw new AppError('FILE_SCANNING');
  if (file.scanState === 'quarantined') throw new AppError('FILE_QUARANTINED');
  throw new AppError('FILE_SCAN_FAILED');
}

/**
 * Records that `file` was found infected, inside the caller's transaction `tx`: its state becomes `quarantined` (only
 * from `scanning`; false when it was decided meanwhile or deleted) and, once committed, observers hear of it and with
 * `scan.quarantine = "delete"` its bytes are deleted. The file keeps its row (the uploader sees `quarantined`) and
 * its reserved space until someone deletes it.
 *
 * The `file.quarantined` event (with webhooks on) is written here, through `tx`, so it commits (or rolls back) with
 * the state change.
 */
export async function recordQuarantine(
  tx: MetadataTx,
  deps: Pick<CoreDeps, 'config' | 'blobs' | 'log' | 'observer' | 'clock' | 'onEventsCommitted'>,
  file: StoredFile,
  signature: string,
): Promise<boolean> {
  if (!(await tx.finishScan(file.id, 'quarantined'))) return false;
  // the file.quarantined event commits (or rolls back) with the state change
  const dz = await tx.dropzoneById(file.dropzoneId);
  if (dz) await recordFileQuarantined(deps, tx, dz, file, signature);
  tx.afterCommit(async () => {
    deps.observer?.fileQuarantined?.({ id: file.id, dropzoneId: file.dropzoneId }, signature);
    if (deps.config.scan.quarantine === 'delete')
      await deps.blobs.delete(file.blobKey).catch((err) => deps.log.warn('could not delete the bytes of a quarantined file; they stay unserved', { err }));
  });
  return true;
}

/**
 * The virus-scan step (`scan.enabled`): confirmed files start `scanning` ({@link ScanService.initialState}) and are
 * queued ({@link ScanService.enqueue}); at most `scan.concurrency` scans run at once in this process. A scan first
 * claims the file in the metadata store (one node scans a file at a time; a claim lives `scan.timeoutMs` + a minute),
 * streams the confirmed bytes from the blob store to the scanner, and records the verdict: `clean`, `quarantined`
 * ({@link recordQuarantine}) or `scan_failed` (error, timeout, over `scan.maxBytes`). Files left `scanning` by a
 * restart, a crash or another node are picked up by {@link ScanService.resume} (at start and every
 * `sweeper.intervalSeconds`). Without a scanner (scanning off) nothing is queued and files get no scan state.
 */
export function createScanService(deps: CoreDeps, scanner: Scanner | undefined) {
  const { meta, clock, config, log } = deps;
  const claimMs = config.scan.timeoutMs + CLAIM_MARGIN_MS;
  const queue: string[] = [];
  const queued = new Set<string>();
  /** Scans in progress and their abort controllers (stop aborts them and gives their claims back). */
  const running = new Map<string, AbortController>();
  /** Scans started (claimed or not yet): at most `scan.concurrency`. */
  let active = 0;
  /** Looks for left-over work in progress (idle waits for them too). */
  let resuming = 0;
  let idleWaiters: (() => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const holder = `scan-${process.pid}-${randomId(6)}`;

  const notifyIdle = () => {
    if (queue.length || active || resuming) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const f of w) f();
  };

  /** Runs the scanner on the file's confirmed bytes within the timeout. */
  const verdictOf = async (file: StoredFile, ctl: AbortController): Promise<{ state: 'clean' } | { state: 'quarantined'; signature: string } | { state: 'scan_failed'; reason: string }> => {
    if (config.scan.maxBytes > 0 && file.size > config.scan.maxBytes) return { state: 'scan_failed', reason: 'larger than scan.maxBytes' };
    const timeout = setTimeout(() => ctl.abort(new Error(`timed out after ${config.scan.timeoutMs} ms`)), config.scan.timeoutMs);
    try {
      const { stream } = await openConfirmedBlob(deps.blobs, file);
      const v = await scanner!.scan({ stream, size: file.size }, ctl.signal);
      return v.infected ? { state: 'quarantined', signature: v.signature } : { state: 'clean' };
    } catch (err) {
      return { state: 'scan_failed', reason: (err as Error)?.message ?? String(err) };
    } finally {
      clearTimeout(timeout);
    }
  };

  /** Claims, scans and decides one file; resolves to the state recorded (undefined: not ours, gone, or stopped). */
  const scanOne = async (fileId: string): Promise<ScanState | undefined> => {
    const now = clock.now();
    if (!(await meta.claimScan(fileId, now, now + claimMs))) return undefined;
    const file = await meta.fileById(fileId);
    if (!file || file.scanState !== 'scanning') return undefined;
    const ctl = new AbortController();
    running.set(fileId, ctl);
    try {
      const v = await verdictOf(file, ctl);
      if (stopped) {
        // shutting down: not a verdict; the next start (or another node) scans it again
        await meta.releaseScanClaim(fileId);
        return undefined;
      }
      if (v.state === 'quarantined') {
        const done = await meta.transaction((tx) => recordQuarantine(tx, deps, file, v.signature));
        if (done) log.warn('infected file quarantined', { scanner: scanner!.name, virus: v.signature });
        return done ? 'quarantined' : undefined;
      }
      if (v.state === 'scan_failed') log.warn('virus scan failed', { scanner: scanner!.name, reason: v.reason, onFailure: config.scan.onFailure });
      const done = await meta.finishScan(fileId, v.state);
      if (done) deps.observer?.scanFinished?.(v.state);
      return done ? v.state : undefined;
    } finally {
      running.delete(fileId);
    }
  };

  const pump = () => {
    while (!stopped && active < config.scan.concurrency && queue.length) {
      const id = queue.shift()!;
      active++;
      scanOne(id)
        .catch((err) => log.error('virus scan could not be recorded; it is retried later', { err }))
        .finally(() => {
          active--;
          queued.delete(id);
          pump();
          notifyIdle();
        });
    }
    notifyIdle();
  };

  const service = {
    /** Whether confirmed files are scanned. */
    enabled: scanner !== undefined,

    /** The scan state a file gets when it is confirmed: `scanning` with a scanner, none otherwise. */
    initialState(): ScanState | null {
      return scanner ? 'scanning' : null;
    },

    /** Queues a scan of a file just confirmed `scanning` (no-op without a scanner, when stopped or already queued). */
    enqueue(fileId: string): void {
      if (!scanner || stopped || queued.has(fileId)) return;
      queued.add(fileId);
      queue.push(fileId);
      pump();
    },

    /**
     * Queues the `scanning` files nobody holds a claim on (left by a restart, a crash, a node gone, a lost queue).
     * Resolves to how many were queued. Walks in batches of {@link RESUME_BATCH} while the queue drains, never loading
     * every file.
     */
    async resume(): Promise<number> {
      if (!scanner || stopped) return 0;
      resuming++;
      try {
        const files = await meta.filesToScan(clock.now(), RESUME_BATCH);
        let added = 0;
        for (const f of files) {
          if (queued.has(f.id)) continue;
          service.enqueue(f.id);
          added++;
        }
        return added;
      } finally {
        resuming--;
        notifyIdle();
      }
    },

    /** Resolves once nothing is queued or running (tests, shutdown). */
    idle(): Promise<void> {
      if (!queue.length && !active && !resuming) return Promise.resolve();
      return new Promise((res) => idleWaiters.push(res));
    },

    /** Resumes left-over scans now and every `sweeper.intervalSeconds` (0: only now). The timer keeps no process alive. */
    start(): void {
      if (!scanner || timer) return;
      const tick = () => service.resume().catch((err) => log.warn('could not resume virus scans', { err }));
      void tick();
      if (config.sweeper.intervalSeconds > 0) {
        timer = setInterval(tick, config.sweeper.intervalSeconds * 1000);
        timer.unref();
      }
    },

    /** Stops: nothing new starts, scans in progress are aborted and their claims given back (rescanned at next start). */
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const id of queue.splice(0)) queued.delete(id);
      for (const ctl of running.values()) ctl.abort(new Error('shutting down'));
      await service.idle();
    },

    /** This process's name among the nodes (for logs). */
    holder,
  };
  return service;
}

/** The service built by {@link createScanService}. */
export type ScanService = ReturnType<typeof createScanService>;
