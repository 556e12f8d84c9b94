// The API's contract (SPEC §5): TypeBox schemas for every route's params, query, body and responses. They
// validate the requests, type the handlers and generate the OpenAPI document (/api/v1/openapi.json).
import { Type, type Static, type TSchema } from 'typebox';
import { EVENT_ACTIONS, EVENT_SOURCES } from '../domain/entities.js';
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
    name: Type.String({ maxLength: 200, examples: ['Truck 7'] }),
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
export const NoBody = Type.Unsafe<Record<string, never> | null>({
  additionalProperties: false,
  not: { type: ['array', 'string', 'number', 'boolean'] },
  description: 'None: send no body, or an empty JSON object',
});

export type EndpointJson = Static<typeof Endpoint>;
export type SimJson = Static<typeof Sim>;
export type EventJson = Static<typeof Event>;

const problems = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, Type.Ref('Problem')]));

/** The problems every authenticated route may answer. */
export const READ_PROBLEMS = problems(401, 404, 422, 429);
export const CHANGE_PROBLEMS = problems(401, 403, 404, 409, 422, 429);

/** The schemas referenced by id ($ref), added once to the API's instance. */
export const SHARED_SCHEMAS = [Problem, Endpoint, Sim, Event];
