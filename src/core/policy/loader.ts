/**
 * Loads policy files (policy as code): expands globs, validates every document and reports every
 * problem at once, each as `file:line:col: key.path: message`.
 */
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { IssueCollector, YamlSource } from '../yaml-source.js';
import type { KeyPath, SourceIssue } from '../yaml-source.js';
import { globFiles } from './glob.js';
import { policyFileSchema, toPolicyDefinitions } from './schema.js';
import type { PolicyDefinition, PolicySet } from './schema.js';

/**
 * Where policies come from: one file glob, or a list of file globs and already validated inline
 * policies (as the configuration loader produces them from `policies:` in `gatehouse.yaml`).
 * Globs are resolved against the loader's `baseDir`.
 */
export type PolicySource = string | readonly (string | PolicyDefinition)[];

export interface LoadPoliciesOptions {
  /**
   * Detector names that exist (built-in and configured). When given, a mask rule naming another
   * detector is a load error. When omitted, detector names are not checked.
   */
  detectors?: readonly string[];
}

/**
 * Reads and validates every policy from `source`. Files are read in sorted order per glob, globs in
 * the order given; a glob that matches no file is an error. Throws `GatehouseError('ERR_POLICY')`
 * listing every issue (syntax, schema, invalid regular expressions and time zones, duplicate policy
 * names, unknown detectors).
 */
export async function loadPolicies(source: PolicySource, baseDir: string, options: LoadPoliciesOptions = {}): Promise<PolicySet> {
  const items = typeof source === 'string' ? [source] : source;
  const issues = new IssueCollector();
  const entries: Entry[] = [];
  const files: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string') {
      entries.push({ def: item });
      continue;
    }
    const matched = await globFiles(item, baseDir);
    if (matched.length === 0) {
      issues.add({ file: item, line: 0, col: 0, path: '', message: `no policy file matches (relative to ${baseDir})` });
      continue;
    }
    for (const file of matched) {
      if (files.includes(file)) continue;
      files.push(file);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        issues.add({ file: display(baseDir, file), line: 0, col: 0, path: '', message: `cannot read: ${(e as Error).message}` });
        continue;
      }
      entries.push(...parseEntries(text, display(baseDir, file), issues));
    }
  }
  checkEntries(entries, issues, options);
  issues.throwIfAny('ERR_POLICY');
  return { policies: entries.map((e) => e.def), files };
}

/**
 * Parses one policy document (`policies:` list). `file` is the name used in messages and in
 * `RuleRef.source`. Throws `GatehouseError('ERR_POLICY')` listing every issue.
 */
export function parsePolicies(text: string, file: string, options: LoadPoliciesOptions = {}): PolicyDefinition[] {
  const issues = new IssueCollector();
  const entries = parseEntries(text, file, issues);
  checkEntries(entries, issues, options);
  issues.throwIfAny('ERR_POLICY');
  return entries.map((e) => e.def);
}

/** Builds a {@link PolicySet} from definitions already in memory, with the same cross-checks as {@link loadPolicies}. */
export function policySet(policies: readonly PolicyDefinition[], options: LoadPoliciesOptions = {}): PolicySet {
  const issues = new IssueCollector();
  const entries = policies.map((def) => ({ def }));
  checkEntries(entries, issues, options);
  issues.throwIfAny('ERR_POLICY');
  return { policies: [...policies], files: [] };
}

interface Entry {
  def: PolicyDefinition;
  src?: YamlSource;
  /** Path of the policy in `src`. */
  at?: KeyPath;
}

function parseEntries(text: string, file: string, issues: IssueCollector): Entry[] {
  const parsed = YamlSource.parse(text, file);
  issues.add(...parsed.issues);
  const src = parsed.source;
  if (src === undefined) return [];
  const value = src.toJS();
  if (value === null || value === undefined) {
    issues.add({ file, line: 1, col: 1, path: '', message: 'empty policy file: expected a top-level `policies:` list' });
    return [];
  }
  const result = policyFileSchema.safeParse(value);
  if (!result.success) {
    issues.add(...src.zodIssues(result.error, value));
    return [];
  }
  return toPolicyDefinitions(result.data.policies, src, ['policies']).map((def, i) => ({ def, src, at: ['policies', i] }));
}

function issueAt(e: Entry, path: KeyPath, fallback: string | undefined, message: string): SourceIssue {
  if (e.src !== undefined && e.at !== undefined) return e.src.issue([...e.at, ...path], message);
  const m = /^(.*):(\d+)$/.exec(fallback ?? e.def.source ?? '');
  return { file: m?.[1] ?? '(inline)', line: Number(m?.[2] ?? 0), col: 0, path: '', message: `policy "${e.def.name}": ${message}` };
}

function checkEntries(entries: readonly Entry[], issues: IssueCollector, options: LoadPoliciesOptions): void {
  const seen = new Map<string, Entry>();
  for (const e of entries) {
    const first = seen.get(e.def.name);
    if (first !== undefined) {
      issues.add(issueAt(e, ['name'], undefined, `duplicate policy name "${e.def.name}" (first defined at ${first.def.source ?? 'inline'})`));
    } else {
      seen.set(e.def.name, e);
    }
    if (options.detectors === undefined) continue;
    const known = new Set(options.detectors);
    e.def.rules.forEach((r, i) => {
      r.mask?.detectors.forEach((d, j) => {
        if (!known.has(d)) {
          issues.add(issueAt(e, ['rules', i, 'detectors', j], r.source, `unknown detector "${d}" (known: ${[...known].sort().join(', ')})`));
        }
      });
    });
  }
}

function display(baseDir: string, file: string): string {
  const rel = relative(baseDir, file);
  return rel === '' || rel.startsWith('..') || rel.startsWith('/') ? file : rel;
}
