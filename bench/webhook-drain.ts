// How fast the webhook worker drains its outbox (issue 16): N messages about E endpoints queued for one webhook,
// then a WebhookDelivery in this process sends them all to the bench's receiver (webhook-receiver.ts, a process
// of its own on 127.0.0.1 answering 204). Reported per run: messages/s from the worker's start to the last
// message delivered, and the CPU per message of this process (the worker; the receiver is not counted) and of
// its PostgreSQL backends. Then, with the same worker, the latency at a steady load: messages written at --rate
// a second (a transaction every 50 ms) for --seconds, each one's time from its event to the receiver, p50 and p99.
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/simlink_mine npx tsx bench/webhook-drain.ts
//   options: --messages 2000  --endpoints 200  --repeats 3  --rate 200 (0: no latency run)  --seconds 5  --baseline main
//
// --baseline <git ref>: the worker of that commit (its webhook-delivery.ts and polling-worker.ts, copied to
// bench/.work/drain-baseline/ and run against this checkout's entities and schema) is measured too, runs
// interleaved with this checkout's (baseline, current, baseline, current, …) so that both see the same machine;
// the ratios compare their medians. Each run's messages are deleted after it. The demo data is seeded when the
// database has none (the webhook belongs to enterprise acme's admin).
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDatabase } from '../src/db/database.js';
import { seedDemo } from '../src/db/seed-demo.js';
import { findActor, type Actor } from '../src/domain/accounts.js';
import { UserSchema, WebhookMessageSchema } from '../src/domain/entities.js';
import { createWebhook, deleteWebhook, enqueueWebhookMessages } from '../src/domain/webhooks.js';
import { DEMO_USER } from './app-process.js';
import { backendCpu, backendDelta } from './cpu.js';
import { percentile } from './cycle-runs.js';
import { BENCH_DIR, ROOT, log, median, sleep } from './util.js';
import { startReceiver } from './webhook-scenario.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    endpoints: { type: 'string', default: '200' },
    repeats: { type: 'string', default: '3' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '5' },
    baseline: { type: 'string' },
  },
});
const total = Number(args.messages);
const endpointCount = Number(args.endpoints);
const repeats = Number(args.repeats);
const rate = Number(args.rate);
const steadySeconds = Number(args.seconds);
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error('DATABASE_URL must point at a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1:5432/simlink_mine');
  process.exit(2);
}
if (!(total >= 1 && endpointCount >= 1 && repeats >= 1 && rate >= 0 && steadySeconds >= 1)) {
  console.error('--messages, --endpoints, --repeats and --seconds must be at least 1, --rate at least 0');
  process.exit(2);
}

/** The worker's surface the bench uses: that of WebhookDelivery, in this checkout and in the baseline's. */
interface Worker {
  start(): void;
  stop(): Promise<void>;
}
type WorkerClass = new (orm: Awaited<ReturnType<typeof openDatabase>>['orm'], options: { allowPrivate: boolean }) => Worker;

/** The baseline's worker: its two files copied beside the bench, their imports of the rest pointed at this checkout. */
async function baselineWorker(ref: string): Promise<WorkerClass> {
  const dir = `${BENCH_DIR}.work/drain-baseline/`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const file of ['webhook-delivery.ts', 'polling-worker.ts']) {
    const source = execFileSync('git', ['show', `${ref}:src/domain/${file}`], { cwd: ROOT, encoding: 'utf8' });
    const pointed = source
      .replace(/from '\.\/(?!polling-worker\.js)([^']+)'/g, "from '../../../src/domain/$1'")
      .replace(/from '\.\.\/db\/([^']+)'/g, "from '../../../src/db/$1'");
    writeFileSync(`${dir}${file}`, pointed);
  }
  const module = (await import(`${dir}webhook-delivery.ts`)) as { WebhookDelivery: WorkerClass };
  return module.WebhookDelivery;
}

const APP_NAME = 'simlink-bench-drain';
process.env.PGAPPNAME = APP_NAME;
const database = new URL(databaseUrl).pathname.slice(1);
const db = await openDatabase({ databaseUrl });
const pool = new pg.Pool({ connectionString: databaseUrl, max: 1, application_name: 'simlink-bench-drain-probe' });
const receiver = await startReceiver();
const em = () => db.orm.em.fork();

interface Run {
  worker: string;
  messagesPerSec: number;
  cpuMsPerMessage: number;
  dbCpuMsPerMessage: number;
  /** Event → receiver latency (ms) while messages are written at --rate: p50, p99. */
  latencyP50?: number;
  latencyP99?: number;
}

/** Writes `count` messages for the webhook, message i about endpoint i mod E, in event order (as the lifecycle's transactions do). */
async function enqueue(webhookId: number, actor: Actor, from: number, count: number) {
  const subscriptions = [{ id: webhookId, event_types: ['sim.linked'] }];
  await em().transactional(async (tx) => {
    for (let i = from; i < from + count; i++) {
      const endpoint = { id: 1_000_000 + (i % endpointCount), name: `Drain ${i % endpointCount}` };
      const details = { endpoint, iccid: '89441000000000000018', endpointStatus: ['hold', 'pre_active'] as [string, string] };
      await enqueueWebhookMessages(tx, { id: i + 1, action: 'sim.linked', actor, source: 'api', details, at: new Date() }, subscriptions);
    }
  });
}

/**
 * The latency at a steady rate: messages written at `rate` a second (a transaction every 50 ms) for
 * `steadySeconds` while the worker runs, then each one's time from its event (the payload's timestamp) to the
 * receiver. Returns the latencies, in ms.
 */
async function steadyLatencies(Delivery: WorkerClass, actor: Actor): Promise<number[]> {
  const { webhook } = await createWebhook(em(), actor, { url: receiver.url, eventTypes: ['sim.linked'] }, { allowPrivate: true });
  await receiver.take();
  const worker = new Delivery(db.orm, { allowPrivate: true });
  worker.start();
  let written = 0;
  const end = Date.now() + steadySeconds * 1000;
  for (let tick = 1; Date.now() < end; tick++) {
    const count = Math.round((rate * tick) / 20) - written;
    await enqueue(webhook.id, actor, written, count);
    written += count;
    await sleep(Math.max(0, end - steadySeconds * 1000 + tick * 50 - Date.now()));
  }
  const latencies = new Map<string, number>();
  const deadline = Date.now() + 60_000;
  while (latencies.size < written && Date.now() < deadline) {
    await sleep(20);
    for (const [id, eventMs, receivedMs] of await receiver.take()) if (!latencies.has(id)) latencies.set(id, receivedMs - eventMs);
  }
  await worker.stop();
  await deleteWebhook(em(), actor, webhook.id);
  if (latencies.size < written) throw new Error(`${written - latencies.size} of ${written} messages not received within 60 s`);
  return [...latencies.values()];
}

try {
  await seedDemo(em());
  const admin = await em().findOneOrFail(UserSchema, { email: DEMO_USER.email });
  const actor = (await findActor(em(), admin.id))!;
  const workers: [string, WorkerClass][] = [];
  if (args.baseline) workers.push([`baseline (${args.baseline})`, await baselineWorker(args.baseline)]);
  workers.push(['current', (await import('../src/domain/webhook-delivery.js')).WebhookDelivery]);
  const runs: Run[] = [];
  log(`${total} messages about ${endpointCount} endpoints per run, ${repeats} repeat(s)`);

  for (let rep = 1; rep <= repeats; rep++) {
    for (const [name, Delivery] of workers) {
      const { webhook } = await createWebhook(em(), actor, { url: receiver.url, eventTypes: ['sim.linked'] }, { allowPrivate: true });
      for (let from = 0; from < total; from += 500) await enqueue(webhook.id, actor, from, Math.min(500, total - from));
      await receiver.take();
      const worker = new Delivery(db.orm, { allowPrivate: true });
      const backendsBefore = await backendCpu(pool, database, APP_NAME);
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      worker.start();
      const received = new Set<string>();
      while (received.size < total) {
        await sleep(10);
        for (const [id] of await receiver.take()) received.add(id);
      }
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const dbCpu = backendDelta(backendsBefore, await backendCpu(pool, database, APP_NAME));
      await worker.stop();
      const run: Run = {
        worker: name,
        messagesPerSec: total / seconds,
        cpuMsPerMessage: (cpu.user + cpu.system) / 1000 / total,
        dbCpuMsPerMessage: dbCpu / total,
      };
      runs.push(run);
      const undelivered = await em().count(WebhookMessageSchema, { webhook: webhook.id, deliveredAt: null });
      if (undelivered) throw new Error(`${undelivered} message(s) received but not recorded as delivered`);
      await deleteWebhook(em(), actor, webhook.id);
      if (rate > 0) {
        const latencies = await steadyLatencies(Delivery, actor);
        run.latencyP50 = percentile(latencies, 50);
        run.latencyP99 = percentile(latencies, 99);
      }
      log(
        `${name.padEnd(20)} ${run.messagesPerSec.toFixed(0).padStart(5)} msg/s  ` +
          `${run.cpuMsPerMessage.toFixed(2)} ms CPU/msg (Node), ${run.dbCpuMsPerMessage.toFixed(2)} ms (PostgreSQL)` +
          (rate > 0 ? `; at ${rate} msg/s: event → receiver p50 ${run.latencyP50} ms, p99 ${run.latencyP99} ms` : ''),
      );
    }
  }

  const summary = workers.map(([name]) => {
    const mine = runs.filter((run) => run.worker === name);
    return {
      worker: name,
      messagesPerSec: median(mine.map((run) => run.messagesPerSec)),
      cpuMsPerMessage: median(mine.map((run) => run.cpuMsPerMessage)),
      dbCpuMsPerMessage: median(mine.map((run) => run.dbCpuMsPerMessage)),
      latencyP50: median(mine.map((run) => run.latencyP50 ?? NaN)),
      latencyP99: median(mine.map((run) => run.latencyP99 ?? NaN)),
    };
  });
  for (const s of summary) {
    log(
      `median ${s.worker}: ${s.messagesPerSec.toFixed(0)} msg/s, ${s.cpuMsPerMessage.toFixed(2)} ms CPU/msg (Node), ` +
        `${s.dbCpuMsPerMessage.toFixed(2)} ms (PostgreSQL)` +
        (rate > 0 ? `; latency p50 ${s.latencyP50} ms, p99 ${s.latencyP99} ms` : ''),
    );
  }
  if (summary.length === 2) {
    const [before, after] = summary;
    log(
      `current / baseline: ${(after.messagesPerSec / before.messagesPerSec).toFixed(1)}× msg/s, ` +
        `${(after.cpuMsPerMessage / before.cpuMsPerMessage).toFixed(2)}× Node CPU/msg, ` +
        `${(after.dbCpuMsPerMessage / before.dbCpuMsPerMessage).toFixed(2)}× PostgreSQL CPU/msg`,
    );
  }
  console.log(JSON.stringify({ messages: total, endpoints: endpointCount, runs, summary }));
} finally {
  await receiver.stop();
  await pool.end();
  await db.close();
  if (args.baseline) rmSync(`${BENCH_DIR}.work/drain-baseline/`, { recursive: true, force: true });
}
