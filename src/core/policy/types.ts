/** Decisions and the shapes policies compile to. The YAML schema lives in `./schema.ts`. */
import type { GatehouseErrorCode } from '../errors.js';

export type Effect = 'allow' | 'deny' | 'review' | 'mask';

/** Which rule decided: policy name + rule index (0-based) in that policy's `rules`. */
export interface RuleRef {
  policy: string;
  index: number;
  effect: Effect;
  /** The rule's `reason`, if it has one. */
  reason?: string;
  /** Where it was written: `policies/prod.yaml:12`. */
  source?: string;
}

export type MaskStrategy = 'redact' | 'partial' | 'hash' | 'null';

/** One `mask` rule as it applies to a session: what to mask and how. */
export interface MaskSpec {
  /** Column patterns: `schema.table.column`, `table.column`, `*.ssn`, `payments.*`. */
  columns: string[];
  /** JSON paths for structured results (Kubernetes): `Secret.data.*`. */
  paths: string[];
  /** Detector names (`payment_card`, `api_key`, …) applied to every value the agent receives. */
  detectors: string[];
  strategy: MaskStrategy;
  /** For `partial`: how many trailing characters to keep (default 4). */
  keep?: number;
  rule: RuleRef;
}

export type MaskPlan = MaskSpec[];

export interface Approvers {
  groups: string[];
  subjects: string[];
  /** How many distinct approvers must approve (default 1). */
  minApprovals: number;
  /** Approvers want a justification from the agent before they look. */
  requireReason: boolean;
}

export type Decision =
  | { effect: 'allow'; rule: RuleRef; masks: MaskPlan }
  | { effect: 'deny'; rule: RuleRef | 'default'; reason: string; code?: GatehouseErrorCode }
  | { effect: 'review'; rule: RuleRef; approvers: Approvers; masks: MaskPlan; reason: string };

/** A decision for a whole command plus, for SQL, one per statement (same order as `statements`). */
export type CommandDecision = Decision & {
  statements?: Decision[];
  /** Set when a review decided it (the approved review's id). */
  reviewId?: string;
};
