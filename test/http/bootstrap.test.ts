/** First start: the admin key is generated once (or taken from configuration), and secrets are stored only as hashes. */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { manualClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/log/logger.js';
import { type RunningServer, startServer } from '../../src/server.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir: string, settings: Record<string, unknown> = {}): Promise<RunningServer> {
  const config = loadConfig({ env: {}, overrides: { 'server.host': '127.0.0.1', 'server.port': 0, 'sweeper.intervalSeconds': 0, dataDir, ...settings } });
  return startServer(config, { clock: manualClock(Date.now()), log: createLogger('silent') });
}

const me = (s: RunningServer, key: string) => fetch(`${s.url}/api/v1/apikeys/me`, { headers: { 'x-api-key': key } });

it('a fresh data directory gets an admin key once; a restart keeps it and does not reveal it again', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dropzone-boot-'));
  dirs.push(dataDir);
  const first = await start(dataDir);
  let secret: string;
  try {
    expect(first.adminKeyGenerated).toBe(true);
    secret = first.adminKey!;
    expect(secret).toMatch(/^dzk_[A-Za-z0-9_-]{40,}$/);
    const res = await me(first, secret);
    expect(res.status).toBe(200);
    expect((await res.json()).data).toMatchObject({ admin: true, gbMonths: null });
  } finally {
    await first.close();
  }
  const second = await start(dataDir);
  try {
    expect(second.adminKeyGenerated).toBe(false);
    expect(second.adminKey).toBeUndefined();
    expect((await me(second, secret)).status).toBe(200);
  } finally {
    await second.close();
  }
});

it('a configured admin key is used as given; API key secrets never reach the data directory in clear', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dropzone-boot-'));
  dirs.push(dataDir);
  const adminKey = 'dzk_configured_admin_key_for_tests_0123456789';
  const s = await start(dataDir, { 'security.adminKey': adminKey });
  let created: string;
  try {
    expect(s.adminKeyGenerated).toBe(false);
    expect(s.adminKey).toBe(adminKey);
    expect((await me(s, adminKey)).status).toBe(200);
    const res = await fetch(`${s.url}/api/v1/apikeys`, { method: 'POST', headers: { 'x-api-key': adminKey } });
    created = (await res.json()).data.key;
    expect((await me(s, created)).status).toBe(200);
  } finally {
    await s.close();
  }
  for (const f of readdirSync(dataDir).filter((n) => n.startsWith('dropzone.db'))) {
    const raw = readFileSync(join(dataDir, f)).toString('latin1');
    expect(raw, f).not.toContain(adminKey);
    expect(raw, f).not.toContain(created);
  }
});

it('a configured (operator-chosen) admin key leaves nothing in the database to crack offline; dropping it generates a new one', async () => {
  const { createHash } = await import('node:crypto');
  const dataDir = mkdtempSync(join(tmpdir(), 'dropzone-boot-'));
  dirs.push(dataDir);
  const weak = 'test-admin';
  const s = await start(dataDir, { 'security.adminKey': weak });
  try {
    expect((await me(s, weak)).status).toBe(200);
    expect((await me(s, weak + 'x')).status).toBe(401);
  } finally {
    await s.close();
  }
  const sha = createHash('sha256').update(weak).digest('hex');
  for (const f of readdirSync(dataDir).filter((n) => n.startsWith('dropzone.db'))) {
    const raw = readFileSync(join(dataDir, f)).toString('latin1');
    expect(raw, f).not.toContain(sha);
  }
  // the operator removes the configured key: the old one stops working and a fresh one is generated and shown once
  const again = await start(dataDir);
  try {
    expect(again.adminKeyGenerated).toBe(true);
    expect((await me(again, weak)).status).toBe(401);
    expect((await me(again, again.adminKey!)).status).toBe(200);
  } finally {
    await again.close();
  }
});
