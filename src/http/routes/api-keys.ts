import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import type { ApiContext } from '../context.js';
import { ok, presentApiKey } from '../presenters.js';
import { type RouteDef, defineRoute } from '../route.js';
import { apiKeySchema, createApiKeyBody, envelope, errorResponse, transferBody } from '../schemas.js';
import { requireKey } from './dropzones.js';


/** Routes of the API key resource: who am I, create a key, transfer GB-months. */
export function apiKeyRoutes(ctx: ApiContext): RouteDef[] {
  /** SDK 0.2–0.3 put the target's secret in the path, 0.4 its publicId: accept both. */
  const resolveTarget = async (ref: string) => {
    const key = await ctx.keys.byPublicIdOrSecret(ref);
    if (!key) throw new AppError('APIKEY_NOT_FOUND', 'No API key with that publicId.');
    return key.publicId;
  };
  return [
    defineRoute({
      method: 'get',
      path: '/apikeys/me',
      operationId: 'getApiKeyInfo',
      summary: 'The calling key: publicId, GB-months balance, permissions',
      tags: ['apikeys'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      responses: { 200: { description: 'The key', schema: envelope(apiKeySchema) }, 401: errorResponse('Missing or invalid key') },
      handler: (c) => c.json(ok(presentApiKey(requireKey(c.get('principal'))))),
    }),
    defineRoute({
      method: 'post',
      path: '/apikeys',
      operationId: 'createApiKey',
      summary: 'Create a key (apikey.create); the secret is returned once',
      tags: ['apikeys'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      body: createApiKeyBody,
      bodyOptional: true,
      responses: {
        201: { description: 'Created; `key` (also `apiKey`) is the secret, shown only now', schema: envelope(apiKeySchema.extend({ key: z.string(), apiKey: z.string() })) },
        402: errorResponse('Not enough GB-months to fund the new key'),
        403: errorResponse('Missing apikey.create'),
      },
      handler: async (c, body) => {
        const { row, secret } = await ctx.keys.create(requireKey(c.get('principal')), body);
        return c.json(ok({ ...presentApiKey(row), key: secret, apiKey: secret }), 201);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/apikeys/:publicId/transfer-gbmonths',
      operationId: 'transferGbMonths',
      summary: 'Move GB-months from the calling key to another (apikey.create); atomic',
      tags: ['apikeys'],
      security: ['ApiKeyAuth', 'BearerAuth'],
      body: transferBody,
      responses: {
        200: { description: 'Balances after the transfer', schema: envelope(z.object({ from: apiKeySchema, to: apiKeySchema.pick({ publicId: true, gbMonths: true }) })) },
        400: errorResponse('Invalid amount'),
        402: errorResponse('Not enough GB-months'),
        403: errorResponse('Missing apikey.create'),
        404: errorResponse('No such key'),
      },
      handler: async (c, body) => {
        const from = requireKey(c.get('principal'));
        const { from: f, to } = await ctx.keys.transfer(from, await resolveTarget(c.req.param('publicId')!), body.gbMonths);
        const toView = presentApiKey(to);
        return c.json(ok({ from: presentApiKey(f), to: { publicId: toView.publicId, gbMonths: toView.gbMonths } }));
      },
    }),
  ];
}
