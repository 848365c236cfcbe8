/**
 * The agent's justification for a command that needs review, given in SQL as
 * `SET gatehouse.reason = '…'` (also `SET SESSION …`, `TO`, and `''` inside the quotes). PostgreSQL
 * accepts `gatehouse.reason` as a custom setting, so the statement also runs on the target; the
 * MySQL engine answers it itself. Only statements the classifier already typed `set` are read.
 */
import type { SqlCommand } from '../command.js';
import type { RuleRef } from '../policy/types.js';

/** The rule a justification statement is allowed by, whatever the policies say. */
export const BUILTIN_REASON_RULE: Readonly<RuleRef> = Object.freeze({ policy: '(builtin)', index: -2, effect: 'allow', reason: 'sets the justification for reviews' });

const REASON = /^set\s+(?:session\s+)?gatehouse\.reason\s*(?:=|to)\s*'((?:[^']|'')*)'\s*;?\s*$/i;

/** The justification a SQL command sets, when it does nothing else; otherwise undefined. */
export function sqlJustification(cmd: SqlCommand): string | undefined {
  if (cmd.statements.length !== 1) return undefined;
  const st = cmd.statements[0]!;
  if (st.type !== 'set') return undefined;
  const m = REASON.exec(st.text.trim());
  return m ? m[1]!.replaceAll("''", "'").slice(0, 2000) : undefined;
}
