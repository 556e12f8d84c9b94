// RFC 9457 problem details for everything the API answers with an error: domain errors by kind, schema
// failures (422 with errors[]), Fastify's own 4xx (unreadable JSON, too large, wrong content type), and
// anything else as a 500 without internals. Never an HTML page, never a stack trace.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, HTTP_STATUS, TooManyRequestsError, ValidationError, type FieldError } from '../domain/errors.js';

const TITLES: Record<number, string> = {
  400: 'The request could not be understood',
  401: 'A valid API token is needed',
  403: 'You cannot do that',
  404: 'Not found',
  405: 'Method not allowed',
  406: 'Not acceptable',
  408: 'The request took too long',
  409: 'That could not be done',
  413: 'That is too large',
  415: 'That kind of content is not accepted',
  422: 'There is a problem',
  429: 'Too many requests',
  431: 'The request headers are too large',
  500: 'Sorry, something went wrong',
  503: 'Service unavailable',
};

const KINDS: Record<number, string> = {
  400: 'bad-request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  408: 'timeout',
  409: 'conflict',
  413: 'too-large',
  415: 'unsupported-media-type',
  422: 'invalid',
  429: 'too-many-requests',
  431: 'headers-too-large',
  500: 'internal',
  503: 'unavailable',
};

/** The text of a problem: type, title, status, detail (and errors for a 422). */
function problemText(status: number, detail: string, errors?: FieldError[]) {
  return JSON.stringify({
    type: `urn:sim-link:problem:${KINDS[status] ?? 'error'}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    ...(errors ? { errors } : {}),
  });
}

export function sendProblem(reply: FastifyReply, status: number, detail: string, errors?: FieldError[]) {
  return reply
    .code(status)
    .type('application/problem+json')
    .header('Cache-Control', 'no-store')
    .send(problemText(status, detail, errors));
}

/** The API's paths: /api and below. */
export const API_PATH = /^\/api(?:[/?]|$)/;

/** The address of the request line at the start of what a client sent (`GET /api/v1/sims HTTP/1.1`), if it is there. */
function requestPath(raw: unknown): string | undefined {
  if (!Buffer.isBuffer(raw)) return undefined;
  return /^[A-Z]+ (\S+) HTTP\//.exec(raw.subarray(0, 8192).toString('latin1'))?.[1];
}

/**
 * Fastify's clientErrorHandler: a request Node could not read (headers over its limit: 431; too slow: 408;
 * malformed: 400) is answered on the socket before any route or hook runs. Under /api as problem+json like
 * every other API error. The path is read from the request line in the bytes Node kept (err.rawPacket); when
 * the request line came in an earlier packet it is unknown, and the answer is problem+json too (a JSON
 * answer either way: Fastify's own is JSON). A screen's path keeps Fastify's answer.
 */
export function answerClientError(this: { log: FastifyBaseLogger }, err: Error & { code?: string; rawPacket?: unknown }, socket: Socket) {
  // A connection reset: the socket is gone, there is no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, detail, label] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'The request took too long to arrive. Send it again.', 'timeout']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [
            431,
            'The request headers are too large. Send smaller headers (a shorter Cookie or Authorization, fewer headers).',
            'header_overflow',
          ]
        : [400, 'The request could not be read: it is not well-formed HTTP.', 'error'];
  this.log.trace({ err }, `client ${label}`);
  const path = requestPath(err.rawPacket);
  const api = path === undefined || API_PATH.test(path);
  const body = api
    ? problemText(status, detail)
    : JSON.stringify({ error: STATUS_CODES[status], message: status === 400 ? 'Client Error' : detail, statusCode: status });
  const headers = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    `Content-Type: ${api ? 'application/problem+json' : 'application/json'}`,
    ...(api ? ['Cache-Control: no-store'] : []),
    'Connection: close',
  ];
  if (socket.writable) socket.write(`${headers.join('\r\n')}\r\n\r\n${body}`);
  socket.destroy(err);
}

interface SchemaError {
  keyword?: string;
  instancePath?: string;
  params?: Record<string, unknown>;
  message?: string;
}

/** One entry per field a schema error names (TypeBox's errors, shaped like Ajv's): `/iccid` → iccid. */
function fieldErrorsOf(error: SchemaError, context: string | undefined): FieldError[] {
  const path = (error.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const named = (error.params?.requiredProperties ?? error.params?.missingProperty ?? error.params?.additionalProperties) as
    string[] | string | undefined;
  if (error.keyword === 'boolean') return []; // the additionalProperties entry says it better
  if (error.keyword === 'not' && !path && context === 'body') {
    return [{ field: 'body', message: 'must be left out: this request takes no body (or an empty JSON object)' }];
  }
  if (named !== undefined) {
    const message = error.keyword === 'additionalProperties' ? 'is not a field of this request' : 'is required';
    return [named].flat().map((name) => ({ field: [path, name].filter(Boolean).join('.'), message }));
  }
  return [{ field: path || (context ?? 'body'), message: error.message ?? 'is not valid' }];
}

/** A value that must be one of a list (a union of constants: anyOf of const) fails once per choice, then the anyOf. */
const isChoice = (e: SchemaError) => e.keyword === 'const' || e.keyword === 'anyOf';

/** One error per field that must be one of a list, naming the values it may take: "status must be one of: hold, …". */
function oneOfValues(errors: SchemaError[], context: string | undefined): FieldError[] {
  const allowed = new Map<string, unknown[]>();
  for (const e of errors) {
    if (e.keyword !== 'const') continue;
    const field = (e.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || (context ?? 'body');
    allowed.set(field, [...(allowed.get(field) ?? []), e.params?.allowedValue]);
  }
  return [...allowed].map(([field, values]) => ({ field, message: `must be one of: ${values.join(', ')}` }));
}

export function problemFromError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof ValidationError) return sendProblem(reply, 422, error.message, error.errors);
  if (error instanceof DomainError) {
    // RFC 9110 §11.6.1: a 401 says how to authenticate.
    if (error.kind === 'unauthorized') reply.header('WWW-Authenticate', 'Bearer');
    if (error instanceof TooManyRequestsError) reply.header('Retry-After', String(error.retryAfterSeconds));
    return sendProblem(reply, HTTP_STATUS[error.kind], error.message);
  }
  if (error.validation) {
    const choices = oneOfValues(error.validation as SchemaError[], error.validationContext);
    const chosen = new Set(choices.map((c) => c.field));
    const errors = choices.concat(
      error.validation.flatMap((e) => {
        const rest = fieldErrorsOf(e as SchemaError, error.validationContext);
        return isChoice(e as SchemaError) && rest.every((r) => chosen.has(r.field)) ? [] : rest;
      }),
    );
    return sendProblem(
      reply,
      422,
      `Some of what was sent is not valid: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}.`,
      errors,
    );
  }
  const status = error.statusCode ?? 500;
  if (status >= 500) {
    request.log.error({ err: error }, 'API request failed');
    return sendProblem(reply, status, `Please try again. If it keeps happening, give your administrator this reference: ${request.id}.`);
  }
  if (status === 429) {
    const retry = reply.getHeader('retry-after');
    return sendProblem(reply, 429, `Too many requests. Try again in ${retry ?? 60} seconds.`);
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) return sendProblem(reply, 413, 'The request body is too large.');
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) {
    return sendProblem(reply, 415, 'Send the body as JSON (Content-Type: application/json).');
  }
  if (status === 400) return sendProblem(reply, 400, error.code?.startsWith('FST_') ? 'The request could not be read.' : error.message);
  return sendProblem(reply, status, error.message);
}
