// /api/v1 (SPEC §5): bearer-token auth (a session cookie alone is 401), rate limits per token, the
// Idempotency-Key, and the routes — each calling the same domain verb or query as its screen.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { EntityManager } from '@mikro-orm/postgresql';
import { authenticateApiToken, type KeyRow, type TokenActor } from '../domain/api-tokens.js';
import { EndpointSchema, type Endpoint, type EndpointStatus, type Sim, type SimStatus } from '../domain/entities.js';
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from '../domain/errors.js';
import { checkIccid } from '../domain/identifiers.js';
import {
  activateEndpoint,
  createEndpoint,
  delinkSim,
  linkSim,
  swapSim,
  resumeEndpoint,
  suspendEndpoint,
  type OperationContext,
  type Outcome,
} from '../domain/lifecycle.js';
import { endpointCursor, getEndpoint, listEndpoints } from '../domain/queries/endpoints.js';
import { eventCursor, isEventAction, listEvents } from '../domain/queries/history.js';
import { iccidCursor } from '../domain/queries/paging.js';
import { findSimByIccid, listSims, type SimListRow } from '../domain/queries/sims.js';
import { SAFE } from '../web/plugins/access.js';
import { StatementCache, runStatement } from '../db/compiled-statement.js';
import { actorOf } from '../web/plugins/session.js';
import {
  idempotencyKeys,
  idempotencyOf,
  keyUsedForAnotherRequest,
  storeAnswer,
  storedAnswer,
  type Idempotency,
  type StoredAnswer,
} from './idempotency.js';
import {
  CHANGE_HEADERS,
  CHANGE_PROBLEMS,
  ChangeHeaders,
  LOCATION,
  success,
  CreateEndpointBody,
  EndpointList,
  EndpointListQuery,
  EndpointParams,
  EventList,
  EventListQuery,
  LinkBody,
  NoBody,
  READ_PROBLEMS,
  SimList,
  SimListQuery,
  SimParams,
  type EndpointJson,
  type EventJson,
  type SimJson,
} from './schemas.js';

/** Requests a minute per token, and changes (POST/PUT/DELETE) a minute per token. */
export const API_LIMITS = { requests: 600, changes: 120, windowMs: 60_000 } as const;

declare module 'fastify' {
  interface FastifyRequest {
    apiToken?: TokenActor;
    idempotency?: Idempotency;
    idempotentReplay?: boolean;
    /** The answer was kept with the change, in its transaction (OperationContext.answer): onSend keeps nothing. */
    answerKept?: boolean;
    /** The rows of the request's Idempotency-Key, when they were read with the token. */
    idempotencyRows?: KeyRow[];
  }
}

/** The Content-Type of the JSON answers (Fastify's, for a serialized body). */
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

const UNAUTHORIZED = 'Send a valid API token: Authorization: Bearer sl_… (create one on /settings/api-tokens).';

const toApiSimStatus = (status: SimStatus) => (status === 'ready' ? 'ready_to_activate' : status);
const fromApiSimStatus = (status: string | undefined): SimStatus | null =>
  status === undefined ? null : status === 'ready_to_activate' ? 'ready' : (status as SimStatus);

/**
 * The read of one endpoint with its SIM, the answer of every change and of GET /endpoints/{id}: compiled
 * once by the query builder (src/db/compiled-statement.ts) and its row used as it comes — building and
 * hydrating em.find's query on each request cost more Node CPU than the statement itself.
 */
const endpointRead = (em: EntityManager) =>
  endpointStatements.get('an endpoint with its SIM, for the API', 2, ([id, enterprise]) =>
    em
      .createQueryBuilder(EndpointSchema, 'e')
      .select([
        'e.id',
        'e.name',
        'e.imei',
        'e.activateImmediately',
        'e.status',
        'e.createdAt',
        'e.updatedAt',
        's.iccid',
        's.imsi',
        's.eid',
        's.msisdn',
        's.status as sim_status',
      ])
      .leftJoin('e.sim', 's')
      .where({ id, enterprise }),
  );
const endpointStatements = new StatementCache();

/** A row of endpointRead, as the driver gives it (column names; timestamptz as PostgreSQL's text; the SIM's null without one). */
interface EndpointRow {
  id: number;
  name: string;
  imei: string | null;
  activate_immediately: boolean;
  status: EndpointJson['status'];
  created_at: string | Date;
  updated_at: string | Date;
  iccid: string | null;
  imsi: string;
  eid: string | null;
  msisdn: string | null;
  sim_status: SimStatus;
}

/** One endpoint as the API shows it; another enterprise's or an unknown id → 404. */
async function endpointJson(em: EntityManager, enterpriseId: number, id: number): Promise<EndpointJson> {
  const [row] = await runStatement<EndpointRow[]>(em, endpointRead(em), [id, enterpriseId]);
  if (!row) throw new NotFoundError('endpoint');
  return {
    id: row.id,
    name: row.name,
    imei: row.imei,
    activate_immediately: row.activate_immediately,
    status: row.status,
    sim:
      row.iccid === null
        ? null
        : { iccid: row.iccid, imsi: row.imsi, eid: row.eid, msisdn: row.msisdn, status: toApiSimStatus(row.sim_status) },
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
  };
}

/** Endpoints by id, in the order given (the ids come from the screens' list query). */
async function endpointsJson(em: EntityManager, enterpriseId: number, ids: number[]): Promise<EndpointJson[]> {
  if (!ids.length) return [];
  const rows = await em.find(
    EndpointSchema,
    { id: { $in: ids }, enterprise: enterpriseId },
    { populate: ['sim'], disableIdentityMap: true },
  );
  const byId = new Map(rows.map((e) => [e.id, e]));
  return ids
    .map((id) => byId.get(id))
    .filter((e) => e !== undefined)
    .map((e) => endpointJsonOf(e, e.sim?.getEntity() ?? null));
}

/** An endpoint and its SIM (entities) as the API shows them. */
function endpointJsonOf(e: Endpoint, sim: Sim | null): EndpointJson {
  return {
    id: e.id,
    name: e.name,
    imei: e.imei ?? null,
    activate_immediately: e.activateImmediately,
    status: e.status,
    sim: sim
      ? { iccid: sim.iccid, imsi: sim.imsi, eid: sim.eid ?? null, msisdn: sim.msisdn ?? null, status: toApiSimStatus(sim.status) }
      : null,
    created_at: e.createdAt.toISOString(),
    updated_at: e.updatedAt.toISOString(),
  };
}

const simJson = (s: SimListRow): SimJson => ({
  iccid: s.iccid,
  imsi: s.imsi,
  eid: s.eid,
  msisdn: s.msisdn,
  status: toApiSimStatus(s.status),
  endpoint_id: s.endpointId,
});

/** An ICCID from a body or path, or a 422 naming the field and the rule. */
function iccidOf(value: string, field = 'iccid'): string {
  const checked = checkIccid(value);
  if (!checked.ok) throw new ValidationError([{ field, message: checked.message }]);
  return checked.value;
}

function invalidCursor(): never {
  throw new ValidationError([{ field: 'cursor', message: 'cursor is not one this list gave; start again without it' }]);
}

export async function v1Routes(root: FastifyInstance) {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  // TypeBox validates: bodies exactly as sent (no coercion of 5 into "5", unknown fields refused), path and
  // query strings converted to the schema's types.
  app.setValidatorCompiler(TypeBoxValidatorCompiler);

  // Who: the bearer token, before the body is read. The screens' session cookie means nothing here.
  app.addHook('onRequest', async (request) => {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([^\s]+)$/i.exec(header.trim()) : null;
    // A change's Idempotency-Key rows are read with the token (one round trip), when its id is known.
    const keysOf = SAFE.has(request.method) ? undefined : (tokenId: number) => idempotencyKeys(request.headers['idempotency-key'], tokenId);
    const found = match ? await authenticateApiToken(request.em, match[1], keysOf) : null;
    if (!found) throw new UnauthorizedError(UNAUTHORIZED);
    request.apiToken = found;
    request.idempotencyRows = found.keyRows;
  });

  const limits = app.hasDecorator('createRateLimit')
    ? {
        requests: app.createRateLimit({
          max: API_LIMITS.requests,
          timeWindow: API_LIMITS.windowMs,
          keyGenerator: (request) => `api:requests|token:${request.apiToken!.tokenId}`,
        }),
        changes: app.createRateLimit({
          max: API_LIMITS.changes,
          timeWindow: API_LIMITS.windowMs,
          keyGenerator: (request) => `api:changes|token:${request.apiToken!.tokenId}`,
        }),
      }
    : null;

  async function countRequest(request: FastifyRequest, reply: FastifyReply) {
    if (!limits) return;
    const counted = [await limits.requests(request)];
    if (!SAFE.has(request.method)) counted.push(await limits.changes(request));
    // No allow-list here: every result is a count.
    const results = counted.flatMap((r) => (r.isAllowed ? [] : [r]));
    if (!results.length) return;
    const tightest = results.reduce((a, b) => (b.isExceeded || b.remaining < a.remaining ? b : a));
    reply.header('RateLimit-Limit', String(tightest.max));
    reply.header('RateLimit-Remaining', String(tightest.remaining));
    reply.header('RateLimit-Reset', String(Math.max(0, tightest.ttlInSeconds)));
    const over = results.find((r) => r.isExceeded);
    if (over) {
      reply.header('Retry-After', String(Math.max(1, over.ttlInSeconds)));
      throw Object.assign(new Error('Too many requests'), { statusCode: 429 });
    }
  }

  app.addHook('preHandler', async (request, reply) => {
    // The session plugin may have set a cookie's user: here only the token acts.
    request.actor = request.apiToken!.actor;
    await countRequest(request, reply);
    if (SAFE.has(request.method)) return;
    if (request.actor.role !== 'admin')
      throw new ForbiddenError('This API token has the viewer role: it can read but not change anything.');
    const idem = idempotencyOf(request.headers['idempotency-key'], request.apiToken!.tokenId, request.method, request.url, request.body);
    if (!idem) return;
    const stored = await storedAnswer(request.em, idem, request.idempotencyRows);
    if (stored) {
      request.idempotentReplay = true;
      if (stored.location) reply.header('Location', stored.location);
      return reply.code(stored.status).type(stored.contentType).header('Idempotent-Replayed', 'true').send(stored.body);
    }
    request.idempotency = idem;
  });

  // The first answer to an Idempotency-Key is kept (not a server failure: that may be retried).
  app.addHook('onSend', async (request, reply, payload) => {
    const idem = request.idempotency;
    if (!idem || request.idempotentReplay || request.answerKept || reply.statusCode >= 500 || typeof payload !== 'string') return payload;
    await storeAnswer(request.em.fork(), idem, actorOf(request).enterpriseId, request.apiToken!.tokenId, {
      fingerprint: idem.fingerprint,
      status: reply.statusCode,
      body: payload,
      contentType: String(reply.getHeader('content-type') ?? 'application/json'),
      ...(reply.hasHeader('location') ? { location: String(reply.getHeader('location')) } : {}),
    });
    return payload;
  });

  const ctx = (request: FastifyRequest): OperationContext => ({
    actor: actorOf(request),
    requestId: request.id,
    key: request.idempotency?.operationKey,
    source: 'api',
  });

  const enterpriseOf = (request: FastifyRequest) => actorOf(request).enterpriseId;

  /**
   * The context of a change of an existing endpoint. With an Idempotency-Key, the verb's key is the answer's
   * key, and the answer — the endpoint as the change leaves it, serialized by the route's own response
   * schema — is made and kept by the verb in its transaction (lifecycle.ts OperationContext.answer).
   */
  const changeCtx = (request: FastifyRequest, reply: FastifyReply): OperationContext => {
    const idem = request.idempotency;
    if (!idem) return ctx(request);
    return {
      ...ctx(request),
      key: idem.answerKey,
      answer: (endpoint, sim): StoredAnswer => ({
        fingerprint: idem.fingerprint,
        status: 200,
        body: String(reply.serialize(endpointJsonOf(endpoint, sim))),
        contentType: JSON_CONTENT_TYPE,
      }),
    };
  };

  /** The answer to a change: the one kept in its transaction (a replay's: the first one), or else the endpoint read again. */
  async function answerTo(request: FastifyRequest<{ Params: { id: number } }>, reply: FastifyReply, outcome: Outcome) {
    const kept = outcome.answer as StoredAnswer | undefined;
    if (!kept) return endpointJson(request.em, enterpriseOf(request), request.params.id);
    // A retry that raced the first attempt gets its answer — if it is the same request.
    if (kept.fingerprint !== request.idempotency!.fingerprint) throw keyUsedForAnotherRequest();
    request.answerKept = true;
    if (outcome.replayed) reply.header('Idempotent-Replayed', 'true');
    return reply.code(kept.status).type(kept.contentType).send(kept.body);
  }

  // --- Endpoints -------------------------------------------------------------------------------------------

  app.get(
    '/endpoints',
    {
      schema: {
        tags: ['endpoints'],
        summary: 'List endpoints',
        description: 'In name order; filter by status, search by name prefix or the first digits of the linked ICCID.',
        querystring: EndpointListQuery,
        response: { 200: success(EndpointList, 'A page of endpoints; pass next_cursor as cursor for the next'), ...READ_PROBLEMS },
      },
    },
    async (request) => {
      const { status, q, limit = 50, cursor } = request.query;
      if (cursor !== undefined && !endpointCursor(cursor)) invalidCursor();
      const page = await listEndpoints(request.em, enterpriseOf(request), { status, q, after: cursor, limit });
      return {
        data: await endpointsJson(
          request.em,
          enterpriseOf(request),
          page.rows.map((r) => r.id),
        ),
        next_cursor: page.next,
      };
    },
  );

  app.post(
    '/endpoints',
    {
      schema: {
        tags: ['endpoints'],
        summary: 'Create an endpoint',
        description: 'On Hold; with `iccid`, a Ready to Activate SIM is linked at once (Active if activate_immediately, else Pre-Active).',
        headers: ChangeHeaders,
        body: CreateEndpointBody,
        response: {
          201: success(Type.Ref('Endpoint'), 'The endpoint created (with its SIM, when one was linked)', {
            ...LOCATION,
            ...CHANGE_HEADERS,
          }),
          ...CHANGE_PROBLEMS,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const outcome = await createEndpoint(request.em, ctx(request), {
        name: body.name,
        imei: body.imei ?? undefined,
        iccid: body.iccid ?? undefined,
        activateImmediately: body.activate_immediately ?? false,
      });
      reply.code(201).header('Location', `/api/v1/endpoints/${outcome.endpointId}`);
      return endpointJson(request.em, enterpriseOf(request), outcome.endpointId);
    },
  );

  app.get(
    '/endpoints/:id',
    {
      schema: {
        tags: ['endpoints'],
        summary: 'Read an endpoint',
        params: EndpointParams,
        response: { 200: success(Type.Ref('Endpoint'), 'The endpoint, with its SIM'), ...READ_PROBLEMS },
      },
    },
    async (request) => endpointJson(request.em, enterpriseOf(request), request.params.id),
  );

  /**
   * Link: the SIM named by ICCID, found by the verb itself in its transaction — it locks the endpoint first
   * (another enterprise's endpoint is 404 whatever the SIM), then the SIM by ICCID (none in the inventory:
   * 422 on `iccid`). No reads of their own before the verb: each was a round trip.
   */
  const linkByIccid = async function (request: FastifyRequest<{ Params: { id: number }; Body: { iccid: string } }>, reply: FastifyReply) {
    const iccid = iccidOf(request.body.iccid);
    return answerTo(request, reply, await linkSim(request.em, changeCtx(request, reply), request.params.id, { iccid }));
  };

  /** Swap: the SIM named by ICCID, after the endpoint (another enterprise's endpoint is 404 whatever the SIM). */
  const withSim = (run: (em: EntityManager, c: OperationContext, id: number, simId: number) => Promise<Outcome>) =>
    async function (request: FastifyRequest<{ Params: { id: number }; Body: { iccid: string } }>, reply: FastifyReply) {
      const enterpriseId = enterpriseOf(request);
      const iccid = iccidOf(request.body.iccid);
      await getEndpoint(request.em, enterpriseId, request.params.id);
      const sim = await findSimByIccid(request.em, enterpriseId, iccid);
      if (!sim) throw new ValidationError([{ field: 'iccid', message: `There is no SIM with ICCID ${iccid} in your inventory` }]);
      return answerTo(request, reply, await run(request.em, changeCtx(request, reply), request.params.id, sim.id));
    };

  app.post(
    '/endpoints/:id/sim',
    {
      schema: {
        tags: ['endpoints'],
        summary: 'Link a SIM',
        description: 'The endpoint must be on Hold and the SIM Ready to Activate; both become Active or Pre-Active.',
        params: EndpointParams,
        headers: ChangeHeaders,
        body: LinkBody,
        response: {
          200: success(Type.Ref('Endpoint'), 'The endpoint as the change left it, with its SIM', CHANGE_HEADERS),
          ...CHANGE_PROBLEMS,
        },
      },
    },
    linkByIccid,
  );

  app.put(
    '/endpoints/:id/sim',
    {
      schema: {
        tags: ['endpoints'],
        summary: 'Swap the SIM',
        description:
          'The endpoint must have a SIM; the new SIM must be Ready to Activate. In one transaction the old SIM returns to the inventory, Ready to Activate, and the new one is linked: both Active or Pre-Active, as the endpoint’s Activate Immediately says.',
        params: EndpointParams,
        headers: ChangeHeaders,
        body: LinkBody,
        response: {
          200: success(Type.Ref('Endpoint'), 'The endpoint as the change left it, with its SIM', CHANGE_HEADERS),
          ...CHANGE_PROBLEMS,
        },
      },
    },
    withSim(swapSim),
  );

  const change = (run: (em: EntityManager, c: OperationContext, id: number) => Promise<Outcome>) =>
    async function (request: FastifyRequest<{ Params: { id: number } }>, reply: FastifyReply) {
      return answerTo(request, reply, await run(request.em, changeCtx(request, reply), request.params.id));
    };

  app.delete(
    '/endpoints/:id/sim',
    {
      schema: {
        tags: ['endpoints'],
        summary: 'De-link the SIM',
        description: 'The endpoint goes to Hold; the SIM returns to the inventory, Ready to Activate.',
        params: EndpointParams,
        headers: ChangeHeaders,
        body: NoBody,
        response: { 200: success(Type.Ref('Endpoint'), 'The endpoint on Hold, without a SIM', CHANGE_HEADERS), ...CHANGE_PROBLEMS },
      },
    },
    change(delinkSim),
  );

  for (const [path, run, summary, description] of [
    ['activate', activateEndpoint, 'Activate', 'Pre-Active → Active, endpoint and SIM.'],
    ['suspend', suspendEndpoint, 'Suspend', 'Active → Suspended, endpoint and SIM.'],
    ['resume', resumeEndpoint, 'Resume', 'Suspended → Active, endpoint and SIM.'],
  ] as const) {
    app.post(
      `/endpoints/:id/${path}`,
      {
        schema: {
          tags: ['endpoints'],
          summary: `${summary} an endpoint`,
          description,
          params: EndpointParams,
          headers: ChangeHeaders,
          body: NoBody,
          response: {
            200: success(Type.Ref('Endpoint'), 'The endpoint and its SIM as the change left them', CHANGE_HEADERS),
            ...CHANGE_PROBLEMS,
          },
        },
      },
      change(run),
    );
  }

  // --- SIMs ------------------------------------------------------------------------------------------------

  app.get(
    '/sims',
    {
      schema: {
        tags: ['sims'],
        summary: 'List SIMs',
        description: 'In ICCID order; filter by status, search by the first digits of an ICCID, IMSI or EID.',
        querystring: SimListQuery,
        response: { 200: success(SimList, 'A page of SIMs; pass next_cursor as cursor for the next'), ...READ_PROBLEMS },
      },
    },
    async (request) => {
      const { status, q, limit = 50, cursor } = request.query;
      if (cursor !== undefined && !iccidCursor(cursor)) invalidCursor();
      const page = await listSims(request.em, enterpriseOf(request), { status: fromApiSimStatus(status), q, after: cursor, limit });
      return { data: page.rows.map(simJson), next_cursor: page.next };
    },
  );

  app.get(
    '/sims/:iccid',
    {
      schema: {
        tags: ['sims'],
        summary: 'Read a SIM by ICCID',
        params: SimParams,
        response: { 200: success(Type.Ref('Sim'), 'The SIM'), ...READ_PROBLEMS },
      },
    },
    async (request) => {
      const sim = await findSimByIccid(request.em, enterpriseOf(request), iccidOf(request.params.iccid));
      if (!sim) throw new NotFoundError('SIM');
      return simJson(sim);
    },
  );

  // --- Events ----------------------------------------------------------------------------------------------

  app.get(
    '/events',
    {
      schema: {
        tags: ['events'],
        summary: 'List events',
        description: 'The audit trail, newest first; filter by action or endpoint.',
        querystring: EventListQuery,
        response: { 200: success(EventList, 'A page of events, newest first; pass next_cursor as cursor for the next'), ...READ_PROBLEMS },
      },
    },
    async (request) => {
      const { action, endpoint_id: endpointId, limit = 50, cursor } = request.query;
      if (action !== undefined && !isEventAction(action)) {
        throw new ValidationError([{ field: 'action', message: `action must be one of the event actions, e.g. sim.linked` }]);
      }
      if (cursor !== undefined && !eventCursor(cursor)) invalidCursor();
      const page = await listEvents(request.em, enterpriseOf(request), { action, endpointId, before: cursor, limit });
      const data: EventJson[] = page.rows.map((e) => ({
        id: String(e.id),
        action: e.action,
        actor: e.actorName,
        source: e.source,
        endpoint_id: e.endpoint?.id ?? null,
        endpoint_name: e.endpointName ?? null,
        iccid: e.simIccid ?? null,
        old_iccid: e.oldSimIccid ?? null,
        endpoint_status_before: (e.endpointStatusBefore as EndpointStatus | undefined) ?? null,
        endpoint_status_after: (e.endpointStatusAfter as EndpointStatus | undefined) ?? null,
        sim_status_before: e.simStatusBefore ? toApiSimStatus(e.simStatusBefore as SimStatus) : null,
        sim_status_after: e.simStatusAfter ? toApiSimStatus(e.simStatusAfter as SimStatus) : null,
        count: e.count ?? null,
        created_at: new Date(e.createdAt).toISOString(),
      }));
      return { data, next_cursor: page.older };
    },
  );
}
