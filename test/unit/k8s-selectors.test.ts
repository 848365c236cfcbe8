/**
 * Label and field selectors parsed as k8s.io/apimachinery parses them (cases after
 * labels/selector_test.go and fields/selector_test.go).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SelectorError, escapeFieldValue, labelValueErrors, parseFieldSelector, parseGoInt64, parseLabelSelector, qualifiedNameErrors, unescapeFieldValue } from '../../src/engines/kubernetes/selectors.js';

test('label selectors upstream accepts', () => {
  for (const s of ['x=a,y=b,z=c', '', 'x!=a,y=b', 'x=', 'x= ', 'x=,z= ', 'x= ,z= ', '!x', 'x>1', 'x>1,z<5', 'x in (a,b)', 'x notin (a)', 'x in ()', 'x in (,)', 'x in (a,,b)', 'x', 'in=notin', 'example.com/app==web', ' x = a , y ', 'x in(a)']) {
    assert.doesNotThrow(() => parseLabelSelector(s), s);
  }
});

test('label selectors upstream refuses', () => {
  for (const s of ['x=a||y=b', 'x==a==b', '!x=a', 'x<a', 'x>1.5', ',x', 'x,', 'x in (a', 'x in a', 'x in (a b)', '(x)', 'x=(a)', '/x', 'a/b/c', 'Bad_Prefix.com/x', 'x=a b', 'x=' + 'v'.repeat(64), 'x' + '='.repeat(3) + 'a', 'x!', '!', '!!x', 'x>1,z<', 'x>-1']) {
    assert.throws(() => parseLabelSelector(s), SelectorError, s);
  }
});

test('label selector matching', () => {
  const m = (sel: string, labels: Record<string, string>): boolean => parseLabelSelector(sel).matches(labels);
  assert.equal(m('', {}), true);
  assert.equal(m('x=y', { x: 'y' }), true);
  assert.equal(m('x=y', { x: 'z' }), false);
  assert.equal(m('x=y', {}), false);
  assert.equal(m('x!=y', {}), true);
  assert.equal(m('x!=y', { x: 'z' }), true);
  assert.equal(m('x!=y', { x: 'y' }), false);
  assert.equal(m('x', { x: '' }), true);
  assert.equal(m('!x', { x: '' }), false);
  assert.equal(m('!x', { y: '' }), true);
  assert.equal(m('x in (a,b)', { x: 'b' }), true);
  assert.equal(m('x in (a,b)', {}), false);
  assert.equal(m('x notin (a,b)', {}), true);
  assert.equal(m('x notin (a,b)', { x: 'a' }), false);
  assert.equal(m('x in (,a)', { x: '' }), true);
  assert.equal(m('x=', { x: '' }), true);
  assert.equal(m('x>1', { x: '2' }), true);
  assert.equal(m('x>1', { x: '1' }), false);
  assert.equal(m('x>1', { x: 'b' }), false);
  assert.equal(m('x<10', { x: '-3' }), true);
  assert.equal(m('app=web,tier in (front,back),!legacy', { app: 'web', tier: 'back' }), true);
  assert.equal(m('app=web,tier in (front,back),!legacy', { app: 'web', tier: 'back', legacy: 'true' }), false);
  const r = parseLabelSelector('z, a in (c,b,b)').requirements;
  assert.deepEqual(r, [{ key: 'a', operator: 'in', values: ['b', 'c'] }, { key: 'z', operator: 'exists', values: [] }]);
});

test('label key and value validation', () => {
  assert.deepEqual(qualifiedNameErrors('app.kubernetes.io/name'), []);
  assert.notDeepEqual(qualifiedNameErrors('/name'), []);
  assert.notDeepEqual(qualifiedNameErrors('UPPER.com/name'), []);
  assert.notDeepEqual(qualifiedNameErrors('n'.repeat(64)), []);
  assert.deepEqual(labelValueErrors(''), []);
  assert.deepEqual(labelValueErrors('a.b-c_d'), []);
  assert.notDeepEqual(labelValueErrors('-a'), []);
  assert.equal(parseGoInt64('+12'), 12n);
  assert.equal(parseGoInt64('9223372036854775808'), undefined);
  assert.equal(parseGoInt64('1_0'), undefined);
  assert.equal(parseGoInt64(''), undefined);
});

test('field selectors: terms, escapes, exact matches', () => {
  const s = parseFieldSelector('status.phase!=Running,metadata.name==web\\,0');
  assert.deepEqual(s.requirements, [{ field: 'metadata.name', operator: '==', value: 'web,0' }, { field: 'status.phase', operator: '!=', value: 'Running' }]);
  assert.equal(s.requiresExactMatch('metadata.name'), 'web,0');
  assert.equal(s.requiresExactMatch('status.phase'), undefined);
  assert.equal(s.matches({ 'metadata.name': 'web,0', 'status.phase': 'Pending' }), true);
  assert.equal(s.matches({ 'metadata.name': 'web,0', 'status.phase': 'Running' }), false);
  assert.equal(parseFieldSelector('').matches({}), true);
  assert.equal(parseFieldSelector('a=,b=x').matches({ b: 'x' }), true, 'a missing field reads as ""');
  assert.equal(parseFieldSelector('x=a,,y=b').requirements.length, 2);
  for (const bad of ['x', 'x=a=b', 'x=a\\b', 'x=a\\', 'x=a,y']) assert.throws(() => parseFieldSelector(bad), SelectorError, bad);
  assert.equal(unescapeFieldValue('a\\=b\\\\c'), 'a=b\\c');
  assert.equal(escapeFieldValue('a=b,c\\'), 'a\\=b\\,c\\\\');
});
