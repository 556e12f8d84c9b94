// Webhooks (SPEC.md §6): an enterprise's receivers, and the outbox that tells them about every change.
//
// The outbox: recordEvent (events.ts) calls enqueueWebhookMessages in the transaction of the change, which
// writes one message per enabled webhook subscribed to the event's type. The message is committed with the
// change or not at all — a crash after the commit loses nothing, a rolled-back change sends nothing — and
// the delivery worker (webhook-delivery.ts) sends it afterwards, at least once.
//
// The payload: { id, type, timestamp, data }, with data { endpoint_id, endpoint_name, iccid, old_iccid?,
// endpoint_status, sim_status, actor, source, sequence } for the lifecycle's events and { count, actor, source }
// for an import. `sequence` is the event's id: every change of an endpoint holds that endpoint's row lock until
// it commits, so a later change of the same endpoint always has a higher id — a receiver keeps the highest
// sequence it has seen per endpoint and drops anything older.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { StatementCache, runStatement } from '../db/compiled-statement.js';
import type { Actor } from './accounts.js';
import {
  WEBHOOK_EVENT_TYPES,
  WebhookAttemptSchema,
  WebhookMessageSchema,
  WebhookSchema,
  type EventAction,
  type Webhook,
  type WebhookEventType,
} from './entities.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError, type FieldError } from './errors.js';
import { createOnce } from './form-keys.js';
import type { EventDetails } from './events.js';
import { hasHiddenCharacters } from './text.js';

/** What the event of a change says, for its webhook messages. */
export interface WebhookEvent {
  id: number;
  action: EventAction;
  actor: Actor;
  source: string;
  details: EventDetails;
  at: Date;
}

/** Statuses as the API and the webhooks name them (SPEC.md §5): the SIM's `ready` is `ready_to_activate`. */
const apiStatus = (status: string | null | undefined) => (status === 'ready' ? 'ready_to_activate' : (status ?? null));

const newMessageId = () => `msg_${randomBytes(15).toString('base64url')}`;

export function webhookPayload(event: WebhookEvent): Record<string, unknown> {
  // A change made with an API token names the token (SPEC.md §5: events name it as the actor, source `api`).
  const actor = { type: event.actor.kind ?? 'user', id: event.actor.id, name: event.actor.displayName };
  const data: Record<string, unknown> =
    event.action === 'sims.imported'
      ? { count: event.details.count ?? 0, actor, source: event.source }
      : event.action === 'bulk.completed'
        ? { done: event.details.count ?? 0, failed: event.details.problemCount ?? 0, actor, source: event.source }
        : {
            endpoint_id: event.details.endpoint?.id ?? null,
            endpoint_name: event.details.endpoint?.name ?? null,
            iccid: event.details.iccid ?? null,
            ...(event.action === 'sim.swapped' ? { old_iccid: event.details.oldIccid ?? null } : {}),
            endpoint_status: apiStatus(event.details.endpointStatus?.[1]),
            sim_status: apiStatus(event.details.simStatus?.[1]),
            actor,
            source: event.source,
            sequence: event.id,
          };
  return { id: `evt_${event.id}`, type: event.action, timestamp: event.at.toISOString(), data };
}

const subscriptionReads = new StatementCache();

const isWebhookEventType = (action: string): action is WebhookEventType => (WEBHOOK_EVENT_TYPES as readonly string[]).includes(action);

/** An enabled webhook of the enterprise and the event types it wants. */
export interface Subscription {
  id: number;
  event_types: string[];
}

/**
 * The enterprise's enabled webhooks as one JSON column, for the statement that locks the row a change is
 * about (lifecycle.ts locks the endpoint with it), so that a change reads its subscriptions without a round
 * trip of its own — the read is in the change's transaction either way. `enterpriseColumn` is the locked
 * row's enterprise_id column, qualified by its alias. An index scan of webhook_enterprise_idx: an enterprise
 * has a handful of webhooks at most.
 */
export const subscriptionsColumn = (enterpriseColumn: string, alias: string) =>
  `(select coalesce(json_agg(json_build_object('id', w.id, 'event_types', w.event_types)), '[]') from webhook w ` +
  `where w.enterprise_id = ${enterpriseColumn} and w.enabled) as ${alias}`;

/** The enterprise's enabled webhooks, read in `em`'s transaction (one indexed read, compiled once). */
async function readSubscriptions(em: EntityManager, enterpriseId: number): Promise<Subscription[]> {
  const statement = subscriptionReads.get('webhook subscriptions', 1, ([enterprise]) =>
    em.createQueryBuilder(WebhookSchema).select(['id', 'eventTypes']).where({ enterprise, enabled: true }),
  );
  return runStatement<Subscription[]>(em, statement, [enterpriseId]);
}

/**
 * Writes, in `em`'s transaction, one message for each of the enterprise's enabled webhooks that wants this
 * event, and returns how many. The subscriptions are those read with the change's locked row when the caller
 * has them (see subscriptionsColumn), else read here; one INSERT only when someone listens.
 */
export async function enqueueWebhookMessages(em: EntityManager, event: WebhookEvent, subscriptions?: Subscription[]): Promise<number> {
  if (!isWebhookEventType(event.action)) return 0;
  const webhooks = subscriptions ?? (await readSubscriptions(em, event.actor.enterpriseId));
  return insertMessages(em, webhookMessages(event, webhooks));
}

/** The messages of many events of one enterprise, with its subscriptions read already: one INSERT of them all, if any. */
export function enqueueWebhookMessagesMany(em: EntityManager, events: WebhookEvent[], subscriptions: Subscription[]): Promise<number> {
  return insertMessages(
    em,
    events.flatMap((event) => webhookMessages(event, subscriptions)),
  );
}

/** The enterprise's enabled webhooks and the event types they want, read in `em`'s transaction. */
export const enterpriseSubscriptions = (em: EntityManager, enterpriseId: number) => readSubscriptions(em, enterpriseId);

/** One message for each webhook that wants this event. */
function webhookMessages(event: WebhookEvent, webhooks: Subscription[]) {
  if (!isWebhookEventType(event.action)) return [];
  const listening = webhooks.filter((webhook) => webhook.event_types.includes(event.action));
  if (!listening.length) return [];
  const payload = webhookPayload(event);
  return listening.map((webhook) => ({
    webhook: webhook.id,
    messageId: newMessageId(),
    endpointId: event.details.endpoint?.id ?? null,
    eventType: event.action as WebhookEventType,
    payload,
    attempts: 0,
    nextAttemptAt: event.at,
    createdAt: event.at,
  }));
}

async function insertMessages(em: EntityManager, messages: ReturnType<typeof webhookMessages>): Promise<number> {
  if (!messages.length) return 0;
  // One message (one webhook listening, the usual case) by the driver's compiled single-row INSERT (src/db/driver.ts);
  // em.insertMany writes every value into the SQL text.
  if (messages.length === 1) await em.insert(WebhookMessageSchema, messages[0]);
  else await em.insertMany(WebhookMessageSchema, messages);
  return messages.length;
}

// ——— Managing webhooks (the Webhooks page) ———

export interface WebhookInput {
  url: string;
  eventTypes: string[];
}

/** Whether URLs may be http:// and name private or loopback addresses (WEBHOOK_ALLOW_PRIVATE, for development and tests). */
export interface WebhookPolicy {
  allowPrivate: boolean;
}

function requireAdmin(actor: Actor) {
  if (actor.role !== 'admin') throw new ForbiddenError();
}

/** Checks a webhook's URL and event types; returns them cleaned, or throws a ValidationError naming each field. */
export function validateWebhook(input: WebhookInput, policy: WebhookPolicy): { url: string; eventTypes: WebhookEventType[] } {
  const errors: FieldError[] = [];
  const text = input.url.trim();
  let url: URL | null = null;
  if (!text) errors.push({ field: 'url', message: 'Enter the URL that will receive the webhooks' });
  else if (text.length > 2000) errors.push({ field: 'url', message: 'URL must be 2,000 characters or fewer' });
  else if (hasHiddenCharacters(text)) errors.push({ field: 'url', message: 'URL must not contain hidden characters' });
  else {
    try {
      url = new URL(text);
    } catch {
      errors.push({ field: 'url', message: 'Enter a full URL, like https://crm.example.com/hooks/sim-link' });
    }
  }
  // The URL is stored as the parser writes it, with its special characters percent-encoded: that is what must fit.
  if (url && url.href.length > 2000) {
    errors.push({ field: 'url', message: 'URL must be 2,000 characters or fewer once its special characters are encoded' });
    url = null;
  }
  if (url) {
    if (url.protocol !== 'https:' && !(policy.allowPrivate && url.protocol === 'http:')) {
      errors.push({ field: 'url', message: 'The URL must start with https://' });
    } else if (url.username || url.password) {
      errors.push({ field: 'url', message: 'The URL must not contain a user name or password' });
    } else if (url.port === '0') {
      errors.push({ field: 'url', message: 'The URL’s port must be between 1 and 65535' });
    } else if (!policy.allowPrivate && isPrivateHost(url.hostname)) {
      errors.push({ field: 'url', message: 'The URL must be a public address, not one of a private network or this machine' });
    }
  }
  const eventTypes = [...new Set(input.eventTypes)];
  if (!eventTypes.length) errors.push({ field: 'event_types', message: 'Choose at least one event type' });
  else if (!eventTypes.every(isWebhookEventType)) errors.push({ field: 'event_types', message: 'Choose event types from the list' });
  if (errors.length) throw new ValidationError(errors);
  return { url: url!.toString(), eventTypes: eventTypes as WebhookEventType[] };
}

/** A host that is plainly private by its name or literal address (resolved names are checked again at send time). */
function isPrivateHost(hostname: string): boolean {
  // A name may end in the root's dot ("localhost." is localhost): judged without it.
  const host = hostname
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.+$/, '');
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || host.endsWith('.internal')) return true;
  return isIP(host) !== 0 && isPrivateAddress(host);
}

/**
 * Whether an IP address is one a webhook must not reach by default: loopback, private (RFC 1918, unique
 * local), link-local (cloud metadata services live there), carrier-grade NAT, unspecified, multicast, reserved
 * — and any IPv6 address that carries an IPv4 one (mapped ::ffff:a.b.c.d in any spelling, translated
 * ::ffff:0:a.b.c.d, compatible ::a.b.c.d,
 * 6to4 2002::/16) is judged by the IPv4 address it carries, since that is where the connection goes. Tunnels
 * and translators whose far end cannot be judged here (Teredo 2001::/32, NAT64 64:ff9b::/96) are refused.
 */
export function isPrivateAddress(address: string): boolean {
  if (isIP(address) === 4) return isPrivateIPv4(address.split('.').map(Number));
  const words = ipv6Words(address);
  if (!words) return true; // not an address this can read: never reach it
  const carried = (hi: number, lo: number) => [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];
  const zeros = (from: number, to: number) => words.slice(from, to).every((w) => w === 0);
  if (zeros(0, 5) && words[5] === 0xffff) return isPrivateIPv4(carried(words[6], words[7])); // ::ffff:a.b.c.d
  if (zeros(0, 4) && words[4] === 0xffff && words[5] === 0) return isPrivateIPv4(carried(words[6], words[7])); // translated ::ffff:0:a.b.c.d
  if (zeros(0, 6)) return isPrivateIPv4(carried(words[6], words[7])); // ::a.b.c.d, and :: and ::1 (0.0.0.0/8)
  if (words[0] === 0x2002) return isPrivateIPv4(carried(words[1], words[2])); // 6to4
  const [w0, w1] = words;
  return (
    (w0 === 0x2001 && w1 === 0) || // Teredo
    (w0 === 0x2001 && w1 === 0xdb8) || // documentation
    (w0 === 0x64 && w1 === 0xff9b) || // NAT64
    w0 === 0x100 || // discard-only
    (w0 & 0xfe00) === 0xfc00 || // unique local
    (w0 & 0xffc0) === 0xfe80 || // link-local
    (w0 & 0xffc0) === 0xfec0 || // site-local
    (w0 & 0xff00) === 0xff00 // multicast
  );
}

function isPrivateIPv4([a, b, c]: number[]): boolean {
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0 && (c === 0 || c === 2)) || // IETF protocol assignments, TEST-NET-1 (not all of 192.0/16)
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224
  );
}

/** The eight 16-bit words of an IPv6 address (with `::` and a dotted IPv4 tail expanded), or null. */
function ipv6Words(address: string): number[] | null {
  const text = address.toLowerCase().replace(/%.*$/, '');
  if (isIP(text) !== 6) return null;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  let hex = text;
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number);
    hex = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = hex.split('::');
  const part = (s: string | undefined) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const left = part(head);
  const right = part(tail);
  const words = tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : null;
}

export const WEBHOOK_ALREADY_ADDED =
  'This form already added its webhook, whose signing secret is not shown again. Look for it in the list below.';

/**
 * Adds a webhook; the answer carries its secret, which is shown this once and never again. `key`: the form's
 * one-time key — the same form sent again adds no second webhook (form-keys.ts).
 */
export async function createWebhook(
  em: EntityManager,
  actor: Actor,
  input: WebhookInput,
  policy: WebhookPolicy,
  key?: string,
): Promise<{ webhook: Webhook; secret: string }> {
  requireAdmin(actor);
  const { url, eventTypes } = validateWebhook(input, policy);
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const webhook = await createOnce(em, actor, key, 'webhook:create', WEBHOOK_ALREADY_ADDED, () =>
    em.create(WebhookSchema, {
      enterprise: actor.enterpriseId,
      url,
      eventTypes,
      secret,
      enabled: true,
      disabledReason: null,
      failingSince: null,
      createdBy: actor.id,
    }),
  );
  return { webhook, secret };
}

/** The enterprise's webhooks, oldest first. */
export function listWebhooks(em: EntityManager, actor: Actor): Promise<Webhook[]> {
  return em.find(WebhookSchema, { enterprise: actor.enterpriseId }, { orderBy: { id: 'asc' } });
}

/** One of the enterprise's webhooks; another enterprise's is not found, as if it did not exist. */
export async function findWebhook(em: EntityManager, actor: Actor, id: number): Promise<Webhook> {
  const webhook = await em.findOne(WebhookSchema, { id, enterprise: actor.enterpriseId });
  if (!webhook) throw new NotFoundError('webhook');
  return webhook;
}

/** Enables (clearing the reason it was disabled, and starting its messages' day again) or disables a webhook. */
export async function setWebhookEnabled(em: EntityManager, actor: Actor, id: number, enabled: boolean): Promise<Webhook> {
  requireAdmin(actor);
  const webhook = await findWebhook(em, actor, id);
  webhook.enabled = enabled;
  webhook.disabledReason = enabled ? null : 'Disabled by an admin';
  if (enabled) {
    webhook.failingSince = null;
    // Its pending messages get a new day to be delivered in, counted from their next attempt.
    await em.nativeUpdate(WebhookMessageSchema, { webhook: webhook.id, deliveredAt: null }, { firstAttemptedAt: null });
  }
  await em.flush();
  return webhook;
}

/** Deletes a webhook with its messages and their log. */
export async function deleteWebhook(em: EntityManager, actor: Actor, id: number): Promise<void> {
  requireAdmin(actor);
  const webhook = await findWebhook(em, actor, id);
  em.remove(webhook);
  await em.flush();
}

/** Queues a `webhook.test` message for this webhook alone, delivered like any other. */
export async function sendTestEvent(em: EntityManager, actor: Actor, id: number): Promise<string> {
  requireAdmin(actor);
  const webhook = await findWebhook(em, actor, id);
  const at = new Date();
  const messageId = newMessageId();
  em.create(WebhookMessageSchema, {
    webhook,
    messageId,
    eventType: 'webhook.test',
    payload: {
      id: `evt_test_${messageId.slice(4)}`,
      type: 'webhook.test',
      timestamp: at.toISOString(),
      data: { actor: { type: 'user', id: actor.id, name: actor.displayName }, source: 'ui' },
    },
    attempts: 0,
    nextAttemptAt: at,
    createdAt: at,
  });
  await em.flush();
  return messageId;
}

export const MESSAGE_IN_FLIGHT = 'This message is being delivered now; try again in a moment';

/**
 * Sends a message again (a new attempt, the same `webhook-id`), whatever became of it before — except while a
 * sender holds its lease (it is in flight): made due then, another sender could claim it and send it a second
 * time at once, so that is a conflict. The row is locked, so no sender claims it between the check and the change
 * (the claim skips locked rows).
 */
export async function resendMessage(em: EntityManager, actor: Actor, webhookId: number, messageId: number): Promise<void> {
  requireAdmin(actor);
  await em.transactional(async (tx) => {
    const message = await tx.findOne(
      WebhookMessageSchema,
      { id: messageId, webhook: { id: webhookId, enterprise: actor.enterpriseId } },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    if (!message) throw new NotFoundError('message');
    if (message.leaseToken !== null && message.nextAttemptAt && message.nextAttemptAt.getTime() > Date.now()) {
      throw new ConflictError(MESSAGE_IN_FLIGHT);
    }
    message.nextAttemptAt = new Date();
    message.failedAt = null;
    message.leaseToken = null;
    message.firstAttemptedAt = null;
  });
}

/** A webhook's latest attempts, newest first, with their messages. */
export async function deliveryLog(em: EntityManager, actor: Actor, webhookId: number, before: number | null = null, limit = 50) {
  await findWebhook(em, actor, webhookId);
  // One more than a page: whether there are older attempts, without a count.
  const rows = await em.find(WebhookAttemptSchema, before ? { webhookId, id: { $lt: before } } : { webhookId }, {
    orderBy: { id: 'desc' },
    limit: limit + 1,
    populate: ['message'],
  });
  const attempts = rows.slice(0, limit);
  return { attempts, older: rows.length > limit ? attempts[attempts.length - 1].id : null };
}
