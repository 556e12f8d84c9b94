// Bulk changes (SPEC.md §7): a CSV file `endpoint_id,action,iccid` checked row by row (the preview), then
// applied in the background as a job, each row one lifecycle operation through the same rules as the screens.
//
// The preview reads the file as a stream, checks every row's shape, then looks up the endpoints and SIMs it
// names (5,000 at a time) and asks the lifecycle's own rules (`refusal`) whether each change could be made now;
// a row that cannot is reported with its line and reason, in the screens' words. The rows that can become a job.
//
// The job runs on one instance at a time: the instance holds it by a lease (`lease_until`), taken with
// `SELECT … FOR UPDATE SKIP LOCKED` for one round of rows and let go after it; the next round goes to the job
// of the enterprise served least recently (`served_at`), so jobs of several enterprises take turns and a huge
// one starves no one. If the instance dies, the lease runs out and another instance (or the same one
// restarted) takes it up and resumes with the rows that have no outcome yet. The rows go through in batches, each one transaction (changeMany in lifecycle.ts: the verbs'
// own rules, changes and events, for many rows at once; a swap goes through swapSim alone); every row carries a
// one-time key made of the job and the line, stored in its batch's transaction, so a row whose change committed
// just before a crash, but whose outcome was not yet written, is answered by the key's stored outcome when it
// is run again — never changed twice. A row that fails (someone changed that endpoint meanwhile) fails alone,
// with its reason. Cancelling stops the job after the round under way.
import type { CsvError } from 'csv-parse';
import { parse as parseCsvStream } from 'csv-parse';
import { Readable } from 'node:stream';
import { raw } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { findActor, type Actor } from './accounts.js';
import {
  BULK_ACTIONS,
  BulkJobProblemSchema,
  BulkJobRowSchema,
  BulkJobSchema,
  EndpointSchema,
  SimSchema,
  simStatusLabel,
  type BulkAction,
  type BulkJob,
  type EndpointStatus,
  type SimStatus,
} from './entities.js';
import { DomainError, ForbiddenError, InvalidStateError, NotFoundError } from './errors.js';
import { recordEvent } from './events.js';
import { runStatement } from '../db/compiled-statement.js';
import { checkIccid } from './identifiers.js';
import { PollingWorker, type RoundResult } from './polling-worker.js';
import { columnTwiceMessage, csvHeader, csvLine, notCsvReason, recordLines, unknownColumnsMessage, type CsvHeader } from './csv.js';
import {
  activateEndpoint,
  changeMany,
  delinkSim,
  linkSim,
  refusal,
  resumeEndpoint,
  suspendEndpoint,
  swapSim,
  type BatchItem,
  type OperationContext,
} from './lifecycle.js';

export const BULK_MAX_ROWS = 100_000;
const LOOKUP_BATCH = 5_000;
/** Rows of a round: their outcomes are written (and the lease let go, and a cancel looked for) together. */
const RUN_BATCH = 100;

/** A file that cannot be read as a bulk change at all (no header, too many rows, not CSV): 422 with the reason. */
export class BulkFileError extends DomainError {
  readonly kind = 'invalid';
  override name = 'BulkFileError';
}

export interface BulkFile {
  stream: AsyncIterable<Buffer | string>;
  filename?: string;
}

export interface BulkRow {
  line: number;
  endpointId: number;
  action: BulkAction;
  iccid: string | null;
  simId: number | null;
}

export interface BulkProblem {
  line: number;
  reason: string;
  /** The row's values as the file had them (for the results CSV). */
  values?: { endpointId: string; action: string; iccid: string };
}

export interface BulkPreview {
  fileName: string;
  /** The rows that can be done, in file order. */
  rows: BulkRow[];
  problems: BulkProblem[];
  counts: Record<BulkAction, number>;
  /** Data rows in the file. */
  total: number;
}

const isAction = (value: string): value is BulkAction => (BULK_ACTIONS as readonly string[]).includes(value);
const NEEDS_SIM: BulkAction[] = ['link', 'swap'];

interface RawRow {
  line: number;
  endpoint_id: string;
  action: string;
  iccid: string;
  /** Why the line cannot be read as a row (its number of values), when it cannot. */
  problem?: string;
}

/** 100,000 rows of `endpoint_id,action,iccid` fit in well under this. */
const MAX_BYTES = 8 * 1024 * 1024;

/** Reads the file: a header naming endpoint_id, action and iccid (any order, any case), comma or semicolon. Exported for tests. */
export async function readRows(file: BulkFile): Promise<RawRow[]> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of file.stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > MAX_BYTES) throw new BulkFileError(`The file is larger than ${MAX_BYTES / 1024 / 1024} MB; split it into smaller files.`);
    chunks.push(buffer);
  }
  const bytes = Buffer.concat(chunks);
  const name = file.filename ? `“${file.filename}”` : 'The file';
  const notCsv = notCsvReason(bytes.subarray(0, 4096), name, 'your changes: a header line endpoint_id,action,iccid and one change a line');
  if (notCsv) throw new BulkFileError(notCsv);
  // Line breaks as \n only: csv-parse counts a \r\n inside a quoted value as two lines. (No value of this file
  // may hold a line break, so nothing a row says is lost.)
  const text = bytes.includes(13) ? Buffer.from(bytes.toString('utf8').replace(/\r\n?/g, '\n')) : bytes;
  // Parsed as a stream of 64 KB slices, so that a file of 100,000 rows does not hold the event loop (and every
  // other request) for the whole parse: the parser yields between slices.
  const parser = parseCsvStream({
    bom: true,
    delimiter: [',', ';'],
    skip_empty_lines: true,
    // A line of separators only (`,,`) is an empty line of a spreadsheet, as in the SIM import.
    skip_records_with_empty_values: true,
    trim: true,
    relax_column_count: true,
    max_record_size: 4096,
    info: true,
    raw: true,
  });
  const slices = async function* () {
    for (let at = 0; at < text.length; at += 64 * 1024) {
      yield text.subarray(at, at + 64 * 1024);
      // Streams hand chunks on in microtasks: without a turn of the event loop, nothing else would run.
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const rows: RawRow[] = [];
  const lineOf = recordLines();
  let header: CsvHeader<BulkColumn> | null = null;
  try {
    for await (const { record, info, raw } of Readable.from(slices()).pipe(parser) as AsyncIterable<{
      record: string[];
      info: { lines: number };
      raw: string;
    }>) {
      if (!header) {
        header = bulkHeader(record);
        continue;
      }
      if (rows.length >= BULK_MAX_ROWS) {
        throw new BulkFileError(`The file has more than ${BULK_MAX_ROWS.toLocaleString('en')} rows; split it into smaller files.`);
      }
      const cell = (name: BulkColumn) => {
        const i = header!.index.get(name);
        return i === undefined ? '' : (record[i] ?? '');
      };
      const line = lineOf(info.lines, raw);
      const row = { line, endpoint_id: cell('endpoint_id'), action: cell('action').toLowerCase(), iccid: cell('iccid') };
      if (record.length !== header.width) {
        const n = record.length;
        rows.push({ ...row, problem: `This line has ${n} value${n === 1 ? '' : 's'}; the header has ${header.width} columns` });
      } else if (header.unnamed.some((i) => record[i] !== '')) {
        rows.push({ ...row, problem: 'This line has a value in a column without a name in the header' });
      } else rows.push(row);
    }
  } catch (error) {
    if (error instanceof BulkFileError) throw error;
    throw new BulkFileError(
      `The file could not be read as CSV (${(error as CsvError).message.slice(0, 160)}). Save it as “CSV UTF-8” and upload that.`,
    );
  } finally {
    parser.destroy();
  }
  return rows;
}

const BULK_COLUMNS = ['endpoint_id', 'action', 'iccid'] as const;
type BulkColumn = (typeof BULK_COLUMNS)[number];

/** The header line: endpoint_id and action (iccid may be left out), any order and case; no other column, none twice. */
function bulkHeader(record: string[]): CsvHeader<BulkColumn> {
  const header = csvHeader(record, BULK_COLUMNS);
  if (header.twice) throw new BulkFileError(columnTwiceMessage(header.twice));
  for (const required of ['endpoint_id', 'action'] as const) {
    if (!header.index.has(required)) {
      throw new BulkFileError(`The first line must name the columns endpoint_id, action and iccid; "${required}" is missing.`);
    }
  }
  if (header.unknown.length) throw new BulkFileError(unknownColumnsMessage(header.unknown, 'endpoint_id, action and iccid'));
  return header;
}

const valuesOf = (row: RawRow) => ({ endpointId: row.endpoint_id, action: row.action, iccid: row.iccid });
const shapedValues = (row: { endpointId: number; action: string; iccid: string | null }) => ({
  endpointId: String(row.endpointId),
  action: row.action,
  iccid: row.iccid ?? '',
});

/** Checks every row of the file against the enterprise's endpoints and SIMs as they are now. */
export async function previewBulk(em: EntityManager, actor: Actor, file: BulkFile): Promise<BulkPreview> {
  if (actor.role !== 'admin') throw new ForbiddenError();
  const raw = await readRows(file);
  if (!raw.length) throw new BulkFileError('The file has no rows under its header line.');
  const problems: BulkProblem[] = [];
  const shaped: (Omit<BulkRow, 'simId'> & { line: number })[] = [];
  for (const row of raw) {
    if (row.problem) {
      problems.push({ line: row.line, values: valuesOf(row), reason: row.problem });
      continue;
    }
    const id = row.endpoint_id.trim();
    if (!/^[0-9]{1,9}$/.test(id)) {
      problems.push({
        line: row.line,
        values: valuesOf(row),
        reason: id ? `endpoint_id "${id.slice(0, 20)}" is not an endpoint id (a number)` : 'endpoint_id is empty',
      });
      continue;
    }
    if (!isAction(row.action)) {
      problems.push({
        line: row.line,
        values: valuesOf(row),
        reason: `action "${row.action.slice(0, 20)}" is not one of ${BULK_ACTIONS.join(', ')}`,
      });
      continue;
    }
    let iccid: string | null = null;
    if (NEEDS_SIM.includes(row.action)) {
      if (!row.iccid) {
        problems.push({ line: row.line, values: valuesOf(row), reason: `${row.action} needs the ICCID of the SIM` });
        continue;
      }
      const checked = checkIccid(row.iccid);
      if (!checked.ok) {
        problems.push({ line: row.line, values: valuesOf(row), reason: checked.message });
        continue;
      }
      iccid = checked.value;
    } else if (row.iccid) {
      // Never silently ignored: the person may have meant another action (a swap), or put the row on the wrong endpoint.
      problems.push({
        line: row.line,
        values: valuesOf(row),
        reason: `${row.action} takes no ICCID (it acts on the endpoint and the SIM it has); leave iccid empty, or use link or swap`,
      });
      continue;
    }
    shaped.push({ line: row.line, endpointId: Number(id), action: row.action, iccid });
  }

  // The endpoints and SIMs named, as they are now (another enterprise's are simply not found).
  const endpoints = new Map<number, { name: string; status: EndpointStatus }>();
  const endpointIds = [...new Set(shaped.map((row) => row.endpointId))];
  for (let i = 0; i < endpointIds.length; i += LOOKUP_BATCH) {
    const found = await em.find(
      EndpointSchema,
      { id: { $in: endpointIds.slice(i, i + LOOKUP_BATCH) }, enterprise: actor.enterpriseId },
      { fields: ['id', 'name', 'status'], disableIdentityMap: true },
    );
    for (const endpoint of found) endpoints.set(endpoint.id, { name: endpoint.name, status: endpoint.status });
  }
  const sims = new Map<string, { id: number; status: SimStatus }>();
  const iccids = [...new Set(shaped.flatMap((row) => (row.iccid ? [row.iccid] : [])))];
  for (let i = 0; i < iccids.length; i += LOOKUP_BATCH) {
    const found = await em.find(
      SimSchema,
      { iccid: { $in: iccids.slice(i, i + LOOKUP_BATCH) }, enterprise: actor.enterpriseId },
      { fields: ['id', 'iccid', 'status'], disableIdentityMap: true },
    );
    for (const sim of found) sims.set(sim.iccid, { id: sim.id, status: sim.status });
  }

  const rows: BulkRow[] = [];
  const endpointLine = new Map<number, number>();
  const simLine = new Map<string, number>();
  for (const row of shaped) {
    const endpoint = endpoints.get(row.endpointId);
    if (!endpoint) {
      problems.push({ line: row.line, values: shapedValues(row), reason: `There is no endpoint ${row.endpointId}` });
      continue;
    }
    const earlier = endpointLine.get(row.endpointId);
    if (earlier !== undefined) {
      problems.push({
        line: row.line,
        values: shapedValues(row),
        reason: `Endpoint ${row.endpointId} is also on line ${earlier}; one change per endpoint in a file`,
      });
      continue;
    }
    const refused = refusal(row.action === 'swap' ? 'swap' : row.action, endpoint);
    if (refused) {
      problems.push({ line: row.line, values: shapedValues(row), reason: refused });
      continue;
    }
    let simId: number | null = null;
    if (row.iccid) {
      const sim = sims.get(row.iccid);
      if (!sim) {
        problems.push({ line: row.line, values: shapedValues(row), reason: `There is no SIM with ICCID ${row.iccid} in your inventory` });
        continue;
      }
      if (sim.status !== 'ready') {
        problems.push({
          line: row.line,
          values: shapedValues(row),
          reason: `SIM ${row.iccid} is ${simStatusLabel(sim.status)}, not Ready to Activate`,
        });
        continue;
      }
      const simEarlier = simLine.get(row.iccid);
      if (simEarlier !== undefined) {
        problems.push({ line: row.line, values: shapedValues(row), reason: `SIM ${row.iccid} is also on line ${simEarlier}` });
        continue;
      }
      simLine.set(row.iccid, row.line);
      simId = sim.id;
    }
    endpointLine.set(row.endpointId, row.line);
    rows.push({ ...row, simId });
  }
  problems.sort((a, b) => a.line - b.line);
  const counts = Object.fromEntries(BULK_ACTIONS.map((action) => [action, 0])) as Record<BulkAction, number>;
  for (const row of rows) counts[row.action]++;
  return { fileName: (file.filename ?? 'bulk.csv').slice(0, 255), rows, problems, counts, total: raw.length };
}

/**
 * Stores the rows that can be done as a job: a draft until an admin confirms it (applyBulkJob), or queued for
 * the runner at once.
 */
export async function createBulkJob(
  em: EntityManager,
  actor: Actor,
  fileName: string,
  rows: BulkRow[],
  state: 'draft' | 'queued' = 'queued',
  problems: BulkProblem[] = [],
): Promise<BulkJob> {
  if (actor.role !== 'admin') throw new ForbiddenError();
  if (!rows.length) throw new BulkFileError('There are no changes to apply.');
  return em.transactional(async (tx) => {
    const job = tx.create(BulkJobSchema, {
      enterprise: actor.enterpriseId,
      createdBy: actor.id,
      createdByName: actor.displayName,
      fileName,
      state,
      total: rows.length,
      done: 0,
      failed: 0,
      cancelRequested: false,
      leaseUntil: null,
      startedAt: null,
      finishedAt: null,
    });
    await tx.flush();
    for (let i = 0; i < rows.length; i += LOOKUP_BATCH) {
      await tx.insertMany(
        BulkJobRowSchema,
        rows.slice(i, i + LOOKUP_BATCH).map((row) => ({
          job: job.id,
          line: row.line,
          endpointId: row.endpointId,
          action: row.action,
          iccid: row.iccid,
          simId: row.simId,
          outcome: null,
          message: null,
        })),
      );
    }
    // The rows the preview refused, kept for the results CSV.
    for (let i = 0; i < problems.length; i += LOOKUP_BATCH) {
      await tx.insertMany(
        BulkJobProblemSchema,
        problems.slice(i, i + LOOKUP_BATCH).map((problem) => ({
          job: job.id,
          line: problem.line,
          endpointId: (problem.values?.endpointId ?? '').slice(0, 40),
          action: (problem.values?.action ?? '').slice(0, 40),
          iccid: (problem.values?.iccid ?? '').slice(0, 40),
          reason: problem.reason.slice(0, 500),
        })),
      );
    }
    return job;
  });
}

/** One of the enterprise's jobs; another enterprise's is not found. */
export async function findBulkJob(em: EntityManager, actor: Actor, id: number): Promise<BulkJob> {
  const job = await em.findOne(BulkJobSchema, { id, enterprise: actor.enterpriseId });
  if (!job) throw new NotFoundError('job');
  return job;
}

/** The enterprise's jobs, newest first, a page of `limit` older than job `before` (or the newest); `older`: the next page's `before`. */
export async function listBulkJobs(
  em: EntityManager,
  actor: Actor,
  before: number | null = null,
  limit = 50,
): Promise<{ jobs: BulkJob[]; older: number | null }> {
  const where = before ? { enterprise: actor.enterpriseId, id: { $lt: before } } : { enterprise: actor.enterpriseId };
  // One more than a page: whether there are older jobs, without a count.
  const rows = await em.find(BulkJobSchema, where, { orderBy: { id: 'desc' }, limit: limit + 1 });
  const jobs = rows.slice(0, limit);
  return { jobs, older: rows.length > limit ? jobs[jobs.length - 1].id : null };
}

/** Queues a draft (Apply N changes → Yes); applying it again changes nothing. */
export async function applyBulkJob(em: EntityManager, actor: Actor, id: number): Promise<BulkJob> {
  if (actor.role !== 'admin') throw new ForbiddenError();
  const job = await findBulkJob(em, actor, id);
  if (job.state === 'done') {
    throw new InvalidStateError(
      `This bulk change has already finished (${job.done.toLocaleString('en')} done, ${job.failed.toLocaleString('en')} failed); there is nothing to apply.`,
    );
  }
  if (job.state === 'cancelled') {
    throw new InvalidStateError('This bulk change was cancelled; upload the file again to make these changes.');
  }
  if (job.state === 'draft') {
    job.state = 'queued';
    await em.flush();
  }
  return job;
}

/** The first rows of a job (the preview's "first rows that will be done"). */
export function firstBulkRows(em: EntityManager, jobId: number, limit = 20) {
  return em.find(BulkJobRowSchema, { job: jobId }, { orderBy: { line: 'asc' }, limit, disableIdentityMap: true });
}

/**
 * Asks a running or queued job to stop after the batch under way (a draft is dropped at once). A job that has
 * ended already is refused with how it ended, and nothing changes.
 */
export async function cancelBulkJob(em: EntityManager, actor: Actor, id: number): Promise<BulkJob> {
  if (actor.role !== 'admin') throw new ForbiddenError();
  const job = await findBulkJob(em, actor, id);
  if (job.state === 'done') {
    throw new InvalidStateError(
      `This bulk change has already finished (${job.done.toLocaleString('en')} done, ${job.failed.toLocaleString('en')} failed); there is nothing to cancel.`,
    );
  }
  if (job.state === 'cancelled')
    throw new InvalidStateError('This bulk change has already been cancelled; there is nothing more to cancel.');
  if (job.state === 'draft') {
    job.state = 'cancelled';
    job.finishedAt = new Date();
    await em.flush();
  } else if (job.state === 'queued' || job.state === 'running') {
    job.cancelRequested = true;
    await em.flush();
  }
  return job;
}

/**
 * Every row of the job's file with its outcome, as a CSV file (spreadsheet-safe), streamed a batch at a time:
 * the rows of the job (done, failed, or not done) and the rows the preview refused ("cannot be done", with the
 * reason), merged in line order.
 */
export async function* bulkResultsCsv(em: EntityManager, actor: Actor, jobId: number): AsyncGenerator<string> {
  await findBulkJob(em, actor, jobId);
  yield csvLine(['line', 'endpoint_id', 'action', 'iccid', 'outcome', 'message']);
  const rows = inLineOrder(async (after, limit) =>
    (
      await em.find(BulkJobRowSchema, { job: jobId, line: { $gt: after } }, { orderBy: { line: 'asc' }, limit, disableIdentityMap: true })
    ).map((row) => ({
      line: row.line,
      csv: csvLine([row.line, row.endpointId, row.action, row.iccid, row.outcome ?? 'not done', row.message]),
    })),
  );
  const refused = inLineOrder(async (after, limit) =>
    (
      await em.find(
        BulkJobProblemSchema,
        { job: jobId, line: { $gt: after } },
        { orderBy: { line: 'asc' }, limit, disableIdentityMap: true },
      )
    ).map((p) => ({ line: p.line, csv: csvLine([p.line, p.endpointId, p.action, p.iccid, 'cannot be done', p.reason]) })),
  );
  // The two in line order (a merge of two sorted streams), a thousand lines a chunk.
  let a = await rows.next();
  let b = await refused.next();
  let chunk: string[] = [];
  while (!a.done || !b.done) {
    if (!a.done && (b.done || a.value.line < b.value.line)) {
      chunk.push(a.value.csv);
      a = await rows.next();
    } else if (!b.done) {
      chunk.push(b.value.csv);
      b = await refused.next();
    }
    if (chunk.length === 1000) {
      yield chunk.join('');
      chunk = [];
    }
  }
  if (chunk.length) yield chunk.join('');
}

/** The items `read` gives a page at a time after a line, one by one in line order. */
async function* inLineOrder<T extends { line: number }>(read: (after: number, limit: number) => Promise<T[]>): AsyncGenerator<T> {
  const limit = 1000;
  let after = 0;
  for (;;) {
    const page = await read(after, limit);
    yield* page;
    if (page.length < limit) return;
    after = page[page.length - 1].line;
  }
}

export interface BulkRunnerOptions {
  pollMs?: number;
  leaseMs?: number;
  /** Transactions of a round run at once, each on its own connection (default BULK_CONCURRENCY). */
  concurrency?: number;
  /** Rows per transaction (default BULK_BATCH_ROWS); 1: each row through its single verb, in its own transaction. */
  batchRows?: number;
  onError?: (error: unknown) => void;
}

/**
 * How long a job stays with the instance that took it for a round without news from it (a round takes well
 * under a second), so an instance killed mid-round hands its job on within this time.
 */
const LEASE_MS = 15_000;

/** Transactions of a round run at once (see the BulkRunner's comment for the measurement behind it). */
export const BULK_CONCURRENCY = 1;

/** Rows per transaction (see the BulkRunner's comment). */
export const BULK_BATCH_ROWS = 100;

/**
 * Runs queued jobs in the background, a round of one job at a time per instance, each job on one instance at a
 * time; the jobs of several enterprises take turns, a round each (runOne).
 *
 * Throughput: a round takes the next rows without an outcome, does them in batches of BULK_BATCH_ROWS rows — each
 * batch one transaction through changeMany (lifecycle.ts), BULK_CONCURRENCY batches at once, each on its own
 * connection of the app's pool; a swap through swapSim alone — then writes the round's outcomes and counts and
 * lets go of the lease in one transaction. The rows of one job never contend with each other: the preview refuses the
 * same endpoint or the same SIM twice in a file and a SIM that is not Ready to Activate (and a batch that meets
 * one anyway refuses the second as the verbs would). Measured at 1,000,000 SIMs on the 2-core machine shared with
 * other work (load 7–10): bench/bulk-rate.ts, 4,000-row link job and the de-link job undoing it, two rounds
 * interleaved — one row a transaction (the single verbs), two at once: 121–144 / 128–306 rows/s (link / de-link),
 * Node CPU 1.9–2.5 ms a row; 50 rows a transaction: 1,086–1,307 / 903–1,413; 100 rows (two batches at once):
 * 1,754–1,836 / 1,719–1,850, Node CPU 0.24–0.38 ms a row. In the app (npm run bench -- --only bulk, 10,000 rows,
 * pages probed meanwhile): one row a transaction, three at once, 104 / 129 rows/s; 100 rows, one batch at a time,
 * 731–1,112 / 667–826 rows/s (two at once: 779–1,397 / 884–1,607). One batch at a time is somewhat slower than
 * two, well above the 500 rows/s wanted, and leaves the second core and nine of the pool's ten connections to the
 * pages; a batch of 100 holds its rows' locks for tens of milliseconds.
 */
export class BulkRunner extends PollingWorker {
  readonly #orm: MikroORM;
  readonly #leaseMs: number;
  readonly #concurrency: number;
  readonly #batchRows: number;

  constructor(orm: MikroORM, options: BulkRunnerOptions = {}) {
    super({ idleMs: options.pollMs ?? 1000 }, options.onError);
    this.#orm = orm;
    this.#leaseMs = options.leaseMs ?? LEASE_MS;
    this.#concurrency = Math.max(1, options.concurrency ?? BULK_CONCURRENCY);
    this.#batchRows = Math.max(1, options.batchRows ?? BULK_BATCH_ROWS);
  }

  /** Runs one job; the next round starts at once when there was one. After stop(), the job under way stops after its batch. */
  protected async round(): Promise<RoundResult> {
    return (await this.runOne()) ? 'more' : 'none';
  }

  /**
   * Takes one job whose lease is free — the job of the enterprise served least recently — and runs one round
   * of its rows, then lets go of it (or ends it), so one enterprise's huge job never starves another's: the
   * next claim, here or on another instance, goes round-robin across the enterprises with work waiting.
   */
  async runOne(): Promise<boolean> {
    const claimed = await this.#claim();
    if (!claimed) return false;
    const lease = claimed.lease;
    const em = this.#orm.em.fork();
    const actor = await findActor(em, claimed.createdBy);
    const job = await em.findOneOrFail(BulkJobSchema, claimed.id);
    if (job.leaseUntil?.getTime() !== lease.getTime()) return true; // another instance holds it now
    if (job.cancelRequested) return this.#finish(job.id, lease, 'cancelled', actor);
    if (this.stopping) {
      await this.#release(job.id, lease);
      return true;
    }
    const limit = Math.max(RUN_BATCH, this.#batchRows * this.#concurrency);
    const rows = await em.find(BulkJobRowSchema, { job: job.id, outcome: null }, { orderBy: { line: 'asc' }, limit });
    if (!rows.length) return this.#finish(job.id, lease, 'done', actor);
    const batches = inBatches(rows, this.#batchRows);
    const results = (
      await inPool(batches, this.#concurrency, (batch) =>
        !actor
          ? Promise.resolve(batch.map(() => ({ ok: false, message: 'The user who started this job no longer exists' })))
          : this.#batchRows === 1 || !isBatchable(batch[0])
            ? applyRow(this.#orm.em.fork(), actor, job.id, batch[0]).then((result) => [result])
            : applyBatch(this.#orm.em.fork(), actor, job.id, batch),
      )
    ).flat();
    let done = 0;
    let failed = 0;
    // The results in the batches' order (a swap's row may come before the batch of rows around it).
    batches.flat().forEach((row, i) => {
      const result = results[i];
      row.outcome = result.ok ? 'done' : 'failed';
      row.message = result.message.slice(0, 500);
      if (result.ok) done++;
      else failed++;
    });
    // The rows' outcomes, the counts and the lease let go in one transaction — only while this runner still
    // holds the lease it took (compare and set): an instance that lost it writes nothing more and stops.
    const held = await em
      .transactional(async (tx) => {
        const released = await tx.nativeUpdate(
          BulkJobSchema,
          { id: job.id, leaseUntil: lease },
          { leaseUntil: null, done: raw(`done + ${done}`), failed: raw(`failed + ${failed}`), updatedAt: new Date() },
        );
        if (!released) throw new LeaseLost();
      })
      .then(
        () => true,
        (error: unknown) => {
          if (error instanceof LeaseLost) return false;
          throw error;
        },
      );
    // Fewer rows than asked for: none is left without an outcome, so the job ends now (if no one took it meanwhile).
    if (held && rows.length < limit) {
      const again = await this.#claim(job.id);
      if (again) return this.#finish(job.id, again.lease, 'done', actor);
    }
    return true;
  }

  /** Lets go of a job without ending it (this runner is stopping): any runner may take it up. */
  async #release(jobId: number, lease: Date) {
    await this.#orm.em.fork().nativeUpdate(BulkJobSchema, { id: jobId, leaseUntil: lease }, { leaseUntil: null, updatedAt: new Date() });
  }

  /**
   * Takes a queued or running job whose lease is free (or `onlyId`): of the enterprise whose jobs were served
   * least recently (never first), that enterprise's oldest; SKIP LOCKED, so runners never wait on each other.
   */
  async #claim(onlyId?: number): Promise<{ id: number; createdBy: number; lease: Date } | null> {
    return this.#orm.em.fork().transactional(async (tx) => {
      const due = tx
        .createQueryBuilder(BulkJobSchema, 'j')
        .select('j.id')
        .where({
          state: { $in: ['queued', 'running'] },
          $or: [{ leaseUntil: null }, { leaseUntil: { $lt: raw('now()') } }],
          ...(onlyId ? { id: onlyId } : {}),
        })
        .limit(1)
        .getKnexQuery()
        // The enterprise's last service: a correlated max over its jobs (bulk_job_enterprise_idx), which the
        // query builder's orderBy does not take.
        .orderByRaw('(select max(s.served_at) from bulk_job s where s.enterprise_id = j.enterprise_id) asc nulls first, j.id asc')
        .forUpdate('j')
        .skipLocked();
      const [candidate] = await runStatement<{ id: number }[]>(tx, due);
      if (!candidate) return null;
      const job = await tx.findOneOrFail(BulkJobSchema, candidate.id);
      job.state = 'running';
      job.startedAt ??= new Date();
      job.servedAt = new Date();
      job.leaseUntil = new Date(Date.now() + this.#leaseMs);
      return { id: job.id, createdBy: job.createdBy, lease: job.leaseUntil };
    });
  }

  /** Ends the job (done or cancelled) with its bulk.completed event — if this runner still holds its lease. */
  async #finish(jobId: number, lease: Date, state: 'done' | 'cancelled', actor: Actor | null): Promise<boolean> {
    await this.#orm.em.fork().transactional(async (tx) => {
      const ended = await tx.nativeUpdate(
        BulkJobSchema,
        { id: jobId, leaseUntil: lease },
        { state, finishedAt: new Date(), leaseUntil: null, updatedAt: new Date() },
      );
      if (!ended) return;
      const job = await tx.findOneOrFail(BulkJobSchema, jobId);
      if (actor)
        await recordEvent(tx, { actor, source: 'bulk', requestId: `bulk-${jobId}` }, 'bulk.completed', {
          count: job.done,
          problemCount: job.failed,
          bulkJob: { id: jobId, state },
        });
    });
    return true;
  }
}

/** Thrown inside the batch's transaction when another instance took the job's lease: nothing is written. */
class LeaseLost extends Error {}

/**
 * `work` on every item, at most `size` at a time; the results in the items' order. Every item's work is
 * awaited before an error is thrown (no transaction is left running behind the caller's back).
 */
async function inPool<T, R>(items: T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const lane = async () => {
    while (next < items.length && !failure) {
      const i = next++;
      try {
        results[i] = await work(items[i]);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, lane));
  if (failure) throw (failure as { error: unknown }).error;
  return results;
}

/** The one-time key of a job's row: the same on every run of the job, never another row's. */
export const bulkRowKey = (jobId: number, line: number) => `bulk-${String(jobId).padStart(10, '0')}-${String(line).padStart(9, '0')}`;

/** One row through its lifecycle verb, with the row's one-time key: done, or failed with the reason. */
async function applyRow(
  em: EntityManager,
  actor: Actor,
  jobId: number,
  row: { line: number; endpointId: number; action: BulkAction; simId?: number | null },
): Promise<{ ok: boolean; message: string }> {
  const ctx: OperationContext = {
    actor,
    source: 'bulk',
    requestId: `bulk-${jobId}`,
    key: bulkRowKey(jobId, row.line),
  };
  try {
    const outcome = await run(em, ctx, row);
    return { ok: true, message: outcome.message };
  } catch (error) {
    if (error instanceof DomainError) return { ok: false, message: error.message };
    throw error;
  }
}

type JobRow = { line: number; endpointId: number; action: BulkAction; simId?: number | null };

/** Whether the row's verb has a batch form (changeMany); a swap has not. */
const isBatchable = (row: JobRow): row is JobRow & { action: BatchItem['operation'] } => row.action !== 'swap';

/**
 * The rows in transactions of at most `size` rows each, in file order: the rows changeMany can do together in
 * batches of `size`, each swap alone (a batch of one row is run by its single verb).
 */
function inBatches<T extends JobRow>(rows: T[], size: number): T[][] {
  const batches: T[][] = [];
  let batch: T[] = [];
  for (const row of rows) {
    if (!isBatchable(row) || size === 1) {
      batches.push([row]);
      continue;
    }
    batch.push(row);
    if (batch.length === size) {
      batches.push(batch);
      batch = [];
    }
  }
  if (batch.length) batches.push(batch);
  return batches;
}

/** Rows through the batch form of their verbs (changeMany), each with its one-time key: each done, or failed with its reason. */
async function applyBatch(em: EntityManager, actor: Actor, jobId: number, rows: JobRow[]): Promise<{ ok: boolean; message: string }[]> {
  const items = rows
    .filter(isBatchable)
    .map((row): BatchItem => ({ operation: row.action, endpointId: row.endpointId, simId: row.simId, key: bulkRowKey(jobId, row.line) }));
  let results;
  try {
    results = await changeMany(em, { actor, source: 'bulk', requestId: `bulk-${jobId}` }, items);
  } catch (error) {
    // Refused as a whole (the user is no longer an admin): every row fails with the reason, as applyRow's would.
    if (error instanceof DomainError) return rows.map(() => ({ ok: false, message: error.message }));
    throw error;
  }
  return results.map((result) =>
    result.ok ? { ok: true, message: result.outcome.message } : { ok: false, message: result.error.message },
  );
}

function run(em: EntityManager, ctx: OperationContext, row: { endpointId: number; action: BulkAction; simId?: number | null }) {
  switch (row.action) {
    case 'link':
      return linkSim(em, ctx, row.endpointId, row.simId!);
    case 'swap':
      return swapSim(em, ctx, row.endpointId, row.simId!);
    case 'delink':
      return delinkSim(em, ctx, row.endpointId);
    case 'activate':
      return activateEndpoint(em, ctx, row.endpointId);
    case 'suspend':
      return suspendEndpoint(em, ctx, row.endpointId);
    case 'resume':
      return resumeEndpoint(em, ctx, row.endpointId);
  }
}
