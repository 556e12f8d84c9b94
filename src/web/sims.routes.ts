// The SIMs inventory (GET /sims) and the CSV import (GET/POST /sims/import). Multipart parsing is
// registered here only, so no other route accepts uploads; the CSRF token of the upload form travels in
// its action URL (the access plugin reads it there for multipart requests, before the body is read).
// Imports take one of this process's import slots (IMPORT_CONCURRENCY) before the upload is read; one
// that cannot run now (no slot, another import of the enterprise, too many refusals) gets 429, Retry-After
// and the form again, saying why.
import { simsCsv } from '../domain/exports.js';
import { sendCsv } from './csv-download.js';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import multipart from '@fastify/multipart';
import { ConflictError, TooManyRequestsError } from '../domain/errors.js';
import { isSimStatus, listSims, simStatusCounts } from '../domain/queries/sims.js';
import { iccidCursor } from '../domain/queries/paging.js';
import {
  IMPORT_LIMITS,
  ImportFileError,
  ImportSlots,
  REFUSAL_LIMIT,
  importSims,
  reportCsv,
  type ImportReport,
} from '../domain/sim-import.js';
import { SIM_STATUSES } from '../domain/entities.js';
import { fieldErrors } from './forms.js';
import { actorOf } from './plugins/session.js';
import { ImportQuery, ListQuery, pageCursor } from './schemas.js';

const FILE_FIELD = 'file';

export async function simsRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const slots = new ImportSlots(app.config.importConcurrency);
  await app.register(multipart, {
    // One file, no other fields of note. One byte over the import's own limit, so the import notices
    // the excess and says so in words (the multipart limit only cuts the stream short).
    limits: { fileSize: IMPORT_LIMITS.maxBytes + 1, files: 1, fields: 5, fieldSize: 1024, parts: 6, headerPairs: 50 },
  });

  // Download CSV: every SIM matching the filter and search, in the Import SIMs columns, streamed.
  app.get('/sims/export.csv', { schema: { querystring: ListQuery } }, async (request, reply) => {
    const query = request.query;
    const rows = simsCsv(request.em, actorOf(request).enterpriseId, {
      status: isSimStatus(query.status) ? query.status : null,
      q: query.q ?? '',
    });
    return sendCsv(reply, 'sims.csv', rows);
  });

  app.get('/sims', { schema: { querystring: ListQuery } }, async (request, reply) => {
    const actor = actorOf(request);
    const query = request.query;
    const status = isSimStatus(query.status) ? query.status : null;
    const q = query.q ?? '';
    const page = await listSims(request.em, actor.enterpriseId, {
      status,
      q,
      after: pageCursor(query.after, iccidCursor),
      before: pageCursor(query.before, iccidCursor),
    });
    return reply.page(
      'sims/index',
      { title: 'SIMs', section: 'sims', page, filters: { status, q }, statuses: SIM_STATUSES, canImport: actor.role === 'admin' },
      {
        partial: 'sims/_results',
        // The counts sit above the results: an htmx request (search, paging) swaps only the results.
        fullPageData: async () => ({ counts: await simStatusCounts(request.em, actor.enterpriseId) }),
      },
    );
  });

  app.get('/sims/import', { config: { adminOnly: true } }, async (request, reply) => {
    return importPage(reply, {});
  });

  app.post('/sims/import', { schema: { querystring: ImportQuery } }, async (request, reply) => {
    const actor = actorOf(request);
    if (!request.isMultipart()) {
      return importPage(reply, { error: 'Choose a CSV file to import' }, 415);
    }
    // The slot is taken once the file's part has begun: a client that never gets that far holds nothing.
    const part = await request.file();
    if (!part || part.fieldname !== FILE_FIELD || !part.filename) {
      part?.file.resume();
      return importPage(reply, { error: 'Choose a CSV file to import' });
    }
    let release: () => void;
    try {
      release = slots.take();
    } catch (error) {
      // Refused before the file is read: the rest of the upload is discarded as it arrives.
      part.file.resume();
      return busy(reply, error as TooManyRequestsError, part.filename);
    }
    try {
      let outcome;
      try {
        outcome = await importSims(
          request.em,
          { actor, requestId: request.id, refusals: app.config.rateLimits ? REFUSAL_LIMIT : null },
          { stream: part.file, filename: part.filename, mimetype: part.mimetype, truncated: () => part.file.truncated },
        );
      } catch (error) {
        if (error instanceof TooManyRequestsError) {
          part.file.resume();
          return busy(reply, error, part.filename);
        }
        if (error instanceof ImportFileError) return importPage(reply, { error: error.message, filename: part.filename });
        if (error instanceof ConflictError) return importPage(reply, { error: error.message, filename: part.filename }, 409);
        throw error;
      }

      if (!outcome.ok) {
        request.log.info({ problems: outcome.report.totalProblems, rows: outcome.report.rows }, 'sim import refused');
        return importPage(reply, { report: outcome.report, filename: part.filename });
      }
      request.log.info({ count: outcome.count, ms: outcome.ms }, 'sims imported');
      reply.flash('success', `${outcome.count.toLocaleString('en')} SIM${outcome.count === 1 ? '' : 's'} imported`, {
        type: 'sims.imported',
        count: outcome.count,
      });
      return reply.seeOther('/sims');
    } finally {
      release();
    }
  });
}

/** An import that cannot run now: 429, when to try again, and the form with the reason beside the file. */
function busy(reply: FastifyReply, error: TooManyRequestsError, filename?: string) {
  reply.log.info({ reason: error.constructor.name, retryAfter: error.retryAfterSeconds }, 'sim import not run now');
  reply.header('Retry-After', String(error.retryAfterSeconds));
  return importPage(reply, { error: error.message, filename }, 429);
}

interface ImportPageData {
  error?: string;
  report?: ImportReport;
  filename?: string;
}

function importPage(reply: FastifyReply, data: ImportPageData, status?: number) {
  const errors = data.error
    ? fieldErrors([{ field: FILE_FIELD, message: data.error }])
    : data.report
      ? fieldErrors([{ field: 'import-report', message: reportSummary(data.report) }])
      : undefined;
  return reply.page(
    'sims/import',
    {
      title: 'Import SIMs',
      section: 'sims',
      errors,
      fileError: data.error,
      report: data.report,
      filename: data.filename,
      // A data: URL is the download: no state kept between requests, so any instance can serve the page.
      reportHref: data.report ? `data:text/csv;charset=utf-8,${encodeURIComponent(`\ufeff${reportCsv(data.report)}`)}` : null,
      limits: IMPORT_LIMITS,
    },
    { partial: 'sims/_import', status: status ?? (errors ? 422 : undefined) },
  );
}

function reportSummary(report: ImportReport): string {
  const lines = report.badLines.toLocaleString('en');
  return `${lines} line${report.badLines === 1 ? '' : 's'} of the file ${report.badLines === 1 ? 'has' : 'have'} problems, so no SIMs were imported. Fix ${report.badLines === 1 ? 'it' : 'them'} and import the whole file again.`;
}
