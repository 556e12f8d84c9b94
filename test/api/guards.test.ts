// The API's guards against what a careless or hostile client may send, found by a review: bodies nested
// too deeply to read, over-long and malformed cursors, a browser's cross-site headers on a bearer-token call,
// bodies sent to routes that take none, statuses in the audit trail, oversized headers — each answered with
// a clear problem+json and nothing changed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type AddressInfo } from 'node:net';
import supertest from 'supertest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { firstRow, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { signedIn } from '../helpers/session.js';
import { createEnterprise, createUser, holdEndpoint, linkedEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import { createApiToken } from '../../src/domain/api-tokens.js';
import { actorOf } from '../../src/domain/accounts.js';
import { ENDPOINT_NAME_MAX_LENGTH, UserSchema } from '../../src/domain/entities.js';
import { CURSOR_MAX_LENGTH } from '../../src/domain/queries/paging.js';
import { Event } from '../../src/api/schemas.js';
import { Compile } from 'typebox/compile';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let adminToken: string;

async function tokenFor(enterprise: TestEnterprise, role: 'admin' | 'viewer', name: string) {
  const user = await createUser(em, enterprise, 'admin');
  const fork = em.fork();
  const entity = await fork.findOneOrFail(UserSchema, user.id, { populate: ['enterprise'] });
  const { token } = await createApiToken(fork, actorOf(entity, entity.enterprise.getEntity()), { name, role });
  return token;
}

const api = () => supertest(app.server);
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const row = (sql: string, params: unknown[]) => firstRow<Record<string, unknown>>(db, sql, params);
const count = async (sql: string, params: unknown[] = []) => (await row(`select count(*)::int as n from ${sql}`, params)).n;

function expectProblem(res: supertest.Response, status: number) {
  expect(res.status, res.text).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  expect(body).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
  return body;
}

/** Every change route of the API, for one linked endpoint, one endpoint on Hold and one Ready SIM. */
function changeRoutes(ids: { hold: number; linked: number; iccid: string }) {
  return [
    () => api().post('/api/v1/endpoints'),
    () => api().post(`/api/v1/endpoints/${ids.hold}/sim`),
    () => api().put(`/api/v1/endpoints/${ids.linked}/sim`),
    () => api().delete(`/api/v1/endpoints/${ids.linked}/sim`),
    () => api().post(`/api/v1/endpoints/${ids.linked}/activate`),
    () => api().post(`/api/v1/endpoints/${ids.linked}/suspend`),
    () => api().post(`/api/v1/endpoints/${ids.linked}/resume`),
  ];
}

/** What a change could alter, to compare before and after a refusal. */
const snapshot = async () => ({
  endpoints: await em.fork().execute('select id, name, status, sim_id, updated_at from endpoint order by id'),
  sims: await em.fork().execute('select id, status, endpoint_id from sim order by id'),
  events: await count('event'),
  keys: await count('operation_key'),
});

beforeAll(async () => {
  ({ db, app, em, acme } = await routeTestWorld());
  adminToken = await tokenFor(acme, 'admin', 'CRM');
});
afterAll(async () => {
  await app?.close();
  await db?.close();
});

describe('a body nested too deeply', () => {
  it('is refused on every change route, with or without an Idempotency-Key: 422, nothing changed', async () => {
    const hold = await holdEndpoint(em, acme);
    const { endpoint: linked } = await linkedEndpoint(em, acme, 'active');
    const sim = await readySim(em, acme);
    const before = await snapshot();
    // As deep as fits in the 64 KB a body may have (deeper is 413); 5,000 already overflowed the fingerprint.
    const nested = '['.repeat(30_000) + ']'.repeat(30_000);
    const inAField = JSON.stringify({ name: 'Deep', iccid: sim.iccid }).replace(`"${sim.iccid}"`, '['.repeat(20_000) + ']'.repeat(20_000));
    let n = 0;
    for (const route of changeRoutes({ hold: hold.id, linked: linked.id, iccid: sim.iccid })) {
      for (const body of [nested, inAField]) {
        for (const key of [undefined, `deep-${n++}`]) {
          let request = route().set(bearer(adminToken)).set('Content-Type', 'application/json');
          if (key) request = request.set('Idempotency-Key', key);
          const problem = expectProblem(await request.send(body), 422);
          expect(problem.detail).toBe('The request body is nested too deeply to be read');
          expect(problem.errors).toEqual([{ field: 'body', message: 'The request body is nested too deeply to be read' }]);
        }
      }
    }
    expect(await snapshot()).toEqual(before);
    // A body nested as deep as the API's own bodies still works; brackets inside a string are text.
    const ok = await api()
      .post('/api/v1/endpoints')
      .set(bearer(adminToken))
      .send({ name: `[[[${'['.repeat(60)}` });
    expect(ok.status, ok.text).toBe(201);
  });
});

describe('cursors', () => {
  it('pages past an endpoint named with 100 × 漢 (a cursor of 428 characters), on the API and the screens', async () => {
    const other = await createEnterprise(em, 'Kanji');
    const token = await tokenFor(other, 'viewer', 'Reader');
    const first = await holdEndpoint(em, other, { name: '漢'.repeat(100) });
    const second = await holdEndpoint(em, other, { name: '漢'.repeat(100) });
    const page1 = await api().get('/api/v1/endpoints?limit=1').set(bearer(token));
    expect(page1.status, page1.text).toBe(200);
    expect(page1.body.data.map((e: { id: number }) => e.id)).toEqual([first.id]);
    const cursor = page1.body.next_cursor as string;
    expect(cursor.length).toBeGreaterThan(400);
    const page2 = await api().get(`/api/v1/endpoints?limit=1&cursor=${cursor}`).set(bearer(token));
    expect(page2.status, page2.text).toBe(200);
    expect(page2.body).toEqual({ data: [expect.objectContaining({ id: second.id })], next_cursor: null });

    const { agent } = await signedIn(app, em, other, 'viewer');
    const screen = await agent.get(`/endpoints?after=${cursor}`);
    expect(screen.status, screen.text).toBe(200);
    expect(screen.text).toContain(`/endpoints/${second.id}"`);
    expect(screen.text).not.toContain(`/endpoints/${first.id}"`);
  });

  it('refuses a cursor longer than CURSOR_MAX_LENGTH: 422 on the API, 400 on the screens', async () => {
    const tooLong = 'A'.repeat(CURSOR_MAX_LENGTH + 1);
    for (const path of ['endpoints', 'sims', 'events']) {
      const problem = expectProblem(await api().get(`/api/v1/${path}?cursor=${tooLong}`).set(bearer(adminToken)), 422);
      expect(problem.errors).toEqual([expect.objectContaining({ field: 'cursor' })]);
    }
    const { agent } = await signedIn(app, em, acme, 'viewer');
    for (const path of ['/endpoints', '/sims']) {
      for (const field of ['after', 'before']) {
        const res = await agent.get(`${path}?${field}=${tooLong}`);
        expect(res.status, `${path} ${field}`).toBe(400);
        expect(res.text).toContain('This page link is damaged or out of date');
      }
    }
  });
});

describe('a call from a browser on another site', () => {
  it('is not refused as cross-site under /api: the bearer token, not a cookie, says who acts', async () => {
    const sim = await readySim(em, acme);
    const foreign = [
      { Origin: 'https://elsewhere.example', 'Sec-Fetch-Site': 'cross-site' },
      { Origin: 'https://elsewhere.example' },
      { Origin: 'null' },
      { 'Sec-Fetch-Site': 'same-site' },
    ];
    for (const [i, headers] of foreign.entries()) {
      const created = await api()
        .post('/api/v1/endpoints')
        .set(bearer(adminToken))
        .set(headers)
        .send({ name: `From afar ${i}` });
      expect(created.status, created.text).toBe(201);
    }
    const endpoint = await holdEndpoint(em, acme);
    const headers = foreign[0];
    const linked = await api().post(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)).set(headers).send({ iccid: sim.iccid });
    expect(linked.status, linked.text).toBe(200);
    const delinked = await api().delete(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)).set(headers);
    expect(delinked.status, delinked.text).toBe(200);
    expect(await count(`endpoint where name like 'From afar %'`)).toBe(4);
    // Without a token it is still 401, and the screens still refuse a cross-site form.
    expectProblem(await api().post('/api/v1/endpoints').set(headers).send({ name: 'No token' }), 401);
    expect((await api().post('/sign-in').set(headers).type('form').send({ email: 'a@b.c', password: 'x' })).status).toBe(403);
  });
});

describe('a body sent to a change that takes none', () => {
  it('is refused on activate, suspend, resume and de-link (422 naming it), nothing changed; no body or {} works', async () => {
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    const routes = [
      () => api().post(`/api/v1/endpoints/${endpoint.id}/activate`),
      () => api().post(`/api/v1/endpoints/${endpoint.id}/suspend`),
      () => api().post(`/api/v1/endpoints/${endpoint.id}/resume`),
      () => api().delete(`/api/v1/endpoints/${endpoint.id}/sim`),
    ];
    const before = await snapshot();
    let n = 0;
    for (const route of routes) {
      for (const body of ['{"iccid":"89441000000000000018"}', '[]', '"x"', '1', 'true']) {
        for (const key of [undefined, `bodyless-${n++}`]) {
          let request = route().set(bearer(adminToken)).set('Content-Type', 'application/json');
          if (key) request = request.set('Idempotency-Key', key);
          const problem = expectProblem(await request.send(body), 422);
          expect(problem.errors, body).toEqual([expect.objectContaining({ field: body.startsWith('{') ? 'iccid' : 'body' })]);
        }
      }
    }
    expect(await snapshot()).toEqual(before);
    const suspended = await api().post(`/api/v1/endpoints/${endpoint.id}/suspend`).set(bearer(adminToken));
    expect(suspended.status, suspended.text).toBe(200);
    const resumed = await api().post(`/api/v1/endpoints/${endpoint.id}/resume`).set(bearer(adminToken)).send({});
    expect(resumed.status, resumed.text).toBe(200);
    const empty = await api()
      .delete(`/api/v1/endpoints/${endpoint.id}/sim`)
      .set(bearer(adminToken))
      .set('Content-Type', 'application/json')
      .send('');
    expect(empty.status, empty.text).toBe(200);
    expect(await row('select status, sim_id from endpoint where id = ?', [endpoint.id])).toEqual({ status: 'hold', sim_id: null });
  });
});

describe('statuses in the audit trail', () => {
  it('are the API’s status values (ready_to_activate, never ready), declared as enums in the document', async () => {
    const endpoint = await holdEndpoint(em, acme, { activateImmediately: true });
    const sim = await readySim(em, acme);
    expect((await api().post(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken)).send({ iccid: sim.iccid })).status).toBe(200);
    expect((await api().delete(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken))).status).toBe(200);
    const res = await api().get(`/api/v1/events?endpoint_id=${endpoint.id}`).set(bearer(adminToken));
    expect(res.status, res.text).toBe(200);
    const statuses = (e: Record<string, unknown>) => [
      e.action,
      e.endpoint_status_before,
      e.endpoint_status_after,
      e.sim_status_before,
      e.sim_status_after,
    ];
    expect(res.body.data.map(statuses)).toEqual([
      ['sim.delinked', 'active', 'hold', 'active', 'ready_to_activate'],
      ['sim.linked', 'hold', 'active', 'ready_to_activate', 'active'],
    ]);
    const checkEvent = Compile(Event);
    for (const event of res.body.data) expect(checkEvent.Check(event), JSON.stringify(event)).toBe(true);

    const doc = (await api().get('/api/v1/openapi.json')).body as {
      components: { schemas: { Event: { properties: Record<string, unknown> } } };
    };
    const values = (name: string) => JSON.stringify(doc.components.schemas.Event.properties[name]);
    for (const name of ['sim_status_before', 'sim_status_after']) {
      expect(values(name)).toContain('ready_to_activate');
      expect(values(name)).not.toContain('"ready"');
    }
    for (const name of ['endpoint_status_before', 'endpoint_status_after']) expect(values(name)).toContain('"pre_active"');
    expect(values('action')).toContain('"sim.swapped"');
    expect(values('source')).toContain('"import"');
  });
});

/** What the server answers to these raw bytes (written in the chunks given), as status line, headers and body. */
async function rawExchange(chunks: string[]): Promise<{ status: number; headers: string; body: string }> {
  if (!app.server.listening) await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
  const { port } = app.server.address() as AddressInfo;
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (d) => (received += d.toString('utf8')));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const chunk of chunks) {
    socket.write(chunk);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await closed;
  const [head, body] = received.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), headers: head, body };
}

describe('a request Node cannot read', () => {
  it('with headers too large (431) or malformed (400): problem+json under /api, as before elsewhere', async () => {
    const big = `X-Big: ${'x'.repeat(20_000)}\r\n`;
    for (const chunks of [
      [`GET /api/v1/sims HTTP/1.1\r\nHost: localhost\r\n${big}\r\n`],
      // The request line in one packet, the headers in the next: the path is unknown, the answer problem+json.
      [`POST /api/v1/endpoints HTTP/1.1\r\nHost: localhost\r\n`, `Authorization: Bearer ${adminToken}\r\n${big}\r\n`],
    ]) {
      const res = await rawExchange(chunks);
      expect(res.status, res.headers).toBe(431);
      expect(res.headers).toMatch(/content-type: application\/problem\+json/i);
      expect(JSON.parse(res.body)).toMatchObject({
        status: 431,
        type: expect.any(String),
        title: expect.any(String),
        detail: expect.any(String),
      });
    }
    const malformed = await rawExchange([`GET /api/v1/sims HTTP/1.1\r\nHost: localhost\r\nNot a header\r\n\r\n`]);
    expect(malformed.status).toBe(400);
    expect(malformed.headers).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(malformed.body)).toMatchObject({ status: 400, detail: expect.any(String) });
    // The screens' paths: Fastify's answer, as before.
    const page = await rawExchange([`GET /endpoints HTTP/1.1\r\nHost: localhost\r\n${big}\r\n`]);
    expect(page.status).toBe(431);
    expect(page.headers).not.toMatch(/problem\+json/i);
  });
});

describe('malformed cursors, 401 and 405', () => {
  it('refuses a cursor no list made (cursor=0 among them) instead of showing the first page: 422 on the API, 400 on the screens', async () => {
    await holdEndpoint(em, acme);
    for (const [path, cursors] of [
      ['events', ['0', '00', '-1', 'abc', '1.5']],
      ['endpoints', ['0', 'zzz', 'WyJhIl0']],
      ['sims', ['0', '123', 'abc']],
    ] as const) {
      for (const cursor of cursors) {
        const problem = expectProblem(await api().get(`/api/v1/${path}?cursor=${cursor}`).set(bearer(adminToken)), 422);
        expect(problem.errors, `${path} ${cursor}`).toEqual([expect.objectContaining({ field: 'cursor' })]);
      }
    }
    const { agent } = await signedIn(app, em, acme, 'viewer');
    for (const url of [
      '/events?before=0',
      '/events?before=abc',
      '/endpoints?after=zzz',
      '/endpoints?before=0',
      '/sims?after=0',
      '/sims?before=123',
    ]) {
      const res = await agent.get(url);
      expect(res.status, url).toBe(400);
      expect(res.text).toContain('This page link is damaged or out of date');
    }
    for (const url of ['/events', '/events?before=', '/endpoints?after=', '/sims']) expect((await agent.get(url)).status, url).toBe(200);
  });

  it('refuses an endpoints cursor whose name holds a NUL or half a character, or whose id is not positive (no 500)', async () => {
    const crafted = [
      ['\u0000', 1],
      ['a\ud800', 1],
      ['x', -1],
      ['x', 0],
      ['x', 2 ** 31],
    ].map((pair) => Buffer.from(JSON.stringify(pair)).toString('base64url'));
    const { agent } = await signedIn(app, em, acme, 'viewer');
    for (const cursor of crafted) {
      expectProblem(await api().get(`/api/v1/endpoints?cursor=${cursor}`).set(bearer(adminToken)), 422);
      for (const url of [`/endpoints?after=${cursor}`, `/endpoints?before=${cursor}`]) {
        const res = await agent.get(url);
        expect(res.status, url).toBe(400);
        expect(res.text).toContain('This page link is damaged or out of date');
      }
    }
  });

  it('says how to authenticate on every 401: WWW-Authenticate: Bearer', async () => {
    for (const request of [
      api().get('/api/v1/endpoints'),
      api().get('/api/v1/sims').set(bearer('sl_nope')),
      api().post('/api/v1/endpoints').send({ name: 'x' }),
    ]) {
      const res = await request;
      expectProblem(res, 401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it('answers an unknown method on a known path with 405 and Allow; an unknown path is still 404', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const patch = await api().patch(`/api/v1/endpoints/${endpoint.id}`).set(bearer(adminToken)).send({ name: 'x' });
    expectProblem(patch, 405);
    expect(patch.headers.allow).toBe('GET, HEAD');
    const del = await api().delete('/api/v1/endpoints').set(bearer(adminToken));
    expectProblem(del, 405);
    expect(del.headers.allow?.split(', ').sort()).toEqual(['GET', 'HEAD', 'POST']);
    const sim = await api().patch(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(adminToken));
    expect(sim.headers.allow?.split(', ').sort()).toEqual(['DELETE', 'POST', 'PUT']);
    expectProblem(await api().patch('/api/v1/nothing').set(bearer(adminToken)), 404);
    expect(await row('select name from endpoint where id = ?', [endpoint.id])).toEqual({ name: endpoint.name });
  });
});

describe('the OpenAPI document', () => {
  type Operation = {
    parameters?: { in: string; name: string }[];
    requestBody?: { content: Record<string, { schema: { properties?: Record<string, { maxLength?: number }> } }> };
    responses: Record<string, { description: string; headers?: Record<string, unknown>; content?: Record<string, unknown> }>;
  };
  it('documents problems as application/problem+json, the Idempotency-Key, the headers, 400/413/415 and real descriptions', async () => {
    const doc = (await api().get('/api/v1/openapi.json')).body as { paths: Record<string, Record<string, Operation>> };
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([m, op]) => [`${m} ${path}`, op] as const),
    );
    expect(operations.length).toBe(12);
    for (const [name, op] of operations) {
      for (const [status, response] of Object.entries(op.responses)) {
        expect(response.description, `${name} ${status}`).not.toBe('Default Response');
        if (Number(status) >= 400) expect(Object.keys(response.content ?? {}), `${name} ${status}`).toEqual(['application/problem+json']);
        else expect(response.headers, `${name} ${status}`).toHaveProperty('RateLimit-Remaining');
      }
      expect(op.responses['401'].headers, name).toHaveProperty('WWW-Authenticate');
      expect(op.responses['429'].headers, name).toHaveProperty('Retry-After');
      if (name.startsWith('get ')) continue;
      expect(op.parameters, name).toContainEqual(expect.objectContaining({ in: 'header', name: 'idempotency-key' }));
      for (const status of ['400', '413', '415']) expect(op.responses, name).toHaveProperty(status);
    }
    const create = doc.paths['/api/v1/endpoints'].post;
    expect(create.responses['201'].headers).toHaveProperty('Location');
    expect(create.requestBody!.content['application/json'].schema.properties!.name.maxLength).toBe(ENDPOINT_NAME_MAX_LENGTH);
    expect(ENDPOINT_NAME_MAX_LENGTH).toBe(100); // SPEC §1: name 1–100 characters
    // The changes that take no body say so: a generated client must not be made to send one.
    for (const path of ['/api/v1/endpoints/{id}/activate', '/api/v1/endpoints/{id}/suspend', '/api/v1/endpoints/{id}/resume']) {
      expect((doc.paths[path].post.requestBody as { required?: boolean }).required, path).toBe(false);
    }
    expect((doc.paths['/api/v1/endpoints/{id}/sim'].delete.requestBody as { required?: boolean }).required).toBe(false);
    expect((create.requestBody as { required?: boolean }).required).toBe(true);
  });

  it('and the API take the same name limit as the domain: 100 characters (in code points), 101 is 422 on name', async () => {
    const emoji = await api()
      .post('/api/v1/endpoints')
      .set(bearer(adminToken))
      .send({ name: '📡'.repeat(ENDPOINT_NAME_MAX_LENGTH) });
    expect(emoji.status, emoji.text).toBe(201);
    const long = expectProblem(
      await api()
        .post('/api/v1/endpoints')
        .set(bearer(adminToken))
        .send({ name: 'n'.repeat(ENDPOINT_NAME_MAX_LENGTH + 1) }),
      422,
    );
    expect(long.errors).toEqual([expect.objectContaining({ field: 'name' })]);
  });
});

describe('an endpoint named like a timestamp', () => {
  it('makes a cursor the lists read back (MikroORM’s Cursor.decode would turn the name into a Date)', async () => {
    const other = await createEnterprise(em, 'Timestamps');
    const token = await tokenFor(other, 'viewer', 'Reader');
    const first = await holdEndpoint(em, other, { name: '2026-01-01T00:00:00.000Z' });
    const second = await holdEndpoint(em, other, { name: '2026-01-02T00:00:00.000Z' });
    const page1 = await api().get('/api/v1/endpoints?limit=1').set(bearer(token));
    expect(page1.body.data.map((e: { id: number }) => e.id)).toEqual([first.id]);
    const page2 = await api().get(`/api/v1/endpoints?limit=1&cursor=${page1.body.next_cursor}`).set(bearer(token));
    expect(page2.status, page2.text).toBe(200);
    expect(page2.body.data.map((e: { id: number }) => e.id)).toEqual([second.id]);
    const { agent } = await signedIn(app, em, other, 'viewer');
    const screen = await agent.get(`/endpoints?after=${page1.body.next_cursor}`);
    expect(screen.status).toBe(200);
    expect(screen.text).toContain(`/endpoints/${second.id}"`);
    expect(screen.text).not.toContain(`/endpoints/${first.id}"`);
  });
});
