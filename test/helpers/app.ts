// The app under test: a Fastify instance on a test database, driven with app.inject or supertest.
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { Database } from '../../src/db/database.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from './database.js';
import { createEnterprise, type TestEnterprise } from '../factories/index.js';

export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({ SESSION_SECRET: 'test-session-secret-that-is-long-enough-0123', DATA_DIR: '/tmp/simlink-test-unused' }),
    rateLimits: false,
    // The background workers (webhooks, bulk jobs) run only in the tests that start them.
    webhookDelivery: false,
    bulkJobs: false,
    ...overrides,
  };
}

export async function buildTestApp(db: Database, overrides: Partial<Config> = {}): Promise<FastifyInstance> {
  const app = await buildApp({ orm: db.orm, config: testConfig(overrides) });
  await app.ready();
  return app;
}

/** What a route test file starts from: its own database, the app on it, and two enterprises (Acme, Globex). */
export interface RouteTestWorld {
  db: TestDatabase;
  app: FastifyInstance;
  em: EntityManager;
  acme: TestEnterprise;
  globex: TestEnterprise;
}

export async function routeTestWorld(overrides: Partial<Config> = {}): Promise<RouteTestWorld> {
  const db = await createTestDatabase();
  const app = await buildTestApp(db, overrides);
  const em = db.orm.em.fork();
  return { db, app, em, acme: await createEnterprise(em, 'Acme'), globex: await createEnterprise(em, 'Globex') };
}
