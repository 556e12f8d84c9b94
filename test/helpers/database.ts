// A fresh, migrated database for one test file, on the server of TEST_DATABASE_URL or on PGlite.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.js';
import { adminQuery, databaseUrlFor } from './pg-admin.js';

export interface TestDatabase extends Database {
  /** The URL of this file's own database on the server (undefined on PGlite). */
  url?: string;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = process.env.TEST_DATABASE_URL;
  if (serverUrl) {
    const name = `simlink_t_${process.pid}_${randomBytes(4).toString('hex')}`;
    await adminQuery(serverUrl, `create database ${name} template ${inject('templateDatabase')}`);
    const url = databaseUrlFor(serverUrl, name);
    const db = await openDatabase({ databaseUrl: url, migrate: false });
    return {
      ...db,
      url,
      async close() {
        await db.close();
        await adminQuery(serverUrl, `drop database if exists ${name} with (force)`);
      },
    };
  }
  const snapshot = new Blob([readFileSync(inject('snapshotFile'))]);
  return openDatabase({ loadDataDir: snapshot, migrate: false });
}

/** True when the tests run against a real PostgreSQL server (races need separate connections). */
export const onServer = Boolean(process.env.TEST_DATABASE_URL);
