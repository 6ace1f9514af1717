/**
 * Partial uploads left in `blobs/.tmp` by a crashed process are removed at start, by the sweeper and by `dropzone gc`,
 * once nothing has written to them for `sweeper.tempMaxIdleSeconds`; uploads in flight (in this process, or recently
 * written by another one sharing the directory) are left alone.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/common.js';
import { main } from '../../src/main.js';
import { startTestServer } from '../helpers/server.js';

const IDLE = 600;

let tmp: string;
let dataDir: string;
let tmpDir: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-temp-'));
  dataDir = path.join(tmp, 'data');
  tmpDir = path.join(dataDir, 'blobs', '.tmp');
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A leftover like the ones `kill -9` leaves: a part file (and its sidecar) last written `ageMs` ago. */
function leftover(name: string, ageMs: number, bytes = 64 * 1024): void {
  fs.mkdirSync(tmpDir, { recursive: true });
  const when = new Date(Date.now() - ageMs);
  for (const [suffix, size] of [['.part', bytes], ['.meta', 10]] as const) {
    const p = path.join(tmpDir, name + suffix);
    fs.writeFileSync(p, Buffer.alloc(size, 1));
    fs.utimesSync(p, when, when);
  }
}
const left = () => fs.readdirSync(tmpDir).sort();

describe('stale temp files', () => {
  it('are removed at start; recent ones (another process may be writing them) stay', async () => {
    leftover('1-crashed', 2 * IDLE * 1000);
    leftover('2-recent', 10_000);
    const t = await startTestServer({ settings: { dataDir, 'sweeper.tempMaxIdleSeconds': IDLE } });
    try {
      expect(left()).toEqual(['2-recent.meta', '2-recent.part']);
    } finally {
      await t.close();
    }
  });

  it('are removed by the sweeper once idle long enough, never an upload in flight', async () => {
    const t = await startTestServer({ settings: { dataDir, 'sweeper.tempMaxIdleSeconds': IDLE } });
    try {
      const body = new PassThrough();
      const putting = t.server.app.ctx.blobs.put('objects/slow', body, { expectedSize: 8 });
      body.write('1234');
      for (let i = 0; i < 200 && !fs.existsSync(tmpDir); i++) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 200 && left().length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      const inFlight = left();
      expect(inFlight).toHaveLength(1);
      leftover('3-crashed', 0);

      await t.server.app.ctx.sweeper.sweep();
      expect(left()).toEqual([...inFlight, '3-crashed.meta', '3-crashed.part'].sort());

      t.clock.advance((IDLE + 1) * 1000);
      await t.server.app.ctx.sweeper.sweep();
      expect(left()).toEqual(inFlight);

      body.end('5678');
      await putting;
      expect(left()).toEqual([]);
      expect((await t.server.app.ctx.blobs.stat('objects/slow'))?.size).toBe(8);
    } finally {
      await t.close();
    }
  });

  it('an upload whose client disconnects mid-body leaves no temp file', async () => {
    const t = await startTestServer({ settings: { dataDir } });
    try {
      const dz = await t.createDropzone(t.adminKey);
      const up = await t.requestUpload(t.adminKey, dz._id, 'cut.bin', 1024 * 1024);
      const u = new URL(up.signedUrl);
      const sock = net.connect(Number(u.port), u.hostname);
      await new Promise((r) => sock.once('connect', r));
      const head = Object.entries(up.headers as Record<string, string>).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      sock.write(`PUT ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n${head}\r\n`);
      sock.write(Buffer.alloc(64 * 1024, 1));
      for (let i = 0; i < 400 && (!fs.existsSync(tmpDir) || left().length === 0); i++) await new Promise((r) => setTimeout(r, 5));
      expect(left()).toHaveLength(1);
      sock.destroy();
      for (let i = 0; i < 400 && left().length > 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(left()).toEqual([]);
      expect(await t.server.app.ctx.blobs.stat((await t.server.app.ctx.meta.fileById(up.fileId))!.blobKey)).toBeNull();
    } finally {
      await t.close();
    }
  });

  it('are removed by dropzone gc', async () => {
    const io: CliIo = { out: () => {}, err: () => {}, env: {} };
    expect(await main(['version'], io)).toBe(0);
    const t = await startTestServer({ settings: { dataDir } });
    await t.close();
    leftover('4-crashed', 2 * 3600 * 1000);
    const out: string[] = [];
    const code = await main(['gc', '--data-dir', dataDir, '--set', `sweeper.tempMaxIdleSeconds=${IDLE}`], { ...io, out: (l) => out.push(l) });
    expect(code).toBe(0);
    expect(left()).toEqual([]);
    expect(out.join('\n')).toMatch(/2 stale temp file\(s\)/);
  });
});
