// Import SIMs from a CSV file, all or nothing (SPEC.md §2 "SIMs", §1 "Import SIMs").
//
// The file is read as a stream (csv-parse), never as one string: the header line decides the delimiter
// (comma or semicolon), then every row is validated with the identifier rules and checked for duplicates
// inside the file. What remains in memory is the valid rows' identifiers (bounded by the row limit).
// Their ICCIDs, IMSIs and EIDs are then looked up in the database — in every enterprise, since the
// identifiers are globally unique — in batches. One problem anywhere → nothing is written and a report
// names each bad line, field and reason. Otherwise every SIM is inserted Ready to Activate in one
// transaction, in multi-row batches, with one `sims.imported` event; the unique constraints stay the
// backstop against a concurrent import of the same SIMs.
//
// Columns: `iccid` and `imsi` are required; `eid` and `msisdn` may be left out or empty. Header names
// are trimmed and case-insensitive, in any order. A column with another name is refused rather than
// ignored: a misspelt "e-id" would otherwise drop every EID of the file without a word, and "loses
// nothing" is the promise of this import. A column with an empty name (a trailing delimiter, as some
// spreadsheets write) is ignored as long as its cells are empty.
import { Readable, pipeline } from 'node:stream';
import { parse, type CsvError } from 'csv-parse';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import type { Actor } from './accounts.js';
import { ConflictError, DomainError, ForbiddenError } from './errors.js';
import { checkEid, checkIccid, checkImsi, checkMsisdn, type Checked } from './identifiers.js';

export interface ImportLimits {
  /** Largest file accepted, in bytes. */
  maxBytes: number;
  /** Most SIMs (data rows) in one file. */
  maxRows: number;
  /** How many problems the report keeps in full (the rest are counted). */
  reportSize: number;
}

export const IMPORT_LIMITS: ImportLimits = { maxBytes: 50 * 1024 * 1024, maxRows: 500_000, reportSize: 100 };

/** Rows per database round trip, for the duplicate look-up and for the insert. */
const BATCH = 10_000;
/** The header line must end within this many bytes. */
const MAX_HEADER_BYTES = 64 * 1024;
/** A single record larger than this is not a SIM (e.g. an unclosed quote swallowing the file). */
const MAX_RECORD_BYTES = 64 * 1024;

export const IMPORT_COLUMNS = ['iccid', 'imsi', 'eid', 'msisdn'] as const;
type Column = (typeof IMPORT_COLUMNS)[number];
const REQUIRED: Column[] = ['iccid', 'imsi'];
const FIELD_LABEL: Record<Column, string> = { iccid: 'ICCID', imsi: 'IMSI', eid: 'EID', msisdn: 'MSISDN' };

/** Media types a browser or tool may give a CSV file (Windows with Excel says vnd.ms-excel). */
const CSV_TYPES = new Set(['', 'text/csv', 'text/plain', 'text/x-csv', 'text/comma-separated-values', 'application/csv',
  'application/x-csv', 'application/vnd.ms-excel', 'application/octet-stream']);

export interface ImportContext {
  actor: Actor;
  requestId?: string;
}

export interface ImportFile {
  /** The file's bytes, as they arrive. */
  stream: AsyncIterable<Buffer | string>;
  filename?: string;
  /** The media type the client gave the file. */
  mimetype?: string;
  /** True when the transport cut the file short (e.g. the upload's own size limit). */
  truncated?: () => boolean;
}

export interface ImportProblem {
  /** The line in the file (the header is line 1). */
  line: number;
  /** ICCID, IMSI, EID, MSISDN, or "Line" for a problem with the whole line. */
  field: string;
  message: string;
}

export interface ImportReport {
  /** The first problems, in line order (at most `reportSize`). */
  problems: ImportProblem[];
  totalProblems: number;
  /** How many lines have at least one problem. */
  badLines: number;
  /** How many SIM rows the file has (or had when checking stopped). */
  rows: number;
  /** Set when the file could not be read to its end: the line where reading stopped. */
  stoppedAtLine: number | null;
}

export type ImportOutcome = { ok: true; count: number; ms: number } | { ok: false; report: ImportReport };

/** The file as a whole cannot be imported (size, type, header…): nothing was read into the database. */
export class ImportFileError extends DomainError {
  readonly kind = 'invalid';
}

interface ValidRows {
  iccids: string[];
  imsis: string[];
  eids: (string | null)[];
  msisdns: (string | null)[];
}

/** Collects problems: all are counted, the first `size` kept, lines with problems counted once. */
class Problems {
  readonly kept: ImportProblem[] = [];
  total = 0;
  private readonly lines = new Set<number>();
  constructor(private readonly size: number) {}
  add(line: number, field: string, message: string) {
    this.total++;
    this.lines.add(line);
    if (this.kept.length < this.size) this.kept.push({ line, field, message });
  }
  get badLines() {
    return this.lines.size;
  }
  /** Takes in problems found in another pass: the kept ones merged in line order, the others counted. */
  merge(other: Problems) {
    this.total += other.total;
    for (const line of other.lines) this.lines.add(line);
    const merged = [...this.kept, ...other.kept].sort((a, b) => a.line - b.line || fieldOrder(a.field) - fieldOrder(b.field));
    this.kept.splice(0, this.kept.length, ...merged.slice(0, this.size));
  }
}

export async function importSims(
  em: EntityManager,
  ctx: ImportContext,
  file: ImportFile,
  limits: ImportLimits = IMPORT_LIMITS,
): Promise<ImportOutcome> {
  if (ctx.actor.role !== 'admin') throw new ForbiddenError();
  const started = Date.now();
  const type = (file.mimetype ?? '').split(';')[0].trim().toLowerCase();
  if (!CSV_TYPES.has(type) && !type.startsWith('text/')) {
    throw new ImportFileError(`The file must be a CSV file (comma-separated values). ${describe(file)} is ${type}. Save it from your spreadsheet as “CSV UTF-8” and import that.`);
  }

  const source = withByteLimit(file.stream, limits.maxBytes);
  const { head, rest } = await readHeaderLine(source);
  checkLooksLikeCsv(head, file);
  const delimiter = headerDelimiter(head);
  let syntaxError: CsvError | null = null;

  const parser = parse({
    bom: true,
    delimiter,
    trim: true,
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_empty_values: true,
    max_record_size: MAX_RECORD_BYTES,
    info: true,
    // A syntax error (a stray or unclosed quote) must not drop the records read before it in the same
    // chunk, as an error of the stream would: note it here, then stop at the first record after it.
    skip_records_with_error: true,
    on_skip: (error) => {
      syntaxError ??= error ?? null;
      return undefined;
    },
  });
  // An error of the source (the size limit) destroys the parser with it, so the loop below sees it; the
  // loop ending early destroys the source, which stops reading the upload.
  pipeline(Readable.from(replay(head, rest)), parser, () => {});

  const problems = new Problems(limits.reportSize);
  const valid: ValidRows = { iccids: [], imsis: [], eids: [], msisdns: [] };
  /** The line of each identifier seen so far: duplicates inside the file, and lines for database hits. */
  const seen = { iccid: new Map<string, number>(), imsi: new Map<string, number>(), eid: new Map<string, number>() };
  let columns: { index: Map<Column, number>; ignored: number[]; width: number } | null = null;
  let rows = 0;
  let stoppedAtLine: number | null = null;

  let lastLine = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = info.lines;
      // What the parser makes of the file after a syntax error is guesswork: stop there.
      if (syntaxError && line > syntaxLine(syntaxError, lastLine)) break;
      lastLine = line;
      if (!columns) {
        columns = readHeader(record);
        continue;
      }
      rows++;
      if (rows > limits.maxRows) {
        throw new ImportFileError(
          `The file has more than ${limits.maxRows.toLocaleString('en')} SIMs. Split it into files of at most ${limits.maxRows.toLocaleString('en')} rows and import them one by one.`,
        );
      }
      checkRow(record, line, columns, problems, seen, valid);
    }
  } finally {
    parser.destroy();
  }
  if (syntaxError) {
    stoppedAtLine = syntaxLine(syntaxError, lastLine);
    problems.add(stoppedAtLine, 'Line', csvProblem(syntaxError));
  }
  if (file.truncated?.()) throw tooLarge(limits);
  if (!columns) {
    throw new ImportFileError(
      problems.total
        ? `The header (line 1) cannot be read: ${problems.kept[0].message}.`
        : `${describe(file)} is empty. Choose the CSV file with your SIMs: a header line iccid,imsi,eid,msisdn and one SIM a line.`,
    );
  }
  if (rows === 0 && problems.total === 0) {
    throw new ImportFileError(`${describe(file)} has a header but no SIMs. Add one SIM a line below the header.`);
  }

  await checkAgainstDatabase(em, valid, seen, limits.reportSize, problems);

  if (problems.total > 0) {
    return {
      ok: false,
      report: { problems: problems.kept, totalProblems: problems.total, badLines: problems.badLines, rows, stoppedAtLine },
    };
  }

  const count = await insertAll(em, ctx, valid);
  return { ok: true, count, ms: Date.now() - started };
}

function describe(file: ImportFile): string {
  return file.filename ? `“${file.filename}”` : 'The file';
}

function tooLarge(limits: Pick<ImportLimits, 'maxBytes'>) {
  const mb = limits.maxBytes / (1024 * 1024);
  const size = mb >= 1 ? `${Math.round(mb)} MB` : `${Math.ceil(limits.maxBytes / 1024)} KB`;
  return new ImportFileError(`The file is larger than ${size}. Split it into smaller files and import them one by one.`);
}

/** Passes the chunks on as Buffers, refusing the file as soon as it grows beyond the limit. */
async function* withByteLimit(stream: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<Buffer> {
  let bytes = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    bytes += buffer.length;
    if (bytes > maxBytes) throw tooLarge({ maxBytes });
    yield buffer;
  }
}

/** Reads chunks until the first line ends (or the file does): the header decides the delimiter. */
async function readHeaderLine(source: AsyncGenerator<Buffer>): Promise<{ head: Buffer; rest: AsyncGenerator<Buffer> }> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < MAX_HEADER_BYTES) {
    const { value, done } = await source.next();
    if (done) break;
    chunks.push(value);
    length += value.length;
    if (value.includes(0x0a) || value.includes(0x0d)) break;
  }
  return { head: Buffer.concat(chunks), rest: source };
}

async function* replay(head: Buffer, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  try {
    if (head.length) yield head;
    yield* rest;
  } finally {
    // Stop reading the upload when the parser stops early (a limit, a file error).
    await rest.return(undefined);
  }
}

/** Refuses what is plainly not a CSV text file, with words a person can act on. */
function checkLooksLikeCsv(head: Buffer, file: ImportFile) {
  const name = describe(file);
  if (head.length === 0 || head.toString('utf8').replace(/^\ufeff/, '').trim() === '') {
    throw new ImportFileError(`${name} is empty. Choose the CSV file with your SIMs: a header line iccid,imsi,eid,msisdn and one SIM a line.`);
  }
  if (head.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04])) || head.subarray(0, 4).equals(Buffer.from([0xd0, 0xcf, 0x11, 0xe0]))) {
    throw new ImportFileError(`${name} is a spreadsheet workbook, not a CSV file. Save it from your spreadsheet as “CSV UTF-8” and import that.`);
  }
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    throw new ImportFileError(`${name} is saved as UTF-16. Save it as “CSV UTF-8” and import that.`);
  }
  if (head.includes(0x00)) {
    throw new ImportFileError(`${name} is not a text file. Choose a CSV file (comma-separated values).`);
  }
}

/** Comma or semicolon, whichever separates the header's names (quoted names are skipped over). */
function headerDelimiter(head: Buffer): ',' | ';' {
  const text = head.toString('utf8');
  const end = text.search(/[\r\n]/);
  const line = end === -1 ? text : text.slice(0, end);
  let commas = 0;
  let semicolons = 0;
  let quoted = false;
  for (const c of line) {
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === ',') commas++;
    else if (!quoted && c === ';') semicolons++;
  }
  return semicolons > commas ? ';' : ',';
}

function readHeader(record: string[]): { index: Map<Column, number>; ignored: number[]; width: number } {
  const index = new Map<Column, number>();
  const ignored: number[] = [];
  const unknown: string[] = [];
  record.forEach((raw, i) => {
    const name = raw.trim().toLowerCase();
    if (name === '') ignored.push(i);
    else if ((IMPORT_COLUMNS as readonly string[]).includes(name)) {
      if (index.has(name as Column)) throw new ImportFileError(`The column “${name}” appears twice in the header (line 1). Keep one.`);
      index.set(name as Column, i);
    } else unknown.push(raw.trim());
  });
  const missing = REQUIRED.filter((c) => !index.has(c));
  if (missing.length) {
    const looksLikeData = record.some((v) => /^\d{5,}$/.test(normaliseCell(v)));
    throw new ImportFileError(
      looksLikeData
        ? 'The first line must be the header: iccid,imsi,eid,msisdn. Add it above the SIMs.'
        : `The header (line 1) is missing the column${missing.length > 1 ? 's' : ''} ${missing.join(' and ')}. The columns are iccid, imsi, eid, msisdn (eid and msisdn may be empty).`,
    );
  }
  if (unknown.length) {
    throw new ImportFileError(
      `The header (line 1) has column${unknown.length > 1 ? 's' : ''} SIM Link does not know: ${unknown.slice(0, 5).map((n) => `“${n.slice(0, 40)}”`).join(', ')}. ` +
        'Use only iccid, imsi, eid and msisdn; remove the other columns so that nothing is silently left out.',
    );
  }
  return { index, ignored, width: record.length };
}

function normaliseCell(value: string): string {
  return value.replace(/[\s-]/g, '');
}

function checkRow(
  record: string[],
  line: number,
  columns: { index: Map<Column, number>; ignored: number[]; width: number },
  problems: Problems,
  seen: Record<'iccid' | 'imsi' | 'eid', Map<string, number>>,
  valid: ValidRows,
) {
  if (record.length !== columns.width) {
    problems.add(line, 'Line', `This line has ${record.length} value${record.length === 1 ? '' : 's'}; the header has ${columns.width} columns`);
    return;
  }
  if (columns.ignored.some((i) => record[i] !== '')) {
    problems.add(line, 'Line', 'This line has a value in a column without a name in the header');
    return;
  }
  const cell = (c: Column) => {
    const i = columns.index.get(c);
    return i === undefined ? '' : record[i];
  };
  let ok = true;
  const check = (column: Column, checker: (raw: string) => Checked, optional: boolean): string | null => {
    const raw = cell(column);
    if (optional && normaliseCell(raw) === '') return null;
    const result = checker(raw);
    if (!result.ok) {
      problems.add(line, FIELD_LABEL[column], result.message);
      ok = false;
      return null;
    }
    if (column !== 'msisdn') {
      const map = seen[column];
      const first = map.get(result.value);
      if (first !== undefined) {
        problems.add(line, FIELD_LABEL[column], `${FIELD_LABEL[column]} ${result.value} is also on line ${first}`);
        ok = false;
      } else {
        map.set(result.value, line);
      }
    }
    return result.value;
  };
  const iccid = check('iccid', checkIccid, false);
  const imsi = check('imsi', checkImsi, false);
  const eid = check('eid', checkEid, true);
  const msisdn = check('msisdn', checkMsisdn, true);
  if (!ok) return;
  valid.iccids.push(iccid!);
  valid.imsis.push(imsi!);
  valid.eids.push(eid);
  valid.msisdns.push(msisdn);
}

/** The line a syntax error belongs to. An unclosed quote is only noticed at the end of the file: it
 * opened on the line after the last record read. */
function syntaxLine(error: CsvError, lastLine: number): number {
  const at = (error as CsvError & { lines?: number }).lines ?? lastLine + 1;
  return error.code === 'CSV_QUOTE_NOT_CLOSED' ? Math.min(at, lastLine + 1) : at;
}

function csvProblem(error: CsvError): string {
  switch (error.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'A quoted value that starts on this line is not closed (a " is missing); the file could not be read past it';
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return 'A quoted value has text after its closing quote; the file could not be read past this line';
    case 'INVALID_OPENING_QUOTE':
      return 'A value has a quote (") inside it; the file could not be read past this line';
    case 'CSV_MAX_RECORD_SIZE':
      return 'This line is far too long for a SIM (is a quote missing?); the file could not be read past it';
    default:
      return `The file could not be read past this line (${error.message.slice(0, 120)})`;
  }
}

/** A PostgreSQL array literal of digit strings (digits need no quoting); null → NULL. */
function arrayLiteral(values: (string | null)[]): string {
  return `{${values.map((v) => (v === null ? 'NULL' : v)).join(',')}}`;
}

/**
 * Finds the valid rows' identifiers that exist already, in any enterprise, in batches of `= any(…)`
 * (each an index look-up per value on the unique indexes). The report keeps the first problems of
 * both passes merged in line order.
 */
async function checkAgainstDatabase(
  em: EntityManager,
  valid: ValidRows,
  seen: Record<'iccid' | 'imsi' | 'eid', Map<string, number>>,
  reportSize: number,
  problems: Problems,
) {
  const found = new Problems(reportSize);
  for (let start = 0; start < valid.iccids.length; start += BATCH) {
    const end = start + BATCH;
    const iccids = valid.iccids.slice(start, end);
    const imsis = valid.imsis.slice(start, end);
    const eids = valid.eids.slice(start, end).filter((e): e is string => e !== null);
    const existing = await em.execute<{ iccid: string; imsi: string; eid: string | null }[]>(
      `select iccid, imsi, eid from sim
       where iccid = any(?::text[]) or imsi = any(?::text[]) or eid = any(?::text[])`,
      [arrayLiteral(iccids), arrayLiteral(imsis), arrayLiteral(eids)],
    );
    const hits: ImportProblem[] = [];
    for (const row of existing) {
      for (const column of ['iccid', 'imsi', 'eid'] as const) {
        const value = row[column];
        const line = value === null ? undefined : seen[column].get(value);
        if (line !== undefined) hits.push({ line, field: FIELD_LABEL[column], message: `${FIELD_LABEL[column]} ${value} is already in SIM Link` });
      }
    }
    hits.sort((a, b) => a.line - b.line || fieldOrder(a.field) - fieldOrder(b.field));
    for (const hit of hits) found.add(hit.line, hit.field, hit.message);
  }
  problems.merge(found);
}

const FIELD_ORDER = ['Line', 'ICCID', 'IMSI', 'EID', 'MSISDN'];
const fieldOrder = (field: string) => FIELD_ORDER.indexOf(field);

async function insertAll(em: EntityManager, ctx: ImportContext, valid: ValidRows): Promise<number> {
  try {
    return await em.transactional(async (tx) => {
      for (let start = 0; start < valid.iccids.length; start += BATCH) {
        const end = start + BATCH;
        await tx.execute(
          `insert into sim (enterprise_id, iccid, imsi, eid, msisdn)
           select ?, * from unnest(?::text[], ?::text[], ?::text[], ?::text[])`,
          [
            ctx.actor.enterpriseId,
            arrayLiteral(valid.iccids.slice(start, end)),
            arrayLiteral(valid.imsis.slice(start, end)),
            arrayLiteral(valid.eids.slice(start, end)),
            arrayLiteral(valid.msisdns.slice(start, end)),
          ],
        );
      }
      await tx.execute(
        `insert into event (enterprise_id, actor_id, actor_name, action, count, request_id)
         values (?, ?, ?, 'sims.imported', ?, ?)`,
        [ctx.actor.enterpriseId, ctx.actor.id, ctx.actor.displayName, valid.iccids.length, ctx.requestId ?? null],
      );
      return valid.iccids.length;
    });
  } catch (error) {
    if (error instanceof UniqueConstraintViolationException) {
      throw new ConflictError(
        'Some of these SIMs were added to SIM Link by someone else while this file was being imported. Nothing was imported. Import the file again to see which lines are affected.',
      );
    }
    throw error;
  }
}

/** The report as a CSV file (line, field, problem), with a last line counting what was left out. */
export function reportCsv(report: ImportReport): string {
  const cell = (value: string | number) => {
    let text = String(value);
    // A spreadsheet must never read a cell as a formula.
    if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",;\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = ['line,field,problem', ...report.problems.map((p) => [p.line, p.field, p.message].map(cell).join(','))];
  const left = report.totalProblems - report.problems.length;
  if (left > 0) lines.push(['', '', cell(`${left.toLocaleString('en')} more problem${left === 1 ? '' : 's'} not listed; fix these and import again to see them`)].join(','));
  if (report.stoppedAtLine !== null) lines.push(['', '', cell(`The file could not be read past line ${report.stoppedAtLine}; lines after it were not checked`)].join(','));
  return `${lines.join('\r\n')}\r\n`;
}
