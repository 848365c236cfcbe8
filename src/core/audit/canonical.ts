import { storableText } from '../text.js';

/**
 * Canonical JSON: the exact bytes the audit chain hashes and the checkpoints sign.
 *
 * Output is RFC 8785 (JSON Canonicalization Scheme) for the values Gatehouse writes: object keys
 * sorted by UTF-16 code units, no whitespace, strings and numbers serialized as ECMAScript's
 * `JSON.stringify` does (so `1`, `1.5`, `1e+21`, `-0` → `0`). Beyond JCS, values are first made
 * storable: `undefined`, functions and symbols are dropped from objects (and become `null` in
 * arrays), non-finite numbers become `null`, bigints become decimal strings, `toJSON()` is honoured,
 * and U+0000 and unpaired surrogates in strings and keys become U+FFFD (PostgreSQL cannot store them).
 */
export function canonicalJson(value: unknown): string {
  return write(value, new Set());
}

/** The JSON value `canonicalJson` describes, as a plain object tree (what a store will hand back). */
export function toJsonValue(value: unknown): unknown {
  return JSON.parse(canonicalJson(value)) as unknown;
}

function write(value: unknown, stack: Set<object>): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(storableText(value));
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'object':
      break;
    default:
      return 'null';
  }
  const obj = value as Record<string, unknown> & { toJSON?: unknown };
  if (typeof obj.toJSON === 'function') return write((obj.toJSON as () => unknown)(), stack);
  if (stack.has(obj)) throw new TypeError('canonicalJson: circular structure');
  stack.add(obj);
  try {
    if (Array.isArray(obj)) return `[${obj.map((v) => write(v, stack)).join(',')}]`;
    const entries: [string, unknown][] = [];
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      entries.push([storableText(k), v]);
    }
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${write(v, stack)}`).join(',')}}`;
  } finally {
    stack.delete(obj);
  }
}

