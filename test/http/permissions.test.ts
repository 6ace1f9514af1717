/**
 * The permission matrix: for every dropzone and file permission, the endpoint it unlocks, tried by the owner,
 * a grantee holding it, a grantee holding only another permission, another key, `anyone` and no key at all.
 * 401 without credentials, 404 when the resource is invisible, 403 when visible but not allowed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

interface World {
  owner: { secret: string; publicId: string };
  grantee: { secret: string; publicId: string };
  other: { secret: string; publicId: string };
  dzId: string;
  fileId: string;
  content: string;
}

type Call = { method: string; path: string; body?: unknown };
interface Row {
  perm: string;
  /** Another permission of the same kind that gives visibility but does not imply `perm`. */
  otherPerm: string;
  call: (w: World) => Call;
  /** Status when allowed. */
  ok: number;
  /** Anonymous callers (an `anyone` grant, no key) are refused with 401 here although the grant exists. */
  needsKey?: boolean;
}

const DZ_ROWS: Row[] = [
  { perm: 'dropzone.get', otherPerm: 'dropzone.zip', ok: 200, call: (w) => ({ method: 'GET', path: `/dropzones/${w.dzId}` }) },
  { perm: 'dropzone.list', otherPerm: 'dropzone.zip', ok: 200, call: (w) => ({ method: 'GET', path: `/dropzones/${w.dzId}/files` }) },
  { perm: 'dropzone.update', otherPerm: 'dropzone.get', ok: 200, needsKey: true, call: (w) => ({ method: 'PATCH', path: `/dropzones/${w.dzId}`, body: { days: 31 } }) },
  { perm: 'dropzone.zip', otherPerm: 'dropzone.get', ok: 200, call: (w) => ({ method: 'GET', path: `/dropzones/${w.dzId}/zip` }) },
  {
    perm: 'dropzone.grant',
    otherPerm: 'dropzone.get',
    ok: 200,
    needsKey: true,
    call: (w) => ({ method: 'POST', path: `/dropzones/${w.dzId}/permissions`, body: { publicId: w.other.publicId, permissions: ['dropzone.grant'] } }),
  },
  { perm: 'dropzone.upload', otherPerm: 'dropzone.get', ok: 200, call: (w) => ({ method: 'POST', path: `/dropzones/${w.dzId}/files`, body: { name: 'x', type: 'text/plain', size: 1 } }) },
  { perm: 'dropzone.download', otherPerm: 'dropzone.get', ok: 200, call: (w) => ({ method: 'GET', path: `/files/${w.fileId}/download` }) },
  { perm: 'dropzone.own', otherPerm: 'dropzone.get', ok: 200, needsKey: true, call: (w) => ({ method: 'DELETE', path: `/dropzones/${w.dzId}` }) },
];

const FILE_ROWS: Row[] = [
  { perm: 'file.get', otherPerm: 'file.download', ok: 200, call: (w) => ({ method: 'GET', path: `/files/${w.fileId}` }) },
  {
    perm: 'file.grant',
    otherPerm: 'file.get',
    ok: 200,
    needsKey: true,
    call: (w) => ({ method: 'POST', path: `/files/${w.fileId}/permissions`, body: { publicId: w.other.publicId, permissions: ['file.grant'] } }),
  },
  { perm: 'file.upload.confirm', otherPerm: 'file.get', ok: 200, call: (w) => ({ method: 'POST', path: `/files/${w.fileId}/confirm` }) },
  { perm: 'file.delete', otherPerm: 'file.get', ok: 200, call: (w) => ({ method: 'DELETE', path: `/files/${w.fileId}` }) },
  { perm: 'file.download', otherPerm: 'file.get', ok: 200, call: (w) => ({ method: 'GET', path: `/files/${w.fileId}/download` }) },
  { perm: 'file.own', otherPerm: 'file.get', ok: 200, call: (w) => ({ method: 'DELETE', path: `/files/${w.fileId}` }) },
];

const LABEL_WORLD = { dzId: ':id', fileId: ':fileId', other: { publicId: ':publicId' } } as World;

type Who = 'owner' | 'grantee' | 'granteeOther' | 'otherKey' | 'anyoneNoKey' | 'anyoneOtherKey' | 'noKey';
const WHO: Who[] = ['owner', 'grantee', 'granteeOther', 'otherKey', 'anyoneNoKey', 'anyoneOtherKey', 'noKey'];

describeEachBackend('permission matrix', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A fresh world per cell: the calls may be destructive (delete, grant). */
  async function world(): Promise<World> {
    const owner = await t.createKey([], 50);
    const grantee = await t.createKey([], 50);
    const other = await t.createKey([], 50);
    const dz = await t.createDropzone(owner.secret, { gb: 1, days: 30 });
    const content = `bytes of ${dz._id}`;
    const { fileId } = await t.upload(owner.secret, dz._id, 'f.txt', content, 'text/plain');
    return { owner, grantee, other, dzId: dz._id, fileId, content };
  }

  const grant = async (w: World, kind: 'dropzone' | 'file', publicId: string, perms: string[]) => {
    const path = kind === 'dropzone' ? `/dropzones/${w.dzId}/permissions` : `/files/${w.fileId}/permissions`;
    const res = await t.req('POST', path, { key: w.owner.secret, body: { publicId, permissions: perms } });
    expect(res.status, `grant ${perms} to ${publicId}: ${res.text}`).toBe(200);
  };

  const expected = (row: Row, who: Who): number => {
    switch (who) {
      case 'owner':
      case 'grantee':
      case 'anyoneOtherKey':
        return row.ok;
      case 'granteeOther':
        return 403;
      case 'otherKey':
        return 404;
      case 'anyoneNoKey':
        return row.needsKey ? 401 : row.ok;
      case 'noKey':
        return 401;
    }
  };

  for (const [kind, rows] of [['dropzone', DZ_ROWS], ['file', FILE_ROWS]] as const) {
    describe(`${kind} permissions`, () => {
      for (const row of rows) {
        for (const who of WHO) {
          const label = row.call(LABEL_WORLD);
          it(`${row.perm} → ${label.method} ${label.path}: ${who} gets ${expected(row, who)}`, async () => {
            const w = await world();
            let key: string | undefined;
            if (who === 'owner') key = w.owner.secret;
            if (who === 'grantee') {
              await grant(w, kind, w.grantee.publicId, [row.perm]);
              key = w.grantee.secret;
            }
            if (who === 'granteeOther') {
              await grant(w, kind, w.grantee.publicId, [row.otherPerm]);
              key = w.grantee.secret;
            }
            if (who === 'otherKey') key = w.other.secret;
            if (who === 'anyoneNoKey' || who === 'anyoneOtherKey') await grant(w, kind, 'anyone', [row.perm]);
            if (who === 'anyoneOtherKey') key = w.other.secret;
            const c = row.call(w);
            const res = await t.req(c.method, c.path, { key, body: c.body });
            expect(res.status, res.text.slice(0, 300)).toBe(expected(row, who));
            if (res.status >= 400) expect(res.body).toMatchObject({ status: 'error', message: expect.any(String) });
            if (c.path.endsWith('/download') && res.status === 200) expect(res.text).toBe(w.content);
          });
        }
      }
    });
  }

  it('x-dropzone-id grants the first-generation capabilities but not update, grant or own', async () => {
    const w = await world();
    const o = { dropzoneId: w.dzId };
    expect((await t.req('GET', `/dropzones/${w.dzId}`, o)).status).toBe(200);
    expect((await t.req('GET', `/dropzones/${w.dzId}/files`, o)).status).toBe(200);
    expect((await t.req('GET', `/dropzones/${w.dzId}/zip`, o)).status).toBe(200);
    expect((await t.req('GET', `/files/${w.fileId}/download`, o)).status).toBe(200);
    // granting needs an API key: x-dropzone-id alone is not enough
    expect((await t.req('POST', `/dropzones/${w.dzId}/permissions`, { ...o, body: { publicId: 'anyone', permissions: ['dropzone.get'] } })).status).toBe(401);
    expect((await t.req('DELETE', `/dropzones/${w.dzId}`, o)).status).toBe(401);
    expect((await t.req('PATCH', `/dropzones/${w.dzId}`, { ...o, body: { days: 40 } })).status).toBe(401);
    expect((await t.req('DELETE', `/files/${w.fileId}`, o)).status).toBe(200);
  });

  it('own implies every other permission of its kind', async () => {
    const w = await world();
    await grant(w, 'dropzone', w.grantee.publicId, ['dropzone.own']);
    const dzPerms = await t.req('GET', `/dropzones/${w.dzId}/permissions`, { key: w.grantee.secret });
    expect(dzPerms.body.data.sort()).toEqual(DZ_ROWS.map((r) => r.perm).sort());
    const filePerms = await t.req('GET', `/files/${w.fileId}/permissions`, { key: w.grantee.secret });
    expect(filePerms.body.data.sort()).toEqual(FILE_ROWS.map((r) => r.perm).sort());

    const w2 = await world();
    await grant(w2, 'file', w2.grantee.publicId, ['file.own']);
    const fp = await t.req('GET', `/files/${w2.fileId}/permissions`, { key: w2.grantee.secret });
    expect(fp.body.data.sort()).toEqual(FILE_ROWS.map((r) => r.perm).sort());
    // file.own does not reach the dropzone
    expect((await t.req('GET', `/dropzones/${w2.dzId}`, { key: w2.grantee.secret })).status).toBe(404);
  });

  it('the uploader owns its file; the dropzone owner owns files uploaded by others', async () => {
    const w = await world();
    await grant(w, 'dropzone', w.grantee.publicId, ['dropzone.upload']);
    const mine = await t.upload(w.grantee.secret, w.dzId, 'mine.txt', 'uploaded by the grantee');
    const perms = await t.req('GET', `/files/${mine.fileId}/permissions`, { key: w.grantee.secret });
    expect(perms.body.data).toContain('file.own');
    expect((await t.req('GET', `/files/${mine.fileId}/download`, { key: w.grantee.secret })).text).toBe('uploaded by the grantee');
    // the grantee can share its own file, but not the owner's file
    expect((await t.req('POST', `/files/${mine.fileId}/permissions`, { key: w.grantee.secret, body: { publicId: w.other.publicId, permissions: ['file.get'] } })).status).toBe(200);
    expect((await t.req('GET', `/files/${mine.fileId}`, { key: w.other.secret })).status).toBe(200);
    expect((await t.req('DELETE', `/files/${w.fileId}`, { key: w.grantee.secret })).status).toBe(403);
    // the dropzone owner owns the grantee's file
    const ownerView = await t.req('GET', `/files/${mine.fileId}/permissions`, { key: w.owner.secret });
    expect(ownerView.body.data).toContain('file.own');
    expect((await t.req('DELETE', `/files/${mine.fileId}`, { key: w.owner.secret })).status).toBe(200);
  });

  it('only owners can grant or revoke own; a grantee cannot grant what it does not hold', async () => {
    const w = await world();
    await grant(w, 'dropzone', w.grantee.publicId, ['dropzone.grant', 'dropzone.get']);
    const own = await t.req('POST', `/dropzones/${w.dzId}/permissions`, { key: w.grantee.secret, body: { publicId: w.other.publicId, permissions: ['dropzone.own'] } });
    expect(own.status).toBe(403);
    expect(own.body.message).toMatch(/dropzone\.own/);
    const notHeld = await t.req('POST', `/dropzones/${w.dzId}/permissions`, { key: w.grantee.secret, body: { publicId: w.other.publicId, permissions: ['dropzone.upload'] } });
    expect(notHeld.status).toBe(403);
    const ok = await t.req('POST', `/dropzones/${w.dzId}/permissions`, { key: w.grantee.secret, body: { publicId: w.other.publicId, permissions: ['dropzone.get'] } });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toEqual(['dropzone.get']);

    await grant(w, 'file', w.grantee.publicId, ['file.grant']);
    const fown = await t.req('POST', `/files/${w.fileId}/permissions`, { key: w.grantee.secret, body: { publicId: w.other.publicId, permissions: ['file.own'] } });
    expect(fown.status).toBe(403);

    // the owner can grant own, and the new owner may delete
    await grant(w, 'dropzone', w.other.publicId, ['dropzone.own']);
    const revokeOwn = await t.req('DELETE', `/dropzones/${w.dzId}/permissions`, { key: w.grantee.secret, body: { publicId: w.other.publicId, permissions: ['dropzone.own'] } });
    expect(revokeOwn.status).toBe(403);
    expect((await t.req('DELETE', `/dropzones/${w.dzId}`, { key: w.other.secret })).status).toBe(200);
  });

  it('unknown permission names are 400 on grant and revoke, for both kinds', async () => {
    const w = await world();
    for (const [path, names] of [
      [`/dropzones/${w.dzId}/permissions`, ['dropzone.fly']],
      [`/dropzones/${w.dzId}/permissions`, ['file.get']],
      [`/files/${w.fileId}/permissions`, ['file.fly']],
      [`/files/${w.fileId}/permissions`, ['dropzone.get']],
      [`/files/${w.fileId}/permissions`, ['file.get', 'nope']],
    ] as const) {
      for (const method of ['POST', 'DELETE']) {
        const res = await t.req(method, path, { key: w.owner.secret, body: { publicId: w.grantee.publicId, permissions: names } });
        expect(res.status, `${method} ${path} ${names}`).toBe(400);
        expect(res.body.message).toContain(names[names.length - 1]);
      }
    }
    // nothing was granted by the mixed list
    expect((await t.req('GET', `/files/${w.fileId}`, { key: w.grantee.secret })).status).toBe(404);
  });

  it('SDK 0.3 body {apiKey, permissions} names the grantee by its secret', async () => {
    const w = await world();
    const res = await t.req('POST', `/dropzones/${w.dzId}/permissions`, { key: w.owner.secret, body: { apiKey: w.grantee.secret, permissions: ['dropzone.get'] } });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual(['dropzone.get']);
    expect(JSON.stringify(res.body)).not.toContain(w.grantee.secret);
    expect((await t.req('GET', `/dropzones/${w.dzId}`, { key: w.grantee.secret })).status).toBe(200);
    const rev = await t.req('DELETE', `/dropzones/${w.dzId}/permissions`, { key: w.owner.secret, body: { apiKey: w.grantee.secret, permissions: ['dropzone.get'] } });
    expect(rev.body.data).toEqual([]);
    expect((await t.req('GET', `/dropzones/${w.dzId}`, { key: w.grantee.secret })).status).toBe(404);
    const unknown = await t.req('POST', `/dropzones/${w.dzId}/permissions`, { key: w.owner.secret, body: { publicId: 'pk_nobody', permissions: ['dropzone.get'] } });
    expect(unknown.status).toBe(404);
  });

  it('GET /dropzones lists own and shared dropzones only', async () => {
    const w = await world();
    const own2 = await t.createDropzone(w.grantee.secret, { gb: 0.2, days: 30 });
    const ids = async (k: string) => (await t.req('GET', '/dropzones', { key: k })).body.data.map((d: any) => d._id);
    expect(await ids(w.grantee.secret)).toEqual([own2._id]);
    await grant(w, 'dropzone', w.grantee.publicId, ['dropzone.get']);
    // a grantee sees the shared dropzone by its shareId: the _id is a credential only owners get
    const shareId = (await t.req('GET', `/dropzones/${w.dzId}`, { key: w.owner.secret })).body.data.shareId;
    expect((await ids(w.grantee.secret)).sort()).toEqual([own2._id, shareId].sort());
    expect(await ids(w.other.secret)).toEqual([]);
    expect(await ids(w.owner.secret)).toEqual([w.dzId]);
    // the admin key lists its own dropzones like anyone else; every dropzone only on request, and only for the admin
    expect(await ids(t.adminKey)).not.toContain(w.dzId);
    const all = await t.req('GET', '/dropzones?all=true', { key: t.adminKey });
    expect(all.body.data.map((d: any) => d._id)).toEqual(expect.arrayContaining([w.dzId, own2._id]));
    expect((await t.req('GET', '/dropzones?all=true', { key: w.owner.secret })).status).toBe(403);
    expect((await t.req('GET', '/dropzones?all=yes', { key: t.adminKey })).status).toBe(400);
  });

  it('DELETE /dropzones/:id is for owners only and removes the blobs', async () => {
    const w = await world();
    await grant(w, 'dropzone', w.grantee.publicId, ['dropzone.get', 'dropzone.list', 'dropzone.upload', 'dropzone.download', 'dropzone.grant', 'dropzone.update', 'dropzone.zip']);
    expect((await t.req('DELETE', `/dropzones/${w.dzId}`, { key: w.grantee.secret })).status).toBe(403);
    expect((await t.req('DELETE', `/dropzones/${w.dzId}`, { key: w.other.secret })).status).toBe(404);
    expect((await t.req('DELETE', `/dropzones/${w.dzId}`)).status).toBe(401);
    const before = await t.blobKeys();
    expect((await t.req('DELETE', `/dropzones/${w.dzId}`, { key: w.owner.secret })).status).toBe(200);
    const after = await t.blobKeys();
    expect(after).toHaveLength(before.length - 1);
    expect((await t.req('GET', `/files/${w.fileId}`, { key: w.owner.secret })).status).toBe(404);
  });

  it('GET /cdn/:fileId/download: 404 without an anyone grant, 200 with file.download or dropzone.download for anyone', async () => {
    const w = await world();
    expect((await t.req('GET', `//cdn/${w.fileId}/download`)).status).toBe(404);
    // a grant to a key is not public
    await grant(w, 'file', w.grantee.publicId, ['file.download']);
    expect((await t.req('GET', `//cdn/${w.fileId}/download`)).status).toBe(404);
    expect((await t.req('GET', `//cdn/nonexistent/download`)).status).toBe(404);
    await grant(w, 'file', 'anyone', ['file.download']);
    const r1 = await t.req('GET', `//cdn/${w.fileId}/download`);
    expect(r1.status).toBe(200);
    expect(r1.text).toBe(w.content);

    const w2 = await world();
    await grant(w2, 'dropzone', 'anyone', ['dropzone.download']);
    const r2 = await t.req('GET', `//cdn/${w2.fileId}/download`);
    expect(r2.status).toBe(200);
    expect(r2.text).toBe(w2.content);
    // pending files are never public
    const pending = await t.requestUpload(w2.owner.secret, w2.dzId, 'p.txt', 3);
    expect((await t.req('GET', `//cdn/${pending.fileId}/download`)).status).toBe(404);
  });
});
