// The enterprise-wide history: every event, newest first, filterable by what happened.
import type { FastifyInstance } from 'fastify';
import { EVENT_ACTION_LABELS, isEventAction, listEvents } from '../domain/queries/endpoints.js';

export async function eventsRoutes(app: FastifyInstance) {
  app.get('/events', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const action = isEventAction(query.action) ? query.action : '';
    const before = typeof query.before === 'string' ? query.before : null;
    const { rows, older } = await listEvents(request.em, request.actor!.enterpriseId, { action, before });
    return reply.page('events/index', { title: 'History', section: 'events', rows, older, paged: Boolean(before), action, actionLabels: EVENT_ACTION_LABELS });
  });
}
