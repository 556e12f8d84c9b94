// Link SIM, the picker, the confirmation step, De-link, Activate, Suspend, Resume and the history page
// over HTTP — the page, its partial for htmx, and the data read back after every POST.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { firstRow, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { csrfToken, hidden, signedIn, type Agent } from '../helpers/session.js';
import { page, textOf, type Page } from '../helpers/page.js';
import { createEnterprise, holdEndpoint, linkedEndpoint, readySim, type TestEnterprise, type TestSim } from '../factories/index.js';
import { findViolations } from '../../src/domain/invariants.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Agent;
let secondAdmin: Agent;

beforeAll(async () => {
  ({ db, app, em, acme, globex } = await routeTestWorld());
  admin = (await signedIn(app, em, acme, 'admin')).agent;
  secondAdmin = (await signedIn(app, em, acme, 'admin')).agent;
});
afterEach(async () => {
  expect(await findViolations(db.orm.em.fork())).toEqual([]);
});
afterAll(async () => {
  await app.close();
  await db.close();
});

const row = (sql: string, params: unknown[]) => firstRow(db, sql, params);
const endpointRow = (id: number) => row('select * from endpoint where id = ?', [id]);
const simRow = (id: number) => row('select * from sim where id = ?', [id]);
const eventCount = async (endpointId: number) => (await row('select count(*)::int as n from event where endpoint_id = ?', [endpointId])).n;

/** Picker → confirmation → Yes, as the browser does it; returns the POST's response. */
async function link(agent: Agent, endpointId: number, simId: number) {
  const confirm = await agent.get(`/endpoints/${endpointId}/sim/confirm?sim_id=${simId}`);
  expect(confirm.status).toBe(200);
  return agent
    .post(`/endpoints/${endpointId}/sim`)
    .type('form')
    .send({
      _csrf: hidden(confirm.text, '_csrf'),
      key: hidden(confirm.text, 'key'),
      sim_id: hidden(confirm.text, 'sim_id'),
    });
}

describe('the SIM picker', () => {
  let picking: TestEnterprise;
  let agent: Agent;
  let sims: TestSim[];
  let endpointId: number;
  beforeAll(async () => {
    picking = await createEnterprise(em, 'Picking');
    agent = (await signedIn(app, em, picking, 'admin')).agent;
    sims = [];
    for (let i = 0; i < 30; i++) sims.push(await readySim(em, picking, { eid: i % 2 === 0 }));
    sims.sort((a, b) => a.iccid.localeCompare(b.iccid));
    await linkedEndpoint(em, picking, 'active');
    await readySim(em, globex);
    endpointId = (await holdEndpoint(em, picking, { name: 'Meter 7' })).id;
  });

  it('lists only the enterprise’s Ready to Activate SIMs, 25 a page in ICCID order, with the count', async () => {
    const res = await agent.get(`/endpoints/${endpointId}/sim/new`);
    expect(res.status).toBe(200);
    const picker = page(res.text);
    expect(picker.heading).toBe('Select SIM to attach');
    expect(picker.columns('Ready to Activate SIMs, in ICCID order')).toEqual(['Action', 'EID', 'ICCID', 'IMSI', 'Status']);
    expect(picker.text).toContain('30 SIMs match');
    expect(picker.names('radio')).toEqual(sims.slice(0, 25).map((s) => `Select SIM ${s.iccid}`));
    expect(picker.button('Attach SIM')).not.toBeNull();
    expect(picker.button('Cancel')).not.toBeNull();
    expect(picker.field('Search').value).toBe('');
  });

  it('pages with Next and Previous by ICCID (keyset)', async () => {
    const first = await agent.get(`/endpoints/${endpointId}/sim/new`);
    const iccids = (html: string) =>
      page(html)
        .rows('Ready to Activate SIMs, in ICCID order')
        .map((cells) => cells[2]);
    const next = page(first.text).link('Next')!;
    expect(next).toContain(`after=${sims[24].iccid}`);
    const second = await agent.get(next);
    expect(iccids(second.text)).toEqual(sims.slice(25).map((s) => s.iccid));
    expect(page(second.text).link('Next')).toBeNull();
    const previous = page(second.text).link('Previous')!;
    expect(previous).toContain(`before=${sims[25].iccid}`);
    const back = await agent.get(previous);
    expect(iccids(back.text)).toEqual(sims.slice(0, 25).map((s) => s.iccid));
    expect(page(back.text).link('Previous')).toBeNull();
  });

  it('searches by a prefix of ICCID, IMSI or EID (spaces ignored)', async () => {
    const target = sims[7];
    for (const q of [
      target.iccid.slice(0, 16),
      `${target.imsi.slice(0, 5)} ${target.imsi.slice(5, 14)}`,
      target.eid?.slice(0, 28) ?? target.iccid,
    ]) {
      const res = await agent.get(`/endpoints/${endpointId}/sim/new?q=${encodeURIComponent(q)}`);
      expect(page(res.text).names('radio'), q).toContain(`Select SIM ${target.iccid}`);
    }
    const exact = page((await agent.get(`/endpoints/${endpointId}/sim/new?q=${target.iccid}`)).text);
    expect(exact.text).toContain(`1 SIM matches “${target.iccid}”`);
    expect(exact.names('radio')).toEqual([`Select SIM ${target.iccid}`]);
    const none = page((await agent.get(`/endpoints/${endpointId}/sim/new?q=999999`)).text);
    expect(none.text).toContain('0 SIMs match');
    expect(none.text).toContain('No Ready to Activate SIM has an ICCID, IMSI or EID starting with “999999”');
    expect(none.queryByRole('table')).toBeNull();
  });

  it('says that only digits are searched when letters are typed, instead of "0 SIMs match"', async () => {
    for (const q of ['abc', '8944 1x']) {
      const res = await agent.get(`/endpoints/${endpointId}/sim/new?q=${encodeURIComponent(q)}`);
      expect(res.status).toBe(200);
      const picker = page(res.text);
      const digitsOnly = `Only digits are searched, and “${q}” has other characters in it. Search by the first digits of an ICCID, IMSI or EID.`;
      expect(picker.text).toContain(digitsOnly);
      expect(picker.text).not.toContain('SIMs match');
      expect(picker.text).not.toContain('No Ready to Activate SIM has');
      expect(picker.queryByRole('table')).toBeNull();
      // The search box's own request (htmx, results only) says the same, in the live region it replaces.
      const results = await agent
        .get(`/endpoints/${endpointId}/sim/new?q=${encodeURIComponent(q)}`)
        .set('HX-Request', 'true')
        .set('HX-Target', 'picker-results');
      const region = page(results.text);
      expect(region.isDocument).toBe(false);
      expect(region.root?.id).toBe('picker-results');
      expect(region.root?.getAttribute('aria-live')).toBe('polite');
      expect(region.text).toBe(digitsOnly);
    }
    // Spaces and dashes are not "other characters": they are stripped, and the digits searched.
    const spaced = page((await agent.get(`/endpoints/${endpointId}/sim/new?q=${encodeURIComponent('89 44-')}`)).text);
    expect(spaced.text).not.toContain('Only digits are searched');
    expect(spaced.text).toContain('SIMs match “8944”');
  });

  it('gives htmx the picker partial, or only the results when the search box asks', async () => {
    const modal = await agent.get(`/endpoints/${endpointId}/sim/new`).set('HX-Request', 'true').set('HX-Target', 'modal-content');
    expect(page(modal.text).isDocument).toBe(false);
    expect(page(modal.text).root?.id).toBe('picker');
    expect(page(modal.text).heading).toBe('Select SIM to attach');
    const results = await agent.get(`/endpoints/${endpointId}/sim/new?q=89`).set('HX-Request', 'true').set('HX-Target', 'picker-results');
    expect(page(results.text).isDocument).toBe(false);
    expect(page(results.text).root?.id).toBe('picker-results');
    expect(page(results.text).heading).toBe('');
    // Which partial depends on HX-Target: a cache must keep them apart.
    expect(results.headers.vary).toContain('HX-Target');
    expect(results.headers.vary).toContain('HX-Request');
  });

  it('input the routes’ schemas refuse gets the error page (422) in words, never a bare 400 JSON', async () => {
    const tooLong = await agent.get(`/endpoints/${endpointId}/sim/new?q=${'8'.repeat(101)}`);
    const notAnId = await agent.get(`/endpoints/${endpointId}/sim/confirm?sim_id=abc`);
    const twice = await agent.get(`/endpoints/${endpointId}/sim/new?q=89&q=44`);
    for (const res of [tooLong, notAnId, twice]) {
      expect(res.status).toBe(422);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(page(res.text).heading).toBe('There is a problem');
      expect(page(res.text).text).toContain('Some of what was sent is not valid. Go back and check the form.');
    }
  });

  it('Attach SIM with nothing chosen → 422 "Select a SIM to attach"', async () => {
    const res = await agent.get(`/endpoints/${endpointId}/sim/confirm`);
    expect(res.status).toBe(422);
    const picker = page(res.text);
    expect(picker.title).toBe('Error: Select SIM to attach – SIM Link');
    expect(picker.heading).toBe('Select SIM to attach');
    expect(picker.errors()).toEqual([{ message: 'Select a SIM to attach', href: '#picker-table' }]);
    expect(textOf(picker.getByRole('group', { name: 'SIM to attach' }).querySelector('.error-message'))).toBe(
      'Error: Select a SIM to attach',
    );
  });

  it('is not offered for an endpoint that is not on Hold (409 with the reason)', async () => {
    const { endpoint } = await linkedEndpoint(em, picking, 'active');
    const res = await agent.get(`/endpoints/${endpoint.id}/sim/new`);
    expect(res.status).toBe(409);
    expect(page(res.text).text).toContain(`is Active; a SIM can only be linked to an endpoint on Hold.`);
  });

  it('shows an empty state when there is nothing to pick', async () => {
    const empty = await createEnterprise(em, 'Empty');
    const emptyAgent = (await signedIn(app, em, empty, 'admin')).agent;
    const endpoint = await holdEndpoint(em, empty);
    const res = await emptyAgent.get(`/endpoints/${endpoint.id}/sim/new`);
    expect(page(res.text).text).toContain('There are no Ready to Activate SIMs in your inventory.');
    expect(page(res.text).queryByRole('table')).toBeNull();
  });
});

describe('linking through the confirmation', () => {
  it('confirms with the ICCID, the endpoint and the resulting state, then links on Yes', async () => {
    const endpoint = await holdEndpoint(em, acme, { name: 'Meter 12', activateImmediately: true });
    const sim = await readySim(em, acme);
    const confirm = await admin.get(`/endpoints/${endpoint.id}/sim/confirm?sim_id=${sim.id}`);
    const question = page(confirm.text);
    expect(question.heading).toBe('Are you sure you want to continue?');
    expect(question.text).toContain(`Link SIM ${sim.iccid} to endpoint 'Meter 12'.`);
    expect(question.text).toContain('The endpoint and SIM will become Active.');
    expect(question.buttons()).toEqual(expect.arrayContaining(['Yes', 'No']));
    const partial = page((await admin.get(`/endpoints/${endpoint.id}/sim/confirm?sim_id=${sim.id}`).set('HX-Request', 'true')).text);
    expect(partial.isDocument).toBe(false);
    expect(partial.root?.id).toBe('confirm');
    expect(partial.heading).toBe('Are you sure you want to continue?');

    const res = await admin
      .post(`/endpoints/${endpoint.id}/sim`)
      .type('form')
      .send({
        _csrf: hidden(confirm.text, '_csrf'),
        key: hidden(confirm.text, 'key'),
        sim_id: String(sim.id),
      });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/endpoints/${endpoint.id}`);
    expect(await endpointRow(endpoint.id)).toMatchObject({ status: 'active', sim_id: sim.id });
    expect(await simRow(sim.id)).toMatchObject({ status: 'active', endpoint_id: endpoint.id });
    const shown = page((await admin.get(res.headers.location)).text);
    expect(shown.flash).toContain(`SIM ${sim.iccid} linked successfully`);
    expect(shown.rows('History of Meter 12, newest first').map((cells) => cells[1])).toEqual(['SIM linked']);
    // The message is shown once.
    expect(page((await admin.get(res.headers.location)).text).flash).toBe('');
  });

  it('Pre-Active when the endpoint does not activate immediately', async () => {
    const endpoint = await holdEndpoint(em, acme, { activateImmediately: false });
    const sim = await readySim(em, acme);
    const confirm = await admin.get(`/endpoints/${endpoint.id}/sim/confirm?sim_id=${sim.id}`);
    expect(page(confirm.text).text).toContain('The endpoint and SIM will become Pre-Active.');
    expect((await link(admin, endpoint.id, sim.id)).status).toBe(303);
    expect(await endpointRow(endpoint.id)).toMatchObject({ status: 'pre_active' });
  });

  it('No goes back and changes nothing', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    const confirm = await admin.get(`/endpoints/${endpoint.id}/sim/confirm?sim_id=${sim.id}`);
    const no = page(confirm.text).button('No')!.closest('form')!;
    expect(no.getAttribute('method')).toBe('get');
    expect(no.getAttribute('action')).toBe(`/endpoints/${endpoint.id}`);
    expect((await admin.get(no.getAttribute('action')!)).status).toBe(200);
    expect(await endpointRow(endpoint.id)).toMatchObject({ status: 'hold', sim_id: null });
    expect(await simRow(sim.id)).toMatchObject({ status: 'ready', endpoint_id: null });
  });

  it('a replayed Yes is applied once', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    const confirm = await admin.get(`/endpoints/${endpoint.id}/sim/confirm?sim_id=${sim.id}`);
    const body = { _csrf: hidden(confirm.text, '_csrf'), key: hidden(confirm.text, 'key'), sim_id: String(sim.id) };
    const first = await admin.post(`/endpoints/${endpoint.id}/sim`).type('form').send(body);
    const again = await admin.post(`/endpoints/${endpoint.id}/sim`).type('form').send(body);
    expect([first.status, again.status]).toEqual([303, 303]);
    expect(await eventCount(endpoint.id)).toBe(1);
  });

  it('a stale confirmation after someone else took the SIM → the picker again with the reason, nothing changed', async () => {
    const mine = await holdEndpoint(em, acme);
    const theirs = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    const confirm = await admin.get(`/endpoints/${mine.id}/sim/confirm?sim_id=${sim.id}`);
    expect((await link(secondAdmin, theirs.id, sim.id)).status).toBe(303);
    const res = await admin
      .post(`/endpoints/${mine.id}/sim`)
      .type('form')
      .send({
        _csrf: hidden(confirm.text, '_csrf'),
        key: hidden(confirm.text, 'key'),
        sim_id: String(sim.id),
      });
    expect(res.status).toBe(409);
    const picker = page(res.text);
    expect(picker.heading).toBe('Select SIM to attach');
    expect(picker.errors().map((e) => e.message)).toEqual(['This SIM was just linked to another endpoint. Choose another SIM.']);
    expect(picker.names('radio')).not.toContain(`Select SIM ${sim.iccid}`);
    expect(await endpointRow(mine.id)).toMatchObject({ status: 'hold', sim_id: null });
    expect(await simRow(sim.id)).toMatchObject({ endpoint_id: theirs.id });
  });

  it('without a CSRF token: 403, nothing changed', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    const res = await admin
      .post(`/endpoints/${endpoint.id}/sim`)
      .type('form')
      .send({ sim_id: String(sim.id), key: 'abcdefghijklmnopqrst' });
    expect(res.status).toBe(403);
    expect(await endpointRow(endpoint.id)).toMatchObject({ status: 'hold' });
    expect(await simRow(sim.id)).toMatchObject({ status: 'ready' });
  });

  it('another enterprise’s SIM or endpoint → 404, nothing changed', async () => {
    const endpoint = await holdEndpoint(em, acme);
    const foreignSim = await readySim(em, globex);
    const token = await csrfToken(admin);
    const res = await admin
      .post(`/endpoints/${endpoint.id}/sim`)
      .type('form')
      .send({ _csrf: token, sim_id: String(foreignSim.id), key: 'abcdefghijklmnopqrst1' });
    expect(res.status).toBe(404);
    expect(await simRow(foreignSim.id)).toMatchObject({ status: 'ready' });
    const foreignEndpoint = await holdEndpoint(em, globex);
    const sim = await readySim(em, acme);
    expect((await admin.get(`/endpoints/${foreignEndpoint.id}/sim/confirm?sim_id=${sim.id}`)).status).toBe(404);
    const post = await admin
      .post(`/endpoints/${foreignEndpoint.id}/sim`)
      .type('form')
      .send({ _csrf: token, sim_id: String(sim.id), key: 'abcdefghijklmnopqrst2' });
    expect(post.status).toBe(404);
    expect(await endpointRow(foreignEndpoint.id)).toMatchObject({ status: 'hold' });
  });
});

describe('De-link, Activate, Suspend, Resume', () => {
  async function confirmAndPost(path: string) {
    const confirm = await admin.get(path);
    expect(confirm.status).toBe(200);
    expect(page(confirm.text).heading).toBe('Are you sure you want to continue?');
    const res = await admin
      .post(path)
      .type('form')
      .send({ _csrf: hidden(confirm.text, '_csrf'), key: hidden(confirm.text, 'key') });
    return { confirm, res };
  }

  it('De-link says where the endpoint and SIM go, then puts the SIM back in the inventory', async () => {
    const { endpoint, sim } = await linkedEndpoint(em, acme, 'suspended');
    const { confirm, res } = await confirmAndPost(`/endpoints/${endpoint.id}/sim/delete`);
    expect(page(confirm.text).text).toContain(`De-link SIM ${sim.iccid}`);
    expect(page(confirm.text).text).toContain('The endpoint will go to Hold, and the SIM will return to the inventory');
    expect(res.status).toBe(303);
    expect(await endpointRow(endpoint.id)).toMatchObject({ status: 'hold', sim_id: null });
    expect(await simRow(sim.id)).toMatchObject({ status: 'ready', endpoint_id: null });
    expect(page((await admin.get(`/endpoints/${endpoint.id}`)).text).flash).toContain(`SIM ${sim.iccid} de-linked successfully`);
    // Back in the picker of another endpoint.
    const other = await holdEndpoint(em, acme);
    expect(page((await admin.get(`/endpoints/${other.id}/sim/new?q=${sim.iccid}`)).text).names('radio')).toEqual([
      `Select SIM ${sim.iccid}`,
    ]);
  });

  it.each([
    ['activate', 'pre_active', 'active', 'activated'],
    ['suspend', 'active', 'suspended', 'suspended'],
    ['resume', 'suspended', 'active', 'resumed'],
  ] as const)('%s: %s → %s through its confirmation', async (operation, from, to, verb) => {
    const { endpoint, sim } = await linkedEndpoint(em, acme, from);
    const { res } = await confirmAndPost(`/endpoints/${endpoint.id}/${operation}`);
    expect(res.status).toBe(303);
    expect(await endpointRow(endpoint.id)).toMatchObject({ status: to });
    expect(await simRow(sim.id)).toMatchObject({ status: to });
    expect(page((await admin.get(`/endpoints/${endpoint.id}`)).text).flash).toContain(`${verb} successfully`);
  });

  it('a step the state rules out is refused with the reason (409), nothing changed', async () => {
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    const refused = await admin.get(`/endpoints/${endpoint.id}/activate`);
    expect(refused.status).toBe(409);
    expect(page(refused.text).text).toContain('is Active; only a Pre-Active endpoint can be activated.');
    const token = hidden(refused.text, '_csrf');
    const post = await admin.post(`/endpoints/${endpoint.id}/resume`).type('form').send({ _csrf: token, key: 'abcdefghijklmnopqrst3' });
    expect(post.status).toBe(409);
    expect(page(post.text).text).toContain('only a Suspended endpoint can be resumed');
    expect(await endpointRow(endpoint.id)).toMatchObject({ status: 'active' });
    const hold = await holdEndpoint(em, acme);
    expect((await admin.get(`/endpoints/${hold.id}/sim/delete`)).status).toBe(409);
  });
});

describe('history', () => {
  it('lists the enterprise’s events, filterable by action, never another enterprise’s', async () => {
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    await admin.get(`/endpoints/${endpoint.id}/suspend`).then((c) =>
      admin
        .post(`/endpoints/${endpoint.id}/suspend`)
        .type('form')
        .send({ _csrf: hidden(c.text, '_csrf'), key: hidden(c.text, 'key') }),
    );
    const all = await admin.get('/events');
    expect(all.status).toBe(200);
    const what = (html: string) =>
      page(html)
        .rows('History, newest first')
        .map((cells) => cells[1]);
    expect(page(all.text).heading).toBe('History');
    expect(what(all.text)).toContain('Suspended');
    const linked = await admin.get('/events?action=sim.linked');
    expect(what(linked.text)).toContain('SIM linked');
    expect(what(linked.text)).not.toContain('Suspended');
    // The filter (htmx) gets only the results, which it swaps in place.
    const filtered = await admin.get('/events?action=sim.linked').set('HX-Request', 'true').set('HX-Target', 'events-results');
    expect(page(filtered.text).isDocument).toBe(false);
    expect(page(filtered.text).root?.id).toBe('events-results');
    expect(page(filtered.text).headings).toEqual([]);
    expect(what(filtered.text)).toEqual(what(linked.text));
    const outsider = (await signedIn(app, em, globex, 'admin')).agent;
    const empty = page((await outsider.get('/events')).text);
    expect(empty.text).toContain('Nothing has happened yet');
    expect(empty.queryByRole('table')).toBeNull();
  });
});

describe('viewers', () => {
  it('are refused the pickers and confirmations (403), which lead only to changes', async () => {
    const viewer = (await signedIn(app, em, acme, 'viewer')).agent;
    const hold = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    for (const path of [
      `/endpoints/${hold.id}/sim/new`,
      `/endpoints/${hold.id}/sim/confirm?sim_id=${sim.id}`,
      `/endpoints/${endpoint.id}/sim/delete`,
      `/endpoints/${endpoint.id}/suspend`,
      '/endpoints/new',
      '/endpoints/new/sim',
      `/endpoints/new/sim/choose?sim_id=${sim.id}`,
    ]) {
      const res = await viewer.get(path);
      expect(res.status, path).toBe(403);
      expect(page(res.text).text).toContain('Your role (viewer) can look but not change anything.');
    }
  });
});

describe('an endpoint’s whole history', () => {
  it('the endpoint page shows the latest 50 and links to all of them; another enterprise’s → 404', async () => {
    const { endpoint } = await linkedEndpoint(em, acme, 'active');
    for (let i = 0; i < 26; i++) {
      for (const step of ['suspend', 'resume']) {
        const c = await admin.get(`/endpoints/${endpoint.id}/${step}`);
        expect(
          (
            await admin
              .post(`/endpoints/${endpoint.id}/${step}`)
              .type('form')
              .send({ _csrf: hidden(c.text, '_csrf'), key: hidden(c.text, 'key') })
          ).status,
        ).toBe(303);
      }
    }
    const steps = (shown: Page) =>
      shown
        .rows()
        .map((cells) => cells[1])
        .filter((what) => what === 'Suspended' || what === 'Resumed');
    const shown = page((await admin.get(`/endpoints/${endpoint.id}`)).text);
    expect(steps(shown)).toHaveLength(50);
    expect(shown.link(`See the whole history of ${shown.heading}`)).toBe(`/events?endpoint=${endpoint.id}`);
    const all = await admin.get(`/events?endpoint=${endpoint.id}`);
    expect(all.status).toBe(200);
    expect(page(all.text).heading).toBe(`History of ${shown.heading}`);
    const older = page(all.text).link('Older')!;
    expect(older).toContain(`endpoint=${endpoint.id}`);
    expect(older).toContain('before=');
    const second = await admin.get(older);
    expect(steps(page(second.text))).toHaveLength(2);
    const foreign = await holdEndpoint(em, globex);
    expect((await admin.get(`/events?endpoint=${foreign.id}`)).status).toBe(404);
  });
});
