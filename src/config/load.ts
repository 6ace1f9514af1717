import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { configSchema, type Config } from './schema.js';

/** Thrown when configuration cannot be read or is invalid; `message` names the key, where it came from and the reason. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  /** The dotted setting (e.g. `server.port`) or variable the problem is about, when there is one. */
  readonly key?: string;
  /** Where the bad value came from, e.g. `config.toml`, `DROPZONE_SERVER_PORT`, `--set`; undefined for defaults. */
  readonly source?: string;
  constructor(message: string, details: { key?: string; source?: string } = {}) {
    super(message);
    this.key = details.key;
    this.source = details.source;
  }
}

/** Where the configuration comes from; every part is optional. */
export interface ConfigSources {
  /** Path of a TOML file; a missing file given explicitly is an error. */
  file?: string;
  /** Environment (normally `process.env`); only `DROPZONE_*` names are read. */
  env?: Record<string, string | undefined>;
  /** Already-structured overrides, e.g. from command-line flags: `{ server: { port: 0 } }` or dotted keys `{ 'server.port': '0' }`. */
  overrides?: Record<string, unknown>;
  /**
   * How to name each override in error messages, by its key in `overrides` (e.g. `{ 'server.port': '--port' }`);
   * keys not listed are called `overridesSource`.
   */
  overrideNames?: Record<string, string>;
  /** Name of the overrides layer in error messages (default `--set`). */
  overridesSource?: string;
}

/**
 * `DROPZONE_*` variables that are not settings (read elsewhere: the executable, the command-line client, the test
 * setup — `DROPZONE_TEST_PG` reaches servers the tests spawn).
 */
const IGNORED_ENV = new Set(['DROPZONE_CONFIG', 'DROPZONE_NATIVE_CACHE', 'DROPZONE_URL', 'DROPZONE_API_KEY', 'DROPZONE_TEST_PG']);

/** Short environment names for the settings people set most. */
export const ENV_ALIASES: Record<string, string> = {
  DROPZONE_ADMIN_KEY: 'security.adminKey',
  DROPZONE_PORT: 'server.port',
  DROPZONE_HOST: 'server.host',
  DROPZONE_PUBLIC_URL: 'server.publicUrl',
  DROPZONE_SIGNING_SECRET: 'security.signingSecret',
  DROPZONE_LOG_LEVEL: 'log.level',
};

type Leaf = { path: string[]; sample: unknown };

/** Every leaf key of the configuration with its default value, derived from the schema itself. */
export function configKeys(): Leaf[] {
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  const out: Leaf[] = [];
  const walk = (obj: Record<string, unknown>, path: string[]) => {
    for (const [k, v] of Object.entries(obj)) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(v as Record<string, unknown>, [...path, k]);
      else out.push({ path: [...path, k], sample: v });
    }
  };
  walk(defaults, []);
  return out;
}

/** `['storage','s3','accessKeyId']` → `DROPZONE_STORAGE_S3_ACCESS_KEY_ID`. */
export function envNameFor(path: string[]): string {
  return 'DROPZONE_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** Converts a string from env or flags to the type of the key's default; leaves it a string when it does not fit so the schema names the problem. */
function fromString(raw: string, sample: unknown): unknown {
  const s = raw.trim();
  if (typeof sample === 'number' || sample === null) {
    if (sample === null && s === '') return null;
    const n = Number(s);
    return s !== '' && Number.isFinite(n) ? n : raw;
  }
  if (typeof sample === 'boolean') {
    if (/^(true|1|yes|on)$/i.test(s)) return true;
    if (/^(false|0|no|off)$/i.test(s)) return false;
    return raw;
  }
  if (Array.isArray(sample)) return s === '' ? [] : s.split(',').map((x) => x.trim()).filter(Boolean);
  return raw;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown) {
  let cur = target;
  for (const p of path.slice(0, -1)) {
    if (cur[p] === undefined || cur[p] === null || typeof cur[p] !== 'object' || Array.isArray(cur[p])) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)) {
      out[k] = deepMerge(b as Record<string, unknown>, v as Record<string, unknown>);
    } else out[k] = v;
  }
  return out;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Reads, merges and validates the configuration: defaults < TOML file < `DROPZONE_*` env < overrides.
 * Returns a deeply frozen object. Throws {@link ConfigError} naming the key (and its source) on any problem,
 * including unknown keys and unknown `DROPZONE_*` variables.
 */
export function loadConfig(sources: ConfigSources = {}): Config {
  const leaves = configKeys();
  let merged: Record<string, unknown> = {};
  /** Dotted path (leaf or table) → the source that set it last; later layers overwrite. */
  const origin = new Map<string, string>();
  const record = (value: unknown, path: string[], source: string): void => {
    origin.set(path.join('.'), source);
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) record(v, [...path, k], source);
    }
  };

  if (sources.file) {
    const label = basename(sources.file);
    let text: string;
    try {
      text = readFileSync(sources.file, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${sources.file}: ${(e as Error).message}`, { source: label });
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = parseToml(text) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`config file ${sources.file} is not valid TOML: ${(e as Error).message}`, { source: label });
    }
    for (const [k, v] of Object.entries(parsed)) record(v, [k], label);
    merged = deepMerge(merged, parsed);
  }

  const env = sources.env ?? {};
  const byEnv = new Map(leaves.map((l) => [envNameFor(l.path), l]));
  const envLayer: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('DROPZONE_') || value === undefined) continue;
    if (IGNORED_ENV.has(name)) continue;
    const leaf = byEnv.get(name) ?? (ENV_ALIASES[name] ? leaves.find((l) => l.path.join('.') === ENV_ALIASES[name]) : undefined);
    if (!leaf) throw new ConfigError(`unknown environment variable ${name} (no such setting)`, { key: name, source: name });
    setPath(envLayer, leaf.path, fromString(value, leaf.sample));
    origin.set(leaf.path.join('.'), name);
  }
  merged = deepMerge(merged, envLayer);

  const flagLayer: Record<string, unknown> = {};
  const byDotted = new Map(leaves.map((l) => [l.path.join('.'), l]));
  const defaultFlagName = sources.overridesSource ?? '--set';
  for (const [key, value] of Object.entries(sources.overrides ?? {})) {
    const label = sources.overrideNames?.[key] ?? defaultFlagName;
    const leaf = byDotted.get(key);
    if (leaf) {
      setPath(flagLayer, leaf.path, typeof value === 'string' ? fromString(value, leaf.sample) : value);
      origin.set(key, label);
    } else if (value && typeof value === 'object' && !Array.isArray(value)) {
      Object.assign(flagLayer, deepMerge(flagLayer, { [key]: value }));
      record(value, [key], label);
    } else throw new ConfigError(`unknown setting ${key} (from ${label})`, { key, source: label });
  }
  merged = deepMerge(merged, flagLayer);

  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const problems = result.error.issues.flatMap((issue) => {
      const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k].join('.')) : [issue.path.join('.')];
      const reason = issue.code === 'unrecognized_keys' ? 'is not a known setting' : issue.message;
      return keys.map((key) => ({ key, source: sourceOf(origin, key), reason }));
    });
    const text = problems.map((p) => `${p.key || '(root)'}${p.source ? ` (from ${p.source})` : ''} ${p.reason}`).join('; ');
    throw new ConfigError(`invalid configuration: ${text}`, { key: problems[0]?.key, source: problems[0]?.source });
  }
  return deepFreeze(result.data);
}

/** The source that set `key` or, failing that, its closest table (e.g. a whole `[server]` table from a file). */
function sourceOf(origin: Map<string, string>, key: string): string | undefined {
  const parts = key.split('.');
  for (let n = parts.length; n > 0; n--) {
    const s = origin.get(parts.slice(0, n).join('.'));
    if (s) return s;
  }
  return undefined;
}
