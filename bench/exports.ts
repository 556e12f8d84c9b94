// Download CSV of every SIM of the enterprise (1,000,000 in the full run, 100,000 with --quick) through the
// real app process, as a browser would (issue 17, "Measured"): the seconds to the last byte (and to the
// first), and the app's RSS — its peak during the download less its RSS just before (the growth the export
// causes), sampled every 20 ms. Every line is checked as it arrives (the Import SIMs columns, valid
// identifiers, ICCIDs strictly ascending, so each SIM once and in order), and the count, the first and the
// last ICCID are compared with the database. Targets: < 30 s and < 50 MB of RSS growth at 1,000,000 SIMs.
import type pg from 'pg';
import { RssSampler, rssOf } from './app-process.js';
import { log } from './util.js';

export const EXPORT_SECONDS_TARGET = 30;
export const EXPORT_RSS_GROWTH_TARGET = 50 * 1024 * 1024;

export interface ExportsResult {
  rows: number;
  expectedRows: number;
  bytes: number;
  firstByteMs: number;
  seconds: number;
  rssBefore: number;
  peakRss: number;
  rssGrowth: number;
  /** Problems found in the file (empty when every row checked out). */
  problems: string[];
}

const LINE = /^(89\d{17,18}),(\d{15}),(\d{32})?,(\d{5,15})?\r$/;

export async function runExports(pool: pg.Pool, enterpriseId: number, origin: string, pid: number, cookie: string): Promise<ExportsResult> {
  const {
    rows: [db],
  } = await pool.query<{ n: number; first: string; last: string }>(
    'select count(*)::int as n, min(iccid) as first, max(iccid) as last from sim where enterprise_id = $1',
    [enterpriseId],
  );
  log(`Download CSV of all ${db.n.toLocaleString('en')} SIMs (GET /sims/export.csv)`);
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < 10) problems.push(text);
  };
  const rssBefore = rssOf(pid) ?? 0;
  const rss = new RssSampler(pid, 20);
  const started = performance.now();
  const response = await fetch(`${origin}/sims/export.csv`, { headers: { cookie } });
  if (response.status !== 200 || !response.body) throw new Error(`GET /sims/export.csv: HTTP ${response.status}`);
  let firstByteMs = 0;
  let bytes = 0;
  let rows = 0;
  let lineNo = 0;
  let previous = '';
  let firstIccid = '';
  let rest = '';
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const check = (line: string) => {
    lineNo++;
    if (lineNo === 1) {
      if (line !== '\ufefficcid,imsi,eid,msisdn\r') problem(`line 1 is not the BOM and the Import SIMs header: ${JSON.stringify(line)}`);
      return;
    }
    const match = LINE.exec(line);
    if (!match) return problem(`line ${lineNo} is not a SIM: ${JSON.stringify(line.slice(0, 100))}`);
    if (match[1] <= previous) problem(`line ${lineNo}: ICCID ${match[1]} does not follow ${previous}`);
    if (!firstIccid) firstIccid = match[1];
    previous = match[1];
    rows++;
  };
  for await (const chunk of response.body) {
    if (!bytes) firstByteMs = performance.now() - started;
    bytes += chunk.length;
    const lines = (rest + decoder.decode(chunk, { stream: true })).split('\n');
    rest = lines.pop()!;
    for (const line of lines) check(line);
  }
  const seconds = (performance.now() - started) / 1000;
  rss.stop();
  const peakRss = Math.max(rss.peak, rssBefore);
  if (rest !== '') problem(`the file does not end with a line break: ${JSON.stringify(rest.slice(0, 100))}`);
  if (rows !== db.n) problem(`${rows} SIMs in the file, ${db.n} in the database`);
  if (firstIccid !== db.first || previous !== db.last)
    problem(`ICCIDs ${firstIccid}…${previous} in the file, ${db.first}…${db.last} in the database`);
  const result = { rows, expectedRows: db.n, bytes, firstByteMs, seconds, rssBefore, peakRss, rssGrowth: peakRss - rssBefore, problems };
  log(
    `  ${rows.toLocaleString('en')} rows, ${(bytes / 1048576).toFixed(1)} MB in ${seconds.toFixed(1)} s (first byte after ${firstByteMs.toFixed(0)} ms); ` +
      `app RSS ${(rssBefore / 1048576).toFixed(0)} MB before, peak ${(peakRss / 1048576).toFixed(0)} MB (+${(result.rssGrowth / 1048576).toFixed(1)} MB)` +
      `${problems.length ? `; PROBLEMS: ${problems.join('; ')}` : '; every row checked'}`,
  );
  return result;
}

/** The issue's targets, for the report's targets table. */
export function exportTargets(result: ExportsResult) {
  const n = result.expectedRows.toLocaleString('en');
  return [
    {
      name: 'export seconds',
      target: `Download CSV of all ${n} SIMs: < ${EXPORT_SECONDS_TARGET} s, every row checked`,
      measured: `${result.seconds.toFixed(1)} s, ${result.rows.toLocaleString('en')} rows${result.problems.length ? `, ${result.problems.length} problem(s)` : ''}`,
      met: result.seconds < EXPORT_SECONDS_TARGET && result.problems.length === 0,
    },
    {
      name: 'export rss',
      target: `Download CSV of all ${n} SIMs: app RSS growth < ${EXPORT_RSS_GROWTH_TARGET / 1048576} MB`,
      measured: `+${(result.rssGrowth / 1048576).toFixed(1)} MB (peak ${(result.peakRss / 1048576).toFixed(0)} MB)`,
      met: result.rssGrowth < EXPORT_RSS_GROWTH_TARGET,
    },
  ];
}
