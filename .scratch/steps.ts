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
const base = async (tx: any) => { const x = await tx.findOne(EndpointSchema, { id: e.id, enterprise: e.enterprise_id }, L); const y = await tx.findOne(SimSchema, { id: s.id }, L); x.name = (flip++ % 2) ? 'A' : 'B'; y.msisdn = (flip % 2) ? '12345' : '54321'; return x; };
const ev = (x: any) => ({ enterprise: e.enterprise_id, actorId: 1, actorName: 'x', action: 'sim.linked', endpoint: x, endpointName: 'x', simIccid: '89', endpointStatusBefore: 'hold', endpointStatusAfter: 'hold', simStatusBefore: 'ready', simStatusAfter: 'ready', requestId: 'r' });
const key = () => ({ key: randomBytes(16).toString('hex'), enterprise: e.enterprise_id, userId: 1, action: 'x', outcome: { a: 1 } });
const baseQb = async (tx: any) => {
  const x = await tx.createQueryBuilder(EndpointSchema).select('*').where({ id: e.id, enterprise: e.enterprise_id }).setLockMode(LockMode.PESSIMISTIC_WRITE).getSingleResult();
  const y = await tx.createQueryBuilder(SimSchema).select('*').where({ id: s.id }).setLockMode(LockMode.PESSIMISTIC_WRITE).getSingleResult();
  x.name = (flip++ % 2) ? 'A' : 'B'; y.msisdn = (flip % 2) ? '12345' : '54321'; return x; };
const steps: [string, (tx: any) => Promise<void>][] = [
  ['findOne', async (tx) => { await base(tx); }],
  ['qb', async (tx) => { await baseQb(tx); }],
];
const N = Number(process.env.N ?? 40), R = Number(process.env.R ?? 25);
const sums = new Map<string, number>();
for (const [, fn] of steps) await bench('warm', 20, () => orm.em.fork().transactional(fn, { flushMode: FlushMode.COMMIT }));
for (let round = 0; round < R; round++) {
  for (const [name, fn] of steps) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) await orm.em.fork().transactional(fn, { flushMode: FlushMode.COMMIT });
    if (name === 'qb') { const c1 = process.cpuUsage(); for (let i = 0; i < N; i++) { const tx = orm.em.fork({ flushMode: FlushMode.COMMIT }); await tx.begin(); try { await base(tx); await tx.commit(); } catch (e) { await tx.rollback(); throw e; } } const c2 = process.cpuUsage(c1); sums.set('manual tx + findOne', (sums.get('manual tx + findOne') ?? 0) + c2.user + c2.system); }
    const c = process.cpuUsage(c0);
    sums.set(name, (sums.get(name) ?? 0) + (c.user + c.system));
  }
}
console.log([...sums].map(([k, v]) => `${k}: ${(v / N / R).toFixed(0)} µs`).join(' | '));
await orm.close(true);
