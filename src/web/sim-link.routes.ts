// Linking and de-linking, a sub-resource of the endpoint (after campfire's `resource :ban`), and the
// other lifecycle steps. Every change goes through a server-rendered confirmation ("Are you sure you want
// to continue?") carrying the CSRF token and a one-time key; Yes posts it, No goes back unchanged.
//   GET  /endpoints/:id/sim/new          the picker (Select SIM to attach)
//   GET  /endpoints/:id/sim/confirm      confirmation of the chosen SIM   POST /endpoints/:id/sim  link
//   GET  /endpoints/:id/sim/delete       confirmation of the de-link      POST /endpoints/:id/sim/delete
//   GET  /endpoints/:id/{activate,suspend,resume}                        POST the same
//   GET  /endpoints/new/sim              the picker for Create endpoint; /endpoints/new/sim/choose returns to the form
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConflictError, InvalidStateError } from '../domain/errors.js';
import {
  activateEndpoint,
  consequence,
  delinkSim,
  linkSim,
  refusal,
  resumeEndpoint,
  suspendEndpoint,
  CONFLICT_SIM_TAKEN,
  type OperationContext,
  type Outcome,
} from '../domain/lifecycle.js';
import { getEndpoint, type EndpointDetail } from '../domain/queries/endpoints.js';
import { findSim, pickerPage } from '../domain/queries/picker.js';
import { iccidCursor } from '../domain/queries/paging.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  endpointIdOf,
  newEndpointValues,
  oneTimeKey,
  operationContext,
  renderEndpoint,
  type NewEndpointValues,
} from './endpoints.routes.js';
import { field, fieldErrors, idParam } from './forms.js';

type Step = 'delink' | 'activate' | 'suspend' | 'resume';

/** The pickers and confirmations lead only to changes: a viewer is told at once, not after Yes. */
const ADMIN_ONLY = { config: { adminOnly: true } };

const STEPS: Record<
  Step,
  {
    path: string;
    title: string;
    summary: (e: EndpointDetail) => string;
    run: (em: EntityManager, ctx: OperationContext, endpointId: number) => Promise<Outcome>;
    event: string;
  }
> = {
  delink: {
    path: 'sim/delete',
    title: 'De-link SIM',
    summary: (e) => `De-link SIM ${e.sim?.iccid} from endpoint '${e.name}'.`,
    run: delinkSim,
    event: 'sim.delinked',
  },
  activate: {
    path: 'activate',
    title: 'Activate endpoint',
    summary: (e) => `Activate endpoint '${e.name}' and its SIM ${e.sim?.iccid}.`,
    run: activateEndpoint,
    event: 'endpoint.activated',
  },
  suspend: {
    path: 'suspend',
    title: 'Suspend endpoint',
    summary: (e) => `Suspend endpoint '${e.name}' and its SIM ${e.sim?.iccid}.`,
    run: suspendEndpoint,
    event: 'endpoint.suspended',
  },
  resume: {
    path: 'resume',
    title: 'Resume endpoint',
    summary: (e) => `Resume endpoint '${e.name}' and its SIM ${e.sim?.iccid}.`,
    run: resumeEndpoint,
    event: 'endpoint.resumed',
  },
};

interface PickerTarget {
  /** Where the picker lives (search and page links). */
  base: string;
  /** Where Attach SIM goes, and where Cancel goes. */
  choose: string;
  cancel: string;
  /** Values carried through the picker (Create endpoint's form). */
  carry: Record<string, string>;
  endpoint?: EndpointDetail;
  mode: 'link' | 'create';
}

function carried(values: NewEndpointValues): Record<string, string> {
  return {
    name: values.name,
    imei: values.imei,
    iccid: values.iccid,
    ...(values.activateImmediately ? { activate_immediately: 'on' } : {}),
  };
}

async function renderPicker(
  request: FastifyRequest,
  reply: FastifyReply,
  target: PickerTarget,
  problem?: { status: number; message: string },
) {
  const query = request.query as Record<string, unknown>;
  const q = typeof query.q === 'string' ? query.q.slice(0, 64) : '';
  const page = await pickerPage(request.em, request.actor!.enterpriseId, {
    q,
    after: iccidCursor(query.after),
    before: iccidCursor(query.before),
  });
  // The search box and the page links replace only the results; Link SIM loads the whole picker.
  const partial = request.headers['hx-target'] === 'picker-results' ? 'sim-link/_picker-results' : 'sim-link/_picker';
  return reply.page(
    'sim-link/picker',
    {
      title: 'Select SIM to attach',
      section: 'endpoints',
      target,
      page,
      q,
      errors: problem ? fieldErrors([{ field: 'picker-table', message: problem.message }]) : undefined,
    },
    { partial, status: problem?.status },
  );
}

function linkTarget(endpoint: EndpointDetail): PickerTarget {
  return {
    base: `/endpoints/${endpoint.id}/sim/new`,
    choose: `/endpoints/${endpoint.id}/sim/confirm`,
    cancel: `/endpoints/${endpoint.id}`,
    carry: {},
    endpoint,
    mode: 'link',
  };
}

function createTarget(values: NewEndpointValues): PickerTarget {
  const carry = carried(values);
  return {
    base: '/endpoints/new/sim',
    choose: '/endpoints/new/sim/choose',
    cancel: `/endpoints/new?${new URLSearchParams(carry)}`,
    carry,
    mode: 'create',
  };
}

/** The endpoint, if the operation is allowed on it now; else the endpoint page with the reason (409). */
async function endpointFor(request: FastifyRequest, reply: FastifyReply, operation: 'link' | Step) {
  const endpoint = await getEndpoint(request.em, request.actor!.enterpriseId, endpointIdOf(request));
  const reason = refusal(operation, endpoint);
  if (reason) {
    // A stale button (the endpoint changed since the page was drawn): with htmx, reload the endpoint page
    // with the reason rather than drawing a whole page inside the dialog.
    if (request.isHtmx) {
      reply.flash('error', reason);
      reply.header('HX-Redirect', `/endpoints/${endpoint.id}`).code(409).send('');
      return null;
    }
    await renderEndpoint(request, reply, endpoint.id, { status: 409, message: reason });
    return null;
  }
  return endpoint;
}

export async function simLinkRoutes(app: FastifyInstance) {
  // The picker for an endpoint on Hold.
  app.get('/endpoints/:id/sim/new', ADMIN_ONLY, async (request, reply) => {
    const endpoint = await endpointFor(request, reply, 'link');
    if (!endpoint) return reply;
    return renderPicker(request, reply, linkTarget(endpoint));
  });

  // Attach SIM → the confirmation (or the picker again, 422, when no SIM was chosen).
  app.get('/endpoints/:id/sim/confirm', ADMIN_ONLY, async (request, reply) => {
    const endpoint = await endpointFor(request, reply, 'link');
    if (!endpoint) return reply;
    const simId = idParam((request.query as Record<string, unknown>).sim_id);
    const sim = simId ? await findSim(request.em, request.actor!.enterpriseId, simId) : null;
    if (!sim) return renderPicker(request, reply, linkTarget(endpoint), { status: 422, message: 'Select a SIM to attach' });
    if (sim.status !== 'ready') return renderPicker(request, reply, linkTarget(endpoint), { status: 409, message: CONFLICT_SIM_TAKEN });
    return reply.page(
      'sim-link/confirm',
      {
        title: 'Are you sure you want to continue?',
        section: 'endpoints',
        action: `/endpoints/${endpoint.id}/sim`,
        back: `/endpoints/${endpoint.id}`,
        summary: `Link SIM ${sim.iccid} to endpoint '${endpoint.name}'.`,
        consequence: consequence('link', endpoint.activateImmediately),
        fields: { sim_id: String(sim.id), key: oneTimeKey() },
      },
      { partial: 'sim-link/_confirm' },
    );
  });

  app.post('/endpoints/:id/sim', async (request, reply) => {
    const endpointId = endpointIdOf(request);
    const simId = idParam(field(request.body, 'sim_id', 12));
    if (!simId) {
      const endpoint = await endpointFor(request, reply, 'link');
      if (!endpoint) return reply;
      return renderPicker(request, reply, linkTarget(endpoint), { status: 422, message: 'Select a SIM to attach' });
    }
    try {
      const outcome = await linkSim(request.em, operationContext(request), endpointId, simId);
      // A replayed form changed nothing this time: the CRM has already been told.
      reply.flash('success', outcome.message, outcome.replayed ? undefined : { type: 'sim.linked', endpointId, iccid: outcome.iccid });
      return reply.redirect(`/endpoints/${endpointId}`, 303);
    } catch (error) {
      // Someone else took the SIM: the picker again, refreshed, with the reason.
      if (error instanceof ConflictError) {
        const endpoint = await getEndpoint(request.em.fork(), request.actor!.enterpriseId, endpointId);
        if (endpoint.status === 'hold') return renderPicker(request, reply, linkTarget(endpoint), { status: 409, message: error.message });
        return renderEndpoint(request, reply, endpointId, { status: 409, message: error.message });
      }
      if (error instanceof InvalidStateError) return renderEndpoint(request, reply, endpointId, { status: 409, message: error.message });
      throw error;
    }
  });

  for (const [operation, step] of Object.entries(STEPS) as [Step, (typeof STEPS)[Step]][]) {
    app.get(`/endpoints/:id/${step.path}`, ADMIN_ONLY, async (request, reply) => {
      const endpoint = await endpointFor(request, reply, operation);
      if (!endpoint) return reply;
      return reply.page(
        'sim-link/confirm',
        {
          title: 'Are you sure you want to continue?',
          section: 'endpoints',
          action: `/endpoints/${endpoint.id}/${step.path}`,
          back: `/endpoints/${endpoint.id}`,
          summary: step.summary(endpoint),
          consequence: consequence(operation, endpoint.activateImmediately),
          fields: { key: oneTimeKey() },
        },
        { partial: 'sim-link/_confirm' },
      );
    });

    app.post(`/endpoints/:id/${step.path}`, async (request, reply) => {
      const endpointId = endpointIdOf(request);
      try {
        const outcome = await step.run(request.em, operationContext(request), endpointId);
        reply.flash('success', outcome.message, outcome.replayed ? undefined : { type: step.event, endpointId, iccid: outcome.iccid });
        return reply.redirect(`/endpoints/${endpointId}`, 303);
      } catch (error) {
        if (error instanceof ConflictError || error instanceof InvalidStateError) {
          return renderEndpoint(request, reply, endpointId, { status: 409, message: error.message });
        }
        throw error;
      }
    });
  }

  // Create endpoint's picker: the form's values travel with it, Attach SIM returns to the form.
  app.get('/endpoints/new/sim', ADMIN_ONLY, async (request, reply) => {
    return renderPicker(request, reply, createTarget(newEndpointValues(request.query)));
  });

  // Without JavaScript "Choose a SIM" submits the whole form: keep its values, drop the token and key.
  app.post('/endpoints/new/sim', async (request, reply) =>
    reply.redirect(`/endpoints/new/sim?${new URLSearchParams(carried(newEndpointValues(request.body)))}`, 303),
  );

  app.get('/endpoints/new/sim/choose', ADMIN_ONLY, async (request, reply) => {
    const values = newEndpointValues(request.query);
    const simId = idParam((request.query as Record<string, unknown>).sim_id);
    const sim = simId ? await findSim(request.em, request.actor!.enterpriseId, simId) : null;
    if (!sim) return renderPicker(request, reply, createTarget(values), { status: 422, message: 'Select a SIM to attach' });
    if (sim.status !== 'ready') return renderPicker(request, reply, createTarget(values), { status: 409, message: CONFLICT_SIM_TAKEN });
    return reply.redirect(`/endpoints/new?${new URLSearchParams({ ...carried(values), iccid: sim.iccid })}`, 303);
  });
}
