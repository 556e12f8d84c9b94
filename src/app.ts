// Builds the Fastify instance: plugins first, then the routes of each screen (the composition root).
import { answerClientError } from './api/problems.js';
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import formbody from '@fastify/formbody';
import staticFiles from '@fastify/static';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from './config.js';
import { htmxDir, publicDir } from './paths.js';
import { ormPlugin } from './web/plugins/orm.js';
import { renderPlugin } from './web/plugins/render.js';
import { errorsPlugin } from './web/plugins/errors.js';
import { sessionPlugin } from './web/plugins/session.js';
import { backgroundPlugin } from './web/plugins/background.js';
import { housekeepingPlugin } from './web/plugins/housekeeping.js';
import { accessPlugin } from './web/plugins/access.js';
import { contentSecurityDirectives, PERMISSIONS_POLICY, securityPlugin } from './web/plugins/security.js';
import { rateLimitsPlugin } from './web/plugins/rate-limits.js';
import { launchRoutes } from './web/launch.routes.js';
import { healthRoutes } from './web/health.routes.js';
import { authRoutes } from './web/auth.routes.js';
import { endpointsRoutes } from './web/endpoints.routes.js';
import { simLinkRoutes } from './web/sim-link.routes.js';
import { lifecycleRoutes } from './web/lifecycle.routes.js';
import { eventsRoutes } from './web/events.routes.js';
import { simsRoutes } from './web/sims.routes.js';
import { bulkRoutes } from './web/bulk.routes.js';
import { webhooksRoutes } from './web/webhooks.routes.js';
import { apiTokensRoutes } from './web/api-tokens.routes.js';
import { apiPlugin } from './api/plugin.js';

export interface BuildOptions {
  orm: MikroORM;
  config: Config;
  /** Pino logger options, or false (tests). */
  logger?: boolean | Record<string, unknown>;
}

/** What a request id from a load balancer looks like; anything else is not logged. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;
const SECRET_PARAMETERS = new Set(['token', '_csrf']);

/**
 * The address as it is logged: a launch token is single-use but never belongs in a log, nor does a CSRF
 * token. A parameter is recognised by its decoded name, as the route reads it (`%74oken=` is `token=`);
 * a name that cannot be decoded has its value redacted too.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start === -1) return url;
  const pairs = url
    .slice(start + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const rawName = equals === -1 ? pair : pair.slice(0, equals);
      let name: string | null;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' ')).toLowerCase();
      } catch {
        name = null;
      }
      return equals !== -1 && (name === null || SECRET_PARAMETERS.has(name)) ? `${rawName}=[redacted]` : pair;
    });
  return `${url.slice(0, start + 1)}${pairs.join('&')}`;
}

function logRequest(request: FastifyRequest) {
  // A client's X-Request-Id is kept for correlation as a field of its own; the request's id (in every log
  // line, on error pages and in the audit trail) is always one SIM Link made, so no client can choose it.
  const given = request.headers['x-request-id'];
  const clientRequestId = typeof given === 'string' && REQUEST_ID.test(given) ? given : undefined;
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    ...(clientRequestId ? { clientRequestId } : {}),
  };
}

/** Whether any key or string in a parsed body holds a NUL; iterative, so no nesting can overflow the stack. */
function containsNul(body: unknown): boolean {
  const pending: unknown[] = [body];
  while (pending.length) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.includes('\0')) return true;
    } else if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value)) {
      for (const [key, item] of Object.entries(value)) {
        if (key.includes('\0')) return true;
        pending.push(item);
      }
    }
  }
  return false;
}

/**
 * TRUST_PROXY for Fastify. Addresses go as they are. A hop count goes as a function: Fastify 5.12 turns a
 * plain number into "trust nothing" (it cannot tell a proxy from a direct client by counting), which would
 * ignore the proxy's X-Forwarded-For/-Proto altogether. With N hops, the N nearest entries are proxies.
 */
function trustProxyOption(trust: Config['trustProxy']) {
  return typeof trust === 'number' ? (_address: string, hop: number) => hop < trust : trust;
}

/**
 * An address the router cannot even read (a part of it too long, or percent-encoding that decodes to nothing):
 * answered before any route, hook or plugin runs, so this answer carries its own security headers, is logged,
 * and never echoes the address — a page for people, problem+json under /api.
 */
/** The app's Content-Security-Policy as a header value (what helmet sends for every other answer). */
const cspHeader = (config: Config) =>
  Object.entries(contentSecurityDirectives(config))
    .map(([name, values]) => [name, ...values].join(' '))
    .join('; ');

const unroutable =
  (config: Config) =>
  (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
    const status = tooLong ? 404 : 400;
    const message = tooLong
      ? 'There is nothing at this address. Check it, or go back to the endpoints.'
      : 'This address could not be read: part of it is damaged. Check it, or go back to the endpoints.';
    request.log.info({ code: error.code }, 'unroutable address');
    reply
      .code(status)
      .header('Content-Security-Policy', cspHeader(config))
      .header('Permissions-Policy', PERMISSIONS_POLICY)
      .header('X-Content-Type-Options', 'nosniff')
      .header('Referrer-Policy', 'no-referrer')
      .header('Cache-Control', 'no-store')
      .header('X-Request-Id', request.id);
    if (!config.crmOrigins.length) reply.header('X-Frame-Options', 'SAMEORIGIN');
    if (request.url.startsWith('/api/')) {
      const title = tooLong ? 'Not found' : 'The request could not be understood';
      const kind = tooLong ? 'not-found' : 'bad-request';
      void reply
        .type('application/problem+json')
        .send(JSON.stringify({ type: `urn:sim-link:problem:${kind}`, title, status, detail: message }));
      return;
    }
    const title = tooLong ? 'Page not found' : 'The request could not be understood';
    void reply
      .type('text/html; charset=utf-8')
      .send(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title} – SIM Link</title></head>` +
          `<body><main><h1>${title}</h1><p>${message}</p><p><a href="/endpoints">Go to the endpoints</a></p></main></body></html>`,
      );
  };

export async function buildApp({ orm, config, logger = false }: BuildOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger:
      typeof logger === 'object' ? { ...logger, serializers: { req: logRequest, ...(logger.serializers as object | undefined) } } : logger,
    trustProxy: trustProxyOption(config.trustProxy),
    // Always SIM Link's own: it is the reference error pages give and events record (see logRequest).
    genReqId: () => randomUUID(),
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    // An id in an address is at most 20 digits; anything up to this length reaches its route, whose schema
    // answers it like any address that does not exist. Longer, or an address that cannot be decoded: below.
    maxParamLength: 500,
    frameworkErrors: unroutable(config),
    // A request Node cannot read (e.g. headers over its 16 KB: 431): problem+json under /api.
    clientErrorHandler: answerClientError,
  });
  app.decorate('config', config);
  // A route accepts exactly the bodies its forms send: URL-encoded forms everywhere (formbody, below) and
  // multipart only where a file is uploaded (the routes that register @fastify/multipart). Fastify's own
  // JSON and text parsers go, so anything else is 415 before a byte of it is parsed — e.g. deeply nested
  // JSON. A JSON API registers its JSON parser in its own encapsulated plugin.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  // PostgreSQL cannot store a NUL character; refuse it up front (400) rather than fail in the driver (500).
  app.addHook('preValidation', async (request) => {
    if (request.raw.url?.toLowerCase().includes('%00') || containsNul(request.body)) {
      throw Object.assign(new Error('The request contains a NUL character, which no field can hold.'), { statusCode: 400 });
    }
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
  });

  await app.register(ormPlugin, { orm });
  await app.register(formbody, { bodyLimit: 64 * 1024 });
  await app.register(staticFiles, { root: publicDir, prefix: '/public/', index: false, maxAge: '1h' });
  // htmx is served by the app (never a CDN), straight from the pinned package: no build step needed.
  app.get('/public/vendor/htmx.min.js', { config: { public: true } }, (request, reply) =>
    reply.sendFile('htmx.min.js', htmxDir, { maxAge: '1h' }),
  );
  // Templates are compiled once and cached, except under `npm run dev` (NODE_ENV=development).
  await app.register(renderPlugin, { production: process.env.NODE_ENV !== 'development' });
  await app.register(errorsPlugin);
  await app.register(securityPlugin, { config });
  await app.register(sessionPlugin, { orm, config });
  await app.register(housekeepingPlugin, { orm });
  await app.register(rateLimitsPlugin, { config });
  await app.register(accessPlugin);
  await app.register(backgroundPlugin, { orm, config });

  await app.register(healthRoutes);
  await app.register(authRoutes);
  await app.register(launchRoutes);
  await app.register(endpointsRoutes);
  await app.register(simLinkRoutes);
  await app.register(lifecycleRoutes);
  await app.register(eventsRoutes);
  await app.register(simsRoutes);
  await app.register(apiTokensRoutes);
  await app.register(webhooksRoutes);
  await app.register(bulkRoutes);
  // The JSON API: encapsulated, with its own parser, auth and problem+json errors (src/api/).
  await app.register(apiPlugin, { prefix: '/api' });
  app.get('/', async (request, reply) => reply.seeOther('/endpoints'));

  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
  }
}
