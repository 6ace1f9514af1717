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
 * with it. A layer that hands back `next()`'s own promise costs no extra promise.
 */
export function withLayers(layers: readonly Layer[], handler: RouteHandler, onError: ErrorHandler<AppEnv>): RouteHandler {
  const n = layers.length;
  const fail = async (c: Context<AppEnv>, err: unknown): Promise<void> => {
    if (!(err instanceof Error)) throw err;
    c.error = err;
    c.res = await onError(err, c);
  };
  // as compose does: whatever a layer or the handler returns is the answer, unless one is already set
  const settle = (c: Context<AppEnv>, res: unknown) => {
    if (res && !c.finalized) c.res = res as Response;
  };
  const run = (c: Context<AppEnv>, i: number): Promise<void> => {
    let downstream: Promise<void> | undefined;
    let out: unknown;
    try {
      out = i === n ? handler(c, () => DONE) : layers[i](c, () => (downstream = run(c, i + 1)));
    } catch (err) {
      return fail(c, err);
    }
    // the layer returned what next() returned: the rest already settled its answer and its errors
    if (out !== undefined && out === downstream) return downstream;
    if (out instanceof Promise) return out.then((res) => settle(c, res), (err) => fail(c, err));
    settle(c, out);
    return DONE;
  };
  return (c) => run(c, 0).then(() => c.res);
}
