// Download CSV on Endpoints, SIMs and History: every row matching the filter and search (across many pages of
// the export's 1,000-row batches), only the enterprise's own, spreadsheet-safe, UTF-8 with a header row; the
// SIMs export is a valid Import SIMs file (the import reads it and finds only SIMs already in SIM Link).
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { parse } from 'csv-parse/sync';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp } from '../helpers/app.js';
import { signedIn, type Agent } from '../helpers/session.js';
import { page } from '../helpers/page.js';
import {
  createEnterprise,
  holdEndpoint,
  linkedEndpoint,
  manyHoldEndpoints,
  manyReadySims,
  type TestEnterprise,
} from '../factories/index.js';
import { importSims } from '../../src/domain/sim-import.js';
import { delinkSim, linkSim } from '../../src/domain/lifecycle.js';
import { actorFor } from '../domain/support.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;
let viewer: Agent;

const records = (text: string) => parse(text.replace(/^\ufeff/, ''), { columns: true }) as Record<string, string>[];

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildTestApp(db);
  em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme');
  globex = await createEnterprise(em, 'Globex');
  viewer = (await signedIn(app, em, acme, 'viewer')).agent;
  await manyHoldEndpoints(em.fork(), acme, 2500);
  await manyReadySims(em.fork(), acme, 2500);
  await linkedEndpoint(em.fork(), acme, 'active');
  await holdEndpoint(em.fork(), acme, { name: '=HYPERLINK("http://evil.example","x")' });
  // Some history: a link and a de-link, twice.
  const admin = await actorFor(em.fork(), acme, 'admin');
  const [a, b] = await manyHoldEndpoints(em.fork(), acme, 2);
  const [s1, s2] = await manyReadySims(em.fork(), acme, 2);
  for (const [endpoint, sim] of [
    [a, s1],
    [b, s2],
  ] as const) {
    await linkSim(em.fork(), { actor: admin }, endpoint.id, sim.id);
    await delinkSim(em.fork(), { actor: admin }, endpoint.id);
  }
  await manyHoldEndpoints(em.fork(), globex, 10);
  await manyReadySims(em.fork(), globex, 10);
}, 60_000);
afterAll(async () => {
  await app?.close();
  await db?.close();
});

describe('Download CSV', () => {
  it('endpoints: every one of the enterprise, across batches, spreadsheet-safe; the status filter applies', async () => {
    const res = await viewer.get('/endpoints/export.csv');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe('attachment; filename="endpoints.csv"');
    expect(res.text.startsWith('\ufeffid,name,imei,status,iccid\r\n')).toBe(true);
    const all = records(res.text);
    const [{ n }] = await em.fork().execute<{ n: number }[]>('select count(*)::int as n from endpoint where enterprise_id = ?', [acme.id]);
    expect(all).toHaveLength(n);
    expect(new Set(all.map((r) => r.id)).size).toBe(n);
    expect(all.find((r) => r.name.includes('HYPERLINK'))?.name).toBe(`'=HYPERLINK("http://evil.example","x")`);
    const active = records((await viewer.get('/endpoints/export.csv?status=active')).text);
    expect(active.map((r) => r.status)).toEqual(['active']);
    expect(active[0].iccid).toMatch(/^89\d{17,18}$/);
  });

  it('SIMs: every one of the enterprise in the Import SIMs columns, a valid import file', async () => {
    const res = await viewer.get('/sims/export.csv?status=ready');
    expect(res.status).toBe(200);
    expect(res.text.startsWith('\ufefficcid,imsi,eid,msisdn\r\n')).toBe(true);
    const rows = records(res.text);
    const [{ n }] = await em
      .fork()
      .execute<{ n: number }[]>(`select count(*)::int as n from sim where enterprise_id = ? and status = 'ready'`, [acme.id]);
    expect(rows).toHaveLength(n);
    expect(rows.length).toBeGreaterThan(2000);
    // Importing it into another enterprise: the file is read, and every line is refused only because its SIM exists.
    const actor = await actorFor(em.fork(), globex, 'admin');
    const outcome = await importSims(
      em.fork(),
      { actor },
      { stream: Readable.from([Buffer.from(res.text)]), filename: 'sims.csv', mimetype: 'text/csv' },
    );
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) {
      expect(outcome.report.rows).toBe(n);
      expect(outcome.report.problems.every((p) => / is already in SIM Link$/.test(p.message))).toBe(true);
    }
  });

  it('history: every event of the filter, newest first; another enterprise’s endpoint is 404', async () => {
    const all = records((await viewer.get('/events/export.csv')).text);
    const [{ n }] = await em.fork().execute<{ n: number }[]>('select count(*)::int as n from event where enterprise_id = ?', [acme.id]);
    expect(all).toHaveLength(n);
    expect(n).toBeGreaterThanOrEqual(4);
    expect(all.filter((r) => r.action === 'sim.linked' && r.source === 'ui')).toHaveLength(2);
    const linkedOnly = records((await viewer.get('/events/export.csv?action=sim.delinked')).text);
    expect(linkedOnly.map((r) => r.action)).toEqual(['sim.delinked', 'sim.delinked']);
    const ids = all.map((r) => Number(r.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    const [theirs] = await em.fork().execute<{ id: number }[]>('select id from endpoint where enterprise_id = ? limit 1', [globex.id]);
    expect((await viewer.get(`/events/export.csv?endpoint=${theirs.id}`)).status).toBe(404);
  });

  it('the list pages link to the download of what they show', async () => {
    const download = async (url: string) => page((await viewer.get(url)).text).link('Download CSV');
    expect(await download('/endpoints?status=hold&q=Meter')).toBe('/endpoints/export.csv?status=hold&q=Meter');
    expect(await download('/sims?status=ready')).toBe('/sims/export.csv?status=ready');
    expect(await download('/events')).toBe('/events/export.csv');
  });
});
