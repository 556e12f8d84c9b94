// The JSON API's scenarios (issue 15, "Measured"), beside their HTML counterparts of the same run:
//  - api-endpoint: GET /api/v1/endpoints/{id} under autocannon (random endpoints, a bearer token, no session
//    cookie), reported beside the HTML Endpoint page (endpoint-page);
//  - api-cycles: link + de-link cycles through /api/v1 (api-cycles.ts), 50 workers each with its own API token
//    over their own endpoint/SIM pairs, against the HTML cycles (cycles) of the same run: target ≥ 2×.
// The tokens are created through the domain (createApiTokenForEnterprise, as `npm run api-token` does) and
// revoked at the end. The per-token rate limits (600 requests, 120 changes a minute) are off, as for every
// scenario of the bench: the app runs with RATE_LIMITS=false (app-process.ts); the bench measures the app,
// not its limiter.
import type pg from 'pg';
import type { EntityManager } from '@mikro-orm/postgresql';
import { openDatabase } from '../src/db/database.js';
import { findActor } from '../src/domain/accounts.js';
import { createApiTokenForEnterprise, listApiTokens, revokeApiToken } from '../src/domain/api-tokens.js';
import { UserSchema } from '../src/domain/entities.js';
import { DEMO_USER, type RunningApp } from './app-process.js';
import type { ApiCyclesSpec } from './api-cycles.js';
import { countViolations, measureCycleRun, msText } from './cycle-runs.js';
import type { CyclesResult } from './cycles.js';
import { fmt, mb, verdictText, type Report } from './report.js';
import type { Fixtures, Scenario } from './scenarios.js';
import { log, median, runTsChild } from './util.js';

export const API_CYCLES_RATIO_TARGET = 2;

/** `--only` names that bring their HTML counterpart along (a ratio needs both sides of the same run). */
export const API_ONLY: Record<string, string[]> = {
  api: ['api-cycles', 'api-endpoint', 'cycles', 'endpoint-page'],
  'api-cycles': ['cycles'],
  'api-endpoint': ['endpoint-page'],
};

export interface ApiCyclesSummary {
  runs: CyclesResult[];
  cyclesPerSec: number;
  cycleP50: number;
  cycleP99: number;
  requestP50: number;
  requestP99: number;
  serverCpuMs: number;
  dbCpuMs: number;
  peakRss: number;
  errors: number;
  unexpected: number;
  violations: number;
  eventsChecked: boolean;
  /** The HTML cycles/s of the same run (NaN when they did not run), and the ratio. */
  htmlCyclesPerSec: number;
  ratio: number;
  verdict: 'met' | 'missed';
  notes: string[];
}

export interface BenchTokens {
  tokens: string[];
  revoke(): Promise<void>;
}

const TOKEN_NAME = /^bench \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d worker \d+$/;

async function adminOfAcme(em: EntityManager) {
  const admin = await em.findOneOrFail(UserSchema, { email: DEMO_USER.email });
  return (await findActor(em, admin.id))!;
}

/**
 * `count` admin tokens of enterprise acme, one per worker (the first also serves api-endpoint). Tokens an
 * earlier run left live (it was stopped before its end) are revoked first.
 */
export async function createBenchTokens(url: string, count: number): Promise<BenchTokens> {
  const db = await openDatabase({ databaseUrl: url, migrate: false });
  const made: { token: string; id: number }[] = [];
  try {
    const actor = await adminOfAcme(db.orm.em.fork());
    for (const old of await listApiTokens(db.orm.em.fork(), actor.enterpriseId)) {
      if (TOKEN_NAME.test(old.name)) await revokeApiToken(db.orm.em.fork(), actor, old.id);
    }
    const stamp = new Date().toISOString().slice(0, 19);
    for (let i = 1; i <= count; i++) {
      const { token, row } = await createApiTokenForEnterprise(db.orm.em.fork(), 'acme', {
        name: `bench ${stamp} worker ${i}`,
        role: 'admin',
      });
      made.push({ token, id: row.id });
    }
  } finally {
    await db.close();
  }
  return {
    tokens: made.map((m) => m.token),
    async revoke() {
      const again = await openDatabase({ databaseUrl: url, migrate: false });
      try {
        const actor = await adminOfAcme(again.orm.em.fork());
        for (const { id } of made) await revokeApiToken(again.orm.em.fork(), actor, id);
      } finally {
        await again.close();
      }
    },
  };
}

/** The API's read scenario, placed right after the HTML Endpoint page so the table shows them side by side. */
export function withApiScenarios(list: Scenario[], f: Fixtures, token: string): Scenario[] {
  const api: Scenario = {
    id: 'api-endpoint',
    label: 'API: GET /api/v1/endpoints/{id} (JSON, bearer token, random endpoints)',
    server: 'app',
    paths: f.endpointIds.map((id) => `/api/v1/endpoints/${id}`),
    headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    sessionCookie: false,
    expect: '"status":',
    ceiling: 'ceiling-static',
  };
  const at = list.findIndex((s) => s.id === 'endpoint-page');
  return at < 0 ? [...list, api] : [...list.slice(0, at + 1), api, ...list.slice(at + 1)];
}

export async function runApiCycles(
  pool: pg.Pool,
  app: RunningApp,
  url: string,
  pairs: { endpointId: number; simId: number }[][],
  tokens: string[],
  settings: { durationSec: number; warmupSec: number; repeats: number },
  htmlCyclesPerSec: number,
): Promise<ApiCyclesSummary> {
  // The API names a SIM by its ICCID.
  const { rows } = await pool.query<{ id: number; iccid: string }>('select id, iccid from sim where id = any($1)', [
    pairs.flat().map((p) => p.simId),
  ]);
  const iccids = new Map(rows.map((r) => [r.id, r.iccid]));
  const apiPairs = pairs.map((list) => list.map((p) => ({ ...p, iccid: iccids.get(p.simId)! })));
  const runs: CyclesResult[] = [];
  const cpu: { server: number; db: number }[] = [];
  const notes: string[] = [];
  let eventsChecked = true;
  let peakRss = 0;
  for (let rep = 1; rep <= settings.repeats; rep++) {
    const run = await measureCycleRun(pool, app, url, pairs, () =>
      runTsChild<CyclesResult>('api-cycles.ts', {
        origin: app.origin,
        tokens,
        pairs: apiPairs,
        durationSec: settings.durationSec,
        warmupSec: settings.warmupSec,
      } satisfies ApiCyclesSpec),
    );
    runs.push(run.result);
    cpu.push({ server: run.serverCpuMs, db: run.dbCpuMs });
    peakRss = Math.max(peakRss, run.peakRss);
    eventsChecked &&= run.eventsChecked;
    notes.push(...run.notes.map((n) => `run ${rep}: ${n}`));
    const r = run.result;
    log(
      `  API cycles run ${rep}: ${r.cyclesPerSec.toFixed(0)} cycles/s (${r.requestsPerSec.toFixed(0)} req/s), cycle p50 ${msText(r.cycleMs.p50)}, ` +
        `p99 ${msText(r.cycleMs.p99)}, ${r.errors} errors, ${r.unexpected} unexpected answers; ` +
        `CPU/cycle: app ${run.serverCpuMs.toFixed(2)} ms, PostgreSQL ${run.dbCpuMs.toFixed(2)} ms`,
    );
  }
  log('running the invariant checker (findViolations) after the API cycles');
  const checked = await countViolations(url);
  notes.push(...checked.notes);
  const cyclesPerSec = median(runs.map((r) => r.cyclesPerSec));
  const errors = runs.reduce((n, r) => n + r.errors, 0);
  const unexpected = runs.reduce((n, r) => n + r.unexpected, 0);
  const ratio = cyclesPerSec / htmlCyclesPerSec;
  if (!Number.isFinite(htmlCyclesPerSec))
    notes.push('the HTML cycles did not run: no ratio (run with --only api-cycles or without --only)');
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
    violations: checked.violations,
    eventsChecked,
    htmlCyclesPerSec,
    ratio,
    verdict:
      Number.isFinite(ratio) && ratio >= API_CYCLES_RATIO_TARGET && !errors && !unexpected && !checked.violations && eventsChecked
        ? 'met'
        : 'missed',
    notes,
  };
}

/** Its row of the results table (after the HTML cycles' row). */
export function apiRows(report: Report): string[] {
  const a = report.api;
  if (!a) return [];
  const ratio = Number.isFinite(a.ratio) ? `${fmt(a.ratio, 2)}× HTML` : '—';
  return [
    `| API link + de-link cycles (${report.settings.cycleWorkers} workers, a token each; POST + DELETE /api/v1/endpoints/{id}/sim with Idempotency-Key) | ${fmt(a.cyclesPerSec)} cycles/s | ${fmt(a.cycleP50, 1)} (cycle) | ${fmt(a.cycleP99, 1)} (cycle) | ${a.errors} / ${a.unexpected}${a.errors || a.unexpected ? ' ⚠' : ''} | HTML cycles | ${ratio} | ${fmt(a.serverCpuMs, 2)} + ${fmt(a.dbCpuMs, 2)} per cycle | ${mb(a.peakRss)} | ≥ ${API_CYCLES_RATIO_TARGET}× the HTML cycles/s, 0 violations (found ${a.violations}) | ${verdictText(a.verdict)} |`,
  ];
}

export function apiTargets(report: Report): Report['targets'] {
  const list: Report['targets'] = [];
  const a = report.api;
  if (a) {
    list.push({
      name: 'api-cycles ratio',
      target: `API link + de-link: ≥ ${API_CYCLES_RATIO_TARGET}× the HTML cycles/s of the same run`,
      measured: `${fmt(a.cyclesPerSec)} vs ${fmt(a.htmlCyclesPerSec)} cycles/s (${Number.isFinite(a.ratio) ? `${fmt(a.ratio, 2)}×` : '—'})`,
      met: Number.isFinite(a.ratio) && a.ratio >= API_CYCLES_RATIO_TARGET,
    });
    list.push({
      name: 'api-cycles clean',
      target: 'API link + de-link: 0 errors, 0 invariant violations, an event for every change',
      measured: `${a.errors + a.unexpected} errors, ${a.violations} violations${a.eventsChecked ? '' : ', events do not match'}`,
      met: !a.errors && !a.unexpected && !a.violations && a.eventsChecked,
    });
  }
  const read = report.scenarios.find((s) => s.id === 'api-endpoint');
  if (read) {
    const html = report.scenarios.find((s) => s.id === 'endpoint-page');
    list.push({
      name: 'api-endpoint',
      target: `GET /api/v1/endpoints/{id}, ${report.settings.connections} connections: reported beside the HTML Endpoint page, 0 errors`,
      measured:
        `${fmt(read.rps)} req/s, p99 ${fmt(read.p99, 1)} ms` +
        (html ? ` (HTML page: ${fmt(html.rps)} req/s, p99 ${fmt(html.p99, 1)} ms)` : ''),
      met: !read.errors && !read.non2xx && !read.mismatches,
    });
  }
  return list;
}
