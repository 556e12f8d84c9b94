// A bulk job's rows in batches (changeMany in src/domain/lifecycle.ts, run by the BulkRunner of bulk.ts): one
// transaction for many rows, with every guarantee of the single-row verbs — a row changed meanwhile fails alone
// with its reason, duplicates in a batch are refused as the verbs refuse them, a batch that hits a constraint is
// done again row by row (its keys deciding), two batches racing over the same rows never do a row twice, and
// every row done has its one event, with source bulk.
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createEnterprise, linkedEndpoint, manyHoldEndpoints, manyReadySims, type TestEnterprise } from '../factories/index.js';
import type { Actor } from '../../src/domain/accounts.js';
import { BulkJobRowSchema, BulkJobSchema, EndpointSchema, SimSchema } from '../../src/domain/entities.js';
import { BulkRunner, bulkRowKey, createBulkJob, previewBulk } from '../../src/domain/bulk.js';
import { CONFLICT_SIM_TAKEN, changeMany, type BatchItem, type BatchResult } from '../../src/domain/lifecycle.js';
import { findViolations } from '../../src/domain/invariants.js';
import { actorFor, eventsSince, snapshot } from './support.js';

let db: TestDatabase;
let acme: TestEnterprise;
let admin: Actor;
const fork = (): EntityManager => db.orm.em.fork();
const bulk = (jobId: number) => ({ actor: admin, source: 'bulk' as const, requestId: `bulk-${jobId}` });
let nextJob = 900_000;

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 12 });
  const em = fork();
  acme = await createEnterprise(em, 'Acme');
  admin = await actorFor(em, acme, 'admin');
});
afterEach(async () => {
  expect(await findViolations(fork())).toEqual([]);
});
afterAll(() => db.close());

/** `count` endpoints on Hold and as many Ready SIMs, as link items of a job of their own (keys line 2, 3, …). */
async function linkItems(count: number) {
  const jobId = nextJob++;
  const endpoints = await manyHoldEndpoints(fork(), acme, count);
  const sims = await manyReadySims(fork(), acme, count);
  const items = endpoints.map((endpoint, i): BatchItem => ({
    operation: 'link',
    endpointId: endpoint.id,
    simId: sims[i].id,
    key: bulkRowKey(jobId, i + 2),
  }));
  return { jobId, endpoints, sims, items };
}

/** Waits until some statement of this database waits for a lock. */
async function someoneWaits() {
  for (let i = 0; i < 500; i++) {
    const [{ n }] = await fork().execute<{ n: number }[]>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
    );
    if (n > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('nothing ever waited for a lock');
}

const messages = (results: BatchResult[]) => results.map((r) => (r.ok ? `ok${r.outcome.replayed ? ' (replayed)' : ''}` : r.error.message));

describe('bulk rows in batches (changeMany)', () => {
  it('a row someone changed while the batch waited for its lock fails alone, with its reason; the others are done, one event each, source bulk', async () => {
    const { jobId, endpoints, sims, items } = await linkItems(3);
    const [other] = await manyReadySims(fork(), acme, 1);
    const before = await snapshot(fork());
    // Someone holds the second endpoint's lock, so the batch waits for it (after locking the first, in id order)...
    const someone = fork();
    await someone.begin();
    await someone.execute('select id from endpoint where id = ? for update', [endpoints[1].id]);
    const batch = changeMany(fork(), bulk(jobId), items);
    await someoneWaits();
    // ...and links another SIM to it before letting go.
    await someone.execute(`update sim set status = 'pre_active', endpoint_id = ? where id = ?`, [endpoints[1].id, other.id]);
    await someone.execute(`update endpoint set status = 'pre_active', sim_id = ? where id = ?`, [other.id, endpoints[1].id]);
    await someone.commit();
    const results = await batch;

    expect(messages(results)).toEqual([
      'ok',
      `Endpoint '${endpoints[1].name}' is Pre-Active; a SIM can only be linked to an endpoint on Hold.`,
      'ok',
    ]);
    expect(results[0]).toMatchObject({ ok: true, outcome: { message: `SIM ${sims[0].iccid} linked successfully`, operation: 'link' } });
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events.map((e) => [e.action, e.endpoint_id, e.sim_iccid, e.source, e.request_id])).toEqual([
      ['sim.linked', endpoints[0].id, sims[0].iccid, 'bulk', `bulk-${jobId}`],
      ['sim.linked', endpoints[2].id, sims[2].iccid, 'bulk', `bulk-${jobId}`],
    ]);
    // The refused row's SIM is still free, and its key was not stored (a later run may do it).
    expect((await fork().findOneOrFail(SimSchema, sims[1].id)).status).toBe('ready');
    const keys = await fork().execute<{ key: string }[]>('select key from operation_key where key = any(?::text[]) order by key', [
      `{${items.map((i) => i.key).join(',')}}`,
    ]);
    expect(keys.map((k) => k.key)).toEqual([items[0].key, items[2].key]);
  });

  it('the same endpoint or SIM twice in a batch: the first is done, the second refused as the single verb refuses it', async () => {
    const { jobId, endpoints, sims, items } = await linkItems(3);
    const batch: BatchItem[] = [
      items[0],
      { ...items[1], endpointId: endpoints[0].id }, // the first endpoint again, another SIM
      items[2],
      { operation: 'link', endpointId: endpoints[1].id, simId: sims[2].id, key: bulkRowKey(jobId, 9) }, // the third SIM again
    ];
    const before = await snapshot(fork());
    const results = await changeMany(fork(), bulk(jobId), batch);
    expect(messages(results)).toEqual([
      'ok',
      `Endpoint '${endpoints[0].name}' is Pre-Active; a SIM can only be linked to an endpoint on Hold.`,
      'ok',
      CONFLICT_SIM_TAKEN,
    ]);
    expect((await eventsSince(fork(), before.lastEventId)).map((e) => e.endpoint_id)).toEqual([endpoints[0].id, endpoints[2].id]);
  });

  it('a batch that hits a constraint (a row’s key stored meanwhile) rolls back whole and is done row by row: that row answered by its key, the others done once', async () => {
    const { jobId, endpoints, items } = await linkItems(3);
    const before = await snapshot(fork());
    // Another transaction stores the second row's key (as another instance doing that row would) while the batch runs.
    const someone = fork();
    await someone.begin();
    const stored = { operation: 'link', endpointId: endpoints[1].id, message: 'SIM stored linked successfully' };
    await someone.execute(`insert into operation_key (key, enterprise_id, user_id, action, outcome) values (?, ?, ?, ?, ?::jsonb)`, [
      items[1].key,
      acme.id,
      admin.id,
      `link:${endpoints[1].id}`,
      JSON.stringify(stored),
    ]);
    const batch = changeMany(fork(), bulk(jobId), items);
    await someoneWaits(); // the batch's INSERT of its keys waits for that key's transaction
    await someone.commit();
    const results = await batch;

    expect(messages(results)).toEqual(['ok', 'ok (replayed)', 'ok']);
    expect(results[1]).toMatchObject({ ok: true, outcome: { message: stored.message, replayed: true } });
    // Rows 1 and 3 once each (the batch's own attempt was rolled back); row 2 not done again.
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events.map((e) => [e.action, e.endpoint_id, e.source])).toEqual([
      ['sim.linked', endpoints[0].id, 'bulk'],
      ['sim.linked', endpoints[2].id, 'bulk'],
    ]);
    expect((await fork().findOneOrFail(EndpointSchema, endpoints[1].id)).status).toBe('hold');
  });

  it('two batches racing over the same rows never do a row twice: each row done by one, answered by its key in the other', async () => {
    for (let round = 0; round < 4; round++) {
      const { endpoints, items } = await linkItems(60);
      const before = await snapshot(fork());
      // Overlapping and in different orders: the locks are taken in id order whatever the rows' order.
      const [a, b] = await Promise.all([
        changeMany(fork(), bulk(0), items.slice(0, 40)),
        changeMany(fork(), bulk(0), [...items.slice(20)].reverse()),
      ]);
      expect([...a, ...b].every((result) => result.ok)).toBe(true);
      const replayed = [...a, ...b].filter((result) => result.ok && result.outcome.replayed).length;
      expect(replayed).toBe(20);
      const events = await eventsSince(fork(), before.lastEventId);
      expect(events.map((e) => e.endpoint_id).sort()).toEqual(endpoints.map((e) => e.id).sort());
    }
  }, 60_000);

  it('a job of every action, run in batches: each row done once with its one event, source bulk; swaps one by one between them', async () => {
    const hold = await manyHoldEndpoints(fork(), acme, 4);
    const free = await manyReadySims(fork(), acme, 6);
    const pre = await linkedEndpoint(fork(), acme, 'pre_active');
    const active = await linkedEndpoint(fork(), acme, 'active');
    const suspended = await linkedEndpoint(fork(), acme, 'suspended');
    const linked = await linkedEndpoint(fork(), acme, 'active');
    const toSwap = await linkedEndpoint(fork(), acme, 'pre_active');
    const csv = [
      'endpoint_id,action,iccid',
      `${hold[0].id},link,${free[0].iccid}`,
      `${pre.endpoint.id},activate,`,
      `${toSwap.endpoint.id},swap,${free[5].iccid}`,
      `${active.endpoint.id},suspend,`,
      `${suspended.endpoint.id},resume,`,
      `${linked.endpoint.id},delink,`,
      `${hold[1].id},link,${free[1].iccid}`,
    ].join('\n');
    const preview = await previewBulk(fork(), admin, { stream: Readable.from([Buffer.from(csv)]), filename: 'all.csv' });
    expect(preview.problems).toEqual([]);
    const job = await createBulkJob(fork(), admin, preview.fileName, preview.rows);
    const before = await snapshot(fork());
    const runner = new BulkRunner(db.orm, { batchRows: 3 });
    while (await runner.runOne());

    expect(await fork().findOneOrFail(BulkJobSchema, job.id)).toMatchObject({ state: 'done', done: 7, failed: 0 });
    const rows = await fork().find(BulkJobRowSchema, { job: job.id }, { orderBy: { line: 'asc' } });
    expect(rows.map((r) => r.message)).toEqual([
      `SIM ${free[0].iccid} linked successfully`,
      `Endpoint '${pre.endpoint.name}' activated successfully`,
      `SIM ${toSwap.sim.iccid} swapped for SIM ${free[5].iccid}`,
      `Endpoint '${active.endpoint.name}' suspended successfully`,
      `Endpoint '${suspended.endpoint.name}' resumed successfully`,
      `SIM ${linked.sim.iccid} de-linked successfully`,
      `SIM ${free[1].iccid} linked successfully`,
    ]);
    const events = (await eventsSince(fork(), before.lastEventId)).filter((e) => e.action !== 'bulk.completed');
    expect(events.every((e) => e.source === 'bulk' && e.request_id === `bulk-${job.id}`)).toBe(true);
    expect(events.map((e) => `${e.action} ${e.endpoint_id}`).sort()).toEqual(
      [
        `sim.linked ${hold[0].id}`,
        `endpoint.activated ${pre.endpoint.id}`,
        `sim.swapped ${toSwap.endpoint.id}`,
        `endpoint.suspended ${active.endpoint.id}`,
        `endpoint.resumed ${suspended.endpoint.id}`,
        `sim.delinked ${linked.endpoint.id}`,
        `sim.linked ${hold[1].id}`,
      ].sort(),
    );
  });
});
