import { storableText } from '../core/text.js';

/**
 * JSON as both backends can hold it byte-for-byte. PostgreSQL rejects U+0000 and unpaired UTF-16
 * surrogates in text and JSONB, so every string (values and keys) has them replaced with U+FFFD
 * before it is stored, on SQLite too, so that both backends return the same values.
 * `undefined`, functions and symbols are dropped (as `JSON.stringify` does), non-finite numbers
 * become `null`, bigints become decimal strings, `toJSON()` is honoured.
 */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string') return storableText(v);
    if (typeof v === 'bigint') return v.toString();
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      let dirty = false;
      for (const k of Object.keys(v)) if (storableText(k) !== k) dirty = true;
      if (!dirty) return v;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[storableText(k)] = x;
      return out;
    }
    return v;
  });
}

/** Parses what `encodeJson` wrote; PostgreSQL's driver hands JSONB over already parsed. */
export function decodeJson(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

