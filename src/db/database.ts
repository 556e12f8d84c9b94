// Opens the database the app runs on: the PostgreSQL server of DATABASE_URL, or an embedded one
// (PGlite, persisted on disk) served over a unix socket to the same PostgreSQL driver — one code path.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MikroORM } from '@mikro-orm/postgresql';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { ormConfig } from './mikro-orm.config.js';

export interface Database {
  orm: MikroORM;
  /** 'postgresql' for a server, 'embedded' for PGlite. */
  kind: 'postgresql' | 'embedded';
  /** The embedded database itself (tests dump a migrated snapshot of it). */
  pglite?: PGlite;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** A PostgreSQL server; without it, the embedded database is used. */
  databaseUrl?: string;
  /** Where the embedded database keeps its files; omitted → in memory (tests). */
  dataDir?: string;
  /** A dumped embedded database to start from (tests load a migrated snapshot). */
  loadDataDir?: Blob | File;
  /** Run pending migrations before returning (the app does; tests that load a snapshot need not). */
  migrate?: boolean;
  debug?: boolean;
}

export async function openDatabase(options: OpenOptions): Promise<Database> {
  const db = options.databaseUrl ? await openServer(options.databaseUrl, options) : await openEmbedded(options);
  if (options.migrate ?? true) {
    try {
      await db.orm.getMigrator().up();
    } catch (error) {
      await db.close();
      throw error;
    }
  }
  return db;
}

async function openServer(databaseUrl: string, options: OpenOptions): Promise<Database> {
  const orm = await MikroORM.init(ormConfig({ clientUrl: databaseUrl, debug: options.debug }));
  return { orm, kind: 'postgresql', close: () => orm.close(true) };
}

async function openEmbedded(options: OpenOptions): Promise<Database> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const pglite = await PGlite.create({
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
  });
  // Socket paths are limited to ~107 bytes: a short temporary directory, not the data directory.
  const socketDir = mkdtempSync(join(tmpdir(), 'simlink-'));
  const server = new PGLiteSocketServer({ db: pglite, path: join(socketDir, '.s.PGSQL.5432'), maxConnections: 1 });
  await server.start();
  let orm: MikroORM;
  try {
    orm = await MikroORM.init(
      ormConfig({
        socketDir,
        poolSize: 1,
        debug: options.debug,
      }),
    );
  } catch (error) {
    await server.stop();
    await pglite.close();
    rmSync(socketDir, { recursive: true, force: true });
    throw error;
  }
  let closed = false;
  return {
    orm,
    kind: 'embedded',
    pglite,
    async close() {
      if (closed) return;
      closed = true;
      await orm.close(true);
      await server.stop();
      await pglite.close();
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}
