// compileStatement (src/db/compiled-statement.ts): a statement built once by MikroORM's query builder and run
// with each call's values — among them a value of a JSON property, which MikroORM encodes, so it is bound
// encoded too (the API's Idempotency-Key answers are written so).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequiredEntityData } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { compileStatement } from '../../src/db/compiled-statement.js';
import { OperationKeySchema, type OperationKey } from '../../src/domain/entities.js';
import { createEnterprise, type TestEnterprise } from '../factories/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;
let acme: TestEnterprise;
beforeAll(async () => {
  db = await createTestDatabase();
  acme = await createEnterprise(db.orm.em.fork());
});
afterAll(() => db.close());

const insertKey = (em: EntityManager) =>
  compileStatement(
    3,
    ([key, enterprise, outcome]) =>
      em
        .createQueryBuilder(OperationKeySchema)
        .insert({ key, enterprise, userId: 1, action: 'test', outcome } as unknown as RequiredEntityData<OperationKey>)
        .onConflict('key')
        .ignore(),
    'a one-time key',
  );

describe('compileStatement', () => {
  it('binds a JSON property’s value encoded, as MikroORM would', async () => {
    const em = db.orm.em.fork();
    const { sql, bind } = insertKey(em);
    const outcome = { body: '{"id":1,"name":"it\'s \\"quoted\\""}', status: 200, nested: { list: [1, null] } };
    await em.execute(sql, bind(['compiled-json-key-0001', acme.id, outcome]), 'run');
    await em.execute(sql, bind(['compiled-json-key-0002', acme.id, { other: true }]), 'run');
    const rows = await em.execute<{ key: string; outcome: unknown }[]>(
      `select key, outcome from operation_key where key like 'compiled-json-key-%' order by key`,
    );
    expect(rows).toEqual([
      { key: 'compiled-json-key-0001', outcome },
      { key: 'compiled-json-key-0002', outcome: { other: true } },
    ]);
  });

  it('refuses a statement that does not bind each of its values once', () => {
    const em = db.orm.em.fork();
    expect(() =>
      compileStatement(2, ([key]) => em.createQueryBuilder(OperationKeySchema).select('*').where({ key }), 'a read with one value of two'),
    ).toThrow(/does not bind each of its 2 values once/);
  });
});
