// Starts SIM Link: configuration, the port, the database (the embedded PostgreSQL server or DATABASE_URL's),
// migrations, demo data, listen. SIGTERM/SIGINT drain in-flight requests, then close the database and stop
// the embedded server. A start that cannot go on says why in one line and exits 1.
import { createServer } from 'node:net';
import pino, { type DestinationStream } from 'pino';
import pretty from 'pino-pretty';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase, type Database } from './db/database.js';
import { EmbeddedPostgresError } from './db/embedded-postgres.js';
import { seedDemo } from './db/seed-demo.js';
import { buildApp } from './app.js';

/** Why a start failed, in one line a person can act on. */
function reason(error: unknown, config: Config | undefined): string {
  if (error instanceof ConfigError || error instanceof EmbeddedPostgresError) return error.message;
  const err = error as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = config?.databaseUrl ? 'the PostgreSQL server of DATABASE_URL' : 'the embedded PostgreSQL';
  switch (err?.code) {
    case 'EADDRINUSE':
      return `port ${config?.port} is in use on ${config?.host}; stop what uses it or set PORT to another port.`;
    case 'EADDRNOTAVAIL':
      return `HOST ${config?.host} is not an address of this machine; set HOST (e.g. 127.0.0.1 or 0.0.0.0).`;
    case 'EACCES':
      return `port ${config?.port} needs privileges this user does not have; set PORT to 1024 or above.`;
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
      return `${where} cannot be reached (${err.code}${err.address ? ` at ${err.address}${err.port ? `:${err.port}` : ''}` : ''}); check DATABASE_URL and that the server is running.`;
    case '28P01':
    case '28000':
      return `${where} refused the user or password of DATABASE_URL: ${err.message}`;
    case '3D000':
      return `${where} has no such database: ${err.message}; create it (createdb) or fix DATABASE_URL.`;
  }
  const message = (err?.message ?? String(error)).split('\n')[0];
  return `${message} (LOG_LEVEL=debug shows the details)`;
}

let config: Config | undefined;
let db: Database | undefined;

/** Fails early when the port is taken: before the database is opened, migrated or seeded. */
function checkPort(port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve()));
  });
}

async function start() {
  config = loadConfig();
  const started = Date.now();
  const stream: DestinationStream =
    config.logFormat === 'pretty'
      ? pretty({ colorize: process.stdout.isTTY, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', singleLine: true })
      : pino.destination(1);
  const logger = pino({ level: config.logLevel }, stream);
  if (config.port !== 0) await checkPort(config.port, config.host);
  logger.info(
    config.databaseUrl ? 'using the PostgreSQL server of DATABASE_URL' : `using the embedded PostgreSQL in ${config.dataDir}/postgres`,
  );
  db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log: (line) => logger.info(line) });
  if (config.seedDemo && (await seedDemo(db.orm.em.fork()))) {
    logger.info('seeded the demo enterprises (sign in as admin@acme.example / demo-password)');
  }

  const app = await buildApp({ orm: db.orm, config, logger: { level: config.logLevel, stream } });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'stopping: draining requests, then closing the database');
    const force = setTimeout(() => {
      app.log.error('did not stop within 10 s; exiting');
      void db?.close().finally(() => process.exit(1));
    }, 10_000).unref();
    try {
      await app.close();
      await db?.close();
    } catch (error) {
      app.log.error({ err: error }, 'error while stopping');
      process.exitCode = 1;
    } finally {
      clearTimeout(force);
    }
    app.log.info('stopped');
    process.exit();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await app.close().catch(() => {});
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  app.log.info({ ms: Date.now() - started }, `SIM Link is ready at http://${config.host}:${port}`);
}

try {
  await start();
} catch (error) {
  await db?.close().catch(() => {});
  console.error(`SIM Link cannot start: ${reason(error, config)}`);
  if (config?.logLevel === 'debug' || config?.logLevel === 'trace') console.error(error);
  process.exitCode = 1;
}
