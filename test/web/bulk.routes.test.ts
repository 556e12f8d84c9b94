// The Bulk changes pages (/bulk): an admin uploads a CSV and sees the preview (counts per action, every row
// that cannot be done with its line and reason, the first rows that will be done); nothing changes until
// Apply N changes → "Are you sure you want to continue?" → Yes; the job page shows the progress and, when
// finished, the counts and Download the results (CSV). A draft can be discarded; viewers get 403; another
// enterprise's job is 404; a file without the columns is refused with the reason; the upload needs the CSRF token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { parse } from 'csv-parse/sync';
import { allRows, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { csrfToken, signedIn, type Agent } from '../helpers/session.js';
import { linkedEndpoint, manyHoldEndpoints, manyReadySims, type TestEnterprise } from '../factories/index.js';
import { BulkRunner } from '../../src/domain/bulk.js';
import { page } from '../helpers/page.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Agent;
let csrf: string;

const upload = (agent: Agent, token: string, csv: string, filename = 'changes.csv') =>
  agent.post(`/bulk?_csrf=${encodeURIComponent(token)}`).attach('file', Buffer.from(csv), { filename, contentType: 'text/csv' });

beforeAll(async () => {
  ({ db, app, em, acme, globex } = await routeTestWorld());
  admin = (await signedIn(app, em, acme, 'admin')).agent;
  csrf = await csrfToken(admin);
});
afterAll(async () => {
  await app?.close();
  await db?.close();
});

describe('Bulk changes pages', () => {
  it('upload → preview → Apply → Yes → progress → results, nothing changed before Yes', async () => {
    const endpoints = await manyHoldEndpoints(em.fork(), acme, 3);
    const sims = await manyReadySims(em.fork(), acme, 3);
    const { endpoint: active } = await linkedEndpoint(em.fork(), acme, 'active');
    const csv = [
      'endpoint_id,action,iccid',
      ...endpoints.map((e, i) => `${e.id},link,${sims[i].iccid}`),
      `${active.id},activate,`,
      `nope,link,`,
    ].join('\n');
    const preview = await upload(admin, csrf, csv, 'october.csv');
    expect(preview.status, preview.text).toBe(200);
    const shown = page(preview.text);
    expect(shown.heading).toBe('Preview of october.csv');
    expect(shown.text).toContain('5 lines read: 3 can be done, 2 cannot.');
    expect(shown.getByText('3 can be done').tagName).toBe('STRONG');
    expect(shown.rows('Rows that cannot be done, with the reason')).toEqual([
      ['5', `Endpoint '${active.name}' is Active; only a Pre-Active endpoint can be activated.`],
      ['6', expect.stringContaining('endpoint_id "nope" is not an endpoint id (a number)')],
    ]);
    expect(shown.button('Apply 3 changes')).not.toBeNull();
    expect(await allRows(db, `select status from endpoint where id = ?`, [endpoints[0].id])).toEqual([{ status: 'hold' }]);
    const [job] = await allRows(db, `select id, state, total from bulk_job where file_name = 'october.csv'`);
    expect(job).toMatchObject({ state: 'draft', total: 3 });

    const confirm = await admin.get(`/bulk/${job.id as number}/apply`);
    expect(confirm.status).toBe(200);
    expect(page(confirm.text).heading).toBe('Are you sure you want to continue?');
    expect(page(confirm.text).text).toContain('Apply 3 changes from october.csv.');
    expect(page(confirm.text).button('Yes')).not.toBeNull();
    const yes = await admin
      .post(`/bulk/${job.id as number}/apply`)
      .type('form')
      .send({ _csrf: csrf });
    expect(yes.status).toBe(303);
    expect(yes.headers.location).toBe(`/bulk/${job.id as number}`);
    const waiting = page((await admin.get(`/bulk/${job.id as number}`)).text);
    const bar = waiting.getByRole('progressbar', { name: 'Waiting to start:' });
    expect([bar.getAttribute('max'), bar.getAttribute('value'), bar.textContent]).toEqual(['3', '0', '0 of 3']);
    const progress = waiting.getByRole('region', { name: 'Progress' });
    expect(progress.getAttribute('hx-trigger')).toBe('every 2s');
    expect(waiting.link('Refresh')).toBe(`/bulk/${job.id as number}`);
    // The progress alone, as htmx asks for it.
    const partial = await admin
      .get(`/bulk/${job.id as number}`)
      .set('HX-Request', 'true')
      .set('HX-Target', 'job-progress');
    expect(page(partial.text).isDocument).toBe(false);
    expect(page(partial.text).root?.id).toBe('job-progress');
    expect(page(partial.text).headings).toEqual(['Progress']);

    while (await new BulkRunner(db.orm).runOne());
    const finished = page((await admin.get(`/bulk/${job.id as number}`)).text);
    expect(finished.within(finished.getByRole('region', { name: 'Progress' })).text).toContain('3 done, 0 failed.');
    expect(finished.getByRole('progressbar', { name: 'Finished:' }).getAttribute('value')).toBe('3');
    expect(finished.link('Download the results (CSV)')).toBe(`/bulk/${job.id as number}/results.csv`);
    expect(finished.getByRole('region', { name: 'Progress' }).hasAttribute('hx-trigger')).toBe(false);
    expect(finished.link('Refresh')).toBeNull();
    const results = await admin.get(`/bulk/${job.id as number}/results.csv`);
    expect(results.status).toBe(200);
    expect(results.headers['content-type']).toMatch(/^text\/csv/);
    const records = parse(results.text, { columns: true, bom: true }) as Record<string, string>[];
    // Every row of the file: the rows done, and the rows the preview refused with their reason, in line order.
    expect(records.map((r) => [r.line, r.endpoint_id, r.action, r.outcome])).toEqual([
      ['2', String(endpoints[0].id), 'link', 'done'],
      ['3', String(endpoints[1].id), 'link', 'done'],
      ['4', String(endpoints[2].id), 'link', 'done'],
      ['5', String(active.id), 'activate', 'cannot be done'],
      ['6', 'nope', 'link', 'cannot be done'],
    ]);
    expect(records[3].message).toBe(`Endpoint '${active.name}' is Active; only a Pre-Active endpoint can be activated.`);
    expect(records[4].message).toContain('endpoint_id "nope" is not an endpoint id (a number)');
    const list = page((await admin.get('/bulk')).text);
    const listed = list.rows().find((cells) => cells[0] === 'october.csv');
    expect(listed?.slice(3)).toEqual(['3 of 3', '0', 'Finished']);
    expect(list.link('october.csv')).toBe(`/bulk/${job.id as number}`);
  });

  it('History: bulk.completed says "Bulk change N finished" or "… cancelled" with the counts, N linking to the job (admins)', async () => {
    const endpoints = await manyHoldEndpoints(em.fork(), acme, 3);
    const sims = await manyReadySims(em.fork(), acme, 3);
    const jobOf = async (name: string, csv: string) => {
      expect((await upload(admin, csrf, csv, name)).status).toBe(200);
      const [job] = await allRows(db, `select id from bulk_job where file_name = ?`, [name]);
      await allRows(db, `update bulk_job set state = 'queued' where id = ?`, [job.id]);
      return job.id as number;
    };
    const finished = await jobOf(
      'history-finished.csv',
      `endpoint_id,action,iccid\n${endpoints[0].id},link,${sims[0].iccid}\n${endpoints[1].id},link,${sims[1].iccid}`,
    );
    const cancelled = await jobOf('history-cancelled.csv', `endpoint_id,action,iccid\n${endpoints[2].id},link,${sims[2].iccid}`);
    expect((await admin.post(`/bulk/${cancelled}/cancel`).type('form').send({ _csrf: csrf })).status).toBe(303);
    while (await new BulkRunner(db.orm).runOne());
    expect(
      await allRows(
        db,
        `select bulk_job_id, bulk_state, count, problem_count from event where action = 'bulk.completed' and bulk_job_id in (?, ?) order by id`,
        [finished, cancelled],
      ),
    ).toEqual([
      { bulk_job_id: finished, bulk_state: 'done', count: 2, problem_count: 0 },
      { bulk_job_id: cancelled, bulk_state: 'cancelled', count: 0, problem_count: 0 },
    ]);
    const history = page((await admin.get('/events?action=bulk.completed')).text);
    const what = history.rows().map((cells) => cells[1]);
    expect(what.slice(0, 2)).toEqual([
      `Bulk change ${cancelled} cancelled: 0 done, 0 failed`,
      `Bulk change ${finished} finished: 2 done, 0 failed`,
    ]);
    expect(history.link(`Bulk change ${cancelled}`)).toBe(`/bulk/${cancelled}`);
    expect(history.link(`Bulk change ${finished}`)).toBe(`/bulk/${finished}`);
    // A viewer cannot open a job: the same words, no link.
    const viewer = (await signedIn(app, em, acme, 'viewer')).agent;
    const seen = page((await viewer.get('/events?action=bulk.completed')).text);
    expect(seen.rows()[0][1]).toBe('Bulk change cancelled: 0 done, 0 failed');
    expect(seen.link(`Bulk change ${cancelled}`)).toBeNull();
  });

  it('Cancel on a job that has finished meanwhile: 409 saying it has already finished, never "Cancelling"; nothing changes', async () => {
    const [e] = await manyHoldEndpoints(em.fork(), acme, 1);
    const [s] = await manyReadySims(em.fork(), acme, 1);
    await upload(admin, csrf, `endpoint_id,action,iccid\n${e.id},link,${s.iccid}`, 'finished-then-cancel.csv');
    const [job] = await allRows(db, `select id from bulk_job where file_name = 'finished-then-cancel.csv'`);
    await allRows(db, `update bulk_job set state = 'queued' where id = ?`, [job.id]);
    while (await new BulkRunner(db.orm).runOne());
    const before = await allRows(db, 'select state, cancel_requested, done, failed, finished_at, updated_at from bulk_job where id = ?', [
      job.id,
    ]);
    expect(before).toEqual([expect.objectContaining({ state: 'done', cancel_requested: false, done: 1 })]);
    const cancel = await admin
      .post(`/bulk/${job.id as number}/cancel`)
      .type('form')
      .send({ _csrf: csrf });
    expect(cancel.status).toBe(409);
    const said = page(cancel.text).text;
    expect(said).toContain('This bulk change has already finished (1 done, 0 failed); there is nothing to cancel.');
    expect(said).not.toContain('Cancelling');
    expect(
      await allRows(db, 'select state, cancel_requested, done, failed, finished_at, updated_at from bulk_job where id = ?', [job.id]),
    ).toEqual(before);
    expect(page((await admin.get(`/bulk/${job.id as number}`)).text).text).not.toContain('Cancelling');
    // Apply pressed again on it (a Yes kept open in another tab): refused in words, never "… started".
    const apply = await admin
      .post(`/bulk/${job.id as number}/apply`)
      .type('form')
      .send({ _csrf: csrf });
    expect(apply.status).toBe(409);
    expect(page(apply.text).text).toContain('This bulk change has already finished (1 done, 0 failed); there is nothing to apply.');
    expect(page(apply.text).text).not.toContain('started');
    expect(
      await allRows(db, 'select state, cancel_requested, done, failed, finished_at, updated_at from bulk_job where id = ?', [job.id]),
    ).toEqual(before);
  });

  it('a draft can be discarded; it is never run', async () => {
    const [e] = await manyHoldEndpoints(em.fork(), acme, 1);
    const [s] = await manyReadySims(em.fork(), acme, 1);
    await upload(admin, csrf, `endpoint_id,action,iccid\n${e.id},link,${s.iccid}`, 'discard-me.csv');
    const [job] = await allRows(db, `select id from bulk_job where file_name = 'discard-me.csv'`);
    const discard = await admin
      .post(`/bulk/${job.id as number}/cancel`)
      .type('form')
      .send({ _csrf: csrf });
    expect(discard.status).toBe(303);
    expect(await allRows(db, 'select state from bulk_job where id = ?', [job.id])).toEqual([{ state: 'cancelled' }]);
    expect(await new BulkRunner(db.orm).runOne()).toBe(false);
    expect(await allRows(db, `select status from endpoint where id = ?`, [e.id])).toEqual([{ status: 'hold' }]);
  });

  it('refuses a file without the columns, or no file, with the reason; no CSRF token: 403; viewers: 403', async () => {
    const bad = await upload(admin, csrf, 'id,what\n1,link');
    expect(bad.status).toBe(422);
    expect(page(bad.text).text).toContain('The first line must name the columns endpoint_id, action and iccid; "endpoint_id" is missing.');
    expect((await admin.post(`/bulk?_csrf=${encodeURIComponent(csrf)}`).field('x', 'y')).status).toBe(422);
    const noToken = await admin.post('/bulk').attach('file', Buffer.from('endpoint_id,action\n1,activate'), { filename: 'a.csv' });
    expect(noToken.status).toBe(403);
    const { agent: viewer } = await signedIn(app, em, acme, 'viewer');
    expect((await viewer.get('/bulk')).status).toBe(403);
    expect((await upload(viewer, await csrfToken(viewer), 'endpoint_id,action\n1,activate')).status).toBe(403);
  });

  it('another enterprise’s job, an unknown or malformed id: 404 naming a job', async () => {
    const { agent: other } = await signedIn(app, em, globex, 'admin');
    const [e] = await manyHoldEndpoints(em.fork(), globex, 1);
    const [s] = await manyReadySims(em.fork(), globex, 1);
    await upload(other, await csrfToken(other), `endpoint_id,action,iccid\n${e.id},link,${s.iccid}`, 'globex.csv');
    const [job] = await allRows(db, `select id from bulk_job where file_name = 'globex.csv'`);
    for (const path of [`/bulk/${job.id as number}`, `/bulk/${job.id as number}/results.csv`, '/bulk/99999999', '/bulk/abc']) {
      const res = await admin.get(path);
      expect(res.status, path).toBe(404);
      expect(page(res.text).text).toContain('The job was not found.');
    }
    expect(
      (
        await admin
          .post(`/bulk/${job.id as number}/apply`)
          .type('form')
          .send({ _csrf: csrf })
      ).status,
    ).toBe(404);
    expect(await allRows(db, 'select state from bulk_job where id = ?', [job.id])).toEqual([{ state: 'draft' }]);
  });
});
