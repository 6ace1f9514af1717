/**
 * The multipart API on top of the blob layer (issue 11): `/files/:fileId/multipart…` start (pinned upload id, proposed
 * part size), sign parts, list parts, complete (exact size, then confirmed like confirm), abort; its error paths; and
 * the cleanup of uploads whose file was deleted or that no pending file holds. On every backend.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MultipartError } from '../../src/blobs/blob-store.js';
import { proposePartSize } from '../../src/core/multipart.js';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const MIB = 1024 * 1024;

/** Deterministic bytes. */
function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

it('proposes a part size of whole MiB, at least 5 MiB, in at most 10,000 parts', () => {
  expect(proposePartSize(0)).toBe(5 * MIB);
  expect(proposePartSize(100 * MIB)).toBe(5 * MIB);
  expect(proposePartSize(50_000 * MIB)).toBe(5 * MIB);
  expect(proposePartSize(50_000 * MIB + 1)).toBe(6 * MIB);
  const big = 2 * 1024 * 1024 * MIB; // 2 TiB
  const p = proposePartSize(big)!;
  expect(p % MIB).toBe(0);
  expect(Math.ceil(big / p)).toBeLessThanOrEqual(10_000);
  expect(proposePartSize(10_000 * 5 * 1024 * MIB + 1)).toBeUndefined();
});

describeEachBackend('multipart API', (b: BackendContext) => {
  let t: TestServer;
  let dzId: string;
  beforeAll(async () => {
    t = await b.start();
    dzId = (await t.createDropzone(t.adminKey, { gb: 1, days: 30, name: 'mp' }))._id;
  });
  afterAll(async () => {
    await t?.close();
  });

  const key = () => t.adminKey;
  const start = (fileId: string, auth: { key?: string; dropzoneId?: string } = { key: key() }) => t.req('POST', `/files/${fileId}/multipart`, auth);
  const sign = (fileId: string, uploadId: string, partNumbers: unknown) =>
    t.req('POST', `/files/${fileId}/multipart/${encodeURIComponent(uploadId)}/sign`, { key: key(), body: { partNumbers } });
  const list = (fileId: string, uploadId: string) => t.req('GET', `/files/${fileId}/multipart/${encodeURIComponent(uploadId)}`, { key: key() });
  const complete = (fileId: string, uploadId: string, parts: unknown) =>
    t.req('POST', `/files/${fileId}/multipart/${encodeURIComponent(uploadId)}/complete`, { key: key(), body: { parts } });
  const abort = (fileId: string, uploadId: string) => t.req('DELETE', `/files/${fileId}/multipart/${encodeURIComponent(uploadId)}`, { key: key() });

  /** Signs and PUTs `parts` (number → bytes); answers the ETags by part number. */
  async function putParts(fileId: string, uploadId: string, parts: Map<number, Buffer>): Promise<Map<number, string>> {
    const signed = await sign(fileId, uploadId, [...parts.keys()]);
    expect(signed.status, signed.text).toBe(200);
    const etags = new Map<number, string>();
    for (const s of signed.body.data.parts) {
      const body = parts.get(s.partNumber)!;
      const res = await fetch(s.url, { method: 'PUT', headers: s.headers, body: new Uint8Array(body) });
      expect(res.status, await res.clone().text()).toBe(200);
      etags.set(s.partNumber, res.headers.get('etag')!);
      await res.arrayBuffer();
    }
    return etags;
  }

  async function reserve(name: string, size: number) {
    const up = await t.requestUpload(key(), dzId, name, size, 'application/octet-stream');
    const started = await start(up.fileId);
    expect(started.status, started.text).toBe(200);
    return { fileId: up.fileId as string, uploadId: started.body.data.uploadId as string, data: started.body.data };
  }

  const blobKeyOf = async (fileId: string) => (await t.server.app.ctx.meta.fileById(fileId))!.blobKey;
  const expectNoUpload = async (blobKey: string, uploadId: string) => {
    const err = await t.server.app.ctx.blobs.multipart!.listParts(blobKey, uploadId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MultipartError);
    expect((err as MultipartError).code).toBe('NoSuchUpload');
  };

  it('start, sign, list, complete: the file is confirmed with the exact bytes; a second start answers the same upload', async () => {
    const size = 5 * MIB + 12_345;
    const data = bytes('flow', size);
    const { fileId, uploadId, data: started } = await reserve('big.bin', size);
    expect(started).toMatchObject({ partSize: 5 * MIB, partCount: 2, minPartSize: 5 * MIB, maxParts: 10_000 });
    // a replayed start opens no parallel upload
    const again = await start(fileId, { dropzoneId: dzId });
    expect(again.status).toBe(200);
    expect(again.body.data.uploadId).toBe(uploadId);

    const parts = new Map([
      [2, data.subarray(5 * MIB)],
      [1, data.subarray(0, 5 * MIB)],
    ]);
    const etags = await putParts(fileId, uploadId, parts);
    const listed = await list(fileId, uploadId);
    expect(listed.status).toBe(200);
    expect(listed.body.data.parts).toEqual([
      { PartNumber: 1, ETag: etags.get(1), Size: 5 * MIB },
      { PartNumber: 2, ETag: etags.get(2), Size: size - 5 * MIB },
    ]);
    // not confirmable by the single-PUT confirm before completion
    expect((await t.req('POST', `/files/${fileId}/confirm`, { key: key() })).status).toBe(409);

    const done = await complete(fileId, uploadId, listed.body.data.parts.map((p: any) => ({ PartNumber: p.PartNumber, ETag: p.ETag })));
    expect(done.status, done.text).toBe(200);
    expect(done.body).toMatchObject({ _id: fileId, size, meta: { s3Status: 'uploaded' }, data: { _id: fileId } });
    const row = await t.server.app.ctx.meta.fileById(fileId);
    expect(row).toMatchObject({ status: 'uploaded', multipartUploadId: null });
    expect(row!.etag).toMatch(/-2"$/);
    const dl = await t.req('GET', `/files/${fileId}/download`, { key: key() });
    expect(dl.status).toBe(200);
    const got = Buffer.from(await (await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': key() } })).arrayBuffer());
    expect(got.equals(data)).toBe(true);

    // a retried completion answers the confirmed file; a new start is refused: confirmed bytes are immutable
    expect((await complete(fileId, uploadId, [{ PartNumber: 1, ETag: etags.get(1) }])).status).toBe(200);
    const late = await start(fileId);
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('ALREADY_UPLOADED');
  });

  it("answers S3's XML to Accept: application/xml and takes a CompleteMultipartUpload XML body (Uppy 6 signRequest)", async () => {
    const size = 5 * MIB + 777;
    const data = bytes('xml', size);
    const up = await t.requestUpload(key(), dzId, 'xml.bin', size, 'application/octet-stream');
    const fileId = up.fileId as string;
    const xmlReq = (method: string, path: string, body?: string) =>
      fetch(`${t.api}${path}`, {
        method,
        headers: { 'x-api-key': key(), accept: 'application/xml', ...(body ? { 'content-type': 'application/xml' } : { 'content-type': 'application/octet-stream' }) },
        body,
      });
    const created = await xmlReq('POST', `/files/${fileId}/multipart`);
    const createdText = await created.text();
    expect(created.status, createdText).toBe(200);
    expect(created.headers.get('content-type')).toMatch(/^application\/xml/);
    expect(createdText).toContain(`<Key>${fileId}</Key>`);
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(createdText)![1].replace(/&amp;/g, '&');
    const etags = await putParts(fileId, uploadId, new Map([[1, data.subarray(0, 5 * MIB)], [2, data.subarray(5 * MIB)]]));
    const mp = `/files/${fileId}/multipart/${encodeURIComponent(uploadId)}`;
    const listed = await xmlReq('GET', mp);
    const listedText = await listed.text();
    expect(listed.status, listedText).toBe(200);
    expect(listedText).toMatch(/^<\?xml[^>]*>\s*<ListPartsResult[ >]/);
    const quot = (e: string) => e.replace(/"/g, '&quot;');
    expect(listedText).toContain(`<Part><PartNumber>1</PartNumber><ETag>${quot(etags.get(1)!)}</ETag><Size>${5 * MIB}</Size></Part>`);
    expect(listedText).toContain(`<Part><PartNumber>2</PartNumber><ETag>${quot(etags.get(2)!)}</ETag><Size>777</Size></Part>`);

    // not a CompleteMultipartUpload document: 400 naming it, the upload stays open
    const bad = await xmlReq('POST', `${mp}/complete`, '<Nope/>');
    expect(bad.status).toBe(400);
    expect((await bad.json()).code).toBe('VALIDATION');
    const doc = `<CompleteMultipartUpload>${[1, 2].map((n) => `<Part><PartNumber>${n}</PartNumber><ETag>${etags.get(n)!.replace(/"/g, '')}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
    const done = await xmlReq('POST', `${mp}/complete`, doc);
    const doneText = await done.text();
    expect(done.status, doneText).toBe(200);
    expect(doneText).toMatch(/<CompleteMultipartUploadResult[ >]/);
    expect(doneText).toContain(`<Location>${t.api}/files/${fileId}</Location><Key>${fileId}</Key>`);
    expect(await t.server.app.ctx.meta.fileById(fileId)).toMatchObject({ status: 'uploaded', size });
    const got = Buffer.from(await (await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': key() } })).arrayBuffer());
    expect(got.equals(data)).toBe(true);

    // abort answers 204 with no body in the XML form
    const other = await t.requestUpload(key(), dzId, 'xml-abort.bin', size, 'application/octet-stream');
    const otherId = /<UploadId>([^<]+)<\/UploadId>/.exec(await (await xmlReq('POST', `/files/${other.fileId}/multipart`)).text())![1];
    const aborted = await xmlReq('DELETE', `/files/${other.fileId}/multipart/${encodeURIComponent(otherId)}`);
    expect(aborted.status).toBe(204);
    expect(await aborted.text()).toBe('');
  });

  it('error paths: foreign upload id, bad part numbers, wrong or missing ETag, order, too small part, size mismatch', async () => {
    const size = 5 * MIB + 10;
    const data = bytes('errors', size);
    const { fileId, uploadId } = await reserve('err.bin', size);

    for (const res of [await sign(fileId, 'not-the-upload', [1]), await list(fileId, 'not-the-upload'), await complete(fileId, 'x', [{ PartNumber: 1, ETag: '"a"' }]), await abort(fileId, 'x')]) {
      expect(res.status, res.text).toBe(404);
      expect(res.body.code).toBe('NO_SUCH_UPLOAD');
    }
    for (const numbers of [[0], [10_001], [1.5], [], 'x']) {
      const res = await sign(fileId, uploadId, numbers);
      expect(res.status, JSON.stringify(numbers)).toBe(400);
      expect(res.body.code).toBe('VALIDATION');
    }

    // a first part of 1 MiB: too small once a second part follows
    const small = await putParts(fileId, uploadId, new Map([[1, data.subarray(0, MIB)], [2, data.subarray(MIB)]]));
    const tooSmall = await complete(fileId, uploadId, [
      { PartNumber: 1, ETag: small.get(1) },
      { PartNumber: 2, ETag: small.get(2) },
    ]);
    expect(tooSmall.status, tooSmall.text).toBe(400);
    expect(tooSmall.body.code).toBe('PART_TOO_SMALL');

    // replacing part 2 first keeps the stored total within the reservation (the local store refuses more)
    const etags = await putParts(fileId, uploadId, new Map([[2, data.subarray(5 * MIB)], [1, data.subarray(0, 5 * MIB)]]));
    const wrong = await complete(fileId, uploadId, [
      { PartNumber: 1, ETag: '"00000000000000000000000000000000"' },
      { PartNumber: 2, ETag: etags.get(2) },
    ]);
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe('INVALID_PART');
    const missing = await complete(fileId, uploadId, [
      { PartNumber: 1, ETag: etags.get(1) },
      { PartNumber: 3, ETag: etags.get(2) },
    ]);
    expect(missing.status).toBe(400);
    expect(missing.body.code).toBe('INVALID_PART');
    const order = await complete(fileId, uploadId, [
      { PartNumber: 2, ETag: etags.get(2) },
      { PartNumber: 1, ETag: etags.get(1) },
    ]);
    expect(order.status).toBe(400);
    expect(order.body.code).toBe('INVALID_PART_ORDER');
    // part 1 alone is 5 MiB, not the reserved 5 MiB + 10: refused, and the upload stays open
    const short = await complete(fileId, uploadId, [{ PartNumber: 1, ETag: etags.get(1) }]);
    expect(short.status, short.text).toBe(409);
    expect(short.body.code).toBe('SIZE_MISMATCH');
    expect((await list(fileId, uploadId)).status).toBe(200);
    const ok = await complete(fileId, uploadId, [
      { PartNumber: 1, ETag: etags.get(1) },
      { PartNumber: 2, ETag: etags.get(2) },
    ]);
    expect(ok.status, ok.text).toBe(200);
  });

  it('signing parts keeps the reservation alive for another URL lifetime plus the grace', async () => {
    const { fileId, uploadId } = await reserve('slow.bin', 100);
    const { uploads } = t.server.app.ctx.config;
    const before = (await t.server.app.ctx.meta.fileById(fileId))!.pendingExpiresAt!;
    t.clock.advance(uploads.urlTtlSeconds * 1000); // within the grace: still alive
    const res = await sign(fileId, uploadId, [1]);
    expect(res.status, res.text).toBe(200);
    const after = (await t.server.app.ctx.meta.fileById(fileId))!.pendingExpiresAt!;
    expect(after).toBeGreaterThan(before);
    expect(after).toBe(Math.min(t.clock.now() + (uploads.urlTtlSeconds + uploads.reservationGraceSeconds) * 1000, (await t.server.app.ctx.meta.fileById(fileId))!.createdAt + uploads.pendingTtlSeconds * 1000));
    expect(res.body.data.parts[0].expiresAt).toBeLessThanOrEqual(after);
  });

  it('needs file.upload.confirm; another key sees no such file', async () => {
    const other = await t.createKey([]);
    const up = await t.requestUpload(key(), dzId, 'perm.bin', 10);
    const res = await start(up.fileId, { key: other.secret });
    expect(res.status).toBe(404);
    expect((await t.server.app.ctx.meta.fileById(up.fileId))!.multipartUploadId).toBeNull();
  });

  it('abort discards the parts and releases the reservation (like S3: the upload is gone); the file must be requested again', async () => {
    const before = (await t.server.app.ctx.meta.dropzoneById(dzId))!;
    const { fileId, uploadId } = await reserve('abort.bin', 100);
    expect((await t.server.app.ctx.meta.dropzoneById(dzId))!.usedSpace).toBeGreaterThan(before.usedSpace);
    await putParts(fileId, uploadId, new Map([[1, bytes('a', 100)]]));
    const blobKey = await blobKeyOf(fileId);
    const res = await abort(fileId, uploadId);
    expect(res.status, res.text).toBe(200);
    await expectNoUpload(blobKey, uploadId);
    expect(await t.server.app.ctx.meta.fileById(fileId)).toBeUndefined();
    const after = (await t.server.app.ctx.meta.dropzoneById(dzId))!;
    expect([after.usedSpace, after.fileCount]).toEqual([before.usedSpace, before.fileCount]);
    expect((await list(fileId, uploadId)).status).toBe(404);
    expect((await start(fileId)).status).toBe(404);
    // aborting again (a retried request whose answer was lost) names the missing file
    expect((await abort(fileId, uploadId)).body.code).toBe('FILE_NOT_FOUND');
  });

  it('deleting a pending file aborts its multipart upload', async () => {
    const { fileId, uploadId } = await reserve('deleted.bin', 100);
    await putParts(fileId, uploadId, new Map([[1, bytes('d', 100)]]));
    const blobKey = await blobKeyOf(fileId);
    expect((await t.req('DELETE', `/files/${fileId}`, { key: key() })).status).toBe(200);
    await expectNoUpload(blobKey, uploadId);
  });

  it('the sweeper aborts uploads no pending file holds once an upload URL lifetime passed, and keeps pinned ones', async () => {
    const { fileId, uploadId } = await reserve('kept.bin', 100);
    const blobKey = await blobKeyOf(fileId);
    const mp = t.server.app.ctx.blobs.multipart!;
    // an upload opened directly on the key of a pending file (a replayed create): not the pinned one
    const stray = await mp.create(blobKey);
    const young = await t.server.app.ctx.sweeper.sweep({ scan: false });
    // (moto answers ListMultipartUploads with a fixed Initiated date in 2010: every upload there is already old)
    if (b.name === 'local') expect(young.multipartAborted).toBe(0);
    expect(await mp.listParts(blobKey, uploadId)).toEqual([]);
    t.clock.advance((t.server.app.ctx.config.uploads.urlTtlSeconds + 60) * 1000);
    const swept = await t.server.app.ctx.sweeper.sweep({ scan: false });
    expect(young.multipartAborted + swept.multipartAborted).toBeGreaterThanOrEqual(1);
    await expectNoUpload(blobKey, stray);
    expect(await mp.listParts(blobKey, uploadId)).toEqual([]);
  });

  it('an expired pending file answers 410 and the sweeper aborts its upload with it', async () => {
    const { fileId, uploadId } = await reserve('expire.bin', 100);
    const blobKey = await blobKeyOf(fileId);
    const row = (await t.server.app.ctx.meta.fileById(fileId))!;
    t.clock.advance(row.pendingExpiresAt! - t.clock.now() + 1);
    const res = await sign(fileId, uploadId, [1]);
    expect(res.status).toBe(410);
    expect(res.body.code).toBe('UPLOAD_EXPIRED');
    expect((await t.server.app.ctx.sweeper.sweep({ scan: false })).stalePending).toBeGreaterThanOrEqual(1);
    await expectNoUpload(blobKey, uploadId);
  });
});
