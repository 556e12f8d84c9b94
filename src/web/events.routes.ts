// The enterprise-wide history: every event, newest first, filterable by what happened.
import type { FastifyInstance } from 'fastify';
import { getEndpoint } from '../domain/queries/endpoints.js';
import { EVENT_ACTION_LABELS, isEventAction, listEvents } from '../domain/queries/history.js';
import { idParam } from './forms.js';

export async function eventsRoutes(app: FastifyInstance) {
  app.get('/events', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const action = isEventAction(query.action) ? query.action : '';
    const before = typeof query.before === 'string' ? query.before : null;
    // ?endpoint=<id>: one endpoint's whole history (its page shows the latest 50); another enterprise's → 404.
    const endpointId = idParam(query.endpoint);
    const endpoint = endpointId ? await getEndpoint(request.em, request.actor!.enterpriseId, endpointId) : null;
    const { rows, older } = await listEvents(request.em, request.actor!.enterpriseId, { action, before, endpointId });
    return reply.page('events/index', {
      title: endpoint ? `History of ${endpoint.name}` : 'History',
      section: 'events',
      rows,
      older,
      paged: Boolean(before),
      action,
      endpoint,
      actionLabels: EVENT_ACTION_LABELS,
    });
  });
}
