// The invariant checker can fail. For each invariant of docs/invariants.md, inside a transaction that is rolled back:
// drop the constraint(s) that keep it (DDL is transactional in PostgreSQL), write a violating row, and
// assert that findViolations — run on that same transaction — reports exactly that, with the invariant's
// number. After the rollback the constraints are back and the database is clean again.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createEnterprise, holdEndpoint, linkedEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import { findViolations, type Violation } from '../../src/domain/invariants.js';

let db: TestDatabase;
let acme: TestEnterprise;
let globex: TestEnterprise;
const fork = (): EntityManager => db.orm.em.fork();

beforeAll(async () => {
  db = await createTestDatabase();
  acme = await createEnterprise(fork(), 'Acme');
  globex = await createEnterprise(fork(), 'Globex');
});
afterAll(() => db?.close());
afterEach(async () => {
  expect(await findViolations(fork())).toEqual([]);
});

/** Every constraint that keeps an invariant, by table. */
const GUARDS = {
  endpoint: ['endpoint_sim_id_unique', 'endpoint_hold_iff_no_sim', 'endpoint_sim_link_fk'],
  sim: ['sim_endpoint_id_unique', 'sim_ready_iff_no_endpoint', 'sim_endpoint_link_fk'],
};
const ALL_GUARDS = [...GUARDS.endpoint, ...GUARDS.sim];

class Rollback extends Error {}

async function guardsInPlace(em: EntityManager): Promise<string[]> {
  const rows = await em.execute<{ conname: string }[]>(
    `select conname from pg_constraint where conname in (${ALL_GUARDS.map(() => '?').join(', ')}) order by conname`,
    ALL_GUARDS,
  );
  return rows.map((r) => r.conname);
}

interface Fixture {
  e1: number;
  e2: number;
  s1: number;
  s2: number;
}

interface Case {
  title: string;
  invariant: number;
  /** The constraints dropped for the violation to be writable at all. */
  drop: [table: 'endpoint' | 'sim', constraint: string][];
  /** Alternatively (or as well): switch off the foreign keys' triggers for this transaction. */
  replica?: boolean;
  /** The violating writes, given the fixture: e1 linked to s1 (Active), e2 on Hold, s2 Ready to Activate. */
  violate: (f: Fixture) => [string, unknown[]][];
  expected: (f: Fixture) => Violation[];
}

const v = (invariant: number, endpoint_id: number | null, sim_id: number | null, detail: string): Violation => ({
  invariant,
  endpoint_id,
  sim_id,
  detail,
});

const CASES: Case[] = [
  {
    title: 'a SIM linked to two endpoints',
    invariant: 1,
    drop: [
      ['endpoint', 'endpoint_sim_id_unique'],
      ['endpoint', 'endpoint_sim_link_fk'],
    ],
    violate: (f) => [["update endpoint set status = 'active', sim_id = ? where id = ?", [f.s1, f.e2]]],
    expected: (f) => [
      v(1, null, f.s1, 'SIM linked to 2 endpoints'),
      v(4, f.e2, f.s1, 'endpoint active but its SIM is active and points elsewhere'),
    ],
  },
  {
    title: 'an endpoint linked to two SIMs',
    invariant: 1,
    drop: [
      ['sim', 'sim_endpoint_id_unique'],
      ['sim', 'sim_endpoint_link_fk'],
    ],
    violate: (f) => [["update sim set status = 'active', endpoint_id = ? where id = ?", [f.e1, f.s2]]],
    expected: (f) => [
      v(1, f.e1, null, 'endpoint linked to 2 SIMs'),
      v(4, f.e1, f.s2, 'SIM active but its endpoint is active and points elsewhere'),
    ],
  },
  {
    title: 'an endpoint not on Hold without a SIM',
    invariant: 2,
    drop: [['endpoint', 'endpoint_hold_iff_no_sim']],
    violate: (f) => [["update endpoint set status = 'pre_active' where id = ?", [f.e2]]],
    expected: (f) => [v(2, f.e2, null, 'endpoint is pre_active without a SIM')],
  },
  {
    title: 'an endpoint on Hold with a SIM',
    invariant: 2,
    drop: [['endpoint', 'endpoint_hold_iff_no_sim']],
    replica: true,
    violate: (f) => [["update endpoint set status = 'hold' where id = ?", [f.e1]]],
    expected: (f) => [
      v(2, f.e1, f.s1, 'endpoint is hold with a SIM'),
      v(4, f.e1, f.s1, 'endpoint hold but its SIM is active'),
      v(4, f.e1, f.s1, 'SIM active but its endpoint is hold'),
    ],
  },
  {
    title: 'a Ready to Activate SIM with an endpoint',
    invariant: 3,
    drop: [['sim', 'sim_ready_iff_no_endpoint']],
    replica: true,
    violate: (f) => [["update sim set status = 'ready' where id = ?", [f.s1]]],
    expected: (f) => [
      v(3, f.e1, f.s1, 'SIM is ready with an endpoint'),
      v(4, f.e1, f.s1, 'endpoint active but its SIM is ready'),
      v(4, f.e1, f.s1, 'SIM ready but its endpoint is active'),
    ],
  },
  {
    title: 'a SIM not Ready to Activate without an endpoint',
    invariant: 3,
    drop: [['sim', 'sim_ready_iff_no_endpoint']],
    violate: (f) => [["update sim set status = 'suspended' where id = ?", [f.s2]]],
    expected: (f) => [v(3, null, f.s2, 'SIM is suspended without an endpoint')],
  },
  {
    title: 'a linked SIM in another status than its endpoint',
    invariant: 4,
    drop: [
      ['endpoint', 'endpoint_sim_link_fk'],
      ['sim', 'sim_endpoint_link_fk'],
    ],
    violate: (f) => [["update sim set status = 'suspended' where id = ?", [f.s1]]],
    expected: (f) => [
      v(4, f.e1, f.s1, 'endpoint active but its SIM is suspended'),
      v(4, f.e1, f.s1, 'SIM suspended but its endpoint is active'),
    ],
  },
  {
    title: 'a linked SIM in another status than its endpoint (foreign-key triggers off instead of dropped)',
    invariant: 4,
    drop: [],
    replica: true,
    violate: (f) => [["update endpoint set status = 'pre_active' where id = ?", [f.e1]]],
    expected: (f) => [
      v(4, f.e1, f.s1, 'endpoint pre_active but its SIM is active'),
      v(4, f.e1, f.s1, 'SIM active but its endpoint is pre_active'),
    ],
  },
  {
    title: 'an endpoint pointing at a SIM that does not point back',
    invariant: 4,
    drop: [['endpoint', 'endpoint_sim_link_fk']],
    violate: (f) => [["update endpoint set status = 'active', sim_id = ? where id = ?", [f.s2, f.e2]]],
    expected: (f) => [v(4, f.e2, f.s2, 'endpoint active but its SIM is ready and points elsewhere')],
  },
  {
    title: 'an endpoint pointing at a SIM that does not exist',
    invariant: 4,
    drop: [['endpoint', 'endpoint_sim_link_fk']],
    violate: (f) => [["update endpoint set status = 'active', sim_id = ? where id = ?", [999_999_999, f.e2]]],
    expected: (f) => [v(4, f.e2, 999_999_999, 'endpoint active but its SIM is missing and points elsewhere')],
  },
  {
    title: 'a SIM pointing at an endpoint that does not point back',
    invariant: 4,
    drop: [['sim', 'sim_endpoint_link_fk']],
    violate: (f) => [["update sim set status = 'active', endpoint_id = ? where id = ?", [f.e2, f.s2]]],
    expected: (f) => [v(4, f.e2, f.s2, 'SIM active but its endpoint is hold and points elsewhere')],
  },
  {
    title: 'an endpoint and its SIM in different enterprises',
    invariant: 5,
    drop: [
      ['endpoint', 'endpoint_sim_link_fk'],
      ['sim', 'sim_endpoint_link_fk'],
    ],
    violate: (f) => [['update sim set enterprise_id = ? where id = ?', [GLOBEX, f.s1]]],
    expected: (f) => [v(5, f.e1, f.s1, `endpoint of enterprise ${ACME}, SIM of enterprise ${GLOBEX}`)],
  },
];
// Resolved when the statements run (the enterprises are created in beforeAll).
const ACME = '$acme';
const GLOBEX = '$globex';
const resolve = (value: unknown) => (value === ACME ? acme.id : value === GLOBEX ? globex.id : value);

describe('the invariant checker reports each kind of violation', () => {
  it('finds nothing in a consistent database', async () => {
    await linkedEndpoint(fork(), acme, 'suspended');
    await holdEndpoint(fork(), acme);
    await readySim(fork(), globex);
    expect(await findViolations(fork())).toEqual([]);
  });

  it('covers invariants 1 to 5', () => {
    expect(new Set(CASES.map((c) => c.invariant))).toEqual(new Set([1, 2, 3, 4, 5]));
  });

  it.each(CASES.map((c) => [`invariant ${c.invariant}: ${c.title}`, c] as const))('%s', async (_title, c) => {
    const em = fork();
    const { endpoint: e1, sim: s1 } = await linkedEndpoint(em, acme, 'active');
    const e2 = await holdEndpoint(em, acme);
    const s2 = await readySim(em, acme);
    const f: Fixture = { e1: e1.id, e2: e2.id, s1: s1.id, s2: s2.id };
    let seen: Violation[] | undefined;
    const attempt = fork().transactional(async (tx) => {
      for (const [table, constraint] of c.drop) await tx.execute(`alter table ${table} drop constraint ${constraint}`);
      if (c.replica) await tx.execute('set local session_replication_role = replica');
      expect(await findViolations(tx)).toEqual([]);
      for (const [sql, params] of c.violate(f)) await tx.execute(sql, params.map(resolve));
      seen = await findViolations(tx);
      throw new Rollback();
    });
    await expect(attempt).rejects.toBeInstanceOf(Rollback);
    const expected = c
      .expected(f)
      .map((x) => ({ ...x, detail: x.detail.replace(ACME, String(acme.id)).replace(GLOBEX, String(globex.id)) }));
    expect(seen).toEqual(expected);
    expect(seen!.map((x) => x.invariant)).toContain(c.invariant);
    // Rolled back: the constraints are back, and the rows are as they were.
    expect(await guardsInPlace(fork())).toEqual([...ALL_GUARDS].sort());
  });
});
