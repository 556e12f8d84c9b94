// Rate-limit counters in PostgreSQL, for @fastify/rate-limit's `store` option: every instance of SIM Link
// counts against the same counters, and a restart keeps them (issue 12, item 12). One upsert per counted
// request, atomic under concurrency: the row's window either goes on (count + 1) or, once past its end,
// starts again at 1. The database's clock decides, so instances with skewed clocks still agree.
import { raw, type EntityManager, type MikroORM } from '@mikro-orm/postgresql';
import { RateLimitCounterSchema } from '../domain/entities.js';
import { StatementCache, runStatement } from './compiled-statement.js';

/** What @fastify/rate-limit expects back from `incr`: the count in the window and the ms left in it. */
export interface Hits {
  current: number;
  ttl: number;
}

type Callback = (error: Error | null, result?: Hits) => void;

/** How often (at most) one process deletes counters whose window ended. */
const PRUNE_EVERY_MS = 60_000;

/**
 * The upsert of one hit, compiled once per window length (see compiled-statement.ts): MikroORM's query
 * builder with the window's arithmetic in SQL, so that the database's clock alone decides when a window
 * ends. The window is a whole number of ms from the code, never from a request.
 */
const increment = new StatementCache();
function counterStatement(em: EntityManager, windowMs: number) {
  if (!Number.isSafeInteger(windowMs) || windowMs <= 0)
    throw new Error(`A rate-limit window must be a positive whole number of ms, not ${windowMs}`);
  return increment.get(`rate-limit hit in ${windowMs} ms`, 1, ([key]) =>
    em
      .createQueryBuilder(RateLimitCounterSchema)
      .insert({ key, count: 1, resetAt: raw(`now() + interval '${windowMs} milliseconds'`) })
      .onConflict('key')
      .merge({
        count: raw('case when rate_limit_counter.reset_at <= now() then 1 else rate_limit_counter.count + 1 end'),
        resetAt: raw('case when rate_limit_counter.reset_at <= now() then excluded.reset_at else rate_limit_counter.reset_at end'),
      })
      .returning(['count', raw(`greatest(0, ceil(extract(epoch from (reset_at - now())) * 1000))::int as ttl`) as unknown as 'count']),
  );
}

/**
 * Counts one hit of `key` in a window of `windowMs`. Exported for the stores and for limits counted
 * outside the plugin.
 */
export async function countHit(orm: MikroORM, key: string, windowMs: number): Promise<Hits> {
  const em = orm.em.fork();
  const [row] = await runStatement<{ count: number; ttl: number }[]>(em, counterStatement(em, windowMs), [key]);
  return { current: row.count, ttl: row.ttl };
}

/** Deletes the counters whose window has ended (they would start again at 1 anyway), by the database's clock. */
export function pruneCounters(orm: MikroORM): Promise<number> {
  return orm.em.fork().nativeDelete(RateLimitCounterSchema, { resetAt: { $lte: raw('now()') as Date } });
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
