/**
 * Helpers for tests that drive a Dropzone Server running as a separate process (the executable, or
 * `tsx src/main.ts serve`): start it, read its URL/admin-key lines, run the upload flow over real HTTP, stop it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A server child process and what it printed. */
export interface Served {
  child: ChildProcess;
  url: string;
  /** The admin key line's secret, when one was printed. */
  adminKey?: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or signal name) once the process exited. */
  exited: Promise<number | string>;
}

/** The argv that runs the source entry with tsx under the current Node (`node --import tsx src/main.ts ...`). */
export function tsxMain(args: string[]): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), ...args] };
}

/**
 * Spawns `cmd args` and waits until it printed its `listening on <url>` line (and, when `expectAdminKey`, the admin
 * key line right after it). Rejects with everything it printed when it exits first or after `timeoutMs`.
 */
export async function serve(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; waitForAdminKey?: boolean } = {},
): Promise<Served> {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const started = await new Promise<{ url: string; adminKey?: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no URL line within ${opts.timeoutMs ?? 20_000} ms\nstdout:\n${out}\nstderr:\n${err}`));
    }, opts.timeoutMs ?? 20_000);
    const check = () => {
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (!m) return;
      const key = /Admin API key[^:]*: (\S+)/.exec(out)?.[1];
      // The key line follows the URL line in the same tick; give it a moment when it is expected.
      if (opts.waitForAdminKey && !key) return;
      clearTimeout(timer);
      resolve({ url: m[1], adminKey: key });
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before printing its URL\nstdout:\n${out}\nstderr:\n${err}`));
    });
  });
  return { child, ...started, stdout: () => out, stderr: () => err, exited };
}

/** Sends SIGTERM and resolves with the exit code; SIGKILLs after `timeoutMs`. */
export async function stop(s: Served, timeoutMs = 15_000): Promise<number | string> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return s.exited;
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), timeoutMs);
  try {
    return await s.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** JSON request against `${base}/api/v1${p}`; returns status and parsed body. */
export async function api(base: string, method: string, p: string, opts: { key?: string; dropzoneId?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (opts.key) headers['x-api-key'] = opts.key;
  if (opts.dropzoneId) headers['x-dropzone-id'] = opts.dropzoneId;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}/api/v1${p}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

/** What {@link uploadFlow} did, for assertions (and for checking that logs leak none of it). */
export interface FlowResult {
  dropzoneId: string;
  fileId: string;
  signedUrl: string;
  bytes: Buffer;
}

/**
 * create dropzone → request upload URL → PUT the bytes to the signed URL → confirm → download, asserting each step.
 * With `legacy`, the upload URL is requested with `x-dropzone-id` (first generation) instead of the API key.
 */
export async function uploadFlow(base: string, adminKey: string, opts: { legacy?: boolean; size?: number } = {}): Promise<FlowResult> {
  const created = await api(base, 'POST', '/dropzones', { key: adminKey, body: { gb: 1, days: 30, name: `e2e-${randomBytes(4).toString('hex')}` } });
  expect(created.status, created.text).toBe(201);
  const dropzoneId: string = created.body.data._id;
  expect(dropzoneId).toBeTruthy();

  const bytes = randomBytes(opts.size ?? 100_000);
  const name = 'hello world.bin';
  const requested = opts.legacy
    ? await api(base, 'POST', '/files', { dropzoneId, body: { name, type: 'application/octet-stream', size: bytes.length } })
    : await api(base, 'POST', `/dropzones/${dropzoneId}/files`, { key: adminKey, body: { name, type: 'application/octet-stream', size: bytes.length } });
  expect(requested.status, requested.text).toBe(200);
  const up = requested.body.data as { fileId: string; signedUrl: string; method: string; headers: Record<string, string> };
  expect(up.method).toBe('PUT');

  const put = await fetch(up.signedUrl, { method: 'PUT', headers: up.headers, body: bytes, signal: AbortSignal.timeout(20_000) });
  expect(put.status, await put.clone().text()).toBeLessThan(300);
  await put.arrayBuffer();
  // like S3: the ETag of a single PUT is the MD5 of its bytes
  expect(put.headers.get('etag')).toBe(`"${createHash('md5').update(bytes).digest('hex')}"`);

  const confirmed = await api(base, 'POST', `/files/${up.fileId}/confirm`, { key: adminKey });
  expect(confirmed.status, confirmed.text).toBe(200);

  const res = await fetch(`${base}/api/v1/files/${up.fileId}/download`, { headers: { 'x-api-key': adminKey }, redirect: 'follow' });
  expect(res.status).toBe(200);
  const got = Buffer.from(await res.arrayBuffer());
  expect(got.length).toBe(bytes.length);
  expect(got.equals(bytes)).toBe(true);
  return { dropzoneId, fileId: up.fileId, signedUrl: up.signedUrl, bytes };
}

/** Asserts that no log text contains any credential or URL signature used during a flow. */
export function expectNoSecretsInLogs(logs: string, secrets: { adminKey: string; dropzoneIds: string[]; signedUrls: string[] }): void {
  expect(logs.length, 'the server should have logged something').toBeGreaterThan(0);
  expect(logs).not.toContain(secrets.adminKey);
  for (const id of secrets.dropzoneIds) expect(logs, 'a dropzone id used as x-dropzone-id credential').not.toContain(id);
  expect(logs).not.toMatch(/X-Amz-Signature/i);
  for (const u of secrets.signedUrls) {
    const sig = new URL(u).searchParams.get('X-Amz-Signature');
    if (sig) expect(logs).not.toContain(sig);
  }
}
