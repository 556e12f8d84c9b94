// npm run bench [-- --quick] — SIM Link at a million SIMs, against ceilings measured in the same run.
// 1. prepares BENCH_DATABASE_URL (1,000,000 SIMs / 100,000 endpoints in enterprise acme; --quick: 100,000 /
//    10,000 in a database of its own, suffix _quick), reusing it when it is already prepared;
// 2. builds and starts the production app, signs in, samples its RSS;
// 3. drives each scenario with autocannon in a separate process (warm-up, then the measured run), 3× round-robin;
// 4. measures the ceilings (bench/ceiling-server.ts) the same way, in the same run;
// 5. link + de-link cycles through the real confirmation forms, then the invariant checker;
// 6. prints the table, writes bench/results/<date>.json and rewrites the table in BENCHMARKS.md.
// See README.md ("Benchmark") for the options.
import { spawn } from 'node:child_process';
import { cpus, loadavg, totalmem, release, tmpdir, type as osType } from 'node:os';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedServer } from '../src/db/embedded-postgres.js';
import { prepare, type Target } from './prepare.js';
import { RssSampler, buildApp, pssOfTree, rssOf, signIn, startApp, type RunningApp } from './app-process.js';
import { scenarios, type Fixtures, type Scenario } from './scenarios.js';
import { exportTargets, runExports } from './exports.js';
import type { LoadResult, LoadSpec } from './load.js';
import type { CyclesResult, CyclesSpec } from './cycles.js';
import {
  CYCLES_TARGET,
  RSS_TARGET,
  rewriteBenchmarksMd,
  summarise,
  table,
  targetsTable,
  writeResults,
  type CyclesSummary,
  type Machine,
  type Report,
  type ScenarioSummary,
} from './report.js';
import { summarise as summariseProfile } from './profile-summary.js';
import { API_ONLY, apiTargets, createBenchTokens, runApiCycles, withApiScenarios, type BenchTokens } from './api-scenario.js';
import { runWebhooks, webhookTargets } from './webhook-scenario.js';
import { bulkTable, bulkTargets, runBulkJobs, type BulkJobsSummary } from './bulk-jobs.js';
import { APP_DB_NAME, CEILING_DB_NAME, backendCpu, backendDelta, processCpuMs } from './cpu.js';
import { countViolations, measureCycleRun, msText } from './cycle-runs.js';
import { BENCH_DIR, ROOT, freePort, log, median, runTsChild, stopChild, waitForHttp } from './util.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    repeats: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '50' },
    workers: { type: 'string', default: '50' },
    only: { type: 'string' },
    'skip-build': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    'app-node-options': { type: 'string' },
    'write-md': { type: 'boolean' },
  },
});

// BENCH_DATABASE_URL: a PostgreSQL server's database (created when missing). Unset: the embedded PostgreSQL
// server, in a directory of the system's temporary directory that later runs reuse (the million SIMs are
// seeded once), started now and stopped at the end.
let embedded: EmbeddedServer | undefined;
let baseUrl = process.env.BENCH_DATABASE_URL;
if (!baseUrl) {
  const dir = join(tmpdir(), 'simlink-bench');
  log(`BENCH_DATABASE_URL is unset: the embedded PostgreSQL in ${dir}`);
  embedded = await startEmbeddedPostgres(dir, { log: (line) => log(line) });
  baseUrl = embedded.url;
}

const quick = args.quick!;
const number = (name: string, raw: string | undefined, fallback: number) => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} must be a positive number; got "${raw}".`);
    process.exit(2);
  }
  return n;
};
const settings = {
  connections: number('connections', args.connections, 50),
  durationSec: number('duration', args.duration, quick ? 3 : 10),
  warmupSec: number('warmup', args.warmup, quick ? 1 : 3),
  repeats: number('repeats', args.repeats, quick ? 1 : 3),
  cycleWorkers: number('workers', args.workers, 50),
};
const target: Target = quick
  ? { sims: 100_000, endpoints: 10_000, readySims: 10_000, holdEndpoints: 1_000 }
  : { sims: 1_000_000, endpoints: 100_000, readySims: 100_000, holdEndpoints: 10_000 };

/** The quick run keeps its own database: the same name with the suffix _quick. */
function databaseUrl(): string {
  if (!quick) return baseUrl!;
  const url = new URL(baseUrl!);
  url.pathname = `${url.pathname.replace(/\/$/, '')}_quick`;
  return url.toString();
}

async function machine(pool: pg.Pool): Promise<Machine> {
  const { rows } = await pool.query<{ version: string }>('select version()');
  let os = `${osType()} ${release()}`;
  try {
    os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    // keep the kernel name
  }
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGb: totalmem() / 1024 ** 3,
    node: process.version,
    postgres: rows[0].version.split(' on ')[0],
    os,
  };
}

async function startCeiling(url: string, enterpriseId: number) {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', `${BENCH_DIR}ceiling-server.ts`, JSON.stringify({ port, databaseUrl: url, enterpriseId, poolSize: 10 })],
    {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, NODE_ENV: 'production' },
    },
  );
  const origin = `http://127.0.0.1:${port}`;
  await waitForHttp(`${origin}/healthz`, child);
  log(`ceilings (pid ${child.pid}) ready at ${origin}`);
  return { origin, pid: child.pid!, stop: () => stopChild(child) };
}

const sample = <T>(list: T[], n: number) => {
  const copy = [...list];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, n);
};

const iccidsOf = (html: string) => [...html.matchAll(/data-iccid="(\d+)"/g)].map((m) => m[1]);
const countOf = (html: string) => /id="picker-count"[^>]*>([^<]*)</.exec(html)?.[1]?.trim() ?? '';
const nextAfter = (html: string) => /href="[^"]*[?&;]after=(\d+)[^"]*"[^>]*rel="next"/.exec(html)?.[1] ?? null;

async function get(url: string, headers: Record<string, string>): Promise<string> {
  const response = await fetch(url, { headers, redirect: 'manual' });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`GET ${url}: HTTP ${response.status}\n${body.slice(0, 500)}`);
  return body;
}

async function fixtures(
  pool: pg.Pool,
  enterpriseId: number,
  app: RunningApp,
  cookie: string,
): Promise<Fixtures & { cyclePairs: { endpointId: number; simId: number }[][] }> {
  const endpoints = await pool.query<{ id: number; status: string }>('select id, status from endpoint where enterprise_id = $1', [
    enterpriseId,
  ]);
  const hold = sample(
    endpoints.rows.filter((r) => r.status === 'hold').map((r) => r.id),
    100_000,
  );
  const perWorker = quick ? 10 : 20;
  const cycleCount = settings.cycleWorkers * perWorker;
  if (hold.length < cycleCount + 100) throw new Error(`only ${hold.length} endpoints on Hold; the cycles need ${cycleCount + 100}`);
  const cycleEndpoints = hold.slice(0, cycleCount);
  const pickerEndpoints = hold.slice(cycleCount, cycleCount + 1_000);
  // Random Ready to Activate SIMs (a sample of the table's blocks, so it stays cheap at a million rows).
  const ready = await pool.query<{ id: number; iccid: string; imsi: string }>(
    `select id, iccid, imsi from sim tablesample system (5) where enterprise_id = $1 and status = 'ready' limit 20000`,
    [enterpriseId],
  );
  const readySample = sample(ready.rows, ready.rows.length);
  const cycleSims = readySample.slice(0, cycleCount);
  const searchSims = readySample.slice(cycleCount, cycleCount + 1_000);
  const cyclePairs = Array.from({ length: settings.cycleWorkers }, (_, w) =>
    Array.from({ length: perWorker }, (_, k) => ({
      endpointId: cycleEndpoints[w * perWorker + k],
      simId: cycleSims[w * perWorker + k].id,
    })),
  );

  // Page 200 of the picker: follow its Next link (the keyset cursor) 199 times from the first page.
  const headers = { cookie, 'hx-request': 'true', 'hx-target': 'picker-results' };
  let after: string | null = null;
  for (let page = 1; page < 200; page++) {
    const html = await get(`${app.origin}/endpoints/${pickerEndpoints[0]}/sim/new${after ? `?after=${after}` : ''}`, headers);
    after = nextAfter(html);
    if (!after) throw new Error(`the picker has no Next link on page ${page}`);
  }
  return {
    endpointIds: sample(
      endpoints.rows.map((r) => r.id),
      20_000,
    ),
    holdEndpointIds: pickerEndpoints,
    iccidPrefixes: [...new Set(searchSims.map((s) => s.iccid.slice(0, 8)))],
    imsiPrefixes: [...new Set(searchSims.map((s) => s.imsi.slice(0, 10)))],
    page200After: after!,
    cyclePairs,
  };
}

/** The ceiling must run the app's query: compare the rows and the count of both, page for page. */
async function checkCeilingMatchesApp(all: Scenario[], app: RunningApp, ceilingOrigin: string, cookie: string) {
  for (const s of all.filter((x) => x.server === 'app' && x.ceiling?.startsWith('ceiling-picker'))) {
    const appPath = s.paths[0];
    const query = appPath.includes('?') ? appPath.slice(appPath.indexOf('?')) : '';
    const [mine, theirs] = await Promise.all([
      get(`${app.origin}${appPath}`, { ...s.headers, cookie }),
      get(`${ceilingOrigin}/picker${query}`, s.headers),
    ]);
    const a = iccidsOf(mine);
    const b = iccidsOf(theirs);
    if (a.length === 0 || a.join() !== b.join() || countOf(mine) !== countOf(theirs)) {
      throw new Error(
        `ceiling (b) does not return what the app returns for ${appPath}: ${a.length} vs ${b.length} rows, "${countOf(mine)}" vs "${countOf(theirs)}"`,
      );
    }
  }
  log('ceiling (b) returns the same rows and counts as the app');
}

async function runCycles(pool: pg.Pool, app: RunningApp, pairs: CyclesSpec['pairs']): Promise<CyclesSummary> {
  const runs: CyclesResult[] = [];
  const notes: string[] = [];
  let eventsChecked = true;
  const cpu: { server: number; db: number }[] = [];
  let peakRss = 0;
  // One session per worker, signed in before the runs (the password hashing is not part of a cycle).
  const cookies: string[] = [];
  for (let i = 0; i < pairs.length; i++) cookies.push(await signIn(app.origin));
  for (let rep = 1; rep <= settings.repeats; rep++) {
    // Measured around the driver as every cycles scenario is (cycle-runs.ts): CPU per cycle of the app and of
    // its PostgreSQL backends, peak RSS, every 303 one event in the audit trail, every pair back where it began.
    const run = await measureCycleRun(pool, app, databaseUrl(), pairs, () =>
      runTsChild<CyclesResult>('cycles.ts', {
        origin: app.origin,
        cookies,
        pairs,
        durationSec: settings.durationSec,
        warmupSec: settings.warmupSec,
      } satisfies CyclesSpec),
    );
    const { result } = run;
    cpu.push({ server: run.serverCpuMs, db: run.dbCpuMs });
    peakRss = Math.max(peakRss, run.peakRss);
    runs.push(result);
    eventsChecked &&= run.eventsChecked;
    for (const note of run.notes) notes.push(`run ${rep}: ${note}`);
    log(
      `  cycles run ${rep}: ${result.cyclesPerSec.toFixed(0)} cycles/s (${result.requestsPerSec.toFixed(0)} req/s), cycle p50 ${msText(result.cycleMs.p50)}, ` +
        `p99 ${msText(result.cycleMs.p99)}, ${result.errors} errors, ${result.unexpected} unexpected answers; ` +
        `CPU/cycle: app ${run.serverCpuMs.toFixed(2)} ms, PostgreSQL ${run.dbCpuMs.toFixed(2)} ms`,
    );
  }

  log('running the invariant checker (findViolations)');
  const checked = await countViolations(databaseUrl());
  const violations = checked.violations;
  notes.push(...checked.notes);
  const cyclesPerSec = median(runs.map((r) => r.cyclesPerSec));
  const errors = runs.reduce((n, r) => n + r.errors, 0);
  const unexpected = runs.reduce((n, r) => n + r.unexpected, 0);
  return {
    runs,
    cyclesPerSec,
    cycleP50: median(runs.map((r) => r.cycleMs.p50)),
    cycleP99: median(runs.map((r) => r.cycleMs.p99)),
    requestP50: median(runs.map((r) => r.requestMs.p50)),
    requestP99: median(runs.map((r) => r.requestMs.p99)),
    serverCpuMs: median(cpu.map((c) => c.server)),
    dbCpuMs: median(cpu.map((c) => c.db)),
    peakRss,
    errors,
    unexpected,
    violations,
    eventsChecked,
    verdict: cyclesPerSec >= CYCLES_TARGET && violations === 0 && errors === 0 && unexpected === 0 && eventsChecked ? 'met' : 'missed',
    notes,
  };
}

function targets(report: Report): Report['targets'] {
  const by = (id: string) => report.scenarios.find((s) => s.id === id);
  const list: Report['targets'] = [];
  const pct = (r?: number) => (r === undefined ? '—' : `${(r * 100).toFixed(0)} %`);
  for (const id of ['picker-first', 'picker-iccid', 'picker-imsi']) {
    const s = by(id);
    if (!s) continue;
    list.push({
      name: `${id} ratio`,
      target: `${s.label}: ≥ 50 % of ceiling (b) req/s`,
      measured: pct(s.ratio),
      met: (s.ratio ?? 0) >= 0.5,
    });
    list.push({ name: `${id} p99`, target: `${s.label}: p99 ≤ 50 ms`, measured: `${s.p99.toFixed(1)} ms`, met: s.p99 <= 50 });
  }
  const endpoint = by('endpoint-page');
  if (endpoint)
    list.push({
      name: 'endpoint-page ratio',
      target: 'Endpoint page: ≥ 40 % of ceiling (a) req/s',
      measured: pct(endpoint.ratio),
      met: (endpoint.ratio ?? 0) >= 0.4,
    });
  list.push(...apiTargets(report), ...webhookTargets(report));
  const c = report.cycles;
  list.push({
    name: 'cycles',
    target: `Link + de-link: ≥ ${CYCLES_TARGET} cycles/s`,
    measured: `${c.cyclesPerSec.toFixed(0)} cycles/s`,
    met: c.cyclesPerSec >= CYCLES_TARGET,
  });
  list.push({
    name: 'violations',
    target: 'Link + de-link: 0 invariant violations',
    measured: String(c.violations),
    met: c.violations === 0,
  });
  const flagged = report.scenarios.filter((s) => s.errors || s.non2xx || s.mismatches).length + (c.errors || c.unexpected ? 1 : 0);
  list.push({
    name: 'errors',
    target: 'Errors and non-2xx: 0 in every scenario',
    measured: flagged ? `${flagged} scenario(s) flagged` : '0',
    met: flagged === 0,
  });
  list.push({
    name: 'rss',
    target: 'App peak RSS ≤ 250 MB',
    measured: `${(report.app.peakRss / 1024 / 1024).toFixed(0)} MB`,
    met: report.app.peakRss <= RSS_TARGET,
  });
  return list;
}

async function main(): Promise<number> {
  const url = databaseUrl();
  const started = Date.now();
  const loadBefore = loadavg()[0];
  const loadSamples: number[] = [];
  const loadTimer = setInterval(() => loadSamples.push(loadavg()[0]), 5_000);
  loadTimer.unref();
  if (loadBefore > cpus().length)
    log(
      `note: the machine is busy (load average ${loadBefore.toFixed(1)} on ${cpus().length} cores); req/s and latencies will suffer, CPU ms/req less so`,
    );
  log(`${quick ? 'quick' : 'full'} run on ${url.replace(/\/\/[^@/]*@/, '//…@')}`);
  const preparation = await prepare(url, target);
  const inv = preparation.inventory;
  log(
    `database: ${inv.sims.toLocaleString('en')} SIMs (${inv.readySims.toLocaleString('en')} ready), ${inv.endpoints.toLocaleString('en')} endpoints (${inv.holdEndpoints.toLocaleString('en')} on Hold)${preparation.reused ? ', reused' : ''}`,
  );

  let buildMs = 0;
  if (!args['skip-build']) {
    log('npm run build');
    buildMs = await buildApp();
  }
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const cpuProfDir = args['cpu-prof'] ? join(BENCH_DIR, '.work', 'profiles', new Date().toISOString().replace(/[:.]/g, '-')) : undefined;
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  const nodeOptions = args['app-node-options']?.split(/\s+/).filter(Boolean) ?? [];
  const app = await startApp(url, { cpuProfDir, nodeOptions });
  // The embedded server's memory (all its processes, shared pages once): at idle now, and the peak under load.
  const postgresPss = embedded ? new RssSampler(embedded.pid, 1_000, pssOfTree) : undefined;
  if (postgresPss)
    log(
      `embedded PostgreSQL at idle: ${(postgresPss.peak / 1048576).toFixed(0)} MB PSS; app ${((rssOf(app.child.pid!) ?? 0) / 1048576).toFixed(0)} MB RSS`,
    );
  let ceiling: Awaited<ReturnType<typeof startCeiling>> | undefined;
  let tokens: BenchTokens | undefined;
  try {
    ceiling = await startCeiling(url, inv.enterpriseId);
    const cookie = await signIn(app.origin);
    log('signed in; collecting fixtures (random endpoints, prefixes, the page-200 cursor)');
    const fx = await fixtures(pool, inv.enterpriseId, app, cookie);
    // --only a,b: just these scenarios (with their ceilings); `cycles` names the link + de-link cycles,
    // `api-cycles` and `webhooks` theirs; `api` the API's two (api-scenario.ts), which bring their HTML pair.
    const wanted = args.only ? new Set(args.only.split(',').flatMap((n) => [n, ...(API_ONLY[n] ?? [])])) : null;
    // One API token per cycle worker (the first also reads for api-endpoint).
    if (!wanted || wanted.has('api-cycles') || wanted.has('api-endpoint')) tokens = await createBenchTokens(url, settings.cycleWorkers);
    let all = tokens ? withApiScenarios(scenarios(fx), fx, tokens.tokens[0]) : scenarios(fx);
    if (wanted) all = all.filter((s) => wanted.has(s.id) || all.some((o) => wanted.has(o.id) && o.ceiling === s.id));
    await checkCeilingMatchesApp(all, app, ceiling.origin, cookie);

    const database = decodeURIComponent(new URL(url).pathname.slice(1));
    const runs = new Map<string, LoadResult[]>();
    const rss = new Map<string, number>();
    for (let rep = 1; rep <= settings.repeats; rep++) {
      for (const s of all) {
        const origin = s.server === 'app' ? app.origin : ceiling.origin;
        const pid = s.server === 'app' ? app.child.pid! : ceiling.pid;
        const dbName = s.server === 'app' ? APP_DB_NAME : CEILING_DB_NAME;
        const cpuBefore = processCpuMs(pid);
        const backendsBefore = await backendCpu(pool, database, dbName);
        app.rss.mark();
        const result = await runTsChild<LoadResult>('load.ts', {
          title: s.id,
          origin,
          paths: s.paths,
          headers: s.server === 'app' && s.sessionCookie !== false ? { ...s.headers, cookie } : s.headers,
          connections: settings.connections,
          durationSec: settings.durationSec,
          warmupSec: settings.warmupSec,
          expect: s.expect,
        } satisfies LoadSpec);
        if (s.server === 'app') rss.set(s.id, Math.max(rss.get(s.id) ?? 0, app.rss.mark()));
        const served = result.requests + result.warmupRequests;
        const cpuAfter = processCpuMs(pid);
        const dbCpu = backendDelta(backendsBefore, await backendCpu(pool, database, dbName));
        result.cpu = {
          serverMsPerRequest: cpuBefore !== null && cpuAfter !== null ? (cpuAfter - cpuBefore) / served : NaN,
          dbMsPerRequest: dbCpu / served,
        };
        runs.set(s.id, [...(runs.get(s.id) ?? []), result]);
        const flag =
          result.errors || result.non2xx || result.mismatches
            ? `  ⚠ ${result.errors} errors, ${result.non2xx} non-2xx, ${result.mismatches} bad bodies`
            : '';
        log(
          `  [${rep}/${settings.repeats}] ${s.id.padEnd(22)} ${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.latencyMs.p50.toFixed(1)} ms  p99 ${result.latencyMs.p99.toFixed(1)} ms` +
            `  CPU/req: server ${result.cpu.serverMsPerRequest.toFixed(2)} ms, PostgreSQL ${result.cpu.dbMsPerRequest.toFixed(2)} ms${flag}`,
        );
      }
    }

    let cycles: CyclesSummary = {
      runs: [],
      cyclesPerSec: NaN,
      cycleP50: NaN,
      cycleP99: NaN,
      requestP50: NaN,
      requestP99: NaN,
      serverCpuMs: NaN,
      dbCpuMs: NaN,
      peakRss: 0,
      errors: 0,
      unexpected: 0,
      violations: 0,
      eventsChecked: true,
      verdict: 'missed',
      notes: ['not run'],
    };
    if (!wanted || wanted.has('cycles')) {
      log(`link + de-link cycles: ${settings.cycleWorkers} workers`);
      cycles = await runCycles(pool, app, fx.cyclePairs);
    }
    // `exports`: Download CSV of all the SIMs (bench/exports.ts).
    const exported =
      !wanted || wanted.has('exports') ? await runExports(pool, inv.enterpriseId, app.origin, app.child.pid!, cookie) : undefined;
    let api: Report['api'];
    if (tokens && (!wanted || wanted.has('api-cycles'))) {
      log(`API link + de-link cycles: ${settings.cycleWorkers} workers, an API token each`);
      api = await runApiCycles(pool, app, url, fx.cyclePairs, tokens.tokens, settings, cycles.cyclesPerSec);
    }
    // Last, so that no other scenario runs while its webhook exists (it is deleted when done).
    let webhooks: Report['webhooks'];
    if (!wanted || wanted.has('webhooks')) {
      log(`webhooks: link + de-link cycles (${settings.cycleWorkers} workers) without, then with, a webhook to a receiver on 127.0.0.1`);
      webhooks = await runWebhooks(pool, app, url, fx.cyclePairs, settings);
    }

    // The bulk jobs (issue 17): a link job and the de-link job that undoes it, run by the app's own runner.
    let bulk: BulkJobsSummary | undefined;
    if (!wanted || wanted.has('bulk')) {
      const rows = quick ? 2_000 : 10_000;
      log(`bulk jobs: ${rows.toLocaleString('en')} links, then the de-links that undo them`);
      bulk = await runBulkJobs({ pool, app, cookie, enterpriseId: inv.enterpriseId, rows, ...fx, ...settings });
    }

    const ceilings = new Map<string, ScenarioSummary>();
    const summaries: ScenarioSummary[] = [];
    for (const s of all.filter((x) => x.server === 'ceiling')) {
      const summary = summarise(s, runs.get(s.id)!, undefined, ceilings);
      ceilings.set(s.id, summary);
      summaries.push(summary);
    }
    for (const s of all.filter((x) => x.server === 'app')) summaries.push(summarise(s, runs.get(s.id)!, rss.get(s.id), ceilings));

    const report: Report = {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      settings: { ...settings, appNodeOptions: nodeOptions.join(' ') },
      machine: await machine(pool),
      load: {
        before: loadBefore,
        after: loadavg()[0],
        mean: loadSamples.length ? loadSamples.reduce((a, b) => a + b, 0) / loadSamples.length : loadavg()[0],
      },
      database: {
        ...inv,
        reused: preparation.reused,
        seedMs: preparation.seedMs,
        seededSims: preparation.seededSims,
        vacuumMs: preparation.vacuumMs,
        autovacuum: preparation.autovacuum,
      },
      app: { startMs: app.startMs, buildMs, peakRss: app.rss.peak },
      scenarios: summaries,
      cycles,
      exports: exported,
      api,
      webhooks,
      bulk,
      targets: [],
    };
    report.targets = [...targets(report), ...(exported ? exportTargets(exported) : []), ...(bulk ? bulkTargets(bulk) : [])];

    const pssLine = postgresPss
      ? `; embedded PostgreSQL peak PSS (all its processes): ${(postgresPss.peak / 1024 / 1024).toFixed(0)} MB`
      : '';
    console.log(
      `\n${table(report)}\n${bulk ? `\n${bulkTable(bulk)}\n` : ''}\nApp peak RSS: ${(report.app.peakRss / 1024 / 1024).toFixed(0)} MB${pssLine}\n\n${targetsTable(report)}\n`,
    );
    for (const s of summaries) for (const n of s.notes) console.log(`${s.id}: ${n}`);
    for (const n of cycles.notes) console.log(`cycles: ${n}`);
    for (const n of api?.notes ?? []) console.log(`api-cycles: ${n}`);
    for (const n of webhooks?.notes ?? []) console.log(`webhooks: ${n}`);
    for (const n of bulk?.notes ?? []) console.log(`bulk: ${n}`);
    const file = writeResults(report);
    log(`results: ${file}`);
    if (args['write-md'] ?? (!quick && !wanted && !cpuProfDir)) log(`table rewritten in ${rewriteBenchmarksMd(report)}`);
    log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    const broken =
      summaries.some((s) => s.errors || s.non2xx || s.mismatches) ||
      cycles.errors ||
      cycles.unexpected ||
      cycles.violations ||
      !cycles.eventsChecked ||
      Boolean(exported?.problems.length) ||
      [api, webhooks].some((x) => x && (x.errors || x.unexpected || x.violations || !x.eventsChecked)) ||
      Boolean(bulk?.broken);
    if (broken) console.error('\nFLAGGED: errors, non-2xx answers or invariant violations (see above).');
    return broken ? 1 : 0;
  } finally {
    postgresPss?.stop();
    await tokens?.revoke().catch((error: unknown) => log(`could not revoke the bench API tokens: ${String(error)}`));
    await ceiling?.stop();
    await app.stop();
    await pool.end();
    await embedded?.stop();
    if (cpuProfDir) {
      for (const file of readdirSync(cpuProfDir).filter((f) => f.endsWith('.cpuprofile'))) {
        console.log(
          `\nCPU profile of the app: ${join(cpuProfDir, file)}\n${summariseProfile(JSON.parse(readFileSync(join(cpuProfDir, file), 'utf8')), 30)}`,
        );
      }
    }
  }
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    console.error(error);
    await embedded?.stop();
    process.exit(1);
  },
);
