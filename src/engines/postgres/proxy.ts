/**
 * One proxied PostgreSQL session after start-up: the agent's messages go to the target once the
 * core has decided on them; the target's answers come back masked where the session's policy says.
 *
 * Protocol: https://www.postgresql.org/docs/current/protocol-flow.html (simple query §55.2.2,
 * extended query §55.2.3, pipelining §55.2.4, COPY §55.2.6, asynchronous operations §55.2.7).
 *
 * How a refusal keeps the protocol in step: a refused Query, Parse or FunctionCall is not answered
 * by the gateway itself; it is replaced by a message the target must reject (a statement that does
 * not parse), and the target's ErrorResponse is replaced by Gatehouse's. So every answer still comes
 * from the target, in order, pipelined or not; after a refused Parse the target skips to Sync as
 * for any error; and a refusal inside a transaction block aborts it, exactly as PostgreSQL's own
 * permission errors do.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SqlCommand, SqlStatement } from '../../core/command.js';
import { GatehouseError, isGatehouseError, toGatehouseError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { ColumnRef, ValueMasker } from '../../core/masking/types.js';
import type { CommandDecision, Decision } from '../../core/policy/types.js';
import type { SessionContext } from '../../core/sessions/types.js';
import { endSessionOn, sessionEnded } from '../session-end.js';
import type { CatalogResolver, ResolvedColumn } from './catalog.js';
import { classifyPostgres } from './classify.js';
import {
  backend,
  commandRowCount,
  frontend,
  type FrontendParser,
  type BackendMessage,
  type BackendParser,
  type Bind,
  type FieldDescription,
  type FrontendMessage,
  type NoticeFields,
  type TransactionStatus,
} from './protocol.js';
import { Pump, type PumpResult } from './pump.js';
import { maskDataRow, rowPlan, sampleRow, type RowPlan } from './result-masking.js';
import { denialFields, errorFields, noticeInit } from './wire-error.js';

/** The target must fail to parse this; its error is then replaced by the gateway's. */
const REFUSED_SQL = 'GATEHOUSE_REFUSED /* refused by the gateway: this statement never ran */';
/**
 * A statement / portal name no agent can have created (random per process): binding or executing it
 * makes the target fail, and its error is replaced by the gateway's.
 */
const REFUSED_NAME = `gatehouse_refused_${randomBytes(12).toString('hex')}`;
/** Rows of each result kept (masked) in the recording. */
const SAMPLE_ROWS = 5;

interface Prepared {
  command: SqlCommand;
  decision: CommandDecision;
  /** Allowed, and nothing in the engine refused it: it may be bound. */
  allowed: boolean;
  /** From Describe(S): the statement's result columns (format codes not yet known). */
  fields?: readonly FieldDescription[];
}

interface Portal {
  statement: Prepared;
  resultFormats: readonly number[];
  fields?: readonly FieldDescription[];
}

/** What the target will answer, in order. */
type Op =
  | { kind: 'query'; command: SqlCommand | undefined; refused?: Extract<Decision, { effect: 'deny' }> | GatehouseError; t0: number; result: ResultState; stmt?: number }
  | { kind: 'parse'; refused?: Extract<Decision, { effect: 'deny' }> | GatehouseError }
  | { kind: 'bind'; refused?: GatehouseError }
  | { kind: 'describe'; target: 'S' | 'P'; name: string; swallow: boolean }
  | { kind: 'execute'; portal: Portal | undefined; refused?: GatehouseError; t0: number; result: ResultState }
  | { kind: 'close' }
  | { kind: 'sync' };

interface ResultState {
  plan: RowPlan | undefined;
  formats: readonly number[];
  rows: number;
  sample: (string | null)[][];
  /** Rows are being dropped (a masking failure was reported for this result). */
  suppress: boolean;
  /** The rest of this simple query's answer is dropped up to ReadyForQuery. */
  copyOut: boolean;
}

function newResult(): ResultState {
  return { plan: undefined, formats: [], rows: 0, sample: [], suppress: false, copyOut: false };
}

export interface ProxyOptions {
  client: Socket | TLSSocket;
  clientParser: FrontendParser;
  server: Socket | TLSSocket;
  serverParser: BackendParser;
  session: SessionContext;
  catalog: CatalogResolver;
  logger: Logger;
  metrics: Metrics;
  idleTimeoutMs: number;
  /** Start-up leftovers: messages already read from either side. */
  pendingClient: FrontendMessage[];
  pendingServer: BackendMessage[];
  clientEncoding: string;
  /** Sends the target a CancelRequest for this session's backend. */
  cancelUpstream?: () => void;
  onClose: () => void;
}

export class PgProxy {
  readonly #o: ProxyOptions;
  readonly #session: SessionContext;
  readonly #statements = new Map<string, Prepared>();
  readonly #portals = new Map<string, Portal>();
  readonly #ops: Op[] = [];
  readonly #toServer: Pump<FrontendMessage>;
  readonly #toClient: Pump<BackendMessage>;
  readonly #abort = new AbortController();
  /** Transaction status at the last ReadyForQuery. */
  #status: TransactionStatus = 'I';
  #clientEncoding: string;
  #idle: NodeJS.Timeout | undefined;
  #closed = false;
  /** The agent is streaming COPY data to the target. */
  #copyIn = false;

  constructor(o: ProxyOptions) {
    this.#o = o;
    this.#session = o.session;
    this.#clientEncoding = o.clientEncoding.toUpperCase();
    const { client, server } = o;
    this.#toServer = new Pump(client, o.clientParser, server, (m) => this.#fromClient(m), (e) => this.#protocolFailure(e, 'client'));
    this.#toClient = new Pump(server, o.serverParser, client, (m) => this.#fromServer(m), (e) => this.#protocolFailure(e, 'server'));
    endSessionOn(client, server, this.#session.ended, (reason, tellClient, err) => this.#end(reason, tellClient, err));
    this.#armIdle();
    this.#toClient.inject(o.pendingServer);
    this.#toServer.inject(o.pendingClient);
  }

  get sessionId(): string {
    return this.#session.id;
  }

  /** `I` idle, `T` in a transaction block, `E` in a failed one (as of the last ReadyForQuery). */
  get transactionStatus(): TransactionStatus {
    return this.#status;
  }

  /** Ends the session from outside (listener closing). */
  shutdown(reason: string): void {
    this.#end(reason, true, sessionEnded(reason));
  }

  // --- lifetime --------------------------------------------------------------------------------

  #armIdle(): void {
    if (this.#o.idleTimeoutMs <= 0) return;
    if (this.#idle) {
      this.#idle.refresh();
      return;
    }
    this.#idle = setTimeout(() => {
      if (this.#closed) return;
      if (this.#ops.length > 0 || this.#copyIn) {
        this.#idle?.refresh();
        return;
      }
      this.#end('idle timeout', true, Object.assign(new GatehouseError('ERR_SESSION_ENDED', 'terminating connection due to idle-session timeout'), { sqlState: '57P05' }));
    }, this.#o.idleTimeoutMs).unref();
  }

  #end(reason: string, tellClient: boolean, err?: GatehouseError): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idle) clearTimeout(this.#idle);
    this.#abort.abort(reason);
    this.#toServer.stop();
    this.#toClient.stop();
    const { client, server } = this.#o;
    // Ended by the gateway (expiry, revocation, kill) mid-query: the target must stop too, not run
    // the statement to its end for a session that no longer exists (Terminate waits for it).
    if (tellClient && (this.#ops.length > 0 || this.#copyIn)) this.#o.cancelUpstream?.();
    if (tellClient && err && client.writable) {
      const f = errorFields(err, 'FATAL');
      const state = (err as { sqlState?: string }).sqlState;
      client.end(backend.errorResponse(state ? { ...f, code: state } : f));
    } else client.end();
    if (server.writable) server.end(frontend.terminate());
    setTimeout(() => {
      client.destroy();
      server.destroy();
    }, 1000).unref();
    void this.#session.close(reason).catch((e: unknown) => this.#o.logger.error({ err: e }, 'session close failed'));
    this.#o.onClose();
  }

  #protocolFailure(e: unknown, side: 'client' | 'server'): void {
    const err = toGatehouseError(e, 'ERR_PROTOCOL');
    this.#o.logger.warn({ session: this.#session.id, side, err: err.toJSON() }, 'protocol error');
    this.#session.record({ type: 'error', code: err.code, message: `${side}: ${err.message}` });
    this.#end(`protocol error from ${side}`, true, side === 'client' ? err : new GatehouseError('ERR_UPSTREAM', 'the target database sent a malformed message', { detail: err.message }));
  }

  // --- agent → target --------------------------------------------------------------------------

  #classify(text: string): SqlCommand {
    let statements: readonly SqlStatement[];
    try {
      statements = classifyPostgres(text);
    } catch (e) {
      statements = [{ type: 'unknown', text, tables: [], functions: [], unknownReason: `classifier failed: ${e instanceof Error ? e.message : String(e)}` }];
    }
    return { kind: 'sql', dialect: 'postgres', text, statements: statements as SqlStatement[] };
  }

  /** The core's decision for a command, with the review hold when it asks for one. */
  /** The core's decision for a command: synchronous unless it asks for a review hold. */
  #decide(command: SqlCommand): CommandDecision | Promise<CommandDecision> {
    const d = this.#session.decide(command);
    if (d.effect !== 'review') return this.#decided(command, d);
    const notify = (msg: string): void => {
      if (!this.#closed) this.#o.client.write(backend.noticeResponse({ severity: 'NOTICE', code: '01000', message: `gatehouse: ${msg}` }));
    };
    return this.#session.awaitReview(command, d, notify, this.#abort.signal).then(
      (r) => this.#decided(command, r),
      (e: unknown) => {
        const err = toGatehouseError(e);
        return this.#decided(command, { effect: 'deny', rule: d.rule, reason: err.message, code: err.code });
      },
    );
  }

  #decided(command: SqlCommand, d: CommandDecision): CommandDecision {
    this.#o.metrics.commandsTotal.inc({ protocol: 'postgres', effect: d.effect });
    this.#session.record({ type: 'statement', command, decision: d });
    return d;
  }

  /** Why a decided command must not run: the core's denial, or the engine's own (recorded too). */
  #refusal(command: SqlCommand, d: CommandDecision): Extract<Decision, { effect: 'deny' }> | GatehouseError | undefined {
    if (d.effect !== 'allow') return asDenial(d);
    const err = unmaskableCopy(command, d);
    if (err) this.#session.record({ type: 'error', code: err.code, message: err.message });
    return err;
  }

  #fromClient(m: FrontendMessage): PumpResult | Promise<PumpResult> {
    this.#armIdle();
    switch (m.name) {
      case 'Query': {
        const command = this.#classify(m.query);
        return then(this.#decide(command), (d): PumpResult => {
          const refused = this.#refusal(command, d);
          if (refused === undefined) {
            this.#ops.push({ kind: 'query', command, t0: performance.now(), result: newResult() });
            return true;
          }
          this.#ops.push({ kind: 'query', command, refused, t0: performance.now(), result: newResult() });
          return frontend.query(REFUSED_SQL);
        });
      }
      case 'Parse': {
        const command = this.#classify(m.query);
        return then(this.#decide(command), (d): PumpResult => {
          const refused = this.#refusal(command, d);
          this.#statements.set(m.statement, { command, decision: d, allowed: refused === undefined });
          if (refused === undefined) {
            this.#ops.push({ kind: 'parse' });
            return true;
          }
          this.#ops.push({ kind: 'parse', refused });
          return frontend.parse(m.statement, REFUSED_SQL);
        });
      }
      case 'Bind':
        return this.#bind(m);
      case 'Describe':
        this.#ops.push({ kind: 'describe', target: m.target, name: m.objectName, swallow: false });
        return true;
      case 'Execute': {
        const portal = this.#portals.get(m.portal);
        if (portal === undefined) {
          this.#ops.push({ kind: 'execute', portal, refused: new GatehouseError('ERR_PROTOCOL', `portal "${m.portal}" does not exist`), t0: 0, result: newResult() });
          return frontend.execute(REFUSED_NAME, m.maxRows);
        }
        const out: Buffer[] = [];
        if (this.#session.masker.active && portal.fields === undefined) {
          // The result columns must be known before the rows arrive: ask, and keep the answer.
          this.#ops.push({ kind: 'describe', target: 'P', name: m.portal, swallow: true });
          out.push(frontend.describe('P', m.portal));
        }
        this.#ops.push({ kind: 'execute', portal, t0: performance.now(), result: newResult() });
        out.push(m.raw);
        return out.length === 1 ? true : out;
      }
      case 'Close':
        if (m.target === 'S') this.#statements.delete(m.objectName);
        else this.#portals.delete(m.objectName);
        this.#ops.push({ kind: 'close' });
        return true;
      case 'Sync':
        this.#ops.push({ kind: 'sync' });
        return true;
      case 'Flush':
        return true;
      case 'Terminate':
        this.#end('client terminated the session', false);
        return false;
      case 'CopyData':
      case 'CopyDone':
      case 'CopyFail':
        if (m.name !== 'CopyData') this.#copyIn = false;
        return true;
      case 'FunctionCall': {
        // Fast-path calls name functions by OID, which policy cannot see: refused, always.
        const refused: Extract<Decision, { effect: 'deny' }> = { effect: 'deny', rule: 'default', reason: 'fast-path function calls are not allowed through the gateway' };
        const command: SqlCommand = { kind: 'sql', dialect: 'postgres', text: `<fast-path call of function ${m.functionOid}>`, statements: [{ type: 'unknown', text: '', tables: [], functions: [], unknownReason: 'FunctionCall message' }] };
        this.#session.record({ type: 'statement', command, decision: refused });
        this.#ops.push({ kind: 'query', command, refused, t0: performance.now(), result: newResult() });
        return frontend.query(REFUSED_SQL);
      }
      default:
        throw new GatehouseError('ERR_PROTOCOL', `unexpected ${m.name} message after start-up`);
    }
  }

  #bind(m: Bind): PumpResult {
    const statement = this.#statements.get(m.statement);
    if (statement === undefined || !statement.allowed) {
      // Only statements prepared through this session (Parse) and allowed can be bound.
      const why = statement === undefined ? `prepared statement "${m.statement}" was not prepared through the gateway` : `prepared statement "${m.statement}" was refused`;
      this.#ops.push({ kind: 'bind', refused: new GatehouseError('ERR_ACCESS_DENIED', why) });
      return frontend.bind(m.portal, REFUSED_NAME);
    }
    if (m.params.length > 0) {
      this.#session.record({ type: 'params', params: m.params.map((p, i) => (p === null ? null : paramFormat(m.paramFormats, i) === 1 ? `<binary ${p.length} bytes>` : p.toString('utf8'))) });
    }
    const portal: Portal = { statement, resultFormats: m.resultFormats };
    if (statement.fields !== undefined) portal.fields = statement.fields.map((f, i) => ({ ...f, format: paramFormat(m.resultFormats, i) }));
    this.#portals.set(m.portal, portal);
    this.#ops.push({ kind: 'bind' });
    return true;
  }

  // --- target → agent --------------------------------------------------------------------------

  #fromServer(m: BackendMessage): PumpResult | Promise<PumpResult> {
    switch (m.name) {
      case 'ParameterStatus':
        if (m.parameter === 'client_encoding') this.#clientEncoding = m.value.toUpperCase();
        return true;
      case 'NotificationResponse':
        return this.#maskNotification(m);
      case 'NoticeResponse':
        return this.#maskNotice(m.fields, 'N');
      case 'ParseComplete':
      case 'BindComplete':
      case 'CloseComplete':
        this.#ops.shift();
        return true;
      case 'ParameterDescription': {
        const op = this.#ops[0];
        return !(op?.kind === 'describe' && op.swallow);
      }
      case 'RowDescription':
      case 'NoData': {
        const op = this.#ops[0];
        const fields = m.name === 'RowDescription' ? m.fields : [];
        if (op?.kind === 'describe') {
          this.#ops.shift();
          if (op.target === 'S') {
            const st = this.#statements.get(op.name);
            if (st) st.fields = fields;
          } else {
            const p = this.#portals.get(op.name);
            if (p) p.fields = fields;
          }
          return !op.swallow;
        }
        if (op?.kind === 'query' && m.name === 'RowDescription') {
          op.result = newResult();
          op.result.formats = fields.map((f) => f.format);
          return this.#planFor(op.result, fields, undefined, op.command?.statements[op.stmt ?? 0]);
        }
        return true;
      }
      case 'DataRow': {
        const op = this.#ops[0];
        if (op === undefined || (op.kind !== 'query' && op.kind !== 'execute')) return true;
        const r = op.result;
        if (r.suppress) return false;
        if (op.kind === 'execute' && r.plan === undefined && r.rows === 0) {
          const fields = op.portal?.fields;
          if (this.#session.masker.active && fields === undefined) return this.#refuseResult(r, new GatehouseError('ERR_MASKING_FAILED', 'result columns unknown; the result was withheld'));
          if (fields !== undefined) {
            r.formats = fields.map((f) => f.format);
            const planned = this.#planFor(r, fields, op.portal?.resultFormats, op.portal?.statement.command.statements[0]);
            if (planned instanceof Promise) return planned.then((x) => (x === true ? this.#row(m, r) : x));
          }
        }
        return this.#row(m, r);
      }
      case 'CommandComplete':
      case 'EmptyQueryResponse':
      case 'PortalSuspended': {
        const op = this.#ops[0];
        if (op?.kind === 'query' || op?.kind === 'execute') {
          const r = op.result;
          if (r.suppress && op.kind === 'query' && r.copyOut) return false;
          const now = performance.now();
          const tag = m.name === 'CommandComplete' ? m.tag : m.name === 'PortalSuspended' ? 'SUSPENDED' : 'EMPTY';
          const rows = m.name === 'CommandComplete' ? commandRowCount(m.tag) : undefined;
          this.#session.record({
            type: 'result',
            tag,
            ...(rows === undefined ? {} : /^(SELECT|FETCH|MOVE)/.test(tag) ? { rows } : { affected: rows }),
            durationMs: Math.round((now - op.t0) * 1000) / 1000,
            ...(r.sample.length > 0 ? { sample: r.sample } : {}),
          });
          this.#o.metrics.commandSeconds.observe({ protocol: 'postgres' }, (now - op.t0) / 1000);
          const suppressed = r.suppress;
          if (op.kind === 'execute') this.#ops.shift();
          else {
            op.t0 = now;
            op.result = newResult();
            op.stmt = (op.stmt ?? 0) + 1;
          }
          if (suppressed) return false;
        }
        return true;
      }
      case 'CopyInResponse':
        this.#copyIn = true;
        return true;
      case 'CopyOutResponse': {
        const op = this.#ops[0];
        if ((op?.kind === 'query' || op?.kind === 'execute') && this.#session.masker.active) {
          op.result.copyOut = true;
          if (m.format !== 0) return this.#refuseResult(op.result, new GatehouseError('ERR_MASKING_FAILED', 'binary COPY output cannot be inspected for masking; the data was withheld'));
        }
        return true;
      }
      case 'CopyData': {
        const op = this.#ops[0];
        if ((op?.kind === 'query' || op?.kind === 'execute') && op.result.suppress) return false;
        if (!this.#session.masker.active) return true;
        try {
          // As for rows: other encodings would be inspected as mis-decoded UTF-8 and rewritten corrupt.
          if (this.#clientEncoding !== 'UTF8') {
            throw new GatehouseError('ERR_MASKING_FAILED', `COPY data can only be masked with client_encoding UTF8 (the session uses ${this.#clientEncoding}); the data was withheld`);
          }
          const text = m.data.toString('utf8');
          const masked = this.#session.masker.maskText(text);
          return masked === text ? true : backend.copyData(Buffer.from(masked, 'utf8'));
        } catch (e) {
          if (op?.kind === 'query' || op?.kind === 'execute') return this.#refuseResult(op.result, toGatehouseError(e, 'ERR_MASKING_FAILED'));
          throw e;
        }
      }
      case 'CopyDone': {
        const op = this.#ops[0];
        return !((op?.kind === 'query' || op?.kind === 'execute') && op.result.suppress);
      }
      case 'ErrorResponse':
        return this.#serverError(m.fields);
      case 'ReadyForQuery': {
        this.#status = m.status;
        // Ends a simple query or a Sync; anything still pending before it got no answer.
        for (let op = this.#ops.shift(); op !== undefined && op.kind !== 'query' && op.kind !== 'sync'; op = this.#ops.shift());
        this.#copyIn = false;
        return true;
      }
      case 'FunctionCallResponse':
        return true;
      default:
        throw new GatehouseError('ERR_PROTOCOL', `unexpected ${m.name} from the target`);
    }
  }

  /**
   * Builds the masking plan of a result; may wait for a catalog lookup. Columns traced to a table
   * column get that column's rules. Column rules must also hold for values that reach the result
   * another way — an expression (`lower(ssn)`, `ssn::text`, `row_to_json(u)`, a UNION) or a view —
   * so such a column gets the strongest column rule among the columns it may come from: for an
   * expression, the columns its statement references (all columns of its tables for `*` or a whole
   * row); for a view column, the base columns the view reads, unless the view column carries the
   * name of a base column no rule covers.
   */
  #planFor(r: ResultState, fields: readonly FieldDescription[], resultFormats: readonly number[] | undefined, stmt: SqlStatement | undefined): true | Promise<PumpResult> {
    const masker = this.#session.masker;
    if (!masker.active) return true;
    const catalog = this.#o.catalog;
    const byName = (): ResolvedColumn[] => fields.map((f) => ({ ref: { column: f.name }, origin: 'computed' as const }));
    const finish = (cols: ResolvedColumn[], candidates: readonly ColumnRef[]): true => {
      const maskers = masker.forColumns(cols.map((c) => c.ref));
      let fromStatement: ValueMasker | null | undefined;
      for (let i = 0; i < cols.length; i++) {
        const c = cols[i]!;
        if (c.origin === 'table' || maskers[i]?.kind === 'column') continue;
        let m: ValueMasker | undefined;
        if (c.origin === 'view') {
          const base = c.base ?? [];
          const sameName = base.filter((b) => b.column.toLowerCase() === c.ref.column.toLowerCase());
          const uncovered = sameName.length > 0 && masker.forColumns(sameName).every((x) => x?.kind !== 'column');
          if (!uncovered) m = strongestColumnRule(masker.forColumns(base));
        } else {
          if (fromStatement === undefined) fromStatement = strongestColumnRule(masker.forColumns(candidates)) ?? null;
          m = fromStatement ?? undefined;
        }
        if (m) maskers[i] = m;
      }
      r.plan = rowPlan(fields, maskers, resultFormats);
      return true;
    };
    const needsCandidates = (cols: ResolvedColumn[]): boolean => cols.some((c) => c.origin === 'computed');
    const plan = async (): Promise<true> => {
      let cols = catalog.resolveCached(fields);
      if (cols === undefined) {
        try {
          await catalog.load(fields);
          cols = catalog.resolveCached(fields) ?? byName();
        } catch (e) {
          this.#o.logger.warn({ session: this.#session.id, err: e }, 'catalog lookup failed; masking by column name only');
          cols = byName();
        }
      }
      return finish(cols, needsCandidates(cols) ? await this.#statementColumns(stmt) : []);
    };
    const cached = catalog.resolveCached(fields);
    if (cached !== undefined && !needsCandidates(cached)) return finish(cached, []);
    return plan();
  }

  /** The columns a statement may read values from: those it names, and every column of its tables for `*`. */
  async #statementColumns(stmt: SqlStatement | undefined): Promise<ColumnRef[]> {
    if (!stmt) return [];
    const tables = stmt.tables.filter((t) => t.access === 'read').map((t) => t.name);
    const cols = stmt.columns ?? [];
    const out: ColumnRef[] = [];
    if (cols.includes('*')) {
      try {
        out.push(...(await this.#o.catalog.columnsOf(tables)));
      } catch (e) {
        this.#o.logger.warn({ session: this.#session.id, err: e }, 'catalog lookup failed');
      }
    }
    for (const t of tables) {
      const dot = t.lastIndexOf('.');
      const table = dot < 0 ? t : t.slice(dot + 1);
      const schema = dot < 0 ? undefined : t.slice(0, dot);
      for (const c of cols) if (c !== '*') out.push({ ...(schema ? { schema } : {}), table, column: c });
    }
    return out;
  }

  #row(m: Extract<BackendMessage, { name: 'DataRow' }>, r: ResultState): PumpResult {
    r.rows++;
    if (r.plan === undefined || r.plan.passthrough) {
      if (r.rows <= SAMPLE_ROWS) r.sample.push(sampleRow(m, r.formats));
      return true;
    }
    if (this.#clientEncoding !== 'UTF8') {
      return this.#refuseResult(r, new GatehouseError('ERR_MASKING_FAILED', `results can only be masked with client_encoding UTF8 (the session uses ${this.#clientEncoding}); the result was withheld`));
    }
    let out: Buffer;
    try {
      out = maskDataRow(m, r.plan, (n) => this.#o.metrics.maskedValues.inc({ protocol: 'postgres' }, n));
    } catch (e) {
      return this.#refuseResult(r, toGatehouseError(e, 'ERR_MASKING_FAILED'));
    }
    if (r.rows <= SAMPLE_ROWS) r.sample.push(sampleRow(out, r.formats));
    return out === m.raw ? true : out;
  }

  /** Withholds the rest of a result and tells the agent why (fail closed). */
  #refuseResult(r: ResultState, err: GatehouseError): PumpResult {
    this.#o.logger.warn({ session: this.#session.id, err: err.toJSON() }, 'result withheld');
    this.#session.record({ type: 'error', code: err.code, message: err.message });
    r.suppress = true;
    return backend.errorResponse(errorFields(err));
  }

  #serverError(fields: NoticeFields): PumpResult {
    const op = this.#ops[0];
    let replacement: Buffer | undefined;
    if (op && 'refused' in op && op.refused !== undefined) {
      const refused = op.refused;
      replacement = backend.errorResponse(isGatehouseError(refused) ? errorFields(refused) : denialFields(refused));
    } else {
      this.#session.record({ type: 'error', code: fields.C ?? '', message: fields.M ?? '' });
    }
    if (op?.kind === 'query') {
      // Simple query: the rest of this query's answer is its ReadyForQuery.
      op.result.suppress = false;
    } else if (op !== undefined) {
      // Extended protocol: the target now skips to Sync; so do the pending answers.
      while (this.#ops[0] && this.#ops[0].kind !== 'sync') this.#ops.shift();
    }
    if (replacement) return replacement;
    return this.#maskNotice(fields, 'E');
  }

  /** NOTIFY payloads are data the agent receives (`pg_notify(ch, column)`): detectors apply; unmaskable ones are dropped. */
  #maskNotification(m: Extract<BackendMessage, { name: 'NotificationResponse' }>): PumpResult {
    const masker = this.#session.masker;
    if (!masker.active) return true;
    let masked: string;
    try {
      masked = masker.maskText(m.payload);
    } catch (e) {
      const err = toGatehouseError(e, 'ERR_MASKING_FAILED');
      this.#o.logger.warn({ session: this.#session.id, channel: m.channel, err: err.toJSON() }, 'notification withheld');
      this.#session.record({ type: 'error', code: err.code, message: `notification on ${m.channel} withheld: ${err.message}` });
      return false;
    }
    return masked === m.payload ? true : backend.notificationResponse(m.processId, m.channel, masked);
  }

  /** Error and notice texts can quote data (a duplicate key's value): detectors apply to them too. */
  #maskNotice(fields: NoticeFields, type: 'E' | 'N'): PumpResult {
    const masker = this.#session.masker;
    if (!masker.active) return true;
    let changed = false;
    const out: Record<string, string> = { ...fields };
    for (const k of ['M', 'D', 'H', 'W', 'q']) {
      const v = out[k];
      if (v === undefined) continue;
      const masked = masker.maskText(v);
      if (masked !== v) {
        out[k] = masked;
        changed = true;
      }
    }
    if (!changed) return true;
    const init = noticeInit(out);
    return type === 'E' ? backend.errorResponse(init) : backend.noticeResponse(init);
  }
}

/**
 * COPY … TO output cannot be attributed to columns, so column rules cannot be applied to it: a
 * COPY out of a table a column rule may cover is refused (fail closed); detectors still apply.
 */
/**
 * Functions that run SQL given as text, or read a table named by a string, and return the values
 * inside one computed value (XML): no result column can be traced, so column rules cannot hold.
 */
const SQL_TEXT_FUNCTIONS = new Set(
  ['query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema', 'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema'].flatMap((f) => [f, `pg_catalog.${f}`]),
);

function unmaskableCopy(command: SqlCommand, d: Extract<CommandDecision, { effect: 'allow' }>): GatehouseError | undefined {
  const patterns = d.masks.flatMap((m) => m.columns);
  if (patterns.length === 0) return undefined;
  for (const st of command.statements) {
    const opaque = st.functions.find((f) => SQL_TEXT_FUNCTIONS.has(f));
    if (opaque !== undefined) {
      return new GatehouseError('ERR_MASKING_FAILED', `${opaque}() returns values column masks cannot follow; it is refused while column masks apply (use SELECT)`);
    }
    if (st.type !== 'copy' || st.subtype !== 'copy_to') continue;
    if (st.tables.length === 0 || patterns.some((p) => columnPatternTouches(p, st.tables))) {
      return new GatehouseError('ERR_MASKING_FAILED', 'COPY … TO cannot be masked column by column; the output was withheld (use SELECT)');
    }
  }
  return undefined;
}

/** Whether a column pattern (`[schema.]table.column`, `*` globs) can name a column of one of `tables`. */
function columnPatternTouches(pattern: string, tables: readonly { name: string }[]): boolean {
  const parts = pattern.toLowerCase().split('.');
  if (parts.length < 2) return true;
  const want = parts[parts.length - 2]!.trim();
  const re = new RegExp(`^${want.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')).join('.*')}$`);
  return tables.some((t) => re.test(t.name.toLowerCase().split('.').pop() ?? ''));
}

/** Applies `f` now to a value, or later to a promise: the hot path stays synchronous. */
function then<T, R>(v: T | Promise<T>, f: (x: T) => R): R | Promise<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** The strongest column rule among `maskers`. */
function strongestColumnRule(maskers: readonly (ValueMasker | undefined)[]): ValueMasker | undefined {
  let best: ValueMasker | undefined;
  for (const m of maskers) if (m?.kind === 'column' && (best === undefined || (m.rank ?? 0) > (best.rank ?? 0))) best = m;
  return best;
}

function asDenial(d: CommandDecision): Extract<Decision, { effect: 'deny' }> {
  if (d.effect === 'deny') return d;
  return { effect: 'deny', rule: d.rule, reason: 'this command was not approved', code: 'ERR_REVIEW_DENIED' };
}

function paramFormat(formats: readonly number[], i: number): number {
  return formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}
