// What the endpoint screens share: the endpoint page (with a refused or lost operation's reason), the
// guard that an operation is still allowed before its confirmation is drawn, the confirmation page, Create
// endpoint's form values, and the confirmed steps (GET the confirmation, POST Yes) that de-link and the
// lifecycle routes are made of. Used by endpoints.routes.ts, sim-link.routes.ts and lifecycle.routes.ts.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ConflictError, InvalidStateError, NotFoundError } from '../domain/errors.js';
import { consequence, refusal, type OperationContext, type Outcome } from '../domain/lifecycle.js';
import { getEndpoint, type EndpointDetail } from '../domain/queries/endpoints.js';
import { endpointHistory, EVENT_ACTION_LABELS } from '../domain/queries/history.js';
import { newFormKey } from '../domain/form-keys.js';
import { fieldErrors, idParam } from './forms.js';
import { actorOf } from './plugins/session.js';
import { ConfirmBody, EndpointParams } from './schemas.js';

export type Operation = 'link' | 'delink' | 'swap' | 'activate' | 'suspend' | 'resume';

/** A refused or lost operation: its status and the reason shown above the page. */
export interface Problem {
  status: number;
  message: string;
}

/** Who acts, for which request, with which confirmation form's one-time key. */
export function operationContext(request: FastifyRequest, key: string | undefined): OperationContext {
  // A session started from a CRM's launch link is the CRM's: its changes are recorded with source `crm`.
  return { actor: actorOf(request), requestId: request.id, key: key || undefined, source: request.session?.embedded ? 'crm' : 'ui' };
}

/** The endpoint id of a route like /endpoints/:id…; one the schema let through but PostgreSQL cannot hold is answered like an unknown one. */
export function endpointIdOf(params: EndpointParams): number {
  const id = idParam(params.id);
  if (id === null) throw new NotFoundError('endpoint');
  return id;
}

export interface NewEndpointValues {
  name: string;
  imei: string;
  iccid: string;
  activateImmediately: boolean;
}

/** Create endpoint's values, from its form or from the picker's query that carries them. */
export function newEndpointValues(source: {
  name?: string;
  imei?: string;
  iccid?: string;
  activate_immediately?: string;
}): NewEndpointValues {
  return {
    name: source.name ?? '',
    imei: source.imei ?? '',
    iccid: source.iccid ?? '',
    activateImmediately: ['on', 'true', '1'].includes(source.activate_immediately ?? ''),
  };
}

/** The endpoint page, optionally with an error summary (a refused or lost operation) and its status code. */
export async function renderEndpoint(request: FastifyRequest, reply: FastifyReply, endpointId: number, problem?: Problem) {
  const actor = actorOf(request);
  const endpoint = await getEndpoint(request.em, actor.enterpriseId, endpointId);
  const history = await endpointHistory(request.em, actor.enterpriseId, endpointId);
  const can = (operation: Operation) => actor.role === 'admin' && refusal(operation, endpoint) === null;
  return reply.page(
    'endpoints/show',
    {
      title: endpoint.name,
      section: 'endpoints',
      endpoint,
      history,
      actionLabels: EVENT_ACTION_LABELS,
      actions: {
        link: can('link'),
        swap: can('swap'),
        delink: can('delink'),
        activate: can('activate'),
        suspend: can('suspend'),
        resume: can('resume'),
      },
      errors: problem ? fieldErrors([{ field: 'endpoint-actions', message: problem.message }]) : undefined,
    },
    // Asked for inside a dialog (a stale button: the endpoint changed since the page was drawn), htmx
    // reloads the endpoint page with the reason rather than drawing a whole page inside the dialog.
    { status: problem?.status, otherwise: problem ? { url: `/endpoints/${endpointId}`, flash: problem.message } : undefined },
  );
}

/** The endpoint, if the operation is allowed on it now; else the endpoint page with the reason (409) and null. */
export async function endpointFor(request: FastifyRequest, reply: FastifyReply, endpointId: number, operation: Operation) {
  const endpoint = await getEndpoint(request.em, actorOf(request).enterpriseId, endpointId);
  const reason = refusal(operation, endpoint);
  if (reason) {
    await renderEndpoint(request, reply, endpoint.id, { status: 409, message: reason });
    return null;
  }
  return endpoint;
}

/** "Are you sure you want to continue?": what Yes does, Yes (posts `fields` to `action`) and No (back to the endpoint). */
export function confirmPage(
  reply: FastifyReply,
  endpoint: EndpointDetail,
  page: { action: string; summary: string; operation: Operation; fields: Record<string, string> },
) {
  return reply.page(
    'sim-link/confirm',
    {
      title: 'Are you sure you want to continue?',
      section: 'endpoints',
      action: page.action,
      back: `/endpoints/${endpoint.id}`,
      summary: page.summary,
      consequence: consequence(page.operation, endpoint.activateImmediately),
      fields: page.fields,
    },
    { partial: 'sim-link/_confirm' },
  );
}

/** An operation taken in two steps: its confirmation (GET) and Yes (POST), both at /endpoints/:id/<path>. */
export interface ConfirmedStep {
  operation: Exclude<Operation, 'link'>;
  path: string;
  summary: (e: EndpointDetail) => string;
  run: (em: EntityManager, ctx: OperationContext, endpointId: number) => Promise<Outcome>;
  /** What the CRM is told (README, "Listen to SIM Link"). */
  event: string;
}

/** The pickers and confirmations lead only to changes: a viewer is told at once, not after Yes. */
export const ADMIN_ONLY = { adminOnly: true };

export function confirmedStepRoutes(app: FastifyInstance, step: ConfirmedStep) {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  typed.get(`/endpoints/:id/${step.path}`, { config: ADMIN_ONLY, schema: { params: EndpointParams } }, async (request, reply) => {
    const endpoint = await endpointFor(request, reply, endpointIdOf(request.params), step.operation);
    if (!endpoint) return reply;
    return confirmPage(reply, endpoint, {
      action: `/endpoints/${endpoint.id}/${step.path}`,
      summary: step.summary(endpoint),
      operation: step.operation,
      fields: { key: newFormKey() },
    });
  });

  typed.post(`/endpoints/:id/${step.path}`, { schema: { params: EndpointParams, body: ConfirmBody } }, async (request, reply) => {
    const endpointId = endpointIdOf(request.params);
    try {
      const outcome = await step.run(request.em, operationContext(request, request.body.key), endpointId);
      // A replayed form changed nothing this time: the CRM has already been told.
      reply.flash('success', outcome.message, outcome.replayed ? undefined : { type: step.event, endpointId, iccid: outcome.iccid });
      return reply.seeOther(`/endpoints/${endpointId}`);
    } catch (error) {
      if (error instanceof ConflictError || error instanceof InvalidStateError) {
        return renderEndpoint(request, reply, endpointId, { status: 409, message: error.message });
      }
      throw error;
    }
  });
}
