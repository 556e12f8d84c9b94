// Swap SIM on the endpoint page: the button shows only when a SIM is linked (and only to admins); it opens
// the picker, Attach SIM leads to "Are you sure you want to continue?" naming both ICCIDs, Yes swaps them in
// one change and the page says so; a SIM taken meanwhile, or an endpoint on Hold, is refused with the reason.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { allRows, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { csrfToken, hidden, signedIn, type Agent } from '../helpers/session.js';
import { page as readPage } from '../helpers/page.js';
import { holdEndpoint, linkedEndpoint, readySim, type TestEnterprise } from '../factories/index.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let admin: Agent;
let csrf: string;

beforeAll(async () => {
  ({ db, app, em, acme } = await routeTestWorld());
  admin = (await signedIn(app, em, acme, 'admin')).agent;
  csrf = await csrfToken(admin);
});
afterAll(async () => {
  await app?.close();
  await db?.close();
});

describe('Swap SIM', () => {
  it('from the endpoint page: picker → confirmation naming both SIMs → Yes → swapped, one event', async () => {
    const { endpoint, sim: old } = await linkedEndpoint(em.fork(), acme, 'active', { activateImmediately: false });
    const fresh = await readySim(em.fork(), acme);
    const page = await admin.get(`/endpoints/${endpoint.id}`);
    expect(readPage(page.text).button('Swap SIM')).not.toBeNull();
    const picker = await admin.get(`/endpoints/${endpoint.id}/sim/swap?q=${fresh.iccid}`);
    expect(picker.status).toBe(200);
    expect(readPage(picker.text).heading).toBe('Select SIM to attach');
    expect(readPage(picker.text).names('radio')).toEqual([`Select SIM ${fresh.iccid}`]);
    const confirm = await admin.get(`/endpoints/${endpoint.id}/sim/swap/confirm?sim_id=${fresh.id}`);
    expect(confirm.status).toBe(200);
    const question = readPage(confirm.text);
    expect(question.heading).toBe('Are you sure you want to continue?');
    expect(question.text).toContain(`Swap SIM ${old.iccid} of endpoint '${endpoint.name}' for SIM ${fresh.iccid}.`);
    expect(question.text).toContain('the endpoint and the new SIM will become Pre-Active.');
    expect(question.button('Yes')).not.toBeNull();
    const yes = await admin
      .post(`/endpoints/${endpoint.id}/sim/swap`)
      .type('form')
      .send({ _csrf: csrf, sim_id: String(fresh.id), key: hidden(confirm.text, 'key') });
    expect(yes.status).toBe(303);
    expect(yes.headers.location).toBe(`/endpoints/${endpoint.id}`);
    const after = await admin.get(`/endpoints/${endpoint.id}`);
    expect(readPage(after.text).flash).toContain(`SIM ${old.iccid} swapped for SIM ${fresh.iccid}`);
    expect(await allRows(db, 'select status, sim_id from endpoint where id = ?', [endpoint.id])).toEqual([
      { status: 'pre_active', sim_id: fresh.id },
    ]);
    expect(await allRows(db, 'select status, endpoint_id from sim where id = ?', [old.id])).toEqual([
      { status: 'ready', endpoint_id: null },
    ]);
    expect(
      await allRows(db, `select count(*)::int as n from event where action = 'sim.swapped' and endpoint_id = ?`, [endpoint.id]),
    ).toEqual([{ n: 1 }]);
  });

  it('the old SIM is shown wherever the swap is: endpoint history, History page, History CSV (old_iccid)', async () => {
    const { endpoint, sim: old } = await linkedEndpoint(em.fork(), acme, 'active');
    const fresh = await readySim(em.fork(), acme);
    const confirm = await admin.get(`/endpoints/${endpoint.id}/sim/swap/confirm?sim_id=${fresh.id}`);
    const yes = await admin
      .post(`/endpoints/${endpoint.id}/sim/swap`)
      .type('form')
      .send({ _csrf: csrf, sim_id: String(fresh.id), key: hidden(confirm.text, 'key') });
    expect(yes.status).toBe(303);
    const history = readPage((await admin.get(`/endpoints/${endpoint.id}`)).text).text;
    expect(history).toContain(`SIM swapped ${fresh.iccid} replaced ${old.iccid}`);
    const events = readPage((await admin.get(`/events?endpoint=${endpoint.id}`)).text).text;
    expect(events).toContain(`${fresh.iccid} replaced ${old.iccid}`);
    const csv = await admin.get(`/events/export.csv?endpoint=${endpoint.id}`);
    expect(csv.status).toBe(200);
    const [header, swapped, ...rest] = csv.text
      .trim()
      .split('\r\n')
      .map((line) => line.split(','));
    const col = (name: string) => header.indexOf(name);
    expect(col('old_iccid')).toBe(col('iccid') + 1);
    expect([swapped[col('action')], swapped[col('iccid')], swapped[col('old_iccid')]]).toEqual(['sim.swapped', fresh.iccid, old.iccid]);
    expect(rest.every((line) => line[col('old_iccid')] === '')).toBe(true);
  });

  it('no Swap SIM on Hold (refused with the reason if asked for); a taken SIM is refused, nothing changes', async () => {
    const hold = await holdEndpoint(em.fork(), acme);
    expect(readPage((await admin.get(`/endpoints/${hold.id}`)).text).button('Swap SIM')).toBeNull();
    const onHold = await admin.get(`/endpoints/${hold.id}/sim/swap`);
    expect(onHold.status).toBe(409);
    expect(readPage(onHold.text).text).toContain('is on Hold; it has no SIM to swap.');

    const { endpoint, sim } = await linkedEndpoint(em.fork(), acme, 'active');
    const { sim: taken } = await linkedEndpoint(em.fork(), acme, 'active');
    const refused = await admin.get(`/endpoints/${endpoint.id}/sim/swap/confirm?sim_id=${taken.id}`);
    expect(refused.status).toBe(409);
    expect(readPage(refused.text).text).toContain('This SIM was just linked to another endpoint. Choose another SIM.');
    const posted = await admin
      .post(`/endpoints/${endpoint.id}/sim/swap`)
      .type('form')
      .send({ _csrf: csrf, sim_id: String(taken.id), key: 'swap-form-key-0000000001' });
    expect(posted.status).toBe(409);
    expect(await allRows(db, 'select sim_id from endpoint where id = ?', [endpoint.id])).toEqual([{ sim_id: sim.id }]);
  });

  it('a swap for the endpoint’s own SIM says it is already linked to this endpoint, not to another; nothing changes', async () => {
    const { endpoint, sim } = await linkedEndpoint(em.fork(), acme, 'active');
    const refused = await admin.get(`/endpoints/${endpoint.id}/sim/swap/confirm?sim_id=${sim.id}`);
    expect(refused.status).toBe(409);
    const said = readPage(refused.text).text;
    expect(said).toContain('This SIM is already linked to this endpoint. Choose another SIM.');
    expect(said).not.toContain('another endpoint');
    expect(await allRows(db, 'select status, sim_id from endpoint where id = ?', [endpoint.id])).toEqual([
      { status: 'active', sim_id: sim.id },
    ]);
  });

  it('viewers see no Swap SIM and are refused', async () => {
    const { endpoint } = await linkedEndpoint(em.fork(), acme, 'active');
    const fresh = await readySim(em.fork(), acme);
    const { agent: viewer } = await signedIn(app, em, acme, 'viewer');
    expect(readPage((await viewer.get(`/endpoints/${endpoint.id}`)).text).button('Swap SIM')).toBeNull();
    expect((await viewer.get(`/endpoints/${endpoint.id}/sim/swap`)).status).toBe(403);
    const token = await csrfToken(viewer);
    expect(
      (
        await viewer
          .post(`/endpoints/${endpoint.id}/sim/swap`)
          .type('form')
          .send({ _csrf: token, sim_id: String(fresh.id) })
      ).status,
    ).toBe(403);
  });
});
