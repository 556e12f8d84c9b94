// MikroORM's PostgreSQL driver, with the unit of work's single-row INSERTs and UPDATEs compiled once per shape.
//
// The flush writes each changed entity with driver.nativeUpdate, and em.insert (the audit event, the one-time
// key) with driver.nativeInsert; both build a query builder and compile it for every row, which cost about
// 0.6 ms of Node CPU per link + de-link — more than the rest of the unit of work together (measured with
// bench/lifecycle-rate.ts and --cpu-prof). Here a statement of the same entity with the same columns is compiled
// once by that same query builder (see compiled-statement.ts) and reused, so the SQL is exactly MikroORM's.
// Anything out of the ordinary — an upsert, a composite key, raw SQL or an object among the
// values, a property that needs SQL of its own (embeddables, version columns, generated columns, many-to-many
// collections) — takes MikroORM's own path unchanged.
import {
  ReferenceKind,
  Utils,
  type EntityDictionary,
  type EntityKey,
  type EntityMetadata,
  type FilterQuery,
  type NativeInsertUpdateOptions,
  type QueryResult,
  type RequiredEntityData,
  type UpsertOptions,
} from '@mikro-orm/core';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { StatementCache } from './compiled-statement.js';

/** Whether rows of this entity can be written by a compiled statement: one column per property, nothing computed by SQL. */
const plainEntities = new WeakMap<EntityMetadata, boolean>();
function isPlain(meta: EntityMetadata): boolean {
  let plain = plainEntities.get(meta);
  if (plain === undefined) {
    plain =
      meta.primaryKeys.length === 1 &&
      !meta.discriminatorColumn &&
      meta.props.every(
        (prop) =>
          !prop.embeddedProps &&
          !prop.hasConvertToDatabaseValueSQL &&
          !prop.version &&
          !(prop.generated && !prop.primary) &&
          prop.kind !== ReferenceKind.MANY_TO_MANY &&
          prop.kind !== ReferenceKind.EMBEDDED &&
          (prop.fieldNames?.length ?? 1) <= 1,
      );
    plainEntities.set(meta, plain);
  }
  return plain;
}

const isScalar = (value: unknown) =>
  value === null || value instanceof Date || ['string', 'number', 'boolean', 'bigint'].includes(typeof value);

export class SimLinkPostgreSqlDriver extends PostgreSqlDriver {
  readonly #statements = new StatementCache();

  override async nativeInsert<T extends object>(
    entityName: string,
    data: EntityDictionary<T>,
    options: NativeInsertUpdateOptions<T> = {},
  ): Promise<QueryResult<T>> {
    const meta = this.metadata.find<T>(entityName);
    const keys = Object.keys(data);
    const values = meta && isPlain(meta) && this.databaseValues(meta, data, keys, options.convertCustomTypes ?? true);
    if (!meta || !values) return super.nativeInsert(entityName, data, options);
    const schema = this.getSchemaName(meta, options);
    const statement = this.#statements.get(`insert ${schema ?? ''}.${meta.className}(${keys.join(',')})`, keys.length, (markers) =>
      this.createQueryBuilder<T>(entityName, undefined, 'write', false)
        .withSchema(schema)
        .insert(Object.fromEntries(keys.map((key, i) => [key, markers[i]])) as RequiredEntityData<T>),
    );
    const res = await this.rethrow(
      this.getConnection('write').execute<QueryResult<T>>(statement.sql, statement.bind(values), 'run', options.ctx, options.loggerContext),
    );
    // As MikroORM's nativeInsert answers: the key given, else the one the database returned.
    res.row ||= {};
    const pk = meta.primaryKeys[0] as string;
    res.insertId = ((data as Record<string, unknown>)[pk] ??
      res.insertId ??
      (res.row as Record<string, unknown>)[pk]) as QueryResult<T>['insertId'];
    return res;
  }

  override async nativeUpdate<T extends object>(
    entityName: string,
    where: FilterQuery<T>,
    data: EntityDictionary<T>,
    options: NativeInsertUpdateOptions<T> & UpsertOptions<T> = {},
  ): Promise<QueryResult<T>> {
    const meta = this.metadata.find<T>(entityName);
    const keys = Object.keys(data);
    const condition = meta && this.plainCondition(meta, where);
    const values =
      meta &&
      condition &&
      keys.length > 0 &&
      !options.upsert &&
      isPlain(meta) &&
      this.databaseValues(meta, data, keys, options.convertCustomTypes ?? true);
    if (!meta || !condition || !values) return super.nativeUpdate(entityName, where, data, options);
    const whereKeys = Object.keys(condition);
    const schema = this.getSchemaName(meta, options);
    const statement = this.#statements.get(
      `update ${schema ?? ''}.${meta.className} set ${keys.join(',')} where ${whereKeys.join(',')}`,
      keys.length + whereKeys.length,
      (markers) =>
        this.createQueryBuilder<T>(entityName, undefined, 'write', false)
          .withSchema(schema)
          .update(Object.fromEntries(keys.map((key, i) => [key, markers[i]])) as EntityDictionary<T>)
          .where(Object.fromEntries(whereKeys.map((key, i) => [key, markers[keys.length + i]])) as FilterQuery<T>),
    );
    return this.rethrow(
      this.getConnection('write').execute<QueryResult<T>>(
        statement.sql,
        statement.bind([...values, ...whereKeys.map((key) => condition[key])]),
        'run',
        options.ctx,
        options.loggerContext,
      ),
    );
  }

  /** The values as the database takes them (custom types converted), or null when one is not a plain value. */
  private databaseValues<T extends object>(
    meta: EntityMetadata<T>,
    data: EntityDictionary<T>,
    keys: string[],
    convertCustomTypes: boolean,
  ): unknown[] | null {
    const values: unknown[] = [];
    for (const key of keys) {
      const prop = meta.properties[key as EntityKey<T>];
      let value = (data as Record<string, unknown>)[key];
      if (!prop || this.platform.isRaw(value)) return null;
      if (prop.customType && convertCustomTypes) {
        value = prop.customType.convertToDatabaseValue(value, this.platform, { fromQuery: true, key, mode: 'query-data' });
      }
      if (!isScalar(value)) return null;
      values.push(value);
    }
    return values;
  }

  /** A condition of plain values on plain columns (the primary key, as the flush gives it), or null. */
  private plainCondition<T extends object>(meta: EntityMetadata<T>, where: FilterQuery<T>): Record<string, unknown> | null {
    const condition: Record<string, unknown> = Utils.isPrimaryKey(where)
      ? { [meta.primaryKeys[0] as string]: where }
      : (where as Record<string, unknown>);
    if (!Utils.isPlainObject(condition)) return null;
    const keys = Object.keys(condition);
    if (keys.length === 0) return null;
    for (const key of keys) {
      const prop = meta.properties[key as EntityKey<T>];
      if (!prop || prop.customType || prop.kind !== ReferenceKind.SCALAR || !isScalar(condition[key]) || condition[key] === null)
        return null;
    }
    return condition;
  }
}
