/** Policy as code: the YAML schema, the loader, the engine and `explain`. */
export type { Approvers, CommandDecision, Decision, Effect, MaskPlan, MaskSpec, MaskStrategy, RuleRef } from './types.js';
export {
  compilePattern,
  isTimeZone,
  parseHours,
  policyFileSchema,
  policySchema,
  SQL_STATEMENT_TYPES,
  SQL_TYPE_NAMES,
  SSH_CHANNELS,
  toPolicyDefinitions,
  WEEKDAYS,
} from './schema.js';
export type {
  K8sCondition,
  MaskDefinition,
  PolicyDefinition,
  PolicyInput,
  PolicySet,
  RuleDefinition,
  ScheduleDefinition,
  SqlCondition,
  SqlTypeName,
  SshChannel,
  SshCondition,
  SubjectSelector,
  Weekday,
} from './schema.js';
export { loadPolicies, parsePolicies, policySet } from './loader.js';
export type { LoadPoliciesOptions, PolicySource } from './loader.js';
export { BUILTIN_EMPTY_RULE, DEFAULT_DENY_REASON, PolicyEngine } from './engine.js';
export type { ConnectCheck, Explanation, PolicyTrace, RuleTrace } from './engine.js';
export { formatExplanation } from './explain.js';
export { compileGlobs, globFiles, hasGlob } from './glob.js';
export type { GlobSet } from './glob.js';
