// Adds `reply.page(template, data)`: one template, two renderings, and `reply.seeOther(url)`. The one place
// that reads or writes htmx's headers: an htmx request (HX-Request, not a history restore) gets only the
// partial for its HX-Target; any other request the full page with the layout; `Vary` says so. A redirect
// is HX-Redirect for htmx (which would otherwise follow a 303 inside its XHR and swap the next page into
// the target) and 303 for everyone else.
// Every page gets the same locals: the signed-in user, the CSRF token, the flash message, the CRM origins.
import fp from 'fastify-plugin';
import view from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { viewsDir } from '../../paths.js';
import { endpointStatusLabel, simStatusLabel } from '../../domain/entities.js';

export interface PageOptions {
  /**
   * The partial (a template path) an htmx request gets instead of the whole page; or, by the id of the
   * element htmx targets (HX-Target), one partial per target, `'*'` for any other target.
   */
  partial?: string | Record<string, string>;
  status?: number;
  /** Data only the full page shows (computed only when the full page is rendered), e.g. counts above the results. */
  fullPageData?: () => Promise<Record<string, unknown>>;
  /**
   * A page with no partial for an htmx request (e.g. the endpoint page asked for inside a dialog): htmx is
   * sent to this address (HX-Redirect, with this page's status) and shown `flash` there instead.
   */
  otherwise?: { url: string; flash?: string };
}

/** Whether the request is htmx's own (not a history restore, which needs the whole page). */
function isHtmx(request: FastifyRequest): boolean {
  return request.headers['hx-request'] === 'true' && request.headers['hx-history-restore-request'] !== 'true';
}

/** The partial this request wants, or null for the whole page. */
function partialFor(request: FastifyRequest, partial: PageOptions['partial']): string | null {
  if (!partial || !isHtmx(request)) return null;
  if (typeof partial === 'string') return partial;
  const target = request.headers['hx-target'];
  return (typeof target === 'string' ? partial[target] : undefined) ?? partial['*'] ?? null;
}

export interface FieldErrors {
  /** [field id, message], in the order of the form. */
  list: { field: string; message: string }[];
  byField: Record<string, string>;
}

declare module 'fastify' {
  interface FastifyReply {
    page(template: string, data: Record<string, unknown>, options?: PageOptions): Promise<FastifyReply>;
    /**
     * Sends the browser to `url`: 303 for a plain request; for htmx, HX-Redirect (a full page load) with
     * `htmxStatus` (204 unless the caller says why it is not a success, e.g. 401 or 409).
     */
    seeOther(url: string, htmxStatus?: number): FastifyReply;
  }
  interface FastifyRequest {
    /** Locals every template gets; other plugins add to it (user, csrfToken, flash). */
    locals: Record<string, unknown>;
  }
}

/** How every screen shows a value that is not there (an IMEI not recorded, a SIM without EID or MSISDN, an event without SIM). */
export const NONE = 'None';

/** Helpers available in every template as `it.h`. */
export const viewHelpers = {
  /** The value, or NONE when it is empty: the one way an empty value is shown, in lists and on pages alike. */
  orNone: (value?: string | null) => (value === undefined || value === null || value === '' ? NONE : value),
  endpointStatus: endpointStatusLabel,
  simStatus: simStatusLabel,
  /** A search typed into a digits-only search (ICCID, IMSI, EID) that is not digits: it searches nothing. */
  notDigits: (q?: string | null) => Boolean(q) && !/^\d+$/.test(q!),
  /** An event's endpoint status change: "Hold → Pre-Active", "Active" (created), or '' (none). */
  statusChange: (before?: string | null, after?: string | null) =>
    `${before ? `${endpointStatusLabel(before)} → ` : ''}${after ? endpointStatusLabel(after) : ''}`,
  dateTime: (value: Date | string) => new Date(value).toISOString().replace('T', ' ').slice(0, 19) + ' UTC',
  query: (params: Record<string, string | number | undefined | null>) => {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, String(v));
    const s = search.toString();
    return s ? `?${s}` : '';
  },
};

export const renderPlugin = fp<{ production: boolean }>(
  async (app, { production }) => {
    const eta = new Eta({ views: viewsDir, cache: production, autoEscape: true, autoTrim: [false, 'nl'] });
    await app.register(view, { engine: { eta }, root: viewsDir, viewExt: 'eta' });

    app.decorateRequest('locals', null as unknown as Record<string, unknown>);
    app.addHook('onRequest', async (request: FastifyRequest) => {
      request.locals = {};
    });

    app.decorateReply('seeOther', function seeOther(this: FastifyReply, url: string, htmxStatus = 204) {
      if (isHtmx(this.request)) return this.header('HX-Redirect', url).code(htmxStatus).send('');
      return this.redirect(url, 303);
    });

    app.decorateReply(
      'page',
      async function page(this: FastifyReply, template: string, data: Record<string, unknown>, options: PageOptions = {}) {
        const request = this.request;
        if (options.otherwise && isHtmx(request) && !options.partial) {
          if (options.otherwise.flash) this.flash('error', options.otherwise.flash);
          return this.seeOther(options.otherwise.url, options.status);
        }
        this.header(
          'Vary',
          typeof options.partial === 'object'
            ? 'HX-Request, HX-History-Restore-Request, HX-Target'
            : 'HX-Request, HX-History-Restore-Request',
        );
        this.header('Cache-Control', 'no-store');
        if (options.status) this.code(options.status);
        const partial = partialFor(request, options.partial);
        const full = partial === null && options.fullPageData ? await options.fullPageData() : {};
        const locals = { ...request.locals, h: viewHelpers, requestId: request.id, ...data, ...full };
        const name = partial ?? template;
        const html = await this.viewAsync(name, locals);
        return this.type('text/html; charset=utf-8').send(html);
      },
    );
  },
  { name: 'render', dependencies: [] },
);
