// Who is acting: sign-in by email and password, and the signed-in user as every request sees it.
import type { EntityManager } from '@mikro-orm/postgresql';
import { UserSchema, type Enterprise, type Role, type User } from './entities.js';
import { verifyPassword } from './passwords.js';

/** The acting user, as the lifecycle and the screens need them (enterprise scope, role, audit name). */
export interface Actor {
  id: number;
  email: string;
  displayName: string;
  role: Role;
  enterpriseId: number;
  enterpriseSlug: string;
  enterpriseName: string;
  /** Who the actor is: a person (the default), or an API token (id and name the token's) — as webhooks name it. */
  kind?: 'user' | 'api_token';
}

/** A user, with their enterprise loaded, as the actor. */
export function actorOf(user: User, enterprise: Enterprise): Actor {
  return {
    id: user.id,
    email: user.email,
    displayName: user.displayName,
    role: user.role,
    enterpriseId: enterprise.id,
    enterpriseSlug: enterprise.slug,
    enterpriseName: enterprise.name,
  };
}

export async function findActor(em: EntityManager, userId: number): Promise<Actor | null> {
  const user = await em.findOne(UserSchema, userId, { populate: ['enterprise'] });
  return user ? actorOf(user, user.enterprise.getEntity()) : null;
}

/** The user for these credentials, or null — the same answer (and about the same time) for every failure. */
export async function signIn(em: EntityManager, email: string, password: string): Promise<Actor | null> {
  const normalised = email.trim().toLowerCase();
  const user = normalised.length > 254 ? null : await em.findOne(UserSchema, { email: normalised }, { populate: ['enterprise'] });
  const ok = await verifyPassword(password.slice(0, 1024), user?.passwordHash);
  if (!user || !ok) return null;
  return actorOf(user, user.enterprise.getEntity());
}
