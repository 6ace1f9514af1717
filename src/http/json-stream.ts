import type { Context } from 'hono';
import type { Logger } from '../log/logger.js';

/**
 * Answers `{"status":"success","data":[…]}` streamed batch by batch: each batch is presented and serialised on its own
 * and the next one is read only when the client wants more, so a long list neither blocks the event loop in one
 * synchronous stretch nor sits whole in memory. A failure after the first byte can only abort the response
 * (the client sees a truncated body); it is logged.
 */
export function streamJsonList<T>(c: Context, batches: AsyncIterable<T[]>, present: (item: T) => unknown, log: Logger): Response {
  const it = batches[Symbol.asyncIterator]();
  const encoder = new TextEncoder();
  let first = true;
  let started = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        let text = started ? '' : '{"status":"success","data":[';
        started = true;
        const next = await it.next();
        if (next.done) {
          controller.enqueue(encoder.encode(text + ']}'));
          controller.close();
          return;
        }
        for (const item of next.value) {
          text += (first ? '' : ',') + JSON.stringify(present(item));
          first = false;
        }
        controller.enqueue(encoder.encode(text));
      } catch (err) {
        log.error('list aborted', { err });
        controller.error(err);
      }
    },
    async cancel() {
      await it.return?.();
    },
  });
  return c.body(body, 200, { 'Content-Type': 'application/json' });
}
