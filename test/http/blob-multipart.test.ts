/**
 * The local store's S3 multipart protocol at `/_blobs/<key>` (POST ?uploads, PUT ?partNumber&uploadId, GET ?uploadId,
 * POST ?uploadId, DELETE ?uploadId), driven through a real server with real presigned URLs — the store's own and the
 * AWS SDK v3 presigner's — for the key of a pending upload: every request kind needs its own valid signature, errors
 * are S3 XML documents with S3's codes, completion is write-once and sized exactly as reserved.
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MULTIPART_MIN_PART_SIZE, type MultipartBlobs, type PresignedRequest } from '../../src/blobs/blob-store.js';
import { presignUrl } from '../../src/blobs/sigv4.js';
import { parseCompleteMultipartXml } from '../../src/http/routes/blob-multipart.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

const SECRET = 'multipart-test-signing-secret-0123456789';
const MIB = 1024 * 1024;

/** Deterministic bytes for part `n`. */
function partBytes(n: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(`part-${n}`).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const multipartEtag = (parts: Buffer[]) =>
  `"${createHash('md5')
    .update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest())))
    .digest('hex')}-${parts.length}"`;

/** The text of the first `<name>` element of an XML document (entities for quotes decoded). */
function tag(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1]?.replace(/&quot;/g, '"');
}

function completeXml(parts: Array<{ partNumber: number; etag: string }>): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    parts.map((p) => `\n  <Part><PartNumber>${p.partNumber}</PartNumber><ETag>${p.etag.replace(/"/g, '&quot;')}</ETag></Part>`).join('') +
    '\n</CompleteMultipartUpload>'
  );
}

async function send(req: PresignedRequest, body?: Buffer | string, init: { url?: string; method?: string; headers?: Record<string, string> } = {}) {
  const res = await fetch(init.url ?? req.url, {
    method: init.method ?? req.method,
    headers: { ...req.headers, ...init.headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : (new Uint8Array(body.buffer, body.byteOffset, body.byteLength) as unknown as BodyInit),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Expects an S3 XML error with `code`. */
function expectS3Error(res: { status: number; text: string; headers: Headers }, status: number, code: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/xml/);
  expect(tag(res.text, 'Code')).toBe(code);
}

describe('local /_blobs multipart protocol', () => {
  let t: TestServer;
  let mp: MultipartBlobs;
  let dzId: string;

  beforeAll(async () => {
    t = await startTestServer({ backend: 'local', settings: { 'security.signingSecret': SECRET } });
    mp = t.server.app.ctx.blobs.multipart!;
    dzId = (await t.createDropzone(t.adminKey, { gb: 1, days: 30 }))._id;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A pending upload of `size` bytes: its file id, blob key and single-PUT answer. */
  async function pending(size: number, name = 'big.bin') {
    const up = await t.requestUpload(t.adminKey, dzId, name, size);
    const key = decodeURIComponent(new URL(up.signedUrl).pathname.replace(/^\/_blobs\//, ''));
    return { fileId: up.fileId as string, key, up };
  }

  async function createUpload(key: string): Promise<string> {
    const res = await send(await mp.presignRequest({ op: 'create', key }, 300));
    expect(res.status, res.text).toBe(200);
    return tag(res.text, 'UploadId')!;
  }

  async function putPart(key: string, uploadId: string, n: number, data: Buffer) {
    const [req] = await mp.presignParts(key, uploadId, [n], 300);
    return send(req, data);
  }

  it('create, parts out of order, list, complete (Location, Bucket, Key, multipart ETag), then confirm and download identical bytes', async () => {
    const p1 = partBytes(1, 5 * MIB);
    const p2 = partBytes(2, 5 * MIB + 3);
    const p3 = partBytes(3, 1000);
    const size = p1.length + p2.length + p3.length;
    const { fileId, key, up } = await pending(size);

    const created = await send(await mp.presignRequest({ op: 'create', key, contentType: 'application/octet-stream' }, 300));
    expect(created.status, created.text).toBe(200);
    expect(created.text).toContain('<InitiateMultipartUploadResult');
    const uploadId = tag(created.text, 'UploadId')!;
    expect(`${tag(created.text, 'Bucket')}/${tag(created.text, 'Key')}`).toBe(key);

    const r3 = await putPart(key, uploadId, 3, p3);
    const r1 = await putPart(key, uploadId, 1, p1);
    expect(r3.status, r3.text).toBe(200);
    expect(r1.headers.get('etag')).toBe(`"${md5(p1)}"`);
    expect(r1.headers.get('access-control-expose-headers')).toMatch(/ETag/);

    const listed = await send(await mp.presignRequest({ op: 'list', key, uploadId }, 300));
    expect(listed.status, listed.text).toBe(200);
    expect(listed.text).toContain('<ListPartsResult');
    expect([...listed.text.matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => m[1])).toEqual(['1', '3']);
    expect(listed.text).toContain(`<Size>${p1.length}</Size>`);
    expect(tag(listed.text, 'IsTruncated')).toBe('false');

    const r2 = await putPart(key, uploadId, 2, p2);
    expect(r2.status, r2.text).toBe(200);
    // not yet complete: confirm still refuses
    expect((await t.req('POST', `/files/${fileId}/confirm`, { key: t.adminKey })).status).toBe(409);

    const parts = [r1, r2, r3].map((r, i) => ({ partNumber: i + 1, etag: r.headers.get('etag')! }));
    const done = await send(await mp.presignRequest({ op: 'complete', key, uploadId }, 300), completeXml(parts));
    expect(done.status, done.text).toBe(200);
    expect(done.text).toContain('<CompleteMultipartUploadResult');
    expect(tag(done.text, 'ETag')).toBe(multipartEtag([p1, p2, p3]));
    expect(tag(done.text, 'Location')).toBe(`${t.url}/_blobs/${key}`);
    expect(`${tag(done.text, 'Bucket')}/${tag(done.text, 'Key')}`).toBe(key);

    const confirmed = await t.req('POST', `/files/${fileId}/confirm`, { key: t.adminKey });
    expect(confirmed.status, confirmed.text).toBe(200);
    const download = await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': t.adminKey } });
    const bytes = Buffer.from(await download.arrayBuffer());
    expect(bytes.length).toBe(size);
    expect(md5(bytes)).toBe(md5(Buffer.concat([p1, p2, p3])));
    // confirmed bytes are immutable: neither the single-PUT URL nor another multipart upload can replace them
    expectS3Error(await send({ method: 'PUT', url: up.signedUrl, headers: up.headers, expiresAt: 0 }, Buffer.alloc(size)), 403, 'AccessDenied');
    expect(t.blobFiles().filter((f) => f.startsWith('.mpu/') || f.startsWith('.tmp/'))).toEqual([]);
  });

  it('speaks with URLs presigned by the AWS SDK v3 (path style: /_blobs/<Bucket>/<Key>) for every request kind', async () => {
    const p1 = partBytes(11, 5 * MIB);
    const p2 = partBytes(12, 10);
    const { fileId, key } = await pending(p1.length + p2.length);
    const [Bucket, ...rest] = key.split('/');
    const Key = rest.join('/');
    const client = new S3Client({
      endpoint: `${t.url}/_blobs`,
      region: 'local',
      forcePathStyle: true,
      credentials: { accessKeyId: 'dropzone-local', secretAccessKey: SECRET },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      const opts = { expiresIn: 300, signingDate: new Date(t.clock.now()) };
      const created = await fetch(await getSignedUrl(client, new CreateMultipartUploadCommand({ Bucket, Key }), opts), { method: 'POST' });
      const createdXml = await created.text();
      expect(created.status, createdXml).toBe(200);
      const UploadId = tag(createdXml, 'UploadId')!;
      const etags: string[] = [];
      for (const [i, data] of [p1, p2].entries()) {
        const url = await getSignedUrl(client, new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1 }), opts);
        const res = await fetch(url, { method: 'PUT', body: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) as unknown as BodyInit });
        expect(res.status, await res.clone().text()).toBe(200);
        etags.push(res.headers.get('etag')!);
      }
      const listed = await fetch(await getSignedUrl(client, new ListPartsCommand({ Bucket, Key, UploadId }), opts));
      expect(listed.status).toBe(200);
      expect(await listed.text()).toContain('<PartNumber>2</PartNumber>');
      const body = completeXml(etags.map((etag, i) => ({ partNumber: i + 1, etag })));
      const done = await fetch(await getSignedUrl(client, new CompleteMultipartUploadCommand({ Bucket, Key, UploadId }), opts), { method: 'POST', body });
      const doneXml = await done.text();
      expect(done.status, doneXml).toBe(200);
      expect(tag(doneXml, 'ETag')).toBe(multipartEtag([p1, p2]));
      expect((await t.req('POST', `/files/${fileId}/confirm`, { key: t.adminKey })).status).toBe(200);

      // abort, signed by the SDK too, on a second upload
      const other = await pending(10, 'other.bin');
      const [b2, ...k2] = other.key.split('/');
      const id2 = await createUpload(other.key);
      const aborted = await fetch(await getSignedUrl(client, new AbortMultipartUploadCommand({ Bucket: b2, Key: k2.join('/'), UploadId: id2 }), opts), { method: 'DELETE' });
      expect(aborted.status).toBe(204);
      expectS3Error(await putPart(other.key, id2, 1, Buffer.alloc(10)), 404, 'NoSuchUpload');
    } finally {
      client.destroy();
    }
  });

  it('every request kind needs its own signature: missing, tampered, another part number, another method, expired', async () => {
    const { key } = await pending(20);
    const uploadId = await createUpload(key);
    const [part1] = await mp.presignParts(key, uploadId, [1], 60);
    const kinds: Array<[string, PresignedRequest, string | Buffer | undefined]> = [
      ['create', await mp.presignRequest({ op: 'create', key }, 60), undefined],
      ['part', part1, Buffer.alloc(20)],
      ['list', await mp.presignRequest({ op: 'list', key, uploadId }, 60), undefined],
      ['complete', await mp.presignRequest({ op: 'complete', key, uploadId }, 60), completeXml([{ partNumber: 1, etag: '"x"' }])],
      ['abort', await mp.presignRequest({ op: 'abort', key, uploadId }, 60), undefined],
    ];
    for (const [, req, body] of kinds) {
      const u = new URL(req.url);
      const bare = new URL(u);
      for (const name of [...bare.searchParams.keys()]) if (name.startsWith('X-Amz-')) bare.searchParams.delete(name);
      const unsigned = await send(req, body, { url: bare.toString() });
      expectS3Error(unsigned, 403, 'AccessDenied');
      const tampered = new URL(u);
      const sig = tampered.searchParams.get('X-Amz-Signature')!;
      tampered.searchParams.set('X-Amz-Signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
      expectS3Error(await send(req, body, { url: tampered.toString() }), 403, 'SignatureDoesNotMatch');
      // the method is signed: a list URL cannot abort, an abort URL cannot list, …
      const otherMethod = req.method === 'DELETE' ? 'GET' : 'DELETE';
      const wrongMethod = await send(req, undefined, { method: otherMethod });
      expect([403]).toContain(wrongMethod.status);
      expect(['SignatureDoesNotMatch', 'AccessDenied']).toContain(tag(wrongMethod.text, 'Code'));
    }
    // the part number and the upload id are signed
    const swapped = new URL(part1.url);
    swapped.searchParams.set('partNumber', '2');
    expectS3Error(await send(part1, Buffer.alloc(20), { url: swapped.toString() }), 403, 'SignatureDoesNotMatch');
    // still usable as signed, then expired
    const ok = await send(part1, Buffer.alloc(20));
    expect(ok.status, ok.text).toBe(200);
    t.clock.advance(61_000);
    expectS3Error(await send(part1, Buffer.alloc(20)), 403, 'AccessDenied');
    expect(tag((await send(part1, Buffer.alloc(20))).text, 'Message')).toMatch(/expired/i);
  });

  it('bad part numbers are 400 InvalidArgument; garbage upload ids 404 NoSuchUpload (validly signed URLs)', async () => {
    const { key } = await pending(20);
    const uploadId = await createUpload(key);
    const signed = (query: Record<string, string>, method = 'PUT') =>
      presignUrl({
        method,
        baseUrl: t.url,
        path: `/_blobs/${key}`,
        extraQuery: query,
        accessKeyId: 'dropzone-local',
        secret: SECRET,
        region: 'local',
        now: t.clock.now(),
        expiresIn: 60,
      }).url;
    for (const partNumber of ['0', '10001', '-1', '1.5', 'x', '']) {
      const res = await send({ method: 'PUT', url: signed({ partNumber, uploadId }), headers: {}, expiresAt: 0 }, Buffer.alloc(20));
      expectS3Error(res, 400, 'InvalidArgument');
    }
    const res = await send({ method: 'PUT', url: signed({ partNumber: '1', uploadId: '../../../etc' }), headers: {}, expiresAt: 0 }, Buffer.alloc(20));
    expectS3Error(res, 404, 'NoSuchUpload');
    const list = await send({ method: 'GET', url: signed({ uploadId: 'A'.repeat(32) }, 'GET'), headers: {}, expiresAt: 0 });
    expectS3Error(list, 404, 'NoSuchUpload');
  });

  it('completion errors: InvalidPart (missing, wrong ETag), InvalidPartOrder, EntityTooSmall, size mismatch, MalformedXML, too big a body', async () => {
    const small = partBytes(21, 100);
    const full = partBytes(22, 5 * MIB);
    const { key, fileId } = await pending(full.length + small.length);
    const uploadId = await createUpload(key);
    const complete = await mp.presignRequest({ op: 'complete', key, uploadId }, 300);
    const put1 = await putPart(key, uploadId, 1, small);
    const put2 = await putPart(key, uploadId, 2, full);
    expect([put1.status, put2.status], put1.text + put2.text).toEqual([200, 200]);
    const e1 = put1.headers.get('etag')!;
    const e2 = put2.headers.get('etag')!;
    expectS3Error(await send(complete, completeXml([{ partNumber: 1, etag: e1 }, { partNumber: 3, etag: e2 }])), 400, 'InvalidPart');
    expectS3Error(await send(complete, completeXml([{ partNumber: 1, etag: e2 }, { partNumber: 2, etag: e2 }])), 400, 'InvalidPart');
    expectS3Error(await send(complete, completeXml([{ partNumber: 2, etag: e2 }, { partNumber: 1, etag: e1 }])), 400, 'InvalidPartOrder');
    expectS3Error(await send(complete, completeXml([{ partNumber: 1, etag: e1 }, { partNumber: 2, etag: e2 }])), 400, 'EntityTooSmall');
    // the parts' total must be exactly the reserved size
    expectS3Error(await send(complete, completeXml([{ partNumber: 2, etag: e2 }])), 400, 'InvalidRequest');
    expectS3Error(await send(complete, '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>'), 400, 'MalformedXML');
    expectS3Error(await send(complete, 'not xml'), 400, 'MalformedXML');
    expectS3Error(await send(complete, '<CompleteMultipartUpload></CompleteMultipartUpload>'), 400, 'MalformedXML');
    expectS3Error(await send(complete, ' '.repeat(2 * MIB + 1)), 400, 'MaxMessageLengthExceeded');
    // a part that would make the parts larger than the reservation is refused before it is read
    expectS3Error(await putPart(key, uploadId, 3, Buffer.alloc(small.length + 1)), 400, 'EntityTooLarge');
    // nothing became visible; the upload is still usable: swap the parts (small last) and complete
    expect((await t.req('POST', `/files/${fileId}/confirm`, { key: t.adminKey })).status).toBe(409);
    const s2 = (await putPart(key, uploadId, 2, small)).headers.get('etag')!;
    const f1 = (await putPart(key, uploadId, 1, full)).headers.get('etag')!;
    const done = await send(complete, completeXml([{ partNumber: 1, etag: f1 }, { partNumber: 2, etag: s2 }]));
    expect(done.status, done.text).toBe(200);
    expect((await t.req('POST', `/files/${fileId}/confirm`, { key: t.adminKey })).status).toBe(200);
    // the upload is finished, and a confirmed file's key takes no further multipart request
    await expect(mp.listParts(key, uploadId)).rejects.toMatchObject({ code: 'NoSuchUpload' });
    expectS3Error(await send(complete, completeXml([{ partNumber: 1, etag: f1 }])), 403, 'AccessDenied');
  });

  it('a part without Content-Length is 411; a short body stores nothing', async () => {
    const { key } = await pending(100);
    const uploadId = await createUpload(key);
    const [req] = await mp.presignParts(key, uploadId, [1], 60);
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const r = request(req.url, { method: 'PUT', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode!, body }));
      });
      r.on('error', reject);
      r.end('some bytes');
    });
    expect(status.status, status.body).toBe(411);
    expect(tag(status.body, 'Code')).toBe('MissingContentLength');
    // a client that sends fewer bytes than it declared and hangs up
    await new Promise<void>((resolve) => {
      const r = request(req.url, { method: 'PUT', headers: { 'content-length': '50' } });
      r.on('error', () => resolve());
      r.on('response', (res) => {
        res.resume();
        resolve();
      });
      r.write(Buffer.alloc(10));
      setTimeout(() => r.destroy(), 50);
    });
    expect(await mp.listParts(key, uploadId)).toEqual([]);
  });

  it('a deleted file\'s key accepts no create, part or completion; abort still cleans up', async () => {
    const { key, fileId } = await pending(10);
    const uploadId = await createUpload(key);
    const [part] = await mp.presignParts(key, uploadId, [1], 60);
    const create = await mp.presignRequest({ op: 'create', key }, 60);
    const complete = await mp.presignRequest({ op: 'complete', key, uploadId }, 60);
    const abort = await mp.presignRequest({ op: 'abort', key, uploadId }, 60);
    expect((await t.req('DELETE', `/files/${fileId}`, { key: t.adminKey })).status).toBe(200);
    expectS3Error(await send(create), 403, 'AccessDenied');
    expectS3Error(await send(part, Buffer.alloc(10)), 403, 'AccessDenied');
    expectS3Error(await send(complete, completeXml([{ partNumber: 1, etag: '"x"' }])), 403, 'AccessDenied');
    expect((await send(abort)).status).toBe(204);
    await expect(mp.listParts(key, uploadId)).rejects.toMatchObject({ code: 'NoSuchUpload' });
  });

  it('CORS preflight allows the multipart methods and exposes ETag', async () => {
    const res = await fetch(`${t.url}/_blobs/objects/x?uploads`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(res.status).toBe(204);
    const methods = res.headers.get('access-control-allow-methods')!;
    for (const m of ['GET', 'PUT', 'POST', 'DELETE']) expect(methods).toContain(m);
    expect(res.headers.get('access-control-expose-headers')).toMatch(/ETag/);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('a single PUT still works next to the multipart routes', async () => {
    const { fileId } = await t.upload(t.adminKey, dzId, 'plain.txt', 'plain single put');
    expect((await t.req('GET', `/files/${fileId}/download`, { key: t.adminKey })).text).toBe('plain single put');
    expect(MULTIPART_MIN_PART_SIZE).toBe(5 * MIB);
  });
});

describe('parseCompleteMultipartXml', () => {
  it('reads parts with namespace, declaration, whitespace, entities, extra elements and any element order', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
      <CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
        <Part><ETag>&quot;aa&quot;</ETag><PartNumber> 1 </PartNumber></Part>
        <Part>
          <PartNumber>2</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32>
          <ETag>"bb"</ETag>
        </Part>
      </CompleteMultipartUpload>`;
    expect(parseCompleteMultipartXml(xml)).toEqual([
      { partNumber: 1, etag: '"aa"' },
      { partNumber: 2, etag: '"bb"' },
    ]);
  });

  it('refuses what is not a CompleteMultipartUpload document', () => {
    for (const bad of [
      '',
      'not xml',
      '<Other><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Other>',
      '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>',
      '<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>',
      '<CompleteMultipartUpload>junk<Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>',
      '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>junk</CompleteMultipartUpload>',
      '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a & b</ETag></Part></CompleteMultipartUpload>',
      '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>',
    ]) {
      expect(parseCompleteMultipartXml(bad), bad).toBeNull();
    }
  });

  it('reads the largest list S3 allows (10,000 parts) within the body limit', () => {
    const parts = Array.from({ length: 10_000 }, (_, i) => ({ partNumber: i + 1, etag: `"${md5(Buffer.from(String(i)))}"` }));
    const xml = completeXml(parts);
    expect(Buffer.byteLength(xml)).toBeLessThan(2 * MIB);
    expect(parseCompleteMultipartXml(xml)).toEqual(parts);
  });
});
