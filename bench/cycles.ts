// Link + de-link cycles through the real screens, in their own process: each worker has its own session
// (like one admin each) and repeats, over its own endpoints and SIMs (no two workers share one):
//   GET  /endpoints/:id/sim/confirm?sim_id=…   (the confirmation: CSRF token and a fresh one-time key)
//   POST /endpoints/:id/sim                     → 303 to /endpoints/:id
//   GET  /endpoints/:id/sim/delete              (the de-link confirmation)
//   POST /endpoints/:id/sim/delete              → 303 to /endpoints/:id
// A worker that is mid-cycle when the time is up finishes the cycle, so every pair ends as it began.
// JSON in on stdin, one JSON result out (stdout).
import http from 'node:http';
import { readInput } from './util.js';

export interface CyclesSpec {
  origin: string;
  /** One signed-in session cookie per worker (signed in by the runner, so hashing stays out of the figures). */
  cookies: string[];
  /** One list of pairs per worker. */
  pairs: { endpointId: number; simId: number }[][];
  durationSec: number;
  warmupSec: number;
}

export interface CyclesResult {
  workers: number;
  /** Cycles completed inside the measured window. */
  cycles: number;
  durationSec: number;
  cyclesPerSec: number;
  requestsPerSec: number;
  cycleMs: { p50: number; p99: number };
  requestMs: { p50: number; p99: number };
  /** Successful link and de-link POSTs over the whole run (warm-up included), to check against the events. */
  linked: number;
  delinked: number;
  errors: number;
  unexpected: number;
  failures: string[];
}

const spec = await readInput<CyclesSpec>();

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];

class Failure extends Error {}

const requestTimes: number[] = [];
const cycleTimes: number[] = [];
const failures: string[] = [];
let errors = 0;
let unexpected = 0;
let linked = 0;
let delinked = 0;
let measuredCycles = 0;

interface Answer {
  status: number;
  location: string | undefined;
  body: string;
}

// node:http with a keep-alive agent: a lighter client than fetch, so the driver takes less of the CPU
// it shares with the app.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1_000 });
const origin = new URL(spec.origin);

function request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: origin.hostname,
        port: origin.port,
        method,
        path,
        agent,
        headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout after 10 s')));
    req.end(body);
  });
}

async function timed(
  method: string,
  path: string,
  headers: Record<string, string>,
  measuring: () => boolean,
  body?: string,
): Promise<Answer> {
  const started = performance.now();
  let answer: Answer;
  try {
    answer = await request(method, path, headers, body);
  } catch (error) {
    errors++;
    throw new Failure(`${method} ${path}: ${(error as Error).message}`);
  }
  if (measuring()) requestTimes.push(performance.now() - started);
  return answer;
}

async function confirmForm(path: string, cookie: string, measuring: () => boolean) {
  const answer = await timed('GET', path, { cookie }, measuring);
  const csrf = hidden(answer.body, '_csrf');
  const key = hidden(answer.body, 'key');
  if (answer.status !== 200 || !csrf || !key) {
    unexpected++;
    throw new Failure(`GET ${path}: HTTP ${answer.status}, ${csrf ? '' : 'no _csrf '}${key ? '' : 'no key'}`);
  }
  return { csrf, key };
}

async function post(path: string, cookie: string, fields: Record<string, string>, expectLocation: string, measuring: () => boolean) {
  const body = new URLSearchParams(fields).toString();
  const answer = await timed('POST', path, { cookie, 'content-type': 'application/x-www-form-urlencoded' }, measuring, body);
  if (answer.status !== 303 || answer.location !== expectLocation) {
    unexpected++;
    const reason = /class="error-message"[^>]*>(?:<span[^>]*>[^<]*<\/span>)?\s*([^<]*)/.exec(answer.body)?.[1]?.trim();
    throw new Failure(`POST ${path}: HTTP ${answer.status} ${answer.location ?? ''} ${reason ?? ''}`.trim());
  }
}

async function worker(pairs: CyclesSpec['pairs'][number], cookie: string, measureFrom: number, deadline: number) {
  const live = [...pairs];
  for (let i = 0; Date.now() < deadline && live.length > 0; i++) {
    const pair = live[i % live.length];
    const base = `/endpoints/${pair.endpointId}`;
    const cycleStarted = performance.now();
    const cycleStartedAt = Date.now();
    const inWindow = () => {
      const now = Date.now();
      return now >= measureFrom && now <= deadline;
    };
    try {
      const link = await confirmForm(`${base}/sim/confirm?sim_id=${pair.simId}`, cookie, inWindow);
      await post(
        `${base}/sim`,
        cookie,
        { sim_id: String(pair.simId), key: link.key, _csrf: link.csrf },
        `/endpoints/${pair.endpointId}`,
        inWindow,
      );
      linked++;
      const delink = await confirmForm(`${base}/sim/delete`, cookie, inWindow);
      await post(`${base}/sim/delete`, cookie, { key: delink.key, _csrf: delink.csrf }, `/endpoints/${pair.endpointId}`, inWindow);
      delinked++;
      // Throughput counts the cycles that end inside the window; latency, those wholly inside it.
      const ended = Date.now();
      if (ended >= measureFrom && ended <= deadline) measuredCycles++;
      if (cycleStartedAt >= measureFrom && ended <= deadline) {
        cycleTimes.push(performance.now() - cycleStarted);
      }
    } catch (error) {
      if (!(error instanceof Failure)) throw error;
      if (failures.length < 20) failures.push(`endpoint ${pair.endpointId}, SIM ${pair.simId}: ${error.message}`);
      // This pair is in an unknown state now: leave it alone for the rest of the run.
      live.splice(i % live.length, 1);
    }
  }
}

const { cookies } = spec;
const measureFrom = Date.now() + spec.warmupSec * 1000;
const deadline = measureFrom + spec.durationSec * 1000;
await Promise.all(spec.pairs.map((pairs, i) => worker(pairs, cookies[i], measureFrom, deadline)));
const result: CyclesResult = {
  workers: spec.pairs.length,
  cycles: measuredCycles,
  durationSec: spec.durationSec,
  cyclesPerSec: measuredCycles / spec.durationSec,
  requestsPerSec: requestTimes.length / spec.durationSec,
  cycleMs: { p50: percentile(cycleTimes, 50), p99: percentile(cycleTimes, 99) },
  requestMs: { p50: percentile(requestTimes, 50), p99: percentile(requestTimes, 99) },
  linked,
  delinked,
  errors,
  unexpected,
  failures,
};
process.stdout.write(JSON.stringify(result));
