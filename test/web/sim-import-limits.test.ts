// Imports do not starve everyone (issue 12, item 10), over HTTP with real concurrent uploads: a process runs
// at most IMPORT_CONCURRENCY imports (the next gets 429 and the form saying why, before its upload is read),
// one per enterprise on any instance (429), while /readyz and other enterprises' pages answer at once; refused
// files leave an audit event shown in History, and 20 refusals an hour pause the enterprise's imports (429).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { buildTestApp } from '../helpers/app.js';
import { hidden, injectSignIn, PASSWORD } from '../helpers/session.js';
import { page } from '../helpers/page.js';
import { createEnterprise, createUser, type TestEnterprise } from '../factories/index.js';
import { hashPassword } from '../../src/domain/passwords.js';
import { eidFor, iccidFor, imsiFor, msisdnFor } from '../../src/db/generate-identifiers.js';
import { REFUSAL_LIMIT, importLockKeys } from '../../src/domain/sim-import.js';
import { findViolations } from '../../src/domain/invariants.js';

let db: TestDatabase;
let app: FastifyInstance;
let base: string;
let em: EntityManager;
let hash: string;

const SERIES = 68;
let serial = 0;
const simLine = () => {
  serial++;
  return `${iccidFor(SERIES, serial)},${imsiFor(SERIES, serial)},${eidFor(SERIES, serial)},${msisdnFor(SERIES, serial)}\n`;
};
const HEADER = 'iccid,imsi,eid,msisdn\n';

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildTestApp(db, { rateLimits: true, importConcurrency: 2 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  em = db.orm.em.fork();
  hash = await hashPassword(PASSWORD);
});
afterAll(async () => {
  expect(await findViolations(db.orm.em.fork())).toEqual([]);
  await app.close();
  await db.close();
});

interface Admin {
  enterprise: TestEnterprise;
  cookie: string;
  csrf: string;
}

/** An admin of `enterprise` signed in on `instance`: the session cookie and the CSRF token of the import form. */
async function admin(enterprise: TestEnterprise, instance: FastifyInstance = app): Promise<Admin> {
  const user = await createUser(em, enterprise, 'admin', hash);
  const { res, cookie } = await injectSignIn(instance, user.email, {
    remoteAddress: `10.9.${serial % 250}.${Math.floor(Math.random() * 250) + 1}`,
  });
  expect(res.statusCode).toBe(303);
  const page = await instance.inject({ url: '/sims/import', headers: { cookie } });
  return { enterprise, cookie, csrf: hidden(page.body, '_csrf') };
}

function multipart(content: string) {
  const boundary = `----simlink${randomBytes(8).toString('hex')}`;
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    head: `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="sims.csv"\r\nContent-Type: text/csv\r\n\r\n${content}`,
    tail: `\r\n--${boundary}--\r\n`,
  };
}

/** A whole upload, at once. */
async function upload(who: Admin, content: string, instance: FastifyInstance = app) {
  const body = multipart(content);
  return instance.inject({
    method: 'POST',
    url: `/sims/import?_csrf=${encodeURIComponent(who.csrf)}`,
    headers: { cookie: who.cookie, 'content-type': body.contentType },
    payload: body.head + body.tail,
  });
}

/** An upload over a real connection that stops after its first lines until finish() sends the rest. */
function slowUpload(who: Admin, first: string, rest: string) {
  const body = multipart(first);
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  void writer.write(encoder.encode(body.head));
  const response = fetch(`${base}/sims/import?_csrf=${encodeURIComponent(who.csrf)}`, {
    method: 'POST',
    body: readable,
    redirect: 'manual',
    headers: { cookie: who.cookie, 'content-type': body.contentType },
    duplex: 'half',
  } as RequestInit);
  return {
    async finish() {
      await writer.write(encoder.encode(rest + body.tail));
      await writer.close();
      return response;
    },
  };
}

async function until(check: () => Promise<boolean>) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const importRunning = async (enterprise: TestEnterprise) => {
  const [namespace, key] = importLockKeys(enterprise.id);
  const [{ n }] = await db.orm.em
    .fork()
    .execute<{ n: number }[]>(
      `select count(*)::int as n from pg_locks where locktype = 'advisory' and classid = ? and objid = ? and objsubid = 2 and granted`,
      [namespace, key],
    );
  return n === 1;
};
const simsOf = async (enterprise: TestEnterprise) =>
  (await db.orm.em.fork().execute<{ n: number }[]>('select count(*)::int as n from sim where enterprise_id = ?', [enterprise.id]))[0].n;

function expectBusyPage(res: { statusCode: number; headers: Record<string, unknown>; body: string }, message: string) {
  expect(res.statusCode).toBe(429);
  expect(res.headers['retry-after']).toBe('60');
  const shown = page(res.body);
  expect(shown.title).toBe('Error: Import SIMs – SIM Link');
  expect(shown.headings).toContain('There is a problem');
  expect(
    shown
      .errors()
      .map((e) => e.message)
      .join(' '),
  ).toContain(message);
}

describe('concurrent imports', () => {
  it(`a process runs at most IMPORT_CONCURRENCY (2) imports; the next gets 429 at once, while /readyz and other pages answer`, async () => {
    const [acme, globex, initech] = await Promise.all(['Acme', 'Globex', 'Initech'].map((name) => createEnterprise(em, name)));
    const [acmeAdmin, globexAdmin, initechAdmin] = [await admin(acme), await admin(globex), await admin(initech)];
    const fifty = () => Array.from({ length: 50 }, simLine).join('');
    const a = slowUpload(acmeAdmin, HEADER + simLine(), fifty());
    const g = slowUpload(globexAdmin, HEADER + simLine(), fifty());
    await until(async () => (await importRunning(acme)) && (await importRunning(globex)));

    const started = Date.now();
    // Over a real connection, with a file of 1 MB: refused before its upload is read, and the answer arrives.
    const big = multipart(HEADER + simLine().padEnd(1024 * 1024, '\n'));
    const refused = await fetch(`${base}/sims/import?_csrf=${encodeURIComponent(initechAdmin.csrf)}`, {
      method: 'POST',
      body: big.head + big.tail,
      redirect: 'manual',
      headers: { cookie: initechAdmin.cookie, 'content-type': big.contentType },
    });
    expectBusyPage(
      { statusCode: refused.status, headers: { 'retry-after': refused.headers.get('retry-after') }, body: await refused.text() },
      'SIM Link is busy importing other files. Try again in a minute.',
    );
    expect(await simsOf(initech)).toBe(0);
    // The pool is not taken: readiness and another enterprise's pages answer at once.
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    const page = await app.inject({ url: '/sims', headers: { cookie: initechAdmin.cookie } });
    expect(page.statusCode).toBe(200);
    expect(Date.now() - started).toBeLessThan(2_000);

    // A finished import gives its slot back.
    const done = await g.finish();
    expect(done.status).toBe(303);
    expect(await simsOf(globex)).toBe(51);
    const res = await upload(initechAdmin, HEADER + simLine());
    expect(res.statusCode).toBe(303);
    expect(await simsOf(initech)).toBe(1);

    expect((await a.finish()).status).toBe(303);
    expect(await simsOf(acme)).toBe(51);
  });

  it('an upload stalled before its file begins holds no import slot', async () => {
    const [a, b, c] = await Promise.all(['Stalled A', 'Stalled B', 'Wayne'].map((name) => createEnterprise(em, name)));
    // Two clients send the start of a multipart body, but not the file part's headers, and wait.
    const stalled = await Promise.all(
      [a, b].map(async (enterprise) => {
        const who = await admin(enterprise);
        const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
        const writer = writable.getWriter();
        void writer.write(new TextEncoder().encode('--stalled-boundary\r\n'));
        const response = fetch(`${base}/sims/import?_csrf=${encodeURIComponent(who.csrf)}`, {
          method: 'POST',
          body: readable,
          redirect: 'manual',
          duplex: 'half',
          headers: { cookie: who.cookie, 'content-type': 'multipart/form-data; boundary=stalled-boundary' },
        } as RequestInit);
        return { writer, response };
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    // With IMPORT_CONCURRENCY=2, an import still runs.
    const res = await upload(await admin(c), HEADER + simLine());
    expect(res.statusCode).toBe(303);
    expect(await simsOf(c)).toBe(1);
    // The bodies end without a file: unreadable (400), nothing imported.
    await Promise.all(stalled.map(({ writer }) => writer.close()));
    expect((await Promise.all(stalled.map(({ response }) => response))).map((r) => r.status)).toEqual([400, 400]);
    expect((await simsOf(a)) + (await simsOf(b))).toBe(0);
  });

  it('one import per enterprise, on any instance: the second gets 429 and the form saying an import is already running', async () => {
    const hooli = await createEnterprise(em, 'Hooli');
    const first = await admin(hooli);
    const second = await admin(hooli);
    const running = slowUpload(first, HEADER + simLine(), simLine());
    await until(() => importRunning(hooli));

    const message = 'An import is already running for this enterprise. Try again in a minute, when it has finished.';
    expectBusyPage(await upload(second, HEADER + simLine()), message);
    // The same on another instance of SIM Link on the same database.
    const other = await buildTestApp(db, { importConcurrency: 2 });
    try {
      const elsewhere = await admin(hooli, other);
      expectBusyPage(await upload(elsewhere, HEADER + simLine(), other), message);
      // With htmx: the form partial, swapped in place (htmx swaps 4xx).
      const body = multipart(HEADER + simLine());
      const htmx = await other.inject({
        method: 'POST',
        url: `/sims/import?_csrf=${encodeURIComponent(elsewhere.csrf)}`,
        headers: { cookie: elsewhere.cookie, 'content-type': body.contentType, 'hx-request': 'true', 'hx-target': 'sims-import' },
        payload: body.head + body.tail,
      });
      expect(htmx.statusCode).toBe(429);
      expect(
        page(htmx.body)
          .errors()
          .map((e) => e.message)
          .join(' '),
      ).toContain(message);
      expect(page(htmx.body).isDocument).toBe(false);
      expect(page(htmx.body).root?.id).toBe('sims-import');
    } finally {
      await other.close();
    }
    expect(await simsOf(hooli)).toBe(0);

    expect((await running.finish()).status).toBe(303);
    expect(await simsOf(hooli)).toBe(2);
    expect((await upload(second, HEADER + simLine())).statusCode).toBe(303);
  });
});

describe('refused imports', () => {
  it(`leave an audit event shown in History with their counts; after ${REFUSAL_LIMIT.max} in an hour the enterprise's imports pause (429)`, async () => {
    const umbrella = await createEnterprise(em, 'Umbrella');
    const who = await admin(umbrella);
    const bad = () => `${HEADER}${simLine()}${simLine().replace(/^\d+/, '123')}`;
    for (let i = 0; i < REFUSAL_LIMIT.max; i++) {
      const res = await upload(who, bad());
      expect(res.statusCode).toBe(422);
    }
    const history = await app.inject({ url: '/events?action=sims.import_refused', headers: { cookie: who.cookie } });
    expect(history.statusCode).toBe(200);
    const what = page(history.body)
      .rows('History, newest first')
      .map((cells) => cells[1]);
    expect(what).toEqual(Array.from({ length: REFUSAL_LIMIT.max }, () => 'SIM import refused (1 problem in 2 SIMs)'));

    const res = await upload(who, HEADER + simLine());
    expect(res.statusCode).toBe(429);
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(res.body).toContain(
      `${REFUSAL_LIMIT.max} imports of this enterprise were refused in the last hour because their files had problems. To keep SIM identifiers from being probed, imports are paused: try again in 60 minutes.`,
    );
    expect(await simsOf(umbrella)).toBe(0);
    // Other enterprises import as usual.
    const other = await admin(await createEnterprise(em, 'Tyrell'));
    expect((await upload(other, HEADER + simLine())).statusCode).toBe(303);
  });
});
