// Adds the security headers of every response (@fastify/helmet) and refuses state-changing requests
// sent by another site.
//  - CSP: everything from the app's own origin only (htmx is served from /public, no inline script or
//    style, no eval); `frame-ancestors 'self'` plus CRM_ORIGINS, so only the configured CRMs can frame it.
//  - X-Frame-Options: SAMEORIGIN when no CRM may frame the app; left out when some may (it cannot name
//    them, and browsers that know CSP ignore it anyway).
//  - HSTS and upgrade-insecure-requests only when PUBLIC_URL is https: on a plain-HTTP host they would
//    make browsers refuse the app (STACK.md).
//  - Permissions-Policy: no camera, microphone, geolocation, payment, USB… — SIM Link uses none of them,
//    so neither can anything that ever got into its pages.
//  - A non-GET request that the browser marks as cross-site (Sec-Fetch-Site, else Origin) is refused
//    before anything runs. The CSRF token already covers signed-in forms; this also covers sign-in
//    (no session yet, so no token: a "login CSRF" would sign the victim into the attacker's account).
//    `Origin: null` (a sandboxed frame, a data: or file: page) is refused too — unless Sec-Fetch-Site
//    says same-origin: with `Referrer-Policy: no-referrer` browsers send `Origin: null` on the app's
//    own form posts (Chromium does), and Sec-Fetch-Site, which pages cannot forge, says where they came from.
//    Not under /api: the API takes a bearer token only (SPEC §5), which no browser sends by itself.
import fp from 'fastify-plugin';
import helmet from '@fastify/helmet';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import { ForbiddenError } from '../../domain/errors.js';
import { SAFE } from './access.js';

export function contentSecurityDirectives(config: Config): Record<string, string[]> {
  const https = Boolean(config.publicUrl?.startsWith('https:'));
  return {
    'default-src': ["'self'"],
    'script-src': ["'self'"],
    'script-src-attr': ["'none'"],
    'style-src': ["'self'"],
    'img-src': ["'self'"],
    'font-src': ["'self'"],
    'connect-src': ["'self'"],
    'form-action': ["'self'"],
    'frame-src': ["'none'"],
    'base-uri': ["'none'"],
    'object-src': ["'none'"],
    'frame-ancestors': ["'self'", ...config.crmOrigins],
    ...(https ? { 'upgrade-insecure-requests': [] } : {}),
  };
}

/** The JSON API's paths (src/api), where the bearer token, not the session cookie, says who acts. */
const API_PATH = /^\/api(?:[/?]|$)/;

/** True when the browser says this request was sent by a page of another site. */
function crossSite(request: FastifyRequest, publicOrigin: string | undefined): boolean {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string') return site !== 'same-origin' && site !== 'none';
  const origin = request.headers.origin;
  if (origin === 'null') return true;
  if (typeof origin !== 'string' || origin === '') return false;
  if (publicOrigin && origin === publicOrigin) return false;
  try {
    return new URL(origin).host !== request.host;
  } catch {
    return true;
  }
}

/** Powerful browser features SIM Link never uses, switched off for its pages and anything they frame. */
export const PERMISSIONS_POLICY = [
  'accelerometer',
  'camera',
  'display-capture',
  'geolocation',
  'gyroscope',
  'hid',
  'magnetometer',
  'microphone',
  'midi',
  'payment',
  'publickey-credentials-get',
  'serial',
  'usb',
  'xr-spatial-tracking',
]
  .map((feature) => `${feature}=()`)
  .join(', ');

export const securityPlugin = fp<{ config: Config }>(
  async (app, { config }) => {
    const https = Boolean(config.publicUrl?.startsWith('https:'));
    await app.register(helmet, {
      contentSecurityPolicy: { useDefaults: false, directives: contentSecurityDirectives(config) },
      frameguard: config.crmOrigins.length ? false : { action: 'sameorigin' },
      referrerPolicy: { policy: 'no-referrer' },
      strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
      // Framed by a CRM on another site: the app's own pages must still load its own scripts and styles.
      crossOriginResourcePolicy: { policy: 'same-origin' },
      crossOriginEmbedderPolicy: false,
    });

    app.addHook('onSend', async (request, reply) => {
      reply.header('Permissions-Policy', PERMISSIONS_POLICY);
    });

    const publicOrigin = config.publicUrl ? new URL(config.publicUrl).origin : undefined;
    app.addHook('onRequest', async (request) => {
      if (SAFE.has(request.method)) return;
      // The API (/api) authenticates each request by its bearer token, never a cookie a browser would add
      // on its own: a page of another site cannot act as anyone there, so where a call comes from is not asked.
      if (API_PATH.test(request.url)) return;
      if (crossSite(request, publicOrigin)) {
        request.log.warn({ origin: request.headers.origin, site: request.headers['sec-fetch-site'] }, 'cross-site request refused');
        throw new ForbiddenError(
          'This form did not come from SIM Link’s own pages, so nothing was done. Go back to SIM Link and try again there.',
        );
      }
    });
  },
  { name: 'security', dependencies: ['render', 'errors'] },
);
