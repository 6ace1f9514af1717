// HTTPS without a proxy (`server.tls.cert` / `server.tls.key`), reloaded on SIGHUP without dropping connections, and
// systemd socket activation (LISTEN_FDS). Certificates are made by openssl for each run; the client verifies them
// against the test's own CA.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Served, serve, stop, tsxMain } from '../e2e/flow.js';
import { freePort } from '../helpers/moto.js';

let tmp: string;
const running: Served[] = [];
const ADMIN = 'dzk_tls_test_admin_key_0123456789abcdef';

/** A CA, and server certificates `a` and `b` for 127.0.0.1 signed by it (distinguished by their CN). */
function makeCerts(dir: string) {
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=dropzone-test-ca');
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const name of ['a', 'b']) {
    ossl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=server-${name}`);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', 'san.ext');
  }
  return { ca: fs.readFileSync(path.join(dir, 'ca.pem')) };
}

/** A verifying HTTPS request; resolves with status, body and the CN of the certificate the server presented. */
function get(url: string, ca: Buffer, opts: { agent?: https.Agent; method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; body: string; cn: string }>((resolve, reject) => {
    const req = https.request(url, { ca, agent: opts.agent ?? false, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const cn = String((res.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '');
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, cn }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DROPZONE_')) env[k] = v;
  return { ...env, DROPZONE_ADMIN_KEY: ADMIN, ...extra };
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-tls-'));
});
afterAll(async () => {
  for (const s of running.splice(0)) await stop(s);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('HTTPS', () => {
  it('serves the API, signed URLs and the page over https; SIGHUP swaps the certificate without dropping connections', async () => {
    const { ca } = makeCerts(tmp);
    const cert = path.join(tmp, 'live.pem');
    const key = path.join(tmp, 'live.key');
    fs.copyFileSync(path.join(tmp, 'a.pem'), cert);
    fs.copyFileSync(path.join(tmp, 'a.key'), key);
    const { cmd, args } = tsxMain(['serve', '--ephemeral', '--port', '0', '--host', '127.0.0.1', '--set', `server.tls.cert=${cert}`, '--set', `server.tls.key=${key}`]);
    const s = await serve(cmd, args, { env: childEnv() });
    running.push(s);
    expect(s.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
    const first = await get(`${s.url}/healthz`, ca, { agent: keepAlive });
    expect(first).toMatchObject({ status: 200, cn: 'server-a' });

    // signed upload URLs and the page link use https, and the PUT verifies over TLS
    const json = { 'x-api-key': ADMIN, 'content-type': 'application/json' };
    const dz = JSON.parse((await get(`${s.url}/api/v1/dropzones`, ca, { method: 'POST', headers: json, body: '{"gb":1,"days":30}' })).body).data;
    expect(dz.uploadUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/d\//);
    const up = JSON.parse((await get(`${s.url}/api/v1/dropzones/${dz._id}/files`, ca, { method: 'POST', headers: json, body: '{"name":"a.txt","type":"text/plain","size":5}' })).body).data;
    expect(up.signedUrl).toMatch(/^https:\/\//);
    expect((await get(up.signedUrl, ca, { method: 'PUT', headers: up.headers, body: 'hello' })).status).toBe(200);
    expect((await get(`${s.url}/api/v1/files/${up.fileId}/confirm`, ca, { method: 'POST', headers: { 'x-api-key': ADMIN } })).status).toBe(200);
    expect((await get(dz.uploadUrl, ca)).status).toBe(200);

    // renew: new files, SIGHUP; new connections get the new certificate, the open one keeps working
    fs.copyFileSync(path.join(tmp, 'b.pem'), cert);
    fs.copyFileSync(path.join(tmp, 'b.key'), key);
    s.child.kill('SIGHUP');
    await expect.poll(() => s.stderr(), { timeout: 10_000 }).toContain('TLS certificate and key reloaded');
    expect((await get(`${s.url}/healthz`, ca)).cn).toBe('server-b');
    const reused = await get(`${s.url}/healthz`, ca, { agent: keepAlive });
    expect(reused).toMatchObject({ status: 200, cn: 'server-a' });
    keepAlive.destroy();

    // a broken renewal keeps the current certificate and says so
    fs.writeFileSync(key, 'not a key');
    s.child.kill('SIGHUP');
    await expect.poll(() => s.stderr(), { timeout: 10_000 }).toContain('TLS reload failed, keeping the current certificate');
    expect((await get(`${s.url}/healthz`, ca)).cn).toBe('server-b');
    expect(await stop(s)).toBe(0);
  });

  it('a certificate without its key is a configuration error naming the missing setting', () => {
    const { cmd, args } = tsxMain(['serve', '--ephemeral', '--port', '0', '--set', `server.tls.cert=${path.join(tmp, 'a.pem')}`]);
    const r = spawnSync(cmd, args, { env: childEnv(), encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('server.tls.key');
  });

  it('an unreadable certificate file stops the start with a message naming it', () => {
    const missing = path.join(tmp, 'nope.pem');
    const { cmd, args } = tsxMain(['serve', '--ephemeral', '--port', '0', '--set', `server.tls.cert=${missing}`, '--set', `server.tls.key=${missing}`]);
    const r = spawnSync(cmd, args, { env: childEnv(), encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`server.tls.cert: cannot read ${missing}`);
  });
});

describe('systemd socket activation', () => {
  it('listens on the socket passed as LISTEN_FDS=1 when LISTEN_PID is its own pid', async () => {
    const port = await freePort();
    const { cmd, args } = tsxMain(['serve', '--ephemeral', '--port', '1']);
    // python binds and listens like systemd, puts the socket at fd 3, sets LISTEN_PID to its own pid and execs the server
    const launcher = [
      'import os, socket, sys',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind(("127.0.0.1", ${port})); s.listen(64)`,
      'os.dup2(s.fileno(), 3); os.set_inheritable(3, True)',
      'os.environ["LISTEN_FDS"] = "1"; os.environ["LISTEN_PID"] = str(os.getpid())',
      'os.execvp(sys.argv[1], sys.argv[1:])',
    ].join('\n');
    const s = await serve('python3', ['-c', launcher, cmd, ...args], { env: childEnv() });
    running.push(s);
    expect(s.url).toBe(`http://127.0.0.1:${port}`);
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    expect(await stop(s)).toBe(0);
  });
});
