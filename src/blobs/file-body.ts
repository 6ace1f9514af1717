/**
 * A blob body that is a range of an open file. The local store marks the streams it answers with the file and range
 * they read ({@link markFileBody}); whoever sends such a stream to a socket before anyone read from it may copy the
 * range itself ({@link sendFileBody}) instead of piping the stream: two buffers per transfer from the buffer pool,
 * each reused once the socket took it and given back when the transfer ends, instead of a fresh buffer per read that
 * lives until the next garbage collection (with ten 1 GiB downloads at once that garbage, not the transfers, was most
 * of the server's memory).
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { POOL_BUFFER_SIZE, releaseBuffer, takeBuffer } from './buffer-pool.js';

/** The file range a marked stream reads: `start` to `end` inclusive. */
export interface FileBody {
  handle: FileHandle;
  start: number;
  end: number;
}

const FILE_BODY = Symbol('dropzone.fileBody');

/** Marks `stream` (which reads `body` and closes its handle when destroyed) as a file body. */
export function markFileBody<T extends Readable>(stream: T, body: FileBody): T {
  Object.defineProperty(stream, FILE_BODY, { value: body });
  return stream;
}

/** The file range `stream` reads, when it is a marked file body nobody has read from yet. */
export function fileBodyOf(stream: Readable): FileBody | undefined {
  const body = (stream as unknown as { [FILE_BODY]?: FileBody })[FILE_BODY];
  return body && stream.readableFlowing === null && !stream.readableDidRead && !stream.destroyed ? body : undefined;
}

/** Size of each of the two buffers of a transfer (the buffer pool's). */
export const FILE_BODY_CHUNK = POOL_BUFFER_SIZE;

/**
 * Writes the range of `body` to `out` and ends it, with backpressure: at most two buffers from the buffer pool, each
 * reused only after `out` handed it on (its write callback) and given back to the pool once the transfer no longer
 * needs it. Rejects on a read failure (the caller then destroys `out`, so the client sees a short body) and resolves
 * early, without ending, when `out` closes first (a client that went away).
 */
export async function sendFileBody(body: FileBody, out: Writable): Promise<void> {
  const free: Buffer[] = [takeBuffer(), takeBuffer()];
  let finished = false;
  let wake: (() => void) | undefined;
  let closed = false;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  // a buffer the socket is done with: back to this transfer while it runs, to the pool after it (a destroyed socket
  // still calls back, with an error, for what it never wrote)
  const handBack = (buf: Buffer) => {
    if (finished) return releaseBuffer(buf);
    free.push(buf);
    wake?.();
  };
  out.once('close', onClose);
  const until = (ready: () => boolean) =>
    new Promise<void>((resolve) => {
      if (ready() || closed) return resolve();
      wake = () => {
        if (ready() || closed) {
          wake = undefined;
          resolve();
        }
      };
    });
  try {
    let pos = body.start;
    const end = body.end + 1;
    while (pos < end && !closed) {
      await until(() => free.length > 0);
      if (closed) break;
      const buf = free.pop()!;
      // until handed to the socket, the buffer stays this transfer's (given back to the pool with the rest)
      const { bytesRead } = await body.handle.read(buf, 0, Math.min(buf.length, end - pos), pos).catch((err: unknown) => {
        free.push(buf);
        throw err;
      });
      if (bytesRead === 0) {
        free.push(buf);
        throw new Error('the file is shorter than the range being sent');
      }
      pos += bytesRead;
      const ok = out.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), () => handBack(buf));
      if (!ok) {
        let drained = false;
        out.once('drain', () => {
          drained = true;
          wake?.();
        });
        await until(() => drained);
      }
    }
    if (!closed) out.end();
  } finally {
    out.off('close', onClose);
    finished = true;
    for (const buf of free.splice(0)) releaseBuffer(buf);
  }
}
