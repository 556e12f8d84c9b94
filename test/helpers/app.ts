// The app under test: a Fastify instance on a test database, driven with app.inject or supertest.
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { Database } from '../../src/db/database.js';

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
