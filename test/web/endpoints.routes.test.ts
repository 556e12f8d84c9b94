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
import { page, type Page } from '../helpers/page.js';

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
/** The names in the endpoints table (its first column), or [] when there is no table. */
const namesOf = (shown: Page) => (shown.queryByRole('table') ? shown.rows().map((cells) => cells[0]) : []);

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
    const form = page(res.text);
    expect(form.heading).toBe('Sign in');
    expect(form.field('Email').element.getAttribute('type')).toBe('email');
    expect(form.field('Password').element.getAttribute('type')).toBe('password');
    expect(form.button('Sign in')).not.toBeNull();
  });

  it('sends a signed-out visitor to sign in, and back afterwards', async () => {
    const res = await supertest(app.server).get('/endpoints?status=hold');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/sign-in?next=%2Fendpoints%3Fstatus%3Dhold');
  });

  it('answers wrong credentials with one generic message (422), keeping the email', async () => {
    const res = await supertest(app.server).post('/sign-in').type('form').send({ email: 'nobody@example.test', password: 'x' });
    expect(res.status).toBe(422);
    const form = page(res.text);
    expect(form.title).toBe('Error: Sign in – SIM Link');
    expect(form.headings).toContain('There is a problem');
    expect(form.errors().map((e) => e.message)).toEqual([expect.stringContaining('The email address or password is not right')]);
    expect(form.field('Email').value).toBe('nobody@example.test');
    expect(form.field('Password').value).toBe('');
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
    const res = await agent.get('/sign-in');
    expect(res.status).toBe(200);
    const signIn = page(res.text);
    expect(signIn.heading).toBe('Sign in');
    const status = signIn.getByRole('status');
    expect(status.getAttribute('aria-live')).toBe('polite');
    expect(signIn.within(status).text).toBe('You have signed out');
    // Shown once: a reload of the sign-in page no longer says it, and neither does a first visit.
    const again = await agent.get('/sign-in');
    expect(page(again.text).text).not.toContain('You have signed out');
    expect(page((await supertest(app.server).get('/sign-in')).text).text).not.toContain('You have signed out');
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
    const shown = page(full.text);
    expect(shown.isDocument).toBe(true);
    expect(shown.heading).toBe('Endpoints');
    expect(shown.columns('Endpoints')).toEqual(['Name', 'Status', 'ICCID', 'IMEI']);
    expect(shown.link('Create endpoint')).toBe('/endpoints/new');
    const partial = page((await agent.get('/endpoints').set('HX-Request', 'true')).text);
    expect(partial.isDocument).toBe(false);
    expect(partial.root?.id).toBe('endpoints-results');
    expect(namesOf(partial)).toEqual(namesOf(shown));
    const restore = await agent.get('/endpoints').set('HX-Request', 'true').set('HX-History-Restore-Request', 'true');
    expect(page(restore.text).isDocument).toBe(true);
    expect(page(restore.text).heading).toBe('Endpoints');
  });

  // The cursors are findByCursor's opaque ones (base64url of the last row's name and id).
  it('pages by keyset, 25 at a time, Next and Previous', async () => {
    const pumps = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `Pump ${String(from + i).padStart(2, '0')}`);
    const first = page((await agent.get('/endpoints?status=hold')).text);
    expect(namesOf(first)).toEqual(pumps(25));
    const next = first.link('Next')!;
    expect(next.startsWith('/endpoints?status=hold&after=')).toBe(true);
    const second = page((await agent.get(next)).text);
    expect(namesOf(second)).toEqual(pumps(5, 26));
    expect(second.link('Next')).toBeNull();
    const previous = second.link('Previous')!;
    expect(previous.startsWith('/endpoints?status=hold&before=')).toBe(true);
    const back = page((await agent.get(previous)).text);
    expect(namesOf(back)).toEqual(pumps(25));
  });

  it('filters by status and searches by name or ICCID prefix', async () => {
    const active = page((await agent.get('/endpoints?status=active')).text);
    expect(active.rows('Endpoints, Active')).toHaveLength(1);
    expect(active.rows('Endpoints, Active')[0][1]).toBe('Active');
    expect(namesOf(active).some((name) => name.startsWith('Pump'))).toBe(false);
    const byName = page((await agent.get('/endpoints?q=pump 0')).text);
    expect(namesOf(byName)).toEqual(Array.from({ length: 9 }, (_, i) => `Pump 0${i + 1}`));
    const linked = await row(`select s.iccid from endpoint e join sim s on s.id = e.sim_id where e.enterprise_id = ?`, [list.id]);
    const byIccid = page((await agent.get(`/endpoints?q=${linked.iccid.slice(0, 17)}`)).text);
    expect(byIccid.rows().map((cells) => cells[2])).toEqual([linked.iccid]);
    const none = page((await agent.get('/endpoints?q=zzz')).text);
    expect(none.text).toContain('No endpoints match “zzz”');
    expect(none.queryByRole('table')).toBeNull();
  });

  it('never shows another enterprise’s endpoints', async () => {
    await holdEndpoint(em, globex, { name: 'Pump secret' });
    const res = page((await agent.get('/endpoints?q=pump')).text);
    expect(namesOf(res)).toHaveLength(25);
    expect(namesOf(res)).not.toContain('Pump secret');
    expect(res.text).not.toContain('Pump secret');
  });
});

describe('create endpoint', () => {
  it('shows the form with its labels', async () => {
    const res = await admin.get('/endpoints/new');
    expect(res.status).toBe(200);
    const form = page(res.text);
    expect(form.heading).toBe('Create endpoint');
    for (const label of ['Name', 'IMEI (optional)', 'SIM to link now (optional): ICCID']) expect(form.field(label).value, label).toBe('');
    expect(form.field('Activate Immediately').element.getAttribute('type')).toBe('checkbox');
    expect(form.field('Activate Immediately').checked).toBe(false);
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
    const shown = page((await admin.get(res.headers.location)).text);
    expect(shown.heading).toBe('Meter 12');
    expect(shown.flash).toBe("Endpoint 'Meter 12' created successfully");
    expect(shown.link('Link SIM')).toBe(`/endpoints/${id}/sim/new`);
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
    const form = page(res.text);
    expect(form.title).toBe('Error: Create endpoint – SIM Link');
    expect(form.getByRole('alert', { name: 'There is a problem' })).toBeTruthy();
    expect(form.errors()).toEqual([
      { message: 'Enter a name for the endpoint', href: '#name' },
      { message: 'IMEI check digit is wrong', href: '#imei' },
      { message: 'ICCID must be 19 or 20 digits', href: '#iccid' },
    ]);
    expect(form.field('Name')).toMatchObject({ value: '', error: 'Enter a name for the endpoint', invalid: true });
    expect(form.field('IMEI (optional)')).toMatchObject({ value: '490154203237519', error: 'IMEI check digit is wrong', invalid: true });
    expect(form.field('SIM to link now (optional): ICCID')).toMatchObject({ value: '8944 123', error: 'ICCID must be 19 or 20 digits' });
    expect(form.field('Activate Immediately').checked).toBe(true);
    expect(await row('select count(*)::int as n from endpoint', [])).toEqual(before);
  });

  it('refuses an IMEI another endpoint of the enterprise has, naming it (a device has one IMEI); values kept, nothing created', async () => {
    const first = await createThroughForm(admin, { name: 'Cold store sensor', imei: '356938035643809' });
    expect(first.status).toBe(303);
    const before = await row('select count(*)::int as n from endpoint', []);
    const res = await createThroughForm(admin, { name: 'Second sensor', imei: '35-693803-564380-9', activate_immediately: 'on' });
    expect(res.status).toBe(422);
    const form = page(res.text);
    expect(form.title).toBe('Error: Create endpoint – SIM Link');
    const message = "IMEI 356938035643809 is already used by endpoint 'Cold store sensor'; a device has one IMEI, so check the number";
    // In the summary and beside the field.
    expect(form.errors()).toEqual([{ message, href: '#imei' }]);
    expect(form.field('IMEI (optional)')).toMatchObject({ value: '35-693803-564380-9', error: message, invalid: true });
    expect(form.field('Name')).toMatchObject({ value: 'Second sensor', error: '', invalid: false });
    expect(form.field('Activate Immediately').checked).toBe(true);
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
    expect(page(res.text).field('SIM to link now (optional): ICCID').error).toContain(
      `There is no SIM with ICCID ${foreign.iccid} in your inventory`,
    );
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
    expect(page(res.text).text).toContain('This form has expired or did not come from SIM Link');
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
    const shown = page(res.text);
    expect(shown.heading).toBe(endpoint.name);
    expect(shown.detail('Status')).toBe('Active');
    expect(['Yes', 'No']).toContain(shown.detail('Activate Immediately'));
    expect(shown.detail('IMEI')).not.toBeNull();
    expect(shown.headings).toEqual(expect.arrayContaining(['Linked SIM', 'History']));
    const panel = shown.within(shown.getByRole('region', { name: 'Linked SIM' }));
    expect(panel.detail('ICCID')).toBe(sim.iccid);
    expect(panel.detail('IMSI')).toBe(sim.imsi);
    expect(panel.detail('EID')).not.toBeNull();
    expect(panel.detail('MSISDN')).not.toBeNull();
    expect(panel.detail('SIM status')).toBe('Active');
    expect(shown.buttons()).toEqual(expect.arrayContaining(['Suspend', 'De-link']));
    expect(shown.link('Link SIM')).toBeNull();
    expect(shown.button('Activate')).toBeNull();
    expect(shown.button('Resume')).toBeNull();
  });

  it('shows an empty value as "None", as the lists do (one way everywhere, never "—" or "Not recorded")', async () => {
    const { endpoint, sim } = await linkedEndpoint(em, acme, 'active');
    const shown = page((await admin.get(`/endpoints/${endpoint.id}`)).text);
    expect(shown.detail('IMEI')).toBe('None');
    expect(shown.detail('MSISDN')).toBe('None');
    const noEid = await holdEndpoint(em, acme, { name: 'No identifiers yet' });
    const list = page((await admin.get(`/endpoints?q=${encodeURIComponent(noEid.name)}`)).text);
    expect(list.rows()).toEqual([['No identifiers yet', 'Hold', 'None', 'None']]);
    const sims = page((await admin.get(`/sims?q=${sim.iccid}`)).text);
    expect(sims.rows()).toEqual([[sim.iccid, sim.imsi, sim.eid ?? 'None', 'None', 'Active', endpoint.name]]);
    for (const res of [shown, list, sims]) {
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
    // The page's other button is Sign out, in the header.
    const shown = page(res.text)
      .buttons()
      .filter((name) => name !== 'Sign out');
    expect(shown.sort()).toEqual([...buttons].sort());
    expect(page(res.text).link('Link SIM')).toBeNull();
  });

  it('a viewer sees no action buttons', async () => {
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    const hold = await holdEndpoint(em, acme);
    for (const id of [endpoint.id, hold.id]) {
      const res = await viewer.get(`/endpoints/${id}`);
      expect(res.status).toBe(200);
      const shown = page(res.text);
      expect(shown.buttons().filter((name) => name !== 'Sign out')).toEqual([]);
      expect(shown.link('Link SIM')).toBeNull();
      for (const action of ['Link SIM', 'De-link', 'Suspend', 'Resume']) expect(shown.text).not.toContain(action);
    }
  });

  it('another enterprise’s endpoint, an unknown one and a malformed id are all 404', async () => {
    const foreign = await holdEndpoint(em, globex);
    for (const path of [`/endpoints/${foreign.id}`, '/endpoints/99999999', '/endpoints/abc', '/endpoints/1e3']) {
      const res = await admin.get(path);
      expect(res.status, path).toBe(404);
      expect(page(res.text).text).toContain('The endpoint was not found.');
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
    expect(page(res.text).text).toContain('NUL character');
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
    const kept = page(res.text);
    expect(kept.heading).toBe('Create endpoint');
    expect(kept.errors().map((e) => e.message)).toEqual([expect.stringContaining('This confirmation form was already used.')]);
    expect(kept.field('Name').value).toBe('Reused key');
    expect(kept.field('IMEI (optional)').value).toBe('490154203237518');
    expect(await row(`select count(*)::int as n from endpoint where name = 'Reused key'`, [])).toEqual({ n: 0 });
  });

  it('a stale action button under htmx reloads the endpoint page with the reason instead of drawing a page in the dialog', async () => {
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    const res = await admin.get(`/endpoints/${endpoint.id}/activate`).set('HX-Request', 'true');
    expect(res.status).toBe(409);
    expect(res.headers['hx-redirect']).toBe(`/endpoints/${endpoint.id}`);
    const shown = page((await admin.get(`/endpoints/${endpoint.id}`)).text);
    expect(shown.text).toContain('only a Pre-Active endpoint can be activated');
  });

  it('an empty enterprise is offered Create endpoint, not "no match"', async () => {
    const empty = await createEnterprise(em, 'Empty list');
    const agent = (await signedIn(app, em, empty, 'admin')).agent;
    const res = page((await agent.get('/endpoints')).text);
    expect(res.text).toContain('There are no endpoints yet. Create endpoint to add the first one.');
    expect(res.getAllByRole('link', { name: 'Create endpoint' }).map((a) => a.getAttribute('href'))).toContain('/endpoints/new');
    expect(res.text).not.toContain('No endpoints match');
    expect(res.queryByRole('table')).toBeNull();
  });
});
