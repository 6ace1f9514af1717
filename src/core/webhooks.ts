import { createHmac } from 'node:crypto';
import type { CoreDeps } from './deps.js';
import { AppError } from './errors.js';
import { EVENT_TYPES, eventBody, eventViewFor } from './events.js';
import { yieldToEventLoop } from './file-batches.js';
import { randomId } from './ids.js';
import type { ApiKey, StoredEvent, Webhook, WebhookAttempt, WebhookDelivery } from './ports/metadata-store.js';

/** The lease the dispatcher runs under: one node delivers at a time. */
export const WEBHOOKS_LEASE = 'webhooks';
/** Events fanned out per transaction. */
const FANOUT_BATCH = 100;
/** Due deliveries fetched at once, and attempted at once of them. */
const DELIVERY_BATCH = 20;
const DELIVERY_CONCURRENCY = 4;
/** Backoff after the n-th failed attempt: 5 s × 2^(n-1), at most an hour (until `webhooks.retryForSeconds`). */
const BACKOFF_BASE_MS = 5_000;
const BACKOFF_MAX_MS = 3_600_000;
/** Old rows are pruned at most this often. */
const PRUNE_EVERY_MS = 10 * 60_000;
/** Attempts `GET /webhooks/:id/deliveries` answers by default and at most. */
export const ATTEMPTS_DEFAULT = 50;
export const ATTEMPTS_MAX = 200;

/**
 * How webhook requests leave the server (implemented in `src/webhooks/transport.ts`): the target policy (scheme, and
 * addresses refused unless allow-listed, checked again at connect time) and the POST itself.
 */
export interface WebhookTransport {
  /** Throws WEBHOOK_TARGET_REFUSED naming the problem when `url` may not be a target now. */
  checkTarget(url: string): Promise<void>;
  /** POSTs `body`; resolves to the status answered, rejects (with a message fit for the log) on refusal, timeout or error. */
  post(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number }>;
}

/** What `POST /webhooks` accepts. */
export interface CreateWebhookInput {
  url: string;
  /** Event types to receive; empty or absent: all. */
  events?: string[];
  /** The signing secret; generated when absent. */
  secret?: string;
}

/** The distinct event types of `list`; VALIDATION naming the first unknown one. */
function eventTypes(list: string[] | undefined): string[] {
  const events = [...new Set(list ?? [])];
  const known: readonly string[] = EVENT_TYPES;
  for (const e of events)
    if (!known.includes(e)) throw new AppError('VALIDATION', `Unknown event type "${e}". Valid: ${EVENT_TYPES.join(', ')}.`, { field: 'events', valid: EVENT_TYPES });
  return events;
}

/** A new subscription secret (`whsec_…`, 256 bits). */
export const newWebhookSecret = () => `whsec_${randomId(32)}`;

/**
 * The signature header value of a delivery: `v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under the
 * subscription's secret (`timestamp` in Unix seconds, as sent in `Dropzone-Webhook-Timestamp`).
 */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`;
}

/**
 * Webhook subscriptions of API keys. Every active key may subscribe (no key permission: a subscription receives only
 * events about dropzones and files its key can already read, see `src/core/events.ts`), up to `webhooks.maxPerKey`;
 * a key sees and manages its own subscriptions, the admin key every one. Off unless `webhooks.enabled`.
 */
export function createWebhookService(deps: Pick<CoreDeps, 'config' | 'meta' | 'clock'>, transport: WebhookTransport) {
  const { config, meta, clock } = deps;
  const notFound = () => new AppError('WEBHOOK_NOT_FOUND');
  const requireEnabled = () => {
    if (!config.webhooks.enabled) throw new AppError('WEBHOOKS_DISABLED');
  };

  const service = {
    /** The caller's subscriptions; every subscription for the admin key. */
    async list(key: ApiKey): Promise<Webhook[]> {
      requireEnabled();
      return meta.listWebhooks(key.isAdmin ? undefined : key.id);
    },

    /** One subscription the caller may see (its own; any for the admin); WEBHOOK_NOT_FOUND otherwise. */
    async get(key: ApiKey, id: string): Promise<Webhook> {
      requireEnabled();
      const hook = await meta.webhookById(id);
      if (!hook || (!key.isAdmin && hook.keyId !== key.id)) throw notFound();
      return hook;
    },

    /**
     * Subscribes the calling key. Refuses unknown event types (VALIDATION), a URL that is no allowed target
     * (WEBHOOK_TARGET_REFUSED) and a key already holding `webhooks.maxPerKey` subscriptions (TOO_MANY_WEBHOOKS).
     * Answers the subscription with its secret (shown only in this answer).
     */
    async create(key: ApiKey, input: CreateWebhookInput): Promise<Webhook> {
      requireEnabled();
      const events = eventTypes(input.events);
      await transport.checkTarget(input.url);
      return meta.transaction(async (tx) => {
        if ((await tx.listWebhooks(key.id)).length >= config.webhooks.maxPerKey)
          throw new AppError('TOO_MANY_WEBHOOKS', undefined, { limit: config.webhooks.maxPerKey });
        const hook: Webhook = { id: `wh_${randomId(12)}`, keyId: key.id, url: input.url, events, secret: input.secret ?? newWebhookSecret(), createdAt: clock.now() };
        await tx.insertWebhook(hook);
        return hook;
      });
    },

    /**
     * Changes the URL and/or event types of a subscription the caller may see (the same checks as {@link create});
     * pending deliveries go to the new URL. The secret stays. Answers the subscription.
     */
    async update(key: ApiKey, id: string, input: { url?: string; events?: string[] }): Promise<Webhook> {
      const hook = await service.get(key, id);
      const events = input.events === undefined ? hook.events : eventTypes(input.events);
      if (input.url !== undefined) await transport.checkTarget(input.url);
      const change = { url: input.url ?? hook.url, events };
      if (!(await meta.updateWebhook(hook.id, change))) throw notFound();
      return { ...hook, ...change };
    },

    /** Deletes a subscription the caller may see, with its pending deliveries and its log. */
    async remove(key: ApiKey, id: string): Promise<void> {
      const hook = await service.get(key, id);
      await meta.deleteWebhook(hook.id);
    },

    /** The last `limit` delivery attempts of a subscription the caller may see, newest first. */
    async attempts(key: ApiKey, id: string, limit = ATTEMPTS_DEFAULT): Promise<WebhookAttempt[]> {
      const hook = await service.get(key, id);
      return meta.webhookAttempts(hook.id, Math.min(Math.max(1, limit), ATTEMPTS_MAX));
    },
  };
  return service;
}

/** The service built by {@link createWebhookService}. */
export type WebhookService = ReturnType<typeof createWebhookService>;

/** What one dispatcher pass did. */
export interface DispatchResult {
  /** Events turned into deliveries. */
  events: number;
  /** Delivery attempts made. */
  attempts: number;
  /** Rows pruned. */
  pruned: number;
}

/**
 * Delivers the outbox: turns each new event into one delivery per subscription that may receive it (type filter,
 * key active and allowed to see it, see {@link eventViewFor}) with the exact body every attempt sends, then POSTs due
 * deliveries, signed, and records every attempt. At least once: a delivery is marked done only after a 2xx answer;
 * failures are retried with exponential backoff until `webhooks.retryForSeconds` after the delivery was created.
 * Runs only while this process holds the `webhooks` lease (one node at a time); everything it needs is in the
 * metadata store, so a restart resumes where it stopped. Never runs inside a request: {@link wake} schedules a pass.
 */
export function createWebhookDispatcher(deps: Pick<CoreDeps, 'config' | 'meta' | 'clock' | 'log'>, transport: WebhookTransport) {
  const { config, meta, clock, log } = deps;
  const holder = `webhooks-${process.pid}-${randomId(9)}`;
  const leaseMs = Math.max(3 * config.webhooks.pollIntervalSeconds, 60) * 1000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<DispatchResult | undefined> | undefined;
  let again = false;
  let started = false;
  let lastPrune = -Infinity;

  const holdsLease = () => meta.acquireLease(WEBHOOKS_LEASE, holder, clock.now(), leaseMs);

  /** Creates the deliveries of up to {@link FANOUT_BATCH} new events in one transaction; answers how many events. */
  const fanOut = async (): Promise<number> => {
    const batch = await meta.undispatchedEvents(FANOUT_BATCH);
    if (batch.length === 0) return 0;
    const hooks = await meta.listWebhooks();
    const keys = new Map<number, ApiKey | undefined>();
    for (const h of hooks) if (!keys.has(h.keyId)) keys.set(h.keyId, await meta.keyById(h.keyId));
    await meta.transaction(async (tx) => {
      const now = clock.now();
      for (const event of batch) {
        for (const hook of hooks) {
          const key = keys.get(hook.keyId);
          if (!key || key.revokedAt !== null || (hook.events.length > 0 && !hook.events.includes(event.type))) continue;
          const view = eventViewFor(event, key);
          if (!view) continue;
          await tx.insertDelivery(newDelivery(hook, event, JSON.stringify(eventBody(event, view)), now));
        }
        await tx.markEventDispatched(event.seq, now);
      }
    });
    return batch.length;
  };

  /** One attempt of `d` to `hook`; records it with the delivery's next state. */
  const attempt = async (d: WebhookDelivery, hook: Webhook): Promise<void> => {
    const at = clock.now();
    const timestamp = Math.floor(at / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'DropzoneServer-Webhooks',
      'dropzone-webhook-id': d.eventId,
      'dropzone-webhook-timestamp': String(timestamp),
      'dropzone-webhook-signature': webhookSignature(hook.secret, timestamp, d.body),
    };
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      statusCode = (await transport.post(hook.url, d.body, headers, config.webhooks.timeoutMs)).status;
    } catch (err) {
      error = (err as Error)?.message ?? String(err);
    }
    const latencyMs = Math.round(performance.now() - started);
    const attempts = d.attempts + 1;
    const ok = statusCode !== null && statusCode >= 200 && statusCode < 300;
    const next = at + Math.min(BACKOFF_BASE_MS * 2 ** (attempts - 1), BACKOFF_MAX_MS);
    const status = ok ? 'delivered' : next > d.createdAt + config.webhooks.retryForSeconds * 1000 ? 'failed' : 'pending';
    if (!ok) log.info('webhook delivery failed', { statusCode, error, attempts, final: status === 'failed' });
    await meta.recordAttempt(
      { deliveryId: d.id, webhookId: hook.id, eventId: d.eventId, at, statusCode, error: statusCode === null ? error : null, latencyMs },
      { status, attempts, nextAttemptAt: ok ? d.nextAttemptAt : next },
    );
  };

  /** Ends `d` as failed without sending it, logging `why` as its last attempt. */
  const giveUp = (d: WebhookDelivery, hook: Webhook, why: string) =>
    meta.recordAttempt(
      { deliveryId: d.id, webhookId: hook.id, eventId: d.eventId, at: clock.now(), statusCode: null, error: why, latencyMs: 0 },
      { status: 'failed', attempts: d.attempts, nextAttemptAt: d.nextAttemptAt },
    );

  /**
   * Attempts the deliveries due now: subscriptions {@link DELIVERY_CONCURRENCY} at a time, the deliveries of one
   * subscription one after another in event order (a retried one may arrive after later events). Answers how many
   * attempts were made.
   */
  const deliverDue = async (): Promise<number> => {
    let done = 0;
    const hooks = new Map<string, Webhook | undefined>();
    for (;;) {
      const due = await meta.dueDeliveries(clock.now(), DELIVERY_BATCH);
      const bySubscription = new Map<string, WebhookDelivery[]>();
      for (const d of due) bySubscription.set(d.webhookId, [...(bySubscription.get(d.webhookId) ?? []), d]);
      const groups = [...bySubscription.values()];
      for (let i = 0; i < groups.length; i += DELIVERY_CONCURRENCY) {
        await Promise.all(
          groups.slice(i, i + DELIVERY_CONCURRENCY).map(async (group) => {
            const id = group[0]!.webhookId;
            if (!hooks.has(id)) hooks.set(id, await meta.webhookById(id));
            const hook = hooks.get(id);
            if (!hook) return; // deleted meanwhile: its deliveries went with it
            const key = await meta.keyById(hook.keyId);
            for (const d of group) {
              // a key revoked since the event was fanned out receives nothing more
              if (!key || key.revokedAt !== null) await giveUp(d, hook, 'not sent: the subscribing API key was revoked');
              else await attempt(d, hook);
              done++;
            }
          }),
        );
      }
      if (due.length < DELIVERY_BATCH || !(await holdsLease())) return done;
      await yieldToEventLoop();
    }
  };

  /** One pass: fan out, deliver, prune now and then; undefined when another node holds the lease. */
  const pass = async (): Promise<DispatchResult | undefined> => {
    if (!(await holdsLease())) return undefined;
    let events = 0;
    for (let n = await fanOut(); n > 0; n = n === FANOUT_BATCH ? await fanOut() : 0) {
      events += n;
      await yieldToEventLoop();
    }
    const attempts = await deliverDue();
    let pruned = 0;
    if (clock.now() - lastPrune >= PRUNE_EVERY_MS) {
      lastPrune = clock.now();
      pruned = await meta.pruneWebhookData(clock.now() - config.webhooks.retentionSeconds * 1000);
    }
    return { events, attempts, pruned };
  };

  /** Runs passes until no wake-up arrived during the last one. */
  const loop = async (): Promise<DispatchResult | undefined> => {
    let result: DispatchResult | undefined;
    do {
      again = false;
      result = await pass();
    } while (again);
    return result;
  };

  const dispatcher = {
    /**
     * Runs a pass now (after the one in progress, if any) and resolves with what it did; undefined when another node
     * holds the lease. For tests and tools; the running server uses {@link wake} and its timer.
     */
    async runOnce(): Promise<DispatchResult | undefined> {
      await running?.catch(() => undefined);
      const p = pass();
      const tracked: Promise<DispatchResult | undefined> = p.finally(() => {
        if (running !== tracked) return;
        running = undefined;
        // a wake-up that arrived meanwhile found this pass running: its events get a pass of their own
        if (again) dispatcher.wake();
      });
      running = tracked;
      return p;
    },

    /** Schedules a pass soon (new events were committed); never waits, never throws. No-op until started. */
    wake(): void {
      if (!started) return;
      if (running) {
        again = true;
        return;
      }
      // the pass starts on a later turn of the event loop: nothing of it runs in the committing request's flow
      const p = new Promise<void>((resolve) => setImmediate(resolve)).then(loop);
      running = p;
      p.catch((err) => log.error('webhook dispatch failed', { err })).finally(() => {
        if (running === p) running = undefined;
      });
    },

    /**
     * Starts the poll timer (`webhooks.pollIntervalSeconds`) when `webhooks.enabled`, and with it the wake-ups after
     * commits; the timer does not keep the process alive.
     */
    start(): void {
      if (started || !config.webhooks.enabled) return;
      started = true;
      timer = setInterval(() => dispatcher.wake(), config.webhooks.pollIntervalSeconds * 1000);
      timer.unref();
      dispatcher.wake();
    },

    /** Stops the timer, waits for a pass in progress and hands the lease over. */
    async stop(): Promise<void> {
      if (!started) return;
      started = false;
      if (timer) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
      await meta.releaseLease(WEBHOOKS_LEASE, holder).catch((err) => log.warn('could not release the webhooks lease', { err }));
    },
  };
  return dispatcher;
}

/** The dispatcher built by {@link createWebhookDispatcher}. */
export type WebhookDispatcher = ReturnType<typeof createWebhookDispatcher>;

/**
 * A pending delivery of `event` to `hook`, due now. Its id starts with the event's outbox position, so deliveries due at
 * the same time are listed (and sent) in event order.
 */
function newDelivery(hook: Webhook, event: StoredEvent, body: string, now: number): Omit<WebhookDelivery, 'updatedAt'> {
  return { id: `whd_${String(event.seq).padStart(15, '0')}_${randomId(9)}`, webhookId: hook.id, eventId: event.id, body, status: 'pending', attempts: 0, nextAttemptAt: now, createdAt: now };
}
