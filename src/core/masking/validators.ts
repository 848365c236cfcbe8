/**
 * Checksums and structural rules the detectors use to tell a real card number, IBAN or SSN from a
 * number that merely looks like one. All functions are pure and allocation-light: they run on every
 * candidate a detector's regex finds.
 */

/**
 * Luhn (mod 10) check over the decimal digits of `s`, ignoring every other character.
 * ISO/IEC 7812-1:2017, Annex B ("Luhn formula for computing modulus 10 double-add-double check digits").
 */
export function luhnValid(s: string): boolean {
  let sum = 0;
  let double = false;
  let digits = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    digits++;
    if (double) {
      const d = c * 2;
      sum += d > 9 ? d - 9 : d;
    } else {
      sum += c;
    }
    double = !double;
  }
  return digits > 1 && sum % 10 === 0;
}

/** Card brands by issuer identification number (IIN) prefix and permitted PAN lengths. */
export type CardBrand = 'visa' | 'mastercard' | 'amex' | 'discover' | 'jcb' | 'diners' | 'unionpay' | 'maestro';

/**
 * The brand of a primary account number (digits only), or `undefined` when no major brand issues
 * that prefix at that length. IIN ranges: ISO/IEC 7812-1 registry as published by the schemes
 * (Visa 4; Mastercard 51–55 and 2221–2720; Amex 34, 37; Discover 6011, 644–649, 65, 622126–622925;
 * JCB 3528–3589; Diners 300–305, 3095, 36, 38–39; UnionPay 62, 81; Maestro 5018, 5020, 5038, 5893,
 * 6304, 6759, 6761–6763).
 */
export function cardBrand(pan: string): CardBrand | undefined {
  const n = pan.length;
  if (n < 12 || n > 19) return undefined;
  const p1 = pan.charCodeAt(0) - 48;
  const p2 = p1 * 10 + pan.charCodeAt(1) - 48;
  const p3 = p2 * 10 + pan.charCodeAt(2) - 48;
  const p4 = p3 * 10 + pan.charCodeAt(3) - 48;
  const p6 = p4 * 100 + (pan.charCodeAt(4) - 48) * 10 + pan.charCodeAt(5) - 48;
  switch (p1) {
    case 4:
      return n === 13 || n === 16 || n === 19 ? 'visa' : undefined;
    case 2:
      return p4 >= 2221 && p4 <= 2720 && n === 16 ? 'mastercard' : undefined;
    case 5:
      if (p2 >= 51 && p2 <= 55) return n === 16 ? 'mastercard' : undefined;
      if (p4 === 5018 || p4 === 5020 || p4 === 5038 || p4 === 5893) return n >= 12 ? 'maestro' : undefined;
      return undefined;
    case 3:
      if (p2 === 34 || p2 === 37) return n === 15 ? 'amex' : undefined;
      if (p4 >= 3528 && p4 <= 3589) return n >= 16 ? 'jcb' : undefined;
      if ((p3 >= 300 && p3 <= 305) || p4 === 3095 || p2 === 36 || p2 === 38 || p2 === 39) return n >= 14 ? 'diners' : undefined;
      return undefined;
    case 6:
      if (p4 === 6011 || (p3 >= 644 && p3 <= 649) || p2 === 65) return n >= 16 ? 'discover' : undefined;
      if (p6 >= 622126 && p6 <= 622925) return n >= 16 ? 'discover' : undefined;
      if (p2 === 62) return n >= 16 ? 'unionpay' : undefined;
      if (p4 === 6304 || p4 === 6759 || p4 === 6761 || p4 === 6762 || p4 === 6763) return 'maestro';
      return undefined;
    case 8:
      return p2 === 81 && n >= 16 ? 'unionpay' : undefined;
    default:
      return undefined;
  }
}

/**
 * IBAN length per country code. ISO 13616-1:2020; lengths from the SWIFT IBAN Registry
 * (release 99, 2025), which is the registration authority's published table.
 */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = Object.freeze({
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28, IE: 22,
  IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20,
  LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28, NL: 18,
  NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24, SC: 31,
  SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26, UA: 29,
  VA: 22, VG: 24, XK: 20, YE: 30,
});

/**
 * True when `iban` (upper-case letters and digits only, no spaces) has its country's registered
 * length and a valid ISO 7064 MOD 97-10 check: move the first four characters to the end, replace
 * letters by 10–35, and the number mod 97 must be 1 (ISO 13616-1:2020, clause 7 and Annex B).
 */
export function ibanValid(iban: string): boolean {
  const len = IBAN_LENGTHS[iban.slice(0, 2)];
  if (len === undefined || iban.length !== len) return false;
  const c2 = iban.charCodeAt(2) - 48;
  const c3 = iban.charCodeAt(3) - 48;
  if (c2 < 0 || c2 > 9 || c3 < 0 || c3 > 9) return false;
  let rem = 0;
  for (let k = 0; k < len; k++) {
    const c = iban.charCodeAt((k + 4) % len);
    if (c >= 48 && c <= 57) rem = (rem * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) rem = (rem * 100 + (c - 55)) % 97;
    else return false;
  }
  return rem === 1;
}

/**
 * US Social Security Number rules (SSA, "Social Security Number Randomization", 2011, and POMS
 * RM 10201.035): area 000, 666 and 900–999 are never issued, group 00 and serial 0000 are never
 * issued. Arguments are the three digit groups as strings.
 */
export function ssnValid(area: string, group: string, serial: string): boolean {
  if (area === '000' || area === '666' || area.charCodeAt(0) === 57) return false;
  return group !== '00' && serial !== '0000';
}

const ASCII_COUNTS = new Int32Array(128);
const ASCII_ORDER = new Uint8Array(128);

/** Shannon entropy of `s` in bits per character (H = −Σ p·log₂p over the character frequencies). */
export function shannonEntropy(s: string): number {
  const n = s.length;
  if (n === 0) return 0;
  // ASCII characters are counted in a reused array (in order of first occurrence, so that the sum
  // is the same as with a Map); other characters in a Map.
  let distinct = 0;
  let other: Map<number, number> | undefined;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) {
      const k = ASCII_COUNTS[c]!;
      if (k === 0) ASCII_ORDER[distinct++] = c;
      ASCII_COUNTS[c] = k + 1;
    } else {
      other ??= new Map();
      other.set(c, (other.get(c) ?? 0) + 1);
    }
  }
  let h = 0;
  for (let k = 0; k < distinct; k++) {
    const c = ASCII_ORDER[k]!;
    const p = ASCII_COUNTS[c]! / n;
    ASCII_COUNTS[c] = 0;
    h -= p * Math.log2(p);
  }
  if (other !== undefined) {
    for (const k of other.values()) {
      const p = k / n;
      h -= p * Math.log2(p);
    }
  }
  return h;
}

/**
 * True when `segment` (base64url, RFC 7515 §2) decodes to a JSON object with a string `alg`: the
 * JOSE header of a JWS or unsecured JWT (RFC 7519 §5, RFC 7515 §4.1.1).
 */
export function jwtHeaderValid(segment: string): boolean {
  if (segment.length > 4096) return false;
  try {
    const header: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}
