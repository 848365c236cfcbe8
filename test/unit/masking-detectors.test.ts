// Content detectors: for every built-in detector, texts it must find (with the exact span) and
// look-alikes it must leave alone. Secrets are assembled at run time so that no literal credential
// sits in the source.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BUILTIN_DETECTORS,
  DETECTOR_GROUPS,
  Scanner,
  cardBrand,
  defaultDetectors,
  ibanValid,
  luhnValid,
  resolveDetectors,
  shannonEntropy,
  ssnValid,
} from '../../src/core/masking/index.js';
import { isGatehouseError } from '../../src/core/errors.js';

/** Appends the Luhn check digit to `body` (computed here, independently of the code under test). */
function luhn(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}
/** A Luhn-valid PAN of `len` digits starting with `prefix`. */
const pan = (prefix: string, len: number): string => luhn(prefix + '3'.repeat(len - prefix.length - 1));
/** The same PAN with a wrong check digit. */
const badLuhn = (p: string): string => p.slice(0, -1) + String((Number(p.at(-1)) + 1) % 10);
const group = (p: string, sizes: number[], sep: string): string => {
  const out: string[] = [];
  let i = 0;
  for (const n of sizes) {
    out.push(p.slice(i, i + n));
    i += n;
  }
  return out.join(sep);
};

const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const RANDOM = 'Q7vK2mX9pL4sT8wZ3nB6cR1yH5jD0fGa';
const rand = (n: number): string => (RANDOM.repeat(Math.ceil(n / RANDOM.length) + 1)).slice(0, n);
/**
 * A random-looking body without a single digit: the body of the OpenAI key that the benchmark's
 * corpus planted and the masker let through (a 48-character base62 body lacks a digit about once
 * in 4,500 keys; the detectors used to require one).
 */
const LETTERS = 'DITnumhoSTyJANmnJweVwDLwtIgQoxRxzEnwDPeXeBktOQjM';

const JWT = `${b64url('{"alg":"RS256","typ":"JWT","kid":"k1"}')}.${b64url('{"sub":"agent-7","exp":1764000000}')}.${b64url('signature-bytes-here')}`;
const PEM_BODY = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZ\n';

interface Case {
  /** Texts and the exact spans the detector must report in them. */
  hits: [text: string, spans: string[]][];
  /** Look-alikes it must not report. */
  misses: string[];
}

const CASES: Record<string, Case> = {
  payment_card: {
    hits: [
      ['visa 4111111111111111', ['4111111111111111']],
      ['visa-13 4222222222222 ok', ['4222222222222']],
      ['card: 4242 4242 4242 4242.', ['4242 4242 4242 4242']],
      ['card=4242-4242-4242-4242;', ['4242-4242-4242-4242']],
      ['mastercard 5555555555554444', ['5555555555554444']],
      ['mc 5105 1051 0510 5100', ['5105 1051 0510 5100']],
      [`mc 2-series ${pan('2221', 16)} and ${group(pan('2720', 16), [4, 4, 4, 4], '-')}`, [pan('2221', 16), group(pan('2720', 16), [4, 4, 4, 4], '-')]],
      ['amex 378282246310005', ['378282246310005']],
      ['amex grouped 3782 822463 10005!', ['3782 822463 10005']],
      ['discover 6011111111111117', ['6011111111111117']],
      [`discover ${pan('65', 16)} / ${pan('644', 16)}`, [pan('65', 16), pan('644', 16)]],
      ['jcb 3530111333300000', ['3530111333300000']],
      [`jcb ${group('3566002020360505', [4, 4, 4, 4], ' ')}`, ['3566 0020 2036 0505']],
      ['diners 30569309025904 and 38520000023237', ['30569309025904', '38520000023237']],
      [`unionpay 6200000000000005 and ${pan('81', 16)}`, ['6200000000000005', pan('81', 16)]],
      ['{"pan":"4111111111111111"}', ['4111111111111111']],
    ],
    misses: [
      'order 4111111111111112', // Luhn fails
      `visa-ish ${badLuhn(pan('4', 16))}`,
      '1234567812345670', // Luhn-valid, no brand
      'id 41111111111111110', // part of a longer run (17 digits)
      'sha a4111111111111111b', // glued to letters (hex digest)
      'amount 0.4111111111111111', // decimal fraction
      '4111 1111-1111 1111', // mixed separators
      `mastercard length ${pan('51', 15)}`, // wrong length for the brand
      '2024-01-15 12:30:45', // dates and times
      'tracking 1Z999AA10123456784',
    ],
  },
  iban: {
    hits: [
      ['pay to GB82WEST12345698765432 today', ['GB82WEST12345698765432']],
      ['DE89370400440532013000', ['DE89370400440532013000']],
      ['print form: GB82 WEST 1234 5698 7654 32.', ['GB82 WEST 1234 5698 7654 32']],
      ['NO9386011117947', ['NO9386011117947']],
    ],
    misses: [
      'GB82WEST12345698765433', // bad check digits
      'DE89370400440532013001',
      'XX82WEST12345698765432', // unknown country
      'DE8937040044053201300', // too short for DE
      'DE89370400440532013000X', // glued to more characters
      'ref AB12CDEF3456',
    ],
  },
  us_ssn: {
    hits: [
      ['ssn 123-45-6789', ['123-45-6789']],
      ['078 05 1120 on file', ['078 05 1120']],
      ['SSN: 123456789', ['123456789']],
      ['{"social_security_number":"219099999"}', ['219099999']],
    ],
    misses: [
      '000-12-3456', // area 000 never issued
      '666-12-3456',
      '912-34-5678', // area 9xx
      '123-00-4567', // group 00
      '123-45-0000', // serial 0000
      'order 123456789', // nine digits without a label
      'ORD-123-45-6789', // part of a dashed identifier
      'phone 1-123-45-6789',
      'v123-45-67890',
      'ssn 1234567890', // ten digits after the label
    ],
  },
  email: {
    hits: [
      ['contact alice@example.com.', ['alice@example.com']],
      ['<bob.smith+tag@mail.example.co.uk>', ['bob.smith+tag@mail.example.co.uk']],
      ['a@x.io,b_c@y.org', ['a@x.io', 'b_c@y.org']],
    ],
    misses: ['postgres://user:pw@db.example.com/prod', 'ping @channel', 'root@localhost', 'a@b.c', 'user@.example.com', 'user.@example.com'],
  },
  phone: {
    hits: [
      ['call +1 (415) 555-2671 now', ['+1 (415) 555-2671']],
      ['+44 20 7946 0958', ['+44 20 7946 0958']],
      ['tel:+4930123456', ['+4930123456']],
    ],
    misses: ['415-555-2671', '+1 23', 'a+12345678', '+0123456789', 'x = 1+2345678', '+1234567890123456789'],
  },
  ipv4: {
    hits: [
      ['host 192.168.1.10:5432', ['192.168.1.10']],
      ['10.0.0.1, 255.255.255.255', ['10.0.0.1', '255.255.255.255']],
    ],
    misses: ['version 1.2.3.4.5', '256.1.1.1', 'pi 3.14159', '1.2.3', 'v10.0.0.1.2'],
  },
  ipv6: {
    hits: [
      ['addr 2001:db8::1 up', ['2001:db8::1']],
      ['fe80::1ff:fe23:4567:890a', ['fe80::1ff:fe23:4567:890a']],
      ['[::ffff:192.0.2.1]:80', ['::ffff:192.0.2.1']],
    ],
    misses: ['std::vector', '12:34:56', 'a::b::c', 'time 10:20:30:40 ok', 'mac 00:1A:2B:3C:4D:5E'],
  },
  aws_access_key_id: {
    hits: [
      [`key ${'AKIA'}IOSFODNN7EXAMPLE`, ['AKIAIOSFODNN7EXAMPLE']],
      [`"${'ASIA'}Y34FZKBOKMUTVV7A"`, ['ASIAY34FZKBOKMUTVV7A']],
    ],
    misses: [`${'AKIA'}IOSFODNN7EXAMPL`, `X${'AKIA'}IOSFODNN7EXAMPLE`, `${'akia'}iosfodnn7example`, `${'AKIA'}IOSFODNN7EXAMPLE1`, 'AKIDIOSFODNN7EXAMPLE'],
  },
  aws_secret_key: {
    hits: [
      [`aws_secret_access_key = ${'wJalrXUtnFEMI/K7MDENG/bPxRfiCY'}EXAMPLEKEY`, ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY']],
      [`AWS secret: "${rand(40)}"`, [rand(40)]],
      [`aws_secret_access_key = ${LETTERS.slice(0, 40)}`, [LETTERS.slice(0, 40)]], // no digit
    ],
    misses: [
      `aws ${'A'.repeat(40)}`, // no entropy
      'aws sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709', // hex digest: no upper case
      `no keyword here ${rand(40)}`,
      `aws key ${rand(41)}`, // 41 characters
      `aws ${' '.repeat(90)}${rand(40)}`, // too far from the keyword
      `aws ${LETTERS.slice(0, 40).toLowerCase()}`, // one letter case only
    ],
  },
  google_api_key: {
    hits: [
      [`key=${'AIza'}${rand(35)}&x=1`, [`AIza${rand(35)}`]],
      [`"${'AIza'}Sy-${rand(29)}_ab"`, [`AIzaSy-${rand(29)}_ab`]],
    ],
    misses: [`AIza${rand(34)}`, `AIza${rand(36)}`, `xAIza${rand(35)}`],
  },
  github_token: {
    hits: [
      [`GITHUB_TOKEN=${'ghp_'}${rand(36)}`, [`ghp_${rand(36)}`]],
      [`${'gho_'}${rand(40)} and ${'github_pat_'}${rand(22)}_${rand(59)}`, [`gho_${rand(40)}`, `github_pat_${rand(22)}_${rand(59)}`]],
    ],
    misses: [`ghp_${rand(35)}`, `xghp_${rand(36)}`, `ghx_${rand(36)}`, `github_pat_${rand(10)}`],
  },
  gitlab_token: {
    hits: [
      [`token ${'glpat-'}${rand(20)}.`, [`glpat-${rand(20)}`]],
      [`${'glrt-'}${rand(26)}`, [`glrt-${rand(26)}`]],
    ],
    misses: [`glpat-${rand(19)}`, `glpat-${rand(19)}.`, `glxyz-${rand(20)}`, `x-glpat-${rand(20)}`],
  },
  slack_token: {
    hits: [
      [`${'xoxb-'}123456789012-${rand(24)}`, [`xoxb-123456789012-${rand(24)}`]],
      [`url https://${'hooks.slack.com'}/services/T00000000/B00000000/${rand(24)} done`, [`https://hooks.slack.com/services/T00000000/B00000000/${rand(24)}`]],
    ],
    misses: ['xoxb-short', `xoxz-${rand(20)}`, 'https://hooks.slack.com/', `axoxb-${rand(20)}`],
  },
  stripe_key: {
    hits: [
      [`STRIPE=${'sk_live_'}${rand(24)}`, [`sk_live_${rand(24)}`]],
      [`${'pk_test_'}${rand(24)} ${'rk_live_'}${rand(30)}`, [`pk_test_${rand(24)}`, `rk_live_${rand(30)}`]],
    ],
    misses: [`sk_prod_${rand(24)}`, 'sk_live_short', `ask_live_${rand(24)}`, `xk_live_${rand(24)}`],
  },
  openai_key: {
    hits: [
      [`OPENAI_API_KEY=${'sk-proj-'}${rand(48)}`, [`sk-proj-${rand(48)}`]],
      [`"${'sk-'}${rand(48)}"`, [`sk-${rand(48)}`]],
      [`${'sk-proj-'}${LETTERS}`, [`sk-proj-${LETTERS}`]], // no digit in the body
      [`key=${'sk-'}${LETTERS.slice(0, 32)}`, [`sk-${LETTERS.slice(0, 32)}`]],
    ],
    misses: [`sk-${'a'.repeat(30)}`, `sk-${LETTERS.slice(0, 24)}` /* short, no digit */, 'sk-abcdefghijklmnopqrstuvwxyz', `sk-ant-api03-${rand(40)}`, `sk-${rand(10)}`, 'disk-drive-controller-firmware-version'],
  },
  anthropic_key: {
    hits: [
      [`ANTHROPIC_API_KEY=${'sk-ant-api03-'}${rand(60)}`, [`sk-ant-api03-${rand(60)}`]],
      [`${'sk-ant-admin01-'}${rand(40)} x`, [`sk-ant-admin01-${rand(40)}`]],
    ],
    misses: [`sk-ant-${'a'.repeat(30)}`, 'sk-ant-Ab1', `xsk-ant-api03-${rand(40)}`],
  },
  jwt: {
    hits: [
      [`Authorization: Bearer ${JWT}`, [JWT]],
      [`{"id_token":"${JWT}"}`, [JWT]],
      [`unsecured ${b64url('{"alg":"none"}')}.${b64url('{"sub":"x"}')}.`, [`${b64url('{"alg":"none"}')}.${b64url('{"sub":"x"}')}.`]],
    ],
    misses: [
      `${b64url('{"foo":"bar","typ":"JWT"}')}.${b64url('{"sub":"x"}')}.${b64url('sig')}`, // header without alg
      `${b64url('{"alg":"RS256"}')}.${b64url('{"sub":"x"}')}`, // two parts
      'eyJhbGciOiJIUzI1NiJ9', // a header alone
      `eyJ${'x'.repeat(20)}.abc.def`, // not base64 JSON
    ],
  },
  private_key: {
    hits: [
      [`key:\n-----BEGIN PRIVATE KEY-----\n${PEM_BODY}-----END PRIVATE KEY-----\nafter`, [`-----BEGIN PRIVATE KEY-----\n${PEM_BODY}-----END PRIVATE KEY-----`]],
      [`-----BEGIN OPENSSH PRIVATE KEY-----\n${PEM_BODY}-----END OPENSSH PRIVATE KEY-----`, [`-----BEGIN OPENSSH PRIVATE KEY-----\n${PEM_BODY}-----END OPENSSH PRIVATE KEY-----`]],
      [`truncated -----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}`, [`-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}`]],
      [`-----BEGIN ENCRYPTED PRIVATE KEY-----\nabc\n-----END ENCRYPTED PRIVATE KEY-----`, ['-----BEGIN ENCRYPTED PRIVATE KEY-----\nabc\n-----END ENCRYPTED PRIVATE KEY-----']],
    ],
    misses: [`-----BEGIN PUBLIC KEY-----\n${PEM_BODY}-----END PUBLIC KEY-----`, `-----BEGIN CERTIFICATE-----\n${PEM_BODY}-----END CERTIFICATE-----`, 'the private key is stored in vault'],
  },
  connection_string_password: {
    hits: [
      ['DATABASE_URL=postgres://app:s3cr3t-Pa55@db.internal:5432/prod', ['s3cr3t-Pa55']],
      ['mysql://root:pw@[::1]/x and redis://:r3dis@cache:6379', ['pw', 'r3dis']],
      ['"amqp://guest:gu:est@rabbit/"', ['gu:est']],
    ],
    misses: ['postgres://app@db.internal/prod', 'https://example.com/a:b@c', 'see https://docs.example.com/path?x=1', 'postgres://app:@db/x', 'mailto:alice@example.com'],
  },
  generic_secret: {
    hits: [
      ['api_key = "Zx8kP2mQ9vL4rT7w"', ['Zx8kP2mQ9vL4rT7w']],
      ['Authorization: Bearer xYz123AbC456dEf789', ['xYz123AbC456dEf789']],
      ['{"password": "Tr0ub4dor&3xQ!"}', ['Tr0ub4dor&3xQ!']],
      ['client_secret=9fJ2kL8mN4pQ7rS1&next=1', ['9fJ2kL8mN4pQ7rS1']],
      // short values cannot reach 3.5 bits per character; mixed classes and few repeats suffice
      ['password: "k9mPk2vQ7nR4"', ['k9mPk2vQ7nR4']],
      ['DB_PASSWORD=Password123!', ['Password123!']],
      ['pwd=k9mPk2vQ7nR4', ['k9mPk2vQ7nR4']], // the shortest text with a finding: 16 characters
    ],
    misses: [
      'password = "aaaaaaaaaaaaaaaa"', // low entropy
      'password: changeme', // too short
      'token: abababababababababab', // long but only two characters
      'token = "0000000000000000"',
      'password=\\"x\\"', // too short even when escaped
      'the secret ingredient is love and patience',
      'token = "v1.2.3-beta.4"', // short, no capitals
      'token: "refresh_token"',
    ],
  },
};

describe('built-in detectors', () => {
  it('has test cases for every built-in detector', () => {
    assert.deepEqual(Object.keys(CASES).sort(), [...BUILTIN_DETECTORS.keys()].sort());
  });

  for (const [name, c] of Object.entries(CASES)) {
    describe(name, () => {
      const d = BUILTIN_DETECTORS.get(name)!;
      it('finds true positives with their exact spans', () => {
        assert.ok(c.hits.length >= 2 && c.hits.flatMap(([, s]) => s).length >= 2);
        for (const [text, spans] of c.hits) {
          const found = d.find(text).map((r) => text.slice(r.start, r.end));
          assert.deepEqual(found, spans, `${name} in ${JSON.stringify(text)}`);
        }
      });
      it('leaves look-alikes alone', () => {
        assert.ok(c.misses.length >= 2);
        for (const text of c.misses) assert.deepEqual(d.find(text).map((r) => text.slice(r.start, r.end)), [], `${name} must not match ${JSON.stringify(text)}`);
      });
      it('reports the same through a Scanner, and its trigger matches wherever it finds something', () => {
        const scanner = new Scanner([d]);
        for (const [text, spans] of c.hits) {
          assert.deepEqual(scanner.scan(text).map((f) => text.slice(f.start, f.end)), spans);
          if (d.trigger) assert.ok(d.trigger.test(text), `trigger of ${name} must match ${JSON.stringify(text)}`);
        }
      });
    });
  }
});

describe('validators', () => {
  it('luhnValid', () => {
    assert.equal(luhnValid('79927398713'), true);
    assert.equal(luhnValid('79927398710'), false);
    assert.equal(luhnValid('4111 1111 1111 1111'), true);
    assert.equal(luhnValid('0'), false);
  });

  it('cardBrand by IIN range and length', () => {
    const cases: [string, string | undefined][] = [
      ['4111111111111111', 'visa'],
      ['4222222222222', 'visa'],
      [pan('4', 15), undefined],
      ['5555555555554444', 'mastercard'],
      [pan('2221', 16), 'mastercard'],
      [pan('2720', 16), 'mastercard'],
      [pan('2721', 16), undefined],
      [pan('2220', 16), undefined],
      ['378282246310005', 'amex'],
      [pan('34', 16), undefined],
      ['6011111111111117', 'discover'],
      [pan('622126', 16), 'discover'],
      ['3530111333300000', 'jcb'],
      ['30569309025904', 'diners'],
      ['6200000000000005', 'unionpay'],
      [pan('6759', 16), 'maestro'],
      ['1234567812345670', undefined],
    ];
    for (const [p, brand] of cases) assert.equal(cardBrand(p), brand, p);
  });

  it('ibanValid (ISO 13616 MOD 97-10)', () => {
    assert.equal(ibanValid('GB82WEST12345698765432'), true);
    assert.equal(ibanValid('GB82WEST12345698765433'), false);
    assert.equal(ibanValid('GB82WEST1234569876543'), false);
    assert.equal(ibanValid('gb82west12345698765432'), false);
  });

  it('ssnValid', () => {
    assert.equal(ssnValid('123', '45', '6789'), true);
    for (const [a, g, s] of [['000', '45', '6789'], ['666', '45', '6789'], ['900', '45', '6789'], ['123', '00', '6789'], ['123', '45', '0000']]) {
      assert.equal(ssnValid(a!, g!, s!), false, `${a}-${g}-${s}`);
    }
  });

  it('shannonEntropy', () => {
    assert.equal(shannonEntropy(''), 0);
    assert.equal(shannonEntropy('aaaa'), 0);
    assert.equal(shannonEntropy('abab'), 1);
    assert.ok(Math.abs(shannonEntropy('abcdefgh') - 3) < 1e-12);
  });
});

describe('Scanner', () => {
  it('finds every kind in one text, in order, without overlaps', () => {
    const text = `user alice@example.com paid with 4111 1111 1111 1111 from 10.0.0.1 using ${'AKIA'}IOSFODNN7EXAMPLE`;
    const scanner = new Scanner(defaultDetectors());
    const found = scanner.scan(text).map((f) => [f.detector.name, text.slice(f.start, f.end)]);
    assert.deepEqual(found, [
      ['email', 'alice@example.com'],
      ['payment_card', '4111 1111 1111 1111'],
      ['aws_access_key_id', 'AKIAIOSFODNN7EXAMPLE'],
    ]);
    assert.deepEqual(scanner.scan('nothing to see here, SELECT 1'), []);
    assert.deepEqual(scanner.scan(''), []);
  });

  it('merges overlapping findings into one span kept by the earlier detector', () => {
    const text = `Authorization: Bearer ${JWT}`;
    const findings = new Scanner(resolveDetectors(['jwt', 'generic_secret'])).scan(text);
    assert.equal(findings.length, 1);
    assert.equal(text.slice(findings[0]!.start, findings[0]!.end), JWT);
  });

  it('sees two detectors that share a trigger', () => {
    const key = rand(40);
    const text = `aws_secret = ${key}`;
    const names = new Scanner(resolveDetectors(['aws_secret_key', 'generic_secret'])).scan(text).map((f) => f.detector.name);
    assert.deepEqual(names, ['aws_secret_key']);
    assert.deepEqual(new Scanner(resolveDetectors(['generic_secret'])).scan(text).map((f) => text.slice(f.start, f.end)), [key]);
  });

  it('runs custom detectors (no trigger) on every text', () => {
    const custom = { name: 'emp', type: 'emp', trigger: undefined, find: (t: string) => (t.includes('EMP') ? [{ start: t.indexOf('EMP'), end: t.indexOf('EMP') + 3 }] : []) };
    assert.deepEqual(new Scanner([custom]).scan('badge EMP').map((f) => f.detector.name), ['emp']);
  });

  it('refuses a trigger with flags or capture groups', () => {
    const bad = { name: 'bad', type: 'bad', trigger: /(x)/, find: () => [] };
    assert.throws(() => new Scanner([bad]), (e) => isGatehouseError(e, 'ERR_INTERNAL'));
    assert.throws(() => new Scanner([{ ...bad, trigger: /x/i }]), (e) => isGatehouseError(e, 'ERR_INTERNAL'));
  });
});

describe('detector groups', () => {
  it('default is every built-in but IP addresses; all is everything', () => {
    assert.deepEqual(defaultDetectors().map((d) => d.name), [...BUILTIN_DETECTORS.keys()].filter((n) => n !== 'ipv4' && n !== 'ipv6'));
    assert.deepEqual(DETECTOR_GROUPS['all'], [...BUILTIN_DETECTORS.keys()]);
  });

  it('resolves names and groups case-insensitively, de-duplicated, in registry order', () => {
    assert.deepEqual(resolveDetectors(['EMAIL', 'pii', 'ip']).map((d) => d.name), ['payment_card', 'iban', 'us_ssn', 'email', 'phone', 'ipv4', 'ipv6']);
    assert.ok(resolveDetectors(['api_key']).every((d) => DETECTOR_GROUPS['secrets']!.includes(d.name)));
    assert.throws(() => resolveDetectors(['payment_card', 'credit_card']), (e) => isGatehouseError(e, 'ERR_CONFIG') && e.message.includes('credit_card'));
  });
});
