// The CSV import (README, "Importing SIMs"): every row validated, duplicates found inside the file and in the
// whole database, all or nothing, the report, the file variants people send, and the limits.
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TestDatabase } from '../helpers/database.js';
import { createEnterprise, readySim, type TestEnterprise } from '../factories/index.js';
import { actorFor, domainTestWorld } from './support.js';
import type { Actor } from '../../src/domain/accounts.js';
import { ConflictError, ForbiddenError } from '../../src/domain/errors.js';
import { openDatabase } from '../../src/db/database.js';
import { eidFor, iccidFor, imsiFor, msisdnFor } from '../../src/db/generate-identifiers.js';
import {
  IMPORT_LIMITS,
  ImportFileError,
  ImportRunningError,
  ImportSlots,
  ImportsBusyError,
  ImportsPausedError,
  importLockKeys,
  importSims,
  reportCsv,
  type ImportFile,
  type ImportLimits,
  type ImportOutcome,
  type ImportReport,
} from '../../src/domain/sim-import.js';

let db: TestDatabase;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Actor;
let viewer: Actor;
const fork = (): EntityManager => db.orm.em.fork();

/** Identifiers of this file's own series, so nothing else in the database repeats them. */
const SERIES = 66;
let serial = 0;
function sim(options: { eid?: boolean; msisdn?: boolean } = {}) {
  serial++;
  return {
    iccid: iccidFor(SERIES, serial),
    imsi: imsiFor(SERIES, serial),
    eid: options.eid === false ? '' : eidFor(SERIES, serial),
    msisdn: options.msisdn === false ? '' : msisdnFor(SERIES, serial),
  };
}
type Row = ReturnType<typeof sim>;
const line = (r: Row, d = ',') => [r.iccid, r.imsi, r.eid, r.msisdn].join(d);
const csv = (rows: Row[], d = ',', eol = '\n') =>
  [['iccid', 'imsi', 'eid', 'msisdn'].join(d), ...rows.map((r) => line(r, d))].join(eol) + eol;

/** A file from text or bytes, delivered in chunks of `chunk` bytes (like an upload). */
function file(content: string | Buffer, options: { chunk?: number; mimetype?: string; filename?: string } = {}): ImportFile {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  const size = options.chunk ?? 64 * 1024;
  return {
    filename: options.filename ?? 'sims.csv',
    mimetype: options.mimetype ?? 'text/csv',
    stream: (async function* () {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    })(),
  };
}

const run = (content: ImportFile, limits?: ImportLimits, actor = admin) =>
  importSims(fork(), { actor, requestId: 'req-import-1' }, content, limits);

function reportOf(outcome: ImportOutcome): ImportReport {
  if (outcome.ok) throw new Error(`expected a report, got ${outcome.count} imported`);
  return outcome.report;
}

async function simCount(): Promise<number> {
  const [{ n }] = await fork().execute<{ n: number }[]>('select count(*)::int as n from sim');
  return n;
}
async function importEvents(): Promise<number> {
  const [{ n }] = await fork().execute<{ n: number }[]>(`select count(*)::int as n from event where action = 'sims.imported'`);
  return n;
}

async function refusedEvents(enterpriseId: number): Promise<number> {
  const [{ n }] = await fork().execute<{ n: number }[]>(
    `select count(*)::int as n from event where enterprise_id = ? and action = 'sims.import_refused'`,
    [enterpriseId],
  );
  return n;
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Waits until `check` holds (polling), or fails after 10 s. */
async function until(check: () => Promise<boolean>) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs an import that must be refused and checks that nothing at all was written. */
async function refused(content: ImportFile, limits?: ImportLimits): Promise<ImportReport> {
  const [sims, events] = [await simCount(), await importEvents()];
  const report = reportOf(await run(content, limits));
  expect(await simCount()).toBe(sims);
  expect(await importEvents()).toBe(events);
  return report;
}

async function refusedFile(content: ImportFile, limits?: ImportLimits): Promise<string> {
  const [sims, events] = [await simCount(), await importEvents()];
  const error = await run(content, limits).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImportFileError);
  expect(await simCount()).toBe(sims);
  expect(await importEvents()).toBe(events);
  return (error as ImportFileError).message;
}

beforeAll(async () => {
  ({ db, acme, globex, admin, viewer } = await domainTestWorld());
});
afterAll(() => db?.close());
// Whatever an import's outcome — imported, refused, failed, given up — it leaves nothing in the staging tables
// (deleted before its transaction commits, or rolled back with it).
afterEach(async () => {
  const [left] = await fork().execute<{ rows: number; problems: number }[]>(
    'select (select count(*) from import_row)::int as rows, (select count(*) from import_problem)::int as problems',
  );
  expect(left).toEqual({ rows: 0, problems: 0 });
});

describe('a valid file', () => {
  it('imports every SIM Ready to Activate into the admin’s enterprise, with one event', async () => {
    const rows = [sim(), sim({ eid: false }), sim({ msisdn: false }), sim({ eid: false, msisdn: false })];
    const before = await simCount();
    const outcome = await run(file(csv(rows)));
    expect(outcome).toMatchObject({ ok: true, count: 4 });
    expect(await simCount()).toBe(before + 4);

    const stored = await fork().execute<Record<string, unknown>[]>(
      'select enterprise_id, iccid, imsi, eid, msisdn, status, endpoint_id from sim where iccid = any(?::text[]) order by iccid',
      [`{${rows.map((r) => r.iccid).join(',')}}`],
    );
    expect(stored).toEqual(
      [...rows]
        .sort((a, b) => a.iccid.localeCompare(b.iccid))
        .map((r) => ({
          enterprise_id: acme.id,
          iccid: r.iccid,
          imsi: r.imsi,
          eid: r.eid || null,
          msisdn: r.msisdn || null,
          status: 'ready',
          endpoint_id: null,
        })),
    );
    const [event] = await fork().execute<Record<string, unknown>[]>(
      `select enterprise_id, actor_id, actor_name, action, count, request_id, endpoint_id, sim_iccid from event
       where action = 'sims.imported' order by id desc limit 1`,
    );
    expect(event).toEqual({
      enterprise_id: acme.id,
      actor_id: admin.id,
      actor_name: admin.displayName,
      action: 'sims.imported',
      count: 4,
      request_id: 'req-import-1',
      endpoint_id: null,
      sim_iccid: null,
    });
  });

  it('the example in the README imports', async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const example = readme.match(/## Importing SIMs[\s\S]*?```csv\n([\s\S]*?)```/);
    expect(example).not.toBeNull();
    expect(await run(file(example![1]))).toMatchObject({ ok: true, count: 2 });
  });

  it('strips the spaces and dashes people type, and a leading + of an MSISDN', async () => {
    const r = sim();
    const spaced = `${r.iccid.slice(0, 4)} ${r.iccid.slice(4, 10)}-${r.iccid.slice(10)},${r.imsi.slice(0, 5)} ${r.imsi.slice(5)},${r.eid},+${r.msisdn}`;
    expect(await run(file(`iccid,imsi,eid,msisdn\n${spaced}\n`))).toMatchObject({ ok: true, count: 1 });
    const [row] = await fork().execute<{ iccid: string; imsi: string; msisdn: string }[]>(
      'select iccid, imsi, msisdn from sim where iccid = ?',
      [r.iccid],
    );
    expect(row).toEqual({ iccid: r.iccid, imsi: r.imsi, msisdn: r.msisdn });
  });
});

describe('what people send: BOM, semicolons, quotes, CRLF, header order and case', () => {
  it('UTF-8 with a BOM, semicolons, quoted fields and CRLF, delivered in small chunks', async () => {
    const rows = [sim(), sim({ eid: false })];
    const text =
      '\ufeff"ICCID";"IMSI";"EID";"MSISDN"\r\n' + rows.map((r) => `"${r.iccid}";"${r.imsi}";"${r.eid}";${r.msisdn}`).join('\r\n') + '\r\n';
    // 3-byte chunks split the BOM and every line in odd places.
    expect(await run(file(text, { chunk: 3 }))).toMatchObject({ ok: true, count: 2 });
  });

  it('columns in any order, names in any case, eid and msisdn left out', async () => {
    const rows = [sim(), sim()];
    const text = `IMSI,Iccid\n${rows.map((r) => `${r.imsi},${r.iccid}`).join('\n')}`; // no newline at the end
    expect(await run(file(text))).toMatchObject({ ok: true, count: 2 });
    const stored = await fork().execute<{ eid: string | null; msisdn: string | null }[]>('select eid, msisdn from sim where iccid = ?', [
      rows[0].iccid,
    ]);
    expect(stored).toEqual([{ eid: null, msisdn: null }]);
  });

  it('quoted values may hold the other delimiter and spaces around them', async () => {
    const r = sim();
    const text = `iccid,imsi,eid,msisdn\r\n "${r.iccid}" ,"${r.imsi}","${r.eid}",""\r\n`;
    expect(await run(file(text))).toMatchObject({ ok: true, count: 1 });
  });

  it('blank lines and lines of empty cells (as spreadsheets write them) are skipped', async () => {
    const rows = [sim(), sim()];
    const text = `iccid;imsi;eid;msisdn\n\n${line(rows[0], ';')}\n;;;\n\n${line(rows[1], ';')}\n\n`;
    expect(await run(file(text))).toMatchObject({ ok: true, count: 2 });
  });

  it('a trailing delimiter (an unnamed empty column) is accepted', async () => {
    const r = sim();
    expect(await run(file(`iccid,imsi,eid,msisdn,\n${line(r)},\n`))).toMatchObject({ ok: true, count: 1 });
  });
});

describe('bad rows: nothing is imported and each is reported with its line, field and reason', () => {
  it('each kind of invalid value', async () => {
    const good = sim();
    const cases: [string, string, string][] = [];
    const add = (text: string, field: string, message: string) => cases.push([text, field, message]);
    const s = () => sim();
    let r = s();
    add(`${r.iccid.slice(0, -1)}${(Number(r.iccid.at(-1)) + 1) % 10},${r.imsi},,`, 'ICCID', 'ICCID check digit is wrong');
    r = s();
    add(`894412345,${r.imsi},,`, 'ICCID', 'ICCID must be 19 or 20 digits');
    r = s();
    add(`9944000000000000000,${r.imsi},,`, 'ICCID', 'ICCID must start with 89');
    r = s();
    add(`8.94E+19,${r.imsi},,`, 'ICCID', 'ICCID "8.94E+19" looks like a number formatted by a spreadsheet; export the column as text');
    r = s();
    add(`,${r.imsi},,`, 'ICCID', 'Enter the ICCID');
    r = s();
    add(`${r.iccid},23415,,`, 'IMSI', 'IMSI must be exactly 15 digits');
    r = s();
    add(`${r.iccid},2341566ABC00001,,`, 'IMSI', 'IMSI must contain only digits');
    r = s();
    add(`${r.iccid},${r.imsi},${r.eid.slice(0, -1)}${(Number(r.eid.at(-1)) + 1) % 10},`, 'EID', 'EID check digits are wrong');
    r = s();
    add(`${r.iccid},${r.imsi},8904903200,`, 'EID', 'EID must be exactly 32 digits');
    r = s();
    add(`${r.iccid},${r.imsi},,12`, 'MSISDN', 'MSISDN must be 5 to 15 digits');
    r = s();
    add(`${r.iccid},${r.imsi},${r.eid}`, 'Line', 'This line has 3 values; the header has 4 columns');
    r = s();
    add(`${r.iccid},${r.imsi},${r.eid},${r.msisdn},extra`, 'Line', 'This line has 5 values; the header has 4 columns');

    const text = `iccid,imsi,eid,msisdn\n${line(good)}\n${cases.map(([t]) => t).join('\n')}\n`;
    const report = await refused(file(text));
    expect(report.problems).toEqual(cases.map(([, field, message], i) => ({ line: i + 3, field, message })));
    expect(report).toMatchObject({ totalProblems: cases.length, badLines: cases.length, rows: cases.length + 1, stoppedAtLine: null });
    // The good row was not imported either.
    expect(await fork().execute('select 1 from sim where iccid = ?', [good.iccid])).toEqual([]);
  });

  it('a line with several problems lists each of them', async () => {
    const report = await refused(file('iccid,imsi,eid,msisdn\n123,456,789,1\n'));
    expect(report.problems.map((p) => p.field)).toEqual(['ICCID', 'IMSI', 'EID', 'MSISDN']);
    expect(report).toMatchObject({ totalProblems: 4, badLines: 1 });
  });

  it('duplicates inside the file name the line of the first', async () => {
    const [a, b, c] = [sim(), sim(), sim()];
    const rows = [a, { ...b, iccid: a.iccid }, { ...c, imsi: a.imsi, eid: a.eid }];
    const report = await refused(file(csv(rows)));
    expect(report.problems).toEqual([
      { line: 3, field: 'ICCID', message: `ICCID ${a.iccid} is also on line 2` },
      { line: 4, field: 'IMSI', message: `IMSI ${a.imsi} is also on line 2` },
      { line: 4, field: 'EID', message: `EID ${a.eid} is also on line 2` },
    ]);
  });

  it('a row whose quoted value spans lines is named by its first line, and the rows after it by theirs (LF and CRLF)', async () => {
    for (const eol of ['\n', '\r\n']) {
      const [a, b, c] = [sim(), sim(), sim()];
      const content = [
        'iccid,imsi,eid,msisdn',
        line(a),
        `${b.iccid},${b.imsi},${b.eid},"44x${eol}77"`,
        `${a.iccid},${c.imsi},${c.eid},${c.msisdn}`,
      ].join(eol);
      const report = await refused(file(content + eol));
      expect(report.problems, JSON.stringify(eol)).toEqual([
        { line: 3, field: 'MSISDN', message: expect.any(String) },
        { line: 5, field: 'ICCID', message: `ICCID ${a.iccid} is also on line 2` },
      ]);
    }
  });

  it('SIMs already in SIM Link — in any enterprise — are duplicates, named without saying whose', async () => {
    const ours = await readySim(fork(), acme);
    const theirs = await readySim(fork(), globex);
    const [a, b, c, d] = [sim(), sim(), sim(), sim()];
    const rows = [a, { ...b, iccid: theirs.iccid }, c, { ...d, imsi: ours.imsi, eid: theirs.eid! }];
    const report = await refused(file(csv(rows)));
    expect(report.problems).toEqual([
      { line: 3, field: 'ICCID', message: `ICCID ${theirs.iccid} is already in SIM Link` },
      { line: 5, field: 'IMSI', message: `IMSI ${ours.imsi} is already in SIM Link` },
      { line: 5, field: 'EID', message: `EID ${theirs.eid} is already in SIM Link` },
    ]);
    expect(report.problems.map((p) => p.message).join(' ')).not.toMatch(/Globex|Acme/);
  });

  it('keeps the first 100 problems in line order, counts all, and the CSV report says how many were left out', async () => {
    const theirs = await readySim(fork(), globex);
    // 150 bad lines; the database duplicate (found in a later pass) sits on line 2 and still comes first.
    const rows = [{ ...sim(), iccid: theirs.iccid }, ...Array.from({ length: 150 }, () => ({ ...sim(), imsi: '1' }))];
    const report = await refused(file(csv(rows)));
    expect(report.totalProblems).toBe(151);
    expect(report.badLines).toBe(151);
    expect(report.problems).toHaveLength(100);
    expect(report.problems[0]).toEqual({ line: 2, field: 'ICCID', message: `ICCID ${theirs.iccid} is already in SIM Link` });
    expect(report.problems.map((p) => p.line)).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));

    const lines = reportCsv(report).trimEnd().split('\r\n');
    expect(lines[0]).toBe('line,field,problem');
    expect(lines[2]).toBe('3,IMSI,IMSI must be exactly 15 digits');
    expect(lines).toHaveLength(102);
    expect(lines[101]).toBe(',,"51 more problems not listed; fix these and import again to see them"');
  });

  it('a CSV that cannot be read (an unclosed quote) reports the line and stops', async () => {
    const [a, b] = [sim(), sim()];
    const text = `iccid,imsi,eid,msisdn\n${line(a)}\n"${b.iccid},${b.imsi},,\n${line(sim())}\n`;
    const report = await refused(file(text));
    expect(report.stoppedAtLine).toBe(3);
    expect(report.rows).toBe(1);
    expect(report.problems).toEqual([
      { line: 3, field: 'Line', message: expect.stringMatching(/^A quoted value that starts on this line is not closed/) },
    ]);
    expect(reportCsv(report)).toMatch(/could not be read past line/);
  });

  it('a quote inside a value is reported at its line', async () => {
    const a = sim();
    const report = await refused(file(`iccid,imsi,eid,msisdn\n${line(sim())}\n${a.iccid},23"415,,\n`));
    expect(report.problems).toEqual([{ line: 3, field: 'Line', message: expect.stringMatching(/quote/) }]);
  });

  it('CSV report cells can never be read as formulas', () => {
    const csvText = reportCsv({
      problems: [{ line: 2, field: 'ICCID', message: '=HYPERLINK("x")' }],
      totalProblems: 1,
      badLines: 1,
      rows: 1,
      stoppedAtLine: null,
    });
    expect(csvText).toBe(`line,field,problem\r\n2,ICCID,"'=HYPERLINK(""x"")"\r\n`);
  });
});

describe('the file as a whole is refused with a clear message', () => {
  it('empty: no bytes, only a BOM, only blank lines', async () => {
    expect(await refusedFile(file(''))).toMatch(/is empty/);
    expect(await refusedFile(file('\ufeff'))).toMatch(/is empty/);
    expect(await refusedFile(file('\n\r\n  \n'))).toMatch(/is empty/);
  });

  it('a header and no SIMs', async () => {
    expect(await refusedFile(file('iccid,imsi,eid,msisdn\r\n\r\n'))).toMatch(/has a header but no SIMs/);
  });

  it('missing header columns', async () => {
    expect(await refusedFile(file('iccid,eid\n89441\n'))).toBe(
      'The header (line 1) is missing the column imsi. The columns are iccid, imsi, eid, msisdn (eid and msisdn may be empty).',
    );
    expect(await refusedFile(file('eid;msisdn\n'))).toMatch(/missing the columns iccid and imsi/);
  });

  it('no header at all: the first line is a SIM', async () => {
    expect(await refusedFile(file(csv([sim()]).split('\n').slice(1).join('\n')))).toBe(
      'The first line must be the header: iccid,imsi,eid,msisdn. Add it above the SIMs.',
    );
  });

  it('unknown columns are refused, not silently dropped', async () => {
    const message = await refusedFile(file(`iccid,imsi,e-id,msisdn,PIN1\n${line(sim())},1234\n`));
    expect(message).toMatch(/columns SIM Link does not know: “e-id”, “PIN1”/);
  });

  it('a column named twice', async () => {
    expect(await refusedFile(file('iccid,imsi,ICCID\n'))).toMatch(/“iccid” appears twice/);
  });

  it('a value in an unnamed column is a bad line', async () => {
    const report = await refused(file(`iccid,imsi,eid,msisdn,\n${line(sim())},oops\n`));
    expect(report.problems).toEqual([
      { line: 2, field: 'Line', message: 'This line has a value in a column without a name in the header' },
    ]);
  });

  it('the wrong kind of file: by its media type, or by its content whatever its name', async () => {
    expect(await refusedFile(file('whatever', { mimetype: 'image/png', filename: 'photo.png' }))).toMatch(
      /must be a CSV file.*“photo.png” is image\/png/,
    );
    expect(await refusedFile(file('x', { mimetype: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' }))).toMatch(
      /must be a CSV file/,
    );
    const xlsx = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(100, 1)]);
    expect(await refusedFile(file(xlsx, { mimetype: 'application/octet-stream', filename: 'sims.csv' }))).toMatch(
      /spreadsheet workbook, not a CSV file/,
    );
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('iccid,imsi\n', 'utf16le')]);
    expect(await refusedFile(file(utf16))).toMatch(/UTF-16/);
    expect(await refusedFile(file(Buffer.from([0x01, 0x00, 0x02, 0x0a])))).toMatch(/not a text file/);
  });

  it('a CSV from Windows with Excel (application/vnd.ms-excel) is fine', async () => {
    expect(await run(file(csv([sim()]), { mimetype: 'application/vnd.ms-excel' }))).toMatchObject({ ok: true, count: 1 });
  });

  it('too large: refused as soon as the limit is passed, without reading on', async () => {
    const limits = { ...IMPORT_LIMITS, maxBytes: 1000 };
    let chunksRead = 0;
    const endless: ImportFile = {
      filename: 'big.csv',
      mimetype: 'text/csv',
      stream: (async function* () {
        yield Buffer.from('iccid,imsi,eid,msisdn\n');
        for (;;) {
          chunksRead++;
          yield Buffer.from(`${line(sim())}\n`);
        }
      })(),
    };
    expect(await refusedFile(endless, limits)).toBe(
      'The file is larger than 1 KB. Split it into smaller files and import them one by one.',
    );
    expect(chunksRead).toBeLessThan(20);
    expect(await refusedFile(file('iccid,imsi\n' + '\n'.repeat(2000)), limits)).toMatch(/larger than/);
  });

  it('too many rows', async () => {
    const limits = { ...IMPORT_LIMITS, maxRows: 5 };
    expect(await run(file(csv(Array.from({ length: 5 }, () => sim()))), limits)).toMatchObject({ ok: true, count: 5 });
    expect(await refusedFile(file(csv(Array.from({ length: 6 }, () => sim()))), limits)).toBe(
      'The file has more than 5 SIMs. Split it into files of at most 5 rows and import them one by one.',
    );
  });

  it('the transport cut the file short (its own size limit)', async () => {
    const cut = { ...file(csv([sim()])), truncated: () => true };
    expect(await refusedFile(cut)).toMatch(/larger than 50 MB/);
  });
});

describe('who may import, and races', () => {
  it('a viewer may not import', async () => {
    const before = await simCount();
    await expect(run(file(csv([sim()])), undefined, viewer)).rejects.toBeInstanceOf(ForbiddenError);
    expect(await simCount()).toBe(before);
  });

  it('a concurrent import of the same SIMs (a unique violation at insert) is a clear conflict, and nothing is imported', async () => {
    const rows = [sim(), sim(), sim()];
    const before = await simCount();
    const events = await importEvents();
    // Another enterprise's import has inserted one of these SIMs and not committed yet: this import's checks
    // cannot see it, so its insert waits on the unique index, then fails when the other commits.
    const inserted = deferred();
    const commit = deferred();
    const other = fork().transactional(async (tx) => {
      await tx.execute('insert into sim (enterprise_id, iccid, imsi) values (?, ?, ?)', [globex.id, rows[1].iccid, imsiFor(SERIES + 1, 1)]);
      inserted.resolve();
      await commit.promise;
    });
    await inserted.promise;
    const importing = importSims(fork(), { actor: admin }, file(csv(rows))).catch((e: unknown) => e);
    await until(
      async () =>
        (
          await fork().execute<{ n: number }[]>(
            `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ~ '^insert into "?sim"? '`,
          )
        )[0].n === 1,
    );
    commit.resolve();
    await other;
    const error = await importing;
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toMatch(/Nothing was imported/);
    expect(await simCount()).toBe(before + 1); // only the other import's SIM
    expect(await importEvents()).toBe(events);
  });
});

describe('imports do not starve everyone (issue 12, item 10)', () => {
  /** A file whose upload stops after its first SIM until `finish` is called (a big file still arriving). */
  function slowFile(rows: Row[]) {
    const rest = deferred();
    return {
      file: {
        filename: 'slow.csv',
        mimetype: 'text/csv',
        stream: (async function* () {
          yield Buffer.from(`iccid,imsi,eid,msisdn\n${line(rows[0])}\n`);
          await rest.promise;
          yield Buffer.from(
            rows
              .slice(1)
              .map((r) => `${line(r)}\n`)
              .join(''),
          );
        })(),
      } satisfies ImportFile,
      finish: () => rest.resolve(),
    };
  }
  const importLockHeld = async (enterpriseId: number) => {
    const [namespace, key] = importLockKeys(enterpriseId);
    const [{ n }] = await fork().execute<{ n: number }[]>(
      `select count(*)::int as n from pg_locks where locktype = 'advisory' and classid = ? and objid = ? and objsubid = 2 and granted`,
      [namespace, key],
    );
    return n === 1;
  };

  it('one import per enterprise at a time, on any instance: a second is refused at once; other enterprises import meanwhile', async () => {
    const initech = await createEnterprise(fork(), 'Initech');
    const initechAdmin = await actorFor(fork(), initech, 'admin');
    const first = slowFile([sim(), sim()]);
    const running = importSims(fork(), { actor: initechAdmin }, first.file);
    await until(() => importLockHeld(initech.id));
    const sims = await simCount();

    // Another admin of the enterprise, on this instance and on another one (its own pool on the same database).
    const otherAdmin = await actorFor(fork(), initech, 'admin');
    await expect(importSims(fork(), { actor: otherAdmin }, file(csv([sim()])))).rejects.toBeInstanceOf(ImportRunningError);
    const instance = await openDatabase({ databaseUrl: db.url, migrate: false, poolSize: 2 });
    try {
      const error = await importSims(instance.orm.em.fork(), { actor: otherAdmin }, file(csv([sim()]))).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ImportRunningError);
      expect((error as ImportRunningError).retryAfterSeconds).toBe(60);
      expect((error as Error).message).toBe(
        'An import is already running for this enterprise. Try again in a minute, when it has finished.',
      );
    } finally {
      await instance.close();
    }
    expect(await simCount()).toBe(sims);

    // Another enterprise is not held up.
    const globexAdmin = await actorFor(fork(), globex, 'admin');
    expect(await importSims(fork(), { actor: globexAdmin }, file(csv([sim()])))).toMatchObject({ ok: true, count: 1 });

    first.finish();
    expect(await running).toMatchObject({ ok: true, count: 2 });
    expect(await importLockHeld(initech.id)).toBe(false);
    // Once it has finished, the enterprise imports again.
    expect(await importSims(fork(), { actor: otherAdmin }, file(csv([sim()])))).toMatchObject({ ok: true, count: 1 });
  });

  it('the lock ends with the import, also when it fails', async () => {
    const hooli = await createEnterprise(fork(), 'Hooli');
    const hooliAdmin = await actorFor(fork(), hooli, 'admin');
    await expect(importSims(fork(), { actor: hooliAdmin }, file('iccid,imsi\n'))).rejects.toBeInstanceOf(ImportFileError);
    expect(await importLockHeld(hooli.id)).toBe(false);
    expect(await importSims(fork(), { actor: hooliAdmin }, file(csv([sim()])))).toMatchObject({ ok: true });
  });

  it('an upload that stalls is given up after idleMs: nothing imported, the enterprise’s lock released', async () => {
    const stark = await createEnterprise(fork(), 'Stark');
    const starkAdmin = await actorFor(fork(), stark, 'admin');
    const stalled: ImportFile = {
      filename: 'stalled.csv',
      mimetype: 'text/csv',
      stream: (async function* () {
        yield Buffer.from(`iccid,imsi,eid,msisdn\n${line(sim())}\n`);
        await new Promise(() => {}); // the client stops sending, and never closes
      })(),
    };
    const started = Date.now();
    const error = await importSims(fork(), { actor: starkAdmin }, stalled, { ...IMPORT_LIMITS, idleMs: 1_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportFileError);
    expect((error as Error).message).toBe(
      'The upload stopped: nothing arrived for 1 second. Nothing was imported. Check the connection and import the file again.',
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await importLockHeld(stark.id)).toBe(false);
    expect(await importSims(fork(), { actor: starkAdmin }, file(csv([sim()])))).toMatchObject({ ok: true, count: 1 });
  });

  it('an import uses one database connection, whatever its size', async () => {
    const umbrella = await createEnterprise(fork(), 'Umbrella');
    const umbrellaAdmin = await actorFor(fork(), umbrella, 'admin');
    const instance = await openDatabase({ databaseUrl: db.url, migrate: false, poolSize: 1 });
    try {
      const rows = Array.from({ length: 12_000 }, () => sim({ eid: false }));
      expect(await importSims(instance.orm.em.fork(), { actor: umbrellaAdmin }, file(csv(rows), { chunk: 4096 }))).toMatchObject({
        ok: true,
        count: 12_000,
      });
    } finally {
      await instance.close();
    }
  });

  it('a refused import leaves an audit event with its counts (rows checked, problems), and writes nothing else', async () => {
    const taken = await readySim(fork(), globex);
    const rows = [sim(), { ...sim(), iccid: taken.iccid }, { ...sim(), imsi: '1' }, sim()];
    const refusedBefore = await refusedEvents(acme.id);
    const sims = await simCount();
    const outcome = await importSims(fork(), { actor: admin, requestId: 'req-refused-1' }, file(csv(rows)));
    expect(outcome.ok).toBe(false);
    expect(await simCount()).toBe(sims);
    const events = await fork().execute<Record<string, unknown>[]>(
      `select actor_id, actor_name, count, problem_count, request_id, endpoint_id, sim_iccid from event
       where enterprise_id = ? and action = 'sims.import_refused' order by id desc`,
      [acme.id],
    );
    expect(events).toHaveLength(refusedBefore + 1);
    expect(events[0]).toEqual({
      actor_id: admin.id,
      actor_name: admin.displayName,
      count: 4,
      problem_count: 2,
      request_id: 'req-refused-1',
      endpoint_id: null,
      sim_iccid: null,
    });
    // A file refused as a whole is never looked up in the database: no event.
    await expect(importSims(fork(), { actor: admin }, file('iccid,imsi\n'))).rejects.toBeInstanceOf(ImportFileError);
    expect(await refusedEvents(acme.id)).toBe(refusedBefore + 1);
  });

  it('refused imports are limited per enterprise: after the limit, its imports pause (even a good file) until the oldest refusal is an hour old', async () => {
    const limit = { max: 3, windowMs: 60 * 60_000 };
    const soylent = await createEnterprise(fork(), 'Soylent');
    const soylentAdmin = await actorFor(fork(), soylent, 'admin');
    const bad = () => file(csv([{ ...sim(), imsi: '1' }]));
    for (let i = 0; i < limit.max; i++) {
      expect((await importSims(fork(), { actor: soylentAdmin, refusals: limit }, bad())).ok).toBe(false);
    }
    const sims = await simCount();
    const error = await importSims(fork(), { actor: soylentAdmin, refusals: limit }, file(csv([sim()]))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportsPausedError);
    expect((error as Error).message).toBe(
      '3 imports of this enterprise were refused in the last hour because their files had problems. To keep SIM identifiers from being probed, imports are paused: try again in 60 minutes.',
    );
    const retryAfter = (error as ImportsPausedError).retryAfterSeconds;
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(await simCount()).toBe(sims);
    expect(await refusedEvents(soylent.id)).toBe(limit.max);

    // Another enterprise is not paused.
    const other = await createEnterprise(fork(), 'Tyrell');
    expect(await importSims(fork(), { actor: await actorFor(fork(), other, 'admin'), refusals: limit }, file(csv([sim()])))).toMatchObject({
      ok: true,
    });
    // Refusals older than the window no longer count (a short window stands in for the hour).
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await importSims(fork(), { actor: soylentAdmin, refusals: { max: 3, windowMs: 40 } }, file(csv([sim()])))).toMatchObject({
      ok: true,
    });
  });

  it('ImportSlots: at most `size` imports in this process; a slot given back is free again (once)', () => {
    const slots = new ImportSlots(2);
    const a = slots.take();
    const b = slots.take();
    expect(() => slots.take()).toThrow(ImportsBusyError);
    expect(() => slots.take()).toThrow('SIM Link is busy importing other files. Try again in a minute.');
    a();
    a();
    expect(slots.inUse).toBe(1);
    const c = slots.take();
    expect(() => slots.take()).toThrow(ImportsBusyError);
    b();
    c();
    expect(slots.inUse).toBe(0);
  });
});

describe('scale', () => {
  it('imports a generated file of 100,000 SIMs, streamed (time printed, not asserted)', async () => {
    const ROWS = 100_000;
    const start = serial;
    let bytes = 0;
    const stream = (async function* () {
      yield Buffer.from('iccid,imsi,eid,msisdn\r\n');
      for (let i = 0; i < ROWS; i += 1000) {
        const lines: string[] = [];
        for (let j = 0; j < 1000; j++) {
          const n = start + i + j + 1;
          lines.push(
            `${iccidFor(SERIES, n)},${imsiFor(SERIES, n)},${n % 10 === 0 ? '' : eidFor(SERIES, n)},${n % 4 === 0 ? '' : msisdnFor(SERIES, n % 10_000_000)}\r\n`,
          );
        }
        const chunk = Buffer.from(lines.join(''));
        bytes += chunk.length;
        yield chunk;
      }
    })();
    serial += ROWS;
    const before = await simCount();
    const started = performance.now();
    const outcome = await run({ filename: 'big.csv', mimetype: 'text/csv', stream });
    const ms = performance.now() - started;
    expect(outcome).toMatchObject({ ok: true, count: ROWS });
    expect(await simCount()).toBe(before + ROWS);
    console.log(
      `[sim-import] ${ROWS.toLocaleString('en')} rows (${(bytes / 1048576).toFixed(1)} MB) imported in ${(ms / 1000).toFixed(2)} s on ${inject('serverName')}`,
    );

    // The same file again: every row is a duplicate, reported (the first 100) without importing anything.
    const again = async function* () {
      yield Buffer.from('iccid,imsi\n');
      for (let n = start + 1; n <= start + 200; n++) yield Buffer.from(`${iccidFor(SERIES, n)},${imsiFor(SERIES, n)}\n`);
    };
    const report = await refused({ filename: 'again.csv', mimetype: 'text/csv', stream: again() });
    expect(report.totalProblems).toBe(400);
    expect(report.badLines).toBe(200);
  }, 180_000);
});
