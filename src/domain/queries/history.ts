// Read models of the audit trail: one endpoint's latest events (its page; planned SQL for CPU, see
// planned-sql.ts) and the enterprise's events a page at a time, newest first, optionally of one action or one
// endpoint, through em.findByCursor ordered by the event id descending — ranges of event_endpoint_idx (endpoint_id, id desc),
// event_enterprise_idx (enterprise_id, id desc) and event_action_idx (enterprise_id, action, id desc).
import type { EntityManager } from '@mikro-orm/postgresql';
import { EVENT_ACTIONS, EventSchema, type Event, type EventAction } from '../entities.js';
import { PAGE_SIZE } from './paging.js';
import { endpointHistorySql, runPlanned } from './planned-sql.js';

/** An event as the history shows it (every column but the request id). */
export type EventRow = Pick<
  Event,
  | 'id'
  | 'action'
  | 'actorName'
  | 'endpoint'
  | 'endpointName'
  | 'simIccid'
  | 'oldSimIccid'
  | 'endpointStatusBefore'
  | 'endpointStatusAfter'
  | 'simStatusBefore'
  | 'simStatusAfter'
  | 'count'
  | 'problemCount'
  | 'bulkJobId'
  | 'bulkState'
  | 'source'
  | 'createdAt'
>;

/** An event of one endpoint's history (which endpoint goes without saying). */
export type EndpointEventRow = Omit<EventRow, 'endpoint' | 'id' | 'source' | 'bulkJobId' | 'bulkState'> & { id: string };

const EVENT_FIELDS = [
  'id',
  'action',
  'actorName',
  'endpoint',
  'endpointName',
  'simIccid',
  'oldSimIccid',
  'endpointStatusBefore',
  'endpointStatusAfter',
  'simStatusBefore',
  'simStatusAfter',
  'count',
  'problemCount',
  'bulkJobId',
  'bulkState',
  'source',
  'createdAt',
] as const;

export const EVENT_ACTION_LABELS: Record<EventAction, string> = {
  'endpoint.created': 'Endpoint created',
  'sim.linked': 'SIM linked',
  'sim.delinked': 'SIM de-linked',
  'endpoint.activated': 'Activated',
  'endpoint.suspended': 'Suspended',
  'endpoint.resumed': 'Resumed',
  'sims.imported': 'SIMs imported',
  'sims.import_refused': 'SIM import refused',
  'sim.swapped': 'SIM swapped',
  'bulk.completed': 'Bulk change finished',
};

export function isEventAction(value: unknown): value is EventAction {
  return typeof value === 'string' && (EVENT_ACTIONS as readonly string[]).includes(value);
}

/** An endpoint's events, newest first (the endpoint page shows the latest 50): planned SQL, for CPU (see planned-sql.ts). */
export async function endpointHistory(
  em: EntityManager,
  enterpriseId: number,
  endpointId: number,
  limit = 50,
): Promise<EndpointEventRow[]> {
  const statement = endpointHistorySql(enterpriseId, endpointId, limit);
  return runPlanned<EndpointEventRow[]>(em, statement);
}

/** An events page's cursor (the id of the last event shown: a positive integer), or null. */
export function eventCursor(value: unknown): string | null {
  return typeof value === 'string' && /^[1-9][0-9]{0,14}$/.test(value) ? value : null;
}

/** The enterprise's events, newest first, optionally of one action or endpoint; keyset on the id (no count). */
export async function listEvents(
  em: EntityManager,
  enterpriseId: number,
  query: { action?: string; before?: string | null; endpointId?: number | null; limit?: number },
): Promise<{ rows: EventRow[]; older: string | null }> {
  const where: Record<string, unknown> = { enterprise: enterpriseId };
  if (query.endpointId) where.endpoint = query.endpointId;
  if (isEventAction(query.action)) where.action = query.action;
  const cursor = eventCursor(query.before);
  const before = cursor === null ? null : Number(cursor);
  const page = await em.findByCursor(EventSchema, where, {
    first: query.limit ?? PAGE_SIZE * 2,
    // The URL keeps the plain id (`?before=<id>`): an entity-like cursor of the order's one column.
    ...(before !== null ? { after: { id: before } } : {}),
    orderBy: { id: 'desc' },
    fields: EVENT_FIELDS,
    includeCount: false,
    disableIdentityMap: true,
  });
  const rows = page.items;
  return { rows, older: page.hasNextPage && rows.length ? String(rows[rows.length - 1].id) : null };
}

/** An event as Download CSV writes it: plain columns, the endpoint as its id. */
export interface EventExportRow {
  id: string;
  createdAt: Date;
  action: EventAction;
  actorName: string;
  source: string;
  endpoint: number | null;
  endpointName: string | null;
  simIccid: string | null;
  /** The SIM a swap replaced. */
  oldSimIccid: string | null;
  endpointStatusBefore: string | null;
  endpointStatusAfter: string | null;
  simStatusBefore: string | null;
  simStatusAfter: string | null;
  count: number | null;
}

/**
 * Download CSV of the history: the next `limit` events older than an id, newest first, with listEvents's
 * filter and order (the same index ranges) — plain rows from the QueryBuilder, not entities.
 */
export async function eventsExportPage(
  em: EntityManager,
  enterpriseId: number,
  query: { action?: string; endpointId?: number | null; before: string | null; limit: number },
): Promise<EventExportRow[]> {
  const where: Record<string, unknown> = { enterprise: enterpriseId };
  if (query.endpointId) where.endpoint = query.endpointId;
  if (isEventAction(query.action)) where.action = query.action;
  if (query.before) where.id = { $lt: query.before };
  return em
    .createQueryBuilder(EventSchema, 'e')
    .select([
      'e.id',
      'e.createdAt',
      'e.action',
      'e.actorName',
      'e.source',
      'e.endpoint',
      'e.endpointName',
      'e.simIccid',
      'e.oldSimIccid',
      'e.endpointStatusBefore',
      'e.endpointStatusAfter',
      'e.simStatusBefore',
      'e.simStatusAfter',
      'e.count',
    ])
    .where(where)
    .orderBy({ id: 'desc' })
    .limit(query.limit)
    .execute<EventExportRow[]>('all');
}
