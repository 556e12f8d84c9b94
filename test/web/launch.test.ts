// GET /launch?token=… from the CRM's iframe: a valid token starts an embedded session (cookie SameSite=None;
// Secure; Partitioned) and 303s to the target; every kind of bad token gets the 401 page and no session.
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { buildApp } from '../../src/app.js';
import { createLaunchToken, type LaunchTokenInput } from '../../src/domain/launch.js';
import { countRows, createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp, testConfig } from '../helpers/app.js';
import { hidden, injectSignIn, PASSWORD } from '../helpers/session.js';
import { page as readPage } from '../helpers/page.js';
import { hashPassword } from '../../src/domain/passwords.js';
import { createEnterprise, createUser, holdEndpoint, type TestEnterprise } from '../factories/index.js';
import { cookieHeader, setCookie } from '../helpers/cookies.js';

/** A form post as a browser sends it: URL-encoded (the app refuses JSON and every other body type with 415). */
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const formBody = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

const SECRET = 'launch-secret-for-tests-0123456789abcdef';
const HTTPS = { 'x-forwarded-proto': 'https' };

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;

beforeAll(async () => {
  db = await createTestDatabase();
  // Behind a TLS proxy, as in production: X-Forwarded-Proto says the request came over HTTPS.
  app = await buildTestApp(db, { crmLaunchSecret: SECRET, trustProxy: 1, crmOrigins: ['https://crm.example.com'] });
  em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme Launch');
  globex = await createEnterprise(em, 'Globex Launch');
});
afterAll(async () => {
  await app.close();
  await db.close();
});

const uniqueEmail = () => `crm-${randomUUID().slice(0, 8)}@example.test`;
const now = () => Math.floor(Date.now() / 1000);
const token = (input: Partial<LaunchTokenInput> = {}) =>
  createLaunchToken(SECRET, { ent: acme.slug, sub: uniqueEmail(), role: 'admin', name: 'Nina Newcomer', ...input });
/** A launch in the CRM's iframe (the browser says so with Sec-Fetch-Dest), unless the headers say otherwise. */
const launch = (value: string, headers: Record<string, string> = HTTPS, target = app) =>
  target.inject({ url: `/launch?token=${encodeURIComponent(value)}`, headers: { 'sec-fetch-dest': 'iframe', ...headers } });

const sessionCookie = (res: LightMyRequestResponse) => setCookie(res);
const cookiePair = (res: LightMyRequestResponse) => cookieHeader(res, 'simlink_session');

/** How many rows of a table (and condition), e.g. `count('session')`. */
const count = (from: string, params: unknown[] = []) => countRows(db, `select 1 from ${from}`, params);
const userRow = async (email: string) =>
  (
    await db.orm.em
      .fork()
      .execute<{ id: number; enterprise_id: number; role: string; display_name: string; password_hash: string | null }[]>(
        'select id, enterprise_id, role, display_name, password_hash from app_user where email = ?',
        [email],
      )
  )[0];

/** Asserts the 401 page: no session started, nothing to follow. */
async function expectRefused(res: LightMyRequestResponse, words: RegExp = /not valid/) {
  expect(res.statusCode).toBe(401);
  const shown = readPage(res.body);
  expect(shown.heading).toBe('SIM Link could not be opened');
  expect(shown.text).toMatch(words);
  expect(res.headers.location).toBeUndefined();
  expect(sessionCookie(res)).toBeUndefined();
}

describe('a valid launch token', () => {
  it('creates the user just in time, starts an embedded session and 303s to the target', async () => {
    const endpoint = await holdEndpoint(em, acme, { name: 'Launch target' });
    const email = uniqueEmail();
    const sessionsBefore = await count('session');
    const res = await launch(await token({ sub: email.toUpperCase(), name: 'Nina Newcomer', target: `/endpoints/${endpoint.id}` }));

    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(`/endpoints/${endpoint.id}`);
    expect(res.headers['cache-control']).toBe('no-store');
    const cookie = sessionCookie(res)!;
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=None/);
    expect(cookie).toMatch(/; Partitioned/);

    const user = await userRow(email);
    expect(user).toMatchObject({ enterprise_id: acme.id, role: 'admin', display_name: 'Nina Newcomer', password_hash: null });
    expect(await count('session')).toBe(sessionsBefore + 1);
    const [row] = await db.orm.em
      .fork()
      .execute<{ data: { embedded: boolean; userId: number } }[]>('select data from session where user_id = ?', [user.id]);
    expect(row.data).toMatchObject({ embedded: true, userId: user.id });

    // The session works: the target page, then a change through a form (CSRF secret kept in the session).
    const page = await app.inject({ url: `/endpoints/${endpoint.id}`, headers: { ...HTTPS, cookie: cookiePair(res) } });
    expect(page.statusCode).toBe(200);
    expect(readPage(page.body).heading).toBe('Launch target');
    expect(readPage(page.body).text).toContain('Nina Newcomer');
    const form = await app.inject({ url: '/endpoints/new', headers: { ...HTTPS, cookie: cookiePair(res) } });
    const created = await app.inject({
      method: 'POST',
      url: '/endpoints',
      headers: { ...FORM, ...HTTPS, cookie: cookiePair(res) },
      payload: formBody({ _csrf: hidden(form.body, '_csrf'), key: hidden(form.body, 'key'), name: 'Made in the CRM' }),
    });
    expect(created.statusCode).toBe(303);
    expect(await count('endpoint where enterprise_id = ? and name = ?', [acme.id, 'Made in the CRM'])).toBe(1);
    // A change made in the CRM's session is recorded as the CRM's (source crm), by the user it names.
    expect(
      await count(`event where action = 'endpoint.created' and endpoint_name = ? and source = 'crm' and actor_name = 'Nina Newcomer'`, [
        'Made in the CRM',
      ]),
    ).toBe(1);
  });

  it('updates the name and role of an existing user of the same enterprise', async () => {
    const existing = await createUser(em, acme, 'viewer');
    const res = await launch(await token({ sub: existing.email, role: 'admin', name: 'Renamed In CRM' }));
    expect(res.statusCode).toBe(303);
    expect(await userRow(existing.email)).toMatchObject({
      id: existing.id,
      enterprise_id: acme.id,
      role: 'admin',
      display_name: 'Renamed In CRM',
    });

    const demoted = await launch(await token({ sub: existing.email, role: 'viewer', name: undefined }));
    expect(demoted.statusCode).toBe(303);
    // No name in the token: the name is kept.
    expect(await userRow(existing.email)).toMatchObject({ role: 'viewer', display_name: 'Renamed In CRM' });
  });

  it('regenerates the session id: a session the browser had before is gone', async () => {
    const first = await launch(await token());
    const second = await launch(await token(), { ...HTTPS, cookie: cookiePair(first) });
    expect(second.statusCode).toBe(303);
    expect(cookiePair(second)).not.toBe(cookiePair(first));
    const old = await app.inject({ url: '/endpoints', headers: { ...HTTPS, cookie: cookiePair(first) } });
    expect(old.statusCode).toBe(303);
    expect(old.headers.location).toBe('/sign-in?next=%2Fendpoints');
  });

  it('accepts an exp up to 5 minutes ahead, and one just past within the clock skew', async () => {
    expect((await launch(await token({ ttlSeconds: 300 }))).statusCode).toBe(303);
    expect((await launch(await token({ exp: now() - 10 }))).statusCode).toBe(303);
  });

  it('a HEAD request (a link checker) does not spend the token', async () => {
    const value = await token();
    const head = await app.inject({ method: 'HEAD', url: `/launch?token=${value}`, headers: HTTPS });
    expect(head.statusCode).toBe(404);
    expect((await launch(value)).statusCode).toBe(303);
  });

  it('keeps a target that is a path on this app, query included', async () => {
    const res = await launch(await token({ target: '/endpoints?status=active&q=Truck' }));
    expect(res.headers.location).toBe('/endpoints?status=active&q=Truck');
  });

  it.each([
    'https://evil.example/endpoints',
    '//evil.example/endpoints',
    '/\\evil.example',
    '\\\\evil.example',
    '/endpoints\\..\\..\\x',
    'javascript:alert(1)',
    'endpoints',
    '/endpoints with space',
    '/launch?token=x',
    '',
  ])('ignores the target %j and lands on /endpoints', async (target) => {
    const res = await launch(await token({ target }));
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/endpoints');
  });

  it('over plain HTTP on a loopback host (a developer machine) the cookie is the same, and the session keeps its changes', async () => {
    const headers = { host: 'localhost:3000' };
    const res = await launch(await token(), headers);
    expect(res.statusCode).toBe(303);
    const cookie = sessionCookie(res)!;
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=None/);
    expect(cookie).toMatch(/; Partitioned/);
    // Browsers keep Secure cookies from localhost; the CSRF secret made on the next page must be kept too.
    const form = await app.inject({ url: '/endpoints/new', headers: { ...headers, cookie: cookiePair(res) } });
    expect(form.statusCode).toBe(200);
    const created = await app.inject({
      method: 'POST',
      url: '/endpoints',
      headers: { ...FORM, ...headers, cookie: cookiePair(res) },
      payload: formBody({ _csrf: hidden(form.body, '_csrf'), key: hidden(form.body, 'key'), name: 'Made on localhost' }),
    });
    expect(created.statusCode).toBe(303);
    const shown = await app.inject({ url: String(created.headers.location), headers: { ...headers, cookie: cookiePair(res) } });
    expect(readPage(shown.body).heading).toBe('Made on localhost');
  });

  it('over plain HTTP on another host the session still works, with the ordinary Lax cookie', async () => {
    const headers = { host: 'simlink.internal:3000' };
    const res = await launch(await token(), headers);
    expect(res.statusCode).toBe(303);
    const cookie = sessionCookie(res)!;
    expect(cookie).toMatch(/; SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure|Partitioned/);
    const page = await app.inject({ url: '/endpoints', headers: { ...headers, cookie: cookiePair(res) } });
    expect(page.statusCode).toBe(200);
  });
});

describe('a refused launch: 401 page, no session', () => {
  it('a replayed token (same jti) is refused, even with another user in it', async () => {
    const jti = randomUUID();
    const first = await token({ jti });
    expect((await launch(first)).statusCode).toBe(303);
    const sessions = await count('session');
    await expectRefused(await launch(first), /already used/);
    await expectRefused(await launch(await token({ jti, sub: uniqueEmail() })), /already used/);
    expect(await count('session')).toBe(sessions);
  });

  it('an expired token', async () => {
    await expectRefused(await launch(await token({ exp: now() - 120 })), /expired/);
  });

  it('a token valid for longer than 5 minutes', async () => {
    await expectRefused(await launch(await token({ ttlSeconds: 600 })));
    await expectRefused(await launch(await token({ ttlSeconds: 24 * 3600 })));
  });

  it('a bad signature: another secret, or a changed payload', async () => {
    await expectRefused(
      await launch(
        await createLaunchToken('another-secret-that-is-long-enough-000000', { ent: acme.slug, sub: uniqueEmail(), role: 'admin' }),
      ),
    );
    const [header, , signature] = (await token()).split('.');
    const forged = Buffer.from(
      JSON.stringify({ ent: acme.slug, sub: uniqueEmail(), role: 'admin', jti: randomUUID(), exp: now() + 60 }),
    ).toString('base64url');
    await expectRefused(await launch(`${header}.${forged}.${signature}`));
  });

  it('alg none, and algorithms other than HS256 (even with the right secret)', async () => {
    const claims = { ent: acme.slug, role: 'admin' };
    const unsecured = new UnsecuredJWT(claims).setSubject(uniqueEmail()).setJti(randomUUID()).setExpirationTime('1m').encode();
    await expectRefused(await launch(unsecured));
    const hs512 = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS512' })
      .setSubject(uniqueEmail())
      .setJti(randomUUID())
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode(SECRET));
    await expectRefused(await launch(hs512));
    const { privateKey } = await generateKeyPair('RS256');
    const rs256 = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject(uniqueEmail())
      .setJti(randomUUID())
      .setExpirationTime('1m')
      .sign(privateKey);
    await expectRefused(await launch(rs256));
  });

  it('an unknown enterprise', async () => {
    const email = uniqueEmail();
    await expectRefused(await launch(await token({ ent: 'no-such-enterprise', sub: email })), /cannot be matched/);
    expect(await userRow(email)).toBeUndefined();
  });

  it('the email of a user of another enterprise: refused, and the user is not moved or changed', async () => {
    const other = await createUser(em, globex, 'viewer');
    const jti = randomUUID();
    await expectRefused(
      await launch(await token({ ent: acme.slug, sub: other.email, role: 'admin', name: 'Hijack', jti })),
      /cannot be matched/,
    );
    expect(await userRow(other.email)).toMatchObject({
      id: other.id,
      enterprise_id: globex.id,
      role: 'viewer',
      display_name: other.displayName,
    });
    // The whole launch rolled back, the jti too.
    expect(await count('launch_token_use where jti = ?', [jti])).toBe(0);
  });

  it('a role that is not admin or viewer', async () => {
    const email = uniqueEmail();
    await expectRefused(await launch(await token({ role: 'owner', sub: email })));
    await expectRefused(await launch(await token({ role: 'ADMIN', sub: email })));
    expect(await userRow(email)).toBeUndefined();
  });

  it('missing claims: ent, sub, role, jti, exp', async () => {
    const key = new TextEncoder().encode(SECRET);
    const sign = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(key);
    const full: Record<string, string | number> = { ent: acme.slug, sub: uniqueEmail(), role: 'admin', jti: randomUUID(), exp: now() + 60 };
    for (const missing of ['ent', 'sub', 'role', 'jti', 'exp']) {
      const claims: Record<string, string | number> = { ...full, jti: randomUUID() };
      delete claims[missing];
      await expectRefused(await launch(await sign(claims)));
    }
    await expectRefused(await launch(await sign({ ...full, jti: randomUUID(), sub: 'not-an-email' })));
    await expectRefused(await launch(await sign({ ...full, jti: randomUUID(), ent: 'Not A Slug' })));
    await expectRefused(await launch(await sign({ ...full, jti: 'short' })));
    // Everything present: accepted (the refusals above are for the claim each one lacks).
    expect((await launch(await sign({ ...full, jti: randomUUID() }))).statusCode).toBe(303);
  });

  it('no token, an empty one, garbage, or several', async () => {
    await expectRefused(await app.inject({ url: '/launch', headers: { ...HTTPS, 'sec-fetch-dest': 'iframe' } }));
    await expectRefused(await launch(''));
    await expectRefused(await launch('not.a.jwt'));
    await expectRefused(await app.inject({ url: '/launch?token=a&token=b', headers: { ...HTTPS, 'sec-fetch-dest': 'iframe' } }));
    await expectRefused(await launch('x'.repeat(5000)));
  });

  it('launch not configured (no CRM_LAUNCH_SECRET)', async () => {
    const plain = await buildTestApp(db, { trustProxy: 1 });
    try {
      await expectRefused(await launch(await token(), HTTPS, plain), /not set up/);
    } finally {
      await plain.close();
    }
  });

  it('a refused launch does not sign out the session the browser already had, nor show it', async () => {
    const ok = await launch(await token({ name: 'Still Here' }));
    const refused = await launch(await token({ exp: now() - 600 }), { ...HTTPS, cookie: cookiePair(ok) });
    expect(refused.statusCode).toBe(401);
    expect(refused.body).not.toContain('Still Here');
    const page = await app.inject({ url: '/endpoints', headers: { ...HTTPS, cookie: cookiePair(ok) } });
    expect(page.statusCode).toBe(200);
  });
});

/** Signs in with a password, as in a tab of the person's own: the session cookie pair. */
async function passwordSession(email: string): Promise<string> {
  const { res, cookie } = await injectSignIn(app, email, { headers: HTTPS });
  expect(res.statusCode).toBe(303);
  return cookie;
}
const page = (cookie: string, url = '/endpoints') => app.inject({ url, headers: { ...HTTPS, cookie } });

describe("a launch link never takes over the person's own browser (login CSRF)", () => {
  it("opened top-level (not in a frame) it is refused, unspent, with no session; in the CRM's iframe the same token works", async () => {
    const value = await token();
    for (const dest of ['document', undefined]) {
      const headers: Record<string, string> = { ...HTTPS, ...(dest ? { 'sec-fetch-dest': dest } : {}) };
      const res = await app.inject({ url: `/launch?token=${encodeURIComponent(value)}`, headers });
      await expectRefused(res, /inside your CRM’s page only, and it was opened on its own/);
    }
    expect((await launch(value, { ...HTTPS, 'sec-fetch-dest': 'iframe' })).statusCode).toBe(303);
  });

  it('CRM_LAUNCH_TOP_LEVEL=true lets a top-level launch start a session', async () => {
    const topLevel = await buildTestApp(db, { crmLaunchSecret: SECRET, trustProxy: 1, crmLaunchTopLevel: true });
    try {
      const res = await launch(await token(), { ...HTTPS, 'sec-fetch-dest': 'document' }, topLevel);
      expect(res.statusCode).toBe(303);
      expect(sessionCookie(res)).toBeDefined();
    } finally {
      await topLevel.close();
    }
  });

  it("never replaces another user's password session: a page naming both, the session kept, the token unspent", async () => {
    const topLevel = await buildTestApp(db, { crmLaunchSecret: SECRET, trustProxy: 1, crmLaunchTopLevel: true });
    try {
      const own = await createUser(em, acme, 'admin', await hashPassword(PASSWORD));
      const cookie = await passwordSession(own.email);
      const attacker = uniqueEmail();
      const value = await token({ ent: globex.slug, sub: attacker, name: 'Mallory Other' });
      for (const [dest, target] of [
        ['document', topLevel],
        ['iframe', app],
      ] as const) {
        // Top-level where allowed, or in a frame of the same site (which sends the ordinary cookie).
        const res = await launch(value, { ...HTTPS, 'sec-fetch-dest': dest, cookie }, target);
        expect(res.statusCode).toBe(409);
        const refused = readPage(res.body);
        expect(refused.heading).toBe('You are signed in as someone else');
        expect(refused.text).toContain(`You are signed in to SIM Link as ${own.displayName} (${own.email})`);
        expect(refused.text).toContain(`This link would sign you in as Mallory Other (${attacker}) instead`);
        // No session for the link's user: at most the person's own session cookie, unchanged.
        expect([undefined, cookie]).toContain(sessionCookie(res)?.split(';')[0]);
      }
      const mine = await page(cookie);
      expect(mine.statusCode).toBe(200);
      expect(readPage(mine.body).text).toContain(own.displayName);
      expect(await userRow(attacker)).toBeUndefined();
      // Not spent: the CRM's own frame (its own cookie partition, no password session there) can still use it.
      expect((await launch(value)).statusCode).toBe(303);
    } finally {
      await topLevel.close();
    }
  });

  it("the same user's own password session may become the launched one", async () => {
    const own = await createUser(em, acme, 'admin', await hashPassword(PASSWORD));
    const cookie = await passwordSession(own.email);
    const res = await launch(await token({ sub: own.email }), { ...HTTPS, cookie });
    expect(res.statusCode).toBe(303);
    expect(cookiePair(res)).not.toBe(cookie);
  });
});

describe("a launch's role is for the launched session only", () => {
  const canCreate = async (cookie: string) => (await page(cookie, '/endpoints/new')).statusCode;

  it('a viewer with a password launched as admin: admin in the launch, still a viewer at the next password sign-in', async () => {
    const viewer = await createUser(em, acme, 'viewer', await hashPassword(PASSWORD));
    const launched = await launch(await token({ sub: viewer.email, role: 'admin', name: undefined }));
    expect(launched.statusCode).toBe(303);
    expect(await canCreate(cookiePair(launched))).toBe(200);
    expect(await userRow(viewer.email)).toMatchObject({ role: 'viewer' });
    const signedIn = await passwordSession(viewer.email);
    expect(await canCreate(signedIn)).toBe(403);
    // The launched session keeps its own role meanwhile.
    expect(await canCreate(cookiePair(launched))).toBe(200);
  });

  it('an admin with a password launched as viewer: a viewer in the launch, still an admin with the password', async () => {
    const admin = await createUser(em, acme, 'admin', await hashPassword(PASSWORD));
    const launched = await launch(await token({ sub: admin.email, role: 'viewer' }));
    expect(await canCreate(cookiePair(launched))).toBe(403);
    const res = await app.inject({
      method: 'POST',
      url: '/endpoints',
      headers: { ...FORM, ...HTTPS, cookie: cookiePair(launched) },
      payload: formBody({ name: 'Viewer cannot' }),
    });
    expect(res.statusCode).toBe(403);
    expect(await canCreate(await passwordSession(admin.email))).toBe(200);
    expect(await userRow(admin.email)).toMatchObject({ role: 'admin' });
  });
});

describe('hardening', () => {
  it('a name with bidi-override or zero-width characters is refused (it would be shown and written into the history)', async () => {
    const email = uniqueEmail();
    for (const name of ['Ada\u202Enimda', 'Ada\u200BAdmin', '\uFEFFAda']) {
      await expectRefused(await launch(await token({ sub: email, name })), /invisible or text-direction characters/);
    }
    expect(await userRow(email)).toBeUndefined();
  });

  it('signing out of a launched session expires its SameSite=None; Partitioned cookie with the same attributes', async () => {
    const res = await launch(await token());
    const form = await page(cookiePair(res));
    const out = await app.inject({
      method: 'POST',
      url: '/sign-out',
      headers: { ...HTTPS, ...FORM, cookie: cookiePair(res) },
      payload: formBody({ _csrf: hidden(form.body, '_csrf') }),
    });
    expect(out.statusCode).toBe(303);
    const cleared = sessionCookie(out)!;
    expect(cleared).toMatch(/^simlink_session=;/);
    expect(cleared).toMatch(/; Expires=Thu, 01 Jan 1970 00:00:00 GMT/);
    expect(cleared).toMatch(/; SameSite=None/);
    expect(cleared).toMatch(/; Secure/);
    expect(cleared).toMatch(/; Partitioned/);
  });
});

describe('logging', () => {
  it('logs why a launch was refused, and never the token', async () => {
    const lines: string[] = [];
    const logged = await buildApp({
      orm: db.orm,
      config: testConfig({ crmLaunchSecret: SECRET, trustProxy: 1 }),
      logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } },
    });
    await logged.ready();
    try {
      const good = await token();
      const expired = await token({ exp: now() - 600 });
      expect((await launch(good, HTTPS, logged)).statusCode).toBe(303);
      expect((await launch(good, HTTPS, logged)).statusCode).toBe(401);
      expect((await launch(expired, HTTPS, logged)).statusCode).toBe(401);
      const all = lines.join('');
      expect(all).not.toContain(good);
      expect(all).not.toContain(expired);
      expect(all).not.toContain(good.split('.')[2]);
      const refusals = lines
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg === 'launch refused')
        .map((l) => l.reason);
      expect(refusals).toEqual(['replayed', 'expired']);
      expect(lines.map((l) => JSON.parse(l)).some((l) => l.msg === 'launched from the CRM; user created')).toBe(true);
    } finally {
      await logged.close();
    }
  });
});
