// Delivers the webhooks' outbox (webhooks.ts): at least once, signed, retried with backoff for a day.
//
// Each round claims the due messages — `SELECT … FOR UPDATE SKIP LOCKED`, then their next attempt pushed a
// lease ahead, committed — so two instances never send the same attempt at once, and a message whose sender
// died is simply due again when its lease ends (a restart resumes pending deliveries). Then each message is
// POSTed, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,<HMAC-SHA256>);
// one webhook's messages are sent one after another in the order of their events, different webhooks side by
// side. A 2xx within the timeout is success; anything else is an attempt logged and retried later with
// exponential backoff and jitter, until the message has failed for a day — then the webhook is disabled with
// the reason, for its page.
//
// Safety: only the addresses the policy allows are reached — the name is resolved at send time, every address
// it resolves to is checked (a public name pointing at 127.0.0.1, 10/8, 169.254/16… is refused), and the
// connection goes to the address that was checked. Redirects are not followed; an answer is read up to 64 KB;
// a receiver that does not answer within the timeout is cut off.
import { lookup } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { LockMode, raw } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { Webhook as Signer } from 'standardwebhooks';
import { WebhookAttemptSchema, WebhookMessageSchema, WebhookSchema, type Webhook, type WebhookMessage } from './entities.js';
import { PollingWorker } from './polling-worker.js';
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
  /** How often the worker looks for due messages when there were none. */
  pollMs?: number;
  onError?: (error: unknown) => void;
}

const READ_LIMIT = 64 * 1024;
const LOGGED_BYTES = 500;

export interface AttemptResult {
  status: number | null;
  error: string | null;
  body: string;
  durationMs: number;
}

export class WebhookDelivery extends PollingWorker {
  readonly #orm: MikroORM;
  readonly #options: Required<Omit<DeliveryOptions, 'onError'>>;

  constructor(orm: MikroORM, options: DeliveryOptions) {
    const { onError, ...rest } = options;
    const settings = {
      timeoutMs: 10_000,
      giveUpAfterMs: 24 * 3_600_000,
      firstRetryMs: 5_000,
      maxRetryDelayMs: 3_600_000,
      batchSize: 50,
      pollMs: 500,
      ...rest,
    };
    super(settings.pollMs, onError);
    this.#orm = orm;
    this.#options = settings;
  }

  protected async round(): Promise<boolean> {
    return (await this.deliverDue()) >= this.#options.batchSize;
  }

  /** One round: claims the due messages, sends them, records each attempt. Returns how many were claimed. */
  async deliverDue(): Promise<number> {
    const claimed = await this.#claim();
    const byWebhook = new Map<number, number[]>();
    for (const { id, webhookId } of claimed) byWebhook.set(webhookId, [...(byWebhook.get(webhookId) ?? []), id]);
    await Promise.all(
      [...byWebhook.values()].map(async (ids) => {
        // A unit of work per webhook: its messages are sent one after another, in the order of their events.
        const em = this.#orm.em.fork();
        const messages = await em.find(WebhookMessageSchema, { id: { $in: ids } }, { orderBy: { id: 'asc' }, populate: ['webhook'] });
        for (const message of messages) {
          const webhook = message.webhook.getEntity();
          if (this.stopping || !webhook.enabled) break;
          await this.#deliver(em, webhook, message);
        }
      }),
    );
    return claimed.length;
  }

  /** The due messages, oldest event first, taken for a lease that outlasts their sending. */
  async #claim(): Promise<{ id: number; webhookId: number }[]> {
    return this.#orm.em.fork().transactional(async (tx) => {
      const due = await tx.find(
        WebhookMessageSchema,
        { nextAttemptAt: { $lte: raw('now()') as Date }, webhook: { enabled: true } },
        { orderBy: { id: 'asc' }, limit: this.#options.batchSize, lockMode: LockMode.PESSIMISTIC_PARTIAL_WRITE },
      );
      const leaseEnd = new Date(Date.now() + 2 * this.#options.timeoutMs + 30_000);
      for (const message of due) message.nextAttemptAt = leaseEnd;
      return due.map((message) => ({ id: message.id, webhookId: message.webhook.id }));
    });
  }

  async #deliver(em: EntityManager, webhook: Webhook, message: WebhookMessage) {
    const body = JSON.stringify(message.payload);
    const sentAt = new Date();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'SIM-Link-Webhooks/1',
      'webhook-id': message.messageId,
      'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
      'webhook-signature': new Signer(webhook.secret).sign(message.messageId, sentAt, body),
    };
    const result = await postOnce(webhook.url, body, headers, this.#options);
    const now = new Date();
    const ok = result.status !== null && result.status >= 200 && result.status < 300;
    message.attempts += 1;
    if (ok) {
      message.deliveredAt = now;
      message.nextAttemptAt = null;
      webhook.failingSince = null;
    } else {
      webhook.failingSince ??= now;
      if (now.getTime() - message.createdAt.getTime() >= this.#options.giveUpAfterMs) {
        message.failedAt = now;
        message.nextAttemptAt = null;
        webhook.enabled = false;
        webhook.disabledReason = `Disabled on ${now.toISOString().slice(0, 16).replace('T', ' ')} UTC: no delivery succeeded for ${describeDuration(
          this.#options.giveUpAfterMs,
        )} (last attempt: ${result.status !== null ? `HTTP ${result.status}` : result.error})`;
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
      error: result.error?.slice(0, 500) ?? null,
      responseStart: result.body.slice(0, LOGGED_BYTES) || null,
    });
    try {
      await em.flush();
    } catch (error) {
      // The webhook was deleted meanwhile (its messages with it): nothing left to record.
      em.clear();
      if (!(await em.findOne(WebhookSchema, webhook.id))) return;
      throw error;
    }
  }
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

/** POSTs once; never throws: a failure is a result with its error. */
export function postOnce(
  target: string,
  body: string,
  headers: Record<string, string>,
  options: { allowPrivate: boolean; timeoutMs: number },
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
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: guardedLookup(options.allowPrivate),
        agent: false,
      },
      (response) => {
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
    const timer = setTimeout(() => {
      request.destroy();
      finish(done(null, `No answer within ${options.timeoutMs / 1000} s`));
    }, options.timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) => finish(done(null, error.message || error.code || 'Connection failed')));
    request.end(body);
  });
}
