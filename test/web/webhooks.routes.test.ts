// The Webhooks pages (/settings/webhooks): an admin adds a webhook and sees its signing secret once; a bad URL
// or no event type is refused with the error summary; the webhook's page sends a test event, disables and
// enables it, deletes it through "Are you sure you want to continue?", and shows the delivery log where a
// message can be resent; viewers get 403; another enterprise's webhook is 404; forms need the CSRF token.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Webhook as Verifier } from 'standardwebhooks';
import { allRows, type TestDatabase } from '../helpers/database.js';
import { buildTestApp, routeTestWorld } from '../helpers/app.js';
import { csrfToken, hidden, signedIn, type Agent } from '../helpers/session.js';
import { page } from '../helpers/page.js';
import { type TestEnterprise } from '../factories/index.js';
import { WebhookDelivery } from '../../src/domain/webhook-delivery.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Agent;
let csrf: string;

/** The new signing secret as the page shows it once (the "Signing secret" field), or undefined. */
const secretIn = (html: string) => {
  const shown = page(html);
  return shown.queryByLabelText('Signing secret') ? shown.field('Signing secret').value : undefined;
};
beforeAll(async () => {
  ({ db, app, em, acme, globex } = await routeTestWorld({ webhookAllowPrivate: true }));
  admin = (await signedIn(app, em, acme, 'admin')).agent;
  csrf = await csrfToken(admin);
});
afterAll(async () => {
  await app?.close();
  await db?.close();
});

describe('Webhooks pages', () => {
  it('is linked from the header for admins only; viewers get 403', async () => {
    expect(page((await admin.get('/endpoints')).text).link('Webhooks')).toBe('/settings/webhooks');
    const { agent: viewer } = await signedIn(app, em, acme, 'viewer');
    expect(page((await viewer.get('/endpoints')).text).link('Webhooks')).toBeNull();
    expect((await viewer.get('/settings/webhooks')).status).toBe(403);
  });

  it('adds a webhook: the secret shown once, then the list without it; a test event arrives signed with it', async () => {
    const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    const server = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push({ headers: request.headers, body });
        response.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
    try {
      const res = await admin
        .post('/settings/webhooks')
        .type('form')
        .send(`_csrf=${encodeURIComponent(csrf)}&url=${encodeURIComponent(url)}&event_types=sim.linked&event_types=sim.delinked`);
      expect(res.status, res.text).toBe(200);
      expect(res.text).toContain('it will not be shown again');
      const secret = secretIn(res.text)!;
      expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]{44}$/);
      const [stored] = await allRows(db, 'select id, url, event_types, enabled from webhook where enterprise_id = ?', [acme.id]);
      expect(stored).toMatchObject({ url, event_types: ['sim.linked', 'sim.delinked'], enabled: true });
      const list = await admin.get('/settings/webhooks');
      expect(list.text).toContain(url);
      expect(list.text).not.toContain(secret);

      const page = `/settings/webhooks/${stored.id as number}`;
      const test = await admin.post(`${page}/test`).type('form').send({ _csrf: csrf });
      expect(test.status).toBe(303);
      expect(test.headers.location).toBe(page);
      const delivery = new WebhookDelivery(db.orm, { allowPrivate: true });
      await delivery.deliverDue();
      expect(received).toHaveLength(1);
      const payload = new Verifier(secret).verify(received[0].body, received[0].headers as Record<string, string>) as { type: string };
      expect(payload.type).toBe('webhook.test');
      const shown = await admin.get(page);
      expect(shown.status).toBe(200);
      expect(shown.text).toContain('Delivery log');
      expect(shown.text).toContain('HTTP 200');
      expect(shown.text).not.toContain(secret);

      // Resend: the same message again, with the same webhook-id.
      const [message] = await allRows(db, 'select id from webhook_message where webhook_id = ?', [stored.id]);
      const resend = await admin
        .post(`${page}/messages/${message.id as number}/resend`)
        .type('form')
        .send({ _csrf: csrf });
      expect(resend.status).toBe(303);
      await delivery.deliverDue();
      expect(received).toHaveLength(2);
      expect(received[1].headers['webhook-id']).toBe(received[0].headers['webhook-id']);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('refuses an http:// URL (without WEBHOOK_ALLOW_PRIVATE) and no event types, keeping what was typed', async () => {
    const strict = await buildTestApp(db);
    const webhooksBefore = await em.fork().count('Webhook', {});
    try {
      const { agent } = await signedIn(strict, em, acme, 'admin');
      const token = await csrfToken(agent);
      const res = await agent.post('/settings/webhooks').type('form').send({ _csrf: token, url: 'http://crm.example.com/hooks' });
      expect(res.status).toBe(422);
      const form = page(res.text);
      expect(form.errors().map((e) => e.message)).toEqual([
        expect.stringContaining('The URL must start with https://'),
        expect.stringContaining('Choose at least one event type'),
      ]);
      expect(form.field('URL')).toMatchObject({ value: 'http://crm.example.com/hooks', invalid: true });
      expect(form.field('URL').error).toContain('The URL must start with https://');
      const local = await agent
        .post('/settings/webhooks')
        .type('form')
        .send({ _csrf: token, url: 'https://10.0.0.8/hooks', event_types: 'sim.linked' });
      expect(local.status).toBe(422);
      expect(page(local.text).field('URL').error).toContain('The URL must be a public address');
      const encoded = await agent
        .post('/settings/webhooks')
        .type('form')
        .send({ _csrf: token, url: `https://crm.example.com/${'é'.repeat(1000)}`, event_types: 'sim.linked' });
      expect(encoded.status).toBe(422);
      expect(page(encoded.text).field('URL').error).toContain(
        'URL must be 2,000 characters or fewer once its special characters are encoded',
      );
      expect(await em.fork().count('Webhook', {})).toBe(webhooksBefore);
    } finally {
      await strict.close();
    }
  });

  it('adds one webhook per form: a second submission (reload, double click, replay) adds nothing (409)', async () => {
    const list = await admin.get('/settings/webhooks');
    const form = `_csrf=${encodeURIComponent(csrf)}&key=${hidden(list.text, 'key')}&url=${encodeURIComponent('https://replay.example.com/h')}&event_types=sim.linked`;
    const first = await admin.post('/settings/webhooks').type('form').send(form);
    expect(first.status, first.text).toBe(200);
    const secret = secretIn(first.text)!;
    const again = await admin.post('/settings/webhooks').type('form').send(form);
    expect(again.status).toBe(409);
    expect(page(again.text).text).toContain('This form already added its webhook, whose signing secret is not shown again.');
    expect(secretIn(again.text)).toBeUndefined();
    expect(again.text).not.toContain(secret);
    expect(await allRows(db, `select id from webhook where url = 'https://replay.example.com/h'`)).toHaveLength(1);
  });

  it('disables and enables; deletes through the confirmation', async () => {
    const created = await admin
      .post('/settings/webhooks')
      .type('form')
      .send({ _csrf: csrf, url: 'https://crm.example.com/delete-me', event_types: 'sim.linked' });
    expect(created.status).toBe(200);
    const [{ id }] = await allRows(db, `select id from webhook where url = 'https://crm.example.com/delete-me'`);
    const webhookPage = `/settings/webhooks/${id as number}`;
    expect((await admin.post(`${webhookPage}/disable`).type('form').send({ _csrf: csrf })).status).toBe(303);
    expect((await allRows(db, 'select enabled, disabled_reason from webhook where id = ?', [id]))[0]).toEqual({
      enabled: false,
      disabled_reason: 'Disabled by an admin',
    });
    expect((await admin.get(webhookPage)).text).toContain('Disabled by an admin');
    // The list says why too (issue 16: "the list with each webhook's state (enabled, disabled and why, …)").
    const row = page((await admin.get('/settings/webhooks')).text).byId(`webhook-${id as number}`);
    expect([...(row?.querySelectorAll('td') ?? [])].map((cell) => cell.textContent?.trim())).toContain('Disabled by an admin');
    expect((await admin.post(`${webhookPage}/enable`).type('form').send({ _csrf: csrf })).status).toBe(303);
    expect((await allRows(db, 'select enabled from webhook where id = ?', [id]))[0]).toEqual({ enabled: true });

    const confirm = await admin.get(`${webhookPage}/delete`);
    expect(confirm.status).toBe(200);
    expect(page(confirm.text).heading).toBe('Are you sure you want to continue?');
    expect(page(confirm.text).text).toContain('Delete the webhook to https://crm.example.com/delete-me.');
    const deleted = await admin.post(`${webhookPage}/delete`).type('form').send({ _csrf: csrf });
    expect(deleted.status).toBe(303);
    expect(deleted.headers.location).toBe('/settings/webhooks');
    expect(await allRows(db, 'select id from webhook where id = ?', [id])).toEqual([]);
  });

  it('another enterprise’s webhook, an unknown or malformed id: 404 naming a webhook; no CSRF token: 403', async () => {
    const { agent: other } = await signedIn(app, em, globex, 'admin');
    const otherCsrf = await csrfToken(other);
    await other
      .post('/settings/webhooks')
      .type('form')
      .send({ _csrf: otherCsrf, url: 'https://globex.example.com/h', event_types: 'sim.linked' });
    const [{ id }] = await allRows(db, `select id from webhook where enterprise_id = ?`, [globex.id]);
    for (const path of [
      `/settings/webhooks/${id as number}`,
      '/settings/webhooks/99999999',
      '/settings/webhooks/abc',
      '/settings/webhooks/99999999999',
    ]) {
      const res = await admin.get(path);
      expect(res.status, path).toBe(404);
      expect(res.text).toContain('The webhook was not found.');
    }
    expect(
      (
        await admin
          .post(`/settings/webhooks/${id as number}/disable`)
          .type('form')
          .send({ _csrf: csrf })
      ).status,
    ).toBe(404);
    expect((await allRows(db, 'select enabled from webhook where id = ?', [id]))[0]).toEqual({ enabled: true });
    expect(
      (await admin.post('/settings/webhooks').type('form').send({ url: 'https://x.example.com', event_types: 'sim.linked' })).status,
    ).toBe(403);
  });

  it('pages the delivery log: the latest 50 attempts, then Older ones until the first, and Newest back', async () => {
    await admin.post('/settings/webhooks').type('form').send({ _csrf: csrf, url: 'https://log.example.com/h', event_types: 'sim.linked' });
    const [{ id }] = await allRows<{ id: number }>(db, `select id from webhook where url = 'https://log.example.com/h'`);
    // 120 attempts of 120 messages, attempted one minute apart (the table's order is by id, newest first).
    await allRows(
      db,
      `with m as (
         insert into webhook_message (webhook_id, message_id, event_type, payload, attempts, created_at)
         select ?, 'msg_log_' || n, 'sim.linked', '{}'::jsonb, 1, now() from generate_series(1, 120) n
         returning id, message_id)
       insert into webhook_attempt (webhook_id, message_id, attempted_at, duration_ms, status)
       select ?, m.id, now() - (120 - substr(m.message_id, 9)::int) * interval '1 minute', 5, 200 + substr(m.message_id, 9)::int
       from m order by substr(m.message_id, 9)::int`,
      [id, id],
    );
    const statusesOf = (html: string) =>
      page(html)
        .rows('The latest 50 attempts, newest first')
        .map((row) => row[2]);
    const first = await admin.get(`/settings/webhooks/${id}`);
    expect(statusesOf(first.text)).toEqual(Array.from({ length: 50 }, (_, i) => `HTTP ${320 - i}`));
    expect(page(first.text).link('Newest')).toBeNull();
    const older = page(first.text).link('Older')!;
    const second = await admin.get(older);
    const rowsOf = (html: string, caption: string) =>
      page(html)
        .rows(caption)
        .map((row) => row[2]);
    expect(rowsOf(second.text, '50 older attempts, newest first')).toEqual(Array.from({ length: 50 }, (_, i) => `HTTP ${270 - i}`));
    const third = await admin.get(page(second.text).link('Older')!);
    expect(rowsOf(third.text, '20 older attempts, newest first')).toEqual(Array.from({ length: 20 }, (_, i) => `HTTP ${220 - i}`));
    expect(page(third.text).link('Older')).toBeNull();
    expect(page(third.text).link('Newest')).toBe(`/settings/webhooks/${id}`);
    for (const before of ['abc', '0', '0007', '2147483648'])
      expect((await admin.get(`/settings/webhooks/${id}?before=${before}`)).status, before).toBe(400);
  });
});
