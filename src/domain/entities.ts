// What SIM Link stores: enterprises (tenants), their users, endpoints, SIMs and the audit trail.
// The link between an endpoint and a SIM is kept on both rows (endpoint.sim_id, sim.endpoint_id) so
// the database itself can hold every invariant of SPEC.md §1 (see migrations/ for the constraints).
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

export const ENDPOINT_STATUSES = ['hold', 'pre_active', 'active', 'suspended'] as const;
export const SIM_STATUSES = ['ready', 'pre_active', 'active', 'suspended'] as const;
export const ROLES = ['admin', 'viewer'] as const;

export type EndpointStatus = (typeof ENDPOINT_STATUSES)[number];
export type SimStatus = (typeof SIM_STATUSES)[number];
export type Role = (typeof ROLES)[number];
/** The statuses a linked endpoint and its SIM share (SPEC.md invariant 4). */
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
] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

export const EnterpriseSchema = defineEntity({
  name: 'Enterprise',
  properties: {
    id: p.integer().primary().autoincrement(),
    slug: p.string().length(60).unique(),
    name: p.string().length(200),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type Enterprise = InferEntity<typeof EnterpriseSchema>;

export const UserSchema = defineEntity({
  name: 'User',
  tableName: 'app_user',
  properties: {
    id: p.integer().primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref(),
    email: p.string().length(254).unique(),
    displayName: p.string().length(200),
    role: p.enum([...ROLES]),
    /** scrypt, in the format of src/domain/passwords.ts; null for users who only arrive through the CRM. */
    passwordHash: p.string().length(300).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type User = InferEntity<typeof UserSchema>;

export const EndpointSchema = defineEntity({
  name: 'Endpoint',
  properties: {
    id: p.integer().primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref(),
    name: p.string().length(100),
    imei: p.string().length(15).nullable(),
    activateImmediately: p.boolean().default(false),
    status: p.enum([...ENDPOINT_STATUSES]).default('hold'),
    /** The linked SIM's id; changed only by the lifecycle's conditional updates. */
    simId: p.integer().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type Endpoint = InferEntity<typeof EndpointSchema>;

export const SimSchema = defineEntity({
  name: 'Sim',
  properties: {
    id: p.integer().primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref(),
    iccid: p.string().length(20).unique(),
    imsi: p.string().length(15).unique(),
    eid: p.string().length(32).nullable().unique(),
    msisdn: p.string().length(15).nullable(),
    status: p.enum([...SIM_STATUSES]).default('ready'),
    /** The linked endpoint's id; changed only by the lifecycle's conditional updates. */
    endpointId: p.integer().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type Sim = InferEntity<typeof SimSchema>;

export const EventSchema = defineEntity({
  name: 'Event',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    enterprise: () => p.manyToOne(EnterpriseSchema).ref(),
    actorId: p.integer().nullable(),
    actorName: p.string().length(200),
    action: p.enum([...EVENT_ACTIONS]),
    endpointId: p.integer().nullable(),
    endpointName: p.string().length(100).nullable(),
    simIccid: p.string().length(20).nullable(),
    endpointStatusBefore: p.string().length(20).nullable(),
    endpointStatusAfter: p.string().length(20).nullable(),
    simStatusBefore: p.string().length(20).nullable(),
    simStatusAfter: p.string().length(20).nullable(),
    count: p.integer().nullable(),
    requestId: p.string().length(100).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type Event = InferEntity<typeof EventSchema>;

export const entities = [EnterpriseSchema, UserSchema, EndpointSchema, SimSchema, EventSchema];
