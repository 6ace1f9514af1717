/**
 * A full disk: deletions through the API still commit and free space (the server releases its space reserve when
 * SQLite reports the disk full), uploads get a clear "storage full" (507, S3-style XML on `/_blobs`), `/readyz` names
 * it, and a restart on the full disk works read-mostly and says so. Runs on a small tmpfs the test mounts (root only).
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { type TestServer, startTestServer } from '../helpers/server.js';

/** Truncates the WAL of the database at `file` from a second connection (what a restart or a checkpoint leaves). */
function checkpoint(file: string): void {
  const db = new Database(file);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

const MiB = 1024 * 1024;
const RESERVE = MiB;

let mnt: string | undefined;
let why: string | undefined;
if (process.getuid?.() !== 0) why = 'needs root to mount a tmpfs';
else {
  mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-full-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', mnt], { encoding: 'utf8' });
  if (r.status !== 0) {
    why = `cannot mount a tmpfs: ${(r.stderr || r.error?.message || '').trim()}`;
    fs.rmdirSync(mnt);
    mnt = undefined;
  }
}
// printed at collection time, straight to stderr (vitest hides console output of skipped tests)
if (why) process.stderr.write(`SKIPPED "full disk": ${why}\n`);

afterAll(() => {
  if (!mnt) return;
  spawnSync('umount', [mnt]);
  fs.rmdirSync(mnt);
});

/** Fills the filesystem of `dir` to the last byte with a file outside the server's data; returns its path. */
function fillDisk(dir: string): string {
  const filler = path.join(dir, `filler-${randomBytes(4).toString('hex')}`);
  const fd = fs.openSync(filler, 'w');
  try {
    for (const size of [MiB, 64 * 1024, 4096, 512, 1]) {
      const buf = Buffer.alloc(size, 7);
      try {
        for (;;) fs.writeSync(fd, buf);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return filler;
}

describe.skipIf(!mnt)(`full disk${why ? ` (skipped: ${why})` : ''}`, () => {
  const servers: TestServer[] = [];
  const start = async (dataDir: string) => {
    const t = await startTestServer({ settings: { dataDir, 'storage.reserveBytes': RESERVE } });
    servers.push(t);
    return t;
  };
  afterEach(async () => {
    for (const t of servers.splice(0)) await t.close().catch(() => undefined);
    for (const name of fs.readdirSync(mnt!)) fs.rmSync(path.join(mnt!, name), { recursive: true, force: true });
  });

  it('deletes through the API and frees the space; uploads get 507; /readyz names it', async () => {
    const dataDir = path.join(mnt!, 'data');
    const t = await start(dataDir);
    expect(fs.statSync(path.join(dataDir, 'space-reserve')).size).toBe(RESERVE);
    const dz = await t.createDropzone(t.adminKey);
    const a = await t.upload(t.adminKey, dz._id, 'a.bin', randomBytes(MiB));
    const bBytes = randomBytes(MiB);
    const b = await t.upload(t.adminKey, dz._id, 'b.bin', bBytes);
    const pending = await t.requestUpload(t.adminKey, dz._id, 'c.bin', MiB);
    // what a restart or a checkpoint leaves: an empty WAL, so the next commit needs new blocks
    checkpoint(path.join(dataDir, 'dropzone.db'));
    const filler = fillDisk(mnt!);

    // larger than what is left: the write fails mid-body, the answer still arrives
    const put = await t.put(pending, randomBytes(MiB));
    expect(put.status).toBe(507);
    const xml = await put.text();
    expect(xml).toContain('<Code>ServiceUnavailable</Code>');
    expect(xml).toMatch(/storage is full/i);
    expect(fs.readdirSync(path.join(dataDir, 'blobs', '.tmp'))).toEqual([]);

    const more = await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'd.bin', type: 'application/octet-stream', size: 10 } });
    expect(more.status).toBe(507);
    expect(more.body.message).toMatch(/storage is full/i);

    const ready = await t.req('GET', '//readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.message).toMatch(/storage is full/i);

    // reading still works
    const dl = await t.req('GET', `/files/${b.fileId}/download`, { key: t.adminKey });
    expect(dl.status).toBe(200);
    expect(Buffer.from(dl.text, 'latin1').length).toBeGreaterThan(0);

    const free = () => fs.statfsSync(mnt!).bavail * fs.statfsSync(mnt!).bsize;
    const before = free();
    const del = await t.req('DELETE', `/files/${a.fileId}`, { key: t.adminKey });
    expect(del.status, del.text).toBe(200);
    expect((await t.req('GET', `/files/${a.fileId}`, { key: t.adminKey })).status).toBe(404);
    expect(free() - before).toBeGreaterThanOrEqual(MiB);
    expect(t.logs.some((l) => /space reserve/.test(l))).toBe(true);

    // with space freed, the next deletion commits too
    expect((await t.req('DELETE', `/files/${pending.fileId}`, { key: t.adminKey })).status).toBe(200);

    // once there is room again, the sweeper sets the reserve aside again and the server is ready
    fs.rmSync(filler);
    await t.server.app.ctx.sweeper.sweep();
    expect(fs.statSync(path.join(dataDir, 'space-reserve')).size).toBe(RESERVE);
    expect((await t.req('GET', '//readyz')).status).toBe(200);
  });

  it('a multipart part on a full disk gets 507 in S3 XML and leaves no temp file', async () => {
    const dataDir = path.join(mnt!, 'data');
    const t = await start(dataDir);
    const dz = await t.createDropzone(t.adminKey);
    const pending = await t.requestUpload(t.adminKey, dz._id, 'big.bin', 6 * MiB);
    const key = new URL(pending.signedUrl).pathname.replace(/^\/_blobs\//, '');
    const mp = t.server.app.ctx.blobs.multipart!;
    const uploadId = await mp.create(key);
    fillDisk(mnt!);
    const [part] = await mp.presignParts(key, uploadId, [1], 60);
    const res = await fetch(part.url, { method: 'PUT', body: randomBytes(5 * MiB) });
    expect(res.status).toBe(507);
    const xml = await res.text();
    expect(xml).toContain('<Code>ServiceUnavailable</Code>');
    expect(xml).toMatch(/storage is full/i);
    expect(fs.readdirSync(path.join(dataDir, 'blobs', '.tmp'))).toEqual([]);
    expect(await mp.listParts(key, uploadId)).toEqual([]);
  });

  it('starts on a full disk, read-mostly, and says so', async () => {
    const dataDir = path.join(mnt!, 'data');
    const first = await start(dataDir);
    const dz = await first.createDropzone(first.adminKey);
    const kept = await first.upload(first.adminKey, dz._id, 'kept.txt', 'still here');
    const gone = await first.upload(first.adminKey, dz._id, 'gone.bin', randomBytes(MiB));
    await first.close();
    servers.splice(servers.indexOf(first), 1);
    fillDisk(mnt!);

    const t = await start(dataDir);
    expect(t.server.storageFull).toBe(true);
    const warning = t.logs.map((l) => JSON.parse(l)).find((l) => l.level === 'warn' && /read-mostly/.test(l.msg));
    expect(warning?.msg).toMatch(/^storage is full/);
    expect((await t.req('GET', `/files/${kept.fileId}/download`, { key: t.adminKey })).text).toBe('still here');
    expect((await t.req('GET', '//readyz')).body.message).toMatch(/storage is full/i);
    expect((await t.req('DELETE', `/files/${gone.fileId}`, { key: t.adminKey })).status).toBe(200);
  });
});
