/**
 * Issue 10: every list takes `?limit=&cursor=`. Without them a list answers in full with the body both SDK generations
 * read (`{status, data}`, nothing added); with them one page in a stable order and a `Link` rel="next" while more
 * follow. Walking the pages visits every row exactly once even when rows are added meanwhile.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BackendContext, type Res, type TestServer, describeEachBackend } from '../helpers/server.js';

/** The next page's URL from a `Link: <…>; rel="next"` header (resolved against the request's URL), or undefined. */
function nextUrl(res: Res, requestUrl: string): string | undefined {
  const link = res.headers.get('link');
  if (!link) return undefined;
  const m = /^<([^>]*)>;\s*rel="next"$/.exec(link);
  expect(m, `Link header ${link}`).not.toBeNull();
  return new URL(m![1]!, requestUrl).toString();
}

describeEachBackend('list pagination', (b: BackendContext) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await b.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  /**
   * Walks a list from `first` (an absolute URL) page by page, calling `between` after each page but the last;
   * answers the pages' `data` item ids (`idOf`) in order and the page sizes.
   */
  async function walk(first: string, auth: { key?: string; dropzoneId?: string }, idOf: (x: any) => string, between?: (n: number) => Promise<void>) {
    const ids: string[] = [];
    const sizes: number[] = [];
    let url: string | undefined = first;
    for (let n = 0; url; n++) {
      expect(n, 'walk ends').toBeLessThan(100);
      const res = await t.req('GET', url, auth);
      expect(res.status, res.text).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['data', 'status']);
      ids.push(...res.body.data.map(idOf));
      sizes.push(res.body.data.length);
      url = nextUrl(res, url);
      if (url) await between?.(n);
    }
    return { ids, sizes };
  }

  it('files of a dropzone, both generations: full list without parameters, pages that visit every file once with uploads added between pages', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const initial: string[] = [];
    // several files per millisecond: ties in createdAt are ordered by id
    for (let i = 0; i < 7; i++) initial.push((await t.requestUpload({ key: t.adminKey }, dz._id, `f${i}.txt`, 3)).fileId);
    for (const [path, auth] of [
      [`/dropzones/${dz._id}/files`, { key: t.adminKey }],
      ['/files', { dropzoneId: dz._id }],
    ] as const) {
      const full = await t.req('GET', path, auth);
      expect(full.status).toBe(200);
      expect(Object.keys(full.body).sort()).toEqual(['data', 'status']);
      expect(full.headers.get('link')).toBeNull();
      const all = full.body.data.map((f: any) => f._id);
      expect([...all].sort()).toEqual([...new Set([...initial, ...all])].sort());

      const added: string[] = [];
      const { ids, sizes } = await walk(`${t.api}${path}?limit=3`, auth, (f) => f._id, async () => {
        t.clock.advance(1);
        added.push((await t.requestUpload({ key: t.adminKey }, dz._id, 'late.txt', 3)).fileId);
      });
      expect(new Set(ids).size, 'no file twice').toBe(ids.length);
      // every file that existed before the walk, and every one added during it (they sort after the cursor)
      for (const id of [...all, ...added]) expect(ids).toContain(id);
      expect(sizes.slice(0, -1).every((n) => n === 3)).toBe(true);
      // the same order as the full list
      const after = await t.req('GET', path, auth);
      expect(after.body.data.map((f: any) => f._id)).toEqual(ids);
    }
  });

  it('limit must be an integer from 1 to 1000; a bad cursor is a 400 naming it; the last page has no Link', async () => {
    const dz = await t.createDropzone(t.adminKey);
    await t.requestUpload({ key: t.adminKey }, dz._id, 'one.txt', 1);
    for (const limit of ['0', '1001', '-1', '1.5', 'abc', '', '1e3']) {
      const res = await t.req('GET', `/dropzones/${dz._id}/files?limit=${encodeURIComponent(limit)}`, { key: t.adminKey });
      expect(res.status, `limit=${limit}`).toBe(400);
      expect(res.body.message).toMatch(/"limit"/);
      expect(res.body.data?.field ?? res.body.field).toBe('limit');
    }
    for (const limit of ['1', '1000']) {
      const res = await t.req('GET', `/dropzones/${dz._id}/files?limit=${limit}`, { key: t.adminKey });
      expect(res.status, `limit=${limit}`).toBe(200);
      expect(res.body.data).toHaveLength(1);
      expect(res.headers.get('link'), 'one file: no next page').toBeNull();
    }
    const dzCursor = Buffer.from(JSON.stringify(['d', 1, 'x'])).toString('base64url');
    for (const cursor of ['not a cursor!', 'AAAA', Buffer.from('{}').toString('base64url'), dzCursor, 'x'.repeat(3000)]) {
      const res = await t.req('GET', `/dropzones/${dz._id}/files?cursor=${encodeURIComponent(cursor)}`, { key: t.adminKey });
      expect(res.status, `cursor=${cursor}`).toBe(400);
      expect(res.body.message).toMatch(/"cursor"/);
    }
    for (const path of ['/dropzones?limit=0', '/dropzones?cursor=zz', `/dropzones/${dz._id}/permissions?limit=5000`]) {
      expect((await t.req('GET', path, { key: t.adminKey })).status, path).toBe(400);
    }
  });

  it("dropzones of a key: full pages of what it may see, although other keys' dropzones lie between; all=true pages for the admin only", async () => {
    const me = await t.createKey([], 1000);
    const other = await t.createKey([], 1000);
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      mine.push((await t.createDropzone(me.secret, { gb: 1, days: 30 }))._id);
      for (let j = 0; j < 3; j++) await t.createDropzone(other.secret, { gb: 1, days: 30 });
    }
    const shared = await t.createDropzone(other.secret, { gb: 1, days: 30 });
    expect((await t.req('POST', `/dropzones/${shared._id}/permissions`, { key: other.secret, body: { publicId: me.publicId, permissions: ['dropzone.get'] } })).status).toBe(200);
    await t.createDropzone(other.secret, { gb: 1, days: 30 });

    const full = await t.req('GET', '/dropzones', { key: me.secret });
    expect(Object.keys(full.body).sort()).toEqual(['data', 'status']);
    expect(full.body.data.map((d: any) => d.code)).toHaveLength(6);
    const fullCodes = full.body.data.map((d: any) => d.code);
    const { ids, sizes } = await walk(`${t.api}/dropzones?limit=2`, { key: me.secret }, (d) => d.code);
    expect(ids).toEqual(fullCodes);
    expect(sizes).toEqual([2, 2, 2]);

    const everything = await t.req('GET', '/dropzones?all=true', { key: t.adminKey });
    const paged = await walk(`${t.api}/dropzones?all=true&limit=7`, { key: t.adminKey }, (d) => d.code);
    expect(paged.ids).toEqual(everything.body.data.map((d: any) => d.code));
    expect(paged.ids.length).toBeGreaterThan(20);
    expect((await t.req('GET', '/dropzones?all=true&limit=2', { key: me.secret })).status).toBe(403);
  });

  it('grants on a dropzone: `grants` paged in (grantee, permission) order, `data` unchanged', async () => {
    const dz = await t.createDropzone(t.adminKey);
    const grantees = [];
    for (let i = 0; i < 3; i++) grantees.push(await t.createKey([], 0));
    for (const g of grantees)
      expect((await t.req('POST', `/dropzones/${dz._id}/permissions`, { key: t.adminKey, body: { publicId: g.publicId, permissions: ['dropzone.get', 'dropzone.list'] } })).status).toBe(200);
    const full = await t.req('GET', `/dropzones/${dz._id}/permissions`, { key: t.adminKey });
    const flat = (grants: { publicId: string; permissions: string[] }[]) => grants.flatMap((g) => g.permissions.map((p) => `${g.publicId}:${p}`));
    const expected = flat(full.body.grants);
    expect(expected).toHaveLength(6);

    const seen: string[] = [];
    let url: string | undefined = `${t.api}/dropzones/${dz._id}/permissions?limit=4`;
    while (url) {
      const res = await t.req('GET', url, { key: t.adminKey });
      expect(res.status).toBe(200);
      expect(res.body.data).toEqual(full.body.data);
      seen.push(...flat(res.body.grants));
      url = nextUrl(res, url);
    }
    expect(seen).toEqual(expected);
    const one = await t.req('GET', `/dropzones/${dz._id}/permissions?publicId=${grantees[1]!.publicId}&limit=1`, { key: t.adminKey });
    expect(one.body.data).toEqual(['dropzone.get', 'dropzone.list']);
    expect(one.body.grants).toHaveLength(1);
  });
});
