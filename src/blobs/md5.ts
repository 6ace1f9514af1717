/**
 * MD5 off the event loop, for upload ETags. Buffers live in shared memory and come from the pool of
 * src/blobs/buffer-pool.ts: the event loop fills one, writes it to disk, then hands it to the hasher, which hashes it
 * in place and gives it back — no copy, no allocation per buffer.
 *
 * Hashers, best first:
 * - our addon (native/md5, embedded in the single executable): OpenSSL's MD5 on a thread of its own — no second V8
 *   isolate, which is what a worker thread costs (~20 MiB of resident memory, measured);
 * - one shared worker thread hashing every session's buffers, in order;
 * - inline, where no worker can be started.
 */
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { loadMd5Addon } from '../runtime/native-addon.js';
import { releaseBuffer } from './buffer-pool.js';

/** An incremental MD5 over pooled buffers. */
export interface Md5Session {
  /** Hashes the first `length` bytes of `buf` (from the buffer pool), which goes back to the pool once hashed. */
  update(buf: Buffer, length: number): void;
  /** Resolves once at most `max` buffers handed to {@link update} are still waiting to be hashed (bounds memory). */
  backlog(max: number): Promise<void>;
  /** The hex digest of everything updated, once all of it is hashed. */
  digest(): Promise<string>;
  /** Forgets the session (on failure). */
  abort(): void;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const sessions = new Map();
parentPort.on('message', (m) => {
  if (m.t === 'u') {
    let h = sessions.get(m.id);
    if (!h) sessions.set(m.id, (h = createHash('md5')));
    h.update(new Uint8Array(m.buf, 0, m.len));
    parentPort.postMessage({ id: m.id, seq: m.seq });
  } else if (m.t === 'd') {
    const h = sessions.get(m.id) || createHash('md5');
    sessions.delete(m.id);
    parentPort.postMessage({ id: m.id, hex: h.digest('hex') });
  } else if (m.t === 'x') sessions.delete(m.id);
});
`;

let worker: Worker | undefined;
let unavailable = false;
let nextId = 0;
/** Live sessions by id: acknowledgements of hashed buffers, the digest, or the worker's failure. */
const sessions = new Map<number, { hashed(seq: number): void; done(hex: string): void; failed(err: Error): void }>();

function hashWorker(): Worker | undefined {
  if (worker || unavailable) return worker;
  try {
    const w = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 } });
    w.unref();
    w.on('message', (m: { id: number; seq?: number; hex?: string }) => {
      const session = sessions.get(m.id);
      if (m.hex === undefined) return session?.hashed(m.seq!);
      sessions.delete(m.id);
      session?.done(m.hex);
      if (sessions.size === 0) w.unref();
    });
    const fail = (err: Error) => {
      if (worker === w) worker = undefined;
      for (const session of sessions.values()) session.failed(err);
      sessions.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`the MD5 worker exited (code ${code})`)));
    worker = w;
  } catch {
    unavailable = true;
  }
  return worker;
}

/** The exports of native/md5 (see md5.c). */
export interface Md5Addon {
  /** Starts the hashing thread (once per process); `onHashed(token, ok)` reports every pushed chunk, in order. */
  start(onHashed: (token: number, ok: boolean) => void): void;
  create(): unknown;
  /** Queues the first `length` bytes of `view` for `state`; both must stay alive and unchanged until reported. */
  push(state: unknown, view: Uint8Array, length: number, token: number): void;
  digest(state: unknown): string;
}

/** Starts an MD5 session: on the addon's thread when the executable has it, else on the shared worker. */
export function md5Session(): Md5Session {
  const addon = loadMd5Addon() as Md5Addon | undefined;
  return addon ? nativeMd5Session(addon) : workerMd5Session();
}

/** Chunks on the addon's thread, by token: what must stay alive until hashed, and who hears about it. */
const pushed = new Map<number, { state: unknown; buf: Buffer; done(ok: boolean): void }>();
let started: Md5Addon | undefined;
let nextToken = 0;

/**
 * An MD5 session on `addon`'s hashing thread: chunks go into one FIFO for every session and are hashed back to back
 * as they come; each is reported back (and its buffer returns to the pool) once hashed.
 */
export function nativeMd5Session(addon: Md5Addon): Md5Session {
  if (started !== addon) {
    addon.start((token, ok) => {
      const chunk = pushed.get(token);
      pushed.delete(token);
      if (!chunk) return;
      releaseBuffer(chunk.buf);
      chunk.done(ok);
    });
    started = addon;
  }
  const state = addon.create();
  let outstanding = 0;
  let aborted = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const done = (ok: boolean) => {
    outstanding--;
    if (!ok) failure ??= new Error('OpenSSL failed to update the MD5 digest');
    wake?.();
  };
  /** Resolves once at most `max` buffers are still waiting or hashing. */
  const drained = async (max: number) => {
    while (outstanding > max && !failure) await new Promise<void>((resolve) => (wake = resolve));
    wake = undefined;
    if (failure) throw failure;
  };
  return {
    update(buf, length) {
      if (failure || aborted) return releaseBuffer(buf);
      const token = ++nextToken;
      pushed.set(token, { state, buf, done });
      try {
        addon.push(state, buf, length, token);
        outstanding++;
      } catch (err) {
        pushed.delete(token);
        releaseBuffer(buf);
        failure = err as Error;
      }
    },
    backlog: drained,
    async digest() {
      await drained(0);
      return addon.digest(state);
    },
    abort() {
      // chunks already pushed come back (to the pool) as the thread reports them
      aborted = true;
    },
  };
}

/** An MD5 session on the shared worker (or inline when no worker can run). */
export function workerMd5Session(): Md5Session {
  const w = hashWorker();
  if (!w) return inlineSession(createHash('md5'));
  const id = ++nextId;
  let seq = 0;
  /** Buffers with the worker, by sequence number (back to the pool when hashed). */
  const inFlight = new Map<number, Buffer>();
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let finish: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;
  sessions.set(id, {
    hashed(n) {
      const buf = inFlight.get(n);
      inFlight.delete(n);
      if (buf) releaseBuffer(buf);
      wake?.();
    },
    done: (hex) => finish?.resolve(hex),
    failed(err) {
      // a dead worker may still have been reading them: those buffers are not reused
      inFlight.clear();
      failure = err;
      wake?.();
      finish?.reject(err);
    },
  });
  if (sessions.size === 1) w.ref();
  return {
    update(buf, length) {
      if (failure) return;
      inFlight.set(++seq, buf);
      w.postMessage({ t: 'u', id, seq, buf: buf.buffer, len: length });
    },
    async backlog(max) {
      while (inFlight.size > max && !failure) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      if (failure) throw failure;
    },
    digest() {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        finish = { resolve, reject };
        w.postMessage({ t: 'd', id });
      });
    },
    abort() {
      // buffers still queued are returned as the worker acknowledges them; the session then disappears
      if (worker === w) w.postMessage({ t: 'd', id });
      else sessions.delete(id);
      finish = undefined;
    },
  };
}

function inlineSession(hash: Hash): Md5Session {
  return {
    update(buf, length) {
      hash.update(buf.subarray(0, length));
      releaseBuffer(buf);
    },
    backlog: async () => undefined,
    digest: async () => hash.digest('hex'),
    abort: () => undefined,
  };
}
