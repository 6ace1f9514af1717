/** How long upload URLs live: `uploads.urlTtlSeconds`, capped for S3 URLs that cannot be made conditional. */
import { afterEach, expect, it } from 'vitest';
import { UNCONDITIONAL_URL_TTL_SECONDS } from '../../src/core/files.js';
import { type BackendContext, type TestServer, describeEachBackend } from '../helpers/server.js';

describeEachBackend('upload URL lifetime', (b: BackendContext) => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const expiresOf = async (server: TestServer) => {
    const dz = await server.createDropzone(server.adminKey);
    const up = await server.requestUpload(server.adminKey, dz._id, 'a.txt', 3);
    return Number(new URL(up.signedUrl).searchParams.get('X-Amz-Expires'));
  };

  it('follows uploads.urlTtlSeconds', async () => {
    t = await b.start({ settings: { 'uploads.urlTtlSeconds': 1234 } });
    expect(await expiresOf(t)).toBe(1234);
  });

  it('is capped when S3 upload URLs cannot carry If-None-Match (the local store is unaffected)', async () => {
    t = await b.start({ settings: { 'uploads.urlTtlSeconds': 7200, 'storage.s3.conditionalWrites': false } });
    expect(await expiresOf(t)).toBe(b.name === 's3' ? UNCONDITIONAL_URL_TTL_SECONDS : 7200);
  });
});
