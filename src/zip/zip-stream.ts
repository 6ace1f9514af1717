/**
 * Streaming ZIP writer (PKWARE APPNOTE 6.3.x), written for "download several files as one archive".
 *
 * Layout produced, per entry: local file header, the raw bytes (method 0, stored), a data
 * descriptor (general purpose bit 3, because the CRC-32 is only known after streaming); then the
 * central directory, an optional ZIP64 end of central directory record + locator, and the end of
 * central directory record. Names are UTF-8 (bit 11). Because every entry's `size` is declared
 * upfront, ZIP64 structures are chosen per entry and the archive's exact length is computable in
 * advance ({@link zipSize}).
 */
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';

/** One file to put into the archive. */
export interface ZipEntrySource {
  /**
   * Path inside the archive, `/`-separated. It is sanitised (see {@link uniqueZipNames}) before it
   * is written, but NOT de-duplicated: pass names through {@link uniqueZipNames} first.
   */
  name: string;
  /** Exact number of bytes `open()` will deliver. A different count aborts the archive. */
  size: number;
  /** Modification time, stored as a DOS date/time in the server's local time zone (clamped to 1980–2107). */
  mtime: Date;
  /**
   * Opens the entry's content. Called lazily, only after the previous entry has been fully
   * written to the output. The returned stream is destroyed if the output is destroyed early.
   */
  open(): Promise<Readable>;
}

/** Options shared by {@link createZipStream} and {@link zipSize}; both must get the same values. */
export interface ZipOptions {
  /** Use ZIP64 structures for every entry and the end record, even when not needed. */
  forceZip64?: boolean;
}

/** Options of {@link createZipStream}. */
export interface ZipStreamOptions extends ZipOptions {
  /**
   * Called once with the error that aborted the archive (failed `open()`, entry stream error, size
   * mismatch, invalid entry, failing entry iterator). Not called when the consumer destroys the
   * output itself. The output is destroyed with the same error either way.
   */
  onError?: (err: Error) => void;
}

const SIG_LOCAL = 0x04034b50;
const SIG_DESCRIPTOR = 0x08074b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_EOCD = 0x06054b50;

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
/** Bit 3 (sizes/CRC in data descriptor) + bit 11 (UTF-8 names). */
const FLAGS = 0x0008 | 0x0800;
const VERSION_DEFAULT = 20; // 2.0
const VERSION_ZIP64 = 45; // 4.5
/** Made by: host 3 (UNIX) so external attributes carry a file mode; spec version 4.5. */
const VERSION_MADE_BY = (3 << 8) | VERSION_ZIP64;
/** Regular file, rw-r--r--, in the high 16 bits of the external attributes (UNIX host). */
const EXTERNAL_ATTRS = (0o100644 << 16) >>> 0;
const ZIP64_EXTRA_ID = 0x0001;

/** Per-entry layout decisions; identical for the writer and {@link zipSize}. */
interface EntryPlan {
  nameBytes: Buffer;
  size: number;
  offset: number;
  /** Local header carries a ZIP64 extra field and the data descriptor uses 8-byte sizes. */
  localZip64: boolean;
  /** Central directory stores sizes in the ZIP64 extra field. */
  cdSizes64: boolean;
  /** Central directory stores the local header offset in the ZIP64 extra field. */
  cdOffset64: boolean;
}

function planEntry(name: string, size: number, offset: number, force: boolean): EntryPlan {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new Error(`zip: entry "${name}" has an invalid size ${String(size)}`);
  }
  const nameBytes = Buffer.from(sanitizeZipName(name), 'utf8');
  if (nameBytes.length > U16_MAX) throw new Error('zip: entry name is longer than 65535 bytes');
  const big = size >= U32_MAX;
  return {
    nameBytes,
    size,
    offset,
    localZip64: force || big,
    cdSizes64: force || big,
    cdOffset64: force || offset >= U32_MAX,
  };
}

function versionNeeded(p: EntryPlan): number {
  return p.localZip64 || p.cdSizes64 || p.cdOffset64 ? VERSION_ZIP64 : VERSION_DEFAULT;
}

function localHeader(p: EntryPlan, dosTime: number, dosDate: number): Buffer {
  const extraLen = p.localZip64 ? 20 : 0;
  const b = Buffer.alloc(30 + p.nameBytes.length + extraLen);
  b.writeUInt32LE(SIG_LOCAL, 0);
  b.writeUInt16LE(versionNeeded(p), 4);
  b.writeUInt16LE(FLAGS, 6);
  b.writeUInt16LE(0, 8); // method: stored
  b.writeUInt16LE(dosTime, 10);
  b.writeUInt16LE(dosDate, 12);
  b.writeUInt32LE(0, 14); // CRC-32: in the data descriptor (bit 3)
  // Sizes: zero with bit 3; 0xFFFFFFFF pointing at the ZIP64 extra field when it is present.
  b.writeUInt32LE(p.localZip64 ? U32_MAX : 0, 18);
  b.writeUInt32LE(p.localZip64 ? U32_MAX : 0, 22);
  b.writeUInt16LE(p.nameBytes.length, 26);
  b.writeUInt16LE(extraLen, 28);
  p.nameBytes.copy(b, 30);
  if (p.localZip64) {
    const e = 30 + p.nameBytes.length;
    b.writeUInt16LE(ZIP64_EXTRA_ID, e);
    b.writeUInt16LE(16, e + 2);
    // Original and compressed size, both zero here (bit 3): the real values follow the data.
  }
  return b;
}

function dataDescriptor(p: EntryPlan, crc: number): Buffer {
  if (p.localZip64) {
    const b = Buffer.alloc(24);
    b.writeUInt32LE(SIG_DESCRIPTOR, 0);
    b.writeUInt32LE(crc >>> 0, 4);
    b.writeBigUInt64LE(BigInt(p.size), 8);
    b.writeBigUInt64LE(BigInt(p.size), 16);
    return b;
  }
  const b = Buffer.alloc(16);
  b.writeUInt32LE(SIG_DESCRIPTOR, 0);
  b.writeUInt32LE(crc >>> 0, 4);
  b.writeUInt32LE(p.size, 8);
  b.writeUInt32LE(p.size, 12);
  return b;
}

function centralHeader(p: EntryPlan, crc: number, dosTime: number, dosDate: number): Buffer {
  const fields = (p.cdSizes64 ? 2 : 0) + (p.cdOffset64 ? 1 : 0);
  const extraLen = fields > 0 ? 4 + 8 * fields : 0;
  const b = Buffer.alloc(46 + p.nameBytes.length + extraLen);
  b.writeUInt32LE(SIG_CENTRAL, 0);
  b.writeUInt16LE(VERSION_MADE_BY, 4);
  b.writeUInt16LE(versionNeeded(p), 6);
  b.writeUInt16LE(FLAGS, 8);
  b.writeUInt16LE(0, 10);
  b.writeUInt16LE(dosTime, 12);
  b.writeUInt16LE(dosDate, 14);
  b.writeUInt32LE(crc >>> 0, 16);
  b.writeUInt32LE(p.cdSizes64 ? U32_MAX : p.size, 20);
  b.writeUInt32LE(p.cdSizes64 ? U32_MAX : p.size, 24);
  b.writeUInt16LE(p.nameBytes.length, 28);
  b.writeUInt16LE(extraLen, 30);
  b.writeUInt16LE(0, 32); // comment length
  b.writeUInt16LE(0, 34); // disk number start
  b.writeUInt16LE(0, 36); // internal attributes
  b.writeUInt32LE(EXTERNAL_ATTRS, 38);
  b.writeUInt32LE(p.cdOffset64 ? U32_MAX : p.offset, 42);
  p.nameBytes.copy(b, 46);
  if (fields > 0) {
    // Fixed order (APPNOTE 4.5.3): original size, compressed size, local header offset.
    let e = 46 + p.nameBytes.length;
    b.writeUInt16LE(ZIP64_EXTRA_ID, e);
    b.writeUInt16LE(8 * fields, e + 2);
    e += 4;
    if (p.cdSizes64) {
      b.writeBigUInt64LE(BigInt(p.size), e);
      b.writeBigUInt64LE(BigInt(p.size), e + 8);
      e += 16;
    }
    if (p.cdOffset64) b.writeBigUInt64LE(BigInt(p.offset), e);
  }
  return b;
}

/** ZIP64 EOCD record + locator (when needed) followed by the classic EOCD record. */
function endRecords(count: number, cdOffset: number, cdSize: number, force: boolean): Buffer {
  const need64 = force || count >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(SIG_EOCD, 0);
  // disk numbers (4..7) stay 0
  const count16 = force || count >= U16_MAX ? U16_MAX : count;
  eocd.writeUInt16LE(count16, 8);
  eocd.writeUInt16LE(count16, 10);
  eocd.writeUInt32LE(force || cdSize >= U32_MAX ? U32_MAX : cdSize, 12);
  eocd.writeUInt32LE(force || cdOffset >= U32_MAX ? U32_MAX : cdOffset, 16);
  // comment length (20) stays 0
  if (!need64) return eocd;

  const z = Buffer.alloc(56 + 20);
  z.writeUInt32LE(SIG_ZIP64_EOCD, 0);
  z.writeBigUInt64LE(44n, 4); // size of the remaining record
  z.writeUInt16LE(VERSION_MADE_BY, 12);
  z.writeUInt16LE(VERSION_ZIP64, 14);
  // disk numbers (16..23) stay 0
  z.writeBigUInt64LE(BigInt(count), 24);
  z.writeBigUInt64LE(BigInt(count), 32);
  z.writeBigUInt64LE(BigInt(cdSize), 40);
  z.writeBigUInt64LE(BigInt(cdOffset), 48);
  // locator
  z.writeUInt32LE(SIG_ZIP64_LOCATOR, 56);
  z.writeUInt32LE(0, 60);
  z.writeBigUInt64LE(BigInt(cdOffset + cdSize), 64); // the ZIP64 EOCD follows the central directory
  z.writeUInt32LE(1, 72); // total number of disks
  return Buffer.concat([z, eocd]);
}

/** DOS time and date words in local time, clamped to 1980-01-01 … 2107-12-31 23:59:58. */
function dosDateTime(d: Date): { time: number; date: number } {
  const ms = d instanceof Date ? d.getTime() : NaN;
  if (!Number.isFinite(ms)) return { time: 0, date: (0 << 9) | (1 << 5) | 1 };
  const year = d.getFullYear();
  if (year < 1980) return { time: 0, date: (1 << 5) | 1 };
  if (year > 2107) return { time: (23 << 11) | (59 << 5) | 29, date: (127 << 9) | (12 << 5) | 31 };
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

/**
 * The exact length in bytes of the archive {@link createZipStream} produces for these entries (in
 * the same order, with the same `opts`), e.g. for a `Content-Length` header. Names are sanitised
 * exactly as the writer does. Throws for an invalid size or a name over 65535 UTF-8 bytes (the
 * writer would abort on the same input).
 */
export function zipSize(entries: { name: string; size: number }[], opts: ZipOptions = {}): number {
  return runSteps(zipSizeSteps(entries, opts));
}

/** {@link zipSize} for long entry lists: the same result, computed in slices that yield to the event loop. */
export function zipSizeAsync(entries: { name: string; size: number }[], opts: ZipOptions = {}): Promise<number> {
  return runStepsAsync(zipSizeSteps(entries, opts));
}

function* zipSizeSteps(entries: { name: string; size: number }[], opts: ZipOptions): Generator<void, number> {
  const force = opts.forceZip64 === true;
  let offset = 0;
  let cdSize = 0;
  for (const e of entries) {
    const p = planEntry(e.name, e.size, offset, force);
    const local = 30 + p.nameBytes.length + (p.localZip64 ? 20 : 0);
    const descriptor = p.localZip64 ? 24 : 16;
    const fields = (p.cdSizes64 ? 2 : 0) + (p.cdOffset64 ? 1 : 0);
    cdSize += 46 + p.nameBytes.length + (fields > 0 ? 4 + 8 * fields : 0);
    offset += local + p.size + descriptor;
    yield;
  }
  return offset + cdSize + endRecords(entries.length, offset, cdSize, force).length;
}

// ---------------------------------------------------------------------------------------------
// Work over every entry is written once as a generator that yields after each item; it runs either in one go
// (the synchronous API) or in slices of STEPS_PER_SLICE items with a turn of the event loop between them.

const STEPS_PER_SLICE = 500;

function runSteps<R>(steps: Generator<void, R>): R {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

async function runStepsAsync<R>(steps: Generator<void, R>): Promise<R> {
  for (let n = 1; ; n++) {
    const r = steps.next();
    if (r.done) return r.value;
    if (n % STEPS_PER_SLICE === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Streams a ZIP archive of `entries` (stored, UTF-8 names, data descriptors, ZIP64 where needed).
 *
 * Pull-based: an entry is opened only after the previous one is fully written, chunks are passed
 * through without being collected, and nothing is produced faster than the consumer reads, so
 * memory is bounded by the stream's high-water mark plus one chunk plus a small central-directory
 * record per entry. The entry iterable is consumed lazily as well.
 *
 * The output is destroyed with an error (and `opts.onError` called) if `open()` rejects, an entry
 * stream errors, an entry delivers more or fewer bytes than its `size`, or an entry is invalid;
 * consumers must therefore handle `'error'` (e.g. use `stream.pipeline`). If the consumer destroys
 * the output, the entry stream in progress is destroyed and no further entry is opened.
 */
export function createZipStream(
  entries: AsyncIterable<ZipEntrySource> | Iterable<ZipEntrySource>,
  opts: ZipStreamOptions = {},
): Readable {
  const force = opts.forceZip64 === true;
  let stopped = false;
  let current: Readable | null = null;
  let wake: (() => void) | null = null;

  // 64 KiB like Node 22+'s default, so buffering is the same on every supported Node (20's default is 16 KiB)
  const out = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      const w = wake;
      wake = null;
      w?.();
    },
    destroy(err, cb) {
      stopped = true;
      current?.destroy();
      const w = wake;
      wake = null;
      w?.();
      cb(err);
    },
  });

  let position = 0;
  /** Pushes one buffer; resolves once the consumer wants more. Returns false once stopped. */
  const emit = async (buf: Buffer): Promise<boolean> => {
    if (stopped) return false;
    position += buf.length;
    if (!out.push(buf)) await new Promise<void>((resolve) => (wake = resolve));
    return !stopped;
  };

  const run = async (): Promise<void> => {
    const central: Buffer[] = [];
    for await (const entry of entries) {
      if (stopped) return;
      const p = planEntry(entry.name, entry.size, position, force);
      const { time, date } = dosDateTime(entry.mtime);
      if (!(await emit(localHeader(p, time, date)))) return;

      const stream = await entry.open();
      if (stopped) {
        stream.destroy();
        return;
      }
      current = stream;
      let crc = 0;
      let written = 0;
      try {
        for await (const chunk of stream) {
          const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          written += buf.length;
          if (written > p.size) {
            throw new Error(`zip: entry "${entry.name}" delivered more than its declared ${p.size} bytes`);
          }
          crc = crc32(buf, crc);
          if (!(await emit(buf))) return;
        }
      } catch (err) {
        if (stopped) return; // consumer went away; the entry stream was destroyed on purpose
        throw err;
      } finally {
        current = null;
        if (!stream.destroyed) stream.destroy();
      }
      if (stopped) return;
      if (written !== p.size) {
        throw new Error(`zip: entry "${entry.name}" delivered ${written} bytes, declared ${p.size}`);
      }
      if (!(await emit(dataDescriptor(p, crc)))) return;
      central.push(centralHeader(p, crc, time, date));
    }
    if (stopped) return;
    const cdOffset = position;
    for (let i = 0; i < central.length; i++) {
      const rec = central[i];
      central[i] = EMPTY; // let each record go once written
      if (!(await emit(rec))) return;
    }
    if (!(await emit(endRecords(central.length, cdOffset, position - cdOffset, force)))) return;
    out.push(null);
  };

  run().catch((e: unknown) => {
    if (stopped) return;
    const err = e instanceof Error ? e : new Error(String(e));
    opts.onError?.(err);
    out.destroy(err);
  });
  return out;
}

const EMPTY = Buffer.alloc(0);

// ---------------------------------------------------------------------------------------------
// Names

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/g;
const DRIVE = /^[A-Za-z]:/;

function sanitizeStep(name: string): string {
  let s = name.normalize('NFC').replace(CONTROL_CHARS, '_');
  s = s.replace(/^[\\/]+/, '');
  while (DRIVE.test(s)) s = s.slice(2).replace(/^[\\/]+/, '');
  s = s.replace(/\\/g, '_');
  return s
    .split('/')
    .filter((seg) => seg !== '' && seg !== '.' && seg !== '..')
    .join('/');
}

/** Archive-safe form of one name (idempotent); see {@link uniqueZipNames}. */
function sanitizeZipName(name: string): string {
  let s = String(name);
  for (;;) {
    const next = sanitizeStep(s);
    if (next === s) break;
    s = next;
  }
  return s === '' ? 'file' : s;
}

/** Inserts ` (n)` before the extension of the last path segment (`a/b.txt` → `a/b (1).txt`). */
function withCounter(name: string, n: number): string {
  const slash = name.lastIndexOf('/');
  const dir = name.slice(0, slash + 1);
  const base = name.slice(slash + 1);
  let dot = base.lastIndexOf('.');
  if (dot > 0 && /\.tar$/i.test(base.slice(0, dot))) dot -= 4; // keep "x.tar.gz" together
  if (dot <= 0) return `${dir}${base} (${n})`;
  return `${dir}${base.slice(0, dot)} (${n})${base.slice(dot)}`;
}

const key = (s: string): string => s.toLowerCase();

/**
 * Makes a list of names safe and unique for one archive. Same length and order as the input.
 *
 * Sanitising (zip-slip safe; also applied by the writer, and idempotent): Unicode NFC, control
 * characters → `_`, leading `/` and drive letters (`C:`) removed, `\` → `_`, empty / `.` / `..`
 * segments dropped, an empty result becomes `file`.
 *
 * De-duplicating, case-insensitively (extraction on Windows/macOS is): the first occurrence keeps its
 * name; later ones get ` (1)`, ` (2)`, … before the extension (`a.txt` → `a (1).txt`), choosing a
 * suffix that matches no other (sanitised) input name and no earlier output. A file whose name
 * equals a directory used by another entry (`a` next to `a/b`) is renamed the same way.
 *
 * Linear in the number of names: each counter is tried at most once per name, however many copies there are.
 */
export function uniqueZipNames(names: string[]): string[] {
  return runSteps(uniqueZipNameSteps(names));
}

/** {@link uniqueZipNames} for long lists: the same result, computed in slices that yield to the event loop. */
export function uniqueZipNamesAsync(names: string[]): Promise<string[]> {
  return runStepsAsync(uniqueZipNameSteps(names));
}

function* uniqueZipNameSteps(names: string[]): Generator<void, string[]> {
  const clean: string[] = [];
  for (const n of names) {
    clean.push(sanitizeZipName(n));
    yield;
  }
  const reserved = new Set<string>();
  const dirs = new Set<string>();
  for (const n of clean) {
    reserved.add(key(n));
    const parts = key(n).split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    yield;
  }
  const used = new Set<string>();
  // Per name (case-insensitively), the first counter not yet tried. Every counter below it was taken when it was
  // tried, and taken names stay taken, so starting there gives the same result as searching from 1 — but each
  // counter is tried once per name, which keeps the whole pass linear (k copies of one name: k tries, not k²/2).
  const nextCounter = new Map<string, number>();
  const out: string[] = [];
  for (const name of clean) {
    let result = name;
    const k0 = key(name);
    if (used.has(k0) || dirs.has(k0)) {
      for (let n = nextCounter.get(k0) ?? 1; ; n++) {
        const candidate = withCounter(name, n);
        const k = key(candidate);
        if (!reserved.has(k) && !used.has(k) && !dirs.has(k)) {
          result = candidate;
          nextCounter.set(k0, n + 1);
          break;
        }
      }
    }
    used.add(key(result));
    out.push(result);
    yield;
  }
  return out;
}
