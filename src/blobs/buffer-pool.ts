/**
 * One pool of fixed-size buffers for the byte paths that pass through memory: upload batches (written to disk, then
 * hashed in place by the MD5 thread — hence shared memory) and download reads (read from the file, then written to the
 * socket). A transfer takes buffers when it needs them and gives each back once its last user is done with it, so the
 * memory of N concurrent transfers is allocated once and reused by the next ones (up to a cap). A buffer that is not
 * given back (a transfer that failed half-way) is only lost to the pool: the garbage collector frees it like any other.
 *
 * Why a pool rather than fresh buffers: a buffer of a long transfer lives long enough to be promoted to V8's old
 * generation, where only a full collection frees it; with ten 1 GiB transfers at once that garbage, not the transfers,
 * set the server's peak memory.
 */

/** Size of one pooled buffer: large enough for efficient reads and writes, small enough for ten transfers in ~10 MiB. */
export const POOL_BUFFER_SIZE = 256 * 1024;

/**
 * Free buffers kept for reuse, at most (16 MiB; an upload holds up to about four at once, a download four). After a
 * burst of more transfers than that, the extra buffers are left to the garbage collector instead of kept for good.
 */
export const MAX_POOLED_BUFFERS = 64;

/** Free buffers; their number never exceeds the most ever in use at once, nor {@link MAX_POOLED_BUFFERS}. */
const free: Buffer[] = [];

/** A buffer of {@link POOL_BUFFER_SIZE} bytes in shared memory; give it back with {@link releaseBuffer} once nobody uses it. */
export function takeBuffer(): Buffer {
  return free.pop() ?? Buffer.from(new SharedArrayBuffer(POOL_BUFFER_SIZE));
}

/** Gives a buffer of {@link takeBuffer} back to the pool: the caller must not touch it any more. */
export function releaseBuffer(buf: Buffer): void {
  if (free.length < MAX_POOLED_BUFFERS) free.push(buf);
}

/** Buffers waiting in the pool (for tests). */
export function pooledBuffers(): number {
  return free.length;
}
