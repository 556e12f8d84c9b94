// Swap SIM (docs/lifecycle.md): the endpoint's SIM exchanged for a Ready to Activate one in one transaction,
// case by case — every endpoint state × Activate Immediately, every kind of new SIM (free, taken, another
// enterprise's, the same one), roles, and the one-time key. An allowed swap changes exactly three rows and
// writes one `sim.swapped` event with both ICCIDs; a refused one changes nothing and writes no event.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TestDatabase } from '../helpers/database.js';
import { holdEndpoint, linkedEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import type { Actor } from '../../src/domain/accounts.js';
import type { LinkedStatus } from '../../src/domain/entities.js';
import { ConflictError, ForbiddenError, InvalidStateError, NotFoundError } from '../../src/domain/errors.js';
import { consequence, swapSim } from '../../src/domain/lifecycle.js';
import { findViolations } from '../../src/domain/invariants.js';
import { domainTestWorld, eventsSince, patched, refusedWith, snapshot, type Snapshot } from './support.js';

let db: TestDatabase;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Actor;
let viewer: Actor;
const fork = (): EntityManager => db.orm.em.fork();

beforeAll(async () => {
  ({ db, acme, globex, admin, viewer } = await domainTestWorld());
});
afterEach(async () => {
  expect(await findViolations(fork())).toEqual([]);
});
afterAll(() => db.close());

async function expectUnchanged(before: Snapshot) {
  const after = await snapshot(fork());
  expect(after).toEqual(before);
}

describe('swap SIM', () => {
  const STATES: LinkedStatus[] = ['pre_active', 'active', 'suspended'];
  for (const state of STATES) {
    for (const activateImmediately of [false, true]) {
      it(`an endpoint ${state} (Activate Immediately ${activateImmediately}) takes a Ready SIM; the old one goes back Ready`, async () => {
        const { endpoint, sim: old } = await linkedEndpoint(fork(), acme, state, { activateImmediately });
        const fresh = await readySim(fork(), acme);
        const before = await snapshot(fork());
        const outcome = await swapSim(fork(), { actor: admin, requestId: 'req-swap' }, endpoint.id, fresh.id);

        const status = activateImmediately ? 'active' : 'pre_active';
        expect(outcome).toMatchObject({
          operation: 'swap',
          endpointId: endpoint.id,
          endpointStatus: status,
          iccid: fresh.iccid,
          simStatus: status,
          message: `SIM ${old.iccid} swapped for SIM ${fresh.iccid}`,
          replayed: false,
        });
        const after = await snapshot(fork());
        expect(after.endpoints).toEqual(patched(before.endpoints, endpoint.id, { status, sim_id: fresh.id }));
        expect(after.sims).toEqual(
          patched(patched(before.sims, old.id, { status: 'ready', endpoint_id: null }), fresh.id, { status, endpoint_id: endpoint.id }),
        );
        const events = await eventsSince(fork(), before.lastEventId);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          action: 'sim.swapped',
          endpoint_id: endpoint.id,
          sim_iccid: fresh.iccid,
          old_sim_iccid: old.iccid,
          endpoint_status_before: state,
          endpoint_status_after: status,
          sim_status_before: 'ready',
          sim_status_after: status,
          actor_id: admin.id,
          request_id: 'req-swap',
        });
      });
    }
  }

  it('an endpoint on Hold has no SIM to swap: refused naming its state, nothing changes', async () => {
    const endpoint = await holdEndpoint(fork(), acme);
    const fresh = await readySim(fork(), acme);
    const before = await snapshot(fork());
    const error = await refusedWith(swapSim(fork(), { actor: admin }, endpoint.id, fresh.id));
    expect(error).toBeInstanceOf(InvalidStateError);
    expect(error.message).toBe(`Endpoint '${endpoint.name}' is on Hold; it has no SIM to swap.`);
    await expectUnchanged(before);
  });

  it('a new SIM that is linked elsewhere, or is the endpoint’s own, is refused; nothing changes', async () => {
    const { endpoint, sim } = await linkedEndpoint(fork(), acme, 'active');
    const { sim: taken } = await linkedEndpoint(fork(), acme, 'active');
    const before = await snapshot(fork());
    for (const [simId, message] of [
      [taken.id, 'This SIM was just linked to another endpoint. Choose another SIM.'],
      [sim.id, 'This SIM is already linked to this endpoint. Choose another SIM.'],
    ] as const) {
      const error = await refusedWith(swapSim(fork(), { actor: admin }, endpoint.id, simId));
      expect(error).toBeInstanceOf(ConflictError);
      expect(error.message).toBe(message);
    }
    await expectUnchanged(before);
  });

  it('another enterprise’s SIM or endpoint is not found; a viewer may not swap', async () => {
    const { endpoint } = await linkedEndpoint(fork(), acme, 'active');
    const foreignSim = await readySim(fork(), globex);
    const { endpoint: foreignEndpoint } = await linkedEndpoint(fork(), globex, 'active');
    const fresh = await readySim(fork(), acme);
    const before = await snapshot(fork());
    expect(await refusedWith(swapSim(fork(), { actor: admin }, endpoint.id, foreignSim.id))).toBeInstanceOf(NotFoundError);
    expect(await refusedWith(swapSim(fork(), { actor: admin }, foreignEndpoint.id, fresh.id))).toBeInstanceOf(NotFoundError);
    expect(await refusedWith(swapSim(fork(), { actor: viewer }, endpoint.id, fresh.id))).toBeInstanceOf(ForbiddenError);
    await expectUnchanged(before);
  });

  it('a replayed confirmation gets the first outcome and changes nothing more', async () => {
    const { endpoint } = await linkedEndpoint(fork(), acme, 'pre_active');
    const fresh = await readySim(fork(), acme);
    const key = 'swap-key-0123456789abcdef';
    const first = await swapSim(fork(), { actor: admin, key }, endpoint.id, fresh.id);
    const before = await snapshot(fork());
    const again = await swapSim(fork(), { actor: admin, key }, endpoint.id, fresh.id);
    expect(again).toEqual({ ...first, replayed: true });
    await expectUnchanged(before);
  });

  it('the confirmation says what will happen', () => {
    expect(consequence('swap', true)).toBe(
      'The old SIM will return to the inventory as Ready to Activate; the endpoint and the new SIM will become Active.',
    );
    expect(consequence('swap', false)).toMatch(/will become Pre-Active\.$/);
  });
});
