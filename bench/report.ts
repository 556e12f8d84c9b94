// The report: medians of the repeated runs, ratios to the ceilings, targets met or missed; printed as a
// table, written to bench/results/<date>.json, and rewritten into BENCHMARKS.md between its markers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, median } from './util.js';
import type { LoadResult } from './load.js';
import type { CyclesResult } from './cycles.js';
import type { ExportsResult } from './exports.js';
import type { Scenario } from './scenarios.js';
import { apiRows, type ApiCyclesSummary } from './api-scenario.js';
import { webhookRows, type WebhookSummary } from './webhook-scenario.js';
import { bulkTable, type BulkJobsSummary } from './bulk-jobs.js';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  postgres: string;
  os: string;
}

export interface ScenarioSummary {
  id: string;
  label: string;
  server: 'app' | 'ceiling';
  runs: LoadResult[];
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  mismatches: number;
  /** CPU time per request (ms, median of the runs): the server process, and its PostgreSQL backends. */
  serverCpuMs: number;
  dbCpuMs: number;
  /** App peak RSS while this scenario ran (bytes). */
  peakRss?: number;
  ceiling?: string;
  ratio?: number;
  target?: Scenario['target'];
  verdict: 'met' | 'missed' | 'n/a';
  notes: string[];
}

export interface CyclesSummary {
  runs: CyclesResult[];
  cyclesPerSec: number;
  cycleP50: number;
  cycleP99: number;
  requestP50: number;
  requestP99: number;
  /** CPU time per cycle (ms, median): the app process, and its PostgreSQL backends. */
  serverCpuMs: number;
  dbCpuMs: number;
  /** App peak RSS during the cycles (bytes). */
  peakRss: number;
  errors: number;
  unexpected: number;
  violations: number;
  eventsChecked: boolean;
  verdict: 'met' | 'missed';
  notes: string[];
}

export interface Report {
  date: string;
  mode: 'full' | 'quick';
  settings: { connections: number; durationSec: number; warmupSec: number; repeats: number; cycleWorkers: number; appNodeOptions: string };
  machine: Machine;
  /** 1-minute load average: at the start, at the end, and the mean of samples taken during the run. */
  load: { before: number; after: number; mean: number };
  database: {
    sims: number;
    readySims: number;
    endpoints: number;
    holdEndpoints: number;
    reused: boolean;
    seedMs: number | null;
    seededSims: number;
    vacuumMs: number | null;
    autovacuum: string;
  };
  app: { startMs: number; buildMs: number; peakRss: number };
  scenarios: ScenarioSummary[];
  cycles: CyclesSummary;
  /** Download CSV of all the SIMs (bench/exports.ts); absent when not run. */
  exports?: ExportsResult;
  /** The JSON API's cycles (issue 15) and the webhooks' runs (issue 16), when they ran. */
  api?: ApiCyclesSummary;
  webhooks?: WebhookSummary;
  /** The bulk-job scenario (bench/bulk-jobs.ts), when it ran. */
  bulk?: BulkJobsSummary;
  targets: { name: string; target: string; measured: string; met: boolean }[];
}

export const RSS_TARGET = 250 * 1024 * 1024;
export const CYCLES_TARGET = 300;

export function summarise(
  scenario: Scenario,
  runs: LoadResult[],
  peakRss: number | undefined,
  ceilings: Map<string, ScenarioSummary>,
): ScenarioSummary {
  const s: ScenarioSummary = {
    id: scenario.id,
    label: scenario.label,
    server: scenario.server,
    runs,
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.latencyMs.p50)),
    p99: median(runs.map((r) => r.latencyMs.p99)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    mismatches: runs.reduce((n, r) => n + r.mismatches, 0),
    serverCpuMs: median(runs.map((r) => r.cpu?.serverMsPerRequest ?? NaN)),
    dbCpuMs: median(runs.map((r) => r.cpu?.dbMsPerRequest ?? NaN)),
    peakRss,
    ceiling: scenario.ceiling,
    target: scenario.target,
    verdict: 'n/a',
    notes: [],
  };
  const ceiling = scenario.ceiling ? ceilings.get(scenario.ceiling) : undefined;
  if (ceiling) s.ratio = s.rps / ceiling.rps;
  if (s.errors || s.non2xx || s.mismatches) {
    const codes = runs.flatMap((r) =>
      Object.entries(r.statusCodes)
        .filter(([c]) => !c.startsWith('2'))
        .map(([c, n]) => `${c}×${n}`),
    );
    s.notes.push(
      `FLAG: ${s.errors} errors, ${s.non2xx} non-2xx${codes.length ? ` (${codes.join(', ')})` : ''}, ${s.mismatches} unexpected bodies`,
    );
  }
  if (scenario.target) {
    const okRatio = scenario.target.ratio === undefined || (s.ratio !== undefined && s.ratio >= scenario.target.ratio);
    const okP99 = scenario.target.p99Ms === undefined || s.p99 <= scenario.target.p99Ms;
    s.verdict = okRatio && okP99 && !s.errors && !s.non2xx && !s.mismatches ? 'met' : 'missed';
  }
  return s;
}

export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—';
export const mb = (bytes: number | undefined) => (bytes ? `${fmt(bytes / 1024 / 1024)} MB` : '—');
const pct = (r: number | undefined) => (r === undefined ? '—' : `${fmt(r * 100)} %`);

function targetText(t: Scenario['target']): string {
  if (!t) return '—';
  return [t.ratio !== undefined ? `≥ ${fmt(t.ratio * 100)} % of ceiling` : '', t.p99Ms !== undefined ? `p99 ≤ ${t.p99Ms} ms` : '']
    .filter(Boolean)
    .join(', ');
}

export const verdictText = (v: string) => (v === 'met' ? '✅ met' : v === 'missed' ? '❌ missed' : '');

export function table(report: Report): string {
  const lines = [
    '| scenario | req/s | p50 ms | p99 ms | errors / non-2xx | ceiling | ratio | CPU ms/req: server + PostgreSQL | app peak RSS | target | |',
    '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |',
  ];
  const order = [...report.scenarios.filter((s) => s.server === 'ceiling'), ...report.scenarios.filter((s) => s.server === 'app')];
  for (const s of order) {
    const ceilingLabel = s.ceiling ? (s.ceiling === 'ceiling-static' ? '(a)' : '(b)') : '';
    lines.push(
      `| ${s.label} | ${fmt(s.rps)} | ${fmt(s.p50, 1)} | ${fmt(s.p99, 1)} | ${s.errors} / ${s.non2xx}${s.mismatches ? ` (+${s.mismatches} bad bodies)` : ''}${s.errors || s.non2xx || s.mismatches ? ' ⚠' : ''} | ${ceilingLabel} | ${pct(s.ratio)} | ${fmt(s.serverCpuMs, 2)} + ${fmt(s.dbCpuMs, 2)} | ${s.server === 'app' ? mb(s.peakRss) : ''} | ${targetText(s.target)} | ${verdictText(s.verdict)} |`,
    );
  }
  const c = report.cycles;
  lines.push(
    `| Link + de-link cycles (${report.settings.cycleWorkers} workers, 4 requests a cycle) | ${fmt(c.cyclesPerSec)} cycles/s | ${fmt(c.cycleP50, 1)} (cycle) | ${fmt(c.cycleP99, 1)} (cycle) | ${c.errors} / ${c.unexpected}${c.errors || c.unexpected ? ' ⚠' : ''} | | | ${fmt(c.serverCpuMs, 2)} + ${fmt(c.dbCpuMs, 2)} per cycle | ${mb(c.peakRss)} | ≥ ${CYCLES_TARGET} cycles/s, 0 violations (found ${c.violations}) | ${verdictText(c.verdict)} |`,
  );
  lines.push(...apiRows(report), ...webhookRows(report));
  return lines.join('\n');
}

export function targetsTable(report: Report): string {
  return [
    '| target | measured | |',
    '| --- | --- | --- |',
    ...report.targets.map((t) => `| ${t.target} | ${t.measured} | ${t.met ? '✅ met' : '❌ missed'} |`),
  ].join('\n');
}

export function machineText(report: Report): string {
  const m = report.machine;
  return `${m.cpus} cores (${m.cpuModel}), ${fmt(m.memoryGb, 1)} GB memory, ${m.os}; Node ${m.node}; ${m.postgres}.`;
}

export function markdownSection(report: Report): string {
  const d = report.database;
  const s = report.settings;
  return [
    `Run of ${report.date} (${report.mode}; \`bench/results/${resultFileName(report)}\`).`,
    '',
    `**Machine:** ${machineText(report)} The app, PostgreSQL, the ceilings and the load generator share it.`,
    '',
    `**Data:** enterprise \`acme\` with ${fmt(d.sims)} SIMs (${fmt(d.readySims)} Ready to Activate) and ${fmt(d.endpoints)} endpoints (${fmt(d.holdEndpoints)} on Hold)` +
      `${d.reused ? ', reused from an earlier run' : d.seedMs !== null ? `, seeded in ${fmt(d.seedMs / 1000, 1)} s` : ''}; ` +
      `vacuumed and analysed before the run (${fmt((d.vacuumMs ?? 0) / 1000, 1)} s; the server's autovacuum is ${d.autovacuum}).`,
    '',
    `**Settings:** autocannon in its own process, ${s.connections} connections, ${s.warmupSec} s warm-up then ${s.durationSec} s per scenario, ` +
      `each scenario ${s.repeats}× (round-robin), medians shown${s.appNodeOptions ? `; app started with \`${s.appNodeOptions}\`` : ''}. Ratio = app req/s ÷ the matching ceiling's req/s, measured in the same run. ` +
      `CPU ms/req = CPU time of the server process and of its PostgreSQL backends (from /proc) ÷ requests served — the figure other load on the machine disturbs least.`,
    '',
    `**Load on the machine:** 1-minute load average ${fmt(report.load.before, 1)} at the start, ${fmt(report.load.after, 1)} at the end (mean ${fmt(report.load.mean, 1)} during the run) on ${report.machine.cpus} cores.`,
    '',
    table(report),
    ...(report.bulk ? ['', bulkTable(report.bulk)] : []),
    '',
    `App peak RSS over the whole run: **${mb(report.app.peakRss)}**. Server start: ${fmt(report.app.startMs)} ms.`,
    '',
    '**Targets (issues #8, #15, #16 and #17):**',
    '',
    targetsTable(report),
  ].join('\n');
}

export function resultFileName(report: Report): string {
  return `${report.date.slice(0, 19).replace(/:/g, '-')}${report.mode === 'quick' ? '-quick' : ''}.json`;
}

export function writeResults(report: Report): string {
  const file = join(ROOT, 'bench', 'results', resultFileName(report));
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

const BEGIN = '<!-- bench:results:begin (rewritten by `npm run bench`) -->';
const END = '<!-- bench:results:end -->';

export function rewriteBenchmarksMd(report: Report): string {
  const file = join(ROOT, 'BENCHMARKS.md');
  const block = `${BEGIN}\n${markdownSection(report)}\n${END}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  if (text.includes(BEGIN) && text.includes(END)) {
    text = text.slice(0, text.indexOf(BEGIN)) + block + text.slice(text.indexOf(END) + END.length);
  } else {
    text = `# Benchmarks\n\n\`npm run bench\` measures SIM Link at a million SIMs against ceilings measured in the same run (see README, "Benchmark").\n\n## Latest run\n\n${block}\n`;
  }
  writeFileSync(file, text);
  return file;
}
