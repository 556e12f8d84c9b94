// TRUST_PROXY: the client's address is the one the trusted proxy saw, never an address the client wrote
// at the start of X-Forwarded-For — so a made-up address per request does not slip past per-address limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import type { Config } from '../../src/config.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { testConfig } from '../helpers/app.js';
import { LIMITS } from '../../src/web/plugins/rate-limits.js';

/** A form post as a browser sends it: URL-encoded (the app refuses JSON and every other body type with 415). */
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const formBody = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

let db: TestDatabase;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await db.close();
});

/** The app with one extra route that answers the address and protocol it sees. */
async function appWith(overrides: Partial<Config>) {
  const app = await buildApp({ orm: db.orm, config: testConfig(overrides) });
  app.get('/test/client', { config: { public: true } }, async (request) => ({ ip: request.ip, protocol: request.protocol }));
  await app.ready();
  apps.push(app);
  return app;
}

/** A request from the proxy at `remoteAddress`, carrying a chain whose first entry the client wrote. */
const through = (app: FastifyInstance, remoteAddress: string, forwardedFor: string) =>
  app
    .inject({ url: '/test/client', remoteAddress, headers: { 'x-forwarded-for': forwardedFor, 'x-forwarded-proto': 'https' } })
    .then((res) => res.json());

describe('the client address behind a proxy', () => {
  it('TRUST_PROXY=1: the address the one proxy saw, not the spoofed one before it', async () => {
    const app = await appWith({ trustProxy: 1 });
    expect(await through(app, '10.0.0.5', '6.6.6.6, 203.0.113.7')).toEqual({ ip: '203.0.113.7', protocol: 'https' });
  });

  it('TRUST_PROXY=<addresses>: the first address from the right that is not a trusted proxy', async () => {
    const app = await appWith({ trustProxy: ['10.0.0.0/8', '127.0.0.1'] });
    expect(await through(app, '10.0.0.5', '6.6.6.6, 203.0.113.7, 10.1.2.3')).toEqual({ ip: '203.0.113.7', protocol: 'https' });
    // From an address that is not a proxy, the header is ignored altogether.
    expect(await through(app, '198.51.100.9', '6.6.6.6')).toEqual({ ip: '198.51.100.9', protocol: 'http' });
  });

  it('TRUST_PROXY unset: the socket address, headers ignored', async () => {
    const app = await appWith({ trustProxy: false });
    expect(await through(app, '10.0.0.5', '6.6.6.6, 203.0.113.7')).toEqual({ ip: '10.0.0.5', protocol: 'http' });
  });

  it('a new spoofed leftmost address per attempt does not get past the per-address sign-in limit', async () => {
    const app = await appWith({ trustProxy: 1, rateLimits: true });
    const attempt = (i: number) =>
      app.inject({
        method: 'POST',
        url: '/sign-in',
        remoteAddress: '10.0.0.5',
        // A different made-up account too, so only the per-address limit counts.
        headers: { ...FORM, 'x-forwarded-for': `6.6.${Math.floor(i / 250)}.${i % 250}, 203.0.113.8` },
        payload: formBody({ email: `nobody-${i}@example.test`, password: 'guess' }),
      });
    for (let i = 0; i < LIMITS['sign-in:ip'].max; i++) expect((await attempt(i)).statusCode).toBe(422);
    expect((await attempt(LIMITS['sign-in:ip'].max)).statusCode).toBe(429);
    // Another client behind the same proxy still has its own count.
    const other = await app.inject({
      method: 'POST',
      url: '/sign-in',
      remoteAddress: '10.0.0.5',
      headers: { ...FORM, 'x-forwarded-for': '203.0.113.9' },
      payload: formBody({ email: 'someone@example.test', password: 'guess' }),
    });
    expect(other.statusCode).toBe(422);
  });
});
