// Roles, tenant isolation, CSRF and sessions, over every route the app has. The routes are not listed
// here: they are read from the app itself (app.accessRules, filled by an onRoute hook), so a route added
// later is covered without touching this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp } from '../helpers/app.js';
import { csrfToken, hidden, injectSignIn, PASSWORD, signedIn, type Agent } from '../helpers/session.js';
import { hashPassword } from '../../src/domain/passwords.js';
import { deleteExpiredSessions, pruneOneTimeKeys } from '../../src/web/plugins/housekeeping.js';
import {
  createEnterprise,
  createUser,
  holdEndpoint,
  linkedEndpoint,
  readySim,
  type TestEndpoint,
  type TestEnterprise,
  type TestSim,
} from '../factories/index.js';
import { cookieHeader, setCookie } from '../helpers/cookies.js';
import { page } from '../helpers/page.js';

/** A form post as a browser sends it: URL-encoded (the app refuses JSON and every other body type with 415). */
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const formBody = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

import { createWebhook, sendTestEvent } from '../../src/domain/webhooks.js';
import { createBulkJob } from '../../src/domain/bulk.js';
import { WebhookMessageSchema } from '../../src/domain/entities.js';
import { actorFor } from '../domain/support.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;

/** One endpoint in each state (and its SIM), plus a Ready SIM, of an enterprise. */
interface Fleet {
  endpoints: Record<'hold' | 'pre_active' | 'active' | 'suspended', TestEndpoint>;
  sims: TestSim[];
  ready: TestSim;
  /** A webhook with one message, and a bulk change not yet applied (a draft). */
  webhook: number;
  message: number;
  job: number;
}

async function fleet(enterprise: TestEnterprise, prefix: string): Promise<Fleet> {
  const hold = await holdEndpoint(em, enterprise, { name: `${prefix} hold` });
  const sims: TestSim[] = [];
  const linked = {} as Record<'pre_active' | 'active' | 'suspended', TestEndpoint>;
  for (const status of ['pre_active', 'active', 'suspended'] as const) {
    const { endpoint, sim } = await linkedEndpoint(em, enterprise, status);
    await em.execute('update endpoint set name = ? where id = ?', [`${prefix} ${status}`, endpoint.id]);
    linked[status] = { ...endpoint, name: `${prefix} ${status}` };
    sims.push(sim);
  }
  const ready = await readySim(em, enterprise);
  const owner = await actorFor(em, enterprise, 'admin');
  const { webhook } = await createWebhook(
    em.fork(),
    owner,
    { url: 'https://crm.example.com/hooks', eventTypes: ['sim.linked'] },
    { allowPrivate: false },
  );
  await sendTestEvent(em.fork(), owner, webhook.id);
  const [message] = await em.fork().find(WebhookMessageSchema, { webhook: webhook.id });
  const job = await createBulkJob(
    em.fork(),
    owner,
    `${prefix}.csv`,
    [{ line: 2, endpointId: hold.id, action: 'link', iccid: ready.iccid, simId: ready.id }],
    'draft',
  );
  return { endpoints: { hold, ...linked }, sims: [...sims, ready], ready, webhook: webhook.id, message: message.id, job: job.id };
}

/** The ids of a fleet's records, by the resource that names them in a route's path. */
const idsOf = (fleet: Fleet, endpoint: number, sim = fleet.ready.id) => ({
  endpoints: endpoint,
  sims: sim,
  webhooks: fleet.webhook,
  messages: fleet.message,
  bulk: fleet.job,
});

let mine: Fleet;
let theirs: Fleet;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildTestApp(db);
  em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme Access');
  globex = await createEnterprise(em, 'Globex Foreignco');
  mine = await fleet(acme, 'Mine');
  theirs = await fleet(globex, 'Zanzibar');
  // Globex's history, so the lists have foreign events to leak if they were not scoped.
  const globexUser = await createUser(em, globex, 'admin');
  await em.execute(
    `insert into event (enterprise_id, actor_id, actor_name, action, endpoint_id, endpoint_name, sim_iccid)
     values (?, ?, 'Quentin Foreign', 'sim.linked', ?, ?, ?)`,
    [globex.id, globexUser.id, theirs.endpoints.active.id, theirs.endpoints.active.name, theirs.sims[1].iccid],
  );
});
afterAll(async () => {
  await app.close();
  await db.close();
});

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const changingRoutes = () => app.accessRules.filter((r) => !SAFE.has(r.method));

/** Everything a change could touch, to compare before and after a refused request. */
async function snapshot() {
  const fork = db.orm.em.fork();
  return {
    endpoints: await fork.execute('select id, name, status, sim_id, imei from endpoint order by id'),
    sims: await fork.execute('select id, status, endpoint_id from sim order by id'),
    events: await fork.execute('select count(*)::int as n from event'),
    keys: await fork.execute('select count(*)::int as n from operation_key'),
    users: await fork.execute('select id, enterprise_id, role, email from app_user order by id'),
  };
}

/** The path of a route with its parameters filled in; `ids` maps the resource before `:param` to an id. */
function fill(url: string, ids: Record<string, number>): string {
  return url.replace(/\/([a-z-]+)\/:([A-Za-z]+)/g, (_, resource: string) => {
    if (!(resource in ids)) throw new Error(`the access tests do not know which record "${resource}/:…" in ${url} names: add it`);
    return `/${resource}/${ids[resource]}`;
  });
}

/** A form body with whatever any of the app's forms might carry. */
const body = (csrf: string, extra: Record<string, string> = {}) =>
  new URLSearchParams({
    _csrf: csrf,
    key: `k${Math.random().toString(36).slice(2)}xxxxxxxxxxxxxxxx`.slice(0, 32),
    name: 'Should not exist',
    imei: '',
    iccid: '',
    ...extra,
  }).toString();

describe('the route table', () => {
  it('is read from the app and holds the state-changing routes of every screen', () => {
    const routes = changingRoutes().map((r) => `${r.method} ${r.url}`);
    expect(routes).toEqual(
      expect.arrayContaining([
        'POST /sign-in',
        'POST /sign-out',
        'POST /endpoints',
        'POST /endpoints/:id/sim',
        'POST /endpoints/:id/sim/delete',
        'POST /endpoints/:id/activate',
        'POST /endpoints/:id/suspend',
        'POST /endpoints/:id/resume',
      ]),
    );
    // Only signing in and out may skip a rule; everything else needs a user, a CSRF token and the admin role.
    const exempt = changingRoutes()
      .filter((r) => r.public || !r.csrf || r.viewerMayPost)
      .map((r) => `${r.method} ${r.url}`);
    expect(exempt.sort()).toEqual(['POST /sign-in', 'POST /sign-out']);
  });
});

describe('a viewer', () => {
  let viewer: Agent;
  let csrf: string;
  beforeAll(async () => {
    viewer = (await signedIn(app, em, acme, 'viewer')).agent;
    csrf = await csrfToken(viewer);
  });

  it('gets 403 on every state-changing route, whatever the record, and nothing changes', async () => {
    const routes = changingRoutes().filter((r) => !r.viewerMayPost && !r.public);
    expect(routes.length).toBeGreaterThanOrEqual(7);
    const before = await snapshot();
    let tried = 0;
    for (const route of routes) {
      // Each of the viewer's own endpoints, so the refusal is the role's and not the record's state.
      for (const endpoint of Object.values(mine.endpoints)) {
        const url = fill(route.url, idsOf(mine, endpoint.id));
        const res = await viewer
          .post(url)
          .type('form')
          .send(body(csrf, { sim_id: String(mine.ready.id), iccid: mine.ready.iccid }));
        expect(res.status, `${route.method} ${url}`).toBe(403);
        expect(res.text, url).toContain('Your role (viewer) can look but not change anything');
        tried++;
        if (!route.url.includes(':')) break;
      }
    }
    expect(tried).toBeGreaterThanOrEqual(routes.length);
    expect(await snapshot()).toEqual(before);
  });

  it('is refused by an htmx request too, with the message as a partial', async () => {
    const res = await viewer.post('/endpoints').set('HX-Request', 'true').type('form').send(body(csrf));
    expect(res.status).toBe(403);
    expect(page(res.text).isDocument).toBe(false);
    expect(page(res.text).text).toContain('Your role (viewer)');
  });

  it('sees the enterprise but no action buttons', async () => {
    const list = await viewer.get('/endpoints');
    expect(list.status).toBe(200);
    expect(
      page(list.text)
        .rows()
        .map((cells) => cells[0]),
    ).toContain('Mine hold');
    expect(page(list.text).link('Create endpoint')).toBeNull();
    for (const endpoint of Object.values(mine.endpoints)) {
      const res = await viewer.get(`/endpoints/${endpoint.id}`);
      expect(res.status).toBe(200);
      // The only button a viewer has is Sign out; no Link SIM either.
      expect(page(res.text).buttons()).toEqual(['Sign out']);
      expect(page(res.text).link('Link SIM')).toBeNull();
    }
  });

  it('may still sign out', async () => {
    const { agent } = await signedIn(app, em, acme, 'viewer');
    const res = await agent
      .post('/sign-out')
      .type('form')
      .send({ _csrf: await csrfToken(agent) });
    expect(res.status).toBe(303);
    expect((await agent.get('/endpoints')).status).toBe(303);
  });
});

describe('another enterprise', () => {
  let admin: Agent;
  let csrf: string;
  beforeAll(async () => {
    admin = (await signedIn(app, em, acme, 'admin')).agent;
    csrf = await csrfToken(admin);
  });

  /** The 404 page's heading and message, to compare a foreign id's answer with a missing one's. */
  const notFound = (text: string) => {
    const shown = page(text);
    return { heading: shown.heading, message: shown.within(shown.byId('error-message')!).text };
  };

  it('its ids are answered 404 on every GET route with an id, exactly like ids that do not exist', async () => {
    const routes = app.accessRules.filter((r) => r.method === 'GET' && r.url.includes('/:'));
    expect(routes.length).toBeGreaterThanOrEqual(6);
    for (const route of routes) {
      const missing = await admin.get(
        fill(route.url, {
          endpoints: 2_000_000_000,
          sims: 2_000_000_000,
          webhooks: 2_000_000_000,
          messages: 2_000_000_000,
          bulk: 2_000_000_000,
        }),
      );
      expect(missing.status, route.url).toBe(404);
      for (const endpoint of Object.values(theirs.endpoints)) {
        const url = fill(route.url, idsOf(theirs, endpoint.id));
        const res = await admin.get(url);
        expect(res.status, url).toBe(404);
        expect(notFound(res.text), url).toEqual(notFound(missing.text));
        expect(res.text).not.toContain('Zanzibar');
      }
    }
  });

  it('its ids are answered 404 on every state-changing route with an id, and nothing changes', async () => {
    const routes = changingRoutes().filter((r) => r.url.includes('/:'));
    expect(routes.length).toBeGreaterThanOrEqual(5);
    const before = await snapshot();
    for (const route of routes) {
      for (const endpoint of Object.values(theirs.endpoints)) {
        const url = fill(route.url, idsOf(theirs, endpoint.id));
        // Offer one of our own Ready SIMs: only the endpoint is foreign.
        const res = await admin
          .post(url)
          .type('form')
          .send(body(csrf, { sim_id: String(mine.ready.id) }));
        expect(res.status, url).toBe(404);
        expect(res.text).not.toContain('Zanzibar');
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it('its SIMs cannot be chosen, confirmed or linked to our endpoints', async () => {
    const before = await snapshot();
    const confirm = await admin.get(`/endpoints/${mine.endpoints.hold.id}/sim/confirm?sim_id=${theirs.ready.id}`);
    expect(confirm.status).toBe(422);
    expect(confirm.text).not.toContain(theirs.ready.iccid);
    const link = await admin
      .post(`/endpoints/${mine.endpoints.hold.id}/sim`)
      .type('form')
      .send(body(csrf, { sim_id: String(theirs.ready.id) }));
    expect(link.status).toBe(404);
    const choose = await admin.get(`/endpoints/new/sim/choose?sim_id=${theirs.ready.id}&name=X`);
    expect(choose.status).toBe(422);
    expect(choose.text).not.toContain(theirs.ready.iccid);
    const typed = await admin
      .post('/endpoints')
      .type('form')
      .send(body(csrf, { name: 'Typed foreign ICCID', iccid: theirs.ready.iccid }));
    expect(typed.status).toBe(422);
    expect(await snapshot()).toEqual(before);
  });

  it('its rows never appear in any list, picker or search', async () => {
    const markers = ['Zanzibar', 'Globex Foreignco', 'Quentin Foreign', ...theirs.sims.flatMap((s) => [s.iccid, s.imsi])];
    const pages = app.accessRules
      .filter((r) => r.method === 'GET' && !r.url.includes(':') && !r.url.includes('*') && !r.public)
      .map((r) => r.url);
    expect(pages).toEqual(expect.arrayContaining(['/endpoints', '/events', '/endpoints/new/sim']));
    const searches = [
      ...pages,
      '/endpoints?q=Zanzibar',
      '/endpoints?status=active',
      `/endpoints/new/sim?q=${theirs.ready.iccid.slice(0, 10)}`,
      `/endpoints/new/sim?q=${theirs.ready.imsi.slice(0, 8)}`,
      `/endpoints/${mine.endpoints.hold.id}/sim/new?q=${theirs.ready.iccid}`,
      `/events?action=sim.linked`,
    ];
    for (const url of searches) {
      const res = await admin.get(url);
      expect([200, 303, 422], url).toContain(res.status);
      // The page repeats what was searched for; any other trace of a foreign row is a leak.
      const q = new URL(url, 'http://x').searchParams.get('q');
      const text = q ? res.text.split(q).join('') : res.text;
      for (const marker of markers) expect(text, `${url} shows ${marker}`).not.toContain(marker);
    }
    // …while our own rows do appear (the check above is not vacuous).
    expect(page((await admin.get('/endpoints?q=Mine')).text).link('Mine hold')).not.toBeNull();
  });
});

describe('CSRF', () => {
  let admin: Agent;
  let other: Agent;
  beforeAll(async () => {
    admin = (await signedIn(app, em, acme, 'admin')).agent;
    other = (await signedIn(app, em, acme, 'admin')).agent;
  });

  const created = async (name: string) =>
    (await db.orm.em.fork().execute<{ n: number }[]>('select count(*)::int as n from endpoint where name = ?', [name]))[0].n;

  it("a state-changing request without a token, with a wrong one, or with another session's is 403 and changes nothing", async () => {
    const form = await admin.get('/endpoints/new');
    const key = hidden(form.text, 'key');
    const otherToken = await csrfToken(other);
    const before = await snapshot();
    const attempts: Record<string, string | undefined> = {
      missing: undefined,
      empty: '',
      wrong: 'not-a-token',
      tampered: `${hidden(form.text, '_csrf').slice(0, -2)}xx`,
      "another session's": otherToken,
    };
    for (const [what, token] of Object.entries(attempts)) {
      const fields: Record<string, string> = { key, name: 'CSRF probe' };
      if (token !== undefined) fields._csrf = token;
      const res = await admin.post('/endpoints').type('form').send(fields);
      expect(res.status, what).toBe(403);
      expect(res.text, what).toContain('This form has expired or did not come from SIM Link');
    }
    // The same from an htmx request: the message as a partial (htmx swaps 403s).
    const htmx = await admin.post('/endpoints').set('HX-Request', 'true').type('form').send({ key, name: 'CSRF probe' });
    expect(htmx.status).toBe(403);
    expect(page(htmx.text).isDocument).toBe(false);
    expect(page(htmx.text).text).toContain('This form has expired');
    expect(await created('CSRF probe')).toBe(0);
    expect(await snapshot()).toEqual(before);

    // The control: the form's own token works, as a field or as htmx's header.
    const ok = await admin
      .post('/endpoints')
      .type('form')
      .send({ _csrf: hidden(form.text, '_csrf'), key, name: 'CSRF probe' });
    expect(ok.status).toBe(303);
    expect(await created('CSRF probe')).toBe(1);
    const again = await admin.get('/endpoints/new');
    const viaHeader = await admin
      .post('/endpoints')
      .set('X-CSRF-Token', hidden(again.text, '_csrf'))
      .type('form')
      .send({ key: hidden(again.text, 'key'), name: 'CSRF header probe' });
    expect(viaHeader.status).toBe(303);
  });

  it('every state-changing route that needs a token refuses a request without one', async () => {
    const before = await snapshot();
    for (const route of changingRoutes().filter((r) => r.csrf)) {
      const url = fill(route.url, idsOf(mine, mine.endpoints.hold.id));
      const res = await admin
        .post(url)
        .type('form')
        .send({ sim_id: String(mine.ready.id), name: 'No token' });
      expect(res.status, url).toBe(403);
    }
    expect(await snapshot()).toEqual(before);
  });
});

describe('sessions', () => {
  let hash: string;
  beforeAll(async () => {
    hash = await hashPassword(PASSWORD);
  });

  async function signIn(): Promise<{ cookie: string; userId: number }> {
    const user = await createUser(em, acme, 'admin', hash);
    const { res, cookie } = await injectSignIn(app, user.email);
    expect(res.statusCode).toBe(303);
    expect(setCookie(res)).toMatch(/HttpOnly/);
    expect(setCookie(res)).toMatch(/SameSite=Lax/);
    return { cookie, userId: user.id };
  }
  const get = (cookie: string, url = '/endpoints') => app.inject({ url, headers: { cookie } });
  const isSignedOut = (res: LightMyRequestResponse) => res.statusCode === 303 && String(res.headers.location).startsWith('/sign-in');
  const rows = async (userId: number) =>
    (await db.orm.em.fork().execute<{ n: number }[]>('select count(*)::int as n from session where user_id = ?', [userId]))[0].n;

  it('a session ended by sign-out cannot be used again (the old cookie is replayed)', async () => {
    const { cookie, userId } = await signIn();
    const page = await get(cookie);
    expect(page.statusCode).toBe(200);
    const out = await app.inject({
      method: 'POST',
      url: '/sign-out',
      headers: { ...FORM, cookie },
      payload: formBody({ _csrf: hidden(page.body, '_csrf') }),
    });
    expect(out.statusCode).toBe(303);
    expect(await rows(userId)).toBe(0);
    expect(isSignedOut(await get(cookie))).toBe(true);
    const form = await app.inject({
      method: 'POST',
      url: '/endpoints',
      headers: { ...FORM, cookie },
      payload: formBody({ _csrf: hidden(page.body, '_csrf'), name: 'After sign-out' }),
    });
    expect(isSignedOut(form)).toBe(true);
    expect(
      (await db.orm.em.fork().execute<{ n: number }[]>("select count(*)::int as n from endpoint where name = 'After sign-out'"))[0].n,
    ).toBe(0);
  });

  it('rotates the session id at sign-in: a cookie from before is not promoted', async () => {
    const user = await createUser(em, acme, 'admin', hash);
    // A session made before sign-in (a flash-carrying anonymous one would do; here: an earlier sign-in).
    const { cookie: before } = await signIn();
    const res = await app.inject({
      method: 'POST',
      url: '/sign-in',
      headers: { ...FORM, cookie: before },
      payload: formBody({ email: user.email, password: PASSWORD }),
    });
    const after = cookieHeader(res, 'simlink_session');
    expect(after).not.toBe(before);
    expect(isSignedOut(await get(before))).toBe(true);
    expect((await get(after)).statusCode).toBe(200);
  });

  it('ends after the idle time: an expired row is refused and deleted when met', async () => {
    const { cookie, userId } = await signIn();
    await db.orm.em.fork().execute("update session set expires_at = now() - interval '1 second' where user_id = ?", [userId]);
    expect(isSignedOut(await get(cookie))).toBe(true);
    expect(await rows(userId)).toBe(0);
  });

  it('slides the idle expiry on use, never beyond the absolute lifetime', async () => {
    const { cookie, userId } = await signIn();
    const expiry = async () =>
      (
        await db.orm.em
          .fork()
          .execute<{ s: number }[]>('select extract(epoch from expires_at - now())::int as s from session where user_id = ?', [userId])
      )[0].s;
    const idle = app.config.sessionIdleMinutes * 60;
    expect(await expiry()).toBeLessThanOrEqual(idle);
    await db.orm.em.fork().execute("update session set expires_at = now() + interval '2 minutes' where user_id = ?", [userId]);
    expect((await get(cookie)).statusCode).toBe(200);
    expect(await expiry()).toBeGreaterThan(idle - 60);
    // 11 h 59 min into a 12 h session: the expiry slides only up to the absolute end.
    const signedInAt = Date.now() - (app.config.sessionMaxHours * 3600 - 60) * 1000;
    await db.orm.em
      .fork()
      .execute(
        `update session set expires_at = now() + interval '10 seconds', data = jsonb_set(data, '{signedInAt}', to_jsonb(?::bigint)) where user_id = ?`,
        [signedInAt, userId],
      );
    expect((await get(cookie)).statusCode).toBe(200);
    expect(await expiry()).toBeLessThanOrEqual(61);
  });

  it('ends after the absolute lifetime, however active, and the next sign-in on that browser works', async () => {
    const { cookie, userId } = await signIn();
    const signedInAt = Date.now() - (app.config.sessionMaxHours * 3600 + 60) * 1000;
    await db.orm.em
      .fork()
      .execute(`update session set data = jsonb_set(data, '{signedInAt}', to_jsonb(?::bigint)) where user_id = ?`, [signedInAt, userId]);
    expect(isSignedOut(await get(cookie))).toBe(true);
    expect(await rows(userId)).toBe(0);
    // The same old cookie on the sign-in form: a new session, not an error.
    const user = await createUser(em, acme, 'admin', hash);
    const again = await app.inject({
      method: 'POST',
      url: '/sign-in',
      headers: { ...FORM, cookie },
      payload: formBody({ email: user.email, password: PASSWORD }),
    });
    expect(again.statusCode).toBe(303);
  });

  it('expired rows are swept at start and by the hourly sweep; live ones stay', async () => {
    const { userId: live } = await signIn();
    const { userId: stale } = await signIn();
    await db.orm.em.fork().execute("update session set expires_at = now() - interval '1 hour' where user_id = ?", [stale]);
    expect(await deleteExpiredSessions(db.orm.em.fork())).toBeGreaterThanOrEqual(1);
    expect(await rows(stale)).toBe(0);
    expect(await rows(live)).toBe(1);

    const { userId: stale2 } = await signIn();
    await db.orm.em.fork().execute("update session set expires_at = now() - interval '1 hour' where user_id = ?", [stale2]);
    const restarted = await buildTestApp(db);
    await restarted.close();
    expect(await rows(stale2)).toBe(0);
    expect(await rows(live)).toBe(1);
  });

  it('one-time keys older than a day are pruned; younger ones stay', async () => {
    const { userId } = await signIn();
    const insert = `insert into operation_key (key, action, enterprise_id, user_id, outcome, created_at) values (?, 'test', ?, ?, '{}', now() - ?::interval)`;
    await db.orm.em.fork().execute(insert, ['housekeeping-old', acme.id, userId, '25 hours']);
    await db.orm.em.fork().execute(insert, ['housekeeping-new', acme.id, userId, '1 hour']);
    expect(await pruneOneTimeKeys(db.orm.em.fork())).toBeGreaterThanOrEqual(1);
    const left = await db.orm.em.fork().execute(`select key from operation_key where key like 'housekeeping-%'`);
    expect(left).toEqual([{ key: 'housekeeping-new' }]);
  });

  it("a deleted user's session signs nobody in", async () => {
    const { cookie, userId } = await signIn();
    await db.orm.em.fork().execute('delete from app_user where id = ?', [userId]);
    expect(isSignedOut(await get(cookie))).toBe(true);
  });
});

describe('unknown addresses', () => {
  it('are 404, signed in or not', async () => {
    expect((await app.inject('/no-such-page')).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/no-such-page' })).statusCode).toBe(404);
  });
});
