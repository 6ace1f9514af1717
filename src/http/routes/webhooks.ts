import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { EVENT_TYPES } from '../../core/events.js';
import type { ApiKey, Webhook, WebhookAttempt } from '../../core/ports/metadata-store.js';
import { ATTEMPTS_DEFAULT, ATTEMPTS_MAX } from '../../core/webhooks.js';
import type { ApiContext } from '../context.js';
import { ok } from '../presenters.js';
import { type RouteDef, defineRoute } from '../route.js';
import { envelope, errorResponse } from '../schemas.js';
import { isoDate } from '../../util/iso-date.js';
import { requireKey } from './dropzones.js';

/** `POST /webhooks` body. */
export const createWebhookBody = z.object({
  url: z.string().min(1).max(2048).describe('http(s) URL the events are POSTed to'),
  events: z.array(z.enum(EVENT_TYPES)).max(EVENT_TYPES.length).optional().describe('event types to receive; empty or absent: all'),
  secret: z.string().min(16).max(256).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional().describe('signing secret; generated when absent'),
});

/** `PATCH /webhooks/:id` body. */
export const updateWebhookBody = createWebhookBody
  .pick({ url: true, events: true })
  .partial()
  .refine((b) => b.url !== undefined || b.events !== undefined, { message: 'needs url or events' });

/** A subscription as shown (never with its secret, except in the create answer). */
export const webhookSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()).describe('empty: every event type'),
  publicId: z.string().nullable().describe('the subscribing key'),
  createdAt: z.string(),
});

/** One delivery attempt in a subscription's log. */
export const webhookAttemptSchema = z.object({
  deliveryId: z.string(),
  eventId: z.string(),
  time: z.string(),
  statusCode: z.number().int().nullable().describe('HTTP status answered; null when none'),
  error: z.string().nullable().describe('why no status was answered (refused target, timeout, connection error)'),
  latencyMs: z.number().int(),
});

const presentWebhook = (w: Webhook, publicId: string | null) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  publicId,
  createdAt: isoDate(w.createdAt),
});

const presentAttempt = (a: WebhookAttempt) => ({
  deliveryId: a.deliveryId,
  eventId: a.eventId,
  time: isoDate(a.at),
  statusCode: a.statusCode,
  error: a.error,
  latencyMs: a.latencyMs,
});

/** Routes of webhook subscriptions; the rules live in core/webhooks.ts. */
export function webhookRoutes(ctx: ApiContext): RouteDef[] {
  const security = ['ApiKeyAuth', 'BearerAuth'] as ('ApiKeyAuth' | 'BearerAuth')[];
  const tags = ['webhooks'];
  /** The publicId of the key owning `w` (the caller's own without a lookup). */
  const ownerOf = async (caller: ApiKey, w: Webhook) => (w.keyId === caller.id ? caller.publicId : ((await ctx.meta.keyById(w.keyId))?.publicId ?? null));
  return [
    defineRoute({
      method: 'get',
      path: '/webhooks',
      operationId: 'listWebhooks',
      summary: "The calling key's webhook subscriptions (every one for the admin key)",
      tags,
      security,
      responses: { 200: { description: 'Subscriptions, oldest first', schema: envelope(z.array(webhookSchema)) }, 404: errorResponse('Webhooks are not enabled') },
      handler: async (c) => {
        const key = requireKey(c.get('principal'));
        const hooks = await ctx.webhooks.list(key);
        const owners = new Map<number, string | null>();
        for (const w of hooks) if (!owners.has(w.keyId)) owners.set(w.keyId, await ownerOf(key, w));
        return c.json(ok(hooks.map((w) => presentWebhook(w, owners.get(w.keyId) ?? null))));
      },
    }),
    defineRoute({
      method: 'post',
      path: '/webhooks',
      operationId: 'createWebhook',
      summary: 'Subscribe the calling key to events; the secret is returned only now',
      description:
        'Receives the chosen events about dropzones and files the key may read (its own, those granted to it; every one for the admin key). ' +
        'The URL must be http(s) and must not resolve to loopback, private, link-local, ULA, CGNAT, multicast or metadata addresses unless the operator allow-listed it.',
      tags,
      security,
      body: createWebhookBody,
      responses: {
        201: { description: 'Created; `secret` is shown only now', schema: envelope(webhookSchema.extend({ secret: z.string() })) },
        400: errorResponse('Invalid body, unknown event type, or a refused target (WEBHOOK_TARGET_REFUSED)'),
        404: errorResponse('Webhooks are not enabled'),
        409: errorResponse('The key holds the most subscriptions allowed'),
      },
      handler: async (c, body) => {
        const key = requireKey(c.get('principal'));
        const hook = await ctx.webhooks.create(key, body);
        return c.json(ok({ ...presentWebhook(hook, key.publicId), secret: hook.secret }), 201);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/webhooks/:id',
      operationId: 'getWebhook',
      summary: 'One subscription (without its secret)',
      tags,
      security,
      responses: { 200: { description: 'The subscription', schema: envelope(webhookSchema) }, 404: errorResponse('Not found or not enabled') },
      handler: async (c) => {
        const key = requireKey(c.get('principal'));
        const hook = await ctx.webhooks.get(key, c.req.param('id')!);
        return c.json(ok(presentWebhook(hook, await ownerOf(key, hook))));
      },
    }),
    defineRoute({
      method: 'patch',
      path: '/webhooks/:id',
      operationId: 'updateWebhook',
      summary: 'Change the URL or event types of a subscription (the secret stays)',
      tags,
      security,
      body: updateWebhookBody,
      responses: {
        200: { description: 'The subscription', schema: envelope(webhookSchema) },
        400: errorResponse('Invalid body, unknown event type, or a refused target (WEBHOOK_TARGET_REFUSED)'),
        404: errorResponse('Not found or not enabled'),
      },
      handler: async (c, body) => {
        const key = requireKey(c.get('principal'));
        const hook = await ctx.webhooks.update(key, c.req.param('id')!, body);
        return c.json(ok(presentWebhook(hook, await ownerOf(key, hook))));
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/webhooks/:id',
      operationId: 'deleteWebhook',
      summary: 'Delete a subscription with its pending deliveries and log',
      tags,
      security,
      responses: { 200: { description: 'Deleted', schema: z.object({ status: z.literal('success'), message: z.string() }) }, 404: errorResponse('Not found or not enabled') },
      handler: async (c) => {
        await ctx.webhooks.remove(requireKey(c.get('principal')), c.req.param('id')!);
        return c.json({ status: 'success' as const, message: 'Webhook deleted.' });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/webhooks/:id/deliveries',
      operationId: 'listWebhookDeliveries',
      summary: `The last delivery attempts of a subscription, newest first (?limit=, default ${ATTEMPTS_DEFAULT}, at most ${ATTEMPTS_MAX})`,
      tags,
      security,
      responses: { 200: { description: 'Attempts', schema: envelope(z.array(webhookAttemptSchema)) }, 404: errorResponse('Not found or not enabled') },
      handler: async (c) => {
        const raw = c.req.query('limit');
        const limit = raw === undefined ? ATTEMPTS_DEFAULT : Number(raw);
        if (!Number.isInteger(limit) || limit < 1 || limit > ATTEMPTS_MAX)
          throw new AppError('VALIDATION', `Invalid query: "limit" must be an integer from 1 to ${ATTEMPTS_MAX}.`, { field: 'limit' });
        const attempts = await ctx.webhooks.attempts(requireKey(c.get('principal')), c.req.param('id')!, limit);
        return c.json(ok(attempts.map(presentAttempt)));
      },
    }),
  ];
}
