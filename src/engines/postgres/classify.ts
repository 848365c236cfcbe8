/**
 * Classifies PostgreSQL SQL with PostgreSQL's own grammar (libpg_query compiled to WebAssembly, the
 * `libpg-query` package): every statement of a query string becomes a `SqlStatement` with its type,
 * the tables it reads and writes and the functions it calls. Never regular expressions.
 *
 * Decisions a policy author should know:
 *
 * - **Data-modifying CTEs** (`WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d`) and DML inside
 *   `COPY (…) TO` make the statement take the type of the strictest DML it runs (delete > merge >
 *   update > insert), with subtype `cte_<type>` (or `copy_<type>`): a rule on `delete` catches it. The
 *   tables it modifies are reported as `write`.
 * - **EXPLAIN** is type `explain` with subtype = the inner statement's type, and the inner statement's
 *   tables (with their read/write access) and functions. **EXPLAIN ANALYZE** executes the statement,
 *   so it is classified as the inner statement (type and all), with subtype `explain_analyze`.
 * - **SELECT … INTO** and **CREATE TABLE … AS** are `ddl` / `create_table_as` (materialized views:
 *   `create_materialized_view`). `SELECT … FOR UPDATE` stays `select`.
 * - **COPY**: `copy_from` (a write of the table) or `copy_to` (a read); `program: true` for
 *   `COPY … PROGRAM` and for server-side files (`COPY t TO '/path'`), which reach the server's OS.
 * - **DO** is type `do`; its body (PL/pgSQL) is not analysed: treat DO as opaque. `LOAD` sets `program`.
 * - **PREPARE** is type `prepare` with subtype = the prepared statement's type and its tables and
 *   functions; `EXECUTE name` cannot be classified from its text alone (the engine knows what `name` is).
 * - `DECLARE … CURSOR FOR SELECT` is `select` / `declare_cursor`; `FETCH` and `MOVE` are `select` /
 *   `fetch` / `move` with no tables (they read a cursor declared earlier).
 * - `SET ROLE`, `SET SESSION AUTHORIZATION` and `SET client_encoding` (`SET NAMES`) get the subtypes
 *   `set_role`, `set_session_authorization`, `set_client_encoding`; other SETs are `set`, `reset`,
 *   `reset_all`, `set_transaction`.
 * - Anything the grammar accepts that is not listed above is `utility` with a snake_case subtype from
 *   its node name (`CheckPointStmt` → `check_point`). Text that does not parse is one `unknown`
 *   statement with `unknownReason`; text with no statement (blank, comments only) is one `empty`.
 * - Table names are lower-cased, schema-qualified when written qualified; references to CTEs are not
 *   tables. Function names are lower-cased; a qualified call is reported both bare (`pg_read_file`)
 *   and qualified (`pg_catalog.pg_read_file`).
 */
import { loadModule, normalizeSync, parseSync } from 'libpg-query';
import type { SqlStatement, SqlStatementType, SqlTableRef } from '../../core/command.js';
import { GatehouseError } from '../../core/errors.js';
import { Lru, freezeStatements } from '../sql-cache.js';

export interface ClassifierOptions {
  /** Parse results kept, by exact text. Default 5000. */
  cacheEntries?: number;
  /** Texts longer than this (characters) are classified but not cached. Default 65536. */
  maxCachedTextLength?: number;
}

let loaded = false;
let loading: Promise<void> | undefined;
let maxCachedTextLength = 65536;
const cache = new Lru<readonly SqlStatement[]>(5000);
/**
 * Single-statement results by normalized text (constants replaced by `$n`, as pg_stat_statements
 * does): texts that differ only in their constants classify alike, so `… WHERE id = 1` and
 * `… WHERE id = 2` parse once. Only the statement's `text` differs, and it is the query's own.
 */
const shapes = new Lru<SqlStatement>(cache.capacity);

/**
 * Loads the parser (≈ 65 ms, once per process). Must resolve before `classifyPostgres` is called.
 * Calling it again only applies new cache options.
 */
export async function initClassifier(options: ClassifierOptions = {}): Promise<void> {
  if (options.cacheEntries !== undefined) cache.capacity = shapes.capacity = Math.max(0, Math.floor(options.cacheEntries));
  if (options.maxCachedTextLength !== undefined) maxCachedTextLength = Math.max(0, Math.floor(options.maxCachedTextLength));
  loading ??= loadModule().then(() => {
    loaded = true;
  });
  await loading;
}

/** Empties the parse cache (tests, policy reloads do not need it: results do not depend on policy). */
export function clearClassifierCache(): void {
  cache.clear();
  shapes.clear();
}

/**
 * Splits `text` into statements and classifies each. Synchronous (after `initClassifier()`); results
 * are cached by text and deeply frozen, so the same text returns the same array.
 */
export function classifyPostgres(text: string): readonly SqlStatement[] {
  if (!loaded) throw new GatehouseError('ERR_INTERNAL', 'internal error', { detail: 'classifyPostgres() called before initClassifier() resolved' });
  const hit = cache.get(text);
  if (hit) return hit;
  const cacheable = text.length <= maxCachedTextLength && cache.capacity > 0;
  let shapeKey: string | undefined;
  if (cacheable && !text.includes('\0')) {
    try {
      shapeKey = normalizeSync(text);
    } catch {
      shapeKey = undefined;
    }
    const shape = shapeKey === undefined ? undefined : shapes.get(shapeKey);
    if (shape) return Object.freeze([Object.freeze({ ...shape, text: ownText(text) })]);
  }
  const result = freezeStatements(classifyUncached(text));
  if (cacheable) {
    cache.set(text, result);
    const only = result[0];
    // Only when the statement's text is the whole query (nothing trimmed off around it).
    if (shapeKey !== undefined && result.length === 1 && only !== undefined && only.type !== 'unknown' && only.text === ownText(text)) shapes.set(shapeKey, only);
  }
  return result;
}

/** A single statement's own text as the parser reports it: the query trimmed, without its final `;`. */
function ownText(text: string): string {
  const t = text.trim();
  return t.endsWith(';') ? t.slice(0, -1).trimEnd() : t;
}

function unknown(text: string, reason: string): SqlStatement {
  return { type: 'unknown', text, tables: [], functions: [], unknownReason: reason };
}

interface RawStmt {
  stmt?: Record<string, unknown>;
  stmt_location?: number;
  stmt_len?: number;
}

function classifyUncached(text: string): SqlStatement[] {
  const trimmed = text.trim();
  if (trimmed === '') return [{ type: 'empty', text: trimmed, tables: [], functions: [] }];
  if (text.includes('\0')) return [unknown(text, 'query text contains a NUL character')];
  let stmts: RawStmt[];
  try {
    stmts = (parseSync(text) as { stmts?: RawStmt[] }).stmts ?? [];
  } catch (e) {
    const msg = e instanceof RangeError ? 'query too deeply nested to classify' : e instanceof Error ? e.message : String(e);
    return [unknown(trimmed, `parse error: ${msg}`)];
  }
  if (stmts.length === 0) return [{ type: 'empty', text: trimmed, tables: [], functions: [] }];
  const ascii = Buffer.byteLength(text, 'utf8') === text.length;
  const bytes = ascii ? undefined : Buffer.from(text, 'utf8');
  const out: SqlStatement[] = [];
  for (const raw of stmts) {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : ascii ? text.length : bytes!.length;
    const own = (bytes ? bytes.toString('utf8', start, end) : text.slice(start, end)).trim();
    try {
      out.push(classifyStatement(raw.stmt ?? {}, own));
    } catch (e) {
      out.push(unknown(own, e instanceof RangeError ? 'statement too deeply nested to classify' : `classifier error: ${e instanceof Error ? e.message : String(e)}`));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The tree walk
// ---------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;
type Access = 'read' | 'write';
type Dml = 'insert' | 'update' | 'delete' | 'merge';

const DML_NODES: Readonly<Record<string, Dml>> = { InsertStmt: 'insert', UpdateStmt: 'update', DeleteStmt: 'delete', MergeStmt: 'merge' };
const DML_RANK: Readonly<Record<Dml, number>> = { insert: 1, update: 2, merge: 3, delete: 4 };

/** RangeVars directly under these keys of these nodes are written; everywhere else they are read. */
const WRITE_KEYS: Readonly<Record<string, readonly string[]>> = {
  InsertStmt: ['relation'],
  UpdateStmt: ['relation'],
  DeleteStmt: ['relation'],
  MergeStmt: ['relation'],
  IntoClause: ['rel'],
  TruncateStmt: ['relations'],
  AlterTableStmt: ['relation'],
  CreateStmt: ['relation'],
  IndexStmt: ['relation'],
  RenameStmt: ['relation'],
  ViewStmt: ['view'],
  CreateTrigStmt: ['relation'],
  RuleStmt: ['relation'],
  CreatePolicyStmt: ['table'],
  AlterPolicyStmt: ['table'],
  CreateSeqStmt: ['sequence'],
  AlterSeqStmt: ['sequence'],
  AlterObjectDependsStmt: ['relation'],
  AlterObjectSchemaStmt: ['relation'],
  AlterOwnerStmt: ['relation'],
  CompositeTypeStmt: ['typevar'],
  ClusterStmt: ['relation'],
  RefreshMatViewStmt: ['relation'],
  ReindexStmt: ['relation'],
  GrantStmt: ['objects'],
  PartitionCmd: ['name'],
  ColumnDef: ['identitySequence'],
};

/** Struct fields that libpg_query emits without a `{ NodeType: … }` wrapper, by field name. */
const UNWRAPPED: Readonly<Record<string, string>> = {
  intoClause: 'IntoClause',
  into: 'IntoClause',
  withClause: 'WithClause',
  larg: 'SelectStmt',
  rarg: 'SelectStmt',
  funccall: 'FuncCall',
  onConflictClause: 'OnConflictClause',
  returningClause: 'ReturningClause',
  base: 'CreateStmt',
};

const TABLE_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE']);

class Walk {
  readonly tables: SqlTableRef[] = [];
  readonly functions: string[] = [];
  /** Column names referenced (`*` for a star); a name that is also a relation or alias may be a whole row. */
  readonly columnRefs = new Set<string>();
  /** Table names and aliases in the statement. */
  readonly relationNames = new Set<string>();
  private readonly seenTables = new Set<string>();
  private readonly seenFunctions = new Set<string>();
  /** Strictest DML found below the top-level node, and where. */
  nestedDml: Dml | undefined;
  nestedInCte = false;
  vacuumAnalyzeOnly = false;

  addTable(name: string, access: Access): void {
    const key = `${access}:${name}`;
    if (this.seenTables.has(key)) return;
    this.seenTables.add(key);
    this.tables.push({ name, access });
  }

  addFunction(name: string): void {
    if (this.seenFunctions.has(name)) return;
    this.seenFunctions.add(name);
    this.functions.push(name);
  }

  /** Any value of the tree: `access` applies to RangeVars directly at this position (or in a list here). */
  value(v: unknown, access: Access, scope: ReadonlySet<string>, key: string, cte: boolean): void {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const item of v) this.value(item, access, scope, key, cte);
      return;
    }
    const o = v as Obj;
    const keys = Object.keys(o);
    if (keys.length === 1 && isNodeName(keys[0]!)) {
      const type = keys[0]!;
      const body = o[type];
      if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
        this.node(type, body as Obj, access, scope, cte);
        return;
      }
    }
    if (typeof o.relname === 'string') {
      this.rangeVar(o, access, scope);
      return;
    }
    this.node(UNWRAPPED[key] ?? '', o, access, scope, cte);
  }

  node(type: string, body: Obj, access: Access, scope: ReadonlySet<string>, cte: boolean, top = false): void {
    switch (type) {
      case 'RangeVar':
        this.rangeVar(body, access, scope);
        return;
      case 'FuncCall':
        this.funcCall(body);
        break;
      case 'ColumnRef': {
        const fields = (body.fields as unknown[] | undefined) ?? [];
        const last = fields[fields.length - 1] as Obj | undefined;
        const name = (last?.String as Obj | undefined)?.sval;
        if (typeof name === 'string') this.columnRefs.add(name.toLowerCase());
        else if (last?.A_Star !== undefined) this.columnRefs.add('*');
        return;
      }
      case 'Alias':
        if (typeof body.aliasname === 'string') this.relationNames.add(body.aliasname.toLowerCase());
        break;
      case 'CopyStmt':
        if (body.relation) this.value(body.relation, body.is_from ? 'write' : 'read', scope, 'relation', cte);
        this.children(type, body, scope, cte, ['relation']);
        return;
      case 'LockStmt':
        // LOCK … IN ACCESS SHARE / ROW SHARE MODE (1, 2) only reads; stronger modes block writers.
        this.value(body.relations, ((body.mode as number | undefined) ?? 8) <= 2 ? 'read' : 'write', scope, 'relations', cte);
        return;
      case 'VacuumRelation':
        this.value(body.relation, this.vacuumAnalyzeOnly ? 'read' : 'write', scope, 'relation', cte);
        return;
      case 'DropStmt':
        if (TABLE_OBJECTS.has(body.removeType as string)) {
          for (const item of (body.objects as unknown[] | undefined) ?? []) {
            const name = qualifiedName(listOfStrings(item));
            if (name) this.addTable(name, 'write');
          }
        }
        return;
      case 'CommonTableExpr':
        this.value(body.ctequery, 'read', scope, 'ctequery', true);
        return;
      default: {
        const dml = DML_NODES[type];
        if (dml && !top && (!this.nestedDml || DML_RANK[dml] > DML_RANK[this.nestedDml])) {
          this.nestedDml = dml;
          this.nestedInCte = cte;
        }
      }
    }
    const w = body.withClause as Obj | undefined;
    if (w && typeof w === 'object') {
      scope = this.withClause(w, scope);
      this.children(type, body, scope, cte, ['withClause']);
    } else {
      this.children(type, body, scope, cte);
    }
  }

  private children(type: string, body: Obj, scope: ReadonlySet<string>, cte: boolean, skip?: readonly string[]): void {
    const writes = WRITE_KEYS[type];
    for (const key of Object.keys(body)) {
      if (skip?.includes(key)) continue;
      const v = body[key];
      if (v === null || typeof v !== 'object') continue;
      this.value(v, writes?.includes(key) ? 'write' : 'read', scope, key, cte);
    }
  }

  /** Walks the CTEs with PostgreSQL's visibility rules and returns the scope for the statement body. */
  private withClause(w: Obj, outer: ReadonlySet<string>): ReadonlySet<string> {
    const ctes = ((w.ctes as unknown[] | undefined) ?? []).map((c) => ((c as Obj).CommonTableExpr ?? c) as Obj);
    const names = ctes.map((c) => String(c.ctename ?? ''));
    const all = new Set([...outer, ...names]);
    if (w.recursive) {
      for (const c of ctes) this.value(c.ctequery, 'read', all, 'ctequery', true);
      return all;
    }
    const visible = new Set(outer);
    for (const [i, c] of ctes.entries()) {
      this.value(c.ctequery, 'read', visible, 'ctequery', true);
      visible.add(names[i]!);
    }
    return all;
  }

  private rangeVar(rv: Obj, access: Access, scope: ReadonlySet<string>): void {
    const rel = String(rv.relname);
    this.relationNames.add(rel.toLowerCase());
    const alias = (rv.alias as Obj | undefined)?.aliasname;
    if (typeof alias === 'string') this.relationNames.add(alias.toLowerCase());
    const schema = typeof rv.schemaname === 'string' ? rv.schemaname : undefined;
    if (!schema && access === 'read' && scope.has(rel)) return;
    this.addTable((schema ? `${schema}.${rel}` : rel).toLowerCase(), access);
  }

  private funcCall(fc: Obj): void {
    const parts = listOfStrings({ List: { items: fc.funcname } });
    if (parts.length === 0) return;
    const bare = parts[parts.length - 1]!.toLowerCase();
    this.addFunction(bare);
    if (parts.length > 1) this.addFunction(`${parts[parts.length - 2]!.toLowerCase()}.${bare}`);
  }
}

function isNodeName(k: string): boolean {
  const c = k.charCodeAt(0);
  return c >= 0x41 && c <= 0x5a;
}

/** `{ List: { items: [{ String: { sval } }, …] } }` (or a bare items array) → the strings. */
function listOfStrings(v: unknown): string[] {
  const items = Array.isArray(v) ? v : (((v as Obj | undefined)?.List as Obj | undefined)?.items as unknown[] | undefined);
  if (!Array.isArray(items)) return [];
  const out: string[] = [];
  for (const it of items) {
    const s = ((it as Obj | undefined)?.String as Obj | undefined)?.sval;
    if (typeof s === 'string') out.push(s);
  }
  return out;
}

/** `[catalog,] [schema,] name` → `schema.name` or `name`, lower-cased. */
function qualifiedName(parts: string[]): string | undefined {
  if (parts.length === 0) return undefined;
  return parts.slice(-2).join('.').toLowerCase();
}

function snake(nodeName: string): string {
  return nodeName
    .replace(/Stmt$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

function objectName(objtype: unknown): string {
  return typeof objtype === 'string' ? objtype.replace(/^OBJECT_/, '').toLowerCase() : 'object';
}

const SENSITIVE_SETTINGS = new Set(['role', 'session_authorization', 'client_encoding']);

const DCL: Readonly<Record<string, string>> = {
  CreateRoleStmt: 'create_role',
  AlterRoleStmt: 'alter_role',
  AlterRoleSetStmt: 'alter_role_set',
  DropRoleStmt: 'drop_role',
  AlterDefaultPrivilegesStmt: 'alter_default_privileges',
  ReassignOwnedStmt: 'reassign_owned',
  DropOwnedStmt: 'drop_owned',
};

const DDL_SUBTYPES: Readonly<Record<string, string>> = {
  CreateStmt: 'create_table',
  CreateForeignTableStmt: 'create_foreign_table',
  TruncateStmt: 'truncate',
  IndexStmt: 'create_index',
  ViewStmt: 'create_view',
  CommentStmt: 'comment',
  SecLabelStmt: 'security_label',
  CreateSchemaStmt: 'create_schema',
  CreatedbStmt: 'create_database',
  DropdbStmt: 'drop_database',
  CreateSeqStmt: 'create_sequence',
  AlterSeqStmt: 'alter_sequence',
  CreateTrigStmt: 'create_trigger',
  CreateEventTrigStmt: 'create_event_trigger',
  AlterEventTrigStmt: 'alter_event_trigger',
  RuleStmt: 'create_rule',
  CreatePLangStmt: 'create_language',
  CompositeTypeStmt: 'create_type',
  RefreshMatViewStmt: 'refresh_materialized_view',
  ImportForeignSchemaStmt: 'import_foreign_schema',
  CreateTableSpaceStmt: 'create_tablespace',
  DropTableSpaceStmt: 'drop_tablespace',
  CreateFdwStmt: 'create_foreign_data_wrapper',
  AlterFdwStmt: 'alter_foreign_data_wrapper',
};

const DDL_PREFIX = /^(Create|Alter|Drop|Define|Comment|SecLabel|Rename|Refresh|Import)/;

function explainAnalyze(options: unknown): boolean {
  for (const o of (options as unknown[] | undefined) ?? []) {
    const d = (o as Obj).DefElem as Obj | undefined;
    if (!d || d.defname !== 'analyze') continue;
    const arg = d.arg as Obj | undefined;
    if (!arg) return true;
    const s = (arg.String as Obj | undefined)?.sval;
    if (typeof s === 'string') return !['false', 'off', 'no', '0'].includes(s.toLowerCase());
    if (arg.Integer) return ((arg.Integer as Obj).ival ?? 0) !== 0;
    if (arg.Boolean) return Boolean((arg.Boolean as Obj).boolval);
    return true;
  }
  return false;
}

interface Kind {
  type: SqlStatementType;
  subtype?: string;
  program?: boolean;
}

/** Type and subtype from the top-level node alone (walk results are merged in afterwards). */
function kindOf(type: string, b: Obj): Kind {
  switch (type) {
    case 'SelectStmt':
      return b.intoClause ? { type: 'ddl', subtype: 'create_table_as' } : { type: 'select' };
    case 'InsertStmt':
      return { type: 'insert' };
    case 'UpdateStmt':
      return { type: 'update' };
    case 'DeleteStmt':
      return { type: 'delete' };
    case 'MergeStmt':
      return { type: 'merge' };
    case 'CreateTableAsStmt':
      return { type: 'ddl', subtype: b.objtype === 'OBJECT_MATVIEW' ? 'create_materialized_view' : 'create_table_as' };
    case 'CopyStmt':
      return { type: 'copy', subtype: b.is_from ? 'copy_from' : 'copy_to', ...(b.is_program || typeof b.filename === 'string' ? { program: true } : {}) };
    case 'CallStmt':
      return { type: 'call' };
    case 'DoStmt':
      return { type: 'do' };
    case 'LoadStmt':
      return { type: 'load', program: true };
    case 'TransactionStmt': {
      const k = String(b.kind ?? '').replace(/^TRANS_STMT_/, '').toLowerCase();
      return { type: 'tcl', subtype: k === 'start' ? 'begin' : k === 'prepare' ? 'prepare_transaction' : k };
    }
    case 'VariableSetStmt': {
      const kind = String(b.kind ?? '');
      const name = typeof b.name === 'string' ? b.name.toLowerCase() : '';
      if (kind === 'VAR_RESET_ALL') return { type: 'set', subtype: 'reset_all' };
      if (kind === 'VAR_SET_MULTI') return { type: 'set', subtype: 'set_transaction' };
      const verb = kind === 'VAR_RESET' ? 'reset' : 'set';
      return { type: 'set', subtype: SENSITIVE_SETTINGS.has(name) ? `${verb}_${name}` : verb };
    }
    case 'ConstraintsSetStmt':
      return { type: 'set', subtype: 'set_constraints' };
    case 'VariableShowStmt':
      return { type: 'show' };
    case 'PrepareStmt':
      return { type: 'prepare' };
    case 'ExecuteStmt':
      return { type: 'execute' };
    case 'DeallocateStmt':
      return { type: 'deallocate' };
    case 'ListenStmt':
      return { type: 'listen' };
    case 'UnlistenStmt':
      return { type: 'listen', subtype: 'unlisten' };
    case 'NotifyStmt':
      return { type: 'notify' };
    case 'LockStmt':
      return { type: 'lock' };
    case 'VacuumStmt':
      return { type: 'vacuum', subtype: b.is_vacuumcmd ? 'vacuum' : 'analyze' };
    case 'ClusterStmt':
      return { type: 'vacuum', subtype: 'cluster' };
    case 'ReindexStmt':
      return { type: 'vacuum', subtype: 'reindex' };
    case 'DeclareCursorStmt':
      return { type: 'select', subtype: 'declare_cursor' };
    case 'FetchStmt':
      return { type: 'select', subtype: b.ismove ? 'move' : 'fetch' };
    case 'ClosePortalStmt':
      return { type: 'utility', subtype: 'close_cursor' };
    case 'ExplainStmt':
      return { type: 'explain' };
    case 'GrantStmt':
      return { type: 'dcl', subtype: b.is_grant ? 'grant' : 'revoke' };
    case 'GrantRoleStmt':
      return { type: 'dcl', subtype: b.is_grant ? 'grant_role' : 'revoke_role' };
    case 'DropStmt':
      return { type: 'ddl', subtype: `drop_${objectName(b.removeType)}` };
    case 'AlterTableStmt':
      return { type: 'ddl', subtype: `alter_${objectName(b.objtype)}` };
    case 'RenameStmt':
      return { type: 'ddl', subtype: `rename_${objectName(b.renameType)}` };
    case 'CreateFunctionStmt':
      return { type: 'ddl', subtype: b.is_procedure ? 'create_procedure' : 'create_function' };
    case 'DefineStmt':
      return { type: 'ddl', subtype: `create_${objectName(b.kind)}` };
    default: {
      const dcl = DCL[type];
      if (dcl) return { type: 'dcl', subtype: dcl };
      const ddl = DDL_SUBTYPES[type];
      if (ddl) return { type: 'ddl', subtype: ddl };
      if (DDL_PREFIX.test(type)) return { type: 'ddl', subtype: snake(type) };
      return { type: 'utility', subtype: snake(type) };
    }
  }
}

const PROMOTABLE = new Set<SqlStatementType>(['select', 'insert', 'update', 'delete', 'merge', 'copy']);

function classifyStatement(stmt: Obj, text: string): SqlStatement {
  const type = Object.keys(stmt)[0];
  const body = type === undefined ? undefined : (stmt[type] as Obj | undefined);
  if (type === undefined || !body || typeof body !== 'object') return unknown(text, 'empty parse tree');

  if (type === 'ExplainStmt') {
    const inner = (body.query ?? {}) as Obj;
    const innerType = Object.keys(inner)[0];
    const innerBody = innerType === undefined ? undefined : (inner[innerType] as Obj | undefined);
    if (innerType === undefined || !innerBody) return unknown(text, 'EXPLAIN without a statement');
    const s = classifyStatement(inner, text);
    if (s.type === 'unknown') return s;
    if (explainAnalyze(body.options)) return { ...s, subtype: 'explain_analyze' };
    return { type: 'explain', subtype: s.type, text, tables: s.tables, functions: s.functions, ...(s.program ? { program: true } : {}) };
  }
  if (type === 'PrepareStmt') {
    const inner = (body.query ?? {}) as Obj;
    const s = Object.keys(inner).length ? classifyStatement(inner, text) : undefined;
    if (s?.type === 'unknown') return s;
    return { type: 'prepare', ...(s ? { subtype: s.type } : {}), text, tables: s?.tables ?? [], functions: s?.functions ?? [], ...(s?.program ? { program: true } : {}) };
  }

  const kind = kindOf(type, body);
  const walk = new Walk();
  walk.vacuumAnalyzeOnly = type === 'VacuumStmt' && !body.is_vacuumcmd;
  walk.node(type, body, 'read', new Set(), false, true);

  let stype = kind.type;
  let subtype = kind.subtype;
  const nested = walk.nestedDml;
  if (nested && PROMOTABLE.has(stype)) {
    const own = DML_RANK[stype as Dml] ?? 0;
    if (DML_RANK[nested] > own) {
      subtype = `${walk.nestedInCte ? 'cte' : snake(type)}_${nested}`;
      stype = nested;
    }
  }
  const out: SqlStatement = { type: stype, text, tables: walk.tables, functions: walk.functions };
  if (walk.columnRefs.size > 0) {
    // `row_to_json(s)`, `s::text`: a reference named like a relation or alias can be its whole row.
    const cols = new Set<string>();
    for (const c of walk.columnRefs) cols.add(walk.relationNames.has(c) ? '*' : c);
    out.columns = [...cols];
  }
  if (subtype !== undefined) out.subtype = subtype;
  if (kind.program) out.program = true;
  return out;
}
