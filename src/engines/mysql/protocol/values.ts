/**
 * Row and value encodings shared by both directions: text-protocol rows, binary-protocol rows and
 * the binary protocol value encoding used by COM_STMT_EXECUTE parameters and binary rows.
 *
 * - Text resultset rows: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset_row.html
 * - Binary resultset rows (NULL bitmap with offset 2):
 *   https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_binary_resultset.html
 * - Binary protocol values: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_binary_resultset.html#sect_protocol_binary_resultset_row_value
 * - MariaDB: https://mariadb.com/kb/en/resultset-row/ and https://mariadb.com/kb/en/com_stmt_execute/
 */
import { ColumnFlag, ColumnType } from './constants.js';
import { PayloadReader, PayloadWriter } from './packet.js';

/** DATE, DATETIME and TIMESTAMP values of the binary protocol. */
export interface MysqlDateTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  microsecond: number;
}

/** TIME values of the binary protocol (a duration: days may be non-zero, up to 838:59:59). */
export interface MysqlTime {
  negative: boolean;
  days: number;
  hours: number;
  minutes: number;
  seconds: number;
  microseconds: number;
}

/**
 * One decoded binary-protocol value:
 *
 * - TINY, SHORT, YEAR, INT24, LONG: `number` (signed or unsigned per the UNSIGNED flag);
 * - LONGLONG: `bigint`;
 * - FLOAT, DOUBLE: `number`;
 * - DATE, DATETIME, TIMESTAMP: `MysqlDateTime`; TIME: `MysqlTime`;
 * - everything sent as a length-encoded string (DECIMAL, NEWDECIMAL, VARCHAR, VAR_STRING, STRING,
 *   ENUM, SET, BIT, the BLOBs, GEOMETRY, JSON, VECTOR): `Buffer`, a view of the payload, in the
 *   column's character set (binary for charset 63);
 * - SQL NULL (and the NULL type): `null`.
 */
export type BinaryValue = null | number | bigint | Buffer | MysqlDateTime | MysqlTime;

/** What decoding a binary value needs to know about its column or parameter. */
export interface ValueType {
  /** `MYSQL_TYPE_*`. */
  readonly type: number;
  /** Column flags; only UNSIGNED (0x20) matters here. */
  readonly flags: number;
}

const STRING_TYPES: ReadonlySet<number> = new Set([
  ColumnType.DECIMAL,
  ColumnType.NEWDECIMAL,
  ColumnType.VARCHAR,
  ColumnType.BIT,
  ColumnType.ENUM,
  ColumnType.SET,
  ColumnType.TINY_BLOB,
  ColumnType.MEDIUM_BLOB,
  ColumnType.LONG_BLOB,
  ColumnType.BLOB,
  ColumnType.VAR_STRING,
  ColumnType.STRING,
  ColumnType.GEOMETRY,
  ColumnType.JSON,
  ColumnType.VECTOR,
]);

/** True when values of this type travel as length-encoded strings in the binary protocol. */
export function isStringType(type: number): boolean {
  return STRING_TYPES.has(type);
}

/** True for the types the binary protocol can carry (the server-internal ones are refused). */
export function isWireType(type: number): boolean {
  return (type >= ColumnType.DECIMAL && type <= ColumnType.BIT) || STRING_TYPES.has(type);
}

/** Reads one binary-protocol value of the given type. */
export function readBinaryValue(r: PayloadReader, t: ValueType): BinaryValue {
  const unsigned = (t.flags & ColumnFlag.UNSIGNED) !== 0;
  switch (t.type) {
    case ColumnType.NULL:
      return null;
    case ColumnType.TINY: {
      const v = r.int1();
      return unsigned ? v : (v << 24) >> 24;
    }
    case ColumnType.SHORT:
    case ColumnType.YEAR: {
      const v = r.int2();
      return unsigned ? v : (v << 16) >> 16;
    }
    case ColumnType.INT24:
    case ColumnType.LONG: {
      const v = r.int4();
      return unsigned ? v : v | 0;
    }
    case ColumnType.LONGLONG: {
      const v = r.int8();
      return unsigned ? v : BigInt.asIntN(64, v);
    }
    case ColumnType.FLOAT: {
      const b = r.bytes(4);
      return b.readFloatLE(0);
    }
    case ColumnType.DOUBLE: {
      const b = r.bytes(8);
      return b.readDoubleLE(0);
    }
    case ColumnType.DATE:
    case ColumnType.NEWDATE:
    case ColumnType.DATETIME:
    case ColumnType.TIMESTAMP: {
      const len = r.int1();
      if (len !== 0 && len !== 4 && len !== 7 && len !== 11) r.fail(`invalid date/time length ${len}`);
      const d: MysqlDateTime = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, microsecond: 0 };
      if (len >= 4) {
        d.year = r.int2();
        d.month = r.int1();
        d.day = r.int1();
      }
      if (len >= 7) {
        d.hour = r.int1();
        d.minute = r.int1();
        d.second = r.int1();
      }
      if (len === 11) d.microsecond = r.int4();
      return d;
    }
    case ColumnType.TIME: {
      const len = r.int1();
      if (len !== 0 && len !== 8 && len !== 12) r.fail(`invalid time length ${len}`);
      const t: MysqlTime = { negative: false, days: 0, hours: 0, minutes: 0, seconds: 0, microseconds: 0 };
      if (len >= 8) {
        const neg = r.int1();
        if (neg > 1) r.fail('invalid time sign');
        t.negative = neg === 1;
        t.days = r.int4();
        t.hours = r.int1();
        t.minutes = r.int1();
        t.seconds = r.int1();
      }
      if (len === 12) t.microseconds = r.int4();
      return t;
    }
    default:
      if (STRING_TYPES.has(t.type)) return r.lenencBytes();
      return r.fail(`unsupported value type ${t.type}`);
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v);
}

function intIn(v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`value ${String(v)} out of range [${lo}, ${hi}]`);
  return v;
}

/** Writes one binary-protocol value; throws RangeError when the value does not fit its type. */
export function writeBinaryValue(w: PayloadWriter, t: ValueType, v: BinaryValue): void {
  const unsigned = (t.flags & ColumnFlag.UNSIGNED) !== 0;
  switch (t.type) {
    case ColumnType.NULL:
      if (v !== null) throw new RangeError('the NULL type carries no value');
      return;
    case ColumnType.TINY:
      w.int1(unsigned ? intIn(v, 0, 0xff) : intIn(v, -0x80, 0x7f));
      return;
    case ColumnType.SHORT:
    case ColumnType.YEAR:
      w.int2(unsigned ? intIn(v, 0, 0xffff) : intIn(v, -0x8000, 0x7fff));
      return;
    case ColumnType.INT24:
    case ColumnType.LONG:
      w.int4(unsigned ? intIn(v, 0, 0xffffffff) : intIn(v, -0x80000000, 0x7fffffff));
      return;
    case ColumnType.LONGLONG: {
      const b = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
      if (typeof b !== 'bigint') throw new RangeError('LONGLONG needs a bigint or a safe integer');
      if (unsigned ? b < 0n || b > 0xffffffffffffffffn : b < -(1n << 63n) || b >= 1n << 63n) throw new RangeError(`value ${b} out of range`);
      w.int8(b);
      return;
    }
    case ColumnType.FLOAT:
      if (typeof v !== 'number') throw new RangeError('FLOAT needs a number');
      w.floatLE(v);
      return;
    case ColumnType.DOUBLE:
      if (typeof v !== 'number') throw new RangeError('DOUBLE needs a number');
      w.doubleLE(v);
      return;
    case ColumnType.DATE:
    case ColumnType.NEWDATE:
    case ColumnType.DATETIME:
    case ColumnType.TIMESTAMP: {
      if (!isObj(v) || !('year' in v)) throw new RangeError('a date/time type needs a MysqlDateTime');
      const d = v as MysqlDateTime;
      const len = d.microsecond ? 11 : d.hour || d.minute || d.second ? 7 : d.year || d.month || d.day ? 4 : 0;
      w.int1(len);
      if (len >= 4) w.int2(intIn(d.year, 0, 0xffff)).int1(intIn(d.month, 0, 255)).int1(intIn(d.day, 0, 255));
      if (len >= 7) w.int1(intIn(d.hour, 0, 255)).int1(intIn(d.minute, 0, 255)).int1(intIn(d.second, 0, 255));
      if (len === 11) w.int4(intIn(d.microsecond, 0, 0xffffffff));
      return;
    }
    case ColumnType.TIME: {
      if (!isObj(v) || !('days' in v)) throw new RangeError('TIME needs a MysqlTime');
      const t2 = v as MysqlTime;
      const len = t2.microseconds ? 12 : t2.negative || t2.days || t2.hours || t2.minutes || t2.seconds ? 8 : 0;
      w.int1(len);
      if (len >= 8) {
        w.int1(t2.negative ? 1 : 0).int4(intIn(t2.days, 0, 0xffffffff)).int1(intIn(t2.hours, 0, 255)).int1(intIn(t2.minutes, 0, 255)).int1(intIn(t2.seconds, 0, 255));
      }
      if (len === 12) w.int4(intIn(t2.microseconds, 0, 0xffffffff));
      return;
    }
    default:
      if (!STRING_TYPES.has(t.type)) throw new RangeError(`unsupported value type ${t.type}`);
      if (!Buffer.isBuffer(v) && !(v instanceof Uint8Array)) throw new RangeError(`type ${t.type} needs bytes`);
      w.lenencBytes(v);
  }
}

// ---------------------------------------------------------------------------------------------
// Text-protocol rows
// ---------------------------------------------------------------------------------------------

/**
 * The values of a text-protocol row as views of the payload (`null` is SQL NULL). With
 * `columnCount`, the row must have exactly that many values.
 */
export function decodeTextRowBuffers(payload: Buffer, columnCount?: number): (Buffer | null)[] {
  const r = new PayloadReader(payload, 'text row');
  const out: (Buffer | null)[] = [];
  while (r.remaining > 0) {
    if (columnCount !== undefined && out.length >= columnCount) r.fail(`more than ${columnCount} values`);
    out.push(r.lenencBytes(true));
  }
  if (columnCount !== undefined && out.length !== columnCount) r.fail(`${out.length} values for ${columnCount} columns`);
  return out;
}

/** The values of a text-protocol row decoded as UTF-8 (use `decodeTextRowBuffers` for binary columns). */
export function decodeTextRow(payload: Buffer, columnCount?: number): (string | null)[] {
  return decodeTextRowBuffers(payload, columnCount).map((v) => (v === null ? null : v.toString('utf8')));
}

/** A text-protocol row payload. */
export function encodeTextRow(values: readonly (string | Uint8Array | null)[]): Buffer {
  const w = new PayloadWriter(16 * values.length + 16);
  for (const v of values) w.lenencBytes(v);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Binary-protocol rows
// ---------------------------------------------------------------------------------------------

/** Decodes a binary-protocol row (header 0x00, NULL bitmap with offset 2, then the non-NULL values). */
export function decodeBinaryRow(payload: Buffer, columns: readonly ValueType[]): BinaryValue[] {
  const r = new PayloadReader(payload, 'binary row');
  if (r.int1() !== 0x00) r.fail('missing 0x00 header');
  const n = columns.length;
  const bitmap = r.bytes((n + 9) >> 3);
  if ((bitmap[0]! & 0x03) !== 0) r.fail('NULL bitmap reserved bits set');
  for (let bit = n + 2; bit < bitmap.length * 8; bit++) {
    if ((bitmap[bit >> 3]! & (1 << (bit & 7))) !== 0) r.fail('NULL bitmap has bits past the last column');
  }
  const out = new Array<BinaryValue>(n);
  for (let i = 0; i < n; i++) {
    const bit = i + 2;
    out[i] = (bitmap[bit >> 3]! & (1 << (bit & 7))) !== 0 ? null : readBinaryValue(r, columns[i]!);
  }
  r.done();
  return out;
}

/** A binary-protocol row payload; RangeError when a value does not fit its column type. */
export function encodeBinaryRow(columns: readonly ValueType[], values: readonly BinaryValue[]): Buffer {
  if (values.length !== columns.length) throw new RangeError(`${values.length} values for ${columns.length} columns`);
  const n = columns.length;
  const bitmapLen = (n + 9) >> 3;
  const w = new PayloadWriter(1 + bitmapLen + 8 * n);
  w.int1(0x00);
  const bitmap = Buffer.alloc(bitmapLen);
  for (let i = 0; i < n; i++) {
    if (values[i] === null) bitmap[(i + 2) >> 3]! |= 1 << ((i + 2) & 7);
  }
  w.bytes(bitmap);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (v !== null) writeBinaryValue(w, columns[i]!, v);
  }
  return w.finish();
}

/** A readable rendering of a binary value, as the text protocol would send it (for logs and masking). */
export function formatBinaryValue(v: BinaryValue, t: ValueType & { decimals?: number }): string | null {
  if (v === null) return null;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const frac = (us: number): string => {
    const dec = t.decimals !== undefined && t.decimals > 0 && t.decimals <= 6 ? t.decimals : us ? 6 : 0;
    return dec ? '.' + String(us).padStart(6, '0').slice(0, dec) : '';
  };
  if ('days' in v) {
    const hours = v.days * 24 + v.hours;
    return `${v.negative ? '-' : ''}${p2(hours)}:${p2(v.minutes)}:${p2(v.seconds)}${frac(v.microseconds)}`;
  }
  const date = `${String(v.year).padStart(4, '0')}-${p2(v.month)}-${p2(v.day)}`;
  if (t.type === ColumnType.DATE || t.type === ColumnType.NEWDATE) return date;
  return `${date} ${p2(v.hour)}:${p2(v.minute)}:${p2(v.second)}${frac(v.microsecond)}`;
}
