// The endpoint screens over HTTP: sign-in, the list, Create endpoint, the endpoint page — status, what the
// page says, and the data read back from the database after each POST.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import supertest from 'supertest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { firstRow, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { csrfToken, hidden, PASSWORD, signedIn, type Agent } from '../helpers/session.js';
import { createEnterprise, holdEndpoint, linkedEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import { findViolations } from '../../src/domain/invariants.js';
import { cookieHeader } from '../helpers/cookies.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Agent;
let viewer: Agent;

beforeAll(async () => {
  ({ db, app, em, acme, globex } = await routeTestWorld());
  admin = (await signedIn(app, em, acme, 'admin')).agent;
  viewer = (await signedIn(app, em, acme, 'viewer')).agent;
});
afterAll(async () => {
  expect(await findViolations(db.orm.em.fork())).toEqual([]);
  await app.close();
  await db.close();
});

const row = (sql: string, params: unknown[]) => firstRow(db, sql, params);

/** Create endpoint as a browser does it: open the form, send it back with its CSRF token, one-time key and `fields`. */
async function createThroughForm(agent: Agent, fields: Record<string, string>) {
  const form = await agent.get('/endpoints/new');
  return agent
    .post('/endpoints')
    .type('form')
    .send({ _csrf: hidden(form.text, '_csrf'), key: hidden(form.text, 'key'), ...fields });
}

describe('sign in and out', () => {
  it('shows the form with Email, Password and Sign in', async () => {
    const res = await supertest(app.server).get('/sign-in');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<label for="email">Email</label>');
    expect(res.text).toContain('<label for="password">Password</label>');
    expect(res.text).toMatch(/<button[^>]*>Sign in<\/button>/);
  });

  it('sends a signed-out visitor to sign in, and back afterwards', async () => {
    const res = await supertest(app.server).get('/endpoints?status=hold');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/sign-in?next=%2Fendpoints%3Fstatus%3Dhold');
  });

  it('answers wrong credentials with one generic message (422), keeping the email', async () => {
    const res = await supertest(app.server).post('/sign-in').type('form').send({ email: 'nobody@example.test', password: 'x' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('<title>Error: Sign in – SIM Link</title>');
    expect(res.text).toContain('There is a problem');
    expect(res.text).toContain('The email address or password is not right');
    expect(res.text).toContain('value="nobody@example.test"');
  });

  it('sign-out ends the session on the server: the old cookie no longer works', async () => {
    const { user } = await signedIn(app, em, acme, 'admin');
    const signIn = await supertest(app.server).post('/sign-in').type('form').send({ email: user.email, password: PASSWORD });
    const cookie = cookieHeader(signIn);
    const page = await supertest(app.server).get('/endpoints').set('Cookie', cookie);
    expect(page.status).toBe(200);
    const out = await supertest(app.server)
      .post('/sign-out')
      .set('Cookie', cookie)
      .type('form')
      .send({ _csrf: hidden(page.text, '_csrf') });
    expect(out.status).toBe(303);
    const replay = await supertest(app.server).get('/endpoints').set('Cookie', cookie);
    expect(replay.status).toBe(303);
    expect(replay.headers.location).toContain('/sign-in');
  });

  it('sign-out ends on the sign-in page saying "You have signed out", in the status region, once', async () => {
    const { agent } = await signedIn(app, em, acme, 'viewer');
    const out = await agent
      .post('/sign-out')
      .type('form')
      .send({ _csrf: await csrfToken(agent) });
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/sign-in');
    const page = await agent.get('/sign-in');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<h1>Sign in</h1>');
    expect(page.text).toContain(
      '<div id="messages" role="status" aria-live="polite" class="messages"><p class="flash flash-success">You have signed out</p></div>',
    );
    // Shown once: a reload of the sign-in page no longer says it, and neither does a first visit.
    const again = await agent.get('/sign-in');
    expect(again.text).not.toContain('You have signed out');
    expect((await supertest(app.server).get('/sign-in')).text).not.toContain('You have signed out');
    // The session is gone: the old agent is sent to sign in.
    expect((await agent.get('/endpoints')).status).toBe(303);
  });
});

describe('endpoints list', () => {
  let list: TestEnterprise;
  let agent: Agent;
  beforeAll(async () => {
    list = await createEnterprise(em, 'Listing');
    agent = (await signedIn(app, em, list, 'admin')).agent;
    for (let i = 1; i <= 30; i++) await holdEndpoint(em, list, { name: `Pump ${String(i).padStart(2, '0')}` });
    await linkedEndpoint(em, list, 'active');
  });

  it('renders the full page, or only the results for htmx', async () => {
    const full = await agent.get('/endpoints');
    expect(full.status).toBe(200);
    expect(full.headers.vary).toContain('HX-Request');
    expect(full.text).toContain('<h1>Endpoints</h1>');
    expect(full.text).toMatch(
      /<th scope="col">Name<\/th><th scope="col">Status<\/th><th scope="col">ICCID<\/th><th scope="col">IMEI<\/th>/,
    );
    expect(full.text).toContain('>Create endpoint</a>');
    const partial = await agent.get('/endpoints').set('HX-Request', 'true');
    expect(partial.text.trimStart()).toMatch(/^<div id="endpoints-results"/);
    expect(partial.text).not.toContain('<html');
    const restore = await agent.get('/endpoints').set('HX-Request', 'true').set('HX-History-Restore-Request', 'true');
    expect(restore.text).toContain('<html');
  });

  // The cursors are findByCursor's opaque ones (base64url of the last row's name and id).
  it('pages by keyset, 25 at a time, Next and Previous', async () => {
    const first = await agent.get('/endpoints?status=hold');
    expect(first.text.match(/<a href="\/endpoints\/\d+">Pump/g)).toHaveLength(25);
    const next = first.text.match(/href="(\/endpoints\?status=hold&amp;after=[A-Za-z0-9_-]+)"/)![1].replace('&amp;', '&');
    const second = await agent.get(next);
    expect(second.text.match(/<a href="\/endpoints\/\d+">Pump/g)).toHaveLength(5);
    expect(second.text).toContain('Pump 26');
    expect(second.text).not.toContain('>Next<');
    const previous = second.text.match(/href="(\/endpoints\?status=hold&amp;before=[A-Za-z0-9_-]+)"/)![1].replace('&amp;', '&');
    const back = await agent.get(previous);
    expect(back.text).toContain('Pump 01');
    expect(back.text).toContain('Pump 25');
    expect(back.text).not.toContain('Pump 26');
  });

  it('filters by status and searches by name or ICCID prefix', async () => {
    const active = await agent.get('/endpoints?status=active');
    expect(active.text).not.toContain('Pump');
    expect(active.text.match(/<a href="\/endpoints\/\d+">/g)).toHaveLength(1);
    const byName = await agent.get('/endpoints?q=pump 0');
    expect(byName.text.match(/<a href="\/endpoints\/\d+">Pump 0/g)).toHaveLength(9);
    const linked = await row(`select s.iccid from endpoint e join sim s on s.id = e.sim_id where e.enterprise_id = ?`, [list.id]);
    const byIccid = await agent.get(`/endpoints?q=${linked.iccid.slice(0, 17)}`);
    expect(byIccid.text).toContain(linked.iccid);
    const none = await agent.get('/endpoints?q=zzz');
    expect(none.text).toContain('No endpoints match “zzz”');
  });

  it('never shows another enterprise’s endpoints', async () => {
    await holdEndpoint(em, globex, { name: 'Pump secret' });
    const res = await agent.get('/endpoints?q=pump');
    expect(res.text).not.toContain('Pump secret');
  });
});

describe('create endpoint', () => {
  it('shows the form with its labels', async () => {
    const res = await admin.get('/endpoints/new');
    expect(res.status).toBe(200);
    for (const label of ['Name', 'IMEI (optional)', 'Activate Immediately', 'SIM to link now (optional): ICCID']) {
      expect(res.text).toContain(`>${label}</label>`);
    }
  });

  it('creates an endpoint on Hold and says so on its page', async () => {
    const res = await createThroughForm(admin, { name: 'Meter 12', imei: '49-015420-323751-8' });
    expect(res.status).toBe(303);
    const id = Number(res.headers.location.split('/').pop());
    expect(await row('select name, imei, status, activate_immediately, sim_id from endpoint where id = ?', [id])).toEqual({
      name: 'Meter 12',
      imei: '490154203237518',
      status: 'hold',
      activate_immediately: false,
      sim_id: null,
    });
    const page = await admin.get(res.headers.location);
    expect(page.text).toContain('Endpoint &#39;Meter 12&#39; created successfully');
    expect(page.text).toContain('>Link SIM</a>');
  });

  it.each([
    [true, 'active'],
    [false, 'pre_active'],
  ])('links a typed ICCID at once (Activate Immediately %s → %s)', async (activateImmediately, status) => {
    const sim = await readySim(em, acme);
    const res = await createThroughForm(admin, {
      name: 'Tracker',
      iccid: `${sim.iccid.slice(0, 4)} ${sim.iccid.slice(4)}`,
      ...(activateImmediately ? { activate_immediately: 'on' } : {}),
    });
    expect(res.status).toBe(303);
    const id = Number(res.headers.location.split('/').pop());
    expect(await row('select status, sim_id from endpoint where id = ?', [id])).toEqual({ status, sim_id: sim.id });
    expect(await row('select status, endpoint_id from sim where id = ?', [sim.id])).toEqual({ status, endpoint_id: id });
  });

  it('answers bad input with the GOV.UK error pattern (422), values kept, nothing created', async () => {
    const before = await row('select count(*)::int as n from endpoint', []);
    const res = await createThroughForm(admin, { name: '', imei: '490154203237519', iccid: '8944 123', activate_immediately: 'on' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('<title>Error: Create endpoint – SIM Link</title>');
    expect(res.text).toContain('<h2 id="error-summary-title">There is a problem</h2>');
    expect(res.text).toContain('<a href="#name">Enter a name for the endpoint</a>');
    expect(res.text).toContain('<a href="#imei">IMEI check digit is wrong</a>');
    expect(res.text).toContain('<a href="#iccid">ICCID must be 19 or 20 digits</a>');
    expect(res.text).toContain('value="490154203237519"');
    expect(res.text).toMatch(/id="activate_immediately"[^>]*checked/);
    expect(await row('select count(*)::int as n from endpoint', [])).toEqual(before);
  });

  it('refuses an IMEI another endpoint of the enterprise has, naming it (a device has one IMEI); values kept, nothing created', async () => {
    const first = await createThroughForm(admin, { name: 'Cold store sensor', imei: '356938035643809' });
    expect(first.status).toBe(303);
    const before = await row('select count(*)::int as n from endpoint', []);
    const res = await createThroughForm(admin, { name: 'Second sensor', imei: '35-693803-564380-9', activate_immediately: 'on' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('<title>Error: Create endpoint – SIM Link</title>');
    const message =
      'IMEI 356938035643809 is already used by endpoint &#39;Cold store sensor&#39;; a device has one IMEI, so check the number';
    expect(res.text).toContain(`<a href="#imei">${message}</a>`);
    expect(res.text.split(message)).toHaveLength(3); // in the summary and beside the field
    expect(res.text).toContain('value="Second sensor"');
    expect(res.text).toContain('value="35-693803-564380-9"');
    expect(res.text).toMatch(/id="activate_immediately"[^>]*checked/);
    expect(await row('select count(*)::int as n from endpoint', [])).toEqual(before);
    // Another enterprise may have a device with that IMEI in its own records.
    const other = await signedIn(app, em, globex, 'admin');
    const foreign = await createThroughForm(other.agent, { name: 'Globex sensor', imei: '356938035643809' });
    expect(foreign.status).toBe(303);
  });

  it('refuses a SIM of another enterprise as if it did not exist', async () => {
    const foreign = await readySim(em, globex);
    const res = await createThroughForm(admin, { name: 'Sneaky', iccid: foreign.iccid });
    expect(res.status).toBe(422);
    expect(res.text).toContain(`There is no SIM with ICCID ${foreign.iccid} in your inventory`);
    expect(await row('select status from sim where id = ?', [foreign.id])).toEqual({ status: 'ready' });
  });

  it('a double-submitted form creates one endpoint', async () => {
    const form = await admin.get('/endpoints/new');
    const body = { _csrf: hidden(form.text, '_csrf'), key: hidden(form.text, 'key'), name: 'Once only' };
    const [a, b] = await Promise.all([admin.post('/endpoints').type('form').send(body), admin.post('/endpoints').type('form').send(body)]);
    expect(a.status).toBe(303);
    expect(b.headers.location).toBe(a.headers.location);
    expect(await row(`select count(*)::int as n from endpoint where name = 'Once only'`, [])).toEqual({ n: 1 });
  });

  it('without a CSRF token: 403, nothing created', async () => {
    const res = await admin.post('/endpoints').type('form').send({ name: 'No token' });
    expect(res.status).toBe(403);
    expect(res.text).toContain('This form has expired or did not come from SIM Link');
    expect(await row(`select count(*)::int as n from endpoint where name = 'No token'`, [])).toEqual({ n: 0 });
  });

  it('a viewer gets 403 and nothing is created', async () => {
    const token = await csrfToken(viewer);
    const res = await viewer.post('/endpoints').type('form').send({ _csrf: token, name: 'Viewer made' });
    expect(res.status).toBe(403);
    expect(await row(`select count(*)::int as n from endpoint where name = 'Viewer made'`, [])).toEqual({ n: 0 });
  });
});

describe('endpoint page', () => {
  it('shows details, the SIM panel and the buttons its state allows', async () => {
    const { endpoint, sim } = await linkedEndpoint(em, acme, 'active');
    const res = await admin.get(`/endpoints/${endpoint.id}`);
    expect(res.status).toBe(200);
    for (const text of [
      'Activate Immediately',
      'IMEI',
      'Linked SIM',
      'EID',
      'ICCID',
      'IMSI',
      'MSISDN',
      'SIM status',
      sim.iccid,
      sim.imsi,
      'History',
    ]) {
      expect(res.text).toContain(text);
    }
    expect(res.text).toContain('>Suspend</button>');
    expect(res.text).toContain('>De-link</button>');
    expect(res.text).not.toContain('>Link SIM<');
    expect(res.text).not.toContain('>Activate</button>');
    expect(res.text).not.toContain('>Resume</button>');
  });

  it('shows an empty value as "None", as the lists do (one way everywhere, never "—" or "Not recorded")', async () => {
    const { endpoint, sim } = await linkedEndpoint(em, acme, 'active');
    const page = await admin.get(`/endpoints/${endpoint.id}`);
    expect(page.text).toMatch(/<dt>IMEI<\/dt><dd class="mono">None<\/dd>/);
    expect(page.text).toMatch(/<dt>MSISDN<\/dt><dd class="mono">None<\/dd>/);
    const noEid = await holdEndpoint(em, acme, { name: 'No identifiers yet' });
    const list = await admin.get(`/endpoints?q=${encodeURIComponent(noEid.name)}`);
    expect(list.text).toMatch(
      /No identifiers yet<\/a><\/td>\s*<td><span class="status status-hold">Hold<\/span><\/td>\s*<td class="mono">None<\/td>\s*<td class="mono">None<\/td>/,
    );
    const sims = await admin.get(`/sims?q=${sim.iccid}`);
    expect(sims.text).toMatch(new RegExp(`<td class="mono">${sim.iccid}</td>[\\s\\S]*?<td class="mono">None</td>`));
    for (const res of [page, list, sims]) {
      expect(res.text).not.toContain('—');
      expect(res.text).not.toContain('Not recorded');
    }
  });

  it.each([
    ['pre_active', ['Activate', 'Swap SIM', 'De-link']],
    ['suspended', ['Resume', 'Swap SIM', 'De-link']],
  ] as const)('a %s endpoint offers %j', async (status, buttons) => {
    const { endpoint } = await linkedEndpoint(em, acme, status);
    const res = await admin.get(`/endpoints/${endpoint.id}`);
    const shown = [...res.text.matchAll(/<button type="submit" class="button[^"]*" id="\w+-button"[^>]*>([^<]+)<\/button>/g)].map(
      (m) => m[1],
    );
    expect(shown.sort()).toEqual([...buttons].sort());
  });

  it('a viewer sees no action buttons', async () => {
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    const hold = await holdEndpoint(em, acme);
    for (const id of [endpoint.id, hold.id]) {
      const res = await viewer.get(`/endpoints/${id}`);
      expect(res.status).toBe(200);
      expect(res.text).not.toMatch(/>(Link SIM|De-link|Activate|Suspend|Resume)</);
    }
  });

  it('another enterprise’s endpoint, an unknown one and a malformed id are all 404', async () => {
    const foreign = await holdEndpoint(em, globex);
    for (const path of [`/endpoints/${foreign.id}`, '/endpoints/99999999', '/endpoints/abc', '/endpoints/1e3']) {
      const res = await admin.get(path);
      expect(res.status, path).toBe(404);
      expect(res.text).toContain('The endpoint was not found.');
    }
  });
});

it('the demo password is never a constant of the tests', () => {
  expect(PASSWORD).not.toBe('demo-password');
});

describe('rough edges', () => {
  it('a NUL character anywhere is refused with 400, nothing created', async () => {
    expect((await admin.get('/endpoints?q=a%00b')).status).toBe(400);
    const res = await createThroughForm(admin, { name: 'a\u0000b' });
    expect(res.status).toBe(400);
    expect(res.text).toContain('NUL character');
    expect(await row(`select count(*)::int as n from endpoint where name like 'a%b'`, [])).toEqual({ n: 0 });
  });

  it('signed out, a page sends the browser to sign in: 303, or for htmx HX-Redirect with 401 (a full page load)', async () => {
    const plain = await supertest(app.server).get('/endpoints?status=hold');
    expect(plain.status).toBe(303);
    expect(plain.headers.location).toBe('/sign-in?next=%2Fendpoints%3Fstatus%3Dhold');
    const htmx = await supertest(app.server).get('/endpoints?status=hold').set('HX-Request', 'true');
    expect(htmx.status).toBe(401);
    expect(htmx.headers['hx-redirect']).toBe('/sign-in?next=%2Fendpoints%3Fstatus%3Dhold');
    // Signed out, bad input is still first of all a reason to sign in.
    expect((await supertest(app.server).get('/endpoints/abc')).status).toBe(303);
  });

  it('signing out without a session goes to sign in, not to a CSRF refusal', async () => {
    const res = await supertest(app.server).post('/sign-out').type('form').send({});
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/sign-in');
  });

  it('a confirmation key used for another change keeps the Create endpoint form, with the reason (409)', async () => {
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    const suspend = await admin.get(`/endpoints/${endpoint.id}/suspend`);
    const key = hidden(suspend.text, 'key');
    expect(
      (
        await admin
          .post(`/endpoints/${endpoint.id}/suspend`)
          .type('form')
          .send({ _csrf: hidden(suspend.text, '_csrf'), key })
      ).status,
    ).toBe(303);
    const form = await admin.get('/endpoints/new');
    const res = await admin
      .post('/endpoints')
      .type('form')
      .send({ _csrf: hidden(form.text, '_csrf'), key, name: 'Reused key', imei: '490154203237518' });
    expect(res.status).toBe(409);
    expect(res.text).toContain('There is a problem');
    expect(res.text).toContain('This confirmation form was already used.');
    expect(res.text).toContain('value="Reused key"');
    expect(res.text).toContain('value="490154203237518"');
    expect(await row(`select count(*)::int as n from endpoint where name = 'Reused key'`, [])).toEqual({ n: 0 });
  });

  it('a stale action button under htmx reloads the endpoint page with the reason instead of drawing a page in the dialog', async () => {
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    const res = await admin.get(`/endpoints/${endpoint.id}/activate`).set('HX-Request', 'true');
    expect(res.status).toBe(409);
    expect(res.headers['hx-redirect']).toBe(`/endpoints/${endpoint.id}`);
    const page = await admin.get(`/endpoints/${endpoint.id}`);
    expect(page.text).toContain('only a Pre-Active endpoint can be activated');
  });

  it('an empty enterprise is offered Create endpoint, not "no match"', async () => {
    const empty = await createEnterprise(em, 'Empty list');
    const agent = (await signedIn(app, em, empty, 'admin')).agent;
    const res = await agent.get('/endpoints');
    expect(res.text).toContain('There are no endpoints yet.');
    expect(res.text).toContain('<a href="/endpoints/new">Create endpoint</a> to add the first one.');
  });
});
