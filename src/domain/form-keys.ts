// A form's one-time key: the hidden `key` field of every form whose submission creates something (a
// confirmation's Yes, Create token, Add webhook). The key is stored in operation_key by the transaction of
// what the form did, so a second submission of the same form — a reload, a double click, a replayed POST —
// finds it and does nothing a second time. The lifecycle verbs store their outcome with it (lifecycle.ts);
// the forms here only need to know that it was spent.
import { randomBytes } from 'node:crypto';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Actor } from './accounts.js';
import { OperationKeySchema } from './entities.js';
import { ConflictError } from './errors.js';

/** What a key the forms hand out looks like (newFormKey); anything else is a damaged form. */
export const FORM_KEY_FORMAT = /^[A-Za-z0-9_-]{16,64}$/;

export const newFormKey = (): string => randomBytes(18).toString('base64url');

/**
 * Creates what a form creates, once per form: `create` makes the entities (not yet flushed), the form's key is
 * spent with them, and the flush writes both or neither. Refused with `spent` when the key was spent before
 * (or is not a key these forms hand out) — checked before anything is created, so nothing is left for a
 * later flush — and when the same form, sent twice at once, spent it in the other transaction first (the
 * key's primary key lets one through; what this one created is then dropped from its unit of work).
 */
export async function createOnce<T>(
  em: EntityManager,
  actor: Actor,
  key: string | undefined,
  action: string,
  spent: string,
  create: () => T,
): Promise<T> {
  if (key !== undefined && (!FORM_KEY_FORMAT.test(key) || (await em.count(OperationKeySchema, { key })))) {
    throw new ConflictError(spent);
  }
  const created = create();
  if (key !== undefined) em.create(OperationKeySchema, { key, enterprise: actor.enterpriseId, userId: actor.id, action, outcome: {} });
  try {
    await em.flush();
  } catch (error) {
    if (key !== undefined && error instanceof UniqueConstraintViolationException) {
      em.clear();
      throw new ConflictError(spent, { cause: error });
    }
    throw error;
  }
  return created;
}
