/**
 * The server's Node response class (src/http/node-response.ts) and the raw-header reads (requestHeader): the headers the
 * middleware presets join every kind of head Node can be asked to write, the answer's own headers win, and a request
 * header reads as Node's parsed headers would give it.
 */
import { IncomingMessage, type ServerResponse, createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Socket } from 'node:net';
import type { Context } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestHeader } from '../../src/http/middleware.js';
import { PresetHeadersResponse } from '../../src/http/node-response.js';

type Answer = (res: PresetHeadersResponse) => void;

describe('PresetHeadersResponse', () => {
  let answer: Answer = () => undefined;
  const server = createServer({ ServerResponse: PresetHeadersResponse as unknown as typeof ServerResponse }, (_req, res) =>
    answer(res as unknown as PresetHeadersResponse),
  );
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  /** The status, raw header pairs and body the server answers with `a`. */
  const get = (a: Answer) =>
    new Promise<{ status: number; raw: string[]; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
      answer = a;
      httpRequest({ host: '127.0.0.1', port, path: '/' }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, raw: res.rawHeaders, headers: res.headers, body }));
      })
        .on('error', reject)
        .end();
    });
  const preset = (res: PresetHeadersResponse) => {
    res.presetHeader('x-request-id', 'rid-1');
    res.presetHeader('access-control-allow-origin', '*');
  };

  it('adds the preset headers to a head written from a plain object, names as given, the object itself untouched', async () => {
    let given: Record<string, string> = {};
    const r = await get((res) => {
      preset(res);
      given = { 'Content-Type': 'application/json', 'Content-Length': '2' };
      res.writeHead(201, given).end('{}');
    });
    expect(r.status).toBe(201);
    expect(r.headers['x-request-id']).toBe('rid-1');
    expect(r.raw).toContain('access-control-allow-origin');
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.body).toBe('{}');
    expect(given).toEqual({ 'Content-Type': 'application/json', 'Content-Length': '2' });
  });

  it("lets the answer's own header win, whatever its case, and a later preset of the same name replace the earlier", async () => {
    const r = await get((res) => {
      preset(res);
      res.presetHeader('x-request-id', 'rid-2');
      res.writeHead(200, { 'access-control-allow-origin': 'https://mine.example' }).end();
    });
    expect(r.headers['access-control-allow-origin']).toBe('https://mine.example');
    expect(r.headers['x-request-id']).toBe('rid-2');
    expect(r.raw.filter((h) => h.toLowerCase() === 'access-control-allow-origin')).toHaveLength(1);
    expect(r.raw.filter((h) => h.toLowerCase() === 'x-request-id')).toHaveLength(1);
  });

  it('lets a header set with setHeader() win too, and joins the preset ones to it', async () => {
    const r = await get((res) => {
      preset(res);
      res.setHeader('X-Request-Id', 'set-by-hand');
      res.setHeader('etag', '"e"');
      res.writeHead(200, { 'content-type': 'text/plain' }).end('x');
    });
    expect(r.headers['x-request-id']).toBe('set-by-hand');
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers.etag).toBe('"e"');
    expect(r.headers['content-type']).toBe('text/plain');
  });

  it('joins a head with no headers, one with a reason phrase, and an implicit one (end() alone)', async () => {
    const bare = await get((res) => {
      preset(res);
      res.writeHead(204).end();
    });
    expect(bare.status).toBe(204);
    expect(bare.headers['x-request-id']).toBe('rid-1');
    const reason = await get((res) => {
      preset(res);
      res.writeHead(200, 'Fine', { 'content-type': 'text/plain' }).end('y');
    });
    expect(reason.headers['x-request-id']).toBe('rid-1');
    expect(reason.headers['content-type']).toBe('text/plain');
    const implicit = await get((res) => {
      preset(res);
      res.statusCode = 202;
      res.end('z');
    });
    expect(implicit.status).toBe(202);
    expect(implicit.headers['access-control-allow-origin']).toBe('*');
  });

  it('joins heads given as arrays, flat and nested', async () => {
    const flat = await get((res) => {
      preset(res);
      res.writeHead(200, ['Content-Type', 'text/plain', 'X-Request-Id', 'flat']).end('a');
    });
    expect(flat.headers['x-request-id']).toBe('flat');
    expect(flat.headers['access-control-allow-origin']).toBe('*');
    const nested = await get((res) => {
      preset(res);
      res.writeHead(200, [['Content-Type', 'text/plain']] as unknown as string[]).end('b');
    });
    expect(nested.headers['x-request-id']).toBe('rid-1');
    expect(nested.headers['content-type']).toBe('text/plain');
  });

  describe('a parked body', () => {
    /** A stand-in for a parked stream: what happened to it. */
    const body = () => {
      const seen = { sent: 0, dropped: 0 };
      const park = (res: PresetHeadersResponse, text = 'parked bytes') =>
        res.parkBody(
          (r) => {
            seen.sent++;
            r.end(text);
          },
          () => void seen.dropped++,
        );
      return { seen, park };
    };

    it('is sent once a bodiless head is written and the response ended, with the preset headers', async () => {
      const b = body();
      const r = await get((res) => {
        preset(res);
        b.park(res);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': '12' }).end();
      });
      expect(r.body).toBe('parked bytes');
      expect(r.headers['content-length']).toBe('12');
      expect(r.headers['x-request-id']).toBe('rid-1');
      expect(b.seen).toEqual({ sent: 1, dropped: 0 });
    });

    it('is dropped when the answer has a body of its own, is a 304 or 204, or a later body is parked', async () => {
      const own = body();
      const r = await get((res) => {
        own.park(res);
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('failed');
      });
      expect(r.body).toBe('failed');
      expect(own.seen).toEqual({ sent: 0, dropped: 1 });
      for (const status of [304, 204]) {
        const b = body();
        const s = await get((res) => {
          b.park(res);
          res.writeHead(status).end();
        });
        expect(s.status).toBe(status);
        expect(b.seen).toEqual({ sent: 0, dropped: 1 });
      }
      const first = body();
      const second = body();
      const t = await get((res) => {
        first.park(res, 'first');
        second.park(res, 'second');
        res.writeHead(200).end();
      });
      expect(t.body).toBe('second');
      expect(first.seen).toEqual({ sent: 0, dropped: 1 });
      expect(second.seen).toEqual({ sent: 1, dropped: 0 });
    });

    it('is dropped when the response closes before it is ended, and the callback of end() still runs when it is sent', async () => {
      // the client goes away while the answer is still being made: the response closes, never ended
      const b = body();
      const closed = new Promise<void>((resolve) => {
        answer = (res) => {
          b.park(res);
          res.once('close', () => setImmediate(resolve));
          req.destroy();
        };
      });
      const req = httpRequest({ host: '127.0.0.1', port, path: '/' }).on('error', () => undefined);
      req.end();
      await closed;
      expect(b.seen).toEqual({ sent: 0, dropped: 1 });

      const c = body();
      let called = 0;
      const r = await get((out) => {
        c.park(out, 'ok');
        out.writeHead(200);
        out.end(() => void called++);
      });
      expect(r.body).toBe('ok');
      expect(c.seen.sent).toBe(1);
      expect(called).toBe(1);
    });
  });

  it('answers a preset value before the head is written', () => {
    const res = new PresetHeadersResponse(new IncomingMessage(new Socket()));
    expect(res.presetHeaderValue('x-request-id')).toBeUndefined();
    preset(res);
    expect(res.presetHeaderValue('X-REQUEST-ID')).toBe('rid-1');
    expect(res.presetHeaderValue('access-control-allow-origin')).toBe('*');
  });
});

describe('requestHeader', () => {
  /** A context over a Node request that arrived with exactly these raw headers. */
  const contextWith = (raw: string[]) => {
    const incoming = new IncomingMessage(new Socket());
    // as Node's HTTP parser hands a request its headers
    (incoming as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(raw, raw.length);
    const c = { env: { incoming }, req: { header: () => 'read through the Request' } } as unknown as Context;
    return { c, incoming };
  };

  it("reads each header as Node's parsed headers give it: any case, repeats joined, first kept, cookies with ;", () => {
    const raw = [
      'Host', 'a.example', 'HOST', 'b.example',
      'X-Api-Key', 'k1', 'x-api-key', 'k2',
      'Authorization', 'Bearer one', 'authorization', 'Bearer two',
      'Content-Type', 'text/plain', 'content-type', 'application/json',
      'Cookie', 'a=1', 'cookie', 'b=2',
      'X-Request-Id', 'rid',
      'Origin', 'https://o.example',
      'Accept', 'text/html', 'ACCEPT', 'application/json',
      'User-Agent', 'first', 'user-agent', 'second',
      'Referer', 'r1', 'referer', 'r2',
    ];
    const { c, incoming } = contextWith(raw);
    const names = ['host', 'x-api-key', 'authorization', 'content-type', 'cookie', 'x-request-id', 'origin', 'accept', 'user-agent', 'referer', 'x-dropzone-id', 'range'];
    for (const name of names) {
      const v = incoming.headers[name];
      expect(requestHeader(c, name), name).toBe(Array.isArray(v) ? v.join(', ') : v);
    }
    expect(requestHeader(c, 'x-api-key')).toBe('k1, k2');
    expect(requestHeader(c, 'host')).toBe('a.example');
    expect(requestHeader(c, 'cookie')).toBe('a=1; b=2');
    expect(requestHeader(c, 'x-dropzone-id')).toBeUndefined();
  });

  it('reads through the Request when the message has no raw headers (built by hand)', () => {
    expect(requestHeader(contextWith([]).c, 'host')).toBe('read through the Request');
  });
});
