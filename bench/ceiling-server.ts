// The ceilings the app is measured against, in one small process the bench starts:
//   GET /static  (a) bare Fastify returning a constant 5 KB HTML page;
//   GET /picker  (b) bare Fastify + pg + Eta: the app's own picker query (src/domain/queries/picker.ts,
//                run on a plain pg pool — no ORM, no session, no plugins) rendered with the app's own
//                picker templates, the same partial the app picks for the same htmx headers.
// Argument: JSON { port, databaseUrl, enterpriseId, poolSize }.
import Fastify from 'fastify';
import pg from 'pg';
import { Eta } from 'eta';
import type { EntityManager } from '@mikro-orm/postgresql';
import { pickerPage } from '../src/domain/queries/picker.js';
import { iccidCursor } from '../src/domain/queries/paging.js';
import { viewHelpers } from '../src/web/plugins/render.js';
import { viewsDir } from '../src/paths.js';
import { CEILING_DB_NAME } from './cpu.js';

interface CeilingOptions {
  port: number;
  databaseUrl: string;
  enterpriseId: number;
  poolSize: number;
}

const options = JSON.parse(process.argv[2]) as CeilingOptions;

/** About 5 KB of ordinary HTML: a page header, a table of 40 rows, a footer. */
export function staticPage(): string {
  const rows = Array.from(
    { length: 40 },
    (_, i) =>
      `<tr><td>Endpoint ${String(i + 1).padStart(3, '0')}</td><td>Active</td><td class="mono">8944770000000${String(i).padStart(5, '0')}1</td></tr>`,
  ).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Endpoints – SIM Link</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/public/app.css"></head>
<body><header class="header"><a href="/endpoints">SIM Link</a><nav><a href="/endpoints">Endpoints</a> <a href="/sims">SIMs</a></nav></header>
<main id="main"><h1>Endpoints</h1><table class="table"><thead><tr><th>Name</th><th>Status</th><th>ICCID</th></tr></thead><tbody>
${rows}
</tbody></table></main><footer class="footer">SIM Link</footer></body></html>
`;
}
const STATIC = staticPage();

const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize, application_name: CEILING_DB_NAME });
// The query module only calls em.execute(sql, params) with `?` placeholders: a plain pg pool stands in.
const em = {
  execute: async (sql: string, params: unknown[] = []) => {
    let n = 0;
    const result = await pool.query(
      sql.replace(/\?/g, () => `$${++n}`),
      params,
    );
    return result.rows;
  },
} as unknown as EntityManager;

const eta = new Eta({ views: viewsDir, cache: true, autoEscape: true, autoTrim: [false, 'nl'] });
const endpoint = { id: 0, name: 'Bulk endpoint 1' };
const target = {
  base: '/endpoints/0/sim/new',
  choose: '/endpoints/0/sim/confirm',
  cancel: '/endpoints/0',
  carry: {},
  endpoint,
  mode: 'link',
};

const app = Fastify({ logger: false });
app.get('/static', async (_request, reply) => reply.type('text/html; charset=utf-8').send(STATIC));
app.get('/picker', async (request, reply) => {
  const query = request.query as Record<string, unknown>;
  const q = typeof query.q === 'string' ? query.q.slice(0, 64) : '';
  const page = await pickerPage(em, options.enterpriseId, { q, after: iccidCursor(query.after), before: iccidCursor(query.before) });
  const partial = request.headers['hx-target'] === 'picker-results' ? 'sim-link/_picker-results' : 'sim-link/_picker';
  const html = await eta.renderAsync(partial, { h: viewHelpers, csrfToken: '', target, page, q, title: 'Select SIM to attach' });
  return reply.type('text/html; charset=utf-8').send(html);
});
app.get('/healthz', async () => 'ok');

await app.listen({ port: options.port, host: '127.0.0.1' });
const stop = async () => {
  await app.close();
  await pool.end();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
