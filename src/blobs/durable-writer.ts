/**
 * Writes an upload body into an open file while it arrives: bytes are gathered into large buffers, each written with
 * one call while the next one fills, hashed (MD5) off the event loop once written, and flushed to disk in the
 * background every few MiB (`fdatasync`), so the final `fsync` before the answer has little left to do. Memory per
 * upload is bounded: one buffer filling, one being written, at most
 * {@link HASH_BACKLOG} waiting to be hashed.
 */
import type { FileHandle } from 'node:fs/promises';
import { BlobSizeError } from './blob-store.js';
import { POOL_BUFFER_SIZE, releaseBuffer, takeBuffer } from './buffer-pool.js';
import { md5Session } from './md5.js';

/** Bytes gathered before one write (one buffer filling, one in flight per upload). */
export const WRITE_BATCH = POOL_BUFFER_SIZE;

/** Written buffers that may wait for the hashing thread per upload before the receive pauses. */
const HASH_BACKLOG = 2;

/** A durable flush of an upload's temp file, reported to {@link DurableWriteOptions.onFlush}. */
export interface FlushEvent {
  /** `datasync`: a background flush while bytes arrive; `fsync`: the final one, before the upload is answered. */
  kind: 'datasync' | 'fsync';
  /** Bytes of the file on disk the flush covers. */
  bytes: number;
}

/** Options of {@link writeDurably}. */
export interface DurableWriteOptions {
  /** Exact number of bytes the body must have ({@link BlobSizeError} otherwise, as soon as it is exceeded). */
  expectedSize?: number;
  /** Start a background `fdatasync` whenever this many bytes were written since the last one. */
  flushEveryBytes: number;
  /** Observes each flush once it has completed (tests). */
  onFlush?: (event: FlushEvent) => void;
}

/** Bodies whose chunks nobody else holds: see {@link markChunksDisposable}. */
const disposable = new WeakSet<object>();

/**
 * Marks `body` as yielding chunks that belong to the reader alone — Node's HTTP parser copies every piece of a request
 * body into a buffer of its own — so {@link writeDurably} gives each chunk's memory back as soon as it has copied it.
 * Left to the garbage collector, a request's 64 KiB chunks pile up between collections — measured during one 1 GiB
 * upload: +14 MiB of heap instead of 1–3, and every chunk in fresh memory (the upload took twice as long). Never mark
 * a body whose buffers someone else may still read.
 */
export function markChunksDisposable<T extends object>(body: T): T {
  disposable.add(body);
  return body;
}

const detach: (buf: ArrayBuffer) => void =
  typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function'
    ? // frees the memory at once (V8 releases a detached buffer's backing store)
      (buf) => void (buf as ArrayBuffer & { transfer(n: number): ArrayBuffer }).transfer(0)
    : // Node 20: detached all the same; the memory goes with the clone, at the next collection as before
      (buf) => void structuredClone(buf, { transfer: [buf] });

/** Releases `chunk`'s memory when it is a whole buffer of its own (never a slice of a shared pool). */
function releaseChunk(chunk: Buffer): void {
  const buf = chunk.buffer;
  if (chunk.byteOffset !== 0 || chunk.byteLength !== buf.byteLength || !(buf instanceof ArrayBuffer)) return;
  try {
    detach(buf);
  } catch {
    // not transferable (Node marks some of its own buffers so): left to the collector
  }
}

/**
 * Streams `body` into `handle` (from offset 0) as described in the module comment and resolves with the size and the
 * hex MD5 once every byte is written and hashed and the background flushes have settled. The caller still fsyncs
 * (see {@link finalFsync}). Rejects on a body error, a size mismatch or a write/flush failure.
 */
export async function writeDurably(handle: FileHandle, body: AsyncIterable<Buffer | string>, opts: DurableWriteOptions): Promise<{ size: number; md5: string }> {
  const { expectedSize: expected, flushEveryBytes, onFlush } = opts;
  const release = disposable.has(body);
  const hash = md5Session();
  let batch: Buffer | undefined = takeBuffer();
  let fill = 0;
  let received = 0;
  let written = 0;
  let flushedTo = 0;
  let writing: Promise<void> = Promise.resolve();
  let syncing: Promise<void> | undefined;
  let failure: unknown;

  const flushInBackground = () => {
    if (syncing || written - flushedTo < flushEveryBytes) return;
    const upTo = written;
    syncing = handle.datasync().then(
      () => {
        flushedTo = upTo;
        syncing = undefined;
        onFlush?.({ kind: 'datasync', bytes: upTo });
      },
      (err: unknown) => {
        failure ??= err;
        syncing = undefined;
      },
    );
  };
  const write = async (buf: Buffer, length: number) => {
    for (let off = 0; off < length; ) off += (await handle.write(buf, off, length - off, written + off)).bytesWritten;
    written += length;
    hash.update(buf, length); // buf goes to the hashing thread, then back to the pool
    flushInBackground();
    await hash.backlog(HASH_BACKLOG); // the hashing thread keeps up, or the receive waits

  };
  const startWrite = (buf: Buffer, length: number) => {
    batch = undefined; // owned by the write now
    writing = write(buf, length);
    // failures surface at the next await of `writing`; until then they must not count as unhandled
    writing.catch(() => undefined);
  };

  try {
    for await (const chunk of body) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      received += buf.length;
      if (expected !== undefined && received > expected) throw new BlobSizeError(expected, received);
      for (let off = 0; off < buf.length; ) {
        batch ??= takeBuffer();
        const n = buf.copy(batch, fill, off);
        fill += n;
        off += n;
        if (fill === WRITE_BATCH) {
          await writing; // at most one write in flight
          if (failure) throw failure;
          startWrite(batch, fill);
          fill = 0;
        }
      }
      if (release) releaseChunk(buf); // copied: nobody reads it again
    }
    if (expected !== undefined && received !== expected) throw new BlobSizeError(expected, received);
    await writing;
    if (batch && fill > 0) {
      const last = batch;
      batch = undefined;
      await write(last, fill);
    }
    while (syncing) await syncing;
    if (failure) throw failure;
    if (batch) releaseBuffer(batch);
    batch = undefined;
    return { size: received, md5: await hash.digest() };
  } catch (err) {
    if (batch) releaseBuffer(batch);
    hash.abort();
    await writing.catch(() => undefined);
    await syncing;
    throw err;
  }
}

/** The final `fsync` of an upload's temp file, reported to `onFlush` with the file's size. */
export async function finalFsync(handle: FileHandle, size: number, onFlush?: (event: FlushEvent) => void): Promise<void> {
  await handle.sync();
  onFlush?.({ kind: 'fsync', bytes: size });
}
