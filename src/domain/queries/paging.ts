// Keyset paging shared by every list: page sizes, the page shape the views read, and the one place a page
// is assembled from "one row more than a page" (never OFFSET: a page far into a million rows costs the same
// as the first).

export const PAGE_SIZE = 25;
/** Counts above this are shown as "more than …": counting a million index entries per page view is not worth it. */
export const COUNT_CAP = 1_000;
/**
 * The longest cursor a list accepts, in characters — the API's `cursor`, the screens' `after`/`before`, and
 * the decoders below. The longest a list makes is an endpoint cursor (base64url of `[name, id]` as UTF-8
 * JSON): a name of 100 characters of 4 UTF-8 bytes each is about 550; a longer one was never made by a list.
 */
export const CURSOR_MAX_LENGTH = 1_000;

export interface Page<T> {
  rows: T[];
  /** Cursor for the next page (after the last row), if there is one. */
  next: string | null;
  /** Cursor for the previous page (before the first row), if there is one. */
  previous: string | null;
}

export type Direction = 'after' | 'before';

/**
 * A page from rows fetched in the page's direction (newest-to-oldest reversed for `before`), up to one
 * more than `size` to know whether another page follows.
 */
export function pageOf<T>(rows: T[], direction: Direction, hadCursor: boolean, cursorOf: (row: T) => string, size = PAGE_SIZE): Page<T> {
  const more = rows.length > size;
  const page = rows.slice(0, size);
  if (direction === 'before') page.reverse();
  const first = page[0];
  const last = page[page.length - 1];
  if (direction === 'after') {
    return { rows: page, next: more && last ? cursorOf(last) : null, previous: hadCursor && first ? cursorOf(first) : null };
  }
  return { rows: page, next: last ? cursorOf(last) : null, previous: more && first ? cursorOf(first) : null };
}

/** What a MikroORM Cursor (em.findByCursor) says about its page. */
export interface CursorPage<I> {
  items: I[];
  hasNextPage: boolean;
  hasPrevPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

/** The same page from MikroORM's findByCursor (which fetched one more and already knows both directions). */
export function pageOfCursor<I, T>(cursor: CursorPage<I>, toRow: (item: I) => T): Page<T> {
  return {
    rows: cursor.items.map(toRow),
    next: cursor.hasNextPage ? cursor.endCursor : null,
    previous: cursor.hasPrevPage ? cursor.startCursor : null,
  };
}

/** An ICCID cursor from a query string, or null. */
export function iccidCursor(value: unknown): string | null {
  return typeof value === 'string' && /^\d{19,20}$/.test(value) ? value : null;
}

/** An opaque findByCursor cursor from a query string (base64url of the order's values), or null. */
export function opaqueCursor(value: unknown): string | null {
  return typeof value === 'string' && value.length <= CURSOR_MAX_LENGTH && /^[A-Za-z0-9_-]+$/.test(value) ? value : null;
}

/** Escapes LIKE's wildcards in something a person typed. */
export const likePrefix = (text: string) => `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
