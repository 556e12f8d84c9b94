// Small helpers for server-side form handling in the GOV.UK pattern: field errors in form order,
// a body read as plain strings (anything else is treated as absent), and safe local redirects.
import type { FieldError } from '../domain/errors.js';
import type { FieldErrors } from './plugins/render.js';

export function fieldErrors(list: FieldError[]): FieldErrors {
  return { list, byField: Object.fromEntries(list.map((e) => [e.field, e.message])) };
}

/** A form field as a string ('' when missing or not a string), cut to `max` characters. */
export function field(body: unknown, name: string, max = 1000): string {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value.slice(0, max) : '';
}

/** A path on this app (starting with one slash), else the fallback: never an open redirect. */
export function localPath(value: unknown, fallback = '/endpoints'): string {
  return typeof value === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(value) ? value : fallback;
}

/** A positive integer id from a route parameter or query, else null. */
export function idParam(value: unknown): number | null {
  return typeof value === 'string' && /^[1-9][0-9]{0,9}$/.test(value) && Number(value) <= 2_147_483_647 ? Number(value) : null;
}
