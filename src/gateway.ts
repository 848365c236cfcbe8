/**
 * The composition root: builds every part of Gatehouse from a loaded configuration and starts the
 * listeners. Nothing else wires modules together; `core/` never imports from here.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { buildHttpServer, type DevIssuerRoutes } from './api/server.js';
import type { GatehouseConfig, ListenerName } from './config/index.js';
import { parseHostPort, toConnection } from './config/index.js';
import { AuditLog } from './core/audit/audit-log.js';
import { GatehouseError } from './core/errors.js';
import { DevIssuer, RevocationSet, TokenVerifier, type IssuerConfig } from './core/identity/index.js';
import type { Identity } from './core/identity/types.js';
import { createLogger, type Logger } from './core/log.js';
import { createMasker, type CustomDetector, type Masker } from './core/masking/index.js';
import { Metrics } from './core/metrics.js';
import { loadPolicies, PolicyEngine } from './core/policy/index.js';
import type { MaskPlan } from './core/policy/types.js';
import { SessionManager } from './core/sessions/manager.js';
import { GrantService } from './core/approvals/grants.js';
import { ReviewService } from './core/approvals/reviews.js';
import { WebhookNotifier } from './core/approvals/webhooks.js';
import { registerApi } from './api/routes.js';
import { registerConsole } from './api/console.js';
import { registerDevLogin } from './api/dev-login.js';
import type { Connection } from './core/sessions/types.js';
import { ENGINES } from './engines/index.js';
import type { Engine, EngineContext, EngineFactory, EngineListener, EngineProtocol } from './engines/types.js';
import { openStore, type Store } from './store/index.js';

/** Audience of the tokens the development issuer mints. */
export const DEV_AUDIENCE = 'api://gatehouse';
/** Where the HTTP listener serves the development issuer (demo only). */
export const DEV_ISSUER_PATH = '/dev-issuer';

/** What `gatehouse token` needs to mint a token the running demo gateway accepts. */
export interface DevIssuerInfo {
  issuer: string;
  audience: string;
  keyFile: string;
}

export interface GatewayOptions {
  /** Default: JSON logs per `config.log`. */
  logger?: Logger;
  /** Engines by protocol (default: every engine Gatehouse ships); a listener runs when `listen.<protocol>` is set. */
  engines?: Partial<Record<EngineProtocol, EngineFactory>>;
  /** Extra HTTP routes (approvals API, console). */
  httpPlugins?: ((parts: GatewayParts) => (app: FastifyInstance) => void | Promise<void>)[];
  /** Clock for sessions (tests). */
  now?: () => number;
}

/** The parts a gateway is built from, for modules that plug into it. */
export interface GatewayParts {
  config: GatehouseConfig;
  logger: Logger;
  metrics: Metrics;
  store: Store;
  audit: AuditLog;
  revocations: RevocationSet;
  /** Verifies agents' tokens (`identity.issuers`). */
  agentVerifier: TokenVerifier;
  /** Verifies API callers' tokens (agents' and approvers' issuers). */
  apiVerifier: { verify(token: string): Promise<Identity> };
  policy: () => PolicyEngine;
  sessions: SessionManager;
  reviews: ReviewService;
  grants: GrantService;
  notifier: WebhookNotifier;
  connections: ReadonlyMap<string, Connection>;
  instanceId: string;
  dataDir: string;
  devIssuer?: DevIssuer;
}

/** The directory Gatehouse keeps local files in: beside the SQLite database, else `<baseDir>/data`. */
export function dataDirOf(config: GatehouseConfig): string {
  return config.store.kind === 'sqlite' && config.store.path !== ':memory:' ? dirname(config.store.path) : resolve(config.baseDir, 'data');
}

/** Custom detectors from `masking.detectors` in the masker's form (`(?i)` becomes the `i` flag). */
export function customDetectors(config: GatehouseConfig): CustomDetector[] {
  return config.masking.detectors.map((d) => ({
    name: d.name,
    pattern: d.pattern.startsWith('(?i)') ? d.pattern.slice(4) : d.pattern,
    ...(d.pattern.startsWith('(?i)') ? { flags: 'i' } : {}),
    ...(d.validator === undefined ? {} : { validator: d.validator }),
    examples: d.examples,
  }));
}

function storeUrl(config: GatehouseConfig): string {
  return config.store.kind === 'sqlite' ? `sqlite:${config.store.path}` : config.store.url;
}

async function hashKeyOf(config: GatehouseConfig, dataDir: string): Promise<string> {
  if (config.masking.hashKey !== undefined) return config.masking.hashKey;
  const file = join(dataDir, 'masking-hash.key');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const key = randomBytes(32).toString('base64url');
    await mkdir(dataDir, { recursive: true });
    await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' }).catch(() => undefined);
    return (await readFile(file, 'utf8')).trim();
  }
}

function issuerConfig(i: GatehouseConfig['identity']['issuers'][number]): IssuerConfig {
  return { issuer: i.issuer, audience: i.audience, groupsClaim: i.groupsClaim, ...(i.jwksUri ? { jwksUri: i.jwksUri } : {}), ...(i.algorithms ? { algorithms: i.algorithms } : {}) };
}

/** The parts that change while the gateway runs (policy reloads) or are built late. */
interface LiveParts {
  policy?: PolicyEngine;
  sessions?: SessionManager;
}

/**
 * A running gateway: store, identity, policy, sessions, the HTTP server and one listener per
 * configured protocol.
 */
export class Gateway {
  readonly parts: GatewayParts;
  readonly #http: FastifyInstance | undefined;
  readonly #listeners: EngineListener[];
  readonly #httpAddress: { host: string; port: number } | undefined;
  readonly #live: LiveParts;
  #closed = false;

  private constructor(parts: GatewayParts, http: FastifyInstance | undefined, httpAddress: { host: string; port: number } | undefined, listeners: EngineListener[], live: LiveParts) {
    this.parts = parts;
    this.#http = http;
    this.#httpAddress = httpAddress;
    this.#listeners = listeners;
    this.#live = live;
  }

  /** Bound address per listener (real ports even when the config asked for port 0). */
  address(name: ListenerName): { host: string; port: number } | undefined {
    if (name === 'http') return this.#httpAddress;
    return this.#listeners.find((l) => l.protocol === name)?.address;
  }

  /** The HTTP server (for `inject()` in tests). */
  get http(): FastifyInstance | undefined {
    return this.#http;
  }

  /** Re-reads the policy files; on error the policies in force stay and the error is thrown. */
  async reloadPolicies(): Promise<void> {
    const { config, logger } = this.parts;
    const set = await loadPolicies(config.policies, config.baseDir);
    this.#live.policy = new PolicyEngine(set);
    this.parts.audit.record({ ts: Date.now(), type: 'policy.reload', actor: 'system', data: { policies: set.policies.map((p) => p.name), files: set.files } });
    logger.info({ policies: set.policies.length }, 'policies reloaded');
  }

  /** Starts a gateway. Fails (and releases what it opened) if any part cannot start. */
  static async start(config: GatehouseConfig, opts: GatewayOptions = {}): Promise<Gateway> {
    const logger = opts.logger ?? createLogger({ level: config.log.level, ...(config.log.file ? { file: config.log.file } : {}) });
    const cleanup: (() => Promise<void>)[] = [];
    try {
      const instanceId = config.instanceId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
      const dataDir = dataDirOf(config);
      const metrics = new Metrics();
      const store = await openStore(storeUrl(config), { instanceId, onError: (err) => logger.error({ err }, 'store background error') });
      cleanup.push(() => store.close());

      let signingKey: string | undefined;
      if (config.audit.signingKey) signingKey = await readFile(config.audit.signingKey, 'utf8');
      const audit = new AuditLog(store, {
        ...(signingKey ? { signingKey, checkpointEvery: config.audit.checkpointEvery } : {}),
        onError: (err, input) => logger.error({ err: err.toJSON(), event: input?.type }, 'audit write failed'),
      });
      cleanup.push(() => audit.flush());

      const live: LiveParts = {};
      const revocations = new RevocationSet();
      revocations.load(await store.listRevocations());
      const reloadRevocations = async (): Promise<void> => {
        try {
          revocations.load(await store.listRevocations());
          live.sessions?.recheckRevocations();
        } catch (e) {
          logger.error({ err: e }, 'could not reload revocations');
        }
      };
      const unsubscribe = store.events.subscribe('revocation', () => void reloadRevocations());
      cleanup.push(async () => unsubscribe());

      // The HTTP listener is bound first: the development issuer's URL carries its port.
      const httpAddr = config.listen.http === undefined ? undefined : parseHostPort(config.listen.http);
      let devIssuer: DevIssuer | undefined;
      const devRoutes: DevIssuerRoutes | undefined = config.identity.devIssuer
        ? {
            prefix: DEV_ISSUER_PATH,
            discoveryDocument: () => devIssuer?.discoveryDocument() ?? {},
            jwks: () => devIssuer?.jwks() ?? { keys: [] },
          }
        : undefined;
      if (config.identity.devIssuer && !httpAddr) throw new GatehouseError('ERR_CONFIG', 'identity.dev_issuer needs listen.http (the issuer is served there)');

      live.policy = new PolicyEngine(await loadPolicies(config.policies, config.baseDir));
      const policyNow = (): PolicyEngine => live.policy!;

      const agentIssuers: IssuerConfig[] = config.identity.issuers.map(issuerConfig);
      let agentVerifier: TokenVerifier | undefined;
      let apiVerifier: TokenVerifier | undefined;
      const isRevoked = (id: Identity): boolean => revocations.has(id) !== undefined;
      const verifierProxy = {
        verify: (token: string): Promise<Identity> => {
          if (!apiVerifier) return Promise.reject(new GatehouseError('ERR_TOKEN_INVALID', 'no token issuer is configured'));
          return apiVerifier.verify(token);
        },
      };

      const hashKey = await hashKeyOf(config, dataDir);
      const custom = customDetectors(config);
      const masker = (plan: MaskPlan): Masker => createMasker(plan, { hashKey, maxValueBytes: config.masking.maxValueBytes, customDetectors: custom });
      // Fail at start, not at the first session, on a plan the masker cannot build.
      masker([]);

      const connections = new Map<string, Connection>(config.connections.map((c) => [c.name, toConnection(c)]));

      const parts: GatewayParts = {
        config,
        logger,
        metrics,
        store,
        audit,
        revocations,
        get agentVerifier(): TokenVerifier {
          if (!agentVerifier) throw new GatehouseError('ERR_CONFIG', 'no token issuer is configured');
          return agentVerifier;
        },
        apiVerifier: verifierProxy,
        policy: policyNow,
        sessions: undefined as unknown as SessionManager,
        reviews: undefined as unknown as ReviewService,
        grants: undefined as unknown as GrantService,
        notifier: undefined as unknown as WebhookNotifier,
        connections,
        instanceId,
        dataDir,
      };

      const sessions = new SessionManager({
        store,
        policy: policyNow,
        audit,
        revocations,
        masker,
        logger: logger.child({ component: 'sessions' }),
        instanceId,
        maxDurationMs: config.sessions.maxDurationMs,
        recording: config.recording.enabled,
        ...(opts.now ? { now: opts.now } : {}),
      });
      live.sessions = sessions;
      parts.sessions = sessions;
      cleanup.push(() => sessions.close());

      const notifier = new WebhookNotifier({ webhooks: config.notifications.webhooks, logger: logger.child({ component: 'webhooks' }) });
      const link = (kind: 'reviews' | 'grants') => (id: string): string | undefined => (config.publicUrl ? `${config.publicUrl.replace(/\/$/, '')}/#/${kind}/${id}` : undefined);
      const reviews = new ReviewService({
        store,
        audit,
        logger: logger.child({ component: 'reviews' }),
        notify: (e) => notifier.notify(e),
        holdTimeoutMs: config.review.holdTimeoutMs,
        validForMs: config.review.validForMs,
        link: link('reviews'),
      });
      const grants = new GrantService({ store, audit, notify: (e) => notifier.notify(e), connection: (n) => connections.get(n), defaultMaxMs: config.grants.maxDurationMs, link: link('grants') });
      sessions.setReviewGate(reviews);
      Object.assign(parts, { reviews, grants, notifier });
      cleanup.push(async () => {
        reviews.close();
        grants.close();
        await notifier.flush();
        notifier.close();
      });
      await grants.expireDue();

      let http: FastifyInstance | undefined;
      let httpAddress: { host: string; port: number } | undefined;
      if (httpAddr) {
        http = await buildHttpServer({
          logger,
          metrics,
          store,
          verifier: verifierProxy,
          roles: config.roles,
          ...(devRoutes ? { devIssuer: devRoutes } : {}),
          plugins: [
            (app) => registerApi(app, { store, verifier: verifierProxy, roles: config.roles, reviews, grants, sessions }),
            ...(config.identity.devIssuer ? [(app: FastifyInstance) => registerDevLogin(app, { prefix: DEV_ISSUER_PATH, issuer: () => devIssuer, audience: DEV_AUDIENCE, roles: config.roles, ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}), logger })] : []),
            ...(config.console.enabled
              ? [(app: FastifyInstance) => registerConsole(app, { console: config.console, approverIssuers: config.approverIssuers, ...(config.identity.devIssuer ? { devIssuer: () => (devIssuer ? { issuer: devIssuer.issuer, prefix: DEV_ISSUER_PATH } : undefined) } : {}), logger })]
              : []),
            ...(opts.httpPlugins ?? []).map((p) => p(parts)),
          ],
        });
        cleanup.push(() => http!.close());
        await http.listen({ host: httpAddr.host, port: httpAddr.port });
        const a = http.server.address();
        httpAddress = { host: httpAddr.host, port: typeof a === 'object' && a ? a.port : httpAddr.port };
      }

      if (config.identity.devIssuer && httpAddress) {
        const host = httpAddress.host.includes(':') ? `[${httpAddress.host}]` : httpAddress.host === '0.0.0.0' ? '127.0.0.1' : httpAddress.host;
        const issuer = `http://${host}:${httpAddress.port}${DEV_ISSUER_PATH}`;
        const keyFile = join(dataDir, 'dev-issuer-key.json');
        devIssuer = await DevIssuer.create({ issuer, keyFile, loginEndpoints: true });
        parts.devIssuer = devIssuer;
        const info: DevIssuerInfo = { issuer, audience: DEV_AUDIENCE, keyFile };
        await writeFile(join(dataDir, 'dev-issuer.json'), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
        agentIssuers.push({ issuer, audience: DEV_AUDIENCE, jwksUri: `${issuer}/.well-known/jwks.json` });
        logger.warn({ issuer }, 'development token issuer enabled: anyone who can read the data directory can mint tokens; never use it in production');
      }
      if (agentIssuers.length > 0) agentVerifier = new TokenVerifier({ issuers: agentIssuers, clockToleranceSec: config.identity.clockToleranceMs / 1000, isRevoked });
      const apiIssuers = [...agentIssuers];
      for (const i of config.approverIssuers) if (!apiIssuers.some((x) => x.issuer === i.issuer)) apiIssuers.push(issuerConfig(i));
      if (apiIssuers.length > 0) apiVerifier = apiIssuers.length === agentIssuers.length && agentVerifier ? agentVerifier : new TokenVerifier({ issuers: apiIssuers, clockToleranceSec: config.identity.clockToleranceMs / 1000, isRevoked });


      let tls: SecureContext | undefined;
      if (config.tls) {
        const [cert, key] = await Promise.all([readFile(config.tls.cert), readFile(config.tls.key)]);
        tls = createSecureContext({ cert, key });
      }
      const ctx: EngineContext = {
        logger,
        metrics,
        verifyToken: (token) => {
          if (!agentVerifier) return Promise.reject(new GatehouseError('ERR_TOKEN_INVALID', 'no token issuer is configured'));
          return agentVerifier.verify(token);
        },
        sessions,
        connection: (name) => connections.get(name),
        ...(tls ? { tls } : {}),
        idleTimeoutMs: config.sessions.idleTimeoutMs,
        instanceId,
        dataDir,
        config,
      };
      const listeners: EngineListener[] = [];
      for (const protocol of ['postgres', 'mysql', 'ssh', 'kubernetes'] as const) {
        const addr = config.listen[protocol];
        if (addr === undefined) continue;
        const factory = (opts.engines ?? ENGINES)[protocol];
        if (!factory) {
          logger.warn({ protocol }, 'no engine for this listener; it is not started');
          continue;
        }
        const hp = parseHostPort(addr);
        if (!hp) throw new GatehouseError('ERR_CONFIG', `listen.${protocol}: invalid address ${addr}`);
        const engine: Engine = factory(ctx);
        const l = await engine.listen(hp.host, hp.port);
        listeners.push(l);
        cleanup.push(() => l.close());
        logger.info({ protocol, address: `${l.address.host}:${l.address.port}` }, 'listening');
      }
      if (httpAddress) logger.info({ protocol: 'http', address: `${httpAddress.host}:${httpAddress.port}` }, 'listening');

      const gw = new Gateway(parts, http, httpAddress, listeners, live);
      audit.record({ ts: Date.now(), type: 'gateway.start', actor: 'system', data: { instance: instanceId, listeners: listeners.map((l) => l.protocol), connections: [...connections.keys()] } });
      return gw;
    } catch (e) {
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
      throw e;
    }
  }

  /** Stops the listeners, ends every session, flushes the audit log and closes the store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const { logger, sessions, audit, store } = this.parts;
    await Promise.all(this.#listeners.map((l) => l.close().catch((e: unknown) => logger.error({ err: e, protocol: l.protocol }, 'listener close failed'))));
    await sessions.close();
    await this.#http?.close();
    this.parts.reviews.close();
    this.parts.grants.close();
    await this.parts.notifier.flush();
    this.parts.notifier.close();
    audit.record({ ts: Date.now(), type: 'gateway.stop', actor: 'system', data: { instance: this.parts.instanceId } });
    await audit.flush();
    await store.close();
  }
}
