// Named builders for test data. Each makes valid rows (real check digits) that no other builder repeats,
// as entities: created in the given EntityManager and flushed, so they are in the database when it returns.
import { ref } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { eidFor, iccidFor, imeiFor, imsiFor } from '../../src/db/generate-identifiers.js';
import { EndpointSchema, EnterpriseSchema, SimSchema, UserSchema, type LinkedStatus, type Role } from '../../src/domain/entities.js';

const SERIES = 55;
let serial = 0;
const next = () => ++serial + (process.pid % 1000) * 100_000;

export interface TestEnterprise {
  id: number;
  slug: string;
}

export async function createEnterprise(em: EntityManager, name = 'Test Enterprise'): Promise<TestEnterprise> {
  const enterprise = em.create(EnterpriseSchema, { slug: `ent-${next()}`, name });
  await em.flush();
  return { id: enterprise.id, slug: enterprise.slug };
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
  const user = em.create(UserSchema, { enterprise: enterprise.id, email, displayName, role, passwordHash });
  await em.flush();
  return { id: user.id, email, displayName, role, enterpriseId: enterprise.id };
}

export interface TestSim {
  id: number;
  iccid: string;
  imsi: string;
  eid: string | null;
}

function newSim(em: EntityManager, enterprise: TestEnterprise, options: { eid?: boolean } = {}) {
  const n = next();
  return em.create(SimSchema, {
    enterprise: enterprise.id,
    iccid: iccidFor(SERIES, n),
    imsi: imsiFor(SERIES, n),
    eid: options.eid === false ? null : eidFor(SERIES, n),
    msisdn: null,
    status: 'ready',
    endpoint: null,
  });
}

const testSim = (sim: ReturnType<typeof newSim>): TestSim => ({ id: sim.id, iccid: sim.iccid, imsi: sim.imsi, eid: sim.eid ?? null });

export async function readySim(em: EntityManager, enterprise: TestEnterprise, options: { eid?: boolean } = {}): Promise<TestSim> {
  const sim = newSim(em, enterprise, options);
  await em.flush();
  return testSim(sim);
}

export interface TestEndpoint {
  id: number;
  name: string;
}

interface EndpointOptions {
  name?: string;
  activateImmediately?: boolean;
  imei?: boolean;
}

function newEndpoint(em: EntityManager, enterprise: TestEnterprise, options: EndpointOptions = {}) {
  const n = next();
  return em.create(EndpointSchema, {
    enterprise: enterprise.id,
    name: options.name ?? `Meter ${n}`,
    imei: options.imei ? imeiFor(n) : null,
    activateImmediately: options.activateImmediately ?? false,
    status: 'hold',
    sim: null,
  });
}

export async function holdEndpoint(em: EntityManager, enterprise: TestEnterprise, options: EndpointOptions = {}): Promise<TestEndpoint> {
  const endpoint = newEndpoint(em, enterprise, options);
  await em.flush();
  return { id: endpoint.id, name: endpoint.name };
}

/**
 * An endpoint with a SIM in the given linked state, written directly (no event): both rows inserted on
 * Hold / Ready to Activate, then linked, in one transaction (the link keys are checked at commit).
 */
export async function linkedEndpoint(
  em: EntityManager,
  enterprise: TestEnterprise,
  status: LinkedStatus,
  options: { activateImmediately?: boolean } = {},
): Promise<{ endpoint: TestEndpoint; sim: TestSim }> {
  return em.transactional(async (tx) => {
    const endpoint = newEndpoint(tx, enterprise, options);
    const sim = newSim(tx, enterprise);
    await tx.flush();
    endpoint.status = status;
    endpoint.sim = ref(sim);
    sim.status = status;
    sim.endpoint = ref(endpoint);
    await tx.flush();
    return { endpoint: { id: endpoint.id, name: endpoint.name }, sim: testSim(sim) };
  });
}

/** `count` endpoints on Hold, written in one flush. */
export async function manyHoldEndpoints(em: EntityManager, enterprise: TestEnterprise, count: number): Promise<TestEndpoint[]> {
  const endpoints = Array.from({ length: count }, () => newEndpoint(em, enterprise));
  await em.flush();
  return endpoints.map((endpoint) => ({ id: endpoint.id, name: endpoint.name }));
}

/** `count` Ready to Activate SIMs, written in one flush. */
export async function manyReadySims(em: EntityManager, enterprise: TestEnterprise, count: number): Promise<TestSim[]> {
  const sims = Array.from({ length: count }, () => newSim(em, enterprise));
  await em.flush();
  return sims.map(testSim);
}
