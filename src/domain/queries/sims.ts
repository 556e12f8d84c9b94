// Read model of the SIMs inventory: every SIM of one enterprise in ICCID order (keyset, never OFFSET),
// optionally of one status and/or whose ICCID, IMSI or EID starts with the digits searched, with its
// linked endpoint; and the counts per status shown above the table.
//
// Fast at a million SIMs because every query is an ordered range scan that stops after one page:
//  - no search: sim_list_idx (enterprise_id, iccid), or sim_status_list_idx (enterprise_id, status, iccid)
//    with a status; the cursor is a bound of the same range.
//  - a search: one branch per identifier, each a prefix range (LIKE 'digits%' on the C-collated columns)
//    of its own index (IMSI and EID: see below), limited to a page, merged by ICCID. A single
//    `iccid like ? or imsi like ? …` would walk the enterprise's whole index when few SIMs match.
//  - counts: index-only scans of sim_status_list_idx, one range per status (see simStatusCounts).
import type { EntityManager } from '@mikro-orm/postgresql';
import { SIM_STATUSES, SimSchema, type SimStatus } from '../entities.js';
import { normalise, prefixColumns } from '../identifiers.js';
import { iccidCursor, pageOf, type Direction } from './paging.js';
import { simsMatchesSql, simsProbeSql, simStatusCountsSql, runPlanned } from './planned-sql.js';

export const SIMS_PAGE_SIZE = 50;

export interface SimListRow {
  id: number;
  iccid: string;
  imsi: string;
  eid: string | null;
  msisdn: string | null;
  status: SimStatus;
  endpointId: number | null;
  endpointName: string | null;
}

export interface SimListQuery {
  status?: SimStatus | null;
  /** What the person typed in the search box. */
  q?: string;
  /** ICCID cursors: the page after this ICCID, or the page before it. */
  after?: string | null;
  before?: string | null;
  /** Rows a page (the screen: SIMS_PAGE_SIZE; the API: up to 200). */
  limit?: number;
}

export interface SimListPage {
  rows: SimListRow[];
  /** The cursor (an ICCID) for the next page, if there is one. */
  next: string | null;
  /** The cursor (an ICCID) for the previous page, if there is one. */
  previous: string | null;
  /** The search as used: digits only ('' for none). */
  q: string;
  /** The search had something other than digits in it, so nothing can match. */
  searchNotDigits: boolean;
}

export function isSimStatus(value: unknown): value is SimStatus {
  return typeof value === 'string' && (SIM_STATUSES as readonly string[]).includes(value);
}

/** One page of the enterprise's SIMs in ICCID order. */
export async function listSims(em: EntityManager, enterpriseId: number, query: SimListQuery): Promise<SimListPage> {
  const typed = normalise(query.q ?? '').slice(0, 32);
  const q = /^\d+$/.test(typed) ? typed : '';
  if (typed && !q) return { rows: [], next: null, previous: null, q: typed, searchNotDigits: true };

  const before = iccidCursor(query.before);
  const after = before ? null : iccidCursor(query.after);
  const direction: Direction = before ? 'before' : 'after';
  const cursor = before ?? after;
  const size = query.limit ?? SIMS_PAGE_SIZE;
  const limit = size + 1;
  const status = query.status ?? null;

  const branch = async (column: string | null): Promise<SimListRow[]> => {
    if (column === null || column === 'iccid') {
      // The enterprise, the status and the cursor: a range of sim_list_idx or sim_status_list_idx in ICCID
      // order; an ICCID prefix narrows the same range. The scan stops after a page.
      const iccid: Record<string, string> = {};
      if (cursor) iccid[direction === 'after' ? '$gt' : '$lt'] = cursor;
      if (column) iccid.$like = `${q}%`;
      const sims = await em.find(
        SimSchema,
        { enterprise: enterpriseId, ...(status ? { status } : {}), ...(cursor || column ? { iccid } : {}) },
        {
          fields: ['id', 'iccid', 'imsi', 'eid', 'msisdn', 'status', 'endpoint.name'],
          populate: ['endpoint'],
          orderBy: { iccid: direction === 'after' ? 'asc' : 'desc' },
          limit,
          disableIdentityMap: true,
        },
      );
      return sims.map((s) => ({
        id: s.id,
        iccid: s.iccid,
        imsi: s.imsi,
        eid: s.eid ?? null,
        msisdn: s.msisdn ?? null,
        status: s.status,
        endpointId: s.endpoint?.id ?? null,
        endpointName: s.endpoint?.$.name ?? null,
      }));
    }
    // An IMSI or EID prefix is a range of another index: planned SQL (see planned-sql.ts).
    const search = { enterpriseId, status, direction, cursor, column: column as 'imsi' | 'eid', q, limit };
    const probe = simsProbeSql(search);
    const found = await runPlanned<SimListRow[]>(em, probe);
    if (found.length === limit) return found;
    const matches = simsMatchesSql(search);
    return runPlanned<SimListRow[]>(em, matches);
  };

  // Each branch gives its first page; their merge (by ICCID, each SIM once) is the page.
  const found = new Map<number, SimListRow>();
  for (const column of q ? prefixColumns(q) : [null]) {
    for (const row of await branch(column)) found.set(row.id, row);
  }
  const rows = [...found.values()].sort((a, b) => (a.iccid < b.iccid ? -1 : 1) * (direction === 'after' ? 1 : -1)).slice(0, limit);
  return { ...pageOf(rows, direction, Boolean(cursor), (row) => row.iccid, size), q, searchNotDigits: false };
}

export interface SimExportRow {
  iccid: string;
  imsi: string;
  eid: string | null;
  msisdn: string | null;
}

/**
 * Download CSV without a search: the next `limit` SIMs of the enterprise (of one status) after an ICCID, in
 * ICCID order — the same ranges of sim_list_idx / sim_status_list_idx as listSims, but plain rows from the
 * QueryBuilder (no entities, no endpoint join): 1,000,000 SIMs in seconds (see bench/exports.ts).
 */
export async function simsExportPage(
  em: EntityManager,
  enterpriseId: number,
  query: { status?: SimStatus | null; after: string | null; limit: number },
): Promise<SimExportRow[]> {
  return em
    .createQueryBuilder(SimSchema, 's')
    .select(['s.iccid', 's.imsi', 's.eid', 's.msisdn'])
    .where({
      enterprise: enterpriseId,
      ...(query.status ? { status: query.status } : {}),
      ...(query.after ? { iccid: { $gt: query.after } } : {}),
    })
    .orderBy({ iccid: 'asc' })
    .limit(query.limit)
    .execute<SimExportRow[]>('all');
}

export interface SimStatusCounts {
  total: number;
  byStatus: Record<SimStatus, number>;
}

/**
 * How many SIMs the enterprise has in each status: per status, a count over its range of
 * sim_status_list_idx (enterprise_id, status, iccid) — an index-only scan once the table is vacuumed.
 * Exact, so linear in the enterprise's SIMs: 0.1–0.4 s for one enterprise with a million SIMs on
 * PostgreSQL 15 here. The page computes it only on full page loads (not when htmx pages or searches),
 * and caches nothing: with several instances a cache would show stale counts right after an import.
 */
export async function simStatusCounts(em: EntityManager, enterpriseId: number): Promise<SimStatusCounts> {
  const counts = simStatusCountsSql(enterpriseId);
  const rows = await runPlanned<{ status: SimStatus; n: number }[]>(em, counts);
  const byStatus = Object.fromEntries(SIM_STATUSES.map((s) => [s, 0])) as Record<SimStatus, number>;
  for (const row of rows) byStatus[row.status] = row.n;
  return { total: rows.reduce((sum, row) => sum + row.n, 0), byStatus };
}

/** One SIM of the enterprise by ICCID, with its endpoint's id; null when there is none (or another enterprise's). */
export async function findSimByIccid(em: EntityManager, enterpriseId: number, iccid: string): Promise<SimListRow | null> {
  const sim = await em.findOne(
    SimSchema,
    { enterprise: enterpriseId, iccid },
    { fields: ['id', 'iccid', 'imsi', 'eid', 'msisdn', 'status', 'endpoint.name'], populate: ['endpoint'], disableIdentityMap: true },
  );
  if (!sim) return null;
  return {
    id: sim.id,
    iccid: sim.iccid,
    imsi: sim.imsi,
    eid: sim.eid ?? null,
    msisdn: sim.msisdn ?? null,
    status: sim.status,
    endpointId: sim.endpoint?.id ?? null,
    endpointName: sim.endpoint?.$.name ?? null,
  };
}
