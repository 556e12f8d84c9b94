// npx tsx bench/imports.ts --url http://127.0.0.1:3100 --pid <server pid> [--database-url URL | --data-dir DIR]
//   [--imports 10] [--rows 500000] [--enterprises one|many] [--seconds-after 0]
//
// Issue 12, item 10: what concurrent big imports do to everyone else. Against a running SIM Link (any
// version: it only uses HTTP, and SQL to add enterprises and admins):
//  1. adds 10 enterprises, each with an admin (password known) and an endpoint, and writes one CSV file of
//     --rows SIMs per import (distinct identifiers) to the temporary directory;
//  2. starts --imports uploads at once — all by one admin (--enterprises one, the case) or one per
//     enterprise (many) — while 4 clients request /readyz and 4 request another enterprise's endpoint page
//     in a loop, one request at a time each;
//  3. prints each import's status and time, the latency (p50/p95/max) and failures of both probes while the
//     imports ran, and the peak RSS of the server process (sampled from /proc every 100 ms).
import { createReadStream, createWriteStream, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { hashPassword } from '../src/domain/passwords.js';
import { runningEmbeddedUrl } from '../src/db/embedded-postgres.js';
import { eidFor, iccidFor, imsiFor, msisdnFor } from '../src/db/generate-identifiers.js';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:3100' },
    pid: { type: 'string' },
    'database-url': { type: 'string' },
    'data-dir': { type: 'string' },
    imports: { type: 'string', default: '10' },
    rows: { type: 'string', default: '500000' },
    enterprises: { type: 'string', default: 'many' },
  },
});
const IMPORTS = Number(args.imports);
const ROWS = Number(args.rows);
const PASSWORD = 'bench-imports-password';
const run = Date.now().toString(36);

const databaseUrl = args['database-url'] ?? (args['data-dir'] ? runningEmbeddedUrl(args['data-dir']) : undefined);
if (!databaseUrl) throw new Error('give --database-url or --data-dir (of the running embedded server)');

function rss(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

async function seed() {
  const client = new pg.Client(/\?host=/.test(databaseUrl!) ? socketConfig(databaseUrl!) : { connectionString: databaseUrl });
  await client.connect();
  const hash = await hashPassword(PASSWORD);
  const admins: { email: string; enterpriseId: number }[] = [];
  let endpointId = 0;
  for (let i = 0; i < Math.max(IMPORTS, 2) + 1; i++) {
    const {
      rows: [ent],
    } = await client.query('insert into enterprise (slug, name) values ($1, $2) returning id', [
      `bench-imp-${run}-${i}`,
      `Bench imports ${i}`,
    ]);
    const email = `bench-imp-${run}-${i}@example.test`;
    await client.query(`insert into app_user (enterprise_id, email, display_name, role, password_hash) values ($1, $2, $3, 'admin', $4)`, [
      ent.id,
      email,
      `Bench ${i}`,
      hash,
    ]);
    admins.push({ email, enterpriseId: ent.id });
    if (i === Math.max(IMPORTS, 2)) {
      const {
        rows: [ep],
      } = await client.query(`insert into endpoint (enterprise_id, name) values ($1, 'Bench other enterprise') returning id`, [ent.id]);
      endpointId = ep.id;
    }
  }
  await client.end();
  return { admins, endpointId };
}

function socketConfig(url: string) {
  const u = new URL(url);
  return {
    host: u.searchParams.get('host')!,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.slice(1),
  };
}

async function writeFile(index: number): Promise<string> {
  const path = join(tmpdir(), `bench-import-${run}-${index}.csv`);
  const out = createWriteStream(path);
  out.write('iccid,imsi,eid,msisdn\n');
  // Series 40 + index, serials from the run's time: no two files (or runs) repeat an identifier.
  const series = 40 + index;
  const offset = ((Date.now() % 100_000) * 1_000_000) % 90_000_000;
  for (let n = 1; n <= ROWS; n++) {
    const s = offset + n;
    if (
      !out.write(`${iccidFor(series, s)},${imsiFor(series, s % 100_000_000)},${eidFor(series, s)},${msisdnFor(series, s % 10_000_000)}\n`)
    )
      await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return path;
}

async function signIn(email: string) {
  const res = await fetch(`${args.url}/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email, password: PASSWORD }),
  });
  if (res.status !== 303) throw new Error(`sign-in ${email}: ${res.status}`);
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const page = await (await fetch(`${args.url}/sims/import`, { headers: { cookie } })).text();
  const csrf = /name="_csrf" value="([^"]*)"/.exec(page)?.[1];
  if (!csrf) throw new Error('no CSRF token on /sims/import');
  return { cookie, csrf: csrf.replace(/&amp;/g, '&') };
}

async function probe(url: string, headers: Record<string, string>, until: () => boolean) {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  while (!until()) {
    const started = performance.now();
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(60_000) });
      await res.arrayBuffer();
      if (res.status !== 200) failures[res.status] = (failures[res.status] ?? 0) + 1;
    } catch (error) {
      const key = (error as Error).name;
      failures[key] = (failures[key] ?? 0) + 1;
    }
    latencies.push(performance.now() - started);
  }
  return { latencies, failures };
}

function stats(latencies: number[]) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { requests: sorted.length, p50: Math.round(at(0.5)), p95: Math.round(at(0.95)), max: Math.round(sorted.at(-1) ?? NaN) };
}

const { admins, endpointId } = await seed();
console.log(`writing ${IMPORTS} files of ${ROWS.toLocaleString('en')} SIMs…`);
const files: string[] = [];
for (let i = 0; i < IMPORTS; i++) files.push(await writeFile(i));
const importers = await Promise.all(
  Array.from({ length: IMPORTS }, (_, i) => signIn(args.enterprises === 'one' ? admins[0].email : admins[i].email)),
);
const other = await signIn(admins.at(-1)!.email);

const pid = args.pid ? Number(args.pid) : undefined;
if (pid && !existsSync(`/proc/${pid}`)) throw new Error(`no process ${pid}`);
const rssBefore = pid ? rss(pid) : 0;
let rssPeak = rssBefore;
const sampler = pid ? setInterval(() => (rssPeak = Math.max(rssPeak, rss(pid))), 100) : undefined;

let done = false;
const probes = [
  ...Array.from({ length: 4 }, () => probe(`${args.url}/readyz`, {}, () => done)),
  ...Array.from({ length: 4 }, () => probe(`${args.url}/endpoints/${endpointId}`, { cookie: other.cookie }, () => done)),
];
const started = performance.now();
/** One upload over node:http (fetch gives up waiting for an answer after 300 s), the file streamed from disk. */
function upload(who: { cookie: string; csrf: string }, path: string, name: string): Promise<{ status: number | string; seconds: number }> {
  const boundary = `----bench${Math.random().toString(16).slice(2)}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: text/csv\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(
      `${args.url}/sims/import?_csrf=${encodeURIComponent(who.csrf)}`,
      {
        method: 'POST',
        headers: {
          cookie: who.cookie,
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': head.length + statSync(path).size + tail.length,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, seconds: (performance.now() - t0) / 1000 }));
      },
    );
    req.on('error', (error) =>
      resolve({ status: (error as NodeJS.ErrnoException).code ?? error.name, seconds: (performance.now() - t0) / 1000 }),
    );
    req.write(head);
    const file = createReadStream(path);
    file.pipe(req, { end: false });
    file.on('end', () => req.end(tail));
  });
}

const outcomes = await Promise.all(importers.map((who, i) => upload(who, files[i], `bench-${i}.csv`)));
const wall = (performance.now() - started) / 1000;
done = true;
for (const path of files) rmSync(path, { force: true });
const results = await Promise.all(probes);
if (sampler) clearInterval(sampler);

const merge = (part: typeof results) => ({
  ...stats(part.flatMap((r) => r.latencies)),
  failures: part.reduce<Record<string, number>>((all, r) => {
    for (const [k, v] of Object.entries(r.failures)) all[k] = (all[k] ?? 0) + v;
    return all;
  }, {}),
});
const byStatus = outcomes.reduce<Record<string, number>>((all, o) => ((all[o.status] = (all[o.status] ?? 0) + 1), all), {});
console.log(
  JSON.stringify(
    {
      imports: IMPORTS,
      rows: ROWS,
      enterprises: args.enterprises,
      wallSeconds: Number(wall.toFixed(1)),
      importStatuses: byStatus,
      importSeconds: outcomes.map((o) => `${o.status}:${o.seconds.toFixed(1)}`),
      readyz: merge(results.slice(0, 4)),
      otherEnterpriseEndpointPage: merge(results.slice(4)),
      rssMB: pid ? { before: Math.round(rssBefore), peak: Math.round(rssPeak) } : null,
    },
    null,
    2,
  ),
);
