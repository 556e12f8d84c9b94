// The entities (src/domain/entities.ts) and the schema the migrations build say the same thing: asked what it
// would change to make the migrated database fit the entities, MikroORM answers nothing. Run on the embedded
// PostgreSQL 17 and on the PostgreSQL of TEST_DATABASE_URL, so the two can never drift apart unnoticed.
//
// One thing MikroORM cannot declare: the two composite, deferred foreign keys that keep invariants 4 and 5
// (endpoint_sim_link_fk, sim_endpoint_link_fk — a foreign key to a unique key other than the primary key).
// Endpoint.sim and Sim.endpoint are declared without a foreign key of their own, so MikroORM would drop those
// two: that one statement each is expected here, and the constraints are compared apart, as the database
// defines them. MikroORM also compares expression and partial indexes by name only, and neither collations
// nor triggers; test/db/schema.test.ts compares the whole schema, those included, with a committed description.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { EndpointSchema, SimSchema } from '../../src/domain/entities.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.close());

const COMPOSITE_LINK_KEYS = [
  'alter table "sim" drop constraint "sim_endpoint_link_fk";',
  'alter table "endpoint" drop constraint "endpoint_sim_link_fk";',
];

describe('entities and the migrated schema', () => {
  it('agree: MikroORM finds nothing to change but the two composite link keys it cannot declare', async () => {
    const sql = await db.orm.schema.getUpdateSchemaSQL({ wrap: false });
    const statements = sql
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    expect(statements.filter((s) => !COMPOSITE_LINK_KEYS.includes(s))).toEqual([]);
    expect(statements.sort()).toEqual([...COMPOSITE_LINK_KEYS].sort());
  });

  it('the link relations have no single-column foreign key, and the composite keys are there as the migration made them', async () => {
    expect(EndpointSchema.meta.properties.sim.createForeignKeyConstraint).toBe(false);
    expect(SimSchema.meta.properties.endpoint.createForeignKeyConstraint).toBe(false);
    const rows = await db.orm.em.fork().execute<{ name: string; definition: string }[]>(`
      select conname as name, pg_get_constraintdef(oid) as definition from pg_constraint
      where conname in ('endpoint_sim_link_fk', 'sim_endpoint_link_fk') order by conname`);
    expect(rows).toEqual([
      {
        name: 'endpoint_sim_link_fk',
        definition:
          'FOREIGN KEY (sim_id, id, enterprise_id, status) REFERENCES sim(id, endpoint_id, enterprise_id, status) DEFERRABLE INITIALLY DEFERRED',
      },
      {
        name: 'sim_endpoint_link_fk',
        definition:
          'FOREIGN KEY (endpoint_id, id, enterprise_id, status) REFERENCES endpoint(id, sim_id, enterprise_id, status) DEFERRABLE INITIALLY DEFERRED',
      },
    ]);
  });
});
