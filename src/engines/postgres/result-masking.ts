/**
 * Masking of result rows (DataRow) by column, in text and binary format.
 *
 * Text format values are masked as text. In binary format (Bind's result format codes) only the
 * types whose binary form is their text (text, varchar, bpchar, name, json, xml, unknown; jsonb
 * after its version byte) can be rewritten; numbers, booleans and UUIDs are decoded and inspected,
 * and pass unchanged only when masking would not change them; anything else that needs inspecting
 * fails closed with `ERR_MASKING_FAILED`.
 * Binary formats: https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-FORMAT-CODES
 * and the types' send/recv functions in src/backend/utils/adt.
 */
import { GatehouseError } from '../../core/errors.js';
import type { ValueMasker } from '../../core/masking/types.js';
import { decodeDataRow, serializeDataRow, type DataRow, type FieldDescription } from './protocol.js';

const TEXT_LIKE = new Set([18, 19, 25, 114, 142, 705, 1042, 1043]);
const JSONB = 3802;

/** What to do with each column of one result set. */
export interface RowPlan {
  /** Per column: the masker, or undefined to pass the value raw. */
  maskers: (ValueMasker | undefined)[];
  formats: number[];
  types: number[];
  /** True when no column needs masking: rows pass through untouched. */
  passthrough: boolean;
}

export function rowPlan(fields: readonly FieldDescription[], maskers: (ValueMasker | undefined)[], resultFormats?: readonly number[]): RowPlan {
  const formats = fields.map((f, i) => (resultFormats === undefined ? f.format : resultFormats.length === 0 ? 0 : resultFormats.length === 1 ? resultFormats[0]! : (resultFormats[i] ?? 0)));
  return { maskers, formats, types: fields.map((f) => f.typeOid), passthrough: maskers.every((m) => m === undefined) };
}

function refuse(detail: string): GatehouseError {
  return new GatehouseError('ERR_MASKING_FAILED', 'a result value could not be inspected for masking; the result was withheld (request text format)', { detail });
}

function binaryText(type: number, v: Buffer): string | undefined {
  switch (type) {
    case 16:
      return v.length === 1 ? (v[0] ? 't' : 'f') : undefined;
    case 21:
      return v.length === 2 ? String(v.readInt16BE(0)) : undefined;
    case 23:
      return v.length === 4 ? String(v.readInt32BE(0)) : undefined;
    case 26:
      return v.length === 4 ? String(v.readUInt32BE(0)) : undefined;
    case 20:
      return v.length === 8 ? v.readBigInt64BE(0).toString() : undefined;
    case 700:
      return v.length === 4 ? String(v.readFloatBE(0)) : undefined;
    case 701:
      return v.length === 8 ? String(v.readDoubleBE(0)) : undefined;
    case 2950:
      return v.length === 16 ? v.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-') : undefined;
    default:
      return undefined;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Masks one DataRow by `plan`. Returns the row's own bytes when nothing changed, else a new row.
 * `onMasked` counts values changed. Throws `ERR_MASKING_FAILED` to fail closed.
 */
export function maskDataRow(row: DataRow, plan: RowPlan, onMasked?: (n: number) => void): Buffer {
  const values = decodeDataRow(row);
  if (values.length !== plan.maskers.length) throw refuse(`DataRow has ${values.length} columns, RowDescription ${plan.maskers.length}`);
  let out: (Buffer | string | null)[] | undefined;
  let changed = 0;
  for (let i = 0; i < values.length; i++) {
    const m = plan.maskers[i];
    const v = values[i];
    if (m === undefined || v === null || v === undefined) continue;
    let masked: string | null;
    if (plan.formats[i] === 1) {
      const type = plan.types[i]!;
      if (TEXT_LIKE.has(type) || type === JSONB) {
        if (type === JSONB && v[0] !== 1) throw refuse(`jsonb binary version ${v[0]}`);
        const s = decoder.decode(type === JSONB ? v.subarray(1) : v);
        masked = m(s);
        if (masked === s) continue;
        const bytes = masked === null ? null : type === JSONB ? Buffer.concat([Buffer.of(1), Buffer.from(masked, 'utf8')]) : masked;
        (out ??= values.slice())[i] = bytes;
        changed++;
        continue;
      }
      const text = binaryText(type, v);
      if (text === undefined) throw refuse(`binary value of type ${type} in a column that needs masking`);
      if (m(text) !== text) throw refuse(`binary value of type ${type} would need masking`);
      continue;
    }
    const s = decoder.decode(v);
    masked = m(s);
    if (masked === s) continue;
    (out ??= values.slice())[i] = masked;
    changed++;
  }
  if (out === undefined) return row.raw;
  onMasked?.(changed);
  return serializeDataRow(out);
}

/** Values longer than this are not decoded for a recording sample (they are shown by their size). */
const SAMPLE_MAX_BYTES = 4096;

/**
 * Decodes a row's values as text for a recording sample: whole, so the session's log masking sees
 * every secret entire (it shortens them after masking). Binary values and values over 4 KiB are
 * shown by their size, never cut.
 */
export function sampleRow(row: DataRow | Buffer, formats: readonly number[]): (string | null)[] {
  const values = decodeDataRow(Buffer.isBuffer(row) ? { raw: row } : row);
  return values.map((v, i) => (v === null ? null : formats[i] === 1 ? `<binary ${v.length} bytes>` : v.length > SAMPLE_MAX_BYTES ? `<${v.length} bytes>` : decoder.decode(v)));
}
