// Sign in and sign out. Wrong credentials get one generic message (422), whatever was wrong; attempts are
// rate-limited per address and per account (plugins/rate-limits.ts).
import type { FastifyInstance } from 'fastify';
import { signIn } from '../domain/accounts.js';
import { field, fieldErrors, localPath } from './forms.js';
import { clientKey } from './plugins/rate-limits.js';
import { expireSessionCookie } from './plugins/session.js';

export async function authRoutes(app: FastifyInstance) {
  app.get('/sign-in', { config: { public: true } }, async (request, reply) => {
    const next = localPath((request.query as Record<string, unknown>).next, '');
    if (request.actor) return reply.redirect(next || '/endpoints', 303);
    return reply.page('auth/sign-in', { title: 'Sign in', values: {}, next });
  });

  app.post('/sign-in', { config: { public: true, csrf: false } }, async (request, reply) => {
    const next = localPath((request.query as Record<string, unknown>).next, '/endpoints');
    const email = field(request.body, 'email', 254);
    const password = field(request.body, 'password', 1024);
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
    return reply.redirect(next, 303);
  });

  app.post('/sign-out', { config: { viewerMayPost: true } }, async (request, reply) => {
    // The sign-in page says so (role="status"). Set before the session goes: the flash cookie takes its attributes.
    reply.flash('success', 'You have signed out');
    // The row goes (the session is over on the server), and the browser is told to drop the cookie.
    expireSessionCookie(request, reply);
    await request.session.destroy();
    return reply.redirect('/sign-in', 303);
  });
}
