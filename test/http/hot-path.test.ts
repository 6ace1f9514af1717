/**
 * The middleware keeps @hono/node-server's fast path: a JSON answer reaches the adapter as a plain body (a string it
 * writes in one go), not as a stream of a rebuilt Response, and still carries the request id and the CORS headers.
 * Answers a handler builds itself (downloads, 304s, preflights) get those headers too.
 */
import { IncomingMessage, ServerResponse, request as httpRequest } from 'node:http';
import { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API, type TestServer, startTestServer } from '../helpers/server.js';
import { PresetHeadersResponse } from '../../src/http/node-response.js';

/** The headers the adapter would write as they are (its cached response): a plain object on the fastest path. */
function plainHeaders(res: Response): unknown {
  const sym = Object.getOwnPropertySymbols(res).find((s) => s.description === 'cache');
  return sym ? (res as unknown as Record<symbol, unknown[]>)[sym]?.[2] : undefined;
}

/** The body the adapter would write as is (its cached response), or undefined when the Response was materialised. */
function plainBody(res: Response): unknown {
  const sym = Object.getOwnPropertySymbols(res).find((s) => s.description === 'cache');
  return sym ? (res as unknown as Record<symbol, unknown[]>)[sym]?.[1] : undefined;
}

describe('hot path', () => {
  let t: TestServer;
  let dzId: string;
  let fileId: string;
  beforeAll(async () => {
    t = await startTestServer();
    dzId = (await t.createDropzone(t.adminKey))._id;
    fileId = (await t.upload(t.adminKey, dzId, 'a.txt', 'hello', 'text/plain')).fileId;
  });
  afterAll(async () => {
    await t?.close();
  });
  /** The app's own answer, in process (the adapter's Response class is installed by the running server). */
  const fetchApp = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    t.server.app.hono.fetch(new Request(t.url + path, { method, headers }));

  it("every route is matched by Hono's RegExpRouter (one regular expression), not the slower TrieRouter it falls back to", async () => {
    // SmartRouter settles on the first router that accepts every route at the first match; a pattern in a path or a
    // literal segment beside a parameter would leave it on the TrieRouter
    expect((await fetchApp('/healthz')).status).toBe(200);
    expect((t.server.app.hono.router as { name: string }).name).toBe('SmartRouter + RegExpRouter');
  });

  it('/healthz answers a plain JSON body with a request id', async () => {
    const res = await fetchApp('/healthz');
    expect(typeof plainBody(res)).toBe('string');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('an authenticated API GET answers a plain JSON body with CORS headers and the request id', async () => {
    const res = await fetchApp(`${API}/dropzones/${dzId}`, { 'x-api-key': t.adminKey, origin: 'https://app.example' });
    expect(res.status).toBe(200);
    expect(typeof plainBody(res)).toBe('string');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toContain('ETag');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
  });

  it('under the Node adapter, request id and CORS headers go onto Node\'s response: the answer\'s own headers stay a plain object', async () => {
    const incoming = new IncomingMessage(new Socket());
    const outgoing = new ServerResponse(incoming);
    const res = await t.server.app.hono.fetch(
      new Request(`${t.url}${API}/dropzones/${dzId}`, { headers: { 'x-api-key': t.adminKey, origin: 'https://app.example' } }),
      { incoming, outgoing },
    );
    expect(res.status).toBe(200);
    expect(typeof plainBody(res)).toBe('string');
    const headers = plainHeaders(res);
    expect(headers).toBeDefined();
    expect(headers instanceof Headers).toBe(false);
    // the answer's text is kept beside the dropzone (src/http/presenters.ts), with the head c.json() gives it
    expect(headers).toEqual({ 'Content-Type': 'application/json' });
    expect(outgoing.getHeader('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
    expect(outgoing.getHeader('access-control-allow-origin')).toBe('*');
    expect(String(outgoing.getHeader('access-control-expose-headers'))).toContain('ETag');
  });

  it('under the Node adapter, /healthz is answered synchronously (no promise hop) while requests are not logged', async () => {
    const incoming = new IncomingMessage(new Socket());
    const outgoing = new ServerResponse(incoming);
    const answer = t.server.app.hono.fetch(new Request(`${t.url}/healthz`), { incoming, outgoing });
    expect(answer).toBeInstanceOf(Response); // not a promise of one
    const res = answer as Response;
    expect(typeof plainBody(res)).toBe('string');
    expect(outgoing.getHeader('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
  });

  it('under the Node adapter, an owner\'s API GET is answered synchronously when the store can look up at once; while a transaction holds the store it waits, with the same answer', async () => {
    const get = () => {
      const incoming = new IncomingMessage(new Socket());
      const outgoing = new ServerResponse(incoming);
      return t.server.app.hono.fetch(new Request(`${t.url}${API}/dropzones/${dzId}`, { headers: { 'x-api-key': t.adminKey } }), { incoming, outgoing });
    };
    expect(t.server.app.ctx.meta.immediate).toBeDefined(); // SQLite
    const at = get();
    expect(at).toBeInstanceOf(Response); // not a promise of one
    const atOnce = await (at as Response).json();
    expect(atOnce.data._id).toBe(dzId);

    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const tx = t.server.app.ctx.meta.transaction(() => held);
    await new Promise((r) => setImmediate(r));
    const later = get();
    expect(later).toBeInstanceOf(Promise); // the lookups wait behind the transaction
    release();
    await tx;
    expect(await ((await later) as Response).json()).toEqual(atOnce);
  });

  it('request ids differ per request; a sane caller id is kept', async () => {
    const a = (await fetchApp('/healthz')).headers.get('x-request-id');
    const b = (await fetchApp('/healthz')).headers.get('x-request-id');
    expect(a).not.toBe(b);
    expect((await fetchApp('/healthz', { 'x-request-id': 'abc-123' })).headers.get('x-request-id')).toBe('abc-123');
  });

  it('an error answer is a plain JSON body with the headers too', async () => {
    const res = await fetchApp(`${API}/dropzones/nope`, { 'x-api-key': t.adminKey });
    expect(res.status).toBe(404);
    expect(typeof plainBody(res)).toBe('string');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('answers the handler builds itself (download, 304) carry CORS and request id over the wire', async () => {
    const res = await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': t.adminKey } });
    expect(await res.text()).toBe('hello');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toContain('Content-Range');
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const etag = res.headers.get('etag')!;
    const nm = await fetch(`${t.api}/files/${fileId}/download`, { headers: { 'x-api-key': t.adminKey, 'if-none-match': etag } });
    expect(nm.status).toBe(304);
    expect(nm.headers.get('access-control-allow-origin')).toBe('*');
    expect(nm.headers.get('x-request-id')).toBeTruthy();
  });

  it('a preflight is answered 204 with the allowed methods and headers', async () => {
    const res = await fetch(`${t.api}/dropzones`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toContain('DELETE');
    expect(res.headers.get('access-control-allow-headers')).toContain('x-api-key');
    expect(res.headers.get('access-control-max-age')).toBe('3600');
  });
});

describe('hot path with a list of CORS origins', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ settings: { 'server.corsOrigins': ['https://a.example'] } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('reflects an allowed origin with Vary: Origin, and leaves others out', async () => {
    const ok = await fetch(`${t.api}/dropzones`, { headers: { 'x-api-key': t.adminKey, origin: 'https://a.example' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://a.example');
    expect(ok.headers.get('vary')).toMatch(/origin/i);
    const other = await fetch(`${t.api}/dropzones`, { headers: { 'x-api-key': t.adminKey, origin: 'https://b.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(other.headers.get('vary')).toMatch(/origin/i);
  });
});

// Over a real socket, where the server reads headers from Node's parsed ones (fetch cannot set Host or repeat a header).
describe('request headers over a real socket', () => {
  let t: TestServer;
  let dzId: string;
  beforeAll(async () => {
    t = await startTestServer();
    dzId = (await t.createDropzone(t.adminKey))._id;
  });
  afterAll(async () => t?.close());

  /** GET of the dropzone with exactly these headers (an array: the header repeated). */
  const getDropzone = (headers: Record<string, string | string[]>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const u = new URL(`${t.api}/dropzones/${dzId}`);
      const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, headers }, (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (d) => (body += d))
          .on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject).end();
    });
  const statusWith = async (headers: Record<string, string | string[]>) => (await getDropzone(headers)).status;

  // request id and CORS headers wait beside the response and join the answer's own in one writeHead (setHeader()
  // would put every answer on Node's per-header path)
  it('the server answers through its own response class, which writes the preset headers with the answer', async () => {
    let seen: unknown;
    const spy = (_req: unknown, res: unknown) => {
      seen = res;
    };
    t.server.http.on('request', spy);
    try {
      expect((await getDropzone({ 'x-api-key': t.adminKey })).status).toBe(200);
    } finally {
      t.server.http.off('request', spy);
    }
    expect(seen).toBeInstanceOf(PresetHeadersResponse);
  });

  // The origin of links (upload URLs, signed URLs) follows each request's Host header when no public URL is configured;
  // the server keeps the last Host's origin between requests, so a change of Host must still show at once.
  it('links switch with the Host header, and an unusable Host falls back to the listen address', async () => {
    const uploadUrlUnder = async (host: string) => {
      const { status, body } = await getDropzone({ host, 'x-api-key': t.adminKey });
      expect(status, body).toBe(200);
      return JSON.parse(body).data.uploadUrl as string;
    };
    const code = new URL(await uploadUrlUnder('files.example.test')).pathname;
    expect(await uploadUrlUnder('files.example.test')).toBe(`http://files.example.test${code}`);
    expect(await uploadUrlUnder('other.example.test:8443')).toBe(`http://other.example.test:8443${code}`);
    expect(await uploadUrlUnder('files.example.test')).toBe(`http://files.example.test${code}`);
    expect(await uploadUrlUnder('bad_host')).toBe(`${t.url}${code}`); // Node accepts it, links do not
    expect(await uploadUrlUnder('other.example.test:8443')).toBe(`http://other.example.test:8443${code}`);
    expect(await uploadUrlUnder('[::1]:9000')).toBe(`http://[::1]:9000${code}`);
  });

  // Credentials are read from Node's parsed headers (x-api-key, x-dropzone-id) or through the adapter's Request
  // (authorization, whose repeats Node would drop but the adapter joins): each works alone, and a repeated credential
  // header is refused rather than one of its values picked.
  it('accepts each credential header alone and refuses a repeated one', async () => {
    expect(await statusWith({ 'x-api-key': t.adminKey })).toBe(200);
    expect(await statusWith({ 'x-api-key': `  ${t.adminKey} ` })).toBe(200);
    expect(await statusWith({ authorization: `Bearer ${t.adminKey}` })).toBe(200);
    expect(await statusWith({ 'x-dropzone-id': dzId })).toBe(200);
    expect(await statusWith({})).toBe(401);
    expect(await statusWith({ 'x-api-key': 'dzk_wrong' })).toBe(401);
    expect(await statusWith({ 'x-api-key': [t.adminKey, t.adminKey] })).toBe(401);
    expect(await statusWith({ authorization: [`Bearer ${t.adminKey}`, 'Bearer dzk_wrong'] })).toBe(401);
    expect(await statusWith({ 'x-dropzone-id': [dzId, dzId] })).toBe(401);
  });
});

// The API routes are registered with their middleware composed in (src/http/pipeline.ts), so Hono matches one handler
// and answers on its single-handler path; everything else falls through to the site app with its `app.use` layers.
// The layers must still see every answer: the request log logs the route pattern and the final status of each.
describe('API routes on the single-handler path', () => {
  let t: TestServer;
  let dzId: string;
  beforeAll(async () => {
    t = await startTestServer({ logLevel: 'info' });
    dzId = (await t.createDropzone(t.adminKey))._id;
  });
  afterAll(async () => t?.close());

  it('an API route matches exactly one handler in the app the server runs', () => {
    const router = t.server.app.hono.router as { match(method: string, path: string): [unknown[], unknown] };
    expect(router.match('GET', `${API}/dropzones/abc`)[0]).toHaveLength(1);
    expect(router.match('POST', `${API}/dropzones`)[0]).toHaveLength(1);
    expect(router.match('GET', `${API}/openapi.json`)[0]).toHaveLength(1);
    expect(router.match('GET', '/healthz')[0]).toHaveLength(1);
  });

  const lineFor = (from: number, requestId: string | null) =>
    t.logs
      .slice(from)
      .map((l) => JSON.parse(l))
      .find((l) => l.msg === 'request' && l.requestId === requestId);

  it('the request log, CORS and the request id see answers, errors and unknown API paths alike', async () => {
    const cases: { path: string; key: string; status: number; route: string }[] = [
      { path: `/dropzones/${dzId}`, key: t.adminKey, status: 200, route: `${API}/dropzones/:id` },
      { path: '/dropzones/no-such-dropzone', key: t.adminKey, status: 404, route: `${API}/dropzones/:id` },
      { path: `/dropzones/${dzId}`, key: 'dzk_wrong', status: 401, route: `${API}/dropzones/:id` },
      { path: '/no-such-route', key: t.adminKey, status: 404, route: `${API}/*` },
      { path: '/no-such-route', key: 'dzk_wrong', status: 401, route: `${API}/*` },
    ];
    for (const k of cases) {
      const from = t.logs.length;
      const res = await fetch(`${t.api}${k.path}`, { headers: { 'x-api-key': k.key, origin: 'https://app.example' } });
      expect(res.status, k.path).toBe(k.status);
      expect((await res.json()).status).toBe(k.status === 200 ? 'success' : 'error');
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      const id = res.headers.get('x-request-id');
      expect(id).toMatch(/^[0-9a-f]{16}$/);
      const line = lineFor(from, id);
      expect(line, `${k.path} with ${k.key}`).toMatchObject({ status: k.status, route: k.route });
    }
    // a preflight on an API path is still answered by the CORS layer
    const pre = await fetch(`${t.api}/dropzones`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
  });
});
