/**
 * A real OpenID Connect issuer for integration tests: `oidc-provider` 9 in-process on 127.0.0.1,
 * with discovery, a JWKS, and the OAuth 2.0 client-credentials grant issuing RFC 9068 JWT access
 * tokens (RS256, `typ: at+jwt`) for one resource server (the audience). A `groups` claim is added
 * per client, or per request.
 *
 * Per-request group and lifetime overrides travel to the provider in private `x-test-*` headers of
 * the token request, read back in `extraTokenClaims` and `ttl.ClientCredentials`.
 *
 * Optionally, browser clients (public, `token_endpoint_auth_method: none`) sign people in with the
 * authorization code grant and PKCE through oidc-provider's development login and consent pages
 * (any login and password); their access tokens are JWTs for the same audience, with the groups of
 * `accounts[login]`.
 *
 * Key rotation swaps in a new Provider with a new keystore behind the same listener (oidc-provider
 * fixes its keys at construction); the issuer URL and port stay the same.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import type * as OidcProvider from 'oidc-provider';
import type { Provider as ProviderClass, ProviderContext } from 'oidc-provider';

export interface TestClient {
  clientId: string;
  clientSecret: string;
  /** The `groups` claim of this client's tokens (unless a request overrides it). */
  groups: string[];
}

export interface TestIssuerOptions {
  /** `aud` of the access tokens. Default `api://gatehouse`. */
  audience?: string;
  /** Port on 127.0.0.1; default a free one. */
  port?: number;
  /** Default access-token lifetime, seconds. Default 600. */
  accessTokenTtlSec?: number;
  /** Registered clients (client_secret_basic). Default: `agent-a` (ai-agents), `agent-b` (ai-agents, db-admins), `agent-c` (no groups). */
  clients?: Array<{ clientId: string; clientSecret?: string; groups?: string[] }>;
  /** Public clients for people in a browser: authorization code + PKCE, with these exact redirect URIs. */
  browserClients?: Array<{ clientId: string; redirectUris: string[] }>;
  /** Groups per login name of the development login page (people signing in through a browser client). */
  accounts?: Record<string, string[]>;
}

export interface TestTokenOptions {
  /** Default: the first registered client. */
  clientId?: string;
  /** Overrides the client's groups for this token. */
  groups?: string[];
  /** Space-separated scopes, a subset of `TestIssuer.scopes`. */
  scope?: string;
  /** Lifetime of this token, seconds (a positive integer). */
  ttlSec?: number;
}

export interface TestIssuer {
  issuer: string;
  audience: string;
  /** Scopes the resource server knows. */
  scopes: readonly string[];
  clients: readonly TestClient[];
  /** kids in the JWKS now; the first one signs. */
  readonly kids: readonly string[];
  /** Requests served, by endpoint. */
  readonly requests: { discovery: number; jwks: number; token: number };
  /** Obtains an access token with the client-credentials grant, over HTTP, like a real client. */
  token(opts?: TestTokenOptions): Promise<string>;
  /** New RS256 signing key with a new kid; the old public key stays in the JWKS if `keepOld` (default true). */
  rotateKeys(opts?: { keepOld?: boolean }): Promise<void>;
  close(): Promise<void>;
}

const SCOPES = ['gatehouse.connect', 'db.read', 'db.write'];
const RESOURCE = 'urn:gatehouse:test-resource';

let providerModule: Promise<typeof OidcProvider> | undefined;

/** Imports oidc-provider once, without its "Unsupported runtime" warning on Node 20 (harmless). */
function loadProvider(): Promise<typeof OidcProvider> {
  providerModule ??= (async () => {
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
      warn(...args);
    };
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = warn;
    }
  })();
  return providerModule;
}

/** The provider keeps little (interaction sessions, codes, grants); a Map is plenty (and avoids its dev-adapter warning). */
class MapAdapter {
  static readonly #data = new Map<string, Record<string, unknown>>();
  readonly #name: string;
  constructor(name: string) {
    this.#name = name;
  }
  #key(id: string): string {
    return `${this.#name}:${id}`;
  }
  async upsert(id: string, payload: Record<string, unknown>): Promise<void> {
    MapAdapter.#data.set(this.#key(id), payload);
  }
  async find(id: string): Promise<Record<string, unknown> | undefined> {
    return MapAdapter.#data.get(this.#key(id));
  }
  async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
    for (const [k, v] of MapAdapter.#data) if (k.startsWith(`${this.#name}:`) && v['uid'] === uid) return v;
    return undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async consume(id: string): Promise<void> {
    const p = MapAdapter.#data.get(this.#key(id));
    if (p !== undefined) p['consumed'] = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    MapAdapter.#data.delete(this.#key(id));
  }
  async revokeByGrantId(): Promise<void> {}
}

async function newSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `test-${randomUUID()}`, alg: 'RS256', use: 'sig' };
}

export async function startTestIssuer(opts: TestIssuerOptions = {}): Promise<TestIssuer> {
  const { Provider } = await loadProvider();
  const audience = opts.audience ?? 'api://gatehouse';
  const defaultTtl = opts.accessTokenTtlSec ?? 600;
  const clients: TestClient[] = (opts.clients ?? [
    { clientId: 'agent-a', groups: ['ai-agents'] },
    { clientId: 'agent-b', groups: ['ai-agents', 'db-admins'] },
    { clientId: 'agent-c', groups: [] },
  ]).map((c) => ({ clientId: c.clientId, clientSecret: c.clientSecret ?? `secret-${c.clientId}-${randomUUID()}`, groups: c.groups ?? [] }));
  const groupsByClient = new Map(clients.map((c) => [c.clientId, c.groups]));
  const browserClients = opts.browserClients ?? [];
  const accounts = opts.accounts ?? {};
  const requests = { discovery: 0, jwks: 0, token: 0 };

  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/.well-known/openid-configuration') requests.discovery++;
    else if (path === '/jwks') requests.jwks++;
    else if (path === '/token') requests.token++;
    if (handler === undefined) res.writeHead(503).end();
    else handler(req, res);
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let keys: JWK[] = [await newSigningKey()];

  const configuration = (): Record<string, unknown> => ({
    clients: [
      ...clients.map((c) => ({
        client_id: c.clientId,
        client_secret: c.clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      })),
      ...browserClients.map((c) => ({
        client_id: c.clientId,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: c.redirectUris,
        token_endpoint_auth_method: 'none',
      })),
    ],
    adapter: MapAdapter,
    jwks: { keys },
    scopes: SCOPES,
    ...(browserClients.length > 0
      ? {
          findAccount: (_ctx: ProviderContext, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
          cookies: { keys: ['gatehouse-test-issuer-cookie-key'] },
        }
      : {}),
    features: {
      devInteractions: { enabled: browserClients.length > 0 },
      clientCredentials: { enabled: true },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: ProviderContext, resource: string) => {
          if (resource !== RESOURCE) throw new Error(`unknown resource ${resource}`);
          return { scope: SCOPES.join(' '), audience, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256', kid: keys[0]?.kid } } };
        },
      },
    },
    extraTokenClaims: (ctx: ProviderContext, token: { clientId: string; accountId?: string }) => {
      if (token.accountId !== undefined) return { groups: accounts[token.accountId] ?? [] };
      const override = ctx.get('x-test-groups');
      return { groups: override === '' ? (groupsByClient.get(token.clientId) ?? []) : (JSON.parse(override) as string[]) };
    },
    ttl: {
      ClientCredentials: (ctx: ProviderContext | undefined) => {
        const override = ctx?.get('x-test-ttl') ?? '';
        return override === '' ? defaultTtl : Number(override);
      },
    },
    clockTolerance: 0,
  });

  const install = (): void => {
    const provider: ProviderClass = new Provider(issuer, configuration());
    provider.on('server_error', (_ctx: unknown, err: unknown) => {
      console.error('test OIDC issuer server_error:', err);
    });
    handler = provider.callback();
  };
  install();

  let tokenEndpoint: string | undefined;

  return {
    issuer,
    audience,
    scopes: SCOPES,
    clients,
    get kids() {
      return keys.map((k) => k.kid as string);
    },
    requests,
    async token(t: TestTokenOptions = {}): Promise<string> {
      const client = t.clientId === undefined ? clients[0] : clients.find((c) => c.clientId === t.clientId);
      if (client === undefined) throw new Error(`unknown test client ${String(t.clientId)}`);
      if (tokenEndpoint === undefined) {
        const meta = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { token_endpoint: string };
        tokenEndpoint = meta.token_endpoint;
      }
      const body = new URLSearchParams({ grant_type: 'client_credentials' });
      if (t.scope !== undefined) body.set('scope', t.scope);
      const headers: Record<string, string> = {
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      };
      if (t.groups !== undefined) headers['x-test-groups'] = JSON.stringify(t.groups);
      if (t.ttlSec !== undefined) headers['x-test-ttl'] = String(t.ttlSec);
      const res = await fetch(tokenEndpoint, { method: 'POST', headers, body });
      const json = (await res.json()) as { access_token?: string; token_type?: string; error?: string; error_description?: string };
      if (res.status !== 200 || typeof json.access_token !== 'string') {
        throw new Error(`token request failed: HTTP ${res.status} ${json.error ?? ''} ${json.error_description ?? ''}`);
      }
      return json.access_token;
    },
    async rotateKeys(r: { keepOld?: boolean } = {}): Promise<void> {
      const next = await newSigningKey();
      keys = r.keepOld === false ? [next] : [next, ...keys];
      install();
    },
    close: () =>
      new Promise<void>((resolve) => {
        handler = undefined;
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
