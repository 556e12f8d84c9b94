// Download CSV (SPEC.md §7): every row of the Endpoints, SIMs and History lists that matches the filter and
// search on the screen, as CSV. Streamed: each is an async generator that reads the list's own query a page of
// 1,000 at a time from its keyset cursor (the same index ranges as the screens, so a million rows are read in
// constant memory) and yields the page's lines. The SIMs export has exactly the Import SIMs columns
// (iccid, imsi, eid, msisdn), so it is a valid import file.
import type { EntityManager } from '@mikro-orm/postgresql';
import { csvLine } from './csv.js';
import { listEndpoints, type EndpointListQuery } from './queries/endpoints.js';
import { listEvents } from './queries/history.js';
import { listSims, type SimListQuery } from './queries/sims.js';

const BATCH = 1000;

export async function* endpointsCsv(em: EntityManager, enterpriseId: number, query: Omit<EndpointListQuery, 'after' | 'before' | 'limit'>) {
  yield csvLine(['id', 'name', 'imei', 'status', 'iccid']);
  let after: string | null = null;
  do {
    const page = await listEndpoints(em, enterpriseId, { ...query, after, limit: BATCH });
    yield page.rows.map((row) => csvLine([row.id, row.name, row.imei, row.status, row.iccid])).join('');
    after = page.next;
  } while (after);
}

export async function* simsCsv(em: EntityManager, enterpriseId: number, query: Omit<SimListQuery, 'after' | 'before' | 'limit'>) {
  yield csvLine(['iccid', 'imsi', 'eid', 'msisdn']);
  let after: string | null = null;
  do {
    const page = await listSims(em, enterpriseId, { ...query, after, limit: BATCH });
    yield page.rows.map((row) => csvLine([row.iccid, row.imsi, row.eid, row.msisdn])).join('');
    after = page.next;
  } while (after);
}

export async function* eventsCsv(em: EntityManager, enterpriseId: number, query: { action?: string; endpointId?: number | null }) {
  yield csvLine([
    'id',
    'time',
    'action',
    'actor',
    'source',
    'endpoint_id',
    'endpoint_name',
    'iccid',
    'endpoint_status_before',
    'endpoint_status_after',
    'sim_status_before',
    'sim_status_after',
    'count',
  ]);
  let before: string | null = null;
  do {
    const page = await listEvents(em, enterpriseId, { ...query, before, limit: BATCH });
    yield page.rows
      .map((e) =>
        csvLine([
          e.id,
          new Date(e.createdAt).toISOString(),
          e.action,
          e.actorName,
          e.source,
          e.endpoint?.id ?? null,
          e.endpointName,
          e.simIccid,
          e.endpointStatusBefore,
          e.endpointStatusAfter,
          e.simStatusBefore,
          e.simStatusAfter,
          e.count,
        ]),
      )
      .join('');
    before = page.older;
  } while (before);
}
