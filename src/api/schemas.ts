// The API's contract (SPEC §5): TypeBox schemas for every route's params, query, body and responses. They
// validate the requests, type the handlers and generate the OpenAPI document (/api/v1/openapi.json).
import { Type, type Static, type TSchema } from 'typebox';
import { ENDPOINT_NAME_MAX_LENGTH, EVENT_ACTIONS, EVENT_SOURCES } from '../domain/entities.js';
import { CURSOR_MAX_LENGTH } from '../domain/queries/paging.js';

const EndpointStatus = Type.Union([Type.Literal('hold'), Type.Literal('pre_active'), Type.Literal('active'), Type.Literal('suspended')]);
const SimStatus = Type.Union([
  Type.Literal('ready_to_activate'),
  Type.Literal('pre_active'),
  Type.Literal('active'),
  Type.Literal('suspended'),
]);

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'A URI naming the kind of problem', examples: ['urn:sim-link:problem:conflict'] }),
    title: Type.String({ examples: ['That could not be done'] }),
    status: Type.Integer({ examples: [409] }),
    detail: Type.String({ examples: ["Endpoint 'Truck 7' is Active; a SIM can only be linked to an endpoint on Hold."] }),
    errors: Type.Optional(
      Type.Array(
        Type.Object({ field: Type.String({ examples: ['iccid'] }), message: Type.String({ examples: ['ICCID check digit is wrong'] }) }),
      ),
    ),
  },
  { $id: 'Problem', description: 'An RFC 9457 problem (application/problem+json)' },
);

export const SimSummary = Type.Object({
  iccid: Type.String({ examples: ['89441000000000000018'] }),
  imsi: Type.String({ examples: ['234150000000001'] }),
  eid: Nullable(Type.String()),
  msisdn: Nullable(Type.String()),
  status: SimStatus,
});

export const Endpoint = Type.Object(
  {
    id: Type.Integer({ examples: [42] }),
    name: Type.String({ examples: ['Truck 7'] }),
    imei: Nullable(Type.String()),
    activate_immediately: Type.Boolean(),
    status: EndpointStatus,
    sim: Nullable(SimSummary),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Endpoint' },
);

export const Sim = Type.Object(
  {
    iccid: Type.String({ examples: ['89441000000000000018'] }),
    imsi: Type.String(),
    eid: Nullable(Type.String()),
    msisdn: Nullable(Type.String()),
    status: SimStatus,
    endpoint_id: Nullable(Type.Integer()),
  },
  { $id: 'Sim' },
);

export const Event = Type.Object(
  {
    id: Type.String({ description: 'Event ids grow with time' }),
    action: Type.Enum([...EVENT_ACTIONS], { examples: ['sim.linked'] }),
    actor: Type.String({ description: 'The user or API token, by name as it was' }),
    source: Type.Enum([...EVENT_SOURCES], { examples: ['api'] }),
    endpoint_id: Nullable(Type.Integer()),
    endpoint_name: Nullable(Type.String()),
    iccid: Nullable(Type.String()),
    old_iccid: Nullable(Type.String({ description: 'The SIM a swap (sim.swapped) replaced; null for other events' })),
    endpoint_status_before: Nullable(EndpointStatus),
    endpoint_status_after: Nullable(EndpointStatus),
    sim_status_before: Nullable(SimStatus),
    sim_status_after: Nullable(SimStatus),
    count: Nullable(Type.Integer()),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Event' },
);

const listOf = <T extends TSchema>(item: T) =>
  Type.Object({
    data: Type.Array(item),
    next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null at the end' })),
  });

export const EndpointList = listOf(Type.Ref('Endpoint'));
export const SimList = listOf(Type.Ref('Sim'));
export const EventList = listOf(Type.Ref('Event'));

const limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Rows a page, at most 200' }));
const cursor = Type.Optional(Type.String({ maxLength: CURSOR_MAX_LENGTH, description: 'The `next_cursor` of the previous page' }));

export const EndpointListQuery = Type.Object(
  {
    status: Type.Optional(EndpointStatus),
    q: Type.Optional(Type.String({ maxLength: 100, description: 'Name prefix (any case), or the first digits of the ICCID' })),
    limit,
    cursor,
  },
  { additionalProperties: false },
);

export const SimListQuery = Type.Object(
  {
    status: Type.Optional(SimStatus),
    q: Type.Optional(Type.String({ maxLength: 40, description: 'The first digits of an ICCID, IMSI or EID' })),
    limit,
    cursor,
  },
  { additionalProperties: false },
);

export const EventListQuery = Type.Object(
  {
    action: Type.Optional(Type.String({ maxLength: 40, examples: ['sim.linked'] })),
    endpoint_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
    limit,
    cursor,
  },
  { additionalProperties: false },
);

export const EndpointParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647, description: 'The endpoint id' }) });
export const SimParams = Type.Object({ iccid: Type.String({ maxLength: 40, description: 'The ICCID (19 or 20 digits)' }) });

export const CreateEndpointBody = Type.Object(
  {
    name: Type.String({
      maxLength: ENDPOINT_NAME_MAX_LENGTH,
      examples: ['Truck 7'],
      description: `1 to ${ENDPOINT_NAME_MAX_LENGTH} characters`,
    }),
    imei: Type.Optional(Nullable(Type.String({ maxLength: 40 }))),
    activate_immediately: Type.Optional(Type.Boolean({ default: false })),
    iccid: Type.Optional(Nullable(Type.String({ maxLength: 40, description: 'A Ready to Activate SIM to link at once' }))),
  },
  { additionalProperties: false },
);

export const LinkBody = Type.Object(
  { iccid: Type.String({ maxLength: 40, examples: ['89441000000000000018'] }) },
  { additionalProperties: false },
);

/**
 * The body of a change that takes none (activate, suspend, resume, de-link): none at all, or an empty JSON
 * object (Fastify hands the validator null for a request without a body, and JSON `null` is the same nothing);
 * anything else is refused (422) rather than ignored, so a client that meant to send something learns that it
 * was not read. Plain JSON Schema, without `type`: it must let that null through.
 */
export const NO_BODY_DESCRIPTION = 'None: send no body, or an empty JSON object';
export const NoBody = Type.Unsafe<Record<string, never> | null>({
  additionalProperties: false,
  not: { type: ['array', 'string', 'number', 'boolean'] },
  description: NO_BODY_DESCRIPTION,
});

export type EndpointJson = Static<typeof Endpoint>;
export type SimJson = Static<typeof Sim>;
export type EventJson = Static<typeof Event>;

/** Response headers, as the OpenAPI document names them (@fastify/swagger reads a response schema's `headers`). */
const header = (description: string, type: 'string' | 'integer' = 'string') => ({ type, description });
const RATE_LIMIT_HEADERS = {
  'RateLimit-Limit': header(
    'Requests of this kind allowed in the window: on a read, the token’s requests (600 a minute); on a change, its changes (120 a minute)',
    'integer',
  ),
  'RateLimit-Remaining': header('Requests of this kind left in the window', 'integer'),
  'RateLimit-Reset': header('Seconds until the window starts again', 'integer'),
};

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'The request could not be read (e.g. the body is not valid JSON)',
  401: 'No token, or a malformed, unknown or revoked one',
  403: 'The token has the viewer role: it can read but not change anything',
  404: 'No such record, or another enterprise’s',
  409: 'The record is not in a state that allows this; the detail names its current state',
  413: 'The body is larger than 64 KB',
  415: 'The body is not JSON (Content-Type: application/json)',
  422: 'Some of what was sent is not valid: `errors` names each field',
  429: 'Too many requests for this token; try again after Retry-After seconds',
};
const PROBLEM_HEADERS: Record<number, Record<string, ReturnType<typeof header>>> = {
  401: { 'WWW-Authenticate': header('Bearer') },
  429: { 'Retry-After': header('Seconds to wait before trying again', 'integer'), ...RATE_LIMIT_HEADERS },
};

/** An RFC 9457 problem answer, documented as application/problem+json (the API sends it as a string: never re-serialized). */
const problems = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: PROBLEM_DESCRIPTIONS[s],
        ...(PROBLEM_HEADERS[s] ? { headers: PROBLEM_HEADERS[s] } : {}),
        content: { 'application/problem+json': { schema: Type.Ref('Problem') } },
      },
    ]),
  );

/** The problems every authenticated route may answer. */
export const READ_PROBLEMS = problems(400, 401, 404, 422, 429);
export const CHANGE_PROBLEMS = problems(400, 401, 403, 404, 409, 413, 415, 422, 429);

/** A success answer: its schema, what it is, and its headers (the rate limit's, and any given). */
export const success = <T extends TSchema>(schema: T, description: string, headers: Record<string, ReturnType<typeof header>> = {}) =>
  ({ ...schema, description, headers: { ...RATE_LIMIT_HEADERS, ...headers } }) as T;

/** The headers of a change's success: a replayed answer says so. */
export const CHANGE_HEADERS = { 'Idempotent-Replayed': header('`true` when this is the first answer to this Idempotency-Key, sent again') };
export const LOCATION = { Location: header('The address of the endpoint created') };

/** The request header every change accepts (SPEC §5): documented here, checked by idempotency.ts. */
export const ChangeHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      description:
        'Any 1 to 255 printable ASCII characters, new for each change: a retry with the same key and body gets the first answer again and changes nothing; the same key with another body is 422. Kept 24 hours.',
    }),
  ),
});

/** The schemas referenced by id ($ref), added once to the API's instance. */
export const SHARED_SCHEMAS = [Problem, Endpoint, Sim, Event];
