/**
 * Content detectors: find sensitive spans (card numbers, API keys, private keys, …) in text.
 *
 * Every detector is a precompiled, bounded regular expression (or a small hand-written scanner)
 * followed by a validator, so that a number that merely looks like a card, or a hex digest that
 * merely looks like a key, is left alone. Detectors run on every value an agent receives, so each
 * one is written to reject benign text quickly: a literal anchor (`AKIA`, `ghp_`, `-----BEGIN`, `@`)
 * before any expensive work, no nested unbounded quantifiers, and every repetition bounded. A
 * {@link Scanner} puts a set of detectors behind one combined "could anything match here?" regex.
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
   * A cheap necessary condition: when it does not match, `find` finds nothing. The {@link Scanner}
   * combines these into one regex that rejects benign values in a single native pass. `undefined`
   * means "always run `find`" (custom detectors).
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
function collect(re: RegExp, text: string, accept: (m: RegExpExecArray) => DetectedRange | boolean | undefined): DetectedRange[] {
  re.lastIndex = 0;
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
 * The body of each built-in detector without its trigger test, for the {@link Scanner}, which has
 * already seen the trigger match.
 */
const UNCHECKED = new WeakMap<Detector, (text: string) => DetectedRange[]>();

/** A built-in detector: `run` is only called when `trigger` matches somewhere in the text. */
function builtin(name: string, type: string, trigger: RegExp, run: (text: string) => DetectedRange[]): Detector {
  const d: Detector = {
    name,
    type,
    trigger,
    find: (text) => (trigger.test(text) ? run(text) : NONE),
  };
  UNCHECKED.set(d, run);
  return d;
}

/** A detector that reports every match of `re` that `accept` (default: all) keeps. */
function regexDetector(
  name: string,
  type: string,
  trigger: RegExp,
  re: RegExp,
  accept: (m: RegExpExecArray, text: string) => DetectedRange | boolean | undefined = () => true,
): Detector {
  return builtin(name, type, trigger, (text) => collect(re, text, (m) => accept(m, text)));
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
const paymentCard = builtin('payment_card', 'card', new RegExp(CARD_SOURCE), (text) => {
  const re = CARD_ANCHOR;
  re.lastIndex = 0;
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
const iban = builtin('iban', 'iban', new RegExp(IBAN_SOURCE), (text) =>
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
  }),
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
const usSsn = builtin('us_ssn', 'ssn', new RegExp(`\\d{3}[- ]\\d\\d[- ]\\d{4}|${ci('ssn')}|${ci('social')}`), (text) => {
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
  });
  if (!SSN_KEYWORD.test(text)) return a;
  const b = collect(SSN_KEYWORD_RE, text, (m) => {
    const d = m[1]!;
    if (!ssnValid(d.slice(0, 3), d.slice(3, 5), d.slice(5))) return undefined;
    const end = m.index + m[0].length;
    return { start: end - 9, end };
  });
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
const email = builtin('email', 'email', /@/, (text) => {
  let out: DetectedRange[] | undefined;
  for (let at = text.indexOf('@'); at !== -1; ) {
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
const phone = builtin('phone', 'phone', /\+\(?[1-9]/, (text) => {
  let out: DetectedRange[] | undefined;
  const n = text.length;
  for (let p = text.indexOf('+'); p !== -1; ) {
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
const ipv4 = regexDetector('ipv4', 'ip', /\d\.\d{1,3}\.\d/, new RegExp(`(?<![\\d.])(?:${OCTET}\\.){3}${OCTET}(?!\\d|\\.\\d)`, 'g'));

/** IPv6 addresses (RFC 4291 §2.2 text forms, validated by `net.isIPv6`). */
const ipv6 = regexDetector(
  'ipv6',
  'ip',
  /[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:|::/,
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
const awsSecretKey = builtin('aws_secret_key', 'aws_secret_key', SECRET_WORD_TRIGGER, (text) => {
  if (text.length < 43) return NONE;
  let out: DetectedRange[] | undefined;
  let last = -1;
  AWS_SECRET_KEYWORD.lastIndex = 0;
  let k: RegExpExecArray | null;
  while ((k = AWS_SECRET_KEYWORD.exec(text)) !== null) {
    const from = k.index + k[0].length;
    const window = text.slice(from, from + 121);
    for (const m of window.matchAll(AWS_SECRET_CANDIDATE)) {
      if (m.index > 80) break;
      const start = from + m.index;
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
  /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g,
);

/** GitHub tokens: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` + 36 or more, fine-grained `github_pat_…`. */
const githubToken = regexDetector(
  'github_token',
  'github_token',
  /gh[pousr]_|github_pat_/,
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
  /(?<![A-Za-z0-9_-])(?:glpat|gldt|glrt|glptt|glft|glimt|glcbt|glsoat|gloas|glagent)-[A-Za-z0-9_.-]{20,250}(?![A-Za-z0-9_-])/g,
  (m) => trimTrailingPunct(m, 26),
);

/** Slack tokens (`xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xoxe-`, `xapp-`) and webhook URLs. */
const slackToken = regexDetector(
  'slack_token',
  'slack_token',
  /xox[abeprs]|xapp-|hooks\.slack\.com/,
  /(?<![A-Za-z0-9])(?:xox[abeprs](?:\.xox[bp])?-[A-Za-z0-9-]{10,250}|xapp-\d-[A-Za-z0-9-]{10,250})(?![A-Za-z0-9-])|https?:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/+-]{8,250}/g,
);

/** Stripe keys: secret `sk_`, restricted `rk_`, publishable `pk_`, live and test. */
const stripeKey = regexDetector(
  'stripe_key',
  'stripe_key',
  /[spr]k_(?:live|test)_/,
  /(?<![A-Za-z0-9_])[spr]k_(?:live|test)_[A-Za-z0-9]{10,247}(?![A-Za-z0-9_])/g,
);

/** Shared by `openai_key` and `anthropic_key` (both start with `sk-`). */
const SK_TRIGGER = /(?<![A-Za-z0-9_-])sk-/;

/** OpenAI-style keys: `sk-…`, `sk-proj-…`, `sk-svcacct-…`, `sk-admin-…` with a random body. */
const openaiKey = regexDetector(
  'openai_key',
  'openai_key',
  SK_TRIGGER,
  /(?<![A-Za-z0-9_-])sk-(?!ant-)(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])/g,
  (m) => randomLooking(m[0]) && shannonEntropy(m[0]) >= 3.5,
);

/** Anthropic keys: `sk-ant-api03-…`, `sk-ant-admin01-…`, `sk-ant-oat01-…`. */
const anthropicKey = regexDetector(
  'anthropic_key',
  'anthropic_key',
  SK_TRIGGER,
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
const privateKey = builtin('private_key', 'private_key', /-----BEGIN /, (text) =>
  collect(PEM_BEGIN, text, (m) => {
    PEM_END.lastIndex = m.index + m[0].length;
    const e = PEM_END.exec(text);
    const end = e === null ? text.length : e.index + e[0].length;
    PEM_BEGIN.lastIndex = end;
    return { start: m.index, end };
  }),
);

/**
 * The password in a URL's user-info (`postgres://user:password@host/db`, RFC 3986 §3.2.1): only the
 * password is reported, so the user and host stay readable.
 */
const connectionStringPassword = builtin('connection_string_password', 'password', /:\/\/[^\s@]{1,1024}@/, (text) => {
  let out: DetectedRange[] | undefined;
  const n = text.length;
  for (let p = text.indexOf('://'); p !== -1; ) {
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

const SECRET_ASSIGNMENT_RE = new RegExp(`${SECRET_NAME}${SECRET_ASSIGNMENT}`, 'gi');
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
const genericSecret = builtin('generic_secret', 'secret', SECRET_WORD_TRIGGER, (text) => {
  if (text.length < 16) return NONE;
  const re = SECRET_ASSIGNMENT_RE;
  re.lastIndex = 0;
  let out: DetectedRange[] | undefined;
  const n = text.length;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    let i = m.index + m[0].length;
    if (text.charCodeAt(i - 1) === 61 && i < n && text.charCodeAt(i) === 62) i++;
    else if (text.charCodeAt(i - 1) === 58 && i < n && text.charCodeAt(i) === 61) i++;
    while (i < n && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9) && i - m.index < 100) i++;
    let escaped = false;
    if (i < n && text.charCodeAt(i) === 92) {
      escaped = true;
      i++;
    }
    let quote = 0;
    if (i < n && isQuote(text.charCodeAt(i))) quote = text.charCodeAt(i++);
    else if (escaped) continue;
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
    if (i > limit) i = limit;
    if (i - start >= 12 && secretValue(text.slice(start, i))) {
      (out ??= []).push({ start, end: i });
      re.lastIndex = i;
    }
  }
  return out ?? NONE;
});

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
// Scanner

interface Family {
  trigger: RegExp;
  members: Detector[];
}

/**
 * Runs a fixed set of detectors over text and returns non-overlapping findings.
 *
 * The detectors' triggers are combined into one regex with a capture group per distinct trigger,
 * scanned once: a benign value costs a single native regex pass, and only the detectors whose
 * trigger occurs run at all. Detectors without a trigger (custom ones) always run. Two triggers
 * that can match at the same position must be the same `RegExp` object (one group), or the scan
 * would only see the first.
 */
export class Scanner {
  readonly detectors: readonly Detector[];
  readonly #families: Family[] = [];
  readonly #gate: RegExp | undefined;
  readonly #always: boolean;

  constructor(detectors: readonly Detector[]) {
    this.detectors = [...new Set(detectors)];
    let always = false;
    for (const d of this.detectors) {
      const t = d.trigger;
      if (t === undefined) {
        always = true;
        continue;
      }
      if (t.flags.replace(/[gy]/g, '') !== '' || new RegExp(`${t.source}|`).exec('')!.length !== 1) {
        throw new GatehouseError('ERR_INTERNAL', `detector ${d.name}: a trigger must have no flags and no capture groups`);
      }
      const f = this.#families.find((x) => x.trigger === t);
      if (f === undefined) this.#families.push({ trigger: t, members: [d] });
      else f.members.push(d);
    }
    this.#always = always;
    this.#gate = this.#families.length === 0 ? undefined : new RegExp(this.#families.map((f) => `(${f.trigger.source})`).join('|'), 'g');
  }

  /** Findings in ascending order; overlapping spans are merged, keeping the earlier detector. */
  scan(text: string): Finding[] {
    if (this.detectors.length === 0 || text.length === 0) return [];
    const hit = this.#triggered(text);
    if (hit === undefined && !this.#always) return [];
    let all: Finding[] | undefined;
    for (const d of this.detectors) {
      let rs: DetectedRange[];
      if (d.trigger === undefined) rs = d.find(text);
      else if (hit?.has(d.trigger) === true) rs = (UNCHECKED.get(d) ?? d.find)(text);
      else continue;
      if (rs.length === 0) continue;
      all ??= [];
      for (const r of rs) if (r.end > r.start) all.push({ start: r.start, end: r.end, detector: d });
    }
    if (all === undefined || all.length <= 1) return all ?? [];
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

  /** The triggers that occur in `text`, or `undefined` when none does. */
  #triggered(text: string): Set<RegExp> | undefined {
    const gate = this.#gate;
    if (gate === undefined) return undefined;
    const fam = this.#families;
    let hit: Set<RegExp> | undefined;
    gate.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = gate.exec(text)) !== null) {
      for (let g = 1; g <= fam.length; g++) {
        if (m[g] !== undefined) {
          (hit ??= new Set()).add(fam[g - 1]!.trigger);
          break;
        }
      }
      if (hit !== undefined && hit.size === fam.length) break;
      gate.lastIndex = m.index + 1;
    }
    return hit;
  }
}
