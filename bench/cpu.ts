// CPU time, the figure that contention on a shared machine disturbs least: how many milliseconds of CPU
// the app (or a ceiling) and its PostgreSQL backends spend per request. Read from /proc (Linux).
import { readFileSync } from 'node:fs';
import type pg from 'pg';

/** application_name of the app's and the ceilings' PostgreSQL connections. */
export const APP_DB_NAME = 'simlink-bench-app';
export const CEILING_DB_NAME = 'simlink-bench-ceiling';

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** utime + stime of a process, in ms; null when it cannot be read. */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (2nd field) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return null;
  }
}

/** The CPU time of the PostgreSQL backends serving one application_name on one database, by backend pid. */
export async function backendCpu(pool: pg.Pool, database: string, applicationName: string): Promise<Map<number, number>> {
  const { rows } = await pool.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1 and application_name = $2', [
    database,
    applicationName,
  ]);
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    const ms = processCpuMs(pid);
    if (ms !== null) cpu.set(pid, ms);
  }
  return cpu;
}

/** CPU the backends spent between two readings (a backend that appeared in between counts from zero). */
export function backendDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}
