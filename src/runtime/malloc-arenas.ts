/**
 * glibc gives every thread that allocates its own malloc arena (up to 8 per core). The server's file-system, hashing
 * and crypto threads each allocate and free buffers in theirs, and freed memory in the middle of an arena is not given
 * back: a 2 GiB multipart upload (hundreds of part requests, each opening, syncing and renaming files on those threads)
 * grew the resident memory by some 85 MiB against 38 MiB for one PUT of the same bytes; with two arenas it grows
 * like the single PUT (scripts/bench-multipart-rss.ts). The arena count is read once, when the process starts, from
 * `MALLOC_ARENA_MAX` — so the server re-executes itself in place (same pid, same arguments) with it set.
 */

/** The arena cap `serve` runs with when the operator set none. */
export const MALLOC_ARENA_CAP = 2;

type Execve = (file: string, args: string[], env: NodeJS.ProcessEnv) => never;

/**
 * Re-executes the running single executable with `MALLOC_ARENA_MAX` set, unless there is nothing to do: not Linux,
 * not the single executable (tests and `tsx` runs keep their process), the variable already set (by the operator, or by
 * this re-execution), no `process.execve` (Node < 22.15), or a socket handed over by systemd (`LISTEN_FDS`: its
 * descriptors must reach the server untouched). Returns only when it did not re-execute (or execve failed).
 */
export function capMallocArenas(isSingleExecutable: boolean, env: NodeJS.ProcessEnv = process.env): void {
  if (process.platform !== 'linux' || !isSingleExecutable) return;
  if (env.MALLOC_ARENA_MAX !== undefined || env.LISTEN_FDS !== undefined) return;
  const execve = (process as unknown as { execve?: Execve }).execve;
  if (typeof execve !== 'function') return;
  try {
    // a single executable's argv is [exe, exe, ...args]; exec'd again with [exe, ...args], Node adds the second entry
    execve.call(process, process.execPath, [process.execPath, ...process.argv.slice(2)], { ...env, MALLOC_ARENA_MAX: String(MALLOC_ARENA_CAP) });
  } catch {
    // runs as it is: only the memory figure differs
  }
}

/** True when `argv` (without the program) runs the server: `serve`, or flags only (serve is the default command). */
export function runsServer(argv: string[]): boolean {
  const [first] = argv;
  if (first === undefined) return true;
  if (['--help', '-h', 'help', '--version', '-v'].includes(first) || argv.includes('--help') || argv.includes('-h')) return false;
  return first === 'serve' || first.startsWith('-');
}
