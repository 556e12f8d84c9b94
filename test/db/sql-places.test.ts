// Where SQL is run (issue 13): the unit of work writes through MikroORM; what SIM Link runs by itself goes through
// one of two runners — runStatement (src/db/compiled-statement.ts) for statements the query builder wrote, and
// runPlanned (src/domain/queries/planned-sql.ts) for the hand-written reads, each named there with the test that
// proves why it is hand-written. Everything else may only use MikroORM's own API (em.find, flush, the query
// builder's execute). This test reads the source so that a stray `em.execute('…')` cannot come back unnoticed.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

/** The files allowed to pass SQL to a connection, with why. */
const RUNNERS: Record<string, string> = {
  'src/db/compiled-statement.ts': 'runStatement: the query builder’s statements, compiled once',
  'src/domain/queries/planned-sql.ts': 'runPlanned: the hand-written reads, each proven by an EXPLAIN test',
  'src/db/driver.ts': 'the driver’s own nativeInsert/nativeUpdate, the unit of work’s flush',
  'src/db/seed-bulk.ts': 'the bulk data generator (npm run seed -- --sims N)',
  'src/web/health.routes.ts': 'the health check’s select 1',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

/** A call that hands SQL text or a compiled statement to a connection: `.execute(` or `.execute<…>(` with a first argument that is not a method name. */
const RUNS_SQL = /\.execute\s*(<[^>]*(?:<[^>]*>[^>]*)*>)?\s*\(\s*(?!['"](?:all|get|run)['"]\s*[,)])(?!\s*\))/;

describe('where SQL is run', () => {
  it('only the two runners, the driver, the bulk generator and the health check pass SQL to a connection', () => {
    const offenders = sourceFiles(join(root, 'src'))
      .map((file) => relative(root, file))
      .filter((file) => !(file in RUNNERS))
      .flatMap((file) =>
        readFileSync(join(root, file), 'utf8')
          .split('\n')
          .flatMap((line, i) =>
            RUNS_SQL.test(line) && !line.trim().startsWith('//') && !line.trim().startsWith('*')
              ? [`${file}:${i + 1}: ${line.trim()}`]
              : [],
          ),
      );
    expect(offenders).toEqual([]);
  });

  it('the check finds a stray statement (so it cannot pass by reading nothing)', () => {
    expect(RUNS_SQL.test(`await em.execute('update sim set status = ?', ['active']);`)).toBe(true);
    expect(RUNS_SQL.test(`const rows = await tx.execute<Row[]>(sql, params);`)).toBe(true);
    expect(RUNS_SQL.test(`  .execute<Record<string, unknown>[]>(statement.sql, params, 'all', ctx);`)).toBe(true);
    expect(RUNS_SQL.test(`rows = await page(where).execute<EndpointListRow[]>('all');`)).toBe(false);
    expect(RUNS_SQL.test(`.execute<{ id: string }[]>('all', false);`)).toBe(false);
    expect(sourceFiles(join(root, 'src')).length).toBeGreaterThan(30);
  });
});
