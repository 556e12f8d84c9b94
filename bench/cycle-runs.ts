// What the API cycles (api-scenario.ts) and the webhook scenario (webhook-scenario.ts) measure around one run
// of link + de-link cycles, as runCycles (run.ts) does for the HTML cycles: the CPU per cycle of the app and
// of its PostgreSQL backends, the app's peak RSS, the audit trail against the changes the driver counted, the
// pairs back where they began; and afterwards the invariant checker.
import type pg from 'pg';
import { openDatabase } from '../src/db/database.js';
import { findViolations } from '../src/domain/invariants.js';
import type { RunningApp } from './app-process.js';
import { APP_DB_NAME, backendCpu, backendDelta, processCpuMs } from './cpu.js';
import type { CyclesResult } from './cycles.js';

export interface CycleRun<T extends CyclesResult> {
  result: T;
  /** CPU ms per cycle (cycles = successful links of the whole run, warm-up included, as in runCycles). */
  serverCpuMs: number;
  dbCpuMs: number;
  peakRss: number;
  eventsChecked: boolean;
  notes: string[];
}

export const databaseName = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1));

/**
 * Runs `drive` (a driver process) and measures around it. `settle` runs after the driver and before the CPU
 * is read again (the webhook scenario waits there for its deliveries, so their CPU counts too).
 */
export async function measureCycleRun<T extends CyclesResult>(
  pool: pg.Pool,
  app: RunningApp,
  url: string,
  pairs: { endpointId: number; simId: number }[][],
  drive: () => Promise<T>,
  settle?: (result: T) => Promise<void>,
): Promise<CycleRun<T>> {
  const database = databaseName(url);
  const {
    rows: [{ last }],
  } = await pool.query<{ last: string }>('select coalesce(max(id), 0)::text as last from event');
  const cpuBefore = processCpuMs(app.child.pid!);
  const backendsBefore = await backendCpu(pool, database, APP_DB_NAME);
  app.rss.mark();
  const result = await drive();
  await settle?.(result);
  const cpuAfter = processCpuMs(app.child.pid!);
  const cycles = result.linked;
  const serverCpuMs = cpuBefore !== null && cpuAfter !== null ? (cpuAfter - cpuBefore) / cycles : NaN;
  const dbCpuMs = backendDelta(backendsBefore, await backendCpu(pool, database, APP_DB_NAME)) / cycles;
  const peakRss = app.rss.mark();
  const notes: string[] = [];
  const { rows: events } = await pool.query<{ action: string; n: string }>(
    'select action, count(*) as n from event where id > $1 group by action',
    [last],
  );
  const count = (action: string) => Number(events.find((e) => e.action === action)?.n ?? 0);
  const eventsChecked = count('sim.linked') === result.linked && count('sim.delinked') === result.delinked;
  if (!eventsChecked)
    notes.push(
      `${result.linked} links / ${result.delinked} de-links succeeded, but the audit trail has ${count('sim.linked')} / ${count('sim.delinked')}`,
    );
  const flat = pairs.flat();
  const {
    rows: [state],
  } = await pool.query<{ hold: string; ready: string }>(
    `select (select count(*) from endpoint where id = any($1) and status = 'hold') as hold,
            (select count(*) from sim where id = any($2) and status = 'ready') as ready`,
    [flat.map((p) => p.endpointId), flat.map((p) => p.simId)],
  );
  if (Number(state.hold) !== flat.length || Number(state.ready) !== flat.length)
    notes.push(`after the run ${state.hold} of ${flat.length} endpoints are on Hold and ${state.ready} SIMs Ready to Activate`);
  notes.push(...result.failures);
  return { result, serverCpuMs, dbCpuMs, peakRss, eventsChecked, notes };
}

/** findViolations over the whole database: how many, and the first ten as notes. */
export async function countViolations(url: string): Promise<{ violations: number; notes: string[] }> {
  const db = await openDatabase({ databaseUrl: url, migrate: false });
  try {
    const found = await findViolations(db.orm.em.fork());
    return {
      violations: found.length,
      notes: found
        .slice(0, 10)
        .map((v) => `violation of invariant ${v.invariant}: ${v.detail} (endpoint ${v.endpoint_id}, SIM ${v.sim_id})`),
    };
  } finally {
    await db.close();
  }
}

export const percentile = (values: number[], p: number): number => {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};

/** A latency from a driver: null (NaN through JSON) when nothing fitted wholly in the measured window. */
export const msText = (value: number | null) =>
  typeof value === 'number' && Number.isFinite(value) ? `${value.toFixed(1)} ms` : '— (no whole cycle in the window)';
