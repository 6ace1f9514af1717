/**
 * The bucket CORS rule the README asks S3 operators for, applied to a test server's moto bucket, so a page on
 * `origin` can PUT straight to the bucket and read the ETag of each part.
 */
import { PutBucketCorsCommand } from '@aws-sdk/client-s3';
import { motoClient } from './moto.js';
import type { TestServer } from './server.js';

/** Sets the README's CORS rule (for `origin`) on the bucket behind `t` (found from a presigned URL of `dzId`). */
export async function allowBrowserUploads(t: TestServer, dzId: string, origin: string): Promise<void> {
  const probe = await t.requestUpload(t.adminKey, dzId, 'cors-probe.bin', 1);
  const url = new URL(probe.signedUrl);
  const s3 = motoClient(url.origin);
  try {
    await s3.send(
      new PutBucketCorsCommand({
        Bucket: url.pathname.split('/')[1],
        CORSConfiguration: {
          CORSRules: [
            {
              AllowedOrigins: [origin],
              AllowedMethods: ['PUT', 'POST', 'DELETE', 'GET', 'HEAD'],
              AllowedHeaders: ['content-type', 'content-length', 'if-none-match'],
              ExposeHeaders: ['ETag'],
              MaxAgeSeconds: 3600,
            },
          ],
        },
      }),
    );
  } finally {
    s3.destroy();
  }
  await t.req('DELETE', `/files/${probe.fileId}`, { key: t.adminKey });
}
