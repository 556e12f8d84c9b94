// The statements each lifecycle operation sends, in order. Every statement is a round trip to PostgreSQL
// (and a socket write and read on both sides): the benchmark's link + de-link cycles are paid per statement,
// so the count is held here, where it cannot drift unnoticed. A de-link, activate, suspend or resume locks
// the endpoint and its SIM in one statement; every change reads the enterprise's webhook subscriptions in
// the statement that locks the endpoint (never a statement of its own), and writes an outbox message only
// when a webhook listens.
import { stripVTControlCharacters } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import { ormConfig } from '../../src/db/mikro-orm.config.js';
import { SimLinkPostgreSqlDriver } from '../../src/db/driver.js';
import type { Actor } from '../../src/domain/accounts.js';
import { activateEndpoint, changeMany, delinkSim, linkSim, resumeEndpoint, suspendEndpoint, swapSim } from '../../src/domain/lifecycle.js';
import { createWebhook } from '../../src/domain/webhooks.js';
import { findViolations } from '../../src/domain/invariants.js';
import {
  createEnterprise,
  holdEndpoint,
  linkedEndpoint,
  manyHoldEndpoints,
  manyReadySims,
  readySim,
  type TestEnterprise,
} from '../factories/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { actorFor } from './support.js';

let db: TestDatabase;
let orm: MikroORM;
let acme: TestEnterprise;
let admin: Actor;
const logged: string[] = [];
let keys = 0;
const key = () => `round-trip-key-${String(++keys).padStart(6, '0')}`;

beforeAll(async () => {
  db = await createTestDatabase();
  const em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme');
  admin = await actorFor(em, acme, 'admin');
  // An ORM of its own, logging every statement it sends (BEGIN and COMMIT included).
  orm = await MikroORM.init({
    ...ormConfig({ clientUrl: db.url, poolSize: 2 }),
    driver: SimLinkPostgreSqlDriver,
    debug: ['query'],
    colors: false,
    logger: (message) => logged.push(stripVTControlCharacters(message)),
  });
});
afterAll(async () => {
  await orm?.close();
  await db?.close();
});
afterEach(async () => {
  expect(await findViolations(db.orm.em.fork())).toEqual([]);
});

/** What `work` sends, each statement named by its verb and table (`select … for update` marked as a lock). */
async function statementsOf(work: (em: EntityManager) => Promise<unknown>): Promise<string[]> {
  logged.length = 0;
  await work(orm.em.fork());
  return logged
    .map((line) => line.replace(/^\[query\] /, '').replace(/ \[took .*$/, ''))
    .map((sql) => {
      const lower = sql.toLowerCase();
      if (/^(begin|commit|rollback)/.test(lower)) return lower.replace(/;$/, '');
      const table = /(?:from|into|update) "(\w+)"/.exec(lower)?.[1];
      const verb = lower.split(' ')[0];
      const joined = / join "(\w+)"/.exec(lower)?.[1];
      return `${verb === 'select' && lower.includes(' for update') ? 'lock' : verb} ${table}${joined ? `+${joined}` : ''}`;
    });
}

describe('statements per operation', () => {
  it('link: the endpoint (with the subscriptions), the SIM, the event, the key, the two rows', async () => {
    const endpoint = await holdEndpoint(db.orm.em.fork(), acme);
    const sim = await readySim(db.orm.em.fork(), acme);
    const sent = await statementsOf((em) => linkSim(em, { actor: admin, key: key() }, endpoint.id, sim.id));
    expect(sent).toEqual([
      'begin',
      'lock endpoint',
      'lock sim',
      'insert event',
      'insert operation_key',
      'update endpoint',
      'update sim',
      'commit',
    ]);
  });

  it('de-link, activate, suspend, resume: the endpoint and its SIM in one statement', async () => {
    const { endpoint } = await linkedEndpoint(db.orm.em.fork(), acme, 'pre_active');
    const oneLock = ['begin', 'lock endpoint+sim', 'insert event', 'insert operation_key', 'update endpoint', 'update sim', 'commit'];
    expect(await statementsOf((em) => activateEndpoint(em, { actor: admin, key: key() }, endpoint.id))).toEqual(oneLock);
    expect(await statementsOf((em) => suspendEndpoint(em, { actor: admin, key: key() }, endpoint.id))).toEqual(oneLock);
    expect(await statementsOf((em) => resumeEndpoint(em, { actor: admin, key: key() }, endpoint.id))).toEqual(oneLock);
    expect(await statementsOf((em) => delinkSim(em, { actor: admin, key: key() }, endpoint.id))).toEqual(oneLock);
  });

  it('a batch of bulk rows (changeMany): ten statements for 20 rows, as for one — each kind of read and write once', async () => {
    const endpoints = await manyHoldEndpoints(db.orm.em.fork(), acme, 20);
    const sims = await manyReadySims(db.orm.em.fork(), acme, 20);
    const bulk = { actor: admin, source: 'bulk' as const };
    const batch = (operation: 'link' | 'delink') =>
      endpoints.map((endpoint, i) => ({ operation, endpointId: endpoint.id, simId: sims[i].id, key: key() }));
    const expected = [
      'begin',
      'select operation_key',
      'lock endpoint',
      'lock sim',
      'select webhook',
      'insert event',
      'insert operation_key',
      'update endpoint',
      'update sim',
      'commit',
    ];
    expect(await statementsOf((em) => changeMany(em, bulk, batch('link')))).toEqual(expected);
    expect(await statementsOf((em) => changeMany(em, bulk, batch('delink')))).toEqual(expected);
  });

  it('a refused de-link (the endpoint is on Hold) locks the endpoint alone, and writes nothing', async () => {
    const endpoint = await holdEndpoint(db.orm.em.fork(), acme);
    const sent = await statementsOf((em) => delinkSim(em, { actor: admin, key: key() }, endpoint.id).catch((error: Error) => error));
    expect(sent.slice(0, 3)).toEqual(['begin', 'lock endpoint+sim', 'lock endpoint']);
    expect(sent.filter((s) => /^(insert|update)/.test(s))).toEqual([]);
    expect(sent).toContain('rollback');
  });

  it('with a webhook subscribed: one more statement, the outbox message — still no read of its own', async () => {
    await createWebhook(
      db.orm.em.fork(),
      admin,
      { url: 'https://receiver.example.test/hook', eventTypes: ['sim.linked', 'sim.delinked'] },
      { allowPrivate: true },
    );
    const endpoint = await holdEndpoint(db.orm.em.fork(), acme);
    const sim = await readySim(db.orm.em.fork(), acme);
    const linked = await statementsOf((em) => linkSim(em, { actor: admin, key: key() }, endpoint.id, sim.id));
    expect(linked).toEqual([
      'begin',
      'lock endpoint',
      'lock sim',
      'insert event',
      'insert webhook_message',
      'insert operation_key',
      'update endpoint',
      'update sim',
      'commit',
    ]);
    const delinked = await statementsOf((em) => delinkSim(em, { actor: admin, key: key() }, endpoint.id));
    expect(delinked).toEqual([
      'begin',
      'lock endpoint+sim',
      'insert event',
      'insert webhook_message',
      'insert operation_key',
      'update endpoint',
      'update sim',
      'commit',
    ]);
    // Not subscribed to activations: none written, and nothing read for it.
    const { endpoint: other } = await linkedEndpoint(db.orm.em.fork(), acme, 'pre_active');
    const activated = await statementsOf((em) => activateEndpoint(em, { actor: admin, key: key() }, other.id));
    expect(activated).not.toContain('insert webhook_message');
    expect(activated.filter((s) => s.startsWith('select'))).toEqual([]);
    const [{ n }] = await db.orm.em
      .fork()
      .execute<{ n: number }[]>(`select count(*)::int as n from webhook_message where event_type in ('sim.linked', 'sim.delinked')`);
    expect(n).toBe(2);
  });

  it('swap: the endpoint, then both SIMs in the order of their ids', async () => {
    const { endpoint } = await linkedEndpoint(db.orm.em.fork(), acme, 'active');
    const sim = await readySim(db.orm.em.fork(), acme);
    const sent = await statementsOf((em) => swapSim(em, { actor: admin, key: key() }, endpoint.id, sim.id));
    expect(sent.slice(0, 4)).toEqual(['begin', 'lock endpoint', 'lock sim', 'lock sim']);
    expect(sent.filter((s) => s.startsWith('select'))).toEqual([]);
  });
});
