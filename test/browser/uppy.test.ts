/**
 * Uppy (`@uppy/core` + `@uppy/aws-s3`, current major) in Debian's Chromium, uploading through this API with the
 * configuration the README shows (test/browser/uppy/dropzone-uppy.js, bundled here with esbuild): a 64 MiB file made in
 * the page goes up in parts on every backend, completes, is listed uploaded and downloads byte-identical; pausing and
 * resuming, and a connection cut in the middle, send no finished part again. Without the browser the suite is skipped
 * with a loud banner (in CI it fails).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveChromium, launchChromium } from '../helpers/chromium.js';
import { allowBrowserUploads } from '../helpers/bucket-cors.js';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const HAVE_CHROMIUM = haveChromium('Uppy');
const MIB = 2 ** 20;
const CONFIG_FILE = resolve('test/browser/uppy/dropzone-uppy.js');

/** The README's Uppy configuration and a few page helpers, bundled for the browser (an IIFE setting `window.t`). */
async function bundle(): Promise<string> {
  const entry = `
import { dropzoneUppy } from './dropzone-uppy.js';
/** Deterministic bytes from a 32-bit xorshift seed. */
function makeBytes(size, seed) {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; words[i] = x; }
  return new Uint8Array(words.buffer, 0, size);
}
const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');
window.t = {
  async start({ api, dropzone, auth, size, seed, name }) {
    const bytes = makeBytes(size, seed);
    const sha256 = hex(await crypto.subtle.digest('SHA-256', bytes));
    const uppy = dropzoneUppy({ api, dropzone, auth, multipartAbove: 16 * 2 ** 20 });
    const state = { parts: [], errors: [], success: null };
    uppy.on('s3-multipart:part-uploaded', (_f, part) => state.parts.push(part.PartNumber));
    uppy.on('upload-error', (_f, err) => state.errors.push(String(err && err.message)));
    uppy.on('upload-success', (_f, res) => { state.success = res.body.key; });
    const id = uppy.addFile({ name, type: 'application/octet-stream', data: new File([bytes], name, { type: 'application/octet-stream' }), source: 'test' });
    window.uppy = uppy; window.state = state; window.fileId = id;
    uppy.upload().catch((e) => state.errors.push(String(e && e.message)));
    return { sha256 };
  },
};
`;
  const out = await build({
    stdin: { contents: entry, resolveDir: resolve('test/browser/uppy'), loader: 'js' },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'chrome120',
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0].text;
}

it('the README shows the tested Uppy configuration verbatim', () => {
  const readme = readFileSync(resolve('README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('**Uppy.**'));
  const block = /```js\n([\s\S]*?)```/.exec(section);
  expect(block, 'a js block after **Uppy.** in README.md').not.toBeNull();
  expect(block![1]).toBe(readFileSync(CONFIG_FILE, 'utf8'));
});

describeEachBackend('Uppy multipart in Chromium', (b: BackendContext) => {
  if (!HAVE_CHROMIUM) {
    it.skip('needs Chromium (see the banner above)', () => undefined);
    return;
  }
  let t: TestServer;
  let browser: Browser;
  let code: string;
  let dzId: string;
  beforeAll(async () => {
    [t, browser, code] = await Promise.all([b.start(), launchChromium(), bundle()]);
    dzId = (await t.createDropzone(t.adminKey, { gb: 1, days: 30, name: 'uppy' }))._id;
    // browsers PUT the parts straight to the bucket: it needs the CORS rule the README asks operators for
    if (b.name === 's3') await allowBrowserUploads(t, dzId, t.url);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /**
   * A page on the server's origin (so the API needs no CORS) running the bundle; counts part PUTs by part number. It is
   * a real answer of the server (a 404 without CSP), not a routed one: Chromium puts a page it did not load from an
   * address in the public address space, and then refuses its requests to the loopback (moto).
   */
  async function openPage(): Promise<{ page: Page; partPuts: Map<number, number>; settled: () => Promise<void> }> {
    const page = await browser.newPage();
    const partPuts = new Map<number, number>();
    let inFlight = 0;
    const isPart = (req: { method(): string; url(): string }) => req.method() === 'PUT' && new URL(req.url()).searchParams.has('partNumber');
    page.on('request', (req) => {
      const n = new URL(req.url()).searchParams.get('partNumber');
      if (req.method() === 'PUT' && n) partPuts.set(Number(n), (partPuts.get(Number(n)) ?? 0) + 1);
      if (isPart(req)) inFlight++;
    });
    page.on('requestfinished', (req) => void (isPart(req) && inFlight--));
    page.on('requestfailed', (req) => void (isPart(req) && inFlight--));
    await page.goto(`${t.url}/uppy-test`);
    await page.addScriptTag({ content: code });
    /** Resolves once no part PUT is in flight (a part sent just before a pause may still be stored). */
    const settled = () => expect.poll(() => inFlight, { timeout: 60_000, interval: 50 }).toBe(0);
    return { page, partPuts, settled };
  }

  async function startUpload(page: Page, name: string, size: number, seed: number): Promise<string> {
    const { sha256 } = await page.evaluate((a) => (window as any).t.start(a), { api: t.api, dropzone: dzId, auth: { 'x-api-key': t.adminKey }, size, seed, name });
    return sha256;
  }

  const state = (page: Page) => page.evaluate(() => (window as any).state as { parts: number[]; errors: string[]; success: string | null });

  /** Waits for Uppy's upload-success, then for the confirmed file in the API's listing; checks the bytes' hash. */
  async function expectUploaded(page: Page, name: string, size: number, sha256: string): Promise<string> {
    await page.waitForFunction(() => (window as any).state.success !== null || (window as any).state.errors.length > 0, undefined, { timeout: 240_000, polling: 200 });
    expect((await state(page)).errors).toEqual([]);
    const fileId = (await state(page)).success!;
    await expect
      .poll(async () => (await t.req('GET', `/dropzones/${dzId}/files`, { key: t.adminKey })).body.data.find((f: any) => f._id === fileId)?.meta?.s3Status, {
        timeout: 30_000,
      })
      .toBe('uploaded');
    const row = await t.server.app.ctx.meta.fileById(fileId);
    expect(row).toMatchObject({ name, size, status: 'uploaded' });
    const res = await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': t.adminKey } });
    expect(res.status).toBe(200);
    const hash = createHash('sha256');
    for await (const chunk of res.body as any) hash.update(chunk);
    expect(hash.digest('hex')).toBe(sha256);
    return fileId;
  }

  it('uploads a 64 MiB file in parts: it completes, is listed uploaded, downloads byte-identical', async () => {
    const { page, partPuts } = await openPage();
    try {
      const size = 64 * MIB + 4321;
      const sha = await startUpload(page, 'big-64.bin', size, 64);
      const fileId = await expectUploaded(page, 'big-64.bin', size, sha);
      const row = await t.server.app.ctx.meta.fileById(fileId);
      expect(row!.etag).toMatch(/-13"$/); // 12 parts of 5 MiB and the rest: S3's multipart ETag
      expect([...partPuts.entries()].sort((x, y) => x[0] - y[0])).toEqual(Array.from({ length: 13 }, (_, i) => [i + 1, 1]));
      expect((await state(page)).errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 300_000);

  it('pause, then resume, sends only the parts the server does not hold yet', async () => {
    const { page, partPuts, settled } = await openPage();
    try {
      const size = 40 * MIB + 99; // 9 parts
      const sha = await startUpload(page, 'paused.bin', size, 7);
      await page.waitForFunction(() => (window as any).state.parts.length >= 3, undefined, { timeout: 120_000, polling: 50 });
      expect(await page.evaluate(() => (window as any).uppy.pauseResume((window as any).fileId))).toBe(true);
      // a part whose bytes were all sent before the pause may still be stored: list once nothing is in flight
      await settled();
      // what the server holds while paused
      const pending = (await t.req('GET', `/dropzones/${dzId}/files`, { key: t.adminKey })).body.data.find((f: any) => f.name === 'paused.bin');
      expect(pending.meta.s3Status).not.toBe('uploaded');
      const uploadId = (await t.server.app.ctx.meta.fileById(pending._id))!.multipartUploadId!;
      const listed = await t.req('GET', `/files/${pending._id}/multipart/${encodeURIComponent(uploadId)}`, { key: t.adminKey });
      const held = (listed.body.data.parts as any[]).map((p) => p.PartNumber as number);
      expect(held.length).toBeGreaterThanOrEqual(3);
      expect(held.length).toBeLessThan(9);
      const sentBeforeResume = new Map(partPuts);

      expect(await page.evaluate(() => (window as any).uppy.pauseResume((window as any).fileId))).toBe(false);
      const fileId = await expectUploaded(page, 'paused.bin', size, sha);
      expect(fileId).toBe(pending._id);
      // every part the server held was sent exactly once; every missing one was sent after the resume
      for (const n of held) expect(partPuts.get(n), `part ${n}`).toBe(1);
      for (let n = 1; n <= 9; n++) {
        if (!held.includes(n)) expect(partPuts.get(n)! - (sentBeforeResume.get(n) ?? 0), `part ${n} after resume`).toBe(1);
      }
    } finally {
      await page.close();
    }
  }, 300_000);

  it('a connection cut in the middle resumes without sending finished parts again', async () => {
    const { page, partPuts } = await openPage();
    try {
      const size = 30 * MIB + 5; // 7 parts
      // part 4's PUT is cut until Uppy gives up (after its own retries); then Uppy's retry resumes the upload
      let cutting = true;
      let cuts = 0;
      await page.route(
        (url) => url.searchParams.get('partNumber') === '4',
        async (route) => {
          if (route.request().method() === 'PUT' && cutting) {
            cuts++;
            return route.abort('connectionreset');
          }
          return route.continue();
        },
      );
      const sha = await startUpload(page, 'cut.bin', size, 99);
      await page.waitForFunction(() => (window as any).state.errors.length > 0, undefined, { timeout: 120_000, polling: 100 });
      cutting = false;
      expect((await state(page)).errors).toEqual([expect.stringMatching(/network/i)]);
      expect((await state(page)).parts).toEqual([1, 2, 3]);
      await page.evaluate(() => {
        const w = window as any;
        w.state.errors = [];
        return w.uppy.retryUpload(w.fileId);
      });
      await expectUploaded(page, 'cut.bin', size, sha);
      expect(cuts).toBeGreaterThan(0);
      for (const n of [1, 2, 3, 5, 6, 7]) expect(partPuts.get(n), `part ${n}`).toBe(1);
      expect(partPuts.get(4)).toBe(cuts + 1);
    } finally {
      await page.close();
    }
  }, 300_000);
});
