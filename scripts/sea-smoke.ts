// Throwaway smoke entry for the SEA build (`node build.mjs --entry scripts/sea-smoke.ts`) until src/main.ts exists.
// Opens an in-memory better-sqlite3 database through loadSqliteBinding(), prints sqlite_version() and one asset.
import Database from 'better-sqlite3';
import { isSea, listAssets, readAsset } from '../src/runtime/assets.js';
import { loadSqliteBinding } from '../src/runtime/native-addon.js';

const t0 = performance.now();
const nativeBinding = loadSqliteBinding();
const db = new Database(':memory:', nativeBinding ? { nativeBinding: nativeBinding as never } : {});
const row = db.prepare('select sqlite_version() as v').get() as { v: string };
db.close();
const asset = readAsset(process.argv[2] ?? 'hello.txt');
console.log(JSON.stringify({
  node: process.version,
  sea: isSea(),
  binding: nativeBinding ? 'embedded' : 'node_modules',
  sqlite: row.v,
  asset: asset === null ? null : asset.toString('utf8').trim(),
  escape: readAsset('../package.json') === null ? 'rejected' : 'LEAKED',
  assets: listAssets(),
  ms: Math.round(performance.now() - t0),
}));
