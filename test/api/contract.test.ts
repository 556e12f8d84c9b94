// The API's contract and its guards: the OpenAPI document is valid and lists every /api/v1 route, the
// reference page loads with its own CSP; Idempotency-Key replays the first answer and refuses another
// request with the same key; the per-token rate limits answer 429 with Retry-After.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import supertest from 'supertest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { validate } from '@readme/openapi-parser';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp } from '../helpers/app.js';
import { page as readPage } from '../helpers/page.js';
import { createEnterprise, createUser, holdEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import { createApiToken } from '../../src/domain/api-tokens.js';
import { actorOf } from '../../src/domain/accounts.js';
import { UserSchema } from '../../src/domain/entities.js';
import { API_LIMITS } from '../../src/api/v1.routes.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let token: string;
const routes: string[] = [];

async function tokenFor(enterprise: TestEnterprise, name: string, role: 'admin' | 'viewer' = 'admin') {
  const user = await createUser(em, enterprise, 'admin');
  const fork = em.fork();
  const entity = await fork.findOneOrFail(UserSchema, user.id, { populate: ['enterprise'] });
  return (await createApiToken(fork, actorOf(entity, entity.enterprise.getEntity()), { name, role })).token;
}

/** `METHOD /path` of every route, from Fastify's route tree (printRoutes: one segment a line, indented by depth). */
function routeList(tree: string): string[] {
  const stack: string[] = [];
  const found: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^(.*?)[└├]── (.+?) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) continue;
    const depth = match[1].length / 4;
    const parent = depth ? stack[depth - 1] : '';
    const path = parent === '/' ? `/${match[2]}` : `${parent}${match[2]}`;
    stack[depth] = path;
    for (const method of match[3].split(', ')) if (method !== 'HEAD') found.push(`${method} ${path}`);
  }
  return found;
}

const api = () => supertest(app.server);
const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
const count = async (sql: string, params: unknown[]) =>
  (await em.fork().execute<{ n: number }[]>(`select count(*)::int as n from ${sql}`, params))[0].n;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildTestApp(db);
  em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme');
  token = await tokenFor(acme, 'CRM');
  routes.push(...routeList(app.printRoutes({ commonPrefix: false })));
});
afterAll(async () => {
  await app?.close();
  await db?.close();
});

describe('OpenAPI', () => {
  it('is a valid OpenAPI 3.1 document with every /api/v1 route, the bearer scheme and the problem schema', async () => {
    const res = await api().get('/api/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = JSON.parse(res.text) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, JSON.stringify(result)).toBe(true);
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(
      [
        'GET /api/v1/endpoints',
        'POST /api/v1/endpoints',
        'GET /api/v1/endpoints/{id}',
        'POST /api/v1/endpoints/{id}/sim',
        'DELETE /api/v1/endpoints/{id}/sim',
        'POST /api/v1/endpoints/{id}/activate',
        'POST /api/v1/endpoints/{id}/suspend',
        'PUT /api/v1/endpoints/{id}/sim',
        'POST /api/v1/endpoints/{id}/resume',
        'GET /api/v1/sims',
        'GET /api/v1/sims/{iccid}',
        'GET /api/v1/events',
      ].sort(),
    );
    // Every route of the app under /api/v1 (but the document itself) is in the document.
    const apiRoutes = routes
      .filter((r) => r.includes(' /api/v1/') && !r.endsWith('/openapi.json'))
      .map((r) => r.replace(/:(\w+)/g, '{$1}'))
      .sort();
    expect(apiRoutes).toEqual(documented.sort());
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Problem', 'Endpoint', 'Sim', 'Event']));
    expect(doc.paths['/api/v1/endpoints/{id}/sim'].post.responses).toHaveProperty('409');
  });

  it('serves the reference page at /api/docs with scripts from its own origin and its own CSP', async () => {
    const page = await api().get('/api/docs/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('upgrade-insecure-requests');
    // No inline script: every script is a file.
    const scripts = Array.from(readPage(page.text).document.querySelectorAll('script'));
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) {
      expect(script.hasAttribute('src'), script.outerHTML).toBe(true);
      expect(script.textContent?.trim()).toBe('');
    }
    // Without the trailing slash, its files are named by their whole path (it is mounted under /api).
    const unslashed = readPage((await api().get('/api/docs')).text).document;
    expect(Array.from(unslashed.querySelectorAll('script')).map((s) => s.getAttribute('src'))).toContain(
      '/api/docs/static/swagger-ui-bundle.js',
    );
    const initializer = await api().get('/api/docs/static/swagger-initializer.js');
    expect(initializer.status).toBe(200);
  });
});

describe('Idempotency-Key', () => {
  it('answers a retry with the first answer and Idempotent-Replayed, and changes nothing again', async () => {
    const key = `create-${Date.now()}`;
    const send = () => api().post('/api/v1/endpoints').set(bearer(token)).set('Idempotency-Key', key).send({ name: 'Once only' });
    const first = await send();
    expect(first.status, first.text).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const second = await send();
    expect(second.status).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.body).toEqual(first.body);
    expect(second.headers.location).toBe(first.headers.location);
    expect(await count(`endpoint where name = 'Once only'`, [])).toBe(1);
    expect(await count(`event where action = 'endpoint.created' and endpoint_name = 'Once only'`, [])).toBe(1);
  });

  it('refuses the same key with another body: 422, nothing changes', async () => {
    const key = `link-${Date.now()}`;
    const endpoint = await holdEndpoint(em, acme);
    const [a, b] = [await readySim(em, acme), await readySim(em, acme)];
    const link = (iccid: string) =>
      api().post(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(token)).set('Idempotency-Key', key).send({ iccid });
    expect((await link(a.iccid)).status).toBe(200);
    const other = await link(b.iccid);
    expect(other.status).toBe(422);
    expect(other.headers['content-type']).toMatch(/problem\+json/);
    expect(other.body.errors).toEqual([expect.objectContaining({ field: 'Idempotency-Key' })]);
    expect(await count('sim where id = ? and status = ?', [b.id, 'ready'])).toBe(1);
    // Without a key a retried link is refused with the current state, never a second change.
    const retried = await api().post(`/api/v1/endpoints/${endpoint.id}/sim`).set(bearer(token)).send({ iccid: a.iccid });
    expect(retried.status).toBe(409);
    expect(await count(`event where action = 'sim.linked' and endpoint_id = ?`, [endpoint.id])).toBe(1);
  });

  it('keys belong to their token, and expire after 24 hours', async () => {
    const key = `shared-${Date.now()}`;
    const other = await tokenFor(acme, 'Other CRM');
    const create = (t: string, name: string) => api().post('/api/v1/endpoints').set(bearer(t)).set('Idempotency-Key', key).send({ name });
    expect((await create(token, 'Key A')).status).toBe(201);
    const second = await create(other, 'Key B');
    expect(second.status).toBe(201);
    expect(second.headers['idempotent-replayed']).toBeUndefined();
    await em.fork().execute(`update operation_key set created_at = now() - interval '25 hours'`);
    const later = await create(token, 'Key A');
    expect(later.headers['idempotent-replayed']).toBeUndefined();
    expect(await count(`endpoint where name = 'Key A'`, [])).toBe(2);
  });

  it('refuses a malformed key with 422', async () => {
    const res = await api().post('/api/v1/endpoints').set(bearer(token)).set('Idempotency-Key', 'x'.repeat(300)).send({ name: 'Bad key' });
    expect(res.status).toBe(422);
    expect(await count(`endpoint where name = 'Bad key'`, [])).toBe(0);
  });
});

describe('rate limits per token', () => {
  let limited: FastifyInstance;
  beforeAll(async () => {
    limited = await buildTestApp(db, { rateLimits: true });
  });
  afterAll(async () => {
    await limited?.close();
  });

  it('counts changes per token: RateLimit-* headers, then 429 with Retry-After as problem+json', async () => {
    const busy = await tokenFor(acme, 'Busy script');
    const quiet = await tokenFor(acme, 'Quiet script');
    const endpoint = await holdEndpoint(em, acme);
    const post = (t: string) => supertest(limited.server).post(`/api/v1/endpoints/${endpoint.id}/activate`).set(bearer(t));
    const first = await post(busy);
    expect(first.status).toBe(409);
    expect(first.headers['ratelimit-limit']).toBe(String(API_LIMITS.changes));
    expect(first.headers['ratelimit-remaining']).toBe(String(API_LIMITS.changes - 1));
    for (let i = 1; i < API_LIMITS.changes; i++) await post(busy);
    const over = await post(busy);
    expect(over.status).toBe(429);
    expect(over.headers['content-type']).toMatch(/problem\+json/);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // Another token is counted apart.
    expect((await post(quiet)).status).toBe(409);
    // Reads have their own, larger limit.
    const read = await supertest(limited.server).get('/api/v1/sims').set(bearer(busy));
    expect(read.status).toBe(200);
    expect(read.headers['ratelimit-limit']).toBe(String(API_LIMITS.requests));
  });
});
