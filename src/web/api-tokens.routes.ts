// API tokens (SPEC §5), admins only: /settings/api-tokens lists the enterprise's tokens and creates one
// (Name, Role) — the token is shown once, in the answer to the form, and never again; Revoke goes through
// the usual confirmation ("Are you sure you want to continue?" → Yes). Works without JavaScript; with it,
// a Copy button copies the token (public/app.js).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { createApiToken, getApiToken, listApiTokens, revokeApiToken } from '../domain/api-tokens.js';
import { ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import { newFormKey } from '../domain/form-keys.js';
import { fieldErrors, idParam } from './forms.js';
import { actorOf } from './plugins/session.js';
import { ApiTokenBody, ApiTokenRevokeBody, ApiTokenRevokeQuery } from './schemas.js';

const ADMIN_ONLY = { config: { adminOnly: true } };
const PAGE = '/settings/api-tokens';

async function renderTokens(
  request: FastifyRequest,
  reply: FastifyReply,
  extra: {
    values?: { name: string; role: string };
    created?: { name: string; token: string };
    errors?: ValidationError;
    conflict?: string;
  } = {},
) {
  const tokens = await listApiTokens(request.em, actorOf(request).enterpriseId);
  return reply.page(
    'settings/api-tokens',
    {
      title: 'API tokens',
      section: 'api-tokens',
      tokens,
      values: extra.values ?? { name: '', role: 'viewer' },
      created: extra.created,
      // The form's one-time key: a second submission of it creates no second token.
      key: newFormKey(),
      errors: extra.errors
        ? fieldErrors(extra.errors.errors.map((e) => (e.field === 'role' ? { ...e, field: 'role-admin' } : e)))
        : extra.conflict
          ? fieldErrors([{ field: 'name', message: extra.conflict }])
          : undefined,
    },
    { status: extra.errors ? 422 : extra.conflict ? 409 : undefined },
  );
}

/** The token named by `?id=` or the form's `id`, of this enterprise and not revoked; else 404. */
async function tokenOf(request: FastifyRequest, idField: string | undefined) {
  const id = idParam(idField);
  if (id === null) throw new NotFoundError('API token');
  return getApiToken(request.em, actorOf(request).enterpriseId, id);
}

export async function apiTokensRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get(PAGE, ADMIN_ONLY, async (request, reply) => renderTokens(request, reply));

  // Create token: the answer shows the token once (not a redirect: the token must not travel in a cookie or URL).
  app.post(PAGE, { schema: { body: ApiTokenBody } }, async (request, reply) => {
    const values = { name: request.body.name ?? '', role: request.body.role ?? '' };
    try {
      const { token, row } = await createApiToken(request.em, actorOf(request), values, request.body.key || undefined);
      return renderTokens(request, reply, { created: { name: row.name, token } });
    } catch (error) {
      if (error instanceof ValidationError) return renderTokens(request, reply, { values, errors: error });
      if (error instanceof ConflictError) return renderTokens(request, reply, { conflict: error.message });
      throw error;
    }
  });

  app.get(`${PAGE}/revoke`, { ...ADMIN_ONLY, schema: { querystring: ApiTokenRevokeQuery } }, async (request, reply) => {
    // No token named (e.g. the address typed by hand): back to the list.
    if (idParam(request.query.id) === null) return reply.seeOther(PAGE);
    const token = await tokenOf(request, request.query.id);
    return reply.page(
      'sim-link/confirm',
      {
        title: 'Are you sure you want to continue?',
        section: 'api-tokens',
        action: `${PAGE}/revoke`,
        back: PAGE,
        summary: `Revoke API token '${token.name}' (${token.role}).`,
        consequence: 'Every script or system using it will be refused from its next request. This cannot be undone.',
        fields: { id: String(token.id) },
      },
      { partial: 'sim-link/_confirm' },
    );
  });

  app.post(`${PAGE}/revoke`, { schema: { body: ApiTokenRevokeBody } }, async (request, reply) => {
    const token = await tokenOf(request, request.body.id);
    await revokeApiToken(request.em, actorOf(request), token.id);
    reply.flash('success', `API token '${token.name}' revoked`);
    return reply.seeOther(PAGE);
  });
}
