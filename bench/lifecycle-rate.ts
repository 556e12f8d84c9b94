// How many link + de-link cycles per second one process sustains, straight through the services
// (linkSim / delinkSim, no HTTP): W workers, each cycling its own endpoint/SIM pair for D seconds, each
// operation in its own unit of work (em.fork()) and transaction, with a one-time key and a request id as the
// confirmation forms send them. Then the invariants are checked and the events counted.
//
//   createdb -h 127.0.0.1 -U postgres simlink_rate
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/simlink_rate npx tsx bench/lifecycle-rate.ts
//   options: --workers 8  --seconds 10  --warmup 1  --keys on|off
//
// Needs a real PostgreSQL server (the embedded one serves one connection: there is nothing to measure).
// Prints one summary line per run and a JSON result; exits 1 if an operation failed, an invariant is broken,
// or the events do not match the operations.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { MikroORM } from '@mikro-orm/postgresql';
import { ormConfig } from '../src/db/mikro-orm.config.js';
import { findActor } from '../src/domain/accounts.js';
import { delinkSim, linkSim } from '../src/domain/lifecycle.js';
import { findViolations } from '../src/domain/invariants.js';
import { iccidFor, imsiFor } from '../src/db/generate-identifiers.js';

const SERIES = 66; // ICCIDs 894466…, apart from demo (10, 20), bulk (77) and test (55) data

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    keys: { type: 'string', default: 'on' },
  },
});
const workers = Number(args.workers);
const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
const useKeys = args.keys !== 'off';
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error('DATABASE_URL must point at a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/simlink_rate');
  process.exit(2);
}
if (!(workers >= 1 && seconds > 0 && warmup >= 0)) {
  console.error('--workers must be ≥ 1, --seconds > 0, --warmup ≥ 0');
  process.exit(2);
}

const orm = await MikroORM.init(ormConfig({ clientUrl: databaseUrl, poolSize: workers + 2 }));
try {
  await orm.getMigrator().up();
  const em = orm.em.fork();

  // A fresh enterprise, admin and W pairs for this run; the ICCID series continues across runs.
  const run = randomBytes(4).toString('hex');
  const [enterprise] = await em.execute<{ id: number }[]>('insert into enterprise (slug, name) values (?, ?) returning id', [
    `bench-rate-${run}`,
    `Bench rate ${run}`,
  ]);
  const [user] = await em.execute<{ id: number }[]>(
    `insert into app_user (enterprise_id, email, display_name, role) values (?, ?, ?, 'admin') returning id`,
    [enterprise.id, `bench-rate-${run}@example.test`, 'Bench Admin'],
  );
  const actor = (await findActor(em, user.id))!;
  const [{ taken }] = await em.execute<{ taken: number }[]>(`select count(*)::int as taken from sim where iccid like ?`, [
    `8944${SERIES}%`,
  ]);
  const pairs: { endpointId: number; simId: number }[] = [];
  for (let i = 0; i < workers; i++) {
    const serial = taken + i + 1;
    const [endpoint] = await em.execute<{ id: number }[]>(
      'insert into endpoint (enterprise_id, name, activate_immediately) values (?, ?, ?) returning id',
      [enterprise.id, `Bench meter ${i + 1}`, i % 2 === 0],
    );
    const [sim] = await em.execute<{ id: number }[]>('insert into sim (enterprise_id, iccid, imsi) values (?, ?, ?) returning id', [
      enterprise.id,
      iccidFor(SERIES, serial),
      imsiFor(SERIES, serial),
    ]);
    pairs.push({ endpointId: endpoint.id, simId: sim.id });
  }

  // Workers: link, de-link, repeat, until the time is up (a started cycle is finished, so pairs end on Hold).
  let opSerial = 0;
  const ctx = () => {
    const n = ++opSerial;
    return { actor, requestId: `rate-${run}-${n}`, ...(useKeys ? { key: `rate-${run}-${n}-${randomBytes(6).toString('hex')}` } : {}) };
  };
  const started = performance.now();
  const windowStart = started + warmup * 1000;
  const windowEnd = windowStart + seconds * 1000;
  const cycleMs: number[] = [];
  let total = 0;
  // Node CPU (user + system) of this process over the measured window: what one cycle costs the app.
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let cpuAtEnd: NodeJS.CpuUsage | undefined;
  let cyclesInWindow = 0;
  const windowTimer = setTimeout(() => (cpuAtStart = process.cpuUsage()), warmup * 1000);
  const endTimer = setTimeout(() => (cpuAtEnd = process.cpuUsage()), (warmup + seconds) * 1000);
  const errors: string[] = [];
  const worker = async ({ endpointId, simId }: { endpointId: number; simId: number }) => {
    while (performance.now() < windowEnd && errors.length === 0) {
      const t0 = performance.now();
      try {
        await linkSim(orm.em.fork(), ctx(), endpointId, simId);
        await delinkSim(orm.em.fork(), ctx(), endpointId);
      } catch (error) {
        errors.push(`${(error as Error).constructor.name}: ${(error as Error).message}`);
        return;
      }
      const t1 = performance.now();
      total++;
      if (t1 >= windowStart && t1 < windowEnd) cycleMs.push(t1 - t0);
      if (cpuAtStart && !cpuAtEnd) cyclesInWindow++;
    }
  };
  await Promise.all(pairs.map(worker));
  clearTimeout(windowTimer);
  clearTimeout(endTimer);
  const cpuWindow = cpuAtStart && cpuAtEnd ? (cpuAtEnd.user - cpuAtStart.user + cpuAtEnd.system - cpuAtStart.system) / 1000 : NaN;
  const nodeCpuMsPerCycle = Math.round((cpuWindow / cyclesInWindow) * 1000) / 1000;

  // Checks: no invariant broken anywhere, and exactly one event per operation of this run.
  const violations = await findViolations(orm.em.fork());
  const [{ events }] = await orm.em
    .fork()
    .execute<{ events: number }[]>(
      `select count(*)::int as events from event where enterprise_id = ? and action in ('sim.linked', 'sim.delinked')`,
      [enterprise.id],
    );
  const sorted = [...cycleMs].sort((a, b) => a - b);
  const pct = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] * 10) / 10;
  const result = {
    workers,
    seconds,
    keys: useKeys,
    cycles: cycleMs.length,
    cyclesPerSec: Math.round((cycleMs.length / seconds) * 10) / 10,
    operationsPerSec: Math.round(((2 * cycleMs.length) / seconds) * 10) / 10,
    cycleMs: { p50: pct(50), p95: pct(95), p99: pct(99) },
    nodeCpuMsPerCycle,
    cyclesInRun: total,
    events,
    eventsExpected: 2 * total,
    violations: violations.length,
    errors,
  };
  console.log(
    `lifecycle-rate: ${result.cyclesPerSec} link+de-link cycles/s (${result.operationsPerSec} operations/s), ` +
      `${workers} workers × ${seconds} s, keys ${useKeys ? 'on' : 'off'}, cycle p50 ${result.cycleMs.p50} ms / p95 ${result.cycleMs.p95} ms, ` +
      `Node CPU ${nodeCpuMsPerCycle} ms/cycle; ` +
      `invariants ${violations.length === 0 ? 'hold' : `BROKEN (${violations.length})`}; events ${events}/${2 * total}`,
  );
  console.log(JSON.stringify(result));
  if (violations.length) console.table(violations.slice(0, 20));
  process.exitCode = errors.length > 0 || violations.length > 0 || events !== 2 * total ? 1 : 0;
} finally {
  await orm.close(true);
}
