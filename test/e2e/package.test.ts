// The npm package as a user gets it: `npm pack`, install the tarball into an empty project with plain Node (no tsx,
// no TypeScript), then (a) the `dropzone` bin serves and answers, (b) a plain .mjs file imports `startServer` from
// 'dropzone-server' and drives the fixture endpoints. Installing compiles better-sqlite3 from the registry package
// (about a minute on 2 cores).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, api, serve, stop } from './flow.js';

const INSTALL_TIMEOUT_MS = 10 * 60_000;

describe('the npm package', () => {
  let work: string;
  let project: string;
  let files: string[] = [];
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'dz-pkg-'));
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 })) as {
      filename: string;
      files: { path: string }[];
    }[];
    files = packed[0].files.map((f) => f.path);
    project = path.join(work, 'app');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'uses-dropzone', private: true, type: 'module' }));
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, packed[0].filename)], {
      cwd: project,
      encoding: 'utf8',
      timeout: INSTALL_TIMEOUT_MS - 30_000,
    });
    if (r.status !== 0) throw new Error(`npm install of the packed tarball failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }, INSTALL_TIMEOUT_MS);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('ships compiled JavaScript, type declarations, the page assets and no sources or tests', () => {
    expect(files).toEqual(expect.arrayContaining(['lib/index.js', 'lib/index.d.ts', 'lib/bin.js', 'lib/runtime/vendor-assets.json', 'public/page.html', 'public/docs.html', 'public/docs.js', 'package.json']));
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('`dropzone serve --ephemeral --fixture --port 0` from the installed bin answers with the package version', async () => {
    const bin = path.join(project, 'node_modules', '.bin', 'dropzone');
    expect(execFileSync(bin, ['version'], { encoding: 'utf8' })).toContain(`dropzone-server ${version}`);
    const s = await serve(bin, ['serve', '--ephemeral', '--fixture', '--port', '0', '--host', '127.0.0.1'], { cwd: project, waitForAdminKey: true });
    try {
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      const me = await api(s.url, 'GET', '/apikeys/me', { key: s.adminKey });
      expect(me.status).toBe(200);
      const doc = await api(s.url, 'GET', '/openapi.json');
      expect(doc.body.info.version).toBe(version);
      // The API reference's vendor files resolve from the installing project's node_modules (swagger-ui-dist).
      expect((await fetch(`${s.url}/api/docs`)).status).toBe(200);
      const bundle = await fetch(`${s.url}/assets/vendor/swagger-ui-dist/swagger-ui-bundle.js`);
      expect(bundle.status).toBe(200);
      const installed = path.join(project, 'node_modules', 'swagger-ui-dist', 'swagger-ui-bundle.js');
      expect(Buffer.from(await bundle.arrayBuffer()).equals(fs.readFileSync(installed))).toBe(true);
    } finally {
      expect(await stop(s)).toBe(0);
    }
  });

  it('a plain .mjs file uses startServer() and the fixture reset and clock', () => {
    const script = `
      import { startServer } from 'dropzone-server';
      const s = await startServer({ settings: { 'limits.maxGb': 10 } });
      const call = (method, p, body) => fetch(s.url + p, {
        method,
        headers: { 'x-api-key': s.adminKey, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: await r.json() }));
      const out = {};
      out.created = (await call('POST', '/api/v1/dropzones', { gb: 10, days: 30 })).status;
      const dz = (await call('GET', '/api/v1/dropzones')).body.data;
      out.before = dz.length;
      out.clock = (await call('POST', '/__fixture/clock', { advanceMs: 31 * 86400000 })).body.data.swept.expiredDropzones;
      out.reset = (await call('POST', '/__fixture/reset', {})).status;
      out.after = (await call('GET', '/api/v1/dropzones')).body.data.length;
      await s.close();
      console.log(JSON.stringify(out));
    `;
    fs.writeFileSync(path.join(project, 'fixture.mjs'), script);
    const r = spawnSync(process.execPath, ['fixture.mjs'], { cwd: project, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ created: 201, before: 1, clock: 1, reset: 200, after: 0 });
  });
});
