/** Starting on an S3 bucket that cannot be reached fails with a message naming the endpoint and the bucket. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { startServer } from '../../src/server.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

it('refuses to start when the S3 endpoint is unreachable, naming endpoint and bucket', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'dz-s3-start-'));
  dirs.push(dataDir);
  const endpoint = `http://127.0.0.1:${await closedPort()}`;
  const config = loadConfig({
    overrides: {
      dataDir,
      'server.host': '127.0.0.1',
      'server.port': 0,
      'log.level': 'silent',
      'storage.backend': 's3',
      'storage.s3.endpoint': endpoint,
      'storage.s3.bucket': 'missing-bucket',
      'storage.s3.forcePathStyle': true,
      'storage.s3.accessKeyId': 'test',
      'storage.s3.secretAccessKey': 'test',
    },
  });
  const err = await startServer(config).then(
    () => null,
    (e: Error) => e,
  );
  expect(err).toBeInstanceOf(Error);
  expect(err!.message).toContain(endpoint);
  expect(err!.message).toContain('missing-bucket');
  expect(err!.message).toMatch(/unreachable/i);
});
