/**
 * A file of `storage.reserveBytes` kept in the data directory so that a full disk can still be freed through the API:
 * SQLite needs a little space to commit a DELETE, and the blob can only go after its row. When a deletion fails
 * because the disk is full, the server releases the reserve and retries; the sweeper puts it back once the
 * filesystem has room for it twice over. An operator may also delete the file by hand in an emergency.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { SpaceReserve } from '../core/deps.js';
import { PRIVATE_FILE_MODE } from './private-files.js';

/** Name of the reserve file in the data directory. */
export const SPACE_RESERVE_FILE = 'space-reserve';

const CHUNK = 1024 * 1024;

/** Free bytes for unprivileged writers on the filesystem of `dir`, or undefined when it cannot be told. */
export function freeBytes(dir: string): number | undefined {
  try {
    const st = fs.statfsSync(dir);
    return st.bavail * st.bsize;
  } catch {
    return undefined;
  }
}

/** The reserve file `<dataDir>/space-reserve` of `bytes` bytes; 0 bytes turns it off (nothing is written). */
export function createSpaceReserve(dataDir: string, bytes: number): SpaceReserve {
  const file = path.join(dataDir, SPACE_RESERVE_FILE);
  const size = () => {
    try {
      return fs.statSync(file).size;
    } catch {
      return -1;
    }
  };
  return {
    bytes,
    held: () => bytes <= 0 || size() === bytes,
    release(): boolean {
      if (bytes <= 0 || size() < 0) return false;
      fs.rmSync(file, { force: true });
      return true;
    },
    async restore(): Promise<boolean> {
      if (bytes <= 0) return true;
      if (size() === bytes) return true;
      const free = freeBytes(dataDir);
      // leave at least as much again for everything else; a reserve must never be what fills the disk
      if (free === undefined || free < 2 * bytes + Math.max(0, size())) return false;
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        // written asynchronously: megabytes and an fsync must not stall requests
        const handle = await fsp.open(tmp, 'w', PRIVATE_FILE_MODE);
        try {
          const zeros = Buffer.alloc(Math.min(CHUNK, bytes));
          for (let written = 0; written < bytes; ) written += (await handle.write(zeros, 0, Math.min(zeros.length, bytes - written))).bytesWritten;
          await handle.sync();
        } finally {
          await handle.close();
        }
        await fsp.rename(tmp, file);
        return true;
      } catch {
        await fsp.rm(tmp, { force: true }).catch(() => undefined);
        return false;
      }
    },
  };
}
