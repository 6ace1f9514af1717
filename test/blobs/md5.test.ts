/**
 * The MD5 sessions uploads hash with, one contract for every hasher: our addon's hashing thread (native/md5,
 * compiled here as the build compiles it for the executable; Node-API, so it loads in this Node too), the shared
 * worker thread, and what md5Session() picks. Bytes are hashed in order, pooled buffers come back once hashed, the
 * backlog bounds what is still waiting, an aborted session gives its buffers back.
 */
import { createHash, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { releaseBuffer, takeBuffer } from '../../src/blobs/buffer-pool.js';
import { type Md5Addon, type Md5Session, md5Session, nativeMd5Session, workerMd5Session } from '../../src/blobs/md5.js';

let addon: Md5Addon;
beforeAll(async () => {
  // @ts-expect-error build.mjs is plain JavaScript
  const { md5AddonFile } = (await import('../../build.mjs')) as { md5AddonFile: () => string };
  const mod = { exports: {} as Md5Addon };
  process.dlopen(mod as unknown as NodeJS.Module, md5AddonFile());
  addon = mod.exports;
}, 300_000);

/** Copies `parts` into pooled buffers handed to `session`; returns the buffers and the expected hex digest. */
function feed(session: Md5Session, parts: Buffer[]): { used: Buffer[]; expected: string } {
  const expected = createHash('md5');
  const used: Buffer[] = [];
  for (const p of parts) {
    expected.update(p);
    const buf = takeBuffer();
    expect(buf.buffer).toBeInstanceOf(SharedArrayBuffer);
    p.copy(buf);
    session.update(buf, p.length);
    used.push(buf);
  }
  return { used, expected: expected.digest('hex') };
}

const hashers: [string, () => Md5Session][] = [
  ['the addon\'s thread', () => nativeMd5Session(addon)],
  ['the worker thread', () => workerMd5Session()],
  ['md5Session()', () => md5Session()],
];

describe.each(hashers)('an MD5 session on %s', (_name, start) => {
  it('hashes pooled shared buffers in order and gives them back', async () => {
    const session = start();
    const { used, expected } = feed(session, [randomBytes(1000), randomBytes(70_000), randomBytes(3), randomBytes(256 * 1024)]);
    await session.backlog(0);
    expect(await session.digest()).toBe(expected);
    // all of them are back in the pool: the next takes reuse them
    const again = used.map(() => takeBuffer());
    expect(again.every((b) => used.includes(b))).toBe(true);
    for (const b of again) releaseBuffer(b);
  });

  it('sessions running side by side keep their own bytes; nothing hashed is the MD5 of nothing', async () => {
    const a = start();
    const b = start();
    const empty = start();
    const fa = feed(a, [randomBytes(5000), randomBytes(200_000)]);
    const fb = feed(b, [randomBytes(7), randomBytes(100_000), randomBytes(99)]);
    expect(await Promise.all([a.digest(), b.digest(), empty.digest()])).toEqual([fa.expected, fb.expected, createHash('md5').digest('hex')]);
  });

  it('the backlog resolves once at most that many buffers still wait', async () => {
    const session = start();
    const parts = Array.from({ length: 12 }, () => randomBytes(200_000));
    const { used, expected } = feed(session, parts);
    await session.backlog(2);
    // at most two are still out: the pool holds at least the ten others
    const back = used.map(() => takeBuffer());
    expect(back.filter((b) => used.includes(b)).length).toBeGreaterThanOrEqual(10);
    for (const b of back) releaseBuffer(b);
    expect(await session.digest()).toBe(expected);
  });

  it('an aborted session gives its buffers back and hashes nothing more', async () => {
    const session = start();
    const { used } = feed(session, Array.from({ length: 6 }, () => randomBytes(100_000)));
    session.abort();
    await new Promise((r) => setTimeout(r, 200));
    const back = used.map(() => takeBuffer());
    expect(back.filter((b) => used.includes(b)).length).toBe(used.length);
    for (const b of back) releaseBuffer(b);
  });
});

describe('the MD5 addon itself', () => {
  it('refuses a length beyond its view, bad arguments and a digest twice', () => {
    nativeMd5Session(addon); // starts the thread
    const state = addon.create();
    const a = Buffer.from('abc');
    expect(() => addon.push(state, a, 4, 1e9)).toThrow(/outside the view/);
    expect(() => addon.push(state, 'abc' as unknown as Uint8Array, 1, 1e9)).toThrow(/Uint8Array/);
    expect(() => addon.push({}, a, 1, 1e9)).toThrow(/MD5 state/);
    expect(() => addon.start(() => undefined)).toThrow(/already started/);
    expect(addon.digest(state)).toBe(createHash('md5').digest('hex'));
    expect(() => addon.digest(state)).toThrow(/already finished/);
    expect(() => addon.push(state, a, 1, 1e9)).toThrow(/already finished/);
  });
});
