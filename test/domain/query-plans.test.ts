// The picker, the endpoints list and the history must stay fast at a million SIMs: their statements are
// ordered index range scans that stop after a page, never a scan of the whole table. Checked with EXPLAIN on
// bulk data (20,000 SIMs here; the benchmark measures the same statements at 1,000,000).
// The picker's statements are planned SQL (src/domain/queries/planned-sql.ts: pickerSql) — this test is
// why; the endpoints list and the history are MikroORM's own statements, EXPLAINed as they run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createEnterprise } from '../factories/index.js';
import { seedBulk } from '../../src/db/seed-bulk.js';
import { explainReads } from '../helpers/explain.js';
import { importProblemsSql, pickerSql } from '../../src/domain/queries/planned-sql.js';
import { getEndpoint, listEndpoints, type EndpointListQuery } from '../../src/domain/queries/endpoints.js';
import { endpointHistory, eventsExportPage, listEvents } from '../../src/domain/queries/history.js';
import { simsExportPage } from '../../src/domain/queries/sims.js';

let db: TestDatabase;
let em: EntityManager;
let enterpriseId: number;

beforeAll(async () => {
  db = await createTestDatabase();
  em = db.orm.em.fork();
  const other = await createEnterprise(em, 'Other');
  await em.execute(`update enterprise set slug = 'other' where id = ?`, [other.id]);
  await seedBulk(em, { enterprise: 'other', sims: 5_000, endpoints: 500 });
  const big = await createEnterprise(em, 'Big');
  await em.execute(`update enterprise set slug = 'big' where id = ?`, [big.id]);
  enterpriseId = big.id;
  await seedBulk(em, { enterprise: 'big', sims: 20_000, endpoints: 2_000, linked: 1_500 });
}, 120_000);
afterAll(() => db.close());

async function plan(sql: string, params: unknown[]): Promise<string> {
  const rows = await em.execute<Record<string, string>[]>(`explain ${sql}`, params);
  return rows.map((r) => Object.values(r)[0]).join('\n');
}

describe('query plans at scale', () => {
  it.each([
    ['first page', {}],
    ['ICCID prefix', { q: '894477000000001' }],
    ['IMSI prefix', { q: '2341577000001' }],
    ['EID prefix', { q: '890490320077000000000000001' }],
    ['a page far into the list', { after: '8944770000000150003' }],
    ['previous page', { before: '8944770000000150003' }],
  ])('the picker (%s) reads the Ready to Activate indexes, not the table', async (_name, query) => {
    const statements = pickerSql(enterpriseId, query);
    const page = await plan(statements.page.sql, statements.page.params);
    const count = await plan(statements.count.sql, statements.count.params);
    for (const text of [page, count]) {
      expect(text).not.toMatch(/Seq Scan on sim/);
      expect(text).toMatch(/sim_ready_(iccid|imsi|eid)_idx|sim_(iccid|imsi|eid)_unique/);
    }
    expect(page).toMatch(/Limit/);
  });

  it.each<[string, EndpointListQuery]>([
    ['all', {}],
    ['a status', { status: 'hold' }],
    ['a name prefix', { q: 'bulk endpoint 12' }],
    ['a name or ICCID prefix', { q: '894477000000001' }],
  ])('the endpoints list (%s) walks an index in name order', async (_name, query) => {
    const first = await listEndpoints(em.fork(), enterpriseId, query);
    const pages: EndpointListQuery[] = [query];
    if (first.next) pages.push({ ...query, after: first.next }, { ...query, before: first.next });
    for (const page of pages) {
      const [statement, ...more] = await explainReads(em.fork(), (fork) => listEndpoints(fork, enterpriseId, page));
      expect(more).toEqual([]);
      expect(statement.plan, JSON.stringify(page)).not.toMatch(/Seq Scan on endpoint/);
      expect(statement.plan, JSON.stringify(page)).toMatch(/endpoint_(status_)?list_idx|endpoint_name_prefix_idx/);
      expect(statement.plan).toMatch(/Limit/);
    }
  });

  it('a page far into the endpoints list starts its index range at the cursor', async () => {
    let page = await listEndpoints(em.fork(), enterpriseId, {});
    for (let i = 0; i < 3 && page.next; i++) page = await listEndpoints(em.fork(), enterpriseId, { after: page.next });
    const [statement] = await explainReads(em.fork(), (fork) => listEndpoints(fork, enterpriseId, { after: page.next }));
    // findByCursor's condition `name >= ? and (name > ? or …)`: the index condition bounds the name.
    expect(statement.plan).toMatch(/Index Cond: \(\(enterprise_id = \d+\) AND \(\(name\)::text >= /);
  });

  it('the endpoint page reads one endpoint and its SIM by their keys', async () => {
    const [linked] = await em.execute<{ id: number }[]>('select id from endpoint where enterprise_id = ? and sim_id is not null limit 1', [
      enterpriseId,
    ]);
    const [statement, ...more] = await explainReads(em.fork(), (fork) => getEndpoint(fork, enterpriseId, linked.id));
    expect(more).toEqual([]);
    // Any index that starts with the id (the primary key or the link keys): one row each.
    expect(statement.plan).toMatch(/Index Scan using endpoint_\w+ on endpoint e\s+Index Cond: \(\(id = /);
    expect(statement.plan).toMatch(/Index Scan using sim_\w+ on sim s\s+Index Cond: \(id = e.sim_id\)/);
    expect(statement.plan).not.toMatch(/Seq Scan/);
  });

  it('the history reads the event indexes newest first', async () => {
    const [endpoint] = await em.execute<{ id: number }[]>(
      'select endpoint_id as id from event where enterprise_id = ? and endpoint_id is not null limit 1',
      [enterpriseId],
    );
    const reads = [
      (fork: EntityManager) => listEvents(fork, enterpriseId, {}),
      (fork: EntityManager) => listEvents(fork, enterpriseId, { action: 'sim.linked', before: '1000' }),
      ...(endpoint ? [(fork: EntityManager) => endpointHistory(fork, enterpriseId, endpoint.id)] : []),
    ];
    for (const read of reads) {
      const [statement] = await explainReads(em.fork(), read);
      expect(statement.plan).not.toMatch(/Seq Scan on event/);
      expect(statement.plan).toMatch(/event_(enterprise|action|endpoint)_idx|event_pkey/);
    }
  });

  it.each([
    ['all', {}],
    ['a status', { status: 'ready' as const }],
  ])('Download CSV of the SIMs (%s) walks an index in ICCID order from the cursor, a page at a time', async (_name, query) => {
    for (const after of [null, '8944770000000150003']) {
      const [statement, ...more] = await explainReads(em.fork(), (fork) =>
        simsExportPage(fork, enterpriseId, { ...query, after, limit: 5000 }),
      );
      expect(more).toEqual([]);
      expect(statement.plan).not.toMatch(/Seq Scan|Sort/);
      // An index in ICCID order (the enterprise's range, or ICCIDs filtered by enterprise when it has most of
      // the table, as here), started at the cursor and stopped after the page: no sort, no whole-table read.
      expect(statement.plan).toMatch(/Limit\n.*Index (Only )?Scan using sim_((status_)?list_idx|iccid_unique) on sim/);
      if (after) expect(statement.plan).toMatch(/Index Cond: .*\(iccid\)::text > /);
    }
  });

  it('Download CSV of the history reads the event indexes newest first, a page at a time from the cursor', async () => {
    for (const query of [{}, { action: 'sim.linked' }, { endpointId: 1 }]) {
      for (const before of [null, '1000']) {
        const [statement, ...more] = await explainReads(em.fork(), (fork) =>
          eventsExportPage(fork, enterpriseId, { ...query, before, limit: 5000 }),
        );
        expect(more).toEqual([]);
        expect(statement.plan, JSON.stringify(query)).not.toMatch(/Seq Scan on event|Sort/);
        expect(statement.plan, JSON.stringify(query)).toMatch(
          /Limit\n.*Index Scan( Backward)? using event_(enterprise|action|endpoint)_idx/,
        );
      }
    }
  });
  it('an import’s problems look each staged identifier up in sim’s unique indexes, never reading the sim table', async () => {
    // A staged file of 20,000 rows: every SIM of the enterprise again (each already in SIM Link), one row in
    // ten copying the previous line's IMSI (in-file duplicates), the table analyzed as autovacuum would.
    const importId = '00000000-0000-4000-8000-000000000001';
    await em.execute(
      `insert into import_row (import_id, line, iccid, imsi, eid, msisdn, ok)
       select ?, 1 + row_number() over (order by iccid), iccid, imsi, eid, msisdn, true from sim where enterprise_id = ?`,
      [importId, enterpriseId],
    );
    await em.execute(
      `update import_row r set imsi = p.imsi from import_row p where p.import_id = r.import_id and p.line = r.line - 1 and r.line % 10 = 0`,
    );
    await em.execute(`insert into import_problem (import_id, id, line, field_order, field, message) values (?, 1, 5, 4, 'MSISDN', 'x')`, [
      importId,
    ]);
    await em.execute('analyze import_row');
    try {
      const { sql, params } = importProblemsSql(importId, 100);
      const text = await plan(sql, params);
      expect(text).not.toMatch(/Seq Scan on sim/);
      for (const column of ['iccid', 'imsi', 'eid']) {
        expect(text).toMatch(
          new RegExp(
            `Index (Only )?Scan using sim_${column}_unique on sim s(_\\d+)?[^\\n]*\\n\\s+Index Cond: \\(${column} = c(_\\d+)?\\.${column}\\)`,
          ),
        );
      }
      const rows = await em.execute<{ total: number; bad_lines: number; line: number; field: string; message: string }[]>(sql, params);
      expect(rows).toHaveLength(100);
      expect(rows[0]).toMatchObject({ line: 2, field: 'ICCID' });
      expect(rows[0].message).toMatch(/^ICCID \d+ is already in SIM Link$/);
    } finally {
      await em.execute('delete from import_row where import_id = ?', [importId]);
      await em.execute('delete from import_problem where import_id = ?', [importId]);
    }
  });
});
