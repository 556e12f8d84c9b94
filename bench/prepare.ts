// Prepares the benchmark's database: creates it when missing, runs the app's migrations, seeds the demo
// enterprises (the sign-in user) and tops enterprise `acme` up to the target inventory with the bulk seeder.
// A database already holding the target is reused as it is (only its counts are checked).
import pg from 'pg';
import { openDatabase } from '../src/db/database.js';
import { seedDemo } from '../src/db/seed-demo.js';
import { seedBulk } from '../src/db/seed-bulk.js';
import { log } from './util.js';

export interface Target {
  sims: number;
  endpoints: number;
  readySims: number;
  holdEndpoints: number;
}

export interface Inventory {
  enterpriseId: number;
  sims: number;
  readySims: number;
  endpoints: number;
  holdEndpoints: number;
}

export interface Preparation {
  inventory: Inventory;
  reused: boolean;
  /** Time the bulk seeder took in this run (null when the database was reused). */
  seedMs: number | null;
  seededSims: number;
  seededEndpoints: number;
  vacuumMs: number | null;
  /** The server's autovacuum setting (off means dead rows pile up between runs unless vacuumed). */
  autovacuum: string;
}

/** Creates the database named in `url` when the server does not have it yet. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) throw new Error(`BENCH_DATABASE_URL names no database: ${url}`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (!rowCount) {
      log(`creating database ${name}`);
      await client.query(`create database "${name.replace(/"/g, '""')}"`);
    }
  } finally {
    await client.end();
  }
}

export async function countInventory(client: pg.Client | pg.Pool, slug = 'acme'): Promise<Inventory | null> {
  const { rows } = await client.query<{ id: number }>('select id from enterprise where slug = $1', [slug]);
  if (!rows[0]) return null;
  const enterpriseId = rows[0].id;
  const [sims, endpoints] = await Promise.all([
    client.query<{ total: string; ready: string }>(
      `select count(*) as total, count(*) filter (where status = 'ready') as ready from sim where enterprise_id = $1`,
      [enterpriseId],
    ),
    client.query<{ total: string; hold: string }>(
      `select count(*) as total, count(*) filter (where status = 'hold') as hold from endpoint where enterprise_id = $1`,
      [enterpriseId],
    ),
  ]);
  return {
    enterpriseId,
    sims: Number(sims.rows[0].total),
    readySims: Number(sims.rows[0].ready),
    endpoints: Number(endpoints.rows[0].total),
    holdEndpoints: Number(endpoints.rows[0].hold),
  };
}

const enough = (inv: Inventory | null, target: Target): inv is Inventory =>
  !!inv &&
  inv.sims >= target.sims &&
  inv.endpoints >= target.endpoints &&
  inv.readySims >= target.readySims &&
  inv.holdEndpoints >= target.holdEndpoints;

export async function prepare(url: string, target: Target): Promise<Preparation> {
  await ensureDatabase(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Migrations (and the demo enterprises on an empty database) through the app's own code.
    const db = await openDatabase({ databaseUrl: url });
    let seedMs: number | null = null;
    let seededSims = 0;
    let seededEndpoints = 0;
    let vacuumMs: number | null = null;
    let reused = true;
    try {
      await seedDemo(db.orm.em.fork());
      const before = await countInventory(client);
      if (!enough(before, target)) {
        reused = false;
        const have = before ?? { sims: 0, endpoints: 0 };
        seededSims = Math.max(0, target.sims - have.sims);
        seededEndpoints = Math.max(0, target.endpoints - have.endpoints);
        log(`seeding acme: +${seededSims.toLocaleString('en')} SIMs, +${seededEndpoints.toLocaleString('en')} endpoints`);
        const result = await seedBulk(db.orm.em.fork(), {
          enterprise: 'acme',
          sims: seededSims,
          endpoints: seededEndpoints,
          log: (line) => log(`  ${line}`),
        });
        seedMs = result.ms;
        log(`seeded in ${(result.ms / 1000).toFixed(1)} s`);
      }
    } finally {
      await db.close();
    }
    // What autovacuum does on a live system (and this server may run with autovacuum off): the visibility
    // map lets counts and keyset scans answer from the indexes alone, fresh statistics give the planner the
    // real sizes, and the dead rows earlier runs left (link cycles, session writes) do not slow this one.
    const started = Date.now();
    for (const table of ['sim', 'endpoint', 'session', 'event', 'operation_key']) await client.query(`vacuum (analyze) ${table}`);
    vacuumMs = Date.now() - started;
    log(`vacuum analyze in ${(vacuumMs / 1000).toFixed(1)} s`);
    const inventory = await countInventory(client);
    if (!enough(inventory, target)) {
      throw new Error(`the database does not reach the target after seeding: ${JSON.stringify(inventory)} vs ${JSON.stringify(target)}`);
    }
    const {
      rows: [{ autovacuum }],
    } = await client.query<{ autovacuum: string }>('show autovacuum');
    return { inventory, reused, seedMs, seededSims, seededEndpoints, vacuumMs, autovacuum };
  } finally {
    await client.end();
  }
}
