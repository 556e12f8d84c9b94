// The lifecycle operations of SPEC.md §1: create an endpoint, link and de-link a SIM, activate, suspend,
// resume. Each is one transaction with one audit event (two when an endpoint is created with a SIM).
//
// Race safety by construction: every step that claims a row is one statement that takes its lock — a
// conditional `UPDATE … WHERE id = ? AND enterprise_id = ? AND status = <expected> RETURNING …` (the SIM,
// and the endpoint in activate/suspend/resume/de-link) or `SELECT … FOR UPDATE` (the endpoint in Link SIM,
// whose new status depends on it) — so of two transactions racing for the same endpoint or SIM, the second
// waits, finds the row changed, and gets a typed error. Rows are always locked in the same order (endpoint,
// then SIM), so two operations never wait on each other in a cycle. The database's constraints (see
// migrations/) are the backstop: if one ever fires, the transaction rolls back whole.
import { ConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import type { Actor } from './accounts.js';
import {
  endpointStatusLabel,
  simStatusLabel,
  type EndpointStatus,
  type EventAction,
  type LinkedStatus,
  type SimStatus,
} from './entities.js';
import { ConflictError, ForbiddenError, InvalidStateError, NotFoundError, ValidationError, type FieldError } from './errors.js';
import { checkIccid, checkImei } from './identifiers.js';
import { hasHiddenCharacters, hiddenCharactersMessage } from './text.js';

export interface OperationContext {
  actor: Actor;
  requestId?: string;
  /** The one-time key of the confirmation form: a replay is answered with the first outcome. */
  key?: string;
}

export type Operation = 'link' | 'delink' | 'activate' | 'suspend' | 'resume' | 'create';

export interface Outcome {
  operation: Operation;
  endpointId: number;
  endpointName: string;
  endpointStatus: EndpointStatus;
  iccid: string | null;
  simStatus: SimStatus | null;
  /** What to tell the person, e.g. "SIM 8944… linked successfully". */
  message: string;
  /** True when this answer is the stored outcome of an earlier submission of the same form. */
  replayed: boolean;
}

export const CONFLICT_SIM_TAKEN = 'This SIM was just linked to another endpoint. Choose another SIM.';
const CONFLICT_CONCURRENT = 'Someone else changed this endpoint or SIM at the same moment. Nothing was changed; look at it again and retry.';

const KEY_FORMAT = /^[A-Za-z0-9_-]{16,64}$/;

const describeState = (status: string) => (status === 'hold' ? 'on Hold' : endpointStatusLabel(status));

/** The rule each operation needs of the endpoint's status. */
const RULES: Record<Exclude<Operation, 'create'>, { allowed: (status: EndpointStatus) => boolean; rule: string }> = {
  link: { allowed: (s) => s === 'hold', rule: 'a SIM can only be linked to an endpoint on Hold' },
  delink: { allowed: (s) => s !== 'hold', rule: 'it has no SIM to de-link' },
  activate: { allowed: (s) => s === 'pre_active', rule: 'only a Pre-Active endpoint can be activated' },
  suspend: { allowed: (s) => s === 'active', rule: 'only an Active endpoint can be suspended' },
  resume: { allowed: (s) => s === 'suspended', rule: 'only a Suspended endpoint can be resumed' },
};

/** Why the operation cannot be done on this endpoint now, in words naming its state; null when it can. */
export function refusal(operation: Exclude<Operation, 'create'>, endpoint: { name: string; status: EndpointStatus }): string | null {
  const { allowed, rule } = RULES[operation];
  return allowed(endpoint.status) ? null : `Endpoint '${endpoint.name}' is ${describeState(endpoint.status)}; ${rule}.`;
}

interface EndpointRow {
  id: number;
  name: string;
  status: EndpointStatus;
  sim_id: number | null;
  activate_immediately: boolean;
}

function requireAdmin(actor: Actor) {
  if (actor.role !== 'admin') throw new ForbiddenError();
}

/**
 * Runs `work` in one transaction, once per one-time key: a second submission with the same key waits for
 * the first to finish (the key's primary key makes it wait) and is answered with the first's outcome.
 */
async function once(
  em: EntityManager,
  ctx: OperationContext,
  operation: Operation,
  endpointId: number | null,
  work: (tx: EntityManager) => Promise<Omit<Outcome, 'replayed'>>,
): Promise<Outcome> {
  requireAdmin(ctx.actor);
  if (ctx.key !== undefined && !KEY_FORMAT.test(ctx.key)) {
    throw new ValidationError([{ field: 'key', message: 'This confirmation form is damaged. Go back and start again.' }]);
  }
  try {
    return await em.transactional(async (tx) => {
      if (ctx.key) {
        const inserted = await tx.execute<{ key: string }[]>(
          `insert into operation_key (key, enterprise_id, user_id, action, outcome) values (?, ?, ?, ?, '{}')
           on conflict (key) do nothing returning key`,
          [ctx.key, ctx.actor.enterpriseId, ctx.actor.id, `${operation}:${endpointId ?? ''}`],
        );
        if (inserted.length === 0) {
          const [previous] = await tx.execute<{ action: string; user_id: number; outcome: Omit<Outcome, 'replayed'> }[]>(
            'select action, user_id, outcome from operation_key where key = ?',
            [ctx.key],
          );
          if (!previous || previous.user_id !== ctx.actor.id || previous.action !== `${operation}:${endpointId ?? ''}`) {
            throw new ConflictError('This confirmation form was already used. Go back and start again.');
          }
          return { ...previous.outcome, replayed: true };
        }
      }
      const outcome = await work(tx);
      if (ctx.key) await tx.execute('update operation_key set outcome = ? where key = ?', [JSON.stringify(outcome), ctx.key]);
      return { ...outcome, replayed: false };
    });
  } catch (error) {
    // A constraint firing (at a statement or at commit) means another transaction got there first.
    if (error instanceof ConstraintViolationException) throw new ConflictError(CONFLICT_CONCURRENT, { cause: error });
    throw error;
  }
}

async function writeEvent(
  tx: EntityManager,
  ctx: OperationContext,
  action: EventAction,
  endpoint: { id: number; name: string },
  iccid: string | null,
  endpointStatus: [string | null, string | null],
  simStatus: [string | null, string | null],
) {
  await tx.execute(
    `insert into event (enterprise_id, actor_id, actor_name, action, endpoint_id, endpoint_name, sim_iccid,
       endpoint_status_before, endpoint_status_after, sim_status_before, sim_status_after, request_id)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      ctx.actor.enterpriseId, ctx.actor.id, ctx.actor.displayName, action, endpoint.id, endpoint.name, iccid,
      endpointStatus[0], endpointStatus[1], simStatus[0], simStatus[1], ctx.requestId ?? null,
    ],
  );
}

/** Why a conditional update of an endpoint found nothing: not ours (404), or not in the expected state. */
async function explainEndpoint(tx: EntityManager, ctx: OperationContext, endpointId: number, operation: Exclude<Operation, 'create'>): Promise<never> {
  const [row] = await tx.execute<EndpointRow[]>(
    'select id, name, status, sim_id, activate_immediately from endpoint where id = ? and enterprise_id = ?',
    [endpointId, ctx.actor.enterpriseId],
  );
  if (!row) throw new NotFoundError('endpoint');
  const refused = refusal(operation, row);
  if (refused) throw new InvalidStateError(refused);
  // In the needed state after all: another transaction committed between the conditional statement's
  // snapshot and this read (e.g. a de-link that saw Hold while a link was committing) — a lost race.
  throw new ConflictError(CONFLICT_CONCURRENT);
}

/** Claims a Ready to Activate SIM of the actor's enterprise for an endpoint, in the endpoint's new status. */
async function claimSim(
  tx: EntityManager,
  ctx: OperationContext,
  sim: { id: number } | { iccid: string },
  endpointId: number,
  status: LinkedStatus,
): Promise<{ id: number; iccid: string } | { missing: true } | { taken: string; status: SimStatus }> {
  const [by, value] = 'id' in sim ? ['id', sim.id] : ['iccid', sim.iccid];
  const [claimed] = await tx.execute<{ id: number; iccid: string }[]>(
    `update sim set status = ?, endpoint_id = ?, updated_at = now()
     where ${by} = ? and enterprise_id = ? and status = 'ready' returning id, iccid`,
    [status, endpointId, value, ctx.actor.enterpriseId],
  );
  if (claimed) return claimed;
  const [found] = await tx.execute<{ iccid: string; status: SimStatus }[]>(
    `select iccid, status from sim where ${by} = ? and enterprise_id = ?`,
    [value, ctx.actor.enterpriseId],
  );
  return found ? { taken: found.iccid, status: found.status } : { missing: true };
}

export async function linkSim(em: EntityManager, ctx: OperationContext, endpointId: number, simId: number): Promise<Outcome> {
  return once(em, ctx, 'link', endpointId, async (tx) => {
    // Lock the endpoint first (every operation takes the endpoint before the SIM: no lock cycles), so a
    // second link of the same endpoint waits here and then finds it no longer on Hold.
    const [endpoint] = await tx.execute<EndpointRow[]>(
      `select id, name, status, sim_id, activate_immediately from endpoint
       where id = ? and enterprise_id = ? for update`,
      [endpointId, ctx.actor.enterpriseId],
    );
    if (!endpoint) throw new NotFoundError('endpoint');
    const refused = refusal('link', endpoint);
    if (refused) throw new InvalidStateError(refused);
    const status: LinkedStatus = endpoint.activate_immediately ? 'active' : 'pre_active';
    const sim = await claimSim(tx, ctx, { id: simId }, endpoint.id, status);
    if ('missing' in sim) throw new NotFoundError('SIM');
    if ('taken' in sim) throw new ConflictError(CONFLICT_SIM_TAKEN);
    await tx.execute('update endpoint set status = ?, sim_id = ?, updated_at = now() where id = ?', [status, sim.id, endpoint.id]);
    await writeEvent(tx, ctx, 'sim.linked', endpoint, sim.iccid, ['hold', status], ['ready', status]);
    return {
      operation: 'link', endpointId: endpoint.id, endpointName: endpoint.name, endpointStatus: status,
      iccid: sim.iccid, simStatus: status, message: `SIM ${sim.iccid} linked successfully`,
    };
  });
}

export async function delinkSim(em: EntityManager, ctx: OperationContext, endpointId: number): Promise<Outcome> {
  return once(em, ctx, 'delink', endpointId, async (tx) => {
    // The CTE keeps the status before the update: a linked SIM's status is its endpoint's.
    const [endpoint] = await tx.execute<(EndpointRow & { before: LinkedStatus; old_sim_id: number })[]>(
      `with current as (select id, status as before, sim_id as old_sim_id from endpoint
                        where id = ? and enterprise_id = ? and status <> 'hold' for update)
       update endpoint e set status = 'hold', sim_id = null, updated_at = now()
       from current c where e.id = c.id
       returning e.id, e.name, e.status, c.before, c.old_sim_id`,
      [endpointId, ctx.actor.enterpriseId],
    );
    if (!endpoint) {
      return explainEndpoint(tx, ctx, endpointId, 'delink');
    }
    const [sim] = await tx.execute<{ iccid: string }[]>(
      `update sim set status = 'ready', endpoint_id = null, updated_at = now()
       where id = ? and endpoint_id = ? returning iccid`,
      [endpoint.old_sim_id, endpoint.id],
    );
    if (!sim) throw new ConflictError(CONFLICT_CONCURRENT);
    await writeEvent(tx, ctx, 'sim.delinked', endpoint, sim.iccid, [endpoint.before, 'hold'], [endpoint.before, 'ready']);
    return {
      operation: 'delink', endpointId: endpoint.id, endpointName: endpoint.name, endpointStatus: 'hold',
      iccid: sim.iccid, simStatus: 'ready', message: `SIM ${sim.iccid} de-linked successfully`,
    };
  });
}

interface Transition {
  operation: 'activate' | 'suspend' | 'resume';
  action: EventAction;
  from: LinkedStatus;
  to: LinkedStatus;
  verb: string;
}

const TRANSITIONS: Record<Transition['operation'], Transition> = {
  activate: { operation: 'activate', action: 'endpoint.activated', from: 'pre_active', to: 'active', verb: 'activated' },
  suspend: { operation: 'suspend', action: 'endpoint.suspended', from: 'active', to: 'suspended', verb: 'suspended' },
  resume: { operation: 'resume', action: 'endpoint.resumed', from: 'suspended', to: 'active', verb: 'resumed' },
};

async function transition(em: EntityManager, ctx: OperationContext, endpointId: number, t: Transition): Promise<Outcome> {
  return once(em, ctx, t.operation, endpointId, async (tx) => {
    const [endpoint] = await tx.execute<EndpointRow[]>(
      `update endpoint set status = ?, updated_at = now()
       where id = ? and enterprise_id = ? and status = ?
       returning id, name, status, sim_id, activate_immediately`,
      [t.to, endpointId, ctx.actor.enterpriseId, t.from],
    );
    if (!endpoint) {
      return explainEndpoint(tx, ctx, endpointId, t.operation);
    }
    const [sim] = await tx.execute<{ iccid: string }[]>(
      `update sim set status = ?, updated_at = now() where id = ? and endpoint_id = ? and status = ? returning iccid`,
      [t.to, endpoint.sim_id, endpoint.id, t.from],
    );
    if (!sim) throw new ConflictError(CONFLICT_CONCURRENT);
    await writeEvent(tx, ctx, t.action, endpoint, sim.iccid, [t.from, t.to], [t.from, t.to]);
    return {
      operation: t.operation, endpointId: endpoint.id, endpointName: endpoint.name, endpointStatus: t.to,
      iccid: sim.iccid, simStatus: t.to, message: `Endpoint '${endpoint.name}' ${t.verb} successfully`,
    };
  });
}

export const activateEndpoint = (em: EntityManager, ctx: OperationContext, endpointId: number) => transition(em, ctx, endpointId, TRANSITIONS.activate);
export const suspendEndpoint = (em: EntityManager, ctx: OperationContext, endpointId: number) => transition(em, ctx, endpointId, TRANSITIONS.suspend);
export const resumeEndpoint = (em: EntityManager, ctx: OperationContext, endpointId: number) => transition(em, ctx, endpointId, TRANSITIONS.resume);

export interface CreateEndpointInput {
  name: string;
  imei?: string;
  activateImmediately: boolean;
  /** A SIM to link at once: by id (chosen in the picker) or by ICCID (typed). */
  simId?: number | null;
  iccid?: string;
}

/** Checks the form; returns the cleaned values or throws a ValidationError naming each field. */
export function validateNewEndpoint(input: CreateEndpointInput) {
  const errors: FieldError[] = [];
  const name = input.name.trim();
  if (!name) errors.push({ field: 'name', message: 'Enter a name for the endpoint' });
  else if ([...name].length > 100) errors.push({ field: 'name', message: 'Name must be 100 characters or fewer' });
  else if (hasHiddenCharacters(name)) errors.push({ field: 'name', message: hiddenCharactersMessage('Name') });
  let imei: string | null = null;
  if (input.imei?.trim()) {
    const checked = checkImei(input.imei);
    if (checked.ok) imei = checked.value;
    else errors.push({ field: 'imei', message: checked.message });
  }
  let iccid: string | null = null;
  if (!input.simId && input.iccid?.trim()) {
    const checked = checkIccid(input.iccid);
    if (checked.ok) iccid = checked.value;
    else errors.push({ field: 'iccid', message: checked.message });
  }
  if (errors.length) throw new ValidationError(errors);
  return { name, imei, iccid, simId: input.simId ?? null, activateImmediately: input.activateImmediately };
}

/** The endpoint of this enterprise that already has this IMEI, if any. */
async function endpointWithImei(em: EntityManager, enterpriseId: number, imei: string): Promise<{ id: number; name: string } | undefined> {
  const [row] = await em.execute<{ id: number; name: string }[]>(
    'select id, name from endpoint where enterprise_id = ? and imei = ? limit 1',
    [enterpriseId, imei],
  );
  return row;
}

const imeiInUse = (imei: string, holder: { name: string }) =>
  new ValidationError([{ field: 'imei', message: `IMEI ${imei} is already used by endpoint '${holder.name}'; a device has one IMEI, so check the number` }]);

export async function createEndpoint(em: EntityManager, ctx: OperationContext, input: CreateEndpointInput): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const values = validateNewEndpoint(input);
  try {
    return await insertEndpoint(em, ctx, values);
  } catch (error) {
    // Two creates with one IMEI at the same moment both pass the check below; the partial unique index
    // (endpoint_imei_unique) stops the second, which gets the same words as if it had come later.
    if (values.imei && error instanceof ConflictError && String((error.cause as Error | undefined)?.message).includes('endpoint_imei_unique')) {
      const holder = await endpointWithImei(em.fork(), ctx.actor.enterpriseId, values.imei);
      if (holder) throw imeiInUse(values.imei, holder);
    }
    throw error;
  }
}

function insertEndpoint(em: EntityManager, ctx: OperationContext, values: ReturnType<typeof validateNewEndpoint>): Promise<Outcome> {
  return once(em, ctx, 'create', null, async (tx) => {
    if (values.imei) {
      const holder = await endpointWithImei(tx, ctx.actor.enterpriseId, values.imei);
      if (holder) throw imeiInUse(values.imei, holder);
    }
    const [endpoint] = await tx.execute<EndpointRow[]>(
      `insert into endpoint (enterprise_id, name, imei, activate_immediately) values (?, ?, ?, ?)
       returning id, name, status, sim_id, activate_immediately`,
      [ctx.actor.enterpriseId, values.name, values.imei, values.activateImmediately],
    );
    await writeEvent(tx, ctx, 'endpoint.created', endpoint, null, [null, 'hold'], [null, null]);
    const wanted = values.simId ? { id: values.simId } : values.iccid ? { iccid: values.iccid } : null;
    if (!wanted) {
      return {
        operation: 'create', endpointId: endpoint.id, endpointName: endpoint.name, endpointStatus: 'hold',
        iccid: null, simStatus: null, message: `Endpoint '${endpoint.name}' created successfully`,
      };
    }
    const status: LinkedStatus = values.activateImmediately ? 'active' : 'pre_active';
    const sim = await claimSim(tx, ctx, wanted, endpoint.id, status);
    if ('missing' in sim) {
      throw new ValidationError([{ field: 'iccid', message: values.iccid ? `There is no SIM with ICCID ${values.iccid} in your inventory` : 'That SIM is not in your inventory' }]);
    }
    if ('taken' in sim) {
      const label = simStatusLabel(sim.status);
      throw new ValidationError([{ field: 'iccid', message: `SIM ${sim.taken} is ${label}, not Ready to Activate; choose another SIM` }]);
    }
    await tx.execute('update endpoint set status = ?, sim_id = ?, updated_at = now() where id = ?', [status, sim.id, endpoint.id]);
    await writeEvent(tx, ctx, 'sim.linked', endpoint, sim.iccid, ['hold', status], ['ready', status]);
    return {
      operation: 'create', endpointId: endpoint.id, endpointName: endpoint.name, endpointStatus: status,
      iccid: sim.iccid, simStatus: status,
      message: `Endpoint '${endpoint.name}' created successfully; SIM ${sim.iccid} linked, both ${endpointStatusLabel(status)}`,
    };
  });
}

/** Words for the confirmation step: what will happen if the person says Yes. */
export function consequence(operation: Exclude<Operation, 'create'>, activateImmediately: boolean): string {
  switch (operation) {
    case 'link':
      return `The endpoint and SIM will become ${activateImmediately ? 'Active' : 'Pre-Active'}.`;
    case 'delink':
      return 'The endpoint will go to Hold, and the SIM will return to the inventory as Ready to Activate, free for this or another endpoint.';
    case 'activate':
      return 'The endpoint and SIM will become Active.';
    case 'suspend':
      return 'The endpoint and SIM will become Suspended.';
    case 'resume':
      return 'The endpoint and SIM will become Active again.';
  }
}
