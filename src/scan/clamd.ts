import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { ScanVerdict, Scanner } from '../core/ports/scanner.js';

/** Where clamd listens: its local socket, or a TCP address. */
export type ClamdAddress = { socket: string } | { host: string; port: number };

/** Largest chunk sent in one INSTREAM frame (clamd reads frames of any size up to its StreamMaxLength). */
const MAX_CHUNK = 64 * 1024;
/** A reply longer than this is not clamd's: the connection is dropped. */
const MAX_REPLY = 4096;

/**
 * Parses clamd's reply to INSTREAM (without its terminating NUL): `stream: OK` is clean, `stream: <name> FOUND` infected;
 * anything else (`… ERROR`, e.g. `INSTREAM size limit exceeded. ERROR`) throws.
 */
export function parseClamdReply(reply: string): ScanVerdict {
  const text = reply.replace(/\0+$/, '').trim();
  if (/^(?:\d+: )?stream: OK$/.test(text)) return { infected: false };
  const found = /^(?:\d+: )?stream: (.+) FOUND$/.exec(text);
  if (found) return { infected: true, signature: found[1]! };
  throw new Error(`clamd: ${text.slice(0, 200) || 'empty reply'}`);
}

/**
 * A scanner that talks to clamd with the INSTREAM command (clamd(8)): `zINSTREAM\0`, then the bytes as frames of a
 * 4-byte big-endian length and that many bytes, ended by a zero-length frame; clamd answers one NUL-terminated line.
 * The file is streamed frame by frame with the socket's backpressure honoured, so memory stays bounded whatever its
 * size. clamd may answer (and close) before the end, e.g. when StreamMaxLength is exceeded: the reply decides.
 */
export function createClamdScanner(address: ClamdAddress): Scanner {
  return {
    name: 'clamd',
    scan({ stream }: { stream: Readable; size: number }, signal: AbortSignal): Promise<ScanVerdict> {
      return new Promise<ScanVerdict>((resolve, reject) => {
        const sock: Socket = 'socket' in address ? connect(address.socket) : connect(address.port, address.host);
        const chunks: Buffer[] = [];
        let replyBytes = 0;
        let settled = false;
        const finish = (err: Error | undefined, verdict?: ScanVerdict) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          stream.destroy();
          sock.destroy();
          if (err) reject(err);
          else resolve(verdict!);
        };
        const onAbort = () => finish(signal.reason instanceof Error ? signal.reason : new Error('clamd scan aborted'));
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });

        const reply = () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const end = text.indexOf('\0');
          return end >= 0 ? text.slice(0, end) : undefined;
        };
        sock.on('data', (d: Buffer) => {
          chunks.push(d);
          replyBytes += d.length;
          const line = reply();
          if (line !== undefined) {
            try {
              finish(undefined, parseClamdReply(line));
            } catch (err) {
              finish(err as Error);
            }
          } else if (replyBytes > MAX_REPLY) finish(new Error('clamd: reply too long'));
        });
        // clamd answers and closes early on a limit (EPIPE on our side): its reply, read on close, is what counts
        let sockError: Error | undefined;
        sock.on('error', (err) => {
          sockError = err;
        });
        sock.on('close', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (text) {
            try {
              return finish(undefined, parseClamdReply(text));
            } catch (err) {
              return finish(err as Error);
            }
          }
          finish(new Error(`clamd: ${sockError?.message ?? 'closed the connection without a reply'}`));
        });
        stream.on('error', (err) => finish(err));

        const write = (buf: Buffer) => (sock.writable ? sock.write(buf) : true);
        sock.once('connect', async () => {
          try {
            write(Buffer.from('zINSTREAM\0', 'latin1'));
            for await (const data of stream as AsyncIterable<Buffer>) {
              for (let off = 0; off < data.length; off += MAX_CHUNK) {
                const piece = data.subarray(off, off + MAX_CHUNK);
                const len = Buffer.alloc(4);
                len.writeUInt32BE(piece.length, 0);
                write(len);
                if (!write(piece) && !settled) await drained(sock);
                if (settled) return;
              }
            }
            write(Buffer.alloc(4)); // the zero-length frame: end of stream
          } catch (err) {
            finish(err as Error);
          }
        });
      });
    },
  };
}

/** Resolves when `sock` can take more bytes again, or has closed. */
function drained(sock: Socket): Promise<void> {
  return new Promise<void>((res) => {
    const done = () => {
      sock.off('drain', done);
      sock.off('close', done);
      res();
    };
    sock.on('drain', done);
    sock.on('close', done);
  });
}
