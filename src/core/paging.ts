/** Most rows one page of a list may hold (`limit` is 1 … this). */
export const MAX_PAGE_LIMIT = 1000;
/** Rows of a page when a cursor is given without a `limit`. */
export const DEFAULT_PAGE_LIMIT = 100;

/** One page of a keyset-paged list: its rows, and the key of the last one when more rows follow. */
export interface Page<T, K> {
  items: T[];
  /** Where the next page starts (exclusive); absent on the last page. */
  next?: K;
}

/**
 * Reads one page of at most `limit` rows through `fetch` (which answers at most the number of rows it is asked for,
 * after `after` in the list's order): asks for one more row than the page holds, so a next cursor is given only when
 * a row follows — the last page of a list whose size divides by `limit` has none.
 */
export async function readPage<T, K>(fetch: (after: K | undefined, n: number) => Promise<T[]>, after: K | undefined, limit: number, keyOf: (row: T) => K): Promise<Page<T, K>> {
  const rows = await fetch(after, limit + 1);
  if (rows.length <= limit) return { items: rows };
  const items = rows.slice(0, limit);
  return { items, next: keyOf(items[limit - 1]!) };
}
