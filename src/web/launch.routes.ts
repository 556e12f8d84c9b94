// GET /launch?token=… — the CRM's iframe opens SIM Link with a launch token (see domain/launch.ts and the
// README's "Embed in your CRM"). Success: a new session (new id) for the token's user, marked embedded,
// whose cookie is SameSite=None; Secure; Partitioned, then 303 to the target so the token leaves the
// address bar and the history. Failure: a 401 page, no session, the reason in the log.
import type { FastifyInstance } from 'fastify';
import { LaunchRefusedError, startLaunch, verifyLaunchToken } from '../domain/launch.js';
import { EMBEDDED_COOKIE, keepsSecureCookies } from './plugins/session.js';
import { errorPage } from './plugins/errors.js';
import { clientKey } from './plugins/rate-limits.js';

export async function launchRoutes(app: FastifyInstance) {
  // No automatic HEAD route: a link checker's HEAD must not spend the token the iframe is about to use.
  app.get('/launch', { config: { public: true }, exposeHeadRoute: false }, async (request, reply) => {
    reply.header('Cache-Control', 'no-store');
    await app.limit('launch:ip', request, reply, clientKey(request));
    const token = (request.query as Record<string, unknown>).token;
    try {
      const claims = await verifyLaunchToken(token, app.config.crmLaunchSecret);
      await app.limit('launch:account', request, reply, `${claims.ent}|${claims.email}`);
      const { actor, created } = await startLaunch(request.em, claims);

      await request.session.regenerate();
      // SameSite=None needs Secure, which browsers keep only from HTTPS or a loopback host. Elsewhere on
      // plain HTTP the session keeps the ordinary SameSite=Lax cookie: it works when the app is opened
      // directly or framed by a page of the same site, not in a CRM on another site.
      if (keepsSecureCookies(request)) {
        request.session.options(EMBEDDED_COOKIE);
      } else {
        request.log.warn('launch over plain HTTP: the session cookie cannot be SameSite=None; Secure, so a CRM on another site cannot keep it');
      }
      request.session.userId = actor.id;
      request.session.signedInAt = Date.now();
      request.session.embedded = true;
      request.log.info(
        { userId: actor.id, enterpriseId: actor.enterpriseId, role: actor.role, created, jti: claims.jti },
        created ? 'launched from the CRM; user created' : 'launched from the CRM',
      );
      return reply.redirect(claims.target, 303);
    } catch (error) {
      if (!(error instanceof LaunchRefusedError)) throw error;
      request.log.warn({ reason: error.reason, detail: error.detail }, 'launch refused');
      // The refusal page is shown as nobody, whoever this browser was signed in as.
      request.locals.user = null;
      return errorPage(reply, 401, `${error.message} (Reference: ${request.id}.)`, {
        title: 'SIM Link could not be opened',
        backHref: '/sign-in',
        backText: 'Sign in to SIM Link with a password instead',
      });
    }
  });
}
