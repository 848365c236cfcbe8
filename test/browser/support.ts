/**
 * Browser tests of the web console: Debian's chromium driven by playwright-core (no browser download),
 * a gateway with the demo-mode development issuer for the humans' sign-in (the real authorization
 * code + PKCE flow through src/api/dev-login.ts) and a real OIDC issuer (oidc-provider) for the
 * agents' tokens, the machine's PostgreSQL behind it and, when this machine can run one, a real
 * OpenSSH sshd.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { parseConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/core/log.js';
import { DEV_AUDIENCE, Gateway } from '../../src/gateway.js';
import { startTestIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { freePort } from '../support/net.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
export { until } from '../support/client.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CONSOLE_INDEX = join(ROOT, 'web', 'dist', 'index.html');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 600_000): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (e) => {
      clearTimeout(t);
      resolve({ status: null, out: `${out}${e.message}` });
    });
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, out });
    });
  });
}

/**
 * Makes sure Debian's chromium is there: `.ci/run` installs it; on a root machine with apt-get where
 * it is missing, this installs it too. Returns why it cannot be had, or undefined when it is there.
 */
export async function ensureChromium(): Promise<string | undefined> {
  if (existsSync(CHROMIUM)) return undefined;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || !existsSync('/usr/bin/apt-get') || process.env.GATEHOUSE_NO_APT) {
    return `chromium is not installed at ${CHROMIUM} and cannot be installed here (needs root and apt-get): apt-get install chromium, or set CHROMIUM_PATH`;
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  let r = await run('apt-get', ['install', '-y', '-qq', 'chromium'], env);
  if (r.status !== 0) {
    await run('apt-get', ['update', '-qq'], env);
    r = await run('apt-get', ['install', '-y', '-qq', 'chromium'], env);
  }
  return existsSync(CHROMIUM) ? undefined : `chromium could not be installed with apt-get: ${r.out.trim().split('\n').slice(-3).join(' | ')}`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** A laptop-sized window; CSP violations and page errors are collected in `problems`. */
export async function newPage(browser: Browser, problems: string[]): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
    else if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return { context, page };
}

export interface ConsoleGateway {
  gateway: Gateway;
  issuer: TestIssuer;
  db: TestDatabase;
  dir: string;
  base: string;
  pgPort: number;
  sshPort: number | undefined;
  /** An agent's token from the real OIDC issuer (client credentials). */
  agentToken(clientId?: string): Promise<string>;
  /** A human's token from the development issuer (what the console's sign-in yields). */
  humanToken(sub: string, groups: string[]): Promise<string>;
  api(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
  psqlEnv(token: string): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** The console's client at the test OIDC issuer, and who can sign in there (login → groups). */
export const CONSOLE_CLIENT_ID = 'gatehouse-console';
export const ISSUER_ACCOUNTS: Record<string, string[]> = { 'dba-7': ['dba'], 'auditor-7': ['auditors'] };

/**
 * A gateway for the console tests. Humans sign in with the development issuer (demo mode) and with
 * the test OIDC issuer, where the console is a public client (`console.client_id`) using the
 * authorization code grant with PKCE.
 */
export async function startConsoleGateway(o: { policy: string; setupSql: string; connections?: string[]; ssh?: boolean }): Promise<ConsoleGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'gh-console-'));
  // The issuer needs the console's redirect URI, so the HTTP port is chosen first.
  const httpPort = await freePort();
  const issuer = await startTestIssuer({
    clients: [{ clientId: 'agent-a', groups: ['ai-agents'] }],
    browserClients: [{ clientId: CONSOLE_CLIENT_ID, redirectUris: [`http://127.0.0.1:${httpPort}/`] }],
    accounts: ISSUER_ACCOUNTS,
  });
  const db = await createTestDatabase('gh_console');
  await db.query(o.setupSql);
  await writeFile(join(dir, 'policy.yaml'), o.policy);
  const yaml = [
    `listen: { postgres: "127.0.0.1:0", http: "127.0.0.1:${httpPort}"${o.ssh ? ', ssh: "127.0.0.1:0"' : ''} }`,
    `store: "sqlite:${join(dir, 'gatehouse.db')}"`,
    'identity:',
    '  dev_issuer: true',
    '  issuers:',
    `    - { issuer: "${issuer.issuer}", audience: "${issuer.audience}" }`,
    'connections:',
    `  - { name: pg, type: postgres, target: "${db.url}" }`,
    ...(o.connections ?? []),
    'policies: ./policy.yaml',
    'roles: { admin: { groups: [gatehouse-admins] }, approver: { groups: [dba] }, auditor: { groups: [auditors] } }',
    'review: { hold_timeout: 60s, valid_for: 5m }',
    `console: { client_id: ${CONSOLE_CLIENT_ID}, issuer: "${issuer.issuer}", scopes: [openid, gatehouse.connect] }`,
    'log: { level: silent }',
  ].join('\n');
  const config = parseConfig(yaml, join(dir, 'gatehouse.yaml'));
  await mkdir(dir, { recursive: true });
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, { logger: silentLogger() });
  } catch (e) {
    await db.drop();
    await issuer.close();
    throw e;
  }
  const http = gateway.address('http')!;
  const base = `http://127.0.0.1:${http.port}`;
  const pgPort = gateway.address('postgres')!.port;
  return {
    gateway,
    issuer,
    db,
    dir,
    base,
    pgPort,
    sshPort: gateway.address('ssh')?.port,
    agentToken: (clientId = 'agent-a') => issuer.token({ clientId }),
    humanToken: (sub, groups) => gateway.parts.devIssuer!.mint({ sub, groups, audience: DEV_AUDIENCE, ttlSec: 600 }),
    async api(token, method, path, body) {
      const r = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await r.text();
      let json: unknown = text;
      try {
        json = JSON.parse(text);
      } catch {
        // keep the text
      }
      return { status: r.status, json };
    },
    psqlEnv: (token) => ({ PGPASSWORD: token, PGHOST: '127.0.0.1', PGPORT: String(pgPort), PGDATABASE: 'pg', PGUSER: 'agent', PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' }),
    async close() {
      await gateway.close();
      await db.drop();
      await issuer.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs the real psql (asynchronously: the gateway runs in this process). */
export function psql(env: NodeJS.ProcessEnv, sql: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', reject);
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}


/** Screenshots go to $SCREENSHOT_DIR (`npm run screenshots` sets docs/images), else a temp folder. */
export async function screenshotDir(): Promise<string> {
  const d = process.env.SCREENSHOT_DIR ? resolve(ROOT, process.env.SCREENSHOT_DIR) : join(tmpdir(), 'gatehouse-console-screenshots');
  await mkdir(d, { recursive: true });
  return d;
}
