// Runs once before all test files: the PostgreSQL server of the run and one migrated template database.
//  - TEST_DATABASE_URL set: that server (e.g. the system's PostgreSQL 15);
//  - unset: an embedded PostgreSQL server started for the run in a temporary directory, stopped after it.
// Either way each test file gets its own copy of the template (CREATE DATABASE … TEMPLATE), which takes a
// fraction of a second — one code path for both.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { adminQuery, databaseUrlFor } from './pg-admin.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The test server's URL (its `postgres` database). */
    serverUrl: string;
    templateDatabase: string;
    /** 'PostgreSQL <version> (TEST_DATABASE_URL)' or 'embedded PostgreSQL <version>', for the test log. */
    serverName: string;
  }
}

export default async function setup(project: TestProject) {
  let serverUrl = process.env.TEST_DATABASE_URL;
  let stopServer = async () => {};
  if (!serverUrl) {
    const dir = mkdtempSync(join(tmpdir(), 'simlink-test-'));
    const server = await startEmbeddedPostgres(dir);
    serverUrl = server.adminUrl;
    stopServer = async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    };
  }
  const template = `simlink_tpl_${process.pid}`;
  try {
    await adminQuery(serverUrl, `drop database if exists ${template}`);
    await adminQuery(serverUrl, `create database ${template}`);
    const db = await openDatabase({ databaseUrl: databaseUrlFor(serverUrl, template) });
    const [{ server_version: version }] = await db.orm.em.fork().execute<{ server_version: string }[]>('show server_version');
    await db.close();
    project.provide('serverUrl', serverUrl);
    project.provide('templateDatabase', template);
    project.provide(
      'serverName',
      process.env.TEST_DATABASE_URL ? `PostgreSQL ${version} (TEST_DATABASE_URL)` : `embedded PostgreSQL ${version}`,
    );
  } catch (error) {
    await stopServer();
    throw error;
  }
  return async () => {
    await adminQuery(serverUrl, `drop database if exists ${template} with (force)`);
    await stopServer();
  };
}
