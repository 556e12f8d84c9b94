// How many rows per second a bulk job runs at, straight through the services (no HTTP): a job of N link rows
// built by the preview from a CSV file, run to its end by a BulkRunner, then the N de-link rows that undo it —
// with the runner's rows per transaction (--batch; 1: each row through its single verb) and concurrency
// (transactions at once) as the variables, every combination of the two, interleaved.
// Then the invariants are checked and the events counted (one per row).
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/simlink_rate npx tsx bench/bulk-rate.ts
//   options: --rows 2000  --batch 1,100  --concurrency 1  --pool 10  --rounds 1 (the list run again, for interleaved repeats)
//
// Each run uses a fresh enterprise with N endpoints on Hold and N Ready to Activate SIMs of its own (ICCID
// series 68), in the same tables as everything else in the database (seed a million SIMs first to measure
// at that size: `npm run seed -- --sims 1000000`). Prints one line per concurrency and a JSON result; exits 1
// if a row failed, an invariant is broken, or the events do not match the rows.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { MikroORM } from '@mikro-orm/postgresql';
import { ormConfig } from '../src/db/mikro-orm.config.js';
import { findActor, type Actor } from '../src/domain/accounts.js';
import { BulkRunner, createBulkJob, previewBulk } from '../src/domain/bulk.js';
import { BulkJobSchema } from '../src/domain/entities.js';
import { findViolations } from '../src/domain/invariants.js';
import { iccidFor, imsiFor } from '../src/db/generate-identifiers.js';

const SERIES = 68; // ICCIDs 894468…, apart from demo (10, 20), bulk (77), test (55) and lifecycle-rate (66) data

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '1' },
    batch: { type: 'string', default: '1,100' },
    rounds: { type: 'string', default: '1' },
    pool: { type: 'string', default: '10' },
  },
});
const rows = Number(args.rows);
const levels = args.concurrency!.split(',').map(Number);
const batches = args.batch!.split(',').map(Number);
const rounds = Number(args.rounds);
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error('DATABASE_URL must point at a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/simlink_rate');
  process.exit(2);
}
if (!(rows >= 1 && rounds >= 1 && [...levels, ...batches].every((c) => c >= 1))) {
  console.error('--rows and --rounds must be ≥ 1, --batch and --concurrency lists of numbers ≥ 1');
  process.exit(2);
}

const orm = await MikroORM.init(ormConfig({ clientUrl: databaseUrl, poolSize: Number(args.pool) }));

async function fixture(): Promise<{ actor: Actor; enterpriseId: number; link: string; delink: string }> {
  const em = orm.em.fork();
  const run = randomBytes(4).toString('hex');
  const [enterprise] = await em.execute<{ id: number }[]>('insert into enterprise (slug, name) values (?, ?) returning id', [
    `bench-bulk-${run}`,
    `Bench bulk ${run}`,
  ]);
  const [user] = await em.execute<{ id: number }[]>(
    `insert into app_user (enterprise_id, email, display_name, role) values (?, ?, ?, 'admin') returning id`,
    [enterprise.id, `bench-bulk-${run}@example.test`, 'Bench Admin'],
  );
  const [{ taken }] = await em.execute<{ taken: number }[]>(`select count(*)::int as taken from sim where iccid like ?`, [
    `8944${SERIES}%`,
  ]);
  const endpoints = await em.execute<{ id: number }[]>(
    `insert into endpoint (enterprise_id, name, activate_immediately)
     select ?, 'Bulk meter ' || n, n % 2 = 0 from generate_series(1, ?) n returning id`,
    [enterprise.id, rows],
  );
  const iccids = Array.from({ length: rows }, (_, i) => iccidFor(SERIES, taken + i + 1));
  const imsis = Array.from({ length: rows }, (_, i) => imsiFor(SERIES, taken + i + 1));
  await em.execute(`insert into sim (enterprise_id, iccid, imsi) select ?, s->>0, s->>1 from json_array_elements(?::json) s`, [
    enterprise.id,
    JSON.stringify(iccids.map((iccid, i) => [iccid, imsis[i]])),
  ]);
  await em.execute('analyze endpoint, sim');
  const ids = endpoints.map((e) => e.id).sort((a, b) => a - b);
  return {
    actor: (await findActor(em, user.id))!,
    enterpriseId: enterprise.id,
    link: ['endpoint_id,action,iccid', ...ids.map((id, i) => `${id},link,${iccids[i]}`)].join('\n'),
    delink: ['endpoint_id,action,iccid', ...ids.map((id) => `${id},delink,`)].join('\n'),
  };
}

async function runJob(actor: Actor, csv: string, batchRows: number, concurrency: number) {
  const preview = await previewBulk(orm.em.fork(), actor, { stream: Readable.from([Buffer.from(csv)]), filename: 'bench.csv' });
  if (preview.problems.length) throw new Error(`the preview refused rows: ${JSON.stringify(preview.problems.slice(0, 3))}`);
  const job = await createBulkJob(orm.em.fork(), actor, preview.fileName, preview.rows);
  const runner = new BulkRunner(orm, { batchRows, concurrency });
  const started = performance.now();
  const cpu = process.cpuUsage();
  while (await runner.runOne());
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const done = await orm.em.fork().findOneOrFail(BulkJobSchema, job.id);
  return {
    rowsPerSec: Math.round(rows / seconds),
    seconds: Math.round(seconds * 100) / 100,
    nodeCpuMsPerRow: Math.round(((used.user + used.system) / 1000 / rows) * 1000) / 1000,
    done: done.done,
    failed: done.failed,
  };
}

const results = [];
let broken = false;
try {
  await orm.getMigrator().up();
  const settings = Array.from({ length: rounds }, () =>
    batches.flatMap((batch) => levels.map((concurrency) => ({ batch, concurrency }))),
  ).flat();
  for (const { batch, concurrency } of settings) {
    const { actor, enterpriseId, link, delink } = await fixture();
    const linked = await runJob(actor, link, batch, concurrency);
    const delinked = await runJob(actor, delink, batch, concurrency);
    const [{ events }] = await orm.em
      .fork()
      .execute<{ events: number }[]>(
        `select count(*)::int as events from event where enterprise_id = ? and action in ('sim.linked', 'sim.delinked')`,
        [enterpriseId],
      );
    const ok = linked.done === rows && delinked.done === rows && events === 2 * rows;
    broken ||= !ok;
    results.push({ batch, concurrency, rows, link: linked, delink: delinked, events });
    console.log(
      `bulk-rate: ${batch} rows a transaction, ${concurrency} at once: link ${linked.rowsPerSec} rows/s (${linked.seconds} s, Node CPU ${linked.nodeCpuMsPerRow} ms/row), ` +
        `de-link ${delinked.rowsPerSec} rows/s (${delinked.seconds} s, Node CPU ${delinked.nodeCpuMsPerRow} ms/row); ` +
        `events ${events}/${2 * rows}${ok ? '' : ' ✗'}`,
    );
  }
  const violations = await findViolations(orm.em.fork());
  broken ||= violations.length > 0;
  console.log(`invariants ${violations.length === 0 ? 'hold' : `BROKEN (${violations.length})`}`);
  console.log(JSON.stringify(results));
} finally {
  await orm.close(true);
}
process.exitCode = broken ? 1 : 0;
