// API tokens (SPEC §5): an admin creates one for a CRM or a script; it acts for its enterprise with its role.
// The token (`sl_` + 32 random bytes, base64url) is returned once and never stored: the table keeps its
// SHA-256, which is enough to find it again (the token is high-entropy, so no salt or slow hash is needed).
// Revoking sets revoked_at; the next request with that token is refused.
import { createHash, randomBytes } from 'node:crypto';
import { raw, type EntityManager, type Field } from '@mikro-orm/postgresql';
import type { Actor } from './accounts.js';
import { ApiTokenSchema, EnterpriseSchema, OperationKeySchema, ROLES, UserSchema, type ApiToken, type Role } from './entities.js';
import { ForbiddenError, NotFoundError, ValidationError, type FieldError } from './errors.js';
import { createOnce } from './form-keys.js';
import { hasHiddenCharacters, hiddenCharactersMessage } from './text.js';
import { compileStatement, type CompiledStatement, runStatement } from '../db/compiled-statement.js';

const PREFIX = 'sl_';
/** `sl_` and the base64url of 32 bytes (43 characters). */
const TOKEN_FORMAT = /^sl_[A-Za-z0-9_-]{43}$/;
/** last_used_at is written at most this often per token: not one write per request. */
const LAST_USED_PRECISION_MS = 60_000;

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export interface ApiTokenRow {
  id: number;
  name: string;
  role: Role;
  createdByName: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface NewApiTokenInput {
  name: string;
  role: string;
}

function validateNewToken(input: NewApiTokenInput): { name: string; role: Role } {
  const errors: FieldError[] = [];
  const name = input.name.trim();
  if (!name) errors.push({ field: 'name', message: 'Enter a name for the token' });
  else if ([...name].length > 100) errors.push({ field: 'name', message: 'Name must be 100 characters or fewer' });
  else if (hasHiddenCharacters(name)) errors.push({ field: 'name', message: hiddenCharactersMessage('Name') });
  if (!(ROLES as readonly string[]).includes(input.role)) errors.push({ field: 'role', message: 'Select a role: admin or viewer' });
  if (errors.length) throw new ValidationError(errors);
  return { name, role: input.role as Role };
}

function requireAdmin(actor: Actor) {
  if (actor.role !== 'admin') throw new ForbiddenError();
}

export const TOKEN_ALREADY_CREATED = 'This form already created its token, which is not shown again. Create another token if you need one.';

/**
 * Creates a token for the actor's enterprise; the token itself is in the answer and nowhere else. With the
 * form's one-time `key` (the one-time key store of the confirmations), a second submission of the same form
 * (a reload, a double click) creates nothing and gets a ConflictError.
 */
export async function createApiToken(
  em: EntityManager,
  actor: Actor,
  input: NewApiTokenInput,
  key?: string,
): Promise<{ token: string; row: ApiTokenRow }> {
  requireAdmin(actor);
  const { name, role } = validateNewToken(input);
  const token = PREFIX + randomBytes(32).toString('base64url');
  const entity = await createOnce(em, actor, key, 'api-token:create', TOKEN_ALREADY_CREATED, () =>
    em.create(ApiTokenSchema, {
      enterprise: actor.enterpriseId,
      name,
      role,
      tokenHash: hashToken(token),
      // An actor that is itself a token (none may create tokens today) has no user row.
      createdBy: actor.email ? actor.id : null,
      createdByName: actor.displayName,
      lastUsedAt: null,
      revokedAt: null,
    }),
  );
  return { token, row: toRow(entity) };
}

function toRow(t: {
  id: number;
  name: string;
  role: Role;
  createdByName: string;
  createdAt: Date;
  lastUsedAt?: Date | null;
  revokedAt?: Date | null;
}): ApiTokenRow {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    createdByName: t.createdByName,
    createdAt: t.createdAt,
    lastUsedAt: t.lastUsedAt ?? null,
    revokedAt: t.revokedAt ?? null,
  };
}

/** The enterprise's tokens that are not revoked, newest first. */
export async function listApiTokens(em: EntityManager, enterpriseId: number): Promise<ApiTokenRow[]> {
  const tokens = await em.find(
    ApiTokenSchema,
    { enterprise: enterpriseId, revokedAt: null },
    { orderBy: { id: 'desc' }, disableIdentityMap: true, limit: 1000 },
  );
  return tokens.map(toRow);
}

/** One live token of the enterprise (another enterprise's, a revoked or an unknown one → NotFoundError). */
export async function getApiToken(em: EntityManager, enterpriseId: number, tokenId: number): Promise<ApiTokenRow> {
  const token = await em.findOne(ApiTokenSchema, { id: tokenId, enterprise: enterpriseId, revokedAt: null }, { disableIdentityMap: true });
  if (!token) throw new NotFoundError('API token');
  return toRow(token);
}

/** Revokes a token: refused from the next request on. Revoking it again is not an error. */
export async function revokeApiToken(em: EntityManager, actor: Actor, tokenId: number): Promise<ApiTokenRow> {
  requireAdmin(actor);
  const token = await em.findOne(ApiTokenSchema, { id: tokenId, enterprise: actor.enterpriseId });
  if (!token) throw new NotFoundError('API token');
  token.revokedAt ??= new Date();
  await em.flush();
  return toRow(token);
}

export interface TokenActor {
  tokenId: number;
  actor: Actor;
}

/**
 * The token's read, with its enterprise, in one statement. It runs on every API request (revocation takes
 * effect on the next request, so it is never cached), so the statement is compiled once by the query builder
 * (src/db/compiled-statement.ts, as the session read of the screens) and its row used as it comes, not as a
 * managed entity: em.findOne with `populate: ['enterprise']` built, compiled and hydrated the query on each
 * request. With `keys`, the same statement reads those rows of the one-time key store too (the change's
 * Idempotency-Key, src/api/idempotency.ts): one round trip instead of two.
 */
function tokenReader(em: EntityManager, withKeys: boolean) {
  return compileStatement(
    withKeys ? 3 : 1,
    ([tokenHash, ...keys]) => {
      const columns: Field<ApiToken>[] = [
        't.id',
        't.name',
        't.role',
        't.lastUsedAt',
        'e.id as enterprise_id',
        'e.slug',
        'e.name as enterprise_name',
      ];
      if (withKeys) {
        const rows = em
          .createQueryBuilder(OperationKeySchema, 'o')
          .select(raw(`coalesce(json_agg(json_build_object('key', o.key, 'outcome', o.outcome, 'created_at', o.created_at)), '[]')`))
          .where({ key: { $in: keys } });
        columns.push(rows.as('key_rows') as unknown as Field<ApiToken>);
      }
      return em.createQueryBuilder(ApiTokenSchema, 't').select(columns).join('t.enterprise', 'e').where({ tokenHash, revokedAt: null });
    },
    withKeys ? 'the API token read, with the rows of two one-time keys' : 'the API token read',
  );
}
let tokenRead: CompiledStatement | undefined;
let tokenWithKeysRead: CompiledStatement | undefined;

/**
 * The ids of the tokens this process has seen, by hash. A token's id never changes, so knowing it before the
 * read is safe (whether the token is still valid is read every time): it lets a change's one-time keys, which
 * are scoped by the token's id, be read in the token's statement.
 */
const knownTokenIds = new Map<string, number>();
const KNOWN_TOKEN_IDS = 10_000;

/** A row of the one-time key store as the token read gives it. */
export interface KeyRow {
  key: string;
  outcome: Record<string, unknown>;
  created_at: string;
}

/** A row of the token read, as the driver gives it (column names; timestamptz as PostgreSQL's text). */
interface TokenRow {
  id: number;
  name: string;
  role: Role;
  last_used_at: string | Date | null;
  enterprise_id: number;
  slug: string;
  enterprise_name: string;
  key_rows?: KeyRow[];
}

/**
 * The actor a bearer token acts as, or null for a malformed, unknown or revoked token (the same answer for
 * each). The actor's id is the token's id and its name the token's name: events record them with source `api`.
 * The token's last use is written at most once a minute (LAST_USED_PRECISION_MS), not on every request.
 * `keysOf`: the one-time keys of the request for a token id; when this process already knows the token's id,
 * their rows are read in the same statement and returned as `keyRows` (undefined when they were not read).
 */
export async function authenticateApiToken(
  em: EntityManager,
  token: string,
  keysOf?: (tokenId: number) => readonly [string, string] | undefined,
): Promise<(TokenActor & { keyRows?: KeyRow[] }) | null> {
  if (!TOKEN_FORMAT.test(token)) return null;
  const tokenHash = hashToken(token);
  const knownId = knownTokenIds.get(tokenHash);
  const keys = knownId === undefined ? undefined : keysOf?.(knownId);
  const statement = keys ? (tokenWithKeysRead ??= tokenReader(em, true)) : (tokenRead ??= tokenReader(em, false));
  const [row] = await runStatement<TokenRow[]>(em, statement, keys ? [tokenHash, ...keys] : [tokenHash]);
  if (!row) return null;
  if (knownId === undefined) {
    if (knownTokenIds.size >= KNOWN_TOKEN_IDS) knownTokenIds.clear();
    knownTokenIds.set(tokenHash, row.id);
  }
  const now = Date.now();
  if (row.last_used_at === null || now - new Date(row.last_used_at).getTime() >= LAST_USED_PRECISION_MS) {
    await em.nativeUpdate(ApiTokenSchema, { id: row.id }, { lastUsedAt: new Date(now) });
  }
  return {
    tokenId: row.id,
    actor: {
      id: row.id,
      email: '',
      displayName: row.name,
      role: row.role,
      enterpriseId: row.enterprise_id,
      enterpriseSlug: row.slug,
      enterpriseName: row.enterprise_name,
      kind: 'api_token',
    },
    ...(keys && row.id === knownId ? { keyRows: row.key_rows ?? [] } : {}),
  };
}

/** For scripts (`npm run api-token`): a token for an enterprise by slug, created in the name of its first admin. */
export async function createApiTokenForEnterprise(
  em: EntityManager,
  slug: string,
  input: NewApiTokenInput,
): Promise<{ token: string; row: ApiTokenRow }> {
  const enterprise = await em.findOne(EnterpriseSchema, { slug });
  if (!enterprise) throw new NotFoundError('enterprise');
  const admin = await em.findOne(UserSchema, { enterprise, role: 'admin' }, { orderBy: { id: 'asc' } });
  const actor: Actor = {
    id: admin?.id ?? 0,
    email: admin?.email ?? '',
    displayName: admin ? admin.displayName : 'npm run api-token',
    role: 'admin',
    enterpriseId: enterprise.id,
    enterpriseSlug: enterprise.slug,
    enterpriseName: enterprise.name,
  };
  return createApiToken(em, actor, input);
}
