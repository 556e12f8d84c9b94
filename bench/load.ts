// The load generator: autocannon in its own process, so the app and the ceilings never share a CPU
// thread with the client that drives them. JSON in on stdin, one JSON result out (stdout):
// a warm-up run (discarded), then the measured run, against a list of paths chosen at random per request.
import autocannon, { type Options } from 'autocannon';
import { readInput } from './util.js';

export interface LoadSpec {
  title: string;
  /** The server's origin, e.g. http://127.0.0.1:4000 */
  origin: string;
  /** Each request takes one of these paths at random. */
  paths: string[];
  headers: Record<string, string>;
  connections: number;
  durationSec: number;
  warmupSec: number;
  /** Every 2xx body must contain this text (counted as mismatches otherwise). */
  expect?: string;
  /** Requests per second over all connections (autocannon's overallRate); unset: as fast as the server answers. */
  rate?: number;
}

export interface LoadResult {
  title: string;
  requests: number;
  /** Requests of the warm-up (not in the figures; the CPU accounting spans warm-up and run). */
  warmupRequests: number;
  durationSec: number;
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; avg: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
  statusCodes: Record<string, number>;
  bytesPerSec: number;
  /** Filled in by the runner: CPU time per request of the server process and of its PostgreSQL backends. */
  cpu?: { serverMsPerRequest: number; dbMsPerRequest: number };
}

function options(spec: LoadSpec, durationSec: number): Options {
  const { paths } = spec;
  return {
    url: spec.origin,
    connections: spec.connections,
    duration: durationSec,
    timeout: 10,
    headers: spec.headers,
    requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: paths[Math.floor(Math.random() * paths.length)] }) }],
    ...(spec.rate ? { overallRate: spec.rate } : {}),
    ...(spec.expect ? { verifyBody: (body: string) => body.includes(spec.expect!) } : {}),
    title: spec.title,
  };
}

const spec = await readInput<LoadSpec>();
const warmup = spec.warmupSec > 0 ? await autocannon(options(spec, spec.warmupSec)) : null;
const result = await autocannon(options(spec, spec.durationSec));
const statusCodes: Record<string, number> = {};
for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = Number(count);
const out: LoadResult = {
  title: spec.title,
  requests: result.requests.total,
  warmupRequests: warmup?.requests.total ?? 0,
  durationSec: result.duration,
  rps: result.requests.total / result.duration,
  latencyMs: {
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    avg: result.latency.average,
    max: result.latency.max,
  },
  errors: result.errors,
  timeouts: result.timeouts,
  non2xx: result.non2xx,
  mismatches: result.mismatches,
  statusCodes,
  bytesPerSec: result.throughput.average,
};
process.stdout.write(JSON.stringify(out));
