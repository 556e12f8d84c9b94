// The bulk-job scenario of `npm run bench` (`--only bulk`; issue 17, "Measured"): a link job of N rows and the
// de-link job that undoes it, each uploaded through /bulk, previewed, applied (Apply → Yes) and run by the app's
// own BulkRunner, as an admin would. For each job: rows per second (the job's started_at → finished_at), the
// app's peak RSS while it ran, and the p99 of two interactive pages (the endpoint page and the picker's first
// page, autocannon in their own processes at 25 requests a second each — people at work, not a flood) measured in
// 1 s windows that fall wholly inside the job's run, against the same pages in 1 s windows just before without a job.
// Then every row's outcome and event are checked: N done, 0 failed, one event per row.
//
// The N endpoints are the bench's own (enterprise acme, named "Bulk bench n", on Hold; added on the first
// run and left on Hold by the de-link job); the SIMs are N Ready to Activate SIMs of acme.
import type pg from 'pg';
import type { RunningApp } from './app-process.js';
import type { LoadResult, LoadSpec } from './load.js';
import { log, median, runTsChild, sleep } from './util.js';

export const BULK_RATE_TARGET = 500;
/** The pages' p99 while a job runs: at most this many times the p99 without one. */
export const BULK_P99_FACTOR = 2;
/** Connections and requests per second per probed page (two pages): people at work, at a steady pace. */
const PROBE_CONNECTIONS = 4;
const PROBE_RATE = 25;
/**
 * The pages are measured in windows this long, during a job and without one alike (the median of the windows'
 * p99): a 10,000-row job runs for seconds, so a window of the scenarios' 10 s would never fall inside it.
 */
const PROBE_WINDOW_SEC = 1;
/** Windows of the pages without a job (after one to warm up). */
const WINDOWS_WITHOUT = 5;

export interface BulkJobRun {
  action: 'link' | 'delink';
  jobId: number;
  rows: number;
  done: number;
  failed: number;
  events: number;
  seconds: number;
  rowsPerSec: number;
  peakRss: number;
  /** The pages' p99 (ms) in the windows that fell wholly inside the job's run (median of the windows); NaN when none did. */
  p99: number;
  windows: number;
}

export interface BulkJobsSummary {
  rows: number;
  probeConnections: number;
  probeRate: number;
  /** p99 (ms) of the pages without a job: endpoint page and picker first page together (the worse of the two). */
  p99Without: number;
  jobs: BulkJobRun[];
  notes: string[];
  broken: boolean;
}

export interface BulkJobsOptions {
  pool: pg.Pool;
  app: RunningApp;
  cookie: string;
  enterpriseId: number;
  rows: number;
  /** Endpoints to open on the endpoint page and the picker (any / on Hold). */
  endpointIds: number[];
  holdEndpointIds: number[];
  durationSec: number;
  warmupSec: number;
}

async function fixture(pool: pg.Pool, enterpriseId: number, rows: number) {
  const mine = () =>
    pool.query<{ id: number }>(
      `select id from endpoint where enterprise_id = $1 and name like 'Bulk bench %' and status = 'hold' order by id limit $2`,
      [enterpriseId, rows],
    );
  let endpoints = await mine();
  if (endpoints.rows.length < rows) {
    const {
      rows: [{ n }],
    } = await pool.query<{ n: number }>(`select count(*)::int as n from endpoint where enterprise_id = $1 and name like 'Bulk bench %'`, [
      enterpriseId,
    ]);
    await pool.query(
      `insert into endpoint (enterprise_id, name, activate_immediately) select $1, 'Bulk bench ' || i, false from generate_series($2::int, $3::int) i`,
      [enterpriseId, n + 1, n + rows - endpoints.rows.length],
    );
    await pool.query('analyze endpoint');
    endpoints = await mine();
  }
  const sims = await pool.query<{ iccid: string }>(
    `select iccid from sim where enterprise_id = $1 and status = 'ready' order by id desc limit $2`,
    [enterpriseId, rows],
  );
  if (sims.rows.length < rows) throw new Error(`only ${sims.rows.length} Ready to Activate SIMs; the bulk job needs ${rows}`);
  return { endpointIds: endpoints.rows.map((r) => r.id), iccids: sims.rows.map((r) => r.iccid) };
}

/** Upload → preview → Apply → Yes, through the app's pages; returns the job's id. */
async function startJob(origin: string, cookie: string, name: string, csv: string): Promise<number> {
  const page = await (await fetch(`${origin}/bulk`, { headers: { cookie } })).text();
  const action = /<form method="post" action="([^"]+)" enctype="multipart\/form-data"/.exec(page)?.[1]?.replace(/&amp;/g, '&');
  if (!action) throw new Error('GET /bulk: no upload form');
  const form = new FormData();
  form.append('file', new Blob([csv], { type: 'text/csv' }), name);
  const preview = await fetch(`${origin}${action}`, { method: 'POST', headers: { cookie }, body: form });
  const body = await preview.text();
  const jobId = /\/bulk\/(\d+)\/apply/.exec(body)?.[1];
  if (preview.status !== 200 || !jobId) throw new Error(`POST /bulk: HTTP ${preview.status}, no job to apply\n${body.slice(0, 1000)}`);
  const confirm = await (await fetch(`${origin}/bulk/${jobId}/apply`, { headers: { cookie } })).text();
  const csrf = hidden(confirm, '_csrf');
  if (!csrf) throw new Error(`GET /bulk/${jobId}/apply: no _csrf`);
  const yes = await fetch(`${origin}/bulk/${jobId}/apply`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf }).toString(),
  });
  await yes.arrayBuffer();
  if (yes.status !== 303) throw new Error(`POST /bulk/${jobId}/apply: HTTP ${yes.status}`);
  return Number(jobId);
}

interface JobRow {
  state: string;
  done: number;
  failed: number;
  seconds: number | null;
}

async function jobState(pool: pg.Pool, jobId: number): Promise<JobRow> {
  const { rows } = await pool.query<JobRow>(
    `select state, done, failed, extract(epoch from finished_at - started_at)::float8 as seconds from bulk_job where id = $1`,
    [jobId],
  );
  return rows[0];
}

/** Both pages at once, each in its own autocannon process: the worse p99 of the two. */
async function probe(o: BulkJobsOptions, durationSec: number, warmupSec: number): Promise<{ p99: number; results: LoadResult[] }> {
  const pick = (list: number[]) => list[Math.floor(Math.random() * list.length)];
  const specs: LoadSpec[] = [
    {
      title: 'bulk-probe-endpoint',
      origin: o.app.origin,
      paths: Array.from({ length: 2000 }, () => `/endpoints/${pick(o.endpointIds)}`),
      headers: { cookie: o.cookie },
      connections: PROBE_CONNECTIONS,
      rate: PROBE_RATE,
      durationSec,
      warmupSec,
      expect: 'id="sim-heading"',
    },
    {
      title: 'bulk-probe-picker',
      origin: o.app.origin,
      paths: Array.from({ length: 2000 }, () => `/endpoints/${pick(o.holdEndpointIds)}/sim/new`),
      headers: { cookie: o.cookie, 'hx-request': 'true' },
      connections: PROBE_CONNECTIONS,
      rate: PROBE_RATE,
      durationSec,
      warmupSec,
      expect: 'data-iccid=',
    },
  ];
  const results = await Promise.all(specs.map((spec) => runTsChild<LoadResult>('load.ts', spec)));
  return { p99: Math.max(...results.map((r) => r.latencyMs.p99)), results };
}

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];

const flagged = (results: LoadResult[]) => results.some((r) => r.errors || r.non2xx || r.mismatches);

async function runJob(o: BulkJobsOptions, action: 'link' | 'delink', csv: string, notes: string[]): Promise<BulkJobRun> {
  const {
    rows: [{ last }],
  } = await o.pool.query<{ last: string }>('select coalesce(max(id), 0)::text as last from event');
  o.app.rss.mark();
  const jobId = await startJob(o.app.origin, o.cookie, `bench-${action}.csv`, csv);
  const p99s: number[] = [];
  for (;;) {
    const state = await jobState(o.pool, jobId);
    if (state.state === 'done' || state.state === 'cancelled') break;
    if (state.state !== 'running') {
      await sleep(100);
      continue;
    }
    const window = await probe(o, PROBE_WINDOW_SEC, 0);
    if (flagged(window.results)) notes.push(`${action} job: errors or non-2xx answers on the pages while it ran`);
    // Only a window that ended before the job did was measured wholly while it ran.
    if ((await jobState(o.pool, jobId)).state === 'running') p99s.push(window.p99);
  }
  const peakRss = o.app.rss.mark();
  const end = await jobState(o.pool, jobId);
  const {
    rows: [{ events }],
  } = await o.pool.query<{ events: number }>(
    `select count(*)::int as events from event where id > $1 and request_id = $2 and action = $3 and source = 'bulk'`,
    [last, `bulk-${jobId}`, action === 'link' ? 'sim.linked' : 'sim.delinked'],
  );
  const seconds = end.seconds ?? NaN;
  const run: BulkJobRun = {
    action,
    jobId,
    rows: o.rows,
    done: end.done,
    failed: end.failed,
    events,
    seconds,
    rowsPerSec: o.rows / seconds,
    peakRss,
    p99: p99s.length ? median(p99s) : NaN,
    windows: p99s.length,
  };
  if (end.state !== 'done' || end.done !== o.rows || end.failed !== 0 || events !== o.rows)
    notes.push(`${action} job ${jobId}: ${end.state}, ${end.done} done, ${end.failed} failed, ${events} events for ${o.rows} rows`);
  if (!p99s.length) notes.push(`${action} job: it ended before a ${PROBE_WINDOW_SEC} s window of the pages did (no p99 while it ran)`);
  log(
    `  bulk ${action} job: ${run.rowsPerSec.toFixed(0)} rows/s (${o.rows} rows in ${seconds.toFixed(1)} s), ${end.done} done, ${end.failed} failed, ` +
      `${events} events; pages p99 while it ran ${run.p99.toFixed(1)} ms (${p99s.length} windows); app peak RSS ${(peakRss / 1048576).toFixed(0)} MB`,
  );
  return run;
}

export async function runBulkJobs(o: BulkJobsOptions): Promise<BulkJobsSummary> {
  const notes: string[] = [];
  const { endpointIds, iccids } = await fixture(o.pool, o.enterpriseId, o.rows);
  // The pages probed are never the job's own endpoints (a picker of an endpoint the job just linked is a 303).
  const mine = new Set(endpointIds);
  o = { ...o, endpointIds: o.endpointIds.filter((id) => !mine.has(id)), holdEndpointIds: o.holdEndpointIds.filter((id) => !mine.has(id)) };
  await probe(o, PROBE_WINDOW_SEC, 0);
  const windowsWithout: { p99: number; results: LoadResult[] }[] = [];
  for (let i = 0; i < WINDOWS_WITHOUT; i++) windowsWithout.push(await probe(o, PROBE_WINDOW_SEC, 0));
  const without = { p99: median(windowsWithout.map((w) => w.p99)) };
  if (windowsWithout.some((w) => flagged(w.results))) notes.push('errors or non-2xx answers on the pages without a job');
  log(
    `  bulk: pages p99 without a job ${without.p99.toFixed(1)} ms (endpoint page and picker first page, ${PROBE_RATE} req/s each; ` +
      `median of ${WINDOWS_WITHOUT} windows of ${PROBE_WINDOW_SEC} s)`,
  );
  const link = ['endpoint_id,action,iccid', ...endpointIds.map((id, i) => `${id},link,${iccids[i]}`)].join('\n');
  const delink = ['endpoint_id,action,iccid', ...endpointIds.map((id) => `${id},delink,`)].join('\n');
  const jobs = [await runJob(o, 'link', link, notes), await runJob(o, 'delink', delink, notes)];
  return {
    rows: o.rows,
    probeConnections: PROBE_CONNECTIONS,
    probeRate: PROBE_RATE,
    p99Without: without.p99,
    jobs,
    notes,
    broken: notes.some((n) => !n.includes('no p99')),
  };
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en', { maximumFractionDigits: digits }) : '—');

export function bulkTable(s: BulkJobsSummary): string {
  return [
    `| bulk job (${s.rows.toLocaleString('en')} rows, run by the app's BulkRunner; pages probed at ${s.probeRate} req/s each) | rows/s | seconds | done / failed / events | pages p99 during (without: ${fmt(s.p99Without, 1)} ms) | app peak RSS |`,
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...s.jobs.map(
      (j) =>
        `| ${j.action} | ${fmt(j.rowsPerSec)} | ${fmt(j.seconds, 1)} | ${j.done} / ${j.failed} / ${j.events} | ${fmt(j.p99, 1)} ms (${j.windows} windows) | ${fmt(j.peakRss / 1048576)} MB |`,
    ),
  ].join('\n');
}

export function bulkTargets(s: BulkJobsSummary): { name: string; target: string; measured: string; met: boolean }[] {
  return s.jobs.flatMap((j) => [
    {
      name: `bulk-${j.action}-rate`,
      target: `Bulk ${j.action} job of ${s.rows.toLocaleString('en')} rows: ≥ ${BULK_RATE_TARGET} rows/s`,
      measured: `${fmt(j.rowsPerSec)} rows/s`,
      met: j.rowsPerSec >= BULK_RATE_TARGET && j.done === s.rows && j.events === s.rows,
    },
    {
      name: `bulk-${j.action}-p99`,
      target: `Pages' p99 during the ${j.action} job ≤ ${BULK_P99_FACTOR}× without (${fmt(s.p99Without, 1)} ms)`,
      measured: `${fmt(j.p99, 1)} ms (${fmt(j.p99 / s.p99Without, 2)}×)`,
      met: j.p99 <= BULK_P99_FACTOR * s.p99Without,
    },
  ]);
}
