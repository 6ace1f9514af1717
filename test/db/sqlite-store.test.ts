import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openDatabase } from '../../src/db/database.js';
import { createSqliteStore } from '../../src/db/sqlite-store.js';
import { metadataStoreContract } from './metadata-store-contract.js';

// a file database in WAL mode, as the server opens it; `another` opens a second connection to the same file
metadataStoreContract('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dz-meta-'));
  const file = path.join(dir, 'dropzone.db');
  const store = createSqliteStore(openDatabase(file));
  return {
    store,
    async another() {
      return createSqliteStore(openDatabase(file));
    },
    async teardown() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
