/**
 * Progress of several transfers at once, for `dropzone push` and `pull`: on a terminal one live bar per file
 * (bytes, percent, speed, ETA; drawn by cli-progress), otherwise plain lines that read well in a log.
 */
import { formatBytes } from '../util/units.js';
import cliProgress from 'cli-progress';
import type { CliIo, TerminalStream } from './common.js';

/** One file's transfer as the renderer shows it. */
export interface TransferView {
  /** The size is known (0 when it is not). */
  start(total: number): void;
  /** Bytes moved so far. */
  update(done: number): void;
  /** Finished; `note` completes the result line (e.g. the file id). */
  succeed(note: string): void;
  /** Failed with a message for the user. */
  fail(message: string): void;
}

/** Draws every transfer of one command; `stop()` once all have settled. */
export interface ProgressRenderer {
  item(label: string): TransferView;
  stop(): void;
}

/** Bytes per second over `ms`, as `1.2 MB/s` (`–` before any time passed). */
export function formatRate(bytes: number, ms: number): string {
  return ms > 0 ? `${formatBytes(Math.round((bytes * 1000) / ms))}/s` : '–';
}

/** `0.4s`, `12s`, `3m05s`. */
export function formatElapsed(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** `verb` is what a finished line says: `uploaded`, `downloaded`. */
export function createRenderer(io: CliIo, verb: string, now: () => number = Date.now): ProgressRenderer {
  return io.tty?.isTTY ? ttyRenderer(io, io.tty, verb, now) : plainRenderer(io, verb, now);
}

/**
 * Plain lines: one when a transfer starts, one at each quarter of a large file (1 MB and over), one when it ends;
 * failures on stderr.
 */
function plainRenderer(io: CliIo, verb: string, now: () => number): ProgressRenderer {
  return {
    item(label) {
      let total = 0;
      let t0 = now();
      let quarter = 0;
      return {
        start(t) {
          total = t;
          t0 = now();
          io.out(`${label}: ${verb.replace(/ed$/, 'ing')} ${total ? formatBytes(total) : '(size unknown)'}`);
        },
        update(done) {
          if (total < 1_000_000) return;
          const q = Math.floor((done * 4) / total);
          if (q > quarter && q < 4) {
            quarter = q;
            io.out(`${label}: ${q * 25}% (${formatBytes(done)} of ${formatBytes(total)}, ${formatRate(done, now() - t0)})`);
          }
        },
        succeed(note) {
          const ms = now() - t0;
          io.out(`${label}: ${verb} ${formatBytes(total)} in ${formatElapsed(ms)} (${formatRate(total, ms)})${note ? ` ${note}` : ''}`);
        },
        fail(message) {
          io.err(`${label}: FAILED: ${message}`);
        },
      };
    },
    stop() {},
  };
}

/** Live bars on a terminal; result lines are printed once the bars stop, so they never tangle with a redraw. */
function ttyRenderer(io: CliIo, tty: TerminalStream, verb: string, now: () => number): ProgressRenderer {
  const multi = new cliProgress.MultiBar({
    stream: tty as NodeJS.WritableStream,
    format: '{label} {bar} {percentage}% | {done} / {size} | {speed} | ETA {eta_formatted} {status}',
    barCompleteChar: '█',
    barIncompleteChar: '░',
    barsize: 24,
    hideCursor: false, // a Ctrl-C must never leave the user's cursor hidden
    clearOnComplete: false,
    autopadding: true,
    etaBuffer: 20,
    fps: 10,
  });
  const results: { ok: boolean; line: string }[] = [];
  const width = 24;
  const pad = (s: string) => (s.length > width ? `…${s.slice(-(width - 1))}` : s.padEnd(width));
  return {
    item(label) {
      let total = 0;
      let t0 = now();
      let bar: cliProgress.SingleBar | undefined;
      const payload = (done: number, status = '') => ({
        label: pad(label),
        done: formatBytes(done),
        size: total ? formatBytes(total) : '?',
        speed: formatRate(done, now() - t0),
        status,
      });
      return {
        start(t) {
          total = t;
          t0 = now();
          // cli-progress shows 0 of 0 as 0%; a bar of 1 for an empty file reaches 100% when it is done.
          bar = multi.create(Math.max(total, 1), 0, payload(0));
        },
        update(done) {
          bar?.update(Math.min(done, Math.max(total, 1)), payload(done));
        },
        succeed(note) {
          const ms = now() - t0;
          bar?.update(Math.max(total, 1), payload(total, 'done'));
          results.push({ ok: true, line: `${label}: ${verb} ${formatBytes(total)} in ${formatElapsed(ms)} (${formatRate(total, ms)})${note ? ` ${note}` : ''}` });
        },
        fail(message) {
          if (bar) bar.update(payload(bar.getProgress() * Math.max(total, 1), 'FAILED'));
          else bar = multi.create(1, 0, { ...payload(0), status: 'FAILED' });
          results.push({ ok: false, line: `${label}: FAILED: ${message}` });
        },
      };
    },
    stop() {
      multi.stop();
      for (const r of results) (r.ok ? io.out : io.err)(r.line);
    },
  };
}
