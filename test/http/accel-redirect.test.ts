/**
 * `server.accelRedirect`: downloads of the local store are authorized by the server and answered with an empty body
 * and `X-Accel-Redirect` to nginx's internal location; 304, HEAD, 416 and the immutability check stay the server's.
 * The S3 backend ignores it. Then the same through a real nginx (from apt), started by the test.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend, startTestServer } from '../helpers/server.js';

const PREFIX = '/_dz_internal/';
const CONTENT = randomBytes(300_000);

describeEachBackend('X-Accel-Redirect mode', (b: BackendContext) => {
  let t: TestServer;
  let dzId: string;
  let fileId: string;
  beforeAll(async () => {
    t = await b.start({ settings: { 'server.accelRedirect': PREFIX } });
    dzId = (await t.createDropzone(t.adminKey))._id;
    fileId = (await t.upload(t.adminKey, dzId, 'r.bin', CONTENT, 'application/octet-stream')).fileId;
  });
  afterAll(async () => {
    await t?.close();
  });
  const get = (headers: Record<string, string> = {}, method = 'GET') =>
    fetch(`${t.api}/files/${fileId}/download`, { method, headers: { 'x-api-key': t.adminKey, ...headers } });

  if (b.name === 'local') {
    it('GET answers the internal location of the blob with an empty body and the download headers', async () => {
      const res = await get();
      expect(res.status).toBe(200);
      const [blob] = t.blobFiles().filter((f) => !f.startsWith('.'));
      expect(res.headers.get('x-accel-redirect')).toBe(PREFIX + blob);
      expect(Buffer.from(await res.arrayBuffer()).length).toBe(0);
      expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
      expect(res.headers.get('content-disposition')).toContain('r.bin');
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
    });

    it('If-None-Match, HEAD and an unsatisfiable range are still answered by the server', async () => {
      const etag = (await get()).headers.get('etag')!;
      const nm = await get({ 'if-none-match': etag });
      expect(nm.status).toBe(304);
      expect(nm.headers.get('x-accel-redirect')).toBeNull();
      const head = await get({}, 'HEAD');
      expect(head.headers.get('content-length')).toBe(String(CONTENT.length));
      expect(head.headers.get('x-accel-redirect')).toBeNull();
      const bad = await get({ range: `bytes=${CONTENT.length + 5}-` });
      expect(bad.status).toBe(416);
      expect(bad.headers.get('x-accel-redirect')).toBeNull();
    });

    it('bytes changed on disk after confirm are refused (409) instead of redirected', async () => {
      const other = (await t.upload(t.adminKey, dzId, 'x.bin', 'original', 'text/plain')).fileId;
      const before = await fetch(`${t.api}/files/${other}/download`, { headers: { 'x-api-key': t.adminKey } });
      const blob = before.headers.get('x-accel-redirect')!.slice(PREFIX.length);
      appendFileSync(join(t.dataDir, 'blobs', blob), 'tampered');
      const res = await fetch(`${t.api}/files/${other}/download`, { headers: { 'x-api-key': t.adminKey } });
      expect(res.status).toBe(409);
      expect(res.headers.get('x-accel-redirect')).toBeNull();
    });
  } else {
    it('the S3 backend ignores it and sends the bytes', async () => {
      const res = await get();
      expect(res.headers.get('x-accel-redirect')).toBeNull();
      expect(Buffer.from(await res.arrayBuffer()).equals(CONTENT)).toBe(true);
    });
  }
});

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const nginxMissing = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).status === 0 ? false : 'nginx is not on PATH (apt-get install nginx)';
if (nginxMissing) {
  if (process.env.CI) throw new Error(`the nginx X-Accel-Redirect suite cannot run in CI: ${nginxMissing}`);
  process.stderr.write(`SKIPPED "X-Accel-Redirect behind nginx": ${nginxMissing}\n`);
}

describe.skipIf(nginxMissing)('X-Accel-Redirect behind nginx', () => {
  let t: TestServer;
  let nginx: ChildProcess | undefined;
  let dir: string;
  let base: string;
  let fileId: string;
  beforeAll(async () => {
    t = await startTestServer({ settings: { 'server.accelRedirect': PREFIX, 'server.trustProxy': true } });
    const dzId = (await t.createDropzone(t.adminKey))._id;
    fileId = (await t.upload(t.adminKey, dzId, 'n.bin', CONTENT, 'application/octet-stream')).fileId;
    dir = mkdtempSync(join(tmpdir(), 'dropzone-nginx-'));
    const port = await freePort();
    const upstream = new URL(t.url).host;
    // the location of the README's snippet
    writeFileSync(
      join(dir, 'nginx.conf'),
      `daemon off; master_process off; worker_processes 1; error_log ${dir}/error.log; pid ${dir}/nginx.pid;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  sendfile on;
  server { listen 127.0.0.1:${port};
    location ${PREFIX} { internal; alias ${join(t.dataDir, 'blobs')}/; etag off;
      add_header ETag $upstream_http_etag always; add_header X-Content-Type-Options nosniff always; }
    location / { proxy_pass http://${upstream}; proxy_set_header Host $http_host; proxy_set_header X-Forwarded-Proto $scheme; }
  } }
`,
    );
    nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    base = `http://127.0.0.1:${port}/api/v1/files/${fileId}/download`;
    for (let i = 0; i < 100; i++) {
      if (await fetch(base).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    nginx?.kill();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('nginx sends exactly the confirmed bytes with the server ETag and disposition', async () => {
    const res = await fetch(base, { headers: { 'x-api-key': t.adminKey } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(CONTENT)).toBe(true);
    expect(res.headers.get('x-accel-redirect')).toBeNull();
    expect(res.headers.get('content-length')).toBe(String(CONTENT.length));
    expect(res.headers.get('content-disposition')).toContain('n.bin');
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
  });

  it('nginx answers a Range with exactly those bytes (206)', async () => {
    const res = await fetch(base, { headers: { 'x-api-key': t.adminKey, range: 'bytes=1000-1999' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 1000-1999/${CONTENT.length}`);
    expect(Buffer.from(await res.arrayBuffer()).equals(CONTENT.subarray(1000, 2000))).toBe(true);
  });

  it('without credentials nothing is sent, and the internal location cannot be reached directly', async () => {
    expect((await fetch(base)).status).toBe(401);
    const res = await fetch(`${new URL(base).origin}${PREFIX}anything`);
    expect(res.status).toBe(404);
  });
});
