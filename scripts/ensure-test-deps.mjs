#!/usr/bin/env node
// Runs before `npm test` (the "pretest" script): makes sure the system tools the test suite drives are present.
// Debian's chromium (browser tests), clamav-daemon (the virus-scan tests start a private clamd) and postgresql (the PostgreSQL store's tests initdb a private cluster with its
// binaries; the system cluster is never started) are installed with apt-get when missing and we are root; otherwise we
// only warn, and the dependent tests then skip themselves loudly with the reason.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

const missing = [];
if (!existsSync('/usr/bin/chromium')) missing.push('chromium');
if (!has('unzip')) missing.push('unzip');
// the X-Accel-Redirect suite runs a real nginx in front of the server
if (!has('nginx') && !existsSync('/usr/sbin/nginx')) missing.push('nginx');
const pgRoot = '/usr/lib/postgresql';
const haveInitdb = existsSync(pgRoot) && readdirSync(pgRoot).some((v) => existsSync(`${pgRoot}/${v}/bin/initdb`));
if (!haveInitdb) missing.push('postgresql');
// the virus-scan suite runs a private clamd (with a signature database it writes; no freshclam)
if (!existsSync('/usr/sbin/clamd') && !has('clamd')) missing.push('clamav-daemon');

if (missing.length === 0) process.exit(0);
if (process.env.DROPZONE_SKIP_APT === '1') {
  console.warn(`[ensure-test-deps] missing ${missing.join(', ')}; DROPZONE_SKIP_APT=1 so not installing (dependent tests will skip and say why)`);
  process.exit(0);
}
if (!isRoot || !has('apt-get')) {
  console.warn(`[ensure-test-deps] missing ${missing.join(', ')} and cannot install (needs root and apt-get); dependent tests will skip and say why`);
  process.exit(0);
}
console.log(`[ensure-test-deps] installing ${missing.join(', ')} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
try {
  execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
} catch (e) {
  console.warn(`[ensure-test-deps] apt-get failed (${e.message}); dependent tests will skip and say why`);
}
