// Client input never gives a 500: a route takes only the content types its forms send (URL-encoded, and
// multipart where a file is uploaded) — anything else is 415 with a plain page, before it is parsed — and a
// body that cannot be parsed is 400. Nothing changes either way.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp } from '../helpers/app.js';
import { csrfToken, signedIn, type Agent } from '../helpers/session.js';
import { page } from '../helpers/page.js';
import { createEnterprise, type TestEnterprise } from '../factories/index.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let admin: Agent;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildTestApp(db);
  em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme Input');
  ({ agent: admin } = await signedIn(app, em, acme, 'admin'));
});
afterAll(async () => {
  await app.close();
  await db.close();
});

const deepJson = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const counts = async () =>
  (
    await em
      .fork()
      .execute<{ n: string }[]>(
        `select (select count(*) from endpoint) || '/' || (select count(*) from sim) || '/' || (select count(*) from session) as n`,
      )
  )[0].n;

/** A plain page with no internals: no stack, no Fastify error text. */
function expectPlainPage(res: { status?: number; statusCode?: number; text?: string; body?: string }, status: number, title: string) {
  expect(res.status ?? res.statusCode).toBe(status);
  const html = res.text ?? res.body ?? '';
  expect(page(html).heading).toBe(title);
  expect(html).not.toMatch(/ at .*\.(js|ts):\d+|RangeError|FST_|Maximum call stack/);
}

describe('content types', () => {
  it('deeply nested JSON to POST /sign-in: 415, not 500', async () => {
    const before = await counts();
    const res = await app.inject({
      method: 'POST',
      url: '/sign-in',
      headers: { 'content-type': 'application/json' },
      payload: deepJson(100_000),
    });
    expectPlainPage(res, 415, 'That kind of content is not accepted');
    expect(res.body).toContain('Send this form from SIM Link’s own page.');
    expect(await counts()).toBe(before);
  });

  it.each([
    ['application/json', '{"email":"a@example.test","password":"x"}'],
    ['text/plain', 'email=a@example.test'],
    ['application/xml', '<a/>'],
    ['multipart/form-data; boundary=x', '--x--\r\n'],
  ])('POST /sign-in as %s: 415', async (type, payload) => {
    const res = await app.inject({ method: 'POST', url: '/sign-in', headers: { 'content-type': type }, payload });
    expectPlainPage(res, 415, 'That kind of content is not accepted');
  });

  it('a body without a content type: 415', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/sign-in',
      payload: 'email=a%40example.test&password=x',
      headers: { 'content-type': '' },
    });
    expectPlainPage(res, 415, 'That kind of content is not accepted');
  });

  it('signed in: JSON (deep or not) to a form route is 415 and creates nothing', async () => {
    const before = await counts();
    const token = await csrfToken(admin);
    for (const payload of [deepJson(50_000), JSON.stringify({ _csrf: token, name: 'From JSON' })]) {
      const res = await admin.post('/endpoints').set('content-type', 'application/json').set('x-csrf-token', token).send(payload);
      expectPlainPage(res, 415, 'That kind of content is not accepted');
    }
    expect(await counts()).toBe(before);
  });

  it('the forms’ own content types still work, with a charset', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/sign-in',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
      payload: 'email=nobody%40example.test&password=wrong',
    });
    expect(res.statusCode).toBe(422);
    expect(res.body).toContain('The email address or password is not right');
  });
});

describe('bodies that cannot be parsed: 400', () => {
  const importUrl = async () => `/sims/import?_csrf=${encodeURIComponent(await csrfToken(admin, '/sims/import'))}`;

  it('a multipart body whose only part has a malformed header: no file, said in words (422)', async () => {
    const res = await admin
      .post(await importUrl())
      .set('content-type', 'multipart/form-data; boundary=XyZ')
      .send('--XyZ\r\nthis is not a header\r\n\r\nx\r\n--XyZ--\r\n');
    expect(res.status).toBe(422);
    expect(res.text).toContain('Choose a CSV file to import');
  });

  it.each([
    [
      'a part that never ends',
      'multipart/form-data; boundary=XyZ',
      '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\niccid,imsi\r\n8944',
    ],
    [
      'no boundary',
      'multipart/form-data',
      '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nx\r\n--XyZ--\r\n',
    ],
    ['garbage', 'multipart/form-data; boundary=XyZ', 'garbage'],
  ])('a malformed multipart upload (%s): 400 page, nothing imported', async (_name, type, payload) => {
    const before = await counts();
    const res = await admin
      .post(await importUrl())
      .set('content-type', type)
      .send(payload);
    expect(res.status).toBe(400);
    expect(res.text).not.toMatch(/ at .*\.(js|ts):\d+|FST_|Unexpected end of form|Malformed/);
    expect(page(res.text).text).toContain('could not be read');
    expect(await counts()).toBe(before);
  });

  it('a Content-Length that does not match the body: 400 in words', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/sign-in',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '5000' },
      payload: 'email=a',
    });
    expectPlainPage(res, 400, 'The request could not be understood');
    expect(res.body).toContain('could not be read');
  });
});
