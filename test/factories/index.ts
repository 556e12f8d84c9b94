// Named builders for test data. Each makes valid rows (real check digits) that no other builder repeats.
import type { EntityManager } from '@mikro-orm/postgresql';
import { eidFor, iccidFor, imeiFor, imsiFor } from '../../src/db/generate-identifiers.js';
import type { LinkedStatus, Role } from '../../src/domain/entities.js';

const SERIES = 55;
let serial = 0;
const next = () => ++serial + (process.pid % 1000) * 100_000;

export interface TestEnterprise {
  id: number;
  slug: string;
}

export async function createEnterprise(em: EntityManager, name = 'Test Enterprise'): Promise<TestEnterprise> {
  const slug = `ent-${next()}`;
  const [row] = await em.execute<{ id: number }[]>('insert into enterprise (slug, name) values (?, ?) returning id', [slug, name]);
  return { id: row.id, slug };
}

export interface TestUser {
  id: number;
  email: string;
  displayName: string;
  role: Role;
  enterpriseId: number;
}

export async function createUser(
  em: EntityManager,
  enterprise: TestEnterprise,
  role: Role = 'admin',
  passwordHash: string | null = null,
): Promise<TestUser> {
  const n = next();
  const email = `${role}-${n}@example.test`;
  const displayName = `${role === 'admin' ? 'Admin' : 'Viewer'} ${n}`;
  const [row] = await em.execute<{ id: number }[]>(
    'insert into app_user (enterprise_id, email, display_name, role, password_hash) values (?, ?, ?, ?, ?) returning id',
    [enterprise.id, email, displayName, role, passwordHash],
  );
  return { id: row.id, email, displayName, role, enterpriseId: enterprise.id };
}

export interface TestSim {
  id: number;
  iccid: string;
  imsi: string;
  eid: string | null;
}

export async function readySim(em: EntityManager, enterprise: TestEnterprise, options: { eid?: boolean } = {}): Promise<TestSim> {
  const n = next();
  const sim = { iccid: iccidFor(SERIES, n), imsi: imsiFor(SERIES, n), eid: options.eid === false ? null : eidFor(SERIES, n) };
  const [row] = await em.execute<{ id: number }[]>(
    'insert into sim (enterprise_id, iccid, imsi, eid) values (?, ?, ?, ?) returning id',
    [enterprise.id, sim.iccid, sim.imsi, sim.eid],
  );
  return { id: row.id, ...sim };
}

export interface TestEndpoint {
  id: number;
  name: string;
}

export async function holdEndpoint(
  em: EntityManager,
  enterprise: TestEnterprise,
  options: { name?: string; activateImmediately?: boolean; imei?: boolean } = {},
): Promise<TestEndpoint> {
  const n = next();
  const name = options.name ?? `Meter ${n}`;
  const [row] = await em.execute<{ id: number }[]>(
    'insert into endpoint (enterprise_id, name, imei, activate_immediately) values (?, ?, ?, ?) returning id',
    [enterprise.id, name, options.imei ? imeiFor(n) : null, options.activateImmediately ?? false],
  );
  return { id: row.id, name };
}

/** An endpoint with a SIM in the given linked state, written directly (both rows in one transaction). */
export async function linkedEndpoint(
  em: EntityManager,
  enterprise: TestEnterprise,
  status: LinkedStatus,
  options: { activateImmediately?: boolean } = {},
): Promise<{ endpoint: TestEndpoint; sim: TestSim }> {
  return em.transactional(async (tx) => {
    const endpoint = await holdEndpoint(tx, enterprise, options);
    const sim = await readySim(tx, enterprise);
    await tx.execute('update endpoint set status = ?, sim_id = ? where id = ?', [status, sim.id, endpoint.id]);
    await tx.execute('update sim set status = ?, endpoint_id = ? where id = ?', [status, endpoint.id, sim.id]);
    return { endpoint, sim };
  });
}
