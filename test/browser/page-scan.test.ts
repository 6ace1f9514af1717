/**
 * The dropzone page follows the virus scan (issue 13) in Debian's Chromium: an uploaded file shows "Checking…" while
 * the server scans it, then "Uploaded, checked" when clean or "Quarantined" (with its message) when infected. The
 * scanner is the command hook: a small Node script that waits until a gate file exists, then answers by a marker in
 * the bytes. Without the browser the suite is skipped with a loud banner (in CI it fails).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveChromium, launchChromium } from '../helpers/chromium.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

const HAVE_CHROMIUM = haveChromium('the dropzone page (virus scan)');

/** Exit 1 (infected) for bytes holding INFECTED-MARKER, else 0; first waits until the file named by argv[2] exists. */
const SCANNER = `
import { existsSync } from 'node:fs';
let text = '';
for await (const c of process.stdin) text += c;
while (!existsSync(process.argv[2])) await new Promise((r) => setTimeout(r, 20));
if (text.includes('INFECTED-MARKER')) { console.log('Test.Marker'); process.exit(1); }
process.exit(0);
`;

describe.skipIf(!HAVE_CHROMIUM)('dropzone page with the virus scan, in Chromium', () => {
  let t: TestServer;
  let browser: Browser;
  let dir: string;
  let gate: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dz-page-scan-'));
    gate = join(dir, 'open');
    writeFileSync(join(dir, 'scanner.mjs'), SCANNER);
    [t, browser] = await Promise.all([
      startTestServer({
        settings: { 'scan.enabled': true, 'scan.engine': 'command', 'scan.command': [process.execPath, join(dir, 'scanner.mjs'), gate] },
      }),
      launchChromium(),
    ]);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const item = (page: Page, name: string) => page.locator('.item', { has: page.getByText(name, { exact: true }) });

  it('shows "Checking…" while the file is scanned, then the verdict per file', async () => {
    const dz = await t.createDropzone(t.adminKey, { gb: 1, days: 30, name: 'scanned' });
    const page = await browser.newPage();
    try {
      await page.goto(dz.uploadUrl);
      await page.waitForSelector('html[data-ready="true"]');
      await page.setInputFiles('#file-input', [
        { name: 'report.txt', mimeType: 'text/plain', buffer: Buffer.from('a clean report\n') },
        { name: 'payload.txt', mimeType: 'text/plain', buffer: Buffer.from('xx INFECTED-MARKER xx\n') },
      ]);
      // the scanner waits for the gate: both are uploaded and checked
      for (const name of ['report.txt', 'payload.txt']) {
        await expect.poll(() => item(page, name).getAttribute('data-state'), { timeout: 20_000 }).toBe('checking');
        expect(await item(page, name).locator('.item-state').textContent()).toBe('Checking…');
      }
      expect(existsSync(gate)).toBe(false);
      writeFileSync(gate, '');
      await expect.poll(() => item(page, 'report.txt').getAttribute('data-state'), { timeout: 20_000 }).toBe('done');
      expect(await item(page, 'report.txt').locator('.item-state').textContent()).toBe('Uploaded, checked');
      await expect.poll(() => item(page, 'payload.txt').getAttribute('data-state'), { timeout: 20_000 }).toBe('error');
      expect(await item(page, 'payload.txt').locator('.item-state').textContent()).toBe('Quarantined');
      expect(await item(page, 'payload.txt').locator('.item-msg').textContent()).toContain('virus');
    } finally {
      await page.close();
    }
  }, 90_000);
});
