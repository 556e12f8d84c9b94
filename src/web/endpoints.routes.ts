// The endpoint screens: the list (filter, search, keyset pages), Create endpoint, and the endpoint page
// with its SIM panel, the actions its state allows and its history.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ENDPOINT_STATUSES } from '../domain/entities.js';
import { ValidationError } from '../domain/errors.js';
import { createEndpoint, refusal, type OperationContext } from '../domain/lifecycle.js';
import { endpointCursor, getEndpoint, isEndpointStatus, listEndpoints } from '../domain/queries/endpoints.js';
import { endpointHistory, EVENT_ACTION_LABELS } from '../domain/queries/history.js';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import { field, fieldErrors, idParam } from './forms.js';

/** Who acts, for which request, with which confirmation form's one-time key. */
export function operationContext(request: FastifyRequest): OperationContext {
  return { actor: request.actor!, requestId: request.id, key: field(request.body, 'key', 64) || undefined };
}

/** A fresh one-time key for a confirmation form (see lifecycle.ts `once`). */
export const oneTimeKey = () => randomBytes(18).toString('base64url');

/** The endpoint id of a route like /endpoints/:id…; a malformed id is answered like an unknown one. */
export function endpointIdOf(request: FastifyRequest): number {
  const id = idParam((request.params as Record<string, string>).id);
  if (id === null) throw new NotFoundError('endpoint');
  return id;
}

export interface NewEndpointValues {
  name: string;
  imei: string;
  iccid: string;
  activateImmediately: boolean;
}

export function newEndpointValues(source: unknown): NewEndpointValues {
  return {
    name: field(source, 'name', 200),
    imei: field(source, 'imei', 40),
    iccid: field(source, 'iccid', 40),
    activateImmediately: ['on', 'true', '1'].includes(field(source, 'activate_immediately', 10)),
  };
}

/** The endpoint page, optionally with an error summary (a refused or lost operation) and its status code. */
export async function renderEndpoint(
  request: FastifyRequest,
  reply: FastifyReply,
  endpointId: number,
  problem?: { status: number; message: string },
) {
  const actor = request.actor!;
  const endpoint = await getEndpoint(request.em, actor.enterpriseId, endpointId);
  const history = await endpointHistory(request.em, actor.enterpriseId, endpointId);
  const can = (operation: 'link' | 'delink' | 'activate' | 'suspend' | 'resume') =>
    actor.role === 'admin' && refusal(operation, endpoint) === null;
  return reply.page(
    'endpoints/show',
    {
      title: endpoint.name,
      section: 'endpoints',
      endpoint,
      history,
      actionLabels: EVENT_ACTION_LABELS,
      actions: { link: can('link'), delink: can('delink'), activate: can('activate'), suspend: can('suspend'), resume: can('resume') },
      errors: problem ? fieldErrors([{ field: 'endpoint-actions', message: problem.message }]) : undefined,
    },
    { status: problem?.status },
  );
}

export async function endpointsRoutes(app: FastifyInstance) {
  app.get('/endpoints', async (request, reply) => {
    const query = request.query as Record<string, string | undefined>;
    const status = isEndpointStatus(query.status) ? query.status : '';
    const q = typeof query.q === 'string' ? query.q.slice(0, 100) : '';
    const page = await listEndpoints(request.em, request.actor!.enterpriseId, {
      status,
      q,
      after: endpointCursor(query.after),
      before: endpointCursor(query.before),
    });
    return reply.page(
      'endpoints/index',
      { title: 'Endpoints', section: 'endpoints', page, status, q, statuses: ENDPOINT_STATUSES },
      { partial: 'endpoints/_results' },
    );
  });

  app.get('/endpoints/new', { config: { adminOnly: true } }, async (request, reply) => {
    return reply.page('endpoints/new', {
      title: 'Create endpoint',
      section: 'endpoints',
      values: newEndpointValues(request.query),
      key: oneTimeKey(),
    });
  });

  app.post('/endpoints', async (request, reply) => {
    const values = newEndpointValues(request.body);
    try {
      const outcome = await createEndpoint(request.em, operationContext(request), {
        name: values.name,
        imei: values.imei,
        iccid: values.iccid,
        activateImmediately: values.activateImmediately,
      });
      reply.flash(
        'success',
        outcome.message,
        outcome.replayed ? undefined : { type: 'endpoint.created', endpointId: outcome.endpointId, iccid: outcome.iccid },
      );
      return reply.redirect(`/endpoints/${outcome.endpointId}`, 303);
    } catch (error) {
      // Whatever went wrong, the person keeps what they typed and reads why above the form.
      if (!(error instanceof ValidationError) && !(error instanceof ConflictError)) throw error;
      const errors =
        error instanceof ValidationError
          ? error.errors.map((e) => (e.field === 'key' ? { ...e, field: 'name' } : e))
          : [{ field: values.iccid ? 'iccid' : 'name', message: error.message }];
      return reply.page(
        'endpoints/new',
        { title: 'Create endpoint', section: 'endpoints', values, key: oneTimeKey(), errors: fieldErrors(errors) },
        { status: error instanceof ValidationError ? 422 : 409 },
      );
    }
  });

  app.get('/endpoints/:id', async (request, reply) => renderEndpoint(request, reply, endpointIdOf(request)));
}
