// A row read by hand-picked SQL (a compiled statement), made a managed entity as em.find makes its rows.
import type { EntityData, EntitySchema } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * A row read in `em`, as a managed entity of its identity map: what em.find does with each row it reads — the
 * driver maps the columns to properties, and the entity factory hydrates the entity and registers it with the
 * unit of work, the row as read being the snapshot the flush compares with (so only what changes is written).
 * em.map would do the same and more that a row just read needs not: validate each value, merge through every
 * relation (cascade), and snapshot the entity again — measured, em.map took most of the hydration's CPU.
 */
export function managed<T extends object>(em: EntityManager, entity: EntitySchema<T>, row: EntityData<T>): T {
  const meta = em.getMetadata().get<T>(entity.meta.className);
  const data = em.getDriver().mapResult(row, meta) as EntityData<T>;
  return em.getEntityFactory().create<T>(meta.className, data, { merge: true, refresh: true, convertCustomTypes: true });
}
