// Bulk data for scale tests and the benchmark: hundreds of thousands of SIMs and endpoints in minutes,
// by multi-row inserts (10,000 rows a statement) and set-based linking — never a row at a time.
import type { EntityManager } from '@mikro-orm/postgresql';
import { eidFor, iccidFor, imsiFor, msisdnFor } from './generate-identifiers.js';

export const BULK_SERIES = 77;
const BATCH = 10_000;

export interface BulkOptions {
  enterprise: string;
  sims: number;
  endpoints: number;
  /** How many of the new endpoints get one of the new SIMs (default: 85% of endpoints). */
  linked?: number;
  log?: (line: string) => void;
}

export interface BulkResult {
  sims: number;
  endpoints: number;
  linked: number;
  ms: number;
}

/** A PostgreSQL array literal of digit strings (digits need no quoting); null → NULL. */
function arrayLiteral(values: (string | null)[]): string {
  return `{${values.map((v) => (v === null ? 'NULL' : v)).join(',')}}`;
}

export async function seedBulk(em: EntityManager, options: BulkOptions): Promise<BulkResult> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const [enterprise] = await em.execute<{ id: number }[]>('select id from enterprise where slug = ?', [options.enterprise]);
  if (!enterprise) throw new Error(`No enterprise with slug "${options.enterprise}". Start the app once to seed the demo, or create it.`);
  const enterpriseId = enterprise.id;

  // Continue the bulk series after what earlier runs inserted.
  const [{ last }] = await em.execute<{ last: string | null }[]>(
    `select max(substring(iccid from 7 for 12)) as last from sim where iccid like ?`,
    [`8944${BULK_SERIES}%`],
  );
  let serial = last ? Number(last) : 0;

  for (let done = 0; done < options.sims;) {
    const size = Math.min(BATCH, options.sims - done);
    const iccids: string[] = [];
    const imsis: string[] = [];
    const eids: (string | null)[] = [];
    const msisdns: (string | null)[] = [];
    for (let i = 0; i < size; i++) {
      serial++;
      iccids.push(iccidFor(BULK_SERIES, serial));
      imsis.push(imsiFor(BULK_SERIES, serial));
      eids.push(serial % 10 === 0 ? null : eidFor(BULK_SERIES, serial));
      msisdns.push(serial % 4 === 0 ? null : msisdnFor(BULK_SERIES, serial % 10_000_000));
    }
    await em.execute(
      `insert into sim (enterprise_id, iccid, imsi, eid, msisdn)
       select ?, * from unnest(?::text[], ?::text[], ?::text[], ?::text[])`,
      [enterpriseId, arrayLiteral(iccids), arrayLiteral(imsis), arrayLiteral(eids), arrayLiteral(msisdns)],
    );
    done += size;
    if (done % 100_000 === 0 || done === options.sims) log(`SIMs: ${done.toLocaleString('en')} / ${options.sims.toLocaleString('en')}`);
  }

  const [{ first }] = await em.execute<{ first: number }[]>(`select coalesce(max(id), 0) + 1 as first from endpoint`);
  for (let done = 0; done < options.endpoints;) {
    const size = Math.min(BATCH * 10, options.endpoints - done);
    // No IMEI: an IMEI belongs to one endpoint of an enterprise (endpoint_imei_unique), and runs repeat.
    await em.execute(
      `insert into endpoint (enterprise_id, name, imei, activate_immediately)
       select ?, 'Bulk endpoint ' || g, null, g % 2 = 0 from generate_series(?::int, ?::int) g`,
      [enterpriseId, first + done, first + done + size - 1],
    );
    done += size;
  }
  log(`Endpoints: ${options.endpoints.toLocaleString('en')}`);

  // Link the new Hold endpoints to the newest Ready to Activate SIMs (so the picker's first pages,
  // in ICCID order, stay Ready to Activate), spread over Pre-Active, Active and Suspended.
  const linked = Math.min(options.linked ?? Math.floor(options.endpoints * 0.85), options.endpoints, options.sims);
  if (linked > 0) {
    // Statistics first: without them the planner takes the freshly loaded tables for nearly empty and
    // pairs endpoints with SIMs by a nested loop — 21 s for 8,469 pairs, hours for 85,000.
    await em.execute('analyze sim');
    await em.execute('analyze endpoint');
    await em.transactional(async (tx) => {
      await tx.execute(
        `create temporary table bulk_pairs on commit drop as
         select e.id as endpoint_id, s.id as sim_id, (array['pre_active', 'active', 'suspended'])[1 + e.rn % 3] as status
         from (select id, row_number() over (order by id) as rn from endpoint
               where enterprise_id = ? and status = 'hold' and id >= ? order by id limit ?) e
         join (select id, row_number() over (order by id desc) as rn from sim
               where enterprise_id = ? and status = 'ready' order by id desc limit ?) s using (rn)`,
        [enterpriseId, first, linked, enterpriseId, linked],
      );
      await tx.execute(`update endpoint e set sim_id = p.sim_id, status = p.status from bulk_pairs p where e.id = p.endpoint_id`);
      await tx.execute(`update sim s set endpoint_id = p.endpoint_id, status = p.status from bulk_pairs p where s.id = p.sim_id`);
    });
    log(`Linked: ${linked.toLocaleString('en')}`);
  }
  await em.execute('analyze sim');
  await em.execute('analyze endpoint');
  return { sims: options.sims, endpoints: options.endpoints, linked, ms: Date.now() - started };
}
