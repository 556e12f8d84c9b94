// Read models of the endpoint screens: the list (keyset in name order, status filter, search) and one
// endpoint with its SIM (planned SQL, for CPU: see planned-sql.ts). The list through MikroORM's QueryBuilder over endpoint_list_idx / endpoint_status_list_idx
// (findByCursor's cursor condition `name >= ? and (name > ? or id > ?)` starts the index range at the cursor — see the
// endpoints-list cases of test/domain/query-plans.test.ts).
import { Cursor, sql } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ENDPOINT_STATUSES, EndpointSchema, SimSchema, type EndpointStatus, type SimStatus } from '../entities.js';
import { NotFoundError } from '../errors.js';
import { normalise } from '../identifiers.js';
import { hasHalfCharacter } from '../text.js';
import { StatementCache, runStatement } from '../../db/compiled-statement.js';
import { endpointDetailSql, runPlanned } from './planned-sql.js';
import { CURSOR_MAX_LENGTH, PAGE_SIZE, likePrefix, pageOf, type Direction, type Page } from './paging.js';

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
  /** Opaque cursors from a previous page (next / previous). */
  after?: string | null;
  before?: string | null;
  /** Rows a page (the screens: PAGE_SIZE; the API: up to 200). */
  limit?: number;
}

export function isEndpointStatus(value: unknown): value is EndpointStatus {
  return typeof value === 'string' && (ENDPOINT_STATUSES as readonly string[]).includes(value);
}

/**
 * A cursor's [name, id], read back as it was written (MikroORM's Cursor.encode: base64url of the JSON). Not
 * Cursor.decode: it turns any string that looks like a timestamp into a Date — an endpoint named
 * "2026-01-01T00:00:00.000Z" would make a cursor no list could read back.
 */
const decodeCursor = (value: string): unknown => JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));

/** A list cursor as findByCursor wrote it ([name, id], base64url), or null when it is anything else. */
export function endpointCursor(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > CURSOR_MAX_LENGTH || !/^[A-Za-z0-9_-]+$/.test(value)) return null;
  try {
    const decoded: unknown = decodeCursor(value);
    // A name the database could hold (no NUL, whole characters) and an id that could be one: anything else no
    // page made, and PostgreSQL would refuse the NUL (a 500) or page from nowhere.
    return Array.isArray(decoded) &&
      decoded.length === 2 &&
      typeof decoded[0] === 'string' &&
      !decoded[0].includes('\u0000') &&
      !hasHalfCharacter(decoded[0]) &&
      Number.isSafeInteger(decoded[1]) &&
      (decoded[1] as number) >= 1 &&
      (decoded[1] as number) <= 2_147_483_647
      ? value
      : null;
  } catch {
    return null;
  }
}

/** The list's filter: enterprise, status, and a name prefix (any case) or, for digits, an ICCID prefix too. */
export function endpointListWhere(em: EntityManager, enterpriseId: number, query: EndpointListQuery) {
  const where: Record<string, unknown> = { enterprise: enterpriseId };
  if (isEndpointStatus(query.status)) where.status = query.status;
  const q = (query.q ?? '').trim().slice(0, 100);
  if (q) {
    // lower(name) like 'x%': endpoint_name_prefix_idx (enterprise_id, lower(name) text_pattern_ops).
    const byName = { [sql.lower((alias) => `${alias}.name`)]: { $like: likePrefix(q.toLowerCase()) } };
    const digits = normalise(q);
    if (/^\d{2,}$/.test(digits)) {
      // The SIMs whose ICCID starts so, as a subquery (a range of sim_iccid_unique), not a join: the list
      // still walks the endpoints in name order and stops after a page.
      const sims = em
        .createQueryBuilder(SimSchema, 's1')
        .select('s1.id')
        .where({ enterprise: enterpriseId, iccid: { $like: likePrefix(digits) } });
      where.$or = [byName, { sim: { $in: sims.getKnexQuery() } }];
    } else {
      Object.assign(where, byName);
    }
  }
  return where;
}

/**
 * Endpoints of one enterprise in name order (then id), a page at a time; no count. The QueryBuilder with
 * findByCursor's own cursor (base64url of [name, id]) and its condition `name >= ? and (name > ? or id > ?)`;
 * not em.findByCursor itself: hydrating entities cost 1.8 ms of CPU per page against 0.2 ms (measured with
 * 10,000 endpoints), more than the 10 % the page may lose.
 */
export async function listEndpoints(em: EntityManager, enterpriseId: number, query: EndpointListQuery): Promise<Page<EndpointListRow>> {
  const before = endpointCursor(query.before);
  const cursor = before ?? endpointCursor(query.after);
  const direction: Direction = before ? 'before' : 'after';
  const where = endpointListWhere(em, enterpriseId, query);
  if (cursor) {
    const [name, id] = decodeCursor(cursor) as [string, number];
    const [op, opEq] = direction === 'after' ? ['$gt', '$gte'] : ['$lt', '$lte'];
    Object.assign(where, { name: { [opEq]: name } });
    where.$and = [{ $or: [{ name: { [op]: name } }, { id: { [op]: id } }] }];
  }
  const order = direction === 'after' ? 'asc' : 'desc';
  const limit = query.limit ?? PAGE_SIZE;
  const page = (where: Record<string, unknown>) =>
    em
      .createQueryBuilder(EndpointSchema, 'e')
      .select(['e.id', 'e.name', 'e.status', 'e.imei'])
      .leftJoin('e.sim', 's')
      .addSelect('s.iccid')
      .where(where)
      .orderBy({ name: order, id: order })
      .limit(limit + 1);
  let rows: EndpointListRow[];
  if ((query.q ?? '').trim()) {
    rows = await page(where).execute<EndpointListRow[]>('all');
  } else {
    // Without a search the list has a few shapes (a status or not, a cursor or not, its direction, the page
    // size): each compiled once (src/db/compiled-statement.ts) and run with this page's values — the page is
    // the list people open most, and building the query cost more CPU than PostgreSQL spends on it.
    const status = isEndpointStatus(query.status) ? query.status : undefined;
    const values: unknown[] = [enterpriseId, ...(status ? [status] : [])];
    if (cursor) {
      const [name, id] = decodeCursor(cursor) as [string, number];
      values.push(name, name, id);
    }
    const key = `endpoints ${status ? 'by status' : 'all'} ${cursor ? direction : 'first'} ${limit}`;
    const statement = listStatements.get(key, values.length, (markers) => {
      const [enterprise, ...rest] = markers;
      const shape: Record<string, unknown> = { enterprise };
      if (status) shape.status = rest.shift();
      if (cursor) {
        const [op, opEq] = direction === 'after' ? ['$gt', '$gte'] : ['$lt', '$lte'];
        const [nameFrom, nameAfter, idAfter] = rest;
        shape.name = { [opEq]: nameFrom };
        shape.$and = [{ $or: [{ name: { [op]: nameAfter } }, { id: { [op]: idAfter } }] }];
      }
      return page(shape);
    });
    rows = await runStatement<EndpointListRow[]>(em, statement, values);
  }
  return pageOf(rows, direction, Boolean(cursor), (row) => Cursor.encode([row.name, row.id]), limit);
}
const listStatements = new StatementCache();

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
  // Planned SQL for CPU (see planned-sql.ts: endpointDetailSql): on every endpoint and picker page.
  const statement = endpointDetailSql(enterpriseId, endpointId);
  const [row] = await runPlanned<Record<string, unknown>[]>(em, statement);
  if (!row) throw new NotFoundError('endpoint');
  return {
    id: row.id as number,
    name: row.name as string,
    status: row.status as EndpointStatus,
    imei: row.imei as string | null,
    activateImmediately: row.activateImmediately as boolean,
    createdAt: row.createdAt as Date,
    sim: row.simId
      ? {
          id: row.simId as number,
          iccid: row.iccid as string,
          imsi: row.imsi as string,
          eid: row.eid as string | null,
          msisdn: row.msisdn as string | null,
          status: row.simStatus as SimStatus,
        }
      : null,
  };
}
