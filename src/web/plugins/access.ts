// Who may reach what. Every route needs a signed-in user unless it says `config: { public: true }`;
// every state-changing request carries a valid CSRF token unless it says `config: { csrf: false }`;
// a viewer's state-changing request is refused (403) before any handler runs unless the route says
// `config: { viewerMayPost: true }` (sign-out); a page that only leads to a change says
// `config: { adminOnly: true }` and is refused to viewers too. The domain checks the role again.
// `app.accessRules` lists what is enforced on each route (the access tests walk every route with it).
// All of it runs in preValidation, before the route's schema: a signed-out person is sent to sign in and a
// forged form refused whatever they sent, and only then is the input checked (schemas.ts).
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../../domain/errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    public?: boolean;
    csrf?: boolean;
    viewerMayPost?: boolean;
    /** A page that leads only to a change (a picker, a confirmation, a form): viewers get 403 at once. */
    adminOnly?: boolean;
  }

  interface FastifyInstance {
    accessRules: AccessRule[];
  }
}

export interface AccessRule {
  method: string;
  url: string;
  public: boolean;
  csrf: boolean;
  viewerMayPost: boolean;
}

/** Methods that change nothing: no CSRF token, no viewer check, no rate limit on changes. */
export const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The JSON API (src/api/) keeps its own rules: bearer tokens, no session, no CSRF (SPEC §5). */
export const isApiPath = (url: string | undefined) => url === '/api' || Boolean(url?.startsWith('/api/'));

export const accessPlugin = fp(
  async (app) => {
    const rules: AccessRule[] = [];
    app.decorate('accessRules', rules);
    app.addHook('onRoute', (route) => {
      if (isApiPath(route.url)) return;
      const config = (route.config ?? {}) as { public?: boolean; csrf?: boolean; viewerMayPost?: boolean };
      for (const method of [route.method].flat()) {
        rules.push({
          method,
          url: route.url,
          public: Boolean(config.public),
          csrf: config.csrf !== false,
          viewerMayPost: Boolean(config.viewerMayPost),
        });
      }
    });

    app.addHook('preValidation', async (request: FastifyRequest, reply: FastifyReply) => {
      const routeConfig = request.routeOptions.config ?? {};
      if (request.url.startsWith('/public/') || isApiPath(request.routeOptions.url)) return;
      // No such route: the not-found page answers (404), signed in or not.
      if (request.is404) return;
      if (!routeConfig.public && !request.actor) {
        const next = SAFE.has(request.method) ? request.url : '';
        const target = `/sign-in${next && next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`;
        return reply.seeOther(target, 401);
      }
      if (routeConfig.adminOnly && request.actor?.role !== 'admin') throw new ForbiddenError();
      if (SAFE.has(request.method)) return;
      if (routeConfig.csrf !== false) {
        await new Promise<void>((resolve, reject) => {
          app.csrfProtection(request, reply, (error?: Error) => (error ? reject(error) : resolve()));
        });
      }
      if (request.actor?.role === 'viewer' && !routeConfig.viewerMayPost) throw new ForbiddenError();
    });
  },
  { name: 'access', dependencies: ['session'] },
);
