/**
 * The Kubernetes engine: Gatehouse as a Kubernetes API server toward the agent's own `kubectl`.
 *
 * The agent's kubeconfig names `https://<gateway>/k8s/<connection>` as its cluster `server` and its
 * OIDC access token as `token`. For every request Gatehouse
 *
 * 1. takes the bearer token (kubectl sends it only over https: the listener needs `tls:`), finds or
 *    opens the Gatehouse session of that token on that connection;
 * 2. derives the request attributes exactly as the API server does (`RequestInfoFactory`, see
 *    ./request-info.ts) from the request target with `/k8s/<connection>` removed, and asks the core
 *    for a decision; `review` holds the HTTP request until an approver decides (kubectl just waits);
 * 3. answers a refusal with a `Status` object (403 `Forbidden` with the rule's reason), as the
 *    Kubernetes API conventions define it
 *    (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md),
 *    so kubectl prints `Error from server (Forbidden): …`;
 * 4. forwards what is allowed to the API server, target bytes unchanged, with the connection's
 *    credentials (bearer token or client certificate, CA pinned) and, if configured, impersonation
 *    headers naming the agent. The agent's own `Authorization` never goes upstream and an agent's
 *    `Impersonate-*` header is refused;
 * 5. streams the answer back: unchanged when nothing needs masking, else masked (JSON objects,
 *    lists, Tables, watch events one by one, logs line by line; protobuf is asked away and refused
 *    if it comes anyway) — see ./response-masking.ts;
 * 6. records each request (attributes, decision, HTTP status, duration) in the session and the
 *    audit log.
 *
 * Upgrades are decided like any request (held for review before the upgrade is answered):
 * - `exec` and `attach` over WebSocket (RFC 6455, https://www.rfc-editor.org/rfc/rfc6455;
 *   subprotocols `v5.channel.k8s.io` … `channel.k8s.io`) are proxied frame by frame, so the
 *   terminal is recorded (asciicast v2) and its output masked (./exec.ts);
 * - `exec` and `attach` over SPDY/3.1 (kubectl before 1.30, or its fallback) are relayed as bytes,
 *   unchanged, while the SPDY codec observes both directions to record the terminal
 *   (./spdy-exec.ts, ./spdy.ts). SPDY frames cannot be rewritten in place, so while the session
 *   masks they are refused with a 400 Status that says why;
 * - `portforward` (WebSocket or SPDY) and other upgrades are relayed as bytes once allowed.
 * kubectl ≥ 1.30 tries WebSocket first and falls back to SPDY when the upgrade fails: a fallback
 * after Gatehouse refused the WebSocket attempt gets that same refusal (so kubectl prints the real
 * reason, and no second review is held); one after the API server refused it is proxied, with the
 * WebSocket attempt's approval when a review approved it.
 */
import { createServer as createHttpServer, request as httpRequest, STATUS_CODES, type IncomingMessage, type ServerResponse, type ClientRequest, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex, Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { createGunzip, createInflate } from 'node:zlib';
import { WebSocket, WebSocketServer } from 'ws';
import type { K8sCommand } from '../../core/command.js';
import { GatehouseError, toGatehouseError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { CommandDecision, RuleRef } from '../../core/policy/types.js';
import type { Connection, SessionContext } from '../../core/sessions/types.js';
import { bind } from '../listener.js';
import type { Engine, EngineContext, EngineListener } from '../types.js';
import { CHANNEL_PROTOCOLS, ExecProxy } from './exec.js';
import { SpdyExecProxy } from './spdy-exec.js';
import { forwardHeaders, impersonationFor, impersonationHeaders, parseMediaType, responseHeaders, type HeaderMap } from './headers.js';
import { isDiscoveryRequest, isLongRunning, parseRequestInfo, toK8sCommand, type RequestInfo } from './request-info.js';
import { TextMaskTransform, WatchMaskTransform, kindHint, maskKubeJson } from './response-masking.js';
import { KubeSessions, type Lease } from './sessions.js';
import { badRequestStatus, internalErrorStatus, notFoundStatus, serviceUnavailableStatus, statusFromError, statusResponse, unauthorizedStatus, watchErrorEvent, type KubeStatus } from './status.js';
import { kubeUpstream, type KubeUpstream } from './upstream.js';

/** The rule that lets discovery through when no policy says anything about it. */
export const DISCOVERY_RULE: Readonly<RuleRef> = Object.freeze({ policy: '(builtin)', index: -1, effect: 'allow', reason: 'API discovery' });

const ROUTE = /^\/k8s\/([A-Za-z0-9][A-Za-z0-9._-]*)(?=[/?]|$)/;
/** Largest non-streaming answer Gatehouse buffers to mask; larger ones are withheld. */
const MAX_MASKED_BODY = 64 * 1024 * 1024;
/** How long a WebSocket attempt's refusal (or review approval) is kept for kubectl's SPDY fallback. */
const FALLBACK_MS = 30_000;
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;
const BEARER_PROTOCOL = 'base64url.bearer.authorization.k8s.io.';
const REASON_HEADER = 'x-gatehouse-reason';
/** Abort reason when the agent disconnects (recorded with status 499, as nginx logs it). */
const CLIENT_GONE = 'client went away';

interface Route {
  conn: Connection;
  /** The request target for the API server, without `/k8s/<connection>`. */
  rest: string;
}

/** A finished answer (a refusal), ready to send on a response or a raw socket. */
interface Answer {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

interface Admitted {
  route: Route;
  lease: Lease;
  info: RequestInfo;
  cmd: K8sCommand;
}

class Refusal extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
}

function answerOf(status: KubeStatus, warnings: readonly string[] = []): Answer {
  const r = statusResponse(status);
  const headers: Record<string, string | string[]> = { ...r.headers };
  if (warnings.length > 0) headers.warning = warnings.map((w) => `299 - ${JSON.stringify(w.replace(/[\r\n"\\]/g, ' '))}`);
  return { statusCode: r.statusCode, headers, body: r.body };
}

function sendAnswer(res: ServerResponse, a: Answer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(a.statusCode, a.headers);
  res.end(a.body);
}

function writeRaw(socket: Duplex, a: Answer): void {
  if (!socket.writable) return void socket.destroy();
  const lines = [`HTTP/1.1 ${a.statusCode} ${STATUS_CODES[a.statusCode] ?? ''}`];
  for (const [k, v] of Object.entries(a.headers)) for (const x of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${x}`);
  if (a.headers['content-length'] === undefined) lines.push(`content-length: ${a.body.length}`);
  lines.push('connection: close', '', '');
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), a.body]));
}

function bearerOf(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m?.[1];
  }
  // Browsers cannot set headers on a WebSocket: the API server also takes the token as a subprotocol.
  for (const p of String(req.headers['sec-websocket-protocol'] ?? '').split(',')) {
    const t = p.trim();
    if (t.startsWith(BEARER_PROTOCOL)) {
      try {
        return Buffer.from(t.slice(BEARER_PROTOCOL.length), 'base64url').toString('utf8') || undefined;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function target(info: RequestInfo): { group?: string; resource?: string; name?: string } {
  if (!info.isResourceRequest) return {};
  return { group: info.apiGroup, resource: info.resource, ...(info.name ? { name: info.name } : {}) };
}

function ruleName(d: CommandDecision): string {
  return d.rule === 'default' ? 'default' : `${d.rule.policy}#${d.rule.index}`;
}

export class KubernetesEngine implements Engine {
  readonly protocol = 'kubernetes' as const;
  readonly #ctx: EngineContext;
  readonly #log: Logger;
  readonly #sessions: KubeSessions;
  readonly #upstreams = new Map<string, KubeUpstream>();
  readonly #sockets = new Set<Duplex>();
  readonly #closers = new Set<() => void>();
  readonly #chosen = new WeakMap<IncomingMessage, string>();
  /** Gatehouse's refusal of a WebSocket upgrade, for kubectl's SPDY fallback (by session and target resource). */
  readonly #fallback = new Map<string, { answer: Answer; decision?: CommandDecision; at: number }>();
  /**
   * The review approval of a WebSocket upgrade the API server then refused, for kubectl's SPDY
   * retry of that very request (by session and exact request target: the retry has the same URL).
   */
  readonly #approved = new Map<string, { decision: CommandDecision; at: number }>();
  readonly #wss: WebSocketServer;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
    this.#log = ctx.logger.child({ component: 'kubernetes' });
    this.#sessions = new KubeSessions(ctx);
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
      handleProtocols: (_offered, req) => this.#chosen.get(req) ?? false,
    });
  }

  async listen(host: string, port: number): Promise<EngineListener> {
    const tls = this.#ctx.tls;
    if (!tls) {
      throw new GatehouseError('ERR_CONFIG', 'listen.kubernetes needs `tls:` (a certificate and key) in gatehouse.yaml: kubectl sends bearer tokens only over https');
    }
    // Fail at start, not at the first request, on a connection whose files cannot be read.
    for (const c of this.#ctx.config.connections) {
      if (c.type !== 'kubernetes') continue;
      const conn = this.#ctx.connection(c.name);
      if (!conn) continue;
      const up = kubeUpstream(conn);
      this.#upstreams.set(conn.name, up);
      if (!up.authorization && !up.tls.cert) this.#log.warn({ connection: conn.name }, 'kubernetes connection without credentials (token or tls.cert/key): requests reach the API server anonymously');
    }
    const http = createHttpServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, (req, res) => {
      void this.#onRequest(req, res);
    });
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#onUpgrade(req, socket, head);
    });
    http.on('clientError', (_e, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
    const server: NetServer = createNetServer({ noDelay: true }, (raw: Socket) => {
      this.#sockets.add(raw);
      raw.once('close', () => this.#sockets.delete(raw));
      raw.on('error', () => undefined);
      const socket = new TLSSocket(raw, { isServer: true, secureContext: tls, ALPNProtocols: ['http/1.1'] });
      socket.on('error', () => socket.destroy());
      http.emit('connection', socket);
    });
    const address = await bind(server, host, port, this.#log, 'kubernetes');
    return {
      protocol: 'kubernetes',
      address,
      close: async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of [...this.#closers]) c();
        await this.#sessions.closeAll('gateway shutting down');
        for (const s of this.#sockets) s.destroy();
        http.close();
        this.#wss.close();
        for (const u of this.#upstreams.values()) u.agent.destroy();
        await closed;
      },
    };
  }

  // --- routing, sessions, decisions -------------------------------------------------------------

  #route(url: string): Route {
    const m = ROUTE.exec(url);
    if (!m) throw new Refusal({ ...notFoundStatus({}), message: 'the server could not find the requested resource: Gatehouse serves Kubernetes connections at /k8s/<connection>' });
    const name = m[1] ?? '';
    const conn = this.#ctx.connection(name);
    if (conn === undefined || conn.type !== 'kubernetes') throw new Refusal({ ...notFoundStatus({}), message: `connection "${name}" does not exist (the server URL is https://<gateway>/k8s/<connection>)` });
    let rest = url.slice(m[0].length);
    if (rest === '' || rest.startsWith('?')) rest = `/${rest}`;
    return { conn, rest };
  }

  #upstream(conn: Connection): KubeUpstream {
    let u = this.#upstreams.get(conn.name);
    if (!u) this.#upstreams.set(conn.name, (u = kubeUpstream(conn)));
    return u;
  }

  /** The token, the session and the request attributes, or a refusal. */
  async #admit(req: IncomingMessage): Promise<Admitted> {
    const route = this.#route(req.url ?? '/');
    const token = bearerOf(req);
    if (token === undefined) {
      this.#ctx.metrics.authFailures.inc({ protocol: 'kubernetes', code: 'ERR_UNAUTHENTICATED' });
      throw new Refusal(unauthorizedStatus('Unauthorized: Gatehouse needs an OIDC access token (kubeconfig user `token:`)'));
    }
    let lease: Lease;
    try {
      lease = await this.#sessions.acquire(token, route.conn, req.socket.remoteAddress);
    } catch (e) {
      const err = toGatehouseError(e);
      if (err.code === 'ERR_INTERNAL') this.#log.error({ err: e }, 'kubernetes session could not be opened');
      else this.#log.info({ err: err.toJSON(), connection: route.conn.name }, 'kubernetes request refused at login');
      this.#ctx.metrics.authFailures.inc({ protocol: 'kubernetes', code: err.code });
      throw new Refusal(statusFromError(err));
    }
    try {
      const info = parseRequestInfo(req.method ?? 'GET', route.rest);
      return { route, lease, info, cmd: toK8sCommand(info) };
    } catch (e) {
      const err = toGatehouseError(e, 'ERR_BAD_REQUEST');
      lease.session.record({ type: 'error', code: err.code, message: `${req.method ?? 'GET'} ${route.rest.split('?')[0] ?? ''}: ${err.message}` });
      lease.release();
      throw new Refusal(statusFromError(err));
    }
  }

  /** The core's decision, with the review hold. Impersonation by the agent is refused here. */
  async #decide(req: IncomingMessage, s: SessionContext, info: RequestInfo, cmd: K8sCommand, signal: AbortSignal, review: boolean): Promise<{ d: CommandDecision; warnings: string[] }> {
    const warnings: string[] = [];
    const imp = impersonationHeaders(req.rawHeaders);
    if (imp.length > 0) {
      const d: CommandDecision = { effect: 'deny', rule: 'default', reason: `impersonation (${[...new Set(imp.map((h) => h.toLowerCase()))].sort().join(', ')}) is not allowed through Gatehouse: requests act as the agent`, code: 'ERR_ACCESS_DENIED' };
      this.#ctx.metrics.commandsTotal.inc({ protocol: 'kubernetes', effect: 'deny' });
      return { d, warnings };
    }
    let d = await s.authorize(cmd);
    if (d.effect === 'deny' && d.rule === 'default' && d.code === undefined && isDiscoveryRequest(info)) d = { effect: 'allow', rule: DISCOVERY_RULE, masks: [] };
    if (d.effect === 'review') {
      if (!review) {
        d = { effect: 'deny', rule: d.rule, reason: `${d.reason}: this request needs approval`, code: 'ERR_REVIEW_REQUIRED' };
      } else {
        const reason = req.headers[REASON_HEADER];
        s.justification = typeof reason === 'string' && reason.trim() !== '' ? reason.trim().slice(0, 2000) : undefined;
        const notify = (msg: string): void => this.#log.info({ session: s.id, command: cmd }, `review: ${msg}`);
        try {
          d = await s.awaitReview(cmd, d, notify, signal);
        } catch (e) {
          const err = toGatehouseError(e);
          d = { effect: 'deny', rule: d.rule, reason: err.message, code: err.code };
        }
        if (d.effect === 'allow' && d.reviewId) warnings.push(`gatehouse: approved in review ${d.reviewId}`);
      }
    }
    this.#ctx.metrics.commandsTotal.inc({ protocol: 'kubernetes', effect: d.effect });
    return { d, warnings };
  }

  /** The Status for a decision that is not `allow`. */
  #refusal(d: CommandDecision, info: RequestInfo): KubeStatus {
    const reason = d.effect === 'deny' ? d.reason : 'this request was not approved';
    const message = d.rule === 'default' ? `${reason} (gatehouse)` : `${reason} (gatehouse: rule ${ruleName(d)})`;
    const code = d.effect === 'deny' ? (d.code ?? 'ERR_ACCESS_DENIED') : 'ERR_REVIEW_DENIED';
    return statusFromError({ code, message }, target(info));
  }

  #result(s: SessionContext, status: number, t0: number, rows?: number): void {
    const ms = performance.now() - t0;
    s.record({ type: 'result', tag: `HTTP ${status}`, durationMs: Math.round(ms * 1000) / 1000, ...(rows === undefined ? {} : { rows }) });
    this.#ctx.metrics.commandSeconds.observe({ protocol: 'kubernetes' }, ms / 1000);
  }

  #credentials(up: KubeUpstream, s: SessionContext, headers: HeaderMap): HeaderMap {
    if (up.authorization) headers.authorization = up.authorization;
    if (up.impersonate) Object.assign(headers, impersonationFor(up.impersonate, s.identity));
    return headers;
  }

  // --- plain requests ---------------------------------------------------------------------------

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    res.on('error', () => undefined);
    let admitted: Admitted;
    try {
      admitted = await this.#admit(req);
    } catch (e) {
      req.resume();
      return sendAnswer(res, answerOf(e instanceof Refusal ? e.status : this.#internal(e)));
    }
    const { route, lease, info, cmd } = admitted;
    const s = lease.session;
    res.once('close', () => lease.release());
    const abort = new AbortController();
    const onEnd = (): void => abort.abort(lease.signal.reason);
    lease.signal.addEventListener('abort', onEnd, { once: true });
    res.once('close', () => {
      lease.signal.removeEventListener('abort', onEnd);
      if (!res.writableFinished) abort.abort(CLIENT_GONE);
    });
    try {
      const { d, warnings } = await this.#decide(req, s, info, cmd, abort.signal, true);
      if (abort.signal.reason === CLIENT_GONE) {
        s.record({ type: 'statement', command: cmd, decision: d, status: 499 });
        return;
      }
      if (d.effect !== 'allow') {
        const a = answerOf(this.#refusal(d, info), warnings);
        s.record({ type: 'statement', command: cmd, decision: d, status: a.statusCode });
        req.resume();
        return sendAnswer(res, a);
      }
      if (abort.signal.aborted) {
        s.record({ type: 'statement', command: cmd, decision: d });
        req.resume();
        return sendAnswer(res, answerOf(statusFromError(new GatehouseError('ERR_SESSION_ENDED', `session ended: ${String(abort.signal.reason)}`), target(info))));
      }
      this.#forward(req, res, route, lease, info, cmd, d, warnings, abort.signal, t0);
    } catch (e) {
      req.resume();
      sendAnswer(res, answerOf(this.#internal(e)));
    }
  }

  #internal(e: unknown): KubeStatus {
    const err = toGatehouseError(e);
    if (err.code === 'ERR_INTERNAL') this.#log.error({ err: e }, 'kubernetes request failed');
    return statusFromError(err);
  }

  #forward(req: IncomingMessage, res: ServerResponse, route: Route, lease: Lease, info: RequestInfo, cmd: K8sCommand, d: CommandDecision, warnings: string[], signal: AbortSignal, t0: number): void {
    const s = lease.session;
    const up = this.#upstream(lease.session.connection);
    const masking = s.masker.active && !isDiscoveryRequest(info);
    const headers = this.#credentials(up, s, forwardHeaders(req.rawHeaders, { masking }));
    headers.host = hostHeader(up);
    const path = up.basePath + route.rest;
    let recorded = false;
    const statement = (status?: number): void => {
      if (recorded) return;
      recorded = true;
      s.record({ type: 'statement', command: cmd, decision: d, ...(status === undefined ? {} : { status }) });
    };
    const request = up.secure ? httpsRequest : httpRequest;
    let ureq: ClientRequest;
    try {
      ureq = request({ host: up.host, port: up.port, method: req.method, path, headers: headers as OutgoingHttpHeaders, agent: up.agent });
    } catch (e) {
      statement(400);
      req.resume();
      return sendAnswer(res, answerOf(badRequestStatus(`the request could not be forwarded: ${(e as Error).message}`)));
    }
    let streaming = false;
    let watchJson = false;
    const onAbort = (): void => {
      const why = String(signal.reason ?? 'session ended');
      if (res.destroyed || why === CLIENT_GONE) {
        statement(499);
        ureq.destroy();
        return;
      }
      if (!res.headersSent) {
        statement(403);
        sendAnswer(res, answerOf(statusFromError(new GatehouseError('ERR_SESSION_ENDED', `session ended: ${why}`), target(info))));
      } else if (watchJson && streaming && !res.writableEnded) {
        res.end(`${JSON.stringify(watchErrorEvent(statusFromError(new GatehouseError('ERR_SESSION_ENDED', `session ended: ${why}`), target(info))))}\n`);
      } else if (!res.writableEnded) res.destroy();
      ureq.destroy();
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    res.once('close', () => signal.removeEventListener('abort', onAbort));
    ureq.on('error', (e) => {
      if (signal.aborted) return;
      if (!res.headersSent) {
        this.#log.warn({ connection: up.connection, err: e.message }, 'API server unreachable');
        statement(503);
        s.record({ type: 'error', code: 'ERR_UPSTREAM', message: 'the API server could not be reached' });
        this.#result(s, 503, t0);
        sendAnswer(res, answerOf(serviceUnavailableStatus(`gatehouse: the API server of connection "${up.connection}" could not be reached`)));
      } else res.destroy();
    });
    req.pipe(ureq);
    ureq.on('response', (ures) => {
      const status = ures.statusCode ?? 502;
      statement(status);
      const ct = parseMediaType(ures.headers['content-type']);
      watchJson = (ct.type === 'application/json' && (info.verb === 'watch' || ct.params.stream === 'watch'));
      let rows: number | undefined;
      res.once('close', () => this.#result(s, status, t0, rows));
      const extra = warnings.length > 0 ? { warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`) } : {};
      if (!masking || req.method === 'HEAD' || status === 204 || status === 304 || ures.headers['content-length'] === '0') {
        const h = { ...responseHeaders(ures.rawHeaders, new Set()), ...mergeWarnings(ures, extra) };
        res.writeHead(status, h);
        streaming = true;
        // watch and follow: the agent sees the answer start before the first event or line
        if (watchJson || isLongRunning(info)) res.flushHeaders();
        pipeCorked(ures, res);
        ures.on('error', () => res.destroy());
        ures.on('aborted', () => res.destroy());
        return;
      }
      // The answer needs masking.
      const enc = String(ures.headers['content-encoding'] ?? 'identity').toLowerCase();
      let body: Readable = ures;
      if (enc === 'gzip' || enc === 'x-gzip') body = ures.pipe(createGunzip());
      else if (enc === 'deflate') body = ures.pipe(createInflate());
      else if (enc !== 'identity' && enc !== '') return this.#withhold(res, ures, s, `the API server answered with content-encoding ${enc}, which Gatehouse cannot inspect for masking`);
      body.on('error', () => res.destroy());
      const hint = kindHint(info.resource, info.subresource);
      const drop = new Set(['content-length', 'content-encoding']);
      const h = { ...responseHeaders(ures.rawHeaders, drop), ...mergeWarnings(ures, extra) };
      const isJson = ct.type === 'application/json' || ct.type.endsWith('+json');
      if (isJson && watchJson) {
        const t = new WatchMaskTransform(s.masker, hint, (err) => {
          s.record({ type: 'error', code: err.code, message: err.message });
          setImmediate(() => ureq.destroy());
          return statusFromError(err, target(info));
        });
        res.writeHead(status, h);
        streaming = true;
        res.flushHeaders();
        body.pipe(t).pipe(res);
        const endOnClose = (): void => void (!t.writableEnded && t.end());
        ures.once('close', endOnClose);
        return;
      }
      if (ct.type.startsWith('text/')) {
        const t = new TextMaskTransform(s.masker, (err) => {
          s.record({ type: 'error', code: err.code, message: err.message });
          setImmediate(() => ureq.destroy());
        });
        res.writeHead(status, h);
        streaming = true;
        res.flushHeaders();
        body.pipe(t).pipe(res);
        ures.once('close', () => void (!t.writableEnded && t.end()));
        return;
      }
      if (!isJson) return this.#withhold(res, ures, s, `the API server answered in ${ct.type || 'an unknown format'}, which Gatehouse cannot inspect for masking`);
      const chunks: Buffer[] = [];
      let size = 0;
      body.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_MASKED_BODY) {
          body.removeAllListeners('data');
          this.#withhold(res, ures, s, `the answer is larger than ${MAX_MASKED_BODY} bytes, the most Gatehouse inspects for masking`);
          return;
        }
        chunks.push(c);
      });
      body.on('end', () => {
        if (res.headersSent || size > MAX_MASKED_BODY) return;
        let out: Buffer;
        try {
          let value: unknown;
          try {
            value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            throw new GatehouseError('ERR_MASKING_FAILED', 'the API server answered JSON Gatehouse could not parse, so it could not be inspected for masking');
          }
          const masked = maskKubeJson(s.masker, value, hint) as Record<string, unknown>;
          if (Array.isArray(masked?.items)) rows = masked.items.length;
          else if (Array.isArray(masked?.rows)) rows = masked.rows.length;
          out = Buffer.from(`${JSON.stringify(masked)}\n`);
        } catch (e) {
          const err = toGatehouseError(e, 'ERR_MASKING_FAILED');
          return this.#withhold(res, ures, s, err.message);
        }
        h['content-length'] = String(out.length);
        res.writeHead(status, h);
        res.end(out);
      });
    });
  }

  /** Refuses an answer that needs masking but cannot be inspected (fail closed). */
  #withhold(res: ServerResponse, ures: IncomingMessage, s: SessionContext, why: string): void {
    ures.resume();
    const err = new GatehouseError('ERR_MASKING_FAILED', `${why}; the answer was withheld`);
    s.record({ type: 'error', code: err.code, message: err.message });
    this.#log.warn({ session: s.id, err: err.toJSON() }, 'answer withheld');
    if (res.headersSent) return void res.destroy();
    sendAnswer(res, answerOf(internalErrorStatus(err.message)));
  }

  // --- upgrades ---------------------------------------------------------------------------------

  async #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const t0 = performance.now();
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    let admitted: Admitted;
    try {
      admitted = await this.#admit(req);
    } catch (e) {
      return writeRaw(socket, answerOf(e instanceof Refusal ? e.status : this.#internal(e)));
    }
    const { route, lease, info, cmd } = admitted;
    const s = lease.session;
    let released = false;
    const release = (): void => {
      if (!released) {
        released = true;
        lease.release();
      }
    };
    const abort = new AbortController();
    const onEnd = (): void => abort.abort(lease.signal.reason);
    lease.signal.addEventListener('abort', onEnd, { once: true });
    socket.once('close', () => {
      lease.signal.removeEventListener('abort', onEnd);
      abort.abort(CLIENT_GONE);
      release();
    });
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    const spdy = upgrade.startsWith('spdy/');
    const key = `${s.id}\n${info.namespace}/${info.resource}/${info.name}/${info.subresource}`;
    const refuse = (a: Answer, decision: CommandDecision | undefined): void => {
      if (decision) s.record({ type: 'statement', command: cmd, decision, status: a.statusCode });
      if (upgrade === 'websocket') remember(this.#fallback, key, { answer: a, ...(decision ? { decision } : {}) });
      writeRaw(socket, a);
    };
    try {
      if (!spdy && upgrade !== 'websocket') return refuse(answerOf(badRequestStatus(`gatehouse: cannot upgrade to ${upgrade || 'nothing'}`)), undefined);
      const exec = info.isResourceRequest && info.resource === 'pods' && (info.subresource === 'exec' || info.subresource === 'attach');
      const earlier = spdy ? take(this.#fallback, key) : undefined;
      if (earlier) {
        if (earlier.decision) s.record({ type: 'statement', command: cmd, decision: earlier.decision, status: earlier.answer.statusCode });
        return writeRaw(socket, earlier.answer);
      }
      const approved = spdy ? take(this.#approved, `${key}\n${route.rest}`) : undefined;
      // SPDY exec cannot be masked: refused while the session masks, without holding a review for it
      const spdyMasked = spdy && exec && s.masker.active;
      const { d, warnings } = approved ? { d: approved.decision, warnings: [] } : await this.#decide(req, s, info, cmd, abort.signal, !spdyMasked);
      if (socket.destroyed) {
        s.record({ type: 'statement', command: cmd, decision: d, status: 499 });
        return;
      }
      if (spdyMasked && !(d.effect === 'deny' && d.code !== 'ERR_REVIEW_REQUIRED')) {
        return refuse(answerOf(badRequestStatus(`gatehouse: ${info.subresource} over SPDY/3.1 is refused while this session masks answers: SPDY frames cannot be rewritten for masking without breaking SPDY flow control; kubectl 1.30 or later runs ${info.subresource} over WebSocket, which Gatehouse masks`)), d);
      }
      if (d.effect !== 'allow') return refuse(answerOf(this.#refusal(d, info), warnings), d);
      if (lease.signal.aborted) return refuse(answerOf(statusFromError(new GatehouseError('ERR_SESSION_ENDED', `session ended: ${String(lease.signal.reason)}`), target(info))), d);
      if (spdy && upgrade !== 'spdy/3.1') return refuse(answerOf(badRequestStatus(`gatehouse: cannot upgrade to ${upgrade.toUpperCase()}; Gatehouse speaks SPDY/3.1 and WebSocket`)), d);
      if (exec && spdy) return this.#spdyExec(req, socket, head, lease, info, cmd, d, route, release, t0, key);
      if (exec) return this.#execUpgrade(req, socket, head, lease, info, cmd, d, route, release, t0, key);
      if (s.masker.active && info.subresource !== 'portforward') {
        return refuse(answerOf(badRequestStatus(`gatehouse: ${info.subresource || info.verb} over ${spdy ? 'SPDY' : 'WebSocket'} cannot be inspected for masking; it is refused while this session masks answers`)), d);
      }
      this.#rawUpgrade(req, socket, head, lease, cmd, d, route, release, t0, key);
    } catch (e) {
      writeRaw(socket, answerOf(this.#internal(e)));
      release();
    }
  }

  /** The API server refused the upgrade: kubectl's SPDY retry of it goes there too, without a second review. */
  #upstreamRefused(key: string, route: Route, d: CommandDecision): void {
    if (d.reviewId) remember(this.#approved, `${key}\n${route.rest}`, { decision: d });
  }

  /** exec/attach: a WebSocket to the API server, then the frame-level proxy. */
  #execUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, lease: Lease, info: RequestInfo, cmd: K8sCommand, d: CommandDecision, route: Route, release: () => void, t0: number, key: string): void {
    const s = lease.session;
    let decided = false;
    const statement = (status: number): void => {
      if (decided) return;
      decided = true;
      s.record({ type: 'statement', command: cmd, decision: d, status });
    };
    let refused = false;
    const refuse = (a: Answer): void => {
      if (refused) return;
      refused = true;
      statement(a.statusCode);
      this.#upstreamRefused(key, route, d);
      writeRaw(socket, a);
      release();
    };
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
    const protocols = offered.filter((p) => (CHANNEL_PROTOCOLS as readonly string[]).includes(p));
    if (protocols.length === 0) return refuse(answerOf(badRequestStatus(`unable to upgrade: gatehouse speaks the subprotocols ${CHANNEL_PROTOCOLS.join(', ')}; offered [${offered.filter((p) => !p.startsWith(BEARER_PROTOCOL)).join(', ')}]`)));
    const wsKey = req.headers['sec-websocket-key'];
    const version = req.headers['sec-websocket-version'];
    if (req.method !== 'GET' || typeof wsKey !== 'string' || !WS_KEY.test(wsKey) || (version !== '13' && version !== '8')) return refuse(answerOf(badRequestStatus('invalid WebSocket handshake')));
    const up = this.#upstream(s.connection);
    const rest = route.rest;
    const url = `${up.secure ? 'wss' : 'ws'}://${hostHeader(up)}${up.basePath}${rest}`;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return refuse(answerOf(badRequestStatus('invalid request URL')));
    }
    // The WebSocket client rebuilds the target through `URL`: refuse if that would change a byte.
    if (parsed.pathname + parsed.search !== up.basePath + rest) return refuse(answerOf(badRequestStatus('gatehouse: this request target cannot be forwarded unchanged over WebSocket')));
    const headers = this.#credentials(up, s, forwardHeaders(req.rawHeaders, { masking: false, upgrade: 'websocket' }));
    const ws = new WebSocket(url, protocols, {
      headers: headers as Record<string, string>,
      perMessageDeflate: false,
      followRedirects: false,
      handshakeTimeout: 30_000,
      maxPayload: 64 * 1024 * 1024,
      ...(up.secure ? { ...up.tls } : {}),
    });
    let opened = false;
    const onGone = (): void => {
      if (!opened) ws.terminate();
    };
    socket.once('close', onGone);
    ws.on('unexpected-response', (_rq, ures) => {
      readLimited(ures, 1024 * 1024).then((body) => {
        const h = responseHeaders(ures.rawHeaders, new Set(['content-length']));
        h['content-length'] = String(body.length);
        refuse({ statusCode: ures.statusCode ?? 502, headers: h, body });
        ws.terminate();
      }, () => refuse(answerOf(serviceUnavailableStatus('gatehouse: the API server refused the upgrade'))));
    });
    ws.on('error', (e) => {
      if (opened) return;
      this.#log.warn({ connection: up.connection, err: e.message }, 'exec: API server unreachable');
      if (!socket.destroyed && socket.writable) refuse(answerOf(serviceUnavailableStatus(`gatehouse: the API server of connection "${up.connection}" could not be reached`)));
    });
    ws.on('open', () => {
      opened = true;
      socket.off('close', onGone);
      if (socket.destroyed) {
        ws.terminate();
        statement(499);
        return release();
      }
      this.#chosen.set(req, ws.protocol);
      this.#wss.handleUpgrade(req, socket, head, (client) => {
        statement(101);
        const exec = this.#execStarted(s, info, rest, '', () => {
          client.terminate();
          ws.terminate();
        }, release, t0);
        new ExecProxy({ client, upstream: ws, session: s, ended: lease.signal, logger: this.#log, ...exec });
      });
    });
  }

  /**
   * An exec or attach has started (either transport): a note with what runs where, the closer for
   * shutdown, and what its end records (the exit code or why it ended, its duration).
   */
  #execStarted(s: SessionContext, info: RequestInfo, rest: string, transport: string, closer: () => void, release: () => void, t0: number): { tty: boolean; onClose(r: { exitCode?: number; reason: string; durationMs: number }): void } {
    const q = new URLSearchParams(rest.split('?')[1] ?? '');
    const command = q.getAll('command');
    const tty = q.get('tty') === 'true' || q.get('tty') === '1';
    s.record({ type: 'note', message: `${info.subresource} ${info.namespace}/${info.name}${q.get('container') ? ` -c ${q.get('container')}` : ''}${tty ? ' (tty)' : ''}${transport}${command.length ? `: ${JSON.stringify(command)}` : ''}` });
    this.#closers.add(closer);
    return {
      tty,
      onClose: (r) => {
        this.#closers.delete(closer);
        s.record({ type: 'result', tag: r.exitCode === undefined ? r.reason : `exit ${r.exitCode}`, durationMs: Math.round(r.durationMs * 1000) / 1000 });
        this.#ctx.metrics.commandSeconds.observe({ protocol: 'kubernetes' }, (performance.now() - t0) / 1000);
        release();
      },
    };
  }

  /** port-forward and other upgrades: relayed as bytes once allowed (neither masked nor recorded). */
  #rawUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, lease: Lease, cmd: K8sCommand, d: CommandDecision, route: Route, release: () => void, t0: number, key: string): void {
    const s = lease.session;
    this.#upstreamUpgrade(req, socket, lease, cmd, d, route, release, key, (usock, uhead) => {
      if (uhead.length > 0) socket.write(uhead);
      if (head.length > 0) usock.write(head);
      usock.pipe(socket);
      socket.pipe(usock);
      const closer = (): void => {
        usock.destroy();
        socket.destroy();
      };
      this.#closers.add(closer);
      const onEnd = (): void => closer();
      lease.signal.addEventListener('abort', onEnd, { once: true });
      socket.once('close', () => {
        usock.destroy();
        lease.signal.removeEventListener('abort', onEnd);
        this.#closers.delete(closer);
        s.record({ type: 'result', tag: 'upgrade closed', durationMs: Math.round((performance.now() - t0) * 1000) / 1000 });
      });
      usock.once('close', () => socket.destroy());
    });
  }

  /** exec/attach over SPDY/3.1: relayed unchanged, observed by the SPDY codec to record the terminal. */
  #spdyExec(req: IncomingMessage, socket: Duplex, head: Buffer, lease: Lease, info: RequestInfo, cmd: K8sCommand, d: CommandDecision, route: Route, release: () => void, t0: number, key: string): void {
    const s = lease.session;
    this.#upstreamUpgrade(req, socket, lease, cmd, d, route, release, key, (usock, uhead) => {
      const exec = this.#execStarted(s, info, route.rest, ' over SPDY/3.1', () => {
        usock.destroy();
        socket.destroy();
      }, release, t0);
      new SpdyExecProxy({ client: socket, upstream: usock, clientHead: head, upstreamHead: uhead, session: s, ended: lease.signal, logger: this.#log, ...exec });
    });
  }

  /**
   * The upgrade request to the API server, with the connection's credentials (and impersonation)
   * and the agent's other headers; on its `101` the agent gets the same answer and `relay` takes
   * both sockets. Any other answer is passed on to the agent as it is.
   */
  #upstreamUpgrade(req: IncomingMessage, socket: Duplex, lease: Lease, cmd: K8sCommand, d: CommandDecision, route: Route, release: () => void, key: string, relay: (usock: Duplex, uhead: Buffer) => void): void {
    const s = lease.session;
    const up = this.#upstream(s.connection);
    const headers = this.#credentials(up, s, forwardHeaders(req.rawHeaders, { masking: false, upgrade: 'raw' }));
    headers.host = hostHeader(up);
    const request = up.secure ? httpsRequest : httpRequest;
    const ureq = request({ host: up.host, port: up.port, method: req.method, path: up.basePath + route.rest, headers: headers as OutgoingHttpHeaders, agent: false, ...(up.secure ? up.tls : {}) });
    const done = (status: number): void => {
      s.record({ type: 'statement', command: cmd, decision: d, status });
    };
    socket.once('close', () => ureq.destroy());
    ureq.on('upgrade', (ures, usock, uhead) => {
      done(101);
      const lines = [`HTTP/1.1 101 ${STATUS_CODES[101]}`];
      for (let i = 0; i < ures.rawHeaders.length; i += 2) lines.push(`${ures.rawHeaders[i] ?? ''}: ${ures.rawHeaders[i + 1] ?? ''}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      usock.on('error', () => socket.destroy());
      relay(usock, uhead);
    });
    ureq.on('response', (ures) => {
      readLimited(ures, 1024 * 1024).then((body) => {
        done(ures.statusCode ?? 502);
        const h = responseHeaders(ures.rawHeaders, new Set(['content-length']));
        h['content-length'] = String(body.length);
        this.#upstreamRefused(key, route, d);
        writeRaw(socket, { statusCode: ures.statusCode ?? 502, headers: h, body });
        release();
      }, () => socket.destroy());
    });
    ureq.on('error', () => {
      done(503);
      if (!socket.destroyed) writeRaw(socket, answerOf(serviceUnavailableStatus(`gatehouse: the API server of connection "${up.connection}" could not be reached`)));
      release();
    });
    ureq.end();
  }
}

/** Keeps `value` for {@link FALLBACK_MS}, dropping what is older. */
function remember<T>(map: Map<string, T & { at: number }>, key: string, value: T): void {
  const now = Date.now();
  for (const [k, v] of map) if (now - v.at > FALLBACK_MS) map.delete(k);
  map.set(key, { ...value, at: now });
}

/** What was kept for `key`, once, if still fresh. */
function take<T extends { at: number }>(map: Map<string, T>, key: string): T | undefined {
  const v = map.get(key);
  map.delete(key);
  return v && Date.now() - v.at < FALLBACK_MS ? v : undefined;
}

function hostHeader(up: KubeUpstream): string {
  const h = up.host.includes(':') ? `[${up.host}]` : up.host;
  const dflt = up.secure ? 443 : 80;
  return up.port === dflt ? h : `${h}:${up.port}`;
}

/**
 * `src.pipe(dst)`, with the chunks that arrive in one turn of the event loop written together:
 * one TLS record and one system call instead of one per upstream record.
 */
function pipeCorked(src: Readable, dst: ServerResponse): void {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    dst.uncork();
  };
  src.on('data', (c: Buffer) => {
    if (!corked) {
      corked = true;
      dst.cork();
      process.nextTick(uncork);
    }
    if (!dst.write(c)) {
      src.pause();
      dst.once('drain', () => src.resume());
    }
  });
  src.once('end', () => dst.end());
}

function mergeWarnings(ures: IncomingMessage, extra: { warning?: string[] }): HeaderMap {
  if (!extra.warning) return {};
  const own = ures.headersDistinct.warning ?? [];
  return { warning: [...own, ...extra.warning] };
}

function readLimited(stream: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
    stream.on('aborted', () => reject(new Error('aborted')));
  });
}

/** The engine factory the composition root uses. */
export function kubernetesEngine(ctx: EngineContext): Engine {
  return new KubernetesEngine(ctx);
}
