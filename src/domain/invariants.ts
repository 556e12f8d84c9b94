// One query listing every row that breaks an invariant of docs/invariants.md (invariantsSql, in the read-query
// module). The database's constraints should make it return nothing, always: the tests run it after every race,
// operators with `npm run check-invariants`.
import type { EntityManager } from '@mikro-orm/postgresql';
import { invariantsSql, runPlanned } from './queries/planned-sql.js';

export interface Violation {
  invariant: number;
  endpoint_id: number | null;
  sim_id: number | null;
  detail: string;
}

export async function findViolations(em: EntityManager): Promise<Violation[]> {
  return runPlanned<Violation[]>(em, invariantsSql);
}
