// Who is acting: sign-in by email and password, and the signed-in user as every request sees it.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Role } from './entities.js';
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
}

export const ACTOR_COLUMNS = `u.id, u.email, u.display_name as "displayName", u.role, u.enterprise_id as "enterpriseId",
  e.slug as "enterpriseSlug", e.name as "enterpriseName"`;

export async function findActor(em: EntityManager, userId: number): Promise<Actor | null> {
  const [row] = await em.execute<Actor[]>(
    `select ${ACTOR_COLUMNS} from app_user u join enterprise e on e.id = u.enterprise_id where u.id = ?`,
    [userId],
  );
  return row ?? null;
}

/** The user for these credentials, or null — the same answer (and about the same time) for every failure. */
export async function signIn(em: EntityManager, email: string, password: string): Promise<Actor | null> {
  const normalised = email.trim().toLowerCase();
  const [row] = normalised.length > 254 ? [] : await em.execute<(Actor & { passwordHash: string | null })[]>(
    `select ${ACTOR_COLUMNS}, u.password_hash as "passwordHash"
     from app_user u join enterprise e on e.id = u.enterprise_id where u.email = ?`,
    [normalised],
  );
  const ok = await verifyPassword(password.slice(0, 1024), row?.passwordHash);
  if (!row || !ok) return null;
  const { passwordHash: _hash, ...actor } = row;
  return actor;
}
