// Starts SIM Link: configuration, the database (embedded or a server), migrations, demo data, listen;
// SIGTERM/SIGINT drain in-flight requests and close the database cleanly.
import pino from 'pino';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { seedDemo } from './db/seed-demo.js';
import { buildApp } from './app.js';

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`SIM Link cannot start: ${error.message}`);
    process.exit(1);
  }
  throw error;
}

const log = pino({ level: config.logLevel });
const started = Date.now();
log.info(config.databaseUrl ? 'using the PostgreSQL server of DATABASE_URL' : `using the embedded PostgreSQL in ${config.dataDir}`);
const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
if (config.seedDemo && (await seedDemo(db.orm.em.fork()))) {
  log.info('seeded the demo enterprises (sign in as admin@acme.example / demo-password)');
}

const app = await buildApp({ orm: db.orm, config, logger: { level: config.logLevel } });

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  app.log.info({ signal }, 'stopping: draining requests, then closing the database');
  const force = setTimeout(() => {
    app.log.error('did not stop within 10 s; exiting');
    process.exit(1);
  }, 10_000).unref();
  try {
    await app.close();
    await db.close();
  } finally {
    clearTimeout(force);
  }
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

try {
  await app.listen({ port: config.port, host: config.host });
  app.log.info({ ms: Date.now() - started }, `SIM Link is ready at http://${config.host}:${config.port}`);
} catch (error) {
  app.log.error({ err: error }, 'could not listen');
  await db.close();
  process.exit(1);
}
