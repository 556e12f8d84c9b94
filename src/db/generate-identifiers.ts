// Valid identifiers (real check digits) from a serial number, for demo data, bulk data and tests.
// `series` keeps sets apart: demo SIMs, bulk SIMs and each test's SIMs never collide.
import { eidCheckDigits, luhnCheckDigit } from '../domain/identifiers.js';

/** 19-digit ICCID: 89 44 <series: 2> <serial: 12> <Luhn>. */
export function iccidFor(series: number, serial: number): string {
  const body = `8944${pad(series, 2)}${pad(serial, 12)}`;
  return body + luhnCheckDigit(body);
}

/** 15-digit IMSI: MCC 234, MNC 15, then <series: 2> <serial: 8>. */
export function imsiFor(series: number, serial: number): string {
  return `23415${pad(series, 2)}${pad(serial, 8)}`;
}

/** 32-digit EID: 89 049 032 <series: 4> <serial: 18> <check: 2> (mod 97 = 1). */
export function eidFor(series: number, serial: number): string {
  const body = `89049032${pad(series, 4)}${pad(serial, 18)}`;
  return body + eidCheckDigits(body);
}

/** 15-digit IMEI: TAC 35 693 803, <serial: 6>, Luhn. */
export function imeiFor(serial: number): string {
  const body = `35693803${pad(serial % 1_000_000, 6)}`;
  return body + luhnCheckDigit(body);
}

export function msisdnFor(series: number, serial: number): string {
  return `447${pad(series, 2)}${pad(serial, 7)}`;
}

function pad(n: number, width: number): string {
  const s = String(n);
  if (s.length > width) throw new RangeError(`${n} does not fit in ${width} digits`);
  return s.padStart(width, '0');
}
