// Rate limits: sign-in and launch per address and per account, changes per session; over a limit → 429
// with Retry-After and a page saying when to try again. (Other test files build the app without limits.)
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp } from '../helpers/app.js';
import { hidden, injectSignIn, PASSWORD } from '../helpers/session.js';
import { page } from '../helpers/page.js';
import { createEnterprise, createUser, type TestEnterprise } from '../factories/index.js';
import { hashPassword } from '../../src/domain/passwords.js';
import { createLaunchToken } from '../../src/domain/launch.js';
import { LIMITS } from '../../src/web/plugins/rate-limits.js';
import { cookieHeader } from '../helpers/cookies.js';

/** A form post as a browser sends it: URL-encoded (the app refuses JSON and every other body type with 415). */
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const formBody = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

const SECRET = 'rate-limit-launch-secret-0123456789abcdef';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let hash: string;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildTestApp(db, { rateLimits: true, crmLaunchSecret: SECRET });
  em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme Limits');
  hash = await hashPassword(PASSWORD);
});
afterAll(async () => {
  await app.close();
  await db.close();
});

/** Each test counts from its own address, so the limits of one test do not spill into another. */
let address = 0;
const nextAddress = () => `10.0.${Math.floor(++address / 250)}.${(address % 250) + 1}`;

const signIn = async (email: string, password: string, remoteAddress: string, headers: Record<string, string> = {}) =>
  (await injectSignIn(app, email, { password, remoteAddress, headers })).res;

function expectTooMany(res: LightMyRequestResponse, windowSeconds = 60) {
  expect(res.statusCode).toBe(429);
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(windowSeconds);
  expect(res.body).toContain('Too many requests');
  expect(res.body).toContain(`Try again in ${retryAfter} seconds`);
}

describe('sign-in', () => {
  it(`per account: after ${LIMITS['sign-in:account'].max} attempts in a minute, even the right password waits`, async () => {
    const user = await createUser(em, acme, 'admin', hash);
    for (let i = 0; i < LIMITS['sign-in:account'].max; i++) {
      // From different addresses: the account's own limit is what stops it.
      expect((await signIn(user.email, 'wrong password', nextAddress())).statusCode).toBe(422);
    }
    const res = await signIn(user.email.toUpperCase(), PASSWORD, nextAddress());
    expectTooMany(res);
    expect(res.headers['set-cookie']).toBeUndefined();
    // Another account is not affected.
    const other = await createUser(em, acme, 'admin', hash);
    expect((await signIn(other.email, PASSWORD, nextAddress())).statusCode).toBe(303);
  });

  it(`per address: after ${LIMITS['sign-in:ip'].max} attempts in a minute from one address, whatever the accounts`, async () => {
    const from = nextAddress();
    for (let i = 0; i < LIMITS['sign-in:ip'].max; i++) {
      expect((await signIn(`nobody-${i}-${randomUUID()}@example.test`, 'x', from)).statusCode).toBe(422);
    }
    expectTooMany(await signIn(`nobody-${randomUUID()}@example.test`, 'x', from));
    // An htmx request gets the same message as a partial (htmx swaps 429s).
    const htmx = await signIn(`nobody-${randomUUID()}@example.test`, 'x', from, { 'hx-request': 'true' });
    expectTooMany(htmx);
    expect(page(htmx.body).isDocument).toBe(false);
    // Another address can still sign in.
    const user = await createUser(em, acme, 'admin', hash);
    expect((await signIn(user.email, PASSWORD, nextAddress())).statusCode).toBe(303);
  });
});

describe('launch', () => {
  const launch = (token: string, remoteAddress: string) =>
    app.inject({ url: `/launch?token=${encodeURIComponent(token)}`, remoteAddress, headers: { 'sec-fetch-dest': 'iframe' } });

  it(`per account: after ${LIMITS['launch:account'].max} launches of one user in a minute`, async () => {
    const sub = `crm-${randomUUID().slice(0, 8)}@example.test`;
    for (let i = 0; i < LIMITS['launch:account'].max; i++) {
      const token = await createLaunchToken(SECRET, { ent: acme.slug, sub, role: 'admin' });
      expect((await launch(token, nextAddress())).statusCode).toBe(303);
    }
    const res = await launch(await createLaunchToken(SECRET, { ent: acme.slug, sub, role: 'admin' }), nextAddress());
    expectTooMany(res);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('per account counts only tokens with a valid signature (nobody can lock a user out with junk)', async () => {
    const sub = `crm-${randomUUID().slice(0, 8)}@example.test`;
    for (let i = 0; i < LIMITS['launch:account'].max + 5; i++) {
      const forged = await createLaunchToken('not-the-secret-but-long-enough-0123456789', { ent: acme.slug, sub, role: 'admin' });
      expect((await launch(forged, nextAddress())).statusCode).toBe(401);
    }
    expect((await launch(await createLaunchToken(SECRET, { ent: acme.slug, sub, role: 'admin' }), nextAddress())).statusCode).toBe(303);
  });

  it(`per address: after ${LIMITS['launch:ip'].max} launches from one address in a minute`, async () => {
    const from = nextAddress();
    for (let i = 0; i < LIMITS['launch:ip'].max; i++) {
      expect((await launch('junk', from)).statusCode).toBe(401);
    }
    expectTooMany(
      await launch(
        await createLaunchToken(SECRET, { ent: acme.slug, sub: `crm-${randomUUID().slice(0, 8)}@example.test`, role: 'admin' }),
        from,
      ),
    );
  });
});

describe('changes', () => {
  it(`per session: after ${LIMITS['post:session'].max} state-changing requests in a minute`, async () => {
    const user = await createUser(em, acme, 'admin', hash);
    const signedIn = await signIn(user.email, PASSWORD, nextAddress());
    const cookie = cookieHeader(signedIn, 'simlink_session');
    const csrf = hidden((await app.inject({ url: '/endpoints/new', headers: { cookie } })).body, '_csrf');
    // "Choose a SIM" without JavaScript: a POST that changes nothing, so the count is all that is tested.
    const post = () =>
      app.inject({
        method: 'POST',
        url: '/endpoints/new/sim',
        headers: { ...FORM, cookie },
        remoteAddress: nextAddress(),
        payload: formBody({ _csrf: csrf, name: 'x' }),
      });
    for (let i = 0; i < LIMITS['post:session'].max; i++) expect((await post()).statusCode).toBe(303);
    expectTooMany(await post());
    // Reading is not limited.
    expect((await app.inject({ url: '/endpoints', headers: { cookie } })).statusCode).toBe(200);
  });
});

describe('the counters are kept in PostgreSQL', () => {
  it('two instances on one database share each limit: N instances do not give N times the attempts', async () => {
    const second = await buildTestApp(db, { rateLimits: true, crmLaunchSecret: SECRET });
    try {
      const user = await createUser(em, acme, 'admin', hash);
      const attempt = (instance: FastifyInstance) =>
        instance.inject({
          method: 'POST',
          url: '/sign-in',
          remoteAddress: nextAddress(),
          headers: FORM,
          payload: formBody({ email: user.email, password: 'wrong' }),
        });
      // Attempts alternate between the instances (as a load balancer spreads them), all at once.
      const results = await Promise.all(Array.from({ length: LIMITS['sign-in:account'].max + 4 }, (_, i) => attempt(i % 2 ? second : app)));
      const codes = results.map((r) => r.statusCode);
      expect(codes.filter((c) => c === 422)).toHaveLength(LIMITS['sign-in:account'].max);
      expect(codes.filter((c) => c === 429)).toHaveLength(4);
      // And the limit holds on either instance afterwards.
      expectTooMany(await attempt(app));
      expectTooMany(await attempt(second));
    } finally {
      await second.close();
    }
  });

  it('a restart keeps them: a new instance on the same database still refuses', async () => {
    const user = await createUser(em, acme, 'admin', hash);
    const first = await buildTestApp(db, { rateLimits: true });
    for (let i = 0; i < LIMITS['sign-in:account'].max; i++) {
      const res = await first.inject({
        method: 'POST',
        url: '/sign-in',
        remoteAddress: nextAddress(),
        headers: FORM,
        payload: formBody({ email: user.email, password: 'wrong' }),
      });
      expect(res.statusCode).toBe(422);
    }
    await first.close();
    const restarted = await buildTestApp(db, { rateLimits: true });
    try {
      expectTooMany(
        await restarted.inject({
          method: 'POST',
          url: '/sign-in',
          remoteAddress: nextAddress(),
          headers: FORM,
          payload: formBody({ email: user.email, password: PASSWORD }),
        }),
      );
    } finally {
      await restarted.close();
    }
  });

  it('launches too: a user’s launches on two instances count together', async () => {
    const second = await buildTestApp(db, { rateLimits: true, crmLaunchSecret: SECRET });
    try {
      const sub = `crm-${randomUUID().slice(0, 8)}@example.test`;
      const launchOn = async (instance: FastifyInstance) =>
        instance.inject({
          url: `/launch?token=${encodeURIComponent(await createLaunchToken(SECRET, { ent: acme.slug, sub, role: 'admin' }))}`,
          remoteAddress: nextAddress(),
          headers: { 'sec-fetch-dest': 'iframe' },
        });
      for (let i = 0; i < LIMITS['launch:account'].max; i++) expect((await launchOn(i % 2 ? second : app)).statusCode).toBe(303);
      expectTooMany(await launchOn(second));
      expectTooMany(await launchOn(app));
    } finally {
      await second.close();
    }
  });
});

describe('RATE_LIMITS=false', () => {
  it('turns every limit off', async () => {
    const unlimited = await buildTestApp(db, { rateLimits: false });
    try {
      const user = await createUser(em, acme, 'admin', hash);
      for (let i = 0; i < LIMITS['sign-in:account'].max + 3; i++) {
        const res = await unlimited.inject({
          method: 'POST',
          url: '/sign-in',
          headers: FORM,
          payload: formBody({ email: user.email, password: 'wrong' }),
        });
        expect(res.statusCode).toBe(422);
      }
    } finally {
      await unlimited.close();
    }
  });
});
