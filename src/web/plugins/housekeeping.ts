// Housekeeping: deletes what has outlived its use, at start and every hour — expired sessions (they are
// also deleted one by one as requests meet them, see session.ts) and one-time keys older than a day.
// Nothing a request waits for; a failure is logged and tried again next hour.
import fp from 'fastify-plugin';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { OperationKeySchema, SessionSchema } from '../../domain/entities.js';

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

export const housekeepingPlugin = fp<{ orm: MikroORM }>(
  async (app, { orm }) => {
    const sweepNow = async () => {
      try {
        await deleteExpiredSessions(orm.em.fork() as EntityManager);
        await pruneOneTimeKeys(orm.em.fork() as EntityManager);
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
