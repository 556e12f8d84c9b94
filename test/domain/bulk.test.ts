// Bulk changes (src/domain/bulk.ts): the preview names every row that cannot be done, with its line and the
// screens' words; a job applies every other row through the lifecycle verbs — 1,000 rows read back from the
// database and from the results CSV; a row someone else changed meanwhile fails alone; a row whose change
// committed before a crash is not done twice when the job resumes; two runners never run one job; a cancelled
// job stops.
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { parse } from 'csv-parse/sync';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import {
  createEnterprise,
  holdEndpoint,
  linkedEndpoint,
  manyHoldEndpoints,
  manyReadySims,
  readySim,
  type TestEnterprise,
} from '../factories/index.js';
import type { Actor } from '../../src/domain/accounts.js';
import { BulkJobRowSchema, BulkJobSchema, EndpointSchema } from '../../src/domain/entities.js';
import { ForbiddenError } from '../../src/domain/errors.js';
import {
  BulkFileError,
  BulkRunner,
  bulkResultsCsv,
  bulkRowKey,
  cancelBulkJob,
  createBulkJob,
  previewBulk,
  type BulkPreview,
} from '../../src/domain/bulk.js';
import { linkSim } from '../../src/domain/lifecycle.js';
import { findViolations } from '../../src/domain/invariants.js';
import { actorFor, eventsSince, refusedWith, snapshot } from './support.js';

let db: TestDatabase;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Actor;
let viewer: Actor;
const fork = (): EntityManager => db.orm.em.fork();
const file = (content: string | Buffer, filename = 'changes.csv') => ({ stream: Readable.from([Buffer.from(content)]), filename });

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 12 });
  const em = fork();
  acme = await createEnterprise(em, 'Acme');
  globex = await createEnterprise(em, 'Globex');
  admin = await actorFor(em, acme, 'admin');
  viewer = await actorFor(em, acme, 'viewer');
});
afterEach(async () => {
  expect(await findViolations(fork())).toEqual([]);
});
afterAll(() => db.close());

async function runToEnd(runner = new BulkRunner(db.orm)) {
  while (await runner.runOne());
}

describe('bulk preview', () => {
  it('names every row that cannot be done, with its line and reason, and counts the rest per action', async () => {
    const hold = await holdEndpoint(fork(), acme);
    const hold2 = await holdEndpoint(fork(), acme);
    const { endpoint: active, sim: activeSim } = await linkedEndpoint(fork(), acme, 'active');
    const { endpoint: pre } = await linkedEndpoint(fork(), acme, 'pre_active');
    const { endpoint: suspended } = await linkedEndpoint(fork(), acme, 'suspended');
    const foreign = await holdEndpoint(fork(), globex);
    const free = await readySim(fork(), acme);
    const free2 = await readySim(fork(), acme);
    const foreignSim = await readySim(fork(), globex);
    const csv = [
      'Endpoint_ID;Action;ICCID',
      `${hold.id};link;${free.iccid}`, // 2 ok
      `abc;link;${free.iccid}`, // 3
      `99999999;activate;`, // 4 unknown
      `${foreign.id};activate;`, // 5 foreign: same words as unknown
      `${pre.id};explode;`, // 6 bad action
      `${hold2.id};link;`, // 7 no ICCID
      `${hold2.id};link;${free.iccid.slice(0, -1)}${(Number(free.iccid.slice(-1)) + 1) % 10}`, // 8 bad check digit
      `${active.id};activate;`, // 9 wrong state
      `${hold2.id};link;${foreignSim.iccid}`, // 10 SIM of another enterprise
      `${hold2.id};link;${activeSim.iccid}`, // 11 SIM not Ready
      `${hold.id};delink;`, // 12 endpoint twice (line 2)
      `${active.id};swap;${free.iccid}`, // 13 SIM twice (line 2)
      `${active.id};suspend;`, // 14 ok
      `${pre.id};activate;`, // 15 ok
      `${suspended.id};swap;${free2.iccid}`, // 16 ok
    ].join('\n');
    const preview = await previewBulk(fork(), admin, file(csv));
    expect(preview.total).toBe(15);
    expect(preview.problems.map(({ line, reason }) => ({ line, reason }))).toEqual([
      { line: 3, reason: 'endpoint_id "abc" is not an endpoint id (a number)' },
      { line: 4, reason: 'There is no endpoint 99999999' },
      { line: 5, reason: `There is no endpoint ${foreign.id}` },
      { line: 6, reason: 'action "explode" is not one of link, delink, swap, activate, suspend, resume' },
      { line: 7, reason: 'link needs the ICCID of the SIM' },
      { line: 8, reason: 'ICCID check digit is wrong' },
      { line: 9, reason: `Endpoint '${active.name}' is Active; only a Pre-Active endpoint can be activated.` },
      { line: 10, reason: `There is no SIM with ICCID ${foreignSim.iccid} in your inventory` },
      { line: 11, reason: `SIM ${activeSim.iccid} is Active, not Ready to Activate` },
      { line: 12, reason: `Endpoint ${hold.id} is also on line 2; one change per endpoint in a file` },
      { line: 13, reason: `SIM ${free.iccid} is also on line 2` },
    ]);
    expect(preview.rows.map((r) => [r.line, r.action])).toEqual([
      [2, 'link'],
      [14, 'suspend'],
      [15, 'activate'],
      [16, 'swap'],
    ]);
    expect(preview.counts).toEqual({ link: 1, delink: 0, swap: 1, activate: 1, suspend: 1, resume: 0 });
  });

  it('an ICCID on a row whose action takes no SIM is refused with the row’s reason, never ignored', async () => {
    const { endpoint } = await linkedEndpoint(fork(), acme, 'active');
    const { endpoint: suspended } = await linkedEndpoint(fork(), acme, 'suspended');
    const sim = await readySim(fork(), acme);
    const csv = ['endpoint_id,action,iccid', `${endpoint.id},delink,${sim.iccid}`, `${suspended.id},resume,`].join('\n');
    const preview = await previewBulk(fork(), admin, file(csv));
    expect(preview.problems.map(({ line, reason }) => ({ line, reason }))).toEqual([
      { line: 2, reason: 'delink takes no ICCID (it acts on the endpoint and the SIM it has); leave iccid empty, or use link or swap' },
    ]);
    expect(preview.rows.map((r) => [r.line, r.action])).toEqual([[3, 'resume']]);
  });

  it('a row with a quoted value over several lines is reported at its first line (LF and CRLF alike), and so are the rows after it', async () => {
    const [a, b] = await manyHoldEndpoints(fork(), acme, 2);
    const lines = ['endpoint_id,action,iccid', `${a.id},"link`, `now",`, '', `${b.id},"sus`, 'pe', `nd",`, 'nope,link,'];
    for (const eol of ['\n', '\r\n']) {
      const preview = await previewBulk(fork(), admin, file(lines.join(eol)));
      expect(preview.problems.map((p) => p.line)).toEqual([2, 5, 8]);
      expect(preview.problems[0].reason).toContain('is not one of');
    }
  });

  it('refuses a file without the columns, an empty one, a viewer', async () => {
    expect(await refusedWith(previewBulk(fork(), admin, file('id,what\n1,link')))).toBeInstanceOf(BulkFileError);
    expect(await refusedWith(previewBulk(fork(), admin, file('endpoint_id,action,iccid\n')))).toBeInstanceOf(BulkFileError);
    expect(await refusedWith(previewBulk(fork(), viewer, file('endpoint_id,action\n1,activate')))).toBeInstanceOf(ForbiddenError);
  });

  it('says what a file that is plainly not CSV is: empty (not "no rows under its header"), binary, a workbook — never echoing its bytes', async () => {
    const message = async (content: string | Buffer) => (await refusedWith(previewBulk(fork(), admin, file(content)))).message;
    expect(await message('')).toBe(
      '“changes.csv” is empty. Choose the CSV file with your changes: a header line endpoint_id,action,iccid and one change a line.',
    );
    const binary = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x00, 0x00, 0x01, 0x3d, 0x3d]);
    expect(await message(binary)).toBe('“changes.csv” is not a text file. Choose a CSV file (comma-separated values).');
    expect(await message(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14]))).toMatch(/is a spreadsheet workbook, not a CSV file/);
  });
});

describe('bulk jobs', () => {
  it('1,000 links applied: every row done, in the database and in the results CSV, one event each', async () => {
    const endpoints = await manyHoldEndpoints(fork(), acme, 1000);
    const sims = await manyReadySims(fork(), acme, 1000);
    const csv = ['endpoint_id,action,iccid', ...endpoints.map((e, i) => `${e.id},link,${sims[i].iccid}`)].join('\r\n');
    const preview = await previewBulk(fork(), admin, file(csv));
    expect(preview.problems).toEqual([]);
    const before = await snapshot(fork());
    const job = await createBulkJob(fork(), admin, preview.fileName, preview.rows);
    expect(job).toMatchObject({ state: 'queued', total: 1000, done: 0 });

    await runToEnd();

    const done = await fork().findOneOrFail(BulkJobSchema, job.id);
    expect(done).toMatchObject({ state: 'done', done: 1000, failed: 0 });
    expect(done.finishedAt).not.toBeNull();
    const linked = await fork().find(EndpointSchema, { id: { $in: endpoints.map((e) => e.id) } });
    expect(linked.every((e) => e.status === 'pre_active' && e.sim !== null)).toBe(true);
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events.filter((e) => e.action === 'sim.linked')).toHaveLength(1000);
    expect(events.filter((e) => e.action === 'bulk.completed')).toEqual([expect.objectContaining({ count: 1000, problem_count: 0 })]);

    let text = '';
    for await (const chunk of bulkResultsCsv(fork(), admin, job.id)) text += chunk;
    const records = parse(text, { columns: true }) as Record<string, string>[];
    expect(records).toHaveLength(1000);
    expect(records.every((r) => r.outcome === 'done' && r.action === 'link' && /^SIM \d+ linked successfully$/.test(r.message))).toBe(true);
    expect(records.map((r) => Number(r.line))).toEqual(Array.from({ length: 1000 }, (_, i) => i + 2));
  }, 120_000);

  it('a row someone else changed meanwhile fails alone, with its reason', async () => {
    const [a, b, c] = await manyHoldEndpoints(fork(), acme, 3);
    const [s1, s2, s3, other] = await manyReadySims(fork(), acme, 4);
    const csv = ['endpoint_id,action,iccid', `${a.id},link,${s1.iccid}`, `${b.id},link,${s2.iccid}`, `${c.id},link,${s3.iccid}`].join('\n');
    const preview = await previewBulk(fork(), admin, file(csv));
    const job = await createBulkJob(fork(), admin, preview.fileName, preview.rows);
    await linkSim(fork(), { actor: admin }, b.id, other.id);
    await runToEnd();
    const rows = await fork().find(BulkJobRowSchema, { job: job.id }, { orderBy: { line: 'asc' } });
    expect(rows.map((r) => [r.line, r.outcome])).toEqual([
      [2, 'done'],
      [3, 'failed'],
      [4, 'done'],
    ]);
    expect(rows[1].message).toBe(`Endpoint '${b.name}' is Pre-Active; a SIM can only be linked to an endpoint on Hold.`);
    expect(await fork().findOneOrFail(BulkJobSchema, job.id)).toMatchObject({ state: 'done', done: 2, failed: 1 });
  });

  it('a row whose change committed before a crash is not done twice when the job resumes', async () => {
    const [a, b] = await manyHoldEndpoints(fork(), acme, 2);
    const [s1, s2] = await manyReadySims(fork(), acme, 2);
    const preview = await previewBulk(fork(), admin, file(`endpoint_id,action,iccid\n${a.id},link,${s1.iccid}\n${b.id},link,${s2.iccid}`));
    const job = await createBulkJob(fork(), admin, preview.fileName, preview.rows);
    // The first row's change committed (with its one-time key), then the instance died before writing its outcome.
    await linkSim(fork(), { actor: admin, source: 'bulk', key: bulkRowKey(job.id, 2) }, a.id, s1.id);
    const before = await snapshot(fork());
    await runToEnd();
    const rows = await fork().find(BulkJobRowSchema, { job: job.id }, { orderBy: { line: 'asc' } });
    expect(rows.map((r) => r.outcome)).toEqual(['done', 'done']);
    const events = await eventsSince(fork(), before.lastEventId);
    expect(events.map((e) => e.action)).toEqual(['sim.linked', 'bulk.completed']);
    expect(events[0].endpoint_id).toBe(b.id);
  });

  it('two runners at once: one job runs on one of them, every row once', async () => {
    const endpoints = await manyHoldEndpoints(fork(), acme, 50);
    const sims = await manyReadySims(fork(), acme, 50);
    const preview = await previewBulk(
      fork(),
      admin,
      file(['endpoint_id,action,iccid', ...endpoints.map((e, i) => `${e.id},link,${sims[i].iccid}`)].join('\n')),
    );
    const job = await createBulkJob(fork(), admin, preview.fileName, preview.rows);
    const before = await snapshot(fork());
    const ran = await Promise.all([new BulkRunner(db.orm).runOne(), new BulkRunner(db.orm).runOne()]);
    expect(ran.sort()).toEqual([false, true]);
    expect(await fork().findOneOrFail(BulkJobSchema, job.id)).toMatchObject({ state: 'done', done: 50 });
    expect((await eventsSince(fork(), before.lastEventId)).filter((e) => e.action === 'sim.linked')).toHaveLength(50);
  });

  /** A job of `count` link rows (endpoints on Hold, Ready SIMs of its own), queued. */
  async function linkJob(count: number) {
    const endpoints = await manyHoldEndpoints(fork(), acme, count);
    const sims = await manyReadySims(fork(), acme, count);
    const csv = ['endpoint_id,action,iccid', ...endpoints.map((e, i) => `${e.id},link,${sims[i].iccid}`)].join('\n');
    const preview = await previewBulk(fork(), admin, file(csv));
    expect(preview.problems).toEqual([]);
    return { job: await createBulkJob(fork(), admin, preview.fileName, preview.rows), endpointIds: endpoints.map((e) => e.id) };
  }

  /** Each endpoint's sim.linked events since `lastEventId`: exactly one each means every row was done once. */
  async function linkEventsPerEndpoint(lastEventId: number, endpointIds: number[]) {
    const rows = await fork().execute<{ endpoint_id: number; n: number }[]>(
      `select endpoint_id, count(*)::int as n from event where id > ? and action = 'sim.linked' and endpoint_id = any(?::int[]) group by endpoint_id`,
      [lastEventId, `{${endpointIds.join(',')}}`],
    );
    return new Map(rows.map((r) => [r.endpoint_id, r.n]));
  }

  it('two runners polling side by side through several jobs: each job ends once, every row done once', async () => {
    const jobs = [await linkJob(60), await linkJob(60), await linkJob(60)];
    const before = await snapshot(fork());
    const runners = [new BulkRunner(db.orm, { pollMs: 10 }), new BulkRunner(db.orm, { pollMs: 10 })];
    runners.forEach((runner) => runner.start());
    const ids = jobs.map((j) => j.job.id);
    for (let i = 0; i < 600; i++) {
      const states = await fork().find(BulkJobSchema, { id: { $in: ids } });
      if (states.every((job) => job.state === 'done')) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await Promise.all(runners.map((runner) => runner.stop()));
    for (const { job, endpointIds } of jobs) {
      expect(await fork().findOneOrFail(BulkJobSchema, job.id)).toMatchObject({ state: 'done', done: 60, failed: 0, leaseUntil: null });
      const perEndpoint = await linkEventsPerEndpoint(before.lastEventId, endpointIds);
      expect(endpointIds.map((id) => perEndpoint.get(id))).toEqual(endpointIds.map(() => 1));
    }
    const completed = (await eventsSince(fork(), before.lastEventId)).filter((e) => e.action === 'bulk.completed');
    expect(completed).toHaveLength(3);
  }, 60_000);

  it('a runner whose lease ran out while it worked writes nothing more: the one holding the lease finishes, every row once', async () => {
    const { job, endpointIds } = await linkJob(300);
    const before = await snapshot(fork());
    // A's lease runs out at once (as if it had stalled longer than its lease); B takes the job over meanwhile.
    const stalled = new BulkRunner(db.orm, { leaseMs: 1 });
    const a = stalled.runOne();
    for (let i = 0; i < 200 && (await fork().findOneOrFail(BulkJobSchema, job.id)).state !== 'running'; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const taker = new BulkRunner(db.orm);
    const b = (async () => {
      while (await taker.runOne());
    })();
    await Promise.all([a, b]);
    // A may have got as far as its first batch; B took over before A could end the job.
    expect(await fork().findOneOrFail(BulkJobSchema, job.id)).toMatchObject({ state: 'done', done: 300, failed: 0, leaseUntil: null });
    const perEndpoint = await linkEventsPerEndpoint(before.lastEventId, endpointIds);
    expect(endpointIds.map((id) => perEndpoint.get(id))).toEqual(endpointIds.map(() => 1));
    const rows = await fork().find(BulkJobRowSchema, { job: job.id });
    expect(rows.every((row) => row.outcome === 'done')).toBe(true);
    const completed = (await eventsSince(fork(), before.lastEventId)).filter((e) => e.action === 'bulk.completed');
    expect(completed).toEqual([expect.objectContaining({ count: 300, problem_count: 0 })]);
  }, 60_000);

  it('fair claiming: a small job of another enterprise finishes before a big job started first (a round each, round-robin)', async () => {
    const globexAdmin = await actorFor(fork(), globex, 'admin');
    const big = await linkJob(400); // Acme's, 4 rounds of 100
    const runner = new BulkRunner(db.orm);
    expect(await runner.runOne()).toBe(true); // Acme's job started: its first round
    const endpoints = await manyHoldEndpoints(fork(), globex, 5);
    const sims = await manyReadySims(fork(), globex, 5);
    const csv = ['endpoint_id,action,iccid', ...endpoints.map((e, i) => `${e.id},link,${sims[i].iccid}`)].join('\n');
    const preview = await previewBulk(fork(), globexAdmin, file(csv));
    const small = await createBulkJob(fork(), globexAdmin, preview.fileName, preview.rows);
    expect(await runner.runOne()).toBe(true); // Globex was never served: its job goes next, whole
    expect(await fork().findOneOrFail(BulkJobSchema, small.id)).toMatchObject({ state: 'done', done: 5 });
    expect((await fork().findOneOrFail(BulkJobSchema, big.job.id)).state).toBe('running');
    await runToEnd(runner);
    const [a, b] = [await fork().findOneOrFail(BulkJobSchema, big.job.id), await fork().findOneOrFail(BulkJobSchema, small.id)];
    expect(a).toMatchObject({ state: 'done', done: 400, leaseUntil: null });
    expect(b.finishedAt!.getTime()).toBeLessThan(a.finishedAt!.getTime());
  }, 60_000);

  it('a cancelled job stops and says so; its rows not done stay without an outcome', async () => {
    const [a] = await manyHoldEndpoints(fork(), acme, 1);
    const [s] = await manyReadySims(fork(), acme, 1);
    const preview: BulkPreview = await previewBulk(fork(), admin, file(`endpoint_id,action,iccid\n${a.id},link,${s.iccid}`));
    const job = await createBulkJob(fork(), admin, preview.fileName, preview.rows);
    await cancelBulkJob(fork(), admin, job.id);
    await runToEnd();
    expect(await fork().findOneOrFail(BulkJobSchema, job.id)).toMatchObject({ state: 'cancelled', done: 0, failed: 0 });
    expect((await fork().findOneOrFail(BulkJobRowSchema, { job: job.id })).outcome).toBeNull();
  });
});
