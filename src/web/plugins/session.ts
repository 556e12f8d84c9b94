// Adds server-side sessions (@fastify/session, rows in PostgreSQL: revocable, survive restarts, shared by
// every instance), CSRF protection keyed to the session (@fastify/csrf-protection), the signed-in user
// as `request.actor`, and one-shot flash messages. Sessions end after SESSION_IDLE_MINUTES without a
// request and after SESSION_MAX_HOURS in any case; expired rows are deleted as they are met (and in bulk
// by the housekeeping plugin).
import { createHash } from 'node:crypto';
import fp from 'fastify-plugin';
import cookie from '@fastify/cookie';
import session from '@fastify/session';
import csrf from '@fastify/csrf-protection';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../../config.js';
import { findActor, type Actor } from '../../domain/accounts.js';
import { ROLES, SessionSchema, type Role } from '../../domain/entities.js';
import { UnauthorizedError } from '../../domain/errors.js';
import { compileStatement, runStatement } from '../../db/compiled-statement.js';

/** What the CRM around an embedded SIM Link is told after a change (see README, "Listen to SIM Link"), sent by public/app.js. */
export interface CrmEvent {
  type: string;
  endpointId?: number;
  iccid?: string | null;
  /** sims.imported: how many. */
  count?: number;
}

export interface Flash {
  kind: 'success' | 'error';
  text: string;
  event?: CrmEvent;
}

declare module 'fastify' {
  interface Session {
    userId?: number;
    /** When the user signed in (ms); the absolute lifetime counts from here. */
    signedInAt?: number;
    /** Started by a CRM launch: the cookie is SameSite=None; Secure; Partitioned. */
    embedded?: boolean;
    /** The role the launch token gave: it applies to this session only, whatever the user's stored role. */
    role?: Role;
    flash?: Flash;
  }
  interface FastifyRequest {
    actor: Actor | null;
  }
  interface FastifyReply {
    flash(kind: Flash['kind'], text: string, event?: CrmEvent): void;
  }
}

/**
 * The signed-in person of a route that needs one (every route not marked public: the access plugin has
 * already sent anyone else to sign in, so the 401 here only guards a route wrongly marked public).
 */
export function actorOf(request: FastifyRequest): Actor {
  if (!request.actor) throw new UnauthorizedError();
  return request.actor;
}

/** Where a loaded session carries its user (read with it, never stored in it). */
const ACTOR = '_actor';

/** The store keeps a hash of the session id, so a leaked table does not leak live cookies. */
const key = (sessionId: string) => createHash('sha256').update(sessionId).digest('base64url');

/**
 * Reads a session row with its user and their enterprise — the request's actor — in one statement. It runs
 * on every request, so the statement is compiled once by the query builder (src/db/compiled-statement.ts), from the entities' metadata
 * (tables, columns, join keys), and run with each request's id; its rows are used as they come, not as
 * managed entities. Measured per read (Node CPU, 10 at a time, warm, medians of 6 rounds of 3,000): em.findOne
 * with `populate: ['user.enterprise']` 0.85–1.02 ms, em.findOne of the session alone 0.40–0.48 ms, the same
 * query builder built for each read 0.38–0.42 ms, this 0.14 ms — like the hand-written SQL it replaced
 * (0.12–0.16 ms). Pages cost 1.5–3 ms of server CPU: only this keeps them within 10 % of before.
 */
function sessionReader(
  orm: MikroORM,
): (em: EntityManager, id: string) => Promise<{ data: Record<string, unknown>; expiresAt: Date; actor: Actor | null } | null> {
  const statement = compileStatement(
    1,
    ([id]) =>
      orm.em
        .fork()
        .createQueryBuilder(SessionSchema, 's')
        .select(['s.data', 's.expiresAt', 'u.id', 'u.email', 'u.displayName', 'u.role', 'e.id as enterprise_id', 'e.slug', 'e.name'])
        .leftJoin('s.user', 'u')
        .leftJoin('u.enterprise', 'e')
        .where({ id }),
    'the session read',
  );
  return async (em, id) => {
    const [row] = await runStatement<SessionRow[]>(em, statement, [id]);
    if (!row) return null;
    const actor: Actor | null =
      row.id === null
        ? null
        : {
            id: row.id,
            email: row.email,
            displayName: row.display_name,
            role: row.role,
            enterpriseId: row.enterprise_id,
            enterpriseSlug: row.slug,
            enterpriseName: row.name,
          };
    // timestamptz arrives as PostgreSQL's text (MikroORM's driver setting), which Date reads.
    return { data: row.data, expiresAt: new Date(row.expires_at), actor };
  };
}

/** A row of readSession's statement, as the driver gives it (column names; the user's are null without a user). */
interface SessionRow {
  data: Record<string, unknown>;
  expires_at: Date | string;
  id: number | null;
  email: string;
  display_name: string;
  role: Role;
  enterprise_id: number;
  slug: string;
  name: string;
}

function pgStore(orm: MikroORM, idleMs: number, maxMs: number): session.SessionStore {
  // A fork per call, with no identity map kept: each call is one statement (two at most), and the store
  // never holds on to the rows it reads or writes.
  const em = () => orm.em.fork();
  const readSession = sessionReader(orm);
  /** The session's end: idle time from now, never past the absolute lifetime from sign-in. */
  const expiry = (signedInAt: unknown, now = Date.now()) =>
    new Date(Math.min(now + idleMs, (typeof signedInAt === 'number' ? signedInAt : now) + maxMs));
  return {
    set(sessionId, data, callback) {
      const { userId, signedInAt } = data as { userId?: number; signedInAt?: number };
      // The stored data is the session's JSON. (A spread would also copy @fastify/session's symbol-keyed
      // properties — the request among them — which MikroORM's upsert clones deeply: 20 ms per sign-in.)
      const { [ACTOR]: _loaded, ...stored } = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
      // One INSERT … ON CONFLICT (id) DO UPDATE: the same id is saved again after a change of the session.
      em()
        .upsert(
          SessionSchema,
          { id: key(sessionId), user: userId ?? null, data: stored, expiresAt: expiry(signedInAt), createdAt: new Date() },
          { onConflictFields: ['id'], onConflictMergeFields: ['user', 'data', 'expiresAt'], disableIdentityMap: true },
        )
        .then(() => callback(), callback);
    },
    get(sessionId, callback) {
      // One statement reads the session with its user and their enterprise (the request's actor: no second
      // round trip). Writes are rare and follow only when needed: a row met after its end is deleted
      // there and then, and the idle expiry slides at most once a minute per session.
      const id = key(sessionId);
      const read = async () => {
        const fork = em();
        const row = await readSession(fork, id);
        if (!row) return null;
        const now = Date.now();
        if (row.expiresAt.getTime() <= now) {
          await fork.nativeDelete(SessionSchema, { id, expiresAt: { $lte: new Date(now) } });
          return null;
        }
        if (row.expiresAt.getTime() < now + idleMs - 60_000) {
          await fork.nativeUpdate(SessionSchema, { id }, { expiresAt: expiry(row.data.signedInAt, now) });
        }
        return { ...row.data, [ACTOR]: row.actor };
      };
      read().then((session) => callback(null, session as never), callback);
    },
    destroy(sessionId, callback) {
      em()
        .nativeDelete(SessionSchema, { id: key(sessionId) })
        .then(() => callback(), callback);
    },
  };
}

const FLASH_COOKIE = 'simlink_flash';

/** The cookie of a session started by a CRM launch: sent in the CRM's iframe (another site), kept in that site's partition. */
export const EMBEDDED_COOKIE = { sameSite: 'none', secure: true, partitioned: true } as const;

/** localhost, *.localhost and loopback addresses: browsers treat them as secure and keep Secure cookies over plain HTTP. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return host === 'localhost' || host.endsWith('.localhost') || /^127(\.\d{1,3}){3}$/.test(host) || host === '::1';
}

/** Whether a browser on this request keeps a Secure cookie: HTTPS, or a loopback host (a developer's machine). */
export function keepsSecureCookies(request: FastifyRequest): boolean {
  return request.protocol === 'https' || isLoopback(request.hostname);
}

export const SESSION_COOKIE = 'simlink_session';

/** Tells the browser to forget the session cookie (Expires in the past), with the attributes it was set with. */
export function expireSessionCookie(request: FastifyRequest, reply: FastifyReply) {
  const https = Boolean(request.server.config.publicUrl?.startsWith('https:')) || request.protocol === 'https';
  const attributes = request.session?.embedded ? EMBEDDED_COOKIE : { sameSite: 'lax' as const, secure: https };
  reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, ...attributes });
}

export const sessionPlugin = fp<{ orm: MikroORM; config: Config }>(
  async (app, { orm, config }) => {
    const idleMs = config.sessionIdleMinutes * 60_000;
    const maxMs = config.sessionMaxHours * 3_600_000;
    const https = Boolean(config.publicUrl?.startsWith('https:'));

    await app.register(cookie, { secret: config.sessionSecret });
    // @fastify/session neither saves nor sends a Secure cookie's session over plain HTTP — right in general,
    // but browsers do keep Secure cookies from loopback hosts, so a launched (embedded) session on a
    // developer's http://localhost would lose every change. Saving it here first makes the plugin send it
    // (it sends the cookie of a session saved during the request). Registered before the plugin: runs first.
    app.addHook('onSend', async (request) => {
      const current = request.session;
      if (current?.cookie?.secure === true && request.protocol !== 'https' && isLoopback(request.hostname) && current.isModified()) {
        await current.save();
      }
    });
    await app.register(session, {
      secret: config.sessionSecret,
      cookieName: SESSION_COOKIE,
      store: pgStore(orm, idleMs, maxMs),
      saveUninitialized: false,
      rolling: false,
      // Secure always behind an https PUBLIC_URL; otherwise whenever the request came over HTTPS ('auto'
      // follows TRUST_PROXY's X-Forwarded-Proto). A launch switches its session to EMBEDDED_COOKIE.
      cookie: { httpOnly: true, secure: https ? true : 'auto', sameSite: 'lax', path: '/' },
    });
    await app.register(csrf, {
      sessionPlugin: '@fastify/session',
      // A form field (plain forms), a header (htmx sends it from the page), or — for multipart uploads only,
      // whose body is read later by the handler — the form's action URL. It runs before the route's schema
      // (access.ts checks in preValidation), so the body and query are not typed yet: read, never trusted.
      getToken: (request) => {
        const fromBody = (request.body as Record<string, unknown> | undefined)?._csrf;
        if (typeof fromBody === 'string') return fromBody;
        const fromHeader = request.headers['x-csrf-token'];
        if (typeof fromHeader === 'string') return fromHeader;
        const multipart = request.headers['content-type']?.startsWith('multipart/form-data');
        const fromQuery = (request.query as Record<string, unknown> | undefined)?._csrf;
        return multipart && typeof fromQuery === 'string' ? fromQuery : undefined;
      },
    });

    app.decorateRequest('actor', null);
    // The flash message travels in its own signed cookie (POST → 303 → GET), not in the session row: a change
    // then costs no session writes. It has the session cookie's attributes, so it is sent where that one is.
    const flashCookie = (request: FastifyRequest) => ({
      path: '/',
      httpOnly: true,
      signed: true,
      ...(request.session.embedded ? EMBEDDED_COOKIE : { sameSite: 'lax' as const, secure: https || request.protocol === 'https' }),
    });
    app.decorateReply('flash', function flash(this: FastifyReply, kind: Flash['kind'], text: string, event?: CrmEvent) {
      const value: Flash = { kind, text, ...(event ? { event } : {}) };
      this.setCookie(FLASH_COOKIE, Buffer.from(JSON.stringify(value)).toString('base64url'), flashCookie(this.request));
    });
    const readFlash = (request: FastifyRequest): Flash | undefined => {
      const raw = request.cookies[FLASH_COOKIE];
      if (!raw) return undefined;
      const unsigned = request.unsignCookie(raw);
      if (!unsigned.valid || !unsigned.value) return undefined;
      try {
        const flash = JSON.parse(Buffer.from(unsigned.value, 'base64url').toString('utf8')) as Flash;
        return typeof flash.text === 'string' && (flash.kind === 'success' || flash.kind === 'error') ? flash : undefined;
      } catch {
        return undefined;
      }
    };

    app.addHook('preValidation', async (request: FastifyRequest, reply: FastifyReply) => {
      const { userId, signedInAt } = request.session;
      const loaded = (request.session as unknown as Record<string, Actor | null | undefined>)[ACTOR];
      if (userId) {
        if (signedInAt && Date.now() - signedInAt > maxMs) {
          // Past its absolute lifetime: the row goes, and the request goes on with a fresh, empty session
          // (destroy() would leave request.session null for everything after this hook).
          await request.session.regenerate();
        } else {
          const actor = loaded !== undefined && loaded?.id === userId ? loaded : await findActor(request.em, userId);
          const role = request.session.role;
          request.actor = actor && role && ROLES.includes(role) ? { ...actor, role } : actor;
        }
      }
      // The page a GET renders shows the flash once; a redirect carries it to the next page.
      if (request.method === 'GET' && request.cookies[FLASH_COOKIE]) {
        request.locals.flash = readFlash(request);
        reply.clearCookie(FLASH_COOKIE, flashCookie(request));
      }
      request.locals.user = request.actor;
      request.locals.csrfToken = request.actor ? reply.generateCsrf() : '';
      request.locals.crmOrigins = config.crmOrigins;
    });
  },
  { name: 'session', dependencies: ['orm', 'render'] },
);
