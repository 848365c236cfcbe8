// The masker: strategies, column rules, JSON path rules, fail-closed behaviour and log masking.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createHasher, createMasker, partialMask, redactPlaceholder, strongerStrategy } from '../../src/core/masking/index.js';
import type { ColumnRef, MaskerOptions } from '../../src/core/masking/index.js';
import type { MaskPlan, MaskSpec, MaskStrategy } from '../../src/core/policy/types.js';
import { isGatehouseError } from '../../src/core/errors.js';

const KEY = 'k'.repeat(32);
const OTHER_KEY = 'o'.repeat(32);
const spec = (over: Partial<MaskSpec>): MaskSpec => ({ columns: [], paths: [], detectors: [], strategy: 'redact', rule: { policy: 'test', index: 0, effect: 'mask' }, ...over });
const masker = (plan: MaskPlan, opts: Partial<MaskerOptions> = {}) => createMasker(plan, { hashKey: KEY, ...opts });
const failedClosed = (e: unknown): boolean => isGatehouseError(e, 'ERR_MASKING_FAILED');

const CARD = '4111 1111 1111 1111';
const AWS_ID = `${'AKIA'}IOSFODNN7EXAMPLE`;
const hmac16 = (key: string, v: string): string => `hash:${createHmac('sha256', key).update(v, 'utf8').digest('hex').slice(0, 16)}`;

/** Applies the plan's column maskers to one row. */
function maskRow(m: ReturnType<typeof masker>, cols: ColumnRef[], row: string[]): (string | null)[] {
  const plan = m.forColumns(cols);
  return row.map((v, i) => (plan[i] ? plan[i](v) : v));
}

describe('strategies', () => {
  it('redact writes a placeholder naming the detector type', () => {
    assert.equal(redactPlaceholder('card'), '[card]');
    assert.equal(redactPlaceholder(), '[redacted]');
    const m = masker([spec({ detectors: ['payment_card', 'email'], strategy: 'redact' })]);
    assert.equal(m.maskText(`card ${CARD} of bob@example.com`), 'card [card] of [email]');
  });

  it('partial keeps the last N letters/digits and the separators, never more than half', () => {
    assert.equal(partialMask('4242-4242-4242-4242'), '****-****-****-4242');
    assert.equal(partialMask('4242424242424242', 6), '**********424242');
    assert.equal(partialMask('123-45-6789', 2), '***-**-**89');
    assert.equal(partialMask('abc'), '**c');
    assert.equal(partialMask('ab', 4), '*b');
    assert.equal(partialMask('secret', 0), '******');
    assert.equal(partialMask('ümlaut-😀x1', 2), '******-*x1');
    const m = masker([spec({ detectors: ['payment_card'], strategy: 'partial', keep: 4 })]);
    assert.equal(m.maskText(`paid with ${CARD}.`), 'paid with **** **** **** 1111.');
    const col = masker([spec({ columns: ['*.card_number'], strategy: 'partial', keep: 2 })]);
    assert.deepEqual(maskRow(col, [{ table: 'cards', column: 'card_number' }], ['5555555555554444']), ['**************44']);
  });

  it('hash is a keyed HMAC token: deterministic per key, different between keys', () => {
    const h = createHasher(KEY);
    assert.equal(h('4111111111111111'), hmac16(KEY, '4111111111111111'));
    assert.equal(h('4111111111111111'), h('4111111111111111'));
    assert.notEqual(h('4111111111111111'), h('4111111111111112'));
    assert.notEqual(createHasher(OTHER_KEY)('4111111111111111'), h('4111111111111111'));
    assert.match(h('x'), /^hash:[0-9a-f]{16}$/);
    // recent values are cached; the tokens stay the HMAC's through cache turnover and for long values
    for (let i = 0; i < 5000; i++) assert.equal(h(`v${i}`), hmac16(KEY, `v${i}`));
    assert.equal(h('4111111111111111'), hmac16(KEY, '4111111111111111'));
    assert.equal(h('x'.repeat(300)), hmac16(KEY, 'x'.repeat(300)));
    assert.equal(createHasher(Buffer.from(KEY))('x'), h('x'));
    assert.throws(() => createHasher('short-key'), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    assert.throws(() => masker([], { hashKey: '15-bytes-key---' }), (e) => isGatehouseError(e, 'ERR_CONFIG'));

    const plan = [spec({ columns: ['users.email'], detectors: ['payment_card'], strategy: 'hash' })];
    const a = masker(plan);
    const a2 = masker(plan);
    const b = masker(plan, { hashKey: OTHER_KEY });
    const cols = [{ table: 'users', column: 'email' }, { table: 'users', column: 'note' }];
    const row = ['alice@example.com', `card ${CARD}`];
    const ra = maskRow(a, cols, row);
    assert.deepEqual(ra, [hmac16(KEY, 'alice@example.com'), `card ${hmac16(KEY, CARD)}`]);
    assert.deepEqual(maskRow(a2, cols, row), ra);
    const rb = maskRow(b, cols, row);
    assert.notEqual(rb[0], ra[0]);
    assert.notEqual(rb[1], ra[1]);
  });

  it('null nulls a whole cell or JSON leaf, and redacts the span in free text', () => {
    const m = masker([spec({ columns: ['users.ssn'], detectors: ['email'], strategy: 'null' })]);
    const cols = [{ table: 'users', column: 'ssn' }, { table: 'users', column: 'contact' }, { table: 'users', column: 'name' }];
    assert.deepEqual(maskRow(m, cols, ['123-45-6789', 'mail alice@example.com', 'Alice']), [null, null, 'Alice']);
    assert.equal(m.maskText('mail alice@example.com'), 'mail [email]');
    assert.deepEqual(m.maskJson({ contact: 'alice@example.com', n: 1 }), { contact: null, n: 1 });
  });

  it('the strongest strategy wins when several rules apply: null > redact > hash > partial, then the smaller keep', () => {
    assert.equal(strongerStrategy('partial', 'hash'), 'hash');
    assert.equal(strongerStrategy('redact', 'hash'), 'redact');
    assert.equal(strongerStrategy('redact', 'null'), 'null');
    const col = { table: 'users', column: 'ssn' };
    const value = '123-45-6789';
    const run = (...strategies: [MaskStrategy, number?][]) =>
      maskRow(masker(strategies.map(([strategy, keep]) => spec({ columns: ['*.ssn'], strategy, ...(keep === undefined ? {} : { keep }) }))), [col], [value])[0];
    assert.equal(run(['partial'], ['hash']), hmac16(KEY, value));
    assert.equal(run(['hash'], ['redact'], ['partial']), '[redacted]');
    assert.equal(run(['redact'], ['null']), null);
    assert.equal(run(['partial', 4], ['partial', 2]), '***-**-**89');
    const det = masker([spec({ detectors: ['payment_card'], strategy: 'partial' }), spec({ detectors: ['pii'], strategy: 'redact' })]);
    assert.equal(det.maskText(CARD), '[card]');
  });
});

describe('column rules', () => {
  const m = masker([
    spec({ columns: ['*.ssn'], strategy: 'redact' }),
    spec({ columns: ['payments.*'], strategy: 'null' }),
    spec({ columns: ['public.users.secret_answer'], strategy: 'hash' }),
    spec({ columns: ['users.card_*'], strategy: 'partial' }),
  ]);
  const one = (c: ColumnRef, v = 'value-1234') => maskRow(m, [c], [v])[0];

  it('*.ssn: a column of that name in any table and schema, case-insensitively', () => {
    assert.equal(one({ column: 'ssn' }), '[redacted]');
    assert.equal(one({ table: 'employees', column: 'ssn' }), '[redacted]');
    assert.equal(one({ schema: 'hr', table: 'people', column: 'SSN' }), '[redacted]');
    assert.equal(one({ table: 'employees', column: 'ssn_hash' }), 'value-1234');
  });

  it('payments.*: every column of that table, whatever the schema', () => {
    assert.equal(one({ table: 'payments', column: 'amount' }, '12.50'), null);
    assert.equal(one({ schema: 'billing', table: 'Payments', column: 'note' }), null);
    assert.equal(one({ table: 'payments_archive', column: 'amount' }, '12.50'), '12.50');
    assert.equal(one({ column: 'amount' }, '12.50'), '12.50', 'a column without a known table does not match a table rule');
  });

  it('public.users.secret_answer: only in that schema', () => {
    assert.equal(one({ schema: 'public', table: 'users', column: 'secret_answer' }, 'blue'), hmac16(KEY, 'blue'));
    assert.equal(one({ schema: 'staging', table: 'users', column: 'secret_answer' }, 'blue'), 'blue');
    assert.equal(one({ table: 'users', column: 'secret_answer' }, 'blue'), 'blue');
  });

  it('wildcards inside a name part', () => {
    assert.equal(one({ table: 'users', column: 'card_number' }, '4242424242424242'), '************4242');
    assert.equal(one({ table: 'users', column: 'card_' }, 'abcdefgh'), '****efgh');
    assert.equal(one({ table: 'users', column: 'cardholder' }, 'Alice'), 'Alice');
  });

  it('compiles one plan per result set; columns without a rule pass through raw when there are no detectors', () => {
    const plan = m.forColumns([{ table: 'users', column: 'name' }, { table: 'users', column: 'ssn' }]);
    assert.equal(plan[0], undefined);
    assert.equal(typeof plan[1], 'function');
    assert.equal(m.forColumns([{ table: 'users', column: 'name' }, { table: 'users', column: 'ssn' }]), plan, 'cached per column list');
    const inactive = masker([]);
    assert.equal(inactive.active, false);
    assert.deepEqual(inactive.forColumns([{ column: 'ssn' }, { column: 'card' }]), [undefined, undefined]);
    assert.equal(inactive.maskText(CARD), CARD);
  });

  it('scans columns without a rule with the plan detectors, masking only the spans', () => {
    const d = masker([spec({ columns: ['*.ssn'], detectors: ['payment_card', 'aws_access_key_id'], strategy: 'redact' })]);
    const cols = [{ table: 't', column: 'note' }, { table: 't', column: 'ssn' }, { table: 't', column: 'id' }];
    assert.deepEqual(maskRow(d, cols, [`paid ${CARD}, key ${AWS_ID}`, '078-05-1120', '42']), ['paid [card], key [aws_access_key]', '[redacted]', '42']);
  });

  it('refuses malformed column patterns', () => {
    assert.throws(() => masker([spec({ columns: ['a.b.c.d'] })]), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    assert.throws(() => masker([spec({ columns: ['users.'] })]), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    assert.throws(() => masker([spec({ detectors: ['no_such_detector'] })]), (e) => isGatehouseError(e, 'ERR_CONFIG'));
  });
});

describe('JSON path rules', () => {
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', namespace: 'prod', annotations: { owner: 'team-a' } },
    type: 'Opaque',
    data: { username: 'YWRtaW4=', password: 'aHVudGVyMg==' },
  };

  it('Secret.data.*: every value under data of a Secret, nothing else', () => {
    const m = masker([spec({ paths: ['Secret.data.*'], strategy: 'redact' })]);
    const out = m.maskJson(secret) as typeof secret;
    assert.deepEqual(out.data, { username: '[redacted]', password: '[redacted]' });
    assert.deepEqual(out.metadata, secret.metadata);
    assert.equal(secret.data.password, 'aHVudGVyMg==', 'the input is not modified');
    const cm = { kind: 'ConfigMap', metadata: { name: 'x' }, data: { password: 'plain' } };
    assert.deepEqual(m.maskJson(cm), cm, 'other kinds are untouched');
  });

  it('applies to items of a List, to watch events and with a kind hint', () => {
    const m = masker([spec({ paths: ['Secret.data.*'], strategy: 'hash' })]);
    const list = m.maskJson({ kind: 'SecretList', items: [{ metadata: { name: 'a' }, data: { k: 'v1' } }, { ...secret }] }) as { items: { data: Record<string, string> }[] };
    assert.deepEqual(list.items[0]!.data, { k: hmac16(KEY, 'v1') });
    assert.equal(list.items[1]!.data['password'], hmac16(KEY, 'aHVudGVyMg=='));
    const watch = m.maskJson({ type: 'MODIFIED', object: secret }) as { object: typeof secret };
    assert.equal(watch.object.data.username, hmac16(KEY, 'YWRtaW4='));
    const hinted = m.maskJson({ data: { k: 'v1' } }, 'Secret') as { data: Record<string, string> };
    assert.equal(hinted.data['k'], hmac16(KEY, 'v1'));
  });

  it('masks whole subtrees, leaves of every type, and wildcard kinds', () => {
    const m = masker([spec({ paths: ['*.metadata.annotations', 'Secret.stringData.*'], strategy: 'redact' })]);
    const out = m.maskJson({ kind: 'Pod', metadata: { name: 'p', annotations: { a: 'x', n: 5, b: true, nested: ['y', null] } } }) as { metadata: Record<string, unknown> };
    assert.deepEqual(out.metadata, { name: 'p', annotations: { a: '[redacted]', n: '[redacted]', b: '[redacted]', nested: ['[redacted]', null] } });
    const p = masker([spec({ paths: ['Secret.data.password'], strategy: 'partial', keep: 2 })]);
    assert.deepEqual((p.maskJson(secret) as typeof secret).data, { username: 'YWRtaW4=', password: '********Mg==' });
  });

  it('applies the plan detectors to JSON strings and numbers', () => {
    const m = masker([spec({ detectors: ['payment_card', 'email'], strategy: 'redact' })]);
    assert.deepEqual(m.maskJson({ a: [`x ${CARD}`, 4111111111111111, 'ok'], b: { c: 'alice@example.com' }, n: 3 }), { a: ['x [card]', '[card]', 'ok'], b: { c: '[email]' }, n: 3 });
  });

  it('refuses malformed path patterns', () => {
    assert.throws(() => masker([spec({ paths: ['Secret'] })]), (e) => isGatehouseError(e, 'ERR_CONFIG'));
    assert.throws(() => masker([spec({ paths: ['Secret..data'] })]), (e) => isGatehouseError(e, 'ERR_CONFIG'));
  });
});

describe('fail closed', () => {
  it('a value over maxValueBytes throws ERR_MASKING_FAILED, for detector and column masking alike', () => {
    const m = masker([spec({ columns: ['*.ssn'], detectors: ['email'], strategy: 'redact' })], { maxValueBytes: 100 });
    const [scan, rule] = m.forColumns([{ table: 't', column: 'note' }, { table: 't', column: 'ssn' }]);
    assert.equal(scan!('x'.repeat(100)), 'x'.repeat(100));
    assert.throws(() => scan!('x'.repeat(101)), failedClosed);
    assert.throws(() => rule!('x'.repeat(101)), failedClosed);
    assert.throws(() => scan!('é'.repeat(51)), failedClosed, 'the limit is in UTF-8 bytes, not characters');
    assert.equal(scan!('é'.repeat(50)), 'é'.repeat(50));
    assert.throws(() => m.maskText('y'.repeat(101)), failedClosed);
    assert.throws(() => m.maskJson({ a: 'z'.repeat(101) }), failedClosed);
    assert.throws(() => masker([], { maxValueBytes: 0 }), (e) => isGatehouseError(e, 'ERR_CONFIG'));
  });

  it('the error tells the agent nothing about the value', () => {
    const m = masker([spec({ detectors: ['email'] })], { maxValueBytes: 10 });
    try {
      m.maskText('alice@example.com is far too long');
      assert.fail('must throw');
    } catch (e) {
      assert.ok(failedClosed(e));
      assert.equal((e as Error).message.includes('alice'), false);
    }
  });

  it('U+FFFD splitting what would be a secret throws; a harmless U+FFFD passes', () => {
    const m = masker([spec({ detectors: ['payment_card', 'aws_access_key_id'] })]);
    const [scan] = m.forColumns([{ column: 'note' }]);
    assert.throws(() => scan!('card 4111 1111 \ufffd1111 1111'), failedClosed);
    assert.throws(() => scan!(`key AKIA\ufffdIOSFODNN7EXAMPLE`), failedClosed);
    assert.throws(() => m.maskText('4111111111\ufffd111111'), failedClosed);
    assert.equal(scan!('caf\ufffd au lait'), 'caf\ufffd au lait');
    assert.equal(scan!(`\ufffd ${CARD}`), '\ufffd [card]');
  });

  it('deeply nested or binary JSON fails closed', () => {
    const m = masker([spec({ detectors: ['email'] })]);
    let deep: unknown = 'leaf';
    for (let i = 0; i < 300; i++) deep = { d: deep };
    assert.throws(() => m.maskJson(deep), failedClosed);
    assert.throws(() => m.maskJson({ blob: new Uint8Array([1, 2, 3]) }), failedClosed);
  });
});

describe('maskForLog', () => {
  it('masks every default detector whatever the plan says (even an empty plan)', () => {
    const text = `user alice@example.com card ${CARD} key ${AWS_ID} url postgres://app:Pa55word@db/x`;
    const expected = 'user [email] card [card] key [aws_access_key] url postgres://app:[password]@db/x';
    for (const plan of [[], [spec({ detectors: ['ipv4'], strategy: 'partial' })], [spec({ detectors: ['payment_card'], strategy: 'hash' })], [spec({ columns: ['*.x'], strategy: 'null' })]]) {
      const m = masker(plan);
      assert.equal(m.maskForLog(text), expected, JSON.stringify(plan.map((p) => p.strategy)));
    }
    assert.equal(masker([]).maskText(text), text, 'the agent-facing text is not masked by an empty plan');
  });

  it('leaves IP addresses (not a default detector) and benign text alone', () => {
    assert.equal(masker([]).maskForLog('SELECT * FROM hosts WHERE ip = 10.0.0.1'), 'SELECT * FROM hosts WHERE ip = 10.0.0.1');
  });

  it('masks a secret split by U+FFFD instead of failing', () => {
    const out = masker([]).maskForLog('card 4111 1111 \ufffd1111 1111 end');
    assert.equal(out.includes('1111 1111'), false);
    assert.match(out, /\[card\]/);
  });

  it('includes custom detectors', () => {
    const m = masker([], { customDetectors: [{ name: 'employee_id', pattern: 'EMP-(?<value>\\d{6})', examples: ['EMP-123456'] }] });
    assert.equal(m.maskForLog('badge EMP-123456 and bob@example.com'), 'badge EMP-[employee_id] and [email]');
  });
});

describe('custom detectors in a plan', () => {
  it('are usable by name and through the custom group', () => {
    const customDetectors = [
      { name: 'employee_id', pattern: 'EMP-(?<value>\\d{6})', examples: ['EMP-123456'], type: 'emp' },
      { name: 'ticket', pattern: 'TCK-\\d{4}', flags: 'i', examples: ['TCK-0001'] },
    ];
    const byName = masker([spec({ detectors: ['employee_id'], strategy: 'partial', keep: 2 })], { customDetectors });
    assert.equal(byName.maskText('badge EMP-123456, tck-0001'), 'badge EMP-****56, tck-0001');
    const group = masker([spec({ detectors: ['custom'] })], { customDetectors });
    assert.equal(group.maskText('badge EMP-123456, tck-0001'), 'badge EMP-[emp], [ticket]');
    assert.throws(() => masker([spec({ detectors: ['employee_id'] })]), (e) => isGatehouseError(e, 'ERR_CONFIG'), 'unknown without the definition');
  });
});
