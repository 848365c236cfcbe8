/**
 * Custom detectors from configuration: a regular expression, an optional validator and examples
 * that `gatehouse policy check` verifies are detected.
 *
 * ```yaml
 * masking:
 *   detectors:
 *     - name: employee_id
 *       pattern: 'EMP-(?<value>\d{6})'
 *       examples: ['badge EMP-123456']
 * ```
 *
 * A named group `value` limits the masked span to that group; otherwise the whole match is masked.
 */
import { GatehouseError } from '../errors.js';
import { BUILTIN_DETECTORS, DETECTOR_GROUPS, type DetectedRange, type Detector } from './detectors.js';
import { ibanValid, jwtHeaderValid, luhnValid, shannonEntropy, ssnValid } from './validators.js';

/** Validators a custom detector can name. */
export type CustomValidatorName = 'luhn' | 'iban' | 'us_ssn' | 'entropy' | 'jwt';

/** A custom detector as written in configuration. */
export interface CustomDetector {
  /** Name used in policies: lower-case letters, digits and `_`, not a built-in name or group. */
  name: string;
  /** JavaScript regular expression source. */
  pattern: string;
  /** Extra flags: any of `i`, `m`, `s`, `u`. */
  flags?: string;
  validator?: CustomValidatorName;
  /** Placeholder label for `redact` (default: the name). */
  type?: string;
  /** Texts that must be detected (at least one). */
  examples: string[];
  /** Texts that must not be detected. */
  negatives?: string[];
}

const VALIDATORS: Readonly<Record<CustomValidatorName, (s: string) => boolean>> = {
  luhn: (s) => {
    const d = s.replace(/\D/g, '');
    return d.length >= 12 && d.length <= 19 && luhnValid(d);
  },
  iban: (s) => ibanValid(s.replace(/[ -]/g, '').toUpperCase()),
  us_ssn: (s) => {
    const d = s.replace(/\D/g, '');
    return d.length === 9 && ssnValid(d.slice(0, 3), d.slice(3, 5), d.slice(5));
  },
  entropy: (s) => shannonEntropy(s) >= 3.5,
  jwt: (s) => jwtHeaderValid(s.slice(0, s.indexOf('.') === -1 ? s.length : s.indexOf('.'))),
};

const NAME = /^[a-z][a-z0-9_]{0,63}$/;
const MAX_PATTERN = 2000;

/**
 * True when `source` repeats, without bound, a group that itself contains an unbounded quantifier
 * (`(a+)+`, `(\w*)*`, `(x+){2,}`): the classic shape of catastrophic backtracking. A heuristic, not
 * a proof; it keeps the common mistakes out of the hot path.
 */
export function hasNestedUnboundedQuantifier(source: string): boolean {
  const stack: boolean[] = [];
  let inner = false;
  const unboundedAt = (i: number): number => {
    const c = source[i];
    if (c === '+' || c === '*') return 1;
    if (c === '{') {
      const m = /^\{\d+,\}/.exec(source.slice(i, i + 12));
      if (m !== null) return m[0].length;
    }
    return 0;
  };
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      i++;
      if (unboundedAt(i + 1) > 0) inner = true;
      continue;
    }
    if (c === '[') {
      i++;
      while (i < source.length && source[i] !== ']') {
        if (source[i] === '\\') i++;
        i++;
      }
      if (unboundedAt(i + 1) > 0) inner = true;
      continue;
    }
    if (c === '(') {
      stack.push(inner);
      inner = false;
      continue;
    }
    if (c === ')') {
      const groupUnbounded = inner;
      inner = stack.pop() ?? false;
      if (unboundedAt(i + 1) > 0) {
        if (groupUnbounded) return true;
        inner = true;
      } else if (groupUnbounded) inner = true;
      continue;
    }
    if (unboundedAt(i + 1) > 0 && c !== '+' && c !== '*' && c !== '?' && c !== '}') inner = true;
  }
  return false;
}

/** Compiles one custom detector. Throws `ERR_CONFIG` for a bad name, flag, pattern or validator. */
export function compileCustomDetector(def: CustomDetector): Detector {
  const fail = (why: string): never => {
    throw new GatehouseError('ERR_CONFIG', `custom detector "${def.name}": ${why}`);
  };
  if (typeof def.name !== 'string' || !NAME.test(def.name)) fail('name must match [a-z][a-z0-9_]*');
  if (BUILTIN_DETECTORS.has(def.name) || def.name in DETECTOR_GROUPS || def.name === 'custom') fail('name is taken by a built-in detector or group');
  if (typeof def.pattern !== 'string' || def.pattern.length === 0 || def.pattern.length > MAX_PATTERN) fail(`pattern must be 1–${MAX_PATTERN} characters`);
  const flags = def.flags ?? '';
  if (!/^[imsu]*$/.test(flags) || new Set(flags).size !== flags.length) fail('flags may only be i, m, s, u');
  if (def.validator !== undefined && !(def.validator in VALIDATORS)) fail(`unknown validator "${String(def.validator)}" (use ${Object.keys(VALIDATORS).join(', ')})`);
  if (hasNestedUnboundedQuantifier(def.pattern)) fail('pattern nests unbounded quantifiers (catastrophic backtracking); bound the inner or outer repetition');
  let re: RegExp;
  try {
    re = new RegExp(def.pattern, `gd${flags}`);
  } catch (e) {
    return fail(`invalid pattern: ${(e as Error).message}`);
  }
  if (re.test('')) fail('pattern matches the empty string');
  const validate = def.validator === undefined ? undefined : VALIDATORS[def.validator];
  const type = def.type ?? def.name;
  return {
    name: def.name,
    type,
    trigger: undefined,
    find(text) {
      re.lastIndex = 0;
      let out: DetectedRange[] | undefined;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text)) !== null) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        const span = m.indices?.groups?.value ?? m.indices?.[0];
        if (span === undefined || span[1] <= span[0]) continue;
        if (validate !== undefined && !validate(text.slice(span[0], span[1]))) continue;
        (out ??= []).push({ start: span[0], end: span[1] });
      }
      return out ?? [];
    },
  };
}

/** Compiles custom detectors (names must be unique). Throws `ERR_CONFIG` on the first problem. */
export function compileCustomDetectors(defs: readonly CustomDetector[]): Detector[] {
  const seen = new Set<string>();
  return defs.map((def) => {
    if (seen.has(def.name)) throw new GatehouseError('ERR_CONFIG', `custom detector "${def.name}" is defined twice`);
    seen.add(def.name);
    return compileCustomDetector(def);
  });
}

/** One problem `gatehouse policy check` reports for a custom detector. */
export interface CustomDetectorProblem {
  detector: string;
  problem: string;
}

/**
 * Compiles every custom detector and runs its examples: each example must be detected and each
 * negative must not. Returns every problem found (an empty list means all is well); never throws.
 */
export function validateCustomDetectors(defs: readonly CustomDetector[]): CustomDetectorProblem[] {
  const problems: CustomDetectorProblem[] = [];
  const seen = new Set<string>();
  for (const def of defs) {
    const name = typeof def?.name === 'string' ? def.name : '(unnamed)';
    if (seen.has(name)) problems.push({ detector: name, problem: 'defined twice' });
    seen.add(name);
    let d: Detector;
    try {
      d = compileCustomDetector(def);
    } catch (e) {
      const msg = e instanceof GatehouseError ? e.message.replace(/^custom detector "[^"]*": /, '') : String(e);
      problems.push({ detector: name, problem: msg });
      continue;
    }
    const examples = Array.isArray(def.examples) ? def.examples : [];
    if (examples.length === 0) problems.push({ detector: name, problem: 'needs at least one example' });
    for (const ex of examples) {
      if (d.find(String(ex)).length === 0) problems.push({ detector: name, problem: `example not detected: ${JSON.stringify(ex)}` });
    }
    for (const neg of def.negatives ?? []) {
      if (d.find(String(neg)).length > 0) problems.push({ detector: name, problem: `negative example detected: ${JSON.stringify(neg)}` });
    }
  }
  return problems;
}
