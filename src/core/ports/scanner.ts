import type { Readable } from 'node:stream';

/** What a virus scanner answers for one file. */
export type ScanVerdict = { infected: false } | { infected: true; signature: string };

/**
 * A virus scanner (ClamAV's clamd, a command hook; `src/scan/`). `scan` reads `stream` (the file's confirmed bytes,
 * `size` long) and answers a verdict; it throws when it cannot tell (scanner down, error reply, bad exit code), and
 * stops, rejecting, when `signal` aborts (the timeout). It must not buffer the whole file in memory.
 */
export interface Scanner {
  /** Short name for logs (`clamd`, `command`). */
  readonly name: string;
  scan(input: { stream: Readable; size: number }, signal: AbortSignal): Promise<ScanVerdict>;
}
