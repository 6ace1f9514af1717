import type { ParseArgsConfig } from 'node:util';
import { ApiError, DropzoneClient } from '../client/api.js';
import { runPool } from '../client/transfer.js';
import { type CliIo, UsageError, parse } from './common.js';
import { type TransferView, createRenderer } from './progress.js';

/** Flags of every command that talks to a server (`push`, `pull`, `ls`, `rm`, `share`). */
export const CLIENT_FLAGS = {
  url: { type: 'string' },
  key: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Help text for {@link CLIENT_FLAGS}. */
export const CLIENT_FLAGS_HELP = `      --url <url>       the server, e.g. http://127.0.0.1:3000 (or DROPZONE_URL)
      --key <secret>    an API key (or DROPZONE_API_KEY, which keeps it out of shell history and process lists)
  -h, --help            this help`;

/** The server URL and API key from the flags, else from DROPZONE_URL / DROPZONE_API_KEY. */
export function connection(values: { url?: string; key?: string }, io: CliIo): { url?: string; key?: string } {
  return { url: values.url || io.env.DROPZONE_URL || undefined, key: values.key || io.env.DROPZONE_API_KEY || undefined };
}

/** A client for the API; a missing URL or key is a usage error naming the flag and the variable. */
export function clientFrom(values: { url?: string; key?: string }, io: CliIo): DropzoneClient {
  const { url, key } = connection(values, io);
  if (!url) throw new UsageError('no server: pass --url <url> or set DROPZONE_URL');
  if (!key) throw new UsageError('no API key: pass --key <secret> or set DROPZONE_API_KEY');
  try {
    return new DropzoneClient({ url, key });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A message for the user from any failure of a transfer or an API call. */
export function problem(e: unknown): string {
  if (e instanceof ApiError) return e.status === 401 ? `${e.message} (check --key or DROPZONE_API_KEY)` : e.message;
  return (e as Error)?.message ?? String(e);
}

/** Parses `--parallel`: an integer from 1 to 16. */
export function parallelism(value: string | undefined): number {
  if (value === undefined) return 3;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 16) throw new UsageError(`--parallel must be an integer from 1 to 16, got "${value}"`);
  return n;
}

/** Dropzone and file ids are base64url: about one in 32 starts with `-` and would read as an option. */
const ID_LIKE = /^-[A-Za-z0-9_-]{15,}$/;

/**
 * {@link parse} for client commands, where ids may start with `-`: an option's value is taken as the next argument
 * whatever it looks like (`--to -Xy…`), and an id-like argument that names no option is a positional.
 */
export function parseClientArgs<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O): ReturnType<typeof parse<O>> {
  const byName = new Map<string, { long: string; type: string }>();
  for (const [name, o] of Object.entries(options)) {
    byName.set(`--${name}`, { long: name, type: o.type });
    if (o.short) byName.set(`-${o.short}`, { long: name, type: o.type });
  }
  const flags: string[] = [];
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    const opt = byName.get(a);
    if (opt?.type === 'string' && i + 1 < args.length) flags.push(`--${opt.long}=${args[++i]}`);
    else if (opt || (a.startsWith('-') && !ID_LIKE.test(a))) flags.push(a);
    else positionals.push(a);
  }
  return parse(positionals.length ? [...flags, '--', ...positionals] : flags, options, true);
}

/** Wraps a client command so that a failed API call ends it with {@link problem}'s message (exit 1 through main). */
export function clientCommand(fn: (args: string[], io: CliIo) => Promise<number>): (args: string[], io: CliIo) => Promise<number> {
  return async (args, io) => {
    try {
      return await fn(args, io);
    } catch (e) {
      if (e instanceof ApiError) throw new Error(problem(e));
      throw e;
    }
  };
}

/**
 * Runs `transfer` for every item, `parallel` at a time, each with its own progress view (labelled `labelOf(item, i)`),
 * so a failing item is reported on its own line and the others go on. Prints the failure summary and resolves to the
 * exit code: 0 when all succeeded, 1 when any failed. `verb` is the past tense the renderer and summary use.
 */
export async function transferAll<T>(
  io: CliIo,
  items: T[],
  opts: { parallel: number; verb: 'uploaded' | 'downloaded'; labelOf: (item: T, index: number) => string },
  transfer: (item: T, index: number, view: TransferView) => Promise<string>,
): Promise<number> {
  const progress = createRenderer(io, opts.verb);
  let results;
  try {
    results = await runPool(items, opts.parallel, async (item, i) => {
      const view = progress.item(opts.labelOf(item, i));
      try {
        view.succeed(await transfer(item, i, view));
      } catch (e) {
        view.fail(problem(e));
        throw e;
      }
    });
  } finally {
    progress.stop();
  }
  const failed = results.filter((r) => r.status === 'rejected').length;
  if (failed === 0) return 0;
  io.err(`${failed} of ${items.length} file(s) failed; ${items.length - failed} ${opts.verb}.`);
  return 1;
}
