/**
 * CLI commands that talk to a running gateway's HTTP API: reviews, grants, sessions, revocations.
 * `--server` (default `$GATEHOUSE_SERVER` or http://127.0.0.1:8080) and the bearer token from
 * `$GATEHOUSE_TOKEN`.
 */
import type { Command } from 'commander';
import { replayAsciicast, replaySql } from './replay.js';

interface ApiOpts {
  server?: string;
  json?: boolean;
}

class ApiError extends Error {}

async function api(o: ApiOpts, method: string, path: string, body?: unknown): Promise<unknown> {
  const server = (o.server ?? process.env.GATEHOUSE_SERVER ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  const token = process.env.GATEHOUSE_TOKEN;
  if (!token) throw new ApiError('set GATEHOUSE_TOKEN to your access token');
  let r: Response;
  try {
    r = await fetch(`${server}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new ApiError(`cannot reach ${server}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const text = await r.text();
  let data: unknown;
  try {
    data = text === '' ? undefined : JSON.parse(text);
  } catch {
    data = text;
  }
  if (!r.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(`${r.status} ${err?.code ?? ''} ${err?.message ?? text}`.replace(/\s+/g, ' ').trim());
  }
  return data;
}

function print(o: ApiOpts, data: unknown, table?: (d: unknown) => string): void {
  process.stdout.write(o.json || !table ? `${JSON.stringify(data, null, 2)}\n` : `${table(data)}\n`);
}

function rows(list: Record<string, unknown>[], cols: string[]): string {
  if (list.length === 0) return '(none)';
  const cells = list.map((r) => cols.map((c) => String(r[c] ?? '').replace(/\s+/g, ' ')));
  const widths = cols.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((row) => row[i]!.length))));
  const line = (vals: string[]): string => vals.map((v, i) => (v.length > widths[i]! ? `${v.slice(0, widths[i]! - 1)}…` : v.padEnd(widths[i]!))).join('  ');
  return [line(cols.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

function withServer<T extends Command>(c: T): T {
  return c.option('--server <url>', 'gateway HTTP address (default $GATEHOUSE_SERVER or http://127.0.0.1:8080)').option('--json', 'print JSON') as T;
}

export function registerApiCommands(program: Command): void {
  const reviews = program.command('reviews').description('commands held for approval ($GATEHOUSE_TOKEN: an approver)');
  withServer(reviews.command('list').description('list reviews').option('--state <state>', 'pending | approved | denied | consumed', 'pending')).action(async (o: ApiOpts & { state: string }) => {
    print(o, await api(o, 'GET', `/api/reviews?state=${encodeURIComponent(o.state)}`), (d) => rows(d as Record<string, unknown>[], ['id', 'subject', 'connection', 'rule', 'created_at', 'command']));
  });
  withServer(reviews.command('show <id>').description('show one review')).action(async (id: string, o: ApiOpts) => print(o, await api(o, 'GET', `/api/reviews/${encodeURIComponent(id)}`)));
  for (const verb of ['approve', 'deny'] as const) {
    withServer(reviews.command(`${verb} <id>`).description(`${verb} a held command`).option('--reason <text>', 'why')).action(async (id: string, o: ApiOpts & { reason?: string }) => {
      const r = (await api(o, 'POST', `/api/reviews/${encodeURIComponent(id)}/${verb}`, o.reason ? { reason: o.reason } : {})) as Record<string, unknown>;
      print(o, r, () => `review ${id}: ${String(r.state)}`);
    });
  }

  const grants = program.command('grants').description('just-in-time access windows');
  withServer(
    grants
      .command('request')
      .description('request access to a connection ($GATEHOUSE_TOKEN: the agent)')
      .requiredOption('--connection <name>', 'connection')
      .requiredOption('--duration <d>', 'e.g. 30m, 2h')
      .requiredOption('--reason <text>', 'why'),
  ).action(async (o: ApiOpts & { connection: string; duration: string; reason: string }) => {
    const g = (await api(o, 'POST', '/api/grants', { connection: o.connection, duration: o.duration, reason: o.reason })) as Record<string, unknown>;
    print(o, g, () => `grant ${String(g.id)} requested (${String(g.state)})`);
  });
  withServer(grants.command('list').description('list grants').option('--state <state>', 'pending | approved | denied | revoked | expired')).action(async (o: ApiOpts & { state?: string }) => {
    print(o, await api(o, 'GET', `/api/grants${o.state ? `?state=${encodeURIComponent(o.state)}` : ''}`), (d) => rows(d as Record<string, unknown>[], ['id', 'state', 'subject', 'connection', 'duration_seconds', 'ends_at', 'reason']));
  });
  for (const verb of ['approve', 'deny'] as const) {
    withServer(grants.command(`${verb} <id>`).description(`${verb} a grant request`).option('--reason <text>', 'why')).action(async (id: string, o: ApiOpts & { reason?: string }) => {
      const g = (await api(o, 'POST', `/api/grants/${encodeURIComponent(id)}/${verb}`, o.reason ? { reason: o.reason } : {})) as Record<string, unknown>;
      print(o, g, () => `grant ${id}: ${String(g.state)}${g.ends_at ? ` until ${String(g.ends_at)}` : ''}`);
    });
  }
  withServer(grants.command('revoke <id>').description('end a grant now; its sessions end')).action(async (id: string, o: ApiOpts) => {
    const g = (await api(o, 'DELETE', `/api/grants/${encodeURIComponent(id)}`)) as Record<string, unknown>;
    print(o, g, () => `grant ${id}: ${String(g.state)}`);
  });

  const sessions = program.command('sessions').description('live and past sessions ($GATEHOUSE_TOKEN: an auditor or admin)');
  withServer(
    sessions
      .command('list')
      .description('list sessions')
      .option('--live', 'only live sessions')
      .option('--subject <sub>', 'filter')
      .option('--connection <name>', 'filter')
      .option('--protocol <p>', 'filter'),
  ).action(async (o: ApiOpts & { live?: boolean; subject?: string; connection?: string; protocol?: string }) => {
    const q = new URLSearchParams();
    if (o.live) q.set('live', 'true');
    if (o.subject) q.set('subject', o.subject);
    if (o.connection) q.set('connection', o.connection);
    if (o.protocol) q.set('protocol', o.protocol);
    print(o, await api(o, 'GET', `/api/sessions?${q}`), (d) => rows(d as Record<string, unknown>[], ['id', 'protocol', 'connection', 'subject', 'started_at', 'ended_at', 'end_reason']));
  });
  withServer(sessions.command('kill <id>').description('end a live session now').option('--reason <text>', 'why')).action(async (id: string, o: ApiOpts & { reason?: string }) => {
    await api(o, 'POST', `/api/sessions/${encodeURIComponent(id)}/kill`, o.reason ? { reason: o.reason } : {});
    print(o, { id, killed: true }, () => `session ${id}: kill sent`);
  });
  withServer(
    sessions
      .command('replay <id>')
      .description('replay a recorded session: SQL as a timeline; SSH and kubectl exec as terminal playback')
      .option('--speed <x>', 'playback speed for terminal sessions', '1')
      .option('--max-wait <s>', 'cap idle pauses at this many seconds', '2'),
  ).action(async (id: string, o: ApiOpts & { speed: string; maxWait: string }) => {
    const s = (await api(o, 'GET', `/api/sessions/${encodeURIComponent(id)}`)) as Record<string, unknown>;
    const events = (await api(o, 'GET', `/api/sessions/${encodeURIComponent(id)}/recording?limit=10000`)) as { seq: number; t: number; type: string; data: Record<string, unknown> }[];
    if (o.json) return print(o, { session: s, events });
    const terminal = events.some((e) => e.type === 'output' || e.type === 'o');
    if (terminal) await replayAsciicast(events, { speed: Number(o.speed) || 1, maxWaitSec: Number(o.maxWait) || 2, out: process.stdout });
    else process.stdout.write(replaySql(s, events));
  });

  const revocations = program.command('revocations').description('refuse a subject, client id or token id from now on ($GATEHOUSE_TOKEN: an admin)');
  withServer(revocations.command('list').description('list revocations')).action(async (o: ApiOpts) => {
    print(o, await api(o, 'GET', '/api/revocations'), (d) => rows(d as Record<string, unknown>[], ['id', 'kind', 'value', 'created_by', 'created_at', 'reason']));
  });
  withServer(
    revocations
      .command('add')
      .description('revoke; live sessions end within a second')
      .option('--subject <sub>', 'a subject')
      .option('--client-id <id>', 'a client id')
      .option('--token-id <jti>', 'a token id')
      .option('--reason <text>', 'why'),
  ).action(async (o: ApiOpts & { subject?: string; clientId?: string; tokenId?: string; reason?: string }) => {
    const body = { ...(o.subject ? { subject: o.subject } : {}), ...(o.clientId ? { client_id: o.clientId } : {}), ...(o.tokenId ? { token_id: o.tokenId } : {}), ...(o.reason ? { reason: o.reason } : {}) };
    const r = (await api(o, 'POST', '/api/revocations', body)) as Record<string, unknown>;
    print(o, r, () => `revocation ${String(r.id)}: ${String(r.kind)} ${String(r.value)}`);
  });
  withServer(revocations.command('remove <id>').description('lift a revocation')).action(async (id: string, o: ApiOpts) => {
    await api(o, 'DELETE', `/api/revocations/${encodeURIComponent(id)}`);
    print(o, { removed: id }, () => `revocation ${id} removed`);
  });
}
