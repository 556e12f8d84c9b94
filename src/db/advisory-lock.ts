// PostgreSQL's transaction-level advisory locks, which no EntityManager or query-builder API takes: the one
// statement is kept here, named, rather than written where it is used.
import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Takes the advisory lock (`namespace`, `key`) until the end of `tx`'s transaction, if no other transaction
 * holds it: true when taken, false at once otherwise (pg_try_advisory_xact_lock, never waits).
 */
export async function tryAdvisoryXactLock(tx: EntityManager, namespace: number, key: number): Promise<boolean> {
  const [{ locked }] = await tx.execute<{ locked: boolean }[]>('select pg_try_advisory_xact_lock(?, ?) as locked', [namespace, key]);
  return locked;
}
