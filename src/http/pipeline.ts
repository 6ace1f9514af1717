/**
 * Middleware run inside a route's own handler instead of as Hono `app.use` layers. Hono answers a route whose match is
 * one handler directly; a single `app.use` layer that also matches puts the request on its compose path (an async
 * dispatcher per layer and a wrapper around them), which measured 3–5 µs per request on a bare Hono route here, out of
 * ~30. The API routes, the hottest, are registered with their layers composed in (see src/app.ts).
 */
import type { Context, ErrorHandler, Handler, MiddlewareHandler } from 'hono';
import type { AppEnv } from './route.js';

type Layer = MiddlewareHandler<AppEnv>;
type RouteHandler = Handler<AppEnv>;

const DONE: Promise<void> = Promise.resolve();

/**
 * `handler` behind `layers`, as one handler, with Hono's compose semantics: each layer gets a `next()` that runs the
 * rest and resolves once `c.res` holds its answer; an error thrown below a layer becomes `onError`'s answer there, so
 * the layers above see an ordinary answer (the request log logs its status); a layer that returns a Response answers
 * with it. A layer that hands back `next()`'s own promise costs no extra promise, and when every layer does and the
 * handler answers without awaiting (the probes), the whole answer is synchronous: Hono and the Node adapter then write
 * it without a single promise hop.
 */
export function withLayers(layers: readonly Layer[], handler: RouteHandler, onError: ErrorHandler<AppEnv>): RouteHandler {
  const n = layers.length;
  /** `onError`'s answer to `err` becomes the answer; a throw that is not an Error goes on up, as in compose. */
  const fail = (c: Context<AppEnv>, err: unknown): Promise<void> | undefined => {
    if (!(err instanceof Error)) throw err;
    c.error = err;
    const res = onError(err, c);
    if (res instanceof Promise) return res.then((r) => void (c.res = r));
    c.res = res;
    return undefined;
  };
  // as compose does: whatever a layer or the handler returns is the answer, unless one is already set
  const settle = (c: Context<AppEnv>, res: unknown) => {
    if (res && !c.finalized) c.res = res as Response;
  };
  const settleLater = (c: Context<AppEnv>, p: Promise<unknown>) => p.then((res) => settle(c, res), (err) => fail(c, err));
  /** Runs layer `i` and everything below it; undefined when all of it finished synchronously. */
  const run = (c: Context<AppEnv>, i: number): Promise<void> | undefined => {
    let handed: Promise<void> | undefined;
    let below: Promise<void> | undefined;
    let out: unknown;
    try {
      out =
        i === n
          ? handler(c, () => DONE)
          : layers[i](c, () => {
              below = run(c, i + 1);
              return (handed = below ?? DONE);
            });
    } catch (err) {
      // a throw that is not an Error (as compose) leaves the pipeline: asynchronously, as any failure of the handler
      try {
        return fail(c, err);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    // the layer returned what next() returned: the rest already settled its answer and its errors
    if (out !== undefined && out === handed) return below;
    if (out instanceof Promise) return settleLater(c, out);
    settle(c, out);
    return undefined;
  };
  // an answer that took a promise is left in `c.res` and the promise resolves empty: Hono answers with `c.res` then
  // (its single-handler path), one promise fewer than resolving it with the Response
  return (c) => {
    const pending = run(c, 0);
    return pending === undefined ? c.res : pending;
  };
}
