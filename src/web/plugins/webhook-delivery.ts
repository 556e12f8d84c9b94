// Runs the webhooks' delivery worker (src/domain/webhook-delivery.ts) in this process while the app is up:
// started when the app is ready, stopped when it closes — after the round under way has finished, so a
// SIGTERM never cuts a delivery in half (at worst an attempt is sent again by the next round: at least once).
import fp from 'fastify-plugin';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../../config.js';
import { WebhookDelivery } from '../../domain/webhook-delivery.js';

export const webhookDeliveryPlugin = fp<{ orm: MikroORM; config: Config }>(
  async (app, { orm, config }) => {
    if (!config.webhookDelivery) return;
    const delivery = new WebhookDelivery(orm, {
      allowPrivate: config.webhookAllowPrivate,
      onError: (error) => app.log.warn({ err: error }, 'webhook delivery round failed'),
    });
    app.addHook('onReady', async () => delivery.start());
    app.addHook('onClose', async () => delivery.stop());
  },
  { name: 'webhook-delivery' },
);
