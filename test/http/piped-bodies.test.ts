/**
 * Download and ZIP bodies are piped from the store's Node stream to the socket: the app hands the adapter a bodiless
 * answer (status and headers) and the stream goes straight into the Node response, not through a web stream. Bytes,
 * ranges and the ZIP stay exact, on both backends.
 */
import { createHash, randomBytes } from 'node:crypto';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PresetHeadersResponse } from '../../src/http/node-response.js';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

const CONTENT = randomBytes(5 * 1024 * 1024 + 123);
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

describeEachBackend('piped download bodies', (b: BackendContext) => {
  let t: TestServer;
  let dzId: string;
  let fileId: string;
  beforeAll(async () => {
    t = await b.start();
    dzId = (await t.createDropzone(t.adminKey))._id;
    fileId = (await t.upload(t.adminKey, dzId, 'big.bin', CONTENT, 'application/octet-stream')).fileId;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the app answers a download with status and headers only, the bytes going to the Node response', async () => {
    const outgoing = new PresetHeadersResponse(new IncomingMessage(new Socket()));
    const req = new Request(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': t.adminKey } });
    const res = await t.server.app.hono.fetch(req, { outgoing });
    expect(res.status).toBe(200);
    expect(res.body).toBeNull();
    expect(res.headers.get('content-length')).toBe(String(CONTENT.length));
    outgoing.destroy(); // the parked file stream is dropped with it
  });

  it('the whole file arrives byte for byte', async () => {
    const res = await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': t.adminKey } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(CONTENT.length));
    expect(md5(new Uint8Array(await res.arrayBuffer()))).toBe(md5(CONTENT));
  });

  it('a range across read boundaries is exact', async () => {
    const start = 1024 * 1024 - 7;
    const end = 3 * 1024 * 1024 + 11;
    const res = await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': t.adminKey, range: `bytes=${start}-${end}` } });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(CONTENT.subarray(start, end + 1))).toBe(true);
  });

  it('the ZIP is as long as announced and holds the bytes', async () => {
    const res = await fetch(`${t.api}/dropzones/${dzId}/zip`, { headers: { 'x-api-key': t.adminKey } });
    expect(res.status).toBe(200);
    const zip = Buffer.from(await res.arrayBuffer());
    expect(zip.length).toBe(Number(res.headers.get('content-length')));
    expect(zip.indexOf(CONTENT.subarray(0, 4096))).toBeGreaterThan(0);
  });
});
