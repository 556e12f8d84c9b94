// The endpoint screens: the list (filter, search, keyset pages), Create endpoint, and the endpoint page
// with its SIM panel, the actions its state allows and its history.
import { endpointsCsv } from '../domain/exports.js';
import { sendCsv } from './csv-download.js';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ENDPOINT_STATUSES } from '../domain/entities.js';
import { ConflictError, ValidationError } from '../domain/errors.js';
import { createEndpoint } from '../domain/lifecycle.js';
import { endpointCursor, isEndpointStatus, listEndpoints } from '../domain/queries/endpoints.js';
import { ADMIN_ONLY, endpointIdOf, newEndpointValues, operationContext, renderEndpoint } from './endpoint-pages.js';
import { newFormKey } from '../domain/form-keys.js';
import { fieldErrors } from './forms.js';
import { actorOf } from './plugins/session.js';
import { EndpointParams, ListQuery, NewEndpointBody, NewEndpointQuery, pageCursor } from './schemas.js';

export async function endpointsRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  // Download CSV: every endpoint matching the filter and search on the screen, streamed.
  app.get('/endpoints/export.csv', { schema: { querystring: ListQuery } }, async (request, reply) => {
    const query = request.query;
    const rows = endpointsCsv(request.em, actorOf(request).enterpriseId, {
      status: isEndpointStatus(query.status) ? query.status : '',
      q: query.q ?? '',
    });
    return sendCsv(reply, 'endpoints.csv', rows);
  });

  app.get('/endpoints', { schema: { querystring: ListQuery } }, async (request, reply) => {
    const query = request.query;
    const status = isEndpointStatus(query.status) ? query.status : '';
    const q = query.q ?? '';
    const page = await listEndpoints(request.em, actorOf(request).enterpriseId, {
      status,
      q,
      after: pageCursor(query.after, endpointCursor),
      before: pageCursor(query.before, endpointCursor),
    });
    return reply.page(
      'endpoints/index',
      { title: 'Endpoints', section: 'endpoints', page, status, q, statuses: ENDPOINT_STATUSES },
      { partial: 'endpoints/_results' },
    );
  });

  app.get('/endpoints/new', { config: ADMIN_ONLY, schema: { querystring: NewEndpointQuery } }, async (request, reply) => {
    return reply.page('endpoints/new', {
      title: 'Create endpoint',
      section: 'endpoints',
      values: newEndpointValues(request.query),
      key: newFormKey(),
    });
  });

  app.post('/endpoints', { schema: { body: NewEndpointBody } }, async (request, reply) => {
    const values = newEndpointValues(request.body);
    try {
      const outcome = await createEndpoint(request.em, operationContext(request, request.body.key), {
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
      return reply.seeOther(`/endpoints/${outcome.endpointId}`);
    } catch (error) {
      // Whatever went wrong, the person keeps what they typed and reads why above the form.
      if (!(error instanceof ValidationError) && !(error instanceof ConflictError)) throw error;
      const errors =
        error instanceof ValidationError
          ? error.errors.map((e) => (e.field === 'key' ? { ...e, field: 'name' } : e))
          : [{ field: values.iccid ? 'iccid' : 'name', message: error.message }];
      return reply.page(
        'endpoints/new',
        { title: 'Create endpoint', section: 'endpoints', values, key: newFormKey(), errors: fieldErrors(errors) },
        { status: error instanceof ValidationError ? 422 : 409 },
      );
    }
  });

  app.get('/endpoints/:id', { schema: { params: EndpointParams } }, async (request, reply) =>
    renderEndpoint(request, reply, endpointIdOf(request.params)),
  );
}
