// The SIMs inventory read model on a bulk-seeded table (20,000 SIMs, endpoints linked): pages, filter and
// search agree with plain reference queries, and every query the screen runs is an index scan — EXPLAIN
// must never show a Seq Scan on sim, so the page stays fast at a million SIMs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createEnterprise, readySim, type TestEnterprise } from '../../factories/index.js';
import { seedBulk } from '../../../src/db/seed-bulk.js';
import { explainReads } from '../../helpers/explain.js';
import { listSims, simStatusCounts, SIMS_PAGE_SIZE, type SimListQuery } from '../../../src/domain/queries/sims.js';
import type { SimStatus } from '../../../src/domain/entities.js';

let db: TestDatabase;
let bulk: TestEnterprise;
let small: TestEnterprise;
const fork = (): EntityManager => db.orm.em.fork();
const BULK_SIMS = 20_000;

beforeAll(async () => {
  db = await createTestDatabase();
  const em = fork();
  bulk = await createEnterprise(em, 'Bulk');
  small = await createEnterprise(em, 'Small');
  for (let i = 0; i < 30; i++) await readySim(em, small);
  await seedBulk(em, { enterprise: bulk.slug, sims: BULK_SIMS, endpoints: 3_000 });
  await em.execute('vacuum analyze sim');
}, 180_000);
afterAll(() => db?.close());

async function reference(enterpriseId: number, where = '', params: unknown[] = []): Promise<string[]> {
  const rows = await fork().execute<{ iccid: string }[]>(`select iccid from sim where enterprise_id = ? ${where} order by iccid`, [
    enterpriseId,
    ...params,
  ]);
  return rows.map((r) => r.iccid);
}

/** Follows Next to the end, then Previous back to the start; returns the ICCIDs both ways. */
async function walk(enterpriseId: number, query: SimListQuery) {
  const forward: string[][] = [];
  let page = await listSims(fork(), enterpriseId, query);
  forward.push(page.rows.map((r) => r.iccid));
  expect(page.previous).toBeNull();
  while (page.next) {
    page = await listSims(fork(), enterpriseId, { ...query, after: page.next });
    forward.push(page.rows.map((r) => r.iccid));
  }
  const backward: string[][] = [forward[forward.length - 1]];
  while (page.previous) {
    page = await listSims(fork(), enterpriseId, { ...query, before: page.previous });
    backward.unshift(page.rows.map((r) => r.iccid));
  }
  return { forward, backward };
}

describe('pages agree with a plain query', () => {
  it('keyset pages of one status, forwards and backwards', async () => {
    const expected = await reference(bulk.id, 'and status = ?', ['active']);
    expect(expected.length).toBeGreaterThan(SIMS_PAGE_SIZE * 3);
    const { forward, backward } = await walk(bulk.id, { status: 'active' });
    expect(forward.flat()).toEqual(expected);
    expect(forward.slice(0, -1).every((p) => p.length === SIMS_PAGE_SIZE)).toBe(true);
    expect(backward).toEqual(forward);
  });

  it('the linked endpoint comes with each linked SIM', async () => {
    const page = await listSims(fork(), bulk.id, { status: 'suspended' });
    const [expected] = await fork().execute<{ id: number; name: string; iccid: string }[]>(
      `select e.id, e.name, s.iccid from sim s join endpoint e on e.id = s.endpoint_id
       where s.enterprise_id = ? and s.status = 'suspended' order by s.iccid limit 1`,
      [bulk.id],
    );
    expect(page.rows[0]).toMatchObject({
      iccid: expected.iccid,
      endpointId: expected.id,
      endpointName: expected.name,
      status: 'suspended',
    });
    const ready = await listSims(fork(), bulk.id, { status: 'ready' });
    expect(ready.rows.every((r) => r.endpointId === null && r.endpointName === null)).toBe(true);
  });

  it('searches: ICCID, IMSI and EID prefixes, dense or sparse, spread or clustered, with and without status', async () => {
    const [last] = await fork().execute<{ iccid: string; imsi: string; eid: string }[]>(
      `select iccid, imsi, eid from sim where enterprise_id = ? and eid is not null order by iccid desc limit 1`,
      [bulk.id],
    );
    const cases: [string, SimStatus | null][] = [
      ['894477', null], // every bulk ICCID (and the bulk EIDs start 8904…: not these)
      [last.iccid.slice(0, 16), null], // the last few hundred ICCIDs
      ['234157', null], // every bulk IMSI: dense and spread
      [last.imsi.slice(0, 12), null], // the last thousand IMSIs: clustered at the far end of ICCID order
      [last.imsi, null], // one SIM
      [last.eid.slice(0, 28), null], // EIDs near the end
      ['89', 'active'], // ICCIDs and EIDs both start 89: the two branches merge
      [last.imsi.slice(0, 11), 'ready'],
      ['99999', null], // nothing
    ];
    for (const [q, status] of cases) {
      const like = `${q}%`;
      const expected = await reference(bulk.id, `and (iccid like ? or imsi like ? or eid like ?)${status ? ' and status = ?' : ''}`, [
        like,
        like,
        like,
        ...(status ? [status] : []),
      ]);
      const page = await listSims(fork(), bulk.id, { q, status });
      expect(
        page.rows.map((r) => r.iccid),
        `${q} ${status}`,
      ).toEqual(expected.slice(0, SIMS_PAGE_SIZE));
      expect(page.next, `${q} ${status}`).toBe(expected.length > SIMS_PAGE_SIZE ? expected[SIMS_PAGE_SIZE - 1] : null);
      if (page.next) {
        const second = await listSims(fork(), bulk.id, { q, status, after: page.next });
        expect(
          second.rows.map((r) => r.iccid),
          `${q} ${status} page 2`,
        ).toEqual(expected.slice(SIMS_PAGE_SIZE, SIMS_PAGE_SIZE * 2));
      }
    }
  });

  it('a search that is not digits matches nothing; a malformed cursor is ignored', async () => {
    expect(await listSims(fork(), bulk.id, { q: 'abc' })).toMatchObject({ rows: [], searchNotDigits: true });
    const page = await listSims(fork(), small.id, { after: "1' or 1=1 --" });
    expect(page.rows.map((r) => r.iccid)).toEqual((await reference(small.id)).slice(0, SIMS_PAGE_SIZE));
  });

  it('counts per status, of this enterprise only', async () => {
    const rows = await fork().execute<{ status: SimStatus; n: number }[]>(
      'select status, count(*)::int as n from sim where enterprise_id = ? group by status',
      [bulk.id],
    );
    const counts = await simStatusCounts(fork(), bulk.id);
    for (const r of rows) expect(counts.byStatus[r.status]).toBe(r.n);
    expect(counts.total).toBe(BULK_SIMS);
    expect(await simStatusCounts(fork(), small.id)).toEqual({ total: 30, byStatus: { ready: 30, pre_active: 0, active: 0, suspended: 0 } });
  });
});

describe('every query is an index scan (EXPLAIN)', () => {
  /** The plans of what a read runs (em.find and the planned SQL alike). */
  const plansOf = async (read: (em: EntityManager) => Promise<unknown>) => (await explainReads(fork(), read)).map((e) => e.plan);

  it('list, filter, cursors and searches never scan the sim table', async () => {
    const [mid] = await fork().execute<{ iccid: string; imsi: string; eid: string }[]>(
      `select iccid, imsi, eid from sim where enterprise_id = ? and eid is not null order by iccid offset ? limit 1`,
      [bulk.id, BULK_SIMS / 2],
    );
    const queries: SimListQuery[] = [
      {},
      { after: mid.iccid },
      { before: mid.iccid },
      { status: 'active' },
      { status: 'ready', after: mid.iccid },
      { q: mid.iccid.slice(0, 12) },
      { q: mid.imsi },
      { q: mid.imsi.slice(0, 10) },
      { q: '234157' },
      { q: mid.eid.slice(0, 20) },
      { q: '89', status: 'suspended' },
      { q: mid.imsi.slice(0, 12), status: 'ready', after: mid.iccid },
    ];
    for (const enterpriseId of [bulk.id, small.id]) {
      for (const query of queries) {
        const plans = await plansOf((em) => listSims(em, enterpriseId, query));
        expect(plans.length).toBeGreaterThan(0);
        for (const plan of plans) {
          expect(plan, JSON.stringify(query)).not.toMatch(/Seq Scan on sim\b/);
          expect(plan, JSON.stringify(query)).toMatch(/Index (Only )?Scan/);
        }
      }
    }
  });

  it('a narrow IMSI search reads the IMSI index, not the whole ICCID order', async () => {
    const [last] = await fork().execute<{ imsi: string }[]>('select imsi from sim where enterprise_id = ? order by iccid desc limit 1', [
      bulk.id,
    ]);
    // planned-sql.ts: simsProbeSql, then simsMatchesSql.
    const plans = await plansOf((em) => listSims(em, bulk.id, { q: last.imsi.slice(0, 12) }));
    expect(plans.join('\n')).toMatch(/Index Scan using sim_imsi_unique on sim/);
  });

  it('the counts are index-only scans of sim_status_list_idx', async () => {
    // planned-sql.ts: simStatusCountsSql.
    const plans = await plansOf((em) => simStatusCounts(em, bulk.id));
    expect(plans[0]).toMatch(/Index Only Scan using sim_status_list_idx on sim/);
    expect(plans[0]).not.toMatch(/Seq Scan on sim\b/);
  });
});
