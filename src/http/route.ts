import type { Context, Handler, Hono } from 'hono';
import { z } from 'zod';
import { AppError } from '../core/errors.js';
import type { Principal } from '../core/permissions.js';

/** Hono environment of the API: per-request principal and request id. */
export type AppEnv = {
  Variables: { principal: Principal; requestId: string };
};

/** Security schemes a route accepts (any one of them), as named in the OpenAPI document. */
export type SecurityScheme = 'ApiKeyAuth' | 'BearerAuth' | 'DropzoneAuth' | 'PageToken';

/** One documented response of a route. */
export interface ResponseSpec {
  description: string;
  /** JSON body schema; omitted for non-JSON bodies. */
  schema?: z.ZodType;
  /** Content type for non-JSON bodies (e.g. `application/octet-stream`). */
  contentType?: string;
}

/**
 * A route declared once: Hono registers it and the OpenAPI document is generated from the same object,
 * so the docs cannot drift from what is validated.
 */
export interface RouteDef<B extends z.ZodType | undefined = z.ZodType | undefined> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Hono path relative to the mount point, e.g. `/dropzones/:id`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** Accepted schemes; empty means no authentication. */
  security: SecurityScheme[];
  /** Query parameters, for the OpenAPI document only (the handler parses them). */
  query?: { name: string; description: string; schema: Record<string, unknown> }[];
  /** JSON request body schema; requests are validated against it (400 naming the field otherwise). */
  body?: B;
  /** Whether an empty body is acceptable (treated as `{}`). */
  bodyOptional?: boolean;
  /**
   * Also accept an XML body (`Content-Type: …xml`): turns its text into the value `body` then validates, or null when
   * it is not the expected document (VALIDATION). For S3-shaped clients such as Uppy 6's `signRequest`.
   */
  xmlBody?: (text: string) => unknown;
  responses: Record<number, ResponseSpec>;
  /** Also answer HEAD (Hono answers HEAD for GET routes automatically; this only documents it). */
  head?: boolean;
  handler: (c: Context<AppEnv>, body: B extends z.ZodType ? z.infer<B> : undefined) => Response | Promise<Response>;
}

/** Declares a route with its body type inferred. */
export function defineRoute<B extends z.ZodType | undefined = undefined>(def: RouteDef<B>): RouteDef<B> {
  return def;
}

/** A 200 answer whose JSON text is made already: the headers and body `c.json()` gives for the value it stands for. */
export function jsonText(c: Context, text: string): Response {
  return c.body(text, 200, { 'Content-Type': 'application/json' });
}

/** Maximum size of a JSON request body. */
export const MAX_JSON_BODY = 1024 * 1024;

/**
 * Reads and validates a JSON body. Throws PAYLOAD_TOO_LARGE (over {@link MAX_JSON_BODY}), INVALID_JSON,
 * or VALIDATION with `data.field` naming the first offending field.
 */
export async function readJsonBody<T extends z.ZodType>(c: Context, schema: T, optional: boolean): Promise<z.infer<T>> {
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > MAX_JSON_BODY) throw new AppError('PAYLOAD_TOO_LARGE', `JSON bodies are limited to ${MAX_JSON_BODY} bytes.`);
  const text = await readCappedText(c.req.raw, MAX_JSON_BODY);
  let value: unknown;
  if (text.trim() === '') {
    if (!optional) throw new AppError('VALIDATION', 'Request body is required (JSON object).', { field: null });
    value = {};
  } else {
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new AppError('INVALID_JSON', `Request body is not valid JSON: ${(e as Error).message}`);
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationError(parsed.error, 'body');
  return parsed.data;
}

/**
 * Reads an XML body (at most {@link MAX_JSON_BODY} bytes), turns it into a value with `convert` and validates that
 * against `schema`. Throws PAYLOAD_TOO_LARGE, or VALIDATION when `convert` answers null or the value is invalid.
 */
export async function readXmlBody<T extends z.ZodType>(c: Context, schema: T, convert: (text: string) => unknown): Promise<z.infer<T>> {
  const declared = Number(c.req.header('content-length') ?? '0');
  if (declared > MAX_JSON_BODY) throw new AppError('PAYLOAD_TOO_LARGE', `XML bodies are limited to ${MAX_JSON_BODY} bytes.`);
  const value = convert(await readCappedText(c.req.raw, MAX_JSON_BODY));
  if (value === null) throw new AppError('VALIDATION', 'Request body is not the expected XML document.', { field: null });
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationError(parsed.error, 'body');
  return parsed.data;
}

/**
 * Reads a request body as UTF-8, at most `limit` bytes: a chunked body (no Content-Length) is cut off as soon as it
 * exceeds the limit (PAYLOAD_TOO_LARGE) instead of being buffered whole.
 */
async function readCappedText(req: Request, limit: number): Promise<string> {
  if (!req.body) return '';
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw new AppError('PAYLOAD_TOO_LARGE', `JSON bodies are limited to ${limit} bytes.`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Turns a zod error into a VALIDATION AppError whose message names the field and the reason. */
export function validationError(err: z.ZodError, where: string): AppError {
  const issues = err.issues.map((i) => ({ field: i.path.join('.') || null, message: i.message }));
  const first = issues[0];
  const message = first.field ? `Invalid ${where}: "${first.field}" ${first.message}` : `Invalid ${where}: ${first.message}`;
  return new AppError('VALIDATION', message, { field: first.field, issues });
}

/** Registers every route on `app` under `base`, parsing and validating bodies first. */
export function mountRoutes(app: Hono<AppEnv>, base: string, routes: RouteDef[], wrap: (h: Handler<AppEnv>) => Handler<AppEnv> = (h) => h): void {
  for (const r of routes) {
    const path = base + r.path;
    const { body: schema, xmlBody } = r;
    // a route without a body is its own handler: no async frame around it
    const handler = !schema
      ? (c: Context<AppEnv>) => r.handler(c, undefined as never)
      : async (c: Context<AppEnv>) => {
          const xml = xmlBody && /[/+]xml\b/i.test(c.req.header('content-type') ?? '');
          const body = xml ? await readXmlBody(c, schema, xmlBody) : await readJsonBody(c, schema, r.bodyOptional ?? false);
          return r.handler(c, body as never);
        };
    app.on(r.method.toUpperCase(), path, wrap(handler));
  }
}

const SECURITY_SCHEMES = {
  ApiKeyAuth: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'An API key secret.' },
  BearerAuth: { type: 'http', scheme: 'bearer', description: 'The same API key secret as `Authorization: Bearer <secret>`.' },
  DropzoneAuth: {
    type: 'apiKey',
    in: 'header',
    name: 'x-dropzone-id',
    description: 'First generation: the dropzone `_id` itself grants access to that dropzone and its files. Can be turned off by the operator.',
  },
  PageToken: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'The dropzone page API (`/d/{code}/api/…`): the short-lived page token embedded in the page `/d/{code}`.',
  },
} as const;

/**
 * Statuses a route can answer whether or not it lists them, from what it is: authenticated (401), with a body
 * (400 invalid JSON or field, 413 over the size limit), with path parameters (404), and any route (500).
 */
function impliedResponses(r: RouteDef, authenticated: boolean, hasParams: boolean): Record<number, string> {
  const out: Record<number, string> = {};
  if (authenticated || r.security.length) out[401] = 'Missing or invalid credentials';
  if (r.body) {
    out[400] = 'Invalid JSON, or a field that fails validation (the message and data.field name it)';
    out[413] = `Request body larger than ${MAX_JSON_BODY} bytes`;
  }
  if (hasParams) out[404] = 'Not found, or not visible to the caller';
  out[500] = 'Internal error';
  return out;
}

/**
 * Builds the OpenAPI 3.1 document from the route definitions and named component schemas. Paths are absolute (they
 * include each group's base), so `serverUrl` is the site's origin. Groups marked `authenticated` pass through the auth
 * middleware, where wrong credentials are refused (401) even on public routes. Every operation also documents the
 * statuses implied by its shape (see {@link impliedResponses}), with `errorSchema` as body.
 */
export function buildOpenApi(opts: {
  title: string;
  version: string;
  serverUrl: string;
  routes: { base: string; defs: RouteDef[]; authenticated?: boolean }[];
  components: Record<string, z.ZodType>;
  errorSchema: z.ZodType;
}): Record<string, unknown> {
  const toSchema = (s: z.ZodType, io: 'input' | 'output') => {
    const json = z.toJSONSchema(s, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Record<string, unknown>;
    delete json.$schema;
    return json;
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const group of opts.routes) {
    for (const r of group.defs) {
      const oaPath = (group.base + r.path).replace(/:([A-Za-z_]+)(\{[^}]*\})?/g, '{$1}');
      const params: Record<string, unknown>[] = [...(group.base + r.path).matchAll(/:([A-Za-z_]+)/g)].map((m) => ({
        name: m[1],
        in: 'path',
        required: true,
        schema: { type: 'string' },
      }));
      const pathParams = params.length;
      for (const q of r.query ?? []) params.push({ name: q.name, in: 'query', required: false, description: q.description, schema: q.schema });
      const responses: Record<string, unknown> = {};
      const implied = Object.entries(impliedResponses(r, group.authenticated ?? false, pathParams > 0)).map(
        ([status, description]): [string, ResponseSpec] => [status, { description, schema: opts.errorSchema }],
      );
      const all: [string, ResponseSpec][] = [...Object.entries(r.responses), ...implied.filter(([status]) => !(status in r.responses))];
      for (const [status, spec] of all.sort(([a], [b]) => Number(a) - Number(b))) {
        responses[status] = {
          description: spec.description,
          ...(spec.schema
            ? { content: { 'application/json': { schema: toSchema(spec.schema, 'output') } } }
            : spec.contentType
              ? { content: { [spec.contentType]: { schema: { type: 'string', format: 'binary' } } } }
              : {}),
        };
      }
      paths[oaPath] ??= {};
      paths[oaPath][r.method] = {
        operationId: r.operationId,
        summary: r.summary,
        ...(r.description ? { description: r.description } : {}),
        tags: r.tags,
        ...(params.length ? { parameters: params } : {}),
        security: r.security.length ? r.security.map((s) => ({ [s]: [] })) : [{}],
        ...(r.body
          ? { requestBody: { required: !r.bodyOptional, content: { 'application/json': { schema: toSchema(r.body, 'input') } } } }
          : {}),
        responses,
      };
    }
  }
  const schemas: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(opts.components)) schemas[name] = toSchema(s, 'output');
  return {
    openapi: '3.1.0',
    info: { title: opts.title, version: opts.version },
    servers: [{ url: opts.serverUrl }],
    components: { securitySchemes: SECURITY_SCHEMES, schemas },
    paths,
  };
}
