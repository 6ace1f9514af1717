/**
 * The dropzone page (`/d/:code`) in real headless Chromium (Debian's `chromium` package at /usr/bin/chromium, driven by
 * playwright-core), against a real in-process server on 127.0.0.1:0. Without that browser the browser tests are
 * skipped with a loud banner; the HTML/page-API tests below them run anyway.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveChromium, launchChromium } from '../helpers/chromium.js';
import { loadConfig } from '../../src/config/load.js';
import { type AdjustableClock, manualClock } from '../../src/core/clock.js';
import { type RunningServer, startServer } from '../../src/server.js';

const HAVE_CHROMIUM = haveChromium('the dropzone page');
const OUT = resolve('test-output');
const ADMIN = 'dzk_browser_test_admin_key_0123456789abcdef';
const MAX_FILE = 1_000_000; // uploads.maxFileSize: small, so an oversize file is cheap to make
/** What a file costs in usedSpace: its size + 1000 + the UTF-8 bytes of its name and type. */
const cost = (size: number, name: string, type: string) => size + 1000 + Buffer.byteLength(name) + Buffer.byteLength(type);

interface Srv {
  server: RunningServer;
  url: string;
  clock: AdjustableClock;
  dir: string;
  api<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T; text: string; headers: Headers }>;
  createDropzone(name: string): Promise<any>;
  close(): Promise<void>;
}

async function startSrv(): Promise<Srv> {
  const dir = mkdtempSync(join(tmpdir(), 'dz-page-'));
  const clock = manualClock(Date.now());
  const config = loadConfig({
    overrides: {
      dataDir: dir,
      server: { host: '127.0.0.1', port: 0, shutdownTimeoutMs: 2000 },
      security: { adminKey: ADMIN },
      uploads: { maxFileSize: MAX_FILE },
      sweeper: { intervalSeconds: 0 },
      log: { level: 'silent' },
    },
  });
  const server = await startServer(config, { clock });
  const api: Srv['api'] = async (method, path, body, headers = {}) => {
    const res = await fetch(path.startsWith('http') ? path : `${server.url}/api/v1${path}`, {
      method,
      headers: { 'x-api-key': ADMIN, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    let parsed: any;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text, headers: res.headers };
  };
  return {
    server,
    url: server.url,
    clock,
    dir,
    api,
    async createDropzone(name) {
      const r = await api('POST', '/dropzones', { gb: 0.2, days: 30, name });
      expect(r.status, r.text).toBe(201);
      return r.body.data;
    },
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The `config` JSON the page embeds (holds the page token). */
function pageConfig(html: string): any {
  const m = /<script type="application\/json" id="dz-config">([^<]*)<\/script>/.exec(html);
  expect(m).not.toBeNull();
  return JSON.parse(m![1]);
}

const stateOf = (page: Page, name: string) => page.locator('.item', { has: page.getByText(name, { exact: true }) });

describe('dropzone page: HTML and page API', () => {
  let s: Srv;
  beforeAll(async () => {
    s = await startSrv();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('serves the page with a strict CSP, the name, and no dropzone _id anywhere', async () => {
    const dz = await s.createDropzone('Quarterly <reports> & "stuff"');
    expect(dz.uploadUrl).toBe(`${s.url}/d/${dz.code}`);
    const res = await fetch(dz.uploadUrl);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(html).toContain('Quarterly &lt;reports&gt; &amp; &quot;stuff&quot;');
    expect(html).toContain('<meta name="viewport"');
    expect(html).not.toContain(dz._id);
    expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere: every reference is relative
    const cfg = pageConfig(html);
    expect(cfg.permissions).toEqual(['dropzone.upload']);
    // the token's payload is readable by its holder: it must not carry the id either
    const payload = JSON.parse(Buffer.from(cfg.token.split('.')[1], 'base64url').toString());
    expect(JSON.stringify(payload)).not.toContain(dz._id);
    expect(payload).toMatchObject({ sub: dz.code, aud: 'dropzone-page', iss: 'dropzone-server' });

    for (const asset of ['page.js', 'page.css', 'favicon.svg']) {
      const a = await fetch(`${s.url}/assets/${asset}`);
      expect(a.status, asset).toBe(200);
      await a.arrayBuffer();
    }
    expect((await fetch(`${s.url}/assets/..%2Fpackage.json`)).status).toBe(404);
  });

  it('answers an unknown code with a friendly 404 HTML page', async () => {
    for (const code of ['AAAAAAAAAAAAAAAAAAAAAA', 'not a code', 'x']) {
      const res = await fetch(`${s.url}/d/${encodeURIComponent(code)}`);
      const html = await res.text();
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(html).toContain('Dropzone not found');
      expect(html).not.toContain('"status"');
    }
  });

  it('page API: needs the token for that code, hides listing by default, enforces sizes, never shows the _id', async () => {
    const dz = await s.createDropzone('api-checks');
    const other = await s.createDropzone('api-checks-other');
    const cfg = pageConfig(await (await fetch(dz.uploadUrl)).text());
    const otherCfg = pageConfig(await (await fetch(other.uploadUrl)).text());
    const page = (method: string, path: string, token: string | undefined, body?: unknown) =>
      s.api(method, `${s.url}/d/${dz.code}/api/${path}`, body, { 'x-api-key': '', ...(token ? { authorization: `Bearer ${token}` } : {}) });

    expect((await page('GET', 'summary', undefined)).status).toBe(401);
    expect((await page('GET', 'summary', otherCfg.token)).status).toBe(401);
    expect((await page('GET', 'summary', cfg.token.slice(0, -2) + 'xx')).status).toBe(401);
    const sum = await page('GET', 'summary', cfg.token);
    expect(sum.status).toBe(200);
    expect(sum.body.data).toMatchObject({ name: 'api-checks', maxSize: dz.maxSize, usedSpace: 0, maxFileSize: MAX_FILE, deleteTime: dz.deleteTime, permissions: ['dropzone.upload'] });
    expect(sum.text).not.toContain(dz._id);

    const list = await page('GET', 'files', cfg.token);
    expect(list.status).toBe(403);
    expect(list.body).toMatchObject({ status: 'error' });

    const big = await page('POST', 'uploads', cfg.token, { name: 'big.bin', type: '', size: MAX_FILE + 1 });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ status: 'error', data: { maxFileSize: MAX_FILE } });
    const bad = await page('POST', 'uploads', cfg.token, { name: '', size: -1 });
    expect(bad.status).toBe(400);

    // reserve, cancel: the space comes back
    const up = await page('POST', 'uploads', cfg.token, { name: 'x.txt', type: 'text/plain', size: 5 });
    expect(up.status).toBe(200);
    expect(up.body.data.usedSpace).toBe(cost(5, 'x.txt', 'text/plain'));
    expect(up.text).not.toContain(dz._id);
    // a file id of another dropzone is invisible through this page
    const otherUp = await s.api('POST', `/dropzones/${other._id}/files`, { name: 'o.txt', type: '', size: 1 });
    expect((await page('DELETE', `uploads/${otherUp.body.data.fileId}`, cfg.token)).status).toBe(404);
    expect((await page('POST', `uploads/${up.body.data.fileId}/confirm`, cfg.token)).status).toBe(409); // bytes not there yet
    const cancel = await page('DELETE', `uploads/${up.body.data.fileId}`, cfg.token);
    expect(cancel.status).toBe(200);
    expect(cancel.body.data.usedSpace).toBe(0);

    // granting anyone dropzone.list opens the listing at once, even for a token minted before
    const g = await s.api('POST', `/dropzones/${dz._id}/permissions`, { publicId: 'anyone', permissions: ['dropzone.list'] });
    expect(g.status, g.text).toBe(200);
    // …but the old token only carries the scope it was minted with
    expect((await page('GET', 'files', cfg.token)).status).toBe(403);
    const fresh = pageConfig(await (await fetch(dz.uploadUrl)).text());
    expect(fresh.permissions).toEqual(['dropzone.upload', 'dropzone.list']);
    expect((await page('GET', 'files', fresh.token)).status).toBe(200);
    // and revoking takes effect immediately
    await s.api('DELETE', `/dropzones/${dz._id}/permissions`, { publicId: 'anyone', permissions: ['dropzone.list'] });
    expect((await page('GET', 'files', fresh.token)).status).toBe(403);
  });
});

describe('dropzone page: expiry', () => {
  let s: Srv;
  beforeAll(async () => {
    s = await startSrv();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('an expired dropzone gets a friendly 410 HTML page, and its page token stops working', async () => {
    const dz = await s.createDropzone('soon gone');
    const cfg = pageConfig(await (await fetch(dz.uploadUrl)).text());
    s.clock.advance(31 * 86_400_000);
    const res = await fetch(dz.uploadUrl);
    const html = await res.text();
    expect(res.status).toBe(410);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(html).toContain('This dropzone has expired');
    expect(html).not.toContain(dz._id);
    const r = await s.api('POST', `${s.url}/d/${dz.code}/api/uploads`, { name: 'a', type: '', size: 1 }, { 'x-api-key': '', authorization: `Bearer ${cfg.token}` });
    expect(r.status).toBe(401); // 12 h token, 31 days later
  });
});

describe.skipIf(!HAVE_CHROMIUM)('dropzone page in headless Chromium', () => {
  let s: Srv;
  let browser: Browser;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    s = await startSrv();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  const open = async (url: string, viewport = { width: 900, height: 1000 }) => {
    const page = await browser.newPage({ viewport });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await page.goto(url);
    await page.waitForSelector('html[data-ready="true"]');
    return page;
  };

  it('uploads two files with progress to 100%, then an oversize file fails while another succeeds', async () => {
    const dz = await s.createDropzone('Holiday photos');
    const page = await open(dz.uploadUrl);
    expect(await page.content()).not.toContain(dz._id);
    expect(await page.locator('h1').textContent()).toBe('Holiday photos');
    expect(await page.locator('#dz-time').textContent()).toBe('30 days');
    expect(await page.locator('#files-section').isHidden()).toBe(true); // no anyone grant: no listing

    const a = Buffer.from('hello from the dropzone page\n'.repeat(1000));
    const b = randomBytes(700_000);
    await page.setInputFiles('#file-input', [
      { name: 'notes.txt', mimeType: 'text/plain', buffer: a },
      { name: 'photo 1 – ü.jpg', mimeType: 'image/jpeg', buffer: b },
    ]);
    await page.waitForFunction(() => document.querySelectorAll('.item[data-state="done"]').length === 2, undefined, { timeout: 20_000 });
    for (const name of ['notes.txt', 'photo 1 – ü.jpg']) {
      const item = stateOf(page, name);
      expect(await item.locator('.item-detail').textContent()).toContain('100%');
      expect(await item.locator('progress').evaluate((p: HTMLProgressElement) => [p.value, p.max])).toEqual([100, 100]);
      expect(await item.locator('progress').getAttribute('aria-label')).toBe(`Upload progress of ${name}`);
    }
    expect(await page.locator('#summary').textContent()).toMatch(/^2 of 2 files uploaded/);

    // the API sees both, with the right bytes
    const files = await s.api('GET', `/dropzones/${dz._id}/files`);
    expect(files.status).toBe(200);
    const byName = new Map<string, any>(files.body.data.map((f: any) => [f.name, f]));
    for (const [name, bytes, type] of [['notes.txt', a, 'text/plain'], ['photo 1 – ü.jpg', b, 'image/jpeg']] as const) {
      const f = byName.get(name);
      expect(f, name).toBeDefined();
      expect(f).toMatchObject({ size: bytes.length, type, meta: { s3Status: 'uploaded' } });
      const dl = await fetch(`${s.url}/api/v1/files/${f._id}/download`, { headers: { 'x-api-key': ADMIN } });
      expect(dl.status).toBe(200);
      expect(Buffer.from(await dl.arrayBuffer()).equals(bytes)).toBe(true);
    }
    const used = cost(a.length, 'notes.txt', 'text/plain') + cost(b.length, 'photo 1 – ü.jpg', 'image/jpeg');
    expect((await s.api('GET', `/dropzones/${dz._id}`)).body.data.usedSpace).toBe(used);

    // an oversize file shows the error; the other file of the same batch still succeeds
    const big = randomBytes(MAX_FILE + 1);
    const ok = Buffer.from('still fine');
    await page.setInputFiles('#file-input', [
      { name: 'too-big.bin', mimeType: 'application/octet-stream', buffer: big },
      { name: 'small.txt', mimeType: 'text/plain', buffer: ok },
    ]);
    await page.waitForFunction(() => document.querySelectorAll('.item[data-state="done"]').length === 3, undefined, { timeout: 20_000 });
    const bigItem = stateOf(page, 'too-big.bin');
    expect(await bigItem.getAttribute('data-state')).toBe('error');
    expect(await bigItem.locator('.item-msg').textContent()).toBe('Too large: 1,000,001 bytes is over the limit of 1,000,000 bytes per file.');
    await page.waitForFunction(() => document.getElementById('alert')!.textContent!.includes('too-big.bin: Too large'));
    expect(await page.locator('#summary').textContent()).toMatch(/^3 of 4 files uploaded .*1 failed: too-big\.bin\.$/);
    const after = await s.api('GET', `/dropzones/${dz._id}/files`);
    expect(after.body.data.map((f: any) => f.name).sort()).toEqual(['notes.txt', 'photo 1 – ü.jpg', 'small.txt']);
    expect((await s.api('GET', `/dropzones/${dz._id}`)).body.data.usedSpace).toBe(used + cost(ok.length, 'small.txt', 'text/plain'));

    // keyboard: the first tab stop is the skip link, then the real picker button
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('pick');

    await page.screenshot({ path: join(OUT, 'page.png'), fullPage: true });
    const phone = await open(dz.uploadUrl, { width: 390, height: 844 });
    await phone.setInputFiles('#file-input', [{ name: 'from-phone.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') }]);
    await phone.waitForSelector('.item[data-state="done"]');
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBe(0); // readable on a phone: no sideways scrolling
    await phone.screenshot({ path: join(OUT, 'page-mobile.png'), fullPage: true });
    await phone.close();
    await page.close();
    expect(consoleErrors).toEqual([]);
  });

  it('an unknown code shows the friendly 404 page (no script needed)', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 700 } });
    const res = await page.goto(`${s.url}/d/AAAAAAAAAAAAAAAAAAAAAA`);
    expect(res!.status()).toBe(404);
    expect(await page.locator('h1').textContent()).toBe('Dropzone not found');
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).not.toBe('rgba(0, 0, 0, 0)'); // the stylesheet loaded
    await page.screenshot({ path: join(OUT, 'page-404.png') });
    await page.close();
  });

  it('a cancelled upload stops, releases its space, and does not stop the others', async () => {
    const dz = await s.createDropzone('cancel me');
    const page = await open(dz.uploadUrl);
    // slow the uplink so the big file is still in flight when cancelled
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 200_000 });
    await page.setInputFiles('#file-input', [
      { name: 'slow.bin', mimeType: 'application/octet-stream', buffer: randomBytes(900_000) },
      { name: 'quick.txt', mimeType: 'text/plain', buffer: Buffer.from('quick') },
    ]);
    // cancel mid-flight: some bytes sent, not all (this exercises xhr.abort, not just the queue)
    const slow = stateOf(page, 'slow.bin');
    await slow.locator('progress').evaluate(
      (bar: HTMLProgressElement) =>
        new Promise<void>((res) => {
          const check = () => (bar.value > 0 && bar.value < 60 ? res() : setTimeout(check, 20));
          check();
        }),
    );
    expect(await slow.getAttribute('data-state')).toBe('uploading');
    await page.waitForFunction(() => /\/s$/.test(document.querySelector('.item[data-state="uploading"] .item-detail')?.textContent ?? ''));
    expect(await slow.locator('.item-detail').textContent()).toMatch(/^[\d.]+ kB of 900 kB · \d+% · [\d.]+ kB\/s$/);
    await page.screenshot({ path: join(OUT, 'page-uploading.png') });
    await stateOf(page, 'slow.bin').getByRole('button', { name: 'Cancel upload of slow.bin' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.item[data-state="cancelled"]').length === 1);
    await page.waitForFunction(() => document.querySelectorAll('.item[data-state="done"]').length === 1, undefined, { timeout: 20_000 });
    expect(await stateOf(page, 'quick.txt').getAttribute('data-state')).toBe('done');
    expect(await slow.locator('.item-detail').textContent()).toMatch(/^Cancelled at \d+(\.\d)? kB of 900 kB$/);
    expect(await page.evaluate(() => document.activeElement?.id)).toMatch(/^u\d+$/); // focus stays on the item, not lost
    // the pending reservation of the cancelled file is released
    await expect.poll(async () => (await s.api('GET', `/dropzones/${dz._id}`)).body.data.usedSpace, { timeout: 5000 }).toBe(cost(5, 'quick.txt', 'text/plain'));
    const files = await s.api('GET', `/dropzones/${dz._id}/files`);
    expect(files.body.data.map((f: any) => f.name)).toEqual(['quick.txt']);
    await page.close();
  });

  it('lists and offers downloads only when anyone holds dropzone.list / dropzone.download', async () => {
    const dz = await s.createDropzone('shared');
    const up = await s.api('POST', `/dropzones/${dz._id}/files`, { name: 'shared.txt', type: 'text/plain', size: 6 });
    const put = await fetch(up.body.data.signedUrl, { method: 'PUT', headers: up.body.data.headers, body: 'shared' });
    expect(put.status).toBe(200);
    expect((await s.api('POST', `/files/${up.body.data.fileId}/confirm`)).status).toBe(200);

    let page = await open(dz.uploadUrl);
    expect(await page.locator('#files-section').isHidden()).toBe(true);
    await page.close();

    await s.api('POST', `/dropzones/${dz._id}/permissions`, { publicId: 'anyone', permissions: ['dropzone.list'] });
    page = await open(dz.uploadUrl);
    await page.waitForSelector('#files li');
    expect(await page.locator('#files li .fname').allTextContents()).toEqual(['shared.txt']);
    expect(await page.locator('#files a').count()).toBe(0); // listing, but no downloads
    await page.close();

    await s.api('POST', `/dropzones/${dz._id}/permissions`, { publicId: 'anyone', permissions: ['dropzone.download'] });
    page = await open(dz.uploadUrl);
    await page.waitForSelector('#files a');
    const href = await page.locator('#files a').getAttribute('href');
    expect(href).toBe(`${s.url}/cdn/${up.body.data.fileId}/download`);
    expect(await (await fetch(href!)).text()).toBe('shared');
    expect(await page.content()).not.toContain(dz._id);
    await page.close();
  });

  // Without server.publicUrl, signed upload URLs follow the host the page was opened under (not the listen address).
  it('a page opened under another host name than the listen address uploads (signed URLs follow the request host)', async () => {
    const dz = await s.createDropzone('other host');
    const page = await open(dz.uploadUrl.replace('//127.0.0.1:', '//localhost:'));
    expect(await page.locator('h1').textContent()).toBe('other host'); // the page itself loads fine
    await page.setInputFiles('#file-input', [{ name: 'x.txt', mimeType: 'text/plain', buffer: Buffer.from('x') }]);
    await page.waitForSelector('.item[data-state="done"], .item[data-state="error"]', { timeout: 10_000 });
    const state = await page.locator('.item').getAttribute('data-state');
    const msg = await page.locator('.item-msg').textContent();
    await page.close();
    expect([state, msg]).toEqual(['done', expect.any(String)]);
    const files = await s.api('GET', `/dropzones/${dz._id}/files`);
    expect(files.body.data.map((f: any) => [f.name, f.meta.s3Status])).toEqual([['x.txt', 'uploaded']]);
  });
});
