// PostgreSQL's transaction-level advisory locks, which no EntityManager or query-builder API takes: the one
// statement is kept, named, with the other hand-written SQL (advisoryXactLockSql in the read-query module).
import type { EntityManager } from '@mikro-orm/postgresql';
import { advisoryXactLockSql, runPlanned } from '../domain/queries/planned-sql.js';

/**
 * Takes the advisory lock (`namespace`, `key`) until the end of `tx`'s transaction, if no other transaction
 * holds it: true when taken, false at once otherwise (pg_try_advisory_xact_lock, never waits).
 */
export async function tryAdvisoryXactLock(tx: EntityManager, namespace: number, key: number): Promise<boolean> {
  const [{ locked }] = await runPlanned<{ locked: boolean }[]>(tx, advisoryXactLockSql(namespace, key));
  return locked;
}
