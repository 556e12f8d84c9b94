import { describe, expect, it } from 'vitest';
import {
  checkEid,
  checkIccid,
  checkImei,
  checkImsi,
  checkMsisdn,
  eidCheckDigits,
  luhnCheckDigit,
  luhnValid,
  mod97,
  normalise,
} from '../../src/domain/identifiers.js';
import { eidFor, iccidFor, imeiFor, imsiFor } from '../../src/db/generate-identifiers.js';

describe('EID (ISO/IEC 7064 MOD 97-10)', () => {
  it('accepts the valid examples of the specification (docs/identifiers.md)', () => {
    expect(checkEid('89049032123451234512345678901235')).toEqual({ ok: true, value: '89049032123451234512345678901235' });
    expect(checkEid('89086030202200000022000023022943')).toEqual({ ok: true, value: '89086030202200000022000023022943' });
  });
  it('rejects the invalid example of the specification (docs/identifiers.md)', () => {
    expect(checkEid('89049032123451234512345678901234')).toEqual({ ok: false, message: 'EID check digits are wrong' });
  });
  it('computes mod 97 of a 32-digit number exactly', () => {
    expect(mod97('89049032123451234512345678901235')).toBe(1);
    expect(Number(BigInt('89086030202200000022000023022943') % 97n)).toBe(mod97('89086030202200000022000023022943'));
  });
  it('makes check digits that validate', () => {
    expect(eidCheckDigits('890490321234512345123456789012')).toBe('35');
  });
  it('names the rule that fails', () => {
    expect(checkEid('8904903212345123451234567890123')).toEqual({ ok: false, message: 'EID must be exactly 32 digits' });
    expect(checkEid('8904903212345123451234567890123X')).toEqual({ ok: false, message: 'EID must contain only digits' });
    expect(checkEid('')).toEqual({ ok: false, message: 'Enter the EID' });
  });
});

describe('ICCID (E.118, Luhn)', () => {
  it('accepts 19 and 20 digits with a correct check digit, and strips spaces and dashes', () => {
    expect(checkIccid('8944 1000 0000 0000 018')).toEqual({ ok: true, value: iccidFor(10, 1) });
    const twenty = '894410000000000000' + '1';
    const valid20 = twenty + luhnCheckDigit(twenty);
    expect(checkIccid(valid20)).toEqual({ ok: true, value: valid20 });
    expect(checkIccid(`${valid20.slice(0, 4)}-${valid20.slice(4)}`)).toEqual({ ok: true, value: valid20 });
  });
  it('rejects a wrong check digit, a wrong prefix, a wrong length and letters', () => {
    const good = iccidFor(10, 1);
    const bad = good.slice(0, -1) + ((Number(good.at(-1)) + 1) % 10);
    expect(checkIccid(bad)).toEqual({ ok: false, message: 'ICCID check digit is wrong' });
    const body = '881410000000000001';
    expect(checkIccid(body + luhnCheckDigit(body))).toEqual({ ok: false, message: 'ICCID must start with 89' });
    expect(checkIccid('894410000000000001')).toEqual({ ok: false, message: 'ICCID must be 19 or 20 digits' });
    expect(checkIccid('89441000000000000A2')).toEqual({ ok: false, message: 'ICCID must contain only digits' });
  });
  it('explains an ICCID damaged by a spreadsheet', () => {
    const result = checkIccid('8.94E+19');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toContain('looks like a number formatted by a spreadsheet; export the column as text');
  });
});

describe('IMSI, IMEI, MSISDN', () => {
  it('IMSI is exactly 15 digits', () => {
    expect(checkImsi(imsiFor(10, 1))).toEqual({ ok: true, value: '234151000000001' });
    expect(checkImsi('23415100000000')).toEqual({ ok: false, message: 'IMSI must be exactly 15 digits' });
    expect(checkImsi('2341510000000012')).toEqual({ ok: false, message: 'IMSI must be exactly 15 digits' });
  });
  it('IMEI is 15 digits with a Luhn check digit', () => {
    expect(checkImei('49-015420-323751-8')).toEqual({ ok: true, value: '490154203237518' });
    expect(checkImei('490154203237519')).toEqual({ ok: false, message: 'IMEI check digit is wrong' });
    expect(checkImei(imeiFor(42)).ok).toBe(true);
  });
  it('MSISDN is 5 to 15 digits, a leading + allowed', () => {
    expect(checkMsisdn('+44 7700 900123')).toEqual({ ok: true, value: '447700900123' });
    expect(checkMsisdn('12')).toEqual({ ok: false, message: 'MSISDN must be 5 to 15 digits' });
  });
});

describe('helpers', () => {
  it('normalises what people paste', () => {
    expect(normalise(' 89 44-10\u00a000 ')).toBe('89441000');
  });
  it('Luhn agrees with known numbers', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
  });
  it('generated identifiers are all valid', () => {
    for (let n = 1; n < 500; n += 7) {
      expect(checkIccid(iccidFor(77, n)).ok).toBe(true);
      expect(checkImsi(imsiFor(77, n)).ok).toBe(true);
      expect(checkEid(eidFor(77, n)).ok).toBe(true);
      expect(checkImei(imeiFor(n)).ok).toBe(true);
    }
  });
});
