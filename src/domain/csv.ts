// CSV written by SIM Link (exports, bulk results, the import's report): RFC 4180 quoting, CRLF line ends, and
// spreadsheet-safe cells — a value starting with =, +, -, @, a tab or a carriage return gets a leading ' so a
// spreadsheet never reads it as a formula. And the check of an uploaded file (Import SIMs, Bulk changes) that
// refuses what is plainly not a CSV text file, in words a person can act on.

/** One cell. */
export function csvCell(value: string | number | boolean | null | undefined): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",;\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One line, with its CRLF. */
export const csvLine = (cells: (string | number | boolean | null | undefined)[]) => `${cells.map(csvCell).join(',')}\r\n`;

/**
 * Why the start of an uploaded file (`head`) is plainly not a CSV text file, or null: empty, a spreadsheet
 * workbook, UTF-16, or binary. `name` is how the file is named in the message ("“sims.xlsx”", "The file");
 * `expected` says what the file should hold, for an empty one ("a header line iccid,imsi,eid,msisdn and one SIM a line").
 */
export function notCsvReason(head: Buffer, name: string, expected: string): string | null {
  if (
    head.length === 0 ||
    head
      .toString('utf8')
      .replace(/^\ufeff/, '')
      .trim() === ''
  ) {
    return `${name} is empty. Choose the CSV file with ${expected}.`;
  }
  if (
    head.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04])) ||
    head.subarray(0, 4).equals(Buffer.from([0xd0, 0xcf, 0x11, 0xe0]))
  ) {
    return `${name} is a spreadsheet workbook, not a CSV file. Save it from your spreadsheet as “CSV UTF-8” and use that.`;
  }
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    return `${name} is saved as UTF-16. Save it as “CSV UTF-8” and use that.`;
  }
  if (head.includes(0x00)) return `${name} is not a text file. Choose a CSV file (comma-separated values).`;
  return null;
}

/**
 * The line each record of a parse starts on, as a person counts the file's lines. csv-parse gives the line a
 * record ends on (`info.lines`, with `info: true`) and its raw text (`raw: true`): a quoted value may span lines,
 * and inside quotes it counts a CRLF as two lines, which shifts every later record. One counter per parse: it
 * keeps that shift.
 */
export function recordLines(): (parserLines: number, raw: string) => number {
  let extra = 0;
  const count = (text: string, pattern: RegExp) => text.match(pattern)?.length ?? 0;
  return (parserLines, raw) => {
    // Before the record: the blank lines skipped (empty, or spaces and tabs only: trimmed, then skipped as empty).
    const body = raw.replace(/^(?:[ \t]*(?:\r\n|\n|\r))+/, '').replace(/[\r\n]+$/, '');
    extra += count(body, /\r\n/g);
    return parserLines - extra - count(body, /\n|\r(?!\n)/g);
  };
}

/** A header line read against the columns a file may have (the SIM import's, a bulk change's). */
export interface CsvHeader<C extends string> {
  /** Where each known column is. */
  index: Map<C, number>;
  /** Columns without a name: their values must be empty. */
  unnamed: number[];
  /** Names that are not columns of the file, as written. */
  unknown: string[];
  /** A known column named twice, or null. */
  twice: C | null;
  width: number;
}

export function csvHeader<C extends string>(record: string[], known: readonly C[]): CsvHeader<C> {
  const header: CsvHeader<C> = { index: new Map(), unnamed: [], unknown: [], twice: null, width: record.length };
  record.forEach((value, i) => {
    const name = value.trim().toLowerCase() as C;
    if (name === '') header.unnamed.push(i);
    else if (!known.includes(name)) header.unknown.push(value.trim());
    else if (header.index.has(name)) header.twice ??= name;
    else header.index.set(name, i);
  });
  return header;
}

/** The refusal of a header's unknown columns, naming the first five and the columns to use instead. */
export const unknownColumnsMessage = (unknown: string[], use: string) =>
  `The header (line 1) has column${unknown.length > 1 ? 's' : ''} SIM Link does not know: ${unknown
    .slice(0, 5)
    .map((n) => `“${n.slice(0, 40)}”`)
    .join(', ')}. Use only ${use}; remove the other columns so that nothing is silently left out.`;

/** The refusal of a column named twice in the header. */
export const columnTwiceMessage = (name: string) => `The column “${name}” appears twice in the header (line 1). Keep one.`;
