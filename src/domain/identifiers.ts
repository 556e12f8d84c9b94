// ICCID, IMSI, EID and IMEI: normalised (spaces and dashes a person types are stripped) and validated,
// with a message naming the field and the rule. Every input path (forms, CSV, API) goes through here.

export type IdentifierKind = 'ICCID' | 'IMSI' | 'EID' | 'IMEI';

export type Checked = { ok: true; value: string } | { ok: false; message: string };

/** Strips what people type or paste around digits: spaces (incl. non-breaking), dashes, tabs. */
export function normalise(raw: string): string {
  return raw.replace(/[\s\u00a0\u2010-\u2015-]/g, '');
}

/** True when the digits end with a correct Luhn check digit (ITU-T E.118 for ICCID, 3GPP for IMEI). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** The Luhn check digit to append to `body`. */
export function luhnCheckDigit(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return String(d);
  throw new Error('unreachable');
}

/** The whole number mod 97, computed in chunks so 32 digits never leave exact integer range. */
export function mod97(digits: string): number {
  let remainder = 0;
  for (let i = 0; i < digits.length; i += 7) {
    remainder = Number(String(remainder) + digits.slice(i, i + 7)) % 97;
  }
  return remainder;
}

/** The two check digits that make a 30-digit EID body valid (ISO/IEC 7064 MOD 97-10). */
export function eidCheckDigits(body30: string): string {
  const check = 98 - mod97(body30 + '00');
  return String(check).padStart(2, '0');
}

const SPREADSHEET_NUMBER = /^\d(\.\d+)?E\+?\d+$/i;

function digitsOnly(kind: IdentifierKind | 'MSISDN', value: string, raw: string): Checked | null {
  if (value === '') return { ok: false, message: `Enter the ${kind}` };
  if (SPREADSHEET_NUMBER.test(value)) {
    return {
      ok: false,
      message: `${kind} "${raw.trim()}" looks like a number formatted by a spreadsheet; export the column as text`,
    };
  }
  if (!/^\d+$/.test(value)) return { ok: false, message: `${kind} must contain only digits` };
  return null;
}

export function checkIccid(raw: string): Checked {
  const value = normalise(raw);
  const bad = digitsOnly('ICCID', value, raw);
  if (bad) return bad;
  if (value.length !== 19 && value.length !== 20) return { ok: false, message: 'ICCID must be 19 or 20 digits' };
  if (!value.startsWith('89')) return { ok: false, message: 'ICCID must start with 89' };
  if (!luhnValid(value)) return { ok: false, message: 'ICCID check digit is wrong' };
  return { ok: true, value };
}

export function checkImsi(raw: string): Checked {
  const value = normalise(raw);
  const bad = digitsOnly('IMSI', value, raw);
  if (bad) return bad;
  if (value.length !== 15) return { ok: false, message: 'IMSI must be exactly 15 digits' };
  return { ok: true, value };
}

export function checkEid(raw: string): Checked {
  const value = normalise(raw);
  const bad = digitsOnly('EID', value, raw);
  if (bad) return bad;
  if (value.length !== 32) return { ok: false, message: 'EID must be exactly 32 digits' };
  if (mod97(value) !== 1) return { ok: false, message: 'EID check digits are wrong' };
  return { ok: true, value };
}

export function checkImei(raw: string): Checked {
  const value = normalise(raw);
  const bad = digitsOnly('IMEI', value, raw);
  if (bad) return bad;
  if (value.length !== 15) return { ok: false, message: 'IMEI must be exactly 15 digits' };
  if (!luhnValid(value)) return { ok: false, message: 'IMEI check digit is wrong' };
  return { ok: true, value };
}

/** MSISDN has no standard format here (docs/identifiers.md); keep it to what a phone number can be (E.164: up to 15 digits). */
export function checkMsisdn(raw: string): Checked {
  const value = normalise(raw).replace(/^\+/, '');
  const bad = digitsOnly('MSISDN', value, raw);
  if (bad) return bad;
  if (value.length < 5 || value.length > 15) return { ok: false, message: 'MSISDN must be 5 to 15 digits' };
  return { ok: true, value };
}

/** A SIM's identifier columns a search can match, by prefix. */
export type SimIdentifierColumn = 'iccid' | 'imsi' | 'eid';

/**
 * The identifiers a typed digit prefix can be the start of, from the rules above: an ICCID (at most 20
 * digits, starting 89), an IMSI (at most 15), an EID (32, any digits). The one rule the picker and the SIMs
 * inventory search by: each column is a branch of the search, read through its own index.
 */
export function prefixColumns(prefix: string): SimIdentifierColumn[] {
  const columns: SimIdentifierColumn[] = [];
  if (prefix.length <= 20 && ('89'.startsWith(prefix) || prefix.startsWith('89'))) columns.push('iccid');
  if (prefix.length <= 15) columns.push('imsi');
  if (prefix.length <= 32) columns.push('eid');
  return columns;
}
