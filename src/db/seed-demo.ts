// Demo data for a newcomer: two enterprises with users, endpoints in every state and a SIM inventory.
// Runs on the first start of an empty database (SEED_DEMO=false turns it off); a second run adds nothing.
// Built as entities (em.create, flush) in one transaction; the history through the lifecycle's event writer.
import { ref } from '@mikro-orm/core';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { actorOf } from '../domain/accounts.js';
import {
  EndpointSchema,
  EnterpriseSchema,
  SimSchema,
  UserSchema,
  type Endpoint,
  type EndpointStatus,
  type EventAction,
} from '../domain/entities.js';
import { recordEvent, type EventContext } from '../domain/events.js';
import { hashPassword } from '../domain/passwords.js';
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

/**
 * Seeds the demo enterprises when the database has none. Returns true when it seeded. Two instances starting
 * at once on an empty database both find it empty; the second's transaction then waits on the first's
 * enterprise slugs (unique) and fails when the first commits — it has seeded nothing, and says so.
 */
export async function seedDemo(em: EntityManager): Promise<boolean> {
  const passwordHash = await hashPassword(DEMO_PASSWORD);
  try {
    return await em.fork().transactional(async (tx) => {
      if ((await tx.count(EnterpriseSchema)) > 0) return false;
      for (const enterprise of ENTERPRISES) await seedEnterprise(tx, enterprise, passwordHash);
      return true;
    });
  } catch (error) {
    if (error instanceof UniqueConstraintViolationException && (await em.fork().count(EnterpriseSchema)) > 0) return false;
    throw error;
  }
}

/** One demo enterprise, as entities: created and flushed (ids), then linked one endpoint at a time; its history recorded like the lifecycle's. */
async function seedEnterprise(tx: EntityManager, demo: DemoEnterprise, passwordHash: string): Promise<void> {
  const enterprise = tx.create(EnterpriseSchema, { slug: demo.slug, name: demo.name });
  const users = demo.users.map((user) => tx.create(UserSchema, { enterprise, ...user, passwordHash }));

  // SIMs: every one valid; most with an EID and an MSISDN.
  const sims = Array.from({ length: demo.sims }, (_, i) => {
    const serial = i + 1;
    return tx.create(SimSchema, {
      enterprise,
      iccid: iccidFor(demo.series, serial),
      imsi: imsiFor(demo.series, serial),
      eid: serial % 7 === 0 ? null : eidFor(demo.series, serial),
      msisdn: serial % 5 === 0 ? null : msisdnFor(demo.series, serial),
      status: 'ready',
      endpoint: null,
    });
  });

  // Endpoints in every state, created on Hold; the linked ones take SIMs from the end of the inventory, so
  // the picker's first pages (ICCID order) show Ready to Activate SIMs at once.
  const endpoints: { endpoint: Endpoint; status: EndpointStatus }[] = [];
  let n = 0;
  for (const { status, count } of demo.endpoints) {
    for (let i = 0; i < count; i++) {
      n++;
      const name = `${demo.endpointNames[n % demo.endpointNames.length]} ${String(n).padStart(2, '0')}`;
      // Pre-Active is where a link leaves an endpoint that does not activate immediately; never the other way.
      const activateImmediately = status !== 'pre_active' && n % 2 === 0;
      const endpoint = tx.create(EndpointSchema, {
        enterprise,
        name,
        imei: n % 3 === 0 ? null : imeiFor(demo.series * 1000 + n),
        activateImmediately,
        status: 'hold',
        sim: null,
      });
      endpoints.push({ endpoint, status });
    }
  }
  await tx.flush();

  // The demo endpoints come with the history they would have had, so their pages are not blank: the events
  // are made by the audit trail's one writer, in the admin's name, as if the admin had done it all.
  const admin = users.find((user) => user.role === 'admin');
  if (!admin) throw new Error(`The demo enterprise ${demo.slug} needs an admin`);
  const ctx: EventContext = { actor: actorOf(admin, enterprise), requestId: 'demo-seed' };
  for (const { endpoint, status } of endpoints) {
    await recordEvent(tx, ctx, 'endpoint.created', { endpoint, endpointStatus: [null, 'hold'], simStatus: [null, null] });
    if (status === 'hold') continue;
    const sim = sims.pop()!;
    // Both rows change in this transaction; the link's foreign keys are checked at commit.
    endpoint.status = status;
    endpoint.sim = ref(sim);
    sim.status = status;
    sim.endpoint = ref(endpoint);
    // One link per flush, as the lifecycle does: a flush of many links at once wrote the SIMs' statuses in a
    // batched UPDATE without their endpoint_id (MikroORM 6.6.16), which the check sim_ready_iff_no_endpoint refuses.
    await tx.flush();
    const linkedAs = endpoint.activateImmediately ? 'active' : 'pre_active';
    const step = (action: EventAction, from: string, to: string, simFrom: string, simTo: string) =>
      recordEvent(tx, ctx, action, { endpoint, iccid: sim.iccid, endpointStatus: [from, to], simStatus: [simFrom, simTo] });
    await step('sim.linked', 'hold', linkedAs, 'ready', linkedAs);
    if (status !== 'pre_active' && linkedAs === 'pre_active')
      await step('endpoint.activated', 'pre_active', 'active', 'pre_active', 'active');
    if (status === 'suspended') await step('endpoint.suspended', 'active', 'suspended', 'active', 'suspended');
  }
}
