// Small helpers for server-side form handling in the GOV.UK pattern: field errors in form order,
// ids from addresses and forms. Bodies are typed and bounded by the routes'
// schemas (schemas.ts).
import type { FieldError } from '../domain/errors.js';
import type { FieldErrors } from './plugins/render.js';

export function fieldErrors(list: FieldError[]): FieldErrors {
  return { list, byField: Object.fromEntries(list.map((e) => [e.field, e.message])) };
}

/** A positive integer id from a route parameter or query, else null. */
export function idParam(value: unknown): number | null {
  return typeof value === 'string' && /^[1-9][0-9]{0,9}$/.test(value) && Number(value) <= 2_147_483_647 ? Number(value) : null;
}
