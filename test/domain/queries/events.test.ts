// History is newest first by event id as a number. The read models select `id::text as id`; a bare
// `order by id` would sort that text ("99" before "100" descending), so the order broke whenever the ids
// crossed a power of ten (found by the browser tests). Twelve events on one endpoint cross 9 → 10 here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { createEnterprise, linkedEndpoint } from '../../factories/index.js';
import { actorFor } from '../support.js';
import { resumeEndpoint, suspendEndpoint } from '../../../src/domain/lifecycle.js';
import { endpointHistory, listEvents } from '../../../src/domain/queries/history.js';

let db: TestDatabase;
let enterpriseId: number;
let endpointId: number;
const fork = (): EntityManager => db.orm.em.fork();

beforeAll(async () => {
  db = await createTestDatabase();
  const em = fork();
  const enterprise = await createEnterprise(em);
  enterpriseId = enterprise.id;
  const actor = await actorFor(em, enterprise);
  const { endpoint } = await linkedEndpoint(em, enterprise, 'active');
  endpointId = endpoint.id;
  for (let i = 0; i < 6; i++) {
    await suspendEndpoint(fork(), { actor }, endpointId);
    await resumeEndpoint(fork(), { actor }, endpointId);
  }
  const [{ max }] = await fork().execute<{ max: string }[]>('select max(id)::text as max from event');
  expect(Number(max)).toBeGreaterThanOrEqual(10);
}, 60_000);
afterAll(() => db?.close());

const numericallyDescending = (ids: (number | string)[]) => [...ids].sort((a, b) => Number(b) - Number(a));

describe('event history order', () => {
  it('an endpoint’s history is newest first across 9 → 10', async () => {
    const ids = (await endpointHistory(fork(), enterpriseId, endpointId)).map((row) => row.id);
    expect(ids).toHaveLength(12);
    expect(ids).toEqual(numericallyDescending(ids));
  });

  it('the enterprise’s events are newest first across 9 → 10', async () => {
    const ids = (await listEvents(fork(), enterpriseId, {})).rows.map((row) => row.id);
    expect(ids).toEqual(numericallyDescending(ids));
  });
});
