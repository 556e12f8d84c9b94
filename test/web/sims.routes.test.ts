// The SIMs screens over HTTP: the inventory (filter, search, keyset pages, counts, tenant scope) and the
// CSV import form — status, what the page says, and the database read back after each POST.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { countRows, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { csrfToken, signedIn, type Agent } from '../helpers/session.js';
import { page, type Page } from '../helpers/page.js';
import { createEnterprise, linkedEndpoint, readySim, type TestEnterprise, type TestSim } from '../factories/index.js';
import { eidFor, iccidFor, imsiFor, msisdnFor } from '../../src/db/generate-identifiers.js';
import { findViolations } from '../../src/domain/invariants.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Agent;
let viewer: Agent;
let globexAdmin: Agent;
let acmeSims: TestSim[];
let globexSim: TestSim;
let linked: { endpoint: { id: number; name: string }; sim: TestSim };

const SERIES = 67;
let serial = 0;
function csvRows(n: number): { text: string; iccids: string[] } {
  const iccids: string[] = [];
  const lines = ['iccid,imsi,eid,msisdn'];
  for (let i = 0; i < n; i++) {
    serial++;
    iccids.push(iccidFor(SERIES, serial));
    lines.push(`${iccidFor(SERIES, serial)},${imsiFor(SERIES, serial)},${eidFor(SERIES, serial)},${msisdnFor(SERIES, serial)}`);
  }
  return { text: `${lines.join('\n')}\n`, iccids };
}

/** The ICCIDs listed in the inventory table (its first column), or [] when there is no table. */
const iccidsOf = (shown: Page) => (shown.queryByRole('table') ? shown.rows().map((cells) => cells[0]) : []);
/** The inventory's counts per status, as read: "Ready to Activate 2". */
const statusCounts = (shown: Page) => shown.within(shown.getByRole('list', { name: 'SIMs by status' })).names('listitem');

const count = (sql: string, params: unknown[] = []) => countRows(db, sql, params);
const simCount = () => count('select 1 from sim');
const importEvents = () => count(`select 1 from event where action = 'sims.imported'`);

/** Posts a file as the import form does: multipart, the CSRF token in the action URL. */
async function upload(
  agent: Agent,
  content: string | Buffer,
  options: { filename?: string; contentType?: string; htmx?: boolean; token?: string | null } = {},
) {
  const token = options.token === undefined ? await csrfToken(agent, '/sims/import') : options.token;
  const request = agent.post(`/sims/import${token === null ? '' : `?_csrf=${encodeURIComponent(token)}`}`);
  if (options.htmx) request.set('HX-Request', 'true');
  return request.attach('file', Buffer.isBuffer(content) ? content : Buffer.from(content), {
    filename: options.filename ?? 'sims.csv',
    contentType: options.contentType ?? 'text/csv',
  });
}

beforeAll(async () => {
  ({ db, app, em, acme, globex } = await routeTestWorld());
  admin = (await signedIn(app, em, acme, 'admin')).agent;
  viewer = (await signedIn(app, em, acme, 'viewer')).agent;
  globexAdmin = (await signedIn(app, em, globex, 'admin')).agent;
  acmeSims = [await readySim(em, acme), await readySim(em, acme, { eid: false })];
  linked = await linkedEndpoint(em, acme, 'active');
  globexSim = await readySim(em, globex);
});
afterAll(async () => {
  expect(await findViolations(db.orm.em.fork())).toEqual([]);
  await app.close();
  await db.close();
});

describe('GET /sims: the inventory', () => {
  it('lists the enterprise’s SIMs with their status and endpoint, counts per status, and marks the nav', async () => {
    const res = await admin.get('/sims');
    expect(res.status).toBe(200);
    const shown = page(res.text);
    expect(shown.title).toBe('SIMs – SIM Link');
    expect(shown.getByRole('link', { name: 'SIMs', current: 'page' }).getAttribute('href')).toBe('/sims');
    expect(shown.columns('SIMs')).toEqual(['ICCID', 'IMSI', 'EID', 'MSISDN', 'Status', 'Endpoint']);
    const rows = shown.rows('SIMs');
    for (const s of acmeSims) expect(rows.find((cells) => cells[0] === s.iccid)?.[4]).toBe('Ready to Activate');
    expect(rows.find((cells) => cells[0] === linked.sim.iccid)?.slice(4)).toEqual(['Active', linked.endpoint.name]);
    expect(shown.link(linked.endpoint.name)).toBe(`/endpoints/${linked.endpoint.id}`);
    expect(statusCounts(shown)).toEqual(expect.arrayContaining(['All SIMs 3', 'Ready to Activate 2', 'Active 1']));
    expect(shown.link('Import SIMs')).toBe('/sims/import');
  });

  it('never shows another enterprise’s SIMs, not even when searched for', async () => {
    const all = await admin.get('/sims');
    expect(all.text).not.toContain(globexSim.iccid);
    const searched = await admin.get(`/sims?q=${globexSim.iccid}`);
    expect(searched.status).toBe(200);
    expect(iccidsOf(page(searched.text))).toEqual([]);
    expect(page(searched.text).text).toContain(`No SIMs match “${globexSim.iccid}”.`);
    const theirs = await globexAdmin.get('/sims');
    expect(theirs.text).toContain(globexSim.iccid);
    for (const s of acmeSims) expect(theirs.text).not.toContain(s.iccid);
  });

  it('filters by status', async () => {
    const active = page((await admin.get('/sims?status=active')).text);
    expect(iccidsOf(active)).toEqual([linked.sim.iccid]);
    expect(active.rows('SIMs, Active')).toHaveLength(1);
    expect(active.field('Status').value).toBe('active');
    const unknown = await admin.get('/sims?status=bogus');
    expect(unknown.status).toBe(200);
    expect(iccidsOf(page(unknown.text))).toContain(linked.sim.iccid);
    expect(iccidsOf(page(unknown.text))).toHaveLength(3);
  });

  it('searches by the start of an ICCID, IMSI or EID (spaces allowed), and says when the search is not digits', async () => {
    const [a, b] = acmeSims;
    for (const q of [a.iccid.slice(0, 18), a.imsi, `${a.eid!.slice(0, 4)} ${a.eid!.slice(4, 30)}`]) {
      const res = await admin.get(`/sims?q=${encodeURIComponent(q)}`);
      expect(iccidsOf(page(res.text)), q).toContain(a.iccid);
      expect(iccidsOf(page(res.text)), q).not.toContain(b.iccid);
    }
    const words = page((await admin.get('/sims?q=meter')).text);
    expect(words.text).toContain(
      'Only digits are searched, and “meter” has other characters in it. Search by the first digits of an ICCID, IMSI or EID.',
    );
    expect(words.text).not.toContain('No SIMs match');
    expect(words.queryByRole('table')).toBeNull();
    const htmx = await admin.get('/sims?q=8944a').set('HX-Request', 'true');
    expect(page(htmx.text).text).toContain('Only digits are searched, and “8944a” has other characters in it.');
  });

  it('an htmx search gets only the results, which the form targets', async () => {
    const form = page((await admin.get('/sims')).text).getByRole('search', { name: 'SIMs' });
    expect([form.getAttribute('method'), form.getAttribute('action')]).toEqual(['get', '/sims']);
    expect(['hx-get', 'hx-target', 'hx-swap', 'hx-push-url'].map((a) => form.getAttribute(a))).toEqual([
      '/sims',
      '#sims-results',
      'outerHTML',
      'true',
    ]);
    const res = await admin.get(`/sims?q=${acmeSims[0].iccid}`).set('HX-Request', 'true');
    expect(res.status).toBe(200);
    expect(res.headers.vary).toContain('HX-Request');
    const results = page(res.text);
    expect(results.isDocument).toBe(false);
    expect(results.root?.id).toBe('sims-results');
    expect(iccidsOf(results)).toEqual([acmeSims[0].iccid]);
    expect(results.queryByRole('list', { name: 'SIMs by status' })).toBeNull();
  });

  it('pages with Next and Previous (keyset on ICCID), each a full page without JavaScript', async () => {
    const big = await createEnterprise(em, 'Big');
    const bigAdmin = (await signedIn(app, em, big, 'admin')).agent;
    const sims: TestSim[] = [];
    for (let i = 0; i < 60; i++) sims.push(await readySim(em, big));
    const ordered = sims.map((s) => s.iccid).sort();

    const first = page((await bigAdmin.get('/sims')).text);
    expect(iccidsOf(first)).toEqual(ordered.slice(0, 50));
    expect(first.link('Previous')).toBeNull();
    const next = first.getByRole('link', { name: 'Next' });
    expect(next.getAttribute('href')).toBe(`/sims?after=${ordered[49]}`);
    // htmx follows it in place and keeps the address; without JavaScript it is an ordinary link.
    expect(['hx-get', 'hx-target', 'hx-swap', 'hx-push-url'].map((a) => next.getAttribute(a))).toEqual([
      `/sims?after=${ordered[49]}`,
      '#sims-results',
      'outerHTML',
      'true',
    ]);

    const second = page((await bigAdmin.get(next.getAttribute('href')!)).text);
    expect(second.isDocument).toBe(true);
    expect(iccidsOf(second)).toEqual(ordered.slice(50));
    expect(second.link('Next')).toBeNull();
    expect(second.link('Previous')).toBe(`/sims?before=${ordered[50]}`);
    const back = page((await bigAdmin.get(second.link('Previous')!)).text);
    expect(iccidsOf(back)).toEqual(ordered.slice(0, 50));
    expect(back.link('Previous')).toBeNull();

    // The filter and search travel with the page links.
    const filtered = page((await bigAdmin.get('/sims?status=ready&q=89')).text);
    expect(filtered.link('Next')).toBe(`/sims?status=ready&q=89&after=${ordered[49]}`);
  });

  it('a viewer sees the inventory but no Import SIMs button', async () => {
    const res = await viewer.get('/sims');
    expect(res.status).toBe(200);
    expect(iccidsOf(page(res.text))).toContain(acmeSims[0].iccid);
    expect(page(res.text).link('Import SIMs')).toBeNull();
    expect(page(res.text).text).not.toContain('Import SIMs');
  });
});

describe('GET /sims/import', () => {
  it('shows the upload form: multipart, the CSRF token in the action, "CSV file" and "Import SIMs"', async () => {
    const res = await admin.get('/sims/import');
    expect(res.status).toBe(200);
    const shown = page(res.text);
    expect(shown.title).toBe('Import SIMs – SIM Link');
    expect(shown.heading).toBe('Import SIMs');
    const file = shown.field('CSV file').element;
    expect([file.getAttribute('type'), file.getAttribute('name')]).toEqual(['file', 'file']);
    const form = file.closest('form')!;
    expect(form.getAttribute('method')).toBe('post');
    expect(form.getAttribute('enctype')).toBe('multipart/form-data');
    const action = new URL(form.getAttribute('action')!, 'http://x');
    expect(action.pathname).toBe('/sims/import');
    expect(action.searchParams.get('_csrf')).toBe(shown.hidden('_csrf'));
    expect(shown.button('Import SIMs')?.closest('form')).toBe(form);
  });

  it('is not for viewers (403)', async () => {
    const res = await viewer.get('/sims/import');
    expect(res.status).toBe(403);
  });
});

describe('POST /sims/import', () => {
  it('imports a valid file: 303 to /sims, "N SIMs imported" there, the SIMs and one event in the database', async () => {
    const { text, iccids } = csvRows(3);
    const [sims, events] = [await simCount(), await importEvents()];
    const res = await upload(admin, text);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/sims');
    expect(await simCount()).toBe(sims + 3);
    expect(await importEvents()).toBe(events + 1);
    expect(
      await count(`select 1 from sim where enterprise_id = ? and status = 'ready' and iccid = any(?::text[])`, [
        acme.id,
        `{${iccids.join(',')}}`,
      ]),
    ).toBe(3);

    const shown = page((await admin.get('/sims')).text);
    expect(shown.flash).toBe('3 SIMs imported');
    for (const iccid of iccids) expect(iccidsOf(shown)).toContain(iccid);
    // Shown once.
    expect(page((await admin.get('/sims')).text).flash).toBe('');
  });

  it('a file with one bad line imports nothing: 422, the error summary and the report table, downloadable as CSV', async () => {
    const { text, iccids } = csvRows(3);
    const bad = text.replace(iccids[1], `${iccids[1].slice(0, -1)}${(Number(iccids[1].at(-1)) + 1) % 10}`);
    const [sims, events] = [await simCount(), await importEvents()];
    const res = await upload(admin, bad, { filename: 'batch-7.csv' });
    expect(res.status).toBe(422);
    const refused = page(res.text);
    expect(refused.title).toBe('Error: Import SIMs – SIM Link');
    expect(refused.getByRole('alert').querySelector('h2')?.textContent).toBe('There is a problem');
    expect(refused.errors()).toEqual([
      { message: expect.stringMatching(/^1 line of the file has problems, so no SIMs were imported\./), href: '#import-report' },
    ]);
    const report = refused.within(refused.getByRole('region', { name: 'Problems in batch-7.csv' }));
    expect(report.columns()).toEqual(['Line', 'Field', 'Problem']);
    expect(report.rows()).toEqual([['3', 'ICCID', 'ICCID check digit is wrong']]);
    expect(await simCount()).toBe(sims);
    expect(await importEvents()).toBe(events);

    const link = report.getByRole('link', { name: 'Download the report (CSV)' });
    expect(link.getAttribute('download')).toBe('sim-import-problems.csv');
    const href = link.getAttribute('href')!;
    expect(href.startsWith('data:text/csv;charset=utf-8,')).toBe(true);
    const csv = decodeURIComponent(href.slice('data:text/csv;charset=utf-8,'.length));
    expect(csv).toBe('\ufeffline,field,problem\r\n3,ICCID,ICCID check digit is wrong\r\n');
  });

  it('a duplicate of another enterprise’s SIM is refused, named without saying whose', async () => {
    const { text } = csvRows(1);
    const dup = `${text}${globexSim.iccid},${imsiFor(SERIES, 999_999)},,\n`;
    const sims = await simCount();
    const res = await upload(admin, dup);
    expect(res.status).toBe(422);
    expect(page(res.text).rows('Problems found')).toEqual([['3', 'ICCID', `ICCID ${globexSim.iccid} is already in SIM Link`]]);
    expect(page(res.text).text).not.toContain('Globex');
    expect(await simCount()).toBe(sims);
  });

  it('a file that cannot be imported at all says why beside the file field', async () => {
    const sims = await simCount();
    const res = await upload(admin, 'iccid,eid\n');
    expect(res.status).toBe(422);
    const refused = page(res.text);
    expect(refused.errors()).toEqual([
      { message: expect.stringMatching(/^The header \(line 1\) is missing the column imsi\./), href: '#file' },
    ]);
    const file = refused.field('CSV file');
    expect(file.invalid).toBe(true);
    expect(file.error).toBe(refused.errors()[0].message);
    expect(file.element.id).toBe('file');
    const empty = await upload(admin, '', { filename: 'empty.csv' });
    expect(empty.status).toBe(422);
    expect(page(empty.text).field('CSV file').error).toContain('“empty.csv” is empty');
    const workbook = await upload(admin, 'x', {
      filename: 'sims.xlsx',
      contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    });
    expect(workbook.status).toBe(422);
    expect(page(workbook.text).field('CSV file').error).toContain('must be a CSV file');
    expect(await simCount()).toBe(sims);
  });

  it('no file chosen', async () => {
    const token = await csrfToken(admin, '/sims/import');
    const res = await admin
      .post(`/sims/import?_csrf=${encodeURIComponent(token)}`)
      .attach('file', Buffer.alloc(0), { filename: '', contentType: 'application/octet-stream' });
    expect(res.status).toBe(422);
    expect(page(res.text).errors()).toEqual([{ message: 'Choose a CSV file to import', href: '#file' }]);
    expect(page(res.text).field('CSV file').error).toBe('Choose a CSV file to import');
  });

  it('a form that is not multipart gets 415', async () => {
    const token = await csrfToken(admin, '/sims/import');
    const res = await admin.post('/sims/import').type('form').send({ _csrf: token, file: 'iccid,imsi' });
    expect(res.status).toBe(415);
    expect(page(res.text).text).toContain('Choose a CSV file to import');
  });

  it('a file over 50 MB is refused with a clear message, nothing imported', async () => {
    const sims = await simCount();
    const big = Buffer.concat([Buffer.from('iccid,imsi,eid,msisdn\n'), Buffer.alloc(50 * 1024 * 1024 + 10, '\n')]);
    const res = await upload(admin, big);
    expect(res.status).toBe(422);
    expect(page(res.text).field('CSV file').error).toContain('The file is larger than 50 MB.');
    expect(await simCount()).toBe(sims);
  }, 60_000);

  it('with htmx: success sends the browser to /sims (HX-Redirect), a refusal swaps in the form with the report', async () => {
    const ok = await upload(admin, csvRows(2).text, { htmx: true });
    expect(ok.status).toBe(204);
    expect(ok.headers['hx-redirect']).toBe('/sims');
    expect(page((await admin.get('/sims')).text).flash).toBe('2 SIMs imported');

    const refused = await upload(admin, 'iccid,imsi\n1,2\n', { htmx: true });
    expect(refused.status).toBe(422);
    const swapped = page(refused.text);
    expect(swapped.isDocument).toBe(false);
    expect(swapped.root?.id).toBe('sims-import');
    expect(swapped.heading).toBe('Import SIMs');
    expect(swapped.headings).toContain('There is a problem');
    expect(swapped.errors()).not.toEqual([]);
  });

  it('a viewer’s POST is refused (403) and changes nothing', async () => {
    const sims = await simCount();
    const res = await upload(viewer, csvRows(2).text);
    expect(res.status).toBe(403);
    expect(await simCount()).toBe(sims);
  });

  it('without the CSRF token, or with a wrong one: 403 and nothing changed', async () => {
    const sims = await simCount();
    const events = await importEvents();
    const missing = await upload(admin, csvRows(2).text, { token: null });
    expect(missing.status).toBe(403);
    const wrong = await upload(admin, csvRows(2).text, { token: 'not-the-token' });
    expect(wrong.status).toBe(403);
    expect(page(wrong.text).text).toContain('Nothing was changed');
    expect(await simCount()).toBe(sims);
    expect(await importEvents()).toBe(events);
  });
});
