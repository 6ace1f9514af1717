import type { BlobStore } from './blobs/blob-store.js';
import { observeBlobStore } from './blobs/observed-store.js';
import type { Config } from './config/schema.js';
import { type ApiKeyService, createApiKeyService } from './core/api-keys.js';
import type { AdjustableClock } from './core/clock.js';
import type { CoreDeps, SpaceReserve } from './core/deps.js';
import { type DropzoneService, createDropzoneService } from './core/dropzones.js';
import { type FileService, createFileService } from './core/files.js';
import { type MultipartService, createMultipartService } from './core/multipart.js';
import { type GrantService, createGrantService } from './core/grants.js';
import { type PageService, createPageService } from './core/page.js';
import type { MetadataStore } from './core/ports/metadata-store.js';
import { type ScanService, createScanService } from './core/scan.js';
import { type Sweeper, createSweeper } from './core/sweeper.js';
import { createScanner } from './scan/index.js';
import { type WebhookDispatcher, type WebhookService, type WebhookTransport, createWebhookDispatcher, createWebhookService } from './core/webhooks.js';
import { createHttpTransport } from './webhooks/transport.js';
import type { Logger } from './log/logger.js';
import { type Metrics, createMetrics } from './metrics/metrics.js';

/** What {@link createContext} is built from. The caller opened them and owns them (closes them after the context). */
export interface ContextDeps {
  config: Config;
  /** The metadata store (SQLite or PostgreSQL), opened and migrated. */
  meta: MetadataStore;
  blobs: BlobStore;
  clock: AdjustableClock;
  log: Logger;
  /** The data directory's space reserve (released so deletions commit on a full disk); none when omitted. */
  reserve?: SpaceReserve;
  /** How webhook requests leave the server; default: node:http(s) under `webhooks.allowTargets`. */
  webhookTransport?: WebhookTransport;
}

/**
 * The composition root's product: configuration, stores and every domain service, built once per process and shared
 * by the HTTP app, the sweeper and CLI commands. Nothing in it depends on HTTP.
 */
export interface AppContext extends CoreDeps {
  /** The process's clock (adjustable: fixture mode and tests move it). */
  clock: AdjustableClock;
  keys: ApiKeyService;
  dropzones: DropzoneService;
  files: FileService;
  /** Multipart uploads of pending files. */
  multipart: MultipartService;
  grants: GrantService;
  /** The public dropzone page: what a link holder may do. */
  page: PageService;
  sweeper: Sweeper;
  /** The virus-scan step (`scan.enabled`); its queue is started by whoever runs the server. */
  scan: ScanService;
  /** Webhook subscriptions (`/webhooks`). */
  webhooks: WebhookService;
  /** Delivers the events outbox (started by whoever runs the server, like the sweeper). */
  webhookDispatcher: WebhookDispatcher;
  /** The Prometheus metrics when `metrics.enabled`. */
  metrics?: Metrics;
}

/**
 * Builds config → stores → services → sweeper, once. No I/O: nothing is opened, read or started here (the sweeper is
 * started by whoever runs it). With `metrics.enabled`, blob-store errors and domain events are counted.
 */
export function createContext(deps: ContextDeps): AppContext {
  const { config, log, clock, reserve, meta } = deps;
  const metrics = config.metrics.enabled ? createMetrics(meta) : undefined;
  const blobs = metrics ? observeBlobStore(deps.blobs, (op) => metrics.blobStoreError(op)) : deps.blobs;
  // the dispatcher is built from the same deps: a late-bound wake-up lets core call it after commits
  let wake = () => {};
  const core: CoreDeps = { config, meta, blobs, clock, log, reserve, observer: metrics?.observer, onEventsCommitted: () => wake() };
  const transport = deps.webhookTransport ?? createHttpTransport(config.webhooks.allowTargets);
  const webhookDispatcher = createWebhookDispatcher(core, transport);
  wake = () => webhookDispatcher.wake();
  const dropzones = createDropzoneService(core);
  const scan = createScanService(core, createScanner(config));
  const files = createFileService(core, scan);
  const keys = createApiKeyService(core);
  const multipart = createMultipartService(core, files);
  return {
    ...core,
    clock,
    keys,
    dropzones,
    files,
    multipart,
    grants: createGrantService(core, keys),
    page: createPageService(core, files, multipart),
    sweeper: createSweeper(core, { dropzones, files }),
    scan,
    webhooks: createWebhookService(core, transport),
    webhookDispatcher,
    metrics,
  };
}
