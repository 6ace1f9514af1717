import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { configSchema, type Config } from './schema.js';

/** Thrown when configuration cannot be read or is invalid; `message` names the key and the reason. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Where the configuration comes from; every part is optional. */
export interface ConfigSources {
  /** Path of a TOML file; a missing file given explicitly is an error. */
  file?: string;
  /** Environment (normally `process.env`); only `DROPZONE_*` names are read. */
  env?: Record<string, string | undefined>;
  /** Already-structured overrides, e.g. from command-line flags: `{ server: { port: 0 } }` or dotted keys `{ 'server.port': '0' }`. */
  overrides?: Record<string, unknown>;
}

/** `DROPZONE_*` variables that are not settings (read elsewhere). */
const IGNORED_ENV = new Set(['DROPZONE_CONFIG', 'DROPZONE_NATIVE_CACHE']);

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

  if (sources.file) {
    let text: string;
    try {
      text = readFileSync(sources.file, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${sources.file}: ${(e as Error).message}`);
    }
    try {
      merged = deepMerge(merged, parseToml(text) as Record<string, unknown>);
    } catch (e) {
      throw new ConfigError(`config file ${sources.file} is not valid TOML: ${(e as Error).message}`);
    }
  }

  const env = sources.env ?? {};
  const byEnv = new Map(leaves.map((l) => [envNameFor(l.path), l]));
  const envLayer: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('DROPZONE_') || value === undefined) continue;
    if (IGNORED_ENV.has(name)) continue;
    const leaf = byEnv.get(name) ?? (ENV_ALIASES[name] ? leaves.find((l) => l.path.join('.') === ENV_ALIASES[name]) : undefined);
    if (!leaf) throw new ConfigError(`unknown environment variable ${name} (no such setting)`);
    setPath(envLayer, leaf.path, fromString(value, leaf.sample));
  }
  merged = deepMerge(merged, envLayer);

  const flagLayer: Record<string, unknown> = {};
  const byDotted = new Map(leaves.map((l) => [l.path.join('.'), l]));
  for (const [key, value] of Object.entries(sources.overrides ?? {})) {
    const leaf = byDotted.get(key);
    if (leaf) setPath(flagLayer, leaf.path, typeof value === 'string' ? fromString(value, leaf.sample) : value);
    else if (value && typeof value === 'object' && !Array.isArray(value)) Object.assign(flagLayer, deepMerge(flagLayer, { [key]: value }));
    else throw new ConfigError(`unknown setting ${key}`);
  }
  merged = deepMerge(merged, flagLayer);

  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0];
    let key = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') key = [...issue.path, ...issue.keys].join('.');
    const reason = issue.code === 'unrecognized_keys' ? 'is not a known setting' : issue.message;
    throw new ConfigError(`invalid configuration: ${key || '(root)'} ${reason}`);
  }
  return deepFreeze(result.data);
}
