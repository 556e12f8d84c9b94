// CPU per link + de-link cycle, measured in-process over a fixed number of cycles after a warm-up.
// ROOT=/work/wt-uow-base or /work/wt-uow; DB=<url>; CYCLES, WORKERS; PROF=file to write a profile of the measured part.
import { randomBytes } from 'node:crypto';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
const root = process.env.ROOT ?? '/work/wt-uow';
const { MikroORM } = await import(`${root}/node_modules/@mikro-orm/postgresql/index.js`);
const { ormConfig } = await import(`${root}/src/db/mikro-orm.config.ts`);
const { findActor } = await import(`${root}/src/domain/accounts.ts`);
const { delinkSim, linkSim } = await import(`${root}/src/domain/lifecycle.ts`);
const workers = Number(process.env.WORKERS ?? 4);
const cycles = Number(process.env.CYCLES ?? 1500);
const orm = await MikroORM.init(ormConfig({ clientUrl: process.env.DB!, poolSize: workers + 2 }));
await orm.getMigrator().up();
const em = orm.em.fork();
const run = randomBytes(4).toString('hex');
const [ent] = await em.execute(`insert into enterprise (slug, name) values (?, ?) returning id`, [`cpu-${run}`, `cpu ${run}`]);
const [user] = await em.execute(`insert into app_user (enterprise_id, email, display_name, role) values (?, ?, 'Cpu Admin', 'admin') returning id`, [ent.id, `cpu-${run}@example.test`]);
const actor = (await findActor(em, user.id))!;
const pairs: { e: number; s: number }[] = [];
const { iccidFor, imsiFor } = await import(`${root}/src/db/generate-identifiers.ts`);
const [{ n }] = await em.execute(`select count(*)::int as n from sim where iccid like '894467%'`);
for (let i = 0; i < workers; i++) {
  const [e] = await em.execute(`insert into endpoint (enterprise_id, name, activate_immediately) values (?, ?, ?) returning id`, [ent.id, `cpu ${i}`, i % 2 === 0]);
  const [s] = await em.execute(`insert into sim (enterprise_id, iccid, imsi) values (?, ?, ?) returning id`, [ent.id, iccidFor(67, n + i + 1), imsiFor(67, n + i + 1)]);
  pairs.push({ e: e.id, s: s.id });
}
let k = 0;
const ctx = () => ({ actor, requestId: `cpu-${run}-${++k}`, key: `cpu-${run}-${k}-${randomBytes(6).toString('hex')}` });
async function go(total: number) {
  let left = total;
  await Promise.all(pairs.map(async ({ e, s }) => {
    while (left-- > 0) {
      await linkSim(orm.em.fork(), ctx(), e, s);
      await delinkSim(orm.em.fork(), ctx(), e);
    }
  }));
}
await go(Math.max(300, cycles / 3));
let session: Session | undefined;
if (process.env.PROF) { session = new Session(); session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.start'); }
const c0 = process.cpuUsage();
const t0 = performance.now();
await go(cycles);
const cpu = process.cpuUsage(c0);
const wall = performance.now() - t0;
if (session) { const { profile } = await session.post('Profiler.stop'); writeFileSync(process.env.PROF!, JSON.stringify(profile)); }
console.log(`${root.split('/').pop()}: ${cycles} cycles, ${workers} workers: CPU ${((cpu.user + cpu.system) / 1000 / cycles).toFixed(3)} ms/cycle (user ${(cpu.user / 1000 / cycles).toFixed(3)}, sys ${(cpu.system / 1000 / cycles).toFixed(3)}), ${(cycles / wall * 1000).toFixed(0)} cycles/s`);
await orm.close(true);
