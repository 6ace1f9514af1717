import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import type { MiddlewareHandler } from 'hono';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BlobOperation } from '../blobs/observed-store.js';
import type { CoreObserver } from '../core/deps.js';
import type { MetadataOps } from '../core/ports/metadata-store.js';

/** Methods kept as label values; anything else is counted as `other` (label values must stay a small set). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const BLOB_OPERATIONS: readonly BlobOperation[] = ['put', 'get', 'stat', 'delete', 'list', 'presignPut', 'presignGet', 'check', 'multipart'];
const FILE_STATUSES = ['uploaded', 'pending'] as const;
/** Request durations span JSON calls (milliseconds) to uploads of gigabytes (minutes). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

/**
 * The server's Prometheus metrics, on a registry of their own (never prom-client's global one: one process may run
 * many servers). Hooks feed them: an HTTP middleware, an upload middleware, the core observer, the blob store
 * observer and the listening socket; gauges about stored data are read from the database at scrape time.
 */
export interface Metrics {
  /** Content-Type of {@link scrape}'s text. */
  readonly contentType: string;
  /** Counts every request by method, route pattern (`c.req.routePath`, never the raw path) and status, with its latency. */
  readonly requests: MiddlewareHandler;
  /** Wraps the local store's upload endpoint: an upload body is in flight while its handler runs. */
  readonly uploadsInFlight: MiddlewareHandler;
  /** Domain events (confirms, sweeps, garbage collection). */
  readonly observer: CoreObserver;
  /** Counts a failed blob store operation (see `observeBlobStore`). */
  blobStoreError(operation: BlobOperation): void;
  /** Counts bytes received and sent on the server's connections (headers and bodies, every route). */
  trackConnections(server: Server): void;
  /** Reads the database gauges and renders every metric in the Prometheus text format. */
  scrape(): Promise<string>;
}

/** Builds the metrics of one server; `store` answers the storage gauges at scrape time (two aggregate queries). */
export function createMetrics(store: Pick<MetadataOps, 'fileTotals' | 'dropzoneTotals'>): Metrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const requestLabels = ['method', 'route', 'status'] as const;
  const requests = new Counter({
    name: 'dropzone_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status.',
    labelNames: requestLabels,
    registers,
  });
  const duration = new Histogram({
    name: 'dropzone_http_request_duration_seconds',
    help: 'Time from receiving a request until its response is ready to send (a streamed download body is not included; an upload body is), by method, route pattern and status.',
    labelNames: requestLabels,
    buckets: DURATION_BUCKETS,
    registers,
  });

  // Bytes on the wire: each connection's byte counts, added up at scrape time (no work per request).
  const live = new Set<Socket>();
  let closedRead = 0;
  let closedWritten = 0;
  const wireCounter = (name: string, help: string, bytes: (s: Socket) => number, closed: () => number) => {
    let reported = 0;
    return new Counter({
      name,
      help,
      registers,
      collect() {
        let total = closed();
        for (const s of live) total += bytes(s);
        if (total > reported) this.inc(total - reported);
        reported = Math.max(reported, total);
      },
    });
  };
  wireCounter('dropzone_http_received_bytes_total', 'Bytes received on HTTP connections (request lines, headers and bodies; uploads through this server included).', (s) => s.bytesRead, () => closedRead);
  wireCounter('dropzone_http_sent_bytes_total', 'Bytes sent on HTTP connections (status lines, headers and bodies; downloads through this server included).', (s) => s.bytesWritten, () => closedWritten);

  const inFlight = new Gauge({
    name: 'dropzone_uploads_in_flight',
    help: 'Upload bodies this server is receiving now (local backend; with S3, clients upload straight to the bucket).',
    registers,
  });

  const files = new Gauge({ name: 'dropzone_files', help: 'Files by status: uploaded (confirmed) or pending (space reserved, not yet confirmed).', labelNames: ['status'], registers });
  const fileBytes = new Gauge({ name: 'dropzone_file_bytes', help: 'Bytes of files by status: uploaded (stored) or pending (reserved).', labelNames: ['status'], registers });
  const dropzones = new Gauge({ name: 'dropzone_dropzones', help: 'Dropzones that exist (expired ones until the sweeper removes them).', registers });
  const capacity = new Gauge({ name: 'dropzone_dropzone_capacity_bytes', help: 'Sum of the sizes of all dropzones, bytes.', registers });

  const confirmed = new Counter({ name: 'dropzone_uploads_confirmed_total', help: 'Uploads confirmed (pending files that became uploaded).', registers });
  const confirmedBytes = new Counter({ name: 'dropzone_uploads_confirmed_bytes_total', help: 'Bytes of confirmed uploads.', registers });
  const sweeps = new Counter({ name: 'dropzone_sweeper_runs_total', help: 'Sweeper runs by result (ok, error).', labelNames: ['result'], registers });
  const removed = new Counter({
    name: 'dropzone_sweeper_removed_total',
    help: 'Items removed by the sweeper and garbage collection: expired_dropzones, stale_uploads, blobs, orphan_blobs.',
    labelNames: ['item'],
    registers,
  });
  const blobErrors = new Counter({ name: 'dropzone_blob_store_errors_total', help: 'Failed blob store operations, by operation.', labelNames: ['operation'], registers });

  // Series that exist from the start, so rate() and absent() see them before the first event.
  for (const result of ['ok', 'error']) sweeps.inc({ result }, 0);
  for (const item of ['expired_dropzones', 'stale_uploads', 'blobs', 'orphan_blobs']) removed.inc({ item }, 0);
  for (const operation of BLOB_OPERATIONS) blobErrors.inc({ operation }, 0);

  return {
    contentType: registry.contentType,

    async requests(c, next) {
      const start = performance.now();
      await next();
      const labels = { method: METHODS.has(c.req.method) ? c.req.method : 'other', route: c.req.routePath, status: String(c.res.status) };
      requests.inc(labels);
      duration.observe(labels, (performance.now() - start) / 1000);
    },

    async uploadsInFlight(c, next) {
      if (c.req.method !== 'PUT') return next();
      inFlight.inc();
      try {
        await next();
      } finally {
        inFlight.dec();
      }
    },

    observer: {
      uploadConfirmed(size) {
        confirmed.inc();
        confirmedBytes.inc(size);
      },
      sweepFinished(r) {
        sweeps.inc({ result: 'ok' });
        removed.inc({ item: 'expired_dropzones' }, r.expiredDropzones);
        removed.inc({ item: 'stale_uploads' }, r.stalePending);
        removed.inc({ item: 'blobs' }, r.blobsDeleted);
      },
      sweepFailed() {
        sweeps.inc({ result: 'error' });
      },
      gcFinished(r) {
        removed.inc({ item: 'orphan_blobs' }, r.orphansDeleted);
      },
    },

    blobStoreError(operation) {
      blobErrors.inc({ operation });
    },

    trackConnections(server) {
      server.on('connection', (socket: Socket) => {
        live.add(socket);
        socket.once('close', () => {
          live.delete(socket);
          closedRead += socket.bytesRead;
          closedWritten += socket.bytesWritten;
        });
      });
    },

    async scrape() {
      const byStatus = new Map((await store.fileTotals()).map((r) => [r.status, r]));
      for (const status of FILE_STATUSES) {
        files.set({ status }, byStatus.get(status)?.files ?? 0);
        fileBytes.set({ status }, byStatus.get(status)?.bytes ?? 0);
      }
      const dz = await store.dropzoneTotals();
      dropzones.set(dz.dropzones);
      capacity.set(dz.capacity);
      return registry.metrics();
    },
  };
}
