// startLaunch under concurrency (the web tests, test/web/launch.test.ts, cover each refusal one at a time):
// the same token twice at once is spent once; two first launches of one new user at once make one user.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LaunchRefusedError, startLaunch, type LaunchClaims } from '../../src/domain/launch.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createEnterprise, type TestEnterprise } from '../factories/index.js';

let db: TestDatabase;
let acme: TestEnterprise;

beforeAll(async () => {
  db = await createTestDatabase();
  acme = await createEnterprise(db.orm.em.fork(), 'Acme Launch Races');
});
afterAll(() => db?.close());

const claims = (overrides: Partial<LaunchClaims> = {}): LaunchClaims => ({
  ent: acme.slug,
  email: `crm-${randomUUID().slice(0, 8)}@example.test`,
  name: 'Nina Newcomer',
  role: 'admin',
  exp: Math.floor(Date.now() / 1000) + 120,
  jti: randomUUID(),
  target: '/endpoints',
  ...overrides,
});
const users = async (email: string) => db.orm.em.fork().execute<{ id: number }[]>('select id from app_user where email = ?', [email]);

describe('launch races', () => {
  it('one token used 10 times at once → one launch, 9 refused as replayed', async () => {
    const token = claims();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => startLaunch(db.orm.em.fork(), token)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as LaunchRefusedError] : []));
    expect(ok).toHaveLength(1);
    expect(refused.map((e) => e instanceof LaunchRefusedError && e.reason)).toEqual(Array(9).fill('replayed'));
    expect(await users(token.email)).toHaveLength(1);
  });

  it('a new user launched 10 times at once (10 tokens) → every launch succeeds, one user, created once', async () => {
    const email = `crm-${randomUUID().slice(0, 8)}@example.test`;
    const results = await Promise.all(Array.from({ length: 10 }, () => startLaunch(db.orm.em.fork(), claims({ email }))));
    const [row] = await users(email);
    expect(results.map((r) => r.actor.id)).toEqual(Array(10).fill(row.id));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await users(email)).toHaveLength(1);
  });
});
