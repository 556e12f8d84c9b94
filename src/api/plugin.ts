// The JSON API (SPEC §5), an encapsulated plugin under /api: its own body parser (JSON only, 64 KB), its
// own error and not-found handlers (RFC 9457 problem+json, never an HTML page or a stack trace), the
// OpenAPI 3.1 document generated from the routes' schemas (/api/v1/openapi.json) and its reference page
// (/api/docs). The routes of v1, with bearer-token auth, limits and idempotency, are in v1.routes.ts.
import type { FastifyError, FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { ValidationError } from '../domain/errors.js';
import { hasHalfCharacter } from '../domain/text.js';
import { problemFromError, sendProblem } from './problems.js';
import { NO_BODY_DESCRIPTION, SHARED_SCHEMAS } from './schemas.js';
import { v1Routes } from './v1.routes.js';

const BODY_LIMIT = 64 * 1024;
/**
 * How deeply a body's arrays and objects may nest. The API's bodies nest once; a body nested thousands deep
 * (it fits in 64 KB) would overflow the stack of anything that walks it recursively — the Idempotency-Key's
 * fingerprint (JSON.stringify), the schema validator, the error messages — so it is refused before it is parsed.
 */
export const MAX_BODY_DEPTH = 32;
export const TOO_DEEP = 'The request body is nested too deeply to be read';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Whether every string (and key) in a parsed JSON value is whole characters. Walks without recursion: a body may nest deeply. */
function wellFormed(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next === 'string') {
      if (hasHalfCharacter(next)) return false;
    } else if (Array.isArray(next)) {
      for (const item of next) pending.push(item);
    } else if (next !== null && typeof next === 'object') {
      for (const [key, item] of Object.entries(next)) {
        if (hasHalfCharacter(key)) return false;
        pending.push(item);
      }
    }
  }
  return true;
}

export async function apiPlugin(app: FastifyInstance) {
  // JSON only: the forms' URL-encoded parser (and any other) does not apply here, so anything else is 415.
  app.removeAllContentTypeParsers();
  // Read as bytes and decoded strictly: invalid UTF-8 (or a lone surrogate written as a \u escape) would
  // otherwise become U+FFFD and be stored as if it had been sent.
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (request, body, done) => {
    const unreadable = (message: string) => done(Object.assign(new Error(message), { statusCode: 400 }), undefined);
    let text: string;
    try {
      text = strictUtf8.decode(body as Buffer);
    } catch {
      return unreadable('The body is not valid UTF-8.');
    }
    if (text.trim() === '') return done(null, undefined);
    if (nestedTooDeeply(text)) return done(new ValidationError([{ field: 'body', message: TOO_DEEP }]), undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return unreadable('The body is not valid JSON.');
    }
    if (!wellFormed(parsed)) {
      return unreadable('The body has a \\u escape that is half of a character (a lone surrogate); send whole characters.');
    }
    done(null, parsed);
  });
  // A compressed body would be read as if it were JSON text: refused, in words, before it is read — after the
  // route is found and the token checked (onRequest), and only when there is a body to read.
  app.addHook('preParsing', async (request, reply) => {
    const encoding = request.headers['content-encoding']?.trim().toLowerCase();
    const hasBody = Number(request.headers['content-length'] ?? 0) > 0 || request.headers['transfer-encoding'] !== undefined;
    if (encoding && encoding !== 'identity' && hasBody) {
      return sendProblem(reply, 415, `A body with Content-Encoding ${encoding} is not accepted; send it uncompressed.`);
    }
  });

  // An integer in the address or the query string is written in decimal digits. The schema validator would
  // read 0x10, 1e1, 1.5 or " 1" as a number (JavaScript's Number()); such a value is handed to it as what it
  // is — text — so it is refused (422 naming the field) instead of acting on some other record.
  app.addHook('preValidation', async (request) => {
    const schema = request.routeOptions.schema;
    if (!schema) return;
    notDecimalRefused(schema.params, request.params);
    notDecimalRefused(schema.querystring, request.query);
  });

  // The API's routes by path, for a 405 naming the methods a known path has (Fastify itself answers 404).
  const routes: { path: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (route) => {
    const path = new RegExp(`^${route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+/g, '[^/]+')}$`);
    routes.push({ path, methods: [route.method].flat() });
  });

  app.setErrorHandler<FastifyError>(async (error, request, reply) => problemFromError(error, request, reply));
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0];
    const allowed = [...new Set(routes.filter((r) => r.path.test(path)).flatMap((r) => r.methods))];
    if (allowed.length) {
      reply.header('Allow', allowed.join(', '));
      return sendProblem(reply, 405, `${path} does not accept ${request.method}; it accepts ${allowed.join(', ')}.`);
    }
    return sendProblem(reply, 404, `There is no ${request.method} ${path} in the API.`);
  });

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'SIM Link API',
        version: '1.0.0',
        description:
          'Link SIMs to IoT endpoints and change their state, with the same rules as the SIM Link screens. ' +
          'Authenticate with `Authorization: Bearer <token>` (create tokens on /settings/api-tokens). ' +
          'Errors are RFC 9457 problem details; POST, PUT and DELETE accept an `Idempotency-Key`.',
      },
      servers: [{ url: '/' }],
      tags: [
        { name: 'endpoints', description: 'Endpoints (devices) and their SIM' },
        { name: 'sims', description: 'The SIM inventory' },
        { name: 'events', description: 'The audit trail' },
      ],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API token: sl_…' } } },
      security: [{ bearer: [] }],
    },
    // @fastify/swagger marks every declared body required; the changes that take none (NoBody) accept none.
    transformObject: (documentObject) => {
      const doc = (
        documentObject as { openapiObject: { paths?: Record<string, Record<string, { requestBody?: { required?: boolean } }>> } }
      ).openapiObject;
      for (const methods of Object.values(doc.paths ?? {})) {
        for (const op of Object.values(methods)) {
          if (op.requestBody && JSON.stringify(op.requestBody).includes(NO_BODY_DESCRIPTION)) op.requestBody.required = false;
        }
      }
      return doc;
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });

  app.get('/v1/openapi.json', { schema: { hide: true } }, async (request, reply) => reply.type('application/json').send(app.swagger()));

  // staticCSP: the reference page's own CSP, with its scripts and styles from the app's origin; no
  // upgrade-insecure-requests on a plain-HTTP host (it would break it, as for the app's pages).
  const https = Boolean(app.config.publicUrl?.startsWith('https:'));
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // Registered under /api: the page's links to its own files need the whole path.
    indexPrefix: '/api',
    staticCSP: true,
    transformStaticCSP: (header) => (https ? header : header.replace(/\s*upgrade-insecure-requests;?/, '')),
  });

  await app.register(v1Routes, { prefix: '/v1' });
}

/** True when the JSON text opens more than MAX_BODY_DEPTH arrays or objects inside one another (brackets in strings aside). */
function nestedTooDeeply(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_BODY_DEPTH) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

const DECIMAL = /^-?[0-9]+$/;

/** Replaces each integer-typed value of `values` not written in decimal digits by text the schema refuses. */
function notDecimalRefused(schema: unknown, values: unknown) {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties;
  if (!properties || !values || typeof values !== 'object') return;
  const given = values as Record<string, unknown>;
  for (const [name, property] of Object.entries(properties)) {
    const value = given[name];
    if (property.type === 'integer' && typeof value === 'string' && !DECIMAL.test(value)) given[name] = `not a number: ${value}`;
  }
}
