import { readEnvelope } from '../client/api.js';
import { CLIENT_FLAGS, CLIENT_FLAGS_HELP, clientFrom, parseClientArgs } from './client-common.js';
import { type CliIo, UsageError } from './common.js';

/** Help of `dropzone webhooks`. */
export const WEBHOOKS_HELP = `Usage: dropzone webhooks <subcommand> [options]

Manages the webhook subscriptions of the API key (a client command: the server checks the target, generates the
secret and keeps it; the admin key sees and removes every key's subscriptions). The server needs webhooks.enabled.

Subcommands:
  list                           the key's subscriptions (id, url, events)
  add <url> [--events <a,b>] [--secret <s>]
                                 subscribe; prints the id and the signing secret (shown only now)
  rm <id>                        delete a subscription with its pending deliveries
  deliveries <id> [--limit <n>]  the last delivery attempts (time, status or error, latency)

Options:
      --events <list>   comma-separated event types (default: all), e.g. file.uploaded,file.deleted
      --secret <s>      use this signing secret instead of a generated one (16+ printable characters)
      --limit <n>       attempts to show (1-200, default 50)
      --json            print the API's JSON
${CLIENT_FLAGS_HELP}`;

interface WebhookView {
  id: string;
  url: string;
  events: string[];
  publicId: string | null;
  createdAt: string;
  secret?: string;
}
interface AttemptView {
  deliveryId: string;
  eventId: string;
  time: string;
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
}

/** `dropzone webhooks …`: exit 0, 1 when the server refuses, 2 on usage errors. */
export async function webhooksCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseClientArgs(args, {
    ...CLIENT_FLAGS,
    events: { type: 'string' },
    secret: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  });
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    io.out(WEBHOOKS_HELP);
    return values.help ? 0 : 2;
  }
  const one = (what: string) => {
    if (rest.length !== 1) throw new UsageError(`webhooks ${sub} needs exactly one ${what}`);
    return rest[0]!;
  };
  const print = (data: unknown) => io.out(JSON.stringify(data, null, 2));
  switch (sub) {
    case 'list': {
      if (rest.length) throw new UsageError('webhooks list takes no arguments');
      const client = clientFrom(values, io);
      const hooks = await readEnvelope<WebhookView[]>(await client.request('GET', '/webhooks'), 'listing webhooks');
      if (values.json) print(hooks);
      else if (hooks.length === 0) io.out('No webhook subscriptions.');
      else for (const h of hooks) io.out([h.id, h.url, h.events.join(',') || 'all events', h.publicId ?? ''].join('\t'));
      return 0;
    }
    case 'add': {
      const url = one('URL');
      const events = values.events?.split(',').map((e) => e.trim()).filter(Boolean);
      const client = clientFrom(values, io);
      const body = { url, ...(events ? { events } : {}), ...(values.secret ? { secret: values.secret } : {}) };
      const hook = await readEnvelope<WebhookView>(await client.request('POST', '/webhooks', { body }), 'creating the webhook');
      if (values.json) print(hook);
      else io.out(`id:     ${hook.id}\nsecret: ${hook.secret}\n(the secret is shown only now: verify signatures with it)`);
      return 0;
    }
    case 'rm': {
      const id = one('subscription id');
      const client = clientFrom(values, io);
      await readEnvelope<unknown>(await client.request('DELETE', `/webhooks/${encodeURIComponent(id)}`), 'deleting the webhook');
      io.out(`Deleted ${id}.`);
      return 0;
    }
    case 'deliveries': {
      const id = one('subscription id');
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 200)) throw new UsageError(`--limit must be an integer from 1 to 200, got "${values.limit}"`);
      const client = clientFrom(values, io);
      const path = `/webhooks/${encodeURIComponent(id)}/deliveries${limit ? `?limit=${limit}` : ''}`;
      const attempts = await readEnvelope<AttemptView[]>(await client.request('GET', path), 'listing deliveries');
      if (values.json) print(attempts);
      else if (attempts.length === 0) io.out('No delivery attempts yet.');
      else for (const a of attempts) io.out([a.time, a.statusCode ?? `error: ${a.error}`, `${a.latencyMs} ms`, a.eventId].join('\t'));
      return 0;
    }
    default:
      throw new UsageError(`unknown subcommand "webhooks ${sub}"`);
  }
}
