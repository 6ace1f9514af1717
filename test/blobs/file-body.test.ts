/**
 * Sending a range of an open file with reused buffers of the buffer pool (src/blobs/file-body.ts): the exact bytes,
 * backpressure honoured (one write at a time in a slow socket), the pool's buffers back after every transfer, a client
 * that goes away ends it without error, a file shorter than the range fails it; and only unread marked streams take
 * this path.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { pooledBuffers, releaseBuffer, takeBuffer } from '../../src/blobs/buffer-pool.js';
import { FILE_BODY_BUFFERS, FILE_BODY_CHUNK, fileBodyOf, markFileBody, sendFileBody } from '../../src/blobs/file-body.js';
import { createLocalBlobStore } from '../../src/blobs/local-store.js';
import { systemClock } from '../../src/core/clock.js';

const dir = mkdtempSync(join(tmpdir(), 'dz-file-body-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bytes = randomBytes(5 * FILE_BODY_CHUNK + 12345);
const path = join(dir, 'blob');
writeFileSync(path, bytes);

/** A slow socket: takes one chunk at a time (highWaterMark 1 byte), finishing each write a tick later; records them. */
function slowSink() {
  const chunks: Buffer[] = [];
  let outstanding = 0;
  let most = 0;
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      outstanding++;
      most = Math.max(most, outstanding);
      chunks.push(Buffer.from(chunk)); // a copy: the sender reuses its buffer once cb ran
      setImmediate(() => {
        outstanding--;
        cb();
      });
    },
  });
  return { sink, chunks, most: () => most };
}

/** A socket whose client goes away once a read's worth has been written to it; records how much that was. */
function leavingSink() {
  let written = 0;
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      if (written >= FILE_BODY_CHUNK) sink.destroy();
      setImmediate(cb);
    },
  });
  sink.on('error', () => undefined);
  return { sink, written: () => written };
}

describe('sendFileBody', () => {
  it('sends exactly the range, one buffer in the socket at a time under backpressure, then ends', async () => {
    for (const [start, end] of [
      [0, bytes.length - 1],
      [7, FILE_BODY_CHUNK * 2 + 3],
      [bytes.length - 1, bytes.length - 1],
    ]) {
      const handle = await open(path, 'r');
      try {
        const { sink, chunks, most } = slowSink();
        const finished = new Promise((r) => sink.once('finish', r));
        await sendFileBody({ handle, start, end }, sink);
        await finished;
        expect(Buffer.concat(chunks).equals(bytes.subarray(start, end + 1))).toBe(true);
        expect(chunks.every((c) => c.length <= FILE_BODY_CHUNK)).toBe(true);
        expect(most()).toBe(1);
      } finally {
        await handle.close();
      }
    }
  });

  it('stops without ending when the socket closes first (a client that went away)', async () => {
    const handle = await open(path, 'r');
    try {
      const { sink, written } = leavingSink();
      let ended = false;
      sink.on('finish', () => (ended = true));
      await sendFileBody({ handle, start: 0, end: bytes.length - 1 }, sink);
      expect(ended).toBe(false);
      expect(written()).toBeLessThan(bytes.length);
    } finally {
      await handle.close();
    }
  });

  it('fails when the file is shorter than the range', async () => {
    const handle = await open(path, 'r');
    try {
      await expect(sendFileBody({ handle, start: 0, end: bytes.length + 10 }, new PassThrough().resume())).rejects.toThrow(/shorter/);
    } finally {
      await handle.close();
    }
  });
});

describe('sendFileBody and the buffer pool', () => {
  const ticks = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };

  it('takes its buffers from the pool and gives them back, however the transfer ends', async () => {
    const handle = await open(path, 'r');
    try {
      // a first transfer leaves its buffers in the pool
      await sendFileBody({ handle, start: 0, end: bytes.length - 1 }, slowSink().sink);
      await ticks(3);
      const level = pooledBuffers();
      expect(level).toBeGreaterThanOrEqual(FILE_BODY_BUFFERS);

      // while a transfer runs, it holds its share of them; once it ended, the pool is where it was
      const { sink, chunks } = slowSink();
      const running = sendFileBody({ handle, start: 0, end: bytes.length - 1 }, sink);
      await ticks(2);
      expect(pooledBuffers()).toBe(level - FILE_BODY_BUFFERS);
      await running;
      await ticks(3);
      expect(pooledBuffers()).toBe(level);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);

      // a client that went away mid-transfer: the buffer the socket never wrote comes back too
      const gone = leavingSink();
      await sendFileBody({ handle, start: 0, end: bytes.length - 1 }, gone.sink);
      expect(gone.written()).toBeLessThan(bytes.length);
      await ticks(3);
      expect(pooledBuffers()).toBe(level);

      // a read failure (a range past the end of the file)
      await expect(sendFileBody({ handle, start: 0, end: bytes.length + 10 }, new PassThrough().resume())).rejects.toThrow(/shorter/);
      await ticks(3);
      expect(pooledBuffers()).toBe(level);

      // and a buffer of the pool is what a transfer's bytes went through: taking one now takes no new memory
      const again = takeBuffer();
      expect(pooledBuffers()).toBe(level - 1);
      expect(again.buffer).toBeInstanceOf(SharedArrayBuffer);
      releaseBuffer(again);
    } finally {
      await handle.close();
    }
  });
});

describe('fileBodyOf', () => {
  it('answers the range of a marked stream only while nobody has read from it', async () => {
    const handle = await open(path, 'r');
    try {
      const marked = markFileBody(Readable.from([Buffer.from('x')]), { handle, start: 0, end: 0 });
      expect(fileBodyOf(marked)).toEqual({ handle, start: 0, end: 0 });
      expect(fileBodyOf(Readable.from([Buffer.from('x')]))).toBeUndefined();
      marked.read();
      await new Promise((r) => setImmediate(r));
      expect(fileBodyOf(marked)).toBeUndefined();
    } finally {
      await handle.close();
    }
  });
});

describe('the local store', () => {
  it('answers reads as marked file bodies of exactly the requested range', async () => {
    const store = createLocalBlobStore({ root: join(dir, 'store'), secret: 'x'.repeat(32), baseUrl: () => 'http://127.0.0.1', clock: systemClock() });
    await store.put('ab/cd', Readable.from([bytes.subarray(0, 1000)]));
    for (const [range, want] of [
      [undefined, { start: 0, end: 999 }],
      [{ start: 10, end: 19 }, { start: 10, end: 19 }],
    ] as const) {
      const { stream } = await store.get('ab/cd', range);
      expect(fileBodyOf(stream)).toMatchObject(want);
      stream.destroy();
    }
  });
});
