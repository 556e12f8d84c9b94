// Read models for the endpoint screens: the list (keyset, filter, search), one endpoint with its SIM,
// its history, and the SIM picker. Plain SQL on the indexes of the first migration; each is one query
// (the picker's count, a second one, is capped so it stays cheap at a million SIMs).
import type { EntityManager } from '@mikro-orm/postgresql';
import { ENDPOINT_STATUSES, EVENT_ACTIONS, type EndpointStatus, type EventAction, type SimStatus } from '../entities.js';
import { NotFoundError } from '../errors.js';
import { normalise } from '../identifiers.js';

export const PAGE_SIZE = 25;
/** Counts above this are shown as "more than …": counting a million index entries per page view is not worth it. */
export const COUNT_CAP = 1_000;

/** Escapes LIKE's wildcards in something a person typed. */
const likePrefix = (text: string) => `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export interface Page<T> {
  rows: T[];
  /** Cursor for the next page (after the last row), if there is one. */
  next: string | null;
  /** Cursor for the previous page (before the first row), if there is one. */
  previous: string | null;
}

/** Keyset paging: fetch one row more than a page to know whether another page follows. */
function pageOf<T>(rows: T[], direction: 'after' | 'before', hadCursor: boolean, cursorOf: (row: T) => string): Page<T> {
  const more = rows.length > PAGE_SIZE;
  const page = rows.slice(0, PAGE_SIZE);
  if (direction === 'before') page.reverse();
  const first = page[0];
  const last = page[page.length - 1];
  if (direction === 'after') {
    return { rows: page, next: more && last ? cursorOf(last) : null, previous: hadCursor && first ? cursorOf(first) : null };
  }
  return { rows: page, next: last ? cursorOf(last) : null, previous: more && first ? cursorOf(first) : null };
}

export interface EndpointListRow {
  id: number;
  name: string;
  status: EndpointStatus;
  imei: string | null;
  iccid: string | null;
}

export interface EndpointListQuery {
  status?: string;
  q?: string;
  after?: number | null;
  before?: number | null;
}

export function isEndpointStatus(value: unknown): value is EndpointStatus {
  return typeof value === 'string' && (ENDPOINT_STATUSES as readonly string[]).includes(value);
}

/** Endpoints of one enterprise in name order; search by name prefix (any case) or by ICCID prefix. */
export async function listEndpoints(em: EntityManager, enterpriseId: number, query: EndpointListQuery): Promise<Page<EndpointListRow>> {
  const plan = endpointListSql(enterpriseId, query);
  const rows = await em.execute<EndpointListRow[]>(plan.sql, plan.params);
  return pageOf(rows, plan.direction, plan.hadCursor, (row) => String(row.id));
}

/** The list's statement; exported so a test can EXPLAIN it. */
export function endpointListSql(enterpriseId: number, query: EndpointListQuery) {
  const where = ['e.enterprise_id = ?'];
  const params: unknown[] = [enterpriseId];
  if (isEndpointStatus(query.status)) {
    where.push('e.status = ?');
    params.push(query.status);
  }
  const q = (query.q ?? '').trim().slice(0, 100);
  if (q) {
    const digits = normalise(q);
    if (/^\d{2,}$/.test(digits)) {
      where.push(`(lower(e.name) like ? or e.sim_id in (select id from sim where enterprise_id = ? and iccid like ?))`);
      params.push(likePrefix(q.toLowerCase()), enterpriseId, likePrefix(digits));
    } else {
      where.push('lower(e.name) like ?');
      params.push(likePrefix(q.toLowerCase()));
    }
  }
  const direction: 'after' | 'before' = query.before ? 'before' : 'after';
  const cursor = query.before ?? query.after ?? null;
  if (cursor) {
    where.push(`(e.name, e.id) ${direction === 'after' ? '>' : '<'} (select name, id from endpoint where id = ? and enterprise_id = ?)`);
    params.push(cursor, enterpriseId);
  }
  const order = direction === 'after' ? 'e.name, e.id' : 'e.name desc, e.id desc';
  return {
    sql: `select e.id, e.name, e.status, e.imei, s.iccid
     from endpoint e left join sim s on s.id = e.sim_id
     where ${where.join(' and ')} order by ${order} limit ${PAGE_SIZE + 1}`,
    params,
    direction,
    hadCursor: Boolean(cursor),
  };
}

export interface EndpointDetail {
  id: number;
  name: string;
  status: EndpointStatus;
  imei: string | null;
  activateImmediately: boolean;
  createdAt: Date;
  sim: { id: number; iccid: string; imsi: string; eid: string | null; msisdn: string | null; status: SimStatus } | null;
}

/** One endpoint of the enterprise with its SIM; another enterprise's or an unknown id → NotFoundError. */
export async function getEndpoint(em: EntityManager, enterpriseId: number, endpointId: number): Promise<EndpointDetail> {
  const [row] = await em.execute<Record<string, unknown>[]>(
    `select e.id, e.name, e.status, e.imei, e.activate_immediately, e.created_at,
            s.id as sim_id, s.iccid, s.imsi, s.eid, s.msisdn, s.status as sim_status
     from endpoint e left join sim s on s.id = e.sim_id
     where e.id = ? and e.enterprise_id = ?`,
    [endpointId, enterpriseId],
  );
  if (!row) throw new NotFoundError('endpoint');
  return {
    id: row.id as number,
    name: row.name as string,
    status: row.status as EndpointStatus,
    imei: row.imei as string | null,
    activateImmediately: row.activate_immediately as boolean,
    createdAt: row.created_at as Date,
    sim: row.sim_id
      ? {
          id: row.sim_id as number,
          iccid: row.iccid as string,
          imsi: row.imsi as string,
          eid: row.eid as string | null,
          msisdn: row.msisdn as string | null,
          status: row.sim_status as SimStatus,
        }
      : null,
  };
}

export interface EventRow {
  id: string;
  action: EventAction;
  actor_name: string;
  endpoint_id: number | null;
  endpoint_name: string | null;
  sim_iccid: string | null;
  endpoint_status_before: string | null;
  endpoint_status_after: string | null;
  sim_status_before: string | null;
  sim_status_after: string | null;
  count: number | null;
  /** sims.import_refused: the problems found (count is then the rows checked). */
  problem_count: number | null;
  created_at: Date;
}

/**
 * The actions the history shows: the entities' EVENT_ACTIONS and `sims.import_refused` (a refused import's
 * audit event, written by sim-import.ts; the event table's check constraint has it since the migration
 * 20261204100000).
 */

export const EVENT_ACTION_LABELS: Record<EventAction, string> = {
  'endpoint.created': 'Endpoint created',
  'sim.linked': 'SIM linked',
  'sim.delinked': 'SIM de-linked',
  'endpoint.activated': 'Activated',
  'endpoint.suspended': 'Suspended',
  'endpoint.resumed': 'Resumed',
  'sims.imported': 'SIMs imported',
  'sims.import_refused': 'SIM import refused',
};

const HISTORY_ACTIONS: readonly string[] = [...EVENT_ACTIONS, 'sims.import_refused'];

export function isEventAction(value: unknown): value is EventAction {
  return typeof value === 'string' && HISTORY_ACTIONS.includes(value);
}

const EVENT_COLUMNS = `id::text as id, action, actor_name, endpoint_id, endpoint_name, sim_iccid, endpoint_status_before,
  endpoint_status_after, sim_status_before, sim_status_after, count, problem_count, created_at`;

// ORDER BY event.id, not id: a bare `id` names the output column `id::text as id`, which sorts as text
// ("99" after "100"), so newest-first broke whenever the ids crossed a power of ten.

/** An endpoint's events, newest first (the endpoint page shows the latest 50). */
export async function endpointHistory(em: EntityManager, enterpriseId: number, endpointId: number, limit = 50): Promise<EventRow[]> {
  return em.execute<EventRow[]>(
    `select ${EVENT_COLUMNS} from event where endpoint_id = ? and enterprise_id = ? order by event.id desc limit ${limit}`,
    [endpointId, enterpriseId],
  );
}

/** The enterprise's events, newest first, optionally of one action; keyset on the id. */
export async function listEvents(
  em: EntityManager,
  enterpriseId: number,
  query: { action?: string; before?: string | null; endpointId?: number | null },
): Promise<{ rows: EventRow[]; older: string | null }> {
  const where = ['enterprise_id = ?'];
  const params: unknown[] = [enterpriseId];
  if (query.endpointId) {
    where.push('endpoint_id = ?');
    params.push(query.endpointId);
  }
  if (isEventAction(query.action)) {
    where.push('action = ?');
    params.push(query.action);
  }
  if (query.before && /^\d{1,18}$/.test(query.before)) {
    where.push('id < ?');
    params.push(query.before);
  }
  const rows = await em.execute<EventRow[]>(
    `select ${EVENT_COLUMNS} from event where ${where.join(' and ')} order by event.id desc limit ${PAGE_SIZE * 2 + 1}`,
    params,
  );
  const more = rows.length > PAGE_SIZE * 2;
  const page = rows.slice(0, PAGE_SIZE * 2);
  return { rows: page, older: more ? page[page.length - 1].id : null };
}

export interface PickerRow {
  id: number;
  iccid: string;
  imsi: string;
  eid: string | null;
  status: SimStatus;
}

export interface PickerQuery {
  q?: string;
  after?: string | null;
  before?: string | null;
}

export interface PickerPage extends Page<PickerRow> {
  /** How many Ready to Activate SIMs match (exact up to COUNT_CAP). */
  count: number;
  countCapped: boolean;
  /** The search as it was used (digits only). */
  q: string;
}

/** An ICCID cursor from a query string, or null. */
export function iccidCursor(value: unknown): string | null {
  return typeof value === 'string' && /^\d{19,20}$/.test(value) ? value : null;
}

/**
 * The SIM picker: the enterprise's Ready to Activate SIMs in ICCID order, 25 a page (keyset on ICCID),
 * optionally those whose ICCID, IMSI or EID starts with the digits searched. Each identifier is searched
 * in its own branch so every branch is an ordered range scan of a partial index that stops after 26 rows.
 */
export async function pickerPage(em: EntityManager, enterpriseId: number, query: PickerQuery): Promise<PickerPage> {
  const plan = pickerSql(enterpriseId, query);
  if (!plan.searchable) return { rows: [], next: null, previous: null, count: 0, countCapped: false, q: plan.q };
  const rows = await em.execute<PickerRow[]>(plan.page.sql, plan.page.params);
  const [{ n }] = await em.execute<{ n: number }[]>(plan.count.sql, plan.count.params);
  const page = pageOf(rows, plan.direction, plan.hadCursor, (row) => row.iccid);
  return { ...page, count: Math.min(n, COUNT_CAP), countCapped: n > COUNT_CAP, q: plan.q };
}

/** The picker's two statements (a page, a capped count); exported so a test can EXPLAIN them. */
export function pickerSql(enterpriseId: number, query: PickerQuery) {
  const q = normalise(query.q ?? '').slice(0, 32);
  // A search that is not digits matches nothing (identifiers are digits only).
  const searchable = q === '' || /^\d+$/.test(q);
  const direction: 'after' | 'before' = query.before ? 'before' : 'after';
  const cursor = iccidCursor(query.before ?? query.after);
  const comparison = direction === 'after' ? '>' : '<';
  const order = direction === 'after' ? 'iccid' : 'iccid desc';

  const columns = q ? identifierColumns(q) : [null];
  const branch = (select: string, column: string | null, limit: number, forPage: boolean) => {
    const conditions = [`enterprise_id = ?`, `status = 'ready'`];
    const params: unknown[] = [enterpriseId];
    if (column) {
      conditions.push(`${column} like ?`);
      params.push(`${q}%`);
    }
    if (forPage && cursor) {
      conditions.push(`iccid ${comparison} ?`);
      params.push(cursor);
    }
    const where = conditions.join(' and ');
    if (!forPage) {
      // A count needs any 1,001 matches: ordering by the searched column makes it a range scan of that
      // column's index that stops at the cap.
      return { sql: `(select ${select} from sim where ${where} order by ${column ?? 'iccid'} limit ${limit})`, params };
    }
    if (column === null || column === 'iccid') {
      // ICCID order is this index's own order: a range scan that stops after a page.
      return { sql: `(select ${select} from sim where ${where} order by ${order} limit ${limit})`, params };
    }
    // IMSI and EID prefixes: ICCIDs and IMSIs are issued in batches, so matches bunch together somewhere in
    // ICCID order and walking the ICCID index to them can cross most of the table. Instead take the first
    // COUNT_CAP + 1 matches from the searched column's own index and order those by ICCID: bounded work. When
    // more match, the page says so and asks for more digits.
    return {
      sql: `(select ${select} from (select ${select} from sim where ${where} order by ${column} limit ${COUNT_CAP + 1}) f order by ${order} limit ${limit})`,
      params,
    };
  };
  const pageBranches = columns.map((c) => branch('id, iccid, imsi, eid, status', c, PAGE_SIZE + 1, true));
  const countBranches = columns.map((c) => branch('id', c, COUNT_CAP + 1, false));
  return {
    q,
    searchable,
    direction,
    hadCursor: Boolean(cursor),
    page: {
      sql: `select * from (${pageBranches.map((b) => b.sql).join(' union ')}) m order by ${order} limit ${PAGE_SIZE + 1}`,
      params: pageBranches.flatMap((b) => b.params),
    },
    count: {
      sql: `select count(*)::int as n from (${countBranches.map((b) => b.sql).join(' union ')}) c`,
      params: countBranches.flatMap((b) => b.params),
    },
  };
}

/** Which identifiers a digit prefix can be the start of: ICCIDs and EIDs always start with 89. */
function identifierColumns(q: string): string[] {
  const columns: string[] = [];
  const couldBe89 = '89'.startsWith(q) || q.startsWith('89');
  if (couldBe89 && q.length <= 20) columns.push('iccid');
  if (q.length <= 15) columns.push('imsi');
  if (couldBe89) columns.push('eid');
  return columns.length ? columns : ['imsi'];
}

/** A Ready to Activate SIM of the enterprise, for the confirmation step; else null. */
export async function findSim(em: EntityManager, enterpriseId: number, simId: number) {
  const [row] = await em.execute<PickerRow[]>(
    'select id, iccid, imsi, eid, status from sim where id = ? and enterprise_id = ?',
    [simId, enterpriseId],
  );
  return row ?? null;
}
