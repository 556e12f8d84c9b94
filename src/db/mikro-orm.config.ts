// MikroORM's configuration, shared by the app, the tests and the CLI (`npm run migration:create`).
import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { entities } from '../domain/entities.js';

// Running from TypeScript (tsx, vitest) or from the build: the same relative path finds the migrations.
const runningTs = import.meta.url.endsWith('.ts');
const migrationsDir = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface ConnectionOptions {
  /** A server's URL, or… */
  clientUrl?: string;
  /** …a unix socket's directory (the embedded database), with user and database `postgres`. */
  socketDir?: string;
  /** The embedded database serves exactly one connection at a time. */
  poolSize?: number;
  debug?: boolean;
}

export function ormConfig({ clientUrl, socketDir, poolSize = 10, debug = false }: ConnectionOptions): Options {
  return defineConfig({
    ...(socketDir ? { host: socketDir, port: 5432, user: 'postgres', dbName: 'postgres' } : { clientUrl }),
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

// For the MikroORM CLI: the database of DATABASE_URL (start the app once for the embedded one).
export default ormConfig({
  clientUrl: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/simlink',
});
