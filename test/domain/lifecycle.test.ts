// The lifecycle operations (docs/lifecycle.md), case by case: the whole state table (every operation × every
// endpoint state × the SIM it is given), tenant scope, roles, validation and one-time keys.
// Allowed cases must produce exactly the spec's effect on both rows and exactly the spec's event(s);
// refused cases must leave every row of endpoint, sim and operation_key as it was and write no event.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TestDatabase } from '../helpers/database.js';
import { holdEndpoint, linkedEndpoint, readySim, type TestEnterprise, type TestSim } from '../factories/index.js';
import type { Actor } from '../../src/domain/accounts.js';
import type { EndpointStatus, LinkedStatus } from '../../src/domain/entities.js';
import { ConflictError, ForbiddenError, InvalidStateError, NotFoundError, ValidationError } from '../../src/domain/errors.js';
import {
  activateEndpoint,
  createEndpoint,
  delinkSim,
  linkSim,
  resumeEndpoint,
  suspendEndpoint,
  type CreateEndpointInput,
  type OperationContext,
} from '../../src/domain/lifecycle.js';
import { findViolations } from '../../src/domain/invariants.js';
import { iccidFor, imeiFor } from '../../src/db/generate-identifiers.js';
import { actorFor, domainTestWorld, eventsSince, patched, refusedWith, type Row, snapshot, type Snapshot } from './support.js';

let db: TestDatabase;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Actor;
let otherAdmin: Actor;
let viewer: Actor;
const fork = (): EntityManager => db.orm.em.fork();

beforeAll(async () => {
  ({ db, acme, globex, admin, viewer } = await domainTestWorld());
  otherAdmin = await actorFor(fork(), acme, 'admin');
});
afterAll(() => db?.close());
afterEach(async () => {
  expect(await findViolations(fork())).toEqual([]);
});

// ---- The lifecycle rules (docs/lifecycle.md), as these tests read them (written out here, not taken from the code under test) ----

type EndpointOp = 'link' | 'delink' | 'activate' | 'suspend' | 'resume';
const OPS: EndpointOp[] = ['link', 'delink', 'activate', 'suspend', 'resume'];
const STATES: EndpointStatus[] = ['hold', 'pre_active', 'active', 'suspended'];
const LINKED: LinkedStatus[] = ['pre_active', 'active', 'suspended'];
const LABEL: Record<string, string> = {
  hold: 'Hold',
  ready: 'Ready to Activate',
  pre_active: 'Pre-Active',
  active: 'Active',
  suspended: 'Suspended',
};
const onState = (status: EndpointStatus) => (status === 'hold' ? 'on Hold' : LABEL[status]);

const SPEC: Record<EndpointOp, { from: EndpointStatus[]; rule: string; action: string }> = {
  link: { from: ['hold'], rule: 'a SIM can only be linked to an endpoint on Hold', action: 'sim.linked' },
  delink: { from: ['pre_active', 'active', 'suspended'], rule: 'it has no SIM to de-link', action: 'sim.delinked' },
  activate: { from: ['pre_active'], rule: 'only a Pre-Active endpoint can be activated', action: 'endpoint.activated' },
  suspend: { from: ['active'], rule: 'only an Active endpoint can be suspended', action: 'endpoint.suspended' },
  resume: { from: ['suspended'], rule: 'only a Suspended endpoint can be resumed', action: 'endpoint.resumed' },
};
const TRANSITION: Record<'activate' | 'suspend' | 'resume', { to: LinkedStatus; verb: string }> = {
  activate: { to: 'active', verb: 'activated' },
  suspend: { to: 'suspended', verb: 'suspended' },
  resume: { to: 'active', verb: 'resumed' },
};
const SIM_TAKEN = 'This SIM was just linked to another endpoint. Choose another SIM.';
const KEY_USED = 'This confirmation form was already used. Go back and start again.';
const UNKNOWN_ID = 999_999_999;

// ---- arranging and acting ----

let unknownSerial = 0;
/** A well-formed ICCID that no SIM has. */
const unknownIccid = () => iccidFor(99, 900_000 + ++unknownSerial);
let keySerial = 0;
const newKey = () => `key-${process.pid}-${++keySerial}-abcdefghijkl`;

async function endpointIn(em: EntityManager, enterprise: TestEnterprise, state: EndpointStatus, activateImmediately = false) {
  if (state === 'hold') return { endpoint: await holdEndpoint(em, enterprise, { activateImmediately }), sim: null };
  return linkedEndpoint(em, enterprise, state, { activateImmediately });
}

/** The SIM a link is given: Ready to Activate, linked elsewhere (in some status), the endpoint's own, or none. */
type SimCase = 'ready' | 'elsewhere:pre_active' | 'elsewhere:active' | 'elsewhere:suspended' | 'own' | 'unknown';
const SIM_CASES: SimCase[] = ['ready', 'elsewhere:pre_active', 'elsewhere:active', 'elsewhere:suspended', 'own', 'unknown'];

async function simFor(em: EntityManager, simCase: SimCase, own: TestSim | null): Promise<TestSim> {
  if (simCase === 'ready') return readySim(em, acme);
  if (simCase === 'own') return own!;
  if (simCase === 'unknown') return { id: UNKNOWN_ID, iccid: unknownIccid(), imsi: '', eid: null };
  return (await linkedEndpoint(em, acme, simCase.slice('elsewhere:'.length) as LinkedStatus)).sim;
}

function perform(op: EndpointOp, ctx: OperationContext, endpointId: number, simId?: number) {
  switch (op) {
    case 'link':
      return linkSim(fork(), ctx, endpointId, simId!);
    case 'delink':
      return delinkSim(fork(), ctx, endpointId);
    case 'activate':
      return activateEndpoint(fork(), ctx, endpointId);
    case 'suspend':
      return suspendEndpoint(fork(), ctx, endpointId);
    case 'resume':
      return resumeEndpoint(fork(), ctx, endpointId);
  }
}

/** Asserts that the attempt was refused with this error and that nothing at all changed. */
async function expectRefused(attempt: Promise<unknown>, before: Snapshot, errorClass: new (...args: never[]) => Error, message?: string) {
  const error = await refusedWith(attempt);
  expect(error).toBeInstanceOf(errorClass);
  if (message !== undefined) expect(error.message).toBe(message);
  expect(await snapshot(fork())).toEqual(before);
  expect(await eventsSince(fork(), before.lastEventId)).toEqual([]);
  return error;
}

function event(actor: Actor, fields: Row): Row {
  return {
    id: expect.anything(),
    enterprise_id: actor.enterpriseId,
    actor_id: actor.id,
    actor_name: actor.displayName,
    count: null,
    problem_count: null,
    old_sim_iccid: null,
    bulk_job_id: null,
    bulk_state: null,
    source: 'ui',
    created_at: expect.any(String),
    ...fields,
  };
}

/**
 * updated_at of a changed row moved forward (it is now() of the operation's transaction). Timestamps come
 * back as PostgreSQL's text, e.g. '2026-11-27 01:25:49.22+00', which in UTC compares correctly as a string.
 */
function expectTouched(before: Row[], after: Row[], id: number) {
  const was = before.find((row) => row.id === id)!.updated_at as string;
  const now = after.find((row) => row.id === id)!.updated_at as string;
  expect(was).toMatch(/\+00$/);
  expect(now > was).toBe(true);
}

// ---- the state table ----

interface TableCase {
  title: string;
  op: EndpointOp;
  state: EndpointStatus;
  activateImmediately: boolean;
  sim: SimCase | null;
}

const TABLE: TableCase[] = [];
for (const op of OPS) {
  for (const state of STATES) {
    for (const activateImmediately of [false, true]) {
      const simCases: (SimCase | null)[] = op === 'link' ? SIM_CASES.filter((s) => s !== 'own' || state !== 'hold') : [null];
      for (const sim of simCases) {
        const simWords = sim ? `given SIM ${sim}` : state === 'hold' ? 'no SIM' : `its SIM ${state}`;
        TABLE.push({
          title: `${op} · endpoint ${state} · Activate Immediately ${activateImmediately ? 'on' : 'off'} · ${simWords}`,
          op,
          state,
          activateImmediately,
          sim,
        });
      }
    }
  }
}

describe('the state table: every operation × every endpoint state × the SIM', () => {
  it('covers every combination', () => {
    // link: 4 states × 2 × (6 SIM cases, 5 for Hold); the others: 4 states × 2.
    expect(TABLE).toHaveLength(2 * (5 + 6 + 6 + 6) + 4 * 4 * 2);
  });

  it.each(TABLE.map((c, i) => [c.title, { ...c, requestId: `table-${i}` }] as const))('%s', async (_title, c) => {
    const em = fork();
    const { endpoint, sim: own } = await endpointIn(em, acme, c.state, c.activateImmediately);
    const sim = c.op === 'link' ? await simFor(em, c.sim!, own) : own;
    const ctx: OperationContext = { actor: admin, requestId: c.requestId };
    const before = await snapshot(fork());
    const attempt = perform(c.op, ctx, endpoint.id, sim?.id);

    const spec = SPEC[c.op];
    if (!spec.from.includes(c.state)) {
      await expectRefused(attempt, before, InvalidStateError, `Endpoint '${endpoint.name}' is ${onState(c.state)}; ${spec.rule}.`);
      return;
    }
    if (c.op === 'link' && c.sim === 'unknown') {
      await expectRefused(attempt, before, NotFoundError, 'The SIM was not found.');
      return;
    }
    if (c.op === 'link' && c.sim!.startsWith('elsewhere:')) {
      await expectRefused(attempt, before, ConflictError, SIM_TAKEN);
      return;
    }

    // Allowed: exactly the spec's effect on both rows, nothing else, and exactly one event.
    const outcome = await attempt;
    const after = await snapshot(fork());
    const events = await eventsSince(fork(), before.lastEventId);
    const iccid = sim!.iccid;
    let endpointAfter: Row, simAfter: Row, statuses: Row, expectedOutcome: Row;
    if (c.op === 'link') {
      const status = c.activateImmediately ? 'active' : 'pre_active';
      endpointAfter = { status, sim_id: sim!.id };
      simAfter = { status, endpoint_id: endpoint.id };
      statuses = { endpoint_status_before: 'hold', endpoint_status_after: status, sim_status_before: 'ready', sim_status_after: status };
      expectedOutcome = { endpointStatus: status, simStatus: status, message: `SIM ${iccid} linked successfully` };
    } else if (c.op === 'delink') {
      endpointAfter = { status: 'hold', sim_id: null };
      simAfter = { status: 'ready', endpoint_id: null };
      statuses = { endpoint_status_before: c.state, endpoint_status_after: 'hold', sim_status_before: c.state, sim_status_after: 'ready' };
      expectedOutcome = { endpointStatus: 'hold', simStatus: 'ready', message: `SIM ${iccid} de-linked successfully` };
    } else {
      const { to, verb } = TRANSITION[c.op];
      endpointAfter = { status: to };
      simAfter = { status: to };
      statuses = { endpoint_status_before: c.state, endpoint_status_after: to, sim_status_before: c.state, sim_status_after: to };
      expectedOutcome = { endpointStatus: to, simStatus: to, message: `Endpoint '${endpoint.name}' ${verb} successfully` };
    }
    expect(outcome).toEqual({
      operation: c.op,
      endpointId: endpoint.id,
      endpointName: endpoint.name,
      iccid,
      replayed: false,
      ...expectedOutcome,
    });
    expect(after.endpoints).toEqual(patched(before.endpoints, endpoint.id, endpointAfter));
    expect(after.sims).toEqual(patched(before.sims, sim!.id, simAfter));
    expect(after.keys).toEqual(before.keys);
    expectTouched(before.endpoints, after.endpoints, endpoint.id);
    expectTouched(before.sims, after.sims, sim!.id);
    expect(events).toEqual([
      event(admin, {
        action: spec.action,
        endpoint_id: endpoint.id,
        endpoint_name: endpoint.name,
        sim_iccid: iccid,
        request_id: c.requestId,
        ...statuses,
      }),
    ]);
  });
});

// ---- creating endpoints ----

interface CreateCase {
  title: string;
  by: 'none' | 'id' | 'iccid';
  activateImmediately: boolean;
  imei: boolean;
  sim: Exclude<SimCase, 'own'> | null;
}
const CREATE_TABLE: CreateCase[] = [];
for (const activateImmediately of [false, true]) {
  for (const imei of [false, true]) {
    CREATE_TABLE.push({
      title: `create without SIM · Activate Immediately ${activateImmediately ? 'on' : 'off'} · IMEI ${imei ? 'given' : 'none'}`,
      by: 'none',
      activateImmediately,
      imei,
      sim: null,
    });
  }
  for (const by of ['id', 'iccid'] as const) {
    for (const sim of SIM_CASES.filter((s): s is Exclude<SimCase, 'own'> => s !== 'own')) {
      CREATE_TABLE.push({
        title: `create with SIM by ${by} · Activate Immediately ${activateImmediately ? 'on' : 'off'} · SIM ${sim}`,
        by,
        activateImmediately,
        imei: true,
        sim,
      });
    }
  }
}

describe('create endpoint: without a SIM, and with one by id or by ICCID', () => {
  it('covers every combination', () => {
    expect(CREATE_TABLE).toHaveLength(2 * (2 + 2 * 5));
  });

  it.each(CREATE_TABLE.map((c, i) => [c.title, { ...c, requestId: `create-${i}` }] as const))('%s', async (_title, c) => {
    const em = fork();
    const sim = c.sim ? await simFor(em, c.sim, null) : null;
    const name = `Created ${c.requestId}`;
    // One IMEI per case (an IMEI belongs to one endpoint of the enterprise); `c` is a copy, so index by requestId.
    const imei = c.imei ? imeiFor(700_000 + Number(c.requestId.slice('create-'.length))) : undefined;
    const input: CreateEndpointInput = {
      name,
      imei,
      activateImmediately: c.activateImmediately,
      ...(c.by === 'id' ? { simId: sim!.id } : c.by === 'iccid' ? { iccid: sim!.iccid } : {}),
    };
    const ctx: OperationContext = { actor: admin, requestId: c.requestId };
    const before = await snapshot(fork());
    const attempt = createEndpoint(fork(), ctx, input);

    if (c.sim === 'unknown') {
      const error = await expectRefused(attempt, before, ValidationError);
      const message = c.by === 'id' ? 'That SIM is not in your inventory' : `There is no SIM with ICCID ${sim!.iccid} in your inventory`;
      expect((error as ValidationError).errors).toEqual([{ field: 'iccid', message }]);
      return;
    }
    if (c.sim?.startsWith('elsewhere:')) {
      const status = c.sim.slice('elsewhere:'.length);
      const error = await expectRefused(attempt, before, ValidationError);
      expect((error as ValidationError).errors).toEqual([
        { field: 'iccid', message: `SIM ${sim!.iccid} is ${LABEL[status]}, not Ready to Activate; choose another SIM` },
      ]);
      return;
    }

    const outcome = await attempt;
    const after = await snapshot(fork());
    const events = await eventsSince(fork(), before.lastEventId);
    const status = sim ? (c.activateImmediately ? 'active' : 'pre_active') : 'hold';
    const created = after.endpoints.at(-1)!;
    expect(created).toEqual({
      id: outcome.endpointId,
      enterprise_id: acme.id,
      name,
      imei: imei ?? null,
      activate_immediately: c.activateImmediately,
      status,
      sim_id: sim?.id ?? null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    expect(after.endpoints).toEqual([...before.endpoints, created]);
    expect(after.sims).toEqual(sim ? patched(before.sims, sim.id, { status, endpoint_id: outcome.endpointId }) : before.sims);
    expect(after.keys).toEqual(before.keys);
    const createdEvent = event(admin, {
      action: 'endpoint.created',
      endpoint_id: outcome.endpointId,
      endpoint_name: name,
      sim_iccid: null,
      request_id: c.requestId,
      endpoint_status_before: null,
      endpoint_status_after: 'hold',
      sim_status_before: null,
      sim_status_after: null,
    });
    if (!sim) {
      expect(outcome).toEqual({
        operation: 'create',
        endpointId: created.id,
        endpointName: name,
        endpointStatus: 'hold',
        iccid: null,
        simStatus: null,
        message: `Endpoint '${name}' created successfully`,
        replayed: false,
      });
      expect(events).toEqual([createdEvent]);
      return;
    }
    expect(outcome).toEqual({
      operation: 'create',
      endpointId: created.id,
      endpointName: name,
      endpointStatus: status,
      iccid: sim.iccid,
      simStatus: status,
      message: `Endpoint '${name}' created successfully; SIM ${sim.iccid} linked, both ${LABEL[status]}`,
      replayed: false,
    });
    expect(events).toEqual([
      createdEvent,
      event(admin, {
        action: 'sim.linked',
        endpoint_id: outcome.endpointId,
        endpoint_name: name,
        sim_iccid: sim.iccid,
        request_id: c.requestId,
        endpoint_status_before: 'hold',
        endpoint_status_after: status,
        sim_status_before: 'ready',
        sim_status_after: status,
      }),
    ]);
  });
});

describe('create endpoint: validation', () => {
  const validImei = imeiFor(424_242);
  const wrongImei = validImei.slice(0, 14) + String((Number(validImei[14]) + 1) % 10);
  const validIccid = iccidFor(98, 1);
  const wrongIccid = validIccid.slice(0, 18) + String((Number(validIccid[18]) + 1) % 10);
  const CASES: [string, Partial<CreateEndpointInput>, { field: string; message: string }[]][] = [
    ['empty name', { name: '' }, [{ field: 'name', message: 'Enter a name for the endpoint' }]],
    ['blank name', { name: '   \t ' }, [{ field: 'name', message: 'Enter a name for the endpoint' }]],
    ['101-character name', { name: 'x'.repeat(101) }, [{ field: 'name', message: 'Name must be 100 characters or fewer' }]],
    ['IMEI of 14 digits', { imei: validImei.slice(0, 14) }, [{ field: 'imei', message: 'IMEI must be exactly 15 digits' }]],
    ['IMEI with a wrong check digit', { imei: wrongImei }, [{ field: 'imei', message: 'IMEI check digit is wrong' }]],
    ['IMEI with letters', { imei: '35693803ABCDEF1' }, [{ field: 'imei', message: 'IMEI must contain only digits' }]],
    ['ICCID with a wrong check digit', { iccid: wrongIccid }, [{ field: 'iccid', message: 'ICCID check digit is wrong' }]],
    ['ICCID of 18 digits', { iccid: validIccid.slice(0, 18) }, [{ field: 'iccid', message: 'ICCID must be 19 or 20 digits' }]],
    ['ICCID not starting with 89', { iccid: '1234567890123456789' }, [{ field: 'iccid', message: 'ICCID must start with 89' }]],
    ['ICCID with letters', { iccid: '8944ABCD' }, [{ field: 'iccid', message: 'ICCID must contain only digits' }]],
    [
      'every field wrong at once',
      { name: '', imei: wrongImei, iccid: wrongIccid },
      [
        { field: 'name', message: 'Enter a name for the endpoint' },
        { field: 'imei', message: 'IMEI check digit is wrong' },
        { field: 'iccid', message: 'ICCID check digit is wrong' },
      ],
    ],
  ];

  it.each(CASES)('%s → ValidationError naming the field, nothing changed', async (_title, fields, errors) => {
    const before = await snapshot(fork());
    const attempt = createEndpoint(fork(), { actor: admin, key: newKey() }, { name: 'Valid name', activateImmediately: true, ...fields });
    const error = await expectRefused(attempt, before, ValidationError);
    expect((error as ValidationError).errors).toEqual(errors);
  });

  it('a name of 100 characters outside the BMP (emoji) is accepted, as the database counts characters', async () => {
    const name = '📡'.repeat(100);
    const outcome = await createEndpoint(fork(), { actor: admin }, { name, activateImmediately: false });
    expect((await fork().execute('select name from endpoint where id = ?', [outcome.endpointId]))[0].name).toBe(name);
    await expect(createEndpoint(fork(), { actor: admin }, { name: name + '📡', activateImmediately: false })).rejects.toThrow(
      ValidationError,
    );
  });

  it('unknown ICCID → ValidationError on iccid, nothing changed', async () => {
    const before = await snapshot(fork());
    const iccid = unknownIccid();
    const error = await expectRefused(
      createEndpoint(fork(), { actor: admin }, { name: 'N', activateImmediately: false, iccid }),
      before,
      ValidationError,
    );
    expect((error as ValidationError).errors).toEqual([
      { field: 'iccid', message: `There is no SIM with ICCID ${iccid} in your inventory` },
    ]);
  });

  it.each(LINKED)('SIM not Ready to Activate (%s) → ValidationError on iccid naming its status, nothing changed', async (status) => {
    const { sim } = await linkedEndpoint(fork(), acme, status);
    const before = await snapshot(fork());
    const error = await expectRefused(
      createEndpoint(fork(), { actor: admin }, { name: 'N', activateImmediately: true, iccid: sim.iccid }),
      before,
      ValidationError,
    );
    expect((error as ValidationError).errors).toEqual([
      { field: 'iccid', message: `SIM ${sim.iccid} is ${LABEL[status]}, not Ready to Activate; choose another SIM` },
    ]);
  });

  it('accepts a 100-character name, trims it, and strips spaces and dashes from IMEI and ICCID', async () => {
    const sim = await readySim(fork(), acme);
    const name = 'y'.repeat(100);
    const spaced = (digits: string) => digits.replace(/(\d{4})/g, '$1 ').replace(/ (\d)$/, '-$1');
    const outcome = await createEndpoint(
      fork(),
      { actor: admin },
      {
        name: `  ${name}  `,
        imei: spaced(validImei),
        iccid: spaced(sim.iccid),
        activateImmediately: false,
      },
    );
    const [row] = await fork().execute<Row[]>('select name, imei, status, sim_id from endpoint where id = ?', [outcome.endpointId]);
    expect(row).toEqual({ name, imei: validImei, status: 'pre_active', sim_id: sim.id });
  });
});

// ---- tenant scope ----

describe('tenant scope: another enterprise’s records are answered as if they did not exist', () => {
  const FOREIGN = OPS.flatMap((op) => STATES.map((state) => ({ op, state })));

  it.each(FOREIGN)('$op on another enterprise’s $state endpoint → NotFoundError, nothing changed', async ({ op, state }) => {
    const em = fork();
    const { endpoint } = await endpointIn(em, globex, state);
    const ownSim = await readySim(em, acme);
    const before = await snapshot(fork());
    const error = await expectRefused(
      perform(op, { actor: admin }, endpoint.id, ownSim.id),
      before,
      NotFoundError,
      'The endpoint was not found.',
    );
    // The same answer as for an id that does not exist.
    const unknown = await expectRefused(perform(op, { actor: admin }, UNKNOWN_ID, ownSim.id), before, NotFoundError);
    expect(error.message).toBe(unknown.message);
  });

  it.each(['ready', ...LINKED] as const)(
    'link of another enterprise’s %s SIM to an own Hold endpoint → NotFoundError, nothing changed',
    async (state) => {
      const em = fork();
      const endpoint = await holdEndpoint(em, acme);
      const foreign = state === 'ready' ? await readySim(em, globex) : (await linkedEndpoint(em, globex, state)).sim;
      const before = await snapshot(fork());
      const error = await expectRefused(
        linkSim(fork(), { actor: admin }, endpoint.id, foreign.id),
        before,
        NotFoundError,
        'The SIM was not found.',
      );
      const unknown = await expectRefused(linkSim(fork(), { actor: admin }, endpoint.id, UNKNOWN_ID), before, NotFoundError);
      expect(error.message).toBe(unknown.message);
    },
  );

  it.each(['ready', ...LINKED] as const)(
    'create with another enterprise’s %s SIM answers as for a SIM that does not exist',
    async (state) => {
      const em = fork();
      const foreign = state === 'ready' ? await readySim(em, globex) : (await linkedEndpoint(em, globex, state)).sim;
      const before = await snapshot(fork());
      const byId = await expectRefused(
        createEndpoint(fork(), { actor: admin }, { name: 'N', activateImmediately: true, simId: foreign.id }),
        before,
        ValidationError,
      );
      expect((byId as ValidationError).errors).toEqual([{ field: 'iccid', message: 'That SIM is not in your inventory' }]);
      const byIccid = await expectRefused(
        createEndpoint(fork(), { actor: admin }, { name: 'N', activateImmediately: true, iccid: foreign.iccid }),
        before,
        ValidationError,
      );
      expect((byIccid as ValidationError).errors).toEqual([
        { field: 'iccid', message: `There is no SIM with ICCID ${foreign.iccid} in your inventory` },
      ]);
    },
  );
});

// ---- roles ----

describe('viewers can change nothing', () => {
  const CASES = OPS.flatMap((op) => STATES.map((state) => ({ op, state })));

  it.each(CASES)('viewer: $op on a $state endpoint → ForbiddenError, nothing changed', async ({ op, state }) => {
    const em = fork();
    const { endpoint } = await endpointIn(em, acme, state);
    const sim = await readySim(em, acme);
    const before = await snapshot(fork());
    await expectRefused(
      perform(op, { actor: viewer, key: newKey() }, endpoint.id, sim.id),
      before,
      ForbiddenError,
      'Your role (viewer) can look but not change anything. Ask an admin of your enterprise.',
    );
  });

  it.each(['none', 'id', 'iccid', 'invalid input'] as const)(
    'viewer: create endpoint (SIM: %s) → ForbiddenError, nothing changed',
    async (by) => {
      const sim = await readySim(fork(), acme);
      const input: CreateEndpointInput =
        by === 'invalid input'
          ? { name: '', imei: '1', iccid: '2', activateImmediately: true }
          : {
              name: 'By a viewer',
              activateImmediately: true,
              ...(by === 'id' ? { simId: sim.id } : by === 'iccid' ? { iccid: sim.iccid } : {}),
            };
      const before = await snapshot(fork());
      await expectRefused(createEndpoint(fork(), { actor: viewer, key: newKey() }, input), before, ForbiddenError);
    },
  );

  it('viewer on another enterprise’s endpoint → ForbiddenError (tells nothing about the record)', async () => {
    const { endpoint } = await endpointIn(fork(), globex, 'active');
    const before = await snapshot(fork());
    await expectRefused(suspendEndpoint(fork(), { actor: viewer }, endpoint.id), before, ForbiddenError);
  });
});

// ---- one-time keys ----

interface Keyed {
  what: string;
  /** Arranges an endpoint where the operation is allowed; returns the operation to submit (twice). */
  arrange: (em: EntityManager) => Promise<(ctx: OperationContext) => ReturnType<typeof linkSim>>;
  events: number;
}
const KEYED: Keyed[] = [
  {
    what: 'create without SIM',
    events: 1,
    arrange: async () => (ctx) => createEndpoint(fork(), ctx, { name: 'Keyed', activateImmediately: false }),
  },
  {
    what: 'create with SIM by ICCID',
    events: 2,
    arrange: async (em) => {
      const sim = await readySim(em, acme);
      return (ctx) => createEndpoint(fork(), ctx, { name: 'Keyed', activateImmediately: true, iccid: sim.iccid });
    },
  },
  {
    what: 'link',
    events: 1,
    arrange: async (em) => {
      const endpoint = await holdEndpoint(em, acme);
      const sim = await readySim(em, acme);
      return (ctx) => linkSim(fork(), ctx, endpoint.id, sim.id);
    },
  },
  ...(['delink', 'activate', 'suspend', 'resume'] as const).map((op): Keyed => ({
    what: op,
    events: 1,
    arrange: async (em) => {
      const { endpoint } = await endpointIn(em, acme, SPEC[op].from.at(-1)!);
      return (ctx) => perform(op, ctx, endpoint.id);
    },
  })),
];

describe('one-time keys', () => {
  it.each(KEYED)('double submission of $what with the same key → applied once, the second answer replayed', async ({ arrange, events }) => {
    const submit = await arrange(fork());
    const key = newKey();
    const before = await snapshot(fork());
    const first = await submit({ actor: admin, key, requestId: 'first' });
    expect(first.replayed).toBe(false);
    const afterFirst = await snapshot(fork());
    expect(await eventsSince(fork(), before.lastEventId)).toHaveLength(events);
    expect(afterFirst.keys).toHaveLength(before.keys.length + 1);

    const second = await submit({ actor: admin, key, requestId: 'second' });
    expect(second).toEqual({ ...first, replayed: true });
    expect(await snapshot(fork())).toEqual(afterFirst);
    expect(await eventsSince(fork(), afterFirst.lastEventId)).toEqual([]);
  });

  it('a replay after the endpoint has moved on changes nothing and answers the first outcome', async () => {
    const endpoint = await holdEndpoint(fork(), acme);
    const sim = await readySim(fork(), acme);
    const key = newKey();
    const first = await linkSim(fork(), { actor: admin, key }, endpoint.id, sim.id);
    await delinkSim(fork(), { actor: admin }, endpoint.id);
    const before = await snapshot(fork());
    expect(await linkSim(fork(), { actor: admin, key }, endpoint.id, sim.id)).toEqual({ ...first, replayed: true });
    expect(await snapshot(fork())).toEqual(before);
    expect(await eventsSince(fork(), before.lastEventId)).toEqual([]);
  });

  it('the same key for a different operation on the same endpoint → ConflictError, nothing changed', async () => {
    const endpoint = await holdEndpoint(fork(), acme);
    const sim = await readySim(fork(), acme);
    const key = newKey();
    await linkSim(fork(), { actor: admin, key }, endpoint.id, sim.id);
    const before = await snapshot(fork());
    // Activate would be allowed now (the endpoint is Pre-Active), but not with a used key.
    await expectRefused(activateEndpoint(fork(), { actor: admin, key }, endpoint.id), before, ConflictError, KEY_USED);
  });

  it('the same key for the same operation on a different endpoint → ConflictError, nothing changed', async () => {
    const [e1, e2] = [await holdEndpoint(fork(), acme), await holdEndpoint(fork(), acme)];
    const [s1, s2] = [await readySim(fork(), acme), await readySim(fork(), acme)];
    const key = newKey();
    await linkSim(fork(), { actor: admin, key }, e1.id, s1.id);
    const before = await snapshot(fork());
    await expectRefused(linkSim(fork(), { actor: admin, key }, e2.id, s2.id), before, ConflictError, KEY_USED);
  });

  it('the same key from another user → ConflictError, nothing changed', async () => {
    const endpoint = await holdEndpoint(fork(), acme);
    const sim = await readySim(fork(), acme);
    const key = newKey();
    await linkSim(fork(), { actor: admin, key }, endpoint.id, sim.id);
    const before = await snapshot(fork());
    await expectRefused(delinkSim(fork(), { actor: otherAdmin, key }, endpoint.id), before, ConflictError, KEY_USED);
    await expectRefused(linkSim(fork(), { actor: otherAdmin, key }, endpoint.id, sim.id), before, ConflictError, KEY_USED);
  });

  it('a refused operation does not use up its key', async () => {
    const endpoint = await holdEndpoint(fork(), acme);
    const sim = await readySim(fork(), acme);
    const key = newKey();
    const before = await snapshot(fork());
    await expectRefused(activateEndpoint(fork(), { actor: admin, key }, endpoint.id), before, InvalidStateError);
    const outcome = await linkSim(fork(), { actor: admin, key }, endpoint.id, sim.id);
    expect(outcome.replayed).toBe(false);
  });

  it.each(['', 'short', 'k'.repeat(65), 'has spaces in the key', "quote'and;semicolon--", 'ключ-ключ-ключ-ключ', 'tab\tin-the-key-0123'])(
    'malformed key %j → ValidationError on key, nothing changed',
    async (key) => {
      const endpoint = await holdEndpoint(fork(), acme);
      const sim = await readySim(fork(), acme);
      const before = await snapshot(fork());
      const link = await expectRefused(linkSim(fork(), { actor: admin, key }, endpoint.id, sim.id), before, ValidationError);
      expect((link as ValidationError).errors).toEqual([
        { field: 'key', message: 'This confirmation form is damaged. Go back and start again.' },
      ]);
      const create = await expectRefused(
        createEndpoint(fork(), { actor: admin, key }, { name: 'N', activateImmediately: false }),
        before,
        ValidationError,
      );
      expect((create as ValidationError).errors.map((e) => e.field)).toEqual(['key']);
    },
  );
});

// ---- a whole life ----

describe('a whole life of one endpoint and its SIM', () => {
  it('link → activate → suspend → resume → de-link → link to another endpoint, one event each', async () => {
    const endpoint = await holdEndpoint(fork(), acme, { activateImmediately: false });
    const next = await holdEndpoint(fork(), acme, { activateImmediately: true });
    const sim = await readySim(fork(), acme);
    const ctx = { actor: admin, requestId: 'life' };
    const before = await snapshot(fork());
    const steps = [
      () => linkSim(fork(), ctx, endpoint.id, sim.id),
      () => activateEndpoint(fork(), ctx, endpoint.id),
      () => suspendEndpoint(fork(), ctx, endpoint.id),
      () => resumeEndpoint(fork(), ctx, endpoint.id),
      () => delinkSim(fork(), ctx, endpoint.id),
      () => linkSim(fork(), ctx, next.id, sim.id),
    ];
    const statuses: string[] = [];
    for (const step of steps) statuses.push((await step()).endpointStatus);
    expect(statuses).toEqual(['pre_active', 'active', 'suspended', 'active', 'hold', 'active']);
    const events = await eventsSince(fork(), before.lastEventId);
    expect(
      events.map((e) => [
        e.action,
        e.endpoint_id,
        e.endpoint_status_before,
        e.endpoint_status_after,
        e.sim_status_before,
        e.sim_status_after,
      ]),
    ).toEqual([
      ['sim.linked', endpoint.id, 'hold', 'pre_active', 'ready', 'pre_active'],
      ['endpoint.activated', endpoint.id, 'pre_active', 'active', 'pre_active', 'active'],
      ['endpoint.suspended', endpoint.id, 'active', 'suspended', 'active', 'suspended'],
      ['endpoint.resumed', endpoint.id, 'suspended', 'active', 'suspended', 'active'],
      ['sim.delinked', endpoint.id, 'active', 'hold', 'active', 'ready'],
      ['sim.linked', next.id, 'hold', 'active', 'ready', 'active'],
    ]);
    expect(new Set(events.map((e) => e.sim_iccid))).toEqual(new Set([sim.iccid]));
  });
});
