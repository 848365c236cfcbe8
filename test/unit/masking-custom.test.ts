// Custom detectors from configuration: compilation, validation of examples, and the
// catastrophic-backtracking guard.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileCustomDetector, compileCustomDetectors, hasNestedUnboundedQuantifier, validateCustomDetectors } from '../../src/core/masking/index.js';
import type { CustomDetector } from '../../src/core/masking/index.js';
import { isGatehouseError } from '../../src/core/errors.js';

const spans = (d: ReturnType<typeof compileCustomDetector>, text: string): string[] => d.find(text).map((r) => text.slice(r.start, r.end));
const def = (over: Partial<CustomDetector>): CustomDetector => ({ name: 'employee_id', pattern: 'EMP-\\d{6}', examples: ['badge EMP-123456'], ...over });

describe('compileCustomDetector', () => {
  it('masks the whole match, or only the named group `value`', () => {
    assert.deepEqual(spans(compileCustomDetector(def({})), 'EMP-123456 and EMP-654321'), ['EMP-123456', 'EMP-654321']);
    assert.deepEqual(spans(compileCustomDetector(def({ pattern: 'EMP-(?<value>\\d{6})' })), 'badge EMP-123456'), ['123456']);
    const d = compileCustomDetector(def({ type: 'emp' }));
    assert.equal(d.name, 'employee_id');
    assert.equal(d.type, 'emp');
    assert.equal(d.trigger, undefined);
    assert.equal(compileCustomDetector(def({})).type, 'employee_id');
  });

  it('honours flags and validators', () => {
    assert.deepEqual(spans(compileCustomDetector(def({ pattern: 'emp-\\d{6}', flags: 'i' })), 'EMP-123456'), ['EMP-123456']);
    const card = compileCustomDetector(def({ name: 'internal_card', pattern: '\\b\\d{16}\\b', validator: 'luhn' }));
    assert.deepEqual(spans(card, '4111111111111111 4111111111111112'), ['4111111111111111']);
    const ssn = compileCustomDetector(def({ name: 'tax_id', pattern: 'TIN (?<value>\\d{3}-\\d{2}-\\d{4})', validator: 'us_ssn' }));
    assert.deepEqual(spans(ssn, 'TIN 123-45-6789, TIN 666-45-6789'), ['123-45-6789']);
    const iban = compileCustomDetector(def({ name: 'acct', pattern: 'ACCT:(?<value>[A-Z0-9 ]{15,34})', validator: 'iban' }));
    assert.deepEqual(spans(iban, 'ACCT:GB82 WEST 1234 5698 7654 32'), ['GB82 WEST 1234 5698 7654 32']);
    assert.deepEqual(spans(iban, 'ACCT:GB82 WEST 1234 5698 7654 33'), []);
    const entropy = compileCustomDetector(def({ name: 'session_key', pattern: 'sess_[A-Za-z0-9]{16}', validator: 'entropy' }));
    assert.deepEqual(spans(entropy, 'sess_Q7vK2mX9pL4sT8wZ sess_aaaaaaaaaaaaaaaa'), ['sess_Q7vK2mX9pL4sT8wZ']);
  });

  it('refuses bad definitions with ERR_CONFIG', () => {
    const bad: Partial<CustomDetector>[] = [
      { name: 'Employee' },
      { name: '1abc' },
      { name: 'payment_card' }, // built-in
      { name: 'pii' }, // group
      { name: 'custom' },
      { pattern: '' },
      { pattern: 'x'.repeat(2001) },
      { pattern: '(' },
      { pattern: 'a*' }, // matches the empty string
      { flags: 'g' },
      { flags: 'ii' },
      { validator: 'md5' as never },
      { pattern: '(a+)+b' },
    ];
    for (const over of bad) assert.throws(() => compileCustomDetector(def(over)), (e) => isGatehouseError(e, 'ERR_CONFIG'), JSON.stringify(over));
    assert.throws(() => compileCustomDetectors([def({}), def({})]), (e) => isGatehouseError(e, 'ERR_CONFIG') && /twice/.test(e.message));
  });
});

describe('hasNestedUnboundedQuantifier (catastrophic backtracking)', () => {
  it('flags an unbounded repetition of a group that repeats without bound', () => {
    for (const p of ['(a+)+', '(\\w*)*', '(x+){2,}', '(?:[a-z]+)*$', '^(\\d+\\s?)+$', '((ab)*c)+', '(.*a){1,}']) assert.equal(hasNestedUnboundedQuantifier(p), true, p);
  });

  it('allows bounded repetitions and unnested quantifiers', () => {
    for (const p of ['a+b*', '(ab)+', '(a+){1,3}', '(a{1,5})+', 'EMP-\\d{6}', '[+*]+', '(\\+)+', '(?<value>[A-Z]{2}\\d+)', '\\(a+\\)+']) {
      assert.equal(hasNestedUnboundedQuantifier(p), false, p);
    }
  });
});

describe('validateCustomDetectors', () => {
  it('returns no problems for good definitions', () => {
    assert.deepEqual(validateCustomDetectors([def({ negatives: ['EMP-12345', 'emp-123456'] }), def({ name: 'ticket', pattern: 'TCK-\\d{4}', examples: ['TCK-0001'] })]), []);
  });

  it('reports an example that is not detected and a negative that is', () => {
    const problems = validateCustomDetectors([def({ examples: ['badge EMP-123456', 'badge EMP-12345'], negatives: ['EMP-000000'] })]);
    assert.deepEqual(problems, [
      { detector: 'employee_id', problem: 'example not detected: "badge EMP-12345"' },
      { detector: 'employee_id', problem: 'negative example detected: "EMP-000000"' },
    ]);
  });

  it('reports an example rejected by the validator', () => {
    const problems = validateCustomDetectors([def({ name: 'internal_card', pattern: '\\d{16}', validator: 'luhn', examples: ['4111111111111112'] })]);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.problem, /example not detected/);
  });

  it('reports catastrophic-backtracking patterns and other compile errors without throwing', () => {
    const problems = validateCustomDetectors([
      def({ name: 'slow', pattern: '^(a+)+$', examples: ['aaaa'] }),
      def({ name: 'broken', pattern: '[', examples: ['['] }),
      def({ name: 'payment_card' }),
    ]);
    assert.deepEqual(problems.map((p) => p.detector), ['slow', 'broken', 'payment_card']);
    assert.match(problems[0]!.problem, /catastrophic backtracking/);
    assert.match(problems[1]!.problem, /invalid pattern/);
    assert.match(problems[2]!.problem, /taken/);
  });

  it('requires at least one example and unique names', () => {
    const problems = validateCustomDetectors([def({ examples: [] }), def({ name: 'other', pattern: 'OTH-\\d' , examples: ['OTH-1'] }), def({ name: 'other', pattern: 'OTH-\\d', examples: ['OTH-1'] })]);
    assert.deepEqual(problems, [
      { detector: 'employee_id', problem: 'needs at least one example' },
      { detector: 'other', problem: 'defined twice' },
    ]);
  });
});
