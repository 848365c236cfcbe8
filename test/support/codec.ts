/**
 * Helpers the wire codec tests share (pg-protocol*, mysql-protocol*): the split-at-every-byte check,
 * ProtocolError assertions, and for the fuzz tests byte mutations and arbitrary chunking.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isGatehouseError } from '../../src/core/errors.js';
import { ProtocolError } from '../../src/engines/wire.js';

/** Asserts that `fn` throws a ProtocolError (`ERR_PROTOCOL`) whose message matches `pattern`. */
export function throwsProtocol(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ProtocolError, `expected ProtocolError, got ${String(e)}`);
    assert.ok(isGatehouseError(e, 'ERR_PROTOCOL'));
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

/** A stateful parser as the split check feeds it. */
export interface ChunkParser<M> {
  push(chunk: Buffer): M[];
  readonly buffered: number;
}

/**
 * Parses `bytes`, one message, whole, split at every byte and byte by byte, each time with a fresh
 * parser: each way yields that one message, with fields `expect` (as `fieldsOf` shows them) and its
 * bytes as `raw` (whole: a view of the input, not a copy). Returns the message parsed whole and the
 * one parsed byte by byte.
 */
export function checkSplits<M extends { raw: Buffer }>(parser: () => ChunkParser<M>, bytes: Buffer, expect: unknown, fieldsOf: (m: M) => unknown, label: string): { whole: M; byteByByte: M } {
  const all = parser().push(bytes);
  assert.equal(all.length, 1, label);
  const whole = all[0]!;
  assert.deepStrictEqual(fieldsOf(whole), expect, label);
  assert.ok(whole.raw.equals(bytes), `${label}: raw equals input`);
  assert.equal(whole.raw.buffer, bytes.buffer, `${label}: raw is a view, not a copy`);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const p = parser();
    const got = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut))];
    assert.equal(got.length, 1, `${label} split at ${cut}`);
    assert.deepStrictEqual(fieldsOf(got[0]!), expect, `${label} split at ${cut}`);
    assert.ok(got[0]!.raw.equals(bytes), `${label} split at ${cut}: raw`);
    assert.equal(p.buffered, 0);
  }
  const p = parser();
  const got: M[] = [];
  for (let i = 0; i < bytes.length; i++) {
    got.push(...p.push(bytes.subarray(i, i + 1)));
    if (i < bytes.length - 1) assert.equal(got.length, 0, `${label} byte-by-byte: nothing before the last byte`);
  }
  assert.equal(got.length, 1, `${label} byte-by-byte`);
  assert.deepStrictEqual(fieldsOf(got[0]!), expect, `${label} byte-by-byte`);
  return { whole, byteByByte: got[0]! };
}

/** Asserts a thrown value is a clean ProtocolError (no internal exception wrapped as a last resort). */
export function cleanProtocolError(e: unknown): ProtocolError {
  if (!(e instanceof ProtocolError)) throw e;
  assert.equal(e.code, 'ERR_PROTOCOL');
  assert.ok(e.message.length > 0);
  // The parser wraps unexpected exceptions as a last resort; none may occur.
  assert.equal(e.cause, undefined, `unexpected internal error: ${e.detail}`);
  return e;
}

export type Mutation = { kind: 'flip' | 'set' | 'insert' | 'delete'; at: number; byte: number };
export const mutation = fc.record({ kind: fc.constantFrom<Mutation['kind']>('flip', 'set', 'insert', 'delete'), at: fc.nat(), byte: fc.nat({ max: 255 }) });

/** A copy of `input` with the mutations applied in order. */
export function mutate(input: Buffer, muts: Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of muts) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'flip') b[at] = b[at]! ^ (1 << (m.byte % 8));
    else if (m.kind === 'set') b[at] = m.byte;
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
  }
  return b;
}

/** Cuts `input` at the given points (taken modulo its length). */
export function chunks(input: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (input.length === 0 ? 0 : c % (input.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(input.subarray(prev, p));
    prev = p;
  }
  out.push(input.subarray(prev));
  return out;
}
