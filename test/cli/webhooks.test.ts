/** `dropzone webhooks list|add|rm|deliveries`: a client command against a real in-process server with webhooks on. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/common.js';
import { main } from '../../src/main.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ settings: { 'webhooks.enabled': true, 'webhooks.allowTargets': ['127.0.0.1'] } });
});
afterAll(async () => {
  await t?.close();
});

/** Runs the CLI with the server's URL and `key`; answers the exit code and what it printed. */
async function run(key: string, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), env: { DROPZONE_URL: t.url, DROPZONE_API_KEY: key } };
  const code = await main(args, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

it('adds (secret shown once), lists, shows deliveries, removes; a refused target exits 1 naming it', async () => {
  const key = await t.createKey();
  const added = await run(key.secret, 'webhooks', 'add', 'http://127.0.0.1:9/hook', '--events', 'file.uploaded,file.deleted');
  expect(added.code, added.err).toBe(0);
  const id = /id:\s+(wh_\S+)/.exec(added.out)?.[1];
  const secret = /secret:\s+(whsec_\S+)/.exec(added.out)?.[1];
  expect(id).toBeDefined();
  expect(secret).toBeDefined();

  const listed = await run(key.secret, 'webhooks', 'list');
  expect(listed.code).toBe(0);
  expect(listed.out).toContain(`${id}\thttp://127.0.0.1:9/hook\tfile.uploaded,file.deleted`);
  expect(listed.out).not.toContain(secret!);
  const json = await run(key.secret, 'webhooks', 'list', '--json');
  expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ id, events: ['file.uploaded', 'file.deleted'] })]);

  expect((await run(key.secret, 'webhooks', 'deliveries', id!)).out).toBe('No delivery attempts yet.');
  expect((await run(key.secret, 'webhooks', 'deliveries', id!, '--limit', '0')).code).toBe(2);

  const refused = await run(key.secret, 'webhooks', 'add', 'http://10.0.0.1/hook');
  expect(refused.code).toBe(1);
  expect(refused.err).toMatch(/10\.0\.0\.1 is a private address/);

  expect((await run(key.secret, 'webhooks', 'rm', id!)).code).toBe(0);
  expect((await run(key.secret, 'webhooks', 'list')).out).toBe('No webhook subscriptions.');
  expect((await run(key.secret, 'webhooks', 'frobnicate')).code).toBe(2);
});
