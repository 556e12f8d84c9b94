// Opens the database the app runs on: the PostgreSQL server of DATABASE_URL, or the embedded PostgreSQL
// server kept in DATA_DIR (started here, stopped by close()). Both are reached by the same driver, with
// the same pool, SQL and migrations — one code path.
import { MikroORM } from '@mikro-orm/postgresql';
import { POOL_SIZE } from '../config.js';
import { ormConfig } from './mikro-orm.config.js';
import { startEmbeddedPostgres, type EmbeddedServer } from './embedded-postgres.js';

export interface Database {
  orm: MikroORM;
  /** 'postgresql' for the server of DATABASE_URL, 'embedded' for the one in DATA_DIR. */
  kind: 'postgresql' | 'embedded';
  /** The embedded server, when there is one. */
  embedded?: EmbeddedServer;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** A PostgreSQL server; without it, the embedded server in dataDir is started. */
  databaseUrl?: string;
  /** Where the embedded server keeps its files (required without databaseUrl). */
  dataDir?: string;
  /** Run pending migrations before returning (the app does; tests on a migrated copy need not). */
  migrate?: boolean;
  /** Connections in the pool (default POOL_SIZE, 10). */
  poolSize?: number;
  debug?: boolean;
  /** Notable steps of the embedded server's start (initdb, recovery). */
  log?: (line: string) => void;
}

export async function openDatabase(options: OpenOptions): Promise<Database> {
  let embedded: EmbeddedServer | undefined;
  let databaseUrl = options.databaseUrl;
  if (!databaseUrl) {
    if (!options.dataDir) throw new Error('openDatabase needs a databaseUrl or a dataDir');
    embedded = await startEmbeddedPostgres(options.dataDir, { log: options.log });
    databaseUrl = embedded.url;
  }
  let orm: MikroORM | undefined;
  const close = async () => {
    await orm?.close(true);
    await embedded?.stop();
  };
  try {
    orm = await MikroORM.init(ormConfig({ clientUrl: databaseUrl, poolSize: options.poolSize ?? POOL_SIZE, debug: options.debug }));
    if (options.migrate ?? true) await orm.getMigrator().up();
  } catch (error) {
    await close();
    throw error;
  }
  return { orm, kind: embedded ? 'embedded' : 'postgresql', embedded, close };
}
