// The Scanner's prefilter must never hide a finding: on generated texts full of near-misses, a
// Scanner reports exactly what its detectors' own `find` (each gated by its trigger regex) reports.
// And randomly generated keys of every vendor are all found, whatever mix of characters they
// happen to have (the benchmark once caught a digit-less OpenAI key slipping through).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_DETECTORS, Scanner, defaultDetectors, resolveDetectors, type Detector, type Finding } from '../../src/core/masking/index.js';

/** xorshift32: deterministic, so a failure names a reproducible text. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

/** What a Scanner must report: every detector's `find`, sorted, overlaps merged into the earlier detector. */
function reference(detectors: readonly Detector[], text: string): [string, number, number][] {
  const all: Finding[] = [];
  for (const d of detectors) for (const r of d.find(text)) if (r.end > r.start) all.push({ start: r.start, end: r.end, detector: d });
  all.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Finding[] = [];
  for (const f of all) {
    const last = merged[merged.length - 1];
    if (last !== undefined && f.start < last.end) {
      if (f.end > last.end) merged[merged.length - 1] = { start: last.start, end: f.end, detector: last.detector };
    } else merged.push(f);
  }
  return merged.map((f) => [f.detector.name, f.start, f.end]);
}
const scanned = (s: Scanner, text: string): [string, number, number][] => s.scan(text).map((f) => [f.detector.name, f.start, f.end]);

const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const DIGITS = '0123456789';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const ALNUM = UPPER + LOWER + DIGITS;

function luhnComplete(body: string): string {
  for (let d = 0; d <= 9; d++) {
    const c = body + d;
    let sum = 0;
    for (let i = 0; i < c.length; i++) {
      let x = c.charCodeAt(c.length - 1 - i) - 48;
      if (i % 2 === 1) x = x * 2 > 9 ? x * 2 - 9 : x * 2;
      sum += x;
    }
    if (sum % 10 === 0) return c;
  }
  throw new Error('unreachable');
}

/** Fragments that start, end or nearly form a detector's trigger, glued together at random. */
function fragmentMaker(rnd: () => number): () => string {
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chars = (alphabet: string, n: number): string => Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('');
  const randomCase = (w: string): string => [...w].map((c) => (rnd() < 0.5 ? c.toUpperCase() : c.toLowerCase())).join('');
  const words = ['secret', 'aws', 'api_key', 'api-key', 'apikey', 'access_key', 'token', 'password', 'passwd', 'pwd', 'passphrase', 'private_key', 'credential', 'auth', 'authorization', 'ssn', 'social security number', 'social_security', 'client_secret', 'aws_secret_access_key'];
  const glue = [' = ', ': ', '="', "':", '\\"', '=>', ':=', '"', "'", ' ', '  ', '\t', '\n', ',', ';', '&', '.', '-', '_', '/', '+', '(', ')', ':', '::', '@', '://', '#', '\uFFFD', 'é', '😀'];
  const prefixes = ['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T', 'AIza', 'ghp_', 'gho_', 'github_pat_', 'glpat-', 'gldt-', 'glagent-', 'xoxb-', 'xoxp-', 'xapp-1-', 'https://hooks.slack.com/services/', 'hooks.slack.com', 'sk_live_', 'pk_test_', 'rk_live_', 'sk_prod_', 'sk-', 'sk-proj-', 'sk-ant-api03-', 'eyJ', 'eyJhbGciOiJIUzI1NiJ9.', '-----BEGIN PRIVATE KEY-----\n', '-----BEGIN RSA PRIVATE KEY-----', '\n-----END PRIVATE KEY-----', '-----BEGIN CERTIFICATE-----', 'postgres://', 'mysql://root:', 'https://', 'mailto:', '+1 ', '+44 20 ', '+(', 'tel:+', 'GB82 WEST ', 'DE89', 'NO93', 'v1.', '0.'];
  const keyPrefixes = [
    ...['AKIA', 'ASIA', 'ABIA', 'ACCA', 'A3T', 'A3TX', 'AIza', 'github_pat_', 'xapp-1-', 'sk-', 'sk-proj-', 'sk-ant-api03-', 'eyJhbGciOiJub25lIn0.', 'eyJ'],
    ...['p', 'o', 'u', 's', 'r'].map((c) => `gh${c}_`),
    ...['pat', 'dt', 'rt', 'ptt', 'ft', 'imt', 'cbt', 'soat', 'oas', 'agent'].map((c) => `gl${c}-`),
    ...[...'abeprs'].map((c) => `xox${c}-`),
    ...['sk', 'pk', 'rk'].flatMap((a) => [`${a}_live_`, `${a}_test_`]),
  ];
  return () => {
    switch (int(10)) {
      case 9: // a key prefix and a body of a length near the detectors' limits
        return pick(keyPrefixes) + chars(pick([UPPER + DIGITS, ALNUM, `${ALNUM}_-`, UPPER + LOWER]), pick([9, 10, 15, 16, 17, 19, 20, 22, 35, 36, 40, 48]));
      case 0:
        return randomCase(pick(words));
      case 1:
        return pick(glue);
      case 2:
        return pick(prefixes);
      case 3: {
        // digits with single separators, sometimes a valid card number
        const card = rnd() < 0.4;
        let d = card ? luhnComplete(pick(['4', '51', '2221', '37', '6011', '3530', '30', '62', '6759']) + chars(DIGITS, pick([11, 12, 13, 14, 17]))) : chars(DIGITS, 1 + int(20));
        if (rnd() < 0.5) {
          const sep = pick([' ', '-']);
          d = d.replace(/(\d{4})(?=\d)/g, `$1${rnd() < 0.8 ? sep : pick([' ', '-', ''])}`);
        }
        return d;
      }
      case 4:
        return pick([`${b64url('{"typ":"JWT","alg":"HS256"}')}.${b64url('{"sub":"1"}')}.${chars(ALNUM, 20)}`, '123-45-6789', '078 05 1120', '219099999', '666-12-3456', '123-45-67890', '1-123-45-6789', 'GB82WEST12345698765432', 'DE89370400440532013000', '192.168.1.10', '2001:db8::1', 'fe80::1', '10:20:30', '1.2.3.4.5']);
      case 5:
        return chars(ALNUM, 1 + int(60));
      case 6:
        return chars(pick([UPPER + LOWER, UPPER + DIGITS, `${ALNUM}/+=_-.`]), 1 + int(50));
      case 7:
        return `${pick(['alice', 'j.doe+x', 'a', '.x', 'x.'])}@${pick(['example.com', 'mail.example.co.uk', 'localhost', 'x', '.com', 'db.internal:5432'])}`;
      default:
        return chars(' .,:;=-_/+@"\'\\\t\n', 1 + int(3));
    }
  };
}

describe('Scanner prefilter', () => {
  const cases = [
    { name: 'every built-in detector', detectors: resolveDetectors(['all']) },
    { name: 'the default detectors', detectors: defaultDetectors() },
    { name: 'secrets only', detectors: resolveDetectors(['secrets']) },
  ];
  for (const { name, detectors } of cases) {
    it(`reports exactly what the detectors find, ${name}, on 4,000 generated texts`, () => {
      const rnd = prng(0x5eed + detectors.length);
      const fragment = fragmentMaker(rnd);
      const scanner = new Scanner(detectors);
      let nonEmpty = 0;
      for (let t = 0; t < 4000; t++) {
        const parts = 1 + Math.floor(rnd() * 14);
        let text = '';
        for (let k = 0; k < parts; k++) text += fragment();
        const want = reference(detectors, text);
        if (want.length > 0) nonEmpty++;
        assert.deepEqual(scanned(scanner, text), want, `text #${t}: ${JSON.stringify(text)}`);
      }
      assert.ok(nonEmpty > 300, `too few texts with findings (${nonEmpty}): the generator no longer exercises the detectors`);
    });
  }

  it('each built-in detector alone, through a Scanner, reports what its find reports', () => {
    const rnd = prng(0xdec0de);
    const fragment = fragmentMaker(rnd);
    const texts: string[] = [];
    for (let t = 0; t < 1500; t++) {
      let text = '';
      for (let k = 0, parts = 1 + Math.floor(rnd() * 10); k < parts; k++) text += fragment();
      texts.push(text);
    }
    for (const d of BUILTIN_DETECTORS.values()) {
      const scanner = new Scanner([d]);
      for (const text of texts) assert.deepEqual(scanned(scanner, text), reference([d], text), `${d.name} in ${JSON.stringify(text)}`);
    }
  });

  it('finds secrets at the very start and end of a text and next to non-ASCII characters', () => {
    const scanner = new Scanner(defaultDetectors());
    const key = `${'AKIA'}IOSFODNN7EXAMPLE`;
    for (const text of [key, `é${key}`, `${key}😀`, `\uFFFD4111111111111111`, '4111111111111111', 'a@example.com', 'ssn 123456789']) {
      assert.equal(scanner.scan(text).length, 1, JSON.stringify(text));
    }
  });
});

describe('generated keys', () => {
  const rnd = prng(0xc0ffee);
  const int = (n: number): number => Math.floor(rnd() * n);
  /** A random body, from an alphabet that sometimes lacks digits or a letter case. */
  const body = (n: number, extra = ''): string => {
    const alphabet = [ALNUM, UPPER + LOWER, UPPER + LOWER, UPPER + DIGITS + LOWER.slice(0, 6)][int(4)]! + extra;
    return Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('');
  };
  const kinds: [string, () => string][] = [
    ['openai_key', () => `${['sk-', 'sk-proj-', 'sk-svcacct-'][int(3)]}${body(48)}`],
    ['anthropic_key', () => `${'sk-ant-api03-'}${body(80, '_-')}`],
    ['aws_secret_key', () => body(40, '/+')],
    ['github_token', () => `${'ghp_'}${body(36)}`],
    ['stripe_key', () => `${'sk_live_'}${body(24)}`],
    ['google_api_key', () => `${'AIza'}${body(35, '_-')}`],
  ];
  for (const [kind, make] of kinds) {
    it(`${kind}: 500 random keys, all found`, () => {
      const scanner = new Scanner(defaultDetectors());
      let random = 0;
      for (let k = 0; k < 500; k++) {
        const key = make();
        const text = kind === 'aws_secret_key' ? `aws_secret_access_key = ${key}` : `key ${key} end`;
        // a body drawn from a two-letter-case alphabet may, rarely, be too regular to be a key
        if (kind === 'aws_secret_key' && !(/[A-Z]/.test(key) && /[a-z]/.test(key))) continue;
        random++;
        const found = scanner.scan(text).map((f) => text.slice(f.start, f.end));
        assert.ok(found.includes(key), `${kind} not found in ${JSON.stringify(text)} (found ${JSON.stringify(found)})`);
      }
      assert.ok(random > 400);
    });
  }
});
