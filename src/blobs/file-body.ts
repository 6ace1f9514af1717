/**
 * A blob body that is a range of an open file. The local store marks the streams it answers with the file and range
 * they read ({@link markFileBody}); whoever sends such a stream to a socket before anyone read from it may copy the
 * range itself ({@link sendFileBody}) instead of piping the stream: buffers from the buffer pool, reused once the
 * socket took them and given back when the transfer ends, instead of a fresh buffer per read that lives until the next
 * garbage collection (with ten 1 GiB downloads at once that garbage, not the transfers, was most of the server's
 * memory).
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

/**
 * Pool buffers one read fills (one system call, one trip through libuv's thread pool): 512 KiB. A 1 GiB download took
 * 780 ms with one 256 KiB buffer per read and 450 ms with 512 KiB or 1 MiB per read (as with the two fresh 1 MiB
 * buffers before the pool); ten transfers of two reads of 512 KiB fit in the 10 MiB ten uploads leave in the pool.
 */
const BUFFERS_PER_READ = 2;
/** Reads a transfer has going at once: one being filled while the other is with the socket. */
const READS = 2;
/** The most one read reads. */
export const FILE_BODY_CHUNK = POOL_BUFFER_SIZE * BUFFERS_PER_READ;
/** Pool buffers one transfer holds while it runs. */
export const FILE_BODY_BUFFERS = BUFFERS_PER_READ * READS;

/**
 * Writes the range of `body` to `out` and ends it, with backpressure: two reads of up to {@link FILE_BODY_CHUNK} into
 * buffers of the pool (`readv`), each group reused only after `out` handed its last buffer on (writes complete in
 * order) and given back to the pool once the transfer no longer needs it. Rejects on a read failure (the caller then
 * destroys `out`, so the client sees a short body) and resolves early, without ending, when `out` closes first (a
 * client that went away).
 */
export async function sendFileBody(body: FileBody, out: Writable): Promise<void> {
  const free: Buffer[][] = [];
  for (let i = 0; i < READS; i++) free.push(Array.from({ length: BUFFERS_PER_READ }, takeBuffer));
  let finished = false;
  let wake: (() => void) | undefined;
  let closed = false;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  // a group the socket is done with: back to this transfer while it runs, to the pool after it (a destroyed socket
  // still calls back, with an error, for what it never wrote)
  const handBack = (group: Buffer[]) => {
    if (finished) return group.forEach(releaseBuffer);
    free.push(group);
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
      const group = free.pop()!;
      // until handed to the socket, the group stays this transfer's (given back to the pool with the rest)
      const { bytesRead } = await body.handle.readv(spans(group, Math.min(FILE_BODY_CHUNK, end - pos)), pos).catch((err: unknown) => {
        free.push(group);
        throw err;
      });
      if (bytesRead === 0) {
        free.push(group);
        throw new Error('the file is shorter than the range being sent');
      }
      pos += bytesRead;
      // the group comes back with its last buffer's callback
      const filled = spans(group, bytesRead);
      let ok = true;
      for (let i = 0; i < filled.length; i++) ok = out.write(filled[i], i === filled.length - 1 ? () => handBack(group) : undefined);
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
    for (const group of free.splice(0)) group.forEach(releaseBuffer);
  }
}

/** The first `bytes` bytes of the buffers of `group`, as views (to read into, then to write what was read). */
function spans(group: Buffer[], bytes: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; bytes > 0; i++) {
    const n = Math.min(bytes, group[i].length);
    out.push(n === group[i].length ? group[i] : group[i].subarray(0, n));
    bytes -= n;
  }
  return out;
}
