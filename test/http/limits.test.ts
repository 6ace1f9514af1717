/**
 * Limits against abuse (issue 8, "one request can stall every other one"): a per-dropzone file-count limit enforced in
 * the same statement that reserves space, a small per-file overhead counted in usedSpace, and lists/ZIPs built in
 * batches that yield to other requests instead of one synchronous walk over every file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/db/migrations.js';
import { openDatabase } from '../../src/db/database.js';
import { uniqueZipNames, zipSize } from '../../src/zip/zip-stream.js';
import { type BackendContext, type TestServer, describeEachBackend, startTestServer } from '../helpers/server.js';

/** The documented per-file cost: the size, 1000 bytes, and the UTF-8 bytes of name and type. */
const cost = (size: number, name: string, type: string) => size + 1000 + Buffer.byteLength(name) + Buffer.byteLength(type);

describeEachBackend('file-count limit and per-file overhead', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start({ settings: { 'limits.maxFilesPerDropzone': 10 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const used = async (id: string) => (await t.req('GET', `/dropzones/${id}`, { key: t.adminKey })).body.data.usedSpace as number;
  const ask = (id: string, name: string, size = 0, type = 'text/plain') =>
    t.req('POST', `/dropzones/${id}/files`, { key: t.adminKey, body: { name, type, size } });

  it('zero-byte files are no longer free: each costs the overhead, and deleting gives back exactly that', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const a = await ask(dz._id, 'a.txt', 0, 'text/plain');
    expect(a.status).toBe(200);
    expect(await used(dz._id)).toBe(cost(0, 'a.txt', 'text/plain'));
    // multi-byte names count in UTF-8 bytes, an empty type counts nothing
    const b2 = await ask(dz._id, 'überall 日本.txt', 3, '');
    expect(b2.status).toBe(200);
    expect(await used(dz._id)).toBe(cost(0, 'a.txt', 'text/plain') + cost(3, 'überall 日本.txt', ''));
    expect((await t.req('DELETE', `/files/${a.body.data.fileId}`, { key: t.adminKey })).status).toBe(200);
    expect(await used(dz._id)).toBe(cost(3, 'überall 日本.txt', ''));
    expect((await t.req('DELETE', `/files/${b2.body.data.fileId}`, { key: t.adminKey })).status).toBe(200);
    expect(await used(dz._id)).toBe(0);
  });

  it('a file whose bytes fit but whose bytes plus overhead do not is refused, naming the room left for content', async () => {
    const dz = await t.createDropzone(t.adminKey, { gb: 0.2, days: 30 }); // 2e8 bytes
    const name = 'big.bin';
    const type = 'application/octet-stream';
    const tooBig = await ask(dz._id, name, 2e8, type);
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.data).toMatchObject({ field: 'size', available: 2e8 - cost(0, name, type) });
    const fits = await ask(dz._id, name, 2e8 - cost(0, name, type), type);
    expect(fits.status).toBe(200);
    expect(await used(dz._id)).toBe(2e8);
  });

  it('pending and uploaded files both count; the 11th file is 413 TOO_MANY_FILES naming the limit, on every upload path', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const confirmed = await t.upload(t.adminKey, dz._id, 'done.txt', 'hi');
    for (let i = 0; i < 9; i++) expect((await ask(dz._id, `p${i}.txt`)).status).toBe(200);
    const over = await ask(dz._id, 'one-more.txt');
    expect(over.status).toBe(413);
    expect(over.body).toMatchObject({ status: 'error', data: { limit: 10 } });
    expect(over.body.message).toMatch(/10 files/);
    // first generation and the dropzone page hit the same rule
    const legacy = await t.req('POST', '/files', { dropzoneId: dz._id, body: { name: 'x', type: '', size: 0 } });
    expect(legacy.status).toBe(413);
    expect(legacy.body.data).toMatchObject({ limit: 10 });
    const page = await t.req('GET', `//d/${dz.code}`);
    const token = /"token":"([^"]+)"/.exec(page.text)![1];
    const viaPage = await t.req('POST', `//d/${dz.code}/api/uploads`, { headers: { authorization: `Bearer ${token}` }, body: { name: 'x', type: '', size: 0 } });
    expect(viaPage.status).toBe(413);
    // deleting the confirmed file frees one place, and exactly one
    expect((await t.req('DELETE', `/files/${confirmed.fileId}`, { key: t.adminKey })).status).toBe(200);
    expect((await ask(dz._id, 'again.txt')).status).toBe(200);
    expect((await ask(dz._id, 'again2.txt')).status).toBe(413);
  });

  it('holds under concurrency: 40 parallel requests against an empty dropzone yield exactly 10', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => ask(dz._id, `c${i}.txt`)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(10);
    expect(results.filter((r) => r.status === 413)).toHaveLength(30);
    expect((await t.req('GET', `/dropzones/${dz._id}/files`, { key: t.adminKey })).body.data).toHaveLength(10);
  });

  it('the sweeper releasing stale pending uploads frees their places and their overhead', async () => {
    const dz = await t.createDropzone(t.adminKey);
    for (let i = 0; i < 10; i++) expect((await ask(dz._id, `s${i}.txt`)).status).toBe(200);
    expect((await ask(dz._id, 'late.txt')).status).toBe(413);
    t.clock.advance(25 * 3600 * 1000);
    await t.server.app.ctx.sweeper.sweep();
    expect(await used(dz._id)).toBe(0);
    expect((await ask(dz._id, 'late.txt')).status).toBe(200);
  });
});

describe('migration 5 counts the files and their overhead of an existing database', () => {
  it('backfills file_count and adds each file’s overhead to used_space', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dropzone-mig5-'));
    try {
      const path = join(dir, 'dropzone.db');
      const old = new Database(path);
      old.exec(MIGRATIONS.find((m) => m.version === 1)!.sql);
      old.pragma('user_version = 1');
      const insDz = old.prepare(
        `INSERT INTO dropzones (id, code, size_gb, days, max_size, max_file_size, used_space, start_time, delete_time, created_at, updated_at)
         VALUES (?, ?, 1, 30, 1000000000, 1000000000, ?, 0, 9e15, 0, 0)`,
      );
      insDz.run('dz1', 'code1', 12);
      insDz.run('dz2', 'code2', 0);
      const insFile = old.prepare(
        `INSERT INTO files (id, dropzone_id, name, type, size, blob_key, status, created_at) VALUES (?, 'dz1', ?, ?, ?, ?, ?, 0)`,
      );
      insFile.run('f1', 'a.txt', 'text/plain', 10, 'k1', 'uploaded');
      insFile.run('f2', 'ü', '', 2, 'k2', 'pending');
      old.close();

      const db = openDatabase(path);
      const rows = db.prepare('SELECT id, file_count, used_space FROM dropzones ORDER BY id').all();
      db.close();
      expect(rows).toEqual([
        { id: 'dz1', file_count: 2, used_space: 12 + (1000 + 5 + 10) + (1000 + 2) },
        { id: 'dz2', file_count: 0, used_space: 0 },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('file lists and ZIPs read files in bounded batches and yield to other requests between them', () => {
  const N = 1200;
  let t: TestServer;
  let dz: any;
  beforeAll(async () => {
    t = await startTestServer({ settings: { 'limits.maxFilesPerDropzone': N } });
    dz = await t.createDropzone(t.adminKey);
    // anyone may list through the page; files go in through the service (no HTTP round trip), empty and confirmed
    expect((await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: t.adminKey, body: { publicId: 'anyone', permissions: ['dropzone.list'] } })).status).toBe(200);
    const { meta, files } = t.server.app.ctx;
    const admin = { key: (await meta.adminKey())! };
    for (let i = 0; i < N; i++) {
      const { file } = await files.requestUpload(admin, (await meta.dropzoneById(dz._id))!, { name: 'a.txt', type: 'text/plain', size: 0 });
      if (i % 3) await meta.markUploaded(file.id, '"d41d8cd98f00b204e9800998ecf8427e"', t.clock.now());
    }
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  /**
   * Runs `fn` while counting (a) the rows each read of files through the metadata store (or a transaction of it)
   * returns and (b) event-loop turns, with a setImmediate ticker. A walk in one synchronous block shows up as one read
   * of every row with no turn in between.
   */
  async function observeReads(fn: () => Promise<unknown>): Promise<{ rows: number[]; turnsBetween: number[] }> {
    const meta = t.server.app.ctx.meta as unknown as Record<string, unknown>;
    const names = Object.keys(meta).filter((k) => /files/i.test(k) && typeof meta[k] === 'function');
    const originals = new Map(names.map((k) => [k, meta[k] as (...a: unknown[]) => Promise<unknown>]));
    const originalTransaction = meta.transaction as (fn: (tx: Record<string, unknown>) => Promise<unknown>) => Promise<unknown>;
    let ticks = 0;
    let ticking = true;
    const tick = () => {
      ticks++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const rows: number[] = [];
    const at: number[] = [];
    const observe = (ops: Record<string, unknown>, fns: Map<string, (...a: unknown[]) => Promise<unknown>>) => {
      for (const [k, orig] of fns)
        ops[k] = async (...args: unknown[]) => {
          const out = await orig(...args);
          if (Array.isArray(out)) {
            rows.push(out.length);
            at.push(ticks);
          }
          return out;
        };
    };
    observe(meta, originals);
    // a transaction's handle is made per transaction: observe each one as it is handed out
    meta.transaction = (txFn: (tx: Record<string, unknown>) => Promise<unknown>) =>
      originalTransaction.call(meta, (tx) => {
        observe(tx, new Map(names.map((k) => [k, (tx[k] as (...a: unknown[]) => Promise<unknown>).bind(tx)])));
        return txFn(tx);
      });
    try {
      await fn();
    } finally {
      ticking = false;
      for (const [k, orig] of originals) meta[k] = orig;
      meta.transaction = originalTransaction;
    }
    return { rows, turnsBetween: at.slice(1).map((v, i) => v - at[i]) };
  }

  const expectBatched = (seen: { rows: number[]; turnsBetween: number[] }, total: number) => {
    expect(seen.rows.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(total);
    expect(Math.max(...seen.rows)).toBeLessThanOrEqual(500);
    for (const turns of seen.turnsBetween) expect(turns).toBeGreaterThan(0);
  };

  it('GET /dropzones/:id/files and GET /files: every file, in order, valid JSON', async () => {
    let list: any;
    const seen = await observeReads(async () => {
      list = await t.req('GET', `/dropzones/${dz._id}/files`, { key: t.adminKey });
    });
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toMatch(/^application\/json/);
    expect(list.body.status).toBe('success');
    expect(list.body.data).toHaveLength(N);
    expect(new Set(list.body.data.map((f: any) => f._id)).size).toBe(N);
    expect(list.body.data.filter((f: any) => f.meta.s3Status === 'pending')).toHaveLength(N / 3);
    expectBatched(seen, N);

    let legacy: any;
    const seen2 = await observeReads(async () => {
      legacy = await t.req('GET', '/files', { dropzoneId: dz._id });
    });
    expect(legacy.body.data.map((f: any) => f._id)).toEqual(list.body.data.map((f: any) => f._id));
    expectBatched(seen2, N);
  });

  it('GET /dropzones/:id/zip (HEAD): the same exact length, from batched reads', async () => {
    let head: any;
    const seen = await observeReads(async () => {
      head = await t.req('HEAD', `/dropzones/${dz._id}/zip`, { key: t.adminKey });
    });
    expect(head.status).toBe(200);
    // 800 empty entries named a.txt, a (1).txt … a (799).txt: local header 30 + name, descriptor 16, central 46 + name
    const names = uniqueZipNames(Array.from({ length: (2 * N) / 3 }, () => 'a.txt'));
    expect(Number(head.headers.get('content-length'))).toBe(zipSize(names.map((name) => ({ name, size: 0 }))));
    expectBatched(seen, (2 * N) / 3);
  });

  it('the page list (anyone holds dropzone.list): every uploaded file, from batched reads', async () => {
    const page = await t.req('GET', `//d/${dz.code}`);
    const token = /"token":"([^"]+)"/.exec(page.text)![1];
    let list: any;
    const seen = await observeReads(async () => {
      list = await t.req('GET', `//d/${dz.code}/api/files`, { headers: { authorization: `Bearer ${token}` } });
    });
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength((2 * N) / 3);
    expect(list.text).not.toContain(dz._id);
    expectBatched(seen, (2 * N) / 3);
  });

  it('DELETE /dropzones/:id (runs last: it removes the dropzone): its files go in batches, every blob queued, nothing left', async () => {
    const { meta } = t.server.app.ctx;
    const keys = (await t.req('GET', `/dropzones/${dz._id}/files`, { key: t.adminKey })).body.data.map((f: any) => f._id);
    expect(keys).toHaveLength(N);
    let del: any;
    const seen = await observeReads(async () => {
      del = await t.req('DELETE', `/dropzones/${dz._id}`, { key: t.adminKey });
    });
    expect(del.status).toBe(200);
    expectBatched(seen, N);
    expect(await meta.dropzoneById(dz._id)).toBeUndefined();
    for (const id of keys) expect(await meta.fileById(id)).toBeUndefined();
    expect((await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey })).status).toBe(404);
  });
});
