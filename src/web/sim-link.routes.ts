// Linking and de-linking, a sub-resource of the endpoint (after campfire's `resource :ban`). Every change
// goes through a server-rendered confirmation ("Are you sure you want to continue?") carrying the CSRF
// token and a one-time key; Yes posts it, No goes back unchanged.
//   GET  /endpoints/:id/sim/new          the picker (Select SIM to attach)
//   GET  /endpoints/:id/sim/confirm      confirmation of the chosen SIM   POST /endpoints/:id/sim  link
//   GET  /endpoints/:id/sim/delete       confirmation of the de-link      POST /endpoints/:id/sim/delete
//   GET  /endpoints/:id/sim/swap         the picker for Swap SIM; …/swap/confirm the confirmation; POST …/swap the swap
//   GET  /endpoints/new/sim              the picker for Create endpoint; /endpoints/new/sim/choose returns to the form
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ConflictError, InvalidStateError } from '../domain/errors.js';
import { delinkSim, linkSim, swapSim, CONFLICT_SAME_SIM, CONFLICT_SIM_TAKEN } from '../domain/lifecycle.js';
import { getEndpoint, type EndpointDetail } from '../domain/queries/endpoints.js';
import { findSim, pickerPage } from '../domain/queries/picker.js';
import { iccidCursor } from '../domain/queries/paging.js';
import {
  ADMIN_ONLY,
  confirmedStepRoutes,
  confirmPage,
  endpointFor,
  endpointIdOf,
  newEndpointValues,
  operationContext,
  renderEndpoint,
  type NewEndpointValues,
  type Problem,
} from './endpoint-pages.js';
import { newFormKey } from '../domain/form-keys.js';
import { fieldErrors, idParam } from './forms.js';
import { actorOf } from './plugins/session.js';
import { ConfirmBody, EndpointParams, NewEndpointBody, NewEndpointQuery, PickerQuery, pageCursor } from './schemas.js';

interface PickerTarget {
  /** Where the picker lives (search and page links). */
  base: string;
  /** Where Attach SIM goes, and where Cancel goes. */
  choose: string;
  cancel: string;
  /** Values carried through the picker (Create endpoint's form). */
  carry: Record<string, string>;
  endpoint?: EndpointDetail;
  mode: 'link' | 'swap' | 'create';
}

const SELECT_A_SIM = 'Select a SIM to attach';

function carried(values: NewEndpointValues): Record<string, string> {
  return {
    name: values.name,
    imei: values.imei,
    iccid: values.iccid,
    ...(values.activateImmediately ? { activate_immediately: 'on' } : {}),
  };
}

async function renderPicker(request: FastifyRequest, reply: FastifyReply, query: PickerQuery, target: PickerTarget, problem?: Problem) {
  const q = (query.q ?? '').slice(0, 64);
  const page = await pickerPage(request.em, actorOf(request).enterpriseId, {
    q,
    after: pageCursor(query.after, iccidCursor),
    before: pageCursor(query.before, iccidCursor),
  });
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
    // The search box and the page links replace only the results; Link SIM loads the whole picker.
    { partial: { 'picker-results': 'sim-link/_picker-results', '*': 'sim-link/_picker' }, status: problem?.status },
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

function swapTarget(endpoint: EndpointDetail): PickerTarget {
  return {
    base: `/endpoints/${endpoint.id}/sim/swap`,
    choose: `/endpoints/${endpoint.id}/sim/swap/confirm`,
    cancel: `/endpoints/${endpoint.id}`,
    carry: {},
    endpoint,
    mode: 'swap',
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

/** The SIM chosen in a picker (by id), or null when none (or none of this enterprise) was chosen. */
async function chosenSim(request: FastifyRequest, simId: string | undefined) {
  const id = idParam(simId);
  return id ? findSim(request.em, actorOf(request).enterpriseId, id) : null;
}

export async function simLinkRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  // The picker for an endpoint on Hold.
  app.get(
    '/endpoints/:id/sim/new',
    { config: ADMIN_ONLY, schema: { params: EndpointParams, querystring: PickerQuery } },
    async (request, reply) => {
      const endpoint = await endpointFor(request, reply, endpointIdOf(request.params), 'link');
      if (!endpoint) return reply;
      return renderPicker(request, reply, request.query, linkTarget(endpoint));
    },
  );

  // Attach SIM → the confirmation (or the picker again, 422, when no SIM was chosen).
  app.get(
    '/endpoints/:id/sim/confirm',
    { config: ADMIN_ONLY, schema: { params: EndpointParams, querystring: PickerQuery } },
    async (request, reply) => {
      const endpoint = await endpointFor(request, reply, endpointIdOf(request.params), 'link');
      if (!endpoint) return reply;
      const sim = await chosenSim(request, request.query.sim_id);
      if (!sim) return renderPicker(request, reply, request.query, linkTarget(endpoint), { status: 422, message: SELECT_A_SIM });
      if (sim.status !== 'ready')
        return renderPicker(request, reply, request.query, linkTarget(endpoint), { status: 409, message: CONFLICT_SIM_TAKEN });
      return confirmPage(reply, endpoint, {
        action: `/endpoints/${endpoint.id}/sim`,
        summary: `Link SIM ${sim.iccid} to endpoint '${endpoint.name}'.`,
        operation: 'link',
        fields: { sim_id: String(sim.id), key: newFormKey() },
      });
    },
  );

  app.post('/endpoints/:id/sim', { schema: { params: EndpointParams, body: ConfirmBody } }, async (request, reply) => {
    const endpointId = endpointIdOf(request.params);
    const simId = idParam(request.body.sim_id);
    if (!simId) {
      const endpoint = await endpointFor(request, reply, endpointId, 'link');
      if (!endpoint) return reply;
      return renderPicker(request, reply, {}, linkTarget(endpoint), { status: 422, message: SELECT_A_SIM });
    }
    try {
      const outcome = await linkSim(request.em, operationContext(request, request.body.key), endpointId, simId);
      // A replayed form changed nothing this time: the CRM has already been told.
      reply.flash('success', outcome.message, outcome.replayed ? undefined : { type: 'sim.linked', endpointId, iccid: outcome.iccid });
      return reply.seeOther(`/endpoints/${endpointId}`);
    } catch (error) {
      // Someone else took the SIM: the picker again, refreshed, with the reason.
      if (error instanceof ConflictError) {
        const endpoint = await getEndpoint(request.em.fork(), actorOf(request).enterpriseId, endpointId);
        if (endpoint.status === 'hold')
          return renderPicker(request, reply, {}, linkTarget(endpoint), { status: 409, message: error.message });
        return renderEndpoint(request, reply, endpointId, { status: 409, message: error.message });
      }
      if (error instanceof InvalidStateError) return renderEndpoint(request, reply, endpointId, { status: 409, message: error.message });
      throw error;
    }
  });

  // Swap SIM: the same picker and confirmation as Link SIM, for an endpoint that has a SIM.
  app.get(
    '/endpoints/:id/sim/swap',
    { config: ADMIN_ONLY, schema: { params: EndpointParams, querystring: PickerQuery } },
    async (request, reply) => {
      const endpoint = await endpointFor(request, reply, endpointIdOf(request.params), 'swap');
      if (!endpoint) return reply;
      return renderPicker(request, reply, request.query, swapTarget(endpoint));
    },
  );

  app.get(
    '/endpoints/:id/sim/swap/confirm',
    { config: ADMIN_ONLY, schema: { params: EndpointParams, querystring: PickerQuery } },
    async (request, reply) => {
      const endpoint = await endpointFor(request, reply, endpointIdOf(request.params), 'swap');
      if (!endpoint) return reply;
      const sim = await chosenSim(request, request.query.sim_id);
      if (!sim) return renderPicker(request, reply, request.query, swapTarget(endpoint), { status: 422, message: SELECT_A_SIM });
      if (sim.status !== 'ready') {
        // The endpoint's own SIM is not "linked to another endpoint": say what it is.
        const message = sim.id === endpoint.sim?.id ? CONFLICT_SAME_SIM : CONFLICT_SIM_TAKEN;
        return renderPicker(request, reply, request.query, swapTarget(endpoint), { status: 409, message });
      }
      return confirmPage(reply, endpoint, {
        action: `/endpoints/${endpoint.id}/sim/swap`,
        summary: `Swap SIM ${endpoint.sim?.iccid} of endpoint '${endpoint.name}' for SIM ${sim.iccid}.`,
        operation: 'swap',
        fields: { sim_id: String(sim.id), key: newFormKey() },
      });
    },
  );

  app.post('/endpoints/:id/sim/swap', { schema: { params: EndpointParams, body: ConfirmBody } }, async (request, reply) => {
    const endpointId = endpointIdOf(request.params);
    const simId = idParam(request.body.sim_id);
    if (!simId) {
      const endpoint = await endpointFor(request, reply, endpointId, 'swap');
      if (!endpoint) return reply;
      return renderPicker(request, reply, {}, swapTarget(endpoint), { status: 422, message: SELECT_A_SIM });
    }
    try {
      const outcome = await swapSim(request.em, operationContext(request, request.body.key), endpointId, simId);
      reply.flash('success', outcome.message, outcome.replayed ? undefined : { type: 'sim.swapped', endpointId, iccid: outcome.iccid });
      return reply.seeOther(`/endpoints/${endpointId}`);
    } catch (error) {
      // Someone else took the SIM, or changed the endpoint: the endpoint page with the reason.
      if (error instanceof ConflictError || error instanceof InvalidStateError)
        return renderEndpoint(request, reply, endpointId, { status: 409, message: error.message });
      throw error;
    }
  });

  confirmedStepRoutes(fastify, {
    operation: 'delink',
    path: 'sim/delete',
    summary: (e) => `De-link SIM ${e.sim?.iccid} from endpoint '${e.name}'.`,
    run: delinkSim,
    event: 'sim.delinked',
  });

  // Create endpoint's picker: the form's values travel with it, Attach SIM returns to the form.
  app.get('/endpoints/new/sim', { config: ADMIN_ONLY, schema: { querystring: NewEndpointQuery } }, async (request, reply) => {
    return renderPicker(request, reply, request.query, createTarget(newEndpointValues(request.query)));
  });

  // Without JavaScript "Choose a SIM" submits the whole form: keep its values, drop the token and key.
  app.post('/endpoints/new/sim', { schema: { body: NewEndpointBody } }, async (request, reply) =>
    reply.seeOther(`/endpoints/new/sim?${new URLSearchParams(carried(newEndpointValues(request.body)))}`),
  );

  app.get('/endpoints/new/sim/choose', { config: ADMIN_ONLY, schema: { querystring: NewEndpointQuery } }, async (request, reply) => {
    const values = newEndpointValues(request.query);
    const sim = await chosenSim(request, request.query.sim_id);
    if (!sim) return renderPicker(request, reply, request.query, createTarget(values), { status: 422, message: SELECT_A_SIM });
    if (sim.status !== 'ready')
      return renderPicker(request, reply, request.query, createTarget(values), { status: 409, message: CONFLICT_SIM_TAKEN });
    return reply.seeOther(`/endpoints/new?${new URLSearchParams({ ...carried(values), iccid: sim.iccid })}`);
  });
}
