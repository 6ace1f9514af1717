/**
 * Response bodies piped from a Node stream straight to the socket. A handler answers with {@link nodeStreamResponse}:
 * a bodiless Response carrying status and headers (so every middleware sees and decorates it as usual) while the stream
 * is parked on the request's Node response (the server's {@link PresetHeadersResponse}); once the adapter has written
 * that answer's head and ends the response, the stream is piped into the socket with backpressure — no web-stream
 * conversion, no per-chunk promise. Outside the server (`app.request()` in tests) the stream is wrapped as a web stream
 * instead.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'hono';
import { markChunksDisposable } from '../blobs/durable-writer.js';
import { fileBodyOf, sendFileBody } from '../blobs/file-body.js';
import { PresetHeadersResponse } from './node-response.js';

/**
 * An answer whose body is `stream`, sent by piping it to the socket (see the module comment). `init.headers` must
 * carry the Content-Length when it is known. The stream is destroyed if the answer ends up being another one (an error
 * thrown later, a 304) or the client goes away first.
 */
export function nodeStreamResponse(c: Context, stream: Readable, init: { status: number; headers: Record<string, string> }): Response {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!(outgoing instanceof PresetHeadersResponse)) return new Response(Readable.toWeb(stream) as ReadableStream, init);
  outgoing.parkBody(
    (res) => send(stream, res),
    () => stream.destroy(),
  );
  return new Response(null, init);
}

/** Sends `stream` as the body of `res`, whose head is written, and ends it. */
function send(stream: Readable, res: ServerResponse): void {
  // a failed read cuts the transfer short (the client sees fewer bytes than Content-Length); a client that goes away
  // destroys the file stream, which closes the file
  const file = fileBodyOf(stream);
  if (file) {
    // a range of an open file: copied through buffers of the pool (see file-body.ts); the stream only closes the file
    sendFileBody(file, res).then(
      () => stream.destroy(),
      (err: unknown) => {
        res.destroy(err as Error);
        stream.destroy();
      },
    );
  } else pipeline(stream, res).catch(() => undefined);
}

/** A request body handed to a store: see {@link requestBody}. */
export interface RequestBody {
  /** What the store reads. */
  stream: Readable;
  /** Reads and discards what the client still sends (after the store gave up), so the answer can still be sent. */
  discardRest(): Promise<void>;
}

/**
 * The request body of `c` as a Node stream for a store to read: Node's request itself under `@hono/node-server` (no
 * web-stream layers, no per-chunk promise), the web body otherwise, read through a pipe. The pipe lets a store destroy
 * what it reads on failure while the request itself stays alive, so an error (a full disk, a size mismatch) can still
 * be answered; a client abort fails the stream. `onData` (optional) sees each chunk as it arrives, beside the pipe
 * rather than as another stream layer.
 */
export function requestBody(c: Context, onData?: () => void): RequestBody {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const source = incoming ?? (c.req.raw.body ? Readable.fromWeb(c.req.raw.body as never) : Readable.from([]));
  const piped = source.pipe(new PassThrough());
  // the parser's chunks are copies nobody else keeps: the writer frees each one once copied (not so for a web body,
  // whose chunks may be the caller's own buffers)
  if (incoming) markChunksDisposable(piped);
  // pipe() forwards no failure: a client that aborts must still fail the reader
  source.once('error', (err) => piped.destroy(err));
  source.once('close', () => source.readableEnded || piped.destroy(new Error('the request body was aborted')));
  // once the reader has stopped (it failed first), a late client abort would be an unhandled 'error' on piped: it is
  // the client's abort, already answered
  piped.on('error', () => undefined);
  if (onData) source.on('data', onData);
  return {
    stream: piped,
    discardRest() {
      source.unpipe(piped);
      return new Promise((resolve) => {
        if (source.destroyed || source.readableEnded) return resolve();
        source.once('end', resolve).once('error', () => resolve()).once('close', resolve);
        source.resume();
      });
    },
  };
}
