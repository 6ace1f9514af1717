// `dropzone serve` as a real child process (`node --import tsx src/main.ts serve ...`): the URL line, the admin key
// printed once, --ephemeral cleanup, graceful SIGTERM with a request in flight, and logs free of credentials.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { api, expectNoSecretsInLogs, serve, stop, tsxMain, uploadFlow, type Served } from '../e2e/flow.js';

let tmp: string;
const running: Served[] = [];
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-serve-'));
});
afterEach(async () => {
  for (const s of running.splice(0)) await stop(s);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The environment of the child: ours without DROPZONE_* (so the developer's settings cannot leak in), plus `extra`. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DROPZONE_')) env[k] = v;
  return { ...env, ...extra };
}

async function start(args: string[], opts: { env?: NodeJS.ProcessEnv; waitForAdminKey?: boolean } = {}): Promise<Served> {
  const { cmd, args: argv } = tsxMain(['serve', '--port', '0', '--host', '127.0.0.1', ...args]);
  const s = await serve(cmd, argv, { env: opts.env ?? childEnv(), waitForAdminKey: opts.waitForAdminKey });
  running.push(s);
  return s;
}

describe('dropzone serve', () => {
  it('prints one URL line (port 0 → a free port) and the admin key only on the first start', async () => {
    const dataDir = path.join(tmp, 'data');
    const first = await start(['--data-dir', dataDir], { waitForAdminKey: true });
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(first.url).not.toMatch(/:0$/);
    const lines = first.stdout().trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(`Dropzone Server listening on ${first.url} (API: ${first.url}/api/v1)`);
    expect(first.adminKey).toBeTruthy();
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    expect((await api(first.url, 'GET', '/apikeys/me', { key: first.adminKey })).status).toBe(200);
    expect(await stop(first)).toBe(0);

    const second = await start(['--data-dir', dataDir]);
    await new Promise((r) => setTimeout(r, 200));
    expect(second.stdout().trim().split('\n')).toHaveLength(1);
    expect(second.stdout()).not.toMatch(/Admin API key/);
    // Same data, same admin key.
    expect((await api(second.url, 'GET', '/apikeys/me', { key: first.adminKey })).status).toBe(200);
    expect(await stop(second)).toBe(0);
  });

  it('warms its request path up after listening, except with --ephemeral (a test fixture) unless asked to', async () => {
    const warmed = (s: Served) => s.stderr().split('\n').some((l) => l.includes('"msg":"warmed up"'));
    const until = async (s: Served) => {
      for (let i = 0; i < 300 && !warmed(s); i++) await new Promise((r) => setTimeout(r, 50));
      return warmed(s);
    };
    const server = await start(['--data-dir', path.join(tmp, 'data'), '--log-level', 'debug', '--set', 'server.warmUpRequests=200']);
    expect(await until(server)).toBe(true);
    const asked = await start(['--ephemeral', '--log-level', 'debug', '--set', 'server.warmUpRequests=200']);
    expect(await until(asked)).toBe(true);
    const fixture = await start(['--ephemeral', '--log-level', 'debug'], { env: childEnv({ DROPZONE_SERVER_WARM_UP_REQUESTS: '200' }) });
    // it would have finished by now: 200 requests take well under the time the other two needed
    await new Promise((r) => setTimeout(r, 1500));
    expect((await fetch(`${fixture.url}/healthz`)).status).toBe(200);
    expect(warmed(fixture)).toBe(false);
  });

  it('uses DROPZONE_ADMIN_KEY instead of printing one', async () => {
    const s = await start(['--ephemeral'], { env: childEnv({ DROPZONE_ADMIN_KEY: 'dzk_fixture_admin_key_0123456789' }) });
    await new Promise((r) => setTimeout(r, 200));
    expect(s.stdout()).not.toMatch(/Admin API key/);
    expect((await api(s.url, 'GET', '/apikeys/me', { key: 'dzk_fixture_admin_key_0123456789' })).status).toBe(200);
    expect(await stop(s)).toBe(0);
  });

  it('--ephemeral keeps data in a temporary directory that is removed on exit (SIGTERM and SIGINT)', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const privateTmp = fs.mkdtempSync(path.join(tmp, `tmp-${signal}-`));
      const s = await start(['--ephemeral'], { env: childEnv({ TMPDIR: privateTmp }), waitForAdminKey: true });
      const dirs = fs.readdirSync(privateTmp).filter((d) => d.startsWith('dropzone-ephemeral-'));
      expect(dirs).toHaveLength(1);
      expect(fs.existsSync(path.join(privateTmp, dirs[0], 'dropzone.db'))).toBe(true);
      s.child.kill(signal);
      expect(await s.exited).toBe(0);
      expect(fs.readdirSync(privateTmp).filter((d) => d.startsWith('dropzone-ephemeral-'))).toEqual([]);
    }
  });

  it('a port in use → exit 1 with a message; a bad flag value → exit 2', async () => {
    const a = await start(['--ephemeral']);
    const port = new URL(a.url).port;
    const { cmd, args } = tsxMain(['serve', '--ephemeral', '--host', '127.0.0.1', '--port', port]);
    const b = await serve(cmd, args, { env: childEnv() }).catch((e: Error) => e);
    expect(b).toBeInstanceOf(Error);
    expect((b as Error).message).toMatch(/exited \(1\)/);
    expect((b as Error).message).toMatch(/EADDRINUSE/);

    const { cmd: c2, args: a2 } = tsxMain(['serve', '--ephemeral', '--port', 'eighty']);
    const bad = await serve(c2, a2, { env: childEnv() }).catch((e: Error) => e);
    expect((bad as Error).message).toMatch(/exited \(2\)/);
    expect((bad as Error).message).toMatch(/server\.port \(from --port\)/);
  });

  it('SIGTERM: stops accepting, lets the request in flight finish, exits 0', async () => {
    const s = await start(['--ephemeral'], { waitForAdminKey: true });
    const created = await api(s.url, 'POST', '/dropzones', { key: s.adminKey, body: { gb: 1, days: 30 } });
    expect(created.status).toBe(201);
    const size = 1_000_000;
    const requested = await api(s.url, 'POST', `/dropzones/${created.body.data._id}/files`, { key: s.adminKey, body: { name: 'slow.bin', size } });
    expect(requested.status, requested.text).toBe(200);
    const { signedUrl, headers } = requested.body.data as { signedUrl: string; headers: Record<string, string> };

    // Start a PUT and send only half of the body.
    const req = http.request(signedUrl, { method: 'PUT', headers, agent: false });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
    });
    const bytes = Buffer.alloc(size, 7);
    req.write(bytes.subarray(0, size / 2));
    await new Promise((r) => setTimeout(r, 300));

    s.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect(s.child.exitCode).toBeNull(); // still draining
    // New connections are refused while draining.
    await expect(fetch(`${s.url}/healthz`, { signal: AbortSignal.timeout(3000) })).rejects.toThrow();

    req.end(bytes.subarray(size / 2));
    const res = await response;
    expect(res.status, res.body).toBeLessThan(300);
    expect(await s.exited).toBe(0);
  });

  it('request logs are JSON lines without API keys, x-dropzone-id values or URL signatures', async () => {
    const s = await start(['--ephemeral', '--log-level', 'debug'], { waitForAdminKey: true });
    const a = await uploadFlow(s.url, s.adminKey!);
    const b = await uploadFlow(s.url, s.adminKey!, { legacy: true });
    // Credentials in other places and failed attempts must not be logged either.
    expect((await api(s.url, 'GET', '/dropzone', { dropzoneId: b.dropzoneId })).status).toBe(200);
    const wrongKey = 'dzk_wrong_key_that_must_not_be_logged';
    expect((await api(s.url, 'GET', '/apikeys/me', { key: wrongKey })).status).toBe(401);
    const wrongId = 'not-a-dropzone-id-logged-never';
    expect((await api(s.url, 'GET', '/dropzone', { dropzoneId: wrongId })).status).toBe(401);
    const bearer = await fetch(`${s.url}/api/v1/apikeys/me`, { headers: { authorization: `Bearer ${s.adminKey}` } });
    expect(bearer.status).toBe(200);
    // A tampered signature is rejected and not logged.
    const tampered = new URL(a.signedUrl);
    tampered.searchParams.set('X-Amz-Signature', 'f'.repeat(64));
    expect((await fetch(tampered, { method: 'PUT', body: 'x' })).status).toBeGreaterThanOrEqual(400);
    expect(await stop(s)).toBe(0);

    const logs = s.stderr();
    const lines = logs.trim().split('\n');
    const requests = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request' || l.message === 'request');
    expect(requests.length).toBeGreaterThanOrEqual(12);
    for (const r of requests) {
      expect(r).toMatchObject({ method: expect.any(String), status: expect.any(Number), durationMs: expect.any(Number), requestId: expect.any(String) });
    }
    expectNoSecretsInLogs(logs, {
      adminKey: s.adminKey!,
      dropzoneIds: [a.dropzoneId, b.dropzoneId, wrongId],
      signedUrls: [a.signedUrl, b.signedUrl],
    });
    expect(logs).not.toContain(wrongKey);
    expect(logs).not.toContain('f'.repeat(64));
  });
});
