// Rate-limit counters in PostgreSQL, for @fastify/rate-limit's `store` option: every instance of SIM Link
// counts against the same counters, and a restart keeps them (issue 12, item 12). One upsert per counted
// request, atomic under concurrency: the row's window either goes on (count + 1) or, once past its end,
// starts again at 1. The database's clock decides, so instances with skewed clocks still agree.
import type { MikroORM } from '@mikro-orm/postgresql';

/** What @fastify/rate-limit expects back from `incr`: the count in the window and the ms left in it. */
export interface Hits {
  current: number;
  ttl: number;
}

type Callback = (error: Error | null, result?: Hits) => void;

/** How often (at most) one process deletes counters whose window ended. */
const PRUNE_EVERY_MS = 60_000;

const INCREMENT = `
insert into rate_limit_counter as c (key, count, reset_at)
values (?, 1, now() + ? * interval '1 millisecond')
on conflict (key) do update set
  count = case when c.reset_at <= now() then 1 else c.count + 1 end,
  reset_at = case when c.reset_at <= now() then excluded.reset_at else c.reset_at end
returning count, greatest(0, ceil(extract(epoch from (reset_at - now())) * 1000))::int as ttl`;

/**
 * Counts one hit of `key` in a window of `windowMs`. Exported for the stores and for limits counted
 * outside the plugin.
 */
export async function countHit(orm: MikroORM, key: string, windowMs: number): Promise<Hits> {
  const [row] = await orm.em.getConnection().execute<{ count: number; ttl: number }[]>(INCREMENT, [key, windowMs]);
  return { current: row.count, ttl: row.ttl };
}

/** Deletes the counters whose window has ended (they would start again at 1 anyway). */
export async function pruneCounters(orm: MikroORM): Promise<number> {
  const result = await orm.em.getConnection().execute(`delete from rate_limit_counter where reset_at <= now()`, [], 'run');
  return (result as { affectedRows?: number }).affectedRows ?? 0;
}

/**
 * A store class for @fastify/rate-limit bound to `orm`. The plugin constructs it with its options and asks
 * each limiter for a `child`; all share the one table, so the keys given to it must say which limit they
 * count (the rate-limits plugin prefixes the limit's name).
 */
export function postgresRateLimitStore(orm: MikroORM, onError: (error: unknown) => void = () => {}) {
  let lastPrune = 0;
  return class PostgresRateLimitStore {
    incr(key: string, callback: Callback, timeWindow: number) {
      countHit(orm, key, timeWindow).then(
        (hits) => callback(null, hits),
        (error: Error) => callback(error),
      );
      const now = Date.now();
      if (now - lastPrune >= PRUNE_EVERY_MS) {
        lastPrune = now;
        pruneCounters(orm).catch(onError);
      }
    }

    child() {
      return new PostgresRateLimitStore();
    }
  };
}
