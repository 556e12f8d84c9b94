// The lifecycle operations of SPEC.md §1: create an endpoint, link and de-link a SIM, activate, suspend,
// resume. Each is one unit of work (an EntityManager fork) in one transaction, in which the verb loads the rows
// it changes with the lock it needs, checks the rule, changes the entities, records the audit event, and the
// flush at commit writes the changes (two events when an endpoint is created with a SIM). A bulk job's rows go
// through the batch form, changeMany: the same rules and changes (linkChange, delinkChange, transitionChange)
// for many rows in one transaction.
//
// Race safety: every row the operation changes is read with `SELECT … FOR UPDATE` (LockMode.PESSIMISTIC_WRITE)
// before the rule is checked, so of two transactions racing for the same endpoint or SIM the second waits,
// then reads the row as the first left it and gets a typed error. Rows are always locked in the same order
// (endpoint, then SIM), so two operations never wait on each other in a cycle. The database's constraints
// (see migrations/) are the backstop: if one ever fires, at a statement or at commit, the transaction rolls
// back whole and the person is told someone else changed the record.
import { FlushMode, LockMode, raw, ref, wrap, type EntityData, type EntitySchema, type FilterQuery } from '@mikro-orm/core';
import { ConstraintViolationException, DeadlockException, LockWaitTimeoutException, type EntityManager } from '@mikro-orm/postgresql';
import type { Actor } from './accounts.js';
import {
  EndpointSchema,
  OperationKeySchema,
  SimSchema,
  ENDPOINT_NAME_MAX_LENGTH,
  endpointStatusLabel,
  simStatusLabel,
  type Endpoint,
  type EndpointStatus,
  type EventAction,
  type EventSource,
  type LinkedStatus,
  type OperationKey,
  type Sim,
  type SimStatus,
} from './entities.js';
import { StatementCache, runStatement } from '../db/compiled-statement.js';
import { managed } from '../db/managed.js';
import { recordEvent, recordEvents, type EventDetails } from './events.js';
import { enterpriseSubscriptions, subscriptionsColumn, type Subscription } from './webhooks.js';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  InvalidStateError,
  NotFoundError,
  ValidationError,
  type FieldError,
} from './errors.js';
import { FORM_KEY_FORMAT } from './form-keys.js';
import { checkIccid, checkImei } from './identifiers.js';
import { hasHiddenCharacters, hiddenCharactersMessage } from './text.js';

export interface OperationContext {
  actor: Actor;
  requestId?: string;
  /** The one-time key of the confirmation form: a replay is answered with the first outcome. */
  key?: string;
  /** Where the change came from, for its event (the screens' when not said). */
  source?: EventSource;
  /**
   * With `key`: called in the change's transaction, after its writes, with the endpoint and its SIM as the
   * change leaves them; what it returns is kept in the key's row with the outcome, and is the outcome's
   * `answer` (a replay's too). The API keeps its answer to the request there: no read after the change and
   * no write of its own.
   */
  answer?: (endpoint: Endpoint, sim: Sim | null) => unknown;
}

export type Operation = 'link' | 'delink' | 'swap' | 'activate' | 'suspend' | 'resume' | 'create';

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
  /** What OperationContext.answer returned (for a replay: what it returned the first time). */
  answer?: unknown;
}

export const CONFLICT_SIM_TAKEN = 'This SIM was just linked to another endpoint. Choose another SIM.';
/** A swap for the SIM the endpoint has already. */
export const CONFLICT_SAME_SIM = 'This SIM is already linked to this endpoint. Choose another SIM.';
const CONFLICT_CONCURRENT =
  'Someone else changed this endpoint or SIM at the same moment. Nothing was changed; look at it again and retry.';

const FORM_USED = 'This confirmation form was already used. Go back and start again.';

const describeState = (status: string) => (status === 'hold' ? 'on Hold' : endpointStatusLabel(status));

/** The rule each operation needs of the endpoint's status. */
const RULES: Record<Exclude<Operation, 'create'>, { allowed: (status: EndpointStatus) => boolean; rule: string }> = {
  link: { allowed: (s) => s === 'hold', rule: 'a SIM can only be linked to an endpoint on Hold' },
  delink: { allowed: (s) => s !== 'hold', rule: 'it has no SIM to de-link' },
  swap: { allowed: (s) => s !== 'hold', rule: 'it has no SIM to swap' },
  activate: { allowed: (s) => s === 'pre_active', rule: 'only a Pre-Active endpoint can be activated' },
  suspend: { allowed: (s) => s === 'active', rule: 'only an Active endpoint can be suspended' },
  resume: { allowed: (s) => s === 'suspended', rule: 'only a Suspended endpoint can be resumed' },
};

/** Why the operation cannot be done on this endpoint now, in words naming its state; null when it can. */
export function refusal(operation: Exclude<Operation, 'create'>, endpoint: { name: string; status: EndpointStatus }): string | null {
  const { allowed, rule } = RULES[operation];
  return allowed(endpoint.status) ? null : `Endpoint '${endpoint.name}' is ${describeState(endpoint.status)}; ${rule}.`;
}

function requireAdmin(actor: Actor) {
  if (actor.role !== 'admin') throw new ForbiddenError();
}

/**
 * Runs `work` in one transaction, once per one-time key. The key's row (its outcome included) is written at
 * the end of the operation's transaction, and its primary key lets only one transaction with that key commit: a
 * second submission of the form — at once or later — ends either refused by the state the first left
 * (it waits on the first's row locks, then reads the rows as they are now), or on the key's primary key
 * (waiting for the first to commit), and rolls back. Either way, if the key is now stored, the answer is
 * the first's outcome, and nothing changed. A refused operation stores no key, so the form can be resent.
 */
async function once(
  em: EntityManager,
  ctx: OperationContext,
  operation: Operation,
  endpointId: number | null,
  work: (tx: EntityManager) => Promise<Omit<Outcome, 'replayed'>>,
): Promise<Outcome> {
  requireAdmin(ctx.actor);
  if (ctx.key !== undefined && !FORM_KEY_FORMAT.test(ctx.key)) {
    throw new ValidationError([{ field: 'key', message: 'This confirmation form is damaged. Go back and start again.' }]);
  }
  const action = `${operation}:${endpointId ?? ''}`;
  // A unit of work of its own (a fork: its own identity map), in a transaction begun and committed here —
  // what em.transactional does, without its context propagation and merge into the caller's identity map,
  // which nothing here needs. Flushed once, by commit: the verbs read before they change.
  // The key is written with em.insert, like the event (see recordEvent in events.ts): it is never changed once written.
  const tx = em.fork({ flushMode: FlushMode.COMMIT });
  try {
    await tx.begin();
    const outcome = await work(tx);
    let answer: unknown;
    if (ctx.key && ctx.answer) {
      // The writes first, so the answer sees the rows as the change leaves them (updated_at included).
      await tx.flush();
      const changed = changedEndpoint(tx, outcome.endpointId);
      if (!changed) throw new Error(`The ${operation} did not leave its endpoint and SIM in its unit of work: no answer to keep`);
      answer = ctx.answer(changed.endpoint, changed.sim);
    }
    if (ctx.key)
      await tx.insert(OperationKeySchema, {
        key: ctx.key,
        enterprise: ctx.actor.enterpriseId,
        userId: ctx.actor.id,
        action,
        outcome: answer === undefined ? { ...outcome } : { ...outcome, answer },
      });
    await tx.commit();
    return answer === undefined ? { ...outcome, replayed: false } : { ...outcome, answer, replayed: false };
  } catch (error) {
    // Rolled back whatever failed — a statement, the flush, or COMMIT itself (a deferred key); a failure of
    // the rollback (the connection already gone) must not hide the error that matters.
    if (tx.isInTransaction()) await tx.rollback().catch(() => undefined);
    if (ctx.key) {
      const replayed = await replay(em, ctx, action);
      if (replayed) return replayed;
    }
    // A constraint firing (at a statement or at commit) means another transaction got there first.
    if (error instanceof ConstraintViolationException) throw new ConflictError(CONFLICT_CONCURRENT, { cause: error });
    throw error;
  }
}

/** The endpoint of a change and its SIM, as managed by the change's unit of work; null when either is not there, loaded. */
function changedEndpoint(tx: EntityManager, endpointId: number): { endpoint: Endpoint; sim: Sim | null } | null {
  const uow = tx.getUnitOfWork();
  const endpoint = uow.getById<Endpoint>(EndpointSchema.meta.className, endpointId);
  if (!endpoint || !wrap(endpoint).isInitialized()) return null;
  if (!endpoint.sim) return { endpoint, sim: null };
  const sim = uow.getById<Sim>(SimSchema.meta.className, endpoint.sim.id);
  return sim && wrap(sim).isInitialized() ? { endpoint, sim } : null;
}

/** The stored outcome of an earlier submission of this form, if there was one (another user's or operation's: refused). */
async function replay(em: EntityManager, ctx: OperationContext, action: string): Promise<Outcome | null> {
  const previous = await em.fork().findOne(OperationKeySchema, { key: ctx.key! });
  if (!previous) return null;
  if (previous.userId !== ctx.actor.id || previous.action !== action) {
    throw new ConflictError(FORM_USED);
  }
  return { ...(previous.outcome as Omit<Outcome, 'replayed'>), replayed: true };
}

/**
 * One row as a managed entity, locked for the transaction (SELECT … FOR UPDATE): the same entity, in the same
 * identity map, as em.findOne with LockMode.PESSIMISTIC_WRITE would give. The statement is MikroORM's own — its
 * query builder's SELECT … FOR UPDATE for this entity and these columns — compiled once per entity and set of
 * columns (src/db/compiled-statement.ts) and run with each call's values; the row is hydrated by `managed`.
 * Building and compiling the query per call cost about 0.45 ms of Node CPU per link + de-link (bench/lifecycle-rate.ts).
 */
async function lockOne<T extends object>(
  tx: EntityManager,
  entity: EntitySchema<T>,
  where: Record<string, string | number>,
): Promise<T | null> {
  const keys = Object.keys(where);
  const statement = lockStatements.get(`${entity.meta.className} where ${keys.join(',')} for update`, keys.length, (markers) =>
    tx
      .createQueryBuilder(entity)
      .select('*')
      .where(Object.fromEntries(keys.map((key, i) => [key, markers[i]])) as FilterQuery<T>)
      .setLockMode(LockMode.PESSIMISTIC_WRITE)
      .limit(1),
  );
  const [row] = await runStatement<EntityData<T>[]>(
    tx,
    statement,
    keys.map((key) => where[key]),
  );
  return row ? managed(tx, entity, row) : null;
}
const lockStatements = new StatementCache();

/** An endpoint as this transaction locked it, with what the same statement read besides. */
interface LockedEndpoint {
  endpoint: Endpoint;
  /** Its linked SIM, locked by the same statement (when asked for and the endpoint has one). */
  sim?: Sim;
  /** The enterprise's webhooks, for the outbox of the change's event (webhooks.ts). */
  subscriptions: Subscription[];
}

/**
 * The actor's endpoint, locked for this transaction, with the enterprise's webhook subscriptions; 404 when
 * there is none (or it is another enterprise's). `withSim`: its linked SIM too, in the same statement — an
 * inner join on the link, `FOR UPDATE` locking the endpoint's row and then the SIM's (PostgreSQL locks the
 * rows of a join in the order of the FROM list: the lock order stays endpoint, then SIM). One round trip
 * instead of three (the endpoint, the SIM, the subscriptions) for a de-link, activate, suspend or resume.
 * An endpoint without a SIM (or whose link another transaction changed while this one waited: the join is
 * checked again on the rows as they are then) gives no row: the endpoint is then locked alone, and the
 * caller's rule says why nothing can be done (or lockedLinkedSim that the link changed meanwhile).
 */
async function lockEndpoint(tx: EntityManager, ctx: OperationContext, endpointId: number, withSim = false): Promise<LockedEndpoint> {
  const statement = lockStatements.get(`Endpoint${withSim ? ' with its SIM' : ''} for update`, 2, ([id, enterprise]) => {
    const qb = tx
      .createQueryBuilder(EndpointSchema, 'e')
      .select(['e.*', raw(subscriptionsColumn('e.enterprise_id', WEBHOOKS_COLUMN))])
      .where({ id, enterprise })
      .setLockMode(LockMode.PESSIMISTIC_WRITE)
      .limit(1);
    return withSim ? qb.innerJoinAndSelect('e.sim', SIM_ALIAS) : qb;
  });
  const [row] = await runStatement(tx, statement, [endpointId, ctx.actor.enterpriseId]);
  if (!row) {
    // Locked alone, for the caller's rule to say why nothing can be done (lockedLinkedSim: or the conflict).
    if (withSim) return lockEndpoint(tx, ctx, endpointId);
    throw new NotFoundError('endpoint');
  }
  // The joined SIM's columns come aliased (s__iccid, …): each row to its own entity, managed like any loaded one.
  const endpointRow: Record<string, unknown> = {};
  const simRow: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    if (column === WEBHOOKS_COLUMN) continue;
    if (column.startsWith(SIM_PREFIX)) simRow[column.slice(SIM_PREFIX.length)] = value;
    else endpointRow[column] = value;
  }
  const endpoint = managed(tx, EndpointSchema, endpointRow as EntityData<Endpoint>);
  const sim = withSim ? managed(tx, SimSchema, simRow as EntityData<Sim>) : undefined;
  return { endpoint, sim, subscriptions: row[WEBHOOKS_COLUMN] as Subscription[] };
}
const SIM_ALIAS = 's';
const SIM_PREFIX = `${SIM_ALIAS}__`;
const WEBHOOKS_COLUMN = 'webhook_subscriptions';

/**
 * The endpoint's own SIM, as lockEndpoint's join locked it. When the join gave no SIM although the endpoint
 * (locked again alone) has one now, its link changed while this transaction waited: the answer is the
 * conflict, never a lock on that other SIM. PostgreSQL locks every row of a joined row before it checks the
 * join again on their newest versions, so a join that failed its recheck leaves this transaction holding
 * the SIM the endpoint had before; taking a second SIM on top of it is what two such transactions deadlock
 * on (one holding SIM A and waiting for B, the other holding B and waiting for A — seen in the storm of
 * test/domain/races.test.ts). The user confirmed a change to the endpoint as they saw it: it is no longer so.
 */
function lockedLinkedSim({ endpoint, sim }: Pick<LockedEndpoint, 'endpoint' | 'sim'>): Sim {
  // The database keeps the link symmetric; a SIM that does not point back is a link changing under us.
  if (!sim || sim.endpoint?.id !== endpoint.id) throw new ConflictError(CONFLICT_CONCURRENT);
  return sim;
}

/** Links a Ready to Activate SIM to an endpoint on Hold, both in the status the endpoint's Activate Immediately says. */
function link(endpoint: Endpoint, sim: Sim): LinkedStatus {
  const status: LinkedStatus = endpoint.activateImmediately ? 'active' : 'pre_active';
  endpoint.sim = ref(sim);
  endpoint.status = status;
  sim.endpoint = ref(endpoint);
  sim.status = status;
  return status;
}

/**
 * What a verb did to rows its transaction holds locked: the answer, and the event to record. The verbs' rules
 * and changes below (linkChange, delinkChange, transitionChange) are the one place each is written: the
 * single-row verbs and the batch (changeMany) both call them, on entities they locked; each checks every rule
 * before it changes anything, so a refused row is left as it was read.
 */
interface Change {
  outcome: Omit<Outcome, 'replayed'>;
  action: EventAction;
  details: EventDetails;
}

/** Link SIM on an endpoint and a SIM this transaction holds locked (null: no such SIM in the enterprise). */
function linkChange(endpoint: Endpoint, sim: Sim | null): Change {
  const refused = refusal('link', endpoint);
  if (refused) throw new InvalidStateError(refused);
  if (!sim) throw new NotFoundError('SIM');
  if (sim.status !== 'ready') throw new ConflictError(CONFLICT_SIM_TAKEN);
  const status = link(endpoint, sim);
  return {
    action: 'sim.linked',
    details: { endpoint, iccid: sim.iccid, endpointStatus: ['hold', status], simStatus: ['ready', status] },
    outcome: {
      operation: 'link',
      endpointId: endpoint.id,
      endpointName: endpoint.name,
      endpointStatus: status,
      iccid: sim.iccid,
      simStatus: status,
      message: `SIM ${sim.iccid} linked successfully`,
    },
  };
}

/** De-link on an endpoint and its SIM, both locked by this transaction. */
function delinkChange(locked: Pick<LockedEndpoint, 'endpoint' | 'sim'>): Change {
  const { endpoint } = locked;
  const refused = refusal('delink', endpoint);
  if (refused) throw new InvalidStateError(refused);
  const sim = lockedLinkedSim(locked);
  // A linked SIM's status is its endpoint's.
  const before = endpoint.status;
  endpoint.status = 'hold';
  endpoint.sim = null;
  sim.status = 'ready';
  sim.endpoint = null;
  return {
    action: 'sim.delinked',
    details: { endpoint, iccid: sim.iccid, endpointStatus: [before, 'hold'], simStatus: [before, 'ready'] },
    outcome: {
      operation: 'delink',
      endpointId: endpoint.id,
      endpointName: endpoint.name,
      endpointStatus: 'hold',
      iccid: sim.iccid,
      simStatus: 'ready',
      message: `SIM ${sim.iccid} de-linked successfully`,
    },
  };
}

/**
 * `sim`: the SIM's id (chosen in the picker) or its ICCID (typed, as the API sends it; checked by checkIccid
 * first). An ICCID not in the enterprise's inventory is a ValidationError on `iccid`, as for createEndpoint.
 */
export async function linkSim(
  em: EntityManager,
  ctx: OperationContext,
  endpointId: number,
  wanted: number | { iccid: string },
): Promise<Outcome> {
  return once(em, ctx, 'link', endpointId, async (tx) => {
    // The endpoint first (every operation takes the endpoint before the SIM: no lock cycles), so a second
    // link of the same endpoint waits here and then finds it no longer on Hold.
    const locked = await lockEndpoint(tx, ctx, endpointId);
    const refused = refusal('link', locked.endpoint);
    if (refused) throw new InvalidStateError(refused);
    const enterprise = ctx.actor.enterpriseId;
    const sim = await lockOne(tx, SimSchema, typeof wanted === 'number' ? { id: wanted, enterprise } : { iccid: wanted.iccid, enterprise });
    if (!sim && typeof wanted !== 'number') {
      throw new ValidationError([{ field: 'iccid', message: `There is no SIM with ICCID ${wanted.iccid} in your inventory` }]);
    }
    const change = linkChange(locked.endpoint, sim);
    await recordEvent(tx, ctx, change.action, change.details, locked.subscriptions);
    return change.outcome;
  });
}

export async function delinkSim(em: EntityManager, ctx: OperationContext, endpointId: number): Promise<Outcome> {
  return once(em, ctx, 'delink', endpointId, async (tx) => {
    const locked = await lockEndpoint(tx, ctx, endpointId, true);
    const change = delinkChange(locked);
    await recordEvent(tx, ctx, change.action, change.details, locked.subscriptions);
    return change.outcome;
  });
}

/**
 * Swaps the endpoint's SIM for a Ready to Activate one, in one transaction: the old SIM goes back to the
 * inventory Ready to Activate, the new one is linked, both rows in the status the endpoint's Activate
 * Immediately says (as for a link). Locks: the endpoint first, then the two SIMs in the order of their ids —
 * every operation takes SIMs after endpoints, and one that takes two takes them in one global order, so no
 * two operations ever wait on each other in a cycle.
 */
export async function swapSim(em: EntityManager, ctx: OperationContext, endpointId: number, newSimId: number): Promise<Outcome> {
  return once(em, ctx, 'swap', endpointId, async (tx) => {
    const locked = await lockEndpoint(tx, ctx, endpointId);
    const { endpoint } = locked;
    const refused = refusal('swap', endpoint);
    if (refused) throw new InvalidStateError(refused);
    const oldSimId = endpoint.sim?.id;
    if (!oldSimId) throw new ConflictError(CONFLICT_CONCURRENT);
    if (oldSimId === newSimId) throw new ConflictError(CONFLICT_SAME_SIM);
    const lockOld = () => lockOne(tx, SimSchema, { id: oldSimId, endpoint: endpoint.id });
    const lockNew = () => lockOne(tx, SimSchema, { id: newSimId, enterprise: ctx.actor.enterpriseId });
    let oldSim: Sim | null;
    let newSim: Sim | null;
    if (oldSimId < newSimId) {
      oldSim = await lockOld();
      newSim = await lockNew();
    } else {
      newSim = await lockNew();
      oldSim = await lockOld();
    }
    if (!oldSim) throw new ConflictError(CONFLICT_CONCURRENT);
    if (!newSim) throw new NotFoundError('SIM');
    if (newSim.status !== 'ready') throw new ConflictError(CONFLICT_SIM_TAKEN);
    const before = endpoint.status;
    oldSim.status = 'ready';
    oldSim.endpoint = null;
    // The old SIM lets go of the endpoint before the new one takes it: sim_endpoint_id_unique is checked row by row.
    await tx.flush();
    const status = link(endpoint, newSim);
    await recordEvent(
      tx,
      ctx,
      'sim.swapped',
      { endpoint, iccid: newSim.iccid, oldIccid: oldSim.iccid, endpointStatus: [before, status], simStatus: ['ready', status] },
      locked.subscriptions,
    );
    return {
      operation: 'swap',
      endpointId: endpoint.id,
      endpointName: endpoint.name,
      endpointStatus: status,
      iccid: newSim.iccid,
      simStatus: status,
      message: `SIM ${oldSim.iccid} swapped for SIM ${newSim.iccid}`,
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

/** Activate, Suspend or Resume on an endpoint and its SIM, both locked by this transaction. */
function transitionChange(t: Transition, locked: Pick<LockedEndpoint, 'endpoint' | 'sim'>): Change {
  const { endpoint } = locked;
  const refused = refusal(t.operation, endpoint);
  if (refused) throw new InvalidStateError(refused);
  const sim = lockedLinkedSim(locked);
  if (sim.status !== t.from) throw new ConflictError(CONFLICT_CONCURRENT);
  endpoint.status = t.to;
  sim.status = t.to;
  return {
    action: t.action,
    details: { endpoint, iccid: sim.iccid, endpointStatus: [t.from, t.to], simStatus: [t.from, t.to] },
    outcome: {
      operation: t.operation,
      endpointId: endpoint.id,
      endpointName: endpoint.name,
      endpointStatus: t.to,
      iccid: sim.iccid,
      simStatus: t.to,
      message: `Endpoint '${endpoint.name}' ${t.verb} successfully`,
    },
  };
}

async function transition(em: EntityManager, ctx: OperationContext, endpointId: number, t: Transition): Promise<Outcome> {
  return once(em, ctx, t.operation, endpointId, async (tx) => {
    const locked = await lockEndpoint(tx, ctx, endpointId, true);
    const change = transitionChange(t, locked);
    await recordEvent(tx, ctx, change.action, change.details, locked.subscriptions);
    return change.outcome;
  });
}

export const activateEndpoint = (em: EntityManager, ctx: OperationContext, endpointId: number) =>
  transition(em, ctx, endpointId, TRANSITIONS.activate);
export const suspendEndpoint = (em: EntityManager, ctx: OperationContext, endpointId: number) =>
  transition(em, ctx, endpointId, TRANSITIONS.suspend);
export const resumeEndpoint = (em: EntityManager, ctx: OperationContext, endpointId: number) =>
  transition(em, ctx, endpointId, TRANSITIONS.resume);

// ——— Many rows in one transaction (a bulk job's batch, bulk.ts) ———

/** The verbs a batch can do; a swap (two SIMs, a flush between them) goes through swapSim, one row at a time. */
export type BatchOperation = 'link' | 'delink' | 'activate' | 'suspend' | 'resume';

export interface BatchItem {
  operation: BatchOperation;
  endpointId: number;
  /** The SIM to link (link only). */
  simId?: number | null;
  /** The row's one-time key (required: it is what makes a row done once, whatever happens to the batch). */
  key: string;
}

/** A row's answer: its outcome, or the refusal (a DomainError, in the single verb's words). */
export type BatchResult = { ok: true; outcome: Outcome } | { ok: false; error: DomainError };

const isBatchConflict = (error: unknown) =>
  error instanceof ConstraintViolationException || error instanceof DeadlockException || error instanceof LockWaitTimeoutException;

/**
 * Does many rows' operations in one transaction, each with its one-time key — what calling the single verbs
 * one after the other would do (the same rules, changes, events, webhook messages and keys: linkChange,
 * delinkChange, transitionChange and recordEvents), in a dozen statements instead of seven per row, one flush
 * and one commit. Every row is answered on its own: a row that cannot be done (someone changed its endpoint
 * meanwhile) is refused alone with its reason and changes nothing; a row whose key is stored already (done
 * before a crash, or by another runner) is answered by the stored outcome and done again never.
 *
 * Locks: every endpoint of the batch first, in the order of their ids, in one statement (SELECT … ORDER BY id
 * FOR UPDATE locks the rows in the order it returns them); then every SIM the rows need — the SIMs to link and
 * the endpoints' own SIMs, read from the endpoints now locked (no one can change a link without the endpoint's
 * lock) — in the order of their ids, in a second. So the batch takes its rows in the global order every
 * operation keeps (endpoints before SIMs, SIMs by id; docs/lifecycle.md): it never waits in a cycle with a
 * single-row operation or with another batch. There is no join in these statements, so no join's recheck can
 * leave a SIM locked behind, and nothing more is locked after the SIMs: a row whose SIM is not among them is
 * refused (as the single verb would be: "changed meanwhile").
 *
 * If the transaction ends on a constraint (a key stored meanwhile, a deferred foreign key at commit), a
 * deadlock or a lock timeout, it rolls back whole and the rows are done again one by one through the single
 * verbs — each with its own key, so a row that another transaction did meanwhile is answered by its key.
 */
export async function changeMany(em: EntityManager, ctx: Omit<OperationContext, 'key'>, items: BatchItem[]): Promise<BatchResult[]> {
  requireAdmin(ctx.actor);
  if (!items.length) return [];
  try {
    return await changeManyAtOnce(em, ctx, items);
  } catch (error) {
    if (!isBatchConflict(error)) throw error;
    const results: BatchResult[] = [];
    for (const item of items) results.push(await changeOne(em, { ...ctx, key: item.key }, item));
    return results;
  }
}

/** One row through its single verb, with its key: the fallback of a batch that could not commit. */
async function changeOne(em: EntityManager, ctx: OperationContext, item: BatchItem): Promise<BatchResult> {
  try {
    const outcome =
      item.operation === 'link'
        ? await linkSim(em, ctx, item.endpointId, item.simId!)
        : item.operation === 'delink'
          ? await delinkSim(em, ctx, item.endpointId)
          : await transition(em, ctx, item.endpointId, TRANSITIONS[item.operation]);
    return { ok: true, outcome };
  } catch (error) {
    if (error instanceof DomainError) return { ok: false, error };
    throw error;
  }
}

async function changeManyAtOnce(em: EntityManager, ctx: Omit<OperationContext, 'key'>, items: BatchItem[]): Promise<BatchResult[]> {
  const enterprise = ctx.actor.enterpriseId;
  const actionOf = (item: BatchItem) => `${item.operation}:${item.endpointId}`;
  const results = new Array<BatchResult | undefined>(items.length);
  const tx = em.fork({ flushMode: FlushMode.COMMIT });
  try {
    await tx.begin();
    // Rows done already (their keys stored): answered as `once` answers a replay.
    const stored = await storedKeys(tx, items);
    items.forEach((item, i) => {
      const previous = stored.get(item.key);
      if (previous) results[i] = replayResult(ctx, previous, actionOf(item));
    });
    const todo = items.flatMap((item, i) => (results[i] ? [] : [{ item, i }]));
    const endpoints = new Map<number, Endpoint>();
    for (const endpoint of await tx.find(
      EndpointSchema,
      { id: { $in: [...new Set(todo.map(({ item }) => item.endpointId))] }, enterprise },
      { orderBy: { id: 'asc' }, lockMode: LockMode.PESSIMISTIC_WRITE },
    ))
      endpoints.set(endpoint.id, endpoint);
    const simIds = new Set<number>();
    for (const { item } of todo) {
      const simId = item.operation === 'link' ? item.simId : endpoints.get(item.endpointId)?.sim?.id;
      if (simId) simIds.add(simId);
    }
    const sims = new Map<number, Sim>();
    if (simIds.size)
      for (const sim of await tx.find(
        SimSchema,
        { id: { $in: [...simIds] }, enterprise },
        { orderBy: { id: 'asc' }, lockMode: LockMode.PESSIMISTIC_WRITE },
      ))
        sims.set(sim.id, sim);

    // Each row's rule and change, in the batch's order, on the entities as the rows before it left them.
    const changes: { change: Change; key: string; action: string }[] = [];
    for (const { item, i } of todo) {
      try {
        const endpoint = endpoints.get(item.endpointId);
        if (!endpoint) throw new NotFoundError('endpoint');
        const sim = item.operation === 'link' ? item.simId : endpoint.sim?.id;
        const locked = { endpoint, sim: sim ? sims.get(sim) : undefined };
        const change =
          item.operation === 'link'
            ? linkChange(endpoint, locked.sim ?? null)
            : item.operation === 'delink'
              ? delinkChange(locked)
              : transitionChange(TRANSITIONS[item.operation], locked);
        changes.push({ change, key: item.key, action: actionOf(item) });
        results[i] = { ok: true, outcome: { ...change.outcome, replayed: false } };
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        results[i] = { ok: false, error };
      }
    }
    if (changes.length) {
      await recordEvents(
        tx,
        ctx,
        changes.map(({ change }) => change),
        await enterpriseSubscriptions(tx, enterprise),
      );
      await tx.insertMany(
        OperationKeySchema,
        changes.map(({ change, key, action }) => ({ key, enterprise, userId: ctx.actor.id, action, outcome: { ...change.outcome } })),
      );
    }
    await tx.commit();
  } catch (error) {
    if (tx.isInTransaction()) await tx.rollback().catch(() => undefined);
    throw error;
  }
  // A row refused because another transaction did it meanwhile (its key committed while this one waited for
  // the rows' locks): answered by its key, as `once` answers.
  const refused = items.filter((_, i) => !results[i]!.ok);
  if (refused.length) {
    const stored = await storedKeys(em.fork(), refused);
    items.forEach((item, i) => {
      const previous = stored.get(item.key);
      if (previous && !results[i]!.ok) results[i] = replayResult(ctx, previous, actionOf(item));
    });
  }
  return results as BatchResult[];
}

/** The stored one-time keys among these rows'. */
async function storedKeys(em: EntityManager, items: BatchItem[]): Promise<Map<string, OperationKey>> {
  const keys = await em.find(OperationKeySchema, { key: { $in: items.map((item) => item.key) } }, { disableIdentityMap: true });
  return new Map(keys.map((key) => [key.key, key]));
}

/** A stored key's answer, as `replay` gives it: the outcome, or refused if the key was another user's or operation's. */
function replayResult(ctx: Omit<OperationContext, 'key'>, previous: OperationKey, action: string): BatchResult {
  if (previous.userId !== ctx.actor.id || previous.action !== action) {
    return { ok: false, error: new ConflictError(FORM_USED) };
  }
  return { ok: true, outcome: { ...(previous.outcome as Omit<Outcome, 'replayed'>), replayed: true } };
}

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
  else if ([...name].length > ENDPOINT_NAME_MAX_LENGTH) {
    errors.push({ field: 'name', message: `Name must be ${ENDPOINT_NAME_MAX_LENGTH} characters or fewer` });
  } else if (hasHiddenCharacters(name)) errors.push({ field: 'name', message: hiddenCharactersMessage('Name') });
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
function endpointWithImei(em: EntityManager, enterpriseId: number, imei: string) {
  return em.findOne(EndpointSchema, { enterprise: enterpriseId, imei }, { fields: ['id', 'name'] });
}

const imeiInUse = (imei: string, holder: { name: string }) =>
  new ValidationError([
    { field: 'imei', message: `IMEI ${imei} is already used by endpoint '${holder.name}'; a device has one IMEI, so check the number` },
  ]);

export async function createEndpoint(em: EntityManager, ctx: OperationContext, input: CreateEndpointInput): Promise<Outcome> {
  requireAdmin(ctx.actor);
  const values = validateNewEndpoint(input);
  try {
    return await insertEndpoint(em, ctx, values);
  } catch (error) {
    // Two creates with one IMEI at the same moment both pass the check below; the partial unique index
    // (endpoint_imei_unique) stops the second, which gets the same words as if it had come later.
    if (
      values.imei &&
      error instanceof ConflictError &&
      String((error.cause as Error | undefined)?.message).includes('endpoint_imei_unique')
    ) {
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
    // The SIM to link at once, locked (the new endpoint needs no lock: no one else can see it yet).
    const wanted: Record<string, string | number> | null = values.simId
      ? { id: values.simId }
      : values.iccid
        ? { iccid: values.iccid }
        : null;
    const sim = wanted ? await lockOne(tx, SimSchema, { ...wanted, enterprise: ctx.actor.enterpriseId }) : null;
    if (wanted && !sim) {
      throw new ValidationError([
        {
          field: 'iccid',
          message: values.iccid ? `There is no SIM with ICCID ${values.iccid} in your inventory` : 'That SIM is not in your inventory',
        },
      ]);
    }
    if (sim && sim.status !== 'ready') {
      throw new ValidationError([
        { field: 'iccid', message: `SIM ${sim.iccid} is ${simStatusLabel(sim.status)}, not Ready to Activate; choose another SIM` },
      ]);
    }
    const endpoint = tx.create(EndpointSchema, {
      enterprise: ctx.actor.enterpriseId,
      name: values.name,
      imei: values.imei,
      activateImmediately: values.activateImmediately,
      status: 'hold',
      sim: null,
    });
    const status = sim ? link(endpoint, sim) : null;
    // Inserts the endpoint (already linked, when it has a SIM): its id goes into the events and the outcome.
    await tx.flush();
    await recordEvent(tx, ctx, 'endpoint.created', { endpoint, iccid: null, endpointStatus: [null, 'hold'], simStatus: [null, null] });
    if (!sim || !status) {
      return {
        operation: 'create',
        endpointId: endpoint.id,
        endpointName: endpoint.name,
        endpointStatus: 'hold',
        iccid: null,
        simStatus: null,
        message: `Endpoint '${endpoint.name}' created successfully`,
      };
    }
    await recordEvent(tx, ctx, 'sim.linked', {
      endpoint,
      iccid: sim.iccid,
      endpointStatus: ['hold', status],
      simStatus: ['ready', status],
    });
    return {
      operation: 'create',
      endpointId: endpoint.id,
      endpointName: endpoint.name,
      endpointStatus: status,
      iccid: sim.iccid,
      simStatus: status,
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
    case 'swap':
      return `The old SIM will return to the inventory as Ready to Activate; the endpoint and the new SIM will become ${activateImmediately ? 'Active' : 'Pre-Active'}.`;
    case 'activate':
      return 'The endpoint and SIM will become Active.';
    case 'suspend':
      return 'The endpoint and SIM will become Suspended.';
    case 'resume':
      return 'The endpoint and SIM will become Active again.';
  }
}
