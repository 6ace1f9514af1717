/**
 * Owner-only files and directories, whatever the process umask: the data directory holds every upload and, in the
 * database, the signing secret, so nothing the server writes there may be readable by other local users.
 */
import fs from 'node:fs';

/** Mode of every directory the server creates for its data. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of every file the server creates for its data. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `dir` (and missing parents) with mode 0700. When it already exists and group or others can read, write
 * or enter it, it is left as it is and a warning for the operator is returned (undefined otherwise).
 */
export function ensurePrivateDir(dir: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    // mkdir's mode is filtered by the umask; a umask that removes owner bits must not leave it unusable either
    fs.chmodSync(dir, PRIVATE_DIR_MODE);
    return undefined;
  }
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) {
    return (
      `data directory ${dir} is readable by other users (mode ${(st.mode & 0o777).toString(8)}): it holds every upload and the ` +
      `signing secret; run chmod 700 on it`
    );
  }
  return undefined;
}

/**
 * Makes sure `file` exists with mode 0600: creates it empty when missing, tightens it when it exists with wider bits.
 * Used before SQLite opens a database: SQLite creates the `-wal` and `-shm` files with the mode of the database file.
 */
export function ensurePrivateFile(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', PRIVATE_FILE_MODE));
  tightenFile(file);
}

/** Sets an existing `file` to mode 0600 when group or others have any bit on it; a missing file is ignored. */
export function tightenFile(file: string): void {
  try {
    const st = fs.lstatSync(file);
    if (st.isFile() && (st.mode & 0o077) !== 0) fs.chmodSync(file, PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
