import type { Server as HttpServer, ServerOptions } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createAdaptorServer } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Config } from '../config/schema.js';
import { PresetHeadersResponse } from './node-response.js';
import type { AppEnv } from './route.js';

/**
 * Node's HTTP timeouts for `config`: headers within `server.headersTimeoutSeconds`, and a total request cap only when
 * `server.requestTimeoutSeconds` is set (Node's own default, 300 s, would cut every longer upload with 408 although
 * an upload URL lives an hour). Timeouts are checked every quarter of the shortest one (at most every 30 s).
 */
export function httpServerOptions(config: Config): ServerOptions {
  const headersTimeout = config.server.headersTimeoutSeconds * 1000;
  const requestTimeout = config.server.requestTimeoutSeconds * 1000;
  const shortest = requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout;
  return {
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.floor(shortest / 4))),
    // request id and CORS headers join the answer's own when its head is written (src/http/node-response.ts)
    ServerResponse: PresetHeadersResponse,
  };
}

/**
 * The Node HTTP server (HTTPS with `tls`) answering with `app`, not yet listening, with the timeouts of `config`.
 * The server and its JIT warm-up (src/warm-up.ts) both use it, so the warm-up runs the same server code.
 */
export function createNodeServer(app: Hono<AppEnv>, config: Config, tls?: { cert: Buffer; key: Buffer }): HttpServer {
  const serverOptions = httpServerOptions(config);
  // download and ZIP bodies are piped from their Node stream to the socket by the response (src/http/node-body.ts)
  const fetch = app.fetch;
  const server = (
    tls
      ? createAdaptorServer({ fetch, createServer: createHttpsServer, serverOptions: { ...serverOptions, ...tls } })
      : createAdaptorServer({ fetch, serverOptions })
  ) as HttpServer;
  // No byte in either direction for this long while a request is in progress: the socket is closed (Node's default
  // when nobody listens for 'timeout'). Stalled uploads end here; slow but moving ones are never cut.
  server.timeout = config.server.idleTimeoutSeconds * 1000;
  return server;
}
