// The webhooks' scenario (issue 16, "Measured"): the HTML link + de-link cycles (cycles.ts) with one webhook
// subscribed to every event type against the same run's cycles without it, and the latency from each change to
// its receiver's 2xx.
//  - The receiver (webhook-receiver.ts) is a process of its own on 127.0.0.1 answering 204; the app runs with
//    WEBHOOK_ALLOW_PRIVATE=true (app-process.ts) so that it may reach it.
//  - The webhook is added through the domain (createWebhook, as the Webhooks page does) to enterprise acme,
//    disabled for the runs without it and enabled for the runs with it (odd repeats: without, then with; even: with, then without), and
//    deleted at the end with its messages and their log, so no other scenario sends a message.
//  - Latency: from the event's timestamp in the payload (set in the change's transaction, so a few ms before
//    its commit: the figure errs long) to the moment the receiver has read the message, before it answers.
//    After each run with the webhook the scenario waits for the outbox to drain; every message the run wrote
//    must arrive (counted by webhook-id), and all its latencies count, the backlog's included.
import { spawn } from 'node:child_process';
import type pg from 'pg';
import { openDatabase } from '../src/db/database.js';
import { findActor, type Actor } from '../src/domain/accounts.js';
import { UserSchema, WEBHOOK_EVENT_TYPES, WebhookSchema } from '../src/domain/entities.js';
import { createWebhook, deleteWebhook, listWebhooks, setWebhookEnabled } from '../src/domain/webhooks.js';
import { DEMO_USER, signIn, type RunningApp } from './app-process.js';
import { countViolations, measureCycleRun, percentile } from './cycle-runs.js';
import type { CyclesResult, CyclesSpec } from './cycles.js';
import { fmt, verdictText, type Report } from './report.js';
import { BENCH_DIR, ROOT, freePort, log, median, runTsChild, sleep, stopChild, waitForHttp } from './util.js';

export const WEBHOOK_TARGETS = { p50Ms: 1_000, p99Ms: 5_000, ratio: 0.8 } as const;

export interface WebhookSummary {
  without: CyclesResult[];
  with: CyclesResult[];
  /** Median cycles/s without and with the webhook, and their ratio. */
  cyclesPerSecWithout: number;
  cyclesPerSecWith: number;
  ratio: number;
  /** CPU ms per cycle (median), app + PostgreSQL: without, and with (deliveries included, until drained). */
  cpuWithout: { server: number; db: number };
  cpuWith: { server: number; db: number };
  /** Messages the runs with the webhook wrote, those the receiver got (distinct webhook-ids), and repeats. */
  messages: number;
  received: number;
  duplicates: number;
  /** Of the messages received, those that arrived before the cycles ended (the rest came while draining). */
  receivedDuringCycles: number;
  /** Commit → receiver latency (ms): median over the runs of each run's p50 / p99; the worst seen. */
  latencyP50: number;
  latencyP99: number;
  latencyMax: number;
  /** The longest wait, after a run's cycles ended, for its last message to be delivered. */
  drainMs: number;
  errors: number;
  unexpected: number;
  violations: number;
  eventsChecked: boolean;
  verdict: 'met' | 'missed';
  notes: string[];
}

type Note = [id: string, eventMs: number, receivedMs: number];

/** The path of the bench's receiver: a webhook to it that an earlier run left (stopped before its end) is deleted. */
const RECEIVER_PATH = '/simlink-bench-receiver';
const isBenchWebhook = (url: string) => /^http:\/\/127\.0\.0\.1:\d+\/simlink-bench-receiver$/.test(url);

/** Starts the receiver process (webhook-receiver.ts) on a free port; also used by webhook-drain.ts. */
export async function startReceiver() {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', `${BENCH_DIR}webhook-receiver.ts`, String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const origin = `http://127.0.0.1:${port}`;
  await waitForHttp(`${origin}/healthz`, child);
  log(`webhook receiver (pid ${child.pid}) ready at ${origin}`);
  return {
    url: `${origin}${RECEIVER_PATH}`,
    take: async () => (await (await fetch(`${origin}/take`)).json()) as Note[],
    stop: () => stopChild(child),
  };
}

export async function runWebhooks(
  pool: pg.Pool,
  app: RunningApp,
  url: string,
  pairs: CyclesSpec['pairs'],
  settings: { durationSec: number; warmupSec: number; repeats: number },
): Promise<WebhookSummary> {
  const receiver = await startReceiver();
  const db = await openDatabase({ databaseUrl: url, migrate: false }).catch(async (error: unknown) => {
    await receiver.stop();
    throw error;
  });
  const notes: string[] = [];
  const without: CyclesResult[] = [];
  const withHook: CyclesResult[] = [];
  const cpuWithout: { server: number; db: number }[] = [];
  const cpuWith: { server: number; db: number }[] = [];
  const p50s: number[] = [];
  const p99s: number[] = [];
  let latencyMax = NaN;
  let messages = 0;
  let received = 0;
  let duplicates = 0;
  let receivedDuringCycles = 0;
  let drainMs = 0;
  let eventsChecked = true;
  let webhookId: number | undefined;
  const em = () => db.orm.em.fork();
  let actor: Actor | undefined;
  try {
    const admin = await em().findOneOrFail(UserSchema, { email: DEMO_USER.email });
    actor = (await findActor(em(), admin.id))!;
    for (const old of await listWebhooks(em(), actor)) if (isBenchWebhook(old.url)) await deleteWebhook(em(), actor, old.id);
    const others = await em().count(WebhookSchema, { enterprise: actor.enterpriseId, enabled: true });
    if (others) notes.push(`enterprise acme has ${others} other enabled webhook(s): both runs write their messages too`);
    const { webhook } = await createWebhook(
      em(),
      actor,
      { url: receiver.url, eventTypes: [...WEBHOOK_EVENT_TYPES] },
      { allowPrivate: true },
    );
    webhookId = webhook.id;
    await setWebhookEnabled(em(), actor, webhookId, false);
    log(`webhook ${webhookId} → ${receiver.url}, subscribed to ${WEBHOOK_EVENT_TYPES.join(', ')}`);
    // One session per worker, as for the HTML cycles.
    const cookies: string[] = [];
    for (let i = 0; i < pairs.length; i++) cookies.push(await signIn(app.origin));
    const drive = () =>
      runTsChild<CyclesResult>('cycles.ts', {
        origin: app.origin,
        cookies,
        pairs,
        durationSec: settings.durationSec,
        warmupSec: settings.warmupSec,
      } satisfies CyclesSpec);
    const drainLimitMs = Math.max(30_000, 3_000 * (settings.durationSec + settings.warmupSec));

    for (let rep = 1; rep <= settings.repeats; rep++) {
      // Odd repeats run without the webhook first, even ones with it first: whatever drifts during a repeat
      // (the machine's other load, the tables' growth) does not always fall on the same side of the ratio.
      const runWithout = async () => {
        const result = await measureCycleRun(pool, app, url, pairs, drive);
        without.push(result.result);
        cpuWithout.push({ server: result.serverCpuMs, db: result.dbCpuMs });
        eventsChecked &&= result.eventsChecked;
        notes.push(...result.notes.map((n) => `run ${rep} without: ${n}`));

        return result;
      };
      const owner = actor;
      const hookId = webhookId;
      const runWith = async () => {
        await setWebhookEnabled(em(), owner, hookId, true);
        await receiver.take();
        const {
          rows: [{ last }],
        } = await pool.query<{ last: string }>('select coalesce(max(id), 0)::text as last from webhook_message where webhook_id = $1', [
          webhookId,
        ]);
        let written = 0;
        let cyclesEnded = 0;
        // Waits, after the cycles, until every message of the run is delivered (or the limit passes).
        const drain = async () => {
          const from = Date.now();
          cyclesEnded = from;
          for (;;) {
            const {
              rows: [row],
            } = await pool.query<{ total: string; pending: string }>(
              `select count(*) as total, count(*) filter (where delivered_at is null) as pending
                 from webhook_message where webhook_id = $1 and id > $2`,
              [webhookId, last],
            );
            written = Number(row.total);
            if (Number(row.pending) === 0) break;
            if (Date.now() - from > drainLimitMs) {
              notes.push(`run ${rep}: ${row.pending} of ${row.total} messages still undelivered ${drainLimitMs / 1000} s after the cycles`);
              break;
            }
            await sleep(100);
          }
          drainMs = Math.max(drainMs, Date.now() - from);
        };
        const on = await measureCycleRun(pool, app, url, pairs, drive, drain);
        await setWebhookEnabled(em(), owner, hookId, false);
        withHook.push(on.result);
        cpuWith.push({ server: on.serverCpuMs, db: on.dbCpuMs });
        eventsChecked &&= on.eventsChecked;
        notes.push(...on.notes.map((n) => `run ${rep} with the webhook: ${n}`));

        return { on, written, cyclesEnded };
      };
      let off: Awaited<ReturnType<typeof runWithout>>;
      let withRun: Awaited<ReturnType<typeof runWith>>;
      if (rep % 2 === 1) {
        off = await runWithout();
        withRun = await runWith();
      } else {
        withRun = await runWith();
        off = await runWithout();
      }
      const { on, written, cyclesEnded } = withRun;

      const got = await receiver.take();
      const ids = new Set(got.map(([id]) => id));
      const latencies = got.map(([, event, at]) => at - event).filter(Number.isFinite);
      const changes = on.result.linked + on.result.delinked;
      if (written !== changes) notes.push(`run ${rep}: ${changes} changes wrote ${written} webhook messages`);
      messages += written;
      received += ids.size;
      duplicates += got.length - ids.size;
      const during = new Set(got.filter(([, , at]) => at <= cyclesEnded).map(([id]) => id)).size;
      receivedDuringCycles += during;
      p50s.push(percentile(latencies, 50));
      p99s.push(percentile(latencies, 99));
      latencyMax = latencies.reduce((a, b) => Math.max(a, b), Number.isFinite(latencyMax) ? latencyMax : 0);
      log(
        `  webhooks run ${rep}: without ${off.result.cyclesPerSec.toFixed(0)} cycles/s, with ${on.result.cyclesPerSec.toFixed(0)} cycles/s; ` +
          `${ids.size} of ${written} messages received (${during} while the cycles ran, ${got.length - ids.size} repeats), commit → 2xx p50 ${percentile(latencies, 50).toFixed(0)} ms, ` +
          `p99 ${percentile(latencies, 99).toFixed(0)} ms; CPU/cycle with: app ${on.serverCpuMs.toFixed(2)} ms, PostgreSQL ${on.dbCpuMs.toFixed(2)} ms`,
      );
    }
  } finally {
    if (actor && webhookId !== undefined) await deleteWebhook(em(), actor, webhookId);
    await db.close();
    await receiver.stop();
  }
  log('running the invariant checker (findViolations) after the webhook runs');
  const checked = await countViolations(url);
  notes.push(...checked.notes);
  const all = [...without, ...withHook];
  const errors = all.reduce((n, r) => n + r.errors, 0);
  const unexpected = all.reduce((n, r) => n + r.unexpected, 0);
  const cyclesPerSecWithout = median(without.map((r) => r.cyclesPerSec));
  const cyclesPerSecWith = median(withHook.map((r) => r.cyclesPerSec));
  const summary: WebhookSummary = {
    without,
    with: withHook,
    cyclesPerSecWithout,
    cyclesPerSecWith,
    ratio: cyclesPerSecWith / cyclesPerSecWithout,
    cpuWithout: { server: median(cpuWithout.map((c) => c.server)), db: median(cpuWithout.map((c) => c.db)) },
    cpuWith: { server: median(cpuWith.map((c) => c.server)), db: median(cpuWith.map((c) => c.db)) },
    messages,
    received,
    duplicates,
    receivedDuringCycles,
    latencyP50: median(p50s),
    latencyP99: median(p99s),
    latencyMax,
    drainMs,
    errors,
    unexpected,
    violations: checked.violations,
    eventsChecked,
    verdict: 'missed',
    notes,
  };
  summary.verdict = webhookTargets({ webhooks: summary } as Report).every((t) => t.met) ? 'met' : 'missed';
  return summary;
}

const allDelivered = (w: WebhookSummary) => w.messages > 0 && w.received === w.messages;

export function webhookRows(report: Report): string[] {
  const w = report.webhooks;
  if (!w) return [];
  const cpu = (c: { server: number; db: number }) => `${fmt(c.server, 2)} + ${fmt(c.db, 2)}`;
  return [
    `| Link + de-link cycles with one webhook subscribed to every event (receiver on 127.0.0.1) | ${fmt(w.cyclesPerSecWith)} cycles/s (without: ${fmt(w.cyclesPerSecWithout)}) | ${fmt(w.latencyP50)} (commit → 2xx) | ${fmt(w.latencyP99)} (commit → 2xx) | ${w.errors} / ${w.unexpected}${w.errors || w.unexpected ? ' ⚠' : ''}; ${fmt(w.received)} of ${fmt(w.messages)} messages delivered${w.duplicates ? `, ${w.duplicates} repeats` : ''} | same run without | ${fmt(w.ratio * 100)} % | ${cpu(w.cpuWith)} per cycle (without: ${cpu(w.cpuWithout)}) | | ≥ ${fmt(WEBHOOK_TARGETS.ratio * 100)} % of the cycles/s without; p50 < ${fmt(WEBHOOK_TARGETS.p50Ms / 1000)} s, p99 < ${fmt(WEBHOOK_TARGETS.p99Ms / 1000)} s; every message delivered | ${verdictText(w.verdict)} |`,
  ];
}

export function webhookTargets(report: Report): Report['targets'] {
  const w = report.webhooks;
  if (!w) return [];
  return [
    {
      name: 'webhooks latency p50',
      target: `Webhooks: commit → receiver's 2xx p50 < ${fmt(WEBHOOK_TARGETS.p50Ms / 1000)} s, during the link + de-link cycles`,
      measured: `${fmt(w.latencyP50)} ms`,
      met: w.latencyP50 < WEBHOOK_TARGETS.p50Ms,
    },
    {
      name: 'webhooks latency p99',
      target: `Webhooks: commit → receiver's 2xx p99 < ${fmt(WEBHOOK_TARGETS.p99Ms / 1000)} s`,
      measured: `${fmt(w.latencyP99)} ms (worst ${fmt(w.latencyMax)} ms)`,
      met: w.latencyP99 < WEBHOOK_TARGETS.p99Ms,
    },
    {
      name: 'webhooks delivered',
      target: 'Webhooks: every message delivered',
      measured:
        `${fmt(w.received)} of ${fmt(w.messages)}${w.duplicates ? ` (${w.duplicates} repeats)` : ''}; ` +
        `${fmt(w.receivedDuringCycles)} while the cycles ran, the rest within ${fmt(w.drainMs / 1000, 1)} s after`,
      met: allDelivered(w),
    },
    {
      name: 'webhooks throughput',
      target: `Webhooks: cycles/s with the webhook ≥ ${fmt(WEBHOOK_TARGETS.ratio * 100)} % of the same run's without`,
      measured: `${fmt(w.cyclesPerSecWith)} vs ${fmt(w.cyclesPerSecWithout)} cycles/s (${fmt(w.ratio * 100)} %)`,
      // No cycle completed without the webhook (an infinite ratio) is no comparison.
      met: Number.isFinite(w.ratio) && w.ratio >= WEBHOOK_TARGETS.ratio,
    },
    {
      name: 'webhooks clean',
      target: 'Webhooks runs: 0 errors, 0 invariant violations, an event for every change',
      measured: `${w.errors + w.unexpected} errors, ${w.violations} violations${w.eventsChecked ? '' : ', events do not match'}`,
      met: !w.errors && !w.unexpected && !w.violations && w.eventsChecked,
    },
  ];
}
