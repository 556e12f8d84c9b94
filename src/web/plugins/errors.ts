// One place maps failures to pages: domain errors by kind (404/403/409/422/401), Fastify's own 4xx
// (bad body, too large, CSRF) with their status, anything else 500 without internals. htmx requests get
// the same page body; htmx's responseHandling swaps it in.
import fp from 'fastify-plugin';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, HTTP_STATUS, NotFoundError, TooManyRequestsError } from '../../domain/errors.js';
import { BAD_PAGE_LINK, CURSOR_FIELDS } from '../schemas.js';

const TITLES: Record<number, string> = {
  400: 'The request could not be understood',
  401: 'You need to sign in',
  403: 'You cannot do that',
  404: 'Page not found',
  409: 'That could not be done',
  413: 'That is too large',
  415: 'That kind of content is not accepted',
  422: 'There is a problem',
  429: 'Too many requests',
  500: 'Sorry, something went wrong',
  503: 'Service unavailable',
};

export function errorPage(reply: FastifyReply, status: number, message: string, extra: Record<string, unknown> = {}) {
  return reply.page('errors/show', { title: TITLES[status] ?? 'Error', status, message, ...extra }, { status, partial: 'errors/_message' });
}

/** A multipart body its parser could not read (busboy throws plain Errors): the sender's fault, so 400. */
const unreadableUpload = (error: FastifyError) => !error.statusCode && /[\\/]@fastify[\\/]busboy[\\/]/.test(error.stack ?? '');
/** What an id in an address names: an endpoint's, unless the route says otherwise in its config (`record`). */
const ADDRESS_RECORD = 'endpoint';
const NOT_FOUND = 'There is nothing at this address. Check it, or go back to the endpoints.';
const UNREADABLE =
  'What was sent could not be read: it is incomplete or damaged. Go back, reload the page and send it again. Nothing was changed.';

export const errorsPlugin = fp(
  async (app) => {
    app.setNotFoundHandler(async (request: FastifyRequest, reply: FastifyReply) => errorPage(reply, 404, NOT_FOUND));

    app.setErrorHandler(async (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      if (error instanceof DomainError) {
        if (error instanceof TooManyRequestsError) reply.header('Retry-After', String(error.retryAfterSeconds));
        return errorPage(reply, HTTP_STATUS[error.kind], error.message);
      }
      // A route's schema refused the request (src/web/schemas.ts): a malformed id in the address is an
      // address that does not exist; anything else is input a person can go back and correct.
      if (error.validation) {
        if (error.validationContext === 'params') {
          const record = (request.routeOptions.config as { record?: string } | undefined)?.record ?? ADDRESS_RECORD;
          return errorPage(reply, 404, new NotFoundError(record).message);
        }
        // A page link's cursor longer than any list makes: a broken link, not a form to correct.
        if (error.validationContext === 'querystring' && error.validation.every((e) => CURSOR_FIELDS.has(e.instancePath.slice(1)))) {
          return errorPage(reply, 400, BAD_PAGE_LINK);
        }
        return errorPage(reply, 422, 'Some of what was sent is not valid. Go back and check the form.');
      }
      if (unreadableUpload(error)) {
        request.log.info({ err: error }, 'unreadable upload');
        return errorPage(reply, 400, UNREADABLE);
      }
      const status = error.statusCode ?? 500;
      if (status >= 500) {
        request.log.error({ err: error }, 'request failed');
        return errorPage(reply, status, `Please try again. If it keeps happening, give your administrator this reference: ${request.id}.`);
      }
      if (status === 429) {
        const retry = reply.getHeader('retry-after');
        return errorPage(reply, 429, `Too many attempts. Try again in ${retry ?? 'a minute'}${retry ? ' seconds' : ''}.`);
      }
      if (error.code === 'FST_CSRF_INVALID_TOKEN' || error.code === 'FST_CSRF_MISSING_SECRET') {
        return errorPage(
          reply,
          403,
          'This form has expired or did not come from SIM Link. Go back, reload the page and try again. Nothing was changed.',
        );
      }
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
        return errorPage(reply, 413, 'What you sent is too large.');
      }
      if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) {
        return errorPage(reply, 415, 'Send this form from SIM Link’s own page.');
      }
      if (status === 400 && error.code?.startsWith('FST_')) {
        return errorPage(reply, 400, UNREADABLE);
      }
      return errorPage(reply, status, error.message);
    });
  },
  { name: 'errors', dependencies: ['render'] },
);
