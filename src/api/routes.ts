/**
 * The JSON API for approvers, auditors, admins and agents (bearer tokens; roles from the config's
 * role map). Errors are `{ error: { code, message } }`.
 *
 * | route | roles |
 * |---|---|
 * | `GET /api/reviews?state=pending` | approver, auditor |
 * | `GET /api/reviews/:id` | approver, auditor, or the requesting agent |
 * | `POST /api/reviews/:id/approve`, `/deny` `{reason}` | approver |
 * | `POST /api/grants` `{connection, duration, reason}` | any authenticated caller, for itself |
 * | `GET /api/grants?state=` | approver, auditor (agents see their own) |
 * | `POST /api/grants/:id/approve`, `/deny` `{reason}` | approver |
 * | `DELETE /api/grants/:id` | approver, admin, or the grant's own subject |
 * | `GET /api/sessions?live=true&subject=&connection=&protocol=` | auditor |
 * | `GET /api/sessions/:id`, `/recording`, `/asciicast` (terminal sessions, asciicast v2) | auditor |
 * | `POST /api/sessions/:id/kill` `{reason}` | admin |
 * | `GET /api/revocations`, `POST /api/revocations` `{subject|client_id|token_id, reason}`, `DELETE /api/revocations/:id` | admin |
 * | `GET /api/audit?after=&limit=&type=&session=`, `GET /api/audit/verify` | auditor |
 * | `GET /api/events` (server-sent events: review, grant, session, revocation changes) | approver, auditor |
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseDuration } from '../config/index.js';
import { verifyAudit } from '../core/audit/verify.js';
import type { GrantService } from '../core/approvals/grants.js';
import type { ReviewService } from '../core/approvals/reviews.js';
import { GatehouseError } from '../core/errors.js';
import { isTerminalRecording, toAsciicast } from '../core/recording/asciicast.js';
import type { Identity } from '../core/identity/types.js';
import type { SessionManager } from '../core/sessions/manager.js';
import type { GrantRecord, ReviewRecord, SessionRecord, Store, StoreTopic } from '../store/store.js';
import { requireAuth, type BearerVerifier, type Role, type RoleMap } from './auth.js';

export interface ApiOptions {
  store: Store;
  verifier: BearerVerifier;
  roles: RoleMap;
  reviews: ReviewService;
  grants: GrantService;
  sessions: SessionManager;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export function reviewJson(r: ReviewRecord): Record<string, unknown> {
  return {
    id: r.id,
    state: r.state,
    subject: r.subject,
    client_id: r.clientId ?? null,
    connection: r.connection,
    protocol: r.protocol,
    command: r.command,
    rule: r.rule,
    rule_reason: r.ruleReason ?? null,
    justification: r.justification ?? null,
    approvers: { groups: r.approverGroups, subjects: r.approverSubjects, min_approvals: r.minApprovals },
    approvals: r.approvals.map((a) => ({ by: a.by, at: iso(a.at), reason: a.reason ?? null })),
    decided_by: r.decidedBy ?? null,
    decision_reason: r.decisionReason ?? null,
    session_id: r.sessionId ?? null,
    created_at: iso(r.createdAt),
    decided_at: iso(r.decidedAt),
    valid_until: iso(r.validUntil),
  };
}

export function grantJson(g: GrantRecord): Record<string, unknown> {
  return {
    id: g.id,
    state: g.state,
    subject: g.subject,
    client_id: g.clientId ?? null,
    connection: g.connection,
    reason: g.reason,
    duration_seconds: Math.round(g.durationMs / 1000),
    requested_at: iso(g.requestedAt),
    decided_by: g.decidedBy ?? null,
    decision_reason: g.decisionReason ?? null,
    starts_at: iso(g.startsAt),
    ends_at: iso(g.endsAt),
    revoked_by: g.revokedBy ?? null,
  };
}

export function sessionJson(s: SessionRecord, live: boolean): Record<string, unknown> {
  return {
    id: s.id,
    protocol: s.protocol,
    connection: s.connection,
    subject: s.subject,
    issuer: s.issuer,
    client_id: s.clientId ?? null,
    groups: s.groups,
    remote_addr: s.remoteAddr ?? null,
    instance: s.instance ?? null,
    grant_id: s.grantId ?? null,
    started_at: iso(s.startedAt),
    ended_at: iso(s.endedAt),
    end_reason: s.endReason ?? null,
    live,
  };
}

const decisionBody = z.object({ reason: z.string().max(2000).optional() }).passthrough();
const grantBody = z.object({ connection: z.string().min(1), duration: z.union([z.string(), z.number()]), reason: z.string().min(1).max(2000) });
const revocationBody = z
  .object({ subject: z.string().min(1).optional(), client_id: z.string().min(1).optional(), token_id: z.string().min(1).optional(), reason: z.string().max(2000).optional() })
  .refine((b) => [b.subject, b.client_id, b.token_id].filter((v) => v !== undefined).length === 1, { message: 'give exactly one of subject, client_id, token_id' });
const killBody = z.object({ reason: z.string().max(2000).optional() }).passthrough();

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new GatehouseError('ERR_BAD_REQUEST', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

function limitOf(q: Record<string, unknown>, max = 1000): number {
  const n = Number(q.limit ?? 100);
  if (!Number.isInteger(n) || n < 1) throw new GatehouseError('ERR_BAD_REQUEST', 'limit must be a positive integer');
  return Math.min(n, max);
}

function me(req: FastifyRequest): Identity {
  if (!req.identity) throw new GatehouseError('ERR_UNAUTHENTICATED', 'a bearer token is required');
  return req.identity;
}

function has(req: FastifyRequest, ...roles: Role[]): boolean {
  return roles.some((r) => req.roles?.has(r));
}

export function registerApi(app: FastifyInstance, o: ApiOptions): void {
  const auth = (roles?: Role[]) => requireAuth(o.verifier, o.roles, roles);
  const liveIds = (): Set<string> => new Set(o.sessions.live().map((s) => s.id));

  // --- reviews --------------------------------------------------------------------------------
  app.get('/api/reviews', { preHandler: auth(['approver', 'auditor']) }, async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const state = q.state as ReviewRecord['state'] | undefined;
    if (state !== undefined && !['pending', 'approved', 'denied', 'expired', 'consumed'].includes(state)) throw new GatehouseError('ERR_BAD_REQUEST', `unknown state ${state}`);
    const list = await o.store.listReviews({ ...(state ? { state } : {}), ...(q.subject ? { subject: q.subject } : {}), ...(q.connection ? { connection: q.connection } : {}), limit: limitOf(q) });
    return list.map(reviewJson);
  });
  app.get('/api/reviews/:id', { preHandler: auth() }, async (req) => {
    const r = await o.store.getReview((req.params as { id: string }).id);
    if (!r || (!has(req, 'approver', 'auditor') && r.subject !== me(req).subject)) throw new GatehouseError('ERR_NOT_FOUND', 'no such review');
    return reviewJson(r);
  });
  app.post('/api/reviews/:id/approve', { preHandler: auth(['approver']) }, async (req) => {
    const b = parse(decisionBody, req.body);
    return reviewJson(await o.reviews.approve((req.params as { id: string }).id, me(req), b.reason));
  });
  app.post('/api/reviews/:id/deny', { preHandler: auth(['approver']) }, async (req) => {
    const b = parse(decisionBody, req.body);
    return reviewJson(await o.reviews.deny((req.params as { id: string }).id, me(req), b.reason));
  });

  // --- grants ---------------------------------------------------------------------------------
  app.post('/api/grants', { preHandler: auth() }, async (req, reply) => {
    const b = parse(grantBody, req.body);
    const ms = typeof b.duration === 'number' ? b.duration * 1000 : parseDuration(b.duration);
    if (ms === undefined) throw new GatehouseError('ERR_BAD_REQUEST', 'duration: use 30m, 2h or a number of seconds');
    const g = await o.grants.request(me(req), b.connection, ms, b.reason);
    return reply.status(201).send(grantJson(g));
  });
  app.get('/api/grants', { preHandler: auth() }, async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const state = q.state as GrantRecord['state'] | undefined;
    const subject = has(req, 'approver', 'auditor') ? q.subject : me(req).subject;
    const list = await o.store.listGrants({ ...(state ? { state } : {}), ...(subject ? { subject } : {}), ...(q.connection ? { connection: q.connection } : {}), limit: limitOf(q) });
    return list.map(grantJson);
  });
  app.get('/api/grants/:id', { preHandler: auth() }, async (req) => {
    const g = await o.store.getGrant((req.params as { id: string }).id);
    if (!g || (!has(req, 'approver', 'auditor') && g.subject !== me(req).subject)) throw new GatehouseError('ERR_NOT_FOUND', 'no such grant');
    return grantJson(g);
  });
  app.post('/api/grants/:id/approve', { preHandler: auth(['approver']) }, async (req) => grantJson(await o.grants.approve((req.params as { id: string }).id, me(req), parse(decisionBody, req.body).reason)));
  app.post('/api/grants/:id/deny', { preHandler: auth(['approver']) }, async (req) => grantJson(await o.grants.deny((req.params as { id: string }).id, me(req), parse(decisionBody, req.body).reason)));
  app.delete('/api/grants/:id', { preHandler: auth() }, async (req) => {
    const id = (req.params as { id: string }).id;
    const g = await o.store.getGrant(id);
    if (!g || (!has(req, 'approver', 'admin') && g.subject !== me(req).subject)) throw new GatehouseError('ERR_NOT_FOUND', 'no such grant');
    return grantJson(await o.grants.revoke(id, me(req), (req.query as { reason?: string }).reason));
  });

  // --- sessions -------------------------------------------------------------------------------
  app.get('/api/sessions', { preHandler: auth(['auditor']) }, async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const live = q.live === 'true' ? true : q.live === 'false' ? false : undefined;
    const list = await o.store.listSessions({
      ...(live === undefined ? {} : { live }),
      ...(q.subject ? { subject: q.subject } : {}),
      ...(q.connection ? { connection: q.connection } : {}),
      ...(q.protocol ? { protocol: q.protocol } : {}),
      ...(q.before ? { before: Number(q.before) } : {}),
      limit: limitOf(q),
    });
    const here = liveIds();
    return list.map((s) => sessionJson(s, s.endedAt === undefined || here.has(s.id)));
  });
  app.get('/api/sessions/:id', { preHandler: auth(['auditor']) }, async (req) => {
    const s = await o.store.getSession((req.params as { id: string }).id);
    if (!s) throw new GatehouseError('ERR_NOT_FOUND', 'no such session');
    return sessionJson(s, s.endedAt === undefined);
  });
  app.get('/api/sessions/:id/recording', { preHandler: auth(['auditor']) }, async (req) => {
    const id = (req.params as { id: string }).id;
    const q = req.query as Record<string, string | undefined>;
    if (!(await o.store.getSession(id))) throw new GatehouseError('ERR_NOT_FOUND', 'no such session');
    const events = await o.store.readRecording(id, q.after ? Number(q.after) : 0, limitOf(q, 10_000));
    return events.map((e) => ({ seq: e.seq, t: e.t, type: e.type, data: e.data }));
  });
  app.get('/api/sessions/:id/asciicast', { preHandler: auth(['auditor']) }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const s = await o.store.getSession(id);
    if (!s) throw new GatehouseError('ERR_NOT_FOUND', 'no such session');
    const events = await o.store.readRecording(id, 0, 1_000_000);
    if (!isTerminalRecording(events)) throw new GatehouseError('ERR_NOT_FOUND', 'this session has no terminal recording');
    return reply.type('application/x-asciicast').send(toAsciicast(s, events));
  });
  app.post('/api/sessions/:id/kill', { preHandler: auth(['admin']) }, async (req) => {
    const id = (req.params as { id: string }).id;
    const b = parse(killBody, req.body);
    const s = await o.store.getSession(id);
    if (!s) throw new GatehouseError('ERR_NOT_FOUND', 'no such session');
    if (s.endedAt !== undefined) throw new GatehouseError('ERR_CONFLICT', `session ${id} has already ended`);
    const reason = `killed by ${me(req).subject}${b.reason ? `: ${b.reason}` : ''}`;
    await o.store.events.publish('session.kill', { id, reason });
    return { id, killed: true };
  });

  // --- revocations ----------------------------------------------------------------------------
  app.get('/api/revocations', { preHandler: auth(['admin']) }, async () =>
    (await o.store.listRevocations()).map((r) => ({ id: r.id, kind: r.kind, value: r.value, reason: r.reason ?? null, created_by: r.createdBy, created_at: iso(r.createdAt), expires_at: iso(r.expiresAt) })),
  );
  app.post('/api/revocations', { preHandler: auth(['admin']) }, async (req, reply) => {
    const b = parse(revocationBody, req.body);
    const [kind, value] = b.subject !== undefined ? (['subject', b.subject] as const) : b.client_id !== undefined ? (['client_id', b.client_id] as const) : (['token_id', b.token_id!] as const);
    const r = await o.grants.revokeIdentity(kind, value, me(req), b.reason);
    return reply.status(201).send({ id: r.id, kind: r.kind, value: r.value, reason: r.reason ?? null, created_at: iso(r.createdAt) });
  });
  app.delete('/api/revocations/:id', { preHandler: auth(['admin']) }, async (req) => {
    await o.grants.removeRevocation((req.params as { id: string }).id, me(req));
    return { removed: true };
  });

  // --- audit ----------------------------------------------------------------------------------
  app.get('/api/audit', { preHandler: auth(['auditor']) }, async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const events = await o.store.listAudit({
      ...(q.after ? { afterSeq: Number(q.after) } : {}),
      ...(q.type ? { type: q.type } : {}),
      ...(q.session ? { sessionId: q.session } : {}),
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.connection ? { connection: q.connection } : {}),
      limit: limitOf(q, 10_000),
    });
    return events.map((e) => ({ seq: e.seq, ts: iso(e.ts), type: e.type, session_id: e.sessionId ?? null, actor: e.actor ?? null, connection: e.connection ?? null, data: e.data, prev_hash: e.prevHash, hash: e.hash }));
  });
  app.get('/api/audit/verify', { preHandler: auth(['auditor']) }, async () => {
    const r = await verifyAudit(o.store);
    return { ok: r.ok, events: r.events, checkpoints: r.checkpoints, first_broken: r.firstBroken ?? null };
  });

  // --- live events (console) ------------------------------------------------------------------
  app.get('/api/events', { preHandler: auth(['approver', 'auditor']) }, async (req: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': connected\n\n');
    const send = (topic: string, payload: Record<string, unknown>): void => {
      res.write(`event: ${topic}\ndata: ${JSON.stringify(payload)}\n\n`);
    };
    const topics: StoreTopic[] = ['review', 'grant', 'revocation', 'session.kill'];
    const offs = topics.map((t) => o.store.events.subscribe(t, (p) => send(t, p)));
    const offSessions = o.sessions.onChange((p) => send('session', p));
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    const expiry = setTimeout(() => res.end(), Math.max(0, me(req).expiresAt - Date.now()));
    req.raw.on('close', () => {
      clearInterval(ping);
      clearTimeout(expiry);
      for (const off of offs) off();
      offSessions();
    });
  });
}
