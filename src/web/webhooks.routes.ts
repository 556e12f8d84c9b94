// Webhooks (SPEC.md §6), admins only. /settings/webhooks lists the enterprise's webhooks and adds one (URL and
// event types) — its signing secret is shown once, in the answer to the form, never again. Each webhook's page
// shows its state (enabled, disabled and why, failing since…), Send test event, Enable/Disable, Delete
// (through the usual confirmation) and the delivery log, newest first, where any message can be resent.
// Works without JavaScript: plain forms, POST → 303 → page with the message.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { WEBHOOK_EVENT_TYPES } from '../domain/entities.js';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import { newFormKey } from '../domain/form-keys.js';
import { EVENT_ACTION_LABELS } from '../domain/queries/history.js';
import {
  createWebhook,
  deleteWebhook,
  deliveryLog,
  findWebhook,
  listWebhooks,
  resendMessage,
  sendTestEvent,
  setWebhookEnabled,
} from '../domain/webhooks.js';
import { fieldErrors, idParam } from './forms.js';
import { actorOf } from './plugins/session.js';
import { CsrfOnlyBody, DeliveryLogQuery, WebhookBody, WebhookMessageParams, WebhookParams } from './schemas.js';

const ADMIN_ONLY = { config: { adminOnly: true, record: 'webhook' } };
/** A malformed id in these addresses is a webhook that does not exist (plugins/errors.ts). */
const RECORD = { config: { record: 'webhook' } };

/** The webhook id of the address; one too large for an id is not found, like any other unknown one. */
function webhookId(value: string): number {
  const id = idParam(value);
  if (id === null) throw new NotFoundError('webhook');
  return id;
}
const PAGE = '/settings/webhooks';
const EVENT_TYPES = WEBHOOK_EVENT_TYPES.map((type) => ({ type, label: EVENT_ACTION_LABELS[type] }));

async function renderList(
  request: FastifyRequest,
  reply: FastifyReply,
  extra: {
    values?: { url: string; eventTypes: string[] };
    created?: { url: string; secret: string };
    errors?: ValidationError;
    conflict?: string;
  } = {},
) {
  const webhooks = await listWebhooks(request.em, actorOf(request));
  return reply.page(
    'settings/webhooks',
    {
      title: 'Webhooks',
      section: 'webhooks',
      webhooks,
      eventTypes: EVENT_TYPES,
      values: extra.values ?? { url: '', eventTypes: [...WEBHOOK_EVENT_TYPES] },
      created: extra.created,
      // The form's one-time key: a second submission of it adds no second webhook.
      key: newFormKey(),
      errors: extra.errors
        ? fieldErrors(extra.errors.errors.map((e) => (e.field === 'event_types' ? { ...e, field: `event-${WEBHOOK_EVENT_TYPES[0]}` } : e)))
        : extra.conflict
          ? fieldErrors([{ field: 'url', message: extra.conflict }])
          : undefined,
    },
    { status: extra.errors ? 422 : extra.conflict ? 409 : undefined },
  );
}

export async function webhooksRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const policy = { allowPrivate: fastify.config.webhookAllowPrivate };

  app.get(PAGE, ADMIN_ONLY, async (request, reply) => renderList(request, reply));

  // Add webhook: the answer shows the secret once (not a redirect: the secret must not travel in a cookie or URL).
  app.post(PAGE, { schema: { body: WebhookBody } }, async (request, reply) => {
    const given = request.body.event_types;
    const values = { url: request.body.url ?? '', eventTypes: given === undefined ? [] : Array.isArray(given) ? given : [given] };
    try {
      const { webhook, secret } = await createWebhook(request.em, actorOf(request), values, policy, request.body.key || undefined);
      return renderList(request, reply, { created: { url: webhook.url, secret } });
    } catch (error) {
      if (error instanceof ValidationError) return renderList(request, reply, { values, errors: error });
      if (error instanceof ConflictError) return renderList(request, reply, { conflict: error.message });
      throw error;
    }
  });

  app.get(`${PAGE}/:id`, { ...ADMIN_ONLY, schema: { params: WebhookParams, querystring: DeliveryLogQuery } }, async (request, reply) => {
    const actor = actorOf(request);
    const id = webhookId(request.params.id);
    const webhook = await findWebhook(request.em, actor, id);
    const before = idParam(request.query.before);
    const { attempts, older } = await deliveryLog(request.em, actor, id, before);
    return reply.page('settings/webhook', {
      title: 'Webhook',
      section: 'webhooks',
      webhook,
      attempts,
      older,
      paged: before !== null,
      labels: EVENT_ACTION_LABELS,
    });
  });

  app.post(`${PAGE}/:id/test`, { ...RECORD, schema: { params: WebhookParams, body: CsrfOnlyBody } }, async (request, reply) => {
    await sendTestEvent(request.em, actorOf(request), webhookId(request.params.id));
    reply.flash('success', 'Test event queued: it appears in the delivery log below once it has been sent');
    return reply.seeOther(`${PAGE}/${request.params.id}`);
  });

  for (const [path, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    app.post(`${PAGE}/:id/${path}`, { ...RECORD, schema: { params: WebhookParams, body: CsrfOnlyBody } }, async (request, reply) => {
      await setWebhookEnabled(request.em, actorOf(request), webhookId(request.params.id), enabled);
      reply.flash('success', enabled ? 'Webhook enabled' : 'Webhook disabled: nothing is sent to it until it is enabled again');
      return reply.seeOther(`${PAGE}/${request.params.id}`);
    });
  }

  app.get(`${PAGE}/:id/delete`, { ...ADMIN_ONLY, schema: { params: WebhookParams } }, async (request, reply) => {
    const webhook = await findWebhook(request.em, actorOf(request), webhookId(request.params.id));
    return reply.page(
      'sim-link/confirm',
      {
        title: 'Are you sure you want to continue?',
        section: 'webhooks',
        action: `${PAGE}/${webhook.id}/delete`,
        back: `${PAGE}/${webhook.id}`,
        summary: `Delete the webhook to ${webhook.url}.`,
        consequence: 'Nothing more is sent to it, and its delivery log is deleted with it. This cannot be undone.',
        fields: {},
      },
      { partial: 'sim-link/_confirm' },
    );
  });

  app.post(`${PAGE}/:id/delete`, { ...RECORD, schema: { params: WebhookParams, body: CsrfOnlyBody } }, async (request, reply) => {
    const actor = actorOf(request);
    const webhook = await findWebhook(request.em, actor, webhookId(request.params.id));
    await deleteWebhook(request.em, actor, webhook.id);
    reply.flash('success', `Webhook to ${webhook.url} deleted`);
    return reply.seeOther(PAGE);
  });

  app.post(
    `${PAGE}/:id/messages/:messageId/resend`,
    { ...RECORD, schema: { params: WebhookMessageParams, body: CsrfOnlyBody } },
    async (request, reply) => {
      await resendMessage(request.em, actorOf(request), webhookId(request.params.id), webhookId(request.params.messageId));
      reply.flash('success', 'Message queued to be sent again (with the same webhook-id)');
      return reply.seeOther(`${PAGE}/${request.params.id}`);
    },
  );
}
