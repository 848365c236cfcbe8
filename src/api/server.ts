import { fastify, LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from '../core/log.js';
import type { Metrics } from '../core/metrics.js';
import type { Store } from '../store/store.js';
import { GatehouseError, isGatehouseError } from '../core/errors.js';
import { identitySummary } from '../core/identity/types.js';
import { httpStatus, requireAuth, type BearerVerifier, type RoleMap } from './auth.js';

/** A development issuer the gateway serves in demo mode only (see `identity.dev_issuer`). */
export interface DevIssuerRoutes {
  /** URL path prefix under which the issuer is served, e.g. `/dev-issuer`. */
  prefix: string;
  discoveryDocument(): object;
  jwks(): object;
}

export interface HttpServerOptions {
  logger: Logger;
  metrics: Metrics;
  store: Store;
  verifier: BearerVerifier;
  roles: RoleMap;
  /** Extra readiness checks (listeners bound, keys loaded). */
  ready?: () => Promise<void>;
  devIssuer?: DevIssuerRoutes;
  /** Lets later modules (reviews, grants, console) add routes. */
  plugins?: ((app: FastifyInstance) => void | Promise<void>)[];
}

/**
 * The gateway's HTTP server: health, readiness, Prometheus metrics, the JSON API (bearer auth, roles
 * from the config's role map) and, in demo mode, the development token issuer's discovery + JWKS.
 */
export async function buildHttpServer(opts: HttpServerOptions): Promise<FastifyInstance> {
  const app = fastify({ loggerInstance: opts.logger.child({ component: 'http' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), bodyLimit: 1024 * 1024 });

  app.setErrorHandler((err, req, reply) => {
    if (isGatehouseError(err)) {
      const status = httpStatus(err.code);
      if (status >= 500) req.log.error({ err: err.toJSON() }, 'request failed');
      return reply.status(status).send({ error: { code: err.code, message: err.message } });
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status < 500) return reply.status(status).send({ error: { code: 'ERR_BAD_REQUEST', message: (err as Error).message } });
    req.log.error({ err }, 'request failed');
    return reply.status(500).send({ error: { code: 'ERR_INTERNAL', message: 'internal error' } });
  });
  app.setNotFoundHandler((_req, reply) => reply.status(404).send({ error: { code: 'ERR_NOT_FOUND', message: 'no such route' } }));

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await opts.store.ping();
      await opts.ready?.();
      return { status: 'ready' };
    } catch (e) {
      return reply.status(503).send({ status: 'not ready', reason: isGatehouseError(e) ? e.message : 'store unavailable' });
    }
  });
  app.get('/metrics', async (_req, reply) => {
    const body = await opts.metrics.registry.metrics();
    return reply.type(opts.metrics.registry.contentType).send(body);
  });

  app.get('/api/whoami', { preHandler: requireAuth(opts.verifier, opts.roles) }, async (req) => {
    if (!req.identity) throw new GatehouseError('ERR_UNAUTHENTICATED', 'a bearer token is required');
    return { identity: identitySummary(req.identity), roles: [...(req.roles ?? [])].sort(), expires_at: new Date(req.identity.expiresAt).toISOString() };
  });

  if (opts.devIssuer) {
    const dev = opts.devIssuer;
    app.get(`${dev.prefix}/.well-known/openid-configuration`, async () => dev.discoveryDocument());
    app.get(`${dev.prefix}/.well-known/jwks.json`, async () => dev.jwks());
  }

  for (const plugin of opts.plugins ?? []) await plugin(app);
  return app;
}
