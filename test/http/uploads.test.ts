/**
 * The upload path: atomic space reservation under concurrency, and the local store's S3-style signed PUT endpoint
 * (tampered, expired, wrong-method, oversize and short PUTs store nothing), confirm semantics and CORS.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend, startTestServer } from '../helpers/server.js';

describeEachBackend('space reservation', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('50 parallel upload-URL requests against room for exactly 10 yield exactly 10 (413 for the rest); usedSpace is exact', async () => {
    const dz = await t.createDropzone(t.adminKey, { gb: 0.2, days: 30 }); // 2e8 bytes
    // each file costs its size + 1000 + UTF-8 bytes of name (3) and type (24): 10 of them fill the dropzone exactly
    const size = 2e7 - 1027;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: `f${String(i).padStart(2, '0')}`, type: 'application/octet-stream', size } }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 413)).toHaveLength(40);
    for (const r of results.filter((x) => x.status === 413)) expect(r.body).toMatchObject({ status: 'error', data: { field: 'size', available: 0 } });
    const after = await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey });
    expect(after.body.data.usedSpace).toBe(2e8);
    expect((await t.req('GET', `/dropzones/${dz._id}/files`, { key: t.adminKey })).body.data).toHaveLength(10);
    // deleting a pending file releases its bytes, and exactly one more fits
    const first = results.find((r) => r.status === 200)!.body.data.fileId;
    expect((await t.req('DELETE', `/files/${first}`, { key: t.adminKey })).status).toBe(200);
    expect((await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey })).body.data.usedSpace).toBe(2e8 - 2e7);
    // name "x", no type: costs size + 1001, so one fits in the 2e7 freed and a second does not
    const again = await Promise.all([0, 1].map(() => t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'x', size } })));
    expect(again.map((r) => r.status).sort()).toEqual([200, 413]);
  });

  it('a size over maxFileSize is 413 naming the limit; a size over the room left is 413', async () => {
    const small = await b.start({ settings: { 'uploads.maxFileSize': 1000 } });
    try {
      const dz = await small.createDropzone(small.adminKey, { gb: 0.2, days: 30 });
      expect(dz.maxFileSize).toBe(1000);
      const res = await small.req('POST', `/dropzones/${dz._id}/files`, { key: small.adminKey, body: { name: 'big', size: 1001 } });
      expect(res.status).toBe(413);
      expect(res.body.message).toContain('1000');
      expect((await small.req('POST', `/dropzones/${dz._id}/files`, { key: small.adminKey, body: { name: 'ok', size: 1000 } })).status).toBe(200);
    } finally {
      await small.close();
    }
    const dz = await t.createDropzone(t.adminKey, { gb: 0.2, days: 30 });
    // the file's own overhead (1000 + 3 bytes of name) counts too
    expect((await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'all', size: 2e8 - 1002 } })).status).toBe(413);
    expect((await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'all', size: 2e8 - 1003 } })).status).toBe(200);
    const full = await t.req('POST', `/dropzones/${dz._id}/files`, { key: t.adminKey, body: { name: 'one more', size: 1 } });
    expect(full.status).toBe(413);
    expect(full.body.message).toMatch(/0 available/);
  });

  it('confirm before the PUT is 409 with a clear message; confirm twice returns the same file', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const up = await t.requestUpload(t.adminKey, dz._id, 'c.txt', 5, 'text/plain');
    const early = await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey });
    expect(early.status).toBe(409);
    expect(early.body.message).toMatch(/not been uploaded/);
    expect((await t.req('GET', `/files/${up.fileId}`, { key: t.adminKey })).body.meta.s3Status).toBe('pending');
    expect((await t.put(up, '12345')).status).toBe(200);
    const c1 = await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey });
    const c2 = await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey });
    expect(c1.status).toBe(200);
    expect(c2.status).toBe(200);
    expect(c2.body).toEqual(c1.body);
    expect((await t.req('GET', `/files/${up.fileId}/download`, { key: t.adminKey })).text).toBe('12345');
  });

  it('bytes of the wrong size are discarded at confirm (409) and their space released; on the local store the PUT itself is refused', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const up = await t.requestUpload(t.adminKey, dz._id, 'w.bin', 10);
    // the signed Content-Length is 10; send 4 bytes declared as 4
    const res = await rawPut(up.signedUrl, { ...up.headers, 'Content-Length': '4' }, Buffer.from('abcd'));
    // the local store refuses the PUT; moto (like any store that does not check signatures) takes it
    expect(res.status).toBe(t.backend === 'local' ? 403 : 200);
    const conf = await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey });
    expect(conf.status).toBe(409);
    if (res.status === 200) {
      // a store that does not enforce the signed length (moto): confirm discards the object and the file
      expect(conf.body.message).toMatch(/4 bytes but 10 were declared/);
      // the warning says what happened without naming the file (no ids in logs)
      const warned = t.logs.filter((l) => l.includes('wrong size'));
      expect(warned).toHaveLength(1);
      expect(warned[0]).not.toContain(up.fileId);
      expect((await t.req('GET', `/files/${up.fileId}`, { key: t.adminKey })).status).toBe(404);
      expect((await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey })).body.data.usedSpace).toBe(0);
    } else {
      expect(conf.body.message).toMatch(/not been uploaded/);
    }
    expect((await t.blobKeys()).length).toBe(await countUploaded());
  });

  /** Blobs the server should hold: one per uploaded file, over every dropzone of the admin. */
  async function countUploaded() {
    let n = 0;
    for (const d of (await t.req('GET', '/dropzones', { key: t.adminKey })).body.data)
      n += (await t.req('GET', `/dropzones/${d._id}/files`, { key: t.adminKey })).body.data.filter((f: any) => f.meta.s3Status === 'uploaded').length;
    return n;
  }

  it('a zero-byte file goes through the whole flow', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const { fileId, file } = await t.upload(t.adminKey, dz._id, 'empty', new Uint8Array(0));
    expect(file).toMatchObject({ size: 0, meta: { s3Status: 'uploaded' } });
    const dl = await t.req('GET', `/files/${fileId}/download`, { key: t.adminKey });
    expect(dl.status).toBe(200);
    expect(dl.text).toBe('');
    expect(dl.headers.get('content-length')).toBe('0');
  });
});

/** A PUT with full control over headers (Content-Length may lie) through node:http. */
function rawPut(url: string, headers: Record<string, string>, body: Buffer, method = 'PUT'): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A PUT whose body is written piece by piece; `end` sends the last piece and resolves to the answer. */
function streamingPut(url: string, headers: Record<string, string>) {
  let resolveRes: (r: { status: number; text: string }) => void;
  let rejectRes: (e: unknown) => void;
  const answer = new Promise<{ status: number; text: string }>((res, rej) => {
    resolveRes = res;
    rejectRes = rej;
  });
  const req = request(url, { method: 'PUT', headers }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolveRes({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }));
    res.on('error', rejectRes);
  });
  req.on('error', (e) => rejectRes(e));
  req.flushHeaders();
  return {
    req,
    write: (b: Buffer) => void req.write(b),
    end: (b: Buffer) => {
      req.end(b);
      return answer;
    },
    answer,
  };
}

const xmlCode = (text: string) => /<Code>([^<]+)<\/Code>/.exec(text)?.[1];

// The signed-URL endpoint belongs to the local blob store; with S3 the URL points at the bucket itself.
describe('signed PUT endpoint (local store)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Asserts the upload stored nothing: no object file, confirm says 409, and the file is still pending. */
  async function expectNothingStored(fileId: string) {
    // no object, no sidecar, no partial temp file
    expect(t.blobFiles().filter((f) => !/^\.tmp\/[^/]+\.probe$/.test(f))).toEqual([]);
    const conf = await t.req('POST', `/files/${fileId}/confirm`, { key: t.adminKey });
    expect(conf.status).toBe(409);
    expect((await t.req('GET', `/files/${fileId}`, { key: t.adminKey })).body.meta.s3Status).toBe('pending');
  }

  async function fresh(size = 10, type = 'text/plain') {
    // a dropzone per case, so other cases' blobs never count
    const dz = await t.createDropzone(t.adminKey);
    for (const f of t.blobFiles()) if (f.startsWith('objects/')) throw new Error(`leftover blob ${f}`);
    return t.requestUpload(t.adminKey, dz._id, 'x.txt', size, type);
  }

  const cases: { name: string; mutate: (up: any) => { url: string; headers: Record<string, string>; body: Buffer; method?: string }; status: number; code: string | string[]; message?: RegExp }[] = [
    {
      name: 'tampered signature',
      mutate: (up) => {
        const u = new URL(up.signedUrl);
        const sig = u.searchParams.get('X-Amz-Signature')!;
        u.searchParams.set('X-Amz-Signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
        return { url: u.toString(), headers: up.headers, body: Buffer.from('0123456789') };
      },
      status: 403,
      code: 'SignatureDoesNotMatch',
    },
    {
      name: 'tampered path',
      mutate: (up) => {
        const u = new URL(up.signedUrl);
        u.pathname = u.pathname.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
        return { url: u.toString(), headers: up.headers, body: Buffer.from('0123456789') };
      },
      status: 403,
      code: ['SignatureDoesNotMatch', 'AccessDenied'],
    },
    {
      name: 'tampered expiry',
      mutate: (up) => {
        const u = new URL(up.signedUrl);
        u.searchParams.set('X-Amz-Expires', '604800');
        return { url: u.toString(), headers: up.headers, body: Buffer.from('0123456789') };
      },
      status: 403,
      code: 'SignatureDoesNotMatch',
    },
    {
      name: 'wrong method (POST)',
      mutate: (up) => ({ url: up.signedUrl, headers: up.headers, body: Buffer.from('0123456789'), method: 'POST' }),
      status: 403,
      code: ['SignatureDoesNotMatch', 'AccessDenied'],
    },
    {
      name: 'wrong Content-Type',
      mutate: (up) => ({ url: up.signedUrl, headers: { ...up.headers, 'Content-Type': 'text/html' }, body: Buffer.from('0123456789') }),
      status: 403,
      code: 'SignatureDoesNotMatch',
    },
    {
      name: 'missing Content-Type',
      mutate: (up) => {
        const { 'Content-Type': _ct, ...rest } = up.headers;
        return { url: up.signedUrl, headers: rest, body: Buffer.from('0123456789') };
      },
      status: 403,
      code: 'SignatureDoesNotMatch',
    },
    {
      name: 'oversize Content-Length (and body)',
      mutate: (up) => ({ url: up.signedUrl, headers: { ...up.headers, 'Content-Length': '11' }, body: Buffer.from('0123456789X') }),
      status: 400,
      code: 'EntityTooLarge',
    },
    {
      name: 'undersize Content-Length',
      mutate: (up) => ({ url: up.signedUrl, headers: { ...up.headers, 'Content-Length': '9' }, body: Buffer.from('012345678') }),
      status: 403,
      code: 'SignatureDoesNotMatch',
    },
    {
      name: 'missing signature',
      mutate: (up) => {
        const u = new URL(up.signedUrl);
        u.searchParams.delete('X-Amz-Signature');
        return { url: u.toString(), headers: up.headers, body: Buffer.from('0123456789') };
      },
      status: 400, // as S3: a presigned URL missing a SigV4 parameter is malformed, not forbidden
      code: 'AuthorizationQueryParametersError',
    },
  ];

  for (const c of cases) {
    it(`${c.name}: ${c.status} ${c.code} as S3 XML, nothing stored`, async () => {
      const up = await fresh();
      const m = c.mutate(up);
      const res = await rawPut(m.url, m.headers, m.body, m.method);
      expect(res.status).toBe(c.status);
      expect(String(res.headers['content-type'])).toContain('xml');
      expect(res.text).toMatch(/^<\?xml[^>]*>\s*<Error>/);
      expect([c.code].flat()).toContain(xmlCode(res.text));
      expect(res.text).toMatch(/<RequestId>/);
      await expectNothingStored(up.fileId);
      // the genuine URL still works afterwards
      expect((await t.put(up, '0123456789')).status).toBe(200);
      expect((await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey })).status).toBe(200);
      await t.req('DELETE', `/files/${up.fileId}`, { key: t.adminKey });
    });
  }

  it('an expired URL (clock advanced past X-Amz-Expires) is 403 "Request has expired" and stores nothing', async () => {
    const up = await fresh();
    const expires = Number(new URL(up.signedUrl).searchParams.get('X-Amz-Expires'));
    expect(expires).toBeGreaterThan(0);
    t.clock.advance(expires * 1000 + 1000);
    const res = await rawPut(up.signedUrl, up.headers, Buffer.from('0123456789'));
    expect(res.status).toBe(403);
    expect(xmlCode(res.text)).toBe('AccessDenied');
    expect(res.text).toContain('Request has expired');
    await expectNothingStored(up.fileId);
  });

  it('a short body (connection closed before Content-Length bytes) stores nothing', async () => {
    const up = await fresh(1000);
    const u = new URL(up.signedUrl);
    const head = [`PUT ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, ...Object.entries(up.headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''].join('\r\n');
    await new Promise<void>((resolve) => {
      const sock = connect(Number(u.port), u.hostname, () => {
        sock.write(head);
        sock.write(Buffer.alloc(400, 1));
        setTimeout(() => sock.destroy(), 200);
      });
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });
    // give the server a moment to notice the abort and clean up
    for (let i = 0; i < 50 && t.blobFiles().some((f) => f.startsWith('.tmp/') && f.endsWith('.part')); i++) await new Promise((r) => setTimeout(r, 20));
    await expectNothingStored(up.fileId);
    expect((await t.req('GET', '/apikeys/me', { key: t.adminKey })).status).toBe(200);
  });

  it.each(['/_blobs/%ZZ', '/_blobs/objects/%E0%A4%A', '/_blobs/objects/%2e%2e%2fx', '/_blobs/'])('a malformed blob path %s is a 4xx S3 XML error, never 500', async (path) => {
    const res = await rawPut(t.url + path + '?X-Amz-Signature=00', { 'Content-Length': '1' }, Buffer.from('x'));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.text).toMatch(/<Error><Code>/);
    expect(t.blobFiles().filter((f) => f.startsWith('objects/'))).toEqual([]);
  });

  it('a URL cannot overwrite the object after confirm (403)', async () => {
    const up = await fresh();
    expect((await t.put(up, '0123456789')).status).toBe(200);
    expect((await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey })).status).toBe(200);
    const again = await t.put(up, 'XXXXXXXXXX');
    expect(again.status).toBe(403);
    expect(xmlCode(await again.text())).toBe('AccessDenied');
    expect((await t.req('GET', `/files/${up.fileId}/download`, { key: t.adminKey })).text).toBe('0123456789');
    await t.req('DELETE', `/files/${up.fileId}`, { key: t.adminKey });
  });

  it('a PUT that started before confirm and ends after it cannot replace the confirmed bytes (412); download and ZIP serve them', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const up = await t.requestUpload(t.adminKey, dz._id, 'race.txt', 10, 'text/plain');
    expect((await t.put(up, 'AAAAAAAAAA')).status).toBe(200);
    // a second PUT of other bytes to the same URL, holding its last byte back
    const late = streamingPut(up.signedUrl, up.headers);
    late.write(Buffer.from('BBBBBBBBB'));
    // the server has passed its checks and is writing the body to a temp file
    for (let i = 0; i < 500 && !t.blobFiles().some((f) => f.startsWith('.tmp/') && f.endsWith('.part')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.blobFiles().some((f) => f.startsWith('.tmp/') && f.endsWith('.part'))).toBe(true);
    const conf = await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey });
    expect(conf.status).toBe(200);
    const res = await late.end(Buffer.from('B'));
    expect(res.status).toBe(412);
    expect(xmlCode(res.text)).toBe('PreconditionFailed');
    const dl = await t.req('GET', `/files/${up.fileId}/download`, { key: t.adminKey });
    expect(dl.status).toBe(200);
    expect(dl.text).toBe('AAAAAAAAAA');
    const zip = Buffer.from(await (await fetch(`${t.api}/dropzones/${dz._id}/zip`, { headers: { 'x-api-key': t.adminKey } })).arrayBuffer());
    expect(zip.includes('AAAAAAAAAA')).toBe(true);
    expect(zip.includes('BBBB')).toBe(false);
    expect(t.blobFiles().filter((f) => f.startsWith('.tmp/') && !f.endsWith('.probe'))).toEqual([]);
    await t.req('DELETE', `/files/${up.fileId}`, { key: t.adminKey });
  });

  it('a second PUT to the URL of an uploaded but unconfirmed file is 412 and keeps the first bytes', async () => {
    const up = await fresh();
    expect((await t.put(up, '0123456789')).status).toBe(200);
    const again = await t.put(up, 'XXXXXXXXXX');
    expect(again.status).toBe(412);
    expect(xmlCode(await again.text())).toBe('PreconditionFailed');
    expect((await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey })).status).toBe(200);
    expect((await t.req('GET', `/files/${up.fileId}/download`, { key: t.adminKey })).text).toBe('0123456789');
    await t.req('DELETE', `/files/${up.fileId}`, { key: t.adminKey });
  });

  it('a URL of a deleted file is refused', async () => {
    const up = await fresh();
    expect((await t.req('DELETE', `/files/${up.fileId}`, { key: t.adminKey })).status).toBe(200);
    const res = await t.put(up, '0123456789');
    expect(res.status).toBe(403);
    expect(t.blobFiles().filter((f) => f.startsWith('objects/'))).toEqual([]);
  });

  it('PUT answers 200 with an S3-like ETag; the blob path is server-generated', async () => {
    const up = await fresh();
    const res = await t.put(up, '0123456789');
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('"781e5e245d69b566979b86e28d23f2c7"'); // md5("0123456789")
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const objects = t.blobFiles().filter((f) => f.startsWith('objects/'));
    expect(objects).toHaveLength(1);
    expect(objects[0]).toMatch(/^objects\/[A-Za-z0-9_-]+$/);
    await t.req('DELETE', `/files/${up.fileId}`, { key: t.adminKey });
    expect(t.blobFiles().filter((f) => f.startsWith('objects/'))).toEqual([]);
  });

  it('CORS preflight on the signed URL allows a browser PUT', async () => {
    const up = await fresh();
    const res = await fetch(up.signedUrl, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' },
    });
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toContain('PUT');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
    expect(res.headers.get('access-control-expose-headers')).toContain('ETag');
  });
});

describeEachBackend('CORS on the API', (b: BackendContext) => {
  it('preflight answers with the allowed origin, methods and headers', async () => {
    const t = await b.start();
    try {
      const res = await fetch(`${t.api}/dropzones`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'x-api-key, content-type' },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-allow-methods')).toContain('POST');
      const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase();
      for (const h of ['x-api-key', 'x-dropzone-id', 'authorization', 'content-type']) expect(allowed).toContain(h);
      const get = await fetch(`${t.api}/apikeys/me`, { headers: { Origin: 'https://app.example', 'x-api-key': t.adminKey } });
      expect(get.headers.get('access-control-allow-origin')).toBe('*');
      // errors must be readable by the page too
      const denied = await fetch(`${t.api}/apikeys/me`, { headers: { Origin: 'https://app.example', 'x-api-key': 'wrong' } });
      expect(denied.status).toBe(401);
      expect(denied.headers.get('access-control-allow-origin')).toBe('*');
      const cdn = await fetch(`${t.url}/cdn/x/download`, { method: 'OPTIONS', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'GET' } });
      expect(cdn.headers.get('access-control-allow-origin')).toBe('*');
    } finally {
      await t.close();
    }
  });
});

describeEachBackend('confirmed bytes are what is served', (b: BackendContext) => {
  it('a ZIP refuses an object whose ETag differs from the one recorded at confirm instead of serving other bytes', async () => {
    const t = await b.start();
    try {
      const dz = await t.createDropzone(t.adminKey);
      const { fileId } = await t.upload(t.adminKey, dz._id, 'z.txt', 'confirmed!');
      // replaced behind the server's back (e.g. S3 without conditional writes)
      const key = (await t.server.app.ctx.meta.fileById(fileId))!.blobKey;
      await t.server.app.ctx.blobs.put(key, Readable.from([Buffer.from('REPLACED!!')]), { expectedSize: 10 });
      const res = await fetch(`${t.api}/dropzones/${dz._id}/zip`, { headers: { 'x-api-key': t.adminKey } });
      const body = await res.arrayBuffer().then(
        (ab) => Buffer.from(ab),
        () => null,
      );
      // the archive is cut off (the client sees a failed transfer), never a complete archive with other bytes
      expect(body).toBeNull();
      expect(t.logs.some((l) => l.includes('zip aborted'))).toBe(true);
      expect((await t.req('GET', `/files/${fileId}/download`, { key: t.adminKey })).status).toBe(409);
    } finally {
      await t.close();
    }
  });
});

describeEachBackend('races with deletion', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Runs `during` inside the next call of `blobs[method]`, before it answers, then restores it. */
  function interceptOnce(method: 'stat' | 'get', during: () => Promise<unknown>) {
    const blobs = t.server.app.ctx.blobs as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const orig = blobs[method];
    blobs[method] = async function (this: unknown, ...args: unknown[]) {
      blobs[method] = orig;
      if (method === 'get') await during();
      const r = await orig.apply(this, args);
      if (method === 'stat') await during();
      return r;
    };
  }

  it('a file deleted while its confirm is checking the store: 404, not 500', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const up = await t.requestUpload(t.adminKey, dz._id, 'r.txt', 3);
    expect((await t.put(up, 'abc')).status).toBe(200);
    interceptOnce('stat', () => t.req('DELETE', `/files/${up.fileId}`, { key: t.adminKey }));
    const res = await t.req('POST', `/files/${up.fileId}/confirm`, { key: t.adminKey });
    expect(res.status).toBe(404);
    expect(res.body.status).toBe('error');
    expect((await t.req('GET', `/dropzones/${dz._id}`, { key: t.adminKey })).body.data.usedSpace).toBe(0);
  });

  it('a file deleted while its download starts: 404, not 500', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const { fileId } = await t.upload(t.adminKey, dz._id, 'd.txt', 'abc');
    interceptOnce('get', () => t.req('DELETE', `/files/${fileId}`, { key: t.adminKey }));
    const res = await t.req('GET', `/files/${fileId}/download`, { key: t.adminKey });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ status: 'error', message: 'File not found.' });
  });
});
