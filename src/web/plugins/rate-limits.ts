// Adds rate limits (@fastify/rate-limit; RATE_LIMITS=false turns them off): `app.limit(name, request, key)`
// for the routes that count per IP and per account (sign-in, launch), and a limit on state-changing
// requests per session. Over the limit → 429 with Retry-After and a page saying when to try again.
// The counters live in PostgreSQL (db/rate-limit-store.ts): all instances share them and a restart keeps
// them, so N instances do not mean N times the attempts.
import fp from 'fastify-plugin';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import { postgresRateLimitStore } from '../../db/rate-limit-store.js';
import { isApiPath, SAFE } from './access.js';

export const LIMITS = {
  /** Sign-in attempts from one address (a whole office may share one). */
  'sign-in:ip': { max: 30, windowMs: 60_000 },
  /** Sign-in attempts for one email address, from anywhere. */
  'sign-in:account': { max: 10, windowMs: 60_000 },
  /** CRM launches from one address (every CRM user behind the same NAT). */
  'launch:ip': { max: 60, windowMs: 60_000 },
  /** Launches of one user (counted only for tokens whose signature is valid). */
  'launch:account': { max: 10, windowMs: 60_000 },
  /** State-changing requests of one session (or one address, without a session). */
  'post:session': { max: 120, windowMs: 60_000 },
} as const;

export type LimitName = keyof typeof LIMITS;

export class TooManyRequestsError extends Error {
  readonly statusCode = 429;
  constructor(readonly retryAfterSeconds: number) {
    super(`Too many requests; retry in ${retryAfterSeconds} s`);
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Counts one request against the named limit for `key`; over it, sets Retry-After and throws a 429. */
    limit(name: LimitName, request: FastifyRequest, reply: FastifyReply, key: string): Promise<void>;
  }
}

/** The client's address as the limits count it (IPv6 by /64, like @fastify/rate-limit itself). */
export const clientKey = (request: FastifyRequest) => normalizeIP(request.ip);

export const rateLimitsPlugin = fp<{ config: Config }>(
  async (app, { config }) => {
    if (!config.rateLimits) {
      app.decorate('limit', async () => {});
      return;
    }
    // global: false — nothing is limited by the plugin's own hooks; each limit below is counted explicitly,
    // because the plugin's route hooks let only the first limiter of a request run.
    await app.register(rateLimit, {
      global: false,
      store: postgresRateLimitStore(app.orm, (error) => app.log.warn({ err: error }, 'could not prune the rate-limit counters')),
    });
    // The limits share one table of counters: each key starts with its limit's name. The key of the request
    // being counted is handed over through this map.
    const keys = new WeakMap<FastifyRequest, string>();
    const limiters = Object.fromEntries(
      Object.entries(LIMITS).map(([name, { max, windowMs }]) => [
        name,
        app.createRateLimit({ max, timeWindow: windowMs, keyGenerator: (request) => `${name}|${keys.get(request) ?? clientKey(request)}` }),
      ]),
    ) as Record<LimitName, ReturnType<typeof app.createRateLimit>>;

    app.decorate('limit', async (name: LimitName, request: FastifyRequest, reply: FastifyReply, key: string) => {
      keys.set(request, key);
      const result = await limiters[name](request);
      if (!result.isAllowed && result.isExceeded) {
        const retryAfter = Math.max(1, result.ttlInSeconds);
        request.log.warn({ limit: name, retryAfter }, 'rate limit exceeded');
        reply.header('Retry-After', String(retryAfter));
        throw new TooManyRequestsError(retryAfter);
      }
    });

    app.addHook('preValidation', async (request, reply) => {
      // The API counts per token (src/api/v1.routes.ts).
      if (SAFE.has(request.method) || request.is404 || isApiPath(request.routeOptions.url)) return;
      const sessionId = request.session?.userId ? request.session.sessionId : null;
      await app.limit('post:session', request, reply, sessionId ? `session:${sessionId}` : `ip:${clientKey(request)}`);
    });
  },
  { name: 'rate-limits', dependencies: ['orm', 'session'] },
);
