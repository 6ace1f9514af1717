import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';

/** A command-line usage problem; printed with the command's help hint, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Where a command writes; injectable for tests. */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: Record<string, string | undefined>;
  /**
   * A terminal to draw live progress bars on (the process's stderr when it is a TTY); absent when output goes to a
   * file or a pipe, where commands print plain lines instead.
   */
  tty?: TerminalStream;
}

/** A writable terminal stream, as progress bars need it. */
export interface TerminalStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

/** The process's stdout/stderr/env. */
export const processIo = (): CliIo => ({
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
  env: process.env,
  ...(process.stderr.isTTY ? { tty: process.stderr } : {}),
});

/** Flags every command that reads configuration accepts. */
export const CONFIG_FLAGS = {
  config: { type: 'string', short: 'c' },
  'data-dir': { type: 'string' },
  set: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Help text for {@link CONFIG_FLAGS}. */
export const CONFIG_FLAGS_HELP = `  -c, --config <file>   TOML configuration file (or DROPZONE_CONFIG)
      --data-dir <dir>  data directory (dataDir)
      --set key=value   any setting by its dotted name, e.g. --set uploads.urlTtlSeconds=600 (repeatable)
  -h, --help            this help`;

/** Parses `args` with `options`, turning parse errors into UsageError. */
export function parse<O extends ParseArgsConfig['options']>(
  args: string[],
  options: O,
  allowPositionals = false,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: boolean; strict: true }>> {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * Loads configuration: defaults < TOML (`--config` or DROPZONE_CONFIG) < DROPZONE_* env < flags (`extra` dotted keys, then `--set`).
 * `extraNames` names the flag behind each `extra` key for error messages (e.g. `{ 'server.port': '--port' }`).
 * Throws ConfigError naming the key and the source of the bad value.
 */
export function configFrom(
  values: { config?: string; 'data-dir'?: string; set?: string[] },
  io: CliIo,
  extra: Record<string, unknown> = {},
  extraNames: Record<string, string> = {},
): Config {
  const overrides: Record<string, unknown> = { ...extra };
  const overrideNames: Record<string, string> = { ...extraNames };
  if (values['data-dir']) {
    overrides.dataDir = values['data-dir'];
    overrideNames.dataDir = '--data-dir';
  }
  for (const kv of values.set ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new ConfigError(`--set needs key=value, got "${kv}"`, { source: '--set' });
    const key = kv.slice(0, i);
    overrides[key] = kv.slice(i + 1);
    overrideNames[key] = '--set';
  }
  return loadConfig({ file: values.config ?? io.env.DROPZONE_CONFIG, env: io.env, overrides, overrideNames });
}
