// GET /launch?token=… — the CRM's iframe opens SIM Link with a launch token (see domain/launch.ts and the
// README's "Embed in your CRM"). Success: a new session (new id) for the token's user, marked embedded,
// with the token's role for this session only, whose cookie is SameSite=None; Secure; Partitioned, then
// 303 to the target so the token leaves the address bar and the history. Failure: a 401 page, no session,
// the reason in the log.
// A launch link must not sign a person's own browser into someone else's account (login CSRF): it works
// only inside a frame (Sec-Fetch-Dest: iframe; its cookie then lives in the framing site's partition)
// unless CRM_LAUNCH_TOP_LEVEL=true, and it never replaces the ordinary (password) session of another user
// (409, a page naming both; the token is not spent).
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { LaunchRefusedError, startLaunch, verifyLaunchToken } from '../domain/launch.js';
import { EMBEDDED_COOKIE, keepsSecureCookies } from './plugins/session.js';
import { errorPage } from './plugins/errors.js';
import { clientKey } from './plugins/rate-limits.js';
import { LaunchQuery } from './schemas.js';

export async function launchRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  // No automatic HEAD route: a link checker's HEAD must not spend the token the iframe is about to use.
  app.get('/launch', { config: { public: true }, exposeHeadRoute: false, schema: { querystring: LaunchQuery } }, async (request, reply) => {
    reply.header('Cache-Control', 'no-store');
    await app.limit('launch:ip', request, reply, clientKey(request));
    const token = request.query.token;
    try {
      const dest = request.headers['sec-fetch-dest'];
      if (dest !== 'iframe' && dest !== 'frame' && !app.config.crmLaunchTopLevel) {
        throw new LaunchRefusedError('not_framed', `Sec-Fetch-Dest: ${dest ?? '(none)'}`);
      }
      const claims = await verifyLaunchToken(token, app.config.crmLaunchSecret);
      await app.limit('launch:account', request, reply, `${claims.ent}|${claims.email}`);
      const current = request.actor;
      if (current && !request.session.embedded && (current.email !== claims.email || current.enterpriseSlug !== claims.ent)) {
        request.log.warn({ reason: 'other_user_signed_in', userId: current.id }, 'launch refused');
        const who = (name: string | null, email: string) => (name && name !== email ? `${name} (${email})` : email);
        return errorPage(
          reply,
          409,
          `You are signed in to SIM Link as ${who(current.displayName, current.email)}. This link would sign you in as ` +
            `${who(claims.name, claims.email)} instead, so it was not used and you are still signed in as ${current.displayName}. ` +
            `To continue as ${claims.name ?? claims.email}, sign out first, then open SIM Link again from your CRM.`,
          { title: 'You are signed in as someone else', backText: `Go on as ${current.displayName}` },
        );
      }
      const { actor, created } = await startLaunch(request.em, claims);

      await request.session.regenerate();
      // SameSite=None needs Secure, which browsers keep only from HTTPS or a loopback host. Elsewhere on
      // plain HTTP the session keeps the ordinary SameSite=Lax cookie: it works when the app is opened
      // directly or framed by a page of the same site, not in a CRM on another site.
      if (keepsSecureCookies(request)) {
        request.session.options(EMBEDDED_COOKIE);
      } else {
        request.log.warn(
          'launch over plain HTTP: the session cookie cannot be SameSite=None; Secure, so a CRM on another site cannot keep it',
        );
      }
      request.session.userId = actor.id;
      request.session.signedInAt = Date.now();
      request.session.embedded = true;
      request.session.role = claims.role;
      request.log.info(
        { userId: actor.id, enterpriseId: actor.enterpriseId, role: actor.role, created, jti: claims.jti },
        created ? 'launched from the CRM; user created' : 'launched from the CRM',
      );
      return reply.seeOther(claims.target);
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
