// A CSV download streamed from an export's async generator (src/domain/exports.ts): UTF-8 with a byte-order mark
// (so spreadsheets read accents right), attachment with the file's name, never cached. At most one page
// waits in the stream (highWaterMark 1: the next page is read only when the socket has taken the previous),
// so a slow client holds the export back rather than letting pages pile up in memory.
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

export function sendCsv(reply: FastifyReply, filename: string, rows: AsyncIterable<string>) {
  async function* withBom() {
    yield '\ufeff';
    yield* rows;
  }
  return reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename}"`)
    .header('cache-control', 'no-store')
    .send(Readable.from(withBom(), { highWaterMark: 1 }));
}
