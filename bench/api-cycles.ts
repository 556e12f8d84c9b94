// Link + de-link cycles through the JSON API (issue 15), in their own process, as a CRM's server would send
// them: each worker has its own API token (an integration each) and repeats, over its own endpoints and SIMs
// (no two workers share one):
//   POST   /api/v1/endpoints/:id/sim  {"iccid": "…"}   → 200, the endpoint Active or Pre-Active with that SIM
//   DELETE /api/v1/endpoints/:id/sim                   → 200, the endpoint on Hold without a SIM
// JSON only, a bearer token, no CSRF, no confirmation page; a fresh Idempotency-Key on every change.
// A worker that is mid-cycle when the time is up finishes the cycle, so every pair ends as it began.
// JSON in on stdin, one JSON result out (stdout), of the HTML cycles' shape (cycles.ts).
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { percentile } from './cycle-runs.js';
import type { CyclesResult } from './cycles.js';
import { readInput } from './util.js';

export interface ApiCyclesSpec {
  origin: string;
  /** One API token per worker. */
  tokens: string[];
  /** One list of pairs per worker. */
  pairs: { endpointId: number; simId: number; iccid: string }[][];
  durationSec: number;
  warmupSec: number;
}

const spec = await readInput<ApiCyclesSpec>();

class Failure extends Error {}

const requestTimes: number[] = [];
const cycleTimes: number[] = [];
const failures: string[] = [];
let errors = 0;
let unexpected = 0;
let linked = 0;
let delinked = 0;
let measuredCycles = 0;

const agent = new http.Agent({ keepAlive: true, maxSockets: 1_000 });
const origin = new URL(spec.origin);

function request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
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
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout after 10 s')));
    req.end(body);
  });
}

/** One change: 200 with the endpoint in `expect`'s state, or a Failure. */
async function change(
  method: 'POST' | 'DELETE',
  path: string,
  token: string,
  body: unknown,
  expect: (endpoint: { status?: string; sim?: { iccid?: string } | null }) => boolean,
  measuring: () => boolean,
) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'idempotency-key': randomUUID(), accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const started = performance.now();
  let answer: { status: number; body: string };
  try {
    answer = await request(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
  } catch (error) {
    errors++;
    throw new Failure(`${method} ${path}: ${(error as Error).message}`);
  }
  if (measuring()) requestTimes.push(performance.now() - started);
  let endpoint: Parameters<typeof expect>[0] | null = null;
  try {
    endpoint = JSON.parse(answer.body) as Parameters<typeof expect>[0];
  } catch {
    // not JSON: unexpected below
  }
  if (answer.status !== 200 || !endpoint || !expect(endpoint)) {
    unexpected++;
    throw new Failure(`${method} ${path}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
  }
}

async function worker(pairs: ApiCyclesSpec['pairs'][number], token: string, measureFrom: number, deadline: number) {
  const live = [...pairs];
  for (let i = 0; Date.now() < deadline && live.length > 0; i++) {
    const pair = live[i % live.length];
    const path = `/api/v1/endpoints/${pair.endpointId}/sim`;
    const cycleStarted = performance.now();
    const cycleStartedAt = Date.now();
    const inWindow = () => {
      const now = Date.now();
      return now >= measureFrom && now <= deadline;
    };
    try {
      await change(
        'POST',
        path,
        token,
        { iccid: pair.iccid },
        (e) => (e.status === 'active' || e.status === 'pre_active') && e.sim?.iccid === pair.iccid,
        inWindow,
      );
      linked++;
      await change('DELETE', path, token, undefined, (e) => e.status === 'hold' && e.sim === null, inWindow);
      delinked++;
      const ended = Date.now();
      if (ended >= measureFrom && ended <= deadline) measuredCycles++;
      if (cycleStartedAt >= measureFrom && ended <= deadline) cycleTimes.push(performance.now() - cycleStarted);
    } catch (error) {
      if (!(error instanceof Failure)) throw error;
      if (failures.length < 20) failures.push(`endpoint ${pair.endpointId}, SIM ${pair.simId}: ${error.message}`);
      live.splice(i % live.length, 1);
    }
  }
}

const measureFrom = Date.now() + spec.warmupSec * 1000;
const deadline = measureFrom + spec.durationSec * 1000;
await Promise.all(spec.pairs.map((pairs, i) => worker(pairs, spec.tokens[i], measureFrom, deadline)));
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
