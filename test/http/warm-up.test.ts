/** The JIT warm-up after listening (`server.warmUpRequests`, src/warm-up.ts): it runs, touches nothing real, and stops on close. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log/logger.js';
import { type RunningServer, startServer } from '../../src/server.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const ADMIN = 'dz_warm_up_test_admin_secret_0123456789';

async function start(settings: Record<string, unknown>, lines: string[] = []): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'dropzone-warm-'));
  dirs.push(dataDir);
  const config = loadConfig({
    env: {},
    overrides: { 'server.host': '127.0.0.1', 'server.port': 0, 'sweeper.intervalSeconds': 0, 'security.adminKey': ADMIN, 'storage.reserveBytes': 0, dataDir, ...settings },
  });
  return startServer(config, { log: createLogger('debug', (l) => lines.push(l)) });
}

it('answers its requests against a scratch instance: the mix is all there, every answer as expected, and nothing reaches the real data, log or blobs', async () => {
  const lines: string[] = [];
  const s = await start({ 'server.warmUpRequests': 350, 'log.level': 'debug' }, lines);
  try {
    const report = await s.warmedUp;
    expect(report).toMatchObject({ requests: 350, unexpected: 0, kinds: 5 });
    // the real database holds only what the start made: the admin key, no dropzone
    expect((await s.app.ctx.meta.listKeys()).map((k) => k.name)).toEqual(['admin']);
    expect(await s.app.ctx.meta.allDropzonesAfter(undefined, 10)).toEqual([]);
    // the real request log saw none of the warm-up's requests, only its summary
    const records = () => lines.map((l) => JSON.parse(l) as { msg: string; route?: string });
    expect(records().filter((r) => r.msg === 'request')).toEqual([]);
    expect(records().filter((r) => r.msg === 'warmed up')).toHaveLength(1);
    // and the real server answers as before, into its own log
    const res = await fetch(`${s.url}/api/v1/dropzones`, { headers: { 'x-api-key': ADMIN } });
    expect(res.status).toBe(200);
    expect(records().filter((r) => r.msg === 'request').map((r) => r.route)).toEqual(['/api/v1/dropzones']);
    expect(readdirSync(join(dirs[0]!, 'blobs')).filter((n) => !n.startsWith('.'))).toEqual([]);
  } finally {
    await s.close();
  }
});

it('stops when the server closes meanwhile, and close() waits for it', async () => {
  const s = await start({ 'server.warmUpRequests': 1_000_000 });
  await new Promise((r) => setTimeout(r, 50));
  await s.close();
  const report = await s.warmedUp;
  expect(report).toBeDefined();
  expect(report!.requests).toBeLessThan(1_000_000);
  expect(report!.unexpected).toBe(0);
});

it('is off with 0', async () => {
  const s = await start({ 'server.warmUpRequests': 0 });
  try {
    expect(await s.warmedUp).toBeUndefined();
  } finally {
    await s.close();
  }
});
