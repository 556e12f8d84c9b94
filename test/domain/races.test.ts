// Races that really race, on the system's PostgreSQL (TEST_DATABASE_URL) and on the embedded server alike:
// every em.fork() transaction gets its own pooled connection — the pool here is wider than any race, so all
// attempts are in the database at once, and a sampler counts how many of them wait on a row lock at the same
// moment. The assertions: exactly one winner where the spec says so, every loser a typed, worded refusal,
// one event per winner, and no invariant broken.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import {
  createEnterprise,
  holdEndpoint,
  linkedEndpoint,
  readySim,
  type TestEnterprise,
  type TestEndpoint,
  type TestSim,
} from '../factories/index.js';
import { ormConfig } from '../../src/db/mikro-orm.config.js';
import type { Actor } from '../../src/domain/accounts.js';
import { ConflictError, InvalidStateError, ValidationError } from '../../src/domain/errors.js';
import {
  activateEndpoint,
  createEndpoint,
  delinkSim,
  linkSim,
  resumeEndpoint,
  suspendEndpoint,
  swapSim,
  type Outcome,
} from '../../src/domain/lifecycle.js';
import { findViolations } from '../../src/domain/invariants.js';
import { actorFor, eventsSince, snapshot, tally, type Row } from './support.js';
import { imeiFor } from '../../src/db/generate-identifiers.js';

const SIM_TAKEN = 'This SIM was just linked to another endpoint. Choose another SIM.';
/** A refusal that found the endpoint changed by a transaction that committed while it ran. */
const CHANGED_MEANWHILE = 'Someone else changed this endpoint or SIM at the same moment. Nothing was changed; look at it again and retry.';
const NAMES_STATE = /^Endpoint '.+' is (on Hold|Pre-Active|Active|Suspended); /;
/** Connections for the racing transactions: more than the widest race, so none of them queues for one. */
const RACE_POOL = 25;

let db: TestDatabase;
let raceOrm: MikroORM;
let acme: TestEnterprise;
let alice: Actor;
let bob: Actor;
const fork = (): EntityManager => db.orm.em.fork();
/** A new unit of work on the racing pool: one per attempt. */
const racer = (): EntityManager => raceOrm.em.fork();

interface Figure {
  scenario: string;
  attempts: number;
  winners: number;
  refused: string;
  maxLockWaiters: number;
  ms: number;
}
const figures: Figure[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  raceOrm = await MikroORM.init(ormConfig({ clientUrl: db.url, poolSize: RACE_POOL }));
  // Open every connection now, so the races do not include connecting.
  await Promise.all(Array.from({ length: RACE_POOL }, () => raceOrm.em.fork().execute('select pg_sleep(0.05)')));
  const em = fork();
  acme = await createEnterprise(em, 'Acme');
  alice = await actorFor(em, acme);
  bob = await actorFor(em, acme);
});

afterAll(async () => {
  console.log(`\nRace figures (${inject('serverName')}, pool of ${RACE_POOL} connections):`);
  console.table(figures);
  await raceOrm?.close(true);
  await db?.close();
});

afterEach(async () => {
  expect(await findViolations(fork())).toEqual([]);
});

/**
 * On the server: polls pg_stat_activity from its own connection and keeps the largest number of this
 * database's backends seen waiting on a lock at once — evidence that the attempts really overlapped.
 */
async function lockSampler(): Promise<{ stop: () => Promise<number> }> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const { rows } = await client.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
      );
      max = Math.max(max, rows[0].n);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await client.end();
      return max;
    },
  };
}

/** Starts every attempt at once and waits for all; records the figures. */
async function race<T>(scenario: string, attempts: (() => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
  const sampler = await lockSampler();
  const started = performance.now();
  const results = await Promise.allSettled(attempts.map((attempt) => attempt()));
  const ms = Math.round(performance.now() - started);
  const maxLockWaiters = await sampler.stop();
  const counts = tally(results);
  const { ok = 0, ...refused } = counts;
  figures.push({
    scenario,
    attempts: attempts.length,
    winners: ok,
    refused:
      Object.entries(refused)
        .map(([name, n]) => `${n} ${name}`)
        .join(', ') || '—',
    maxLockWaiters,
    ms,
  });
  return results;
}

const winners = <T>(results: PromiseSettledResult<T>[]) =>
  results.filter((r): r is PromiseFulfilledResult<T> => r.status === 'fulfilled').map((r) => r.value);
const losers = (results: PromiseSettledResult<unknown>[]) =>
  results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);

/**
 * Each loser lost to the winner, in words: a typed refusal, never a database error or a deadlock — either
 * the endpoint's state named, or the SIM taken elsewhere, or the endpoint changed meanwhile.
 */
function expectWorded(errors: Error[]) {
  for (const error of errors) {
    if (error instanceof ConflictError) expect([SIM_TAKEN, CHANGED_MEANWHILE]).toContain(error.message);
    else if (error instanceof InvalidStateError) expect(error.message).toMatch(NAMES_STATE);
    else throw error;
  }
}

const endpointRow = async (id: number) => (await fork().execute<Row[]>('select * from endpoint where id = ?', [id]))[0];
const simRow = async (id: number) => (await fork().execute<Row[]>('select * from sim where id = ?', [id]))[0];

describe('races', () => {
  it.each([1, 2, 3])('20 concurrent links of one SIM to 20 Hold endpoints → exactly one wins (round %i)', async (round) => {
    const em = fork();
    const sim = await readySim(em, acme);
    const endpoints: TestEndpoint[] = [];
    for (let i = 0; i < 20; i++) endpoints.push(await holdEndpoint(em, acme, { activateImmediately: i % 2 === 0 }));
    const before = await snapshot(fork());

    const results = await race(
      `one SIM → 20 endpoints (round ${round})`,
      endpoints.map(
        (endpoint, i) => () => linkSim(racer(), { actor: i % 2 ? alice : bob, requestId: `r${round}-${i}` }, endpoint.id, sim.id),
      ),
    );

    const won = winners(results);
    const lost = losers(results);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    expectWorded(lost);
    for (const error of lost) {
      expect(error).toBeInstanceOf(ConflictError);
      expect(error.message).toBe(SIM_TAKEN);
    }
    const winner = won[0];
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events.map((e) => [e.action, e.endpoint_id, e.sim_iccid])).toEqual([['sim.linked', winner.endpointId, sim.iccid]]);
    expect(await simRow(sim.id)).toMatchObject({ status: winner.endpointStatus, endpoint_id: winner.endpointId });
    const after = await snapshot(fork());
    // The 19 losing endpoints are exactly as they were.
    const untouched = (rows: Row[]) => rows.filter((row) => row.id !== winner.endpointId);
    expect(untouched(after.endpoints)).toEqual(untouched(before.endpoints));
    // Evidence that the attempts were in the database at once: several of them waited on the SIM's row lock.
    expect(figures.at(-1)!.maxLockWaiters).toBeGreaterThan(1);
  });

  it.each([1, 2, 3])('20 different SIMs linked to one Hold endpoint at once → exactly one wins (round %i)', async (round) => {
    const em = fork();
    const endpoint = await holdEndpoint(em, acme, { activateImmediately: round === 2 });
    const sims: TestSim[] = [];
    for (let i = 0; i < 20; i++) sims.push(await readySim(em, acme));
    const before = await snapshot(fork());

    const results = await race(
      `20 SIMs → one endpoint (round ${round})`,
      sims.map((sim, i) => () => linkSim(racer(), { actor: i % 2 ? alice : bob }, endpoint.id, sim.id)),
    );

    const won = winners(results);
    const lost = losers(results);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    expectWorded(lost);
    const status = round === 2 ? 'Active' : 'Pre-Active';
    for (const error of lost) {
      expect(error).toBeInstanceOf(InvalidStateError);
      expect(error.message).toBe(`Endpoint '${endpoint.name}' is ${status}; a SIM can only be linked to an endpoint on Hold.`);
    }
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events.map((e) => [e.action, e.endpoint_id, e.sim_iccid])).toEqual([['sim.linked', endpoint.id, won[0].iccid]]);
    const after = await snapshot(fork());
    const winnerSim = sims.find((s) => s.iccid === won[0].iccid)!;
    const untouched = (rows: Row[]) => rows.filter((row) => row.id !== winnerSim.id);
    expect(untouched(after.sims)).toEqual(untouched(before.sims));
    expect(await endpointRow(endpoint.id)).toMatchObject({ sim_id: winnerSim.id });
  });

  it('link racing de-link on the same endpoint (10 rounds from a linked endpoint, 10 from a Hold one)', async () => {
    const rounds = { linkWon: 0, linkLost: 0, delinkWon: 0, delinkLostOnHold: 0, delinkLostChangedMeanwhile: 0 };
    let attempts = 0;
    let ms = 0;
    for (let round = 0; round < 20; round++) {
      const em = fork();
      const startLinked = round < 10;
      // Linked start: de-link the endpoint's SIM while another admin links a second SIM to it.
      // Hold start: link a SIM while another admin de-links the same endpoint.
      const { endpoint, sim: own } = startLinked
        ? await linkedEndpoint(em, acme, 'active', { activateImmediately: true })
        : { endpoint: await holdEndpoint(em, acme, { activateImmediately: true }), sim: null };
      const other = await readySim(em, acme);
      const before = await snapshot(fork());
      const link = () => linkSim(racer(), { actor: alice }, endpoint.id, other.id);
      const delink = () => delinkSim(racer(), { actor: bob }, endpoint.id);
      const order = round % 2 ? [link, delink] : [delink, link];
      const started = performance.now();
      const [first, second] = await Promise.allSettled(order.map((attempt) => attempt()));
      ms += performance.now() - started;
      attempts += 2;
      const [linked, delinked] = round % 2 ? [first, second] : [second, first];
      expectWorded(losers([linked, delinked]));
      const events = await eventsSince(fork(), before.lastEventId);
      const e = await endpointRow(endpoint.id);
      if (startLinked) {
        // De-link always wins (the endpoint has a SIM until it runs); link wins only if it came second.
        expect(delinked.status).toBe('fulfilled');
        expect(await simRow(own!.id)).toMatchObject({ status: 'ready', endpoint_id: null });
        if (linked.status === 'fulfilled') {
          expect(events.map((x) => x.action)).toEqual(['sim.delinked', 'sim.linked']);
          expect(e).toMatchObject({ status: 'active', sim_id: other.id });
        } else {
          expect(linked.reason).toBeInstanceOf(InvalidStateError);
          expect((linked.reason as Error).message).toBe(
            `Endpoint '${endpoint.name}' is Active; a SIM can only be linked to an endpoint on Hold.`,
          );
          expect(events.map((x) => x.action)).toEqual(['sim.delinked']);
          expect(e).toMatchObject({ status: 'hold', sim_id: null });
        }
      } else {
        // Link always wins (the endpoint is on Hold until it runs); de-link wins only if it came second.
        expect(linked.status).toBe('fulfilled');
        if (delinked.status === 'fulfilled') {
          expect(events.map((x) => x.action)).toEqual(['sim.linked', 'sim.delinked']);
          expect(e).toMatchObject({ status: 'hold', sim_id: null });
          expect(await simRow(other.id)).toMatchObject({ status: 'ready', endpoint_id: null });
        } else {
          // Refused: it found the endpoint on Hold — or, when the link committed while the de-link was
          // running, it reports the change (a lost race) instead of a state that is no longer true.
          const reason = delinked.reason as Error;
          if (reason instanceof ConflictError) {
            expect(reason.message).toBe(CHANGED_MEANWHILE);
            rounds.delinkLostChangedMeanwhile++;
          } else {
            expect(reason).toBeInstanceOf(InvalidStateError);
            expect(reason.message).toBe(`Endpoint '${endpoint.name}' is on Hold; it has no SIM to de-link.`);
            rounds.delinkLostOnHold++;
          }
          expect(events.map((x) => x.action)).toEqual(['sim.linked']);
          expect(e).toMatchObject({ status: 'active', sim_id: other.id });
        }
      }
      rounds[linked.status === 'fulfilled' ? 'linkWon' : 'linkLost']++;
      if (delinked.status === 'fulfilled') rounds.delinkWon++;
      expect(await findViolations(fork())).toEqual([]);
    }
    figures.push({
      scenario: 'link racing de-link, 20 rounds',
      attempts,
      winners: rounds.linkWon + rounds.delinkWon,
      refused:
        `${rounds.linkLost} link (InvalidStateError), ${rounds.delinkLostOnHold} de-link (InvalidStateError), ` +
        `${rounds.delinkLostChangedMeanwhile} de-link (ConflictError: changed meanwhile)`,
      maxLockWaiters: Number.NaN,
      ms: Math.round(ms),
    });
    console.log('link racing de-link:', rounds);
  });

  it('50 rounds: two admins link the same pair at once, then both de-link at once → one winner each time', async () => {
    const endpoint = await holdEndpoint(fork(), acme, { activateImmediately: false });
    const sim = await readySim(fork(), acme);
    const before = await snapshot(fork());
    let attempts = 0;
    let won = 0;
    const refused: Record<string, number> = {};
    const started = performance.now();
    for (let round = 0; round < 50; round++) {
      for (const step of ['link', 'delink'] as const) {
        const attempt = (actor: Actor) => () =>
          step === 'link' ? linkSim(racer(), { actor }, endpoint.id, sim.id) : delinkSim(racer(), { actor }, endpoint.id);
        const results = await Promise.allSettled([attempt(alice), attempt(bob)].map((a) => a()));
        attempts += 2;
        expect(winners(results)).toHaveLength(1);
        const [lost] = losers(results);
        expect(lost).toBeInstanceOf(InvalidStateError);
        expect(lost.message).toBe(
          step === 'link'
            ? `Endpoint '${endpoint.name}' is Pre-Active; a SIM can only be linked to an endpoint on Hold.`
            : `Endpoint '${endpoint.name}' is on Hold; it has no SIM to de-link.`,
        );
        won++;
        refused[`${step} InvalidStateError`] = (refused[`${step} InvalidStateError`] ?? 0) + 1;
      }
    }
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events).toHaveLength(100);
    expect(events.map((e) => e.action)).toEqual(Array.from({ length: 100 }, (_, i) => (i % 2 ? 'sim.delinked' : 'sim.linked')));
    for (const e of events) expect([alice.id, bob.id]).toContain(e.actor_id);
    expect(await endpointRow(endpoint.id)).toMatchObject({ status: 'hold', sim_id: null });
    expect(await simRow(sim.id)).toMatchObject({ status: 'ready', endpoint_id: null });
    figures.push({
      scenario: '50 rounds, both link then both de-link',
      attempts,
      winners: won,
      refused: Object.entries(refused)
        .map(([k, n]) => `${n} ${k}`)
        .join(', '),
      maxLockWaiters: Number.NaN,
      ms: Math.round(performance.now() - started),
    });
  });

  it('50 rounds each: two admins cycle link → de-link of the same pair concurrently, free-running', async () => {
    const endpoint = await holdEndpoint(fork(), acme, { activateImmediately: true });
    const sim = await readySim(fork(), acme);
    const before = await snapshot(fork());
    const sampler = await lockSampler();
    const started = performance.now();
    const cycle = async (actor: Actor) => {
      const results: PromiseSettledResult<Outcome>[] = [];
      for (let round = 0; round < 50; round++) {
        results.push(...(await Promise.allSettled([linkSim(racer(), { actor }, endpoint.id, sim.id)])));
        results.push(...(await Promise.allSettled([delinkSim(racer(), { actor }, endpoint.id)])));
      }
      return results;
    };
    const [a, b] = await Promise.all([cycle(alice), cycle(bob)]);
    const ms = Math.round(performance.now() - started);
    const maxLockWaiters = await sampler.stop();
    const all = [...a, ...b];
    expectWorded(losers(all));
    const ok = winners(all);
    const links = ok.filter((o) => o.operation === 'link').length;
    const delinks = ok.filter((o) => o.operation === 'delink').length;
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events.filter((e) => e.action === 'sim.linked')).toHaveLength(links);
    expect(events.filter((e) => e.action === 'sim.delinked')).toHaveLength(delinks);
    expect(events).toHaveLength(links + delinks);
    // The history of the endpoint alternates: linked, de-linked, linked, …
    expect(events.map((e) => e.action)).toEqual(Array.from({ length: events.length }, (_, i) => (i % 2 ? 'sim.delinked' : 'sim.linked')));
    expect(links - delinks).toBeGreaterThanOrEqual(0);
    expect(links - delinks).toBeLessThanOrEqual(1);
    // The rows end as the last successful operation left them.
    expect(await endpointRow(endpoint.id)).toMatchObject(
      links === delinks ? { status: 'hold', sim_id: null } : { status: 'active', sim_id: sim.id },
    );
    const counts = tally(all);
    const { ok: _ok, ...refused } = counts;
    figures.push({
      scenario: 'two admins cycling the same pair, 50 rounds each',
      attempts: all.length,
      winners: ok.length,
      refused:
        Object.entries(refused)
          .map(([k, n]) => `${n} ${k}`)
          .join(', ') || '—',
      maxLockWaiters,
      ms,
    });
  });

  it('20 concurrent submissions of one confirmation form (same one-time key) → applied once', async () => {
    const endpoint = await holdEndpoint(fork(), acme);
    const sim = await readySim(fork(), acme);
    const before = await snapshot(fork());
    const key = `race-key-${process.pid}-link-0001`;
    const results = await race(
      'same one-time key ×20 (link)',
      Array.from({ length: 20 }, () => () => linkSim(racer(), { actor: alice, key }, endpoint.id, sim.id)),
    );
    expect(losers(results)).toEqual([]);
    const outcomes = winners(results);
    expect(outcomes.filter((o) => !o.replayed)).toHaveLength(1);
    const first = outcomes.find((o) => !o.replayed)!;
    for (const o of outcomes) expect(o).toEqual({ ...first, replayed: o.replayed });
    expect(outcomes.filter((o) => o.replayed)).toHaveLength(19);
    expect((await eventsSince(fork(), before.lastEventId)).map((e) => e.action)).toEqual(['sim.linked']);
    const after = await snapshot(fork());
    expect(after.keys).toHaveLength(before.keys.length + 1);
    figures.at(-1)!.refused = `19 replayed (first outcome returned), 0 errors`;
  });

  it('20 concurrent submissions of one create form (same one-time key) → one endpoint', async () => {
    const sim = await readySim(fork(), acme);
    const before = await snapshot(fork());
    const key = `race-key-${process.pid}-create-01`;
    const results = await race(
      'same one-time key ×20 (create with SIM)',
      Array.from(
        { length: 20 },
        () => () => createEndpoint(racer(), { actor: bob, key }, { name: 'Double-clicked', activateImmediately: true, iccid: sim.iccid }),
      ),
    );
    expect(losers(results)).toEqual([]);
    const outcomes = winners(results);
    expect(outcomes.filter((o) => !o.replayed)).toHaveLength(1);
    expect(new Set(outcomes.map((o) => o.endpointId)).size).toBe(1);
    const after = await snapshot(fork());
    expect(after.endpoints).toHaveLength(before.endpoints.length + 1);
    expect((await eventsSince(fork(), before.lastEventId)).map((e) => e.action)).toEqual(['endpoint.created', 'sim.linked']);
    figures.at(-1)!.refused = `19 replayed (first outcome returned), 0 errors`;
  });

  it('20 concurrent creates with one IMEI → exactly one endpoint has it; the others are told which', async () => {
    const imei = imeiFor(880_000 + (process.pid % 1000));
    const before = await snapshot(fork());
    const results = await race(
      'one IMEI ×20 (create)',
      Array.from(
        { length: 20 },
        (_, i) => () => createEndpoint(racer(), { actor: i % 2 ? alice : bob }, { name: `Tracker ${i}`, imei, activateImmediately: false }),
      ),
    );
    const won = winners(results);
    const lost = losers(results);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    for (const error of lost) {
      // Whether it was stopped by the check or, racing, by the unique index: the same words, naming the winner.
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).errors).toEqual([
        {
          field: 'imei',
          message: `IMEI ${imei} is already used by endpoint '${won[0].endpointName}'; a device has one IMEI, so check the number`,
        },
      ]);
    }
    const rows = await fork().execute<Row[]>('select id from endpoint where enterprise_id = ? and imei = ?', [acme.id, imei]);
    expect(rows.map((r) => r.id)).toEqual([won[0].endpointId]);
    expect((await eventsSince(fork(), before.lastEventId)).map((e) => e.action)).toEqual(['endpoint.created']);
  });

  it('two suspends waiting behind a change that crosses their endpoints’ SIMs → both refused in words, no deadlock', async () => {
    // E1 has S1 and E2 has S2; a transaction holding both endpoints gives E1 S2 and E2 S1 while a suspend of
    // each waits. Each suspend's join then locks its endpoint and the SIM it had (its recheck fails on the new
    // link), so one holds S1 and the other S2: each taking its endpoint's new SIM would wait on the other.
    const one = await linkedEndpoint(fork(), acme, 'active');
    const two = await linkedEndpoint(fork(), acme, 'active');
    const before = await snapshot(fork());
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select id from endpoint where id = any($1) order by id for update', [[one.endpoint.id, two.endpoint.id]]);
      const suspends = Promise.allSettled([
        suspendEndpoint(racer(), { actor: alice }, one.endpoint.id),
        suspendEndpoint(racer(), { actor: bob }, two.endpoint.id),
      ]);
      for (let waiting = 0; waiting < 2;) {
        const { rows } = await holder.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
        );
        waiting = rows[0].n;
      }
      const endpoints = [one.endpoint.id, two.endpoint.id];
      const sims = [one.sim.id, two.sim.id];
      await holder.query(`update endpoint set status = 'hold', sim_id = null where id = any($1)`, [endpoints]);
      await holder.query(`update sim set status = 'ready', endpoint_id = null where id = any($1)`, [sims]);
      await holder.query(`update endpoint set status = 'active', sim_id = $2 where id = $1`, [one.endpoint.id, two.sim.id]);
      await holder.query(`update endpoint set status = 'active', sim_id = $2 where id = $1`, [two.endpoint.id, one.sim.id]);
      await holder.query(`update sim set status = 'active', endpoint_id = $2 where id = $1`, [two.sim.id, one.endpoint.id]);
      await holder.query(`update sim set status = 'active', endpoint_id = $2 where id = $1`, [one.sim.id, two.endpoint.id]);
      await holder.query('commit');
      const results = await suspends;
      expect(winners(results)).toEqual([]);
      const lost = losers(results);
      expectWorded(lost);
      expect(lost.map((error) => error.message)).toEqual([CHANGED_MEANWHILE, CHANGED_MEANWHILE]);
    } finally {
      await holder.end();
    }
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events).toEqual([]);
    expect(await endpointRow(one.endpoint.id)).toMatchObject({ status: 'active', sim_id: two.sim.id });
    expect(await endpointRow(two.endpoint.id)).toMatchObject({ status: 'active', sim_id: one.sim.id });
  });

  it('a storm of 300 mixed operations on 6 endpoints and 6 SIMs → every refusal worded, one event per success', async () => {
    const em = fork();
    const endpoints: TestEndpoint[] = [];
    for (let i = 0; i < 6; i++) endpoints.push(await holdEndpoint(em, acme, { activateImmediately: i % 2 === 0 }));
    const sims: TestSim[] = [];
    for (let i = 0; i < 6; i++) sims.push(await readySim(em, acme));
    const before = await snapshot(fork());
    // A fixed pseudo-random sequence (so a failure can be replayed), 300 operations in 5 waves of 60.
    let seed = 20261127;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const all: PromiseSettledResult<Outcome>[] = [];
    for (let wave = 0; wave < 5; wave++) {
      const attempts = Array.from({ length: 60 }, () => {
        const endpoint = endpoints[random(endpoints.length)];
        const sim = sims[random(sims.length)];
        const ctx = { actor: random(2) ? alice : bob };
        switch (random(6)) {
          case 0:
          case 1:
            return () => linkSim(racer(), ctx, endpoint.id, sim.id);
          case 2:
            return () => delinkSim(racer(), ctx, endpoint.id);
          case 3:
            return () => activateEndpoint(racer(), ctx, endpoint.id);
          case 4:
            return () => suspendEndpoint(racer(), ctx, endpoint.id);
          default:
            return () => resumeEndpoint(racer(), ctx, endpoint.id);
        }
      });
      all.push(...(await race(`storm wave ${wave + 1}: 60 mixed ops, 6 endpoints × 6 SIMs`, attempts)));
    }
    expectWorded(losers(all));
    const ok = winners(all);
    expect(ok.length).toBeGreaterThan(0);
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events).toHaveLength(ok.length);
    const byAction = (list: string[]) => list.reduce<Record<string, number>>((acc, a) => ({ ...acc, [a]: (acc[a] ?? 0) + 1 }), {});
    const ACTION: Record<string, string> = {
      link: 'sim.linked',
      delink: 'sim.delinked',
      activate: 'endpoint.activated',
      suspend: 'endpoint.suspended',
      resume: 'endpoint.resumed',
    };
    expect(byAction(events.map((e) => e.action as string))).toEqual(byAction(ok.map((o) => ACTION[o.operation])));
    // Replaying each endpoint's events from Hold ends in the state its row is in.
    for (const endpoint of endpoints) {
      const history = events.filter((e) => e.endpoint_id === endpoint.id);
      let state = 'hold';
      for (const e of history) {
        expect(e.endpoint_status_before).toBe(state);
        state = e.endpoint_status_after as string;
      }
      expect((await endpointRow(endpoint.id)).status).toBe(state);
    }
  });
});

type Linked = Awaited<ReturnType<typeof linkedEndpoint>>;

describe('races of Swap SIM', () => {
  it('10 linked endpoints swap to one Ready SIM at once → exactly one wins; the others keep their SIMs', async () => {
    const pairs: Linked[] = [];
    for (let i = 0; i < 10; i++) pairs.push(await linkedEndpoint(fork(), acme, 'active', { activateImmediately: i % 2 === 0 }));
    const wanted = await readySim(fork(), acme);
    const before = await snapshot(fork());
    const results = await race(
      'one Ready SIM ← 10 swaps',
      pairs.map(
        ({ endpoint }, i) =>
          () =>
            swapSim(racer(), { actor: i % 2 ? alice : bob }, endpoint.id, wanted.id),
      ),
    );
    const won = winners(results);
    expect(won).toHaveLength(1);
    const lost = losers(results);
    expectWorded(lost);
    for (const error of lost) expect(error.message).toBe(SIM_TAKEN);
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events.map((e) => [e.action, e.endpoint_id, e.sim_iccid])).toEqual([['sim.swapped', won[0].endpointId, wanted.iccid]]);
    for (const { endpoint, sim } of pairs) {
      if (endpoint.id === won[0].endpointId) expect(await simRow(sim.id)).toMatchObject({ status: 'ready', endpoint_id: null });
      else expect(await simRow(sim.id)).toMatchObject({ endpoint_id: endpoint.id });
    }
    expect(figures.at(-1)!.maxLockWaiters).toBeGreaterThan(1);
  });

  it('swaps and links racing for one Ready SIM → exactly one wins', async () => {
    const linked: Linked[] = [];
    for (let i = 0; i < 5; i++) linked.push(await linkedEndpoint(fork(), acme, 'pre_active'));
    const holds: TestEndpoint[] = [];
    for (let i = 0; i < 5; i++) holds.push(await holdEndpoint(fork(), acme));
    const wanted = await readySim(fork(), acme);
    const before = await snapshot(fork());
    const results = await race('one Ready SIM ← 5 swaps + 5 links', [
      ...linked.map(
        ({ endpoint }) =>
          () =>
            swapSim(racer(), { actor: alice }, endpoint.id, wanted.id),
      ),
      ...holds.map((endpoint) => () => linkSim(racer(), { actor: bob }, endpoint.id, wanted.id)),
    ]);
    expect(winners(results)).toHaveLength(1);
    expectWorded(losers(results));
    expect(await eventsSince(fork(), before.lastEventId)).toHaveLength(1);
  });

  it.each([1, 2, 3])('a swap racing a de-link of the same endpoint: both orders end consistent (round %i)', async () => {
    const { endpoint } = await linkedEndpoint(fork(), acme, 'active');
    const wanted = await readySim(fork(), acme);
    const before = await snapshot(fork());
    const results = await race('swap × de-link of one endpoint', [
      () => swapSim(racer(), { actor: alice }, endpoint.id, wanted.id),
      () => delinkSim(racer(), { actor: bob }, endpoint.id),
    ]);
    expectWorded(losers(results));
    const ok = winners(results);
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events).toHaveLength(ok.length);
    expect(ok.length).toBeGreaterThan(0);
    // The de-link first: the swap finds the endpoint on Hold. The swap first: a de-link that waited for it is
    // refused (the SIM it was confirmed for is gone), one that came after de-links the new SIM.
    if (ok.some((o) => o.operation === 'delink')) {
      expect(await endpointRow(endpoint.id)).toMatchObject({ status: 'hold', sim_id: null });
      expect(await simRow(wanted.id)).toMatchObject({ status: 'ready', endpoint_id: null });
    } else {
      expect(losers(results).map((error) => error.message)).toEqual([CHANGED_MEANWHILE]);
      const [swapped] = ok;
      expect(await endpointRow(endpoint.id)).toMatchObject({ status: swapped.endpointStatus, sim_id: wanted.id });
      expect(await simRow(wanted.id)).toMatchObject({ status: swapped.endpointStatus, endpoint_id: endpoint.id });
    }
  });

  it('10 endpoints each swapping to the next one’s SIM at once: every one refused in words, no deadlock', async () => {
    const pairs: Linked[] = [];
    for (let i = 0; i < 10; i++) pairs.push(await linkedEndpoint(fork(), acme, 'active'));
    const before = await snapshot(fork());
    const results = await race(
      'a ring of 10 swaps, each to a taken SIM',
      pairs.map(
        ({ endpoint }, i) =>
          () =>
            swapSim(racer(), { actor: alice }, endpoint.id, pairs[(i + 1) % pairs.length].sim.id),
      ),
    );
    expect(winners(results)).toHaveLength(0);
    const lost = losers(results);
    expectWorded(lost);
    for (const error of lost) expect(error.message).toBe(SIM_TAKEN);
    expect(await snapshot(fork())).toEqual(before);
  });
});
