// Housekeeping: deletes what has outlived its use, at start and every hour — expired sessions (they are
// also deleted one by one as requests meet them, see session.ts), one-time keys older than a day, and bulk
// change previews never applied (drafts, with all their rows) after a day.
// Nothing a request waits for; a failure is logged and tried again next hour.
import fp from 'fastify-plugin';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { BulkJobSchema, OperationKeySchema, SessionSchema } from '../../domain/entities.js';

const HOUR_MS = 3_600_000;
/** One-time keys only need to outlive a double click or a replayed form: a day is plenty. */
const ONE_TIME_KEY_LIFETIME_MS = 24 * HOUR_MS;

/** Deletes every expired session row; returns how many. */
export async function deleteExpiredSessions(em: EntityManager): Promise<number> {
  return em.nativeDelete(SessionSchema, { expiresAt: { $lte: new Date() } });
}

/** Deletes the one-time keys of confirmation forms older than a day; returns how many. */
export async function pruneOneTimeKeys(em: EntityManager): Promise<number> {
  return em.nativeDelete(OperationKeySchema, { createdAt: { $lt: new Date(Date.now() - ONE_TIME_KEY_LIFETIME_MS) } });
}

/** A bulk change's preview (a draft job) is kept a day for its Apply; after that the file is uploaded again. */
export const BULK_DRAFT_LIFETIME_MS = 24 * HOUR_MS;

/** Deletes the drafts (previews never applied) older than a day, with their rows; returns how many. */
export async function deleteStaleBulkDrafts(em: EntityManager): Promise<number> {
  return em.nativeDelete(BulkJobSchema, { state: 'draft', createdAt: { $lt: new Date(Date.now() - BULK_DRAFT_LIFETIME_MS) } });
}

export const housekeepingPlugin = fp<{ orm: MikroORM }>(
  async (app, { orm }) => {
    const sweepNow = async () => {
      try {
        await deleteExpiredSessions(orm.em.fork() as EntityManager);
        await pruneOneTimeKeys(orm.em.fork() as EntityManager);
        await deleteStaleBulkDrafts(orm.em.fork() as EntityManager);
      } catch (error: unknown) {
        app.log.warn({ err: error }, 'housekeeping failed');
      }
    };
    app.addHook('onReady', sweepNow);
    const sweep = setInterval(() => void sweepNow(), HOUR_MS);
    sweep.unref();
    app.addHook('onClose', async () => clearInterval(sweep));
  },
  { name: 'housekeeping' },
);
