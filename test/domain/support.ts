// Shared by the lifecycle, race and invariant tests: actors, whole-table snapshots, new events, tallies.
import { expect } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { findActor, type Actor } from '../../src/domain/accounts.js';
import type { Role } from '../../src/domain/entities.js';
import { createEnterprise, createUser, type TestEnterprise } from '../factories/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

export type Row = Record<string, unknown>;

export async function actorFor(em: EntityManager, enterprise: TestEnterprise, role: Role = 'admin'): Promise<Actor> {
  const user = await createUser(em, enterprise, role);
  const actor = await findActor(em, user.id);
  if (!actor) throw new Error(`no actor for user ${user.id}`);
  return actor;
}

/** What a domain test file starts from: its own database, two enterprises (Acme, Globex), an admin and a viewer of Acme. */
export interface DomainTestWorld {
  db: TestDatabase;
  acme: TestEnterprise;
  globex: TestEnterprise;
  admin: Actor;
  viewer: Actor;
}

export async function domainTestWorld(): Promise<DomainTestWorld> {
  const db = await createTestDatabase();
  const em = db.orm.em.fork();
  const acme = await createEnterprise(em, 'Acme');
  const globex = await createEnterprise(em, 'Globex');
  return { db, acme, globex, admin: await actorFor(em, acme, 'admin'), viewer: await actorFor(em, acme, 'viewer') };
}

/** Every row of the tables an operation may touch, so "nothing changed" means nothing at all. */
export interface Snapshot {
  endpoints: Row[];
  sims: Row[];
  keys: Row[];
  lastEventId: number;
}

export async function snapshot(em: EntityManager): Promise<Snapshot> {
  const endpoints = await em.execute<Row[]>('select * from endpoint order by id');
  const sims = await em.execute<Row[]>('select * from sim order by id');
  const keys = await em.execute<Row[]>('select * from operation_key order by key');
  const [{ last }] = await em.execute<{ last: number }[]>('select coalesce(max(id), 0)::int as last from event');
  return { endpoints, sims, keys, lastEventId: last };
}

export async function eventsSince(em: EntityManager, lastEventId: number): Promise<Row[]> {
  return em.execute<Row[]>('select * from event where id > ? order by id', [lastEventId]);
}

/** `rows` with the row of `id` changed by `changes` (and its updated_at moved on); every other row as it was. */
export function patched(rows: Row[], id: number, changes: Row): Row[] {
  const found = rows.some((row) => row.id === id);
  if (!found) throw new Error(`row ${id} is not in the snapshot`);
  return rows.map((row) => (row.id === id ? { ...row, ...changes, updated_at: expect.any(String) } : row));
}

/** The error an operation was refused with; fails the test if it was not refused. */
export async function refusedWith(promise: Promise<unknown>): Promise<Error> {
  const result = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in result)) throw new Error(`expected a refusal, got ${JSON.stringify(result.value)}`);
  if (!(result.error instanceof Error)) throw new Error(`refused with a non-Error: ${String(result.error)}`);
  return result.error;
}

/** Counts the outcomes of concurrent attempts by result: 'ok', or the error's class name. */
export function tally(results: PromiseSettledResult<unknown>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const result of results) {
    const key = result.status === 'fulfilled' ? 'ok' : ((result.reason as Error)?.constructor?.name ?? 'unknown');
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
