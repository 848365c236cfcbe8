/**
 * Classifies MySQL / MariaDB SQL: every statement of a query string becomes a `SqlStatement` with
 * its type, the tables it reads and writes and the functions it calls. Statements are split and
 * lexed here, with MySQL's own lexical rules, and parsed with `node-sql-parser` (its MariaDB and
 * MySQL grammars); the statements that grammar does not cover but that have a small, fixed syntax
 * (transactions, SHOW, GRANT, HANDLER, PREPARE, utility commands, …) are recognised from their
 * tokens. Anything else is `unknown`: security errs closed.
 *
 * Lexical rules (https://dev.mysql.com/doc/refman/8.0/en/comments.html, https://mariadb.com/kb/en/comment-syntax/):
 *
 * - `# …` and `-- …` comments run to the end of the line; `--` is a comment only when followed by
 *   whitespace, a control character or the end: `1--1` is `1 - -1`, and is handed to the parser so.
 * - **Executable comments** `/*! … *\/`, `/*!50000 … *\/` and MariaDB's `/*M! … *\/`, `/*M!100500 … *\/`
 *   are executed by the server, so their markers are removed and their content classified. A
 *   version of other than 5 or 6 digits, a `;` or another comment inside one, or an unterminated
 *   comment makes the text `unknown`. Optimizer hints `/*+ … *\/` are comments.
 * - Strings (`'…'`, `"…"`) honour backslash escapes unless `sql_mode` has NO_BACKSLASH_ESCAPES, and
 *   `"…"` is an identifier under ANSI_QUOTES. The gateway cannot always know the session's mode, so
 *   text containing a backslash is lexed under every mode: if the statement boundaries or tokens
 *   differ, the text is `unknown` (`SELECT '\'; DROP TABLE t; -- '` is one statement or two
 *   depending on the mode). With `noBackslashEscapes` known, only the matching modes are tried.
 * - Statements are split at `;` outside strings, identifiers and comments. Compound statements
 *   (`BEGIN NOT ATOMIC … END`, `IF … END IF`, stored program bodies with `;`) and the client-side
 *   `DELIMITER` command are `unknown`.
 *
 * Classification (type / subtype):
 *
 * - select (`SELECT`, `WITH`, `TABLE t`, `HANDLER … OPEN|READ` as `handler_open` / `handler_read`);
 *   `SELECT … INTO OUTFILE|DUMPFILE` sets `program`;
 * - insert (subtype `replace` for REPLACE), update, delete: the target tables are `write`;
 * - ddl: `create_table`, `create_view`, `create_index`, `create_database`, `create_trigger`,
 *   `create_procedure`, `create_function` (`program` for a UDF `SONAME`), `alter_table`,
 *   `drop_<object>`, `rename_table`, `truncate`, …; stored program bodies are not analysed;
 * - dcl: `grant`, `revoke`, `grant_role`, `revoke_role`, `create_user`, `drop_user`, `alter_user`,
 *   `rename_user`, `create_role`, `drop_role`, `set_password`, `set_role`, `set_default_role`;
 * - tcl: `begin`, `commit`, `rollback`, `savepoint`, `rollback_to`, `release`, `xa_*`;
 * - set: `set` (session variables), `set_global` (GLOBAL, PERSIST, `@@global.`), `set_names`
 *   (NAMES, CHARACTER SET, character_set_* variables), `set_sql_mode`, `set_user_variable`,
 *   `set_transaction`; expressions in SET are analysed (`SET @a = (SELECT … FROM secrets)` reads).
 *   `SET STATEMENT … FOR …` is `unknown`;
 * - show (`show_<what>`, `describe`), use, call (the procedure is in `functions`), do (`DO expr`),
 *   lock (`lock_tables`, `unlock_tables`, `backup`), load (`LOAD DATA [LOCAL] INFILE`, `LOAD XML`:
 *   `program`, the table written), explain (subtype = the inner type; `EXPLAIN ANALYZE` and
 *   MariaDB `ANALYZE <stmt>` run the statement and are classified as it, subtype `explain_analyze`);
 * - prepare: `PREPARE s FROM '<literal>'` takes the inner statement's subtype, tables and functions;
 *   `PREPARE s FROM @var` is dynamic SQL and `unknown`; `EXECUTE IMMEDIATE '<literal>'` is classified
 *   as the inner statement; `EXECUTE s` is `execute`, `DEALLOCATE PREPARE` is `deallocate`;
 * - vacuum: `optimize`, `repair` (write), `analyze`, `check`, `checksum` (read);
 * - utility: `flush`, `kill`, `reset`, `purge`, `shutdown`, `install_plugin` (`program`), …;
 * - `BINLOG '…'` (replays raw row events) and everything not listed is `unknown`.
 *
 * Tables are lower-cased, `db.table` when written qualified; CTE names are not tables (scoped as
 * MySQL does). Functions are lower-cased, qualified calls reported bare and qualified. Results are
 * cached by text (LRU) and deeply frozen.
 */
import maria from 'node-sql-parser/build/mariadb.js';
import mysql from 'node-sql-parser/build/mysql.js';
import type { SqlStatement, SqlStatementType, SqlTableRef } from '../../core/command.js';
import { Lru, freezeStatements } from '../sql-cache.js';

export interface MysqlClassifierOptions {
  /** Parse results kept, by exact text. Default 5000. */
  cacheEntries?: number;
  /** Texts longer than this (characters) are classified but not cached. Default 65536. */
  maxCachedTextLength?: number;
  /** Statements longer than this (characters) are `unknown` (the grammar is slow on huge inputs). Default 1 MiB. */
  maxStatementLength?: number;
  /** Which grammar to try first; the other is the fallback. Default 'mariadb'. */
  dialect?: 'mariadb' | 'mysql';
}

export interface ClassifyOptions {
  /**
   * The session's NO_BACKSLASH_ESCAPES state when the engine knows it (the SERVER_STATUS_NO_BACKSLASH_ESCAPES
   * flag of the last OK packet). Unknown (default): text with a backslash must lex the same both ways.
   */
  noBackslashEscapes?: boolean;
}

let maxCachedTextLength = 65536;
let maxStatementLength = 1024 * 1024;
let dialect: 'mariadb' | 'mysql' = 'mariadb';
const cache = new Lru<readonly SqlStatement[]>(5000);
const parsers = { mariadb: new maria.Parser(), mysql: new mysql.Parser() };

/** Applies options (cache size, limits, grammar order). Not required before use. */
export function configureMysqlClassifier(options: MysqlClassifierOptions = {}): void {
  if (options.cacheEntries !== undefined) cache.capacity = shapes.capacity = Math.max(0, Math.floor(options.cacheEntries));
  if (options.maxCachedTextLength !== undefined) maxCachedTextLength = Math.max(0, Math.floor(options.maxCachedTextLength));
  if (options.maxStatementLength !== undefined) maxStatementLength = Math.max(1, Math.floor(options.maxStatementLength));
  if (options.dialect !== undefined) dialect = options.dialect;
  cache.clear();
  shapes.clear();
}

/** Empties the parse cache. */
export function clearMysqlClassifierCache(): void {
  cache.clear();
  shapes.clear();
}

/**
 * Splits `text` into statements and classifies each. Synchronous; results are cached by text (and
 * the NO_BACKSLASH_ESCAPES knowledge) and deeply frozen, so the same text returns the same array.
 */
export function classifyMysql(text: string, options: ClassifyOptions = {}): readonly SqlStatement[] {
  const key = `${options.noBackslashEscapes === undefined ? '?' : options.noBackslashEscapes ? 'n' : 'b'}${text}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const cacheable = text.length <= maxCachedTextLength && cache.capacity > 0;
  const shape = cacheable ? shapeOf(text) : undefined;
  if (shape) {
    const known = shapes.get(shape.key);
    if (known) return freezeStatements(known.map((st, k) => ({ ...st, text: shape.texts[k]! })));
  }
  const result = freezeStatements(classifyUncached(text, options.noBackslashEscapes));
  if (cacheable) {
    cache.set(key, result);
    if (shape && shapeFits(result, shape)) shapes.set(shape.key, result);
  }
  return result;
}

/**
 * Statements that differ only in their literals classify alike: `SELECT c FROM t WHERE id = 5` and
 * `… id = 6` have one shape, the token sequence with single-quoted strings and numbers replaced by
 * placeholders (and gaps between tokens marked, comments counting as gaps). A shape's classification
 * is reused with each statement's own text. Texts with a backslash (their lexing depends on
 * sql_mode) or a NUL, and PREPARE / EXECUTE IMMEDIATE (their literal is a statement), have no shape;
 * a classification is kept for its shape only when no table or function name contains one of its
 * strings or is one of its numbers (the grammar reads `FROM 'x'` as a table, so such a literal would
 * not be a mere value).
 */
interface Shape {
  key: string;
  /** Each statement's own text, in order (statements without tokens left out, as the classifier does). */
  texts: string[];
  /** The single-quoted strings replaced by placeholders, as the grammar sees them, lower-cased. */
  strings: string[];
  /** The numbers replaced by placeholders. */
  numbers: string[];
}

const shapes = new Lru<readonly SqlStatement[]>(cache.capacity);

function isDigits(s: string): boolean {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 0x30 || c > 0x39) return false;
  }
  return s.length > 0;
}

function shapeOf(text: string): Shape | undefined {
  if (text.includes('\\') || text.includes('\0')) return undefined;
  const lexed = lex(text, 'backslash');
  if ('error' in lexed) return undefined;
  let key = '';
  const texts: string[] = [];
  const strings: string[] = [];
  const numbers: string[] = [];
  for (const st of lexed.statements) {
    if (st.tokens.length === 0) continue;
    texts.push(text.slice(st.start, st.end).trim());
    let prevEnd = -1;
    for (const t of st.tokens) {
      if (t.kind === 'word' && (t.value === 'PREPARE' || t.value === 'IMMEDIATE')) return undefined;
      key += t.start === prevEnd ? '\u0001' : '\u0002';
      prevEnd = t.end;
      if (t.kind === 'string' && t.quote === "'") {
        key += "'";
        // As the grammar sees it (canonicalString), for the check in shapeFits.
        strings.push((t.value.length > LONG_LITERAL ? t.value.slice(0, 64) : t.value).replace(/[\\'"`\x00-\x1f\x7f]/g, '_').toLowerCase());
      } else if (t.kind === 'word' && isDigits(t.value)) {
        key += '#';
        numbers.push(t.value);
      } else key += `${t.kind[0]!}${t.value}`;
    }
    key += ';';
  }
  return strings.length + numbers.length === 0 ? undefined : { key, texts, strings, numbers };
}

function shapeFits(result: readonly SqlStatement[], shape: Shape): boolean {
  if (result.length !== shape.texts.length) return false;
  const numbers = new Set(shape.numbers);
  const strings = shape.strings.filter((v) => v !== '');
  const fromLiteral = (name: string): boolean => strings.some((v) => name.includes(v)) || name.split('.').some((part) => numbers.has(part));
  for (const [k, st] of result.entries()) {
    if (st.text !== shape.texts[k]) return false;
    if (st.tables.some((t) => fromLiteral(t.name)) || st.functions.some(fromLiteral) || (st.columns ?? []).some(fromLiteral)) return false;
  }
  return true;
}

function unknown(text: string, reason: string): SqlStatement {
  return { type: 'unknown', text, tables: [], functions: [], unknownReason: reason };
}

function classifyUncached(text: string, noBackslashEscapes: boolean | undefined): SqlStatement[] {
  const trimmed = text.trim();
  if (trimmed === '') return [{ type: 'empty', text: trimmed, tables: [], functions: [] }];
  if (text.includes('\0')) return [unknown(trimmed, 'query text contains a NUL character')];
  const modes: LexMode[] = noBackslashEscapes === true ? ['noBackslash'] : noBackslashEscapes === false ? ['backslash', 'ansiQuotes'] : ['backslash', 'noBackslash', 'ansiQuotes'];
  const lexed = lex(text, modes[0]!);
  if ('error' in lexed) return [unknown(trimmed, `lexical error: ${lexed.error}`)];
  if (text.includes('\\')) {
    const sk = skeleton(lexed);
    for (const m of modes.slice(1)) {
      const other = lex(text, m);
      if ('error' in other || skeleton(other) !== sk) {
        return [unknown(trimmed, 'ambiguous text: it lexes differently with and without NO_BACKSLASH_ESCAPES / ANSI_QUOTES')];
      }
    }
  }
  const out: SqlStatement[] = [];
  for (const st of lexed.statements) {
    if (st.tokens.length === 0) continue;
    const own = text.slice(st.start, st.end).trim();
    try {
      out.push(classifyTokens(st, own));
    } catch (e) {
      out.push(unknown(own, e instanceof RangeError ? 'statement too deeply nested to classify' : `classifier error: ${e instanceof Error ? e.message : String(e)}`));
    }
  }
  if (out.length === 0) return [{ type: 'empty', text: trimmed, tables: [], functions: [] }];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

type LexMode = 'backslash' | 'noBackslash' | 'ansiQuotes';
type TokKind = 'word' | 'ident' | 'string' | 'punct' | 'var';

interface Tok {
  kind: TokKind;
  start: number;
  end: number;
  /** word: upper-cased; ident / string: decoded value; punct / var: the source text. */
  value: string;
  /** A string literal's value contained a backslash (escapes depend on sql_mode). */
  backslash?: boolean;
  /** A string literal's quote character. */
  quote?: string;
}

interface LexedStatement {
  start: number;
  end: number;
  tokens: Tok[];
  /** The statement as handed to the grammar: comments and executable-comment markers removed, strings canonical. */
  norm: string;
}

type Lexed = { statements: LexedStatement[] } | { error: string };

const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isWordChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24 || c >= 0x80;

function skeleton(l: { statements: LexedStatement[] }): string {
  return l.statements.map((s) => s.tokens.map((t) => `${t.kind}${t.start}-${t.end}`).join(',')).join(';');
}

/** A string literal for the grammar: same quote, value without characters whose escaping depends on the mode. */
/** String literals longer than this reach the grammar shortened (their content never matters to it). */
const LONG_LITERAL = 4096;

function canonicalString(q: string, value: string): string {
  return q + value.replace(/[\\'"`\x00-\x1f\x7f]/g, '_') + q;
}

function lex(text: string, mode: LexMode): Lexed {
  const n = text.length;
  const statements: LexedStatement[] = [];
  let tokens: Tok[] = [];
  let norm = '';
  let start = 0;
  let inExec = false;
  let i = 0;
  const push = (end: number): void => {
    statements.push({ start, end, tokens, norm });
    tokens = [];
    norm = '';
  };
  while (i < n) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) {
      norm += text[i];
      i++;
      continue;
    }
    if (c === 0x23 /* # */ || (c === 0x2d && text.charCodeAt(i + 1) === 0x2d && (i + 2 >= n || text.charCodeAt(i + 2) <= 0x20 || text.charCodeAt(i + 2) === 0x7f))) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? n : nl;
      norm += ' ';
      continue;
    }
    if (c === 0x2f /* / */ && text.charCodeAt(i + 1) === 0x2a /* * */) {
      const c2 = text[i + 2];
      const mariadb = (c2 === 'M' || c2 === 'm') && text[i + 3] === '!';
      if (c2 === '!' || mariadb) {
        if (inExec) return { error: 'nested executable comment' };
        let j = i + (mariadb ? 4 : 3);
        const digits = j;
        while (j < n && text.charCodeAt(j) >= 0x30 && text.charCodeAt(j) <= 0x39) j++;
        if (j - digits !== 0 && j - digits !== 5 && j - digits !== 6) return { error: 'executable comment with a version of other than 5 or 6 digits' };
        inExec = true;
        norm += ' ';
        i = j;
        continue;
      }
      const close = text.indexOf('*/', i + 2);
      if (close < 0) return { error: 'unterminated comment' };
      if (inExec) return { error: 'comment inside an executable comment' };
      norm += ' ';
      i = close + 2;
      continue;
    }
    if (c === 0x2a && text.charCodeAt(i + 1) === 0x2f && inExec) {
      inExec = false;
      norm += ' ';
      i += 2;
      continue;
    }
    if (c === 0x27 /* ' */ || c === 0x22 /* " */) {
      const q = text[i]!;
      const backslash = mode === 'backslash' || (mode === 'ansiQuotes' && q === "'");
      let j = i + 1;
      // Runs of plain characters are copied as slices: a literal of megabytes lexes in linear time.
      const parts: string[] = [];
      let run = j;
      let sawBackslash = false;
      for (;;) {
        if (j >= n) return { error: 'unterminated string' };
        const ch = text.charCodeAt(j);
        if (ch === 0x5c /* \\ */) {
          sawBackslash = true;
          if (backslash) {
            if (j + 1 >= n) return { error: 'unterminated string' };
            parts.push(text.slice(run, j), unescape(text[j + 1]!));
            j += 2;
            run = j;
            continue;
          }
        } else if (ch === c) {
          if (text.charCodeAt(j + 1) === c) {
            parts.push(text.slice(run, j + 1));
            j += 2;
            run = j;
            continue;
          }
          parts.push(text.slice(run, j));
          j++;
          break;
        }
        j++;
      }
      const value = parts.length === 1 ? parts[0]! : parts.join('');
      tokens.push({ kind: 'string', start: i, end: j, value, quote: q, ...(sawBackslash ? { backslash: true } : {}) });
      // The grammar never needs a literal's content (PREPARE and EXECUTE IMMEDIATE read the token):
      // long literals reach it shortened, so a statement carrying a large value still parses.
      norm += canonicalString(q, value.length > LONG_LITERAL ? value.slice(0, 64) : value);
      i = j;
      continue;
    }
    if (c === 0x60 /* ` */) {
      let j = i + 1;
      let value = '';
      for (;;) {
        if (j >= n) return { error: 'unterminated quoted identifier' };
        const ch = text[j]!;
        if (ch === '`') {
          if (text[j + 1] === '`') {
            value += '`';
            j += 2;
            continue;
          }
          j++;
          break;
        }
        value += ch;
        j++;
      }
      tokens.push({ kind: 'ident', start: i, end: j, value });
      norm += text.slice(i, j);
      i = j;
      continue;
    }
    if (c === 0x3b /* ; */) {
      if (inExec) return { error: 'statement separator inside an executable comment' };
      push(i);
      i++;
      start = i;
      continue;
    }
    if (c === 0x40 /* @ */) {
      let j = i + 1;
      if (text.charCodeAt(j) === 0x40) j++;
      while (j < n && (isWordChar(text.charCodeAt(j)) || text.charCodeAt(j) === 0x2e)) j++;
      tokens.push({ kind: 'var', start: i, end: j, value: text.slice(i, j).toLowerCase() });
      norm += text.slice(i, j);
      i = j;
      continue;
    }
    if (isWordChar(c)) {
      let j = i + 1;
      while (j < n && isWordChar(text.charCodeAt(j))) j++;
      tokens.push({ kind: 'word', start: i, end: j, value: text.slice(i, j).toUpperCase() });
      norm += text.slice(i, j);
      i = j;
      continue;
    }
    tokens.push({ kind: 'punct', start: i, end: i + 1, value: text[i]! });
    // `--` that is not a comment (`1--1`): keep the grammar from reading a comment.
    norm += c === 0x2d && text.charCodeAt(i + 1) === 0x2d ? '- ' : text[i];
    i++;
  }
  if (inExec) return { error: 'unterminated executable comment' };
  push(n);
  return { statements };
}

function unescape(ch: string): string {
  switch (ch) {
    case '0':
      return '\0';
    case 'b':
      return '\b';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'Z':
      return '\x1a';
    case '%':
    case '_':
      return '\\' + ch;
    default:
      return ch;
  }
}

// ---------------------------------------------------------------------------------------------
// Token-level grammar helpers
// ---------------------------------------------------------------------------------------------

class Cursor {
  i = 0;
  constructor(readonly toks: readonly Tok[]) {}

  get done(): boolean {
    return this.i >= this.toks.length;
  }

  peek(k = 0): Tok | undefined {
    return this.toks[this.i + k];
  }

  /** True (and consumes) when the next tokens are these words. */
  words(...ws: string[]): boolean {
    for (let k = 0; k < ws.length; k++) {
      const t = this.toks[this.i + k];
      if (!t || t.kind !== 'word' || t.value !== ws[k]) return false;
    }
    this.i += ws.length;
    return true;
  }

  /** Consumes the first of these word sequences that comes next, if any. */
  optional(...alts: string[][]): boolean {
    return alts.some((a) => this.words(...a));
  }

  isWord(w: string, k = 0): boolean {
    const t = this.toks[this.i + k];
    return t !== undefined && t.kind === 'word' && t.value === w;
  }

  punct(p: string): boolean {
    const t = this.toks[this.i];
    if (t && t.kind === 'punct' && t.value === p) {
      this.i++;
      return true;
    }
    return false;
  }

  /** An identifier (word or back-quoted), or undefined. */
  ident(): string | undefined {
    const t = this.toks[this.i];
    if (!t || (t.kind !== 'word' && t.kind !== 'ident')) return undefined;
    this.i++;
    return t.value;
  }

  /** An account name: `name`, `'name'@'host'`, `name@host`. */
  user(): boolean {
    const t = this.peek();
    if (!t || (t.kind !== 'word' && t.kind !== 'ident' && t.kind !== 'string')) return false;
    this.i++;
    const at = this.peek();
    if (at?.kind === 'var') {
      this.i++;
      const host = this.peek();
      if (at.value === '@' && host && (host.kind === 'string' || host.kind === 'ident')) this.i++;
    }
    return true;
  }

  /** `name` or `db.name`, lower-cased. */
  qualified(): string | undefined {
    const a = this.identLower();
    if (a === undefined) return undefined;
    const save = this.i;
    if (this.punct('.')) {
      const b = this.identLower();
      if (b !== undefined) return `${a}.${b}`;
      this.i = save;
    }
    return a;
  }

  identLower(): string | undefined {
    return this.ident()?.toLowerCase();
  }

  /** A comma-separated list of qualified names. */
  nameList(): string[] | undefined {
    const out: string[] = [];
    for (;;) {
      const nm = this.qualified();
      if (nm === undefined) return undefined;
      out.push(nm);
      if (!this.punct(',')) return out;
    }
  }
}

const SENSITIVE_FUNCTIONS = new Set([
  'load_file',
  'sleep',
  'benchmark',
  'get_lock',
  'release_lock',
  'release_all_locks',
  'sys_exec',
  'sys_eval',
  'sys_get',
  'sys_set',
  'master_pos_wait',
  'source_pos_wait',
  'wait_for_executed_gtid_set',
]);

/** Sensitive functions called anywhere in the tokens (a backstop for grammars that miss a call). */
function tokenFunctions(toks: readonly Tok[]): string[] {
  const out: string[] = [];
  for (let k = 0; k + 1 < toks.length; k++) {
    const t = toks[k]!;
    const next = toks[k + 1]!;
    if ((t.kind === 'word' || t.kind === 'ident') && next.kind === 'punct' && next.value === '(') {
      const nm = t.value.toLowerCase();
      if (SENSITIVE_FUNCTIONS.has(nm) && !out.includes(nm)) out.push(nm);
    }
  }
  return out;
}

function hasWord(toks: readonly Tok[], ...ws: string[]): boolean {
  return toks.some((t) => t.kind === 'word' && ws.includes(t.value));
}

function intoFile(toks: readonly Tok[]): boolean {
  for (let k = 0; k + 1 < toks.length; k++) {
    const t = toks[k]!;
    const n2 = toks[k + 1]!;
    if (t.kind === 'word' && t.value === 'INTO' && n2.kind === 'word' && (n2.value === 'OUTFILE' || n2.value === 'DUMPFILE')) return true;
  }
  return false;
}

interface Result {
  type: SqlStatementType;
  subtype?: string;
  tables?: SqlTableRef[];
  functions?: string[];
  /** Column names the statement references, lower-cased; `*` for a star. */
  columns?: string[];
  program?: boolean;
}

function finish(r: Result, text: string, toks: readonly Tok[]): SqlStatement {
  const functions = [...(r.functions ?? [])];
  for (const f of tokenFunctions(toks)) if (!functions.includes(f)) functions.push(f);
  const out: SqlStatement = { type: r.type, text, tables: dedupeTables(r.tables ?? []), functions };
  if (r.subtype !== undefined) out.subtype = r.subtype;
  if (r.columns !== undefined && r.columns.length > 0) out.columns = r.columns;
  if (r.program || intoFile(toks)) out.program = true;
  return out;
}

function dedupeTables(ts: SqlTableRef[]): SqlTableRef[] {
  const seen = new Set<string>();
  const out: SqlTableRef[] = [];
  for (const t of ts) {
    const k = `${t.access}:${t.name}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(t);
  }
  return out;
}

/** Only words, identifiers, strings, numbers, commas, dots, `=`, `@`-names: no expressions, no calls. */
function plainTokens(toks: readonly Tok[], from: number): boolean {
  for (let k = from; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.kind === 'punct' && !['.', ',', '=', '@', '%', '*', '-', '+'].includes(t.value)) return false;
    if (t.kind === 'word' && (t.value === 'SELECT' || t.value === 'VALUES' || t.value === 'TABLE')) return false;
  }
  return true;
}

/** A SHOW … WHERE / LIKE tail with literals, names and comparisons only. */
function simpleCondition(toks: readonly Tok[], from: number): boolean {
  for (let k = from; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.kind === 'word' && ['SELECT', 'VALUES', 'TABLE', 'WITH'].includes(t.value)) return false;
    if (t.kind === 'punct' && t.value === '(') {
      const prev = toks[k - 1];
      if (prev && (prev.kind === 'ident' || (prev.kind === 'word' && !['IN', 'AND', 'OR', 'NOT', 'WHERE', 'XOR', 'CURRENT_USER', 'CURRENT_ROLE'].includes(prev.value)))) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Statement classification
// ---------------------------------------------------------------------------------------------

const COMPOUND_START = new Set(['IF', 'WHILE', 'LOOP', 'REPEAT', 'CASE', 'DECLARE', 'OPEN', 'FETCH', 'CLOSE', 'LEAVE', 'ITERATE', 'RETURN', 'END']);

function classifyTokens(st: LexedStatement, text: string): SqlStatement {
  const toks = st.tokens;
  const first = toks[0]!;
  if (st.norm.length > maxStatementLength) return unknown(text, `statement longer than ${maxStatementLength} characters`);
  if (first.kind === 'punct' && first.value === '(') return viaGrammar(st, text, toks);
  if (first.kind !== 'word') return unknown(text, 'statement does not start with a keyword');
  // `label: BEGIN …`
  if (toks[1]?.kind === 'punct' && toks[1].value === ':') return unknown(text, 'compound statements are not classified');
  const c = new Cursor(toks);
  const kw = first.value;
  switch (kw) {
    case 'SELECT':
    case 'WITH':
    case 'INSERT':
    case 'REPLACE':
    case 'UPDATE':
    case 'DELETE':
    case 'USE':
    case 'CALL':
      return viaGrammar(st, text, toks);
    case 'TABLE': {
      c.i = 1;
      const nm = c.qualified();
      if (nm === undefined) return unknown(text, 'invalid TABLE statement');
      return tail(c, text, toks, { type: 'select', subtype: 'table', tables: [{ name: nm, access: 'read' }], columns: ['*'] }, true);
    }
    case 'DO':
      return viaGrammar({ ...st, norm: st.norm.replace(/^\s*do/i, (m) => m.replace(/do$/i, 'SELECT')) }, text, toks, 'do');
    case 'DELIMITER':
      return unknown(text, 'DELIMITER is a client command, not SQL');
    case 'BINLOG':
      return unknown(text, 'BINLOG replays raw replication events');
    case 'BEGIN':
      if (c.words('BEGIN', 'NOT', 'ATOMIC')) return unknown(text, 'compound statements are not classified');
      return tcl(c, text, toks);
    case 'START':
      if (c.isWord('TRANSACTION', 1)) return tcl(c, text, toks);
      return utility(text, toks);
    case 'COMMIT':
    case 'ROLLBACK':
    case 'SAVEPOINT':
    case 'RELEASE':
    case 'XA':
      return tcl(c, text, toks);
    case 'SET':
      return setStatement(st, c, text, toks);
    case 'SHOW':
      return show(c, text, toks);
    case 'DESC':
    case 'DESCRIBE':
    case 'EXPLAIN':
      return explain(st, c, text, toks);
    case 'ANALYZE':
      if (c.isWord('TABLE', 1) || c.isWord('NO_WRITE_TO_BINLOG', 1) || c.isWord('LOCAL', 1)) return maintenance(c, text, toks);
      return analyzeStatement(st, c, text);
    case 'GRANT':
    case 'REVOKE':
      return grant(c, text, toks);
    case 'CREATE':
    case 'ALTER':
    case 'DROP':
    case 'RENAME':
    case 'TRUNCATE':
      return ddl(st, c, text, toks);
    case 'LOCK':
    case 'UNLOCK':
      return lock(c, text, toks);
    case 'LOAD':
      return load(st, c, text, toks);
    case 'HANDLER':
      return handler(c, text, toks);
    case 'PREPARE':
    case 'EXECUTE':
    case 'DEALLOCATE':
      return prepared(c, text, toks);
    case 'OPTIMIZE':
    case 'REPAIR':
    case 'CHECK':
    case 'CHECKSUM':
      return maintenance(c, text, toks);
    default:
      if (COMPOUND_START.has(kw)) return unknown(text, 'compound statements are not classified');
      return utility(text, toks);
  }
}

/** The statement must end here (or with only plain options when `plainRest`). */
function tail(c: Cursor, text: string, toks: readonly Tok[], r: Result, plainRest = false): SqlStatement {
  if (!c.done && !(plainRest && plainTokens(toks, c.i))) return unknown(text, `unexpected ${c.peek()!.kind} ${JSON.stringify(c.peek()!.value.slice(0, 30))} in ${toks[0]!.value} statement`);
  return finish(r, text, toks);
}

function tcl(c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  const kw = c.peek()!.value;
  c.i = 1;
  let subtype: string;
  switch (kw) {
    case 'BEGIN':
      c.words('WORK');
      subtype = 'begin';
      break;
    case 'START':
      c.i = 2;
      subtype = 'begin';
      for (;;) {
        if (c.words('WITH', 'CONSISTENT', 'SNAPSHOT') || c.words('READ', 'ONLY') || c.words('READ', 'WRITE')) {
          if (!c.punct(',')) break;
          continue;
        }
        break;
      }
      break;
    case 'COMMIT':
    case 'ROLLBACK': {
      c.words('WORK');
      if (kw === 'ROLLBACK' && c.words('TO')) {
        c.words('SAVEPOINT');
        if (c.ident() === undefined) return unknown(text, 'ROLLBACK TO without a savepoint');
        subtype = 'rollback_to';
        break;
      }
      subtype = kw.toLowerCase();
      if (c.words('AND')) {
        c.words('NO');
        if (!c.words('CHAIN')) return unknown(text, 'invalid transaction statement');
      }
      if (!c.words('NO', 'RELEASE')) c.words('RELEASE');
      break;
    }
    case 'SAVEPOINT':
      if (c.ident() === undefined) return unknown(text, 'SAVEPOINT without a name');
      subtype = 'savepoint';
      break;
    case 'RELEASE':
      if (!c.words('SAVEPOINT') || c.ident() === undefined) return unknown(text, 'invalid RELEASE statement');
      subtype = 'release';
      break;
    default: {
      // XA
      const verb = c.peek();
      if (!verb || verb.kind !== 'word' || !['START', 'BEGIN', 'END', 'PREPARE', 'COMMIT', 'ROLLBACK', 'RECOVER'].includes(verb.value)) return unknown(text, 'invalid XA statement');
      c.i = toks.length;
      if (!plainTokens(toks, 2)) return unknown(text, 'invalid XA statement');
      subtype = `xa_${verb.value === 'BEGIN' ? 'start' : verb.value.toLowerCase()}`;
    }
  }
  return tail(c, text, toks, { type: 'tcl', subtype });
}

const SET_SCOPE = new Set(['GLOBAL', 'SESSION', 'LOCAL', 'PERSIST', 'PERSIST_ONLY']);
const CHARSET_VARIABLES = new Set(['names', 'character_set_client', 'character_set_connection', 'character_set_results', 'collation_connection']);

function setStatement(st: LexedStatement, c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  const w1 = toks[1];
  const w1v = w1?.kind === 'word' ? w1.value : '';
  const w2v = toks[2]?.kind === 'word' ? toks[2].value : '';
  if (w1v === 'STATEMENT') return unknown(text, 'SET STATEMENT … FOR runs another statement');
  if (w1v === 'TRANSACTION' || (SET_SCOPE.has(w1v) && w2v === 'TRANSACTION')) {
    return plainTokens(toks, 1) ? finish({ type: 'set', subtype: 'set_transaction' }, text, toks) : unknown(text, 'invalid SET TRANSACTION');
  }
  if (w1v === 'NAMES' || w1v === 'CHARSET' || (w1v === 'CHARACTER' && w2v === 'SET')) {
    return plainTokens(toks, 1) ? finish({ type: 'set', subtype: w1v === 'NAMES' ? 'set_names' : 'set_character_set' }, text, toks) : unknown(text, 'invalid SET NAMES');
  }
  if (w1v === 'PASSWORD') return finish({ type: 'dcl', subtype: 'set_password' }, text, toks);
  if (w1v === 'ROLE') return plainTokens(toks, 2) ? finish({ type: 'dcl', subtype: 'set_role' }, text, toks) : unknown(text, 'invalid SET ROLE');
  if (w1v === 'DEFAULT' && w2v === 'ROLE') return plainTokens(toks, 3) ? finish({ type: 'dcl', subtype: 'set_default_role' }, text, toks) : unknown(text, 'invalid SET DEFAULT ROLE');
  if (w1v === 'RESOURCE' && w2v === 'GROUP') return plainTokens(toks, 3) ? finish({ type: 'utility', subtype: 'set_resource_group' }, text, toks) : unknown(text, 'invalid SET RESOURCE GROUP');
  // Variable assignments: the grammar analyses the expressions.
  const parsed = parse(st.norm);
  if ('error' in parsed) return unknown(text, parsed.error);
  const ast = parsed.ast;
  if (ast.type !== 'set') return unknown(text, `unexpected parse of SET as ${String(ast.type)}`);
  let global = SET_SCOPE.has(w1v) && w1v !== 'SESSION' && w1v !== 'LOCAL';
  let charset = false;
  let sqlMode = false;
  let userOnly = true;
  for (const a of asArray(ast.expr)) {
    const left = (a as Obj | undefined)?.left as Obj | undefined;
    if (!left || left.type !== 'var') return unknown(text, 'unexpected SET target');
    const prefix = String(left.prefix ?? '');
    const nm = String(left.name ?? '').toLowerCase();
    const members = asArray(left.members).map((m) => String(m).toLowerCase());
    if (prefix === '@') continue;
    userOnly = false;
    let variable = nm;
    if (prefix === '@@' && members.length > 0) {
      if (nm === 'global' || nm === 'persist' || nm === 'persist_only') global = true;
      variable = members[members.length - 1]!;
    }
    if (CHARSET_VARIABLES.has(variable) || variable.startsWith('character_set_')) charset = true;
    if (variable === 'sql_mode') sqlMode = true;
  }
  // The scope keyword also binds the variables that follow a later `GLOBAL` in the list.
  if (hasWord(toks.slice(2), 'GLOBAL', 'PERSIST', 'PERSIST_ONLY')) global = true;
  const w = new Walk();
  w.statement(ast, 'read', new Set());
  const subtype = global ? 'set_global' : charset ? 'set_names' : sqlMode ? 'set_sql_mode' : userOnly ? 'set_user_variable' : 'set';
  return withCrossCheck(w, parsed.tableList, { type: 'set', subtype, tables: w.tables, functions: w.functions }, text, toks);
}

function show(c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  c.i = 1;
  const words: string[] = [];
  const tables: SqlTableRef[] = [];
  while (!c.done && c.peek()!.kind === 'word' && !['FROM', 'IN', 'LIKE', 'WHERE', 'FOR', 'LIMIT'].includes(c.peek()!.value) && words.length < 4) {
    const wv = c.peek()!.value;
    if (words.length > 0 && words[0] === 'CREATE' && words.length === 2) break;
    words.push(wv);
    c.i++;
  }
  if (words.length === 0) return unknown(text, 'invalid SHOW statement');
  const what = words.join(' ');
  if (words[0] === 'CREATE' && words.length === 2) {
    const nm = c.qualified();
    if (nm === undefined) return unknown(text, 'invalid SHOW CREATE');
    if (['TABLE', 'VIEW', 'SEQUENCE'].includes(words[1]!)) tables.push({ name: nm, access: 'read' });
  } else if (/^(FULL |EXTENDED )*(COLUMNS|FIELDS|INDEX|INDEXES|KEYS)$/.test(what) && (c.words('FROM') || c.words('IN'))) {
    let nm = c.qualified();
    if (nm === undefined) return unknown(text, 'invalid SHOW COLUMNS');
    if (c.words('FROM') || c.words('IN')) {
      const db = c.identLower();
      if (db === undefined) return unknown(text, 'invalid SHOW COLUMNS');
      nm = `${db}.${nm.split('.').pop()!}`;
    }
    tables.push({ name: nm, access: 'read' });
  }
  if (!simpleCondition(toks, c.i)) return unknown(text, 'SHOW with a complex condition');
  return finish({ type: 'show', subtype: `show_${words.join('_').toLowerCase()}`, tables }, text, toks);
}

const INNER_START = new Set(['SELECT', 'WITH', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE', 'TABLE']);

function explain(st: LexedStatement, c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  c.i = 1;
  let analyze = false;
  for (;;) {
    if (c.words('EXTENDED') || c.words('PARTITIONS')) continue;
    if (c.words('ANALYZE')) {
      analyze = true;
      continue;
    }
    if (c.isWord('FORMAT') && c.peek(1)?.value === '=') {
      c.i += 3;
      continue;
    }
    break;
  }
  const next = c.peek();
  if (!next) return unknown(text, 'EXPLAIN without a statement');
  if (next.kind === 'word' && next.value === 'FOR') {
    return tail(c, text, toks, { type: 'show', subtype: 'explain_for_connection' }, true);
  }
  if ((next.kind === 'word' && INNER_START.has(next.value)) || (next.kind === 'punct' && next.value === '(')) {
    const inner = innerStatement(st, next.start, text);
    if (inner.type === 'unknown') return inner;
    if (analyze) return { ...inner, text, subtype: 'explain_analyze' };
    return finish({ type: 'explain', subtype: inner.type, tables: [...inner.tables], functions: [...inner.functions], program: inner.program ?? false }, text, toks);
  }
  // DESCRIBE table [column]
  const nm = c.qualified();
  if (nm === undefined) return unknown(text, 'invalid DESCRIBE');
  if (!c.done && c.ident() === undefined && c.peek()?.kind === 'string') c.i++;
  return tail(c, text, toks, { type: 'show', subtype: 'describe', tables: [{ name: nm, access: 'read' }] });
}

/** MariaDB `ANALYZE [FORMAT=JSON] <statement>`: runs the statement. */
function analyzeStatement(st: LexedStatement, c: Cursor, text: string): SqlStatement {
  c.i = 1;
  if (c.isWord('FORMAT') && c.peek(1)?.value === '=') c.i += 3;
  const next = c.peek();
  if (!next || !((next.kind === 'word' && INNER_START.has(next.value)) || (next.kind === 'punct' && next.value === '('))) return unknown(text, 'invalid ANALYZE');
  const inner = innerStatement(st, next.start, text);
  if (inner.type === 'unknown') return inner;
  return { ...inner, text, subtype: 'explain_analyze' };
}

/** Classifies the tail of a statement (from source offset `from`) as a statement of its own. */
function innerStatement(st: LexedStatement, from: number, text: string): SqlStatement {
  const toks = st.tokens.filter((t) => t.start >= from);
  // Map the offset into the normalized text: rebuild it from the tokens' canonical forms.
  const norm = renderTokens(toks);
  return classifyTokens({ start: from, end: st.end, tokens: toks, norm }, text);
}

/** Re-renders tokens for the grammar (strings canonical, `--` split), separated by spaces where the source had a gap. */
function renderTokens(toks: readonly Tok[]): string {
  let out = '';
  let prevEnd = -1;
  let prevMinus = false;
  for (const t of toks) {
    if (prevEnd >= 0 && (t.start !== prevEnd || (prevMinus && t.value === '-'))) out += ' ';
    out += t.kind === 'string' ? canonicalString(t.quote ?? "'", t.value) : t.kind === 'ident' ? '`' + t.value.replaceAll('`', '``') + '`' : t.value;
    prevEnd = t.end;
    prevMinus = t.kind === 'punct' && t.value === '-';
  }
  return out;
}

function grant(c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  const isGrant = c.peek()!.value === 'GRANT';
  const hasOn = hasWord(toks, 'ON');
  const proxy = hasWord(toks.slice(0, 3), 'PROXY');
  const subtype = proxy ? (isGrant ? 'grant_proxy' : 'revoke_proxy') : hasOn ? (isGrant ? 'grant' : 'revoke') : isGrant ? 'grant_role' : 'revoke_role';
  const tables: SqlTableRef[] = [];
  if (hasOn && !proxy) {
    const on = toks.findIndex((t) => t.kind === 'word' && t.value === 'ON');
    const oc = new Cursor(toks);
    oc.i = on + 1;
    oc.optional(['TABLE'], ['FUNCTION'], ['PROCEDURE'], ['PACKAGE', 'BODY'], ['PACKAGE']);
    const a = oc.peek();
    const b = oc.peek(1);
    const d = oc.peek(2);
    if (a && a.kind !== 'punct' && !(b?.value === '.' && d?.value === '*')) {
      const nm = oc.qualified();
      if (nm !== undefined && !nm.endsWith('*')) tables.push({ name: nm, access: 'write' });
    }
  }
  return finish({ type: 'dcl', subtype, tables }, text, toks);
}

const DCL_OBJECTS = new Set(['USER', 'ROLE']);
const PROGRAM_OBJECTS = new Set(['PROCEDURE', 'FUNCTION', 'EVENT', 'TRIGGER', 'PACKAGE']);

function ddl(st: LexedStatement, c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  const verb = toks[0]!.value;
  c.i = 1;
  if (verb === 'DROP' && c.isWord('PREPARE')) return prepared(c, text, toks);
  // Modifiers before the object keyword.
  for (;;) {
    if (c.words('OR', 'REPLACE') || c.words('TEMPORARY') || c.words('ONLINE') || c.words('OFFLINE') || c.words('IGNORE') || c.words('UNIQUE') || c.words('FULLTEXT') || c.words('SPATIAL') || c.words('AGGREGATE')) continue;
    if (c.words('DEFINER')) {
      if (!c.punct('=')) return unknown(text, 'invalid DEFINER');
      if (c.words('CURRENT_USER')) {
        if (c.punct('(')) c.punct(')');
      } else if (!c.user()) return unknown(text, 'invalid DEFINER');
      continue;
    }
    if (c.words('ALGORITHM')) {
      if (!c.punct('=') || c.ident() === undefined) return unknown(text, 'invalid ALGORITHM');
      continue;
    }
    if (c.words('SQL', 'SECURITY')) {
      if (c.ident() === undefined) return unknown(text, 'invalid SQL SECURITY');
      continue;
    }
    break;
  }
  const objTok = c.peek();
  const obj = objTok?.kind === 'word' ? objTok.value : '';
  if (verb === 'RENAME' && (obj === 'USER')) return finish({ type: 'dcl', subtype: 'rename_user' }, text, toks);
  if (DCL_OBJECTS.has(obj) && verb !== 'RENAME' && verb !== 'TRUNCATE') {
    return finish({ type: 'dcl', subtype: `${verb.toLowerCase()}_${obj.toLowerCase()}` }, text, toks);
  }
  // The grammar first: it finds the tables and expressions.
  const parsed = parse(st.norm);
  if (!('error' in parsed)) {
    const ast = parsed.ast;
    if (ast.type === 'create' || ast.type === 'drop' || ast.type === 'alter' || ast.type === 'rename' || ast.type === 'truncate') {
      const w = new Walk();
      w.statement(ast, 'read', new Set());
      const kind = astKind(ast);
      return withCrossCheck(w, parsed.tableList, { ...kind, tables: w.tables, functions: w.functions }, text, toks);
    }
  }
  // Token fallback for the DDL the grammar does not cover.
  const objName = obj === 'SCHEMA' ? 'database' : obj.toLowerCase();
  if (verb === 'TRUNCATE') {
    c.words('TABLE');
    const nm = c.qualified();
    if (nm === undefined) return unknown(text, 'invalid TRUNCATE');
    return tail(c, text, toks, { type: 'ddl', subtype: 'truncate', tables: [{ name: nm, access: 'write' }] });
  }
  if (!obj) return unknown(text, `unsupported ${verb} statement`);
  c.i++;
  if (verb === 'DROP') {
    if (obj === 'TABLE' || obj === 'TABLES' || obj === 'VIEW' || obj === 'SEQUENCE') {
      c.words('IF', 'EXISTS');
      const names = c.nameList();
      if (!names) return unknown(text, 'invalid DROP');
      c.optional(['RESTRICT'], ['CASCADE']);
      return tail(c, text, toks, { type: 'ddl', subtype: `drop_${obj === 'TABLES' ? 'table' : objName}`, tables: names.map((n) => ({ name: n, access: 'write' as const })) });
    }
    if (obj === 'INDEX') {
      c.ident();
      if (!c.words('ON')) return unknown(text, 'invalid DROP INDEX');
      const nm = c.qualified();
      if (nm === undefined) return unknown(text, 'invalid DROP INDEX');
      return tail(c, text, toks, { type: 'ddl', subtype: 'drop_index', tables: [{ name: nm, access: 'write' }] }, true);
    }
    return plainTokens(toks, c.i) ? finish({ type: 'ddl', subtype: `drop_${objName}` }, text, toks) : unknown(text, `invalid DROP ${obj}`);
  }
  if (verb === 'CREATE' && PROGRAM_OBJECTS.has(obj)) {
    // Stored program bodies are not analysed; a UDF from a shared library reaches the OS. A compound
    // body (BEGIN … END) holds `;`, which the split above cut: the pieces are not statements.
    if (hasWord(toks, 'BEGIN')) return unknown(text, 'stored program with a compound body (BEGIN … END)');
    const soname = hasWord(toks, 'SONAME');
    const tables: SqlTableRef[] = [];
    if (obj === 'TRIGGER') {
      const on = toks.findIndex((t) => t.kind === 'word' && t.value === 'ON');
      if (on > 0) {
        const oc = new Cursor(toks);
        oc.i = on + 1;
        const nm = oc.qualified();
        if (nm !== undefined) tables.push({ name: nm, access: 'write' });
      }
    }
    return finish({ type: 'ddl', subtype: `create_${objName}`, tables, program: soname }, text, toks);
  }
  if (verb === 'ALTER' && (PROGRAM_OBJECTS.has(obj) || ['DATABASE', 'SCHEMA', 'SERVER', 'TABLESPACE', 'LOGFILE', 'INSTANCE', 'RESOURCE'].includes(obj))) {
    if (hasWord(toks, 'SELECT', 'DO', 'BEGIN')) return unknown(text, `ALTER ${obj} with a body`);
    return finish({ type: 'ddl', subtype: `alter_${objName}` }, text, toks);
  }
  if (verb === 'CREATE' && (obj === 'DATABASE' || obj === 'SCHEMA' || obj === 'SERVER' || obj === 'TABLESPACE' || obj === 'LOGFILE' || obj === 'RESOURCE' || obj === 'SPATIAL')) {
    return plainTokens(toks, c.i) ? finish({ type: 'ddl', subtype: `create_${objName}` }, text, toks) : unknown(text, `invalid CREATE ${obj}`);
  }
  if ((verb === 'CREATE' || verb === 'ALTER') && (obj === 'TABLE' || obj === 'SEQUENCE')) {
    if (hasWord(toks, 'SELECT', 'LIKE', 'VALUES', 'WITH') || toks.filter((t) => t.kind === 'word' && t.value === 'TABLE').length > 1) {
      return unknown(text, `${verb} ${obj} the grammar could not parse`);
    }
    c.optional(['IF', 'NOT', 'EXISTS'], ['IF', 'EXISTS']);
    const nm = c.qualified();
    if (nm === undefined) return unknown(text, `invalid ${verb} ${obj}`);
    const tables: SqlTableRef[] = [{ name: nm, access: 'write' }];
    for (let k = c.i; k + 1 < toks.length; k++) {
      if (toks[k]!.kind === 'word' && toks[k]!.value === 'REFERENCES') {
        const rc = new Cursor(toks);
        rc.i = k + 1;
        const ref = rc.qualified();
        if (ref !== undefined) tables.push({ name: ref, access: 'read' });
      }
      if (verb === 'ALTER' && toks[k]!.kind === 'word' && toks[k]!.value === 'RENAME') {
        const rc = new Cursor(toks);
        rc.i = k + 1;
        rc.optional(['TO'], ['AS']);
        const ref = rc.isWord('COLUMN') || rc.isWord('INDEX') || rc.isWord('KEY') ? undefined : rc.qualified();
        if (ref !== undefined) tables.push({ name: ref, access: 'write' });
      }
    }
    return finish({ type: 'ddl', subtype: `${verb.toLowerCase()}_${objName}`, tables }, text, toks);
  }
  if (verb === 'CREATE' && obj === 'INDEX') {
    c.ident();
    const on = toks.findIndex((t) => t.kind === 'word' && t.value === 'ON');
    if (on < 0) return unknown(text, 'invalid CREATE INDEX');
    const oc = new Cursor(toks);
    oc.i = on + 1;
    const nm = oc.qualified();
    if (nm === undefined || hasWord(toks, 'SELECT')) return unknown(text, 'invalid CREATE INDEX');
    return finish({ type: 'ddl', subtype: 'create_index', tables: [{ name: nm, access: 'write' }] }, text, toks);
  }
  if (verb === 'RENAME' && (obj === 'TABLE' || obj === 'TABLES')) {
    const tables: SqlTableRef[] = [];
    for (;;) {
      const a = c.qualified();
      if (a === undefined || !c.words('TO')) return unknown(text, 'invalid RENAME TABLE');
      const b = c.qualified();
      if (b === undefined) return unknown(text, 'invalid RENAME TABLE');
      tables.push({ name: a, access: 'write' }, { name: b, access: 'write' });
      if (!c.punct(',')) break;
    }
    return tail(c, text, toks, { type: 'ddl', subtype: 'rename_table', tables });
  }
  return unknown(text, `unsupported ${verb} ${obj} statement${'error' in parsed ? ` (${parsed.error})` : ''}`);
}

function lock(c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  if (toks[0]!.value === 'UNLOCK') {
    c.i = 1;
    const what = c.peek()?.value ?? '';
    if (!['TABLES', 'TABLE', 'INSTANCE', 'BINLOG'].includes(what)) return unknown(text, 'invalid UNLOCK');
    c.i++;
    return tail(c, text, toks, { type: 'lock', subtype: what === 'INSTANCE' || what === 'BINLOG' ? 'unlock_backup' : 'unlock_tables' });
  }
  if (c.words('LOCK', 'INSTANCE', 'FOR', 'BACKUP')) return tail(c, text, toks, { type: 'lock', subtype: 'backup' });
  c.i = 1;
  if (!c.words('TABLES') && !c.words('TABLE')) return unknown(text, 'invalid LOCK');
  const tables: SqlTableRef[] = [];
  for (;;) {
    const nm = c.qualified();
    if (nm === undefined) return unknown(text, 'invalid LOCK TABLES');
    if (c.words('AS')) c.ident();
    else if (c.peek()?.kind === 'ident' || (c.peek()?.kind === 'word' && !['READ', 'WRITE', 'LOW_PRIORITY'].includes(c.peek()!.value))) c.ident();
    let access: 'read' | 'write';
    if (c.words('READ')) {
      c.words('LOCAL');
      access = 'read';
    } else if (c.words('LOW_PRIORITY', 'WRITE') || c.words('WRITE')) {
      c.words('CONCURRENT');
      access = 'write';
    } else return unknown(text, 'invalid LOCK TABLES');
    tables.push({ name: nm, access });
    if (!c.punct(',')) break;
  }
  if (c.words('WAIT')) c.i++;
  else c.words('NOWAIT');
  return tail(c, text, toks, { type: 'lock', subtype: 'lock_tables', tables });
}

function load(st: LexedStatement, c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  if (c.isWord('INDEX', 1)) return finish({ type: 'utility', subtype: 'load_index' }, text, toks);
  if (!c.isWord('DATA', 1) && !c.isWord('XML', 1)) return unknown(text, 'invalid LOAD');
  const local = hasWord(toks.slice(0, 5), 'LOCAL');
  const subtype = `load_${toks[1]!.value.toLowerCase()}${local ? '_local' : ''}`;
  const parsed = c.isWord('DATA', 1) ? parse(st.norm) : { error: 'LOAD XML' };
  if (!('error' in parsed) && parsed.ast.type === 'load_data') {
    const w = new Walk();
    const target = parsed.ast.table as Obj | undefined;
    if (target) w.tableRef(target, 'write', new Set());
    w.generic({ ...parsed.ast, table: null }, 'read', new Set());
    return finish({ type: 'load', subtype, tables: w.tables, functions: w.functions, program: true }, text, toks);
  }
  const into = toks.findIndex((t, k) => t.kind === 'word' && t.value === 'INTO' && toks[k + 1]?.value === 'TABLE');
  if (into < 0) return unknown(text, 'invalid LOAD');
  const oc = new Cursor(toks);
  oc.i = into + 2;
  const nm = oc.qualified();
  if (nm === undefined) return unknown(text, 'invalid LOAD');
  // A SET clause has expressions the grammar did not analyse.
  if (hasWord(toks.slice(oc.i), 'SET')) return unknown(text, 'LOAD with a SET clause the grammar could not parse');
  return finish({ type: 'load', subtype, tables: [{ name: nm, access: 'write' }], program: true }, text, toks);
}

function handler(c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  c.i = 1;
  const nm = c.qualified();
  if (nm === undefined) return unknown(text, 'invalid HANDLER');
  if (c.words('OPEN')) {
    if (c.words('AS')) {
      if (c.ident() === undefined) return unknown(text, 'invalid HANDLER OPEN');
    } else c.ident();
    return tail(c, text, toks, { type: 'select', subtype: 'handler_open', tables: [{ name: nm, access: 'read' }] });
  }
  if (c.words('CLOSE')) return tail(c, text, toks, { type: 'utility', subtype: 'handler_close' });
  if (c.words('READ')) {
    if (hasWord(toks, 'SELECT')) return unknown(text, 'HANDLER READ with a subquery');
    return finish({ type: 'select', subtype: 'handler_read', tables: [{ name: nm, access: 'read' }], columns: ['*'] }, text, toks);
  }
  return unknown(text, 'invalid HANDLER');
}

function prepared(c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  const kw = toks[0]!.value;
  c.i = 1;
  if (kw === 'DEALLOCATE' || kw === 'DROP') {
    if (!c.words('PREPARE') || c.ident() === undefined) return unknown(text, `invalid ${kw} PREPARE`);
    return tail(c, text, toks, { type: 'deallocate' });
  }
  if (kw === 'EXECUTE' && c.isWord('IMMEDIATE')) {
    c.i++;
    const lit = c.peek();
    if (!lit || lit.kind !== 'string' || c.peek(1) !== undefined && !c.isWord('USING', 1)) return unknown(text, 'EXECUTE IMMEDIATE of a computed statement (dynamic SQL)');
    const inner = literalStatement(lit);
    if (inner.type === 'unknown') return unknown(text, `EXECUTE IMMEDIATE: ${inner.unknownReason ?? 'unknown statement'}`);
    return { ...inner, text, subtype: inner.subtype ?? 'execute_immediate' };
  }
  if (kw === 'EXECUTE') {
    if (c.ident() === undefined) return unknown(text, 'invalid EXECUTE');
    if (c.words('USING')) {
      for (;;) {
        const t = c.peek();
        if (!t || (t.kind !== 'var' && t.kind !== 'string' && t.kind !== 'word')) return unknown(text, 'EXECUTE … USING with expressions');
        c.i++;
        if (!c.punct(',')) break;
      }
    }
    return tail(c, text, toks, { type: 'execute' });
  }
  // PREPARE name FROM 'literal' | @var
  if (c.ident() === undefined || !c.words('FROM')) return unknown(text, 'invalid PREPARE');
  const src = c.peek();
  if (!src || src.kind !== 'string' || c.peek(1) !== undefined) return unknown(text, 'PREPARE from a variable or expression (dynamic SQL)');
  const inner = literalStatement(src);
  if (inner.type === 'unknown') return unknown(text, `PREPARE: ${inner.unknownReason ?? 'unknown statement'}`);
  return finish({ type: 'prepare', subtype: inner.type, tables: [...inner.tables], functions: [...inner.functions], program: inner.program ?? false }, text, toks);
}

/** The single statement in a string literal (PREPARE … FROM '…', EXECUTE IMMEDIATE '…'). */
function literalStatement(lit: Tok): SqlStatement {
  if (lit.backslash) return unknown(lit.value, 'statement literal with backslashes (escaping depends on sql_mode)');
  const inner = classifyUncached(lit.value, undefined);
  if (inner.length !== 1) return unknown(lit.value, 'statement literal holds several statements');
  return inner[0]!;
}

const MAINTENANCE: Readonly<Record<string, { subtype: string; access: 'read' | 'write' }>> = {
  OPTIMIZE: { subtype: 'optimize', access: 'write' },
  REPAIR: { subtype: 'repair', access: 'write' },
  CHECK: { subtype: 'check', access: 'read' },
  CHECKSUM: { subtype: 'checksum', access: 'read' },
  ANALYZE: { subtype: 'analyze', access: 'read' },
};

function maintenance(c: Cursor, text: string, toks: readonly Tok[]): SqlStatement {
  const m = MAINTENANCE[toks[0]!.value]!;
  c.i = 1;
  c.optional(['NO_WRITE_TO_BINLOG'], ['LOCAL']);
  if (!c.words('TABLE') && !c.words('TABLES')) {
    if (toks[0]!.value === 'CHECK') return unknown(text, 'invalid CHECK');
    return unknown(text, `invalid ${toks[0]!.value}`);
  }
  const names = c.nameList();
  if (!names) return unknown(text, `invalid ${toks[0]!.value} TABLE`);
  if (c.i < toks.length && !plainTokens(toks, c.i)) return unknown(text, `invalid ${toks[0]!.value} TABLE`);
  return finish({ type: 'vacuum', subtype: m.subtype, tables: names.map((n) => ({ name: n, access: m.access })) }, text, toks);
}

const UTILITY: Readonly<Record<string, string>> = {
  FLUSH: 'flush',
  KILL: 'kill',
  RESET: 'reset',
  PURGE: 'purge',
  CHANGE: 'change_master',
  START: 'start_replica',
  STOP: 'stop_replica',
  SHUTDOWN: 'shutdown',
  RESTART: 'restart',
  CACHE: 'cache_index',
  UNINSTALL: 'uninstall_plugin',
  SIGNAL: 'signal',
  RESIGNAL: 'resignal',
  GET: 'get_diagnostics',
  BACKUP: 'backup',
  HELP: 'help',
};

function utility(text: string, toks: readonly Tok[]): SqlStatement {
  const kw = toks[0]!.value;
  if (kw === 'INSTALL') return finish({ type: 'utility', subtype: 'install_plugin', program: true }, text, toks);
  if (kw === 'CLONE') return finish({ type: 'utility', subtype: 'clone', program: true }, text, toks);
  if (kw === 'IMPORT') return finish({ type: 'ddl', subtype: 'import_table', program: true }, text, toks);
  const subtype = UTILITY[kw];
  if (!subtype) return unknown(text, `unsupported statement ${kw}`);
  if (kw === 'HELP') return finish({ type: 'show', subtype: 'help' }, text, toks);
  if (kw === 'BACKUP') return plainTokens(toks, 1) ? finish({ type: 'lock', subtype: `backup_${(toks[1]?.value ?? '').toLowerCase()}` }, text, toks) : unknown(text, 'invalid BACKUP');
  if (kw === 'START' || kw === 'STOP') {
    if (!hasWord(toks.slice(1, 3), 'SLAVE', 'REPLICA', 'SLAVES', 'REPLICAS', 'GROUP_REPLICATION', 'ALL')) return unknown(text, `unsupported statement ${kw}`);
  }
  if (kw === 'SIGNAL' || kw === 'RESIGNAL' || kw === 'GET') {
    if (hasWord(toks, 'SELECT')) return unknown(text, `${kw} with a subquery`);
    return finish({ type: 'utility', subtype }, text, toks);
  }
  if (!plainTokens(toks, 1) && kw !== 'KILL' && kw !== 'PURGE') return unknown(text, `invalid ${kw}`);
  if ((kw === 'KILL' || kw === 'PURGE') && hasWord(toks, 'SELECT')) return unknown(text, `${kw} with a subquery`);
  return finish({ type: 'utility', subtype }, text, toks);
}

// ---------------------------------------------------------------------------------------------
// The grammar, and the AST walk
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;
type Access = 'read' | 'write';

interface Parsed {
  ast: Obj;
  tableList: string[];
  /** The grammar's `op::table::column` entries (`(.*)` for a star). */
  columnList: string[];
}

function parse(norm: string): Parsed | { error: string } {
  const order = dialect === 'mariadb' ? (['mariadb', 'mysql'] as const) : (['mysql', 'mariadb'] as const);
  let firstError = '';
  for (const d of order) {
    try {
      const r = parsers[d].parse(norm, { database: d });
      const ast = Array.isArray(r.ast) ? r.ast : [r.ast];
      if (ast.length !== 1 || ast[0] === null || typeof ast[0] !== 'object') return { error: 'the grammar found several statements' };
      return { ast: ast[0] as unknown as Obj, tableList: r.tableList, columnList: r.columnList ?? [] };
    } catch (e) {
      if (e instanceof RangeError) return { error: 'statement too deeply nested to classify' };
      if (!firstError) firstError = `parse error: ${e instanceof Error ? e.message.slice(0, 200) : String(e)}`;
    }
  }
  return { error: firstError };
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === null || v === undefined ? [] : [v];
}

function viaGrammar(st: LexedStatement, text: string, toks: readonly Tok[], as?: 'do'): SqlStatement {
  const parsed = parse(st.norm);
  if ('error' in parsed) return unknown(text, parsed.error);
  const ast = parsed.ast;
  const w = new Walk();
  w.statement(ast, 'read', new Set());
  let kind: Result;
  if (as === 'do') {
    if (ast.type !== 'select' || ast.from) return unknown(text, 'invalid DO');
    kind = { type: 'do' };
  } else kind = astKind(ast);
  if (kind.type === 'unknown') return unknown(text, `unsupported statement type ${String(ast.type)}`);
  return withCrossCheck(w, parsed.tableList, { ...kind, tables: w.tables, functions: w.functions, columns: referencedColumns(parsed.columnList), program: kind.program || w.program }, text, toks);
}

/** Column names from the grammar's column list, lower-cased, `*` for a star. */
function referencedColumns(columnList: readonly string[]): string[] {
  const out = new Set<string>();
  for (const entry of columnList) {
    const col = entry.slice(entry.lastIndexOf('::') + 2);
    if (col === '' || col === 'null') continue;
    out.add(col === '(.*)' ? '*' : col.replaceAll('``', '`').toLowerCase());
  }
  return [...out];
}

/** Adds tables the grammar's own table list has and the walk missed (not CTE names): a backstop. */
function withCrossCheck(w: Walk, tableList: readonly string[], r: Result, text: string, toks: readonly Tok[]): SqlStatement {
  const known = new Set(w.tables.map((t) => t.name));
  const tables = [...(r.tables ?? [])];
  for (const entry of tableList) {
    const [op, db, tbl] = entry.split('::');
    if (!tbl || tbl === 'null' || tbl === '(.*)') continue;
    const name = (db && db !== 'null' ? `${db}.${tbl}` : tbl).replaceAll('``', '`').toLowerCase();
    if (known.has(name) || w.cteNames.has(tbl.toLowerCase())) continue;
    tables.push({ name, access: op === 'select' || op === 'show' || op === 'use' ? 'read' : 'write' });
    known.add(name);
  }
  return finish({ ...r, tables }, text, toks);
}

/** Type and subtype of a parsed statement. */
function astKind(ast: Obj): Result {
  const keyword = String(ast.keyword ?? '').toLowerCase();
  switch (ast.type) {
    case 'select':
      return { type: 'select' };
    case 'insert':
      return { type: 'insert' };
    case 'replace':
      return { type: 'insert', subtype: 'replace' };
    case 'update':
      return { type: 'update' };
    case 'delete':
      return { type: 'delete' };
    case 'use':
      return { type: 'use' };
    case 'call':
      return { type: 'call' };
    case 'create':
      if (keyword === 'user' || keyword === 'role') return { type: 'dcl', subtype: `create_${keyword}` };
      return { type: 'ddl', subtype: `create_${keyword === 'schema' ? 'database' : keyword || 'object'}` };
    case 'drop':
      if (keyword === 'user' || keyword === 'role') return { type: 'dcl', subtype: `drop_${keyword}` };
      return { type: 'ddl', subtype: `drop_${keyword === 'schema' ? 'database' : keyword || 'object'}` };
    case 'alter':
      return { type: 'ddl', subtype: 'alter_table' };
    case 'rename':
      return { type: 'ddl', subtype: 'rename_table' };
    case 'truncate':
      return { type: 'ddl', subtype: 'truncate' };
    default:
      return { type: 'unknown' };
  }
}

class Walk {
  readonly tables: SqlTableRef[] = [];
  readonly functions: string[] = [];
  readonly cteNames = new Set<string>();
  program = false;
  private depth = 0;

  addTable(db: unknown, table: unknown, access: Access, scope: ReadonlySet<string>): void {
    if (typeof table !== 'string' || table === '') return;
    // The grammar hands back back-quoted names as written: a doubled back quote is one.
    const t = table.replaceAll('``', '`').toLowerCase();
    const d = typeof db === 'string' && db !== '' ? db.replaceAll('``', '`').toLowerCase() : undefined;
    if (!d && access === 'read' && scope.has(t)) return;
    this.tables.push({ name: d ? `${d}.${t}` : t, access });
  }

  addFunction(name: string): void {
    const n = name.toLowerCase();
    if (n === 'exists' || this.functions.includes(n)) return;
    this.functions.push(n);
  }

  /** A `{ db, table, as }` reference. */
  tableRef(o: Obj, access: Access, scope: ReadonlySet<string>): void {
    this.addTable(o.db, o.table, access, scope);
  }

  private isTableRef(o: Obj): boolean {
    return typeof o.table === 'string' && 'db' in o && !('column' in o) && o.type !== 'column_ref';
  }

  /** Walks a statement node: targets of DML and DDL are written, everything else read. */
  statement(ast: Obj, access: Access, scope: ReadonlySet<string>): void {
    if (++this.depth > 400) throw new RangeError('too deep');
    try {
      this.statementInner(ast, access, scope);
    } finally {
      this.depth--;
    }
  }

  private statementInner(ast: Obj, access: Access, outer: ReadonlySet<string>): void {
    const scope = this.withClause(ast.with, outer);
    const rest: Obj = { ...ast, with: null };
    switch (ast.type) {
      case 'select': {
        const into = ast.into as Obj | undefined;
        if (into && (into.keyword === 'outfile' || into.keyword === 'dumpfile')) this.program = true;
        this.children(rest, access, scope);
        return;
      }
      case 'insert':
      case 'replace':
        for (const t of asArray(ast.table)) if (t && typeof t === 'object') this.tableRef(t as Obj, 'write', scope);
        this.children({ ...rest, table: null }, 'read', scope);
        return;
      case 'update': {
        const targets = asArray(ast.table).filter((t): t is Obj => !!t && typeof t === 'object');
        const qualifiers = asArray(ast.set).map((s) => (s as Obj | undefined)?.table);
        const written = new Set(qualifiers.filter((q): q is string => typeof q === 'string').map((q) => q.toLowerCase()));
        const unqualified = qualifiers.some((q) => typeof q !== 'string');
        for (const t of targets) {
          if (typeof t.table !== 'string') {
            this.children(t, 'read', scope);
            continue;
          }
          const alias = String(t.as ?? t.table).toLowerCase();
          // An unqualified SET column may belong to any of the tables: all count as written.
          const w = unqualified || written.has(alias) || written.has(String(t.table).toLowerCase());
          this.tableRef(t, w ? 'write' : 'read', scope);
          this.children({ ...t, table: null, db: null }, 'read', scope);
        }
        this.children({ ...rest, table: null }, 'read', scope);
        return;
      }
      case 'delete': {
        const targets = asArray(ast.table).filter((t): t is Obj => !!t && typeof t === 'object');
        const from = asArray(ast.from).filter((t): t is Obj => !!t && typeof t === 'object');
        const names = new Set(targets.map((t) => String(t.table ?? '').toLowerCase()));
        const matched = new Set<string>();
        for (const f of from) {
          if (typeof f.table !== 'string') {
            this.children(f, 'read', scope);
            continue;
          }
          const alias = String(f.as ?? '').toLowerCase();
          const tbl = f.table.toLowerCase();
          const hit = (alias !== '' && names.has(alias)) || names.has(tbl);
          if (hit) matched.add(alias || tbl);
          this.tableRef(f, hit ? 'write' : 'read', scope);
          this.children({ ...f, table: null, db: null }, 'read', scope);
        }
        for (const t of targets) {
          const nm = String(t.table ?? '').toLowerCase();
          if (!matched.has(nm)) this.tableRef(t, 'write', scope);
        }
        this.children({ ...rest, table: null, from: null }, 'read', scope);
        return;
      }
      case 'create': {
        const kw = String(ast.keyword ?? '').toLowerCase();
        if (kw === 'table') {
          for (const t of asArray(ast.table)) if (t && typeof t === 'object') this.tableRef(t as Obj, 'write', scope);
          this.children({ ...rest, table: null }, 'read', scope);
        } else if (kw === 'view') {
          const v = ast.view as Obj | undefined;
          if (v) this.addTable(v.db, v.view, 'write', scope);
          this.children({ ...rest, view: null }, 'read', scope);
        } else if (kw === 'index') {
          const t = ast.table as Obj | undefined;
          if (t) this.tableRef(t, 'write', scope);
          this.children({ ...rest, table: null }, 'read', scope);
        } else if (kw === 'trigger') {
          const t = ast.table as Obj | undefined;
          if (t) this.tableRef(t, 'write', scope);
          this.children({ ...rest, table: null, trigger: null }, 'read', scope);
        } else {
          this.children(rest, 'read', scope);
        }
        return;
      }
      case 'drop': {
        const kw = String(ast.keyword ?? '').toLowerCase();
        if (kw === 'table' || kw === 'view') for (const t of asArray(ast.name)) if (t && typeof t === 'object') this.tableRef(t as Obj, 'write', scope);
        if (kw === 'index' && ast.table && typeof ast.table === 'object') this.tableRef(ast.table as Obj, 'write', scope);
        return;
      }
      case 'alter':
        for (const t of asArray(ast.table)) if (t && typeof t === 'object') this.tableRef(t as Obj, 'write', scope);
        for (const e of asArray(ast.expr)) {
          const ex = e as Obj | undefined;
          if (ex && ex.action === 'rename' && ex.resource === 'table' && typeof ex.table === 'string') this.addTable(null, ex.table, 'write', scope);
        }
        this.children({ ...rest, table: null }, 'read', scope);
        return;
      case 'rename':
        for (const pair of asArray(ast.table)) for (const t of asArray(pair)) if (t && typeof t === 'object') this.tableRef(t as Obj, 'write', scope);
        return;
      case 'truncate':
        for (const t of asArray(ast.name)) if (t && typeof t === 'object') this.tableRef(t as Obj, 'write', scope);
        return;
      case 'call': {
        this.children(rest, 'read', scope);
        return;
      }
      default:
        this.children(rest, access, scope);
    }
  }

  /** CTE bodies with MySQL's visibility (a non-recursive CTE sees the ones before it); returns the body scope. */
  private withClause(w: unknown, outer: ReadonlySet<string>): ReadonlySet<string> {
    const ctes = asArray(w).filter((c): c is Obj => !!c && typeof c === 'object');
    if (ctes.length === 0) return outer;
    const names = ctes.map((c) => String(((c.name as Obj | undefined)?.value ?? c.name) || '').toLowerCase());
    for (const n of names) this.cteNames.add(n);
    const all = new Set([...outer, ...names]);
    const recursive = ctes.some((c) => c.recursive === true);
    const visible = new Set(outer);
    for (const [i, c] of ctes.entries()) {
      const body = ((c.stmt as Obj | undefined)?.ast ?? c.stmt) as Obj | undefined;
      // A non-recursive CTE does not see itself: `WITH t AS (SELECT * FROM t)` reads the real table t.
      if (body && typeof body === 'object') this.statement(body, 'read', recursive ? all : new Set(visible));
      visible.add(names[i]!);
    }
    return all;
  }

  /** The values of a node's fields (not the node itself). */
  children(o: Obj, access: Access, scope: ReadonlySet<string>): void {
    for (const [k, val] of Object.entries(o)) {
      if (k === 'tableList' || k === 'columnList' || k === 'loc') continue;
      if (val && typeof val === 'object') this.generic(val, access, scope);
    }
  }

  /** Any node: table references at this position get `access`; statements and calls are recognised. */
  generic(v: unknown, access: Access, scope: ReadonlySet<string>): void {
    if (v === null || typeof v !== 'object') return;
    if (++this.depth > 400) throw new RangeError('too deep');
    try {
      if (Array.isArray(v)) {
        for (const item of v) this.generic(item, access, scope);
        return;
      }
      const o = v as Obj;
      if (typeof o.type === 'string' && STATEMENT_TYPES.has(o.type) && ('columns' in o || 'table' in o || 'from' in o || 'set' in o || 'expr' in o)) {
        this.statement(o, o.type === 'select' ? 'read' : access, scope);
        return;
      }
      if (this.isTableRef(o)) {
        this.tableRef(o, access, scope);
        for (const [k, val] of Object.entries(o)) if (k !== 'table' && k !== 'db' && val && typeof val === 'object') this.generic(val, 'read', scope);
        return;
      }
      if (o.type === 'function') {
        const nm = o.name as Obj | undefined;
        const parts = asArray(nm?.name).map((p) => String((p as Obj | undefined)?.value ?? p));
        const bare = parts[parts.length - 1];
        if (bare) {
          this.addFunction(bare);
          const schema = (nm?.schema as Obj | undefined)?.value;
          if (typeof schema === 'string') this.addFunction(`${schema}.${bare}`);
        }
      } else if (o.type === 'aggr_func' && typeof o.name === 'string') {
        this.addFunction(o.name);
      }
      for (const [k, val] of Object.entries(o)) {
        if (k === 'tableList' || k === 'columnList' || k === 'loc') continue;
        if (val && typeof val === 'object') this.generic(val, 'read', scope);
      }
    } finally {
      this.depth--;
    }
  }
}

const STATEMENT_TYPES = new Set(['select', 'insert', 'replace', 'update', 'delete']);

/**
 * The database a `USE` statement (as classified, type `use`) selects, lower-cased; undefined when
 * the text is not exactly `USE <name>`.
 */
export function mysqlUseTarget(statementText: string): string | undefined {
  const lexed = lex(statementText, 'backslash');
  if ('error' in lexed) return undefined;
  const toks = lexed.statements.flatMap((s) => s.tokens);
  const [kw, name] = toks;
  if (toks.length !== 2 || kw?.kind !== 'word' || kw.value !== 'USE' || !name || (name.kind !== 'word' && name.kind !== 'ident')) return undefined;
  return name.value.toLowerCase();
}
