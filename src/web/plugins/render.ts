// Adds `reply.page(template, data)`: one template, two renderings. An htmx request (HX-Request, not a
// history restore) gets only the named partial; any other request the full page with the layout.
// Every page gets the same locals: the signed-in user, the CSRF token, the flash message, the CRM origins.
import fp from 'fastify-plugin';
import view from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { viewsDir } from '../../paths.js';
import { endpointStatusLabel, simStatusLabel } from '../../domain/entities.js';

export interface PageOptions {
  /** The partial (a template path) an htmx request gets instead of the whole page. */
  partial?: string;
  status?: number;
}

export interface FieldErrors {
  /** [field id, message], in the order of the form. */
  list: { field: string; message: string }[];
  byField: Record<string, string>;
}

declare module 'fastify' {
  interface FastifyReply {
    page(template: string, data: Record<string, unknown>, options?: PageOptions): Promise<FastifyReply>;
  }
  interface FastifyRequest {
    /** True for an htmx request that wants a partial. */
    isHtmx: boolean;
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

    app.decorateRequest('isHtmx', false);
    app.decorateRequest('locals', null as unknown as Record<string, unknown>);
    app.addHook('onRequest', async (request: FastifyRequest) => {
      request.isHtmx = request.headers['hx-request'] === 'true' && request.headers['hx-history-restore-request'] !== 'true';
      request.locals = {};
    });

    app.decorateReply(
      'page',
      async function page(this: FastifyReply, template: string, data: Record<string, unknown>, options: PageOptions = {}) {
        const request = this.request;
        this.header('Vary', 'HX-Request');
        this.header('Cache-Control', 'no-store');
        if (options.status) this.code(options.status);
        const locals = { ...request.locals, h: viewHelpers, requestId: request.id, ...data };
        const name = request.isHtmx && options.partial ? options.partial : template;
        const html = await this.viewAsync(name, locals);
        return this.type('text/html; charset=utf-8').send(html);
      },
    );
  },
  { name: 'render', dependencies: [] },
);
