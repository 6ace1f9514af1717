import { closeSync, existsSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { PRIVATE_FILE_MODE, tightenFile } from '../runtime/private-files.js';
import { openDataDir } from '../server.js';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, type CliIo, UsageError, configFrom, parse } from './common.js';

/** Help of `dropzone backup`. */
export const BACKUP_HELP = `Usage: dropzone backup <file> [options]

Writes a consistent copy of the database to <file> while the server keeps running (SQLite online backup).
The file is created owner-only (mode 0600): it holds the signing secret and key hashes.

Blobs are not in the database. With the local backend, copy <dataDir>/blobs after the database backup
(e.g. rsync -a data/blobs/ backup/blobs/, into a directory only you can read): blobs written in between are orphans that 'dropzone gc' removes
after a restore. With S3, rely on the bucket's versioning or replication.

Options:
      --force           overwrite <file> if it exists
${CONFIG_FLAGS_HELP}`;

/** `dropzone backup <file>`: exit 0 on success, 1 when the target exists (without --force), 2 on usage errors. */
export async function backupCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { ...CONFIG_FLAGS, force: { type: 'boolean' } }, true);
  if (values.help) {
    io.out(BACKUP_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('backup needs exactly one target file');
  const target = resolve(positionals[0]);
  if (existsSync(target) && !values.force) {
    io.err(`${target} exists; pass --force to overwrite it.`);
    return 1;
  }
  const config = configFrom(values, io);
  const db = openDataDir(config);
  try {
    // created owner-only before SQLite writes to it: a backup holds every secret the database does
    closeSync(openSync(target, 'w', PRIVATE_FILE_MODE));
    tightenFile(target);
    const { totalPages } = await db.backup(target);
    io.out(`Database backed up to ${target} (${totalPages} pages).`);
    io.out(config.storage.backend === 'local' ? `Now copy the blobs: ${resolve(config.dataDir, 'blobs')}` : `Blobs stay in bucket ${config.storage.s3.bucket}.`);
    return 0;
  } finally {
    db.close();
  }
}
