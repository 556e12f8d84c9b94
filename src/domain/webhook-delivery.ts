// Delivers the webhooks' outbox (webhooks.ts): at least once, signed, retried with backoff for a day.
//
// Each round claims a batch of due messages in one statement — `UPDATE … SET next_attempt_at = <lease> WHERE id
// IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING …` — so two instances never send the same attempt at once,
// and a message whose sender died is simply due again when its lease ends (a restart resumes pending
// deliveries). Then the messages are POSTed, signed per Standard Webhooks (webhook-id, webhook-timestamp,
// webhook-signature: v1,<HMAC-SHA256>), several at once — up to `perWebhook` to one webhook and `inFlight` in
// all — over kept-alive connections, and the batch's attempts are recorded by one flush. Later batches are
// claimed while request slots are free, without waiting for the slowest receiver of the earlier ones, so a
// receiver that takes its time holds up its own requests, not other webhooks'. A 2xx within the
// timeout is success; anything else is an attempt logged and retried later with exponential backoff and
// jitter, until the message has failed for a day from its first attempt — then the webhook is disabled with the reason, for its page.
//
// Order: a message's lane is its webhook and the endpoint it is about (messages about no endpoint — imports,
// bulk jobs, test events — share one lane per webhook). Only the first pending message of a lane can be
// claimed: one whose lane has an earlier message still pending (due, under another sender's lease, or waiting
// for its retry) is not. So one endpoint's messages reach a webhook one at a time, in the order of their events
// (its `sequence`), a failed one holding back those after it until it is delivered or given up — on every
// instance, as the test of "pending" (next_attempt_at is set) does not depend on who holds a lease; different
// endpoints' messages go side by side.
//
// Safety: only the addresses the policy allows are reached — the name is resolved when a connection is opened,
// every address it resolves to is checked (a public name pointing at 127.0.0.1, 10/8, 169.254/16… is refused),
// and the connection goes to the address that was checked; a kept-alive connection is one that was checked
// when it was opened. Redirects are not followed; an answer is read up to 64 KB; a receiver that does not
// answer within the timeout is cut off.
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { DriverException, LockMode, raw } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { Webhook as Signer } from 'standardwebhooks';
import { StatementCache, runStatement } from '../db/compiled-statement.js';
import { managed } from '../db/managed.js';
import { WebhookAttemptSchema, WebhookMessageSchema, WebhookSchema, type Webhook, type WebhookMessage } from './entities.js';
import { PollingWorker, type RoundResult } from './polling-worker.js';
import { storable } from './text.js';
import { isPrivateAddress } from './webhooks.js';

export interface DeliveryOptions {
  /** http:// and private addresses allowed (WEBHOOK_ALLOW_PRIVATE). */
  allowPrivate: boolean;
  /** How long a receiver has to answer. */
  timeoutMs?: number;
  /** How long a message keeps failing before it is given up and its webhook disabled. */
  giveUpAfterMs?: number;
  /** The first retry's delay; each later one doubles, up to maxRetryDelayMs. */
  firstRetryMs?: number;
  maxRetryDelayMs?: number;
  /** Messages claimed per round. */
  batchSize?: number;
  /** Requests in flight at once: to one webhook, and in all. */
  perWebhook?: number;
  inFlight?: number;
  /** How soon the worker looks again after a round that found work; idle, it waits longer each time, up to pollMs. */
  busyPollMs?: number;
  pollMs?: number;
  onError?: (error: unknown) => void;
}

const READ_LIMIT = 64 * 1024;
const LOGGED_BYTES = 500;
/** The sizes of webhook_attempt.error and webhook.disabled_reason (varchar(500) both). */
const ERROR_LENGTH = 500;
const REASON_LENGTH = 500;
/** A claimed message is sent only if its lease still has this long beyond the timeout to run; else it is released. */
const LEASE_MARGIN_MS = 10_000;
/** How long an idle kept-alive connection is kept: less than the 5 s most servers (Node's among them) keep one open. */
const IDLE_CONNECTION_MS = 4_000;

export interface AttemptResult {
  status: number | null;
  error: string | null;
  body: string;
  durationMs: number;
}

/** One attempt of a round: the message, when it was sent and answered, and how. */
interface Sent {
  message: WebhookMessage;
  sentAt: Date;
  answeredAt: Date;
  result: AttemptResult;
}

/** The connections a worker keeps alive for later messages to the same origin, one pool per protocol. */
export interface KeepAliveAgents {
  http: http.Agent;
  https: https.Agent;
}

export function keepAliveAgents(): KeepAliveAgents {
  // `timeout` closes a connection that has been idle in the pool that long (one in use is timed by postOnce).
  const options = { keepAlive: true, timeout: IDLE_CONNECTION_MS, scheduling: 'lifo' as const };
  return { http: new http.Agent(options), https: new https.Agent(options) };
}

export class WebhookDelivery extends PollingWorker {
  readonly #orm: MikroORM;
  readonly #options: Required<Omit<DeliveryOptions, 'onError'>>;
  readonly #agents = keepAliveAgents();
  /** The requests in flight, in all and per webhook, and the claimed messages waiting for a slot (every batch's). */
  #inFlight = 0;
  readonly #perWebhook = new Map<number, number>();
  readonly #waiting: { webhookId: number; start: () => Promise<void> }[] = [];
  /** The batches being sent and recorded in the background (see round). */
  readonly #batches = new Set<Promise<void>>();

  constructor(orm: MikroORM, options: DeliveryOptions) {
    const { onError, ...rest } = options;
    const settings = {
      timeoutMs: 10_000,
      giveUpAfterMs: 24 * 3_600_000,
      firstRetryMs: 5_000,
      maxRetryDelayMs: 3_600_000,
      batchSize: 200,
      perWebhook: 8,
      inFlight: 32,
      busyPollMs: 50,
      pollMs: 250,
      ...rest,
    };
    super(
      { idleMs: settings.pollMs, busyMs: Math.min(settings.busyPollMs, settings.pollMs) },
      onError && ((error) => onError(loggableError(error))),
    );
    this.#orm = orm;
    this.#options = settings;
  }

  /**
   * Claims a batch and returns once its messages are on their way: the batch is sent and recorded in the
   * background, while later rounds claim more — so that a slow receiver holds up its own requests (up to the
   * timeout), not everyone's. A round claims nothing while every request slot is taken, and nothing for a
   * webhook that has as many requests in flight or waiting as it may have at once (see #saturated).
   */
  protected async round(): Promise<RoundResult> {
    if (this.#inFlight >= this.#options.inFlight) return 'some';
    const { claimed, done } = await this.#begin();
    const batch: Promise<void> = done.catch((error: unknown) => this.onError?.(error)).finally(() => this.#batches.delete(batch));
    this.#batches.add(batch);
    return claimed >= this.#options.batchSize ? 'more' : claimed > 0 ? 'some' : 'none';
  }

  /** Stops (no new batch; the batches under way finish, their unsent messages released), then closes the kept-alive connections. */
  override async stop() {
    await super.stop();
    await Promise.all(this.#batches);
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  /** One round, to its end: claims a batch of due messages, sends them, records the attempts. Returns how many were claimed. */
  async deliverDue(): Promise<number> {
    const { claimed, done } = await this.#begin();
    await done;
    return claimed;
  }

  /**
   * Claims a batch of due messages; `done` settles when they have been sent (several at once) and the attempts
   * recorded with one flush. A message that cannot be sent — the worker is stopping, its webhook was disabled
   * meanwhile, or its lease would run out while it is sent — is released, due again.
   */
  async #begin(): Promise<{ claimed: number; done: Promise<void> }> {
    const em = this.#orm.em.fork();
    const leaseMs = 2 * this.#options.timeoutMs + 30_000;
    const lastStart = Date.now() + leaseMs - this.#options.timeoutMs - LEASE_MARGIN_MS;
    // The batch's own lease: what it writes to a message applies only while the message's token is still this one.
    const leaseToken = randomBytes(12).toString('base64url');
    const messages = await this.#claim(em, new Date(Date.now() + leaseMs), leaseToken, this.#saturated());
    if (!messages.length) return { claimed: 0, done: Promise.resolve() };
    const webhookIds = [...new Set(messages.map((message) => message.webhook.id))];
    const webhooks = new Map((await em.find(WebhookSchema, { id: { $in: webhookIds } })).map((webhook) => [webhook.id, webhook]));
    const sent: Sent[] = [];
    const done = this.#sendAll(messages, async (message) => {
      const webhook = webhooks.get(message.webhook.id);
      if (!webhook?.enabled || this.stopping || Date.now() > lastStart) return;
      const attempt = await this.#send(webhook, message);
      sent.push(attempt);
      // Recorded at once on the batch's entities, so that a webhook disabled by a give-up gets no more of its messages.
      this.#record(em, webhook, attempt);
    }).then(async () => {
      this.#release(messages, sent);
      let recorded = sent;
      try {
        await this.#flushIfStillOurs(em, messages, leaseToken);
      } catch {
        recorded = await this.#recordEach(sent, messages, leaseToken);
      }
      await this.#holdBack(em, recorded);
    });
    return { claimed: messages.length, done };
  }

  /**
   * The batch's flush, in a transaction that first locks its messages and checks that each still holds the
   * batch's lease token: if one's lease ran out and another sender took it over, nothing is written here (the
   * attempts are then recorded one by one, the taken message's left to its new sender — see #recordEach).
   */
  async #flushIfStillOurs(em: EntityManager, messages: WebhookMessage[], leaseToken: string) {
    await em.begin();
    try {
      // The query builder, not em.find: a find would flush the batch's changes first (auto flush) — before the check.
      const ours = await em
        .createQueryBuilder(WebhookMessageSchema)
        .select('id')
        .where({ id: { $in: messages.map((message) => message.id) }, leaseToken })
        .setLockMode(LockMode.PESSIMISTIC_WRITE)
        .execute<{ id: string }[]>('all', false);
      if (ours.length !== messages.length) throw new Error('A message of the batch was taken over by another sender');
      await em.commit();
    } catch (error) {
      await em.rollback();
      throw error;
    }
  }

  /**
   * The messages queued behind one that failed and waits for its retry are not due before it: their next attempt
   * moves to its. They could not be sent before it anyway; moved, the claim's scan of the due messages passes over
   * them once per retry rather than in every round — a long backlog behind a failing endpoint would otherwise
   * cost each claim its length. (One written after this is passed over until the next failure moves it too.) When
   * the message is done with, those behind it are due again at once rather than at its old retry time.
   */
  async #holdBack(em: EntityManager, sent: Sent[]) {
    const now = new Date();
    await Promise.all(
      sent.map(({ message }) => {
        const lane = { webhook: message.webhook.id, endpointId: message.endpointId ?? null, id: { $gt: message.id } };
        const retryAt = message.nextAttemptAt;
        // Done with (delivered, or given up) — perhaps before its retry, by a Resend: those held back behind it are due now.
        if (!retryAt)
          return em.nativeUpdate(WebhookMessageSchema, { ...lane, nextAttemptAt: { $gt: now }, leaseToken: null }, { nextAttemptAt: now });
        return em.nativeUpdate(WebhookMessageSchema, { ...lane, nextAttemptAt: { $lt: retryAt } }, { nextAttemptAt: retryAt });
      }),
    );
  }

  /**
   * The batch: the first due messages in the order of their events, each the first pending message of its lane
   * (see the header), the webhook enabled, leased until `leaseEnd` — one statement, compiled once per batch size.
   */
  async #claim(em: EntityManager, leaseEnd: Date, leaseToken: string, skipped: number[]): Promise<WebhookMessage[]> {
    const statement = claims.get(`webhook messages claimed, ${this.#options.batchSize} at most`, 3, ([lease, token, busy]) => {
      const due = em
        .createQueryBuilder(WebhookMessageSchema, 'm')
        .select('m.id')
        .innerJoin('m.webhook', 'w')
        .where({ nextAttemptAt: { $lte: raw('now()') }, 'w.enabled': true })
        .andWhere(NO_EARLIER_PENDING)
        // The webhooks the worker has enough of (an array literal: the values are inlined as MikroORM formats them).
        .andWhere('m.webhook_id <> all(?::integer[])', [busy])
        .orderBy({ id: 'asc' })
        .limit(this.#options.batchSize);
      return em
        .createQueryBuilder(WebhookMessageSchema)
        .update({ nextAttemptAt: lease as unknown as Date, leaseToken: token })
        .where({ id: { $in: due.getKnexQuery().forUpdate('m').skipLocked() } })
        .returning(['*'] as never);
    });
    const rows = await runStatement(em, statement, [leaseEnd, leaseToken, `{${skipped.join(',')}}`]);
    return rows.map((row) => managed(em, WebhookMessageSchema, row)).sort((a, b) => a.id - b.id);
  }

  /**
   * Runs `send` for each message, in the order given after those of earlier batches still waiting, with at most
   * perWebhook requests to one webhook and inFlight in all at once, over every batch. A batch holds one message
   * per lane, and a lane's next message cannot be claimed while one is pending, so no two messages of one
   * endpoint are ever in flight together.
   */
  #sendAll(messages: WebhookMessage[], send: (message: WebhookMessage) => Promise<void>): Promise<void> {
    let left = messages.length;
    return new Promise((resolve, reject) => {
      for (const message of messages) {
        const webhookId = message.webhook.id;
        const start = () =>
          send(message)
            .then(() => {
              if (--left === 0) resolve();
            }, reject)
            .finally(() => {
              this.#inFlight--;
              this.#perWebhook.set(webhookId, this.#perWebhook.get(webhookId)! - 1);
              this.#next();
            });
        this.#waiting.push({ webhookId, start });
      }
      this.#next();
    });
  }

  /**
   * The webhooks with perWebhook requests or more in flight or waiting: a new batch would add to their queue
   * (whose messages' leases run meanwhile), so the claim leaves their messages for later rounds.
   */
  #saturated(): number[] {
    const load = new Map(this.#perWebhook);
    for (const { webhookId } of this.#waiting) load.set(webhookId, (load.get(webhookId) ?? 0) + 1);
    return [...load].filter(([, count]) => count >= this.#options.perWebhook).map(([webhookId]) => webhookId);
  }

  /** Starts the waiting messages that the limits let go, oldest first. */
  #next() {
    for (let i = 0; i < this.#waiting.length && this.#inFlight < this.#options.inFlight;) {
      const { webhookId, start } = this.#waiting[i];
      const busy = this.#perWebhook.get(webhookId) ?? 0;
      if (busy >= this.#options.perWebhook) {
        i++;
        continue;
      }
      this.#waiting.splice(i, 1);
      this.#inFlight++;
      this.#perWebhook.set(webhookId, busy + 1);
      void start();
    }
  }

  async #send(webhook: Webhook, message: WebhookMessage): Promise<Sent> {
    const body = JSON.stringify(message.payload);
    const sentAt = new Date();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'SIM-Link-Webhooks/1',
      'webhook-id': message.messageId,
      'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
      'webhook-signature': new Signer(webhook.secret).sign(message.messageId, sentAt, body),
    };
    const result = await postOnce(webhook.url, body, headers, { ...this.#options, agents: this.#agents });
    return { message, sentAt, answeredAt: new Date(), result };
  }

  /** Sets what an attempt changes on its message and webhook, and adds it to the log (for the batch's flush). */
  #record(em: EntityManager, webhook: Webhook, { message, sentAt, answeredAt: now, result }: Sent) {
    const ok = result.status !== null && result.status >= 200 && result.status < 300;
    message.attempts += 1;
    message.firstAttemptedAt ??= sentAt;
    message.leaseToken = null;
    if (ok) {
      message.deliveredAt = now;
      message.nextAttemptAt = null;
      webhook.failingSince = null;
    } else {
      webhook.failingSince ??= now;
      if (now.getTime() - message.firstAttemptedAt.getTime() >= this.#options.giveUpAfterMs) {
        message.failedAt = now;
        message.nextAttemptAt = null;
        webhook.enabled = false;
        webhook.disabledReason = storable(
          `Disabled on ${now.toISOString().slice(0, 16).replace('T', ' ')} UTC: no delivery succeeded for ${describeDuration(
            this.#options.giveUpAfterMs,
          )} (last attempt: ${result.status !== null ? `HTTP ${result.status}` : result.error})`,
          REASON_LENGTH,
        );
      } else {
        message.nextAttemptAt = new Date(now.getTime() + retryDelay(message.attempts, this.#options));
      }
    }
    em.create(WebhookAttemptSchema, {
      message,
      webhookId: webhook.id,
      attemptedAt: sentAt,
      durationMs: result.durationMs,
      status: result.status,
      error: result.error === null ? null : storable(result.error, ERROR_LENGTH),
      responseStart: storable(result.body, LOGGED_BYTES) || null,
    });
  }

  /** The claimed messages that were not sent are due again at once (each still first of its lane). */
  #release(messages: WebhookMessage[], sent: Sent[]) {
    const attempted = new Set(sent.map((attempt) => attempt.message));
    const now = new Date();
    for (const message of messages) {
      if (attempted.has(message)) continue;
      message.nextAttemptAt = now;
      message.leaseToken = null;
    }
  }

  /**
   * The round's flush failed — a webhook deleted meanwhile (its messages and their log with it), or one attempt
   * the database would not take. So that one message does not hold back the others, each attempt is recorded
   * again on its own, on its message and webhook as they are now: one that still fails is reported and left
   * leased (due again when its lease ends); one whose message is gone is dropped. The claimed messages that were
   * not sent are released.
   */
  async #recordEach(sent: Sent[], claimed: WebhookMessage[], leaseToken: string): Promise<Sent[]> {
    const recorded: Sent[] = [];
    for (const attempt of sent) {
      const em = this.#orm.em.fork();
      try {
        // Only while the lease is still this batch's: not once another sender has taken it over.
        const message = await em.findOne(WebhookMessageSchema, { id: attempt.message.id, leaseToken }, { populate: ['webhook'] });
        if (!message) continue;
        const again = { ...attempt, message };
        this.#record(em, message.webhook.getEntity(), again);
        await em.flush();
        recorded.push(again);
      } catch (error) {
        this.onError?.(error);
      }
    }
    const attempted = new Set(sent.map((attempt) => attempt.message.id));
    const unsent = claimed.filter((message) => !attempted.has(message.id)).map((message) => message.id);
    if (unsent.length) {
      await this.#orm.em
        .fork()
        .nativeUpdate(WebhookMessageSchema, { id: { $in: unsent }, leaseToken }, { nextAttemptAt: new Date(), leaseToken: null });
    }
    return recorded;
  }
}

const claims = new StatementCache();

/** The message is the first pending one of its lane: none of its webhook, about its endpoint, before it is pending. */
const NO_EARLIER_PENDING =
  'not exists (select 1 from webhook_message p where p.webhook_id = m.webhook_id and coalesce(p.endpoint_id, 0) = ' +
  'coalesce(m.endpoint_id, 0) and p.next_attempt_at is not null and p.id < m.id)';

/**
 * An error as it may be logged. A database error's message starts with its statement, values and all — a
 * receiver's answer, a payload, a webhook's `whsec_` secret — so it is reported by PostgreSQL's own words and its
 * SQLSTATE only: the text after the statement (knex writes `<statement> - <message>`), and no stack (whose first
 * line repeats the whole).
 */
export function loggableError(error: unknown): unknown {
  if (!(error instanceof DriverException)) return error;
  const cut = error.message.lastIndexOf(' - ');
  const safe = Object.assign(new Error(cut === -1 ? error.message : error.message.slice(cut + 3)), {
    name: error.name,
    code: error.code,
  });
  safe.stack = `${safe.name}: ${safe.message}`;
  return safe;
}

/** The delay before attempt n + 1: doubling from the first, capped, with ±20 % jitter so retries do not bunch. */
export function retryDelay(attempts: number, options: { firstRetryMs: number; maxRetryDelayMs: number }): number {
  const base = Math.min(options.maxRetryDelayMs, options.firstRetryMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function describeDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} hour${ms === 3_600_000 ? '' : 's'}`;
  if (ms % 1000 === 0) return `${ms / 1000} seconds`;
  return `${ms} ms`;
}

/** A lookup that resolves every address of the name and refuses the name if any of them is private. */
function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as unknown as { address: string; family: number }[];
      const refused = !allowPrivate && list.find((entry) => isPrivateAddress(entry.address));
      if (refused) {
        return callback(
          Object.assign(new Error(`${hostname} resolves to ${refused.address}, a private address`), { code: 'EPRIVATE' }),
          '',
          0,
        );
      }
      if (options.all) return callback(null, list as never);
      callback(null, list[0].address, list[0].family);
    });
  };
}
const lookups = { allowed: guardedLookup(true), guarded: guardedLookup(false) };

/** What a kept-alive connection that the receiver has just closed fails with when it is reused. */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE']);

/**
 * POSTs once; never throws: a failure is a result with its error. With `agents`, the connection may be one
 * kept alive from an earlier message to the same origin — opened through the same checked lookup — and one
 * that turns out closed by the receiver before it answered is replaced by a new one, once (as Node's
 * documentation advises for `request.reusedSocket`); without, a connection of its own.
 */
export function postOnce(
  target: string,
  body: string,
  headers: Record<string, string>,
  options: { allowPrivate: boolean; timeoutMs: number; agents?: KeepAliveAgents },
): Promise<AttemptResult> {
  const started = performance.now();
  const done = (status: number | null, error: string | null, text = ''): AttemptResult => ({
    status,
    error,
    body: text,
    durationMs: Math.round(performance.now() - started),
  });
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return Promise.resolve(done(null, 'The URL is not valid'));
  }
  if (url.protocol !== 'https:' && !(options.allowPrivate && url.protocol === 'http:')) {
    return Promise.resolve(done(null, 'Only https:// URLs are allowed'));
  }
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (!options.allowPrivate && isIP(literal) && isPrivateAddress(literal)) {
    return Promise.resolve(done(null, `${literal} is a private address`));
  }
  const secure = url.protocol === 'https:';
  const client = secure ? https : http;
  const agent = options.agents ? (secure ? options.agents.https : options.agents.http) : false;
  return new Promise((resolve) => {
    let settled = false;
    let request: http.ClientRequest;
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const send = (firstTry: boolean) => {
      let answered = false;
      request = client.request(
        url,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          lookup: options.allowPrivate ? lookups.allowed : lookups.guarded,
          agent,
        },
        (response) => {
          answered = true;
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            if (size < READ_LIMIT) chunks.push(chunk);
            size += chunk.length;
            if (size >= READ_LIMIT) {
              response.destroy();
              finish(done(response.statusCode ?? null, null, Buffer.concat(chunks).subarray(0, READ_LIMIT).toString('utf8')));
            }
          });
          response.on('end', () => finish(done(response.statusCode ?? null, null, Buffer.concat(chunks).toString('utf8'))));
          response.on('error', () => finish(done(response.statusCode ?? null, null, Buffer.concat(chunks).toString('utf8'))));
        },
      );
      const sentOn = request;
      sentOn.on('error', (error: NodeJS.ErrnoException) => {
        if (firstTry && !answered && !settled && sentOn.reusedSocket && STALE_CONNECTION.has(error.code ?? '')) return send(false);
        finish(done(null, error.message || error.code || 'Connection failed'));
      });
      sentOn.end(body);
    };
    const timer = setTimeout(() => {
      request.destroy();
      finish(done(null, `No answer within ${options.timeoutMs / 1000} s`));
    }, options.timeoutMs);
    send(true);
  });
}
