// CSV written by SIM Link (exports, bulk results, the import's report): RFC 4180 quoting, CRLF line ends, and
// spreadsheet-safe cells — a value starting with =, +, -, @, a tab or a carriage return gets a leading ' so a
// spreadsheet never reads it as a formula.

/** One cell. */
export function csvCell(value: string | number | boolean | null | undefined): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",;\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One line, with its CRLF. */
export const csvLine = (cells: (string | number | boolean | null | undefined)[]) => `${cells.map(csvCell).join(',')}\r\n`;
