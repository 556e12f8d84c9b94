// Two SIM Link processes on one PostgreSQL database, both running the webhook delivery worker (issue 16): 200
// lifecycle changes made through both instances' API reach a real receiver on 127.0.0.1 — every message
// delivered, none sent twice at once, and the delivery log agrees with what the receiver got.
//
// What a broken claim would produce, and what catches it: two instances that both take the same due message
// send it side by side (the receiver sees one webhook-id twice at the same time), send it twice in all (more
// receipts than messages: in this test no lease runs out, so a second send can only come from a double claim),
// and write two attempt rows for one counted attempt (each instance's unit of work counts 0 → 1).
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { Webhook } from 'standardwebhooks';
import supertest from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { actorOf } from '../../src/domain/accounts.js';
import { createApiToken } from '../../src/domain/api-tokens.js';
import { UserSchema, WEBHOOK_EVENT_TYPES } from '../../src/domain/entities.js';
import { freePort } from '../e2e/support/app-server.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import { delinkSim, linkSim } from '../../src/domain/lifecycle.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { hidden } from '../helpers/session.js';
import { buildIfNeeded, ready, removeTempDirs, run, signIn, stopChildren, tempDir, type Run } from './app-process.js';

beforeAll(buildIfNeeded, 180_000);
afterEach(stopChildren);
afterAll(removeTempDirs);

const CHAINS = 10;
/** Through the API: 10 chains × 18 = 180 changes… */
const API_CHANGES_PER_CHAIN = 18;
/** …and through the domain verbs: 4 × 5 = 20 more. */
const MEETINGS = 4;

interface Receipt {
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A receiver that answers 200 to everything and watches for the same webhook-id in flight twice. The first
 * message is held (up to 8 s, under the worker's 10 s timeout) until a second request arrives: the instance
 * that sent it waits, so the second can only come from the other instance — both are shown to deliver, side
 * by side, and a message both had claimed would show up here as an overlap.
 */
async function receiver() {
  const receipts: Receipt[] = [];
  const inFlight = new Map<string, number>();
  const overlaps: string[] = [];
  let open = 0;
  let mostOpen = 0;
  let release: (() => void) | null = null;
  let held = false;
  const server = createServer((req, res) => {
    const id = String(req.headers['webhook-id']);
    if (inFlight.get(id)) overlaps.push(id);
    inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
    open += 1;
    mostOpen = Math.max(mostOpen, open);
    if (open >= 2 && release) release();
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const wait = held
        ? new Promise((resolve) => setTimeout(resolve, Math.random() * 10))
        : new Promise<void>((resolve) => {
            held = true;
            const timer = setTimeout(resolve, 8_000);
            release = () => {
              release = null;
              clearTimeout(timer);
              resolve();
            };
            if (open >= 2) release();
          });
      void wait.then(() => {
        inFlight.set(id, inFlight.get(id)! - 1);
        open -= 1;
        receipts.push({ id, headers: req.headers, body });
        res.end('ok');
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks/sim-link`,
    receipts,
    overlaps,
    mostOpen: () => mostOpen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A JSON call to an instance's API; fails the test on anything but the expected status. */
async function api(app: Run, token: string, method: string, path: string, body?: unknown, status = 200) {
  const res = await fetch(`${app.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  expect(res.status, `${method} ${path} on ${app.url}: ${text}`).toBe(status);
  return JSON.parse(text) as Record<string, unknown> & { data?: Record<string, unknown>[] };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (up to 20 s) until no message is waiting to be delivered; each instance's worker polls every 0.5 s. */
async function allDelivered(em: EntityManager) {
  const deadline = Date.now() + 20_000;
  const pending = async () =>
    (await em.execute<{ n: number }[]>('select count(*)::int as n from webhook_message where delivered_at is null'))[0].n;
  while ((await pending()) > 0 && Date.now() < deadline) await sleep(100);
}

describe('webhooks with two app instances on one PostgreSQL', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await stopChildren();
    await db?.close();
  });

  it('200 changes through both instances: every message delivered, none sent twice at once, the log agrees', async () => {
    const target = await receiver();
    try {
      const env = { DATABASE_URL: db.url, WEBHOOK_ALLOW_PRIVATE: 'true' };
      const first = run({ ...env, DATA_DIR: tempDir(), PORT: String(await freePort()) });
      await ready(first); // migrated and seeded by the first, before the second starts
      const second = run({ ...env, DATA_DIR: tempDir(), PORT: String(await freePort()) });
      await ready(second);
      const instances = [first, second];

      // The webhook, added on the first instance's page, subscribed to every event type.
      const cookie = await signIn(first.url);
      const page = await supertest(first.url).get('/settings/webhooks').set('Cookie', cookie);
      const form = new URLSearchParams({ _csrf: hidden(page.text, '_csrf'), url: target.url });
      for (const type of WEBHOOK_EVENT_TYPES) form.append('event_types', type);
      const added = await supertest(first.url).post('/settings/webhooks').set('Cookie', cookie).type('form').send(form.toString());
      expect(added.status).toBe(200);
      const secret = /value="(whsec_[^"]+)"/.exec(added.text)![1];

      const em = db.orm.em.fork();
      const admin = await em.findOneOrFail(UserSchema, { email: 'admin@acme.example' }, { populate: ['enterprise'] });
      const { token } = await createApiToken(em, actorOf(admin, admin.enterprise.getEntity()), { name: 'Two instances', role: 'admin' });
      const [{ last }] = await em.execute<{ last: string }[]>('select coalesce(max(id), 0) as last from event');

      // 180 changes through the API in 10 chains side by side, each request to one instance or the other in turn:
      // an endpoint created, then its SIM linked and de-linked, ending linked.
      const sims = await api(first, token, 'GET', `/sims?status=ready_to_activate&limit=${CHAINS}`);
      const iccids = sims.data!.map((sim) => String(sim.iccid));
      expect(iccids).toHaveLength(CHAINS);
      const endpointIds = await Promise.all(
        iccids.map(async (iccid, chain) => {
          const on = (step: number) => instances[(chain + step) % 2];
          const endpoint = await api(on(0), token, 'POST', '/endpoints', { name: `Two instances ${chain}` }, 201);
          for (let step = 1; step < API_CHANGES_PER_CHAIN; step++) {
            if (step % 2) await api(on(step), token, 'POST', `/endpoints/${endpoint.id}/sim`, { iccid });
            else await api(on(step), token, 'DELETE', `/endpoints/${endpoint.id}/sim`);
          }
          return Number(endpoint.id);
        }),
      );
      await allDelivered(em);

      // 20 more through the domain verbs, 5 at a time, each time making the two instances' claims meet: when the
      // 5 are committed (both instances idle), the outbox table is locked for a moment — as a slow database
      // might stall them — so both instances' next claims wait and then run at the same instant on the same 5
      // due messages. A claim that does not lock what it takes hands both instances the same messages.
      const ctx = { actor: actorOf(admin, admin.enterprise.getEntity()) };
      const simIds = await Promise.all(
        iccids.map(async (iccid) => Number((await em.execute<{ id: string }[]>('select id from sim where iccid = ?', [iccid]))[0].id)),
      );
      const linked = endpointIds.map(() => true);
      for (let meeting = 0; meeting < MEETINGS; meeting++) {
        const chains = Array.from({ length: CHAINS / 2 }, (_, i) => (meeting % 2) * (CHAINS / 2) + i);
        await Promise.all(
          chains.map(async (chain) => {
            if (linked[chain]) await delinkSim(db.orm.em.fork(), ctx, endpointIds[chain]);
            else await linkSim(db.orm.em.fork(), ctx, endpointIds[chain], simIds[chain]);
            linked[chain] = !linked[chain];
          }),
        );
        await db.orm.em.fork().transactional(async (tx) => {
          await tx.execute('lock table webhook_message in access exclusive mode');
          await sleep(1_200); // both instances poll every 0.5 s
        });
        await allDelivered(em);
      }
      const events = await em.execute<{ id: string }[]>('select id from event where id > ? order by id', [last]);
      expect(events).toHaveLength(200);

      const messages = await em.execute<
        { id: string; message_id: string; attempts: number; delivered_at: Date | null; payload: { id: string } }[]
      >('select id, message_id, attempts, delivered_at, payload from webhook_message order by id');
      // Every message delivered…
      expect(messages.filter((m) => !m.delivered_at)).toEqual([]);
      // One message per change, for exactly the 200 events.
      expect(messages.map((m) => m.payload.id).sort()).toEqual(events.map((e) => `evt_${e.id}`).sort());

      // Both instances sent at the same time (one instance sends a webhook's messages one after another)…
      expect(target.mostOpen()).toBeGreaterThanOrEqual(2);
      // …but never the same message at once, nor the same message twice.
      expect(target.overlaps).toEqual([]);
      const receivedIds = target.receipts.map((r) => r.id);
      expect(new Set(receivedIds)).toEqual(new Set(messages.map((m) => m.message_id)));
      expect(receivedIds).toHaveLength(messages.length);
      const signer = new Webhook(secret);
      for (const receipt of target.receipts) {
        const payload = signer.verify(receipt.body, receipt.headers as Record<string, string>) as { id: string };
        expect(payload.id).toBe(messages.find((m) => m.message_id === receipt.id)!.payload.id);
      }

      // The delivery log agrees: per message, as many attempt rows as attempts counted, as receipts, each a 200.
      const attempts = await em.execute<{ message_id: string; status: number | null; n: number }[]>(
        'select message_id, status, count(*)::int as n from webhook_attempt group by message_id, status',
      );
      expect(attempts.every((a) => a.status === 200)).toBe(true);
      const rowsOf = new Map(attempts.map((a) => [String(a.message_id), a.n]));
      const mismatched = messages.filter((m) => m.attempts !== 1 || rowsOf.get(String(m.id)) !== 1);
      expect(mismatched).toEqual([]);
    } finally {
      await target.close();
    }
  }, 90_000);
});
