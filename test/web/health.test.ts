import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp } from '../helpers/app.js';
import { page } from '../helpers/page.js';

let db: TestDatabase;
let app: FastifyInstance;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildTestApp(db);
});
afterAll(async () => {
  await app.close();
  await db.close();
});

describe('health probes', () => {
  it('/healthz answers while the process is up', async () => {
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('/readyz answers 200 while the database answers', async () => {
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', database: 'ok' });
  });

  it('answers with a request id of its own, whatever id the client sent (it is only logged, as clientRequestId)', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    for (const given of ['lb-1234', '<script>']) {
      const res = await app.inject({ url: '/healthz', headers: { 'x-request-id': given } });
      expect(res.headers['x-request-id']).toMatch(uuid);
    }
  });

  it('an unknown address gets a 404 page', async () => {
    const res = await app.inject('/no-such-page');
    expect(res.statusCode).toBe(404);
    expect(page(res.body).heading).toBe('Page not found');
  });

  it('/readyz answers 503 when the database is gone', async () => {
    await db.close();
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json().status).toBe('unavailable');
  });
});
