import type { Explanation, RuleTrace } from './engine.js';
import type { Decision, RuleRef } from './types.js';

function ruleName(r: RuleRef | 'default'): string {
  if (r === 'default') return 'default (nothing matched)';
  return `${r.policy}#${r.index}${r.source ? ` (${r.source})` : ''}`;
}

function decisionLine(d: Decision): string {
  switch (d.effect) {
    case 'deny':
      return `DENY by ${ruleName(d.rule)}: ${d.reason}`;
    case 'review': {
      const who = [...d.approvers.groups.map((g) => `group ${g}`), ...d.approvers.subjects.map((s) => `subject ${s}`)];
      return `REVIEW by ${ruleName(d.rule)}: ${d.reason}; approvers: ${who.length === 0 ? 'any approver' : who.join(', ')}, ${d.approvers.minApprovals} approval${d.approvers.minApprovals === 1 ? '' : 's'}${d.approvers.requireReason ? ', reason required' : ''}${masksNote(d)}`;
    }
    case 'allow':
      return `ALLOW by ${ruleName(d.rule)}${masksNote(d)}`;
  }
}

function masksNote(d: Decision): string {
  if (d.effect === 'deny' || d.masks.length === 0) return '';
  const specs = d.masks.map((m) => {
    const what = [...m.columns, ...m.paths, ...m.detectors.map((x) => `detector:${x}`)].join(', ');
    return `${what} → ${m.strategy}`;
  });
  return `; masks: ${specs.join('; ')}`;
}

function ruleLine(r: RuleTrace): string {
  const mark = r.matched ? '+' : '-';
  return `    ${mark} ${r.policy}#${r.index} ${r.effect.padEnd(6)} ${r.why}${r.source ? `  [${r.source}]` : ''}`;
}

/**
 * Renders an {@link Explanation} for `gatehouse policy explain`: the decision first, then who and what
 * was asked, every policy with why it applies or not, and every rule considered (`+` matched, `-` not),
 * per statement for SQL.
 */
export function formatExplanation(e: Explanation): string {
  const out: string[] = [];
  out.push(`Decision: ${decisionLine(e.decision)}`);
  const id = e.identity;
  out.push(`Identity: sub=${id.subject} iss=${id.issuer}${id.clientId ? ` client_id=${id.clientId}` : ''} groups=[${id.groups.join(', ')}]`);
  out.push(`Connection: ${e.connection}`);
  out.push(`Command (${e.kind}): ${e.command}`);
  out.push(`At: ${e.at}`);
  out.push('');
  out.push('Policies:');
  if (e.policies.length === 0) out.push('  (none loaded)');
  for (const p of e.policies) out.push(`  ${p.applies ? '+' : '-'} ${p.policy}${p.source ? ` [${p.source}]` : ''}: ${p.why}`);
  const applicable = e.policies.some((p) => p.applies);
  out.push('');
  if (!applicable) {
    out.push('No policy applies: every command is denied and the session is refused at login.');
    return out.join('\n');
  }
  if (e.kind === 'sql' && e.statements !== undefined && e.statements.length > 0) {
    for (const s of e.statements) {
      const d = e.decision.statements?.[s.index];
      out.push(`Statement ${s.index + 1} (${s.type}${s.subtype ? `/${s.subtype}` : ''}): ${s.text.trim()}`);
      if (s.unknownReason) out.push(`  not classified: ${s.unknownReason}`);
      if (d !== undefined) out.push(`  → ${decisionLine(d)}`);
      for (const r of e.rules) if (r.statement === s.index) out.push(ruleLine(r));
    }
  } else {
    out.push(e.kind === 'sql' ? 'Rules (empty query):' : 'Rules:');
    for (const r of e.rules) out.push(ruleLine(r));
  }
  return out.join('\n');
}
