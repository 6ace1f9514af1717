/**
 * withLayers: a route's middleware composed into its one handler keeps Hono's compose semantics, and answers without a
 * promise when nothing in it waits.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { describe, expect, it } from 'vitest';
import { withLayers } from '../../src/http/pipeline.js';
import type { AppEnv } from '../../src/http/route.js';

const onError = (err: Error) => new Response(`error: ${err.message}`, { status: 500 });

/** A layer that records its name before and after the rest, handing back next()'s own promise when `passThrough`. */
function tracer(name: string, trace: string[], passThrough = false): MiddlewareHandler<AppEnv> {
  if (passThrough)
    return (_c, next) => {
      trace.push(name);
      return next();
    };
  return async (c, next) => {
    trace.push(`${name}>`);
    await next();
    trace.push(`<${name} ${c.res.status}`);
  };
}

function appWith(handler: Parameters<typeof withLayers>[1], layers: MiddlewareHandler<AppEnv>[]) {
  const app = new Hono<AppEnv>();
  app.get('/x', withLayers(layers, handler, onError));
  return app;
}

describe('withLayers', () => {
  it('answers synchronously when every layer hands back next() and the handler does not wait', async () => {
    const trace: string[] = [];
    const app = appWith((c) => c.json({ ok: true }), [tracer('a', trace, true), tracer('b', trace, true)]);
    const res = app.fetch(new Request('http://h/x'));
    expect(res).toBeInstanceOf(Response); // not a promise of one
    expect(await (res as Response).json()).toEqual({ ok: true });
    expect(trace).toEqual(['a', 'b']);
  });

  it('runs layers around an async handler in order, each seeing the answer after next()', async () => {
    const trace: string[] = [];
    const app = appWith(
      async (c) => {
        await new Promise((r) => setTimeout(r, 1));
        trace.push('handler');
        return c.text('done', 201);
      },
      [tracer('a', trace), tracer('b', trace, true), tracer('c', trace)],
    );
    const res = await app.fetch(new Request('http://h/x'));
    expect(res.status).toBe(201);
    expect(await res.text()).toBe('done');
    expect(trace).toEqual(['a>', 'b', 'c>', 'handler', '<c 201', '<a 201']);
  });

  it('runs the rest when a layer calls next() only after waiting, from any depth, layers above and below passing through', async () => {
    const trace: string[] = [];
    /** Waits, then runs the rest (as authentication does), and notes the answer it saw. */
    const late = (name: string): MiddlewareHandler<AppEnv> => async (c, next) => {
      trace.push(`${name}>`);
      await new Promise((r) => setTimeout(r, 1));
      await next();
      trace.push(`<${name} ${c.res.status}`);
    };
    const app = appWith(
      async (c) => {
        trace.push('handler');
        return c.text('late', 202);
      },
      [tracer('a', trace, true), late('x'), tracer('b', trace, true), late('y'), tracer('c', trace, true)],
    );
    const res = await app.fetch(new Request('http://h/x'));
    expect(res.status).toBe(202);
    expect(await res.text()).toBe('late');
    expect(trace).toEqual(['a', 'x>', 'b', 'y>', 'c', 'handler', '<y 202', '<x 202']);
    // and again, the same handler: nothing of one request's way down is left for the next
    trace.length = 0;
    expect((await app.fetch(new Request('http://h/x'))).status).toBe(202);
    expect(trace).toEqual(['a', 'x>', 'b', 'y>', 'c', 'handler', '<y 202', '<x 202']);
  });

  it('turns an error below a layer into the error answer that layer sees, thrown synchronously or not', async () => {
    for (const handler of [
      () => {
        throw new Error('sync boom');
      },
      async () => {
        throw new Error('async boom');
      },
    ]) {
      const trace: string[] = [];
      const res = await appWith(handler, [tracer('log', trace), tracer('pass', trace, true)]).fetch(new Request('http://h/x'));
      expect(res.status).toBe(500);
      expect(await res.text()).toMatch(/^error: (sync|async) boom$/);
      expect(trace).toEqual(['log>', 'pass', '<log 500']);
    }
  });

  it('lets a layer answer without calling next()', async () => {
    let reached = false;
    const deny: MiddlewareHandler<AppEnv> = (c) => Promise.resolve(c.text('no', 401));
    const res = await appWith(
      (c) => {
        reached = true;
        return c.text('yes');
      },
      [deny],
    ).fetch(new Request('http://h/x'));
    expect(res.status).toBe(401);
    expect(reached).toBe(false);
  });

  it('passes a throw that is not an Error on up as a rejection, as compose does', async () => {
    const layers: MiddlewareHandler<AppEnv>[] = [(_c, next) => next()];
    const handler = withLayers(
      layers,
      () => {
        throw 'not an error';
      },
      onError,
    );
    const app = new Hono<AppEnv>();
    let seen: unknown;
    app.onError((err) => {
      seen = err;
      return new Response('outer', { status: 500 });
    });
    app.get('/x', (c, next) => handler(c, next) as never);
    await expect(Promise.resolve(app.fetch(new Request('http://h/x')))).rejects.toBe('not an error');
    expect(seen).toBeUndefined();
  });
});
