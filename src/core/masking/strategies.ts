/**
 * Masking strategies: what a sensitive value (or span) is replaced with.
 *
 * - `redact`: a fixed placeholder naming the type, `[card]`; `[redacted]` for a column rule.
 * - `partial`: keeps the last N letters/digits (default 4), masks the others with `*` and keeps
 *   separators, so `4242-4242-4242-4242` becomes `****-****-****-4242`.
 * - `hash`: a deterministic keyed token, `hash:3f9a1c0b5e7d2a48` (HMAC-SHA256, first 16 hex
 *   digits): equal inputs give equal tokens under one key, so joins and distinct counts still work.
 * - `null`: SQL NULL / JSON null where the value is a whole cell or leaf.
 */
import { createHmac } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import type { MaskStrategy } from '../policy/types.js';

/** The placeholder `redact` writes: `[card]`, or `[redacted]` when no detector type applies. */
export function redactPlaceholder(type?: string): string {
  return `[${type ?? 'redacted'}]`;
}

const isSeparator = (c: number): boolean => c < 128 && !((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122));

/**
 * Keeps the last `keep` letters/digits of `value` and replaces every other letter or digit (any
 * non-ASCII character counts as one) with `*`; ASCII punctuation and spaces stay. Never reveals more
 * than half of the value's letters and digits, so a short value is mostly masked.
 */
export function partialMask(value: string, keep = 4): string {
  const k0 = Number.isFinite(keep) && keep > 0 ? Math.floor(keep) : 0;
  let significant = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (isLowSurrogateOfPair(value, i)) continue;
    if (!isSeparator(c)) significant++;
  }
  let show = Math.min(k0, Math.floor(significant / 2));
  let cut = value.length;
  while (show > 0 && cut > 0) {
    cut--;
    if (isLowSurrogateOfPair(value, cut)) cut--;
    if (!isSeparator(value.charCodeAt(cut))) show--;
  }
  let out = '';
  for (let i = 0; i < cut; i++) {
    if (isLowSurrogateOfPair(value, i)) continue;
    const c = value.charCodeAt(i);
    out += isSeparator(c) ? value[i] : '*';
  }
  return out + value.slice(cut);
}

function isLowSurrogateOfPair(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  if (c < 0xdc00 || c > 0xdfff || i === 0) return false;
  const h = s.charCodeAt(i - 1);
  return h >= 0xd800 && h <= 0xdbff;
}

/** A keyed, deterministic token function: `hash:` + 16 hex digits of HMAC-SHA256(key, value). */
export type Hasher = (value: string) => string;

/**
 * Creates the `hash` strategy's token function. The key must be at least 16 bytes (a gateway
 * secret: without it, tokens of low-entropy values such as card numbers could be brute-forced).
 */
export function createHasher(key: Buffer | string): Hasher {
  const k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (k.length < 16) throw new GatehouseError('ERR_CONFIG', 'masking hash key must be at least 16 bytes');
  const copy = Buffer.from(k);
  // An HMAC costs a couple of microseconds (mostly setting up the native object); masked columns
  // repeat their values (names, statuses, the card used in every order), so recent short values keep
  // their tokens. The cache lives as long as the hasher (one session's masker).
  const cache = new Map<string, string>();
  return (value) => {
    const hit = cache.get(value);
    if (hit !== undefined) return hit;
    const token = `hash:${createHmac('sha256', copy).update(value, 'utf8').digest('hex').slice(0, 16)}`;
    if (value.length <= HASH_CACHE_VALUE_LENGTH) {
      if (cache.size >= HASH_CACHE_SIZE) cache.clear();
      cache.set(value, token);
    }
    return token;
  };
}

const HASH_CACHE_SIZE = 4096;
const HASH_CACHE_VALUE_LENGTH = 256;

/** Everything a strategy needs besides the value. */
export interface StrategyContext {
  /** Detector type for `redact` (`card`); omitted for column and path rules. */
  type?: string;
  /** For `partial`: trailing characters to keep (default 4). */
  keep?: number;
  hash: Hasher;
}

/** Applies `strategy` to a whole value. `null` means SQL NULL / JSON null. */
export function applyStrategy(strategy: MaskStrategy, value: string, ctx: StrategyContext): string | null {
  switch (strategy) {
    case 'redact':
      return redactPlaceholder(ctx.type);
    case 'partial':
      return partialMask(value, ctx.keep ?? 4);
    case 'hash':
      return ctx.hash(value);
    case 'null':
      return null;
  }
}

/** How much each strategy reveals, least first: when several rules apply, the strongest wins. */
export const STRATEGY_STRENGTH: Readonly<Record<MaskStrategy, number>> = Object.freeze({ null: 4, redact: 3, hash: 2, partial: 1 });

/** The stronger of two strategies (`null` > `redact` > `hash` > `partial`). */
export function strongerStrategy(a: MaskStrategy, b: MaskStrategy): MaskStrategy {
  return STRATEGY_STRENGTH[a] >= STRATEGY_STRENGTH[b] ? a : b;
}
