// Runs SIM Link the way a person would: `npm run build`, then `node dist/src/server.js` in a child process
// on a free port with a database of its own — a new database on the PostgreSQL server of TEST_DATABASE_URL
// (created here, dropped when stopped), else the embedded PostgreSQL the app starts in a new temporary DATA_DIR.
// Used by the browser tests' globalSetup and by scripts/screenshots.ts.
import { spawn, execSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const rootDir = fileURLToPath(new URL('../../../', import.meta.url));

/** `npm run build`, once per run (tsc and the asset copy); E2E_SKIP_BUILD=1 reuses dist/ while iterating on tests. */
export function buildOnce(): void {
  if (process.env.E2E_SKIP_BUILD === '1') return;
  execSync('npm run build', { cwd: rootDir, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A TCP port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function admin(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface RunningApp {
  /** http://localhost:<port> — the browser's address for the app. */
  url: string;
  port: number;
  /** Which database it runs on, for the test log. */
  database: string;
  /** Everything the server printed (pino JSON lines), for a failure's diagnosis. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra environment (CRM_ORIGINS, CRM_LAUNCH_SECRET, …). */
  env?: Record<string, string>;
  /** A PostgreSQL server to create the database on; default process.env.TEST_DATABASE_URL. */
  serverUrl?: string;
}

/** Starts the built app with SEED_DEMO=true and RATE_LIMITS=false on a fresh database; resolves when it listens. */
export async function startApp(options: StartOptions = {}): Promise<RunningApp> {
  const serverUrl = options.serverUrl ?? process.env.TEST_DATABASE_URL;
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'simlink-e2e-'));
  const databaseName = `simlink_e2e_${process.pid}_${port}`;
  if (serverUrl) {
    await admin(serverUrl, `drop database if exists ${databaseName} with (force)`);
    await admin(serverUrl, `create database ${databaseName}`);
  }
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    SEED_DEMO: 'true',
    RATE_LIMITS: 'false',
    LOG_LEVEL: 'warn',
    ...options.env,
  };
  delete env.DATABASE_URL;
  if (serverUrl) env.DATABASE_URL = withDatabase(serverUrl, databaseName);

  const child: ChildProcess = spawn(process.execPath, ['dist/src/server.js'], { cwd: rootDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const cleanUp = async () => {
    rmSync(dataDir, { recursive: true, force: true });
    if (serverUrl) await admin(serverUrl, `drop database if exists ${databaseName} with (force)`);
  };

  // Ready when /readyz answers (the first start of a new embedded database takes a few seconds).
  const url = `http://localhost:${port}`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) {
      await cleanUp();
      throw new Error(`SIM Link exited (${child.exitCode}) before it was ready:\n${output}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      await cleanUp();
      throw new Error(`SIM Link did not answer /readyz within 180 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  return {
    url,
    port,
    database: serverUrl ? `PostgreSQL database ${databaseName}` : `embedded PostgreSQL in ${dataDir}`,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      await cleanUp();
    },
  };
}
