/** The masking seam every engine uses. Implementation: `./masker.ts`. */

/** Where a result column came from (PostgreSQL RowDescription + catalog; MySQL column definition). */
export interface ColumnRef {
  schema?: string;
  table?: string;
  column: string;
}

/**
 * Masks one text value of a column. Returns the value to send (masked or unchanged), or `null` to
 * send SQL NULL. Throws `GatehouseError('ERR_MASKING_FAILED')` when the value cannot be inspected
 * (over the size limit, undecodable) — the engine then refuses the result: fail closed.
 */
export type ValueMasker = ((value: string) => string | null) & {
  /**
   * `column`: a column rule replaces every value whatever it holds; `detect`: only detected spans
   * are replaced, so a value the detectors find nothing in passes unchanged. Engines that cannot
   * rewrite a value (binary formats) use this to decide between passing and refusing it.
   */
  readonly kind: 'column' | 'detect';
  /** For `column`: how strong its strategy is (higher hides more), to pick the strongest of several. */
  readonly rank?: number;
};

export interface Masker {
  /** False when nothing the agent receives needs inspecting: engines then stream results untouched. */
  readonly active: boolean;
  /**
   * Compiles a per-column plan for one result set. Entry `i` is `undefined` when column `i` passes
   * through raw, else the function to apply to each of its values. Call once per result set.
   */
  forColumns(columns: readonly ColumnRef[]): (ValueMasker | undefined)[];
  /** Masks structured data (Kubernetes objects, JSON values) in place of a copy: `kind` is e.g. `Secret`. */
  maskJson(value: unknown, kind?: string): unknown;
  /** Masks free text the agent receives (logs, terminal output) with the plan's detectors. */
  maskText(text: string): string;
  /** Masks text for logs, audit and recordings: every detector, whatever the policy says. */
  maskForLog(text: string): string;
}
