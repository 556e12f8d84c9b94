// The SIMs screens over HTTP: the inventory (filter, search, keyset pages, counts, tenant scope) and the
// CSV import form — status, what the page says, and the database read back after each POST.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { countRows, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { csrfToken, signedIn, type Agent } from '../helpers/session.js';
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
    expect(res.text).toContain('<title>SIMs – SIM Link</title>');
    expect(res.text).toContain('<a href="/sims" aria-current="page">SIMs</a>');
    expect(res.text).toMatch(/<caption id="sims-caption">SIMs<\/caption>/);
    for (const col of ['ICCID', 'IMSI', 'EID', 'MSISDN', 'Status', 'Endpoint']) expect(res.text).toContain(`<th scope="col">${col}</th>`);
    for (const s of acmeSims) expect(res.text).toContain(`<td class="mono">${s.iccid}</td>`);
    expect(res.text).toContain(`<a href="/endpoints/${linked.endpoint.id}">${linked.endpoint.name}</a>`);
    expect(res.text).toMatch(/Ready to Activate<\/a> <span class="sims-count">2<\/span>/);
    expect(res.text).toMatch(/Active<\/a> <span class="sims-count">1<\/span>/);
    expect(res.text).toMatch(/All SIMs<\/a> <span class="sims-count">3<\/span>/);
    expect(res.text).toContain('<a href="/sims/import" class="button">Import SIMs</a>');
  });

  it('never shows another enterprise’s SIMs, not even when searched for', async () => {
    const all = await admin.get('/sims');
    expect(all.text).not.toContain(globexSim.iccid);
    const searched = await admin.get(`/sims?q=${globexSim.iccid}`);
    expect(searched.status).toBe(200);
    expect(searched.text).not.toContain(`<td class="mono">${globexSim.iccid}</td>`);
    expect(searched.text).toContain('No SIMs match');
    const theirs = await globexAdmin.get('/sims');
    expect(theirs.text).toContain(globexSim.iccid);
    for (const s of acmeSims) expect(theirs.text).not.toContain(s.iccid);
  });

  it('filters by status', async () => {
    const res = await admin.get('/sims?status=active');
    expect(res.text).toContain(`<td class="mono">${linked.sim.iccid}</td>`);
    expect(res.text).not.toContain(`<td class="mono">${acmeSims[0].iccid}</td>`);
    expect(res.text).toContain('<caption id="sims-caption">SIMs, Active</caption>');
    expect(res.text).toContain('<option value="active" selected>Active</option>');
    const unknown = await admin.get('/sims?status=bogus');
    expect(unknown.status).toBe(200);
    expect(unknown.text).toContain(`<td class="mono">${linked.sim.iccid}</td>`);
  });

  it('searches by the start of an ICCID, IMSI or EID (spaces allowed), and says when the search is not digits', async () => {
    const [a, b] = acmeSims;
    for (const q of [a.iccid.slice(0, 18), a.imsi, `${a.eid!.slice(0, 4)} ${a.eid!.slice(4, 30)}`]) {
      const res = await admin.get(`/sims?q=${encodeURIComponent(q)}`);
      expect(res.text, q).toContain(`<td class="mono">${a.iccid}</td>`);
      expect(res.text, q).not.toContain(`<td class="mono">${b.iccid}</td>`);
    }
    const words = await admin.get('/sims?q=meter');
    expect(words.text).toContain(
      '<p class="empty">Only digits are searched, and “meter” has other characters in it. Search by the first digits of an ICCID, IMSI or EID.</p>',
    );
    expect(words.text).not.toContain('No SIMs match');
    const htmx = await admin.get('/sims?q=8944a').set('HX-Request', 'true');
    expect(htmx.text).toContain('Only digits are searched, and “8944a” has other characters in it.');
  });

  it('an htmx search gets only the results, which the form targets', async () => {
    const page = await admin.get('/sims');
    expect(page.text).toMatch(
      /<form method="get" action="\/sims"[^>]*hx-get="\/sims" hx-target="#sims-results" hx-swap="outerHTML" hx-push-url="true"/,
    );
    const res = await admin.get(`/sims?q=${acmeSims[0].iccid}`).set('HX-Request', 'true');
    expect(res.status).toBe(200);
    expect(res.headers.vary).toContain('HX-Request');
    expect(res.text.trimStart()).toMatch(/^<div id="sims-results"/);
    expect(res.text).not.toContain('<html');
    expect(res.text).not.toContain('sims-count');
  });

  it('pages with Next and Previous (keyset on ICCID), each a full page without JavaScript', async () => {
    const big = await createEnterprise(em, 'Big');
    const bigAdmin = (await signedIn(app, em, big, 'admin')).agent;
    const sims: TestSim[] = [];
    for (let i = 0; i < 60; i++) sims.push(await readySim(em, big));
    const ordered = sims.map((s) => s.iccid).sort();

    const first = await bigAdmin.get('/sims');
    const iccidsOf = (html: string) => [...html.matchAll(/<tr id="sim-\d+">\s*<td class="mono">(\d+)<\/td>/g)].map((m) => m[1]);
    expect(iccidsOf(first.text)).toEqual(ordered.slice(0, 50));
    expect(first.text).not.toContain('rel="prev"');
    const next = first.text.match(
      /<a href="([^"]+)" hx-get="[^"]+" hx-target="#sims-results" hx-swap="outerHTML" hx-push-url="true" rel="next">Next<\/a>/,
    );
    expect(next?.[1]).toBe(`/sims?after=${ordered[49]}`);

    const second = await bigAdmin.get(next![1]);
    expect(second.text).toContain('<html');
    expect(iccidsOf(second.text)).toEqual(ordered.slice(50));
    expect(second.text).not.toContain('rel="next"');
    const previous = second.text.match(/<a href="([^"]+)"[^>]*rel="prev">Previous<\/a>/);
    expect(previous?.[1]).toBe(`/sims?before=${ordered[50]}`);
    const back = await bigAdmin.get(previous![1]);
    expect(iccidsOf(back.text)).toEqual(ordered.slice(0, 50));
    expect(back.text).not.toContain('rel="prev"');

    // The filter and search travel with the page links.
    const filtered = await bigAdmin.get('/sims?status=ready&q=89');
    expect(filtered.text).toContain(`/sims?status=ready&amp;q=89&amp;after=${ordered[49]}`);
  });

  it('a viewer sees the inventory but no Import SIMs button', async () => {
    const res = await viewer.get('/sims');
    expect(res.status).toBe(200);
    expect(res.text).toContain(acmeSims[0].iccid);
    expect(res.text).not.toContain('Import SIMs');
  });
});

describe('GET /sims/import', () => {
  it('shows the upload form: multipart, the CSRF token in the action, "CSV file" and "Import SIMs"', async () => {
    const res = await admin.get('/sims/import');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<title>Import SIMs – SIM Link</title>');
    expect(res.text).toMatch(/<form method="post" action="\/sims\/import\?_csrf=[^"]+" enctype="multipart\/form-data"/);
    expect(res.text).toContain('<label for="file">CSV file</label>');
    expect(res.text).toContain('<input id="file" name="file" type="file"');
    expect(res.text).toMatch(/<button type="submit" class="button">Import SIMs<\/button>/);
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

    const page = await admin.get('/sims');
    expect(page.text).toContain('<p class="flash flash-success">3 SIMs imported</p>');
    for (const iccid of iccids) expect(page.text).toContain(iccid);
    // Shown once.
    expect((await admin.get('/sims')).text).not.toContain('3 SIMs imported');
  });

  it('a file with one bad line imports nothing: 422, the error summary and the report table, downloadable as CSV', async () => {
    const { text, iccids } = csvRows(3);
    const bad = text.replace(iccids[1], `${iccids[1].slice(0, -1)}${(Number(iccids[1].at(-1)) + 1) % 10}`);
    const [sims, events] = [await simCount(), await importEvents()];
    const res = await upload(admin, bad, { filename: 'batch-7.csv' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('<title>Error: Import SIMs – SIM Link</title>');
    expect(res.text).toContain('There is a problem');
    expect(res.text).toContain('<a href="#import-report">1 line of the file has problems, so no SIMs were imported.');
    expect(res.text).toContain('Problems in batch-7.csv');
    expect(res.text).toMatch(/<th scope="col">Line<\/th><th scope="col">Field<\/th><th scope="col">Problem<\/th>/);
    expect(res.text).toContain('<tr><td>3</td><td>ICCID</td><td>ICCID check digit is wrong</td></tr>');
    expect(await simCount()).toBe(sims);
    expect(await importEvents()).toBe(events);

    const link = res.text.match(
      /<a href="data:text\/csv;charset=utf-8,([^"]+)" download="sim-import-problems.csv"[^>]*>Download the report \(CSV\)<\/a>/,
    );
    expect(link).not.toBeNull();
    const csv = decodeURIComponent(link![1].replace(/&#39;/g, "'"));
    expect(csv).toBe('\ufeffline,field,problem\r\n3,ICCID,ICCID check digit is wrong\r\n');
  });

  it('a duplicate of another enterprise’s SIM is refused, named without saying whose', async () => {
    const { text } = csvRows(1);
    const dup = `${text}${globexSim.iccid},${imsiFor(SERIES, 999_999)},,\n`;
    const sims = await simCount();
    const res = await upload(admin, dup);
    expect(res.status).toBe(422);
    expect(res.text).toContain(`<tr><td>3</td><td>ICCID</td><td>ICCID ${globexSim.iccid} is already in SIM Link</td></tr>`);
    expect(res.text).not.toContain('Globex');
    expect(await simCount()).toBe(sims);
  });

  it('a file that cannot be imported at all says why beside the file field', async () => {
    const sims = await simCount();
    const res = await upload(admin, 'iccid,eid\n');
    expect(res.status).toBe(422);
    expect(res.text).toContain('<a href="#file">The header (line 1) is missing the column imsi.');
    expect(res.text).toContain(
      '<p class="error-message" id="file-error"><span class="visually-hidden">Error:</span> The header (line 1) is missing the column imsi.',
    );
    expect(res.text).toContain('aria-describedby="file-error" aria-invalid="true"');
    const empty = await upload(admin, '', { filename: 'empty.csv' });
    expect(empty.status).toBe(422);
    expect(empty.text).toContain('“empty.csv” is empty');
    const workbook = await upload(admin, 'x', {
      filename: 'sims.xlsx',
      contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    });
    expect(workbook.status).toBe(422);
    expect(workbook.text).toContain('must be a CSV file');
    expect(await simCount()).toBe(sims);
  });

  it('no file chosen', async () => {
    const token = await csrfToken(admin, '/sims/import');
    const res = await admin
      .post(`/sims/import?_csrf=${encodeURIComponent(token)}`)
      .attach('file', Buffer.alloc(0), { filename: '', contentType: 'application/octet-stream' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('<a href="#file">Choose a CSV file to import</a>');
  });

  it('a form that is not multipart gets 415', async () => {
    const token = await csrfToken(admin, '/sims/import');
    const res = await admin.post('/sims/import').type('form').send({ _csrf: token, file: 'iccid,imsi' });
    expect(res.status).toBe(415);
    expect(res.text).toContain('Choose a CSV file to import');
  });

  it('a file over 50 MB is refused with a clear message, nothing imported', async () => {
    const sims = await simCount();
    const big = Buffer.concat([Buffer.from('iccid,imsi,eid,msisdn\n'), Buffer.alloc(50 * 1024 * 1024 + 10, '\n')]);
    const res = await upload(admin, big);
    expect(res.status).toBe(422);
    expect(res.text).toContain('The file is larger than 50 MB.');
    expect(await simCount()).toBe(sims);
  }, 60_000);

  it('with htmx: success sends the browser to /sims (HX-Redirect), a refusal swaps in the form with the report', async () => {
    const ok = await upload(admin, csvRows(2).text, { htmx: true });
    expect(ok.status).toBe(204);
    expect(ok.headers['hx-redirect']).toBe('/sims');
    expect((await admin.get('/sims')).text).toContain('2 SIMs imported');

    const refused = await upload(admin, 'iccid,imsi\n1,2\n', { htmx: true });
    expect(refused.status).toBe(422);
    expect(refused.text.trimStart()).toMatch(/^<div id="sims-import"/);
    expect(refused.text).not.toContain('<html');
    expect(refused.text).toContain('There is a problem');
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
    expect(wrong.text).toContain('Nothing was changed');
    expect(await simCount()).toBe(sims);
    expect(await importEvents()).toBe(events);
  });
});
