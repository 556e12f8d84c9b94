// The enterprise-wide history: every event, newest first, filterable by what happened.
import { eventsCsv } from '../domain/exports.js';
import { sendCsv } from './csv-download.js';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { getEndpoint } from '../domain/queries/endpoints.js';
import { EVENT_ACTION_LABELS, eventCursor, isEventAction, listEvents } from '../domain/queries/history.js';
import { idParam } from './forms.js';
import { actorOf } from './plugins/session.js';
import { EventsQuery, pageCursor } from './schemas.js';

export async function eventsRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  // Download CSV: every event matching the filter, newest first, streamed.
  app.get('/events/export.csv', { schema: { querystring: EventsQuery } }, async (request, reply) => {
    const query = request.query;
    const { enterpriseId } = actorOf(request);
    const endpointId = idParam(query.endpoint);
    if (endpointId) await getEndpoint(request.em, enterpriseId, endpointId);
    const rows = eventsCsv(request.em, enterpriseId, { action: isEventAction(query.action) ? query.action : '', endpointId });
    return sendCsv(reply, 'history.csv', rows);
  });

  app.get('/events', { schema: { querystring: EventsQuery } }, async (request, reply) => {
    const query = request.query;
    const { enterpriseId } = actorOf(request);
    const action = isEventAction(query.action) ? query.action : '';
    const before = pageCursor(query.before, eventCursor);
    // ?endpoint=<id>: one endpoint's whole history (its page shows the latest 50); another enterprise's → 404.
    const endpointId = idParam(query.endpoint);
    const endpoint = endpointId ? await getEndpoint(request.em, enterpriseId, endpointId) : null;
    const { rows, older } = await listEvents(request.em, enterpriseId, { action, before, endpointId });
    return reply.page(
      'events/index',
      {
        title: endpoint ? `History of ${endpoint.name}` : 'History',
        section: 'events',
        rows,
        older,
        paged: Boolean(before),
        action,
        endpoint,
        actionLabels: EVENT_ACTION_LABELS,
      },
      { partial: 'events/_results' },
    );
  });
}
