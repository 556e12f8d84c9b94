// The API tokens page (/settings/api-tokens): an admin creates a token and sees it once, the list shows it
// without the token, Revoke asks "Are you sure you want to continue?" and the token is refused from then
// on; viewers get 403; another enterprise's token is 404; forms need the CSRF token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import supertest from 'supertest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { allRows, type TestDatabase } from '../helpers/database.js';
import { routeTestWorld } from '../helpers/app.js';
import { csrfToken, hidden, signedIn, type Agent } from '../helpers/session.js';
import { type TestEnterprise } from '../factories/index.js';
import { hashToken } from '../../src/domain/api-tokens.js';
import { page } from '../helpers/page.js';

let db: TestDatabase;
let app: FastifyInstance;
let em: EntityManager;
let acme: TestEnterprise;
let globex: TestEnterprise;
let admin: Agent;
let csrf: string;

/** The new token as the page shows it (the "New API token" field), or undefined when it is not shown. */
const tokenIn = (html: string) => {
  const shown = page(html);
  return shown.queryByLabelText('New API token') ? shown.field('New API token').value : undefined;
};
const tokenRow = (html: string, name: string) =>
  page(html)
    .rows()
    .find((cells) => cells[0] === name);
beforeAll(async () => {
  ({ db, app, em, acme, globex } = await routeTestWorld());
  admin = (await signedIn(app, em, acme, 'admin')).agent;
  csrf = await csrfToken(admin);
});
afterAll(async () => {
  await app?.close();
  await db?.close();
});

describe('API tokens page', () => {
  it('is linked from the header for admins only', async () => {
    expect(page((await admin.get('/endpoints')).text).link('API tokens')).toBe('/settings/api-tokens');
    const { agent: viewer } = await signedIn(app, em, acme, 'viewer');
    expect(page((await viewer.get('/endpoints')).text).link('API tokens')).toBeNull();
  });

  it('creates a token shown once, stored only as its hash, listed with name, role and creator', async () => {
    const res = await admin.post('/settings/api-tokens').type('form').send({ _csrf: csrf, name: 'CRM', role: 'admin' });
    expect(res.status).toBe(200);
    expect(page(res.text).text).toContain('it will not be shown again');
    // The copy button is shown by the page's script (hidden without it), and copies the token's field.
    const copy = page(res.text).getByRole('button', { name: (_, el) => el.textContent === 'Copy token', hidden: true });
    expect(copy.getAttribute('data-copy')).toBe(page(res.text).field('New API token').element.id);
    const token = tokenIn(res.text)!;
    expect(token).toMatch(/^sl_[A-Za-z0-9_-]{43}$/);
    const [stored] = await allRows(db, 'select name, role, token_hash, created_by_name from api_token where enterprise_id = ?', [acme.id]);
    expect(stored).toMatchObject({ name: 'CRM', role: 'admin', token_hash: hashToken(token) });
    expect(JSON.stringify(await allRows(db, 'select * from api_token'))).not.toContain(token);
    // The token works on the API…
    const api = await supertest(app.server).get('/api/v1/endpoints').set('Authorization', `Bearer ${token}`);
    expect(api.status).toBe(200);
    // …and the page never shows it again.
    const list = await admin.get('/settings/api-tokens');
    expect(list.status).toBe(200);
    expect(list.text).not.toContain(token);
    expect(tokenIn(list.text)).toBeUndefined();
    const [name, role, createdBy, , lastUsed, action] = tokenRow(list.text, 'CRM')!;
    expect([name, role, action]).toEqual(['CRM', 'admin', 'Revoke token CRM']);
    expect(createdBy.startsWith('Admin ')).toBe(true);
    // Used once, by the API call above.
    expect(lastUsed).not.toBe('Never');
  });

  it('refuses a form without a name or role: 422 with the error summary, values kept', async () => {
    const res = await admin.post('/settings/api-tokens').type('form').send({ _csrf: csrf, name: ' ', role: 'root' });
    expect(res.status).toBe(422);
    const form = page(res.text);
    expect(form.errors().map((e) => e.message)).toEqual(['Enter a name for the token', 'Select a role: admin or viewer']);
    expect(form.field('Name').error).toBe('Enter a name for the token');
    expect(form.title.startsWith('Error: ')).toBe(true);
    expect(tokenIn(res.text)).toBeUndefined();
  });

  it('revokes through the confirmation; the token is refused from the next request on', async () => {
    const created = await admin.post('/settings/api-tokens').type('form').send({ _csrf: csrf, name: 'Nightly', role: 'viewer' });
    const token = tokenIn(created.text)!;
    const [{ id }] = await allRows(db, `select id from api_token where name = 'Nightly'`);
    const confirm = await admin.get(`/settings/api-tokens/revoke?id=${id}`);
    expect(confirm.status).toBe(200);
    expect(page(confirm.text).heading).toBe('Are you sure you want to continue?');
    expect(page(confirm.text).text).toContain("Revoke API token 'Nightly' (viewer).");
    expect(page(confirm.text).button('Yes')).not.toBeNull();
    expect((await admin.get('/settings/api-tokens/revoke')).headers.location).toBe('/settings/api-tokens');
    const res = await admin
      .post('/settings/api-tokens/revoke')
      .type('form')
      .send({ _csrf: hidden(confirm.text, '_csrf'), id: hidden(confirm.text, 'id') });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/settings/api-tokens');
    const list = await admin.get('/settings/api-tokens');
    expect(page(list.text).flash).toBe("API token 'Nightly' revoked");
    expect(tokenRow(list.text, 'Nightly')).toBeUndefined();
    expect((await allRows(db, 'select revoked_at from api_token where id = ?', [id]))[0].revoked_at).not.toBeNull();
    const api = await supertest(app.server).get('/api/v1/endpoints').set('Authorization', `Bearer ${token}`);
    expect(api.status).toBe(401);
  });

  it('gives viewers 403, and answers another enterprise’s token 404', async () => {
    const { agent: viewer } = await signedIn(app, em, acme, 'viewer');
    expect((await viewer.get('/settings/api-tokens')).status).toBe(403);
    const viewerCsrf = await csrfToken(viewer);
    const post = await viewer.post('/settings/api-tokens').type('form').send({ _csrf: viewerCsrf, name: 'Viewer made', role: 'admin' });
    expect(post.status).toBe(403);
    expect(await allRows(db, `select id from api_token where name = 'Viewer made'`)).toEqual([]);

    const { agent: theirAdmin } = await signedIn(app, em, globex, 'admin');
    const theirCsrf = await csrfToken(theirAdmin);
    await theirAdmin.post('/settings/api-tokens').type('form').send({ _csrf: theirCsrf, name: 'Globex CRM', role: 'admin' });
    const [{ id }] = await allRows(db, `select id from api_token where name = 'Globex CRM'`);
    expect((await admin.get(`/settings/api-tokens/revoke?id=${id}`)).status).toBe(404);
    expect(
      (
        await admin
          .post('/settings/api-tokens/revoke')
          .type('form')
          .send({ _csrf: csrf, id: String(id) })
      ).status,
    ).toBe(404);
    expect((await allRows(db, 'select revoked_at from api_token where id = ?', [id]))[0].revoked_at).toBeNull();
    expect(page((await admin.get('/settings/api-tokens')).text).text).not.toContain('Globex CRM');
  });

  it('creates one token per form: a second submission (reload, double click) creates nothing (409)', async () => {
    const list = await admin.get('/settings/api-tokens');
    const form = { _csrf: csrf, key: hidden(list.text, 'key'), name: 'Reloaded', role: 'viewer' };
    const first = await admin.post('/settings/api-tokens').type('form').send(form);
    expect(first.status).toBe(200);
    const token = tokenIn(first.text)!;
    const again = await admin.post('/settings/api-tokens').type('form').send(form);
    expect(again.status).toBe(409);
    expect(page(again.text).text).toContain('This form already created its token, which is not shown again.');
    expect(tokenIn(again.text)).toBeUndefined();
    expect(again.text).not.toContain(token);
    expect(await allRows(db, `select id from api_token where name = 'Reloaded'`)).toHaveLength(1);
  });

  it('needs the CSRF token to create or revoke', async () => {
    const res = await admin.post('/settings/api-tokens').type('form').send({ name: 'No CSRF', role: 'admin' });
    expect(res.status).toBe(403);
    expect(await allRows(db, `select id from api_token where name = 'No CSRF'`)).toEqual([]);
  });
});
