/**
 * Uploads into the local store: the MD5 is computed on another thread (the buffers are handed over, not copied), the
 * temp file is flushed to disk in the background while bytes arrive, and the final fsync covering every byte happens
 * before put() resolves (before the upload's 200). The bytes and the ETag stay exact for any chunking.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobSizeError } from '../../src/blobs/blob-store.js';
import { type FlushEvent, markChunksDisposable } from '../../src/blobs/durable-writer.js';
import { createLocalBlobStore } from '../../src/blobs/local-store.js';
import { systemClock } from '../../src/core/clock.js';

/** `data` cut into chunks of varying, odd sizes. */
function chunked(data: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = [1, 4093, 65536, 300_001, 17][i % 5];
    parts.push(data.subarray(off, off + n));
    off += n;
  }
  return Readable.from(parts);
}

describe('durable uploads into the local store', () => {
  let root: string;
  let events: (FlushEvent | 'resolved')[];
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dz-durable-'));
    events = [];
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const store = () =>
    createLocalBlobStore({ root, secret: 's3cret', baseUrl: () => 'http://127.0.0.1:1', clock: systemClock(), flushEveryBytes: 1024 * 1024, onFlush: (e) => events.push(e) });

  it('flushes in the background while receiving, fsyncs every byte before resolving, and the ETag is the MD5', async () => {
    const data = randomBytes(6 * 1024 * 1024 + 12345);
    const stat = await store()
      .put('a/b', chunked(data), { expectedSize: data.length })
      .then((s) => (events.push('resolved'), s));
    expect(stat.etag).toBe(`"${createHash('md5').update(data).digest('hex')}"`);
    expect((await readFile(path.join(root, 'a/b'))).equals(data)).toBe(true);
    const background = events.filter((e): e is FlushEvent => e !== 'resolved' && e.kind === 'datasync');
    expect(background.length).toBeGreaterThanOrEqual(1);
    expect(background.every((e) => e.bytes > 0 && e.bytes <= data.length)).toBe(true);
    expect(events.slice(-2)).toEqual([{ kind: 'fsync', bytes: data.length }, 'resolved']);
  });

  it('a small body still gets its final fsync, and a short body stores nothing', async () => {
    const s = store();
    await s.put('small', Readable.from([Buffer.from('abc')]), { expectedSize: 3 });
    expect(events).toEqual([{ kind: 'fsync', bytes: 3 }]);
    await expect(s.put('short', chunked(randomBytes(3 * 1024 * 1024)), { expectedSize: 4 * 1024 * 1024 })).rejects.toBeInstanceOf(BlobSizeError);
    expect(await s.stat('short')).toBeNull();
  });

  it('an empty body has the MD5 of nothing', async () => {
    const stat = await store().put('empty', Readable.from([]), { expectedSize: 0 });
    expect(stat.etag).toBe(`"${createHash('md5').digest('hex')}"`);
  });
});

describe('chunks of a request body', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'dz-chunks-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));
  const store = () => createLocalBlobStore({ root, secret: 's3cret', baseUrl: () => 'http://127.0.0.1:1', clock: systemClock() });

  /** `data` as chunks that each own their memory (as Node's HTTP parser hands them out), plus one view into `data`. */
  function ownChunks(data: Buffer): { chunks: Buffer[]; view: Buffer } {
    const chunks: Buffer[] = [];
    let off = 0;
    for (let i = 0; off < data.length - 100; i++) {
      const n = Math.min([65536, 4093, 300_001, 1][i % 4], data.length - 100 - off);
      const own = Buffer.from(new ArrayBuffer(n));
      data.copy(own, 0, off, off + n);
      chunks.push(own);
      off += n;
    }
    const view = data.subarray(off); // shares `data`'s memory: never released
    return { chunks: [...chunks, view], view };
  }

  it('a marked body gives each chunk back once it is written; the bytes and the ETag stay exact', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 321);
    const copy = Buffer.from(data);
    const { chunks, view } = ownChunks(data);
    const stat = await store().put('a/m', markChunksDisposable(Readable.from(chunks)), { expectedSize: data.length });
    expect(stat.etag).toBe(`"${createHash('md5').update(copy).digest('hex')}"`);
    expect((await readFile(path.join(root, 'a/m'))).equals(copy)).toBe(true);
    const owned = chunks.filter((c) => c !== view);
    expect(owned.length).toBeGreaterThan(10);
    expect(owned.every((c) => c.buffer.byteLength === 0)).toBe(true); // detached: its memory is gone
    expect(view.length).toBe(100);
    expect(data.equals(copy)).toBe(true); // the shared buffer behind the view is untouched
  });

  it('an unmarked body keeps its chunks as they were', async () => {
    const data = randomBytes(512 * 1024 + 5);
    const { chunks } = ownChunks(data);
    const lengths = chunks.map((c) => c.buffer.byteLength);
    await store().put('a/u', Readable.from(chunks), { expectedSize: data.length });
    expect(chunks.map((c) => c.buffer.byteLength)).toEqual(lengths);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });
});
