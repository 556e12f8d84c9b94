// Webhooks (src/domain/webhooks.ts, src/domain/webhook-delivery.ts), against real receivers on 127.0.0.1: the
// outbox is written by the change's own transaction (a refused change writes nothing), every lifecycle change
// arrives once, signed (checked with the standardwebhooks package), in its endpoint's sequence order; failures
// are retried and logged; a receiver that never answers is cut off; one that is gone for the whole window gets
// its webhook disabled with the reason; two workers never send one message twice (claiming at once, their batches
// are disjoint); endpoints are delivered side by side, each one's messages one at a time in sequence order, a
// failed one holding back the rest; connections are kept alive, and private addresses are refused all the same.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Webhook as Verifier } from 'standardwebhooks';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createEnterprise, holdEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import type { Actor } from '../../src/domain/accounts.js';
import { WEBHOOK_EVENT_TYPES, WebhookAttemptSchema, WebhookMessageSchema, WebhookSchema } from '../../src/domain/entities.js';
import { ValidationError } from '../../src/domain/errors.js';
import { activateEndpoint, createEndpoint, delinkSim, linkSim, resumeEndpoint, suspendEndpoint } from '../../src/domain/lifecycle.js';
import { WebhookDelivery, postOnce } from '../../src/domain/webhook-delivery.js';
import {
  MESSAGE_IN_FLIGHT,
  createWebhook,
  deleteWebhook,
  isPrivateAddress,
  resendMessage,
  setWebhookEnabled,
  validateWebhook,
} from '../../src/domain/webhooks.js';
import { storable } from '../../src/domain/text.js';
import { authenticateApiToken, createApiToken } from '../../src/domain/api-tokens.js';
import { buildApp } from '../../src/app.js';
import { testConfig } from '../helpers/app.js';
import { actorFor, refusedWith } from './support.js';

let db: TestDatabase;
let acme: TestEnterprise;
let admin: Actor;
const fork = (): EntityManager => db.orm.em.fork();
const ALLOW = { allowPrivate: true };

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A receiver on 127.0.0.1 answering each request with what `answer` says (status, 'hang', 'huge', or a promise of
 * a status: answered when it settles). It counts the connections opened to it.
 */
type Answer = number | 'hang' | 'huge' | { status: number; body: string };
async function receiver(answer: (n: number, body: string) => Answer | Promise<Answer> = () => 200) {
  const received: Received[] = [];
  let connections = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ headers: request.headers, body });
      const n = received.length;
      void Promise.resolve(answer(n, body)).then((what) => respond(what, n));
    });
    const respond = (what: Answer, n: number) => {
      if (what === 'hang') return;
      if (typeof what === 'object') {
        response.writeHead(what.status, { 'content-type': 'text/plain' });
        response.end(what.body);
        return;
      }
      if (what === 'huge') {
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.end('x'.repeat(1024 * 1024));
        return;
      }
      response.writeHead(what, { 'content-type': 'text/plain' });
      response.end(`answer ${n}`);
    };
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return {
    url,
    received,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const workers: WebhookDelivery[] = [];
function worker(options: Partial<ConstructorParameters<typeof WebhookDelivery>[1]> = {}) {
  const delivery = new WebhookDelivery(db.orm, { allowPrivate: true, pollMs: 20, firstRetryMs: 30, ...options });
  workers.push(delivery);
  return delivery;
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  db = await createTestDatabase({ poolSize: 12 });
  const em = fork();
  acme = await createEnterprise(em, 'Acme');
  admin = await actorFor(em, acme, 'admin');
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  // Each test starts with no webhooks (their messages and attempts go with them).
  await fork().nativeDelete(WebhookSchema, {});
});
afterAll(() => db.close());

describe('the outbox', () => {
  it('a change writes one message per enabled webhook that wants it, in its transaction; others get none', async () => {
    const em = fork();
    const wanted = await createWebhook(em, admin, { url: 'http://127.0.0.1:9/a', eventTypes: ['sim.linked'] }, ALLOW);
    const other = await createWebhook(fork(), admin, { url: 'http://127.0.0.1:9/b', eventTypes: ['sim.delinked'] }, ALLOW);
    const disabled = await createWebhook(fork(), admin, { url: 'http://127.0.0.1:9/c', eventTypes: ['sim.linked'] }, ALLOW);
    await fork().nativeUpdate(WebhookSchema, { id: disabled.webhook.id }, { enabled: false });
    const globex = await createEnterprise(fork(), 'Globex');
    const globexAdmin = await actorFor(fork(), globex, 'admin');
    const foreign = await createWebhook(fork(), globexAdmin, { url: 'http://127.0.0.1:9/d', eventTypes: ['sim.linked'] }, ALLOW);

    const endpoint = await holdEndpoint(fork(), acme, { activateImmediately: true });
    const sim = await readySim(fork(), acme);
    await linkSim(fork(), { actor: admin }, endpoint.id, sim.id);

    const messages = await fork().find(WebhookMessageSchema, {}, { orderBy: { id: 'asc' } });
    expect(messages.map((m) => m.webhook.id)).toEqual([wanted.webhook.id]);
    const [message] = messages;
    expect(message.eventType).toBe('sim.linked');
    expect(message.messageId).toMatch(/^msg_[A-Za-z0-9_-]{20}$/);
    expect(message.payload).toMatchObject({
      type: 'sim.linked',
      data: {
        endpoint_id: endpoint.id,
        endpoint_name: endpoint.name,
        iccid: sim.iccid,
        endpoint_status: 'active',
        sim_status: 'active',
        actor: { type: 'user', id: admin.id, name: admin.displayName },
        source: 'ui',
      },
    });
    expect([other, disabled, foreign].map((w) => w.webhook.id)).not.toContain(message.webhook.id);

    // A refused change (the endpoint is no longer on Hold) rolls back whole: no message.
    const second = await readySim(fork(), acme);
    await refusedWith(linkSim(fork(), { actor: admin }, endpoint.id, second.id));
    expect(await fork().count(WebhookMessageSchema, {})).toBe(1);
  });
  it('a change made with an API token names the token as the actor: { type: api_token, id, name }, source api', async () => {
    await createWebhook(fork(), admin, { url: 'http://127.0.0.1:9/t', eventTypes: ['sim.linked'] }, ALLOW);
    const { token, row } = await createApiToken(fork(), admin, { name: 'CRM sync', role: 'admin' });
    const tokenActor = (await authenticateApiToken(fork(), token))!.actor;
    const endpoint = await holdEndpoint(fork(), acme);
    await linkSim(fork(), { actor: tokenActor, source: 'api' }, endpoint.id, (await readySim(fork(), acme)).id);
    const [message] = await fork().find(WebhookMessageSchema, {});
    expect(message.payload).toMatchObject({ data: { actor: { type: 'api_token', id: row.id, name: 'CRM sync' }, source: 'api' } });
  });
});

describe('delivery', () => {
  it('every lifecycle change arrives once, signed, with its data, in its endpoint’s sequence order', async () => {
    const target = await receiver();
    try {
      const { secret } = await createWebhook(fork(), admin, { url: target.url, eventTypes: [...WEBHOOK_EVENT_TYPES] }, ALLOW);
      const endpoint = await holdEndpoint(fork(), acme, { activateImmediately: false });
      const sim = await readySim(fork(), acme);
      const ctx = { actor: admin };
      await linkSim(fork(), ctx, endpoint.id, sim.id);
      await activateEndpoint(fork(), ctx, endpoint.id);
      await suspendEndpoint(fork(), ctx, endpoint.id);
      await resumeEndpoint(fork(), ctx, endpoint.id);
      await delinkSim(fork(), ctx, endpoint.id);
      const another = await readySim(fork(), acme);
      const created = await createEndpoint(fork(), ctx, { name: 'Webhook tracker', activateImmediately: true, simId: another.id });

      worker().start();
      await until(() => target.received.length >= 7);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(target.received).toHaveLength(7);

      const verifier = new Verifier(secret);
      const payloads = target.received.map((r) => {
        const verified = verifier.verify(r.body, r.headers as Record<string, string>) as { type: string; data: Record<string, unknown> };
        expect(r.headers['content-type']).toBe('application/json');
        return verified;
      });
      expect(new Set(target.received.map((r) => r.headers['webhook-id'])).size).toBe(7);
      const first = payloads.filter((p) => p.data.endpoint_id === endpoint.id);
      expect(first.map((p) => [p.type, p.data.endpoint_status, p.data.sim_status])).toEqual([
        ['sim.linked', 'pre_active', 'pre_active'],
        ['endpoint.activated', 'active', 'active'],
        ['endpoint.suspended', 'suspended', 'suspended'],
        ['endpoint.resumed', 'active', 'active'],
        ['sim.delinked', 'hold', 'ready_to_activate'],
      ]);
      const sequences = first.map((p) => p.data.sequence as number);
      expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
      expect(new Set(sequences).size).toBe(5);
      expect(payloads.filter((p) => p.data.endpoint_id === created.endpointId).map((p) => p.type)).toEqual([
        'endpoint.created',
        'sim.linked',
      ]);

      const messages = await fork().find(WebhookMessageSchema, {});
      expect(messages.every((m) => m.deliveredAt && m.nextAttemptAt === null && m.attempts === 1)).toBe(true);
      expect(await fork().count(WebhookAttemptSchema, { status: 200 })).toBe(7);
    } finally {
      await target.close();
    }
  });

  it('a receiver that answers 500 three times gets the message on the 4th attempt; all four are in the log', async () => {
    const target = await receiver((n) => (n <= 3 ? 500 : 200));
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoint = await holdEndpoint(fork(), acme);
      const sim = await readySim(fork(), acme);
      await linkSim(fork(), { actor: admin }, endpoint.id, sim.id);
      worker().start();
      await until(async () => (await fork().count(WebhookMessageSchema, { deliveredAt: { $ne: null } })) === 1);

      const [message] = await fork().find(WebhookMessageSchema, {});
      expect(message.attempts).toBe(4);
      const attempts = await fork().find(WebhookAttemptSchema, { message: message.id }, { orderBy: { id: 'asc' } });
      expect(attempts.map((a) => a.status)).toEqual([500, 500, 500, 200]);
      expect(attempts[0].responseStart).toBe('answer 1');
      expect(new Set(target.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([message.messageId]));
      const [webhook] = await fork().find(WebhookSchema, {});
      expect(webhook.failingSince).toBeNull();
    } finally {
      await target.close();
    }
  });

  it('a receiver that does not answer is cut off at the timeout and tried again', async () => {
    const target = await receiver((n) => (n === 1 ? 'hang' : 200));
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoint = await holdEndpoint(fork(), acme);
      await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
      worker({ timeoutMs: 300 }).start();
      await until(async () => (await fork().count(WebhookMessageSchema, { deliveredAt: { $ne: null } })) === 1);
      const attempts = await fork().find(WebhookAttemptSchema, {}, { orderBy: { id: 'asc' } });
      expect(attempts.map((a) => [a.status, a.error])).toEqual([
        [null, 'No answer within 0.3 s'],
        [200, null],
      ]);
      expect(attempts[0].durationMs).toBeGreaterThanOrEqual(290);
    } finally {
      await target.close();
    }
  });

  it('a huge answer is read only up to 64 KB, and its first 500 characters are logged', async () => {
    const target = await receiver(() => 'huge');
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoint = await holdEndpoint(fork(), acme);
      await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
      worker().start();
      await until(async () => (await fork().count(WebhookAttemptSchema, {})) === 1);
      const [attempt] = await fork().find(WebhookAttemptSchema, {});
      expect(attempt.status).toBe(200);
      expect(attempt.responseStart).toBe('x'.repeat(500));
    } finally {
      await target.close();
    }
  });

  it('an answer with NUL bytes and half a character is logged without them, and delivery goes on', async () => {
    // A NUL byte, then an emoji whose two UTF-16 halves straddle the 500th unit: PostgreSQL takes neither as text.
    const body = `a\u0000b${'x'.repeat(497)}\u{1F600}tail`;
    const target = await receiver((n) => (n === 1 ? { status: 500, body } : { status: 200, body: 'ok\u0000' }));
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoints = [await holdEndpoint(fork(), acme), await holdEndpoint(fork(), acme)];
      for (const e of endpoints) await linkSim(fork(), { actor: admin }, e.id, (await readySim(fork(), acme)).id);
      const delivery = worker({ firstRetryMs: 1 });
      expect(await delivery.deliverDue()).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await delivery.deliverDue()).toBe(1);
      const messages = await fork().find(WebhookMessageSchema, {}, { orderBy: { id: 'asc' } });
      expect(messages.map((m) => [m.attempts, m.deliveredAt !== null])).toEqual([
        [2, true],
        [1, true],
      ]);
      const attempts = await fork().find(WebhookAttemptSchema, {}, { orderBy: { id: 'asc' } });
      expect(attempts.map((a) => a.responseStart)).toEqual([`ab${'x'.repeat(497)}`, 'ok', 'ok']);
    } finally {
      await target.close();
    }
  });

  it('storable() drops NUL bytes and half characters and cuts to the size, never inside a character', () => {
    expect(storable('a\u0000b', 10)).toBe('ab');
    expect(storable('a\uD800b\uDC00c', 10)).toBe('abc');
    expect(storable('ab\u{1F600}', 3)).toBe('ab');
    expect(storable('ab\u{1F600}', 4)).toBe('ab\u{1F600}');
    expect(storable('x'.repeat(600), 500)).toHaveLength(500);
  });

  it('a receiver gone for the whole window: the message is given up and the webhook disabled, with the reason', async () => {
    const gone = await receiver();
    const url = gone.url;
    await gone.close();
    const created = await createWebhook(fork(), admin, { url, eventTypes: ['sim.linked'] }, ALLOW);
    const endpoint = await holdEndpoint(fork(), acme);
    await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
    worker({ giveUpAfterMs: 400 }).start();
    await until(async () => (await fork().findOneOrFail(WebhookSchema, created.webhook.id)).enabled === false);
    const webhook = await fork().findOneOrFail(WebhookSchema, created.webhook.id);
    expect(webhook.disabledReason).toMatch(/no delivery succeeded for 400 ms \(last attempt: .*ECONNREFUSED.*\)$/);
    expect(webhook.failingSince).not.toBeNull();
    const [message] = await fork().find(WebhookMessageSchema, {});
    expect(message.failedAt).not.toBeNull();
    expect(message.nextAttemptAt).toBeNull();
    expect(message.attempts).toBeGreaterThanOrEqual(2);
  });

  /** Makes the database refuse every attempt logged for this message (a trigger), until the returned function is called. */
  async function refuseAttemptsOf(messageId: number) {
    const sql = fork().getConnection();
    await sql.execute(
      `create or replace function refuse_attempt() returns trigger language plpgsql as $$ begin ` +
        `if new.message_id = ${messageId} then raise exception 'attempt refused for the test'; end if; return new; end $$`,
    );
    await sql.execute('create trigger refuse_attempt before insert on webhook_attempt for each row execute function refuse_attempt()');
    return () => sql.execute('drop trigger refuse_attempt on webhook_attempt');
  }

  it('one message whose attempt cannot be recorded does not hold back the others of its batch', async () => {
    const target = await receiver();
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoints = [await holdEndpoint(fork(), acme), await holdEndpoint(fork(), acme), await holdEndpoint(fork(), acme)];
      for (const e of endpoints) await linkSim(fork(), { actor: admin }, e.id, (await readySim(fork(), acme)).id);
      const [bad, ...good] = await fork().find(WebhookMessageSchema, {}, { orderBy: { id: 'asc' } });
      const allow = await refuseAttemptsOf(bad.id);
      const errors: unknown[] = [];
      try {
        expect(await worker({ onError: (error) => errors.push(error) }).deliverDue()).toBe(3);
      } finally {
        await allow();
      }
      const after = await fork().find(WebhookMessageSchema, {}, { orderBy: { id: 'asc' } });
      expect(after.map((m) => [m.attempts, m.deliveredAt !== null])).toEqual([
        [0, false],
        [1, true],
        [1, true],
      ]);
      // The one not recorded stays leased: due again when its lease ends, as after a crash.
      expect(after[0].nextAttemptAt!.getTime()).toBeGreaterThan(Date.now());
      expect((await fork().find(WebhookAttemptSchema, {})).map((a) => a.message.id).sort()).toEqual(good.map((m) => m.id).sort());
      expect(errors).toHaveLength(1);
    } finally {
      await target.close();
    }
  });

  it('a failure to record is logged without the statement’s values: no receiver’s answer, no whsec_ secret', async () => {
    // A receiver that echoes what it knows — here the webhook's own secret — into its answer, logged in the attempt.
    let secret = '';
    const target = await receiver(() => ({ status: 200, body: `echo ${secret}` }));
    const lines: string[] = [];
    const app = await buildApp({
      orm: db.orm,
      config: testConfig({ webhookDelivery: true, webhookAllowPrivate: true }),
      logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } },
    });
    try {
      ({ secret } = await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW));
      const endpoint = await holdEndpoint(fork(), acme);
      await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
      const [message] = await fork().find(WebhookMessageSchema, {});
      const allow = await refuseAttemptsOf(message.id);
      try {
        await app.ready();
        await until(() => lines.some((line) => line.includes('webhook delivery round failed')));
      } finally {
        await app.close();
        await allow();
      }
      expect(lines.join('\n')).not.toContain('whsec_');
      expect(lines.join('\n')).not.toContain('webhook_attempt');
      const failed = lines.map((line) => JSON.parse(line) as { msg: string; err?: { message: string; code: string } });
      expect(failed.find((l) => l.msg === 'webhook delivery round failed')?.err).toMatchObject({
        message: 'attempt refused for the test',
        code: 'P0001',
      });
      expect(target.received).toHaveLength(1);
    } finally {
      await target.close();
    }
  });

  it('a give-up recorded on its own (its batch’s flush failed) stores the webhook’s reason', async () => {
    const target = await receiver(() => 500);
    try {
      const created = await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoints = [await holdEndpoint(fork(), acme), await holdEndpoint(fork(), acme)];
      for (const e of endpoints) await linkSim(fork(), { actor: admin }, e.id, (await readySim(fork(), acme)).id);
      const [bad, given] = await fork().find(WebhookMessageSchema, {}, { orderBy: { id: 'asc' } });
      const allow = await refuseAttemptsOf(bad.id);
      try {
        expect(await worker({ giveUpAfterMs: 0, onError: () => {} }).deliverDue()).toBe(2);
      } finally {
        await allow();
      }
      const webhook = await fork().findOneOrFail(WebhookSchema, created.webhook.id);
      expect(webhook.enabled).toBe(false);
      expect(webhook.disabledReason).toMatch(/^Disabled on .* UTC: no delivery succeeded for .* \(last attempt: HTTP 500\)$/);
      const message = await fork().findOneOrFail(WebhookMessageSchema, given.id);
      expect([message.failedAt !== null, message.nextAttemptAt]).toEqual([true, null]);
    } finally {
      await target.close();
    }
  });

  it('Resend while the message is in flight is refused (409), so it is never sent twice at once; after, it is sent again', async () => {
    let answer: (status: number) => void = () => {};
    const target = await receiver((n) => (n === 1 ? new Promise<number>((resolve) => (answer = resolve)) : 200));
    try {
      const { webhook } = await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoint = await holdEndpoint(fork(), acme);
      await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
      const [message] = await fork().find(WebhookMessageSchema, {});
      const delivery = worker();
      const first = delivery.deliverDue();
      await until(() => target.received.length === 1);
      // In flight: a resend now would make it due, and another round (or instance) would send it a second time.
      await expect(resendMessage(fork(), admin, webhook.id, message.id)).rejects.toThrow(MESSAGE_IN_FLIGHT);
      expect(await delivery.deliverDue()).toBe(0);
      answer(200);
      expect(await first).toBe(1);
      expect(target.received).toHaveLength(1);
      const delivered = await fork().findOneOrFail(WebhookMessageSchema, message.id);
      expect([delivered.deliveredAt !== null, delivered.nextAttemptAt, delivered.leaseToken]).toEqual([true, null, null]);

      await resendMessage(fork(), admin, webhook.id, message.id);
      expect(await delivery.deliverDue()).toBe(1);
      expect(target.received.map((r) => r.headers['webhook-id'])).toEqual([message.messageId, message.messageId]);
    } finally {
      await target.close();
    }
  });

  it('a sender whose lease was taken over meanwhile writes nothing to the message', async () => {
    let answer: (status: number) => void = () => {};
    const target = await receiver(() => new Promise<number>((resolve) => (answer = resolve)));
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoint = await holdEndpoint(fork(), acme);
      await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
      const [message] = await fork().find(WebhookMessageSchema, {});
      const sending = worker().deliverDue();
      await until(() => target.received.length === 1);
      // As if its lease had run out and another sender had claimed the message.
      const takenUntil = new Date(Date.now() + 60_000);
      await fork().nativeUpdate(WebhookMessageSchema, { id: message.id }, { leaseToken: 'another-sender', nextAttemptAt: takenUntil });
      answer(200);
      expect(await sending).toBe(1);
      const after = await fork().findOneOrFail(WebhookMessageSchema, message.id);
      expect([after.leaseToken, after.nextAttemptAt?.getTime(), after.deliveredAt, after.attempts]).toEqual([
        'another-sender',
        takenUntil.getTime(),
        null,
        0,
      ]);
    } finally {
      await target.close();
    }
  });

  it('the day to give up counts from the first attempt, not from when the message was written, and starts again on re-enabling', async () => {
    const target = await receiver(() => 500);
    try {
      const { webhook } = await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoint = await holdEndpoint(fork(), acme);
      await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
      // Written two hours ago (it waited, say, behind others): its first attempt fails, and it is not given up.
      const hours = (n: number) => new Date(Date.now() - n * 3_600_000);
      await fork().nativeUpdate(WebhookMessageSchema, {}, { createdAt: hours(2), nextAttemptAt: hours(2) });
      const delivery = worker({ giveUpAfterMs: 3_600_000, firstRetryMs: 1 });
      expect(await delivery.deliverDue()).toBe(1);
      let [message] = await fork().find(WebhookMessageSchema, {});
      expect([message.attempts, message.failedAt, message.firstAttemptedAt !== null]).toEqual([1, null, true]);
      expect((await fork().findOneOrFail(WebhookSchema, webhook.id)).enabled).toBe(true);

      // First attempted two hours ago; the webhook is disabled, then enabled again: a new hour from the next attempt.
      await fork().nativeUpdate(WebhookMessageSchema, {}, { firstAttemptedAt: hours(2), nextAttemptAt: hours(0) });
      await setWebhookEnabled(fork(), admin, webhook.id, false);
      await setWebhookEnabled(fork(), admin, webhook.id, true);
      expect(await delivery.deliverDue()).toBe(1);
      [message] = await fork().find(WebhookMessageSchema, {});
      expect([message.attempts, message.failedAt]).toEqual([2, null]);
      expect(message.firstAttemptedAt!.getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect((await fork().findOneOrFail(WebhookSchema, webhook.id)).enabled).toBe(true);

      // Without the re-enabling, two hours after the first attempt it is given up.
      await fork().nativeUpdate(WebhookMessageSchema, {}, { firstAttemptedAt: hours(2), nextAttemptAt: hours(0) });
      expect(await delivery.deliverDue()).toBe(1);
      [message] = await fork().find(WebhookMessageSchema, {});
      expect(message.failedAt).not.toBeNull();
      expect((await fork().findOneOrFail(WebhookSchema, webhook.id)).enabled).toBe(false);
    } finally {
      await target.close();
    }
  });

  it('two workers on one database deliver 200 messages, each exactly once', async () => {
    const target = await receiver();
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked', 'sim.delinked'] }, ALLOW);
      const endpoints = await Promise.all(Array.from({ length: 20 }, async () => holdEndpoint(fork(), acme)));
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          endpoints.map(async (endpoint) => {
            const sim = await readySim(fork(), acme);
            await linkSim(fork(), { actor: admin }, endpoint.id, sim.id);
            await delinkSim(fork(), { actor: admin }, endpoint.id);
          }),
        );
      }
      expect(await fork().count(WebhookMessageSchema, {})).toBe(200);
      worker({ batchSize: 7 }).start();
      worker({ batchSize: 7 }).start();
      await until(async () => (await fork().count(WebhookMessageSchema, { deliveredAt: { $ne: null } })) === 200, 20_000);
      const ids = target.received.map((r) => r.headers['webhook-id']);
      expect(ids).toHaveLength(200);
      expect(new Set(ids).size).toBe(200);
      expect(await fork().count(WebhookAttemptSchema, {})).toBe(200);
    } finally {
      await target.close();
    }
  });

  it('two workers claiming at once take disjoint batches: every message is sent once, never by both', async () => {
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const target = await receiver(async () => {
      await answered;
      return 200;
    });
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      // 60 endpoints linked once: 60 messages, each the first of its lane, so all claimable at once.
      const endpoints = await Promise.all(Array.from({ length: 60 }, async () => holdEndpoint(fork(), acme)));
      await Promise.all(endpoints.map(async (e) => linkSim(fork(), { actor: admin }, e.id, (await readySim(fork(), acme)).id)));
      const rounds = [worker({ batchSize: 40 }).deliverDue(), worker({ batchSize: 40 }).deliverDue()];
      // Both rounds have claimed their batches and are sending, 8 to the webhook each, when the receiver answers.
      await until(() => target.received.length >= 16);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(target.received).toHaveLength(16);
      answer();
      expect((await Promise.all(rounds)).sort((a, b) => a - b)).toEqual([20, 40]);
      const ids = target.received.map((r) => r.headers['webhook-id']);
      expect(ids).toHaveLength(60);
      expect(new Set(ids).size).toBe(60);
      expect(await fork().count(WebhookMessageSchema, { deliveredAt: { $ne: null }, attempts: 1 })).toBe(60);
      expect(await fork().count(WebhookAttemptSchema, {})).toBe(60);
    } finally {
      await target.close();
    }
  });

  it('endpoints go side by side, each one’s messages one at a time in sequence order, a failed one holding back the rest', async () => {
    const inFlight = new Set<number>();
    let overlapped = false;
    let mostAtOnce = 0;
    let failing = 0;
    let failed = false;
    const arrivals: { endpoint: number; sequence: number }[] = [];
    const target = await receiver(async (_n, body) => {
      const { data } = JSON.parse(body) as { data: { endpoint_id: number; sequence: number } };
      arrivals.push({ endpoint: data.endpoint_id, sequence: data.sequence });
      if (inFlight.has(data.endpoint_id)) overlapped = true;
      inFlight.add(data.endpoint_id);
      mostAtOnce = Math.max(mostAtOnce, inFlight.size);
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 15));
      inFlight.delete(data.endpoint_id);
      if (data.sequence === failing && !failed) {
        failed = true;
        return 500;
      }
      return 200;
    });
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked', 'sim.delinked'] }, ALLOW);
      const endpoints = await Promise.all(Array.from({ length: 6 }, async () => holdEndpoint(fork(), acme)));
      await Promise.all(
        endpoints.map(async (endpoint) => {
          for (let cycle = 0; cycle < 4; cycle++) {
            await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
            await delinkSim(fork(), { actor: admin }, endpoint.id);
          }
        }),
      );
      const sequencesOf = async (endpointId: number) =>
        (await fork().find(WebhookMessageSchema, { endpointId }, { orderBy: { id: 'asc' } })).map(
          (m) => (m.payload.data as { sequence: number }).sequence,
        );
      // The first endpoint's third message fails once: its fourth to eighth must wait for it.
      const first = await sequencesOf(endpoints[0].id);
      failing = first[2];
      worker({ firstRetryMs: 150 }).start();
      await until(async () => (await fork().count(WebhookMessageSchema, { deliveredAt: { $ne: null } })) === 48);

      expect(overlapped).toBe(false);
      expect(mostAtOnce).toBeGreaterThan(1);
      const arrived = (endpointId: number) => arrivals.filter((a) => a.endpoint === endpointId).map((a) => a.sequence);
      expect(arrived(endpoints[0].id)).toEqual([first[0], first[1], first[2], ...first.slice(2)]);
      for (const endpoint of endpoints.slice(1)) {
        const sequences = await sequencesOf(endpoint.id);
        expect(sequences).toHaveLength(8);
        expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
        expect(arrived(endpoint.id)).toEqual(sequences);
      }
      expect(await fork().count(WebhookAttemptSchema, {})).toBe(49);
    } finally {
      await target.close();
    }
  });

  it('the messages behind a failed one are not sent, and not due, before its retry', async () => {
    const target = await receiver((n) => (n === 1 ? 500 : 200));
    try {
      await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked', 'sim.delinked'] }, ALLOW);
      const endpoint = await holdEndpoint(fork(), acme);
      await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
      await delinkSim(fork(), { actor: admin }, endpoint.id);
      await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
      const delivery = worker({ firstRetryMs: 60_000 });
      // Only the first of the endpoint's three messages can be claimed; it fails.
      expect(await delivery.deliverDue()).toBe(1);
      const [first, ...behind] = await fork().find(WebhookMessageSchema, {}, { orderBy: { id: 'asc' } });
      expect(first.attempts).toBe(1);
      expect(first.nextAttemptAt!.getTime()).toBeGreaterThan(Date.now() + 40_000);
      expect(behind.map((m) => [m.attempts, m.nextAttemptAt?.getTime()])).toEqual([
        [0, first.nextAttemptAt!.getTime()],
        [0, first.nextAttemptAt!.getTime()],
      ]);
      expect(await delivery.deliverDue()).toBe(0);
      expect(target.received).toHaveLength(1);
    } finally {
      await target.close();
    }
  });

  it('the messages held back behind a failed one are due at once when it succeeds early (a Resend), not at its old retry', async () => {
    const target = await receiver((n) => (n === 1 ? 500 : 200));
    try {
      const { webhook } = await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked', 'sim.delinked'] }, ALLOW);
      const endpoint = await holdEndpoint(fork(), acme);
      await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
      await delinkSim(fork(), { actor: admin }, endpoint.id);
      const delivery = worker({ firstRetryMs: 60_000 });
      expect(await delivery.deliverDue()).toBe(1);
      const [first] = await fork().find(WebhookMessageSchema, {}, { orderBy: { id: 'asc' } });
      await resendMessage(fork(), admin, webhook.id, first.id);
      expect(await delivery.deliverDue()).toBe(1);
      const [, behind] = await fork().find(WebhookMessageSchema, {}, { orderBy: { id: 'asc' } });
      expect(behind.nextAttemptAt!.getTime()).toBeLessThanOrEqual(Date.now());
      expect(await delivery.deliverDue()).toBe(1);
      expect(target.received.map((r) => (JSON.parse(r.body) as { type: string }).type)).toEqual([
        'sim.linked',
        'sim.linked',
        'sim.delinked',
      ]);
    } finally {
      await target.close();
    }
  });

  it('a receiver that does not answer holds up its own messages only, not another webhook’s', async () => {
    const slow = await receiver(() => 'hang');
    const quick = await receiver();
    try {
      await createWebhook(fork(), admin, { url: slow.url, eventTypes: ['sim.linked'] }, ALLOW);
      await createWebhook(fork(), admin, { url: quick.url, eventTypes: ['sim.delinked'] }, ALLOW);
      // More messages for the slow one than it may have requests at once (8): some wait for a slot.
      const endpoints = await Promise.all(Array.from({ length: 12 }, async () => holdEndpoint(fork(), acme)));
      await Promise.all(endpoints.map(async (e) => linkSim(fork(), { actor: admin }, e.id, (await readySim(fork(), acme)).id)));
      worker({ timeoutMs: 4_000 }).start();
      await until(() => slow.received.length === 8);
      const changed = Date.now();
      await delinkSim(fork(), { actor: admin }, endpoints[0].id);
      await until(() => quick.received.length === 1);
      expect(Date.now() - changed).toBeLessThan(2_000);
    } finally {
      await slow.close();
      await quick.close();
    }
  });

  it('deleting a webhook takes its messages and log with it', async () => {
    const { webhook } = await createWebhook(fork(), admin, { url: 'http://127.0.0.1:9/x', eventTypes: ['sim.linked'] }, ALLOW);
    const endpoint = await holdEndpoint(fork(), acme);
    await linkSim(fork(), { actor: admin }, endpoint.id, (await readySim(fork(), acme)).id);
    expect(await fork().count(WebhookMessageSchema, { webhook: webhook.id })).toBe(1);
    await deleteWebhook(fork(), admin, webhook.id);
    expect(await fork().count(WebhookMessageSchema, {})).toBe(0);
  });
});

describe('safety', () => {
  it('refuses http://, private and loopback addresses unless allowed', () => {
    const policy = { allowPrivate: false };
    const refusal = (url: string) => {
      try {
        validateWebhook({ url, eventTypes: ['sim.linked'] }, policy);
        return null;
      } catch (error) {
        return (error as ValidationError).errors.map((e) => e.message).join('; ');
      }
    };
    expect(refusal('http://crm.example.com/hooks')).toBe('The URL must start with https://');
    for (const url of [
      'https://127.0.0.1/x',
      'https://10.1.2.3/x',
      'https://169.254.169.254/latest',
      'https://[::1]/x',
      'https://localhost/x',
      'https://[::ffff:127.0.0.1]:3950/h',
      'https://[::ffff:169.254.169.254]/latest',
      'https://[0:0:0:0:0:ffff:127.0.0.1]/x',
      'https://[::127.0.0.1]/x',
      'https://[2002:7f00:1::]/x',
      'https://localhost./x',
      'https://LOCALHOST../x',
      'https://printer.local./x',
      'https://127.0.0.1./x',
      'https://[::ffff:0:127.0.0.1]/x',
      'https://[::ffff:0:a9fe:a9fe]/latest',
      'https://192.0.0.8/x',
      'https://192.0.2.1/x',
    ]) {
      expect(refusal(url), url).toBe('The URL must be a public address, not one of a private network or this machine');
    }
    expect(refusal('https://user:pw@crm.example.com/x')).toBe('The URL must not contain a user name or password');
    expect(refusal('https://crm.example.com:0/x')).toBe('The URL’s port must be between 1 and 65535');
    expect(refusal('not a url')).toBe('Enter a full URL, like https://crm.example.com/hooks/sim-link');
    expect(refusal('https://crm.example.com/hooks')).toBeNull();
    // Only 192.0.0.0/24 and 192.0.2.0/24 of 192.0.x.x are special; the rest is public.
    expect(refusal('https://192.0.1.1/x')).toBeNull();
    expect(refusal('https://192.0.3.1/x')).toBeNull();
    expect(refusal('https://[::ffff:0:8.8.8.8]/x')).toBeNull();
    // 1,024 characters as typed, 6,024 once each é is encoded (%C3%A9): the stored URL would not fit its column.
    expect(refusal(`https://crm.example.com/${'é'.repeat(1000)}`)).toBe(
      'URL must be 2,000 characters or fewer once its special characters are encoded',
    );
    expect(refusal(`https://crm.example.com/${'é'.repeat(300)}`)).toBeNull();
    expect(() => validateWebhook({ url: 'https://crm.example.com/x', eventTypes: [] }, policy)).toThrow(ValidationError);
    expect(() => validateWebhook({ url: 'https://crm.example.com/x', eventTypes: ['sim.exploded'] }, policy)).toThrow(ValidationError);
    expect(validateWebhook({ url: 'http://127.0.0.1:8080/x', eventTypes: ['sim.linked'] }, ALLOW).url).toBe('http://127.0.0.1:8080/x');
  });

  it('classifies addresses', () => {
    for (const a of [
      '127.0.0.1',
      '10.0.0.1',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      // IPv4 carried in IPv6, in every spelling the URL parser or a resolver may give: judged by the IPv4 address.
      '::ffff:7f00:1',
      '::FFFF:A9FE:A9FE',
      '0:0:0:0:0:ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '::127.0.0.1',
      '::7f00:1',
      '2002:7f00:1::',
      '2002:a00:1::1',
      '::',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2',
      '64:ff9b::7f00:1',
      'fec0::1',
      'ff02::1',
      'fe80::1%eth0',
      '::ffff:0:127.0.0.1',
      '::ffff:0:7f00:1',
      '::ffff:0:10.1.2.3',
      '192.0.0.170',
      '192.0.2.1',
    ])
      expect(isPrivateAddress(a), a).toBe(true);
    for (const a of [
      '8.8.8.8',
      '1.1.1.1',
      '172.32.0.1',
      '2606:4700:4700::1111',
      '::ffff:8.8.8.8',
      '::ffff:808:808',
      '2002:808:808::1',
      '192.0.1.1',
      '192.0.3.1',
      '::ffff:0:808:808',
    ])
      expect(isPrivateAddress(a), a).toBe(false);
  });

  it('connections are kept alive from one message to the next, and still opened only to addresses the policy allows', async () => {
    const target = await receiver();
    try {
      const allowed = await createWebhook(fork(), admin, { url: target.url, eventTypes: ['sim.linked'] }, ALLOW);
      const endpoints = await Promise.all(Array.from({ length: 20 }, async () => holdEndpoint(fork(), acme)));
      await Promise.all(endpoints.map(async (e) => linkSim(fork(), { actor: admin }, e.id, (await readySim(fork(), acme)).id)));
      expect(await worker().deliverDue()).toBe(20);
      expect(target.received).toHaveLength(20);
      // 8 at a time to one webhook: 8 connections at most for the 20, each reused.
      expect(target.connections()).toBeLessThanOrEqual(8);
      await deleteWebhook(fork(), admin, allowed.webhook.id);

      // The same receiver by a name that resolves to 127.0.0.1, for a worker without WEBHOOK_ALLOW_PRIVATE: refused
      // at each attempt before a connection is opened, kept-alive connections or not.
      const port = new URL(target.url).port;
      const named = await createWebhook(fork(), admin, { url: `https://localhost:${port}/hooks`, eventTypes: ['sim.delinked'] }, ALLOW);
      const guarded = worker({ allowPrivate: false, firstRetryMs: 1 });
      const before = target.connections();
      await delinkSim(fork(), { actor: admin }, endpoints[0].id);
      await delinkSim(fork(), { actor: admin }, endpoints[1].id);
      expect(await guarded.deliverDue()).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await guarded.deliverDue()).toBe(2);
      const attempts = await fork().find(WebhookAttemptSchema, { webhookId: named.webhook.id });
      expect(attempts).toHaveLength(4);
      for (const attempt of attempts) {
        expect(attempt.status).toBeNull();
        expect(attempt.error).toMatch(/^localhost resolves to (127\.0\.0\.1|::1), a private address$/);
      }
      expect(target.connections()).toBe(before);
      expect(target.received).toHaveLength(20);
    } finally {
      await target.close();
    }
  });

  it('at send time, a name that resolves to a private address is refused, and so is a literal one', async () => {
    const target = await receiver();
    try {
      const port = new URL(target.url).port;
      const byName = await postOnce(`https://localhost:${port}/x`, '{}', {}, { allowPrivate: false, timeoutMs: 2000 });
      expect(byName.status).toBeNull();
      expect(byName.error).toMatch(/^localhost resolves to (127\.0\.0\.1|::1), a private address$/);
      const literal = await postOnce(`https://127.0.0.1:${port}/x`, '{}', {}, { allowPrivate: false, timeoutMs: 2000 });
      expect(literal.error).toBe('127.0.0.1 is a private address');
      const mapped = await postOnce(`https://[::ffff:127.0.0.1]:${port}/x`, '{}', {}, { allowPrivate: false, timeoutMs: 2000 });
      expect(mapped.status).toBeNull();
      expect(mapped.error).toMatch(/is a private address$/);
      expect(target.received).toHaveLength(0);
    } finally {
      await target.close();
    }
  });
});
