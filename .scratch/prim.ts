import { MikroORM } from '@mikro-orm/postgresql';
import { LockMode, FlushMode } from '@mikro-orm/core';
import { ormConfig } from '../src/db/mikro-orm.config.js';
import { EndpointSchema, EventSchema } from '../src/domain/entities.js';
const orm = await MikroORM.init({ ...ormConfig({ clientUrl: 'postgresql://postgres@127.0.0.1:5432/simlink_rate_uow', poolSize: 2 }), ...(process.env.NOAUTOJOIN ? { autoJoinRefsForFilters: false } : {}) });
const [e] = await orm.em.fork().execute(`select id, enterprise_id from endpoint order by id desc limit 1`);
async function bench(name: string, n: number, fn: () => Promise<unknown>) {
  for (let i = 0; i < 200; i++) await fn();
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0);
  console.log(`${name.padEnd(40)} ${((c.user + c.system) / n).toFixed(0).padStart(5)} µs CPU, ${((performance.now() - t0) * 1000 / n).toFixed(0)} µs wall`);
}
const N = 1500;
await bench('execute select', N, () => orm.em.fork().execute('select * from endpoint where id = ? and enterprise_id = ?', [e.id, e.enterprise_id]));
await bench('findOne', N, () => orm.em.fork().findOne(EndpointSchema, { id: e.id, enterprise: e.enterprise_id }));
await bench('findOne filters:false', N, () => orm.em.fork().findOne(EndpointSchema, { id: e.id, enterprise: e.enterprise_id }, { filters: false }));
await bench('tx findOne lock', N, () => orm.em.fork().transactional((tx) => tx.findOne(EndpointSchema, { id: e.id }, { lockMode: LockMode.PESSIMISTIC_WRITE })));
await bench('tx findOne lock filters:false', N, () => orm.em.fork().transactional((tx) => tx.findOne(EndpointSchema, { id: e.id }, { lockMode: LockMode.PESSIMISTIC_WRITE, filters: false })));
await bench('tx execute select for update', N, () => orm.em.fork().transactional((tx) => tx.execute('select * from endpoint where id = ? for update', [e.id])));
await bench('em.fork()', N * 10, async () => orm.em.fork());
await orm.close(true);
