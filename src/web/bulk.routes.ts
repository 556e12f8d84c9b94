// Bulk changes (SPEC.md §7), admins only. /bulk: upload a CSV (endpoint_id,action,iccid) and the list of jobs.
// The upload is checked at once (the preview: counts per action, every row that cannot be done with its line
// and reason, the first rows that will be done) and kept as a draft; Apply N changes → "Are you sure you want
// to continue?" → Yes queues it, and the job page shows its progress (updated in place by htmx, or by
// Refresh without JavaScript), its counts when finished, and Download the results (CSV).
//   GET  /bulk                     upload form and jobs        POST /bulk            upload → preview
//   GET  /bulk/:id                 the job (preview of a draft, progress, results)
//   GET  /bulk/:id/apply           the confirmation            POST /bulk/:id/apply  Yes
//   POST /bulk/:id/cancel          stop after the batch under way (or drop a draft)
//   GET  /bulk/:id/results.csv     every row with its outcome
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import multipart from '@fastify/multipart';
import {
  BulkFileError,
  applyBulkJob,
  bulkResultsCsv,
  cancelBulkJob,
  createBulkJob,
  findBulkJob,
  firstBulkRows,
  listBulkJobs,
  previewBulk,
  type BulkPreview,
} from '../domain/bulk.js';
import { NotFoundError } from '../domain/errors.js';
import { sendCsv } from './csv-download.js';
import { idParam } from './forms.js';
import { actorOf } from './plugins/session.js';
import { CsrfOnlyBody, ImportQuery, JobsQuery, WebhookParams as JobParams } from './schemas.js';

const ADMIN_ONLY = { config: { adminOnly: true, record: 'job' } };
const RECORD = { config: { record: 'job' } };
const FILE_FIELD = 'file';
/** Problems listed on the preview page (all of them are counted). */
const PROBLEMS_SHOWN = 200;

function jobId(value: string): number {
  const id = idParam(value);
  if (id === null) throw new NotFoundError('job');
  return id;
}

async function bulkPage(
  request: FastifyRequest,
  reply: FastifyReply,
  data: { error?: string; filename?: string },
  status?: number,
  before: number | null = null,
) {
  const { jobs, older } = await listBulkJobs(request.em, actorOf(request), before);
  return reply.page('bulk/index', { title: 'Bulk changes', section: 'bulk', jobs, older, paged: before !== null, ...data }, { status });
}

export async function bulkRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  await app.register(multipart, {
    limits: { fileSize: 8 * 1024 * 1024 + 1, files: 1, fields: 5, fieldSize: 1024, parts: 6, headerPairs: 50 },
  });

  app.get('/bulk', { ...ADMIN_ONLY, schema: { querystring: JobsQuery } }, async (request, reply) =>
    bulkPage(request, reply, {}, undefined, idParam(request.query.before)),
  );

  app.post('/bulk', { schema: { querystring: ImportQuery } }, async (request, reply) => {
    const actor = actorOf(request);
    if (!request.isMultipart()) return bulkPage(request, reply, { error: 'Choose a CSV file of changes' }, 415);
    const part = await request.file();
    if (!part || part.fieldname !== FILE_FIELD || !part.filename) {
      part?.file.resume();
      return bulkPage(request, reply, { error: 'Choose a CSV file of changes' }, 422);
    }
    let preview: BulkPreview;
    try {
      preview = await previewBulk(request.em, actor, { stream: part.file, filename: part.filename });
    } catch (error) {
      part.file.resume();
      if (error instanceof BulkFileError) return bulkPage(request, reply, { error: error.message, filename: part.filename }, 422);
      throw error;
    }
    if (part.file.truncated) return bulkPage(request, reply, { error: 'The file is larger than 8 MB; split it into smaller files.' }, 413);
    const job = preview.rows.length
      ? await createBulkJob(request.em.fork(), actor, preview.fileName, preview.rows, 'draft', preview.problems)
      : null;
    return reply.page(
      'bulk/preview',
      {
        title: `Preview of ${preview.fileName}`,
        section: 'bulk',
        preview: { ...preview, rows: preview.rows.slice(0, 20), problems: preview.problems.slice(0, PROBLEMS_SHOWN) },
        problemCount: preview.problems.length,
        job,
      },
      { status: job ? 200 : 422 },
    );
  });

  app.get('/bulk/:id', { ...ADMIN_ONLY, schema: { params: JobParams } }, async (request, reply) => {
    const actor = actorOf(request);
    const job = await findBulkJob(request.em, actor, jobId(request.params.id));
    const rows = job.state === 'draft' ? await firstBulkRows(request.em, job.id) : [];
    return reply.page(
      'bulk/show',
      { title: `Bulk change: ${job.fileName}`, section: 'bulk', job, rows },
      // The progress polls replace only themselves.
      { partial: { 'job-progress': 'bulk/_progress', '*': 'bulk/show' } },
    );
  });

  app.get('/bulk/:id/apply', { ...ADMIN_ONLY, schema: { params: JobParams } }, async (request, reply) => {
    const job = await findBulkJob(request.em, actorOf(request), jobId(request.params.id));
    if (job.state !== 'draft') return reply.seeOther(`/bulk/${job.id}`);
    return reply.page(
      'sim-link/confirm',
      {
        title: 'Are you sure you want to continue?',
        section: 'bulk',
        action: `/bulk/${job.id}/apply`,
        back: `/bulk/${job.id}`,
        summary: `Apply ${job.total.toLocaleString('en')} change${job.total === 1 ? '' : 's'} from ${job.fileName}.`,
        consequence:
          'Each row is made as if done on its own page, with its event. A row that someone changes meanwhile fails alone, with its reason.',
        fields: {},
      },
      { partial: 'sim-link/_confirm' },
    );
  });

  app.post('/bulk/:id/apply', { ...RECORD, schema: { params: JobParams, body: CsrfOnlyBody } }, async (request, reply) => {
    const job = await applyBulkJob(request.em, actorOf(request), jobId(request.params.id));
    reply.flash('success', `${job.total.toLocaleString('en')} change${job.total === 1 ? '' : 's'} started`);
    return reply.seeOther(`/bulk/${job.id}`);
  });

  app.post('/bulk/:id/cancel', { ...RECORD, schema: { params: JobParams, body: CsrfOnlyBody } }, async (request, reply) => {
    const job = await cancelBulkJob(request.em, actorOf(request), jobId(request.params.id));
    reply.flash('success', job.state === 'cancelled' ? 'Bulk change cancelled' : 'Cancelling: the job stops after the rows under way');
    return reply.seeOther(`/bulk/${job.id}`);
  });

  app.get('/bulk/:id/results.csv', { ...ADMIN_ONLY, schema: { params: JobParams } }, async (request, reply) => {
    const actor = actorOf(request);
    const job = await findBulkJob(request.em, actor, jobId(request.params.id));
    return sendCsv(reply, `bulk-${job.id}-results.csv`, bulkResultsCsv(request.em, actor, job.id));
  });
}
