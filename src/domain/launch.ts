// Launch from the CRM (README, "Embed in your CRM"): the CRM's server signs a short-lived JWT (HS256, CRM_LAUNCH_SECRET)
// naming the enterprise, the user and their role; SIM Link verifies it, spends its jti once, and creates
// or updates the user just in time. The web layer then starts the session and redirects to the target.
import { randomUUID } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { LockMode } from '@mikro-orm/core';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { actorOf, type Actor } from './accounts.js';
import { EnterpriseSchema, LaunchTokenUseSchema, ROLES, UserSchema, type Role } from './entities.js';
import { UnauthorizedError } from './errors.js';
import { hasHiddenCharacters } from './text.js';
import { localPath } from './local-path.js';

/** A launch token may be valid for at most this long from now (the CRM signs it just before the iframe loads). */
export const LAUNCH_MAX_LIFETIME_SECONDS = 5 * 60;
/** Tolerated difference between the CRM's clock and ours, on `exp`, `nbf` and the 5-minute limit. */
export const LAUNCH_CLOCK_SKEW_SECONDS = 30;
/** Where a launch lands when the token names no target (or one that is not a path on this app). */
export const DEFAULT_LAUNCH_TARGET = '/endpoints';

const MAX_TOKEN_LENGTH = 4096;
const SLUG = /^[a-z0-9][a-z0-9-]{0,59}$/;
const EMAIL = /^[^\s@]{1,200}@[^\s@]{1,200}$/;
const JTI = /^[\x21-\x7e]{8,200}$/;

export type LaunchRefusal =
  | 'not_configured'
  | 'malformed'
  | 'bad_signature'
  | 'bad_algorithm'
  | 'expired'
  | 'lifetime_too_long'
  | 'missing_claims'
  | 'bad_role'
  | 'replayed'
  | 'unknown_enterprise'
  | 'other_enterprise'
  | 'not_framed'
  | 'bad_name';

const MESSAGES: Record<LaunchRefusal, string> = {
  not_configured: 'SIM Link is not set up to be opened from a CRM here. Ask your administrator.',
  malformed: 'This link to SIM Link is not valid. Open SIM Link again from your CRM.',
  bad_signature: 'This link to SIM Link is not valid. Open SIM Link again from your CRM.',
  bad_algorithm: 'This link to SIM Link is not valid. Open SIM Link again from your CRM.',
  expired: 'This link to SIM Link has expired. Open SIM Link again from your CRM.',
  lifetime_too_long: 'This link to SIM Link is not valid. Open SIM Link again from your CRM.',
  missing_claims: 'This link to SIM Link is not valid. Open SIM Link again from your CRM.',
  bad_role: 'This link to SIM Link is not valid. Open SIM Link again from your CRM.',
  replayed: 'This link to SIM Link was already used. Open SIM Link again from your CRM.',
  unknown_enterprise: 'Your CRM account cannot be matched to a SIM Link account. Ask your administrator.',
  other_enterprise: 'Your CRM account cannot be matched to a SIM Link account. Ask your administrator.',
  bad_name:
    'Your name in the CRM contains invisible or text-direction characters, which SIM Link does not accept in names. Ask your administrator to correct it.',
  not_framed:
    'This link opens SIM Link inside your CRM’s page only, and it was opened on its own, so it was not used. Open SIM Link again from your CRM.',
};

/** A refused launch: 401, no session. `reason` is for the log; the message is for the person. */
export class LaunchRefusedError extends UnauthorizedError {
  constructor(
    readonly reason: LaunchRefusal,
    readonly detail?: string,
  ) {
    super(MESSAGES[reason]);
  }
}

export interface LaunchClaims {
  /** The enterprise's slug. */
  ent: string;
  /** The user's email, lower-cased. */
  email: string;
  /** The display name, or null when the token names none (a new user is then named by their email). */
  name: string | null;
  role: Role;
  /** Seconds since the epoch. */
  exp: number;
  jti: string;
  /** A path on this app; DEFAULT_LAUNCH_TARGET when the token had none or an unusable one. */
  target: string;
}

/** A path on this app (local-path.ts, the one open-redirect guard), or the default. */
export function launchTarget(value: unknown): string {
  const path = localPath(value, DEFAULT_LAUNCH_TARGET);
  // `/launch?token=…` as a target would only loop through a refused launch.
  if (path === '/launch' || path.startsWith('/launch?') || path.startsWith('/launch/')) return DEFAULT_LAUNCH_TARGET;
  return path;
}

const key = (secret: string) => new TextEncoder().encode(secret);

/** Checks the token's signature, algorithm, times and claims; spends nothing (see startLaunch). */
export async function verifyLaunchToken(token: unknown, secret: string | undefined, nowMs = Date.now()): Promise<LaunchClaims> {
  if (!secret) throw new LaunchRefusedError('not_configured');
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new LaunchRefusedError('malformed', 'no token, or not one string, or too long');
  }
  const now = Math.floor(nowMs / 1000);
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key(secret), {
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'jti', 'sub', 'ent', 'role'],
      clockTolerance: LAUNCH_CLOCK_SKEW_SECONDS,
      currentDate: new Date(now * 1000),
    }));
  } catch (error) {
    throw refusalOf(error);
  }
  const exp = payload.exp as number;
  if (exp > now + LAUNCH_MAX_LIFETIME_SECONDS + LAUNCH_CLOCK_SKEW_SECONDS) {
    throw new LaunchRefusedError('lifetime_too_long', `exp is ${exp - now} s ahead; at most ${LAUNCH_MAX_LIFETIME_SECONDS} s allowed`);
  }
  const { ent, sub, role, jti, name, target } = payload;
  if (typeof ent !== 'string' || !SLUG.test(ent)) throw new LaunchRefusedError('missing_claims', 'ent is not an enterprise slug');
  if (typeof sub !== 'string' || !EMAIL.test(sub.trim()) || sub.trim().length > 254) {
    throw new LaunchRefusedError('missing_claims', 'sub is not an email address');
  }
  if (typeof jti !== 'string' || !JTI.test(jti))
    throw new LaunchRefusedError('missing_claims', 'jti must be 8 to 200 printable characters');
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw new LaunchRefusedError('bad_role', `role ${JSON.stringify(role)} is not one of ${ROLES.join(', ')}`);
  }
  if (name !== undefined && typeof name !== 'string') throw new LaunchRefusedError('missing_claims', 'name is not a string');
  // The name goes into pages and the audit trail: it must read as what it is.
  if (typeof name === 'string' && hasHiddenCharacters(name))
    throw new LaunchRefusedError('bad_name', 'name holds bidi-control or zero-width characters');
  const displayName = typeof name === 'string' && name.trim() ? name.trim().slice(0, 200) : null;
  return { ent, email: sub.trim().toLowerCase(), name: displayName, role: role as Role, exp, jti, target: launchTarget(target) };
}

function refusalOf(error: unknown): LaunchRefusedError {
  if (error instanceof joseErrors.JWTExpired) return new LaunchRefusedError('expired');
  if (error instanceof joseErrors.JOSEAlgNotAllowed || error instanceof joseErrors.JOSENotSupported) {
    return new LaunchRefusedError('bad_algorithm', (error as Error).message);
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new LaunchRefusedError('bad_signature');
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return new LaunchRefusedError('missing_claims', `${error.claim}: ${error.reason}`);
  }
  if (error instanceof joseErrors.JOSEError) return new LaunchRefusedError('malformed', (error as Error).message);
  throw error;
}

export interface LaunchResult {
  actor: Actor;
  /** True when the user was created by this launch (just in time). */
  created: boolean;
}

/**
 * Spends the token's jti and creates or updates the user, in one unit of work: a replay, an unknown
 * enterprise or an email that belongs to another enterprise is refused and leaves nothing behind.
 * A user is never moved between enterprises. The token's role is the launched session's role (the web
 * layer keeps it on the session); it is stored on the user only when they have no password, so a launch
 * never changes what a password sign-in can do.
 */
export async function startLaunch(em: EntityManager, claims: LaunchClaims): Promise<LaunchResult> {
  try {
    return await launch(em, claims);
  } catch (error) {
    // Two first launches of one new user at the same moment both find no user and both create one: the
    // second is stopped by the unique email, rolled back whole (its jti unspent), and runs again, now
    // finding the user the first created.
    if (error instanceof UniqueConstraintViolationException && error.message.includes('app_user_email_key')) return launch(em, claims);
    throw error;
  }
}

function launch(em: EntityManager, claims: LaunchClaims): Promise<LaunchResult> {
  return em.transactional(async (tx) => {
    // Spent jtis are kept until their token could no longer pass the exp check anyway.
    await tx.nativeDelete(LaunchTokenUseSchema, { expiresAt: { $lt: new Date() } });
    // The jti first: its primary key makes a concurrent use of the same token wait, then fail here.
    tx.create(LaunchTokenUseSchema, { jti: claims.jti, expiresAt: new Date((claims.exp + LAUNCH_CLOCK_SKEW_SECONDS) * 1000) });
    try {
      await tx.flush();
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) throw new LaunchRefusedError('replayed', `jti ${claims.jti}`);
      throw error;
    }

    const enterprise = await tx.findOne(EnterpriseSchema, { slug: claims.ent });
    if (!enterprise) throw new LaunchRefusedError('unknown_enterprise', `ent ${claims.ent}`);

    let user = await tx.findOne(UserSchema, { email: claims.email }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    const created = !user;
    if (!user) {
      user = tx.create(UserSchema, {
        enterprise,
        email: claims.email,
        displayName: claims.name ?? claims.email,
        role: claims.role,
        passwordHash: null,
      });
    } else {
      if (user.enterprise.id !== enterprise.id) {
        throw new LaunchRefusedError('other_enterprise', `${claims.email} belongs to another enterprise than ${claims.ent}`);
      }
      if (claims.name) user.displayName = claims.name;
      if (user.passwordHash === null) user.role = claims.role;
    }
    // The new user's id is the actor's: written now rather than at commit.
    await tx.flush();
    return { actor: { ...actorOf(user, enterprise), role: claims.role }, created };
  });
}

export interface LaunchTokenInput {
  ent: string;
  sub: string;
  role: string;
  name?: string;
  target?: string;
  jti?: string;
  /** Seconds the token is valid for (default 120; SIM Link accepts at most 300). */
  ttlSeconds?: number;
  /** An absolute expiry (seconds since the epoch) instead of ttlSeconds. */
  exp?: number;
}

/** What a CRM does to launch SIM Link (used by `npm run launch-url` and the tests; see README). */
export async function createLaunchToken(secret: string, input: LaunchTokenInput): Promise<string> {
  const claims: Record<string, string> = { ent: input.ent, role: input.role };
  if (input.name !== undefined) claims.name = input.name;
  if (input.target !== undefined) claims.target = input.target;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(input.sub)
    .setJti(input.jti ?? randomUUID())
    .setIssuedAt()
    .setExpirationTime(input.exp ?? `${input.ttlSeconds ?? 120}s`)
    .sign(key(secret));
}
