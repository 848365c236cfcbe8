/**
 * Content detectors: find sensitive spans (card numbers, API keys, private keys, …) in text.
 *
 * Every detector is a precompiled, bounded regular expression (or a small hand-written scanner)
 * followed by a validator, so that a number that merely looks like a card, or a hex digest that
 * merely looks like a key, is left alone. Detectors run on every value an agent receives, so each
 * one is written to reject benign text quickly: a literal anchor (`AKIA`, `ghp_`, `-----BEGIN`, `@`)
 * before any expensive work, no nested unbounded quantifiers, and every repetition bounded. A
 * {@link Scanner} puts a set of built-in detectors behind one prefilter: a single pass of a
 * deterministic automaton over the text that tells which detectors could find anything and where
 * their first candidate is, so that a benign value costs about one table lookup per character.
 */
import { isIPv6 } from 'node:net';
import { GatehouseError } from '../errors.js';
import { cardBrand, ibanValid, IBAN_LENGTHS, jwtHeaderValid, luhnValid, shannonEntropy, ssnValid } from './validators.js';

/** A half-open span `[start, end)` of UTF-16 code units in the scanned text. */
export interface DetectedRange {
  readonly start: number;
  readonly end: number;
}

/** One content detector. */
export interface Detector {
  /** Name used in policies (`payment_card`, `aws_access_key_id`, or a custom detector's name). */
  readonly name: string;
  /** Label shown by the `redact` strategy: `[card]`, `[aws_access_key]`. */
  readonly type: string;
  /**
   * A cheap necessary condition: when it does not match, `find` finds nothing. For the built-in
   * detectors the {@link Scanner} checks an equivalent (or narrower, still necessary) condition in
   * its prefilter instead. `undefined` means "always run `find`" (custom detectors).
   */
  readonly trigger: RegExp | undefined;
  /** The sensitive spans in `text`, in ascending order (may overlap for custom detectors). */
  find(text: string): DetectedRange[];
}

/** A detected span with the detector that found it. */
export interface Finding extends DetectedRange {
  readonly detector: Detector;
}

const NONE: DetectedRange[] = [];

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isLower = (c: number): boolean => c >= 97 && c <= 122;
const isLetter = (c: number): boolean => isUpper(c) || isLower(c);
const isAlnum = (c: number): boolean => isDigit(c) || isLetter(c);

/** `secret` → `[Ss][Ee][Cc][Rr][Ee][Tt]`: case-insensitive literal without the `i` flag. */
function ci(word: string): string {
  let s = '';
  for (const ch of word) {
    const lo = ch.toLowerCase();
    const up = ch.toUpperCase();
    s += lo === up ? ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&') : `[${up}${lo}]`;
  }
  return s;
}

/**
 * Makes a regex source case-insensitive without the `i` flag: letters outside character classes
 * and escapes become `[Xx]`. Only for simple sources (no letters inside classes, no `\p{…}`).
 */
function ciSource(source: string): string {
  let s = '';
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if (ch === '\\') {
      s += ch + (source[++i] ?? '');
    } else if (ch === '[') {
      const end = source.indexOf(']', i + 1);
      s += source.slice(i, end + 1);
      i = end;
    } else {
      const lo = ch.toLowerCase();
      const up = ch.toUpperCase();
      s += lo === up ? ch : `[${up}${lo}]`;
    }
  }
  return s;
}

/** Runs a global regex over `text`; `accept` returns the span to report (or nothing) per match. */
function collect(re: RegExp, text: string, accept: (m: RegExpExecArray) => DetectedRange | boolean | undefined, from = 0): DetectedRange[] {
  re.lastIndex = from;
  let out: DetectedRange[] | undefined;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    const r = accept(m);
    if (r === false || r === undefined) continue;
    (out ??= []).push(r === true ? { start: m.index, end: m.index + m[0].length } : r);
  }
  return out ?? NONE;
}

/**
 * A built-in detector's body without its trigger test: `from` is a position at or before the
 * start of the first span it could report (the {@link prefilter} knows where the first candidate
 * is), so that it need not rescan the text before it.
 */
type Run = (text: string, from: number) => DetectedRange[];

/** What the {@link Scanner} knows about a built-in detector: its prefilter bit and its body. */
interface BuiltinMeta {
  readonly bit: number;
  readonly run: Run;
}
const BUILTIN_META = new WeakMap<Detector, BuiltinMeta>();

/**
 * A built-in detector: `run` is only called when `trigger` matches somewhere in the text (by
 * `find`), or when the {@link prefilter} sets bit `bit` (by the {@link Scanner}). The prefilter's
 * condition for `bit` is a necessary condition of the detector finding anything.
 */
function builtin(name: string, type: string, trigger: RegExp, bit: number, run: Run): Detector {
  const d: Detector = {
    name,
    type,
    trigger,
    find: (text) => (trigger.test(text) ? run(text, 0) : NONE),
  };
  BUILTIN_META.set(d, { bit, run });
  return d;
}

/** A detector that reports every match of `re` that `accept` (default: all) keeps. */
function regexDetector(
  name: string,
  type: string,
  trigger: RegExp,
  bit: number,
  re: RegExp,
  accept: (m: RegExpExecArray, text: string) => DetectedRange | boolean | undefined = () => true,
): Detector {
  return builtin(name, type, trigger, bit, (text, from) => collect(re, text, (m) => accept(m, text), from));
}

/**
 * Looks like a random token rather than prose: upper- and lower-case letters, and a digit unless the
 * token is long (≥ 32). Random base62/base64 bodies of 32 characters or more lack a digit often
 * enough (a 48-character base62 body about once in 4,500) that requiring one leaked real keys; they
 * essentially never lack either letter case. Prose and identifiers (`sk-abcdefghijklmnopqrstuvwxyz`,
 * hex digests) still fail.
 */
function randomLooking(s: string): boolean {
  let f = 0;
  for (let i = 0; i < s.length && f !== 7; i++) {
    const c = s.charCodeAt(i);
    if (isDigit(c)) f |= 1;
    else if (isUpper(c)) f |= 2;
    else if (isLower(c)) f |= 4;
  }
  return f === 7 || (f === 6 && s.length >= 32);
}

// Prefilter bits, one per trigger of the built-in detectors (`openai_key` and `anthropic_key` share
// `sk-`); see prefilter().
const P_CARD = 0;
const P_IBAN = 1;
const P_SSN = 2;
const P_EMAIL = 3;
const P_PHONE = 4;
const P_IPV4 = 5;
const P_IPV6 = 6;
const P_AWS_ID = 7;
const P_AWS_SECRET = 8;
const P_GOOGLE = 9;
const P_GITHUB = 10;
const P_GITLAB = 11;
const P_SLACK = 12;
const P_STRIPE = 13;
const P_SK = 14;
const P_JWT = 15;
const P_PEM = 16;
const P_CONN = 17;
const P_GENERIC = 18;
const P_COUNT = 19;

// ---------------------------------------------------------------------------------------------
// Payment cards

/** 13 digits with optional single separators, a first group of ≥ 4 and a second of ≥ 3. */
const CARD_SOURCE = '\\d{4}[ -]?\\d{3}[ -]?\\d(?:[ -]?\\d){5}';
const CARD_ANCHOR = new RegExp(CARD_SOURCE, 'g');
const isCardSep = (c: number): boolean => c === 32 || c === 45;

/**
 * Payment card numbers (PANs): 13–19 digits, written plain or in groups separated by one space or
 * dash (the same separator throughout, a first group of at least 4 digits, later groups of at least
 * 3), of a major brand's IIN range and length, passing the Luhn check. A number that is part of a
 * longer digit run, glued to letters (hex digests, identifiers) or part of a decimal fraction is not
 * a card.
 */
const paymentCard = builtin('payment_card', 'card', new RegExp(CARD_SOURCE), P_CARD, (text, from) => {
  const re = CARD_ANCHOR;
  re.lastIndex = from;
  let out: DetectedRange[] | undefined;
  const n = text.length;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    let s = m.index;
    while (s > 0) {
      const c = text.charCodeAt(s - 1);
      if (isDigit(c) || (isCardSep(c) && s >= 2 && isDigit(text.charCodeAt(s - 2)))) s--;
      else break;
    }
    let e = m.index + m[0].length;
    while (e < n) {
      const c = text.charCodeAt(e);
      if (isDigit(c) || (isCardSep(c) && e + 1 < n && isDigit(text.charCodeAt(e + 1)))) e++;
      else break;
    }
    out = cardsInRun(text, s, e, out);
    re.lastIndex = e;
  }
  return out ?? NONE;
});

/** Card numbers inside one maximal run of digits and single separators `text[s, e)`. */
function cardsInRun(text: string, s: number, e: number, out: DetectedRange[] | undefined): DetectedRange[] | undefined {
  const gs: number[] = [];
  const ge: number[] = [];
  for (let i = s; i < e; ) {
    const start = i;
    while (i < e && isDigit(text.charCodeAt(i))) i++;
    gs.push(start);
    ge.push(i);
    i++;
  }
  const g = gs.length;
  const before = s > 0 ? text.charCodeAt(s - 1) : 0;
  const after = e < text.length ? text.charCodeAt(e) : 0;
  const firstTainted = isLetter(before) || ((before === 46 || before === 44) && s >= 2 && isDigit(text.charCodeAt(s - 2)));
  const lastTainted = isLetter(after) || ((after === 46 || after === 44) && e + 1 < text.length && isDigit(text.charCodeAt(e + 1)));
  let gi = 0;
  while (gi < g) {
    if (ge[gi]! - gs[gi]! < 4 || (gi === 0 && firstTainted)) {
      gi++;
      continue;
    }
    const sep = gi + 1 < g ? text.charCodeAt(ge[gi]!) : 0;
    let digits = 0;
    let matched = -1;
    const ends: number[] = [];
    const counts: number[] = [];
    for (let gj = gi; gj < g; gj++) {
      const len = ge[gj]! - gs[gj]!;
      if (gj > gi && (text.charCodeAt(ge[gj - 1]!) !== sep || len < 3)) break;
      if (gj === g - 1 && lastTainted) break;
      digits += len;
      if (digits > 19) break;
      ends.push(gj);
      counts.push(digits);
    }
    for (let k = ends.length - 1; k >= 0 && counts[k]! >= 13; k--) {
      const gj = ends[k]!;
      const raw = text.slice(gs[gi]!, ge[gj]!);
      const pan = gj === gi ? raw : raw.replace(/[ -]/g, '');
      if (cardBrand(pan) !== undefined && luhnValid(pan)) {
        (out ??= []).push({ start: gs[gi]!, end: ge[gj]! });
        matched = gj;
        break;
      }
    }
    gi = matched >= 0 ? matched + 1 : gi + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// IBAN

const IBAN_SOURCE = '[A-Z]{2}\\d\\d ?[A-Z0-9]{4}';
const IBAN_ANCHOR = new RegExp(IBAN_SOURCE, 'g');

/**
 * International Bank Account Numbers (ISO 13616): a registered country code, the country's exact
 * length (electronic form, or the print form in groups separated by single spaces) and a valid
 * MOD 97-10 check.
 */
const iban = builtin('iban', 'iban', new RegExp(IBAN_SOURCE), P_IBAN, (text, from) =>
  collect(IBAN_ANCHOR, text, (m) => {
    const s = m.index;
    if (s > 0 && isAlnum(text.charCodeAt(s - 1))) return undefined;
    const len = IBAN_LENGTHS[text.slice(s, s + 2)];
    if (len === undefined) return undefined;
    let chars = text.slice(s, s + 4);
    let i = s + 4;
    const n = text.length;
    while (chars.length < len && i < n) {
      const c = text.charCodeAt(i);
      if (isUpper(c) || isDigit(c)) {
        chars += text[i];
        i++;
      } else if (c === 32 && i + 1 < n && (isUpper(text.charCodeAt(i + 1)) || isDigit(text.charCodeAt(i + 1)))) {
        i++;
      } else break;
    }
    if (chars.length !== len || (i < n && isAlnum(text.charCodeAt(i))) || !ibanValid(chars)) return undefined;
    IBAN_ANCHOR.lastIndex = i;
    return { start: s, end: i };
  }, from),
);

// ---------------------------------------------------------------------------------------------
// US SSN

const SSN_RE = /\d{3}([- ])\d\d\1\d{4}/g;
const SSN_KEYWORD_RE = /(?<![A-Za-z])(?:ssn|social[ _-]?security(?:[ _-]?(?:number|num|no))?)["']?[ \t]{0,3}[:=#]?[ \t]{0,3}["']?(\d{9})(?!\d)/gi;
const SSN_KEYWORD = /ssn|social/i;

/**
 * US Social Security Numbers: `123-45-6789` / `123 45 6789` (not inside a longer run of digits and
 * separators), or nine bare digits right after an `ssn` / `social security` label; never-issued
 * numbers (see {@link ssnValid}) are ignored.
 */
const usSsn = builtin('us_ssn', 'ssn', new RegExp(`\\d{3}[- ]\\d\\d[- ]\\d{4}|${ci('ssn')}|${ci('social')}`), P_SSN, (text, from) => {
  const n = text.length;
  const a = collect(SSN_RE, text, (m) => {
    const s = m.index;
    const e = s + 11;
    const sep = m[1]!.charCodeAt(0);
    const b1 = s > 0 ? text.charCodeAt(s - 1) : 0;
    const a1 = e < n ? text.charCodeAt(e) : 0;
    if (isDigit(b1) || b1 === 45 || b1 === 46 || isDigit(a1) || a1 === 45) return undefined;
    if (a1 === 46 && e + 1 < n && isDigit(text.charCodeAt(e + 1))) return undefined;
    if (sep === 32 && ((b1 === 32 && s >= 2 && isDigit(text.charCodeAt(s - 2))) || (a1 === 32 && e + 1 < n && isDigit(text.charCodeAt(e + 1))))) return undefined;
    return ssnValid(text.slice(s, s + 3), text.slice(s + 4, s + 6), text.slice(s + 7, e));
  }, from);
  if (!SSN_KEYWORD.test(text)) return a;
  const b = collect(SSN_KEYWORD_RE, text, (m) => {
    const d = m[1]!;
    if (!ssnValid(d.slice(0, 3), d.slice(3, 5), d.slice(5))) return undefined;
    const end = m.index + m[0].length;
    return { start: end - 9, end };
  }, from);
  return b.length === 0 ? a : a.length === 0 ? b : [...a, ...b].sort((x, y) => x.start - y.start);
});

// ---------------------------------------------------------------------------------------------
// E-mail

const EMAIL_DOMAIN = /(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,10}[A-Za-z]{2,24}(?![A-Za-z0-9-])/y;
const isEmailLocal = (c: number): boolean => isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;

/** True when the local part starting at `s` is really the user-info of a URL (`scheme://user:pw@`). */
function inUrlUserinfo(text: string, s: number): boolean {
  if (s >= 3 && text.startsWith('://', s - 3)) return true;
  if (s < 1 || text.charCodeAt(s - 1) !== 58) return false;
  const floor = Math.max(0, s - 260);
  for (let i = s - 2; i >= floor + 2; i--) {
    const c = text.charCodeAt(i);
    if (c === 47 && text.charCodeAt(i - 1) === 47 && text.charCodeAt(i - 2) === 58) return true;
    if (c <= 32 || c === 47 || c === 64) return false;
  }
  return false;
}

/** E-mail addresses: `local@domain.tld` (RFC 5321 dot-atom local part, DNS labels, alphabetic TLD). */
const email = builtin('email', 'email', /@/, P_EMAIL, (text, from) => {
  let out: DetectedRange[] | undefined;
  for (let at = text.indexOf('@', from); at !== -1; ) {
    let s = at;
    const floor = Math.max(0, at - 64);
    while (s > floor && isEmailLocal(text.charCodeAt(s - 1))) s--;
    const tooLong = s === floor && s > 0 && isEmailLocal(text.charCodeAt(s - 1));
    while (s < at && text.charCodeAt(s) === 46) s++;
    let next = at + 1;
    if (s < at && !tooLong && text.charCodeAt(at - 1) !== 46) {
      EMAIL_DOMAIN.lastIndex = at + 1;
      const m = EMAIL_DOMAIN.exec(text);
      if (m !== null && !inUrlUserinfo(text, s)) {
        next = at + 1 + m[0].length;
        (out ??= []).push({ start: s, end: next });
      }
    }
    at = text.indexOf('@', next);
  }
  return out ?? NONE;
});

// ---------------------------------------------------------------------------------------------
// Phone

/**
 * Phone numbers in international form (E.164-ish): `+`, a country code, and 7–15 digits in all,
 * optionally grouped with spaces, dashes, dots or parentheses (`+1 (415) 555-2671`, `+44 20 7946 0958`).
 * Numbers without the leading `+` are not reported: too many ordinary numbers look like them.
 */
const phone = builtin('phone', 'phone', /\+\(?[1-9]/, P_PHONE, (text, from) => {
  let out: DetectedRange[] | undefined;
  const n = text.length;
  for (let p = text.indexOf('+', from); p !== -1; ) {
    let next = p + 1;
    const prev = p > 0 ? text.charCodeAt(p - 1) : 32;
    if (!isAlnum(prev) && prev !== 43) {
      let i = p + 1;
      if (i < n && text.charCodeAt(i) === 40) i++;
      const c0 = i < n ? text.charCodeAt(i) : 0;
      if (c0 >= 49 && c0 <= 57) {
        let digits = 0;
        let seps = 0;
        let end = i;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (isDigit(c)) {
            digits++;
            seps = 0;
            i++;
            end = i;
            if (digits > 15) break;
          } else if ((c === 32 || c === 45 || c === 46 || c === 40 || c === 41) && seps < 2) {
            seps++;
            i++;
          } else break;
        }
        const after = end < n ? text.charCodeAt(end) : 32;
        if (digits >= 7 && digits <= 15 && !isAlnum(after)) {
          (out ??= []).push({ start: p, end });
          next = end;
        }
      }
    }
    p = text.indexOf('+', next);
  }
  return out ?? NONE;
});

// ---------------------------------------------------------------------------------------------
// IP addresses (off by default)

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';

/** IPv4 addresses in dotted-quad form (not a version string like `1.2.3.4.5`). */
const ipv4 = regexDetector('ipv4', 'ip', /\d\.\d{1,3}\.\d/, P_IPV4, new RegExp(`(?<![\\d.])(?:${OCTET}\\.){3}${OCTET}(?!\\d|\\.\\d)`, 'g'));

/** IPv6 addresses (RFC 4291 §2.2 text forms, validated by `net.isIPv6`). */
const ipv6 = regexDetector(
  'ipv6',
  'ip',
  /[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:|::/,
  P_IPV6,
  /(?<![0-9A-Za-z:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?![0-9A-Za-z:])/g,
  (m) => /[0-9A-Fa-f]/.test(m[0]) && isIPv6(m[0]),
);

// ---------------------------------------------------------------------------------------------
// Cloud and SaaS credentials

/** AWS access key ids: `AKIA` (long-term) / `ASIA` (STS) and the rarer `ABIA`, `ACCA`, `A3T…` + 16. */
const awsAccessKeyId = regexDetector(
  'aws_access_key_id',
  'aws_access_key',
  /A(?:KIA|SIA|BIA|CCA|3T)[A-Z0-9]{16}/,
  P_AWS_ID,
  /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])/g,
);

/** Names of secrets in `name = value` assignments (see {@link genericSecret}). */
const SECRET_NAME = '(?:secret|api[_-]?key|access[_-]?key|token|passw(?:or)?d|pwd|passphrase|credential|private[_-]?key|auth)';
const SECRET_ASSIGNMENT = `[A-Za-z0-9_.-]{0,32}\\\\?["'\`]?[ \\t]{0,8}[:=]`;

/**
 * Shared by `aws_secret_key` and `generic_secret`: both start at a secret-sounding word, and the
 * {@link Scanner} needs one trigger per starting point to see both.
 */
const SECRET_WORD_TRIGGER = new RegExp(`${ci('aws')}|${ciSource(SECRET_NAME)}${SECRET_ASSIGNMENT}|${ci('secret')}`);

const AWS_SECRET_KEYWORD = /aws|secret/gi;
const AWS_SECRET_CANDIDATE = /(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g;

/** AWS secret access keys: 40 base64 characters within 80 characters after `aws` or `secret`. */
const awsSecretKey = builtin('aws_secret_key', 'aws_secret_key', SECRET_WORD_TRIGGER, P_AWS_SECRET, (text, from) => {
  if (text.length < 43) return NONE;
  let out: DetectedRange[] | undefined;
  let last = -1;
  AWS_SECRET_KEYWORD.lastIndex = from;
  let k: RegExpExecArray | null;
  while ((k = AWS_SECRET_KEYWORD.exec(text)) !== null) {
    const after = k.index + k[0].length;
    const window = text.slice(after, after + 121);
    for (const m of window.matchAll(AWS_SECRET_CANDIDATE)) {
      if (m.index > 80) break;
      const start = after + m.index;
      if (start < last || !randomLooking(m[0]) || shannonEntropy(m[0]) < 3.5) continue;
      if (start > 0 && /[A-Za-z0-9/+=]/.test(text[start - 1]!)) continue;
      (out ??= []).push({ start, end: start + 40 });
      last = start + 40;
    }
  }
  return out ?? NONE;
});

/** Google API keys: `AIza` + 35 characters. */
const googleApiKey = regexDetector(
  'google_api_key',
  'google_api_key',
  /AIza/,
  P_GOOGLE,
  /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g,
);

/** GitHub tokens: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` + 36 or more, fine-grained `github_pat_…`. */
const githubToken = regexDetector(
  'github_token',
  'github_token',
  /gh[pousr]_|github_pat_/,
  P_GITHUB,
  /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})(?![A-Za-z0-9_])/g,
);

/** Trims trailing `.`/`-` (sentence punctuation) from a token match whose alphabet includes them. */
function trimTrailingPunct(m: RegExpExecArray, min: number): DetectedRange | undefined {
  let end = m.index + m[0].length;
  const start = m.index;
  while (end > start && (m.input.charCodeAt(end - 1) === 46 || m.input.charCodeAt(end - 1) === 45)) end--;
  return end - start >= min ? { start, end } : undefined;
}

/** GitLab tokens: personal (`glpat-`), deploy, runner, trigger, feed, OAuth, agent, … */
const gitlabToken = regexDetector(
  'gitlab_token',
  'gitlab_token',
  /gl(?:pat|dt|rt|ptt|ft|imt|cbt|soat|oas|agent)-/,
  P_GITLAB,
  /(?<![A-Za-z0-9_-])(?:glpat|gldt|glrt|glptt|glft|glimt|glcbt|glsoat|gloas|glagent)-[A-Za-z0-9_.-]{20,250}(?![A-Za-z0-9_-])/g,
  (m) => trimTrailingPunct(m, 26),
);

/** Slack tokens (`xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xoxe-`, `xapp-`) and webhook URLs. */
const slackToken = regexDetector(
  'slack_token',
  'slack_token',
  /xox[abeprs]|xapp-|hooks\.slack\.com/,
  P_SLACK,
  /(?<![A-Za-z0-9])(?:xox[abeprs](?:\.xox[bp])?-[A-Za-z0-9-]{10,250}|xapp-\d-[A-Za-z0-9-]{10,250})(?![A-Za-z0-9-])|https?:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/+-]{8,250}/g,
);

/** Stripe keys: secret `sk_`, restricted `rk_`, publishable `pk_`, live and test. */
const stripeKey = regexDetector(
  'stripe_key',
  'stripe_key',
  /[spr]k_(?:live|test)_/,
  P_STRIPE,
  /(?<![A-Za-z0-9_])[spr]k_(?:live|test)_[A-Za-z0-9]{10,247}(?![A-Za-z0-9_])/g,
);

/** Shared by `openai_key` and `anthropic_key` (both start with `sk-`). */
const SK_TRIGGER = /(?<![A-Za-z0-9_-])sk-/;

/** OpenAI-style keys: `sk-…`, `sk-proj-…`, `sk-svcacct-…`, `sk-admin-…` with a random body. */
const openaiKey = regexDetector(
  'openai_key',
  'openai_key',
  SK_TRIGGER,
  P_SK,
  /(?<![A-Za-z0-9_-])sk-(?!ant-)(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])/g,
  (m) => randomLooking(m[0]) && shannonEntropy(m[0]) >= 3.5,
);

/** Anthropic keys: `sk-ant-api03-…`, `sk-ant-admin01-…`, `sk-ant-oat01-…`. */
const anthropicKey = regexDetector(
  'anthropic_key',
  'anthropic_key',
  SK_TRIGGER,
  P_SK,
  /(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])/g,
  (m) => randomLooking(m[0]),
);

// ---------------------------------------------------------------------------------------------
// Tokens, keys, passwords

/** JSON Web Tokens (JWS compact serialization): three base64url parts; the first decodes to a JOSE header. */
const jwt = regexDetector(
  'jwt',
  'jwt',
  /eyJ[A-Za-z0-9_-]{4}/,
  P_JWT,
  /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,4096}\.[A-Za-z0-9_-]{2,65536}\.[A-Za-z0-9_-]{0,8192}(?![A-Za-z0-9_-])/g,
  (m) => jwtHeaderValid(m[0].slice(0, m[0].indexOf('.'))),
);

const PEM_BEGIN = /-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----/g;
const PEM_END = /-----END (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----/g;

/**
 * PEM private keys (RFC 7468 labels: `PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `RSA`/`EC`/`DSA`/`OPENSSH
 * PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`), from the BEGIN line through the END line. A block whose END
 * line is missing (a truncated value) is masked to the end of the text.
 */
const privateKey = builtin('private_key', 'private_key', /-----BEGIN /, P_PEM, (text, from) =>
  collect(PEM_BEGIN, text, (m) => {
    PEM_END.lastIndex = m.index + m[0].length;
    const e = PEM_END.exec(text);
    const end = e === null ? text.length : e.index + e[0].length;
    PEM_BEGIN.lastIndex = end;
    return { start: m.index, end };
  }, from),
);

/**
 * The password in a URL's user-info (`postgres://user:password@host/db`, RFC 3986 §3.2.1): only the
 * password is reported, so the user and host stay readable.
 */
const connectionStringPassword = builtin('connection_string_password', 'password', /:\/\/[^\s@]{1,1024}@/, P_CONN, (text, from) => {
  let out: DetectedRange[] | undefined;
  const n = text.length;
  for (let p = text.indexOf('://', from); p !== -1; ) {
    const s = p + 3;
    const limit = Math.min(n, s + 1024);
    let e = s;
    let at = -1;
    let colon = -1;
    while (e < limit) {
      const c = text.charCodeAt(e);
      if (c <= 32 || c === 34 || c === 39 || c === 60 || c === 62 || c === 96) break;
      if (c === 64) at = e;
      else if (c === 58 && colon === -1) colon = e;
      e++;
    }
    let next = s;
    if (at > s && colon !== -1 && colon < at - 1) {
      let userOk = true;
      for (let i = s; i < colon && userOk; i++) {
        const c = text.charCodeAt(i);
        userOk = c !== 47 && c !== 63 && c !== 35 && c !== 64;
      }
      const h = at + 1 < n ? text.charCodeAt(at + 1) : 0;
      if (userOk && (isAlnum(h) || h === 91)) {
        (out ??= []).push({ start: colon + 1, end: at });
        next = at;
      }
    }
    p = text.indexOf('://', next);
  }
  return out ?? NONE;
});

const isQuote = (c: number): boolean => c === 34 || c === 39 || c === 96;

/**
 * The value of a secret assignment looks random: at least 3.5 bits of Shannon entropy per
 * character, or — for short values, whose entropy cannot reach that (a 12-character string has at
 * most log₂ 12 ≈ 3.58 bits, and two thirds of random 12-character base64 strings stay below 3.5) —
 * upper- and lower-case letters and digits with entropy within 0.6 bit of the most its length
 * allows (few repeated characters).
 */
function secretValue(v: string): boolean {
  const h = shannonEntropy(v);
  if (h >= 3.5) return true;
  return h >= Math.log2(v.length) - 0.6 && randomLooking(v);
}

/** `Bearer xyz`, `Basic xyz`, `token xyz`: the credential is the second word. */
const AUTH_SCHEME = /(?:bearer|basic|token|digest|negotiate) +/iy;

/**
 * `secret=…`, `api_key: …`, `"password": "…"`, `Authorization: Bearer …`: an assignment to a
 * secret-sounding name whose value is at least 12 characters and looks random, not like a word
 * (see {@link secretValue}). Only the value is reported.
 */
const genericSecret = builtin('generic_secret', 'secret', SECRET_WORD_TRIGGER, P_GENERIC, (text, from) => {
  if (text.length < 16) return NONE;
  // The names are found by the prefilter's automaton for this family alone: a case-insensitive
  // alternation is a slow regex. Like a global regex, each match (name and assignment) is looked
  // at once: names inside an earlier assignment or inside a reported value are skipped.
  const a = automaton(1 << P_GENERIC);
  const delta = a.delta;
  const accepting = a.accepting;
  const n = text.length;
  let out: DetectedRange[] | undefined;
  let skip = from;
  let state = a.initial;
  for (let i = from; i < n; i++) {
    const c = text.charCodeAt(i);
    state = delta[(state << 7) | (c < 128 ? c : 0)]!;
    if (state < accepting) continue;
    const ends = a.ends[state - accepting]!;
    for (let e = 0; e < ends.length; e++) {
      const name = i + 1 - ends[e]!.sets.length;
      if (name < skip) continue;
      const len = secretNameAt(text, name);
      const at = len === 0 ? -1 : assignmentAt(text, name + len);
      if (at === -1) continue;
      skip = at;
      if (!secretValueSpan(text, name, at)) continue;
      const start = VALUE_START;
      const end = VALUE_END;
      if (end - start >= 12 && secretValue(text.slice(start, end))) {
        (out ??= []).push({ start, end });
        skip = end;
      }
    }
  }
  return out ?? NONE;
});

/** The span {@link secretValueSpan} found. */
let VALUE_START = 0;
let VALUE_END = 0;

/**
 * The value assigned to a secret name that starts at `name`, the assignment's `:` or `=` ending at
 * `i`: skips `>` (`=>`) or `=` (`:=`), blanks, an optional backslash and quote and an auth scheme
 * (`Bearer `), then runs to the closing quote or, unquoted, to a blank or delimiter (at most 512
 * characters). Sets {@link VALUE_START} and {@link VALUE_END}; false when there is no value (an
 * escaped assignment without a quote).
 */
function secretValueSpan(text: string, name: number, i: number): boolean {
  const n = text.length;
  if (text.charCodeAt(i - 1) === 61 && i < n && text.charCodeAt(i) === 62) i++;
  else if (text.charCodeAt(i - 1) === 58 && i < n && text.charCodeAt(i) === 61) i++;
  while (i < n && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9) && i - name < 100) i++;
  let escaped = false;
  if (i < n && text.charCodeAt(i) === 92) {
    escaped = true;
    i++;
  }
  let quote = 0;
  if (i < n && isQuote(text.charCodeAt(i))) quote = text.charCodeAt(i++);
  else if (escaped) return false;
  AUTH_SCHEME.lastIndex = i;
  if (AUTH_SCHEME.test(text)) i = AUTH_SCHEME.lastIndex;
  const start = i;
  const limit = Math.min(n, start + 512);
  while (i < limit) {
    const v = text.charCodeAt(i);
    if (quote === 0) {
      if (v <= 32 || isQuote(v) || v === 44 || v === 59 || v === 38 || v === 60 || v === 62 || v === 41 || v === 125 || v === 93) break;
    } else if (v === 92) {
      if (escaped && i + 1 < n && text.charCodeAt(i + 1) === quote) break;
      i++;
    } else if (v === quote || v === 10 || v === 13) break;
    i++;
  }
  VALUE_START = start;
  VALUE_END = i > limit ? limit : i;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Registry

/** Every built-in detector, by name. */
export const BUILTIN_DETECTORS: ReadonlyMap<string, Detector> = new Map(
  [
    paymentCard, iban, usSsn, email, phone, ipv4, ipv6,
    awsAccessKeyId, awsSecretKey, googleApiKey, githubToken, gitlabToken, slackToken, stripeKey, openaiKey, anthropicKey,
    jwt, privateKey, connectionStringPassword, genericSecret,
  ].map((d) => [d.name, d]),
);

const API_KEY = ['aws_access_key_id', 'aws_secret_key', 'google_api_key', 'github_token', 'gitlab_token', 'slack_token', 'stripe_key', 'openai_key', 'anthropic_key'];

/**
 * Detector groups usable wherever a detector name is: `api_key` (vendor keys), `secrets` (keys,
 * private keys, JWTs, connection-string passwords, generic secrets), `pii`, `ip`, `default`
 * (everything but IP addresses) and `all`. `custom` (every custom detector) is resolved per masker.
 */
export const DETECTOR_GROUPS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  api_key: API_KEY,
  secrets: [...API_KEY, 'private_key', 'jwt', 'connection_string_password', 'generic_secret'],
  pii: ['email', 'phone', 'us_ssn', 'iban', 'payment_card'],
  ip: ['ipv4', 'ipv6'],
  default: [...BUILTIN_DETECTORS.keys()].filter((n) => n !== 'ipv4' && n !== 'ipv6'),
  all: [...BUILTIN_DETECTORS.keys()],
});

/** The default detectors (every built-in except `ipv4`/`ipv6`). */
export function defaultDetectors(): Detector[] {
  return DETECTOR_GROUPS.default!.map((n) => BUILTIN_DETECTORS.get(n)!);
}

/**
 * Resolves detector and group names (case-insensitive) to detectors, de-duplicated, in registry
 * order. Throws `ERR_CONFIG` naming the first unknown name.
 */
export function resolveDetectors(names: readonly string[], custom: readonly Detector[] = []): Detector[] {
  const byName = new Map<string, Detector>(BUILTIN_DETECTORS);
  for (const d of custom) byName.set(d.name, d);
  const picked = new Set<Detector>();
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    const group = name === 'custom' ? custom.map((d) => d.name) : DETECTOR_GROUPS[name];
    const members = group ?? [name];
    for (const member of members) {
      const d = byName.get(member);
      if (d === undefined) throw new GatehouseError('ERR_CONFIG', `unknown detector "${raw}"`);
      picked.add(d);
    }
  }
  return [...byName.values()].filter((d) => picked.has(d));
}

// ---------------------------------------------------------------------------------------------
// Prefilter

/** The prefilter's result: bit `1 << P_x` is set when detector family `P_x` may find something. */
let HITS = 0;
/** Per family found, a position at or before the start of the first span its detectors could report. */
const FROM = new Int32Array(P_COUNT);

function mark(p: number, pos: number): void {
  const b = 1 << p;
  if ((HITS & b) === 0) {
    HITS |= b;
    FROM[p] = pos;
  } else if (pos < FROM[p]!) FROM[p] = pos;
}

/** ASCII case-insensitive: `text` at `i` spells `word` (lower-case letters only). */
function ciAt(text: string, i: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) if ((text.charCodeAt(i + k) | 32) !== word.charCodeAt(k)) return false;
  return true;
}

/** `name[_-]?suffix` (case-insensitive) at `i`: the length matched, or 0. */
function ciJoined(text: string, i: number, name: string, suffix: string): number {
  if (!ciAt(text, i, name)) return 0;
  let j = i + name.length;
  const c = text.charCodeAt(j);
  if (c === 95 || c === 45) j++;
  return ciAt(text, j, suffix) ? j + suffix.length - i : 0;
}

/** The length of the secret name ({@link SECRET_NAME}, case-insensitive) at `i`, or 0. */
function secretNameAt(text: string, i: number): number {
  switch (text.charCodeAt(i) | 32) {
    case 115: // s
      return ciAt(text, i, 'secret') ? 6 : 0;
    case 97: // a
      return ciJoined(text, i, 'api', 'key') || ciJoined(text, i, 'access', 'key') || (ciAt(text, i, 'auth') ? 4 : 0);
    case 116: // t
      return ciAt(text, i, 'token') ? 5 : 0;
    case 112: // p
      if (ciAt(text, i, 'pwd')) return 3;
      if (ciAt(text, i, 'passw')) return (text.charCodeAt(i + 5) | 32) === 100 ? 6 : ciAt(text, i + 5, 'ord') ? 8 : 0;
      if (ciAt(text, i, 'passphrase')) return 10;
      return ciJoined(text, i, 'private', 'key');
    case 99: // c
      return ciAt(text, i, 'credential') ? 10 : 0;
    default:
      return 0;
  }
}

/**
 * {@link SECRET_ASSIGNMENT} at `j` (`[A-Za-z0-9_.-]{0,32}\\?["'`]?[ \t]{0,8}[:=]`): the position after
 * it, or -1.
 */
function assignmentAt(text: string, j: number): number {
  const end = j + 33;
  while (j < end) {
    const c = text.charCodeAt(j);
    if (isAlnum(c) || c === 95 || c === 46 || c === 45) j++;
    else break;
  }
  if (j === end) return -1;
  if (text.charCodeAt(j) === 92) j++;
  if (isQuote(text.charCodeAt(j))) j++;
  for (let k = 0; k < 8 && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 9); k++) j++;
  const c = text.charCodeAt(j);
  return c === 58 || c === 61 ? j + 1 : -1;
}

/**
 * The secret name at `name` is assigned a value long enough for {@link genericSecret}. Like the
 * detector, moves {@link ASSIGNED_TO} past the assignment.
 */
function assignmentLong(text: string, name: number): boolean {
  const len = secretNameAt(text, name);
  const a = len === 0 ? -1 : assignmentAt(text, name + len);
  if (a === -1) return false;
  ASSIGNED_TO = a;
  return text.length >= 16 && secretValueSpan(text, name, a) && VALUE_END - VALUE_START >= 12;
}

/** `count` characters of `[A-Z0-9]` at `j`. */
function upperAlnumAt(text: string, j: number, count: number): boolean {
  for (let k = 0; k < count; k++) {
    const c = text.charCodeAt(j + k);
    if (!isUpper(c) && !isDigit(c)) return false;
  }
  return true;
}

const isB64Url = (c: number): boolean => isAlnum(c) || c === 95 || c === 45;

/**
 * A maximal run of digits joined by single spaces or dashes, starting at `s`: card and SSN
 * candidates. Returns the run's end.
 */
function digitRun(text: string, s: number): number {
  const n = text.length;
  const prev = s > 0 ? text.charCodeAt(s - 1) : 0;
  // A card never starts in a first group glued to letters or after a decimal point (see cardsInRun).
  let tainted = isLetter(prev) || ((prev === 46 || prev === 44) && s >= 2 && isDigit(text.charCodeAt(s - 2)));
  let cardDigits = 0;
  let len1 = -1;
  let len2 = -1;
  let start1 = s;
  let start2 = s;
  let gs = s;
  let j = s;
  for (;;) {
    while (j < n && isDigit(text.charCodeAt(j))) j++;
    const len = j - gs;
    if (!tainted) cardDigits += len;
    // SSN: `\d{3}[- ]\d\d[- ]\d{4}` ends in this group.
    if (len >= 4 && len1 === 2 && len2 >= 3) mark(P_SSN, start2);
    const c = j + 1 < n ? text.charCodeAt(j) : 0;
    if ((c !== 32 && c !== 45) || !isDigit(text.charCodeAt(j + 1))) break;
    len2 = len1;
    start2 = start1;
    len1 = len;
    start1 = gs;
    tainted = false;
    gs = ++j;
  }
  // A card: 13 or more digits in the run, not counting a tainted first group.
  if (cardDigits >= 13) mark(P_CARD, s);
  return j;
}

// What the prefilter does when a pattern ends (see prefilterPatterns()).
const K_DIGITS = 1;
const K_IBAN = 2;
const K_SSN_WORD = 3;
const K_AT = 4;
const K_SCHEME = 5;
const K_PHONE = 6;
const K_IPV4 = 7;
const K_IPV6 = 8;
const K_AWS_ID = 9;
const K_AWS_WORD = 10;
const K_SECRET_WORD = 11;
const K_NAME = 12;
const K_GOOGLE = 13;
const K_GITHUB = 14;
const K_GITLAB = 15;
const K_SLACK = 16;
const K_SLACK_HOOK = 17;
const K_STRIPE = 18;
const K_SK = 19;
const K_JWT = 20;
const K_PEM = 21;

/**
 * A prefilter pattern: a sequence of character sets (each a string of the ASCII characters
 * allowed); an element whose set starts with `?` is optional (never the first).
 */
interface Pattern {
  readonly sets: readonly string[];
  readonly kind: number;
}

const DIGIT_SET = '0123456789';
const UPPER_SET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const HEX_SET = '0123456789abcdefABCDEF';

/**
 * The patterns the prefilter looks for, for the families in `want`: each trigger's literal part
 * (keywords in any case), 13 digits with single separators (cards), `ddd-dd-dddd` (SSNs), two
 * capitals and two digits (IBANs). What follows a literal (16 characters of an AWS
 * key id, the assignment after a secret name) is checked when the literal is found.
 */
function prefilterPatterns(want: number): Pattern[] {
  const has = (p: number): boolean => (want & (1 << p)) !== 0;
  const out: Pattern[] = [];
  const lit = (s: string, kind: number): void => {
    out.push({ sets: [...s], kind });
  };
  const anyCase = (s: string, kind: number): void => {
    out.push({ sets: [...s].map((ch) => (ch.toLowerCase() === ch.toUpperCase() ? ch : ch.toLowerCase() + ch.toUpperCase())), kind });
  };
  const d = DIGIT_SET;
  // Cards: 13 digits with optional single separators (the trigger's first four in a row are left
  // to the detector: requiring them here multiplies the automaton's states).
  if (has(P_CARD)) out.push({ sets: [d, ...Array<string[]>(12).fill(['? -', d]).flat()], kind: K_DIGITS });
  if (has(P_SSN)) out.push({ sets: [d, d, d, ' -', d, d, ' -', d, d, d, d], kind: K_DIGITS });
  if (has(P_IBAN)) out.push({ sets: [UPPER_SET, UPPER_SET, DIGIT_SET, DIGIT_SET], kind: K_IBAN });
  if (has(P_SSN)) ['ssn', 'social'].forEach((w) => anyCase(w, K_SSN_WORD));
  if (has(P_EMAIL) || has(P_CONN)) lit('@', K_AT);
  if (has(P_CONN)) lit('://', K_SCHEME);
  if (has(P_PHONE)) {
    out.push({ sets: ['+', '123456789'], kind: K_PHONE });
    out.push({ sets: ['+', '(', '123456789'], kind: K_PHONE });
  }
  if (has(P_IPV4)) for (let k = 1; k <= 3; k++) out.push({ sets: [DIGIT_SET, '.', ...Array<string>(k).fill(DIGIT_SET), '.', DIGIT_SET], kind: K_IPV4 });
  if (has(P_IPV6)) {
    for (let k = 0; k <= 4; k++) out.push({ sets: [HEX_SET, ':', ...Array<string>(k).fill(HEX_SET), ':'], kind: K_IPV6 });
    lit('::', K_IPV6);
  }
  if (has(P_AWS_ID)) ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T'].forEach((w) => lit(w, K_AWS_ID));
  if (has(P_AWS_SECRET)) anyCase('aws', K_AWS_WORD);
  if (has(P_AWS_SECRET) || has(P_GENERIC)) anyCase('secret', K_SECRET_WORD);
  if (has(P_GENERIC)) ['api', 'access', 'token', 'pass', 'pwd', 'private', 'credential', 'auth'].forEach((w) => anyCase(w, K_NAME));
  if (has(P_GOOGLE)) lit('AIza', K_GOOGLE);
  if (has(P_GITHUB)) ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'].forEach((w) => lit(w, K_GITHUB));
  if (has(P_GITLAB)) ['pat', 'dt', 'rt', 'ptt', 'ft', 'imt', 'cbt', 'soat', 'oas', 'agent'].forEach((w) => lit(`gl${w}-`, K_GITLAB));
  if (has(P_SLACK)) {
    [...'abeprs'].forEach((ch) => lit(`xox${ch}`, K_SLACK));
    lit('xapp-', K_SLACK);
    lit('hooks.slack.com', K_SLACK_HOOK);
  }
  if (has(P_STRIPE)) for (const a of 'spr') for (const b of ['live', 'test']) lit(`${a}k_${b}_`, K_STRIPE);
  if (has(P_SK)) lit('sk-', K_SK);
  if (has(P_JWT)) lit('eyJ', K_JWT);
  if (has(P_PEM)) lit('-----BEGIN ', K_PEM);
  return out;
}

/**
 * A deterministic automaton over ASCII that finds every occurrence of a set of patterns in one
 * pass, one table lookup per character (the subset construction of the patterns' NFA, i.e.
 * Aho–Corasick with character classes). States `>= accepting` end at least one pattern.
 */
interface Automaton {
  /** `delta[state * 128 + char]`: the next state. Non-ASCII characters are looked up as NUL. */
  readonly delta: Uint16Array;
  /** The state before the first character: the start state after a NUL. */
  readonly initial: number;
  readonly accepting: number;
  /** For state `accepting + k`: the patterns that end there. */
  readonly ends: readonly (readonly Pattern[])[];
}

const AUTOMATA = new Map<number, Automaton>();

function automaton(want: number): Automaton {
  const cached = AUTOMATA.get(want);
  if (cached !== undefined) return cached;
  const patterns = prefilterPatterns(want);
  // NFA state ids: pattern p, k sets matched (1..len) -> base[p] + k - 1; the start state is implicit.
  const base: number[] = [];
  let total = 0;
  for (const p of patterns) {
    base.push(total);
    total += p.sets.length;
  }
  const owner: number[] = [];
  patterns.forEach((p, i) => p.sets.forEach(() => owner.push(i)));
  // Membership of each character in each element, and classes of characters no element tells apart.
  const member = patterns.map((p) =>
    p.sets.map((set) => {
      const m = new Uint8Array(128);
      for (let k = set.startsWith('?') ? 1 : 0; k < set.length; k++) m[set.charCodeAt(k)] = 1;
      return m;
    }),
  );
  const classOf = new Uint8Array(128);
  const reps: number[] = [];
  const signatures = new Map<string, number>();
  for (let c = 0; c < 128; c++) {
    const sig = member.map((ms) => ms.map((m) => m[c]).join('')).join(',');
    let k = signatures.get(sig);
    if (k === undefined) {
      k = reps.length;
      signatures.set(sig, k);
      reps.push(c);
    }
    classOf[c] = k;
  }
  // Sets of NFA states are built in `next`, de-duplicated with a stamp per state.
  const stamp = new Int32Array(total);
  let round = 0;
  let next: number[] = [];
  /** Adds NFA state `q` (pattern `owner[q]`, `q - base + 1` elements matched) and the states past optional elements after it. */
  const close = (q: number): void => {
    const i = owner[q]!;
    const sets = patterns[i]!.sets;
    for (let k = q - base[i]! + 1; ; k++, q++) {
      if (stamp[q] !== round) {
        stamp[q] = round;
        next.push(q);
      }
      if (k >= sets.length || !sets[k]!.startsWith('?')) break;
    }
  };
  const firsts = reps.map((c) => {
    round++;
    next = [];
    patterns.forEach((_, i) => {
      if (member[i]![0]![c] === 1) close(base[i]!);
    });
    return next;
  });
  const states: number[][] = [[]];
  const index = new Map<string, number>([['', 0]]);
  const rows: number[][] = [];
  for (let s = 0; s < states.length; s++) {
    const row: number[] = [];
    for (let r = 0; r < reps.length; r++) {
      const c = reps[r]!;
      round++;
      next = [];
      for (const q of firsts[r]!) close(q);
      for (const q of states[s]!) {
        const i = owner[q]!;
        const k = q - base[i]! + 1;
        if (k < patterns[i]!.sets.length && member[i]![k]![c] === 1) close(q + 1);
      }
      const sorted = next.sort((x, y) => x - y);
      const key = sorted.join(',');
      let id = index.get(key);
      if (id === undefined) {
        id = states.length;
        index.set(key, id);
        states.push(sorted);
      }
      row.push(id);
    }
    rows.push(row);
  }
  // Renumber: non-accepting states first, so one comparison tells whether any pattern ended.
  const endsOf = states.map((set) => set.filter((q) => q - base[owner[q]!]! + 1 === patterns[owner[q]!]!.sets.length).map((q) => patterns[owner[q]!]!));
  const order = states.map((_, s) => s).sort((x, y) => Number(endsOf[x]!.length > 0) - Number(endsOf[y]!.length > 0) || x - y);
  const renum = new Array<number>(states.length);
  order.forEach((s, i) => (renum[s] = i));
  if (states.length > 0xffff) throw new GatehouseError('ERR_INTERNAL', 'prefilter automaton too large');
  const delta = new Uint16Array(states.length * 128);
  order.forEach((s, i) => {
    for (let c = 0; c < 128; c++) delta[i * 128 + c] = renum[rows[s]![classOf[c]!]!]!;
  });
  const accepting = order.findIndex((s) => endsOf[s]!.length > 0);
  const a: Automaton = {
    delta,
    initial: delta[0]!,
    accepting: accepting === -1 ? states.length : accepting,
    ends: accepting === -1 ? [] : order.slice(accepting).map((s) => endsOf[s]!),
  };
  AUTOMATA.set(want, a);
  return a;
}

/** Where the first `://` is (-1: none yet), for connection strings. */
let SCHEME_AT = -1;
/** The end of the last run of digits looked at. */
let RUN_END = -1;
/** The end of the last secret assignment looked at: names before it are part of it (see genericSecret). */
let ASSIGNED_TO = 0;

/**
 * One pass over `text` that finds which built-in detector families could report anything: for
 * each family a necessary condition (its trigger, sometimes narrowed by what the detector checks
 * anyway), so that a value with no candidate skips every detector. The pass runs the
 * {@link automaton} of `want` over the text and stops only where a pattern ends. Returns the families
 * found (`1 << P_x`, within `want`); {@link FROM} then holds, per family found, a position at or
 * before the start of the first span it could report.
 */
function prefilter(text: string, want: number, a: Automaton): number {
  HITS = 0;
  SCHEME_AT = -1;
  RUN_END = -1;
  ASSIGNED_TO = 0;
  const delta = a.delta;
  const accepting = a.accepting;
  const n = text.length;
  let state = a.initial;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    state = delta[(state << 7) | (c < 128 ? c : 0)]!;
    if (state >= accepting) found(text, i, a.ends[state - accepting]!, want);
  }
  return HITS & want;
}

/** Patterns `ends` end at `i`: checks what follows them and marks their families. */
function found(text: string, i: number, ends: readonly Pattern[], want: number): void {
  for (let e = 0; e < ends.length; e++) {
    const p = ends[e]!;
    const s = i + 1 - p.sets.length;
    switch (p.kind) {
      case K_DIGITS:
        if (i >= RUN_END) {
          let r = i;
          while (r > 0) {
            const b = text.charCodeAt(r - 1);
            if (isDigit(b) || ((b === 32 || b === 45) && r >= 2 && isDigit(text.charCodeAt(r - 2)))) r--;
            else break;
          }
          RUN_END = digitRun(text, r);
        }
        break;
      case K_IBAN:
        mark(P_IBAN, s);
        break;
      case K_SSN_WORD:
        mark(P_SSN, s);
        break;
      case K_AT:
        mark(P_EMAIL, i);
        if (SCHEME_AT !== -1) mark(P_CONN, SCHEME_AT);
        break;
      case K_SCHEME:
        if (SCHEME_AT === -1) SCHEME_AT = s;
        break;
      case K_PHONE:
        mark(P_PHONE, s);
        break;
      case K_IPV4:
        mark(P_IPV4, 0);
        break;
      case K_IPV6:
        mark(P_IPV6, 0);
        break;
      case K_AWS_ID: // + 16 of [A-Z0-9] (A3T: + 17)
        if (upperAlnumAt(text, i + 1, p.sets.length === 3 ? 17 : 16)) mark(P_AWS_ID, s);
        break;
      case K_AWS_WORD:
        if (text.length >= 43) mark(P_AWS_SECRET, s);
        break;
      case K_SECRET_WORD:
        if ((want & (1 << P_AWS_SECRET)) !== 0 && text.length >= 43) mark(P_AWS_SECRET, s);
        if ((want & (1 << P_GENERIC)) !== 0 && s >= ASSIGNED_TO && assignmentLong(text, s)) mark(P_GENERIC, s);
        break;
      case K_NAME:
        if (s >= ASSIGNED_TO && assignmentLong(text, s)) mark(P_GENERIC, s);
        break;
      case K_GOOGLE:
        mark(P_GOOGLE, s);
        break;
      case K_GITHUB:
        mark(P_GITHUB, s);
        break;
      case K_GITLAB:
        mark(P_GITLAB, s);
        break;
      case K_SLACK:
        mark(P_SLACK, s);
        break;
      case K_SLACK_HOOK: // inside `https://hooks.slack.com/…`
        mark(P_SLACK, Math.max(0, s - 8));
        break;
      case K_STRIPE:
        mark(P_STRIPE, s);
        break;
      case K_SK: // `(?<![A-Za-z0-9_-])sk-`
        if (s === 0 || !isB64Url(text.charCodeAt(s - 1))) mark(P_SK, s);
        break;
      case K_JWT: // `eyJ[A-Za-z0-9_-]{4}`
        if (isB64Url(text.charCodeAt(i + 1)) && isB64Url(text.charCodeAt(i + 2)) && isB64Url(text.charCodeAt(i + 3)) && isB64Url(text.charCodeAt(i + 4))) mark(P_JWT, s);
        break;
      case K_PEM:
        mark(P_PEM, s);
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Scanner

const NO_FINDINGS: readonly Finding[] = Object.freeze([]);

/**
 * Runs a fixed set of detectors over text and returns non-overlapping findings.
 *
 * Built-in detectors sit behind the {@link prefilter}: one pass of an automaton over the text (a
 * table lookup per character; a few checks where a trigger's literal ends) tells which of them
 * could find anything, and where the first candidate is. A value without a candidate costs that
 * pass alone, and a detector that does run starts at its first candidate. Other detectors (custom
 * ones) run on every text. A trigger with flags or capture groups is refused (`ERR_INTERNAL`).
 */
export class Scanner {
  readonly detectors: readonly Detector[];
  /** Per detector: its prefilter bit, or -1 for a detector that always runs. */
  readonly #bits: number[] = [];
  readonly #runs: Run[] = [];
  readonly #want: number;
  readonly #automaton: Automaton;
  /** Some detector has no prefilter bit and runs on every text. */
  readonly #always: boolean;

  constructor(detectors: readonly Detector[]) {
    this.detectors = [...new Set(detectors)];
    let want = 0;
    for (const d of this.detectors) {
      const t = d.trigger;
      if (t !== undefined && (t.flags.replace(/[gy]/g, '') !== '' || new RegExp(`${t.source}|`).exec('')!.length !== 1)) {
        throw new GatehouseError('ERR_INTERNAL', `detector ${d.name}: a trigger must have no flags and no capture groups`);
      }
      const meta = BUILTIN_META.get(d);
      this.#bits.push(meta === undefined ? -1 : meta.bit);
      this.#runs.push(meta === undefined ? (text) => d.find(text) : meta.run);
      if (meta !== undefined) want |= 1 << meta.bit;
    }
    this.#want = want;
    this.#automaton = automaton(want);
    this.#always = this.#bits.includes(-1);
  }

  /**
   * Findings in ascending order; overlapping spans are merged, keeping the earlier detector. Text
   * without findings gets one shared empty array (no allocation per value).
   */
  scan(text: string): readonly Finding[] {
    const ds = this.detectors;
    if (ds.length === 0 || text.length === 0) return NO_FINDINGS;
    const hits = this.#want === 0 ? 0 : prefilter(text, this.#want, this.#automaton);
    if (hits === 0 && !this.#always) return NO_FINDINGS;
    const bits = this.#bits;
    let all: Finding[] | undefined;
    for (let k = 0; k < ds.length; k++) {
      const bit = bits[k]!;
      if (bit !== -1 && (hits & (1 << bit)) === 0) continue;
      const rs = this.#runs[k]!(text, bit === -1 ? 0 : FROM[bit]!);
      if (rs.length === 0) continue;
      all ??= [];
      const d = ds[k]!;
      for (const r of rs) if (r.end > r.start) all.push({ start: r.start, end: r.end, detector: d });
    }
    if (all === undefined || all.length <= 1) return all ?? NO_FINDINGS;
    all.sort((a, b) => a.start - b.start || b.end - a.end);
    const merged: Finding[] = [all[0]!];
    for (let i = 1; i < all.length; i++) {
      const f = all[i]!;
      const last = merged[merged.length - 1]!;
      if (f.start < last.end) {
        if (f.end > last.end) merged[merged.length - 1] = { start: last.start, end: f.end, detector: last.detector };
      } else merged.push(f);
    }
    return merged;
  }
}
