// The API's and the webhooks' bench scenarios (bench/api-scenario.ts, bench/webhook-scenario.ts): their rows of
// the results table and their targets, met or missed, from the figures of a run.
import { describe, expect, it } from 'vitest';
import { apiTargets, type ApiCyclesSummary } from '../../bench/api-scenario.js';
import { table, type CyclesSummary, type Report, type ScenarioSummary } from '../../bench/report.js';
import { webhookTargets, type WebhookSummary } from '../../bench/webhook-scenario.js';

const cycles: CyclesSummary = {
  runs: [],
  cyclesPerSec: 300,
  cycleP50: 100,
  cycleP99: 200,
  requestP50: 20,
  requestP99: 50,
  serverCpuMs: 4,
  dbCpuMs: 2,
  peakRss: 150 * 1024 * 1024,
  errors: 0,
  unexpected: 0,
  violations: 0,
  eventsChecked: true,
  verdict: 'met',
  notes: [],
};

const api = (over: Partial<ApiCyclesSummary> = {}): ApiCyclesSummary => ({
  ...cycles,
  cyclesPerSec: 650,
  htmlCyclesPerSec: 300,
  ratio: 650 / 300,
  ...over,
});

const webhooks = (over: Partial<WebhookSummary> = {}): WebhookSummary => ({
  without: [],
  with: [],
  cyclesPerSecWithout: 300,
  cyclesPerSecWith: 270,
  ratio: 0.9,
  cpuWithout: { server: 4, db: 2 },
  cpuWith: { server: 4.5, db: 2.2 },
  messages: 2000,
  received: 2000,
  duplicates: 0,
  receivedDuringCycles: 1900,
  latencyP50: 300,
  latencyP99: 1200,
  latencyMax: 1500,
  drainMs: 400,
  errors: 0,
  unexpected: 0,
  violations: 0,
  eventsChecked: true,
  verdict: 'met',
  notes: [],
  ...over,
});

const scenario = (id: string, rps: number, p99: number): ScenarioSummary => ({
  id,
  label: id,
  server: 'app',
  runs: [],
  rps,
  p50: p99 / 2,
  p99,
  errors: 0,
  non2xx: 0,
  mismatches: 0,
  serverCpuMs: 1,
  dbCpuMs: 1,
  verdict: 'n/a',
  notes: [],
});

const report = (over: Partial<Report>): Report =>
  ({
    settings: { connections: 50, durationSec: 10, warmupSec: 3, repeats: 3, cycleWorkers: 50, appNodeOptions: '' },
    scenarios: [],
    cycles,
    targets: [],
    ...over,
  }) as Report;

const byName = (targets: Report['targets']) => Object.fromEntries(targets.map((t) => [t.name, t]));

describe('the API scenario’s targets', () => {
  it('meets the ratio at 2× the HTML cycles of the same run and misses it below', () => {
    expect(byName(apiTargets(report({ api: api() })))['api-cycles ratio'].met).toBe(true);
    const slow = byName(apiTargets(report({ api: api({ cyclesPerSec: 590, ratio: 590 / 300 }) })));
    expect(slow['api-cycles ratio']).toMatchObject({ met: false, measured: '590 vs 300 cycles/s (1.97×)' });
  });

  it('has no ratio when the HTML cycles did not run', () => {
    const t = byName(apiTargets(report({ api: api({ htmlCyclesPerSec: NaN, ratio: NaN }) })));
    expect(t['api-cycles ratio']).toMatchObject({ met: false, measured: '650 vs — cycles/s (—)' });
  });

  it('misses when there were errors, violations or missing events', () => {
    expect(byName(apiTargets(report({ api: api({ violations: 1 }) })))['api-cycles clean'].met).toBe(false);
    expect(byName(apiTargets(report({ api: api({ unexpected: 2 }) })))['api-cycles clean'].met).toBe(false);
    expect(byName(apiTargets(report({ api: api({ eventsChecked: false }) })))['api-cycles clean'].met).toBe(false);
    expect(byName(apiTargets(report({ api: api() })))['api-cycles clean'].met).toBe(true);
  });

  it('reports the API read beside the HTML Endpoint page', () => {
    const t = byName(apiTargets(report({ scenarios: [scenario('endpoint-page', 900, 80), scenario('api-endpoint', 1500, 40)] })));
    expect(t['api-endpoint']).toMatchObject({ met: true, measured: '1,500 req/s, p99 40.0 ms (HTML page: 900 req/s, p99 80.0 ms)' });
    expect(t['api-cycles ratio']).toBeUndefined();
  });
});

describe('the webhooks scenario’s targets', () => {
  it('meets every target with a quick, complete delivery', () => {
    const targets = webhookTargets(report({ webhooks: webhooks() }));
    expect(targets.every((t) => t.met)).toBe(true);
    expect(byName(targets)['webhooks delivered'].measured).toBe('2,000 of 2,000; 1,900 while the cycles ran, the rest within 0.4 s after');
  });

  it('misses p50 at 1 s, p99 at 5 s, a lost message and a throughput under 80 %', () => {
    const t = byName(webhookTargets(report({ webhooks: webhooks({ latencyP50: 1000, latencyP99: 5000, received: 1999, ratio: 0.79 }) })));
    expect(t['webhooks latency p50'].met).toBe(false);
    expect(t['webhooks latency p99'].met).toBe(false);
    expect(t['webhooks delivered']).toMatchObject({ met: false });
    expect(t['webhooks delivered'].measured).toMatch(/^1,999 of 2,000/);
    expect(t['webhooks throughput'].met).toBe(false);
  });

  it('has no throughput verdict when no cycle completed without the webhook', () => {
    const t = byName(webhookTargets(report({ webhooks: webhooks({ cyclesPerSecWithout: 0, ratio: Infinity }) })));
    expect(t['webhooks throughput']).toMatchObject({ met: false, measured: '270 vs 0 cycles/s (— %)' });
  });

  it('does not count a run that wrote no messages as everything delivered', () => {
    expect(byName(webhookTargets(report({ webhooks: webhooks({ messages: 0, received: 0 }) })))['webhooks delivered'].met).toBe(false);
  });
});

describe('the results table', () => {
  it('has a row for each scenario that ran, after the HTML cycles', () => {
    const lines = table(report({ api: api(), webhooks: webhooks() })).split('\n');
    const at = (text: string) => lines.findIndex((l) => l.startsWith(`| ${text}`));
    expect(at('Link + de-link cycles (50 workers')).toBeGreaterThan(1);
    expect(at('API link + de-link cycles')).toBe(at('Link + de-link cycles (50 workers') + 1);
    expect(lines[at('API link + de-link cycles')]).toContain('| 650 cycles/s |');
    expect(lines[at('API link + de-link cycles')]).toContain('2.17× HTML');
    expect(lines[at('Link + de-link cycles with one webhook')]).toContain('2,000 of 2,000 messages delivered');
    expect(table(report({})).split('\n')).toHaveLength(3);
  });
});
