/**
 * The masker: turns a session's {@link MaskPlan} into the {@link Masker} every engine uses.
 *
 * - Column rules (`users.ssn`, `*.card_number`, `payments.*`) replace a whole value by the rule's
 *   strategy; every other column is scanned by the plan's detectors and only the detected spans are
 *   replaced.
 * - Path rules (`Secret.data.*`, `*.metadata.annotations.*`) do the same for Kubernetes objects.
 * - What is logged, audited or recorded goes through {@link Masker.maskForLog}: every default and
 *   custom detector, whatever the policy says.
 * - Fail closed: a value over the size limit, or one where undecodable bytes (U+FFFD) could be
 *   hiding a secret from the detectors, throws `ERR_MASKING_FAILED` and the engine refuses the
 *   result rather than pass it on.
 */
import { GatehouseError } from '../errors.js';
import type { MaskPlan, MaskStrategy } from '../policy/types.js';
import { compileCustomDetectors, type CustomDetector } from './custom.js';
import { defaultDetectors, resolveDetectors, Scanner, type Detector, type Finding } from './detectors.js';
import { applyStrategy, createHasher, partialMask, redactPlaceholder, STRATEGY_STRENGTH, type Hasher } from './strategies.js';
import type { ColumnRef, Masker, ValueMasker } from './types.js';

/** Options of {@link createMasker}. */
export interface MaskerOptions {
  /** Key of the `hash` strategy's HMAC (at least 16 bytes); keep it stable to keep tokens stable. */
  hashKey: Buffer | string;
  /** Largest value (UTF-8 bytes) that is inspected; larger ones fail closed. Default 1 MiB. */
  maxValueBytes?: number;
  /** Custom detectors from configuration, usable by name in plans and always used for logs. */
  customDetectors?: readonly CustomDetector[];
}

/** How a rule or detector masks: its strategy and, for `partial`, how much it keeps. */
interface How {
  strategy: MaskStrategy;
  keep: number;
}

interface ColumnRule extends How {
  /** Pattern parts, right-aligned against `[schema, table, column]`; `undefined` = `*`. */
  parts: (RegExp | string | undefined)[];
}

interface PathRule extends How {
  kind: string | undefined;
  segs: string[];
}

interface PathState {
  rule: PathRule;
  idx: number;
}

const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
const MAX_JSON_DEPTH = 256;
const COLUMN_CACHE_SIZE = 256;
const REPLACEMENT = '\uFFFD';
const NOT_SPECIAL: unique symbol = Symbol('not special');
const NO_PATHS: readonly PathState[] = [];

function stronger(a: How | undefined, b: How): How {
  if (a === undefined) return b;
  const sa = STRATEGY_STRENGTH[a.strategy];
  const sb = STRATEGY_STRENGTH[b.strategy];
  if (sa !== sb) return sa > sb ? a : b;
  return a.keep <= b.keep ? a : b;
}

function compilePart(part: string): RegExp | string | undefined {
  const p = part.trim().toLowerCase();
  if (p === '*' || p === '') return undefined;
  if (!p.includes('*')) return p;
  return new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')).join('.*')}$`);
}

function partMatches(part: RegExp | string | undefined, name: string | undefined): boolean {
  if (part === undefined) return true;
  if (name === undefined) return false;
  const n = name.toLowerCase();
  return typeof part === 'string' ? part === n : part.test(n);
}

function failed(detail: string): GatehouseError {
  return new GatehouseError('ERR_MASKING_FAILED', 'a result value could not be inspected for masking; the result was withheld', { detail });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function setKey(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

let sharedLogScanner: Scanner | undefined;

/**
 * Builds the masker for one plan. Throws `ERR_CONFIG` for an unknown detector name, an invalid
 * custom detector or a hash key shorter than 16 bytes.
 */
export function createMasker(plan: MaskPlan, opts: MaskerOptions): Masker {
  return new PlanMasker(plan, opts);
}

class PlanMasker implements Masker {
  readonly active: boolean;
  readonly #maxBytes: number;
  readonly #hash: Hasher;
  readonly #columnRules: ColumnRule[] = [];
  readonly #pathRules: PathRule[] = [];
  readonly #scanner: Scanner;
  readonly #how = new Map<Detector, How>();
  readonly #logScanner: Scanner;
  readonly #columnCache = new Map<string, (ValueMasker | undefined)[]>();
  readonly #detectValue: ValueMasker;

  constructor(plan: MaskPlan, opts: MaskerOptions) {
    this.#maxBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    if (!(this.#maxBytes > 0)) throw new GatehouseError('ERR_CONFIG', 'maxValueBytes must be positive');
    this.#hash = createHasher(opts.hashKey);
    const custom = compileCustomDetectors(opts.customDetectors ?? []);
    for (const spec of plan) {
      const how: How = { strategy: spec.strategy, keep: spec.keep ?? 4 };
      for (const c of spec.columns) {
        const parts = c.split('.');
        if (parts.length > 3 || parts.some((p) => p.trim() === '')) throw new GatehouseError('ERR_CONFIG', `invalid column pattern "${c}"`);
        this.#columnRules.push({ ...how, parts: parts.map(compilePart) });
      }
      for (const p of spec.paths) {
        const segs = p.split('.');
        if (segs.length < 2 || segs.some((s) => s === '')) throw new GatehouseError('ERR_CONFIG', `invalid path pattern "${p}" (expected Kind.field…)`);
        const kind = segs[0]!;
        this.#pathRules.push({ ...how, kind: kind === '*' ? undefined : kind.toLowerCase(), segs: segs.slice(1) });
      }
      for (const d of resolveDetectors(spec.detectors, custom)) this.#how.set(d, stronger(this.#how.get(d), how));
    }
    const order = resolveDetectors(['all', 'custom'], custom);
    this.#scanner = new Scanner(order.filter((d) => this.#how.has(d)));
    this.#logScanner = custom.length === 0 ? (sharedLogScanner ??= new Scanner(defaultDetectors())) : new Scanner([...defaultDetectors(), ...custom]);
    this.active = this.#columnRules.length > 0 || this.#pathRules.length > 0 || this.#how.size > 0;
    this.#detectValue = Object.assign((value: string) => this.#maskDetected(value, true), { kind: 'detect' as const });
  }

  forColumns(columns: readonly ColumnRef[]): (ValueMasker | undefined)[] {
    if (!this.active) return columns.map(() => undefined);
    const key = columns.map((c) => `${c.schema ?? ''}\u0001${c.table ?? ''}\u0001${c.column}`).join('\u0002');
    const cached = this.#columnCache.get(key);
    if (cached !== undefined) return cached;
    const result = columns.map((c) => this.#forColumn(c));
    if (this.#columnCache.size >= COLUMN_CACHE_SIZE) this.#columnCache.clear();
    this.#columnCache.set(key, result);
    return result;
  }

  #forColumn(col: ColumnRef): ValueMasker | undefined {
    const names = [col.schema, col.table, col.column];
    let how: How | undefined;
    for (const rule of this.#columnRules) {
      const off = 3 - rule.parts.length;
      if (rule.parts.every((p, i) => partMatches(p, names[off + i]))) how = stronger(how, rule);
    }
    if (how !== undefined) {
      const { strategy, keep } = how;
      const hash = this.#hash;
      return Object.assign(
        (value: string) => {
          this.#checkSize(value);
          return applyStrategy(strategy, value, { keep, hash });
        },
        { kind: 'column' as const, rank: STRATEGY_STRENGTH[strategy] * 1_000_000 - keep },
      );
    }
    return this.#scanner.detectors.length > 0 ? this.#detectValue : undefined;
  }

  maskText(text: string): string {
    if (this.#scanner.detectors.length === 0) return text;
    return this.#maskDetected(text, false) ?? '';
  }

  maskForLog(text: string): string {
    try {
      let t = text;
      const findings = this.#logScanner.scan(t);
      if (t.includes(REPLACEMENT) && this.#hidden(t, this.#logScanner)) {
        t = t.replaceAll(REPLACEMENT, '');
        return this.#apply(t, this.#logScanner.scan(t), () => undefined, false) ?? '';
      }
      return findings.length === 0 ? t : (this.#apply(t, findings, () => undefined, false) ?? '');
    } catch {
      return '[unmaskable]';
    }
  }

  maskJson(value: unknown, kind?: string): unknown {
    if (!this.active) return value;
    try {
      return this.#resource(value, kind, 0);
    } catch (e) {
      if (e instanceof GatehouseError) throw e;
      throw failed(`JSON value could not be walked: ${e instanceof Error ? e.name : typeof e}`);
    }
  }

  // --- values and text ---------------------------------------------------------------------

  #checkSize(value: string): void {
    const n = value.length;
    if (n * 3 <= this.#maxBytes) return;
    const bytes = n > this.#maxBytes ? n : Buffer.byteLength(value, 'utf8');
    if (bytes > this.#maxBytes) throw failed(`value of ${bytes > n ? bytes : `at least ${n}`} bytes exceeds the masking limit of ${this.#maxBytes} bytes`);
  }

  /**
   * Masks the detected spans of `value`. `nullable`: a `null` strategy nulls the whole value
   * (a cell or JSON leaf); in free text it redacts the span instead.
   */
  #maskDetected(value: string, nullable: boolean): string | null {
    this.#checkSize(value);
    const findings = this.#scanner.scan(value);
    if (value.includes(REPLACEMENT) && this.#hidden(value, this.#scanner)) {
      throw failed('value contains undecodable bytes (U+FFFD) inside what would otherwise be a detected secret');
    }
    if (findings.length === 0) return value;
    return this.#apply(value, findings, (d) => this.#how.get(d), nullable);
  }

  /**
   * True when removing U+FFFD from `text` reveals a finding that spans a removed character: an
   * undecodable byte sequence split a secret so the detectors could not see it.
   */
  #hidden(text: string, scanner: Scanner): boolean {
    const removed: number[] = [];
    let stripped = '';
    let last = 0;
    for (let i = text.indexOf(REPLACEMENT); i !== -1; i = text.indexOf(REPLACEMENT, i + 1)) {
      stripped += text.slice(last, i);
      removed.push(stripped.length);
      last = i + 1;
    }
    stripped += text.slice(last);
    for (const f of scanner.scan(stripped)) {
      for (const p of removed) if (p > f.start && p < f.end) return true;
    }
    return false;
  }

  #apply(text: string, findings: readonly Finding[], howOf: (d: Detector) => How | undefined, nullable: boolean): string | null {
    let out = '';
    let pos = 0;
    for (const f of findings) {
      const how = howOf(f.detector);
      const strategy = how?.strategy ?? 'redact';
      const span = text.slice(f.start, f.end);
      let rep: string;
      switch (strategy) {
        case 'null':
          if (nullable) return null;
          rep = redactPlaceholder(f.detector.type);
          break;
        case 'partial':
          rep = partialMask(span, how?.keep ?? 4);
          break;
        case 'hash':
          rep = this.#hash(span);
          break;
        default:
          rep = redactPlaceholder(f.detector.type);
      }
      out += text.slice(pos, f.start) + rep;
      pos = f.end;
    }
    return out + text.slice(pos);
  }

  // --- JSON ----------------------------------------------------------------------------------

  #rulesFor(kind: string | undefined): readonly PathState[] {
    if (this.#pathRules.length === 0) return NO_PATHS;
    const k = kind?.toLowerCase();
    const out: PathState[] = [];
    for (const rule of this.#pathRules) if (rule.kind === undefined || rule.kind === k) out.push({ rule, idx: 0 });
    return out;
  }

  /** A Kubernetes resource root (object, List, Table, watch event) or any JSON value. */
  #resource(v: unknown, kindHint: string | undefined, depth: number): unknown {
    if (depth > MAX_JSON_DEPTH) throw failed(`JSON nested deeper than ${MAX_JSON_DEPTH}`);
    if (Array.isArray(v)) return this.#mapArray(v, (el) => this.#resource(el, kindHint, depth + 1));
    if (!isRecord(v) || ArrayBuffer.isView(v)) return this.#walk(v, NO_PATHS, depth);
    const own = typeof v.kind === 'string' && v.kind !== 'PartialObjectMetadata' ? v.kind : undefined;
    const kind = own ?? kindHint;
    if (kind === 'Table' && Array.isArray(v.rows)) {
      return this.#object(v, this.#rulesFor('Table'), depth, (key, child) =>
        key === 'rows' && Array.isArray(child)
          ? this.#mapArray(child, (row) =>
              isRecord(row)
                ? this.#object(row, NO_PATHS, depth + 2, (k2, obj) => (k2 === 'object' ? this.#resource(obj, kindHint === 'Table' ? undefined : kindHint, depth + 3) : NOT_SPECIAL))
                : this.#walk(row, NO_PATHS, depth + 2),
            )
          : NOT_SPECIAL,
      );
    }
    if (kind !== undefined && kind.endsWith('List') && Array.isArray(v.items)) {
      const itemKind = kind.length > 4 ? kind.slice(0, -4) : kindHint === kind ? undefined : kindHint;
      return this.#object(v, this.#rulesFor(kind), depth, (key, child) =>
        key === 'items' && Array.isArray(child) ? this.#mapArray(child, (item) => this.#resource(item, itemKind, depth + 2)) : NOT_SPECIAL,
      );
    }
    if (own === undefined && typeof v.type === 'string' && isRecord(v.object) && Object.keys(v).length <= 2) {
      return this.#object(v, NO_PATHS, depth, (key, child) => (key === 'object' ? this.#resource(child, kindHint, depth + 1) : NOT_SPECIAL));
    }
    return this.#object(v, this.#rulesFor(kind), depth);
  }

  #mapArray(arr: readonly unknown[], f: (el: unknown, i: number) => unknown): unknown[] {
    let out: unknown[] | undefined;
    for (let i = 0; i < arr.length; i++) {
      const el = arr[i];
      const r = f(el, i);
      if (out === undefined && r !== el) out = arr.slice(0, i);
      if (out !== undefined) out.push(r);
    }
    return out ?? (arr as unknown[]);
  }

  #object(
    obj: Record<string, unknown>,
    alive: readonly PathState[],
    depth: number,
    special?: (key: string, child: unknown) => unknown,
  ): unknown {
    if (depth > MAX_JSON_DEPTH) throw failed(`JSON nested deeper than ${MAX_JSON_DEPTH}`);
    const full = this.#fullMatch(alive);
    if (full !== undefined) return this.#maskSubtree(obj, full, depth);
    const keys = Object.keys(obj);
    let out: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const child = obj[key];
      let r = special === undefined ? NOT_SPECIAL : special(key, child);
      if (r === NOT_SPECIAL) r = this.#walk(child, this.#advance(alive, key), depth + 1);
      if (out === undefined && r !== child) {
        out = {};
        for (let j = 0; j < i; j++) setKey(out, keys[j]!, obj[keys[j]!]);
      }
      if (out !== undefined) setKey(out, key, r);
    }
    return out ?? obj;
  }

  #walk(v: unknown, alive: readonly PathState[], depth: number): unknown {
    if (depth > MAX_JSON_DEPTH) throw failed(`JSON nested deeper than ${MAX_JSON_DEPTH}`);
    const full = this.#fullMatch(alive);
    if (full !== undefined) return this.#maskSubtree(v, full, depth);
    switch (typeof v) {
      case 'string':
        if (this.#scanner.detectors.length > 0) return this.#maskDetected(v, true);
        this.#checkSize(v);
        return v;
      case 'number':
      case 'bigint': {
        if (this.#scanner.detectors.length === 0) return v;
        const s = String(v);
        const r = this.#maskDetected(s, true);
        return r === s ? v : r;
      }
      case 'object':
        if (v === null) return v;
        if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) throw failed('binary value in JSON cannot be inspected');
        if (Array.isArray(v)) return this.#mapArray(v, (el, i) => this.#walk(el, this.#advance(alive, String(i)), depth + 1));
        return this.#object(v as Record<string, unknown>, alive, depth);
      default:
        return v;
    }
  }

  #maskSubtree(v: unknown, how: How, depth: number): unknown {
    if (depth > MAX_JSON_DEPTH) throw failed(`JSON nested deeper than ${MAX_JSON_DEPTH}`);
    switch (typeof v) {
      case 'string':
        this.#checkSize(v);
        return applyStrategy(how.strategy, v, { keep: how.keep, hash: this.#hash });
      case 'number':
      case 'bigint':
      case 'boolean':
        return applyStrategy(how.strategy, String(v), { keep: how.keep, hash: this.#hash });
      case 'object': {
        if (v === null) return null;
        if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) throw failed('binary value in JSON cannot be inspected');
        if (Array.isArray(v)) return v.map((el) => this.#maskSubtree(el, how, depth + 1));
        const out: Record<string, unknown> = {};
        for (const key of Object.keys(v)) setKey(out, key, this.#maskSubtree((v as Record<string, unknown>)[key], how, depth + 1));
        return out;
      }
      default:
        return v;
    }
  }

  #fullMatch(alive: readonly PathState[]): How | undefined {
    let how: How | undefined;
    for (const s of alive) if (s.idx === s.rule.segs.length) how = stronger(how, s.rule);
    return how;
  }

  #advance(alive: readonly PathState[], key: string): readonly PathState[] {
    if (alive.length === 0) return NO_PATHS;
    let out: PathState[] | undefined;
    for (const s of alive) {
      const seg = s.rule.segs[s.idx];
      if (seg === '*' || seg === key) (out ??= []).push({ rule: s.rule, idx: s.idx + 1 });
    }
    return out ?? NO_PATHS;
  }
}
