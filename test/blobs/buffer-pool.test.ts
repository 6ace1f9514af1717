/** The buffer pool reuses what it is given back, in shared memory, and keeps no more than its cap after a burst. */
import { describe, expect, it } from 'vitest';
import { MAX_POOLED_BUFFERS, POOL_BUFFER_SIZE, pooledBuffers, releaseBuffer, takeBuffer } from '../../src/blobs/buffer-pool.js';

describe('buffer pool', () => {
  it('hands back the buffer it was given back, and shared-memory buffers of the pool size', () => {
    const a = takeBuffer();
    expect(a.length).toBe(POOL_BUFFER_SIZE);
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    releaseBuffer(a);
    expect(takeBuffer()).toBe(a);
    releaseBuffer(a);
  });

  it('keeps at most its cap after a burst of more buffers than that in use', () => {
    const burst = Array.from({ length: MAX_POOLED_BUFFERS + 10 }, takeBuffer);
    expect(pooledBuffers()).toBe(0);
    for (const b of burst) releaseBuffer(b);
    expect(pooledBuffers()).toBe(MAX_POOLED_BUFFERS);
  });
});
