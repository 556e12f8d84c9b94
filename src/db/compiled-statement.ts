// A statement built by MikroORM's query builder, compiled once and then run with each call's values.
//
// Building a query and compiling it (query builder, then knex) costs 0.1–0.2 ms of Node CPU per statement —
// more than PostgreSQL needs to run a primary-key lookup. The statements run on every request or every
// lifecycle operation (the session read, the row locks, the unit of work's INSERTs and UPDATEs) differ from
// one call to the next only in their values, so each is compiled once per shape: the query builder is given
// one marker per value, and the markers are found again among the compiled bindings to learn where each value
// goes. The SQL is MikroORM's own, and it is run through MikroORM's connection (which formats the values,
// logs, and converts errors) like any other statement: runStatement below is the one place that runs them.
import type { AnyEntity, EntityData, QueryResult } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';

/** A compiled statement: its SQL and the bindings for one call's values, in the order the builder was given them. */
export interface CompiledStatement {
  sql: string;
  bind(values: readonly unknown[]): unknown[];
}

/** Anything that compiles to SQL with bindings: a MikroORM query builder. */
interface Compilable {
  getKnexQuery(): { toSQL(): { sql: string; bindings: readonly unknown[] } };
}

const MARKER = '\u0000simlink-value:';

/**
 * Compiles `build(markers)` once. `build` must use each marker exactly once, as a value; the compiled
 * constants (a LIMIT, say) are kept. Throws when a marker is missing or bound twice: such a statement
 * cannot be reused safely.
 */
export function compileStatement(count: number, build: (markers: string[]) => Compilable, label: string): CompiledStatement {
  const markers = Array.from({ length: count }, (_, i) => `${MARKER}${i}`);
  const { sql, bindings } = build(markers).getKnexQuery().toSQL();
  // A marker given to a JSON property comes back JSON-encoded (MikroORM encodes the property's value): its
  // value is then bound JSON-encoded too. Looked up in maps: a multi-row INSERT has tens of thousands of markers.
  const plain = new Map(markers.map((marker, i) => [marker, i]));
  const encoded = new Map(markers.map((marker, i) => [JSON.stringify(marker), i]));
  const slots = bindings.map((binding) => (typeof binding === 'string' ? (plain.get(binding) ?? encoded.get(binding) ?? -1) : -1));
  const json = bindings.map((binding) => typeof binding === 'string' && !plain.has(binding) && encoded.has(binding));
  const uses = new Array<number>(count).fill(0);
  for (const slot of slots) if (slot >= 0) uses[slot]++;
  if (uses.some((n) => n !== 1)) {
    throw new Error(`The statement for ${label} does not bind each of its ${count} values once`);
  }
  const constants = [...bindings];
  return {
    sql,
    bind: (values) => slots.map((slot, i) => (slot < 0 ? constants[i] : json[i] ? JSON.stringify(values[slot]) : values[slot])),
  };
}

/** compileStatement, once per key: later calls with the same key get the first compilation. */
export class StatementCache {
  readonly #statements = new Map<string, CompiledStatement>();

  get(key: string, count: number, build: (markers: string[]) => Compilable): CompiledStatement {
    let statement = this.#statements.get(key);
    if (!statement) {
      statement = compileStatement(count, build, key);
      this.#statements.set(key, statement);
    }
    return statement;
  }
}

/** What a statement's rows come back as: all rows, the first row, or the write's result (affected rows, …). */
type Method = 'all' | 'get' | 'run';
type Rows = QueryResult | EntityData<AnyEntity> | EntityData<AnyEntity>[];

/**
 * Runs a statement the query builder wrote — a compiled one with this call's values, or a knex builder made from
 * the query builder's own — through MikroORM's driver, in `em`'s transaction when it has one. The driver logs it
 * and converts its errors (a unique violation, a deadlock, a lock timeout) to MikroORM's exceptions, as for any
 * statement of the unit of work. Every query-builder statement SIM Link runs by itself is run here; the
 * hand-written reads are run by the read-query module (src/domain/queries/planned-sql.ts).
 */
export function runStatement<T extends Rows = Record<string, unknown>[]>(
  em: EntityManager,
  statement: CompiledStatement | Parameters<EntityManager['execute']>[0],
  values: readonly unknown[] = [],
  method: Method = 'all',
): Promise<T> {
  const compiled = typeof statement === 'object' && 'bind' in statement;
  return em
    .getDriver()
    .execute<T>(compiled ? statement.sql : statement, compiled ? statement.bind(values) : [], method, em.getTransactionContext());
}
