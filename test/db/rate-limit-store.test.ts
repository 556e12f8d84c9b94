// The PostgreSQL store of the rate limits (db/rate-limit-store.ts): one atomic upsert per hit, so
// concurrent hits on several connections are each counted once; a window ends and starts again at 1;
// ended windows are pruned.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { countHit, postgresRateLimitStore, pruneCounters, type Hits } from '../../src/db/rate-limit-store.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 8 });
});
afterAll(() => db.close());

describe('rate-limit counters in PostgreSQL', () => {
  it('concurrent hits on several connections are each counted exactly once', async () => {
    const hits = await Promise.all(Array.from({ length: 60 }, () => countHit(db.orm, 'test|race', 60_000)));
    expect(hits.map((h) => h.current).sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    for (const h of hits) {
      expect(h.ttl).toBeGreaterThan(50_000);
      expect(h.ttl).toBeLessThanOrEqual(60_000);
    }
  });

  it('keys count apart; a window that ended starts again at 1 with a fresh time to live', async () => {
    expect((await countHit(db.orm, 'test|a', 300)).current).toBe(1);
    expect((await countHit(db.orm, 'test|a', 300)).current).toBe(2);
    expect((await countHit(db.orm, 'test|b', 300)).current).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const again = await countHit(db.orm, 'test|a', 300);
    expect(again.current).toBe(1);
    expect(again.ttl).toBeGreaterThan(200);
  });

  it('prunes the counters whose window has ended, and only those', async () => {
    await countHit(db.orm, 'test|short', 1);
    await countHit(db.orm, 'test|long', 60_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await pruneCounters(db.orm)).toBeGreaterThanOrEqual(1);
    const keys = (await db.orm.em.fork().execute<{ key: string }[]>(`select key from rate_limit_counter where key like 'test|%'`)).map(
      (r) => r.key,
    );
    expect(keys).toContain('test|long');
    expect(keys).not.toContain('test|short');
  });

  it('is a store @fastify/rate-limit can use: incr calls back with the count and the time left', async () => {
    const Store = postgresRateLimitStore(db.orm);
    const store = new Store().child();
    const incr = () =>
      new Promise<Hits>((resolve, reject) => store.incr('test|store', (error, hits) => (error ? reject(error) : resolve(hits!)), 10_000));
    expect(await incr()).toMatchObject({ current: 1 });
    const second = await incr();
    expect(second.current).toBe(2);
    expect(second.ttl).toBeLessThanOrEqual(10_000);
  });
});
