// Reading a bulk changes file (readRows in src/domain/bulk.ts): as strict as the SIM import — no unknown or
// doubled column, a line with another number of values than the header is a problem of that line, a line of
// separators only is an empty line — and read in slices, so a big file does not hold the event loop.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BulkFileError, readRows } from '../../src/domain/bulk.js';

const file = (content: string) => ({ stream: Readable.from([Buffer.from(content)]), filename: 'changes.csv' });

describe('reading a bulk changes file', () => {
  it('refuses a header with a column it does not know, or one named twice, in words', async () => {
    await expect(readRows(file('endpoint_id,action,iccid,note\n1,delink,,x\n'))).rejects.toThrow(
      'The header (line 1) has column SIM Link does not know: “note”. Use only endpoint_id, action and iccid; remove the other columns so that nothing is silently left out.',
    );
    await expect(readRows(file('endpoint_id,action,action\n1,delink,suspend\n'))).rejects.toThrow(
      'The column “action” appears twice in the header (line 1). Keep one.',
    );
    await expect(readRows(file('endpoint_id,iccid\n1,\n'))).rejects.toBeInstanceOf(BulkFileError);
  });

  it('a line with more or fewer values than the header is a problem of that line; a line of separators only is skipped', async () => {
    const rows = await readRows(file('endpoint_id,action,iccid\n1,delink,\n2,suspend\n,,\n3,resume,,extra\n4,activate,\n'));
    expect(rows).toEqual([
      { line: 2, endpoint_id: '1', action: 'delink', iccid: '' },
      { line: 3, endpoint_id: '2', action: 'suspend', iccid: '', problem: 'This line has 2 values; the header has 3 columns' },
      { line: 5, endpoint_id: '3', action: 'resume', iccid: '', problem: 'This line has 4 values; the header has 3 columns' },
      { line: 6, endpoint_id: '4', action: 'activate', iccid: '' },
    ]);
  });

  it('names rows after blank lines of spaces or tabs by their own lines', async () => {
    const rows = await readRows(file('endpoint_id,action,iccid\n \n9,delink,\n\t\n\n10,delink,\n'));
    expect(rows.map((row) => [row.line, row.endpoint_id])).toEqual([
      [3, '9'],
      [6, '10'],
    ]);
  });

  it('a column without a name is allowed only empty; the columns may come in any order and case, iccid left out', async () => {
    const rows = await readRows(file('Action;ENDPOINT_ID;\nDelink;7;\nsuspend;8;oops\n'));
    expect(rows).toEqual([
      { line: 2, endpoint_id: '7', action: 'delink', iccid: '' },
      {
        line: 3,
        endpoint_id: '8',
        action: 'suspend',
        iccid: '',
        problem: 'This line has a value in a column without a name in the header',
      },
    ]);
  });

  it('reads a 20,000-row file in slices: other work runs while it is parsed', async () => {
    const csv = ['endpoint_id,action,iccid', ...Array.from({ length: 20_000 }, (_, i) => `${i + 1},delink,`)].join('\n');
    let ticks = 0;
    let reading = true;
    const tick = () => {
      ticks++;
      if (reading) setImmediate(tick);
    };
    setImmediate(tick);
    const rows = await readRows(file(csv));
    reading = false;
    expect(rows).toHaveLength(20_000);
    // About 370 KB: six slices of 64 KB, each handing the event loop back before the next.
    expect(ticks).toBeGreaterThanOrEqual(5);
  });
});
