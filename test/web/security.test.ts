// Security headers (CSP, framing, HSTS, referrer, sniffing) with and without CRM_ORIGINS and HTTPS; pages
// that keep to the CSP (no inline script or style); cross-site form posts refused; config that would
// silently break Secure cookies refused at start.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { loadConfig, ConfigError, type Config } from '../../src/config.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp, testConfig } from '../helpers/app.js';
import { buildApp, redactUrl } from '../../src/app.js';
import { csrfToken, hidden, PASSWORD, signedIn, type Agent } from '../helpers/session.js';
import { page } from '../helpers/page.js';
import { createEnterprise, createUser, holdEndpoint, linkedEndpoint, readySim, type TestEnterprise } from '../factories/index.js';
import { hashPassword } from '../../src/domain/passwords.js';
import { setCookie } from '../helpers/cookies.js';

/** A form post as a browser sends it: URL-encoded (the app refuses JSON and every other body type with 415). */
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const formBody = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

let db: TestDatabase;
let em: EntityManager;
let acme: TestEnterprise;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  em = db.orm.em.fork();
  acme = await createEnterprise(em, 'Acme Headers');
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await db.close();
});

async function appWith(overrides: Partial<Config> = {}) {
  const app = await buildTestApp(db, overrides);
  apps.push(app);
  return app;
}

/** The CSP as directive → sources. */
function csp(res: LightMyRequestResponse): Record<string, string[]> {
  const header = String(res.headers['content-security-policy'] ?? '');
  return Object.fromEntries(
    header
      .split(';')
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => {
        const [name, ...sources] = d.split(/\s+/);
        return [name, sources];
      }),
  );
}

const STRICT = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'"],
  'img-src': ["'self'"],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'form-action': ["'self'"],
  'frame-src': ["'none'"],
  'base-uri': ["'none'"],
  'object-src': ["'none'"],
};

/** A page, a redirect, a 404, a static file and an error page: every kind of response. */
const SAMPLES = ['/sign-in', '/endpoints', '/no-such-page', '/public/app.js', '/launch?token=x'];

describe('without CRM_ORIGINS (standalone)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appWith();
  });

  it.each(SAMPLES)('%s: strict CSP, framing only by the app itself, no-referrer, nosniff, no HSTS', async (url) => {
    const res = await app.inject(url);
    expect(csp(res)).toEqual({ ...STRICT, 'frame-ancestors': ["'self'"] });
    expect(res.headers['content-security-policy']).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toBeUndefined();
    // Powerful features SIM Link never uses are off, for its pages and anything in them.
    for (const feature of ['camera=()', 'microphone=()', 'geolocation=()', 'payment=()', 'usb=()']) {
      expect(String(res.headers['permissions-policy']).split(', ')).toContain(feature);
    }
  });
});

describe('addresses the router cannot read', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appWith();
  });

  it.each([
    ['an id of 600 digits', `/endpoints/${'1'.repeat(600)}`, 404, 'Page not found'],
    ['a part of 600 characters', `/endpoints/${'x'.repeat(600)}/sim`, 404, 'Page not found'],
    ['percent-encoding that decodes to nothing', '/endpoints/%E0%A4%A', 400, 'The request could not be understood'],
  ])('%s: a page with the security headers, never the address echoed', async (_, url, status, heading) => {
    const res = await app.inject(url);
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(page(res.body).heading).toBe(heading);
    expect(csp(res)).toEqual({ ...STRICT, 'frame-ancestors': ["'self'"] });
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body).not.toContain(url.split('/')[2].slice(0, 20));
  });

  it('under /api: problem+json', async () => {
    const res = await app.inject(`/api/v1/endpoints/${'9'.repeat(600)}`);
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.body)).toMatchObject({ status: 404, title: 'Not found' });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('with CRM_ORIGINS', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appWith({ crmOrigins: ['https://crm.example.com', 'https://crm.example.org:8443'] });
  });

  it.each(SAMPLES)('%s: frame-ancestors names the CRMs, and there is no X-Frame-Options', async (url) => {
    const res = await app.inject(url);
    expect(csp(res)).toEqual({ ...STRICT, 'frame-ancestors': ["'self'", 'https://crm.example.com', 'https://crm.example.org:8443'] });
    expect(res.headers['x-frame-options']).toBeUndefined();
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('tells the page which origins may hear from it', async () => {
    const res = await app.inject('/sign-in');
    const meta = page(res.body).document.querySelector('meta[name="crm-origins"]');
    expect(meta?.getAttribute('content')).toBe('https://crm.example.com https://crm.example.org:8443');
  });

  it('CRM_ORIGINS is parsed from a space- or comma-separated list of bare origins', () => {
    const base = { SESSION_SECRET: 'x'.repeat(40), DATA_DIR: '/tmp/simlink-test-unused' };
    expect(loadConfig({ ...base, CRM_ORIGINS: 'https://a.example  https://b.example:8443/' }).crmOrigins).toEqual([
      'https://a.example',
      'https://b.example:8443',
    ]);
    expect(() => loadConfig({ ...base, CRM_ORIGINS: 'https://a.example/path' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, CRM_ORIGINS: '*' })).toThrow(ConfigError);
  });
});

describe('behind HTTPS (PUBLIC_URL https, TRUST_PROXY)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await appWith({ publicUrl: 'https://simlink.example.com', trustProxy: 1 });
  });

  it('adds HSTS and upgrade-insecure-requests', async () => {
    const res = await app.inject({ url: '/sign-in', headers: { 'x-forwarded-proto': 'https' } });
    expect(res.headers['strict-transport-security']).toMatch(/^max-age=31536000/);
    expect(csp(res)['upgrade-insecure-requests']).toEqual([]);
  });

  it('the session cookie is Secure', async () => {
    const hash = await hashPassword(PASSWORD);
    const user = await createUser(em, acme, 'admin', hash);
    const res = await app.inject({
      method: 'POST',
      url: '/sign-in',
      headers: { ...FORM, 'x-forwarded-proto': 'https' },
      payload: formBody({ email: user.email, password: PASSWORD }),
    });
    expect(res.statusCode).toBe(303);
    const cookie = setCookie(res);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Lax/);
  });

  it('an https PUBLIC_URL without TRUST_PROXY is refused at start (Secure cookies would never be sent)', () => {
    const base = { SESSION_SECRET: 'x'.repeat(40), DATA_DIR: '/tmp/simlink-test-unused' };
    expect(() => loadConfig({ ...base, PUBLIC_URL: 'https://simlink.example.com' })).toThrow(/TRUST_PROXY/);
    expect(loadConfig({ ...base, PUBLIC_URL: 'https://simlink.example.com', TRUST_PROXY: '1' }).publicUrl).toBe(
      'https://simlink.example.com',
    );
  });
});

describe('without HTTPS', () => {
  it('the session cookie is not Secure (plain HTTP would drop it), but it is over a proxied HTTPS request', async () => {
    const app = await appWith({ trustProxy: 1 });
    const hash = await hashPassword(PASSWORD);
    const signIn = async (headers: Record<string, string>) => {
      const user = await createUser(em, acme, 'admin', hash);
      const res = await app.inject({
        method: 'POST',
        url: '/sign-in',
        headers: { ...headers, ...FORM },
        payload: formBody({ email: user.email, password: PASSWORD }),
      });
      return String(setCookie(res));
    };
    expect(await signIn({})).not.toMatch(/Secure/);
    expect(await signIn({ 'x-forwarded-proto': 'https' })).toMatch(/; Secure/);
  });
});

describe('pages keep to the CSP', () => {
  let app: FastifyInstance;
  let admin: Agent;
  let urls: string[];
  beforeAll(async () => {
    app = await appWith({ crmOrigins: ['https://crm.example.com'] });
    admin = (await signedIn(app, em, acme, 'admin')).agent;
    const hold = await holdEndpoint(em, acme);
    const sim = await readySim(em, acme);
    const { endpoint: active } = await linkedEndpoint(em, acme, 'active');
    urls = [
      '/endpoints',
      '/endpoints/new',
      `/endpoints/${hold.id}`,
      `/endpoints/${active.id}`,
      `/endpoints/${hold.id}/sim/new`,
      `/endpoints/${hold.id}/sim/confirm?sim_id=${sim.id}`,
      `/endpoints/${active.id}/suspend`,
      `/endpoints/${active.id}/sim/delete`,
      '/endpoints/new/sim',
      '/events',
      '/no-such-page',
      ...app.accessRules.filter((r) => r.method === 'GET' && !r.url.includes(':') && !r.url.includes('*')).map((r) => r.url),
    ];
  });

  it('no inline script, no inline style, no event-handler attributes, no javascript: URLs, on any page or partial', async () => {
    for (const url of urls) {
      for (const htmx of [false, true]) {
        const res = htmx ? await admin.get(url).set('HX-Request', 'true') : await admin.get(url);
        const doc = page(res.text).document;
        const label = `${url}${htmx ? ' (htmx)' : ''}`;
        for (const script of Array.from(doc.querySelectorAll('script'))) {
          expect(script.getAttribute('src')?.startsWith('/public/'), `${label}: ${script.outerHTML}`).toBe(true);
          expect(script.textContent, `${label}: script with a body`).toBe('');
        }
        expect(doc.querySelectorAll('style'), `${label}: <style>`).toHaveLength(0);
        const attributes = Array.from(doc.querySelectorAll('*')).flatMap((el) =>
          Array.from(el.attributes).map((a) => ({ name: a.name.toLowerCase(), value: a.value, on: el.tagName })),
        );
        expect(
          attributes.filter((a) => a.name === 'style'),
          `${label}: style attribute`,
        ).toEqual([]);
        expect(
          attributes.filter((a) => a.name.startsWith('on')),
          `${label}: event handler attribute`,
        ).toEqual([]);
        expect(
          attributes.filter((a) => a.name.startsWith('hx-on')),
          `${label}: hx-on`,
        ).toEqual([]);
        expect(
          attributes.filter((a) => a.value.trim().toLowerCase().startsWith('javascript:')),
          `${label}: javascript: URL`,
        ).toEqual([]);
      }
    }
  });

  it('htmx is served by the app and configured without eval and without its inline indicator styles', async () => {
    const doc = page((await admin.get('/endpoints')).text).document;
    const config = JSON.parse(doc.querySelector('meta[name="htmx-config"]')!.getAttribute('content')!);
    expect(config).toMatchObject({ allowEval: false, allowScriptTags: false, includeIndicatorStyles: false, selfRequestsOnly: true });
    const script = doc.querySelector('script[src="/public/vendor/htmx.min.js"]');
    expect(script?.hasAttribute('defer')).toBe(true);
    const htmx = await app.inject('/public/vendor/htmx.min.js');
    expect(htmx.statusCode).toBe(200);
    expect(htmx.body).toContain('htmx');
  });
});

describe('requests from another site', () => {
  let app: FastifyInstance;
  let hash: string;
  beforeAll(async () => {
    app = await appWith({ publicUrl: 'http://simlink.test:3000' });
    hash = await hashPassword(PASSWORD);
  });

  const signIn = async (headers: Record<string, string>) => {
    const user = await createUser(em, acme, 'admin', hash);
    return app.inject({
      method: 'POST',
      url: '/sign-in',
      headers: { ...headers, ...FORM },
      payload: formBody({ email: user.email, password: PASSWORD }),
    });
  };

  it('a sign-in posted by another site is refused (no login CSRF) and starts no session', async () => {
    const refused: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'https://evil.example' },
      { origin: 'http://localhost:80', host: 'localhost:3000' },
      // An opaque origin: a sandboxed frame, a data: or file: page.
      { origin: 'null' },
      { origin: 'null', 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of refused) {
      const res = await signIn(headers);
      expect(res.statusCode, JSON.stringify(headers)).toBe(403);
      expect(page(res.body).text).toContain('did not come from SIM Link');
      expect(res.headers['set-cookie']).toBeUndefined();
    }
  });

  it("the app's own pages, and clients that send neither header, get through", async () => {
    const allowed: Record<string, string>[] = [
      {},
      { 'sec-fetch-site': 'same-origin', origin: 'https://anything.example' },
      { origin: 'http://localhost:3000', host: 'localhost:3000' },
      { origin: 'http://simlink.test:3000', host: '127.0.0.1:3000' },
      // What Chromium sends on the app's own form posts (Referrer-Policy: no-referrer makes the Origin null).
      { origin: 'null', 'sec-fetch-site': 'same-origin' },
    ];
    for (const headers of allowed) {
      expect((await signIn(headers)).statusCode, JSON.stringify(headers)).toBe(303);
    }
  });

  it('GETs from anywhere are answered (links into the app work)', async () => {
    const res = await app.inject({ url: '/sign-in', headers: { 'sec-fetch-site': 'cross-site' } });
    expect(res.statusCode).toBe(200);
  });
});

describe('hardening', () => {
  it('sign-out tells the browser to drop the session cookie (Expires in the past)', async () => {
    const app = await appWith();
    const { agent } = await signedIn(app, em, acme, 'admin');
    const res = await agent
      .post('/sign-out')
      .type('form')
      .send({ _csrf: await csrfToken(agent) });
    expect(res.status).toBe(303);
    const cookie = setCookie(res);
    expect(cookie).toMatch(/^simlink_session=;/);
    expect(cookie).toMatch(/; Expires=Thu, 01 Jan 1970 00:00:00 GMT/);
    expect(cookie).toMatch(/; Path=\//);
    expect((await agent.get('/endpoints')).status).toBe(303);
  });

  it('the launch and CSRF tokens are redacted from logged addresses by their decoded names', () => {
    expect(redactUrl('/launch?token=abc.def.ghi')).toBe('/launch?token=[redacted]');
    expect(redactUrl('/launch?%74oken=abc.def.ghi&x=1')).toBe('/launch?%74oken=[redacted]&x=1');
    expect(redactUrl('/launch?%54%4F%4B%45%4E=abc')).toBe('/launch?%54%4F%4B%45%4E=[redacted]');
    expect(redactUrl('/sims/import?_%63srf=s3cret&q=8944')).toBe('/sims/import?_%63srf=[redacted]&q=8944');
    expect(redactUrl('/launch?%E0%A4%A=abc')).toBe('/launch?%E0%A4%A=[redacted]');
    expect(redactUrl('/endpoints?q=token%3Dx&status=active')).toBe('/endpoints?q=token%3Dx&status=active');
    expect(redactUrl('/endpoints')).toBe('/endpoints');
  });

  it('a client X-Request-Id is logged as clientRequestId, never used as the reference; no token reaches the log', async () => {
    const lines: string[] = [];
    const app = await buildApp({
      orm: db.orm,
      config: testConfig({ crmLaunchSecret: 'launch-secret-for-tests-0123456789abcdef' }),
      logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } },
    });
    apps.push(app);
    await app.ready();
    const secret = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ';
    const res = await app.inject({
      url: `/launch?%74oken=${secret}`,
      headers: { 'x-request-id': 'ATTACKER-REF-1', 'sec-fetch-dest': 'iframe' },
    });
    expect(res.statusCode).toBe(401);
    const ours = String(res.headers['x-request-id']);
    expect(ours).not.toBe('ATTACKER-REF-1');
    expect(page(res.body).text).toContain(`(Reference: ${ours}.)`);
    expect(res.body).not.toContain('ATTACKER-REF-1');
    const logged = lines.map((line) => JSON.parse(line));
    const incoming = logged.find((l) => l.msg === 'incoming request');
    expect(incoming).toMatchObject({ requestId: ours, req: { clientRequestId: 'ATTACKER-REF-1', url: '/launch?%74oken=[redacted]' } });
    expect(logged.find((l) => l.msg === 'launch refused')).toMatchObject({ requestId: ours });
    expect(lines.join('')).not.toContain(secret.split('.')[2]);
  });

  it('refuses bidi-override, zero-width and control characters in an endpoint name, with a field error; nothing created', async () => {
    const app = await appWith();
    const { agent } = await signedIn(app, em, acme, 'admin');
    const count = async () =>
      (await em.fork().execute<{ n: number }[]>('select count(*)::int as n from endpoint where enterprise_id = ?', [acme.id]))[0].n;
    const before = await count();
    for (const ch of [
      '\u202E',
      '\u202A',
      '\u2066',
      '\u2069',
      '\u200B',
      '\u200D',
      '\u200F',
      '\u2060',
      '\uFEFF',
      '\u0007',
      '\u001b',
      '\t',
      '\u0085',
    ]) {
      const form = await agent.get('/endpoints/new');
      const token = hidden(form.text, '_csrf');
      const key = hidden(form.text, 'key');
      const res = await agent
        .post('/endpoints')
        .type('form')
        .send({ _csrf: token, key, name: `Meter${ch}exe.gnp` });
      expect(res.status, `U+${ch.codePointAt(0)!.toString(16)}`).toBe(422);
      const refused = page(res.text);
      expect(refused.errors()).toEqual([
        { message: expect.stringContaining('Name must not contain invisible or text-direction characters'), href: '#name' },
      ]);
      expect(refused.field('Name')).toMatchObject({ error: refused.errors()[0].message, invalid: true });
    }
    expect(await count()).toBe(before);
  });
});
