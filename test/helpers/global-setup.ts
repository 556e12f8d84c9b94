// Runs once before all test files: builds one migrated database they all start from.
//  - TEST_DATABASE_URL set (a PostgreSQL server): a migrated template database; each test file
//    clones it (CREATE DATABASE … TEMPLATE), which takes a fraction of a second.
//  - unset: an embedded PGlite, migrated once and dumped to a file; each test file loads the dump.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/db/database.js';
import { adminQuery, databaseUrlFor } from './pg-admin.js';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string;
    snapshotFile: string;
  }
}

export default async function setup(project: TestProject) {
  const serverUrl = process.env.TEST_DATABASE_URL;
  if (serverUrl) {
    const template = `simlink_tpl_${process.pid}`;
    await adminQuery(serverUrl, `drop database if exists ${template}`);
    await adminQuery(serverUrl, `create database ${template}`);
    const db = await openDatabase({ databaseUrl: databaseUrlFor(serverUrl, template) });
    await db.close();
    project.provide('templateDatabase', template);
    project.provide('snapshotFile', '');
    return async () => {
      await adminQuery(serverUrl, `drop database if exists ${template} with (force)`);
    };
  }

  const dir = mkdtempSync(join(tmpdir(), 'simlink-snapshot-'));
  const db = await openDatabase({});
  const dump = await db.pglite!.dumpDataDir('none');
  await db.close();
  const file = join(dir, 'migrated.tar');
  writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
  project.provide('templateDatabase', '');
  project.provide('snapshotFile', file);
  return () => rmSync(dir, { recursive: true, force: true });
}
