import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { ScanVerdict, Scanner } from '../core/ports/scanner.js';

/** The placeholder in `scan.command` replaced by the path of the file's temporary copy. */
export const PATH_PLACEHOLDER = '{path}';

/** Output kept from the command (the infected signature is its first stdout line). */
const MAX_OUTPUT = 4096;

/**
 * A scanner that runs `argv` (no shell) for each file. With `{path}` in an argument the bytes are first copied to a
 * private (0700 directory, 0600 file) temporary file whose path replaces the placeholder, and removed afterwards;
 * otherwise they are piped to the command's stdin. Exit code 0: clean; 1: infected, named by the first line of stdout
 * (`infected` when empty); anything else, a signal or a spawn error: the scan failed. The abort signal kills the command.
 */
export function createCommandScanner(argv: readonly string[]): Scanner {
  if (argv.length === 0) throw new Error('scan.command is empty');
  const usesPath = argv.some((a) => a.includes(PATH_PLACEHOLDER));
  return {
    name: 'command',
    async scan({ stream }: { stream: Readable; size: number }, signal: AbortSignal): Promise<ScanVerdict> {
      let dir: string | undefined;
      try {
        let args = argv.slice(1);
        if (usesPath) {
          dir = await mkdtemp(join(tmpdir(), 'dropzone-scan-'));
          const file = join(dir, 'file');
          await pipeline(stream, createWriteStream(file, { mode: 0o600, flags: 'wx' }), { signal });
          args = args.map((a) => a.split(PATH_PLACEHOLDER).join(file));
        }
        return await run(argv[0]!, args, usesPath ? undefined : stream, signal);
      } finally {
        stream.destroy();
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

function run(cmd: string, args: string[], stdin: Readable | undefined, signal: AbortSignal): Promise<ScanVerdict> {
  return new Promise<ScanVerdict>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], signal, killSignal: 'SIGKILL' });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      if (out.length < MAX_OUTPUT) out += d.toString('utf8');
    });
    child.stderr!.resume();
    if (stdin) {
      // the command may exit without reading everything (it decided already): that is not an error of ours
      child.stdin!.on('error', () => undefined);
      stdin.on('error', (err) => child.kill('SIGKILL') && reject(err));
      stdin.pipe(child.stdin!);
    }
    child.on('error', (err) => reject(signal.aborted ? (signal.reason ?? err) : new Error(`scan command: ${err.message}`)));
    child.on('close', (code, sig) => {
      if (signal.aborted) return reject(signal.reason ?? new Error('scan command aborted'));
      if (code === 0) return resolve({ infected: false });
      if (code === 1) return resolve({ infected: true, signature: out.split('\n')[0]!.trim().slice(0, 200) || 'infected' });
      reject(new Error(sig ? `scan command killed by ${sig}` : `scan command exited with ${code}`));
    });
  });
}
