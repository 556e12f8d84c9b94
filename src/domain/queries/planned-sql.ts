// The reads that stay hand-written SQL, because the plan needs a shape MikroORM's find does not write.
// Each statement is named by the EXPLAIN test that proves why (run on bulk data, on both servers):
//
//  - pickerSql (the SIM picker's page and capped count): one UNION branch per identifier a search can be,
//    each an ordered range of its own partial "ready" index limited to a page, and an IMSI/EID branch that
//    takes the first COUNT_CAP + 1 matches from its own index before sorting by ICCID. A single
//    `iccid like ? or imsi like ? …` would walk the enterprise's whole index when few SIMs match.
//    → test/domain/query-plans.test.ts, "the picker (…) reads the Ready to Activate indexes, not the table".
//  - simsProbeSql / simsMatchesSql (the SIMs inventory's IMSI/EID search): a bounded window of ICCID order
//    first, then the matches by their own index behind a materialized CTE (the planner, assuming the columns
//    independent, would otherwise walk ICCID order to a supplier batch at the far end).
//    → test/domain/queries/sims.test.ts, "a narrow IMSI search reads the IMSI index, not the whole ICCID order"
//      and "list, filter, cursors and searches never scan the sim table".
//  - simStatusCountsSql (the inventory's counts per status): one correlated count per status over unnest(),
//    each an index-only range of sim_status_list_idx; a `group by status` scans all the enterprise's rows.
//    → test/domain/queries/sims.test.ts, "the counts are index-only scans of sim_status_list_idx".
//  - endpointDetailSql / endpointHistorySql (every endpoint page; the detail also on every picker page): the
//    same single-row lookup and event_endpoint_idx range MikroORM would run, kept as SQL for CPU, not for the
//    plan — em.findOne with populate took 1.0–1.3 ms of Node CPU and the QueryBuilder 0.3 ms against 0.13 ms,
//    the 50 history events 0.5–1.8 ms (em.find) or 0.55 ms (QueryBuilder) against 0.13–0.25 ms, measured
//    per read at 10,000 endpoints; the endpoint page would lose about 20 % of its throughput.
//    → test/domain/query-plans.test.ts, "the endpoint page reads one endpoint and its SIM by their keys"
//      and "the history reads the event indexes newest first".
//  - importProblemsSql (a SIM import's problems, counts and report, src/domain/sim-import.ts): in-file
//    duplicates by window functions over the staged rows, then the rows with no other problem looked up in
//    sim by one LATERAL … LIMIT 1 probe of each unique index per value — never a hash join over the sim table,
//    whatever the staging table's statistics say.
//    → test/domain/query-plans.test.ts, "an import’s problems look each staged identifier up in sim’s unique
//      indexes, never reading the sim table".
//  - invariantsSql (the invariant checker, src/domain/invariants.ts: run after every race test and by
//    `npm run check-invariants`): self-joins and group-bys over every link, which em.find does not write. It
//    reads every row by design — a checker, never a page — so there is no plan to prove; what it must find,
//    one case per invariant, is proven by test/domain/invariants.test.ts.
//  - advisoryXactLockSql (an import's lock on its enterprise, src/db/advisory-lock.ts): PostgreSQL's
//    transaction-level advisory lock, which no EntityManager or query-builder API takes (MikroORM's row locks
//    would be FOR UPDATE on the enterprise row, which blocks every insert that references it). Not a plan but
//    a function call: what it must do — held until the transaction ends, refused at once to a second import —
//    is proven by test/domain/sim-import.test.ts, "one import per enterprise at a time, on any instance: a
//    second is refused at once; …", and by test/web/sim-import-limits.test.ts, both reading pg_locks.
//
// Everything here takes `?` placeholders and is run by runPlanned, below, with em.execute (the bench's ceiling
// server runs the picker's statements on a plain pg pool: see bench/ceiling-server.ts).
import type { AnyEntity, EntityData, QueryResult } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SIM_STATUSES } from '../entities.js';
import { normalise, prefixColumns } from '../identifiers.js';
import { COUNT_CAP, PAGE_SIZE, iccidCursor, type Direction } from './paging.js';

export interface PickerQuery {
  q?: string;
  after?: string | null;
  before?: string | null;
}

/** The picker's two statements (a page, a capped count). */
export function pickerSql(enterpriseId: number, query: PickerQuery) {
  const q = normalise(query.q ?? '').slice(0, 32);
  // A search that is not digits matches nothing (identifiers are digits only).
  const searchable = q === '' || /^\d+$/.test(q);
  const direction: Direction = query.before ? 'before' : 'after';
  const cursor = iccidCursor(query.before ?? query.after);
  const comparison = direction === 'after' ? '>' : '<';
  const order = direction === 'after' ? 'iccid' : 'iccid desc';

  // One branch per identifier the search can be the start of (identifiers.ts; q has at most 32 digits, so
  // at least the EID); no search, one branch over all.
  const columns = q ? prefixColumns(q) : [null];
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

/** The SIMs inventory's columns, as SimListRow names them, with the linked endpoint's name. */
const SIM_COLUMNS = 'id, iccid, imsi, eid, msisdn, status, endpoint_id';
/** How far an IMSI or EID search first walks ICCID order looking for a page of matches. */
export const PROBE_WINDOW = 5_000;

export interface SimsSearch {
  enterpriseId: number;
  status: string | null;
  direction: Direction;
  cursor: string | null;
  column: 'imsi' | 'eid';
  q: string;
  limit: number;
}

function simsBase(s: SimsSearch) {
  const conditions = ['enterprise_id = ?'];
  const params: unknown[] = [s.enterpriseId];
  if (s.status) {
    conditions.push('status = ?');
    params.push(s.status);
  }
  if (s.cursor) {
    conditions.push(`iccid ${s.direction === 'after' ? '>' : '<'} ?`);
    params.push(s.cursor);
  }
  const order = s.direction === 'after' ? 'iccid' : 'iccid desc';
  /** The page's SIMs (`from`: a subquery already ordered and limited) with their endpoints' names. */
  const withEndpoint = (from: string) =>
    `select s.id, s.iccid, s.imsi, s.eid, s.msisdn, s.status, s.endpoint_id as "endpointId", e.name as "endpointName"
     from ${from} s left join endpoint e on e.id = s.endpoint_id and e.enterprise_id = ?
     order by s.${order} limit ${s.limit}`;
  return { where: conditions.join(' and '), params, order, withEndpoint };
}

/**
 * An IMSI or EID prefix, first pass: the matches within a bounded window of ICCID order. Walking ICCID order
 * and filtering finds a page quickly when matches are spread out; when the window holds a page, that is it.
 */
export function simsProbeSql(s: SimsSearch) {
  const b = simsBase(s);
  return {
    sql: b.withEndpoint(`(select * from (select ${SIM_COLUMNS} from sim where ${b.where} order by ${b.order} limit ${PROBE_WINDOW}) w
                     where ${s.column} like ? order by ${b.order} limit ${s.limit})`),
    params: [...b.params, `${s.q}%`, s.enterpriseId],
  };
}

/**
 * Second pass, when the window held less than a page: the matches are few or clustered (the ICCIDs and IMSIs
 * of a supplier batch rise together), so read them by their own index — the materialized CTE stops the
 * planner from walking ICCID order instead — and sort them: work in proportion to the matches, not the table.
 */
export function simsMatchesSql(s: SimsSearch) {
  const b = simsBase(s);
  return {
    sql: `with m as materialized (select ${SIM_COLUMNS} from sim where ${b.where} and ${s.column} like ?)
       ${b.withEndpoint(`(select * from m order by ${b.order} limit ${s.limit})`)}`,
    params: [...b.params, `${s.q}%`, s.enterpriseId],
  };
}

/** How many SIMs the enterprise has in each status: a count over each status's range of sim_status_list_idx. */
export function simStatusCountsSql(enterpriseId: number) {
  return {
    sql: `select s.status, (select count(*) from sim where enterprise_id = ? and status = s.status)::int as n
     from unnest(?::text[]) as s(status)`,
    params: [enterpriseId, `{${SIM_STATUSES.join(',')}}`],
  };
}

/** One endpoint of the enterprise with its SIM (the endpoint page, the picker, the confirmation steps). */
export function endpointDetailSql(enterpriseId: number, endpointId: number) {
  return {
    sql: `select e.id, e.name, e.status, e.imei, e.activate_immediately as "activateImmediately", e.created_at as "createdAt",
            s.id as "simId", s.iccid, s.imsi, s.eid, s.msisdn, s.status as "simStatus"
     from endpoint e left join sim s on s.id = e.sim_id
     where e.id = ? and e.enterprise_id = ?`,
    params: [endpointId, enterpriseId],
  };
}

// ORDER BY event.id, not id: a bare `id` names the output column `id::text as id`, which sorts as text.
/** An endpoint's latest events, newest first: a range of event_endpoint_idx (endpoint_id, id desc). */
export function endpointHistorySql(enterpriseId: number, endpointId: number, limit: number) {
  return {
    sql: `select id::text as id, action, actor_name as "actorName", endpoint_name as "endpointName", sim_iccid as "simIccid",
            old_sim_iccid as "oldSimIccid",
            endpoint_status_before as "endpointStatusBefore", endpoint_status_after as "endpointStatusAfter",
            sim_status_before as "simStatusBefore", sim_status_after as "simStatusAfter", count,
            problem_count as "problemCount", created_at as "createdAt"
     from event where endpoint_id = ? and enterprise_id = ? order by event.id desc limit ${Math.trunc(limit)}`,
    params: [endpointId, enterpriseId],
  };
}

/** The fields of an import's report in their order (a problem with the whole line first). */
export const IMPORT_FIELD_ORDER = ['Line', 'ICCID', 'IMSI', 'EID', 'MSISDN'] as const;

/**
 * An import's problems (src/domain/sim-import.ts), all in one read of its staged rows and problems
 * (import_row, import_problem, by import_id): the problems found while reading the file; the values also on
 * an earlier line of the file, naming the first line, over every non-null staged value (valid rows or not);
 * and — only for the valid rows with neither — the identifiers already in SIM Link, in any enterprise (named
 * without saying whose; a row with two of them has both reported). Each row of the answer carries the total
 * number of problems and of distinct bad lines; the first `reportSize` problems follow in report order
 * (line, field, then the order they were found in), one row each — none when there is no problem (one row
 * then, its line null).
 *
 * The look-up in SIM Link is one probe of sim's unique index per candidate value (a LATERAL … LIMIT 1 the
 * planner cannot turn into a hash join): whatever the staged table's statistics say, it never reads the
 * whole sim table, which at a million SIMs would cost more than the import's own rows.
 */
export function importProblemsSql(importId: string, reportSize: number) {
  const inFile = (column: 'iccid' | 'imsi' | 'eid', label: string) => `
    select line, ${IMPORT_FIELD_ORDER.indexOf(label as never)} as field_order, 1 as source, 0 as id, '${label}' as field,
           '${label} ' || value || ' is also on line ' || first_line as message
    from (select line, ${column} as value, min(line) over (partition by ${column}) as first_line from staged where ${column} is not null) d
    where line > first_line`;
  const inSimLink = (column: 'iccid' | 'imsi' | 'eid', label: string) => `
    select c.line, ${IMPORT_FIELD_ORDER.indexOf(label as never)}, 2, 0, '${label}', '${label} ' || c.${column} || ' is already in SIM Link'
    from candidate c cross join lateral (select 1 from sim s where s.${column} = c.${column} limit 1) s`;
  return {
    sql: `with staged as materialized (
        select line, iccid, imsi, eid, ok from import_row where import_id = ?
      ),
      found as materialized (
        select line, field_order, 0 as source, id, field, message from import_problem where import_id = ?
        union all ${inFile('iccid', 'ICCID')}
        union all ${inFile('imsi', 'IMSI')}
        union all ${inFile('eid', 'EID')}
      ),
      candidate as materialized (
        select r.line, r.iccid, r.imsi, r.eid from staged r where r.ok and not exists (select 1 from found p where p.line = r.line)
      ),
      problem as materialized (
        select * from found
        union all ${inSimLink('iccid', 'ICCID')}
        union all ${inSimLink('imsi', 'IMSI')}
        union all ${inSimLink('eid', 'EID')}
      )
      select n.total, n.bad_lines, f.line, f.field, f.message
      from (select count(*)::int as total, count(distinct line)::int as bad_lines from problem) n
      left join lateral (select * from problem order by line, field_order, source, id limit ${Math.trunc(reportSize)}) f on true
      order by f.line, f.field_order, f.source, f.id`,
    params: [importId, importId],
  };
}

/** Every row that breaks an invariant of docs/invariants.md (src/domain/invariants.ts). */
/** Takes the transaction-level advisory lock (namespace, key) if it is free; `locked` says whether it was. */
export function advisoryXactLockSql(namespace: number, key: number) {
  return { sql: 'select pg_try_advisory_xact_lock(?, ?) as locked', params: [namespace, key] };
}

export const invariantsSql = `
select 1 as invariant, null::int as endpoint_id, sim_id, 'SIM linked to ' || count(*) || ' endpoints' as detail
  from endpoint where sim_id is not null group by sim_id having count(*) > 1
union all
select 1, endpoint_id, null, 'endpoint linked to ' || count(*) || ' SIMs'
  from sim where endpoint_id is not null group by endpoint_id having count(*) > 1
union all
select 2, id, sim_id, 'endpoint is ' || status || (case when sim_id is null then ' without' else ' with' end) || ' a SIM'
  from endpoint where (status = 'hold') <> (sim_id is null)
union all
select 3, endpoint_id, id, 'SIM is ' || status || (case when endpoint_id is null then ' without' else ' with' end) || ' an endpoint'
  from sim where (status = 'ready') <> (endpoint_id is null)
union all
select 4, e.id, e.sim_id, 'endpoint ' || e.status || ' but its SIM is ' || coalesce(s.status, 'missing')
         || (case when s.endpoint_id is distinct from e.id then ' and points elsewhere' else '' end)
  from endpoint e left join sim s on s.id = e.sim_id
  where e.sim_id is not null and (s.id is null or s.status <> e.status or s.endpoint_id is distinct from e.id)
union all
select 4, s.endpoint_id, s.id, 'SIM ' || s.status || ' but its endpoint is ' || coalesce(e.status, 'missing')
         || (case when e.sim_id is distinct from s.id then ' and points elsewhere' else '' end)
  from sim s left join endpoint e on e.id = s.endpoint_id
  where s.endpoint_id is not null and (e.id is null or e.status <> s.status or e.sim_id is distinct from s.id)
union all
select 5, e.id, s.id, 'endpoint of enterprise ' || e.enterprise_id || ', SIM of enterprise ' || s.enterprise_id
  from endpoint e join sim s on s.id = e.sim_id where e.enterprise_id <> s.enterprise_id
order by 1, 2, 3`;

/** A statement of this module: its SQL, with `?` placeholders, and their values. */
export interface PlannedStatement {
  sql: string;
  params?: unknown[];
}

/**
 * Runs one of this module's statements in `em`'s transaction, if it has one: the one place hand-written SQL is
 * run (the query-builder statements are run by src/db/compiled-statement.ts).
 */
export function runPlanned<T extends QueryResult | EntityData<AnyEntity> | EntityData<AnyEntity>[]>(
  em: Pick<EntityManager, 'execute'>,
  statement: PlannedStatement | string,
): Promise<T> {
  return typeof statement === 'string' ? em.execute<T>(statement) : em.execute<T>(statement.sql, statement.params ?? []);
}
