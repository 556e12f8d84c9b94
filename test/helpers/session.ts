// Signing in within route tests: a supertest agent (it keeps the session cookie) and the CSRF token and
// one-time key scraped from a rendered form, as a browser would submit them.
import supertest from 'supertest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { hashPassword } from '../../src/domain/passwords.js';
import { createUser, type TestEnterprise, type TestUser } from '../factories/index.js';
import type { Role } from '../../src/domain/entities.js';
import { cookieHeader } from './cookies.js';
import { page } from './page.js';

export const PASSWORD = 'correct horse battery staple';
let passwordHash: string | undefined;

export type Agent = ReturnType<typeof supertest.agent>;

/** A user with a known password, signed in; the agent carries the session. */
export async function signedIn(
  app: FastifyInstance,
  em: EntityManager,
  enterprise: TestEnterprise,
  role: Role = 'admin',
): Promise<{ agent: Agent; user: TestUser }> {
  passwordHash ??= await hashPassword(PASSWORD);
  const user = await createUser(em, enterprise, role, passwordHash);
  const agent = supertest.agent(app.server);
  const res = await agent.post('/sign-in').type('form').send({ email: user.email, password: PASSWORD });
  if (res.status !== 303) throw new Error(`sign-in failed: ${res.status}`);
  return { agent, user };
}

/** The value of a hidden input in a page. */
export function hidden(html: string, name: string): string {
  return page(html).hidden(name);
}

/** The CSRF token any page of a signed-in user carries (the sign-out form). */
export async function csrfToken(agent: Agent, path = '/endpoints'): Promise<string> {
  const res = await agent.get(path);
  return hidden(res.text, '_csrf');
}

/**
 * Signs in through `app.inject` (for tests that send cookies by hand, e.g. several instances or addresses):
 * the sign-in response, and the Cookie header its session cookie makes ('' when sign-in failed).
 */
export async function injectSignIn(
  app: FastifyInstance,
  email: string,
  options: { password?: string; remoteAddress?: string; headers?: Record<string, string> } = {},
): Promise<{ res: LightMyRequestResponse; cookie: string }> {
  const res = await app.inject({
    method: 'POST',
    url: '/sign-in',
    remoteAddress: options.remoteAddress,
    headers: { ...options.headers, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ email, password: options.password ?? PASSWORD }).toString(),
  });
  return { res, cookie: res.statusCode === 303 ? cookieHeader(res, 'simlink_session') : '' };
}
