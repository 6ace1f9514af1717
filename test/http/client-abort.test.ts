/**
 * A client that goes away in the middle of its request body is the client's doing: it is logged as an abort (info),
 * counted with status 499 in the access log, never as an unhandled error or a 5xx, and it stores nothing.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from '../helpers/server.js';

describe('client disconnects mid-body', () => {
  let t: TestServer;
  beforeAll(async () => {
    // info: the access log lines are what this suite checks
    t = await startTestServer({ logLevel: 'info' });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Sends the head and part of the body on a raw socket, then closes it. */
  const sendPartial = (head: string, part: Buffer) =>
    new Promise<void>((resolve) => {
      const u = new URL(t.url);
      const sock = connect(Number(u.port), u.hostname, () => {
        sock.write(head);
        sock.write(part, () => sock.destroy());
      });
      sock.on('close', () => resolve());
      sock.on('error', () => resolve());
    });

  /** Waits until the access log has a line for `route` newer than `from` (the server notices the close a moment later). */
  async function accessLine(route: string, from: number) {
    for (let i = 0; i < 300; i++) {
      const line = t.logs.slice(from).map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.route === route);
      if (line) return line;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no access log line for ${route}`);
  }

  it('a JSON API request cut off mid-body: no error line, status 499 in the access log', async () => {
    const from = t.logs.length;
    await sendPartial(
      `POST /api/v1/dropzones HTTP/1.1\r\nHost: x\r\nx-api-key: ${t.adminKey}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n`,
      Buffer.from('{"gb":'),
    );
    const line = await accessLine('/api/v1/dropzones', from);
    expect(line.status).toBe(499);
    const lines = t.logs.slice(from).map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    expect(lines.some((l) => l.level === 'info' && /aborted by the client/.test(l.msg))).toBe(true);
  });

  it('a signed PUT cut off mid-body: no error line, no 5xx, nothing stored, the URL still works', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const up = await t.requestUpload(t.adminKey, dz._id, 'cut.bin', 1000);
    const u = new URL(up.signedUrl);
    const from = t.logs.length;
    const head = [`PUT ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, ...Object.entries(up.headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
    await sendPartial(head, Buffer.alloc(300, 1));
    const line = await accessLine('/_blobs/*', from);
    expect(line.status).toBe(499);
    const lines = t.logs.slice(from).map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
    expect(t.blobFiles().filter((f) => f.startsWith('objects/') || f.endsWith('.part'))).toEqual([]);
    expect((await t.put(up, Buffer.alloc(1000, 2))).status).toBe(200);
  });
});
