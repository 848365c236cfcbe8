import { describe, expect, test } from 'vitest';
import { clock, duration } from './format';
import { parseHash } from './router';

describe('format', () => {
  test('durations', () => {
    expect(duration(4_200)).toBe('4 s');
    expect(duration(185_000)).toBe('3 min 05 s');
    expect(duration(7_800_000)).toBe('2 h 10 min');
    expect(duration(-5)).toBe('0 s');
    expect(clock(65.9)).toBe('1:05');
  });

  test('hash routes', () => {
    const r = parseHash('#/sessions/abc?protocol=ssh&subject=agent%20a');
    expect(r.path).toEqual(['sessions', 'abc']);
    expect(r.query.get('subject')).toBe('agent a');
    expect(parseHash('').path).toEqual([]);
  });
});
