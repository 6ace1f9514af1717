/**
 * `GET /api/v1/openapi.json`: OpenAPI 3.1 that a generated client can use — valid against the 3.1 schema, servers + path
 * reach every route, every status a route answers is documented with the error schema — and a path entry for every
 * mounted route (and no phantom ones).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

/** Every route the API mounts under /api/v1 (fixtures and the local upload endpoint live outside it). */
const MOUNTED: [string, string][] = [
  ['get', '/api/v1/apikeys/me'],
  ['post', '/api/v1/apikeys'],
  ['post', '/api/v1/apikeys/{publicId}/transfer-gbmonths'],
  ['post', '/api/v1/dropzones'],
  ['get', '/api/v1/dropzones'],
  ['get', '/api/v1/dropzones/{id}'],
  ['patch', '/api/v1/dropzones/{id}'],
  ['put', '/api/v1/dropzones/{id}'],
  ['delete', '/api/v1/dropzones/{id}'],
  ['get', '/api/v1/dropzones/{id}/files'],
  ['post', '/api/v1/dropzones/{id}/files'],
  ['get', '/api/v1/dropzones/{id}/zip'],
  ['get', '/api/v1/dropzones/{id}/permissions'],
  ['post', '/api/v1/dropzones/{id}/permissions'],
  ['delete', '/api/v1/dropzones/{id}/permissions'],
  ['get', '/api/v1/dropzone'],
  ['get', '/api/v1/files'],
  ['post', '/api/v1/files'],
  ['get', '/api/v1/files/{fileId}'],
  ['delete', '/api/v1/files/{fileId}'],
  ['post', '/api/v1/files/{fileId}/confirm'],
  ['post', '/api/v1/files/{fileId}/multipart'],
  ['post', '/api/v1/files/{fileId}/multipart/{uploadId}/sign'],
  ['get', '/api/v1/files/{fileId}/multipart/{uploadId}'],
  ['post', '/api/v1/files/{fileId}/multipart/{uploadId}/complete'],
  ['delete', '/api/v1/files/{fileId}/multipart/{uploadId}'],
  ['get', '/api/v1/files/{fileId}/download'],
  ['get', '/api/v1/files/{fileId}/permissions'],
  ['post', '/api/v1/files/{fileId}/permissions'],
  ['delete', '/api/v1/files/{fileId}/permissions'],
  ['get', '/api/v1/webhooks'],
  ['post', '/api/v1/webhooks'],
  ['get', '/api/v1/webhooks/{id}'],
  ['patch', '/api/v1/webhooks/{id}'],
  ['delete', '/api/v1/webhooks/{id}'],
  ['get', '/api/v1/webhooks/{id}/deliveries'],
  ['get', '/api/v1/cdn/{fileId}/download'],
  ['get', '/cdn/{fileId}/download'],
  ['get', '/d/{code}/api/summary'],
  ['post', '/d/{code}/api/uploads'],
  ['post', '/d/{code}/api/uploads/{fileId}/confirm'],
  ['post', '/d/{code}/api/uploads/{fileId}/multipart'],
  ['post', '/d/{code}/api/uploads/{fileId}/multipart/{uploadId}/sign'],
  ['get', '/d/{code}/api/uploads/{fileId}/multipart/{uploadId}'],
  ['post', '/d/{code}/api/uploads/{fileId}/multipart/{uploadId}/complete'],
  ['delete', '/d/{code}/api/uploads/{fileId}'],
  ['get', '/d/{code}/api/uploads/{fileId}'],
  ['get', '/d/{code}/api/files'],
];

describeEachBackend('OpenAPI document', (b: BackendContext) => {
  let t: TestServer;
  let doc: any;
  beforeAll(async () => {
    t = await b.start();
    const res = await t.req('GET', '/openapi.json');
    expect(res.status).toBe(200);
    doc = res.body;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is OpenAPI 3.1 with both security schemes and the component schemas', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toBeTruthy();
    // paths are absolute (/api/v1/…, /cdn/…, /d/…): the server is the origin, so servers + path is the URL
    expect(doc.servers[0].url).toBe(t.url);
    expect(doc.components.securitySchemes.ApiKeyAuth).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-api-key' });
    expect(doc.components.securitySchemes.DropzoneAuth).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-dropzone-id' });
    expect(doc.components.securitySchemes.BearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const s of ['Dropzone', 'FileItem', 'ApiKey', 'Error']) expect(doc.components.schemas[s], s).toBeDefined();
    expect(Object.keys(doc.components.schemas.Dropzone.properties)).toEqual(
      expect.arrayContaining(['_id', 'code', 'maxSize', 'usedSpace', 'deleteTime', 'uploadUrl', 'maxSizeGb', 'maxDurationDays']),
    );
  });

  it('has an entry for every mounted route, and each entry is mounted', async () => {
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    expect(documented.sort()).toEqual(MOUNTED.map(([m, p]) => `${m} ${p}`).sort());
    for (const [method, p] of MOUNTED) {
      const concrete = t.url + p.replace(/\{[^}]+\}/g, 'x');
      const res = await t.req(method.toUpperCase(), concrete, { key: t.adminKey, body: method === 'get' || method === 'delete' ? undefined : {} });
      expect(res.text, `${method} ${p} is not mounted`).not.toMatch(/No route for/);
      expect(res.status).not.toBe(500);
    }
  });

  it('request bodies are generated from the validating schemas; secured routes list their schemes', () => {
    const create = doc.paths['/api/v1/dropzones'].post;
    expect(create.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['gb', 'days']));
    expect(create.security).toEqual(expect.arrayContaining([{ ApiKeyAuth: [] }, { BearerAuth: [] }]));
    expect(doc.paths['/api/v1/files'].post.security).toEqual([{ DropzoneAuth: [] }]);
    expect(doc.paths['/api/v1/files/{fileId}'].get.security).toEqual(expect.arrayContaining([{ ApiKeyAuth: [] }, { DropzoneAuth: [] }]));
    const upload = doc.paths['/api/v1/dropzones/{id}/files'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(upload.properties).sort()).toEqual(['name', 'size', 'type']);
    expect(doc.paths['/api/v1/apikeys'].post.requestBody.required).toBe(false);
    for (const [method, p] of MOUNTED) expect(doc.paths[p][method].operationId, `${method} ${p}`).toBeTruthy();
    const ids = MOUNTED.map(([m, p]) => doc.paths[p][m].operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('the site-root public link /cdn/:fileId/download is mounted too (documented under /api/v1)', async () => {
    const res = await t.req('GET', '//cdn/nope/download');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ status: 'error', message: 'File not found.' });
  });

  it('validates against the OpenAPI 3.1 schema', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  /** Every operation of the document as [method, path, operation]. */
  const operations = () =>
    Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([p, ops]) => Object.entries(ops).map(([m, op]) => [m, p, op] as const));

  it('a client built from the document alone (servers + path + method) reaches a route for every operation', async () => {
    for (const [method, p] of operations()) {
      const url = doc.servers[0].url + p.replace(/\{[^}]+\}/g, 'x');
      const res = await fetch(url, { method: method.toUpperCase(), headers: { 'x-api-key': t.adminKey } });
      const body = await res.text();
      expect(body, `${method} ${url}`).not.toMatch(/ROUTE_NOT_FOUND|No route for/);
    }
  });

  it('every status an operation answers to missing or wrong credentials, a bad body or an unknown id is documented, with the error schema and a catalog code', async () => {
    const codes: string[] = doc.components.schemas.Error.properties.code.enum;
    expect(codes).toEqual(expect.arrayContaining(['VALIDATION', 'UNAUTHENTICATED', 'FILE_NOT_FOUND', 'INTERNAL']));
    for (const [method, p, op] of operations()) {
      const url = doc.servers[0].url + p.replace(/\{[^}]+\}/g, 'x');
      const tries: { what: string; headers: Record<string, string>; body?: string }[] = [
        { what: 'no credentials', headers: {} },
        { what: 'a wrong key', headers: { 'x-api-key': 'dzk_wrong' } },
        { what: 'a wrong page token', headers: { authorization: 'Bearer not-a-token' } },
        { what: 'an unknown id', headers: { 'x-api-key': t.adminKey } },
      ];
      if (op.requestBody) tries.push({ what: 'a bad body', headers: { 'x-api-key': t.adminKey, 'content-type': 'application/json' }, body: '{"size":"x"' });
      for (const tr of tries) {
        const res = await fetch(url, { method: method.toUpperCase(), headers: tr.headers, body: tr.body, redirect: 'manual' });
        const text = await res.text();
        const where = `${method} ${p} with ${tr.what} → ${res.status} ${text.slice(0, 200)}`;
        expect(Object.keys(op.responses), where).toContain(String(res.status));
        if (res.status >= 400 && (res.headers.get('content-type') ?? '').includes('json')) {
          const body = JSON.parse(text);
          expect(body.status, where).toBe('error');
          expect(codes, where).toContain(body.code);
          expect(op.responses[String(res.status)].content?.['application/json'], where).toBeDefined();
        }
      }
    }
  });

  it('error bodies carry the catalog code beside the message', async () => {
    const res = await t.req('POST', '/dropzones', { key: t.adminKey, body: { gb: 'x' } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status: 'error', code: 'VALIDATION', message: expect.stringContaining('gb') });
    expect((await t.req('GET', '/nope', { key: t.adminKey })).body).toMatchObject({ status: 'error', code: 'ROUTE_NOT_FOUND' });
  });
});
