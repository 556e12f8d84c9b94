// A fresh, migrated database for one test file: a copy of the run's template on the run's server (the
// PostgreSQL of TEST_DATABASE_URL, or the embedded one started by global-setup.ts), dropped on close.
import { randomBytes } from 'node:crypto';
import type { AnyEntity, EntityData } from '@mikro-orm/core';
import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.js';
import { adminQuery, databaseUrlFor } from './pg-admin.js';

export interface TestDatabase extends Database {
  /** The URL of this file's own database. */
  url: string;
}

export async function createTestDatabase(options: { poolSize?: number } = {}): Promise<TestDatabase> {
  const serverUrl = inject('serverUrl');
  const name = `simlink_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(serverUrl, `create database ${name} template ${inject('templateDatabase')}`);
  const url = databaseUrlFor(serverUrl, name);
  const db = await openDatabase({ databaseUrl: url, migrate: false, poolSize: options.poolSize });
  return {
    ...db,
    url,
    async close() {
      await db.close();
      await adminQuery(serverUrl, `drop database if exists ${name} with (force)`);
    },
  };
}

/** Every row a query returns, read on a fresh fork. */
export function allRows<T = Record<string, unknown>>(db: Database, sql: string, params: unknown[] = []): Promise<T[]> {
  return db.orm.em.fork().execute<T[]>(sql, params);
}

/** The first row a query returns (undefined when none, though typed as a row: tests compare it whole), read on a fresh fork. */
export async function firstRow<T = EntityData<AnyEntity>>(db: Database, sql: string, params: unknown[] = []): Promise<T> {
  return (await db.orm.em.fork().execute<T[]>(sql, params))[0];
}

/** How many rows a query returns. */
export async function countRows(db: Database, sql: string, params: unknown[] = []): Promise<number> {
  return (await firstRow<{ n: number }>(db, `select count(*)::int as n from (${sql}) c`, params)).n;
}
