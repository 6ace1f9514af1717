import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseToml } from 'smol-toml';
import { configFrom, type CliIo } from '../../src/cli/common.js';
import { ConfigError, configKeys, envNameFor, loadConfig } from '../../src/config/load.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'config.example.toml');

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-config-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function toml(text: string, name = 'config.toml'): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

function io(env: Record<string, string | undefined> = {}): CliIo {
  return { out: () => {}, err: () => {}, env };
}

/** Runs `fn`, expecting a ConfigError; returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

describe('precedence: defaults < TOML < DROPZONE_* env < flags', () => {
  it('uses the defaults with no sources', () => {
    const c = loadConfig();
    expect(c.server.port).toBe(3000);
    expect(c.server.host).toBe('0.0.0.0');
    expect(c.dataDir).toBe('./data');
    expect(c.log.level).toBe('info');
    expect(Object.isFrozen(c.server)).toBe(true);
  });

  it('each layer overrides the one below, key by key', () => {
    const file = toml(`
dataDir = "/from/file"
[server]
port = 1111
host = "10.0.0.1"
publicUrl = "https://file.example"
[uploads]
urlTtlSeconds = 100
`);
    const fileOnly = loadConfig({ file });
    expect(fileOnly.server.port).toBe(1111);
    expect(fileOnly.uploads.urlTtlSeconds).toBe(100);
    expect(fileOnly.server.trustProxy).toBe(false); // untouched keys keep their defaults

    const env = { DROPZONE_SERVER_PORT: '2222', DROPZONE_SERVER_HOST: '10.0.0.2', DROPZONE_UPLOADS_URL_TTL_SECONDS: '200' };
    const withEnv = loadConfig({ file, env });
    expect(withEnv.server.port).toBe(2222);
    expect(withEnv.server.host).toBe('10.0.0.2');
    expect(withEnv.server.publicUrl).toBe('https://file.example');
    expect(withEnv.uploads.urlTtlSeconds).toBe(200);

    const withFlags = loadConfig({ file, env, overrides: { 'server.port': '3333' } });
    expect(withFlags.server.port).toBe(3333);
    expect(withFlags.server.host).toBe('10.0.0.2');
    expect(withFlags.dataDir).toBe('/from/file');
  });

  it('through the command line: --config, DROPZONE_CONFIG, env, --data-dir, --set', () => {
    const file = toml('[server]\nport = 1111\n[log]\nlevel = "warn"\n');
    expect(configFrom({ config: file }, io()).server.port).toBe(1111);
    expect(configFrom({}, io({ DROPZONE_CONFIG: file })).log.level).toBe('warn');
    // --config wins over DROPZONE_CONFIG
    const other = toml('[server]\nport = 4444\n', 'other.toml');
    expect(configFrom({ config: other }, io({ DROPZONE_CONFIG: file })).server.port).toBe(4444);

    const c = configFrom(
      { config: file, 'data-dir': '/flag/data', set: ['server.port=5555', 'limits.maxGb=10', 'server.corsOrigins=https://a.example, https://b.example'] },
      io({ DROPZONE_SERVER_PORT: '2222', DROPZONE_LOG_LEVEL: 'error', DROPZONE_DATA_DIR: '/env/data' }),
    );
    expect(c.server.port).toBe(5555);
    expect(c.log.level).toBe('error');
    expect(c.dataDir).toBe('/flag/data');
    expect(c.limits.maxGb).toBe(10);
    expect(c.server.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
  });

  it('the dedicated flags (extra) beat env and --set beats them', () => {
    const c = configFrom({ set: ['server.host=127.0.0.9'] }, io({ DROPZONE_PORT: '2222' }), { 'server.port': '0', 'server.host': '::1' }, { 'server.port': '--port' });
    expect(c.server.port).toBe(0);
    expect(c.server.host).toBe('127.0.0.9');
  });

  it('short env aliases and type conversion from strings', () => {
    const c = loadConfig({
      env: {
        DROPZONE_PORT: '8080',
        DROPZONE_ADMIN_KEY: 'dzk_secret',
        DROPZONE_SERVER_TRUST_PROXY: 'yes',
        DROPZONE_SECURITY_DROPZONE_ID_AUTH: 'off',
        DROPZONE_SECURITY_ADMIN_GB_MONTHS: '12.5',
        DROPZONE_SERVER_CORS_ORIGINS: '',
        DROPZONE_NATIVE_CACHE: '/ignored/not/a/setting',
        PATH: '/usr/bin',
      },
    });
    expect(c.server.port).toBe(8080);
    expect(c.security.adminKey).toBe('dzk_secret');
    expect(c.server.trustProxy).toBe(true);
    expect(c.security.dropzoneIdAuth).toBe(false);
    expect(c.security.adminGbMonths).toBe(12.5);
    expect(c.server.corsOrigins).toEqual([]);
  });

  it('every key has an environment variable that sets it', () => {
    for (const leaf of configKeys()) {
      const name = envNameFor(leaf.path);
      expect(name).toMatch(/^DROPZONE_[A-Z0-9_]+$/);
      // A value of the right type that differs from the default (storage.backend: s3 would need a bucket).
      const sample = leaf.sample;
      const dotted = leaf.path.join('.');
      const raw =
        typeof sample === 'boolean' ? String(!sample)
        : typeof sample === 'number' || sample === null ? (dotted === 'server.port' ? '0' : dotted === 'uploads.pageMultipartAboveBytes' ? '8388608' : dotted === 'server.requestTimeoutSeconds' ? '7200' : dotted.startsWith('limits.min') ? '1' : dotted.startsWith('limits.max') ? '500' : '7')
        : Array.isArray(sample) ? (dotted === 'webhooks.allowTargets' ? 'hooks.example' : 'https://x.example')
        : dotted === 'storage.backend' ? 'local'
        : dotted === 'database.url' ? 'sqlite:./other.db'
        : dotted === 'storage.s3.downloadMode' ? 'stream'
        : dotted === 'log.level' ? 'debug'
        : dotted === 'scan.engine' ? 'command'
        : dotted === 'scan.quarantine' ? 'delete'
        : dotted === 'scan.onFailure' ? 'serve'
        : dotted === 'server.accelRedirect' ? '/_dropzone_blobs/'
        : dotted === 'server.publicUrl' || dotted === 'storage.s3.endpoint' ? 'https://x.example'
        : 'value';
      const expected = typeof sample === 'boolean' ? !sample : typeof sample === 'number' || sample === null ? Number(raw) : Array.isArray(sample) ? [raw] : raw;
      // keys that only come in pairs get their partner too
      const partner: Record<string, string> =
        dotted === 'server.tls.cert' ? { DROPZONE_SERVER_TLS_KEY: 'k' }
        : dotted === 'server.tls.key' ? { DROPZONE_SERVER_TLS_CERT: 'c' }
        : dotted === 'scan.enabled' ? { DROPZONE_SCAN_CLAMD_SOCKET: '/run/clamav/clamd.ctl' }
        : {};
      const c = loadConfig({ env: { [name]: raw, ...partner } }) as unknown as Record<string, unknown>;
      const got = leaf.path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], c);
      expect(got, `${name}=${raw}`).toEqual(expected);
    }
  });
});

describe('a bad value in each source names the key and the source', () => {
  it('TOML file', () => {
    const file = toml('[server]\nport = "eighty"\n');
    const e = configError(() => loadConfig({ file }));
    expect(e.key).toBe('server.port');
    expect(e.source).toBe('config.toml');
    expect(e.message).toMatch(/server\.port \(from config\.toml\)/);
  });

  it('TOML file: out of range and cross-key rules', () => {
    expect(configError(() => loadConfig({ file: toml('[uploads]\nurlTtlSeconds = 0\n') })).message).toMatch(/uploads\.urlTtlSeconds \(from config\.toml\)/);
    const e = configError(() => loadConfig({ file: toml('[limits]\nminGb = 5\nmaxGb = 1\n') }));
    expect(e.key).toBe('limits.minGb');
    expect(e.message).toMatch(/must not exceed limits\.maxGb/);
    const s3 = configError(() => loadConfig({ file: toml('[storage]\nbackend = "s3"\n') }));
    expect(s3.key).toBe('storage.s3.bucket');
  });

  it('TOML file: invalid syntax and a missing file', () => {
    expect(configError(() => loadConfig({ file: toml('[server\nport = 1') })).message).toMatch(/not valid TOML/);
    expect(configError(() => loadConfig({ file: path.join(tmp, 'missing.toml') })).message).toMatch(/cannot read config file/);
  });

  it('environment variable', () => {
    const e = configError(() => loadConfig({ env: { DROPZONE_SERVER_PORT: 'eighty' } }));
    expect(e.key).toBe('server.port');
    expect(e.source).toBe('DROPZONE_SERVER_PORT');
    expect(e.message).toMatch(/server\.port \(from DROPZONE_SERVER_PORT\)/);
    expect(configError(() => loadConfig({ env: { DROPZONE_LOG_LEVEL: 'loud' } })).message).toMatch(/log\.level \(from DROPZONE_LOG_LEVEL\)/);
    expect(configError(() => loadConfig({ env: { DROPZONE_SERVER_TRUST_PROXY: 'maybe' } })).source).toBe('DROPZONE_SERVER_TRUST_PROXY');
  });

  it('env beats a good file value, and the error blames env', () => {
    const file = toml('[server]\nport = 1234\n');
    const e = configError(() => loadConfig({ file, env: { DROPZONE_PORT: '99999' } }));
    expect(e.source).toBe('DROPZONE_PORT');
    expect(e.key).toBe('server.port');
  });

  it('--set and dedicated flags', () => {
    const e = configError(() => configFrom({ set: ['uploads.maxFileSize=big'] }, io()));
    expect(e.key).toBe('uploads.maxFileSize');
    expect(e.source).toBe('--set');
    expect(e.message).toMatch(/uploads\.maxFileSize \(from --set\)/);
    const p = configError(() => configFrom({}, io(), { 'server.port': '-1' }, { 'server.port': '--port' }));
    expect(p.message).toMatch(/server\.port \(from --port\)/);
    expect(configError(() => configFrom({ set: ['noequals'] }, io())).message).toMatch(/--set needs key=value/);
  });

  it('does not echo secret values in messages', () => {
    const e = configError(() => loadConfig({ env: { DROPZONE_ADMIN_KEY: 'dzk_topsecret', DROPZONE_SERVER_PORT: 'x' } }));
    expect(e.message).not.toContain('dzk_topsecret');
  });
});

describe('unknown keys are rejected', () => {
  it('in the TOML file (top level, nested and whole tables)', () => {
    const a = configError(() => loadConfig({ file: toml('prot = 1\n') }));
    expect(a.key).toBe('prot');
    expect(a.message).toMatch(/prot \(from config\.toml\) is not a known setting/);
    expect(configError(() => loadConfig({ file: toml('[server]\nprot = 1\n') })).key).toBe('server.prot');
    expect(configError(() => loadConfig({ file: toml('[servre]\nport = 1\n') })).key).toBe('servre');
  });

  it('DROPZONE_* environment variables', () => {
    const e = configError(() => loadConfig({ env: { DROPZONE_SERVER_PROT: '1' } }));
    expect(e.message).toMatch(/unknown environment variable DROPZONE_SERVER_PROT/);
    expect(e.source).toBe('DROPZONE_SERVER_PROT');
    // Other variables are none of our business.
    expect(() => loadConfig({ env: { HOME: '/root', DROPZONEX: '1' } })).not.toThrow();
  });

  it('the command-line client\'s DROPZONE_URL and DROPZONE_API_KEY do not stop the server', () => {
    // Someone who exports them for `dropzone push` must still be able to run `dropzone serve` in the same shell.
    const config = loadConfig({ env: { DROPZONE_URL: 'http://127.0.0.1:3000', DROPZONE_API_KEY: 'dzk_client_secret', DROPZONE_PORT: '4321' } });
    expect(config.server.port).toBe(4321);
  });

  it('--set', () => {
    const e = configError(() => configFrom({ set: ['server.prot=1'] }, io()));
    expect(e.message).toMatch(/unknown setting server\.prot \(from --set\)/);
  });
});

describe('config.example.toml', () => {
  /** `dotted.key` names written in the file as `key = ...` lines, commented out or not, under their [table]. */
  function documentedKeys(text: string): Set<string> {
    const keys = new Set<string>();
    let table = '';
    for (const line of text.split('\n')) {
      const header = /^\s*#?\s*\[([A-Za-z0-9_.]+)\]\s*$/.exec(line);
      if (header) {
        table = header[1];
        continue;
      }
      const kv = /^\s*#?\s*([A-Za-z][A-Za-z0-9_]*)\s*=/.exec(line);
      if (kv) keys.add(table ? `${table}.${kv[1]}` : kv[1]);
    }
    return keys;
  }

  it('documents every key, with a comment', () => {
    const text = fs.readFileSync(EXAMPLE, 'utf8');
    const documented = documentedKeys(text);
    const lines = text.split('\n');
    for (const leaf of configKeys()) {
      const dotted = leaf.path.join('.');
      expect(documented.has(dotted), `${dotted} missing from config.example.toml`).toBe(true);
    }
    // Every setting line is preceded by a comment line (possibly through a group of keys sharing one comment).
    const firstKeyLine = lines.findIndex((l) => /^\s*[A-Za-z]\w*\s*=/.test(l));
    expect(lines.slice(0, firstKeyLine).some((l) => l.startsWith('#'))).toBe(true);
    for (const k of documented) expect(configKeys().some((l) => l.path.join('.') === k), `${k} is documented but not a setting`).toBe(true);
  });

  it('parses and validates to exactly the defaults', () => {
    expect(() => parseToml(fs.readFileSync(EXAMPLE, 'utf8'))).not.toThrow();
    expect(loadConfig({ file: EXAMPLE })).toEqual(loadConfig());
  });

  it('shows each default value that TOML can express', () => {
    const parsed = parseToml(fs.readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
    for (const leaf of configKeys()) {
      const got = leaf.path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], parsed);
      if (leaf.sample === null) expect(got, leaf.path.join('.')).toBeUndefined();
      else expect(got, leaf.path.join('.')).toEqual(leaf.sample);
    }
  });
});

describe('database settings', () => {
  it('accepts sqlite: and postgres URLs and refuses other schemes, naming database.url', () => {
    expect(loadConfig({ env: { DROPZONE_DATABASE_URL: 'sqlite:./x.db' } }).database.url).toBe('sqlite:./x.db');
    expect(loadConfig({ env: { DROPZONE_DATABASE_URL: 'postgresql://u@h/db', DROPZONE_STORAGE_BACKEND: 's3', DROPZONE_STORAGE_S3_BUCKET: 'b' } }).database.url).toBe('postgresql://u@h/db');
    const e = configError(() => loadConfig({ env: { DROPZONE_DATABASE_URL: 'mysql://u:pw@h/db' } }));
    expect(e.key).toBe('database.url');
    expect(e.message).not.toContain('pw');
  });

  it('refuses PostgreSQL with the local backend unless the blob directory is declared shared', () => {
    const pg = { DROPZONE_DATABASE_URL: 'postgres://u:secret@h/db' };
    const e = configError(() => loadConfig({ env: pg }));
    expect(e.key).toBe('storage.local.shared');
    expect(e.message).toMatch(/must be true when database\.url is PostgreSQL and storage\.backend is "local"/);
    expect(e.message).not.toContain('secret');
    expect(loadConfig({ env: { ...pg, DROPZONE_STORAGE_LOCAL_SHARED: 'true' } }).storage.local.shared).toBe(true);
    expect(loadConfig({ env: { ...pg, DROPZONE_STORAGE_BACKEND: 's3', DROPZONE_STORAGE_S3_BUCKET: 'b' } }).storage.backend).toBe('s3');
    // SQLite with a local, unshared directory stays the simple default
    expect(loadConfig({}).storage.local.shared).toBe(false);
  });

  it('DROPZONE_TEST_PG (the test setup switch, inherited by servers the tests spawn) is not an unknown setting', () => {
    expect(() => loadConfig({ env: { DROPZONE_TEST_PG: 'off' } })).not.toThrow();
  });
});

describe('scan settings', () => {
  it('are off by default and refuse an enabled scanner without a target', () => {
    const c = loadConfig({ env: {} });
    expect(c.scan).toMatchObject({ enabled: false, engine: 'clamd', quarantine: 'keep', onFailure: 'hold' });
    expect(configError(() => loadConfig({ env: { DROPZONE_SCAN_ENABLED: 'true' } })).key).toBe('scan.clamd.socket');
    expect(configError(() => loadConfig({ env: { DROPZONE_SCAN_ENABLED: 'true', DROPZONE_SCAN_ENGINE: 'command' } })).key).toBe('scan.command');
    expect(loadConfig({ env: { DROPZONE_SCAN_ENABLED: 'true', DROPZONE_SCAN_CLAMD_HOST: '127.0.0.1' } }).scan.clamd.port).toBe(3310);
  });
});
