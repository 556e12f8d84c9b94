// Download CSV at 100,000 rows (issue 17): the Endpoints, SIMs and History exports hold every row matching
// the filter and search, once, in the screen's order, and parse back with csv-parse; values a spreadsheet
// would read as a formula start with '; UTF-8 with a byte-order mark and a header row. The SIMs export of
// 100,000 SIMs is imported into another enterprise through the real import. And the download streams:
// its first bytes arrive after a page or two of the query, and a client that stops reading stops the reads.
// One database for the file, seeded in bulk (seedBulk and set-based SQL): about 25 s, then about 80 s for the
// tests (half of it the 100,000-SIM import), measured on the shared 2-core machine at a load average of 8–12.
import { request, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { parse } from 'csv-parse/sync';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp } from '../helpers/app.js';
import { injectSignIn, signedIn, type Agent } from '../helpers/session.js';
import { createEnterprise, type TestEnterprise } from '../factories/index.js';
import { seedBulk } from '../../src/db/seed-bulk.js';
import { importSims } from '../../src/domain/sim-import.js';
import { actorFor } from '../domain/support.js';

// Counts the pages the SIMs export reads (the real reads, only counted).
const simPages = vi.hoisted(() => ({ count: 0 }));
vi.mock('../../src/domain/queries/sims.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/domain/queries/sims.js')>();
  return {
    ...original,
    listSims: (...args: Parameters<typeof original.listSims>) => {
      simPages.count++;
      return original.listSims(...args);
    },
    simsExportPage: (...args: Parameters<typeof original.simsExportPage>) => {
      simPages.count++;
      return original.simsExportPage(...args);
    },
  };
});

const ROWS = 100_000;

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let viewer: Agent;
let viewerEmail: string;

/** What a spreadsheet-safe cell holds for a value: a leading ' before =, +, - and @ (SPEC.md §7). */
const safe = (value: string | null) => (value === null ? '' : /^[=+\-@]/.test(value) ? `'${value}` : value);

function records(text: string): string[][] {
  expect(text.startsWith('\ufeff')).toBe(true);
  return parse(text.slice(1), { relax_column_count: false }) as string[][];
}

/** The same rows in the same order: the length, then the first row that differs (not a 100,000-row diff). */
function expectSameRows(actual: string[][], expected: string[][]) {
  expect(actual.length).toBe(expected.length);
  const at = actual.findIndex((row, i) => row.join('\u0001') !== expected[i].join('\u0001'));
  expect(at === -1 ? null : { line: at + 2, actual: actual[at], expected: expected[at] }).toBeNull();
}

async function download(path: string, agent: Agent = viewer): Promise<string[][]> {
  const res = await agent.get(path).buffer(true);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
  return records(res.text);
}

async function sql(text: string, params: unknown[] = []): Promise<string[][]> {
  const rows = await em.fork().execute<Record<string, unknown>[]>(text, params);
  return rows.map((row) => Object.values(row).map((v) => (v === null ? '' : v instanceof Date ? v.toISOString() : String(v))));
}

beforeAll(async () => {
  const started = Date.now();
  db = await createTestDatabase();
  app = await buildTestApp(db);
  em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme');
  await createEnterprise(em, 'Globex').then((globex) => seedBulk(em.fork(), { enterprise: globex.slug, sims: 1_000, endpoints: 1_000 }));
  await seedBulk(em.fork(), { enterprise: acme.slug, sims: ROWS, endpoints: ROWS, linked: 30_000 });
  // Names a spreadsheet would take for formulas, and UTF-8 with the characters CSV quotes.
  await em.execute(
    `update endpoint set name = (array['=SUM(A1:A9)', '+44 meter', '-12 meter', '@ops meter', 'Zähler "Nord", Straße ✓'])[1 + id % 5] || ' ' || id
     where enterprise_id = ? and id % 7 = 0`,
    [acme.id],
  );
  // 100,000 events by SQL (the audit trail is append-only, so this is how a long history is made quickly).
  await em.execute(
    `insert into event (enterprise_id, actor_name, action, endpoint_id, endpoint_name, sim_iccid,
                        endpoint_status_before, endpoint_status_after, sim_status_before, sim_status_after, source, created_at)
     select ?, (array['=cmd|calc', '-root', 'Jürgen Müller', '@admin', 'Ana'])[1 + g % 5],
            (array['sim.linked', 'sim.delinked', 'endpoint.activated'])[1 + g % 3],
            e.id, e.name, s.iccid, 'hold', 'pre_active', 'ready', 'pre_active',
            (array['ui', 'api', 'bulk', 'crm'])[1 + g % 4], now() - make_interval(secs => ? - g)
     from generate_series(1, ?) g
     join (select id, name, sim_id, row_number() over (order by id) - 1 as k from endpoint where enterprise_id = ? order by id limit 500) e
       on e.k = g % 500
     left join sim s on s.id = e.sim_id`,
    [acme.id, ROWS, ROWS, acme.id],
  );
  await em.execute('analyze');
  const signed = await signedIn(app, em.fork(), acme, 'viewer');
  viewer = signed.agent;
  viewerEmail = signed.user.email;
  console.log(`seeded ${ROWS.toLocaleString('en')} SIMs, endpoints and events in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 180_000);
afterAll(async () => {
  await app?.close();
  await db?.close();
});

const ENDPOINT_ROWS = `select e.id, e.name, e.imei, e.status, s.iccid from endpoint e left join sim s on s.id = e.sim_id`;
/** Endpoints as the export writes them: the name spreadsheet-safe. */
const endpointRows = async (where: string, params: unknown[]) =>
  (await sql(`${ENDPOINT_ROWS} where ${where} order by e.name, e.id`, params)).map(([id, name, ...rest]) => [id, safe(name), ...rest]);

describe('Download CSV at 100,000 rows', () => {
  it('Endpoints: every endpoint once, in name order, spreadsheet-safe and UTF-8; the status filter and search apply', async () => {
    const all = await download('/endpoints/export.csv');
    expect(all[0]).toEqual(['id', 'name', 'imei', 'status', 'iccid']);
    const expected = await endpointRows('e.enterprise_id = ?', [acme.id]);
    expect(expected.length).toBeGreaterThanOrEqual(ROWS);
    expectSameRows(all.slice(1), expected);
    expect(new Set(all.slice(1).map((r) => r[0])).size).toBe(expected.length);
    const names = all.slice(1).map((r) => r[1]);
    for (const formula of ["'=SUM(A1:A9) ", "'+44 meter ", "'-12 meter ", "'@ops meter "]) {
      expect(names.filter((n) => n.startsWith(formula)).length).toBeGreaterThan(2_000);
    }
    expect(names.filter((n) => /^Zähler "Nord", Straße ✓ \d+$/.test(n)).length).toBeGreaterThan(2_000);

    const active = await download('/endpoints/export.csv?status=active&q=Bulk%20endpoint%201');
    const expectedActive = await endpointRows(`e.enterprise_id = ? and e.status = 'active' and lower(e.name) like 'bulk endpoint 1%'`, [
      acme.id,
    ]);
    expect(expectedActive.length).toBeGreaterThan(2_000);
    expectSameRows(active.slice(1), expectedActive);

    // Digits search the names and the linked SIM's ICCID.
    const [[iccid]] = await sql(`select s.iccid from endpoint e join sim s on s.id = e.sim_id where e.enterprise_id = ? limit 1`, [
      acme.id,
    ]);
    const prefix = iccid.slice(0, 14);
    const byIccid = await download(`/endpoints/export.csv?q=${prefix}`);
    const expectedByIccid = await endpointRows('e.enterprise_id = ? and (lower(e.name) like ? or s.iccid like ?)', [
      acme.id,
      `${prefix}%`,
      `${prefix}%`,
    ]);
    expect(expectedByIccid.length).toBeGreaterThan(1_000);
    expectSameRows(byIccid.slice(1), expectedByIccid);
  }, 60_000);

  it('SIMs: every SIM once, in ICCID order, in the Import SIMs columns; the status filter and search apply', async () => {
    const all = await download('/sims/export.csv');
    expect(all[0]).toEqual(['iccid', 'imsi', 'eid', 'msisdn']);
    const expected = await sql(`select iccid, imsi, eid, msisdn from sim where enterprise_id = ? order by iccid`, [acme.id]);
    expect(expected.length).toBe(ROWS);
    expectSameRows(all.slice(1), expected);
    expect(new Set(all.slice(1).map((r) => r[0])).size).toBe(ROWS);

    const [[imsi]] = await sql(`select imsi from sim where enterprise_id = ? and status = 'ready' order by iccid limit 1`, [acme.id]);
    const prefix = imsi.slice(0, 11);
    const ready = await download(`/sims/export.csv?status=ready&q=${prefix}`);
    const expectedReady = await sql(
      `select iccid, imsi, eid, msisdn from sim where enterprise_id = ? and status = 'ready'
       and (iccid like ? or imsi like ? or eid like ?) order by iccid`,
      [acme.id, `${prefix}%`, `${prefix}%`, `${prefix}%`],
    );
    expect(expectedReady.length).toBeGreaterThan(1_000);
    expectSameRows(ready.slice(1), expectedReady);
  }, 60_000);

  it('History: every event once, newest first, spreadsheet-safe; the action and endpoint filters apply', async () => {
    const all = await download('/events/export.csv');
    expect(all[0]).toEqual([
      'id',
      'time',
      'action',
      'actor',
      'source',
      'endpoint_id',
      'endpoint_name',
      'iccid',
      'old_iccid',
      'endpoint_status_before',
      'endpoint_status_after',
      'sim_status_before',
      'sim_status_after',
      'count',
    ]);
    const columns = `id, to_json(created_at) #>> '{}' as time, action, actor_name, source, endpoint_id, endpoint_name, sim_iccid,
      old_sim_iccid, endpoint_status_before, endpoint_status_after, sim_status_before, sim_status_after, count`;
    // The time as JavaScript writes it (milliseconds); the actor and endpoint name spreadsheet-safe.
    const safeRow = (row: string[]) => row.map((v, i) => (i === 1 ? new Date(v).toISOString() : i === 3 || i === 6 ? safe(v) : v));
    const expected = (await sql(`select ${columns} from event where enterprise_id = ? order by id desc`, [acme.id])).map(safeRow);
    expect(expected.length).toBeGreaterThanOrEqual(ROWS);
    expectSameRows(all.slice(1), expected);
    const actors = new Set(all.slice(1).map((r) => r[3]));
    expect([...actors].sort()).toEqual(["'-root", "'=cmd|calc", "'@admin", 'Ana', 'Jürgen Müller']);

    const delinked = await download('/events/export.csv?action=sim.delinked');
    const expectedDelinked = (
      await sql(`select ${columns} from event where enterprise_id = ? and action = 'sim.delinked' order by id desc`, [acme.id])
    ).map(safeRow);
    expect(expectedDelinked.length).toBeGreaterThan(30_000);
    expectSameRows(delinked.slice(1), expectedDelinked);

    const [[endpointId]] = await sql(`select endpoint_id from event where enterprise_id = ? order by id limit 1`, [acme.id]);
    const one = await download(`/events/export.csv?endpoint=${endpointId}`);
    const expectedOne = (await sql(`select ${columns} from event where endpoint_id = ? order by id desc`, [endpointId])).map(safeRow);
    expect(expectedOne.length).toBeGreaterThan(100);
    expectSameRows(one.slice(1), expectedOne);
  }, 60_000);

  it('the SIMs export of 100,000 SIMs is a valid Import SIMs file: imported into another enterprise, the same SIMs', async () => {
    const source = await createEnterprise(em.fork(), 'Source');
    await seedBulk(em.fork(), { enterprise: source.slug, sims: ROWS, endpoints: 0 });
    const { agent } = await signedIn(app, em.fork(), source, 'viewer');
    const res = await agent.get('/sims/export.csv').buffer(true);
    expect(res.status).toBe(200);
    const exported = records(res.text).slice(1);
    expect(exported).toHaveLength(ROWS);
    // The SIMs leave SIM Link (an ICCID is in one enterprise at most), then come back into Target from the file.
    await em.fork().execute('delete from sim where enterprise_id = ?', [source.id]);
    const target = await createEnterprise(em.fork(), 'Target');
    const actor = await actorFor(em.fork(), target, 'admin');
    const outcome = await importSims(
      em.fork(),
      { actor },
      { stream: Readable.from([Buffer.from(res.text)]), filename: 'sims.csv', mimetype: 'text/csv' },
    );
    expect(outcome.ok ? null : outcome.report.problems.slice(0, 5)).toBeNull();
    const imported = await sql(`select iccid, imsi, eid, msisdn from sim where enterprise_id = ? order by iccid`, [target.id]);
    expectSameRows(imported, exported);
    expect(exported.some((r) => r[2] === '') && exported.some((r) => r[3] === '')).toBe(true);
  }, 90_000);

  it('streams: the first bytes come after a page of the query; a client that stops reading stops the reads, one that leaves ends them', async () => {
    const { cookie } = await injectSignIn(app, viewerEmail);
    expect(cookie).not.toBe('');
    // The whole download, read slowly at first: paused for a second after the first bytes. Through app.inject
    // (no socket, so no kernel buffers between the app and the reader: what the app reads ahead is its own).
    simPages.count = 0;
    const res = await app.inject({ method: 'GET', url: '/sims/export.csv', headers: { cookie }, payloadAsStream: true });
    expect(res.statusCode).toBe(200);
    const body = res.stream();
    const first = await new Promise<Buffer>((resolve) =>
      body.once('data', (chunk: Buffer) => {
        body.pause();
        resolve(chunk);
      }),
    );
    const pagesAtFirstBytes = simPages.count;
    await sleep(1_000);
    const pagesWhilePaused = simPages.count;
    let bytes = first.length;
    let lines = first.filter((byte) => byte === 10).length;
    for await (const chunk of body) {
      bytes += (chunk as Buffer).length;
      for (const byte of chunk as Buffer) if (byte === 10) lines++;
    }
    const pagesTotal = simPages.count;
    console.log(
      `SIMs export: first ${first.length} bytes after ${pagesAtFirstBytes} page(s); ${pagesWhilePaused} of ${pagesTotal} pages read ` +
        `while the client paused for 1 s; ${bytes} bytes`,
    );
    expect(lines).toBe(ROWS + 1);
    expect(pagesTotal).toBeGreaterThanOrEqual(10);
    expect(pagesAtFirstBytes).toBeLessThanOrEqual(2);
    expect(pagesWhilePaused).toBeLessThanOrEqual(3);

    // A client that goes away (its socket closed) after the first bytes: the reads stop.
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    simPages.count = 0;
    const left = await new Promise<IncomingMessage>((resolve, reject) =>
      request({ host: '127.0.0.1', port, path: '/sims/export.csv', headers: { cookie } }, resolve).on('error', reject).end(),
    );
    expect(left.statusCode).toBe(200);
    await new Promise((resolve) => left.once('data', resolve));
    left.destroy();
    await sleep(500);
    const pagesAfterLeaving = simPages.count;
    await sleep(500);
    console.log(`SIMs export: ${pagesAfterLeaving} of ${pagesTotal} pages read when the client left after the first bytes`);
    expect(simPages.count).toBe(pagesAfterLeaving);
    expect(pagesAfterLeaving).toBeLessThan(pagesTotal / 2);
  }, 60_000);
});
