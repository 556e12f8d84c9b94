// What SIM Link stores: enterprises (tenants), their users, endpoints, SIMs, the audit trail, and the rows
// that keep sessions, one-time confirmation keys and spent launch tokens.
// The link between an endpoint and a SIM is kept on both rows (Endpoint.sim, Sim.endpoint: two owning
// one-to-one relations, columns endpoint.sim_id and sim.endpoint_id) so the database itself can hold every
// invariant of docs/invariants.md (see migrations/ for the constraints).
//
// These entities declare the schema the migrations build — columns, defaults, unique and check constraints,
// indexes, foreign keys under their database names — and test/db/entities-schema.test.ts checks on both
// servers that MikroORM finds nothing to change. What MikroORM cannot declare is said where it applies.
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

/** An endpoint's name: 1 to this many characters (SPEC §1), after trimming; the column, the check and every input path use it. */
export const ENDPOINT_NAME_MAX_LENGTH = 100;
export const ENDPOINT_STATUSES = ['hold', 'pre_active', 'active', 'suspended'] as const;
export const SIM_STATUSES = ['ready', 'pre_active', 'active', 'suspended'] as const;
export const ROLES = ['admin', 'viewer'] as const;

export type EndpointStatus = (typeof ENDPOINT_STATUSES)[number];
export type SimStatus = (typeof SIM_STATUSES)[number];
export type Role = (typeof ROLES)[number];
/** The statuses a linked endpoint and its SIM share (docs/invariants.md, invariant 4). */
export type LinkedStatus = Exclude<EndpointStatus, 'hold'>;

export const ENDPOINT_STATUS_LABELS: Record<EndpointStatus, string> = {
  hold: 'Hold',
  pre_active: 'Pre-Active',
  active: 'Active',
  suspended: 'Suspended',
};

export const SIM_STATUS_LABELS: Record<SimStatus, string> = {
  ready: 'Ready to Activate',
  pre_active: 'Pre-Active',
  active: 'Active',
  suspended: 'Suspended',
};

/** A status code as people read it; an unknown code is shown as it is. */
export const endpointStatusLabel = (code: string) => ENDPOINT_STATUS_LABELS[code as EndpointStatus] ?? code;
export const simStatusLabel = (code: string) => SIM_STATUS_LABELS[code as SimStatus] ?? code;

export const EVENT_ACTIONS = [
  'endpoint.created',
  'sim.linked',
  'sim.delinked',
  'endpoint.activated',
  'endpoint.suspended',
  'endpoint.resumed',
  'sims.imported',
  'sims.import_refused',
  'sim.swapped',
  'bulk.completed',
] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

/** Where a change came from (SPEC §1, Event.source). */
export const EVENT_SOURCES = ['ui', 'crm', 'api', 'import', 'bulk'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** created_at / updated_at: set by the unit of work (onCreate/onUpdate); the database's default covers other writers. */
const createdAt = () =>
  p
    .datetime()
    .columnType('timestamptz')
    .defaultRaw('now()')
    .onCreate(() => new Date());
const updatedAt = () => createdAt().onUpdate(() => new Date());
/** Foreign keys of the migrations: `references x (id)` — no cascade on update (MikroORM's default). */
const NO_ACTION = 'no action';

export const EnterpriseSchema = defineEntity({
  name: 'Enterprise',
  properties: {
    id: p.integer().primary().autoincrement(),
    slug: p.string().length(60).unique('enterprise_slug_key'),
    name: p.string().length(200),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  checks: [
    { name: 'enterprise_slug_check', expression: `slug ~ '^[a-z0-9][a-z0-9-]*$'` },
    { name: 'enterprise_name_check', expression: 'length(btrim(name)) > 0' },
  ],
});
export type Enterprise = InferEntity<typeof EnterpriseSchema>;

export const UserSchema = defineEntity({
  name: 'User',
  tableName: 'app_user',
  properties: {
    id: p.integer().primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref().foreignKeyName('app_user_enterprise_id_fkey').updateRule(NO_ACTION),
    email: p.string().length(254).unique('app_user_email_key'),
    displayName: p.string().length(200),
    role: p.enum([...ROLES]).columnType('varchar(10)'),
    /** scrypt, in the format of src/domain/passwords.ts; null for users who only arrive through the CRM. */
    passwordHash: p.string().length(300).nullable(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  indexes: [{ name: 'app_user_enterprise_idx', properties: ['enterprise'] }],
  // `~~` is how PostgreSQL writes back `like`; MikroORM compares the expressions as the database returns them.
  checks: [{ name: 'app_user_email_check', expression: `email = lower(email) and email ~~ '%_@_%'` }],
});
export type User = InferEntity<typeof UserSchema>;

export const EndpointSchema = defineEntity({
  name: 'Endpoint',
  properties: {
    id: p.integer().primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref().foreignKeyName('endpoint_enterprise_id_fkey').updateRule(NO_ACTION),
    name: p.string().length(100),
    /** Collation "C" in the database (prefix search); MikroORM 6 does not compare collations — test/db/schema.test.ts does. */
    imei: p.string().length(15).nullable(),
    activateImmediately: p.boolean().default(false),
    status: p
      .enum([...ENDPOINT_STATUSES])
      .columnType('varchar(12)')
      .default('hold'),
    /**
     * The linked SIM. Its foreign key is the composite, deferred endpoint_sim_link_fk (sim_id, id, enterprise_id,
     * status) → sim (id, endpoint_id, enterprise_id, status), which MikroORM cannot declare (a foreign key to
     * columns other than the primary key): so no single-column key here, and the test compares that one apart.
     */
    sim: () => p.oneToOne(SimSchema).owner().nullable().ref().fieldName('sim_id').createForeignKeyConstraint(false).unique(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  uniques: [
    // One SIM per endpoint: declared on the table, not as the property's `unique`. MikroORM writes a change of
    // a unique property in an UPDATE of its own when two entities of one flush change it (for a value moving
    // from one row to another); but endpoint_hold_iff_no_sim needs sim_id and status in one statement, so a
    // flush that links many endpoints (changeMany in lifecycle.ts) would fail the check. No verb moves a SIM
    // between two rows in one flush (Swap SIM flushes in between), so nothing needs that split. Sim.endpoint alike.
    { name: 'endpoint_sim_id_unique', properties: ['sim'] },
    // The target of sim_endpoint_link_fk.
    { name: 'endpoint_link_key', properties: ['id', 'sim', 'enterprise', 'status'] },
    // One IMEI per device within an enterprise (Migration20261203100000_unique_imei).
    {
      name: 'endpoint_imei_unique',
      expression: 'create unique index endpoint_imei_unique on endpoint (enterprise_id, imei) where imei is not null',
    },
  ],
  indexes: [
    { name: 'endpoint_list_idx', properties: ['enterprise', 'name', 'id'] },
    { name: 'endpoint_status_list_idx', properties: ['enterprise', 'status', 'name', 'id'] },
    {
      name: 'endpoint_name_prefix_idx',
      expression: 'create index endpoint_name_prefix_idx on endpoint (enterprise_id, lower(name) text_pattern_ops)',
    },
  ],
  checks: [
    { name: 'endpoint_name_check', expression: 'length(btrim(name)) >= 1 and length(btrim(name)) <= 100' },
    { name: 'endpoint_imei_check', expression: `imei ~ '^[0-9]{15}$'` },
    { name: 'endpoint_hold_iff_no_sim', expression: `(status = 'hold') = (sim_id is null)` },
  ],
});
export type Endpoint = InferEntity<typeof EndpointSchema>;

export const SimSchema = defineEntity({
  name: 'Sim',
  properties: {
    id: p.integer().primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref().foreignKeyName('sim_enterprise_id_fkey').updateRule(NO_ACTION),
    // Identifier columns have the collation "C" (see Endpoint.imei).
    iccid: p.string().length(20).unique('sim_iccid_unique'),
    imsi: p.string().length(15).unique('sim_imsi_unique'),
    eid: p.string().length(32).nullable().unique('sim_eid_unique'),
    msisdn: p.string().length(15).nullable(),
    status: p
      .enum([...SIM_STATUSES])
      .columnType('varchar(12)')
      .default('ready'),
    /** The linked endpoint; its foreign key is the composite sim_endpoint_link_fk (see Endpoint.sim). */
    endpoint: () =>
      p.oneToOne(EndpointSchema).owner().nullable().ref().fieldName('endpoint_id').createForeignKeyConstraint(false).unique(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  uniques: [
    // One endpoint per SIM (declared on the table: see Endpoint's endpoint_sim_id_unique).
    { name: 'sim_endpoint_id_unique', properties: ['endpoint'] },
    // The target of endpoint_sim_link_fk.
    { name: 'sim_link_key', properties: ['id', 'endpoint', 'enterprise', 'status'] },
  ],
  indexes: [
    // The SIM picker: Ready to Activate SIMs of one enterprise in ICCID order (keyset), and prefix search.
    { name: 'sim_ready_iccid_idx', expression: `create index sim_ready_iccid_idx on sim (enterprise_id, iccid) where status = 'ready'` },
    { name: 'sim_ready_imsi_idx', expression: `create index sim_ready_imsi_idx on sim (enterprise_id, imsi) where status = 'ready'` },
    {
      name: 'sim_ready_eid_idx',
      expression: `create index sim_ready_eid_idx on sim (enterprise_id, eid) where status = 'ready' and eid is not null`,
    },
    // The inventory: all SIMs of one enterprise in ICCID order, optionally of one status.
    { name: 'sim_list_idx', properties: ['enterprise', 'iccid'] },
    { name: 'sim_status_list_idx', properties: ['enterprise', 'status', 'iccid'] },
  ],
  checks: [
    { name: 'sim_iccid_check', expression: `iccid ~ '^89[0-9]{17,18}$'` },
    { name: 'sim_imsi_check', expression: `imsi ~ '^[0-9]{15}$'` },
    { name: 'sim_eid_check', expression: `eid ~ '^[0-9]{32}$'` },
    { name: 'sim_msisdn_check', expression: `msisdn ~ '^[0-9]{5,15}$'` },
    { name: 'sim_ready_iff_no_endpoint', expression: `(status = 'ready') = (endpoint_id is null)` },
  ],
});
export type Sim = InferEntity<typeof SimSchema>;

/**
 * The audit trail: written once, in the transaction of the change it records, never updated (a trigger,
 * event_append_only, refuses updates and deletes — MikroORM does not declare triggers). Names and statuses
 * are copied as they were, so the event reads the same whatever happens to the endpoint or SIM later.
 */
export const EventSchema = defineEntity({
  name: 'Event',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref().foreignKeyName('event_enterprise_id_fkey').updateRule(NO_ACTION),
    /** The user who acted (no foreign key: the trail outlives users); their name as it was. */
    actorId: p.integer().nullable(),
    actorName: p.string().length(200),
    action: p.enum([...EVENT_ACTIONS]).columnType('varchar(40)'),
    endpoint: () =>
      p.manyToOne(EndpointSchema).ref().nullable().foreignKeyName('event_endpoint_id_fkey').updateRule(NO_ACTION).deleteRule(NO_ACTION),
    endpointName: p.string().length(100).nullable(),
    simIccid: p.string().length(20).nullable(),
    /** The SIM a swap replaced (sim.swapped); simIccid is the one that took its place. */
    oldSimIccid: p.string().length(20).nullable(),
    endpointStatusBefore: p.string().length(20).nullable(),
    endpointStatusAfter: p.string().length(20).nullable(),
    simStatusBefore: p.string().length(20).nullable(),
    simStatusAfter: p.string().length(20).nullable(),
    /** Rows of an import (sims.imported, sims.import_refused). */
    count: p.integer().nullable(),
    /** Problems found in a refused import; failed rows of a bulk change (bulk.completed). */
    problemCount: p.integer().nullable(),
    /** The bulk change a bulk.completed event reports (no foreign key: the trail outlives the job). */
    bulkJobId: p.integer().nullable(),
    /** How that bulk change ended: done or cancelled. */
    bulkState: p.string().length(12).nullable(),
    requestId: p.string().length(100).nullable(),
    /** Where the change came from; with `api` the actor is an API token (actorId is the token's id). */
    source: p
      .enum([...EVENT_SOURCES])
      .columnType('varchar(10)')
      .default('ui'),
    createdAt: createdAt(),
  },
  indexes: [
    { name: 'event_enterprise_idx', expression: 'create index event_enterprise_idx on event (enterprise_id, id desc)' },
    { name: 'event_action_idx', expression: 'create index event_action_idx on event (enterprise_id, action, id desc)' },
    {
      name: 'event_endpoint_idx',
      expression: 'create index event_endpoint_idx on event (endpoint_id, id desc) where endpoint_id is not null',
    },
  ],
});
export type Event = InferEntity<typeof EventSchema>;

/** A server-side session: the cookie holds a random id, whose SHA-256 is the key here (see web/plugins/session.ts). */
export const SessionSchema = defineEntity({
  name: 'Session',
  properties: {
    id: p.string().length(128).primary(),
    user: () => p.manyToOne(UserSchema).ref().nullable().foreignKeyName('session_user_id_fkey').updateRule(NO_ACTION).deleteRule('cascade'),
    data: p.json<Record<string, unknown>>().columnType('jsonb'),
    createdAt: createdAt(),
    expiresAt: p.datetime().columnType('timestamptz'),
  },
  indexes: [
    { name: 'session_expires_idx', properties: ['expiresAt'] },
    { name: 'session_user_idx', properties: ['user'] },
  ],
});
export type Session = InferEntity<typeof SessionSchema>;

/**
 * The one-time key of a confirmation form: the first submission stores its outcome here, in its own
 * transaction; a replay of the form is answered with it. `action` is the operation and its endpoint.
 */
export const OperationKeySchema = defineEntity({
  name: 'OperationKey',
  properties: {
    key: p.string().length(64).primary(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref().foreignKeyName('operation_key_enterprise_id_fkey').updateRule(NO_ACTION),
    /** The user who submitted it (no foreign key, like Event.actorId). */
    userId: p.integer(),
    action: p.string().length(40),
    outcome: p.json<Record<string, unknown>>().columnType('jsonb'),
    createdAt: createdAt(),
  },
  indexes: [{ name: 'operation_key_created_idx', properties: ['createdAt'] }],
});
export type OperationKey = InferEntity<typeof OperationKeySchema>;

/** A launch token's jti, spent: kept until the token could no longer pass the expiry check anyway. */
export const LaunchTokenUseSchema = defineEntity({
  name: 'LaunchTokenUse',
  properties: {
    jti: p.string().length(200).primary(),
    expiresAt: p.datetime().columnType('timestamptz'),
    usedAt: createdAt(),
  },
});
export type LaunchTokenUse = InferEntity<typeof LaunchTokenUseSchema>;

/**
 * A rate limit's counter for one key (e.g. sign-in by address) until `resetAt`, shared by every instance.
 * Written only by the rate-limit store's single upsert (src/db/rate-limit-store.ts), which must count
 * concurrent hits atomically — `insert … on conflict do update … returning` in one round trip.
 */
export const RateLimitCounterSchema = defineEntity({
  name: 'RateLimitCounter',
  properties: {
    key: p.text().primary(),
    count: p.integer(),
    resetAt: p.datetime().columnType('timestamptz'),
  },
  indexes: [{ name: 'rate_limit_counter_reset_idx', properties: ['resetAt'] }],
});
export type RateLimitCounter = InferEntity<typeof RateLimitCounterSchema>;

/** Event types a webhook can subscribe to (SPEC.md §6): the lifecycle's and the import's. */
export const WEBHOOK_EVENT_TYPES = [
  'endpoint.created',
  'sim.linked',
  'sim.delinked',
  'endpoint.activated',
  'endpoint.suspended',
  'endpoint.resumed',
  'sim.swapped',
  'sims.imported',
  'bulk.completed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * A receiver of an enterprise's changes (see src/domain/webhooks.ts): its URL, the event types it wants, and
 * the secret its messages are signed with (Standard Webhooks, `whsec_…`). A webhook that could not be reached
 * for a day is disabled, with the reason kept for its page.
 */
export const WebhookSchema = defineEntity({
  name: 'Webhook',
  properties: {
    id: p.integer().primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref().foreignKeyName('webhook_enterprise_id_fkey').updateRule(NO_ACTION),
    url: p.string().length(2000),
    eventTypes: p.array().columnType('text[]'),
    secret: p.string().length(100),
    enabled: p.boolean().default(true),
    disabledReason: p.string().length(500).nullable(),
    /** When the first of the attempts failing since the last success failed; null while deliveries succeed. */
    failingSince: p.datetime().columnType('timestamptz').nullable(),
    createdBy: p.integer().nullable(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  indexes: [{ name: 'webhook_enterprise_idx', properties: ['enterprise'] }],
});
export type Webhook = InferEntity<typeof WebhookSchema>;

/**
 * One event for one webhook: written in the transaction of the change (the outbox), then delivered by the
 * worker (src/domain/webhook-delivery.ts) until a 2xx, or given up after a day. `messageId` is the `webhook-id`
 * every attempt and every resend carries, so a receiver can drop repeats.
 */
export const WebhookMessageSchema = defineEntity({
  name: 'WebhookMessage',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    webhook: () =>
      p.manyToOne(WebhookSchema).ref().foreignKeyName('webhook_message_webhook_id_fkey').updateRule(NO_ACTION).deleteRule('cascade'),
    messageId: p.string().length(40).unique('webhook_message_message_id_key'),
    /**
     * The endpoint the message is about, null for one about none (an import, a bulk job, a test event): with the
     * webhook, the message's lane — the worker sends a lane's messages one at a time, in order (webhook-delivery.ts).
     */
    endpointId: p.integer().nullable(),
    eventType: p.string().length(40),
    payload: p.json<Record<string, unknown>>().columnType('jsonb'),
    attempts: p.integer().default(0),
    nextAttemptAt: p.datetime().columnType('timestamptz').nullable(),
    /**
     * The token of the delivery batch that holds the message's lease (next_attempt_at is then the lease's end),
     * null when none does. The batch writes to the message only while the lease is still its own (webhook-delivery.ts).
     */
    leaseToken: p.string().length(32).nullable(),
    /** When it was first attempted (since its webhook was last enabled, or it was resent): the day to give up counts from there. */
    firstAttemptedAt: p.datetime().columnType('timestamptz').nullable(),
    deliveredAt: p.datetime().columnType('timestamptz').nullable(),
    failedAt: p.datetime().columnType('timestamptz').nullable(),
    createdAt: createdAt(),
  },
  indexes: [
    {
      name: 'webhook_message_due_idx',
      expression: 'create index webhook_message_due_idx on webhook_message (next_attempt_at) where next_attempt_at is not null',
    },
    {
      name: 'webhook_message_webhook_idx',
      expression: 'create index webhook_message_webhook_idx on webhook_message (webhook_id, id desc)',
    },
    {
      name: 'webhook_message_lane_idx',
      expression:
        'create index webhook_message_lane_idx on webhook_message (webhook_id, coalesce(endpoint_id, 0), id) where next_attempt_at is not null',
    },
  ],
});
export type WebhookMessage = InferEntity<typeof WebhookMessageSchema>;

/** One attempt to deliver a message: when, how long, the status or the error, and the start of the answer. */
export const WebhookAttemptSchema = defineEntity({
  name: 'WebhookAttempt',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    message: () =>
      p.manyToOne(WebhookMessageSchema).ref().foreignKeyName('webhook_attempt_message_id_fkey').updateRule(NO_ACTION).deleteRule('cascade'),
    webhookId: p.integer(),
    attemptedAt: createdAt(),
    durationMs: p.integer(),
    status: p.integer().nullable(),
    error: p.string().length(500).nullable(),
    responseStart: p.text().nullable(),
  },
  indexes: [
    {
      name: 'webhook_attempt_webhook_idx',
      expression: 'create index webhook_attempt_webhook_idx on webhook_attempt (webhook_id, id desc)',
    },
  ],
});
export type WebhookAttempt = InferEntity<typeof WebhookAttemptSchema>;

export const BULK_ACTIONS = ['link', 'delink', 'swap', 'activate', 'suspend', 'resume'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];
export const BULK_JOB_STATES = ['draft', 'queued', 'running', 'done', 'cancelled'] as const;
export type BulkJobState = (typeof BULK_JOB_STATES)[number];

/**
 * A bulk change (SPEC.md §7): the rows of an uploaded file that passed the preview, applied in the background
 * by one instance at a time (src/domain/bulk.ts). `leaseUntil` is how long the instance running it holds it;
 * a job whose lease ran out (its instance died) is taken up by another and resumes where it stopped.
 */
export const BulkJobSchema = defineEntity({
  name: 'BulkJob',
  properties: {
    id: p.integer().primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref().foreignKeyName('bulk_job_enterprise_id_fkey').updateRule(NO_ACTION),
    createdBy: p.integer(),
    createdByName: p.string().length(200),
    fileName: p.string().length(255),
    state: p.enum([...BULK_JOB_STATES]).columnType('varchar(12)'),
    total: p.integer(),
    done: p.integer().default(0),
    failed: p.integer().default(0),
    cancelRequested: p.boolean().default(false),
    leaseUntil: p.datetime().columnType('timestamptz').nullable(),
    /** When a runner last took the job for a round: claims go to the enterprise served least recently. */
    servedAt: p.datetime().columnType('timestamptz').nullable(),
    startedAt: p.datetime().columnType('timestamptz').nullable(),
    finishedAt: p.datetime().columnType('timestamptz').nullable(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  indexes: [
    { name: 'bulk_job_enterprise_idx', expression: 'create index bulk_job_enterprise_idx on bulk_job (enterprise_id, id desc)' },
    {
      name: 'bulk_job_pending_idx',
      expression: "create index bulk_job_pending_idx on bulk_job (id) where state in ('queued', 'running')",
    },
  ],
});
export type BulkJob = InferEntity<typeof BulkJobSchema>;

/** One row of a bulk change: what to do, and — once done — its outcome and the words that explain it. */
export const BulkJobRowSchema = defineEntity({
  name: 'BulkJobRow',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    job: () => p.manyToOne(BulkJobSchema).ref().foreignKeyName('bulk_job_row_job_id_fkey').updateRule(NO_ACTION).deleteRule('cascade'),
    line: p.integer(),
    endpointId: p.integer(),
    action: p.enum([...BULK_ACTIONS]).columnType('varchar(12)'),
    iccid: p.string().length(20).nullable(),
    simId: p.integer().nullable(),
    outcome: p.string().length(10).nullable(),
    message: p.string().length(500).nullable(),
  },
  indexes: [{ name: 'bulk_job_row_job_idx', expression: 'create index bulk_job_row_job_idx on bulk_job_row (job_id, line)' }],
});
export type BulkJobRow = InferEntity<typeof BulkJobRowSchema>;

/** A row of a bulk change's file that the preview refused: its values as written, and the reason. */
export const BulkJobProblemSchema = defineEntity({
  name: 'BulkJobProblem',
  properties: {
    job: () =>
      p.manyToOne(BulkJobSchema).ref().primary().foreignKeyName('bulk_job_problem_job_id_fkey').updateRule(NO_ACTION).deleteRule('cascade'),
    line: p.integer().primary(),
    endpointId: p.string().length(40),
    action: p.string().length(40),
    iccid: p.string().length(40),
    reason: p.string().length(500),
  },
});
export type BulkJobProblem = InferEntity<typeof BulkJobProblemSchema>;

/**
 * An API token (SPEC §5): acts for its enterprise with its role. Only the SHA-256 of the token is kept;
 * a revoked token stays listed (revokedAt) and is refused from the next request on.
 */
export const ApiTokenSchema = defineEntity({
  name: 'ApiToken',
  properties: {
    id: p.integer().primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref().foreignKeyName('api_token_enterprise_id_fkey').updateRule(NO_ACTION),
    name: p.string().length(100),
    role: p.enum([...ROLES]).columnType('varchar(10)'),
    /** SHA-256 of the token, hex. */
    tokenHash: p.string().length(64).unique('api_token_token_hash_key'),
    /** The admin who created it, and their name as it was. */
    createdBy: () =>
      p
        .manyToOne(UserSchema)
        .ref()
        .nullable()
        .fieldName('created_by_id')
        .foreignKeyName('api_token_created_by_id_fkey')
        .updateRule(NO_ACTION),
    createdByName: p.string().length(200),
    createdAt: p
      .datetime()
      .columnType('timestamptz')
      .defaultRaw('now()')
      .onCreate(() => new Date()),
    lastUsedAt: p.datetime().columnType('timestamptz').nullable(),
    revokedAt: p.datetime().columnType('timestamptz').nullable(),
  },
  indexes: [{ name: 'api_token_enterprise_idx', properties: ['enterprise', 'id'] }],
  checks: [{ name: 'api_token_name_check', expression: 'length(btrim(name)) >= 1 and length(btrim(name)) <= 100' }],
});
export type ApiToken = InferEntity<typeof ApiTokenSchema>;

/**
 * A row of a SIM file being imported (src/domain/sim-import.ts), staged inside the import's transaction:
 * its valid identifiers (null for an invalid or empty one) and whether the whole row is valid. Keyed by the
 * import (a uuid made per import) and the row's line. An UNLOGGED table: the import deletes its rows before
 * it commits.
 */
export const ImportRowSchema = defineEntity({
  name: 'ImportRow',
  tableName: 'import_row',
  properties: {
    importId: p.uuid().primary(),
    line: p.integer().primary(),
    iccid: p.text().nullable(),
    imsi: p.text().nullable(),
    eid: p.text().nullable(),
    msisdn: p.text().nullable(),
    ok: p.boolean(),
  },
});
export type ImportRow = InferEntity<typeof ImportRowSchema>;

/** A problem found in a SIM file being imported, numbered (`id`) in the order it was found; as ImportRow. */
export const ImportProblemSchema = defineEntity({
  name: 'ImportProblem',
  tableName: 'import_problem',
  properties: {
    importId: p.uuid().primary(),
    id: p.integer().primary(),
    line: p.integer(),
    /** The field's place in a report's order: Line, ICCID, IMSI, EID, MSISDN. */
    fieldOrder: p.smallint(),
    field: p.text(),
    message: p.text(),
  },
});
export type ImportProblem = InferEntity<typeof ImportProblemSchema>;

export const entities = [
  EnterpriseSchema,
  UserSchema,
  EndpointSchema,
  SimSchema,
  EventSchema,
  SessionSchema,
  OperationKeySchema,
  LaunchTokenUseSchema,
  RateLimitCounterSchema,
  WebhookSchema,
  WebhookMessageSchema,
  WebhookAttemptSchema,
  BulkJobSchema,
  BulkJobRowSchema,
  BulkJobProblemSchema,
  ApiTokenSchema,
  ImportRowSchema,
  ImportProblemSchema,
];
