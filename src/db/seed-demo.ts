// Demo data for a newcomer: two enterprises with users, endpoints in every state and a SIM inventory.
// Runs on the first start of an empty database (SEED_DEMO=false turns it off); a second run adds nothing.
import type { EntityManager } from '@mikro-orm/postgresql';
import { hashPassword } from '../domain/passwords.js';
import type { EndpointStatus } from '../domain/entities.js';
import { eidFor, iccidFor, imeiFor, imsiFor, msisdnFor } from './generate-identifiers.js';

export const DEMO_PASSWORD = 'demo-password';

interface DemoEnterprise {
  slug: string;
  name: string;
  series: number;
  users: { email: string; displayName: string; role: 'admin' | 'viewer' }[];
  endpoints: { status: EndpointStatus; count: number }[];
  sims: number;
  endpointNames: string[];
}

const ENTERPRISES: DemoEnterprise[] = [
  {
    slug: 'acme',
    name: 'Acme Logistics',
    series: 10,
    users: [
      { email: 'admin@acme.example', displayName: 'Ada Admin', role: 'admin' },
      { email: 'viewer@acme.example', displayName: 'Vic Viewer', role: 'viewer' },
    ],
    endpoints: [
      { status: 'hold', count: 12 },
      { status: 'pre_active', count: 8 },
      { status: 'active', count: 10 },
      { status: 'suspended', count: 6 },
    ],
    sims: 320,
    endpointNames: ['Truck', 'Trailer', 'Cold box', 'Forklift', 'Gate sensor', 'Pallet tracker'],
  },
  {
    slug: 'globex',
    name: 'Globex Utilities',
    series: 20,
    users: [{ email: 'admin@globex.example', displayName: 'Gus Admin', role: 'admin' }],
    endpoints: [
      { status: 'hold', count: 2 },
      { status: 'active', count: 3 },
    ],
    sims: 15,
    endpointNames: ['Meter', 'Substation'],
  },
];

/** Seeds the demo enterprises when the database has none. Returns true when it seeded. */
export async function seedDemo(em: EntityManager): Promise<boolean> {
  const passwordHash = await hashPassword(DEMO_PASSWORD);
  return em.transactional(async (tx) => {
        // An advisory lock makes two instances starting at once seed only once.
    await tx.execute('select pg_advisory_xact_lock(4242)');
    const [{ count }] = await tx.execute<{ count: string }[]>('select count(*) from enterprise');
    if (Number(count) > 0) return false;
    for (const enterprise of ENTERPRISES) await seedEnterprise(tx, enterprise, passwordHash);
    return true;
  });
}

async function seedEnterprise(tx: EntityManager, demo: DemoEnterprise, passwordHash: string): Promise<void> {
    const [{ id: enterpriseId }] = await tx.execute<{ id: number }[]>(
    'insert into enterprise (slug, name) values (?, ?) returning id',
    [demo.slug, demo.name],
  );
  let admin: { id: number; name: string } | undefined;
  for (const user of demo.users) {
    const [{ id }] = await tx.execute<{ id: number }[]>(
      'insert into app_user (enterprise_id, email, display_name, role, password_hash) values (?, ?, ?, ?, ?) returning id',
      [enterpriseId, user.email, user.displayName, user.role, passwordHash],
    );
    if (user.role === 'admin') admin ??= { id, name: user.displayName };
  }
  // The demo endpoints come with the history they would have had, so their pages are not blank.
  const event = (action: string, endpoint: { id: number; name: string }, iccid: string | null, from: string | null, to: string, simFrom: string | null, simTo: string | null) =>
    tx.execute(
      `insert into event (enterprise_id, actor_id, actor_name, action, endpoint_id, endpoint_name, sim_iccid,
         endpoint_status_before, endpoint_status_after, sim_status_before, sim_status_after, request_id)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'demo-seed')`,
      [enterpriseId, admin?.id ?? null, admin?.name ?? 'Demo data', action, endpoint.id, endpoint.name, iccid, from, to, simFrom, simTo],
    );

  // SIMs: every one valid; most with an EID and an MSISDN.
  const simIds: number[] = [];
  for (let serial = 1; serial <= demo.sims; serial++) {
    const [{ id }] = await tx.execute<{ id: number }[]>(
      'insert into sim (enterprise_id, iccid, imsi, eid, msisdn) values (?, ?, ?, ?, ?) returning id',
      [
        enterpriseId,
        iccidFor(demo.series, serial),
        imsiFor(demo.series, serial),
        serial % 7 === 0 ? null : eidFor(demo.series, serial),
        serial % 5 === 0 ? null : msisdnFor(demo.series, serial),
      ],
    );
    simIds.push(id);
  }

  // Endpoints in every state; the linked ones take SIMs from the end of the inventory, so the
  // picker's first pages (ICCID order) show Ready to Activate SIMs at once.
  let n = 0;
  for (const { status, count } of demo.endpoints) {
    for (let i = 0; i < count; i++) {
      n++;
      const name = `${demo.endpointNames[n % demo.endpointNames.length]} ${String(n).padStart(2, '0')}`;
      // Pre-Active is where a link leaves an endpoint that does not activate immediately; never the other way.
      const activateImmediately = status !== 'pre_active' && n % 2 === 0;
      const [{ id: endpointId }] = await tx.execute<{ id: number }[]>(
        'insert into endpoint (enterprise_id, name, imei, activate_immediately) values (?, ?, ?, ?) returning id',
        [enterpriseId, name, n % 3 === 0 ? null : imeiFor(demo.series * 1000 + n), activateImmediately],
      );
      const endpoint = { id: endpointId, name };
      await event('endpoint.created', endpoint, null, null, 'hold', null, null);
      if (status === 'hold') continue;
      const simId = simIds.pop()!;
      // Both rows in one transaction; the link's foreign keys are checked at commit.
      const [{ iccid }] = await tx.execute<{ iccid: string }[]>('update sim set status = ?, endpoint_id = ? where id = ? returning iccid', [status, endpointId, simId]);
      await tx.execute('update endpoint set status = ?, sim_id = ? where id = ?', [status, simId, endpointId]);
      const linkedAs = activateImmediately ? 'active' : 'pre_active';
      await event('sim.linked', endpoint, iccid, 'hold', linkedAs, 'ready', linkedAs);
      if (status !== 'pre_active' && linkedAs === 'pre_active') await event('endpoint.activated', endpoint, iccid, 'pre_active', 'active', 'pre_active', 'active');
      if (status === 'suspended') await event('endpoint.suspended', endpoint, iccid, 'active', 'suspended', 'active', 'suspended');
    }
  }
}
