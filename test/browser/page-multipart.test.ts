/**
 * The dropzone page sends big files (over `uploads.pageMultipartAboveBytes`, here 16 MiB) in parts, in Debian's Chromium, on every backend: a cut part is sent
 * again alone, and after a reload choosing the same file again continues with the parts the server holds (the page
 * remembers the upload in localStorage by name, size and modification time). Without the browser the suite is skipped
 * with a loud banner (in CI it fails).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { allowBrowserUploads } from '../helpers/bucket-cors.js';
import { haveChromium, launchChromium } from '../helpers/chromium.js';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const HAVE_CHROMIUM = haveChromium('the dropzone page (multipart)');
const MIB = 2 ** 20;

/** Writes `size` deterministic bytes to `path`; answers their SHA-256. */
function writeBytes(path: string, size: number, seed: string): string {
  const buf = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += 32) {
    block.copy(buf, off);
    if ((off & 0xffff) === 0) block = createHash('sha256').update(block).digest();
  }
  writeFileSync(path, buf);
  return createHash('sha256').update(buf).digest('hex');
}

describeEachBackend('dropzone page multipart in Chromium', (b: BackendContext) => {
  if (!HAVE_CHROMIUM) {
    it.skip('needs Chromium (see the banner above)', () => undefined);
    return;
  }
  let t: TestServer;
  let browser: Browser;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dz-page-mp-'));
    [t, browser] = await Promise.all([b.start({ settings: { 'uploads.pageMultipartAboveBytes': 16 * MIB, 'uploads.pagePartsInFlight': 3 } }), launchChromium()]);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function dropzone(name: string) {
    const dz = await t.createDropzone(t.adminKey, { gb: 1, days: 30, name });
    if (b.name === 's3') await allowBrowserUploads(t, dz._id, t.url);
    return dz;
  }

  /** The page of `dz` with a counter of part PUTs by part number (kept across reloads). */
  async function openPage(dz: any): Promise<{ page: Page; partPuts: Map<number, number> }> {
    const page = await browser.newPage();
    page.on('dialog', (d) => void d.accept()); // leaving in the middle of an upload asks first
    const partPuts = new Map<number, number>();
    page.on('request', (req) => {
      const n = new URL(req.url()).searchParams.get('partNumber');
      if (req.method() === 'PUT' && n) partPuts.set(Number(n), (partPuts.get(Number(n)) ?? 0) + 1);
    });
    await page.goto(dz.uploadUrl);
    await page.waitForSelector('html[data-ready="true"]');
    return { page, partPuts };
  }

  /** Waits until the page shows the upload of `name` finished, and expects it done (else shows its message). */
  async function expectDone(page: Page, name: string) {
    await page.waitForFunction(
      (n) => [...document.querySelectorAll('.item')].some((li) => li.querySelector('.item-name')?.textContent === n && /^(done|error)$/.test(li.getAttribute('data-state') ?? '')),
      name,
      { timeout: 240_000, polling: 200 },
    );
    const item = page.locator('.item', { has: page.getByText(name, { exact: true }) });
    expect(await item.getAttribute('data-state'), (await item.locator('.item-msg').textContent()) ?? '').toBe('done');
  }

  /** The dropzone's files by name (admin view). */
  async function filesNamed(dzId: string, name: string): Promise<any[]> {
    const r = await t.req('GET', `/dropzones/${dzId}/files`, { key: t.adminKey });
    expect(r.status, r.text).toBe(200);
    return r.body.data.filter((f: any) => f.name === name);
  }

  async function expectIdentical(fileId: string, sha: string) {
    const res = await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': t.adminKey } });
    expect(res.status).toBe(200);
    const hash = createHash('sha256');
    for await (const chunk of res.body as any) hash.update(chunk);
    expect(hash.digest('hex')).toBe(sha);
  }

  it('a part cut by the network is sent again alone, and the file arrives byte-identical', async () => {
    const dz = await dropzone('page-mp-cut');
    const name = 'cut-26.bin';
    const path = join(dir, name);
    const size = 26 * MIB + 17; // 6 parts of 5 MiB: over the configured 16 MiB, under the default 64 MiB
    const sha = writeBytes(path, size, 'cut');
    const { page, partPuts } = await openPage(dz);
    try {
      let cuts = 0;
      await page.route(
        (url) => url.searchParams.get('partNumber') === '2',
        (route) => (route.request().method() === 'PUT' && cuts++ < 2 ? route.abort('connectionreset') : route.continue()),
      );
      await page.setInputFiles('#file-input', path);
      await expectDone(page, name);
      const [f] = await filesNamed(dz._id, name);
      expect(f).toMatchObject({ size, meta: { s3Status: 'uploaded' } });
      await expectIdentical(f._id, sha);
      expect(cuts).toBe(3); // two cut, the third went through
      expect(partPuts.get(2)).toBe(3);
      for (let n = 1; n <= 6; n++) if (n !== 2) expect(partPuts.get(n), `part ${n}`).toBe(1);
      expect(partPuts.size).toBe(6);
    } finally {
      await page.close();
    }
  }, 300_000);

  it('after a reload, choosing the same file again continues where it stopped (no finished part is sent again)', async () => {
    const dz = await dropzone('page-mp-reload');
    const name = 'reload-51.bin';
    const path = join(dir, name);
    const size = 51 * MIB + 3; // 11 parts of 5 MiB
    const sha = writeBytes(path, size, 'reload');
    const { page, partPuts } = await openPage(dz);
    try {
      await page.setInputFiles('#file-input', path);
      // wait until the server holds a few parts, then leave the page in the middle of the upload
      let pending: any;
      let held: number[] = [];
      await expect
        .poll(
          async () => {
            [pending] = await filesNamed(dz._id, name);
            const uploadId = pending && (await t.server.app.ctx.meta.fileById(pending._id))?.multipartUploadId;
            if (!uploadId) return 0;
            const listed = await t.req('GET', `/files/${pending._id}/multipart/${encodeURIComponent(uploadId)}`, { key: t.adminKey });
            held = listed.body.data.parts.map((p: any) => p.PartNumber);
            return held.length;
          },
          { timeout: 120_000, interval: 50 },
        )
        .toBeGreaterThanOrEqual(3);
      await page.reload();
      await page.waitForSelector('html[data-ready="true"]');
      expect(held.length).toBeLessThan(11);
      expect((await filesNamed(dz._id, name))[0].meta.s3Status).not.toBe('uploaded');

      await page.setInputFiles('#file-input', path);
      await expectDone(page, name);
      // the same reservation finished: one file of that name, the one started before the reload
      const files = await filesNamed(dz._id, name);
      expect(files.map((f) => [f._id, f.meta.s3Status])).toEqual([[pending._id, 'uploaded']]);
      await expectIdentical(pending._id, sha);
      for (const n of held) expect(partPuts.get(n), `part ${n} was held before the reload`).toBe(1);
      expect(partPuts.size).toBe(11);
      // nothing left to resume: the page forgot the upload
      expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('dz-mp:')))).toEqual([]);
    } finally {
      await page.close();
    }
  }, 300_000);
});
