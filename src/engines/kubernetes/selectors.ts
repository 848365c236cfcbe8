/**
 * Kubernetes label and field selectors, parsed the way k8s.io/apimachinery does
 * (`labels.Parse`, `fields.ParseSelector`), so Gatehouse reaches the same conclusions as the API
 * server about a request's query (`RequestInfoFactory` needs both to decide whether a list names a
 * single object) and tests can filter objects the way a real server would.
 */

/** One label requirement, as `labels.Requirement`. */
export interface LabelRequirement {
  key: string;
  operator: 'in' | 'notin' | '=' | '==' | '!=' | 'exists' | '!' | 'gt' | 'lt';
  /** Sorted and de-duplicated, as the upstream `sets.String`. */
  values: string[];
}

export interface LabelSelector {
  requirements: LabelRequirement[];
  matches(labels: Readonly<Record<string, string>> | undefined): boolean;
}

export interface FieldRequirement {
  field: string;
  operator: '=' | '==' | '!=';
  value: string;
}

export interface FieldSelector {
  /** In the upstream order (terms sorted by their text). */
  requirements: FieldRequirement[];
  /** The value a term `field=value` / `field==value` requires, as `Selector.RequiresExactMatch`. */
  requiresExactMatch(field: string): string | undefined;
  /** A missing field reads as `""`, as upstream `fields.Set.Get`. */
  matches(fields: Readonly<Record<string, string>>): boolean;
}

/** Thrown for a selector the API server would refuse (it answers 400 BadRequest). */
export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

// ---------------------------------------------------------------------------------------------
// validation (k8s.io/apimachinery/pkg/util/validation)

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `validation.IsQualifiedName`: `[prefix/]name`, the shape of label keys. Returns the problems. */
export function qualifiedNameErrors(value: string): string[] {
  const parts = value.split('/');
  let name: string;
  const errs: string[] = [];
  if (parts.length === 1) name = parts[0] ?? '';
  else if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) errs.push('prefix part must be a lowercase RFC 1123 subdomain');
  } else {
    return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/'"];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push('name part must be no more than 63 characters');
  if (name.length > 0 && !QUALIFIED_NAME.test(name)) errs.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
  return errs;
}

/** `validation.IsValidLabelValue`. */
export function labelValueErrors(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push('must be no more than 63 characters');
  if (!LABEL_VALUE.test(value)) errs.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
  return errs;
}

/** `strconv.ParseInt(s, 10, 64)`; undefined when Go would return an error. */
export function parseGoInt64(s: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const v = BigInt(s);
  if (v > 9223372036854775807n || v < -9223372036854775808n) return undefined;
  return v;
}

// ---------------------------------------------------------------------------------------------
// label selectors (k8s.io/apimachinery/pkg/labels/selector.go)

type Tok = 'id' | 'eos' | 'err' | '(' | ')' | ',' | '!' | '==' | '=' | '>' | '<' | '!=' | 'in' | 'notin';
const SYMBOLS: Record<string, Tok> = { ')': ')', ',': ',', '!': '!', '==': '==', '=': '=', '>': '>', '<': '<', '!=': '!=', '(': '(' };
const isWs = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isSpecial = (c: string): boolean => c === '=' || c === '!' || c === '(' || c === ')' || c === ',' || c === '>' || c === '<';

interface Scanned { tok: Tok; lit: string }

/** The upstream lexer, byte for byte (a NUL ends a token the way the end of the string does). */
function lex(s: string): Scanned[] {
  let pos = 0;
  const read = (): string => (pos < s.length ? s[pos++] ?? '\0' : '\0');
  const unread = (): void => { pos--; };
  const out: Scanned[] = [];
  for (;;) {
    let ch = read();
    while (isWs(ch)) ch = read();
    if (ch === '\0') { out.push({ tok: 'eos', lit: '' }); return out; }
    if (isSpecial(ch)) {
      unread();
      let buf = '';
      let last: Scanned | undefined;
      for (;;) {
        const c = read();
        if (c === '\0') break;
        if (isSpecial(c)) {
          buf += c;
          const t = SYMBOLS[buf];
          if (t !== undefined) last = { tok: t, lit: buf };
          else if (last !== undefined) { unread(); break; }
        } else { unread(); break; }
      }
      out.push(last ?? { tok: 'err', lit: `error expected: keyword found '${buf}'` });
      continue;
    }
    unread();
    let buf = '';
    for (;;) {
      const c = read();
      if (c === '\0') break;
      if (isSpecial(c) || isWs(c)) { unread(); break; }
      buf += c;
    }
    out.push({ tok: buf === 'in' ? 'in' : buf === 'notin' ? 'notin' : 'id', lit: buf });
  }
}

class LabelParser {
  private i = 0;
  constructor(private readonly items: Scanned[]) {}

  /** In the Values context the keywords `in` / `notin` are plain identifiers. */
  private ctx(x: Scanned, values: boolean): Scanned {
    return values && (x.tok === 'in' || x.tok === 'notin') ? { tok: 'id', lit: x.lit } : x;
  }
  lookahead(values: boolean): Scanned {
    return this.ctx(this.items[this.i] ?? { tok: 'eos', lit: '' }, values);
  }
  consume(values: boolean): Scanned {
    const x = this.items[this.i] ?? { tok: 'eos', lit: '' };
    if (this.i < this.items.length) this.i++;
    return this.ctx(x, values);
  }

  parse(): LabelRequirement[] {
    const reqs: LabelRequirement[] = [];
    for (;;) {
      const { tok, lit } = this.lookahead(true);
      if (tok === 'id' || tok === '!') {
        reqs.push(this.requirement());
        const n = this.consume(true);
        if (n.tok === 'eos') return reqs;
        if (n.tok === ',') {
          const n2 = this.lookahead(true);
          if (n2.tok !== 'id' && n2.tok !== '!') throw new SelectorError(`found '${n2.lit}', expected: identifier after ','`);
          continue;
        }
        throw new SelectorError(`found '${n.lit}', expected: ',' or 'end of string'`);
      }
      if (tok === 'eos') return reqs;
      throw new SelectorError(`found '${lit}', expected: !, identifier, or 'end of string'`);
    }
  }

  private requirement(): LabelRequirement {
    let op: LabelRequirement['operator'] | undefined;
    let x = this.consume(true);
    if (x.tok === '!') {
      op = '!';
      x = this.consume(true);
    }
    if (x.tok !== 'id') throw new SelectorError(`found '${x.lit}', expected: identifier`);
    const key = x.lit;
    validateKey(key);
    const la = this.lookahead(true).tok;
    if ((la === 'eos' || la === ',') && op !== '!') op = 'exists';
    if (op === 'exists' || op === '!') return newRequirement(key, op, []);

    const o = this.consume(false);
    switch (o.tok) {
      case 'in': op = 'in'; break;
      case 'notin': op = 'notin'; break;
      case '=': op = '='; break;
      case '==': op = '=='; break;
      case '!=': op = '!='; break;
      case '>': op = 'gt'; break;
      case '<': op = 'lt'; break;
      default: throw new SelectorError(`found '${o.lit}', expected: in, notin, =, ==, !=, gt, lt`);
    }
    const values = op === 'in' || op === 'notin' ? this.setValues() : this.exactValue();
    return newRequirement(key, op, [...values].sort());
  }

  private exactValue(): Set<string> {
    const la = this.lookahead(true).tok;
    if (la === 'eos' || la === ',') return new Set(['']);
    const x = this.consume(true);
    if (x.tok === 'id') return new Set([x.lit]);
    throw new SelectorError(`found '${x.lit}', expected: identifier`);
  }

  private setValues(): Set<string> {
    const open = this.consume(true);
    if (open.tok !== '(') throw new SelectorError(`found '${open.lit}' expected: '('`);
    const la = this.lookahead(true);
    if (la.tok === 'id' || la.tok === ',') {
      const s = this.identifiers();
      const close = this.consume(true);
      if (close.tok !== ')') throw new SelectorError(`found '${close.lit}', expected: ')'`);
      return s;
    }
    if (la.tok === ')') {
      this.consume(true);
      return new Set(['']);
    }
    throw new SelectorError(`found '${la.lit}', expected: ',', ')' or identifier`);
  }

  private identifiers(): Set<string> {
    const s = new Set<string>();
    for (;;) {
      const x = this.consume(true);
      if (x.tok === 'id') {
        s.add(x.lit);
        const n = this.lookahead(true);
        if (n.tok === ',') continue;
        if (n.tok === ')') return s;
        throw new SelectorError(`found '${n.lit}', expected: ',' or ')'`);
      }
      if (x.tok === ',') {
        if (s.size === 0) s.add('');
        const n = this.lookahead(true);
        if (n.tok === ')') { s.add(''); return s; }
        if (n.tok === ',') { this.consume(true); s.add(''); }
        continue;
      }
      throw new SelectorError(`found '${x.lit}', expected: ',', or identifier`);
    }
  }
}

function validateKey(key: string): void {
  const errs = qualifiedNameErrors(key);
  if (errs.length > 0) throw new SelectorError(`key: Invalid value: "${key}": ${errs.join('; ')}`);
}

function newRequirement(key: string, operator: LabelRequirement['operator'], values: string[]): LabelRequirement {
  const errs: string[] = [];
  switch (operator) {
    case 'in':
    case 'notin':
      if (values.length === 0) errs.push("for 'in', 'notin' operators, values set can't be empty");
      break;
    case '=':
    case '==':
    case '!=':
      if (values.length !== 1) errs.push('exact-match compatibility requires one single value');
      break;
    case 'exists':
    case '!':
      if (values.length !== 0) errs.push('values set must be empty for exists and does not exist');
      break;
    case 'gt':
    case 'lt':
      if (values.length !== 1) errs.push("for 'Gt', 'Lt' operators, exactly one value is required");
      for (const v of values) if (parseGoInt64(v) === undefined) errs.push("for 'Gt', 'Lt' operators, the value must be an integer");
      break;
  }
  for (const v of values) for (const e of labelValueErrors(v)) errs.push(`values: Invalid value: "${v}": ${e}`);
  validateKey(key);
  if (errs.length > 0) throw new SelectorError(errs.join(', '));
  return { key, operator, values };
}

function requirementMatches(r: LabelRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = has ? labels[r.key] ?? '' : undefined;
  switch (r.operator) {
    case 'in':
    case '=':
    case '==':
      return v !== undefined && r.values.includes(v);
    case 'notin':
    case '!=':
      return v === undefined || !r.values.includes(v);
    case 'exists':
      return v !== undefined;
    case '!':
      return v === undefined;
    case 'gt':
    case 'lt': {
      if (v === undefined || r.values.length !== 1) return false;
      const lv = parseGoInt64(v);
      const rv = parseGoInt64(r.values[0] ?? '');
      if (lv === undefined || rv === undefined) return false;
      return r.operator === 'gt' ? lv > rv : lv < rv;
    }
  }
}

/**
 * `labels.Parse`: `app=web,tier!=db,env in (a,b),!legacy,release`. Throws {@link SelectorError} for
 * what the API server refuses. The empty selector matches everything.
 */
export function parseLabelSelector(selector: string): LabelSelector {
  const requirements = new LabelParser(lex(selector)).parse();
  requirements.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return {
    requirements,
    matches: (labels) => requirements.every((r) => requirementMatches(r, labels ?? {})),
  };
}

// ---------------------------------------------------------------------------------------------
// field selectors (k8s.io/apimachinery/pkg/fields/selector.go)

function splitTerms(s: string): string[] {
  if (s.length === 0) return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === '\\') inSlash = true;
    else if (c === ',') {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

const TERM_OPERATORS = ['!=', '==', '='] as const;

function splitTerm(term: string): [string, FieldRequirement['operator'], string] | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of TERM_OPERATORS) {
      if (term.startsWith(op, i)) return [term.slice(0, i), op, term.slice(i + op.length)];
    }
  }
  return undefined;
}

/** `fields.UnescapeValue`: only `\\`, `\,` and `\=` are escapes; bare `,` and `=` are errors. */
export function unescapeFieldValue(s: string): string {
  if (!/[\\,=]/.test(s)) return s;
  let out = '';
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c === '\\' || c === ',' || c === '=') out += c;
      else throw new SelectorError(`invalid field selector: invalid escape sequence: \\${c}`);
      inSlash = false;
      continue;
    }
    if (c === '\\') inSlash = true;
    else if (c === ',' || c === '=') throw new SelectorError(`invalid field selector: unescaped character: ${c}`);
    else out += c;
  }
  if (inSlash) throw new SelectorError('invalid field selector: invalid escape sequence: \\');
  return out;
}

/** `fields.EscapeValue`. */
export function escapeFieldValue(s: string): string {
  return s.replace(/[\\,=]/g, (c) => `\\${c}`);
}

/**
 * `fields.ParseSelector`: `metadata.name=x,status.phase!=Running`. Throws {@link SelectorError}.
 * The empty selector matches everything.
 */
export function parseFieldSelector(selector: string): FieldSelector {
  const parts = splitTerms(selector).sort();
  const requirements: FieldRequirement[] = [];
  for (const part of parts) {
    if (part === '') continue;
    const t = splitTerm(part);
    if (t === undefined) throw new SelectorError(`invalid selector: '${selector}'; can't understand '${part}'`);
    requirements.push({ field: t[0], operator: t[1], value: unescapeFieldValue(t[2]) });
  }
  return {
    requirements,
    requiresExactMatch(field) {
      for (const r of requirements) if (r.field === field && r.operator !== '!=') return r.value;
      return undefined;
    },
    matches(fields) {
      return requirements.every((r) => {
        const v = Object.prototype.hasOwnProperty.call(fields, r.field) ? fields[r.field] ?? '' : '';
        return r.operator === '!=' ? v !== r.value : v === r.value;
      });
    },
  };
}
