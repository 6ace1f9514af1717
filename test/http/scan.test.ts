/**
 * Issue 13, virus scanning: a confirmed file is `scanning` until a scanner answers, then `clean` (served as before),
 * `quarantined` (never served) or `scan_failed` (`scan.onFailure`). Runs a real clamd with a private signature
 * database written here (test/helpers/clamd.ts) and the command hook with a small node script, on every backend.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Clamd, clamdMissing, hashSignature, startClamd } from '../helpers/clamd.js';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const INFECTED = Buffer.from('dropzone test malware: this exact text is in the private signature database\n');
const CLEAN = Buffer.from('a perfectly ordinary report\n');

/**
 * The command hook under test: reads the file (from `{path}` or stdin); exit 1 naming `Test.Marker` when it holds
 * INFECTED-MARKER, 2 when it holds FAIL-MARKER, else 0. With GATE set it first waits until that file exists; with
 * HANG set it never answers (the timeout must end it).
 */
const SCANNER_SCRIPT = `
import { existsSync, readFileSync } from 'node:fs';
const [mode, arg] = process.argv.slice(2);
const read = async () => {
  if (mode === 'path') return readFileSync(arg, 'utf8');
  let s = '';
  for await (const c of process.stdin) s += c;
  return s;
};
const text = await read();
if (process.env.HANG) setInterval(() => {}, 1000);
else {
  while (process.env.GATE && !existsSync(process.env.GATE)) await new Promise((r) => setTimeout(r, 20));
  if (text.includes('INFECTED-MARKER')) { console.log('Test.Marker'); process.exit(1); }
  if (text.includes('FAIL-MARKER')) process.exit(2);
  process.exit(0);
}
`;

let scriptDir: string;
beforeAll(() => {
  scriptDir = mkdtempSync(join(tmpdir(), 'dz-scan-script-'));
  writeFileSync(join(scriptDir, 'scanner.mjs'), SCANNER_SCRIPT);
});
afterAll(() => rmSync(scriptDir, { recursive: true, force: true }));

/** Settings of a command-hook scanner (stdin, or `{path}` with `viaPath`). */
const commandScan = (extra: Record<string, unknown> = {}, viaPath = false) => ({
  'scan.enabled': true,
  'scan.engine': 'command',
  'scan.command': [process.execPath, join(scriptDir, 'scanner.mjs'), viaPath ? 'path' : 'stdin', ...(viaPath ? ['{path}'] : [])],
  ...extra,
});

/** A dropzone of the admin's, with `anyone` allowed to download its files (public links). */
async function publicDropzone(t: TestServer) {
  const dz = await t.createDropzone(t.adminKey, { gb: 1, days: 30 });
  const g = await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: t.adminKey, body: { publicId: 'anyone', permissions: ['dropzone.download'] } });
  expect(g.status).toBeLessThan(300);
  return dz;
}

const fileState = async (t: TestServer, fileId: string) => (await t.req('GET', `/files/${fileId}`, { key: t.adminKey })).body.data.meta.scanStatus;
const download = (t: TestServer, fileId: string) => t.req('GET', `/files/${fileId}/download`, { key: t.adminKey });
const publicLink = (t: TestServer, fileId: string) => t.req('GET', `//cdn/${fileId}/download`);
/** Names of the entries of the dropzone's ZIP (read from its central directory). */
async function zipNames(t: TestServer, dzId: string): Promise<string[]> {
  const res = await fetch(`${t.api}/dropzones/${dzId}/zip`, { headers: { 'x-api-key': t.adminKey } });
  expect(res.status).toBe(200);
  const buf = Buffer.from(await res.arrayBuffer());
  const names: string[] = [];
  for (let i = buf.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); i >= 0; i = buf.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), i + 4)) {
    const nameLen = buf.readUInt16LE(i + 28);
    names.push(buf.subarray(i + 46, i + 46 + nameLen).toString('utf8'));
  }
  return names.sort();
}

const missing = clamdMissing();
if (missing) process.stderr.write(`SKIPPED the clamd cases of scan.test.ts: ${missing}\n`);

describeEachBackend('virus scanning', (b: BackendContext) => {
  describe.skipIf(Boolean(missing))('with a real clamd and a private signature database', () => {
    let clamd: Clamd;
    let t: TestServer;
    beforeAll(async () => {
      clamd = await startClamd([hashSignature(INFECTED, 'Dropzone.Test.Infected')]);
      t = await b.start({ settings: { 'scan.enabled': true, 'scan.engine': 'clamd', 'scan.clamd.socket': clamd.socket } });
    }, 90_000);
    afterAll(async () => {
      await t?.close();
      await clamd?.stop();
    });

    it('clean files are served once scanned; infected ones are quarantined (kept, never served, not in ZIPs)', async () => {
      const dz = await publicDropzone(t);
      const clean = await t.upload(t.adminKey, dz._id, 'report.txt', CLEAN);
      const bad = await t.upload(t.adminKey, dz._id, 'bad.txt', INFECTED);
      // the confirm answers the state the file starts in; s3Status is unchanged
      expect(clean.file.meta).toMatchObject({ s3Status: 'uploaded', scanStatus: 'scanning' });
      await t.server.app.ctx.scan.idle();
      expect(await fileState(t, clean.fileId)).toBe('clean');
      expect(await fileState(t, bad.fileId)).toBe('quarantined');
      const ok = await download(t, clean.fileId);
      expect(ok.status).toBe(200);
      expect(ok.text).toBe(CLEAN.toString());
      for (const res of [await download(t, bad.fileId), await publicLink(t, bad.fileId)]) {
        expect(res.status).toBe(409);
        expect(res.body).toMatchObject({ status: 'error', code: 'FILE_QUARANTINED' });
      }
      expect((await publicLink(t, clean.fileId)).status).toBe(200);
      expect(await zipNames(t, dz._id)).toEqual(['report.txt']);
      // scan.quarantine = "keep": the bytes stay in the store
      expect(await t.blobKeys()).toContain((await t.server.app.ctx.meta.fileById(bad.fileId))!.blobKey);
      // the owner may still delete it
      expect((await t.req('DELETE', `/files/${bad.fileId}`, { key: t.adminKey })).status).toBeLessThan(300);
    });

    it('a clamd that is gone makes the scan fail: held by default (409 FILE_SCAN_FAILED)', async () => {
      const gone = await t.restart({ 'scan.clamd.socket': join(scriptDir, 'no-such.sock') });
      t = gone;
      const dz = await publicDropzone(t);
      const f = await t.upload(t.adminKey, dz._id, 'x.txt', CLEAN);
      await t.server.app.ctx.scan.idle();
      expect(await fileState(t, f.fileId)).toBe('scan_failed');
      const res = await download(t, f.fileId);
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('FILE_SCAN_FAILED');
    });
  });

  describe('with the command hook', () => {
    let t: TestServer | undefined;
    let gateDir: string;
    beforeAll(() => {
      gateDir = mkdtempSync(join(tmpdir(), 'dz-scan-gate-'));
    });
    afterAll(async () => {
      await t?.close();
      rmSync(gateDir, { recursive: true, force: true });
    });

    it('while scanning, the file is refused everywhere (409 FILE_SCANNING) and left out of ZIPs; then served', async () => {
      const gate = join(gateDir, 'open-1');
      process.env.GATE = gate; // inherited by the scanner command
      try {
        t = await b.start({ settings: commandScan() });
        const dz = await publicDropzone(t);
        const before = await t.upload(t.adminKey, dz._id, 'first.txt', CLEAN);
        const f = await t.upload(t.adminKey, dz._id, 'second.txt', CLEAN);
        expect(await fileState(t, f.fileId)).toBe('scanning');
        for (const res of [await download(t, f.fileId), await publicLink(t, f.fileId), await download(t, before.fileId)]) {
          expect(res.status).toBe(409);
          expect(res.body).toMatchObject({ status: 'error', code: 'FILE_SCANNING' });
        }
        expect(await zipNames(t, dz._id)).toEqual([]);
        writeFileSync(gate, '');
        await t.server.app.ctx.scan.idle();
        expect(await fileState(t, f.fileId)).toBe('clean');
        expect((await download(t, f.fileId)).text).toBe(CLEAN.toString());
        expect(await zipNames(t, dz._id)).toEqual(['first.txt', 'second.txt']);
      } finally {
        delete process.env.GATE;
        await t?.close();
        t = undefined;
      }
    });

    it('the drop page follows the scan: confirm answers scanning, GET uploads/:id then the final state', async () => {
      const gate = join(gateDir, 'open-page');
      process.env.GATE = gate;
      try {
        t = await b.start({ settings: commandScan() });
        const dz = await t.createDropzone(t.adminKey, { gb: 1, days: 30 });
        const html = await (await fetch(dz.uploadUrl)).text();
        const token = JSON.parse(/<script type="application\/json" id="dz-config">([^<]*)<\/script>/.exec(html)![1]).token as string;
        const page = async (method: string, path: string, body?: unknown) => {
          const res = await fetch(`${t!.url}/d/${dz.code}/api/${path}`, {
            method,
            headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
            body: body !== undefined ? JSON.stringify(body) : undefined,
          });
          return { status: res.status, body: await res.json() };
        };
        const up = await page('POST', 'uploads', { name: 'page.txt', type: 'text/plain', size: CLEAN.length });
        expect(up.status).toBe(200);
        expect((await t.put(up.body.data, CLEAN)).status).toBe(200);
        const confirmed = await page('POST', `uploads/${up.body.data.fileId}/confirm`);
        expect(confirmed.body.data.file).toMatchObject({ status: 'uploaded', scanStatus: 'scanning' });
        expect((await page('GET', `uploads/${up.body.data.fileId}`)).body.data.file.scanStatus).toBe('scanning');
        writeFileSync(gate, '');
        await t.server.app.ctx.scan.idle();
        expect((await page('GET', `uploads/${up.body.data.fileId}`)).body.data.file.scanStatus).toBe('clean');
        // files of other dropzones stay invisible
        const other = await t.createDropzone(t.adminKey, { gb: 1, days: 30 });
        const foreign = await t.upload(t.adminKey, other._id, 'other.txt', CLEAN);
        expect((await page('GET', `uploads/${foreign.fileId}`)).status).toBe(404);
      } finally {
        delete process.env.GATE;
        await t?.close();
        t = undefined;
      }
    });

    it('exit 1 quarantines (scan.quarantine = "delete" deletes the bytes); another exit code is scan_failed', async () => {
      t = await b.start({ settings: commandScan({ 'scan.quarantine': 'delete' }, true) });
      const dz = await publicDropzone(t);
      const bad = await t.upload(t.adminKey, dz._id, 'bad.bin', 'xx INFECTED-MARKER xx');
      const failed = await t.upload(t.adminKey, dz._id, 'odd.bin', 'xx FAIL-MARKER xx');
      const good = await t.upload(t.adminKey, dz._id, 'good.bin', 'fine');
      await t.server.app.ctx.scan.idle();
      expect(await fileState(t, bad.fileId)).toBe('quarantined');
      expect(await fileState(t, failed.fileId)).toBe('scan_failed');
      expect(await fileState(t, good.fileId)).toBe('clean');
      const badKey = (await t.server.app.ctx.meta.fileById(bad.fileId))!.blobKey;
      expect(await t.blobKeys()).not.toContain(badKey);
      expect((await download(t, bad.fileId)).body.code).toBe('FILE_QUARANTINED');
      await t.close();
      t = undefined;
    });

    it('with webhooks on, a quarantine is delivered as file.quarantined (the event commits with the state change)', async () => {
      const got: any[] = [];
      const receiver = createServer((req, res) => {
        let body = '';
        req.on('data', (d) => (body += d)).on('end', () => {
          got.push(JSON.parse(body));
          res.end();
        });
      });
      await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
      try {
        t = await b.start({ settings: commandScan({ 'webhooks.enabled': true, 'webhooks.allowTargets': ['127.0.0.1'] }, true) });
        const port = (receiver.address() as AddressInfo).port;
        const sub = await t.req('POST', '/webhooks', { key: t.adminKey, body: { url: `http://127.0.0.1:${port}/hook`, events: ['file.quarantined'] } });
        expect(sub.status, sub.text).toBe(201);
        const dz = await publicDropzone(t);
        const bad = await t.upload(t.adminKey, dz._id, 'bad.bin', 'xx INFECTED-MARKER xx');
        const good = await t.upload(t.adminKey, dz._id, 'good.bin', 'fine');
        await t.server.app.ctx.scan.idle();
        await t.server.app.ctx.webhookDispatcher.runOnce();
        await expect.poll(() => got.length, { timeout: 10_000 }).toBe(1);
        expect(got[0]).toMatchObject({ type: 'file.quarantined', fileId: bad.fileId });
        expect(got.some((e) => e.fileId === good.fileId)).toBe(false);
      } finally {
        await t?.close();
        t = undefined;
        receiver.close();
      }
    });

    it('a scan over scan.timeoutMs is scan_failed: held with onFailure = "hold", served with "serve"', async () => {
      process.env.HANG = '1';
      try {
        for (const onFailure of ['hold', 'serve'] as const) {
          t = await b.start({ settings: commandScan({ 'scan.timeoutMs': 300, 'scan.onFailure': onFailure }) });
          const dz = await publicDropzone(t);
          const f = await t.upload(t.adminKey, dz._id, 'slow.txt', CLEAN);
          await t.server.app.ctx.scan.idle();
          expect(await fileState(t, f.fileId)).toBe('scan_failed');
          const res = await download(t, f.fileId);
          if (onFailure === 'hold') expect(res.body).toMatchObject({ status: 'error', code: 'FILE_SCAN_FAILED' });
          else expect(res.text).toBe(CLEAN.toString());
          expect(await zipNames(t, dz._id)).toEqual(onFailure === 'hold' ? [] : ['slow.txt']);
          await t.close();
          t = undefined;
        }
      } finally {
        delete process.env.HANG;
      }
    });

    it('files left scanning by a stopped server are scanned after the restart', async () => {
      process.env.HANG = '1';
      let first: TestServer | undefined;
      try {
        first = await b.start({ settings: commandScan({ 'scan.timeoutMs': 600_000 }) });
        const dz = await publicDropzone(first);
        const f = await first.upload(first.adminKey, dz._id, 'left.txt', CLEAN);
        expect(await fileState(first, f.fileId)).toBe('scanning');
        delete process.env.HANG;
        t = await first.restart();
        await t.server.app.ctx.scan.idle();
        expect(await fileState(t, f.fileId)).toBe('clean');
        expect((await download(t, f.fileId)).text).toBe(CLEAN.toString());
      } finally {
        delete process.env.HANG;
        await first?.close();
        await t?.close();
        t = undefined;
      }
    });
  });

  it('with scanning off nothing changes: no scanStatus, served at once', async () => {
    const t = await b.start();
    try {
      const dz = await t.createDropzone(t.adminKey, { gb: 1, days: 30 });
      const f = await t.upload(t.adminKey, dz._id, 'plain.txt', CLEAN);
      expect(f.file.meta).not.toHaveProperty('scanStatus');
      expect(f.file.meta.s3Status).toBe('uploaded');
      expect((await download(t, f.fileId)).text).toBe(CLEAN.toString());
    } finally {
      await t.close();
    }
  });
});
