// One query listing every row that breaks an invariant of docs/invariants.md. The database's constraints should
// make it return nothing, always: the tests run it after every race, operators with `npm run check-invariants`.
import type { EntityManager } from '@mikro-orm/postgresql';

export interface Violation {
  invariant: number;
  endpoint_id: number | null;
  sim_id: number | null;
  detail: string;
}

export const INVARIANTS_SQL = `
select 1 as invariant, null::int as endpoint_id, sim_id, 'SIM linked to ' || count(*) || ' endpoints' as detail
  from endpoint where sim_id is not null group by sim_id having count(*) > 1
union all
select 1, endpoint_id, null, 'endpoint linked to ' || count(*) || ' SIMs'
  from sim where endpoint_id is not null group by endpoint_id having count(*) > 1
union all
select 2, id, sim_id, 'endpoint is ' || status || (case when sim_id is null then ' without' else ' with' end) || ' a SIM'
  from endpoint where (status = 'hold') <> (sim_id is null)
union all
select 3, endpoint_id, id, 'SIM is ' || status || (case when endpoint_id is null then ' without' else ' with' end) || ' an endpoint'
  from sim where (status = 'ready') <> (endpoint_id is null)
union all
select 4, e.id, e.sim_id, 'endpoint ' || e.status || ' but its SIM is ' || coalesce(s.status, 'missing')
         || (case when s.endpoint_id is distinct from e.id then ' and points elsewhere' else '' end)
  from endpoint e left join sim s on s.id = e.sim_id
  where e.sim_id is not null and (s.id is null or s.status <> e.status or s.endpoint_id is distinct from e.id)
union all
select 4, s.endpoint_id, s.id, 'SIM ' || s.status || ' but its endpoint is ' || coalesce(e.status, 'missing')
         || (case when e.sim_id is distinct from s.id then ' and points elsewhere' else '' end)
  from sim s left join endpoint e on e.id = s.endpoint_id
  where s.endpoint_id is not null and (e.id is null or e.status <> s.status or e.sim_id is distinct from s.id)
union all
select 5, e.id, s.id, 'endpoint of enterprise ' || e.enterprise_id || ', SIM of enterprise ' || s.enterprise_id
  from endpoint e join sim s on s.id = e.sim_id where e.enterprise_id <> s.enterprise_id
order by 1, 2, 3`;

export async function findViolations(em: EntityManager): Promise<Violation[]> {
  return em.execute<Violation[]>(INVARIANTS_SQL);
}
