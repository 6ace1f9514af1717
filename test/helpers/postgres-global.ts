/**
 * Vitest globalSetup: offers ONE private PostgreSQL cluster per test run, started lazily. It starts nothing itself; it
 * listens on a loopback port (provided to the test files as `postgresControl`) and starts the cluster on the first
 * request from a test file that needs it (`freshPostgresDatabase` in `postgres.ts`), so a run without PostgreSQL tests
 * pays nothing. Teardown stops the cluster when it was started. `DROPZONE_TEST_PG=off` disables it (tests then skip
 * loudly, or fail in CI).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { type PostgresCluster, startPostgresCluster } from './postgres-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `http://127.0.0.1:<port>/cluster` answering `{ url }` or `{ skipped }`; '' when disabled. */
    postgresControl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.DROPZONE_TEST_PG === 'off') {
    project.provide('postgresControl', '');
    return async () => {};
  }
  let cluster: Promise<PostgresCluster> | undefined;
  const server = createServer((req, res) => {
    if (req.url !== '/cluster') {
      res.writeHead(404).end();
      return;
    }
    cluster ??= startPostgresCluster();
    cluster.then(
      (c) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: c.adminUrl })),
      (e: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ skipped: e instanceof Error ? e.message : String(e) })),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  project.provide('postgresControl', `http://127.0.0.1:${(server.address() as AddressInfo).port}/cluster`);
  return async () => {
    server.close();
    if (cluster) await (await cluster.catch(() => undefined))?.stop();
  };
}
