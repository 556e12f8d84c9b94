// The migrations build the same schema on the embedded PostgreSQL 17 and on the system PostgreSQL 15: both runs compare the schema
// they built with one committed description of it (test/db/schema.expected.txt).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const expectedFile = fileURLToPath(new URL('./schema.expected.txt', import.meta.url));
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.close());

async function describeSchema(): Promise<string> {
  const em = db.orm.em.fork();
  const columns = await em.execute<{ line: string }[]>(`
    select format('column %s.%s %s%s%s%s', c.table_name, c.column_name, c.data_type,
                  coalesce('(' || c.character_maximum_length || ')', ''),
                  case when c.is_nullable = 'NO' then ' not null' else '' end,
                  coalesce(' collate ' || c.collation_name, '')) as line
    from information_schema.columns c where c.table_schema = 'public'`);
  const constraints = await em.execute<{ line: string }[]>(`
    select format('constraint %s %s %s', cl.relname, co.conname, pg_get_constraintdef(co.oid)) as line
    from pg_constraint co join pg_class cl on cl.oid = co.conrelid join pg_namespace n on n.oid = cl.relnamespace
    where n.nspname = 'public' and co.contype in ('p', 'u', 'f', 'c')`);
  const indexes = await em.execute<{ line: string }[]>(`
    select format('index %s', indexdef) as line from pg_indexes where schemaname = 'public'`);
  const triggers = await em.execute<{ line: string }[]>(`
    select format('trigger %s on %s', t.tgname, c.relname) as line
    from pg_trigger t join pg_class c on c.oid = t.tgrelid where not t.tgisinternal`);
  return (
    [...columns, ...constraints, ...indexes, ...triggers]
      .map((r) => r.line.replace(/\s+/g, ' '))
      .filter((line) => !line.includes('mikro_orm_migrations'))
      .sort()
      .join('\n') + '\n'
  );
}

describe('schema', () => {
  it('has no pending migrations after start', async () => {
    expect(await db.orm.getMigrator().getPendingMigrations()).toEqual([]);
    const executed = await db.orm.getMigrator().getExecutedMigrations();
    expect(executed.map((m) => m.name)).toContain('Migration20261127000000_domain');
    expect(executed.map((m) => m.name)).toContain('Migration20261203100000_unique_imei');
    expect(executed.map((m) => m.name)).toContain('Migration20261204100000_import_limits');
  });

  it('is the same on the embedded server and on PostgreSQL 15', async () => {
    const actual = await describeSchema();
    if (process.env.UPDATE_SCHEMA_SNAPSHOT) writeFileSync(expectedFile, actual);
    expect(actual).toBe(readFileSync(expectedFile, 'utf8'));
  });
});
