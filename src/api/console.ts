/**
 * Serves the web console (the React app built into `web/dist`) at `/` of the HTTP listener, and
 * `GET /console/config.json`: how the console signs people in (the OIDC issuer's endpoints, found by
 * discovery here, and the client id; in demo mode the development issuer's login).
 *
 * Files are read once at start. Hashed files under `/assets/` are cached for a year (`immutable`);
 * `index.html` and the configuration are never cached. Every answer carries a Content-Security-Policy
 * that allows no origin but this one, except `connect-src` for the issuer's token endpoint (the
 * browser exchanges the authorization code there).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ConsoleConfig, IssuerConfigEntry } from '../config/index.js';
import { isSecureOrLoopback } from '../core/identity/index.js';
import type { Logger } from '../core/log.js';

/** Where `vite build web` writes the console (from `src/api/` and from `dist/api/` alike). */
export const CONSOLE_DIST = fileURLToPath(new URL('../../web/dist', import.meta.url));

/** The OAuth client id the console uses with the development issuer. */
export const DEV_CONSOLE_CLIENT_ID = 'gatehouse-console';

export interface ConsoleOptions {
  console: ConsoleConfig;
  /** Issuers the API accepts human tokens from (`approver_issuers`). */
  approverIssuers: readonly IssuerConfigEntry[];
  /** Demo mode: the development issuer (its URL is known once the listener is bound, hence a function). */
  devIssuer?: () => { issuer: string; prefix: string } | undefined;
  logger: Logger;
  /** Default {@link CONSOLE_DIST}. */
  dir?: string;
  /** How long discovery may take before the console answers without it, ms. Default 5000. */
  discoveryTimeoutMs?: number;
}

/** One way to sign in, as `/console/config.json` gives it to the browser. */
export interface SignInProvider {
  id: string;
  label: string;
  issuer: string;
  client_id: string;
  authorization_endpoint: string;
  token_endpoint: string;
  scopes: string[];
  resource?: string;
  demo: boolean;
}

interface StaticFile {
  body: Buffer;
  gzip?: Buffer;
  type: string;
  etag: string;
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg', '.txt', '.map', '.wasm']);

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Reads the built console into memory: URL path → file. */
export async function loadConsoleFiles(dir: string): Promise<Map<string, StaticFile>> {
  const files = new Map<string, StaticFile>();
  for (const p of await walk(dir)) {
    const urlPath = `/${relative(dir, p).split(sep).join('/')}`;
    const ext = extname(p).toLowerCase();
    const body = await readFile(p);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    const gz = COMPRESSIBLE.has(ext) && body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined;
    files.set(urlPath, { body, ...(gz && gz.length < body.length ? { gzip: gz } : {}), type: TYPES[ext] ?? 'application/octet-stream', etag, immutable: urlPath.startsWith('/assets/') });
  }
  return files;
}

/** The Content-Security-Policy of the console: this origin only, plus the token endpoints. */
export function consoleCsp(connectOrigins: readonly string[]): string {
  return [
    "default-src 'self'",
    // asciinema-player's terminal emulator is WebAssembly.
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${["'self'", ...new Set(connectOrigins)].join(' ')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Gatehouse console</title></head><body><main><h1>The console is not built</h1><p>Run <code>npm run build</code> (it builds <code>web/dist</code>) and restart the gateway. The HTTP API is available under <code>/api</code>.</p></main></body></html>`;

/**
 * Resolves the sign-in providers: the configured issuer (`console.client_id`, by OIDC discovery,
 * cached; retried after a failure) and, in demo mode, the development issuer.
 */
class Providers {
  readonly #o: ConsoleOptions;
  #discovered: { authorization_endpoint: string; token_endpoint: string } | undefined;
  #pending: Promise<void> | undefined;
  #failedAt = 0;
  #error: string | undefined;

  constructor(o: ConsoleOptions) {
    this.#o = o;
  }

  get issuer(): string | undefined {
    const c = this.#o.console;
    if (c.clientId === undefined) return undefined;
    return c.issuer ?? this.#o.approverIssuers[0]?.issuer;
  }

  async #discover(issuer: string): Promise<void> {
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.#o.discoveryTimeoutMs ?? 5000), headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const doc = (await res.json()) as Record<string, unknown>;
      if (doc.issuer !== issuer) throw new Error(`the discovery document names issuer ${JSON.stringify(doc.issuer)}`);
      const endpoint = (k: string): string => {
        const v = doc[k];
        if (typeof v !== 'string' || !isSecureOrLoopback(new URL(v))) throw new Error(`${k} is missing or not https`);
        return v;
      };
      this.#discovered = { authorization_endpoint: endpoint('authorization_endpoint'), token_endpoint: endpoint('token_endpoint') };
      const methods = doc.code_challenge_methods_supported;
      if (Array.isArray(methods) && !methods.includes('S256')) this.#o.logger.warn({ issuer }, 'console sign-in: the issuer does not list PKCE S256 support');
      this.#error = undefined;
    } catch (e) {
      this.#failedAt = Date.now();
      this.#error = `discovery of ${issuer} failed: ${(e as Error).message}`;
      this.#o.logger.warn({ issuer, err: (e as Error).message }, 'console sign-in: issuer discovery failed');
    }
  }

  async list(): Promise<{ providers: SignInProvider[]; error?: string }> {
    const providers: SignInProvider[] = [];
    const c = this.#o.console;
    const issuer = this.issuer;
    if (issuer !== undefined && c.clientId !== undefined) {
      if (!this.#discovered && Date.now() - this.#failedAt > 30_000) {
        this.#pending ??= this.#discover(issuer).finally(() => (this.#pending = undefined));
        await this.#pending;
      }
      if (this.#discovered) {
        providers.push({
          id: 'oidc',
          label: new URL(issuer).host,
          issuer,
          client_id: c.clientId,
          ...this.#discovered,
          scopes: c.scopes,
          ...(c.resource === undefined ? {} : { resource: c.resource }),
          demo: false,
        });
      }
    }
    const dev = this.#o.devIssuer?.();
    if (dev) {
      // Same-origin paths: the demo works whatever host name the browser uses for the gateway.
      providers.push({ id: 'dev', label: 'the development issuer (demo)', issuer: dev.issuer, client_id: DEV_CONSOLE_CLIENT_ID, authorization_endpoint: `${dev.prefix}/authorize`, token_endpoint: `${dev.prefix}/token`, scopes: ['openid'], demo: true });
    }
    const error = this.#error ?? (providers.length === 0 ? 'sign-in is not configured: set console.client_id (see docs/console.md)' : undefined);
    return { providers, ...(error === undefined ? {} : { error }) };
  }
}

/** Registers the console routes. */
export async function registerConsole(app: FastifyInstance, o: ConsoleOptions): Promise<void> {
  const dir = o.dir ?? CONSOLE_DIST;
  const files = await loadConsoleFiles(dir);
  const providers = new Providers(o);
  if (!files.has('/index.html')) o.logger.warn({ dir }, 'the web console is not built (npm run build); / answers with a notice');

  const security = (reply: FastifyReply, csp: string): FastifyReply =>
    reply
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cross-origin-resource-policy', 'same-origin');

  const connectOrigins = async (): Promise<string[]> => {
    const { providers: list } = await providers.list();
    return list.filter((p) => !p.demo).map((p) => new URL(p.token_endpoint).origin);
  };

  const send = (req: FastifyRequest, reply: FastifyReply, f: StaticFile, cacheControl?: string): FastifyReply => {
    void reply.header('content-type', f.type).header('etag', f.etag).header('vary', 'accept-encoding');
    void reply.header('cache-control', cacheControl ?? (f.immutable ? 'public, max-age=31536000, immutable' : 'no-cache'));
    if (req.headers['if-none-match'] === f.etag) return reply.status(304).send();
    const gzipOk = f.gzip !== undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (gzipOk) void reply.header('content-encoding', 'gzip');
    return reply.send(gzipOk ? f.gzip : f.body);
  };

  app.get('/', async (req, reply) => {
    security(reply, consoleCsp(await connectOrigins()));
    const index = files.get('/index.html');
    if (!index) return reply.status(503).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
    // Never cached: it names the current hashed assets, and sign-in returns here with a code.
    return send(req, reply, index, 'no-store');
  });

  app.get('/console/config.json', async (_req, reply) => {
    security(reply, consoleCsp([]));
    return reply.header('cache-control', 'no-store').send(await providers.list());
  });

  const staticCsp = consoleCsp([]);
  app.get('/assets/*', async (req, reply) => {
    // The raw path, not normalized: only the files that were built, by their exact names.
    const f = files.get(req.url.split('?')[0] ?? '');
    if (!f) return reply.status(404).send({ error: { code: 'ERR_NOT_FOUND', message: 'no such file' } });
    return send(req, security(reply, staticCsp), f);
  });
  for (const [path, f] of files) {
    if (path.startsWith('/assets/') || path === '/index.html' || path.split('/').length !== 2) continue;
    app.get(path, async (req, reply) => send(req, security(reply, staticCsp), f));
  }
}
