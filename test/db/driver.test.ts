// The driver's compiled INSERTs and UPDATEs (src/db/driver.ts): the unit of work's writes take them — not
// MikroORM's per-row query builder — and they send exactly the statements MikroORM's own driver sends for the
// same changes; anything out of the ordinary (an upsert, raw SQL) still takes MikroORM's path and works.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { raw } from '@mikro-orm/core';
import { MikroORM, PostgreSqlDriver, type EntityManager } from '@mikro-orm/postgresql';
import { ormConfig } from '../../src/db/mikro-orm.config.js';
import { SimLinkPostgreSqlDriver } from '../../src/db/driver.js';
import { EndpointSchema, EventSchema, OperationKeySchema, SessionSchema } from '../../src/domain/entities.js';
import { createEnterprise, holdEndpoint } from '../factories/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;
let enterpriseId: number;
let endpointId: number;

beforeAll(async () => {
  db = await createTestDatabase();
  const em = db.orm.em.fork() as EntityManager;
  const enterprise = await createEnterprise(em);
  enterpriseId = enterprise.id;
  endpointId = (await holdEndpoint(em, enterprise)).id;
});
afterAll(() => db.close());

/** One change of an endpoint and two rows inserted with em.insert (a JSON column among them), rolled back. */
async function writeOnce(em: EntityManager) {
  await em.begin();
  try {
    const endpoint = await em.findOneOrFail(EndpointSchema, endpointId);
    endpoint.name = 'Renamed by the driver test';
    endpoint.imei = null;
    await em.flush();
    await em.insert(OperationKeySchema, {
      key: 'driver-test-key-0001',
      enterprise: enterpriseId,
      userId: 1,
      action: 'link:1',
      outcome: { message: 'it\'s "quoted"', nested: { list: [1, 2] } },
    });
    await em.insert(EventSchema, { enterprise: enterpriseId, actorName: 'Driver test', action: 'endpoint.created', endpoint: endpointId });
  } finally {
    await em.rollback();
  }
}

/** The INSERTs and UPDATEs an ORM sends for writeOnce, with the times they carry made alike. */
async function statementsOf(driver: typeof PostgreSqlDriver): Promise<string[]> {
  const logged: string[] = [];
  const orm = await MikroORM.init({
    ...ormConfig({ clientUrl: db.url, poolSize: 1 }),
    driver,
    debug: ['query', 'query-params'],
    colors: false,
    logger: (message) => logged.push(message),
  });
  try {
    await writeOnce(orm.em.fork());
  } finally {
    await orm.close();
  }
  return logged
    .map((line) =>
      line
        // The log's colour codes (ESC [ n m), without a control character in a regex literal.
        .replace(new RegExp(`${String.fromCharCode(27)}\\[\\d+m`, 'g'), '')
        .replace(/^\[query\] /, '')
        .replace(/ \[took .*$/, ''),
    )
    .filter((sql) => /^(insert|update)/.test(sql))
    .map((sql) => sql.replace(/'\d{4}-\d\d-\d\dT[\d:.]+Z'/g, "'<time>'"));
}

describe('the driver compiles the unit of work’s writes once', () => {
  it('sends exactly the INSERTs and UPDATEs MikroORM’s own driver sends', async () => {
    const ours = await statementsOf(SimLinkPostgreSqlDriver);
    const theirs = await statementsOf(PostgreSqlDriver);
    expect(ours).toHaveLength(3);
    expect(ours).toEqual(theirs);
  });

  it('the flush and em.insert take the compiled statements, and the rows are written', async () => {
    const update = vi.spyOn(PostgreSqlDriver.prototype, 'nativeUpdate');
    const insert = vi.spyOn(PostgreSqlDriver.prototype, 'nativeInsert');
    try {
      const em = db.orm.em.fork() as EntityManager;
      const endpoint = await em.findOneOrFail(EndpointSchema, endpointId);
      endpoint.name = 'Written through the cache';
      await em.flush();
      const eventId = await em.insert(EventSchema, {
        enterprise: enterpriseId,
        actorName: 'Driver test',
        action: 'endpoint.created',
        endpoint: endpointId,
      });
      expect(update).not.toHaveBeenCalled();
      expect(insert).not.toHaveBeenCalled();

      const read = db.orm.em.fork();
      expect((await read.findOneOrFail(EndpointSchema, endpointId)).name).toBe('Written through the cache');
      const event = await read.findOneOrFail(EventSchema, eventId);
      expect(event.actorName).toBe('Driver test');
      expect(event.endpoint?.id).toBe(endpointId);
    } finally {
      update.mockRestore();
      insert.mockRestore();
    }
  });

  it('leaves upserts and raw SQL values to MikroORM’s own path, which still works', async () => {
    const update = vi.spyOn(PostgreSqlDriver.prototype, 'nativeUpdate');
    try {
      const em = db.orm.em.fork() as EntityManager;
      const expiresAt = new Date(Date.now() + 60_000);
      const row = { id: 'driver-test-session', user: null, data: { a: 1 }, expiresAt, createdAt: new Date() };
      await em.upsert(SessionSchema, row, { onConflictFields: ['id'], disableIdentityMap: true });
      await em.upsert(SessionSchema, { ...row, data: { a: 2 } }, { onConflictFields: ['id'], disableIdentityMap: true });
      await em.nativeUpdate(EndpointSchema, { id: endpointId }, { name: raw(`'Raw' || ' SQL'`) });
      expect(update).toHaveBeenCalledTimes(3);

      const read = db.orm.em.fork();
      expect((await read.findOneOrFail(SessionSchema, 'driver-test-session')).data).toEqual({ a: 2 });
      expect((await read.findOneOrFail(EndpointSchema, endpointId)).name).toBe('Raw SQL');
    } finally {
      update.mockRestore();
    }
  });
});
