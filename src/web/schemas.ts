// The shapes of what the routes accept, as TypeBox schemas: Fastify validates params, querystring and body
// against them before a handler runs and types the handler from them. They type and bound the input; the
// friendly per-field messages ("Enter a name", "Select a SIM to attach") stay with the domain and the
// routes. Forms arrive URL-encoded (@fastify/formbody), so every field is a string. Each schema has an $id-
// free, plain JSON Schema form, so a JSON API can reuse these and publish them (OpenAPI) as they are.
// A schema failure is answered by the error handler (plugins/errors.ts): a malformed id in the address as an
// unknown page (404), anything else as the 422 error page.
import { Type, type Static } from 'typebox';
import { CURSOR_MAX_LENGTH } from '../domain/queries/paging.js';

/** A record's id in an address: a positive integer written in digits (PostgreSQL `integer`: at most 10). */
export const Id = Type.String({ pattern: '^[1-9][0-9]{0,9}$', maxLength: 10, description: 'A positive integer id' });

/** An optional id chosen in a form or a link; empty when none was chosen (the route says so in words). */
export const OptionalId = Type.Optional(Type.String({ pattern: '^[0-9]{0,10}$', maxLength: 10 }));

/**
 * `?before=<id>` of a list paged by id (the Jobs list, a webhook's delivery log): an id a page link made —
 * no 0, no leading zeros, nine digits at most (anything else is the damaged-link page); empty is the first page.
 */
export const PageBefore = Type.Optional(Type.String({ pattern: '^([1-9][0-9]{0,8})?$', maxLength: 9 }));

/** An optional free-text field, bounded: longer than the domain allows is still told in words up to `max`. */
export const Text = (max: number) => Type.Optional(Type.String({ maxLength: max }));

/** A keyset cursor from a page link (an ICCID, or an opaque base64url cursor); the queries check its form. */
export const Cursor = Type.Optional(Type.String({ maxLength: CURSOR_MAX_LENGTH }));

/** The query fields that carry a page link's cursor: one that no list made is a broken link (400), not a form to correct. */
export const CURSOR_FIELDS: ReadonlySet<string> = new Set(['after', 'before']);

/** The answer to a page link whose cursor no list made (too long, or malformed). */
export const BAD_PAGE_LINK =
  'This page link is damaged or out of date, so it cannot be shown. Go back to the list and page through it again.';

/** A page link's cursor, checked by its list's decoder: none → null; one no list made → 400, never silently the first page. */
export function pageCursor(value: string | undefined, check: (value: unknown) => string | null): string | null {
  if (value === undefined || value === '') return null;
  const cursor = check(value);
  if (cursor === null) throw Object.assign(new Error(BAD_PAGE_LINK), { statusCode: 400 });
  return cursor;
}

/** A search box. */
export const Search = Text(100);

/** A status filter; an unknown one is ignored (the whole list), not refused. */
export const StatusFilter = Text(20);

export const EndpointParams = Type.Object({ id: Id });
export type EndpointParams = Static<typeof EndpointParams>;

/** A list screen's query: search, status filter, one page either side of a cursor. */
export const ListQuery = Type.Object({ q: Search, status: StatusFilter, after: Cursor, before: Cursor });
export type ListQuery = Static<typeof ListQuery>;

/** The history's query: what happened, one endpoint, older than an event id. */
export const EventsQuery = Type.Object({ action: Text(40), endpoint: OptionalId, before: Text(20) });
export type EventsQuery = Static<typeof EventsQuery>;

/** Create endpoint's fields (the form, and the picker that carries them along). */
export const NewEndpointFields = {
  name: Text(400),
  imei: Text(100),
  iccid: Text(100),
  activate_immediately: Text(10),
};

/** A confirmation form: the one-time key that makes Yes safe to send twice. */
export const OneTimeKeyField = { key: Text(64) };

/** The CSRF token every form carries (checked by the access plugin). */
export const CsrfField = { _csrf: Text(200) };

export const NewEndpointQuery = Type.Object({ ...NewEndpointFields, q: Search, after: Cursor, before: Cursor, sim_id: OptionalId });
export type NewEndpointQuery = Static<typeof NewEndpointQuery>;

export const NewEndpointBody = Type.Object({ ...NewEndpointFields, ...OneTimeKeyField, ...CsrfField });
export type NewEndpointBody = Static<typeof NewEndpointBody>;

/** The picker's query (search and paging) with the SIM chosen (Attach SIM). */
export const PickerQuery = Type.Object({ q: Search, after: Cursor, before: Cursor, sim_id: OptionalId });
export type PickerQuery = Static<typeof PickerQuery>;

/** Yes on a confirmation: the key, and for a link the SIM. */
export const ConfirmBody = Type.Object({ sim_id: OptionalId, ...OneTimeKeyField, ...CsrfField });
export type ConfirmBody = Static<typeof ConfirmBody>;

/** Where to go after signing in: a path on this app (checked by `localPath`). */
export const SignInQuery = Type.Object({ next: Text(2000) });
export type SignInQuery = Static<typeof SignInQuery>;

export const SignInBody = Type.Object({ email: Text(254), password: Text(1024), ...CsrfField });
export type SignInBody = Static<typeof SignInBody>;

/**
 * A CRM launch. Several tokens are let through (as a list) so that the launch refuses them with its own
 * 401 page and logged reason, like any other token it cannot use.
 */
export const LaunchQuery = Type.Object({
  token: Type.Optional(Type.Union([Type.String({ maxLength: 8192 }), Type.Array(Type.String({ maxLength: 8192 }), { maxItems: 20 })])),
});
export type LaunchQuery = Static<typeof LaunchQuery>;

/** The upload's CSRF token travels in the action URL (multipart bodies are read later, by the handler). */
export const ImportQuery = Type.Object({ ...CsrfField });
/** The bulk jobs list's page: `?before=<job id>` for the jobs older than that one. */
export const JobsQuery = Type.Object({ before: PageBefore });

/** A form with nothing but its CSRF token (sign out). */
export const CsrfOnlyBody = Type.Object({ ...CsrfField });

/** /settings/api-tokens: Create token (Name, Role). */
export const ApiTokenBody = Type.Object({ name: Text(200), role: Text(10), ...OneTimeKeyField, ...CsrfField });

/** /settings/api-tokens/revoke: the token's id, in the address (confirmation) or the form (Yes). */
export const ApiTokenRevokeQuery = Type.Object({ id: OptionalId });
export const ApiTokenRevokeBody = Type.Object({ id: OptionalId, ...CsrfField });

/** /settings/webhooks: Add webhook (URL, event types as checkboxes: one arrives as a string, several as a list). */
export const WebhookBody = Type.Object({
  url: Text(2100),
  event_types: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Array(Type.String({ maxLength: 40 }), { maxItems: 20 })])),
  ...OneTimeKeyField,
  ...CsrfField,
});
export const WebhookParams = Type.Object({ id: Id });
/** The delivery log's page: `?before=<attempt id>` for the attempts older than that one. */
export const DeliveryLogQuery = Type.Object({ before: PageBefore });
export const WebhookMessageParams = Type.Object({ id: Id, messageId: Id });
