// The plans of the statements a read model runs, whichever way it runs them (em.find, findByCursor, the
// QueryBuilder or em.execute): the connection's execute is watched while the read runs, then each SELECT is
// EXPLAINed on its own with the same parameters.
import { vi } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';

export interface Explained {
  sql: string;
  plan: string;
}

export async function explainReads(em: EntityManager, read: (em: EntityManager) => Promise<unknown>): Promise<Explained[]> {
  const connection = em.getConnection();
  const execute = connection.execute.bind(connection);
  const statements: { sql: string; params: unknown[] }[] = [];
  const spy = vi.spyOn(connection, 'execute').mockImplementation(((query: unknown, params: unknown[] = [], ...rest: unknown[]) => {
    const q =
      typeof query === 'string' ? { sql: query, bindings: params } : (query as { toSQL(): { sql: string; bindings: unknown[] } }).toSQL();
    if (/^\s*(select|with|\()/i.test(q.sql)) statements.push({ sql: q.sql, params: [...(q.bindings ?? [])] });
    return (execute as (...args: unknown[]) => Promise<unknown>)(query, params, ...rest);
  }) as typeof connection.execute);
  try {
    await read(em);
  } finally {
    spy.mockRestore();
  }
  const explained: Explained[] = [];
  for (const { sql, params } of statements) {
    const rows = await em.execute<Record<string, string>[]>(`explain (costs off) ${sql}`, params);
    explained.push({ sql, plan: rows.map((r) => Object.values(r)[0]).join('\n') });
  }
  return explained;
}
