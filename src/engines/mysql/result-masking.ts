/**
 * Masking of result rows by column, in the text protocol (COM_QUERY) and the binary protocol
 * (COM_STMT_EXECUTE, COM_STMT_FETCH).
 *
 * Column definitions carry where a value comes from (`schema`, `org_table`, `org_name`) when it is a
 * column read directly; views, derived tables, CTEs and expressions are followed with the target's
 * catalog and the statement's referenced columns (see `rowPlan`).
 * Text values are masked as text. In the binary protocol, values sent as length-encoded strings
 * (CHAR, VARCHAR, TEXT, BLOB, JSON, ENUM, SET, DECIMAL, …) are rewritten like text values; numbers,
 * dates and times have a fixed binary form that cannot hold a masked text, so they are decoded and
 * inspected and pass only when masking would leave them unchanged; otherwise the result is refused
 * with `ERR_MASKING_FAILED` (fail closed).
 * Rows: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset_row.html,
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_binary_resultset.html
 */
import { GatehouseError } from '../../core/errors.js';
import type { ColumnRef, Masker, ValueMasker } from '../../core/masking/types.js';
import type { CatalogEntry } from './catalog.js';
import { decodeBinaryRow, decodeTextRowBuffers, encodeBinaryRow, encodeTextRow, formatBinaryValue, type BinaryValue, type ColumnDefinition } from './protocol.js';

/** What to do with each column of one result set. */
export interface RowPlan {
  readonly columns: readonly ColumnDefinition[];
  /** Per column: the masker, or undefined to pass the value raw. */
  readonly maskers: readonly (ValueMasker | undefined)[];
  /** No column needs masking: rows pass through untouched. */
  readonly passthrough: boolean;
}

/** Where a result column comes from, for column rules. */
export function columnRef(c: ColumnDefinition): ColumnRef {
  return {
    ...(c.schema ? { schema: c.schema } : {}),
    ...(c.orgTable || c.table ? { table: c.orgTable || c.table } : {}),
    column: c.orgName || c.columnName,
  };
}

/** What the statement behind a result reads, to follow column rules through expressions and views. */
export interface PlanContext {
  /** Tables (and views) the command reads, qualified `schema.table`, lower-cased. */
  readonly tables: readonly string[];
  /** Column names the command references, lower-cased; `*` for a star. */
  readonly columns: readonly string[];
  readonly catalog: { get(name: string): CatalogEntry | null | undefined } | undefined;
}

/** The strongest column rule among `maskers`. */
function strongestColumnRule(maskers: readonly (ValueMasker | undefined)[]): ValueMasker | undefined {
  let best: ValueMasker | undefined;
  for (const m of maskers) if (m?.kind === 'column' && (best === undefined || (m.rank ?? 0) > (best.rank ?? 0))) best = m;
  return best;
}

function splitName(name: string): { schema?: string; table: string } {
  const dot = name.indexOf('.');
  return dot < 0 ? { table: name } : { schema: name.slice(0, dot), table: name.slice(dot + 1) };
}

/** The columns the statement may read values from: those it names on its tables, all of a table's for `*`, a view's base columns. */
function statementColumns(ctx: PlanContext): ColumnRef[] {
  const out: ColumnRef[] = [];
  const named = ctx.columns.filter((c) => c !== '*');
  for (const t of ctx.tables) {
    const e = ctx.catalog?.get(t);
    const p = splitName(t);
    if (e?.kind === 'view') out.push(...(e.base ?? []));
    const names = ctx.columns.includes('*') ? [...(e?.columns ?? []), ...named] : named;
    for (const c of names) out.push({ ...(p.schema ? { schema: p.schema } : {}), table: p.table, column: c });
  }
  return out;
}

/**
 * The masking plan of one result set. A column read directly from a base table gets that column's
 * rules. Column rules must also hold for values that reach the result another way: a view's column
 * gets the strongest rule among the base columns the view reads (unless it carries the name of a
 * base column no rule covers); any other column — an expression, a UNION, a derived table or CTE
 * column, or one whose table the catalog does not know — gets the strongest rule among the columns
 * its statement references. This errs toward masking more.
 */
export function rowPlan(columns: readonly ColumnDefinition[], masker: Masker, ctx?: PlanContext): RowPlan {
  const maskers = masker.forColumns(columns.map(columnRef)).slice();
  if (ctx) {
    let fromStatement: ValueMasker | null | undefined;
    for (let i = 0; i < columns.length; i++) {
      if (maskers[i]?.kind === 'column') continue;
      const c = columns[i]!;
      const e = c.schema && c.orgTable ? ctx.catalog?.get(`${c.schema}.${c.orgTable}`.toLowerCase()) : undefined;
      if (e?.kind === 'table' && c.orgName) continue;
      let m: ValueMasker | undefined;
      if (e?.kind === 'view') {
        const base = e.base ?? [];
        const sameName = base.filter((b) => b.column === c.orgName.toLowerCase());
        const uncovered = sameName.length > 0 && masker.forColumns(sameName).every((x) => x?.kind !== 'column');
        if (!uncovered) m = strongestColumnRule(masker.forColumns(base));
      } else {
        if (fromStatement === undefined) fromStatement = strongestColumnRule(masker.forColumns(statementColumns(ctx))) ?? null;
        m = fromStatement ?? undefined;
      }
      if (m) maskers[i] = m;
    }
  }
  return { columns, maskers, passthrough: maskers.every((m) => m === undefined) };
}

function refuse(detail: string): GatehouseError {
  return new GatehouseError('ERR_MASKING_FAILED', 'a result value could not be inspected for masking; the result was withheld (select it as text, e.g. CAST(… AS CHAR), or use a text query)', { detail });
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/**
 * Masks one text-protocol row. Returns the new payload, or undefined when nothing changed (forward
 * the row as it came). Throws `ERR_MASKING_FAILED` to fail closed.
 */
export function maskTextRow(payload: Buffer, plan: RowPlan, onMasked?: (n: number) => void): Buffer | undefined {
  const values = decodeTextRowBuffers(payload, plan.columns.length);
  let out: (Buffer | string | null)[] | undefined;
  let changed = 0;
  for (let i = 0; i < values.length; i++) {
    const m = plan.maskers[i];
    const v = values[i];
    if (m === undefined || v === null || v === undefined) continue;
    const s = decoder.decode(v);
    const masked = m(s);
    if (masked === s) continue;
    (out ??= values.slice())[i] = masked;
    changed++;
  }
  if (out === undefined) return undefined;
  onMasked?.(changed);
  return encodeTextRow(out);
}

/**
 * Masks one binary-protocol row. Returns the new payload, or undefined when nothing changed. Throws
 * `ERR_MASKING_FAILED` for a number or date/time value that masking would change.
 */
export function maskBinaryRow(payload: Buffer, plan: RowPlan, onMasked?: (n: number) => void): Buffer | undefined {
  const values = decodeBinaryRow(payload, plan.columns);
  let out: BinaryValue[] | undefined;
  let changed = 0;
  for (let i = 0; i < values.length; i++) {
    const m = plan.maskers[i];
    const v = values[i];
    if (m === undefined || v === null || v === undefined) continue;
    const col = plan.columns[i]!;
    if (Buffer.isBuffer(v)) {
      const s = decoder.decode(v);
      const masked = m(s);
      if (masked === s) continue;
      (out ??= values.slice())[i] = masked === null ? null : Buffer.from(masked, 'utf8');
      changed++;
      continue;
    }
    const text = formatBinaryValue(v, col);
    if (text === null) continue;
    if (m(text) !== text) throw refuse(`binary value of type ${col.type} in column ${col.columnName} would need masking`);
  }
  if (out === undefined) return undefined;
  onMasked?.(changed);
  return encodeBinaryRow(plan.columns, out);
}

/** Values longer than this are not decoded for a recording sample (they are shown by their size). */
const SAMPLE_MAX_BYTES = 4096;

function sampleValue(v: Buffer): string {
  return v.length > SAMPLE_MAX_BYTES ? `<${v.length} bytes>` : decoder.decode(v);
}

/**
 * A text row's values for a recording sample: whole, so that the session's log masking sees every
 * secret entire (the recording shortens values after masking); values over 4 KiB by their size.
 */
export function sampleTextRow(payload: Buffer, columnCount: number): (string | null)[] {
  return decodeTextRowBuffers(payload, columnCount).map((v) => (v === null ? null : sampleValue(v)));
}

/** A binary row's values for a recording sample, rendered as the text protocol would send them. */
export function sampleBinaryRow(payload: Buffer, columns: readonly ColumnDefinition[]): (string | null)[] {
  return decodeBinaryRow(payload, columns).map((v, i) => (Buffer.isBuffer(v) ? sampleValue(v) : formatBinaryValue(v, columns[i]!)));
}
