import { MikroORM } from '@mikro-orm/postgresql';
import { LockMode, FlushMode } from '@mikro-orm/core';
import { randomBytes } from 'node:crypto';
import { ormConfig } from '../src/db/mikro-orm.config.js';
import { EndpointSchema, EventSchema, OperationKeySchema, SimSchema } from '../src/domain/entities.js';
const orm = await MikroORM.init(ormConfig({ clientUrl: 'postgresql://postgres@127.0.0.1:5432/simlink_rate_uow', poolSize: 2 }));
const [e] = await orm.em.fork().execute(`select id, enterprise_id, sim_id from endpoint where sim_id is null order by id desc limit 1`);
const [s] = await orm.em.fork().execute(`select id from sim where status = 'ready' and enterprise_id = ? order by id desc limit 1`, [e.enterprise_id]);
async function bench(name: string, n: number, fn: () => Promise<unknown>) {
  for (let i = 0; i < 150; i++) await fn();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}
const L = { lockMode: LockMode.PESSIMISTIC_WRITE, filters: false } as const;
let flip = 0;
const steps: [string, (tx: any) => Promise<void>][] = [
  ['empty tx', async () => {}],
  ['+findOne E', async (tx) => { await tx.findOne(EndpointSchema, { id: e.id, enterprise: e.enterprise_id }, L); }],
  ['+findOne S', async (tx) => { await tx.findOne(EndpointSchema, { id: e.id, enterprise: e.enterprise_id }, L); await tx.findOne(SimSchema, { id: s.id }, L); }],
  ['+change E,S (flush 2 updates)', async (tx) => { const x = await tx.findOne(EndpointSchema, { id: e.id, enterprise: e.enterprise_id }, L); const y = await tx.findOne(SimSchema, { id: s.id }, L); x.name = (flip++ % 2) ? 'A' : 'B'; y.msisdn = (flip % 2) ? '12345' : '54321'; }],
  ['+create event', async (tx) => { const x = await tx.findOne(EndpointSchema, { id: e.id, enterprise: e.enterprise_id }, L); const y = await tx.findOne(SimSchema, { id: s.id }, L); x.name = (flip++ % 2) ? 'A' : 'B'; y.msisdn = (flip % 2) ? '12345' : '54321';
    tx.create(EventSchema, { enterprise: e.enterprise_id, actorId: 1, actorName: 'x', action: 'sim.linked', endpoint: x, endpointName: 'x', simIccid: '89', endpointStatusBefore: 'hold', endpointStatusAfter: 'hold', simStatusBefore: 'ready', simStatusAfter: 'ready', requestId: 'r' }); }],
  ['+create key', async (tx) => { const x = await tx.findOne(EndpointSchema, { id: e.id, enterprise: e.enterprise_id }, L); const y = await tx.findOne(SimSchema, { id: s.id }, L); x.name = (flip++ % 2) ? 'A' : 'B'; y.msisdn = (flip % 2) ? '12345' : '54321';
    tx.create(EventSchema, { enterprise: e.enterprise_id, actorId: 1, actorName: 'x', action: 'sim.linked', endpoint: x, endpointName: 'x', simIccid: '89', endpointStatusBefore: 'hold', endpointStatusAfter: 'hold', simStatusBefore: 'ready', simStatusAfter: 'ready', requestId: 'r' });
    tx.create(OperationKeySchema, { key: randomBytes(16).toString('hex'), enterprise: e.enterprise_id, userId: 1, action: 'x', outcome: { a: 1 } }); }],
];
const N = Number(process.env.N ?? 600);
for (let round = 0; round < 2; round++) {
  let prev = 0;
  const line: string[] = [];
  for (const [name, fn] of steps) {
    const t = await bench(name, N, () => orm.em.fork().transactional(fn, { flushMode: FlushMode.COMMIT }));
    line.push(`${name} ${t.toFixed(0)} (+${(t - prev).toFixed(0)})`); prev = t;
  }
  console.log(line.join(' | '));
}
await orm.close(true);
