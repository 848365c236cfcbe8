/**
 * YAML documents that remember where every value was written, and zod issues turned into
 * `file:line:col: key.path: message` lines. Shared by the configuration loader and the policy loader.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import type { ZodError } from 'zod';
import { GatehouseError } from './errors.js';
import type { GatehouseErrorCode } from './errors.js';

/** A key path into a document: map keys and sequence indexes. */
export type KeyPath = readonly (string | number)[];

/** One problem found in a source file. */
export interface SourceIssue {
  file: string;
  /** 1-based; 0 when the issue concerns the whole file. */
  line: number;
  /** 1-based; 0 when unknown. */
  col: number;
  /** `connections[0].type`, or `''` for the document itself. */
  path: string;
  message: string;
}

/** `connections[0].tls.ca`. */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** `file:line:col: path: message` (`file:line:` or `file:` when the column or line is unknown). */
export function formatIssue(i: SourceIssue): string {
  const at = i.line > 0 ? (i.col > 0 ? `:${i.line}:${i.col}` : `:${i.line}`) : '';
  return `${i.file}${at}: ${i.path === '' ? '' : `${i.path}: `}${i.message}`;
}

/** A parsed YAML document plus the positions of its nodes. */
export class YamlSource {
  private constructor(
    /** The name used in messages (as given to {@link YamlSource.parse}). */
    readonly file: string,
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  /**
   * Parses one YAML document (YAML 1.2 core schema, duplicate keys rejected). Syntax errors are
   * returned as issues; `source` is then undefined.
   */
  static parse(text: string, file: string): { source?: YamlSource; issues: SourceIssue[] } {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
    if (doc.errors.length > 0) {
      const issues = doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return { file, line: Math.max(line, 1), col: Math.max(col, 1), path: '', message: `YAML: ${e.message.split('\n')[0] ?? e.code}` };
      });
      return { issues };
    }
    return { source: new YamlSource(file, doc, lines), issues: [] };
  }

  /** The document as plain data (`null` for an empty document). */
  toJS(): unknown {
    return this.doc.toJS({ maxAliasCount: 1000 }) as unknown;
  }

  /**
   * Position of the value at `path`: for a map entry the position of its key, for a sequence item the
   * item's. When the path does not exist (a missing key), the deepest existing ancestor's position.
   */
  position(path: KeyPath): { line: number; col: number } {
    let node: unknown = this.doc.contents;
    let offset = rangeStart(node) ?? 0;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (pair === undefined) break;
        offset = rangeStart(pair.key) ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item: unknown = node.items[seg];
        if (item === undefined) break;
        offset = rangeStart(item) ?? offset;
        node = item;
      } else {
        break;
      }
    }
    const { line, col } = this.lines.linePos(offset);
    return { line: Math.max(line, 1), col: Math.max(col, 1) };
  }

  /** `file:line` of the value at `path` (for `RuleRef.source`). */
  lineOf(path: KeyPath): string {
    return `${this.file}:${this.position(path).line}`;
  }

  /** An issue located at `path`. */
  issue(path: KeyPath, message: string): SourceIssue {
    const { line, col } = this.position(path);
    return { file: this.file, line, col, path: formatKeyPath(path), message };
  }

  /**
   * Calls `fn` for every string scalar that is a value (never a key), in document order. When `fn`
   * returns a string, the scalar's value is replaced by it (positions are kept).
   */
  mapStrings(fn: (value: string, path: KeyPath) => string | undefined): void {
    const walk = (node: unknown, path: (string | number)[]): void => {
      if (isScalar(node)) {
        if (typeof node.value === 'string') {
          const next = fn(node.value, path);
          if (next !== undefined) node.value = next;
        }
      } else if (isMap(node)) {
        for (const pair of node.items) {
          const key = isScalar(pair.key) ? pair.key.value : pair.key;
          walk(pair.value, [...path, typeof key === 'number' ? key : String(key)]);
        }
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => walk(item, [...path, i]));
      }
    };
    walk(this.doc.contents, []);
  }

  /**
   * Turns zod issues for `value` (the data validated, taken from this document under `prefix`) into
   * located issues. Unknown keys yield one issue per key, at the key.
   */
  zodIssues(error: ZodError, value: unknown, prefix: KeyPath = []): SourceIssue[] {
    const out: SourceIssue[] = [];
    const add = (issues: readonly ZodIssue[], base: KeyPath): void => {
      for (const issue of issues) {
        const rel = scalarListPath(value, [...base, ...issue.path.map((p) => (typeof p === 'number' ? p : String(p)))]);
        const path = [...prefix, ...rel];
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys) out.push(this.issue([...path, key], 'unknown key'));
        } else if (issue.code === 'invalid_union') {
          const branch = closestBranch(issue.errors);
          if (branch !== undefined) add(branch, rel);
          else out.push(this.issue(path, issue.message === 'Invalid input' ? 'invalid value' : issue.message));
        } else {
          out.push(this.issue(path, describeIssue(issue, valueAt(value, rel))));
        }
      }
    };
    add(error.issues, []);
    return out;
  }
}

type ZodIssue = ZodError['issues'][number];

function rangeStart(node: unknown): number | undefined {
  return (node as Node | null | undefined)?.range?.[0];
}

function closestBranch(branches: readonly (readonly ZodIssue[])[]): readonly ZodIssue[] | undefined {
  let best: readonly ZodIssue[] | undefined;
  let depth = 0;
  for (const b of branches) {
    const d = Math.max(0, ...b.map((i) => i.path.length));
    if (d > depth) {
      depth = d;
      best = b;
    }
  }
  return best;
}

/** Drops an index into a value that is not a list (a scalar a schema accepted as a one-item list). */
function scalarListPath(root: unknown, path: (string | number)[]): (string | number)[] {
  let v = root;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i] as string | number;
    if (typeof seg === 'number' && !Array.isArray(v)) return [...path.slice(0, i), ...path.slice(i + 1)];
    if (v === null || typeof v !== 'object') return path;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return path;
}

function valueAt(root: unknown, path: KeyPath): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/** `a string`, `a list`, … for "expected X, got Y". */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'object':
      return 'a mapping';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    default:
      return typeof v;
  }
}

const ZOD_DEFAULT = /^(?:Invalid input|Invalid option|Too small|Too big|Unrecognized key)/;

function describeIssue(issue: ZodIssue, actual: unknown): string {
  if (!ZOD_DEFAULT.test(issue.message) && issue.code !== 'custom' && actual !== undefined) return issue.message;
  switch (issue.code) {
    case 'invalid_type': {
      if (actual === undefined) return 'required';
      const expected = issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`;
      return `expected ${expected}, got ${describeValue(actual)}`;
    }
    case 'invalid_value':
      return issue.values.length === 1 ? `expected ${String(issue.values[0])}` : `expected one of ${issue.values.map(String).join('|')}`;
    case 'too_small':
      if ((issue.origin === 'array' || issue.origin === 'string') && Number(issue.minimum) === 1) return 'must not be empty';
      return issue.origin === 'array' ? `needs at least ${issue.minimum} items` : `must be at least ${issue.minimum}`;
    case 'too_big':
      return issue.origin === 'array' ? `allows at most ${issue.maximum} items` : `must be at most ${issue.maximum}`;
    default:
      return issue.message;
  }
}

/** Collects located issues from several documents and throws them together. */
export class IssueCollector {
  readonly issues: SourceIssue[] = [];

  add(...issues: SourceIssue[]): void {
    this.issues.push(...issues);
  }

  get empty(): boolean {
    return this.issues.length === 0;
  }

  /** Throws one `GatehouseError(code)` whose message lists every issue, one per line, in file order. */
  throwIfAny(code: GatehouseErrorCode): void {
    if (this.issues.length === 0) return;
    const sorted = [...this.issues].sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
    const lines = [...new Set(sorted.map(formatIssue))];
    throw new GatehouseError(code, lines.join('\n'), { detail: `${lines.length} issue${lines.length === 1 ? '' : 's'}` });
  }
}
