// Idempotency-Key on POST/PUT/DELETE (SPEC §5), on the one-time key store of the screens' confirmation
// forms (table operation_key, see lifecycle.ts `once`). Two rows per key, both scoped to the token (a
// key's SHA-256 with the token's id, so two tokens never share a key):
//  - the operation's key (`op`), handed to the lifecycle verb as OperationContext.key: the verb stores its
//    outcome in its own transaction, so a retry racing the first attempt changes nothing;
//  - the answer's key (`http`): the first answer (status and body) with a fingerprint of the request
//    (method, path, body). A retry with the same fingerprint gets that answer again with
//    `Idempotent-Replayed: true`; another request with the same key → 422.
// A change of an existing endpoint (link, de-link, swap, activate, suspend, resume) needs one row only: the
// answer's key is the verb's key, and the verb keeps the answer (made from the rows as it leaves them,
// OperationContext.answer) with its outcome in its own transaction — no read after it, no write of its own.
// A refusal (409, 404, 422) is not a change: its answer is kept afterwards, by storeAnswer, as before.
// Keys expire after 24 hours (the sweep of session.ts deletes older rows; older rows found here are ignored).
import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { StatementCache, runStatement } from '../db/compiled-statement.js';
import type { RequiredEntityData } from '@mikro-orm/core';
import { OperationKeySchema, type OperationKey } from '../domain/entities.js';
import { ValidationError } from '../domain/errors.js';
import type { KeyRow } from '../domain/api-tokens.js';

export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;

const derive = (kind: 'op' | 'http', tokenId: number, key: string) =>
  createHash('sha256').update(`${kind}|${tokenId}|${key}`).digest('base64url');

export interface StoredAnswer {
  fingerprint: string;
  status: number;
  body: string;
  contentType: string;
  /** The Location of a created resource. */
  location?: string;
}

export interface Idempotency {
  /** The key to hand to the lifecycle verb. */
  operationKey: string;
  answerKey: string;
  fingerprint: string;
}

/** The two rows' keys of a request's Idempotency-Key ([answer, operation]); undefined without a valid one. */
export function idempotencyKeys(header: unknown, tokenId: number): [string, string] | undefined {
  if (typeof header !== 'string' || !KEY_FORMAT.test(header)) return undefined;
  return [derive('http', tokenId, header), derive('op', tokenId, header)];
}

/** The request's Idempotency-Key, checked; undefined when it has none. */
export function idempotencyOf(header: unknown, tokenId: number, method: string, path: string, body: unknown): Idempotency | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !KEY_FORMAT.test(header)) {
    throw new ValidationError([{ field: 'Idempotency-Key', message: 'Idempotency-Key must be 1 to 255 printable ASCII characters' }]);
  }
  const fingerprint = createHash('sha256')
    .update(`${method} ${path}\n${JSON.stringify(body ?? null)}`)
    .digest('base64url');
  return { operationKey: derive('op', tokenId, header), answerKey: derive('http', tokenId, header), fingerprint };
}

/**
 * The statements of every change with a key — the read of its two rows and the write of its answer —
 * compiled once by MikroORM's query builder (src/db/compiled-statement.ts) and run with each request's
 * values; the rows are used as they come. Building, compiling and hydrating them with em.find and the query
 * builder on each request cost more Node CPU than the change's own transaction.
 */
const statements = new StatementCache();

const keyRead = (em: EntityManager) =>
  statements.get('the rows of an Idempotency-Key', 2, ([answerKey, operationKey]) =>
    em
      .createQueryBuilder(OperationKeySchema)
      .select(['key', 'outcome', 'createdAt'])
      .where({ key: { $in: [answerKey, operationKey] } }),
  );

const answerWrite = (em: EntityManager) =>
  statements.get('the answer of an Idempotency-Key', 5, ([key, enterprise, userId, action, outcome]) =>
    em
      .createQueryBuilder(OperationKeySchema)
      .insert({ key, enterprise, userId, action, outcome } as unknown as RequiredEntityData<OperationKey>)
      .onConflict('key')
      .ignore(),
  );

/**
 * The first answer to this key, if there is one younger than 24 hours; a different request with it → 422.
 * `read`: the key's rows, when the token's read already read them (authenticateApiToken's `keyRows`).
 */
export async function storedAnswer(em: EntityManager, idem: Idempotency, read?: KeyRow[]): Promise<StoredAnswer | null> {
  const rows = read ?? (await runStatement<KeyRow[]>(em, keyRead(em), [idem.answerKey, idem.operationKey]));
  const fresh = rows.filter((row) => Date.now() - new Date(row.created_at).getTime() < IDEMPOTENCY_TTL_MS);
  if (fresh.length < rows.length) {
    // Expired: forget both rows, so the key starts afresh.
    await em.nativeDelete(OperationKeySchema, { key: { $in: rows.map((row) => row.key) } });
  }
  const answer = fresh.find((row) => row.key === idem.answerKey);
  if (!answer) return null;
  // The answer alone (storeAnswer), or a change's outcome with the answer kept in its transaction.
  const { outcome } = answer;
  const stored = ('fingerprint' in outcome ? outcome : outcome.answer) as StoredAnswer;
  if (stored.fingerprint !== idem.fingerprint) throw keyUsedForAnotherRequest();
  return stored;
}

/** The 422 of a key sent again with another request. */
export const keyUsedForAnotherRequest = () =>
  new ValidationError([
    {
      field: 'Idempotency-Key',
      message: 'This Idempotency-Key was already used for another request; use a new key for a new request',
    },
  ]);

/** Keeps the first answer to this key (a concurrent first answer wins; this one is then dropped). */
export async function storeAnswer(em: EntityManager, idem: Idempotency, enterpriseId: number, tokenId: number, answer: StoredAnswer) {
  await runStatement(em, answerWrite(em), [idem.answerKey, enterpriseId, tokenId, 'api', answer], 'run');
}
