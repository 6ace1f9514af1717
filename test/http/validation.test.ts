/** Malformed JSON, wrong types, missing fields, arrays instead of objects and huge numbers on every body: 400, never 500. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

interface Ctx {
  dzId: string;
  fileId: string;
  publicId: string;
}

interface Endpoint {
  name: string;
  method: string;
  path: (c: Ctx) => string;
  /** Use x-dropzone-id instead of the admin key. */
  dropzoneAuth?: boolean;
  /** A valid body (sanity check: must not be 400). */
  valid: Record<string, unknown>;
  /** Bodies with one bad field each, and the field the error must name. */
  badFields: [unknown, string][];
  /** An empty body is acceptable (treated as {}). */
  emptyOk?: boolean;
}

const HUGE = '1e400'; // parses to Infinity
const BIG = 1e300;

const ENDPOINTS: Endpoint[] = [
  {
    name: 'POST /dropzones',
    method: 'POST',
    path: () => '/dropzones',
    valid: { gb: 1, days: 30 },
    badFields: [
      [{ gb: '1', days: 30 }, 'gb'],
      [{ gb: 1, days: '30' }, 'days'],
      [{ days: 30 }, 'gb'],
      [{ gb: 1 }, 'days'],
      [{ gb: null, days: 30 }, 'gb'],
      [{ gb: -1, days: 30 }, 'gb'],
      [{ gb: BIG, days: 30 }, 'gb'],
      [{ gb: 1, days: BIG }, 'days'],
      [{ gb: 1, days: 30, name: 5 }, 'name'],
      [{ gb: 1, days: 30, name: '' }, 'name'],
      [{ gb: [1], days: 30 }, 'gb'],
    ],
  },
  ...(['PATCH', 'PUT'] as const).map(
    (method): Endpoint => ({
      name: `${method} /dropzones/:id`,
      method,
      path: (c) => `/dropzones/${c.dzId}`,
      valid: { days: 365 },
      badFields: [
        [{ gb: 'big' }, 'gb'],
        [{ days: true }, 'days'],
        [{ gb: BIG }, 'gb'],
        [{ days: -5 }, 'days'],
        [{ gb: {} }, 'gb'],
      ],
    }),
  ),
  ...[
    { name: 'POST /dropzones/:id/files', path: (c: Ctx) => `/dropzones/${c.dzId}/files`, dropzoneAuth: false },
    { name: 'POST /files (x-dropzone-id)', path: () => '/files', dropzoneAuth: true },
  ].map(
    (e): Endpoint => ({
      ...e,
      method: 'POST',
      valid: { name: 'a.txt', type: 'text/plain', size: 1 },
      badFields: [
        [{ type: 'text/plain', size: 1 }, 'name'],
        [{ name: 5, type: 'text/plain', size: 1 }, 'name'],
        [{ name: 'a', type: 'text/plain' }, 'size'],
        [{ name: 'a', type: 'text/plain', size: '1' }, 'size'],
        [{ name: 'a', type: 'text/plain', size: 1.5 }, 'size'],
        [{ name: 'a', type: 'text/plain', size: -1 }, 'size'],
        [{ name: 'a', type: 'text/plain', size: BIG }, 'size'],
        [{ name: 'a', type: 'text/plain', size: 2 ** 53 }, 'size'],
        [{ name: 'a', type: 7, size: 1 }, 'type'],
        [{ name: 'a', type: 'tëxt/plain', size: 1 }, 'type'],
        [{ name: ['a'], type: 'text/plain', size: 1 }, 'name'],
      ],
    }),
  ),
  ...(['POST', 'DELETE'] as const).flatMap((method) =>
    [
      { kind: 'dropzone', path: (c: Ctx) => `/dropzones/${c.dzId}/permissions`, perm: 'dropzone.get' },
      { kind: 'file', path: (c: Ctx) => `/files/${c.fileId}/permissions`, perm: 'file.get' },
    ].map(
      (k): Endpoint => ({
        name: `${method} /${k.kind === 'dropzone' ? 'dropzones/:id' : 'files/:fileId'}/permissions`,
        method,
        path: k.path,
        valid: { publicId: 'anyone', permissions: [k.perm] },
        badFields: [
          [{ permissions: [k.perm] }, 'publicId'],
          [{ publicId: 'anyone' }, 'permissions'],
          [{ publicId: 'anyone', permissions: k.perm }, 'permissions'],
          [{ publicId: 'anyone', permissions: [] }, 'permissions'],
          [{ publicId: 'anyone', permissions: [1] }, 'permissions'],
          [{ publicId: 5, permissions: [k.perm] }, 'publicId'],
          [{ publicId: 'anyone', permissions: { 0: k.perm } }, 'permissions'],
        ],
      }),
    ),
  ),
  {
    name: 'POST /apikeys',
    method: 'POST',
    path: () => '/apikeys',
    valid: { name: 'k' },
    emptyOk: true,
    badFields: [
      [{ name: 5 }, 'name'],
      [{ permissions: 'apikey.create' }, 'permissions'],
      [{ permissions: [5] }, 'permissions'],
      [{ gbMonths: '5' }, 'gbMonths'],
      [{ gbMonths: -1 }, 'gbMonths'],
      [{ gbMonths: BIG }, 'gbMonths'],
      [{ name: 'x'.repeat(101) }, 'name'],
    ],
  },
  {
    name: 'POST /apikeys/:publicId/transfer-gbmonths',
    method: 'POST',
    path: (c) => `/apikeys/${c.publicId}/transfer-gbmonths`,
    valid: { gbMonths: 1 },
    badFields: [
      [{}, 'gbMonths'],
      [{ gbMonths: '1' }, 'gbMonths'],
      [{ gbMonths: 0 }, 'gbMonths'],
      [{ gbMonths: null }, 'gbMonths'],
      [{ gbMonths: [1] }, 'gbMonths'],
      [{ gbMonths: BIG }, 'gbMonths'],
      [{ gbMonths: 2 ** 53 }, 'gbMonths'],
    ],
  },
];

const MALFORMED: [string, string][] = [
  ['truncated JSON', '{"gb": 1,'],
  ['single quotes', "{'gb': 1}"],
  ['trailing garbage', '{"gb": 1} x'],
  ['array', '[{"gb": 1, "days": 30}]'],
  ['null', 'null'],
  ['string', '"hello"'],
  ['number', '42'],
  ['true', 'true'],
  ['huge number field', `{"gb": ${HUGE}, "days": ${HUGE}, "size": ${HUGE}, "gbMonths": ${HUGE}, "name": "a", "publicId": "anyone", "permissions": ${HUGE}}`],
  ['deeply nested', '['.repeat(5000) + ']'.repeat(5000)],
  ['binary garbage', '\u0000\u0001\u0002'],
];

describeEachBackend('request validation', (b: BackendContext) => {
  let t: TestServer;
  let c: Ctx;
  beforeAll(async () => {
    t = await b.start();
    const dz = await t.createDropzone(t.adminKey, { gb: 4, days: 365 });
    const up = await t.requestUpload(t.adminKey, dz._id, 'v.txt', 1);
    const k = await t.createKey();
    c = { dzId: dz._id, fileId: up.fileId, publicId: k.publicId };
  });
  afterAll(async () => {
    await t?.close();
  });

  const send = (e: Endpoint, opts: { body?: unknown; rawBody?: string; headers?: Record<string, string> }) =>
    t.req(e.method, e.path(c), { ...(e.dropzoneAuth ? { dropzoneId: c.dzId } : { key: t.adminKey }), ...opts });

  for (const e of ENDPOINTS) {
    describe(e.name, () => {
      it('accepts a valid body', async () => {
        const res = await send(e, { body: e.valid });
        expect(res.status, res.text).toBeLessThan(300);
      });

      for (const [label, raw] of MALFORMED) {
        it(`${label} → 400 JSON error`, async () => {
          const res = await send(e, { rawBody: raw });
          expect(res.status, res.text).toBe(400);
          expect(res.body).toMatchObject({ status: 'error', message: expect.any(String) });
        });
      }

      it(`empty body → ${e.emptyOk ? 'accepted' : '400'}`, async () => {
        const res = await send(e, { rawBody: '' });
        if (e.emptyOk) expect(res.status, res.text).toBeLessThan(300);
        else {
          expect(res.status).toBe(400);
          expect(res.body.status).toBe('error');
        }
      });

      it('{} → 400 unless every field is optional', async () => {
        const res = await send(e, { body: {} });
        if (e.emptyOk) expect(res.status).toBeLessThan(300);
        else {
          expect(res.status).toBe(400);
          expect(res.body.message).toMatch(/Invalid body|needs|Request/);
        }
      });

      for (const [body, field] of e.badFields) {
        it(`${JSON.stringify(body).slice(0, 80)} → 400 naming ${field}`, async () => {
          const res = await send(e, { body });
          expect(res.status, res.text).toBe(400);
          expect(res.body.status).toBe('error');
          expect(res.body.message).toContain(field);
          expect(String(res.body.data?.field ?? '')).toMatch(new RegExp(`^${field}(\\.|$)`));
        });
      }

      it('a JSON body larger than 1 MiB is 413, never 500', async () => {
        const res = await send(e, { rawBody: JSON.stringify({ name: 'x'.repeat(1_100_000) }) });
        expect(res.status).toBe(413);
        expect(res.body.status).toBe('error');
      });
    });
  }

  it('POST /files/:fileId/confirm ignores any body (it takes none), never 500', async () => {
    for (const rawBody of ['', '{}', 'not json', '[1,2]']) {
      const res = await t.req('POST', `/files/${c.fileId}/confirm`, { key: t.adminKey, rawBody });
      expect(res.status, rawBody).toBe(409); // not uploaded yet, whatever the body
    }
  });

  it('nothing above produced a 500 (no unhandled error was logged)', () => {
    expect(t.logs.filter((l) => l.includes('unhandled error'))).toEqual([]);
  });
});

describeEachBackend('JSON body size', (b: BackendContext) => {
  it('a chunked body (no Content-Length) is cut off at 1 MiB with 413 without waiting for the rest', async () => {
    const { request } = await import('node:http');
    const t = await b.start();
    try {
      const u = new URL(`${t.api}/dropzones`);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(u, { method: 'POST', headers: { 'x-api-key': t.adminKey, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
          req.destroy();
        });
        req.on('error', (e) => reject(e));
        req.write('{"name":"');
        req.write('x'.repeat(2 * 1024 * 1024)); // more than the limit, and the body never ends
        setTimeout(() => reject(new Error('no answer within 5 s: the server waited for the whole body')), 5000).unref();
      });
      expect(status).toBe(413);
    } finally {
      await t.close();
    }
  });
});
