import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { DEMO_PASSWORD, seedDemo } from '../../src/db/seed-demo.js';
import { seedBulk } from '../../src/db/seed-bulk.js';
import { checkEid, checkIccid, checkImei, checkImsi } from '../../src/domain/identifiers.js';
import { verifyPassword } from '../../src/domain/passwords.js';

let db: TestDatabase;
let em: EntityManager;

beforeAll(async () => {
  db = await createTestDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

const counts = async () =>
  (
    await em.execute<{ n: string }[]>(`
    select (select count(*) from enterprise) || '/' || (select count(*) from app_user) || '/' ||
           (select count(*) from endpoint) || '/' || (select count(*) from sim) as n`)
  )[0].n;

describe('demo data', () => {
  it('seeds two enterprises on an empty database, then nothing more', async () => {
    expect(await seedDemo(em)).toBe(true);
    const after = await counts();
    expect(await seedDemo(em.fork())).toBe(false);
    expect(await counts()).toBe(after);
  });

  it('two instances starting at once on an empty database seed it once (the unique slugs decide, no lock)', async () => {
    const fresh = await createTestDatabase();
    try {
      const results = await Promise.all([seedDemo(fresh.orm.em.fork()), seedDemo(fresh.orm.em.fork())]);
      expect(results.filter(Boolean)).toHaveLength(1);
      const [{ n }] = await fresh.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from enterprise');
      expect(Number(n)).toBe(2);
    } finally {
      await fresh.close();
    }
  });

  it('gives Acme endpoints in every state and a SIM inventory, all identifiers valid', async () => {
    const [acme] = await em.execute<{ id: number; name: string }[]>(`select id, name from enterprise where slug = 'acme'`);
    expect(acme.name).toBe('Acme Logistics');
    const states = await em.execute<{ status: string; n: string; ai: string }[]>(
      `select status, count(*) as n, count(distinct activate_immediately) as ai from endpoint where enterprise_id = ? group by status`,
      [acme.id],
    );
    const byStatus = Object.fromEntries(states.map((s) => [s.status, s]));
    expect(Object.keys(byStatus).sort()).toEqual(['active', 'hold', 'pre_active', 'suspended']);
    expect(states.reduce((sum, s) => sum + Number(s.n), 0)).toBeGreaterThanOrEqual(30);
    expect(Number(byStatus.hold.n)).toBeGreaterThanOrEqual(10);
    expect(Number(byStatus.hold.ai)).toBe(2); // Activate Immediately both on and off among Hold endpoints

    const sims = await em.execute<{ iccid: string; imsi: string; eid: string | null; status: string }[]>(
      'select iccid, imsi, eid, status from sim where enterprise_id = ?',
      [acme.id],
    );
    expect(sims.length).toBeGreaterThanOrEqual(300);
    expect(sims.filter((s) => s.status === 'ready').length).toBeGreaterThanOrEqual(200);
    expect(sims.filter((s) => s.eid).length).toBeGreaterThan(sims.length / 2);
    for (const sim of sims) {
      expect(checkIccid(sim.iccid).ok).toBe(true);
      expect(checkImsi(sim.imsi).ok).toBe(true);
      if (sim.eid) expect(checkEid(sim.eid).ok).toBe(true);
    }
    const imeis = await em.execute<{ imei: string }[]>('select imei from endpoint where imei is not null');
    for (const { imei } of imeis) expect(checkImei(imei).ok).toBe(true);
    // A device has one IMEI: never two endpoints of one enterprise with the same (endpoint_imei_unique).
    expect(await em.execute('select enterprise_id, imei from endpoint where imei is not null group by 1, 2 having count(*) > 1')).toEqual(
      [],
    );
  });

  it('gives the demo endpoints the history they would have had, consistent with their state', async () => {
    const rows = await em.execute<
      { status: string; activate_immediately: boolean; iccid: string | null; actions: string[]; linked_iccid: string | null }[]
    >(
      `select e.status, e.activate_immediately, s.iccid,
              array_agg(ev.action order by ev.id) as actions,
              max(ev.sim_iccid) filter (where ev.action = 'sim.linked') as linked_iccid
       from endpoint e left join sim s on s.id = e.sim_id join event ev on ev.endpoint_id = e.id
       group by e.id, s.iccid`,
    );
    expect(rows.length).toBe(Number((await em.execute<{ n: string }[]>('select count(*) as n from endpoint'))[0].n));
    for (const row of rows) {
      expect(row.actions[0]).toBe('endpoint.created');
      expect(row.linked_iccid).toBe(row.iccid);
      if (row.status === 'pre_active') expect(row.activate_immediately).toBe(false);
      if (row.status === 'suspended') expect(row.actions.at(-1)).toBe('endpoint.suspended');
      if (row.status === 'active') expect(row.actions.at(-1)).toBe(row.activate_immediately ? 'sim.linked' : 'endpoint.activated');
    }
  });

  it('gives the demo users the demo password and their roles', async () => {
    const users = await em.execute<{ email: string; role: string; password_hash: string; slug: string }[]>(
      'select u.email, u.role, u.password_hash, e.slug from app_user u join enterprise e on e.id = u.enterprise_id order by u.email',
    );
    expect(users.map((u) => [u.email, u.role, u.slug])).toEqual([
      ['admin@acme.example', 'admin', 'acme'],
      ['admin@globex.example', 'admin', 'globex'],
      ['viewer@acme.example', 'viewer', 'acme'],
    ]);
    expect(await verifyPassword(DEMO_PASSWORD, users[0].password_hash)).toBe(true);
    expect(await verifyPassword('wrong', users[0].password_hash)).toBe(false);
  });
});

describe('bulk data', () => {
  it('adds SIMs and endpoints, links some, and continues the series on a second run', async () => {
    const first = await seedBulk(em, { enterprise: 'acme', sims: 2_500, endpoints: 300, linked: 200 });
    expect(first.linked).toBe(200);
    const second = await seedBulk(em, { enterprise: 'acme', sims: 1_000, endpoints: 100 });
    expect(second.linked).toBe(85);
    const [row] = await em.execute<{ sims: string; linked: string }[]>(
      `select count(*) as sims, count(endpoint_id) as linked from sim where iccid like '894477%'`,
    );
    expect(Number(row.sims)).toBe(3_500);
    expect(Number(row.linked)).toBe(285);
    // Bulk endpoints have no IMEI, so repeated runs never give two endpoints one IMEI.
    expect(await em.execute('select enterprise_id, imei from endpoint where imei is not null group by 1, 2 having count(*) > 1')).toEqual(
      [],
    );
  });

  it('refuses an unknown enterprise', async () => {
    await expect(seedBulk(em, { enterprise: 'nope', sims: 1, endpoints: 0 })).rejects.toThrow(/No enterprise with slug "nope"/);
  });
});
