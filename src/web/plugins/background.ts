// The work this process does in the background while the app is up: delivering webhook messages
// (src/domain/webhook-delivery.ts) and running bulk jobs (src/domain/bulk.ts). Both start when the app is
// ready and stop when it closes, after the round or batch under way has finished, so a SIGTERM never cuts
// one in half; every instance may run them (they share the work through row locks, never doing it twice at
// once), and WEBHOOK_DELIVERY=false or BULK_JOBS=false keeps an instance out of one.
import fp from 'fastify-plugin';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../../config.js';
import { BulkRunner } from '../../domain/bulk.js';
import { WebhookDelivery } from '../../domain/webhook-delivery.js';

export const backgroundPlugin = fp<{ orm: MikroORM; config: Config }>(
  async (app, { orm, config }) => {
    const workers: { start(): void; stop(): Promise<void> }[] = [];
    if (config.webhookDelivery) {
      workers.push(
        new WebhookDelivery(orm, {
          allowPrivate: config.webhookAllowPrivate,
          onError: (error) => app.log.warn({ err: error }, 'webhook delivery round failed'),
        }),
      );
    }
    if (config.bulkJobs) {
      workers.push(new BulkRunner(orm, { onError: (error) => app.log.error({ err: error }, 'bulk job run failed') }));
    }
    app.addHook('onReady', async () => workers.forEach((worker) => worker.start()));
    app.addHook('onClose', async () => {
      await Promise.all(workers.map((worker) => worker.stop()));
    });
  },
  { name: 'background' },
);
