// The Jobs list of /bulk is paged (the latest 50, then Older and Newest, as on History), and a preview never
// applied (a draft job and all its rows) is deleted by housekeeping after a day.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { allRows, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { signedIn, type Agent } from '../helpers/session.js';
import { type TestEnterprise, type TestUser } from '../factories/index.js';
import { page } from '../helpers/page.js';
import { deleteStaleBulkDrafts } from '../../src/web/plugins/housekeeping.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let admin: Agent;
let user: TestUser;

beforeAll(async () => {
  ({ db, app, em, acme } = await routeTestWorld());
  ({ agent: admin, user } = await signedIn(app, em, acme, 'admin'));
});
afterAll(async () => {
  await app?.close();
  await db?.close();
});

/** `count` jobs of the enterprise named jobs-<n>.csv (n from 1, oldest first), in a state, created `age` ago. */
async function jobs(count: number, state: string, age = '1 minute', prefix = 'jobs') {
  return allRows<{ id: number }>(
    db,
    `insert into bulk_job (enterprise_id, created_by, created_by_name, file_name, state, total, done, failed, cancel_requested, created_at, updated_at)
     select ?, ?, 'Ada', ? || '-' || n || '.csv', ?, 1, 0, 0, false, now() - ?::interval, now() from generate_series(1, ?) n order by n
     returning id`,
    [acme.id, user.id, prefix, state, age, count],
  );
}

describe('the Jobs list', () => {
  it('shows the latest 50 jobs, then Older ones until the first, and Newest back', async () => {
    await jobs(120, 'done');
    const files = (html: string, caption: RegExp) =>
      page(html)
        .rows(caption)
        .map((row) => row[0]);
    const first = await admin.get('/bulk');
    expect(first.status).toBe(200);
    expect(files(first.text, /^Bulk changes of/)).toEqual(Array.from({ length: 50 }, (_, i) => `jobs-${120 - i}.csv`));
    expect(page(first.text).link('Newest')).toBeNull();
    const second = await admin.get(page(first.text).link('Older')!);
    expect(files(second.text, /^Older bulk changes of/)).toEqual(Array.from({ length: 50 }, (_, i) => `jobs-${70 - i}.csv`));
    const third = await admin.get(page(second.text).link('Older')!);
    expect(files(third.text, /^Older bulk changes of/)).toEqual(Array.from({ length: 20 }, (_, i) => `jobs-${20 - i}.csv`));
    expect(page(third.text).link('Older')).toBeNull();
    expect(page(third.text).link('Newest')).toBe('/bulk');
    for (const before of ['x', '0', '0007', '2147483648', '-1'])
      expect((await admin.get(`/bulk?before=${before}`)).status, before).toBe(400);
  });

  it('housekeeping deletes previews never applied after a day, with their rows; applied jobs and younger drafts stay', async () => {
    const [old] = await jobs(1, 'draft', '25 hours', 'old-draft');
    const [young] = await jobs(1, 'draft', '1 hour', 'young-draft');
    const [applied] = await jobs(1, 'done', '30 hours', 'old-done');
    for (const job of [old, young, applied]) {
      await allRows(db, `insert into bulk_job_row (job_id, line, endpoint_id, action) values (?, 2, 1, 'delink')`, [job.id]);
    }
    expect(await deleteStaleBulkDrafts(em.fork())).toBe(1);
    const left = await allRows(db, `select id from bulk_job where id in (?, ?, ?) order by id`, [old.id, young.id, applied.id]);
    expect(left).toEqual([{ id: young.id }, { id: applied.id }]);
    expect(await allRows(db, `select job_id from bulk_job_row where job_id = ?`, [old.id])).toEqual([]);
    expect((await admin.get(`/bulk/${old.id}`)).status).toBe(404);
  });
});
