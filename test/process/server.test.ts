// SIM Link as a process, the way people and process managers run it: the built server (and `npm start`) in
// child processes on the embedded PostgreSQL of a temporary DATA_DIR. One server per data directory; a
// SIGKILL loses nothing and the next start recovers on its own; SIGTERM/SIGINT stop everything; a start
// that cannot go on says why in one line and exits non-zero — before it touches the database.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import supertest from 'supertest';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../e2e/support/app-server.js';
import { hidden } from '../helpers/session.js';
import { iccidFor, imsiFor } from '../../src/db/generate-identifiers.js';
import { buildIfNeeded, ready, removeTempDirs, run, signIn, stopChildren, tempDir, type Run } from './app-process.js';
import pg from 'pg';
import { runningEmbeddedUrl } from '../../src/db/embedded-postgres.js';

/** The start failed: exit code ≠ 0 and exactly one line on stderr-or-stdout starting "SIM Link cannot start:". */
async function refused(app: Run): Promise<string> {
  const code = await app.exited;
  expect(code).not.toBe(0);
  const lines = app
    .output()
    .trim()
    .split('\n')
    .filter((line) => !line.startsWith('{'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^SIM Link cannot start: /);
  expect(app.output()).not.toMatch(/\n\s+at /); // no stack trace
  return lines[0];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function postmasterPid(dataDir: string): number | undefined {
  const file = join(dataDir, 'postgres', 'postmaster.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : undefined;
}

async function stopped(app: Run, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  app.child.kill(signal);
  return app.exited;
}

/** Signs in as the demo admin and creates an endpoint through the form; returns the session's cookie. */
async function createEndpoint(url: string, name: string): Promise<string> {
  const cookie = await signIn(url);
  const form = await supertest(url).get('/endpoints/new').set('Cookie', cookie);
  const created = await supertest(url)
    .post('/endpoints')
    .set('Cookie', cookie)
    .type('form')
    .send({ _csrf: hidden(form.text, '_csrf'), key: hidden(form.text, 'key'), name, imei: '' });
  expect(created.status).toBe(303);
  return cookie;
}

beforeAll(buildIfNeeded, 180_000);
afterEach(stopChildren);
afterAll(removeTempDirs);

describe('one server per data directory', () => {
  it('a second start on the same DATA_DIR refuses at once naming the first one’s pid; the first keeps serving', async () => {
    const dataDir = tempDir();
    const first = run({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    await ready(first);
    const second = run({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    const line = await refused(second);
    expect(line).toBe(
      `SIM Link cannot start: the data directory ${dataDir} is in use by SIM Link process ${first.child.pid}; stop it first, or set DATA_DIR to another directory.`,
    );
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    await createEndpoint(first.url, 'Written after the refusal');
  }, 90_000);
});

describe('a SIGKILL loses nothing', () => {
  it('the next start stops the orphaned PostgreSQL, starts afresh, and serves every row and session written before', async () => {
    const dataDir = tempDir();
    const first = run({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    await ready(first);
    const cookie = await createEndpoint(first.url, 'Survives a kill -9');
    const orphan = postmasterPid(dataDir)!;
    first.child.kill('SIGKILL');
    await first.exited;
    expect(alive(orphan)).toBe(true); // PostgreSQL outlives its app

    const port = await freePort();
    const second = run({ DATA_DIR: dataDir, PORT: String(port) });
    await ready(second);
    expect(alive(orphan)).toBe(false);
    expect(postmasterPid(dataDir)).not.toBe(orphan);
    expect(second.output()).toMatch(/was left running .* stopping it/);
    // The same session cookie still signs in, and the endpoint is there.
    const page = await supertest(second.url).get('/endpoints?q=Survives').set('Cookie', cookie);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Survives a kill -9');
  }, 90_000);
});

describe('webhooks survive a SIGKILL', () => {
  it('a change committed before the app was killed is delivered, signed, by the next start', async () => {
    const received: { headers: Record<string, string>; body: string }[] = [];
    const receiver = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers as Record<string, string>, body });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks`;
      const dataDir = tempDir();
      // The first instance does not deliver: the message can only reach the receiver through the next start.
      const env = { DATA_DIR: dataDir, WEBHOOK_ALLOW_PRIVATE: 'true' };
      const first = run({ ...env, WEBHOOK_DELIVERY: 'false', PORT: String(await freePort()) });
      await ready(first);
      const cookie = await signIn(first.url);
      const page = await supertest(first.url).get('/settings/webhooks').set('Cookie', cookie);
      const added = await supertest(first.url)
        .post('/settings/webhooks')
        .set('Cookie', cookie)
        .type('form')
        .send({ _csrf: hidden(page.text, '_csrf'), url: hookUrl, event_types: 'endpoint.created' });
      expect(added.status).toBe(200);
      const secret = /value="(whsec_[^"]+)"/.exec(added.text)![1];
      await createEndpoint(first.url, 'Told after a kill -9');
      first.child.kill('SIGKILL');
      await first.exited;
      expect(received).toHaveLength(0);

      const second = run({ ...env, PORT: String(await freePort()) });
      await ready(second);
      const deadline = Date.now() + 20_000;
      while (!received.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(received).toHaveLength(1);
      const event = new Webhook(secret).verify(received[0].body, received[0].headers) as { type: string; data: { endpoint_name: string } };
      expect(event).toMatchObject({ type: 'endpoint.created', data: { endpoint_name: 'Told after a kill -9' } });
    } finally {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  }, 120_000);
});

describe('a bulk job survives a SIGKILL', () => {
  it('an app killed halfway through a job: the next start finishes it, every row done exactly once', async () => {
    const ROWS = 2000;
    const dataDir = tempDir();
    const first = run({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    await ready(first);
    // ROWS endpoints on Hold and ROWS Ready to Activate SIMs in acme, written straight into its database.
    const db = new pg.Client({ connectionString: runningEmbeddedUrl(dataDir) });
    await db.connect();
    let endpointIds: number[];
    let csv: string;
    try {
      const {
        rows: [acme],
      } = await db.query<{ id: number }>(`select id from enterprise where slug = 'acme'`);
      const endpoints = await db.query<{ id: number }>(
        `insert into endpoint (enterprise_id, name, activate_immediately) select $1, 'Killed meter ' || n, false from generate_series(1, $2::int) n returning id`,
        [acme.id, ROWS],
      );
      endpointIds = endpoints.rows.map((r) => r.id).sort((a, b) => a - b);
      const sims = Array.from({ length: ROWS }, (_, i) => [iccidFor(56, i + 1), imsiFor(56, i + 1)]);
      await db.query(`insert into sim (enterprise_id, iccid, imsi) select $1, s->>0, s->>1 from json_array_elements($2::json) s`, [
        acme.id,
        JSON.stringify(sims),
      ]);
      csv = ['endpoint_id,action,iccid', ...endpointIds.map((id, i) => `${id},link,${sims[i][0]}`)].join('\n');
    } finally {
      await db.end();
    }

    // Upload → preview → Apply → Yes, as an admin does.
    const cookie = await signIn(first.url);
    const page = await supertest(first.url).get('/bulk').set('Cookie', cookie);
    const action = /action="(\/bulk\?_csrf=[^"]*)"/.exec(page.text)![1].replace(/&amp;/g, '&');
    const preview = await supertest(first.url).post(action).set('Cookie', cookie).attach('file', Buffer.from(csv), 'killed.csv');
    expect(preview.status).toBe(200);
    const jobId = Number(/\/bulk\/(\d+)\/apply/.exec(preview.text)![1]);
    const confirm = await supertest(first.url).get(`/bulk/${jobId}/apply`).set('Cookie', cookie);
    const yes = await supertest(first.url)
      .post(`/bulk/${jobId}/apply`)
      .set('Cookie', cookie)
      .type('form')
      .send({ _csrf: hidden(confirm.text, '_csrf') });
    expect(yes.status).toBe(303);

    // Killed once a part of the rows is done.
    const progress = async (url: string) => {
      const res = await supertest(url).get(`/bulk/${jobId}`).set('Cookie', cookie);
      const bar = /<progress id="job-progress-bar" max="(\d+)" value="(\d+)"/.exec(res.text)!;
      return { total: Number(bar[1]), finished: Number(bar[2]), text: res.text };
    };
    let before = 0;
    for (let i = 0; i < 1200 && before < ROWS / 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      before = (await progress(first.url)).finished;
    }
    first.child.kill('SIGKILL');
    await first.exited;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(ROWS);

    const second = run({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    await ready(second);
    let after = await progress(second.url);
    for (let i = 0; i < 1800 && after.finished < ROWS; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await progress(second.url);
    }
    expect(after).toMatchObject({ total: ROWS, finished: ROWS });

    // Every row once: its outcome, one sim.linked event (source bulk) per endpoint, the job's counts, one bulk.completed.
    const check = new pg.Client({ connectionString: runningEmbeddedUrl(dataDir) });
    await check.connect();
    try {
      for (let i = 0; i < 100; i++) {
        const { rows } = await check.query<{ state: string }>('select state from bulk_job where id = $1', [jobId]);
        if (rows[0].state === 'done') break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const { rows: jobs } = await check.query('select state, total, done, failed from bulk_job where id = $1', [jobId]);
      expect(jobs).toEqual([{ state: 'done', total: ROWS, done: ROWS, failed: 0 }]);
      const { rows: outcomes } = await check.query(
        'select outcome, count(*)::int as n from bulk_job_row where job_id = $1 group by outcome',
        [jobId],
      );
      expect(outcomes).toEqual([{ outcome: 'done', n: ROWS }]);
      const { rows: events } = await check.query<{ endpoint_id: number; n: number }>(
        `select endpoint_id, count(*)::int as n from event where action = 'sim.linked' and source = 'bulk' and request_id = $1 group by endpoint_id order by endpoint_id`,
        [`bulk-${jobId}`],
      );
      expect(events.map((e) => e.endpoint_id)).toEqual(endpointIds);
      expect(events.every((e) => e.n === 1)).toBe(true);
      const { rows: linked } = await check.query(
        `select count(*)::int as n from endpoint e join sim s on s.endpoint_id = e.id and e.sim_id = s.id where e.id = any($1::int[]) and e.status = 'pre_active' and s.status = 'pre_active'`,
        [endpointIds],
      );
      expect(linked).toEqual([{ n: ROWS }]);
      const { rows: completed } = await check.query(
        `select count(*)::int as n from event where action = 'bulk.completed' and request_id = $1`,
        [`bulk-${jobId}`],
      );
      expect(completed).toEqual([{ n: 1 }]);
    } finally {
      await check.end();
    }
    // The page as it is now the job is done (the last rows' outcomes are written a moment before the job ends).
    expect((await progress(second.url)).text).toContain('Download the results (CSV)');
  }, 240_000);
});

describe('stopping', () => {
  it('SIGTERM to `npm start` stops the server (exit 0) and its PostgreSQL; nothing is left running', async () => {
    const dataDir = tempDir();
    const app = run({ DATA_DIR: dataDir, PORT: String(await freePort()) }, 'npm');
    await ready(app);
    const postmaster = postmasterPid(dataDir)!;
    const server = readFileSync(join(dataDir, 'simlink.pid'), 'utf8').trim();
    expect(alive(postmaster)).toBe(true);
    await stopped(app, 'SIGTERM');
    // npm hands its place to the server (exec): the signal reached the server itself, which drained and exited 0.
    expect(app.child.exitCode).toBe(0);
    expect(app.output()).toContain('"msg":"stopped"');
    expect(alive(Number(server))).toBe(false);
    expect(alive(postmaster)).toBe(false);
    expect(existsSync(join(dataDir, 'simlink.pid'))).toBe(false);
    await expect(fetch(`${app.url}/readyz`)).rejects.toThrow();
  }, 90_000);

  it('a request in flight when SIGTERM arrives is finished (an import whose upload is still coming), then the server exits 0', async () => {
    const dataDir = tempDir();
    const app = run({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    await ready(app);
    const cookie = await signIn(app.url);
    const page = await supertest(app.url).get('/sims/import').set('Cookie', cookie);
    const action = /action="(\/sims\/import[^"]*)"/.exec(page.text)![1].replace(/&amp;/g, '&');
    const rows = Array.from({ length: 200 }, (_, i) => `${iccidFor(77, i + 1)},${imsiFor(77, i + 1)}`);
    const boundary = 'in-flight-boundary';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="sims.csv"\r\nContent-Type: text/csv\r\n\r\niccid,imsi\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const half = rows.slice(0, 100).join('\r\n') + '\r\n';
    const rest = rows.slice(100).join('\r\n');
    const body = Buffer.from(head + half + rest + tail);
    const status = new Promise<number>((resolve, reject) => {
      const req = request(
        `${app.url}${action}`,
        {
          method: 'POST',
          headers: { cookie, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length, origin: app.url },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => {
            if (res.statusCode !== 303) console.log(text.slice(0, 3000));
            resolve(res.statusCode!);
          });
        },
      );
      req.on('error', reject);
      req.write(head + half);
      // The upload is half sent: now the process manager stops the server; the rest of the file follows.
      setTimeout(() => {
        app.child.kill('SIGTERM');
        setTimeout(() => req.end(rest + tail), 500);
      }, 300);
    });
    expect(await status).toBe(303); // imported, on to /sims
    expect(await app.exited).toBe(0);

    const again = run({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    await ready(again);
    const sims = await supertest(again.url)
      .get(`/sims?q=${iccidFor(77, 200).slice(0, 19)}`)
      .set('Cookie', await signIn(again.url));
    expect(sims.text).toContain(iccidFor(77, 200));
  }, 90_000);

  it('SIGINT (Ctrl-C) does the same', async () => {
    const dataDir = tempDir();
    const app = run({ DATA_DIR: dataDir, PORT: String(await freePort()) });
    await ready(app);
    const postmaster = postmasterPid(dataDir)!;
    expect(await stopped(app, 'SIGINT')).toBe(0);
    expect(alive(postmaster)).toBe(false);
  }, 90_000);
});

describe('a start that cannot go on says why in one line', () => {
  let busy: Server;
  let busyPort: number;
  beforeAll(async () => {
    busy = createServer();
    busyPort = await new Promise<number>((resolve) =>
      busy.listen(0, '127.0.0.1', () => resolve((busy.address() as { port: number }).port)),
    );
  });
  afterAll(() => new Promise<void>((resolve) => busy.close(() => resolve())));

  it('port in use: refused before the database is created, opened or migrated', async () => {
    const dataDir = tempDir();
    const line = await refused(run({ DATA_DIR: dataDir, PORT: String(busyPort) }));
    expect(line).toBe(`SIM Link cannot start: port ${busyPort} is in use on 127.0.0.1; stop what uses it or set PORT to another port.`);
    expect(existsSync(join(dataDir, 'postgres'))).toBe(false);
  }, 30_000);

  it('DATA_DIR on a virtual file system (/proc) is refused at once', async () => {
    const started = Date.now();
    const line = await refused(run({ DATA_DIR: '/proc/self/simlink', PORT: String(await freePort()) }));
    expect(line).toMatch(/DATA_DIR \/proc\/self\/simlink is on a virtual file system/);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('DATA_DIR that is a file, or not writable, is refused', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    expect(await refused(run({ DATA_DIR: file, PORT: String(await freePort()) }))).toMatch(/DATA_DIR .* is not a directory/);
    expect(await refused(run({ DATA_DIR: join(file, 'below'), PORT: String(await freePort()) }))).toMatch(/DATA_DIR .* is not a directory/);
  }, 30_000);

  it('a DATABASE_URL whose server does not answer, or a bad setting', async () => {
    const closedPort = await freePort();
    const dataDir = tempDir();
    expect(
      await refused(
        run({ DATA_DIR: dataDir, PORT: String(await freePort()), DATABASE_URL: `postgresql://postgres@127.0.0.1:${closedPort}/simlink` }),
      ),
    ).toMatch(/the PostgreSQL server of DATABASE_URL cannot be reached \(ECONNREFUSED/);
    expect(await refused(run({ DATA_DIR: dataDir, PORT: 'eighty' }))).toBe(
      'SIM Link cannot start: PORT must be a whole number from 0 to 65535; got "eighty".',
    );
    expect(await refused(run({ DATA_DIR: dataDir, PORT: String(await freePort()), DATABASE_URL: 'mysql://x' }))).toMatch(
      /DATABASE_URL must start with postgres:\/\/ or postgresql:\/\//,
    );
  }, 30_000);
});
