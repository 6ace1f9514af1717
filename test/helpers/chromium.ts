/**
 * Debian's Chromium for the browser suites, driven by playwright-core (no browser download). Without it a suite skips
 * and says why, except in CI (`CI` set), where a browser suite must run: there the missing browser fails the suite.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * True when the browser is there. Otherwise prints a loud skip notice naming `suite` and returns false — or, in CI,
 * throws, so a browser suite is never skipped there.
 */
export function haveChromium(suite: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  const why = `${CHROMIUM} is missing (apt-get install -y chromium; \`npm test\` does it when run as root)`;
  if (process.env.CI) throw new Error(`the browser tests of ${suite} cannot run in CI: ${why}`);
  const line = '!'.repeat(100);
  console.warn(`\n${line}\n!! SKIPPING the browser tests of ${suite}: ${why}\n${line}\n`);
  return false;
}

/** Launches headless Chromium with the flags these machines need (no sandbox, no GPU, no background traffic). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
