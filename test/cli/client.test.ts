/**
 * The command-line client (`push`, `pull`, `ls`, `rm`, `share`) against a real in-process server, on both blob
 * backends: plain output when not on a terminal, live bars on one, a failing file among good ones, byte-identical pulls.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseClientArgs } from '../../src/cli/client-common.js';
import type { CliIo } from '../../src/cli/common.js';
import { formatBytes } from '../../src/util/units.js';
import { DropzoneClient } from '../../src/client/api.js';
import { fileCost } from '../../src/core/quota.js';
import { apiTarget } from '../../src/client/targets.js';
import { uploadFile } from '../../src/client/transfer.js';
import { main } from '../../src/main.js';
import { type TestServer, describeEachBackend, startTestServer } from '../helpers/server.js';

/** A CliIo that records lines; with `tty`, a fake terminal that records what the progress bars drew. */
function capture(env: Record<string, string | undefined>, tty = false) {
  const out: string[] = [];
  const err: string[] = [];
  let drawn = '';
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), env };
  if (tty) {
    const stream = new Writable({
      write(chunk, _enc, cb) {
        drawn += chunk.toString();
        cb();
      },
    }) as Writable & { isTTY: boolean; columns: number };
    stream.isTTY = true;
    stream.columns = 160;
    io.tty = stream;
  }
  return { io, out, err, drawn: () => drawn };
}

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-client-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Writes `bytes` to `<tmp>/<rel>` and returns the path. */
function file(rel: string, bytes: Uint8Array | string): string {
  const p = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, bytes);
  return p;
}

async function download(t: TestServer, key: string, fileId: string): Promise<Buffer> {
  const res = await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': key } });
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describeEachBackend('dropzone push / pull', (b) => {
  let t: TestServer;
  let key: string;
  let dz: any;
  let env: Record<string, string>;
  beforeAll(async () => {
    // Files over 2 MB are refused: a way to make one file of a push fail on the server's side.
    t = await b.start({ settings: { 'uploads.maxFileSize': 2_000_000 }, s3DownloadMode: 'redirect' });
  });
  afterAll(async () => {
    await t?.close();
  });
  beforeEach(async () => {
    key = (await t.createKey([], 10)).secret;
    dz = await t.createDropzone(key, { gb: 1, days: 30 });
    env = { DROPZONE_URL: t.url, DROPZONE_API_KEY: key };
  });

  const run = async (args: string[], opts: { env?: Record<string, string | undefined>; tty?: boolean } = {}) => {
    const c = capture(opts.env ?? env, opts.tty);
    const code = await main(args, c.io);
    return { code, out: c.out.join('\n'), err: c.err.join('\n'), drawn: c.drawn() };
  };
  const filesOf = async () => (await t.req('GET', `/dropzones/${dz._id}/files`, { key })).body.data as any[];

  it('not on a terminal: plain lines per file; a failing file is reported, the others are uploaded, exit 1', async () => {
    const big = randomBytes(1_500_000); // over 1 MB: quarter lines
    const paths = [file('a.txt', 'hello world\n'), file('too-large.bin', randomBytes(2_100_000)), file('big.bin', big), path.join(tmp, 'missing.txt')];
    const r = await run(['push', ...paths, '--to', dz._id]);
    expect(r.code).toBe(1);
    expect(r.drawn).toBe('');
    expect(r.out).not.toMatch(/\x1b\[/); // no terminal control sequences in plain output
    expect(r.out).toMatch(new RegExp(`${paths[0]}: uploading 12 B`));
    expect(r.out).toMatch(new RegExp(`${paths[0]}: uploaded 12 B in \\d+\\.\\ds \\(.*/s\\) → \\S+`));
    expect(r.out).toMatch(new RegExp(`${paths[2]}: (25|50|75)% \\(`));
    expect(r.err).toMatch(new RegExp(`${paths[1]}: FAILED: .*exceeds the maximum file size of 2000000 bytes`));
    expect(r.err).toMatch(new RegExp(`${paths[3]}: FAILED: no such file`));
    expect(r.err).toMatch(/2 of 4 file\(s\) failed; 2 uploaded\./);

    const files = await filesOf();
    expect(files.map((f) => f.name).sort()).toEqual(['a.txt', 'big.bin']);
    expect(files.every((f) => f.meta.s3Status === 'uploaded')).toBe(true);
    const ids = Object.fromEntries(files.map((f) => [f.name, f._id]));
    expect(r.out).toContain(`→ ${ids['a.txt']}`);
    expect((await download(t, key, ids['a.txt'])).toString()).toBe('hello world\n');
    expect((await download(t, key, ids['big.bin'])).equals(big)).toBe(true);
    // each file costs its size plus the per-file overhead
    expect(files.map((f) => f.size).sort((a, b) => a - b)).toEqual([12, big.length]);
    const cost = files.reduce((n, f) => n + fileCost({ size: f.size, name: f.name, type: f.type }), 0);
    expect((await t.req('GET', `/dropzones/${dz._id}`, { key })).body.data.usedSpace).toBe(cost);
  });

  it('on a terminal: a live bar per file with percent, bytes, speed and ETA; results after the bars', async () => {
    const paths = [file('one.txt', 'one'), file('two.csv', 'a,b\n1,2\n')];
    const r = await run(['push', ...paths, '--to', dz._id, '--parallel', '2'], { tty: true });
    expect(r.code).toBe(0);
    expect(r.drawn).toMatch(/one\.txt █+ 100% \| 3 B \/ 3 B \| [\d.]+ [k]?B\/s \| ETA\s+\d+s done/);
    expect(r.drawn).toMatch(/two\.csv.*100% \| 8 B \/ 8 B/);
    expect(r.out.split('\n')).toHaveLength(2);
    expect(r.out).toMatch(/one\.txt: uploaded 3 B in .* → \S+/);
    const files = await filesOf();
    expect(files.find((f) => f.name === 'two.csv')?.type).toBe('text/csv');
  });

  it('on a terminal, a failing file shows FAILED and its message; the exit code is 1', async () => {
    const r = await run(['push', file('ok.txt', 'fine'), path.join(tmp, 'nope.txt'), '--to', dz._id], { tty: true });
    expect(r.code).toBe(1);
    expect(r.drawn).toMatch(/nope\.txt.*FAILED/);
    expect(r.err).toMatch(/nope\.txt: FAILED: no such file/);
    expect((await filesOf()).map((f) => f.name)).toEqual(['ok.txt']);
  });

  it('to the page URL: no API key needed', async () => {
    expect(dz.uploadUrl).toMatch(/\/d\/[A-Za-z0-9_-]+$/);
    const r = await run(['push', file('via-page.txt', 'from the page link'), '--to', dz.uploadUrl], { env: {} });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const [f] = await filesOf();
    expect(f.name).toBe('via-page.txt');
    expect((await download(t, key, f._id)).toString()).toBe('from the page link');
  });

  it('a PUT the storage refuses cancels the pending upload, so its space is released', async () => {
    const client = new DropzoneClient({ url: t.url, key });
    const refusing: typeof fetch = (input, init) =>
      init?.method === 'PUT' ? Promise.resolve(new Response('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>', { status: 403 })) : fetch(input, init);
    const p = file('refused.bin', randomBytes(5000));
    await expect(uploadFile(apiTarget(client, dz._id), p, {}, refusing)).rejects.toThrow('the storage refused the bytes (HTTP 403: Request has expired)');
    expect(await filesOf()).toEqual([]);
    expect((await t.req('GET', `/dropzones/${dz._id}`, { key })).body.data.usedSpace).toBe(0);
  });

  it('pull writes every uploaded file byte for byte, refuses to overwrite without --force', async () => {
    const bytes = randomBytes(300_000);
    await t.upload(key, dz._id, 'data.bin', bytes);
    await t.upload(key, dz._id, 'notes.txt', 'some notes');
    await t.upload(key, dz._id, 'notes.txt', 'other notes'); // same name: written as "notes (2).txt"
    await t.upload(key, dz._id, '../escape.txt', 'stays inside');
    await t.requestUpload(key, dz._id, 'pending.txt', 5); // never uploaded: not pulled
    const out = path.join(tmp, 'out');
    const r = await run(['pull', dz._id, '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['.._escape.txt', 'data.bin', 'notes (2).txt', 'notes.txt']);
    expect(fs.readFileSync(path.join(out, 'data.bin')).equals(bytes)).toBe(true);
    // the two files of the same name, whichever the listing gave first under the plain name
    const first = fs.readFileSync(path.join(out, 'notes.txt'), 'utf8');
    expect([first, fs.readFileSync(path.join(out, 'notes (2).txt'), 'utf8')].sort()).toEqual(['other notes', 'some notes']);
    expect(fs.readFileSync(path.join(out, '.._escape.txt'), 'utf8')).toBe('stays inside');
    expect(r.out).toMatch(/data\.bin: downloaded 300 kB in/);

    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const again = await run(['pull', dz._id, '--out', out]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/notes\.txt exists; pass --force to overwrite it/);
    expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('mine');
    expect(fs.readdirSync(out).filter((n) => n.endsWith('.part'))).toEqual([]);

    const forced = await run(['pull', dz._id, '--out', out, '--force']);
    expect(forced.code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe(first);
  });

  it('pull --zip writes the ZIP endpoint byte for byte, named after the dropzone', async () => {
    const named = await t.createDropzone(key, { gb: 1, days: 30, name: 'reports' });
    await t.upload(key, named._id, 'a.txt', 'aaa');
    await t.upload(key, named._id, 'b.bin', randomBytes(70_000));
    const r = await run(['pull', named._id, '--zip', '--out', tmp]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const zip = fs.readFileSync(path.join(tmp, 'reports.zip'));
    const direct = Buffer.from(await (await fetch(`${t.api}/dropzones/${named._id}/zip`, { headers: { 'x-api-key': key } })).arrayBuffer());
    expect(zip.equals(direct)).toBe(true);
    const again = await run(['pull', named._id, '--zip', '--out', tmp]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/reports\.zip exists; pass --force/);
  });
});

describe('dropzone ls / rm / share', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });
  const run = async (args: string[], env: Record<string, string | undefined> = {}) => {
    const c = capture(env);
    const code = await main(args, c.io);
    return { code, out: c.out.join('\n'), err: c.err.join('\n') };
  };

  it('ls lists dropzones and files; share makes a file public; rm deletes files and dropzones', async () => {
    const key = (await t.createKey([], 10)).secret;
    const dz = await t.createDropzone(key, { gb: 1, days: 30, name: 'holiday' });
    const { fileId } = await t.upload(key, dz._id, 'photo.jpg', 'jpeg bytes');
    const env = { DROPZONE_URL: `${t.url}/api/v1/`, DROPZONE_API_KEY: key };

    const list = await run(['ls'], env);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^ID\s+USED\s+EXPIRES \(UTC\)\s+NAME$/m);
    const used = formatBytes((await t.req('GET', `/dropzones/${dz._id}`, { key })).body.data.usedSpace);
    expect(list.out).toMatch(new RegExp(`^${dz._id}\\s+${used} / 1 GB\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+holiday$`, 'm'));
    const files = await run(['ls', dz._id], env);
    expect(files.out).toMatch(new RegExp(`^${fileId}\\s+10 B\\s+uploaded\\s+photo\\.jpg$`, 'm'));
    expect(JSON.parse((await run(['ls', dz._id, '--json'], env)).out)[0]._id).toBe(fileId);

    expect((await fetch(`${t.url}/cdn/${fileId}/download`)).status).toBe(404);
    const share = await run(['share', fileId, '--public'], env);
    expect(share.code).toBe(0);
    expect(share.out).toBe(`${t.url}/cdn/${fileId}/download`);
    const pub = await fetch(share.out);
    expect(pub.status).toBe(200);
    expect(await pub.text()).toBe('jpeg bytes');

    const rm = await run(['rm', fileId, 'no-such-file'], env);
    expect(rm.code).toBe(1);
    expect(rm.out).toBe(`${fileId}: deleted`);
    expect(rm.err).toMatch(/no-such-file: FAILED: File not found\./);
    expect((await run(['ls', dz._id], env)).out).toBe('No files.');

    expect((await run(['rm', '--dropzone', dz._id], env)).code).toBe(0);
    expect((await t.req('GET', `/dropzones/${dz._id}`, { key })).status).toBe(404);
  });

  it('--url and --key override the environment; a wrong key is a clear failure (exit 1)', async () => {
    const key = (await t.createKey([], 1)).secret;
    const r = await run(['ls', '--url', t.url, '--key', 'dzk_wrong'], { DROPZONE_URL: 'http://127.0.0.1:1', DROPZONE_API_KEY: key });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dropzone: Invalid API key\. \(check --key or DROPZONE_API_KEY\)$/);
    const ok = await run(['ls', '--key', key], { DROPZONE_URL: t.url });
    expect(ok.code).toBe(0);
  });

  it('an unreachable server is named, not a stack trace', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const r = await run(['ls'], { DROPZONE_URL: `http://127.0.0.1:${port}`, DROPZONE_API_KEY: 'dzk_x' });
    expect(r.code).toBe(1);
    expect(r.err).toBe(`dropzone: could not reach 127.0.0.1:${port} (ECONNREFUSED)`);
  });

  it.each([
    [['push', 'x.txt'], /push needs --to/],
    [['push', '--to', 'dz'], /push needs at least one file/],
    [['push', 'x.txt', '--to', 'dz'], /no server: pass --url <url> or set DROPZONE_URL/],
    [['push', 'x.txt', '--to', 'dz', '--url', 'http://h'], /no API key: pass --key <secret> or set DROPZONE_API_KEY/],
    [['push', 'x.txt', '--to', 'dz', '-j', '0'], /--parallel must be an integer from 1 to 16/],
    [['push', 'x.txt', '--to', 'https://h/not-a-page'], /is not a dropzone page URL/],
    [['pull'], /pull needs exactly one dropzone id/],
    [['share', 'f1'], /share needs --public/],
    [['rm'], /rm needs file ids or --dropzone/],
    [['ls', '--url', 'ftp://h', '--key', 'k'], /not an http\(s\) URL/],
  ])('usage error %j → exit 2', async (args, message) => {
    const r = await run(args as string[]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).toMatch(new RegExp(`dropzone ${(args as string[])[0]} --help`));
  });

  it.each(['push', 'pull', 'ls', 'rm', 'share'])('%s --help', async (cmd) => {
    const r = await run([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^Usage: dropzone ${cmd}`));
    expect(r.out).toMatch(/DROPZONE_API_KEY/);
  });
});

describe('ids that start with "-"', () => {
  // base64url ids start with "-" about once in 32 times; they must not read as options.
  it('are positionals, or the value of the option before them', () => {
    const id = '-Kd83jd_ka93kdLw0dk3Ld';
    const r = parseClientArgs(['pull', id, '-o', '-out', '--to', '-x', '-f', '--', '--literal'].slice(1), {
      out: { type: 'string', short: 'o' },
      to: { type: 'string' },
      force: { type: 'boolean', short: 'f' },
    });
    expect(r.positionals).toEqual([id, '--literal']);
    expect(r.values).toEqual({ out: '-out', to: '-x', force: true });
  });

  it('unknown short options are still refused', () => {
    expect(() => parseClientArgs(['-z'], { force: { type: 'boolean', short: 'f' } })).toThrow(/-z/);
  });
});
