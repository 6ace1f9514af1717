/**
 * First page of a dropzone's file list at 1k, 10k, 100k and 1M files, as ratios measured in one run (issue 10).
 *
 *   node --import tsx scripts/bench-list.ts [--sizes 1000,10000,100000,1000000] [--limit 100] [--runs 20] [--pg <postgres url>]
 *
 * For each store (SQLite; PostgreSQL too with --pg, which should name an empty database) it starts the server in
 * this process, grows one dropzone to each size by inserting file rows directly through the metadata port in
 * transactions of 5000, and times `GET /api/v1/dropzones/:id/files?limit=N` over HTTP (median of --runs, after a
 * warm-up). It prints each median and the ratio to the smallest size: flat paging keeps it near 1. Not part of
 * `npm test`; bare numbers are only for orientation on the machine it runs on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load.js';
import { startServer } from '../src/server.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000,1000000' },
    limit: { type: 'string', default: '100' },
    runs: { type: 'string', default: '20' },
    pg: { type: 'string' },
  },
});
const sizes = values.sizes!.split(',').map(Number);
const limit = Number(values.limit);
const runs = Number(values.runs);
const adminKey = `dzk_bench_${Date.now().toString(36)}`;

/** Median of `runs` timings (ms) of one GET, after two warm-up requests. */
async function timeFirstPage(url: string): Promise<number> {
  const once = async () => {
    const t0 = process.hrtime.bigint();
    const res = await fetch(url, { headers: { 'x-api-key': adminKey } });
    const body = (await res.json()) as { data: unknown[] };
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (res.status !== 200 || body.data.length !== Math.min(limit, body.data.length)) throw new Error(`unexpected answer ${res.status}`);
    return ms;
  };
  // the first request after a long insert may meet a kept-alive connection the server has just closed: retry that one
  await once().catch(() => once());
  await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function bench(store: string, databaseUrl: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dz-bench-list-'));
  const config = loadConfig({
    overrides: { 'server.port': 0, 'server.host': '127.0.0.1', dataDir: dir, 'database.url': databaseUrl, 'security.adminKey': adminKey, 'log.level': 'warn' },
  });
  const server = await startServer(config);
  try {
    const meta = server.app.ctx.meta;
    const created = await fetch(`${server.url}/api/v1/dropzones`, {
      method: 'POST',
      headers: { 'x-api-key': adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ gb: 4, days: 30 }),
    });
    const dz = ((await created.json()) as { data: { _id: string } }).data._id;
    const url = `${server.url}/api/v1/dropzones/${dz}/files?limit=${limit}`;
    const t0 = Date.now();
    let count = 0;
    const results: { size: number; ms: number }[] = [];
    for (const size of sizes) {
      while (count < size) {
        const n = Math.min(5000, size - count);
        await meta.transaction(async (tx) => {
          for (let i = 0; i < n; i++) {
            const id = `bench_${(count + i).toString().padStart(8, '0')}`;
            // spread over time, several per millisecond (ties in createdAt, as under load)
            await tx.insertFile({ id, dropzoneId: dz, name: `${id}.bin`, type: 'application/octet-stream', size: 1, blobKey: `bench/${id}`, uploaderKeyId: null, createdAt: t0 + Math.floor((count + i) / 4), pendingExpiresAt: t0 + 3_600_000 });
          }
        });
        count += n;
      }
      results.push({ size, ms: await timeFirstPage(url) });
    }
    const base = results[0]!.ms;
    for (const r of results)
      console.log(`${store}\t${String(r.size).padStart(8)} files\tfirst page (limit ${limit}): ${r.ms.toFixed(2)} ms\t×${(r.ms / base).toFixed(2)} of ${sizes[0]} files`);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await bench('sqlite', '');
if (values.pg) await bench('postgres', values.pg);
