/**
 * Many nodes (issue 9): three `dropzone serve` processes on one PostgreSQL database and one S3 bucket (moto), with
 * requests spread round-robin over them. What must hold with any number of identical nodes: the flows of both API
 * generations work whichever node answers each step; invariants hold across nodes (room for 100 uploads gives exactly
 * 100 among 200 concurrent requests; a balance covering one transfer pays exactly one of 20); `kill -9` of a node
 * during uploads loses no confirmed file while the others keep serving; scheduled expiry runs once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOTO_CREDENTIALS, type MotoServer, createBucket, startMoto } from '../helpers/moto.js';
import { type FreshPostgresDatabase, freshPostgresDatabase } from '../helpers/postgres.js';
import { type Served, api, serve, stop, tsxMain } from './flow.js';

const NODES = 3;
const adminKey = `dzk_admin_${randomBytes(16).toString('hex')}`;

const pg = await freshPostgresDatabase('multi-node');
const skipped = 'skipped' in pg ? pg.skipped : undefined;

describe.skipIf(skipped)(`three nodes on one PostgreSQL and one S3 bucket${skipped ? ` (skipped: ${skipped})` : ''}`, () => {
  let moto: MotoServer;
  const nodes: Served[] = [];
  const dirs: string[] = [];
  let env: NodeJS.ProcessEnv;
  let turn = 0;
  /** The next live node, round-robin. */
  const next = () => {
    for (let i = 0; i < NODES; i++) {
      const n = nodes[turn++ % nodes.length];
      if (n.child.exitCode === null && n.child.signalCode === null) return n.url;
    }
    throw new Error('no live node');
  };

  const startNode = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dz-node-'));
    dirs.push(dir);
    const { cmd, args } = tsxMain(['serve']);
    return serve(cmd, args, { env: { ...env, DROPZONE_DATA_DIR: dir }, timeoutMs: 60_000 });
  };

  beforeAll(async () => {
    const m = await startMoto();
    if ('skipped' in m) throw new Error(`moto is needed for the multi-node test: ${m.skipped}`);
    moto = m;
    const bucket = `dz-${randomBytes(6).toString('hex')}`;
    await createBucket(moto.endpoint, bucket);
    env = {
      ...process.env,
      DROPZONE_DATABASE_URL: (pg as FreshPostgresDatabase).url,
      DROPZONE_STORAGE_BACKEND: 's3',
      DROPZONE_STORAGE_S3_ENDPOINT: moto.endpoint,
      DROPZONE_STORAGE_S3_BUCKET: bucket,
      DROPZONE_STORAGE_S3_FORCE_PATH_STYLE: 'true',
      DROPZONE_STORAGE_S3_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      DROPZONE_STORAGE_S3_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      DROPZONE_STORAGE_S3_DOWNLOAD_MODE: 'stream',
      DROPZONE_ADMIN_KEY: adminKey,
      DROPZONE_HOST: '127.0.0.1',
      DROPZONE_PORT: '0',
      DROPZONE_LOG_LEVEL: 'info',
      // sweep often, and allow dropzones that live a few seconds, to watch expiry happen
      DROPZONE_SWEEPER_INTERVAL_SECONDS: '0.5',
      DROPZONE_LIMITS_MIN_DAYS: '0.00001',
    };
    // the first start migrates; then two more start at once (the migrations are already there, or wait on the lock)
    nodes.push(await startNode());
    nodes.push(...(await Promise.all([startNode(), startNode()])));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => stop(n)));
    await moto?.stop();
    if (!('skipped' in pg)) await pg.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('both API generations and the page work with every step on another node', async () => {
    const created = await api(next(), 'POST', '/dropzones', { key: adminKey, body: { gb: 1, days: 30, name: 'rr' } });
    expect(created.status, created.text).toBe(201);
    const dz = created.body.data;
    // the same name on another node updates the same dropzone (unique per owner, in the database)
    const again = await api(next(), 'POST', '/dropzones', { key: adminKey, body: { gb: 1, days: 30, name: 'rr' } });
    expect(again.status).toBe(200);
    expect(again.body.data._id).toBe(dz._id);

    for (const legacy of [false, true]) {
      const bytes = randomBytes(200_000);
      const requested = legacy
        ? await api(next(), 'POST', '/files', { dropzoneId: dz._id, body: { name: 'a.bin', type: 'application/octet-stream', size: bytes.length } })
        : await api(next(), 'POST', `/dropzones/${dz._id}/files`, { key: adminKey, body: { name: 'a.bin', type: 'application/octet-stream', size: bytes.length } });
      expect(requested.status, requested.text).toBe(200);
      const up = requested.body.data;
      const put = await fetch(up.signedUrl, { method: 'PUT', headers: up.headers, body: bytes });
      expect(put.status).toBe(200);
      await put.arrayBuffer();
      const confirmed = legacy
        ? await api(next(), 'POST', `/files/${up.fileId}/confirm`, { dropzoneId: dz._id })
        : await api(next(), 'POST', `/files/${up.fileId}/confirm`, { key: adminKey });
      expect(confirmed.status, confirmed.text).toBe(200);
      const listed = legacy ? await api(next(), 'GET', '/files', { dropzoneId: dz._id }) : await api(next(), 'GET', `/dropzones/${dz._id}/files`, { key: adminKey });
      expect(listed.body.data.map((f: any) => f._id)).toContain(up.fileId);
      const res = await fetch(`${next()}/api/v1/files/${up.fileId}/download`, { headers: legacy ? { 'x-dropzone-id': dz._id } : { 'x-api-key': adminKey } });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    }

    // a key made on one node authenticates on the others; a page token minted on one node works on another
    const key = await api(next(), 'POST', '/apikeys', { key: adminKey, body: { permissions: ['apikey.create'] } });
    expect(key.status).toBe(201);
    for (let i = 0; i < NODES; i++) expect((await api(next(), 'GET', '/apikeys/me', { key: key.body.data.key })).status).toBe(200);
    const html = await (await fetch(`${next()}/d/${dz.code}`)).text();
    const token = JSON.parse(/<script[^>]*type="application\/json"[^>]*>([^<]*)<\/script>/.exec(html)![1]).token as string;
    for (let i = 0; i < NODES; i++) {
      const summary = await fetch(`${next()}/d/${dz.code}/api/summary`, { headers: { authorization: `Bearer ${token}` } });
      expect(summary.status).toBe(200);
    }
  });

  it('200 concurrent upload-URL requests over the three nodes against room for 100 give exactly 100', async () => {
    const dz = (await api(next(), 'POST', '/dropzones', { key: adminKey, body: { gb: 0.2, days: 30 } })).body.data;
    // each file costs its size + 1000 + name + type bytes: 100 of them fill 0.2 GB exactly
    const type = 'application/octet-stream';
    const size = 2_000_000 - 1000 - 'f.bin'.length - type.length;
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => api(next(), 'POST', `/dropzones/${dz._id}/files`, { key: adminKey, body: { name: 'f.bin', type, size } })),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(100);
    expect(answers.filter((a) => a.status === 413)).toHaveLength(100);
    const after = await api(next(), 'GET', `/dropzones/${dz._id}`, { key: adminKey });
    expect(after.body.data.usedSpace).toBe(after.body.data.maxSize);
  });

  it('20 concurrent transfers of a balance that covers one move it exactly once', async () => {
    const from = (await api(next(), 'POST', '/apikeys', { key: adminKey, body: { permissions: ['apikey.create'], gbMonths: 1 } })).body.data;
    const to = (await api(next(), 'POST', '/apikeys', { key: adminKey, body: { gbMonths: 0 } })).body.data;
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => api(next(), 'POST', `/apikeys/${to.publicId}/transfer-gbmonths`, { key: from.key, body: { gbMonths: 1 } })),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 402)).toHaveLength(19);
    expect((await api(next(), 'GET', '/apikeys/me', { key: from.key })).body.data.gbMonths).toBe(0);
    expect((await api(next(), 'GET', '/apikeys/me', { key: to.key })).body.data.gbMonths).toBe(1);
  });

  it('scheduled expiry runs once across the nodes', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      // 0.00003 days: about 2.6 s
      const r = await api(next(), 'POST', '/dropzones', { key: adminKey, body: { gb: 1, days: 0.00003 } });
      expect(r.status, r.text).toBe(201);
      ids.push(r.body.data._id);
    }
    const gone = async () => {
      for (const id of ids) if ((await api(next(), 'GET', `/dropzones/${id}`, { key: adminKey })).status !== 404) return false;
      return true;
    };
    for (let i = 0; i < 100 && !(await gone()); i++) await new Promise((r) => setTimeout(r, 200));
    expect(await gone()).toBe(true);
    await new Promise((r) => setTimeout(r, 1500)); // more sweeps on every node: none may count them again
    const expiredCounted = nodes
      .flatMap((n) => (n.stdout() + n.stderr()).split('\n'))
      .filter((l) => l.includes('"msg":"sweep"'))
      .reduce((sum, l) => sum + (JSON.parse(l).expiredDropzones ?? 0), 0);
    expect(expiredCounted).toBe(ids.length);
  });

  it('kill -9 of one node during uploads loses no confirmed file, and the other nodes keep serving', async () => {
    const dz = (await api(next(), 'POST', '/dropzones', { key: adminKey, body: { gb: 1, days: 30 } })).body.data;
    const victim = nodes[NODES - 1];
    const confirmed: { fileId: string; bytes: Buffer }[] = [];
    const one = async (i: number) => {
      const bytes = randomBytes(300_000 + i);
      // each upload goes to whichever node comes next, and retries on another node when one dies under it
      for (let attempt = 0; attempt < 5; attempt++) {
        try {
          const up = (await api(next(), 'POST', `/dropzones/${dz._id}/files`, { key: adminKey, body: { name: `k${i}.bin`, type: 'application/octet-stream', size: bytes.length } })).body.data;
          const put = await fetch(up.signedUrl, { method: 'PUT', headers: up.headers, body: bytes });
          await put.arrayBuffer();
          const c = await api(next(), 'POST', `/files/${up.fileId}/confirm`, { key: adminKey });
          if (c.status === 200) {
            confirmed.push({ fileId: up.fileId, bytes });
            return;
          }
        } catch {
          // the node died mid-request: try again elsewhere
        }
      }
    };
    const uploads = Array.from({ length: 24 }, (_, i) => one(i));
    await new Promise((r) => setTimeout(r, 150));
    victim.child.kill('SIGKILL');
    await Promise.all(uploads);
    expect(await victim.exited).toBe('SIGKILL');
    expect(confirmed.length).toBe(24);

    const listed = new Set((await api(next(), 'GET', `/dropzones/${dz._id}/files`, { key: adminKey })).body.data.filter((f: any) => f.meta.s3Status === 'uploaded').map((f: any) => f._id));
    for (const { fileId, bytes } of confirmed) {
      expect(listed.has(fileId)).toBe(true);
      const res = await fetch(`${next()}/api/v1/files/${fileId}/download`, { headers: { 'x-api-key': adminKey } });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });
});
