import type { Context } from 'hono';
import { AppError } from '../core/errors.js';
import { DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from '../core/paging.js';

/**
 * Paging of list endpoints: `?limit=&cursor=`. Without either, a list answers in full (what both SDK generations
 * read); with either, one page in the list's stable order, and when more rows follow a `Link: <…>; rel="next"`
 * header whose target is this request with the next cursor (a relative reference, so it holds behind proxies). The
 * body keeps its shape either way. A cursor is opaque to clients: base64url of the last row's key, tagged with the
 * list it belongs to.
 */

/** What a cursor positions in: dropzones and files by (createdAt, id), grants by (principal, permission). */
export type CursorKind = 'dropzone' | 'file' | 'grant';

type KeyOf<K extends CursorKind> = K extends 'grant' ? { principal: string; permission: string } : { createdAt: number; id: string };

/** A page request: at most `limit` rows after `after` (from the start without it). */
export interface PageRequest<K> {
  limit: number;
  after?: K;
}

/** The query parameters of every paged list, for the OpenAPI document. */
export const pageQuery = [
  { name: 'limit', description: `Rows per page, 1 to ${MAX_PAGE_LIMIT} (${DEFAULT_PAGE_LIMIT} when only a cursor is given). Without limit and cursor the whole list is answered.`, schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE_LIMIT } },
  { name: 'cursor', description: 'Where the page starts: the cursor of the previous page’s `Link: <…>; rel="next"` header.', schema: { type: 'string' } },
];

const TAG: Record<CursorKind, string> = { dropzone: 'd', file: 'f', grant: 'g' };

/** The opaque cursor for `key` in a list of `kind`. */
export function encodeCursor<K extends CursorKind>(kind: K, key: KeyOf<K>): string {
  const parts = 'principal' in key ? [key.principal, key.permission] : [key.createdAt, key.id];
  return Buffer.from(JSON.stringify([TAG[kind], ...parts])).toString('base64url');
}

/** The key in `cursor`, or VALIDATION (400, field `cursor`) when it is not a cursor of a `kind` list. */
export function decodeCursor<K extends CursorKind>(kind: K, cursor: string): KeyOf<K> {
  const bad = () => new AppError('VALIDATION', `Invalid query: "cursor" is not a cursor of this list (use the one from the previous page's Link rel="next" header).`, { field: 'cursor' });
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw bad();
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(v) || v.length !== 3 || v[0] !== TAG[kind] || typeof v[2] !== 'string') throw bad();
  if (kind === 'grant') {
    if (typeof v[1] !== 'string') throw bad();
    return { principal: v[1], permission: v[2] } as KeyOf<K>;
  }
  if (!Number.isSafeInteger(v[1])) throw bad();
  return { createdAt: v[1] as number, id: v[2] } as KeyOf<K>;
}

/**
 * The page the request asks for, or undefined when it gives neither `limit` nor `cursor` (the full list). Throws
 * VALIDATION (400) for a `limit` that is not an integer from 1 to {@link MAX_PAGE_LIMIT} and for a bad cursor.
 */
export function pageRequest<K extends CursorKind>(c: Context, kind: K): PageRequest<KeyOf<K>> | undefined {
  const rawLimit = c.req.query('limit');
  const cursor = c.req.query('cursor');
  if (rawLimit === undefined && cursor === undefined) return undefined;
  let limit = DEFAULT_PAGE_LIMIT;
  if (rawLimit !== undefined) {
    limit = /^[0-9]{1,7}$/.test(rawLimit) ? Number(rawLimit) : NaN;
    if (!(limit >= 1 && limit <= MAX_PAGE_LIMIT))
      throw new AppError('VALIDATION', `Invalid query: "limit" must be an integer from 1 to ${MAX_PAGE_LIMIT}.`, { field: 'limit' });
  }
  return { limit, ...(cursor !== undefined && cursor !== '' ? { after: decodeCursor(kind, cursor) } : {}) };
}

/** Sets `Link: <?…&cursor=…>; rel="next"` for the page after `next` (nothing when `next` is absent: the last page). */
export function setNextLink<K extends CursorKind>(c: Context, kind: K, limit: number, next: KeyOf<K> | undefined): void {
  if (next === undefined) return;
  const q = new URL(c.req.url).searchParams;
  q.set('limit', String(limit));
  q.set('cursor', encodeCursor(kind, next));
  c.header('Link', `<?${q.toString()}>; rel="next"`);
}
