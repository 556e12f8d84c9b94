// The statements an API request sends, in order (as test/domain/round-trips.test.ts holds them for the
// lifecycle verbs): every statement is a round trip to PostgreSQL, and on the benchmark's API cycles the
// socket writes of those statements were the app's largest cost. A link or de-link through the API is the
// token's read (with the Idempotency-Key's rows, once the process knows the token's id) and the verb's own
// transaction, which keeps the answer with the key; nothing more.
import { stripVTControlCharacters } from 'node:util';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MikroORM } from '@mikro-orm/postgresql';
import type { FastifyInstance } from 'fastify';
import { ormConfig } from '../../src/db/mikro-orm.config.js';
import { SimLinkPostgreSqlDriver } from '../../src/db/driver.js';
import { createApiToken, revokeApiToken } from '../../src/domain/api-tokens.js';
import { buildApp } from '../../src/app.js';
import { findViolations } from '../../src/domain/invariants.js';
import { createEnterprise, holdEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { testConfig } from '../helpers/app.js';
import { actorFor } from '../domain/support.js';

let db: TestDatabase;
let orm: MikroORM;
let app: FastifyInstance;
let acme: TestEnterprise;
let token: string;
const logged: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  const em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme');
  const admin = await actorFor(em, acme, 'admin');
  ({ token } = await createApiToken(db.orm.em.fork(), admin, { name: 'CRM', role: 'admin' }));
  // The app on an ORM of its own, logging every statement it sends (BEGIN and COMMIT included).
  orm = await MikroORM.init({
    ...ormConfig({ clientUrl: db.url, poolSize: 4 }),
    driver: SimLinkPostgreSqlDriver,
    debug: ['query'],
    colors: false,
    logger: (message) => logged.push(stripVTControlCharacters(message)),
  });
  app = await buildApp({ orm, config: testConfig() });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await orm?.close();
  await db?.close();
});

/** What one request sends, each statement named by its verb and table (`select … for update` marked as a lock). */
async function statementsOf(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = {}) {
  logged.length = 0;
  const res = await app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}`, ...headers },
    ...(body === undefined ? {} : { payload: body as object }),
  });
  const sent = logged
    .map((line) => line.replace(/^\[query\] /, '').replace(/ \[took .*$/, ''))
    .map((sql) => {
      const lower = sql.toLowerCase();
      if (/^(begin|commit|rollback)/.test(lower)) return lower.replace(/;$/, '');
      // The statement's own table is the last named; the ones before it are read by subqueries, shown in brackets.
      const tables = [...lower.matchAll(/(?:from|into|update) "(\w+)"/g)].map((m) => m[1]);
      const verb = lower.split(' ')[0];
      const joined = / join "(\w+)"/.exec(lower)?.[1];
      const sub = tables.slice(0, -1).map((t) => ` (${t})`);
      return `${verb === 'select' && lower.includes(' for update') ? 'lock' : verb} ${tables.at(-1)}${joined ? `+${joined}` : ''}${sub.join('')}`;
    });
  return { res, sent };
}

const read = async (sql: string, params: unknown[]) => (await db.orm.em.fork().execute<Record<string, unknown>[]>(sql, params))[0];

describe('statements per API request', () => {
  it('a link and a de-link with an Idempotency-Key: the token, the key, and the verb’s transaction keeping the answer', async () => {
    const endpoint = await holdEndpoint(db.orm.em.fork(), acme);
    const sim = await readySim(db.orm.em.fork(), acme);
    const path = `/api/v1/endpoints/${endpoint.id}/sim`;
    // The token's last use is written at most once a minute: this read writes it, the changes below do not.
    // It also makes the token's id known, so each change's key rows are read in the token's statement.
    await statementsOf('GET', `/api/v1/endpoints/${endpoint.id}`);

    const link = await statementsOf('POST', path, { iccid: sim.iccid }, { 'idempotency-key': randomUUID() });
    expect(link.res.statusCode, link.res.body).toBe(200);
    expect(link.res.json()).toMatchObject({ id: endpoint.id, sim: { iccid: sim.iccid } });
    expect(link.sent).toEqual([
      'select api_token+enterprise (operation_key)',
      'begin',
      'lock endpoint',
      'lock sim',
      'insert event',
      'update endpoint',
      'update sim',
      'insert operation_key',
      'commit',
    ]);

    const delinkKey = randomUUID();
    const delink = await statementsOf('DELETE', path, undefined, { 'idempotency-key': delinkKey });
    expect(delink.res.statusCode, delink.res.body).toBe(200);
    expect(delink.res.json()).toMatchObject({ id: endpoint.id, status: 'hold', sim: null });
    expect(delink.sent).toEqual([
      'select api_token+enterprise (operation_key)',
      'begin',
      'lock endpoint+sim',
      'insert event',
      'update endpoint',
      'update sim',
      'insert operation_key',
      'commit',
    ]);
    // The answer kept in the transaction is the answer sent, with the endpoint as the change left it.
    const row = await read('select updated_at from endpoint where id = ?', [endpoint.id]);
    expect(delink.res.json().updated_at).toBe(new Date(row.updated_at as string).toISOString());

    // A retry: the first answer again, from the key's one row; nothing else is read or written.
    const retry = await statementsOf('DELETE', path, undefined, { 'idempotency-key': delinkKey });
    expect(retry.res.statusCode).toBe(200);
    expect(retry.res.headers['idempotent-replayed']).toBe('true');
    expect(retry.res.body).toBe(delink.res.body);
    expect(retry.sent).toEqual(['select api_token+enterprise (operation_key)']);
    expect(await findViolations(db.orm.em.fork())).toEqual([]);
  });

  it('the token’s last use: written by the first request, not again within the minute, again after it', async () => {
    const endpoint = await holdEndpoint(db.orm.em.fork(), acme);
    const get = () => statementsOf('GET', `/api/v1/endpoints/${endpoint.id}`);
    await db.orm.em.fork().execute('update api_token set last_used_at = null');
    const first = await get();
    expect(first.sent).toEqual(['select api_token+enterprise', 'update api_token', 'select endpoint+sim']);
    const used = (await read('select last_used_at from api_token where name = ?', ['CRM'])).last_used_at as string;
    expect(Date.now() - new Date(used).getTime()).toBeLessThan(60_000);
    expect((await get()).sent).toEqual(['select api_token+enterprise', 'select endpoint+sim']);
    await db.orm.em.fork().execute(`update api_token set last_used_at = now() - interval '61 seconds'`);
    expect((await get()).sent).toEqual(['select api_token+enterprise', 'update api_token', 'select endpoint+sim']);
  });
});

describe('a token this process has not seen yet', () => {
  it('is read alone, then its key in a statement of its own; revoked, it is refused from the next request on', async () => {
    const em = db.orm.em.fork();
    const admin = await actorFor(em, acme, 'admin');
    const created = await createApiToken(db.orm.em.fork(), admin, { name: 'New CRM', role: 'admin' });
    const endpoint = await holdEndpoint(db.orm.em.fork(), acme);
    const sim = await readySim(db.orm.em.fork(), acme);
    const path = `/api/v1/endpoints/${endpoint.id}/sim`;
    const asNew = { authorization: `Bearer ${created.token}` };
    const link = await statementsOf('POST', path, { iccid: sim.iccid }, { ...asNew, 'idempotency-key': randomUUID() });
    expect(link.res.statusCode, link.res.body).toBe(200);
    expect(link.sent.slice(0, 4)).toEqual(['select api_token+enterprise', 'update api_token', 'select operation_key', 'begin']);
    // Known now: its id is not a reason to let it in once revoked — the token is read on every request.
    await revokeApiToken(db.orm.em.fork(), admin, created.row.id);
    const refused = await statementsOf('DELETE', path, undefined, { ...asNew, 'idempotency-key': randomUUID() });
    expect(refused.res.statusCode).toBe(401);
    expect(refused.sent).toEqual(['select api_token+enterprise (operation_key)']);
    expect((await read('select sim_id from endpoint where id = ?', [endpoint.id])).sim_id).toBe(sim.id);
  });
});
