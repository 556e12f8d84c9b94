// Sign in and sign out. Wrong credentials get one generic message (422), whatever was wrong; attempts are
// rate-limited per address and per account (plugins/rate-limits.ts).
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { signIn } from '../domain/accounts.js';
import { localPath } from '../domain/local-path.js';
import { fieldErrors } from './forms.js';
import { CsrfOnlyBody, SignInBody, SignInQuery } from './schemas.js';
import { clientKey } from './plugins/rate-limits.js';
import { expireSessionCookie } from './plugins/session.js';

export async function authRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get('/sign-in', { config: { public: true }, schema: { querystring: SignInQuery } }, async (request, reply) => {
    const next = localPath(request.query.next, '');
    if (request.actor) return reply.seeOther(next || '/endpoints');
    return reply.page('auth/sign-in', { title: 'Sign in', values: {}, next });
  });

  app.post(
    '/sign-in',
    { config: { public: true, csrf: false }, schema: { querystring: SignInQuery, body: SignInBody } },
    async (request, reply) => {
      const next = localPath(request.query.next, '/endpoints');
      const email = request.body.email ?? '';
      const password = request.body.password ?? '';
      // Counted before the password is checked, per address and per account (any casing of the email).
      await app.limit('sign-in:ip', request, reply, clientKey(request));
      if (email.trim()) await app.limit('sign-in:account', request, reply, email.trim().toLowerCase());
      const errors = [];
      if (!email.trim()) errors.push({ field: 'email', message: 'Enter your email address' });
      if (!password) errors.push({ field: 'password', message: 'Enter your password' });
      const actor = errors.length ? null : await signIn(request.em, email, password);
      if (!actor) {
        if (!errors.length) errors.push({ field: 'email', message: 'The email address or password is not right' });
        return reply.page('auth/sign-in', { title: 'Sign in', values: { email }, next, errors: fieldErrors(errors) }, { status: 422 });
      }
      // A new session id at sign-in: a session fixed before sign-in is never promoted.
      await request.session.regenerate();
      request.session.userId = actor.id;
      request.session.signedInAt = Date.now();
      request.log.info({ userId: actor.id }, 'signed in');
      return reply.seeOther(next);
    },
  );

  app.post('/sign-out', { config: { viewerMayPost: true }, schema: { body: CsrfOnlyBody } }, async (request, reply) => {
    // The sign-in page says so (role="status"). Set before the session goes: the flash cookie takes its attributes.
    reply.flash('success', 'You have signed out');
    // The row goes (the session is over on the server), and the browser is told to drop the cookie.
    expireSessionCookie(request, reply);
    await request.session.destroy();
    return reply.seeOther('/sign-in');
  });
}
