import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatehouseError } from '../../src/core/errors.js';
import { HOLD_MAX, HOLD_MS, LineMasker } from '../../src/engines/line-masking.js';

const SECRET = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
const mask = (t: string): string => t.replaceAll(SECRET, '[stripe_key]');

function masker(): { lm: LineMasker; out: string[]; failures: GatehouseError[] } {
  const out: string[] = [];
  const failures: GatehouseError[] = [];
  const lm = new LineMasker({ mask, emit: (b) => out.push(b.toString('utf8')), fail: (e) => failures.push(e), what: 'output' });
  return { lm, out, failures };
}

test('LineMasker: a secret split at every byte boundary is masked whole; multi-byte characters survive any split', () => {
  const text = `héllo ✓ key=${SECRET} — done\nnext 🔑 ${SECRET}\n`;
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i <= bytes.length; i++) {
    const { lm, out } = masker();
    lm.push(bytes.subarray(0, i));
    lm.push(bytes.subarray(i));
    lm.flush();
    assert.equal(out.join(''), mask(text), `split at ${i}`);
    assert.ok(!out.join('').includes(SECRET));
  }
});

test('LineMasker: complete lines go out at once, a partial line after HOLD_MS on its own', async () => {
  const { lm, out } = masker();
  lm.push(Buffer.from(`a ${SECRET}\nprompt$ `));
  assert.deepEqual(out, ['a [stripe_key]\n']);
  await sleep(HOLD_MS * 4);
  assert.deepEqual(out, ['a [stripe_key]\n', 'prompt$ ']);
  // a very long line without a newline does not wait
  lm.push(Buffer.alloc(HOLD_MAX + 1, 'x'));
  assert.equal(out.length, 3);
  lm.close();
});

test('LineMasker: output that is not UTF-8 fails closed, and a cut sequence at the end too', () => {
  const { lm, out } = masker();
  lm.push(Buffer.from('ok\n'));
  assert.throws(() => lm.push(Buffer.from([0xff, 0xfe, 0x0a])), (e: unknown) => e instanceof GatehouseError && e.code === 'ERR_MASKING_FAILED' && /not UTF-8/.test(e.message));
  assert.deepEqual(out, ['ok\n']);
  lm.push(Buffer.from('after\n'));
  assert.deepEqual(out, ['ok\n'], 'nothing passes once it failed');
  const b = masker();
  b.lm.push(Buffer.from([0x61, 0xe2, 0x9c]));
  assert.throws(() => b.lm.flush(), /not UTF-8/);
  assert.deepEqual(b.out, []);
});

test('LineMasker: a masking failure in the hold timer reaches fail(), not an uncaught exception', async () => {
  const failures: GatehouseError[] = [];
  const lm = new LineMasker({
    mask: () => {
      throw new GatehouseError('ERR_MASKING_FAILED', 'value too large');
    },
    emit: () => assert.fail('nothing is emitted'),
    fail: (e) => failures.push(e),
    what: 'output',
  });
  lm.push(Buffer.from('partial'));
  await sleep(HOLD_MS * 4);
  assert.equal(failures.length, 1);
  assert.equal(failures[0]?.code, 'ERR_MASKING_FAILED');
});
