// Each invariant the database keeps rejects a violating write, on the embedded PostgreSQL and on the system PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createEnterprise, holdEndpoint, linkedEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import { eidFor, iccidFor, imeiFor, imsiFor } from '../../src/db/generate-identifiers.js';

let db: TestDatabase;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;

beforeAll(async () => {
  db = await createTestDatabase();
  em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme');
  globex = await createEnterprise(em, 'Globex');
});
afterAll(() => db.close());

/** Runs the statements in one transaction and returns the database's error message (or null). */
async function rejection(statements: [string, unknown[]][]): Promise<string | null> {
  try {
    await em.fork().transactional(async (tx) => {
      for (const [sql, params] of statements) await tx.execute(sql, params);
    });
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

const link = (endpointId: number, simId: number, status: string, simStatus = status): [string, unknown[]][] => [
  ['update endpoint set status = ?, sim_id = ? where id = ?', [status, simId, endpointId]],
  ['update sim set status = ?, endpoint_id = ? where id = ?', [simStatus, endpointId, simId]],
];

describe('database constraints', () => {
  it('accepts a consistent link of both rows in one transaction', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    expect(await rejection(link(endpoint.id, sim.id, 'active'))).toBeNull();
  });

  it('ICCID, IMSI and EID are unique', async () => {
    const sim = await readySim(em, acme);
    const insert = (iccid: string, imsi: string, eid: string | null) =>
      rejection([['insert into sim (enterprise_id, iccid, imsi, eid) values (?, ?, ?, ?)', [globex.id, iccid, imsi, eid]]]);
    expect(await insert(sim.iccid, imsiFor(90, 1), null)).toMatch(/sim_iccid_unique/);
    expect(await insert(iccidFor(90, 1), sim.imsi, null)).toMatch(/sim_imsi_unique/);
    expect(await insert(iccidFor(90, 2), imsiFor(90, 2), sim.eid)).toMatch(/sim_eid_unique/);
  });

  it('identifier columns hold only well-formed values', async () => {
    const insert = (iccid: string, imsi: string) =>
      rejection([['insert into sim (enterprise_id, iccid, imsi) values (?, ?, ?)', [acme.id, iccid, imsi]]]);
    expect(await insert('1234567890123456789', imsiFor(90, 3))).toMatch(/check constraint/);
    expect(await insert(iccidFor(90, 4), '12345')).toMatch(/check constraint/);
  });

  it('an IMEI is used by at most one endpoint of an enterprise (a device has one IMEI)', async () => {
    const insert = (enterpriseId: number, imei: string | null) =>
      rejection([['insert into endpoint (enterprise_id, name, imei) values (?, ?, ?)', [enterpriseId, 'Tracker', imei]]]);
    const imei = imeiFor(909_001);
    expect(await insert(acme.id, imei)).toBeNull();
    expect(await insert(acme.id, imei)).toMatch(/endpoint_imei_unique/);
    // Another enterprise's device may have the same IMEI in its own records; endpoints without one never clash.
    expect(await insert(globex.id, imei)).toBeNull();
    expect(await insert(acme.id, null)).toBeNull();
    expect(await insert(acme.id, null)).toBeNull();
    // Changing an IMEI to one in use is refused too.
    const other = await holdEndpoint(em, acme, { imei: true });
    expect(await rejection([['update endpoint set imei = ? where id = ?', [imei, other.id]]])).toMatch(/endpoint_imei_unique/);
  });

  it('one SIM per endpoint and one endpoint per SIM', async () => {
    const { endpoint, sim } = await linkedEndpoint(em, acme, 'active');
    const other = await holdEndpoint(em, acme);
    // A second endpoint pointing at the same SIM.
    expect(await rejection([['update endpoint set status = ?, sim_id = ? where id = ?', ['active', sim.id, other.id]]])).toMatch(
      /endpoint_sim_id_unique/,
    );
    const otherSim = await readySim(em, acme);
    expect(await rejection([['update sim set status = ?, endpoint_id = ? where id = ?', ['active', endpoint.id, otherSim.id]]])).toMatch(
      /sim_endpoint_id_unique/,
    );
  });

  it('an endpoint is Hold exactly when it has no SIM', async () => {
    const endpoint = await holdEndpoint(em, acme);
    expect(await rejection([['update endpoint set status = ? where id = ?', ['active', endpoint.id]]])).toMatch(/endpoint_hold_iff_no_sim/);
    const { endpoint: linked } = await linkedEndpoint(em, acme, 'active');
    expect(await rejection([['update endpoint set status = ? where id = ?', ['hold', linked.id]]])).toMatch(/endpoint_hold_iff_no_sim/);
  });

  it('a SIM is Ready to Activate exactly when it has no endpoint', async () => {
    const sim = await readySim(em, acme);
    expect(await rejection([['update sim set status = ? where id = ?', ['active', sim.id]]])).toMatch(/sim_ready_iff_no_endpoint/);
    const { sim: linked } = await linkedEndpoint(em, acme, 'suspended');
    expect(await rejection([['update sim set status = ? where id = ?', ['ready', linked.id]]])).toMatch(/sim_ready_iff_no_endpoint/);
  });

  it('the link is symmetric: one side alone is refused at commit', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    expect(await rejection([link(endpoint.id, sim.id, 'active')[0]])).toMatch(/endpoint_sim_link_fk/);
    const endpoint2 = await holdEndpoint(em, acme);
    expect(await rejection([link(endpoint2.id, sim.id, 'active')[1]])).toMatch(/sim_endpoint_link_fk/);
  });

  it('a linked SIM has the same status as its endpoint', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    expect(await rejection(link(endpoint.id, sim.id, 'active', 'suspended'))).toMatch(/link_fk/);
    const { endpoint: linked } = await linkedEndpoint(em, acme, 'active');
    expect(await rejection([['update endpoint set status = ? where id = ?', ['suspended', linked.id]]])).toMatch(/link_fk/);
  });

  it('an endpoint and its SIM belong to the same enterprise', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const foreignSim = await readySim(em, globex);
    expect(await rejection(link(endpoint.id, foreignSim.id, 'active'))).toMatch(/link_fk/);
  });

  it('the audit trail is append-only', async () => {
    await em.execute(`insert into event (enterprise_id, actor_name, action) values (?, 'Test', 'endpoint.created')`, [acme.id]);
    expect(await rejection([['update event set actor_name = ? where enterprise_id = ?', ['Someone else', acme.id]]])).toMatch(
      /append-only/,
    );
    expect(await rejection([['delete from event where enterprise_id = ?', [acme.id]]])).toMatch(/append-only/);
  });

  it('endpoint names are 1 to 100 characters', async () => {
    const insert = (name: string) => rejection([['insert into endpoint (enterprise_id, name) values (?, ?)', [acme.id, name]]]);
    expect(await insert('   ')).toMatch(/check constraint/);
    expect(await insert('x'.repeat(101))).toMatch(/too long|check constraint/);
    expect(await insert('x'.repeat(100))).toBeNull();
    expect(eidFor(1, 1)).toHaveLength(32);
  });
});
