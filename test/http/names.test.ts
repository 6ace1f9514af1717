/** File names are metadata only: any Unicode name up to 255 code points is kept verbatim and never reaches the file system. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const UNICODE = {
  emoji: '😀🎉👩‍👩‍👧‍👦.png',
  cjk: '日本語のファイル名_中文文件名_한국어.txt',
  rtl: 'مرحبا بالعالم שלום.pdf',
  combining: 'e\u0301le\u0300ve.txt',
  '255 code points (emoji)': '😀'.repeat(255),
  '255 code points (ascii)': 'a'.repeat(255),
};

const HOSTILE = {
  traversal: '../../etc/passwd',
  'absolute path': '/etc/shadow',
  'mixed separators': 'a/b\\c',
  'windows traversal': '..\\..\\Windows\\System32\\config',
  quotes: `it's "quoted" \`name\``,
  newlines: 'line1\nline2\r\nContent-Type: text/html',
  'html': '<script>alert(1)</script>.html',
  dots: '..',
  dot: '.',
  'reserved device': 'CON',
  'percent escapes': '%2e%2e%2f%00.txt',
  'tabs and spaces': ' \t leading and trailing \t ',
  semicolon: 'a; filename="evil.exe"',
};

describeEachBackend('file names', (b: BackendContext) => {
  let t: TestServer;
  let dzId: string;
  beforeAll(async () => {
    t = await b.start();
    dzId = (await t.createDropzone(t.adminKey, { gb: 1, days: 30 }))._id;
  });
  afterAll(async () => {
    await t?.close();
  });

  async function roundTrip(name: string) {
    const content = `content of ${JSON.stringify(name)}`;
    const { fileId, file, upload } = await t.upload(t.adminKey, dzId, name, content, 'text/plain');
    expect(upload.file.name).toBe(name);
    expect(file.name).toBe(name);
    expect((await t.req('GET', `/files/${fileId}`, { key: t.adminKey })).body.name).toBe(name);
    expect((await t.req('GET', `/files/${fileId}`, { dropzoneId: dzId })).body.data.name).toBe(name);
    const listed = (await t.req('GET', `/dropzones/${dzId}/files`, { key: t.adminKey })).body.data.find((f: any) => f._id === fileId);
    expect(listed.name).toBe(name);
    const dl = await t.req('GET', `/files/${fileId}/download`, { key: t.adminKey });
    expect(dl.status).toBe(200);
    expect(dl.text).toBe(content);
    const cd = dl.headers.get('content-disposition')!;
    expect(decodeURIComponent(/filename\*=UTF-8''([^;\s]+)/.exec(cd)![1])).toBe(name);
    // exactly two parameters: the name cannot break out of the quoted fallback or inject another one
    expect(cd).toMatch(/^attachment; filename="[\x20\x21\x23-\x5b\x5d-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9%!._~-]+$/);
    return fileId;
  }

  for (const [label, name] of Object.entries(UNICODE)) {
    it(`Unicode name kept verbatim: ${label}`, async () => {
      await roundTrip(name);
    });
  }

  for (const [label, name] of Object.entries(HOSTILE)) {
    it(`hostile name kept as metadata only: ${label}`, async () => {
      await roundTrip(name);
      if (t.backend === 'local') {
        // every stored object has a server-generated key under dataDir/blobs
        for (const f of t.blobFiles()) expect(f).toMatch(/^(objects|\.meta\/objects)\/[A-Za-z0-9_-]+(\.json)?$/);
        // and nothing else appeared next to the data directory's own entries
        expect(readdirSync(t.dataDir).sort()).toEqual(expect.arrayContaining(['blobs']));
        for (const entry of readdirSync(t.dataDir)) expect(['blobs', 'dropzone.db', 'dropzone.db-wal', 'dropzone.db-shm', 'space-reserve']).toContain(entry);
        expect(readdirSync(join(t.dataDir, 'blobs')).every((e) => ['objects', '.meta', '.tmp'].includes(e))).toBe(true);
      }
      for (const k of await t.blobKeys()) expect(k).toMatch(/^objects\/[A-Za-z0-9_-]+$/);
    });
  }

  it.each([
    ['256 code points', '😀'.repeat(256)],
    ['256 ASCII characters', 'a'.repeat(256)],
    ['empty', ''],
    ['NUL', 'a\u0000b'],
  ])('%s → 400 naming "name"', async (_label, name) => {
    const res = await t.req('POST', `/dropzones/${dzId}/files`, { key: t.adminKey, body: { name, type: 'text/plain', size: 1 } });
    expect(res.status).toBe(400);
    expect(res.body.data.field).toBe('name');
    expect(res.body.message).toContain('name');
  });

  it.each([
    ['lone high surrogate', '"bad\\ud800name"'],
    ['lone low surrogate', '"bad\\udc00name"'],
    ['reversed pair', '"\\ude00\\ud83d"'],
  ])('a name that is not well-formed Unicode (%s) cannot be kept verbatim: 400 naming "name"', async (_label, json) => {
    const res = await t.req('POST', `/dropzones/${dzId}/files`, { key: t.adminKey, rawBody: `{"name":${json},"type":"text/plain","size":1}` });
    expect(res.status).toBe(400);
    expect(res.body.data.field).toBe('name');
  });
});
