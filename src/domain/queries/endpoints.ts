// Read models of the endpoint screens: the list (keyset in name order, status filter, search) and one
// endpoint with its SIM. Through MikroORM: em.findByCursor over endpoint_list_idx / endpoint_status_list_idx
// (its cursor condition `name >= ? and (name > ? or id > ?)` starts the index range at the cursor — see the
// endpoints-list cases of test/domain/query-plans.test.ts).
import { Cursor, sql } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ENDPOINT_STATUSES, EndpointSchema, SimSchema, type EndpointStatus, type SimStatus } from '../entities.js';
import { NotFoundError } from '../errors.js';
import { normalise } from '../identifiers.js';
import { PAGE_SIZE, likePrefix, pageOfCursor, type Page } from './paging.js';

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
}

export function isEndpointStatus(value: unknown): value is EndpointStatus {
  return typeof value === 'string' && (ENDPOINT_STATUSES as readonly string[]).includes(value);
}

/** A list cursor as findByCursor wrote it ([name, id], base64url), or null when it is anything else. */
export function endpointCursor(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 400 || !/^[A-Za-z0-9_-]+$/.test(value)) return null;
  try {
    const decoded: unknown = Cursor.decode(value);
    return Array.isArray(decoded) && decoded.length === 2 && typeof decoded[0] === 'string' && Number.isSafeInteger(decoded[1])
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

/** Endpoints of one enterprise in name order (then id), a page at a time; no count. */
export async function listEndpoints(em: EntityManager, enterpriseId: number, query: EndpointListQuery): Promise<Page<EndpointListRow>> {
  const before = query.before ?? null;
  const cursor = await em.findByCursor(EndpointSchema, endpointListWhere(em, enterpriseId, query), {
    ...(before ? { last: PAGE_SIZE, before } : { first: PAGE_SIZE, after: query.after ?? undefined }),
    orderBy: { name: 'asc', id: 'asc' },
    fields: ['id', 'name', 'status', 'imei', 'sim.iccid'],
    populate: ['sim'],
    includeCount: false,
  });
  return pageOfCursor(cursor, (e) => ({ id: e.id, name: e.name, status: e.status, imei: e.imei ?? null, iccid: e.sim?.unwrap().iccid ?? null }));
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
  const e = await em.findOne(
    EndpointSchema,
    { id: endpointId, enterprise: enterpriseId },
    {
      fields: ['id', 'name', 'status', 'imei', 'activateImmediately', 'createdAt', 'sim.id', 'sim.iccid', 'sim.imsi', 'sim.eid', 'sim.msisdn', 'sim.status'],
      populate: ['sim'],
    },
  );
  if (!e) throw new NotFoundError('endpoint');
  const s = e.sim?.$;
  return {
    id: e.id,
    name: e.name,
    status: e.status,
    imei: e.imei ?? null,
    activateImmediately: e.activateImmediately,
    createdAt: e.createdAt,
    sim: s ? { id: s.id, iccid: s.iccid, imsi: s.imsi, eid: s.eid ?? null, msisdn: s.msisdn ?? null, status: s.status } : null,
  };
}
