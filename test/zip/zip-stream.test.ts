import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createZipStream, uniqueZipNames, zipSize, type ZipEntrySource } from '../../src/zip/zip-stream.js';

const UTF8_ENV = { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-stream-test-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A source whose content is `data`, delivered in chunks of `chunk` bytes. */
function bufferEntry(name: string, data: Buffer, chunk = 64 * 1024, mtime = new Date(2024, 2, 3, 4, 5, 6)): ZipEntrySource {
  return {
    name,
    size: data.length,
    mtime,
    open: async () => {
      const parts: Buffer[] = [];
      for (let i = 0; i < data.length; i += chunk) parts.push(data.subarray(i, i + chunk));
      return Readable.from(parts);
    },
  };
}

async function collect(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function writeZip(file: string, entries: ZipEntrySource[], opts?: { forceZip64?: boolean }): Promise<Buffer> {
  const buf = await collect(createZipStream(entries, opts));
  fs.writeFileSync(file, buf);
  return buf;
}

interface PyEntry {
  name: string;
  size: number;
  csize: number;
  sha: string;
  dt: number[];
  method: number;
  flags: number;
  offset: number;
}

/** Reads every member with Python's zipfile (which verifies CRC-32 while reading). */
function pyRead(file: string): { bad: string | null; entries: PyEntry[] } {
  const script = `
import zipfile, sys, json, hashlib
with zipfile.ZipFile(sys.argv[1]) as z:
    out = []
    for i in z.infolist():
        d = z.read(i)
        out.append({"name": i.filename, "size": i.file_size, "csize": i.compress_size,
                    "sha": hashlib.sha256(d).hexdigest(), "dt": list(i.date_time),
                    "method": i.compress_type, "flags": i.flag_bits, "offset": i.header_offset})
    print(json.dumps({"bad": z.testzip(), "entries": out}))
`;
  const stdout = execFileSync('python3', ['-c', script, file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(stdout) as { bad: string | null; entries: PyEntry[] };
}

function unzipTest(file: string, ...members: string[]): { status: number | null; out: string } {
  const r = spawnSync('unzip', ['-t', file, ...members], { encoding: 'utf8', env: UTF8_ENV, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** Extracts with Info-ZIP unzip and returns the bytes of every extracted regular file by relative path. */
function unzipExtract(file: string): Map<string, Buffer> {
  const dir = fs.mkdtempSync(path.join(tmp, 'x-'));
  const r = spawnSync('unzip', ['-q', '-o', file, '-d', dir], { encoding: 'utf8', env: UTF8_ENV });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const files = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.set(path.relative(dir, p).split(path.sep).join('/'), fs.readFileSync(p));
    }
  };
  walk(dir);
  return files;
}

/** Reads the sources' bytes independently of the archive (what each entry should contain). */
async function expectedContents(entries: ZipEntrySource[]): Promise<Map<string, Buffer>> {
  const m = new Map<string, Buffer>();
  for (const e of entries) m.set(e.name, await collect(await e.open()));
  return m;
}

function sampleEntries(): ZipEntrySource[] {
  const names = uniqueZipNames(['random.bin', 'empty.txt', 'naïve 日本.txt', 'dup.txt', 'DUP.txt', 'dir/sub/dup.txt', 'dup.txt']);
  expect(names).toEqual(['random.bin', 'empty.txt', 'naïve 日本.txt', 'dup.txt', 'DUP (1).txt', 'dir/sub/dup.txt', 'dup (2).txt']);
  const datas = [
    randomBytes(300_000), // several chunks, not a multiple of the chunk size
    Buffer.alloc(0),
    Buffer.from('unicode content ✓\n'),
    Buffer.from('first dup'),
    Buffer.from('second dup'),
    Buffer.from('nested dup'),
    Buffer.from('third dup'),
  ];
  return names.map((n, i) => bufferEntry(n, datas[i], 65_536));
}

async function validateRoundTrip(entries: ZipEntrySource[], opts?: { forceZip64?: boolean }): Promise<Buffer> {
  const file = path.join(tmp, `rt-${Math.random().toString(36).slice(2)}.zip`);
  const buf = await writeZip(file, entries, opts);
  const expected = await expectedContents(entries);

  expect(buf.length).toBe(zipSize(entries, opts));

  const t = unzipTest(file);
  expect(t.status, t.out).toBe(0);
  expect(t.out).toContain('No errors detected');

  const zi = spawnSync('zipinfo', [file], { encoding: 'utf8', env: UTF8_ENV });
  expect(zi.status, zi.stderr).toBe(0);
  expect(zi.stdout).toContain(`${entries.length} file`);

  const py = pyRead(file);
  expect(py.bad).toBeNull();
  expect(py.entries.map((e) => e.name)).toEqual(entries.map((e) => e.name));
  for (const e of py.entries) {
    const want = expected.get(e.name)!;
    expect(e.size).toBe(want.length);
    expect(e.csize).toBe(want.length);
    expect(e.method).toBe(0);
    expect(e.flags & 0x0808).toBe(0x0808);
    expect(e.sha).toBe(sha(want));
    expect(e.dt).toEqual([2024, 3, 3, 4, 5, 6]);
  }

  const extracted = unzipExtract(file);
  expect([...extracted.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, want] of expected) expect(sha(extracted.get(name)!), name).toBe(sha(want));
  return buf;
}

describe('createZipStream: round trip through independent readers', () => {
  it('binary, empty, unicode and de-duplicated entries', async () => {
    const buf = await validateRoundTrip(sampleEntries());
    // Not ZIP64 when nothing needs it: the record before the EOCD is the central directory.
    expect(buf.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(-1);
  });

  it('forceZip64 archive', async () => {
    const buf = await validateRoundTrip(sampleEntries(), { forceZip64: true });
    // ZIP64 EOCD record (56) + locator (20) sit right before the classic EOCD (22).
    expect(buf.readUInt32LE(buf.length - 22 - 20 - 56)).toBe(0x06064b50);
    expect(buf.readUInt32LE(buf.length - 22 - 20)).toBe(0x07064b50);
    // Local header of the first entry carries a ZIP64 extra field.
    expect(buf.readUInt16LE(30 + Buffer.byteLength('random.bin'))).toBe(0x0001);
  });

  it('stores the mtime as local DOS date/time, clamped to 1980', async () => {
    const file = path.join(tmp, 'dates.zip');
    await writeZip(file, [
      bufferEntry('a', Buffer.from('a'), 1, new Date(2021, 5, 15, 13, 45, 31)),
      bufferEntry('b', Buffer.from('b'), 1, new Date(1970, 0, 1, 12, 0, 0)),
    ]);
    const py = pyRead(file);
    expect(py.entries[0].dt).toEqual([2021, 6, 15, 13, 45, 30]);
    expect(py.entries[1].dt).toEqual([1980, 1, 1, 0, 0, 0]);
  });

  it('sanitises names it is given (zip-slip) even without uniqueZipNames', async () => {
    const file = path.join(tmp, 'slip.zip');
    const entries = [bufferEntry('../../evil.txt', Buffer.from('x')), bufferEntry('/abs/y', Buffer.from('y'))];
    const buf = await writeZip(file, entries);
    expect(buf.length).toBe(zipSize(entries));
    expect(pyRead(file).entries.map((e) => e.name)).toEqual(['evil.txt', 'abs/y']);
  });

  it('accepts an async iterable of entries', async () => {
    const file = path.join(tmp, 'async.zip');
    const list = [bufferEntry('one.txt', Buffer.from('1')), bufferEntry('two.txt', Buffer.from('22'))];
    async function* gen(): AsyncGenerator<ZipEntrySource> {
      for (const e of list) {
        await new Promise((r) => setTimeout(r, 1));
        yield e;
      }
    }
    fs.writeFileSync(file, await collect(createZipStream(gen())));
    const py = pyRead(file);
    expect(py.entries.map((e) => [e.name, e.size])).toEqual([['one.txt', 1], ['two.txt', 2]]);
  });
});

describe('zipSize', () => {
  const shapes: { label: string; entries: ZipEntrySource[]; opts?: { forceZip64?: boolean } }[] = [
    { label: 'empty archive', entries: [] },
    { label: 'empty archive, forced ZIP64', entries: [], opts: { forceZip64: true } },
    { label: 'one entry', entries: [bufferEntry('a.txt', Buffer.from('hello'))] },
    { label: 'one empty entry', entries: [bufferEntry('e', Buffer.alloc(0))] },
    {
      label: 'many entries',
      entries: Array.from({ length: 50 }, (_, i) => bufferEntry(`d${i % 3}/f${i}.bin`, randomBytes(i * 37))),
    },
    {
      label: 'forced ZIP64',
      entries: Array.from({ length: 5 }, (_, i) => bufferEntry(`f${i}`, randomBytes(1000 + i))),
      opts: { forceZip64: true },
    },
    { label: 'unicode names', entries: [bufferEntry('naïve 日本.txt', Buffer.from('x')), bufferEntry('😀/ß', Buffer.from('yy'))] },
  ];

  for (const s of shapes) {
    it(`equals the real output length: ${s.label}`, async () => {
      const buf = await collect(createZipStream(s.entries, s.opts));
      expect(buf.length).toBe(zipSize(s.entries, s.opts));
      const file = path.join(tmp, `size-${s.label.replace(/\W+/g, '_')}.zip`);
      fs.writeFileSync(file, buf);
      const py = pyRead(file);
      expect(py.bad).toBeNull();
      expect(py.entries.length).toBe(s.entries.length);
    });
  }

  it('more than 65535 entries switches to the ZIP64 end record (length and readers agree)', async () => {
    const n = 65_540;
    const entries = Array.from({ length: n }, (_, i) => bufferEntry(`f${i}`, i % 1000 === 0 ? Buffer.from(String(i)) : Buffer.alloc(0)));
    const file = path.join(tmp, 'many.zip');
    const buf = await writeZip(file, entries);
    expect(buf.length).toBe(zipSize(entries));
    expect(buf.readUInt32LE(buf.length - 22 - 20 - 56)).toBe(0x06064b50);
    const count = execFileSync(
      'python3',
      ['-c', 'import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); print(len(z.infolist()), z.read("f65000").decode())', file],
      { encoding: 'utf8' },
    ).trim();
    expect(count).toBe(`${n} 65000`);
    const t = spawnSync('unzip', ['-tqq', file], { encoding: 'utf8' });
    expect(t.status, t.stdout + t.stderr).toBe(0);
  }, 60_000);

  it('rejects invalid sizes', () => {
    expect(() => zipSize([{ name: 'a', size: -1 }])).toThrow();
    expect(() => zipSize([{ name: 'a', size: 1.5 }])).toThrow();
  });
});

// ---------------------------------------------------------------------------------------------

const BIG = 4_300_000_000; // > 4 GiB (4_294_967_296)
const NEED_FREE = 10 * 1024 ** 3;
function freeBytes(): number {
  const s = fs.statfsSync(os.tmpdir());
  return s.bavail * s.bsize;
}
const free = freeBytes();
const skipBig = free < NEED_FREE;
if (skipBig) {
  console.warn(`skipping >4 GiB ZIP64 test: only ${(free / 1024 ** 3).toFixed(1)} GiB free in ${os.tmpdir()}, need 10 GiB`);
}

/** A stream of `size` bytes of a repeating pattern, from one shared 1 MiB buffer. */
function patternStream(size: number): Readable {
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = i % 251;
  let left = size;
  return new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(left, block.length);
      left -= n;
      this.push(n === block.length ? block : block.subarray(0, n));
    },
  });
}

describe('ZIP64 for real', () => {
  it.skipIf(skipBig)(
    'a >4 GiB entry followed by a small one (offset beyond 4 GiB) reads back',
    async () => {
      const file = path.join(os.tmpdir(), `zip-stream-big-${process.pid}-${Date.now()}.zip`);
      const small = Buffer.from('small entry after the big one\n');
      const entries: ZipEntrySource[] = [
        { name: 'big.bin', size: BIG, mtime: new Date(2024, 0, 1), open: async () => patternStream(BIG) },
        bufferEntry('small.txt', small),
      ];
      try {
        await pipeline(createZipStream(entries), fs.createWriteStream(file));
        expect(fs.statSync(file).size).toBe(zipSize(entries));
        const script = `
import zipfile, sys, json
with zipfile.ZipFile(sys.argv[1]) as z:
    infos = z.infolist()
    small = z.getinfo("small.txt")
    print(json.dumps({"names": [i.filename for i in infos], "sizes": [i.file_size for i in infos],
                      "csizes": [i.compress_size for i in infos], "offset": small.header_offset,
                      "data": z.read("small.txt").decode()}))
`;
        const r = JSON.parse(execFileSync('python3', ['-c', script, file], { encoding: 'utf8' })) as {
          names: string[];
          sizes: number[];
          csizes: number[];
          offset: number;
          data: string;
        };
        expect(r.names).toEqual(['big.bin', 'small.txt']);
        expect(r.sizes).toEqual([BIG, small.length]);
        expect(r.csizes).toEqual([BIG, small.length]);
        expect(r.offset).toBeGreaterThan(0xffffffff);
        expect(r.data).toBe(small.toString());
        const t = unzipTest(file, 'small.txt');
        expect(t.status, t.out).toBe(0);
        const l = spawnSync('unzip', ['-l', file], { encoding: 'utf8' });
        expect(l.status, l.stderr).toBe(0);
        expect(l.stdout).toMatch(new RegExp(`\\b${BIG}\\b.*big\\.bin`));
      } finally {
        fs.rmSync(file, { force: true });
      }
    },
    120_000,
  );
});

// ---------------------------------------------------------------------------------------------

describe('backpressure and laziness', () => {
  const CHUNK = 64 * 1024;
  const CHUNKS = 40;

  function trackedEntries(log: string[], produced: { bytes: number }, count = 3): ZipEntrySource[] {
    return Array.from({ length: count }, (_, k) => ({
      name: `e${k}.bin`,
      size: CHUNK * CHUNKS,
      mtime: new Date(2024, 0, 1),
      open: async () => {
        log.push(`open${k}`);
        let i = 0;
        const chunk = Buffer.alloc(CHUNK, k);
        return new Readable({
          highWaterMark: CHUNK,
          read() {
            if (i === CHUNKS) {
              log.push(`end${k}`);
              this.push(null);
              return;
            }
            i++;
            produced.bytes += CHUNK;
            this.push(chunk);
          },
        });
      },
    }));
  }

  it('a slow consumer keeps the producer close behind, and entries open one after another', async () => {
    const log: string[] = [];
    const produced = { bytes: 0 };
    const out = createZipStream(trackedEntries(log, produced));
    let consumed = 0;
    let maxBuffered = 0;
    let maxAhead = 0;
    for await (const c of out) {
      consumed += (c as Buffer).length;
      // Give the producer time to run ahead, then look at what piled up before the next read.
      await new Promise((r) => setTimeout(r, 1));
      maxBuffered = Math.max(maxBuffered, out.readableLength);
      maxAhead = Math.max(maxAhead, produced.bytes - consumed);
    }
    expect(consumed).toBeGreaterThan(3 * CHUNK * CHUNKS);
    // Without backpressure the whole 7.5 MiB would be produced up front.
    expect(maxBuffered).toBeLessThanOrEqual(out.readableHighWaterMark + CHUNK);
    expect(maxAhead).toBeLessThanOrEqual(4 * CHUNK);
    expect(log).toEqual(['open0', 'end0', 'open1', 'end1', 'open2', 'end2']);
  });

  it('produces nothing beyond a few chunks while nobody reads', async () => {
    const log: string[] = [];
    const produced = { bytes: 0 };
    const out = createZipStream(trackedEntries(log, produced));
    await new Promise((r) => setTimeout(r, 100));
    expect(produced.bytes).toBeLessThanOrEqual(4 * CHUNK);
    expect(log).toEqual(['open0']);
    out.destroy();
  });

  it('consumer destroying the output destroys the current entry stream and opens no more', async () => {
    const log: string[] = [];
    const produced = { bytes: 0 };
    const streams: Readable[] = [];
    const errors: Error[] = [];
    const entries = trackedEntries(log, produced).map((e) => ({
      ...e,
      open: async () => {
        const s = await e.open();
        streams.push(s);
        return s;
      },
    }));
    const out = createZipStream(entries, { onError: (e) => errors.push(e) });
    let seen = 0;
    await new Promise<void>((resolve) => {
      out.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen > 3 * CHUNK) {
          out.destroy();
          resolve();
        }
      });
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(streams.length).toBe(1);
    expect(streams[0].destroyed).toBe(true);
    expect(log).toEqual(['open0']);
    expect(errors).toEqual([]);
  });

  it('consumer destroying the output while an entry stream is stalled destroys that stream', async () => {
    let stalled: Readable | undefined;
    const opened: string[] = [];
    const entries: ZipEntrySource[] = ['a', 'b'].map((name) => ({
      name,
      size: 100,
      mtime: new Date(2024, 0, 1),
      open: async () => {
        opened.push(name);
        let sent = false;
        stalled = new Readable({
          read() {
            if (!sent) this.push(Buffer.alloc(10)); // then never anything again
            sent = true;
          },
        });
        return stalled;
      },
    }));
    const out = createZipStream(entries);
    await new Promise<void>((resolve) => {
      let seen = 0;
      out.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen >= 30 + 1 + 10) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(stalled!.destroyed).toBe(false);
    out.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(stalled!.destroyed).toBe(true);
    expect(opened).toEqual(['a']);
  });
});

// ---------------------------------------------------------------------------------------------

describe('errors destroy the output', () => {
  async function expectFailure(entries: ZipEntrySource[], message: RegExp): Promise<void> {
    const errors: Error[] = [];
    const out = createZipStream(entries, { onError: (e) => errors.push(e) });
    await expect(collect(out)).rejects.toThrow(message);
    expect(out.destroyed).toBe(true);
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(message);
  }

  it('entry stream error mid-way', async () => {
    const entry: ZipEntrySource = {
      name: 'x',
      size: 100,
      mtime: new Date(),
      open: async () =>
        Readable.from(
          (async function* () {
            yield Buffer.alloc(10);
            throw new Error('disk on fire');
          })(),
        ),
    };
    await expectFailure([bufferEntry('ok', Buffer.from('ok')), entry], /disk on fire/);
  });

  it('open() rejecting', async () => {
    const entry: ZipEntrySource = { name: 'x', size: 1, mtime: new Date(), open: () => Promise.reject(new Error('no such blob')) };
    await expectFailure([entry], /no such blob/);
  });

  it('fewer bytes than declared', async () => {
    const e = bufferEntry('short', Buffer.alloc(10));
    await expectFailure([{ ...e, size: 11 }], /delivered 10 bytes, declared 11/);
  });

  it('more bytes than declared, before writing the excess', async () => {
    const e = bufferEntry('long', Buffer.alloc(10), 4);
    const out = createZipStream([{ ...e, size: 9 }]);
    const parts: Buffer[] = [];
    out.on('data', (c: Buffer) => parts.push(c));
    await expect(new Promise((resolve, reject) => out.on('error', reject).on('end', resolve))).rejects.toThrow(/more than its declared 9/);
    const header = 30 + 4;
    expect(Buffer.concat(parts).length).toBeLessThanOrEqual(header + 9);
  });

  it('a failing entry iterator', async () => {
    function* gen(): Generator<ZipEntrySource> {
      yield bufferEntry('a', Buffer.from('a'));
      throw new Error('listing failed');
    }
    const out = createZipStream(gen());
    await expect(collect(out)).rejects.toThrow(/listing failed/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('uniqueZipNames', () => {
  const cases: [string, string[], string[]][] = [
    ['unique names unchanged', ['a.txt', 'b.txt', 'dir/c'], ['a.txt', 'b.txt', 'dir/c']],
    ['duplicates numbered before extension', ['a.txt', 'a.txt', 'a.txt'], ['a.txt', 'a (1).txt', 'a (2).txt']],
    ['case-insensitive duplicates', ['Report.PDF', 'report.pdf'], ['Report.PDF', 'report (1).pdf']],
    ['never collides with a later original', ['a.txt', 'a.txt', 'a (1).txt'], ['a.txt', 'a (2).txt', 'a (1).txt']],
    ['never collides with an earlier original', ['a (1).txt', 'a.txt', 'a.txt'], ['a (1).txt', 'a.txt', 'a (2).txt']],
    ['no extension', ['README', 'readme'], ['README', 'readme (1)']],
    ['dot files', ['.env', '.env'], ['.env', '.env (1)']],
    ['tar.gz kept together', ['x.tar.gz', 'x.tar.gz'], ['x.tar.gz', 'x (1).tar.gz']],
    ['only the last segment is numbered', ['d.v2/file', 'd.v2/file'], ['d.v2/file', 'd.v2/file (1)']],
    ['file vs directory of the same name', ['a', 'a/b'], ['a (1)', 'a/b']],
    ['zip-slip: parent segments', ['../../etc/passwd'], ['etc/passwd']],
    ['zip-slip: absolute', ['/abs/x'], ['abs/x']],
    ['zip-slip: drive letter', ['C:\\x'], ['x']],
    ['zip-slip: drive letter with slash', ['C:/Windows/x'], ['Windows/x']],
    ['zip-slip: inner ..', ['a/../b'], ['a/b']],
    ['dot segments and empty segments', ['./a//./b/'], ['a/b']],
    ['backslashes', ['a\\b\\c.txt'], ['a_b_c.txt']],
    ['backslash traversal', ['..\\..\\x'], ['.._.._x']],
    ['control characters', ['a\u0000b\nc\u007f.txt'], ['a_b_c_.txt']],
    ['empty results get a fallback', ['', '..', '/', 'file'], ['file', 'file (1)', 'file (2)', 'file (3)']],
    ['NFD and NFC are the same name', ['nai\u0308ve', 'na\u00efve'], ['na\u00efve', 'na\u00efve (1)']],
    ['duplicates after sanitising', ['/x', 'x', '../x'], ['x', 'x (1)', 'x (2)']],
  ];
  it.each(cases)('%s', (_label, input, expected) => {
    expect(uniqueZipNames(input)).toEqual(expected);
  });

  it('keeps length/order and is stable under re-application', () => {
    const input = ['A', 'a', 'a (1)', '../A', 'b/../a', 'C:C:y', 'C:/D:/z'];
    const once = uniqueZipNames(input);
    expect(once).toHaveLength(input.length);
    expect(new Set(once.map((n) => n.toLowerCase())).size).toBe(input.length);
    expect(uniqueZipNames(once)).toEqual(once);
    for (const n of once) {
      expect(n.startsWith('/')).toBe(false);
      expect(n.split('/')).not.toContain('..');
      expect(/^[A-Za-z]:/.test(n)).toBe(false);
    }
  });
});

describe('uniqueZipNames is linear in the number of names (issue 8: 4000 × "a.txt" blocked the server for 1.5 s)', () => {
  /**
   * Runs `fn` counting every Set/Map lookup and insertion made meanwhile: the de-duplication's work is made of those,
   * so their count measures the algorithm's steps without timing anything.
   */
  function countLookups<T>(fn: () => T): { result: T; lookups: number } {
    const methods = [
      [Set.prototype, 'has'],
      [Set.prototype, 'add'],
      [Map.prototype, 'has'],
      [Map.prototype, 'get'],
      [Map.prototype, 'set'],
    ] as const;
    const originals = methods.map(([proto, name]) => (proto as any)[name] as (...a: unknown[]) => unknown);
    let lookups = 0;
    methods.forEach(([proto, name], i) => {
      const orig = originals[i];
      (proto as any)[name] = function (this: unknown, ...args: unknown[]) {
        lookups++;
        return orig.apply(this, args);
      };
    });
    try {
      return { result: fn(), lookups };
    } finally {
      methods.forEach(([proto, name], i) => ((proto as any)[name] = originals[i]));
    }
  }

  const N = 3000;

  it(`${N} copies of one name: the expected names, and a bounded number of lookups per name`, () => {
    const { result, lookups } = countLookups(() => uniqueZipNames(Array.from({ length: N }, () => 'a.txt')));
    expect(result[0]).toBe('a.txt');
    expect(result.slice(1)).toEqual(Array.from({ length: N - 1 }, (_, i) => `a (${i + 1}).txt`));
    // the quadratic search tried n = 1, 2, … for every copy: about N²/2 candidates, several lookups each
    expect(lookups).toBeLessThan(20 * N);
  });

  it(`${N} copies whose numbered names are all taken by other files: still bounded, nothing collides`, () => {
    const input = [...Array.from({ length: N }, () => 'A.txt'), ...Array.from({ length: N }, (_, i) => `a (${i + 1}).txt`)];
    const { result, lookups } = countLookups(() => uniqueZipNames(input));
    expect(result).toHaveLength(2 * N);
    expect(new Set(result.map((n) => n.toLowerCase())).size).toBe(2 * N);
    expect(result[1]).toBe(`A (${N + 1}).txt`);
    expect(result[N - 1]).toBe(`A (${2 * N - 1}).txt`);
    expect(result.slice(N)).toEqual(input.slice(N));
    expect(lookups).toBeLessThan(20 * 2 * N);
  });

  it('copies of different names with different cases share one counter per name', () => {
    expect(uniqueZipNames(['x.txt', 'X.TXT', 'y', 'x.TXT', 'Y', 'x (2).txt', 'x.txt'])).toEqual([
      'x.txt',
      'X (1).TXT',
      'y',
      'x (3).TXT',
      'Y (1)',
      'x (2).txt',
      'x (4).txt',
    ]);
  });
});
