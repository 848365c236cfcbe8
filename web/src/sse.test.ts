import { describe, expect, test } from 'vitest';
import { SseParser, type SseMessage } from './sse';

function parseAll(chunks: string[]): SseMessage[] {
  const out: SseMessage[] = [];
  const p = new SseParser((m) => out.push(m));
  for (const c of chunks) p.push(c);
  return out;
}

const STREAM = ': connected\n\nevent: review\ndata: {"id":"r1","state":"pending"}\n\n: ping\n\nevent: session\r\ndata: {"id":"s1"}\r\n\r\ndata: a\ndata: b\n\n';
const EXPECTED: SseMessage[] = [
  { event: 'review', data: '{"id":"r1","state":"pending"}' },
  { event: 'session', data: '{"id":"s1"}' },
  { event: 'message', data: 'a\nb' },
];

describe('SseParser', () => {
  test('parses events, skips comments, joins data lines', () => {
    expect(parseAll([STREAM])).toEqual(EXPECTED);
  });

  test('gives the same events whatever the chunk boundaries', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      for (const j of [i, Math.min(STREAM.length, i + 1), Math.min(STREAM.length, i + 7)]) {
        expect(parseAll([STREAM.slice(0, i), STREAM.slice(i, j), STREAM.slice(j)])).toEqual(EXPECTED);
      }
    }
  });

  test('one character at a time', () => {
    expect(parseAll([...STREAM])).toEqual(EXPECTED);
  });

  test('an event without data is not dispatched; a field without colon is a name with empty value', () => {
    expect(parseAll(['event: x\n\ndata\n\n'])).toEqual([{ event: 'message', data: '' }]);
  });

  test('keeps the last id', () => {
    expect(parseAll(['id: 7\ndata: x\n\n'])).toEqual([{ event: 'message', data: 'x', id: '7' }]);
  });
});
