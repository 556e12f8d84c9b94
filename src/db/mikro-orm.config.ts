// MikroORM's configuration, shared by the app, the tests and the CLI (`npm run migration:create`).
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { entities } from '../domain/entities.js';
import { SimLinkPostgreSqlDriver } from './driver.js';
import { runningEmbeddedUrl } from './embedded-postgres.js';

// Running from TypeScript (tsx, vitest) or from the build: the same relative path finds the migrations.
const runningTs = import.meta.url.endsWith('.ts');
const migrationsDir = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface ConnectionOptions {
  /** A server's URL; a unix socket is named by `?host=/its/directory` (the embedded server). */
  clientUrl: string;
  poolSize?: number;
  debug?: boolean;
}

export function ormConfig({ clientUrl, poolSize = 10, debug = false }: ConnectionOptions): Options {
  return defineConfig({
    ...connection(clientUrl),
    // MikroORM's driver, with the unit of work's INSERTs and UPDATEs compiled once per shape (see driver.ts).
    driver: SimLinkPostgreSqlDriver,
    entities,
    extensions: [Migrator],
    allowGlobalContext: false,
    preferTs: runningTs,
    debug,
    pool: { min: 0, max: poolSize },
    // A query waiting for a connection that never comes fails after 10 s instead of hanging.
    driverOptions: { acquireConnectionTimeout: 10_000 },
    // Under vitest, migrations are TypeScript files: let the runtime's own import load them.
    dynamicImportProvider: (id: string) => import(id),
    discovery: { warnWhenNoEntities: true },
    migrations: {
      path: migrationsDir,
      pathTs: migrationsDir,
      glob: runningTs ? '!(*.d).ts' : '!(*.d).js',
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      disableForeignKeys: false,
      snapshot: false,
      emit: 'ts',
      silent: true,
    },
  });
}

/**
 * MikroORM reads host, port, user, password and database from a URL but not libpq's `?host=` for a unix
 * socket: such a URL is given to it as separate options.
 */
function connection(clientUrl: string): Options {
  const url = new URL(clientUrl);
  const socket = url.searchParams.get('host');
  if (!socket) return { clientUrl };
  return {
    host: socket,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    dbName: decodeURIComponent(url.pathname.slice(1)),
  };
}

// For the MikroORM CLI (`npm run migration:create`, `migration:up`): the database of DATABASE_URL, else the
// embedded server of DATA_DIR while SIM Link runs it.
const dataDir = resolve(process.env.DATA_DIR?.trim() || '.data');
export default ormConfig({
  clientUrl: process.env.DATABASE_URL ?? runningEmbeddedUrl(dataDir) ?? 'postgresql://postgres@127.0.0.1:5432/simlink',
});
