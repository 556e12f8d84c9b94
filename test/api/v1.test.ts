// The JSON API v1 (SPEC §5) through the app, on a real migrated database: every endpoint's happy path with
// the change read back from the database, tokens (missing, malformed, revoked, viewer, a session cookie
// alone), tenancy (another enterprise's ids → 404), bad input → 422 naming the field, lifecycle refusals
// → 409 naming the state, and problem+json on every error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import supertest from 'supertest';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { firstRow, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { signedIn } from '../helpers/session.js';
import { createEnterprise, createUser, holdEndpoint, linkedEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import { createApiToken, revokeApiToken } from '../../src/domain/api-tokens.js';
import { actorOf } from '../../src/domain/accounts.js';
import { EnterpriseSchema, UserSchema } from '../../src/domain/entities.js';
import { findViolations } from '../../src/domain/invariants.js';
import { Compile } from 'typebox/compile';
import { Endpoint, Event, Problem, Sim } from '../../src/api/schemas.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;
let adminToken: string;
let viewerToken: string;
let globexToken: string;

async function tokenFor(enterprise: TestEnterprise, role: 'admin' | 'viewer', name: string) {
  const user = await createUser(em, enterprise, 'admin');
  const fork = em.fork();
  const entity = await fork.findOneOrFail(UserSchema, user.id, { populate: ['enterprise'] });
  const { token } = await createApiToken(fork, actorOf(entity, entity.enterprise.getEntity()), { name, role });
  return token;
}

const api = () => supertest(app.server);
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** The documented response schemas (src/api/schemas.ts, the ones the OpenAPI document is made of). */
const SCHEMAS = { Endpoint: Compile(Endpoint), Sim: Compile(Sim), Event: Compile(Event), Problem: Compile(Problem) };

/** The body matches its documented schema — one item, or every item of a list (`{ data, next_cursor }`). */
function conforms(kind: keyof typeof SCHEMAS, body: unknown) {
  const list = kind !== 'Problem' && typeof body === 'object' && body !== null && 'data' in body;
  if (list) expect(Object.keys(body).sort()).toEqual(['data', 'next_cursor']);
  for (const item of list ? (body as { data: unknown[] }).data : [body]) {
    expect(SCHEMAS[kind].Check(item), `${kind}: ${JSON.stringify(item)}`).toBe(true);
  }
  return body;
}

/** Every error is RFC 9457 problem+json with type, title, status and detail, as documented. */
function expectProblem(res: supertest.Response, status: number) {
  expect(res.status, res.text).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = conforms('Problem', JSON.parse(res.text)) as Record<string, unknown>;
  expect(body).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  expect(res.text).not.toMatch(/<html|at [\w.]+ \(/i);
  return body;
}

const row = (sql: string, params: unknown[]) => firstRow<Record<string, unknown>>(db, sql, params);

beforeAll(async () => {
  ({ db, app, em, acme, globex } = await routeTestWorld());
  adminToken = await tokenFor(acme, 'admin', 'CRM');
  viewerToken = await tokenFor(acme, 'viewer', 'Dashboard');
  globexToken = await tokenFor(globex, 'admin', 'Globex CRM');
});
afterAll(async () => {
  await app?.close();
  await db?.close();
});

describe('authentication', () => {
  it('refuses a request without a token, with a malformed one, with an unknown one: 401 problem+json', async () => {
    expectProblem(await api().get('/api/v1/endpoints'), 401);
    expectProblem(await api().get('/api/v1/endpoints').set('Authorization', 'Bearer nope'), 401);
    expectProblem(await api().get('/api/v1/endpoints').set('Authorization', `Basic ${adminToken}`), 401);
    expectProblem(
      await api()
        .get('/api/v1/endpoints')
        .set(bearer(`sl_${'A'.repeat(43)}`)),
      401,
    );
    const ok = await api().get('/api/v1/endpoints').set(bearer(adminToken));
    expect(ok.status).toBe(200);
  });

  it('refuses a revoked token from the next request on', async () => {
    const user = await createUser(em, acme, 'admin');
    const fork = em.fork();
    const entity = await fork.findOneOrFail(UserSchema, user.id, { populate: ['enterprise'] });
    const actor = actorOf(entity, entity.enterprise.getEntity());
    const { token, row: created } = await createApiToken(fork, actor, { name: 'Short-lived', role: 'admin' });
    expect((await api().get('/api/v1/endpoints').set(bearer(token))).status).toBe(200);
    await revokeApiToken(em.fork(), actor, created.id);
    expectProblem(await api().get('/api/v1/endpoints').set(bearer(token)), 401);
  });

  it('never accepts the session cookie alone (GET and POST)', async () => {
    const { agent } = await signedIn(app, em, acme, 'admin');
    expect((await agent.get('/endpoints')).status).toBe(200);
    expectProblem(await agent.get('/api/v1/endpoints'), 401);
    const endpoint = await holdEndpoint(em, acme);
    expectProblem(await agent.post(`/api/v1/endpoints/${endpoint.id}/activate`), 401);
  });

  it('records when a token was last used', async () => {
    const before = await row(`select last_used_at from api_token where name = 'CRM'`, []);
    await api().get('/api/v1/sims').set(bearer(adminToken));
    const after = await row(`select last_used_at from api_token where name = 'CRM'`, []);
    expect(after.last_used_at).not.toBeNull();
    expect(before.last_used_at === null || new Date(after.last_used_at as string) >= new Date(before.last_used_at as string)).toBe(true);
  });
});

describe('endpoints', () => {
  it('creates an endpoint on Hold (201, Location), then reads it', async () => {
    const res = await api().post('/api/v1/endpoints').set(bearer(adminToken)).send({ name: 'API meter', activate_immediately: true });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ name: 'API meter', status: 'hold', sim: null, activate_immediately: true, imei: null });
    expect(res.headers.location).toBe(`/api/v1/endpoints/${res.body.id}`);
    conforms('Endpoint', res.body);
    const stored = await row('select name, status, activate_immediately from endpoint where id = ?', [res.body.id]);
    expect(stored).toEqual({ name: 'API meter', status: 'hold', activate_immediately: true });
    const read = await api().get(`/api/v1/endpoints/${res.body.id}`).set(bearer(adminToken));
    expect(read.status).toBe(200);
    expect(read.body).toEqual(res.body);
    const event = await row('select actor_name, source, action from event where endpoint_id = ? order by id', [res.body.id]);
    expect(event).toEqual({ actor_name: 'CRM', source: 'api', action: 'endpoint.created' });
  });

  it('creates an endpoint with a SIM linked at once', async () => {
    const sim = await readySim(em, acme);
    const res = await api().post('/api/v1/endpoints').set(bearer(adminToken)).send({ name: 'With SIM', iccid: sim.iccid });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ status: 'pre_active', sim: { iccid: sim.iccid, status: 'pre_active' } });
    expect(await row('select status, endpoint_id from sim where id = ?', [sim.id])).toEqual({
      status: 'pre_active',
      endpoint_id: res.body.id,
    });
  });

  it('refuses a bad name or IMEI or ICCID with 422 naming the field', async () => {
    let body = expectProblem(await api().post('/api/v1/endpoints').set(bearer(adminToken)).send({ name: ' ' }), 422);
    expect(body.errors).toEqual([{ field: 'name', message: 'Enter a name for the endpoint' }]);
    body = expectProblem(await api().post('/api/v1/endpoints').set(bearer(adminToken)).send({ name: 'x', imei: '123' }), 422);
    expect((body.errors as { field: string }[])[0].field).toBe('imei');
    body = expectProblem(
      await api().post('/api/v1/endpoints').set(bearer(adminToken)).send({ name: 'x', iccid: '8944100000000000019' }),
      422,
    );
    expect((body.errors as { field: string }[])[0].field).toBe('iccid');
    body = expectProblem(await api().post('/api/v1/endpoints').set(bearer(adminToken)).send({}), 422);
    expect(body.errors).toEqual([expect.objectContaining({ field: 'name' })]);
    body = expectProblem(await api().post('/api/v1/endpoints').set(bearer(adminToken)).send({ name: 5 }), 422);
    expect(body.errors).toEqual([expect.objectContaining({ field: 'name' })]);
  });

  it('lists endpoints with a status filter, a name search and cursor pages', async () => {
    const other = await createEnterprise(em, 'Paging');
    const token = await tokenFor(other, 'viewer', 'Reader');
    for (const name of ['Alpha 1', 'Alpha 2', 'Alpha 3', 'Beta 1']) await holdEndpoint(em, other, { name });
    await linkedEndpoint(em, other, 'active');
    const first = await api().get('/api/v1/endpoints?q=alpha&limit=2').set(bearer(token));
    expect(first.status).toBe(200);
    expect(first.body.data.map((e: { name: string }) => e.name)).toEqual(['Alpha 1', 'Alpha 2']);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    conforms('Endpoint', first.body);
    const second = await api().get(`/api/v1/endpoints?q=alpha&limit=2&cursor=${first.body.next_cursor}`).set(bearer(token));
    expect(second.body).toEqual({ data: [expect.objectContaining({ name: 'Alpha 3' })], next_cursor: null });
    const active = await api().get('/api/v1/endpoints?status=active').set(bearer(token));
    conforms('Endpoint', active.body);
    expect(active.body.data).toEqual([expect.objectContaining({ status: 'active', sim: expect.objectContaining({ status: 'active' }) })]);
    expectProblem(await api().get('/api/v1/endpoints?limit=201').set(bearer(token)), 422);
    expectProblem(await api().get('/api/v1/endpoints?status=on').set(bearer(token)), 422);
    const badCursor = expectProblem(await api().get('/api/v1/endpoints?cursor=zzz').set(bearer(token)), 422);
    expect(badCursor.errors).toEqual([expect.objectContaining({ field: 'cursor' })]);
  });

  it('answers 404 for an unknown id and for another enterprise’s, and 422 for an id that is not one', async () => {
    const theirs = await holdEndpoint(em, globex);
    const unknown = expectProblem(await api().get('/api/v1/endpoints/2000000000').set(bearer(adminToken)), 404);
    const foreign = expectProblem(await api().get(`/api/v1/endpoints/${theirs.id}`).set(bearer(adminToken)), 404);
    expect(foreign.detail).toBe(unknown.detail);
    const bad = expectProblem(await api().get('/api/v1/endpoints/abc').set(bearer(adminToken)), 422);
    expect(bad.errors).toEqual([expect.objectContaining({ field: 'id' })]);
  });

  it('reads ids and numbers as decimal digits only: hex, octal, binary, exponents, fractions and spaces are 422', async () => {
    const endpoint = await holdEndpoint(em, acme);
    for (const id of ['0x10', '0o20', '0b10', '1e1', '1.5', '1%20', '%201', '+1']) {
      const read = expectProblem(await api().get(`/api/v1/endpoints/${id}`).set(bearer(adminToken)), 422);
      expect(read.errors, id).toEqual([expect.objectContaining({ field: 'id' })]);
      expectProblem(await api().delete(`/api/v1/endpoints/${id}/sim`).set(bearer(adminToken)), 422);
    }
    const status = expectProblem(await api().get('/api/v1/endpoints?status=bogus').set(bearer(adminToken)), 422);
    expect(status.errors).toEqual([{ field: 'status', message: 'must be one of: hold, pre_active, active, suspended' }]);
    for (const limit of ['1.5', '0x2', '1e1', ' 2']) {
      const listed = expectProblem(
        await api()
          .get(`/api/v1/endpoints?limit=${encodeURIComponent(limit)}`)
          .set(bearer(adminToken)),
        422,
      );
      expect(listed.errors, limit).toEqual([expect.objectContaining({ field: 'limit' })]);
    }
    expect((await api().get(`/api/v1/endpoints/${endpoint.id}`).set(bearer(adminToken))).status).toBe(200);
    expect((await api().get('/api/v1/endpoints?limit=2').set(bearer(adminToken))).status).toBe(200);
  });
});

describe('link, de-link, activate, suspend, resume', () => {
  it('links a SIM by ICCID and de-links it, with the events naming the token', async () => {
    const endpoint = await holdEndpoint(em, acme, { activateImmediately: true });
    const sim = await readySim(em, acme);
    const linked = await api().post(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)).send({ iccid: sim.iccid });
    expect(linked.status, linked.text).toBe(200);
    expect(linked.body).toMatchObject({ id: endpoint.id, status: 'active', sim: { iccid: sim.iccid, status: 'active' } });
    conforms('Endpoint', linked.body);
    expect(await row('select status, sim_id from endpoint where id = ?', [endpoint.id])).toEqual({ status: 'active', sim_id: sim.id });

    // Linking again: 409 naming the state, nothing changes.
    const again = expectProblem(
      await api().post(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)).send({ iccid: sim.iccid }),
      409,
    );
    expect(again.detail).toContain('is Active');

    const delinked = await api().delete(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken));
    expect(delinked.status, delinked.text).toBe(200);
    expect(delinked.body).toMatchObject({ status: 'hold', sim: null });
    conforms('Endpoint', delinked.body);
    expect(await row('select status, endpoint_id from sim where id = ?', [sim.id])).toEqual({ status: 'ready', endpoint_id: null });
    const events = await em.fork().execute('select action, actor_name, source from event where endpoint_id = ? order by id', [endpoint.id]);
    expect(events).toEqual([
      { action: 'sim.linked', actor_name: 'CRM', source: 'api' },
      { action: 'sim.delinked', actor_name: 'CRM', source: 'api' },
    ]);
    const noSim = expectProblem(await api().delete(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)), 409);
    expect(noSim.detail).toContain('on Hold');
  });

  it('swaps the SIM (PUT …/sim): the old one back Ready, the new one linked, one sim.swapped event with both ICCIDs', async () => {
    const { endpoint, sim: old } = await linkedEndpoint(em, acme, 'suspended', { activateImmediately: true });
    const fresh = await readySim(em, acme);
    const swapped = await api().put(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)).send({ iccid: fresh.iccid });
    expect(swapped.status, swapped.text).toBe(200);
    expect(swapped.body).toMatchObject({ id: endpoint.id, status: 'active', sim: { iccid: fresh.iccid, status: 'active' } });
    conforms('Endpoint', swapped.body);
    expect(await row('select status, endpoint_id from sim where id = ?', [old.id])).toEqual({ status: 'ready', endpoint_id: null });
    expect(
      await row('select action, sim_iccid, old_sim_iccid, source from event where endpoint_id = ? order by id desc limit 1', [endpoint.id]),
    ).toEqual({
      action: 'sim.swapped',
      sim_iccid: fresh.iccid,
      old_sim_iccid: old.iccid,
      source: 'api',
    });
    // GET /events names both SIMs of the swap: iccid the new one, old_iccid the one it replaced (null for other events).
    const events = await api().get(`/api/v1/events?endpoint_id=${endpoint.id}`).set(bearer(viewerToken));
    expect(events.status).toBe(200);
    conforms('Event', events.body);
    expect(events.body.data[0]).toMatchObject({ action: 'sim.swapped', iccid: fresh.iccid, old_iccid: old.iccid });
    expect(events.body.data.slice(1).every((e: { old_iccid: unknown }) => e.old_iccid === null)).toBe(true);
    // The SIM it has now is not Ready: 409; a viewer: 403; an endpoint on Hold: 409 naming the state.
    expectProblem(await api().put(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)).send({ iccid: fresh.iccid }), 409);
    expectProblem(await api().put(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(viewerToken)).send({ iccid: old.iccid }), 403);
    const hold = await holdEndpoint(em, acme);
    const onHold = expectProblem(
      await api().put(`/api/v1/endpoints/${hold.id}/sim`).set(bearer(adminToken)).send({ iccid: old.iccid }),
      409,
    );
    expect(onHold.detail).toContain('on Hold; it has no SIM to swap');
  });

  it('refuses an ICCID that fails its check or is not in the inventory: 422 naming iccid', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const theirs = await readySim(em, globex);
    for (const iccid of ['12345', '8944100000000000019', theirs.iccid]) {
      const body = expectProblem(await api().post(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)).send({ iccid }), 422);
      expect(body.errors).toEqual([expect.objectContaining({ field: 'iccid' })]);
    }
    expect(await row('select status from endpoint where id = ?', [endpoint.id])).toEqual({ status: 'hold' });
  });

  it('activates, suspends and resumes; each refused in the wrong state with 409', async () => {
    const { endpoint, sim } = await linkedEndpoint(em, acme, 'pre_active');
    const step = (path: string) => api().post(`/api/v1/endpoints/${endpoint.id}/${path}`).set(bearer(adminToken));
    expectProblem(await step('resume'), 409);
    for (const [path, status] of [
      ['activate', 'active'],
      ['suspend', 'suspended'],
      ['resume', 'active'],
    ] as const) {
      const res = await step(path);
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ status, sim: { status } });
      conforms('Endpoint', res.body);
      expect(
        await row('select e.status as e, s.status as s from endpoint e join sim s on s.id = e.sim_id where e.id = ?', [endpoint.id]),
      ).toEqual({
        e: status,
        s: status,
      });
    }
    const refused = expectProblem(await step('activate'), 409);
    expect(refused.detail).toContain('is Active');
    expect(sim.iccid).toMatch(/^89/);
  });

  it('gives a viewer token 403 on every change, and nothing changes', async () => {
    const hold = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    const requests = [
      api().post('/api/v1/endpoints').send({ name: 'Viewer made' }),
      api().post(`/api/v1/endpoints/${hold.id}/sim`).send({ iccid: sim.iccid }),
      api().delete(`/api/v1/endpoints/${endpoint.id}/sim`),
      api().post(`/api/v1/endpoints/${endpoint.id}/activate`),
      api().post(`/api/v1/endpoints/${endpoint.id}/suspend`),
      api().post(`/api/v1/endpoints/${endpoint.id}/resume`),
    ];
    for (const request of requests) expectProblem(await request.set(bearer(viewerToken)), 403);
    expect(await row(`select count(*)::int as n from endpoint where name = 'Viewer made'`, [])).toEqual({ n: 0 });
    expect(await row('select status from endpoint where id = ?', [hold.id])).toEqual({ status: 'hold' });
    expect(await row('select status from endpoint where id = ?', [endpoint.id])).toEqual({ status: 'active' });
    // A viewer token reads.
    expect((await api().get(`/api/v1/endpoints/${endpoint.id}`).set(bearer(viewerToken))).status).toBe(200);
  });

  it('answers 404 on every change of another enterprise’s endpoint, and nothing changes', async () => {
    const theirs = await holdEndpoint(em, globex);
    const { endpoint: theirsLinked } = await linkedEndpoint(em, globex, 'active');
    const mySim = await readySim(em, acme);
    const requests = [
      api().post(`/api/v1/endpoints/${theirs.id}/sim`).send({ iccid: mySim.iccid }),
      api().delete(`/api/v1/endpoints/${theirsLinked.id}/sim`),
      api().post(`/api/v1/endpoints/${theirsLinked.id}/activate`),
      api().post(`/api/v1/endpoints/${theirsLinked.id}/suspend`),
      api().post(`/api/v1/endpoints/${theirsLinked.id}/resume`),
    ];
    for (const request of requests) expectProblem(await request.set(bearer(adminToken)), 404);
    expect(await row('select status from endpoint where id = ?', [theirs.id])).toEqual({ status: 'hold' });
    expect(await row('select status from endpoint where id = ?', [theirsLinked.id])).toEqual({ status: 'active' });
    expect(await row('select status from sim where id = ?', [mySim.id])).toEqual({ status: 'ready' });
  });
});

describe('races through the API', () => {
  it('20 concurrent links of one SIM to 20 endpoints: one 200, nineteen 409, invariants hold', async () => {
    const sim = await readySim(em, acme);
    const endpoints = [];
    for (let i = 0; i < 20; i++) endpoints.push(await holdEndpoint(em, acme));
    const answers = await Promise.all(
      endpoints.map((e) => api().post(`/api/v1/endpoints/${e.id}/sim`).set(bearer(adminToken)).send({ iccid: sim.iccid })),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([200, ...Array<number>(19).fill(409)]);
    for (const refused of answers.filter((r) => r.status === 409)) expectProblem(refused, 409);
    expect(await row('select count(*)::int as n from endpoint where sim_id = ?', [sim.id])).toEqual({ n: 1 });
    expect(await row(`select count(*)::int as n from event where action = 'sim.linked' and sim_iccid = ?`, [sim.iccid])).toEqual({ n: 1 });
    expect(await findViolations(em.fork())).toEqual([]);
  });
});

describe('SIMs and events', () => {
  it('reads a SIM by ICCID, lists SIMs by status, and 404s another enterprise’s SIM', async () => {
    const { endpoint, sim } = await linkedEndpoint(em, acme, 'suspended');
    const one = await api().get(`/api/v1/sims/${sim.iccid}`).set(bearer(viewerToken));
    expect(one.status).toBe(200);
    expect(one.body).toEqual({
      iccid: sim.iccid,
      imsi: sim.imsi,
      eid: sim.eid,
      msisdn: null,
      status: 'suspended',
      endpoint_id: endpoint.id,
    });
    const list = await api()
      .get(`/api/v1/sims?status=suspended&q=${sim.iccid.slice(0, 12)}`)
      .set(bearer(viewerToken));
    expect(list.body.data).toContainEqual(one.body);
    const ready = await api().get('/api/v1/sims?status=ready_to_activate&limit=200').set(bearer(viewerToken));
    expect(ready.body.data.length).toBeGreaterThan(0);
    conforms('Sim', ready.body);
    expect(ready.body.data.every((s: { status: string }) => s.status === 'ready_to_activate')).toBe(true);
    const theirs = await readySim(em, globex);
    expectProblem(await api().get(`/api/v1/sims/${theirs.iccid}`).set(bearer(adminToken)), 404);
    const bad = expectProblem(await api().get('/api/v1/sims/123').set(bearer(adminToken)), 422);
    expect(bad.errors).toEqual([expect.objectContaining({ field: 'iccid' })]);
    expect((await api().get(`/api/v1/sims/${theirs.iccid}`).set(bearer(globexToken))).status).toBe(200);
  });

  it('lists events newest first, by action and endpoint, with cursor pages', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    await api().post(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)).send({ iccid: sim.iccid });
    await api().delete(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken));
    const res = await api().get(`/api/v1/events?endpoint_id=${endpoint.id}&limit=1`).set(bearer(viewerToken));
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([
      expect.objectContaining({ action: 'sim.delinked', actor: 'CRM', source: 'api', endpoint_id: endpoint.id, iccid: sim.iccid }),
    ]);
    const next = await api()
      .get(`/api/v1/events?endpoint_id=${endpoint.id}&limit=1&cursor=${res.body.next_cursor}`)
      .set(bearer(viewerToken));
    expect(next.body.data).toEqual([expect.objectContaining({ action: 'sim.linked' })]);
    const linked = await api().get('/api/v1/events?action=sim.linked').set(bearer(viewerToken));
    expect(linked.body.data.every((e: { action: string }) => e.action === 'sim.linked')).toBe(true);
    expectProblem(await api().get('/api/v1/events?action=nope').set(bearer(viewerToken)), 422);
    // Another enterprise sees none of it.
    const theirs = await api().get(`/api/v1/events?endpoint_id=${endpoint.id}`).set(bearer(globexToken));
    expect(theirs.body.data).toEqual([]);
  });
});

describe('errors are problem+json, never HTML', () => {
  it('for unknown paths, malformed JSON, wrong content types, oversized and deeply nested bodies', async () => {
    expectProblem(await api().get('/api/v1/nothing-here').set(bearer(adminToken)), 404);
    expectProblem(await api().get('/api/nothing'), 404);
    const post = () => api().post('/api/v1/endpoints').set(bearer(adminToken));
    expectProblem(await post().set('Content-Type', 'application/json').send('{"name": '), 400);
    expectProblem(await post().type('form').send('name=x'), 415);
    expectProblem(await post().set('Content-Type', 'text/plain').send('name'), 415);
    expectProblem(
      await post()
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ name: 'x'.repeat(100_000) })),
      413,
    );
    const nested = '['.repeat(20_000) + ']'.repeat(20_000);
    expectProblem(await post().set('Content-Type', 'application/json').send(nested), 422);
    expectProblem(
      await post()
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ name: 'a\u0000b' })),
      400,
    );
    expect(await row(`select count(*)::int as n from enterprise where id = ?`, [acme.id])).toEqual({ n: 1 });
    expect(EnterpriseSchema.meta.className).toBe('Enterprise');
  });

  it('refuses invalid UTF-8, lone surrogates and compressed bodies in words, instead of storing U+FFFD; nothing is created', async () => {
    const endpoints = () => row(`select count(*)::int as n from endpoint where enterprise_id = ?`, [acme.id]);
    const before = await endpoints();
    const post = () => api().post('/api/v1/endpoints').set(bearer(adminToken)).set('Content-Type', 'application/json');
    // Raw bytes: supertest would send a Buffer as JSON of its own.
    const sendBytes = async (payload: Buffer, headers: Record<string, string> = {}) => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/endpoints',
        headers: { ...bearer(adminToken), 'content-type': 'application/json', ...headers },
        payload,
      });
      return { status: res.statusCode, headers: res.headers, text: res.body } as unknown as supertest.Response;
    };
    const badBytes = Buffer.concat([Buffer.from('{"name": "Pump '), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
    expect(expectProblem(await sendBytes(badBytes), 400).detail).toBe('The body is not valid UTF-8.');
    const lone = String.raw`{"name": "Pump \ud800 one"}`;
    expect(expectProblem(await post().send(lone), 400).detail).toMatch(/lone surrogate/);
    const loneKey = String.raw`{"name": "Pump", "\udc00": 1}`;
    expectProblem(await post().send(loneKey), 400);
    const gzipped = gzipSync(JSON.stringify({ name: 'Pump gz' }));
    expect(expectProblem(await sendBytes(gzipped, { 'content-encoding': 'gzip' }), 415).detail).toBe(
      'A body with Content-Encoding gzip is not accepted; send it uncompressed.',
    );
    expect(await endpoints()).toEqual(before);
    // Only a body is refused for its encoding: without a token it is still 401, a GET without a body is read.
    expect(expectProblem(await sendBytes(gzipped, { 'content-encoding': 'gzip', authorization: '' }), 401).status).toBe(401);
    const get = await app.inject({
      method: 'GET',
      url: '/api/v1/endpoints',
      headers: { ...bearer(adminToken), 'content-encoding': 'gzip' },
    });
    expect(get.statusCode, get.body).toBe(200);
    // A whole character written as a surrogate pair is read as that character.
    const pair = String.raw`{"name": "Pump \ud83d\ude80 utf8"}`;
    const created = await post().send(pair);
    expect(created.status, created.text).toBe(201);
    expect(created.body.name).toBe('Pump \u{1F680} utf8');
  });
});
