/**
 * The web console in a real browser (Debian's chromium through playwright-core): sign-in with the
 * authorization code + PKCE flow, the live review list fed by a statement the PostgreSQL engine
 * holds, approve and deny reaching the agent's psql, grants, sessions with filters, kill, SQL and SSH
 * replay, the audit page, and roles (an auditor cannot approve: the console hides it, the API says 403).
 *
 * Screenshots of each page go to $SCREENSHOT_DIR (`npm run screenshots` → docs/images).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import ssh2 from 'ssh2';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { sshdAvailable, startSshd, type TestSshd } from '../support/sshd.js';
import { a11yProblems } from './a11y.js';
import { CONSOLE_CLIENT_ID, CONSOLE_INDEX, ensureChromium, launchChromium, newPage, psql, screenshotDir, startConsoleGateway, until, type ConsoleGateway } from './support.js';

const POLICY = `policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    connections: [pg]
    rules:
      - { effect: deny, sql: { tables: [secrets] }, reason: "the secrets table is off limits" }
      - { effect: review, sql: { types: [ddl] }, approvers: { groups: [dba] }, reason: "schema changes need a DBA" }
      - { effect: review, sql: { types: [delete] }, approvers: { groups: [dba] }, reason: "deletes need a DBA" }
      - { effect: allow, sql: { types: [select, insert, tcl, set, show, empty] } }
      - { effect: mask, detectors: [payment_card, api_key] }
  - name: ops
    subjects: { groups: [ai-agents] }
    connections: [build-host]
    rules:
      - { effect: allow, ssh: { channels: [exec, shell] } }
`;

const SETUP = `
CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');
CREATE TABLE customers (id int PRIMARY KEY, name text, card text);
INSERT INTO customers VALUES (1, 'Ada Lovelace', '4242 4242 4242 4242'), (2, 'Grace Hopper', '5555-5555-5555-4444'), (3, 'Alan Turing', '4000 0566 5566 5556');
CREATE TABLE secrets (k text);
`;

const SSH_TEXT = 'hello from gatehouse-replay';

const chromiumMissing = await ensureChromium();
if (chromiumMissing) console.log(`# browser tests skipped: ${chromiumMissing}`);

describe('web console in chromium', { skip: chromiumMissing ?? false, concurrency: false }, () => {
  let gw: ConsoleGateway;
  let sshd: TestSshd | undefined;
  let browser: Browser;
  let shots: string;
  const problems: string[] = [];
  const a11y: string[] = [];
  const contexts: BrowserContext[] = [];
  /** The approver's page, signed in once and never reloaded. */
  let approver: Page;

  before(async () => {
    assert.ok(existsSync(CONSOLE_INDEX), `the console is not built (${CONSOLE_INDEX} is missing): run npm run build`);
    sshd = sshdAvailable() ? await startSshd() : undefined;
    const target = sshd ? `ssh://${sshd.user}@127.0.0.1:${sshd.port}` : 'ssh://nobody@127.0.0.1:1';
    gw = await startConsoleGateway({
      policy: POLICY,
      setupSql: SETUP,
      ssh: sshd !== undefined,
      connections: [sshd ? `  - { name: build-host, type: ssh, target: "${target}", known_hosts: "${sshd.knownHostsFile}", private_key: "${sshd.clientKeyFile}" }` : `  - { name: build-host, type: ssh, target: "${target}" }`],
    });
    browser = await launchChromium();
    shots = await screenshotDir();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await gw?.close();
    await sshd?.close();
  });

  async function open(): Promise<Page> {
    const { context, page } = await newPage(browser, problems);
    contexts.push(context);
    return page;
  }

  /** Saves a screenshot of the page and checks its labels, headings and contrast. */
  async function shot(page: Page, name: string, fullPage = false): Promise<void> {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage });
    for (const p of await a11yProblems(page)) a11y.push(`${name}: ${p}`);
  }

  /** Signs in through the development issuer's login form as the given preset (`approver-1`, …). */
  async function signIn(page: Page, who: 'admin-1' | 'approver-1' | 'auditor-1', screenshots = false): Promise<void> {
    await page.goto(`${gw.base}/`);
    const button = page.getByRole('button', { name: 'Sign in with the development issuer (demo)' });
    await button.waitFor();
    if (screenshots) await shot(page, 'signin');
    await button.click();
    await page.waitForURL(/\/dev-issuer\/authorize\?/);
    if (screenshots) await shot(page, 'dev-login');
    await page.getByRole('button', { name: new RegExp(`^${who} `) }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  }

  function agentPsql(sql: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return gw.agentToken().then((t) => psql(gw.psqlEnv(t), sql));
  }

  async function pendingReview(fragment: string): Promise<{ id: string }> {
    const t = await gw.humanToken('test-approver', ['dba']);
    return until(async () => {
      const r = await gw.api(t, 'GET', '/api/reviews?state=pending');
      return (r.json as { id: string; command: string }[]).find((x) => x.command.includes(fragment));
    }, `a pending review for ${fragment}`);
  }

  test('sign in with the authorization code flow and PKCE; the console shows the roles the API gives', async () => {
    approver = await open();
    await signIn(approver, 'approver-1', true);
    await approver.waitForURL(/#\/reviews$/);
    await approver.getByRole('heading', { level: 1, name: 'Pending reviews' }).waitFor();
    const nav = approver.getByRole('navigation', { name: 'Main' });
    assert.deepEqual(await nav.getByRole('link').allTextContents(), ['Reviews', 'Grants']);
    assert.match((await approver.locator('header .user').textContent()) ?? '', /approver-1.*approver/);
    // The code and state are gone from the address bar; the token is kept for this tab only.
    assert.equal(new URL(approver.url()).search, '');
    const session = (await approver.evaluate('sessionStorage.getItem("gatehouse.session")')) as string | null;
    const token = (JSON.parse(session ?? '{}') as { token?: string }).token ?? '';
    const me = await gw.api(token, 'GET', '/api/whoami');
    assert.equal(me.status, 200);
    assert.equal((me.json as { identity: { sub: string } }).identity.sub, 'approver-1');
    await approver.waitForSelector('.live-live');
    // The first Tab reaches the skip link; following it puts the focus on the page.
    await approver.keyboard.press('Tab');
    assert.equal(await approver.evaluate('document.activeElement.textContent'), 'Skip to content');
    await approver.keyboard.press('Enter');
    assert.equal(await approver.evaluate('document.activeElement.id'), 'main');
    await approver.evaluate('window.__noReload = true');
  });

  test("sign in with the organisation's OIDC issuer (oidc-provider): authorization code + PKCE, code exchanged by the browser", async () => {
    const page = await open();
    const authRequests: URL[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(`${gw.issuer.issuer}/auth?`)) authRequests.push(new URL(r.url()));
    });
    await page.goto(`${gw.base}/`);
    await page.getByRole('button', { name: `Sign in with ${new URL(gw.issuer.issuer).host}` }).click();
    await page.waitForURL((u) => u.href.startsWith(gw.issuer.issuer));
    await page.locator('input[name=login]').fill('dba-7');
    await page.locator('input[name=password]').fill('anything');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    const auth = authRequests[0];
    assert.ok(auth, 'the console sent the browser to the authorization endpoint');
    assert.equal(auth.searchParams.get('response_type'), 'code');
    assert.equal(auth.searchParams.get('client_id'), CONSOLE_CLIENT_ID);
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    assert.match(auth.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(auth.searchParams.get('redirect_uri'), `${gw.base}/`);
    assert.match((await page.locator('header .user').textContent()) ?? '', /dba-7.*approver/);
    assert.deepEqual(await page.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents(), ['Reviews', 'Grants']);
    const session = (await page.evaluate('sessionStorage.getItem("gatehouse.session")')) as string | null;
    const me = await gw.api((JSON.parse(session ?? '{}') as { token: string }).token, 'GET', '/api/whoami');
    assert.deepEqual((me.json as { identity: { iss: string; sub: string; groups: string[] } }).identity, { iss: gw.issuer.issuer, sub: 'dba-7', client_id: CONSOLE_CLIENT_ID, groups: ['dba'], jti: (me.json as { identity: { jti: string } }).identity.jti });
    const csp = (await fetch(`${gw.base}/`)).headers.get('content-security-policy') ?? '';
    assert.match(csp, new RegExp(`connect-src 'self' ${gw.issuer.issuer.replace(/[.]/g, '\\.')}(;|$)`), csp);
  });

  test('the development token endpoint checks the PKCE verifier, the redirect URI and single use', async () => {
    const verifier = 'v'.repeat(43) + randomUUID().replace(/-/g, '');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const redirect = `${gw.base}/`;
    const code = async (): Promise<string> => {
      const form = new URLSearchParams({ response_type: 'code', client_id: 'gatehouse-console', redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', state: 's1', preset: 'auditor' });
      const r = await fetch(`${gw.base}/dev-issuer/authorize`, { method: 'POST', body: form, redirect: 'manual' });
      assert.equal(r.status, 303);
      const loc = new URL(r.headers.get('location')!);
      assert.equal(loc.searchParams.get('state'), 's1');
      return loc.searchParams.get('code')!;
    };
    const exchange = (c: string, v: string, uri = redirect) =>
      fetch(`${gw.base}/dev-issuer/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'authorization_code', code: c, code_verifier: v, redirect_uri: uri, client_id: 'gatehouse-console' }) }).then(async (r) => ({ status: r.status, json: (await r.json()) as Record<string, string> }));

    const wrong = await exchange(await code(), 'w'.repeat(50));
    assert.equal(wrong.status, 400);
    assert.equal(wrong.json.error, 'invalid_grant');
    assert.equal((await exchange(await code(), verifier, 'http://127.0.0.1:1/elsewhere')).json.error, 'invalid_grant');
    const c = await code();
    const ok = await exchange(c, verifier);
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.token_type, 'Bearer');
    assert.equal((await exchange(c, verifier)).json.error, 'invalid_grant', 'a code works once');
    // Without PKCE, or to a foreign host, there is no code at all.
    const noPkce = await fetch(`${gw.base}/dev-issuer/authorize?response_type=code&client_id=x&redirect_uri=${encodeURIComponent(redirect)}`, { redirect: 'manual' });
    assert.match(noPkce.headers.get('location') ?? '', /error=invalid_request/);
    const foreign = await fetch(`${gw.base}/dev-issuer/authorize?response_type=code&client_id=x&redirect_uri=${encodeURIComponent('https://evil.example/')}&code_challenge=${challenge}&code_challenge_method=S256`, { redirect: 'manual' });
    assert.equal(foreign.status, 400);
  });

  test('a statement held by the PostgreSQL engine appears without a reload; approving it gives the agent its result', async () => {
    await approver.getByRole('link', { name: 'Reviews' }).click();
    const running = agentPsql('DELETE FROM items WHERE id = 3 RETURNING name');
    const card = approver.getByRole('article').filter({ hasText: 'DELETE FROM items WHERE id = 3' });
    await card.waitFor({ timeout: 15_000 });
    const text = (await card.textContent()) ?? '';
    assert.match(text, /agent-a → pg/);
    assert.match(text, /agents#2: deletes need a DBA/);
    assert.match(text, /waiting \d+ s/);
    assert.match(text, /group dba; 0 of 1 approval/);
    await shot(approver, 'reviews');
    // Keyboard only: the reason box, then Tab to Approve and Enter.
    await card.getByLabel(/^Reason/).focus();
    await approver.keyboard.type('ticket OPS-42, looks right');
    await approver.keyboard.press('Tab');
    assert.equal(await approver.evaluate('document.activeElement.textContent'), 'Approve');
    await approver.keyboard.press('Enter');
    const r = await running;
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^three$/m);
    await card.waitFor({ state: 'detached' });
    assert.match((await approver.locator('table').first().textContent()) ?? '', /ticket OPS-42/);
    assert.equal(await approver.evaluate('window.__noReload'), true, 'the page was not reloaded');
  });

  test('denying with a reason: the agent sees the reason and nothing runs', async () => {
    const running = agentPsql('CREATE TABLE denied_t (x int)');
    const card = approver.getByRole('article').filter({ hasText: 'CREATE TABLE denied_t' });
    await card.waitFor({ timeout: 15_000 });
    await card.getByRole('button', { name: 'Deny' }).click();
    await card.getByRole('alert').filter({ hasText: 'Give a reason' }).waitFor();
    assert.equal(await card.getByLabel(/^Reason/).getAttribute('aria-invalid'), 'true');
    await card.getByLabel(/^Reason/).fill('not during the change freeze');
    await card.getByRole('button', { name: 'Deny' }).click();
    const r = await running;
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not during the change freeze/);
    assert.equal((await gw.db.query(`SELECT to_regclass('denied_t') IS NULL AS gone`)).rows[0].gone, true);
    assert.equal(await approver.evaluate('window.__noReload'), true, 'the page was not reloaded');
  });

  test('an auditor cannot approve: the console hides it and the API answers 403', async () => {
    const auditor = await open();
    await signIn(auditor, 'auditor-1');
    await auditor.waitForURL(/#\/sessions/);
    assert.deepEqual(await auditor.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents(), ['Sessions', 'Audit']);
    const running = agentPsql('CREATE TABLE auditor_t (x int)');
    const review = await pendingReview('auditor_t');
    await auditor.goto(`${gw.base}/#/reviews/${review.id}`);
    await auditor.getByText('This page needs the approver role').waitFor();
    assert.equal(await auditor.getByRole('button', { name: 'Approve' }).count(), 0);
    const answer = await auditor.evaluate(async (id) => {
      const storage = (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage;
      const { token } = JSON.parse(storage.getItem('gatehouse.session') ?? '{}') as { token: string };
      const res = await fetch(`/api/reviews/${id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
      return { status: res.status, body: (await res.json()) as { error: { code: string } } };
    }, review.id);
    assert.equal(answer.status, 403);
    assert.equal(answer.body.error.code, 'ERR_FORBIDDEN');
    // Still pending: an approver denies it so the agent is released.
    const card = approver.getByRole('article').filter({ hasText: 'CREATE TABLE auditor_t' });
    await card.getByLabel(/^Reason/).fill('cleaning up after the auditor test');
    await card.getByRole('button', { name: 'Deny' }).click();
    assert.match((await running).stderr, /cleaning up/);
  });

  test('grants: a request appears live, is approved with time left shown, and is revoked', async () => {
    await approver.getByRole('link', { name: 'Grants' }).click();
    await approver.getByRole('heading', { name: 'Access grants' }).waitFor();
    const agent = await gw.agentToken();
    const first = await gw.api(agent, 'POST', '/api/grants', { connection: 'pg', duration: '30m', reason: 'rotate the reporting keys' });
    assert.equal(first.status, 201, JSON.stringify(first.json));
    await gw.api(agent, 'POST', '/api/grants', { connection: 'build-host', duration: '2h', reason: 'deploy the hotfix' });
    await approver.getByRole('button', { name: 'Approve agent-a on pg' }).click();
    const active = approver.locator('table', { has: approver.getByRole('columnheader', { name: 'Time left' }) });
    await active.getByRole('cell', { name: /^(29|30) min \d\d s$/ }).waitFor();
    await approver.getByRole('button', { name: 'Deny agent-a on build-host' }).waitFor();
    await shot(approver, 'grants', true);
    await approver.getByLabel('Reason for revoking agent-a on pg').fill('done early');
    await approver.getByRole('button', { name: 'Revoke agent-a on pg' }).click();
    await active.waitFor({ state: 'detached' });
    const g = await gw.api(agent, 'GET', `/api/grants/${(first.json as { id: string }).id}`);
    assert.equal((g.json as { state: string }).state, 'revoked');
    await approver.getByLabel('Reason for agent-a on build-host').fill('use the pipeline');
    await approver.getByRole('button', { name: 'Deny agent-a on build-host' }).click();
    await approver.getByText('No grant request is waiting.').waitFor();
  });

  test('sessions: filters by agent, protocol and decision; SQL replay shows decisions, durations, row counts and masked samples', async () => {
    const url = `postgres://agent:${encodeURIComponent(await gw.agentToken())}@127.0.0.1:${gw.pgPort}/pg?sslmode=disable`;
    const quiet = new pg.Client({ connectionString: url });
    await quiet.connect();
    await quiet.query('SELECT 1');
    await quiet.end();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const rows = await c.query('SELECT name, card FROM customers ORDER BY id');
    assert.equal(rows.rows.length, 3);
    assert.doesNotMatch(JSON.stringify(rows.rows), /4242 4242 4242 4242/);
    await c.query('INSERT INTO items VALUES (10, $1)', ['ten']);
    await assert.rejects(c.query('SELECT * FROM secrets'), /off limits/);
    await c.query('SELECT count(*) FROM items');
    await c.end();
    await gw.gateway.parts.sessions.flush();
    await gw.gateway.parts.audit.flush();

    const auditor = await open();
    await signIn(auditor, 'auditor-1');
    await auditor.getByRole('heading', { name: 'Sessions' }).waitFor();
    await auditor.getByLabel('Agent', { exact: true }).fill('agent-a');
    await auditor.getByLabel('Protocol', { exact: true }).selectOption('postgres');
    await auditor.getByRole('button', { name: 'Apply' }).click();
    await auditor.waitForURL(/protocol=postgres/);
    const table = auditor.locator('table.sessions');
    await table.getByText('1 denied').first().waitFor();
    const all = await table.locator('tbody tr').count();
    await auditor.getByLabel('Decision', { exact: true }).selectOption('deny');
    await auditor.getByRole('button', { name: 'Apply' }).click();
    await auditor.waitForURL(/decision=deny/);
    await until(async () => ((await table.locator('tbody tr').count()) < all ? true : undefined), 'the decision filter');
    const commands = await table.locator('tbody tr td:nth-child(6)').allTextContents();
    assert.ok(commands.length >= 1 && commands.every((t) => /\d+ denied/.test(t)), commands.join(' | '));
    for (const row of await table.locator('tbody tr td:nth-child(2)').allTextContents()) assert.equal(row, 'agent-a');
    await shot(auditor, 'sessions');
    // Newest first: the session that read the customers and was refused the secrets.
    await table.getByRole('link', { name: /^Replay agent-a's postgres session on pg/ }).first().click();
    await auditor.getByRole('heading', { level: 1, name: 'agent-a → pg (postgres)' }).waitFor();
    const timeline = auditor.getByRole('list', { name: 'Recorded statements' });
    const select = timeline.getByRole('listitem').filter({ hasText: 'SELECT name, card FROM customers' });
    await select.waitFor();
    const selectText = (await select.textContent()) ?? '';
    assert.match(selectText, /Allowed/);
    assert.match(selectText, /SELECT 3 · 3 rows · [\d.]+ ms/);
    assert.match(selectText, /Ada Lovelace/);
    assert.match(selectText, /Ada Lovelace\[card\]/, `the sample is masked: ${selectText}`);
    assert.doesNotMatch(selectText, /4242 4242 4242 4242/);
    const denied = timeline.getByRole('listitem').filter({ hasText: 'SELECT * FROM secrets' });
    assert.match((await denied.textContent()) ?? '', /Denied.*rule agents#0.*Refused: the secrets table is off limits/s);
    assert.match((await timeline.getByRole('listitem').filter({ hasText: 'INSERT INTO items' }).textContent()) ?? '', /INSERT 0 1 · 1 affected/);
    await shot(auditor, 'replay-sql', true);
    await auditor.getByLabel('Show').selectOption('deny');
    assert.equal(await timeline.getByRole('listitem').count(), 1);
  });

  test('an admin kills a live session from the console', async () => {
    const c = new pg.Client({ connectionString: `postgres://agent:${encodeURIComponent(await gw.agentToken())}@127.0.0.1:${gw.pgPort}/pg?sslmode=disable` });
    const ended = new Promise<string>((resolve) => {
      c.on('error', (e) => resolve(e.message));
      c.on('end', () => resolve('end'));
    });
    await c.connect();
    await c.query('SELECT 1');
    const admin = await open();
    await signIn(admin, 'admin-1');
    await admin.goto(`${gw.base}/#/sessions?state=live&protocol=postgres`);
    await admin.getByRole('button', { name: "Kill agent-a's session on pg" }).click();
    await admin.getByLabel("Reason for killing agent-a's session").fill('runaway agent');
    await admin.getByRole('button', { name: 'Kill session' }).click();
    const why = await Promise.race([ended, new Promise<string>((r) => setTimeout(() => r('still open'), 10_000))]);
    assert.notEqual(why, 'still open');
    await admin.getByText('No session matches.').waitFor();
    const t = await gw.humanToken('test-auditor', ['auditors']);
    const sessions = (await gw.api(t, 'GET', '/api/sessions?protocol=postgres&limit=1')).json as { end_reason: string }[];
    assert.match(sessions[0]?.end_reason ?? '', /runaway agent/);
  });

  test('the replay of a recorded SSH session shows its output in the terminal player, with speed control and seeking', async () => {
    let sessionId: string;
    if (sshd && gw.sshPort) {
      const token = await gw.agentToken();
      const client = await new Promise<ssh2.Client>((resolve, reject) => {
        const cl = new ssh2.Client();
        cl.once('ready', () => resolve(cl));
        cl.once('error', reject);
        cl.connect({ host: '127.0.0.1', port: gw.sshPort, username: 'build-host', password: token, readyTimeout: 20_000, hostVerifier: () => true });
      });
      const out = await new Promise<string>((resolve, reject) => {
        client.exec(`printf '%s\\n' '${SSH_TEXT}'; printf 'uptime checked\\n'`, { pty: { cols: 80, rows: 12, term: 'xterm' } }, (err, stream) => {
          if (err) return reject(err);
          let s = '';
          stream.on('data', (d: Buffer) => (s += d.toString()));
          stream.on('close', () => resolve(s));
        });
      });
      client.end();
      assert.match(out, new RegExp(SSH_TEXT));
      const t = await gw.humanToken('test-auditor', ['auditors']);
      sessionId = await until(async () => {
        const list = (await gw.api(t, 'GET', '/api/sessions?protocol=ssh')).json as { id: string; live: boolean }[];
        return list.find((s) => !s.live)?.id;
      }, 'the ended SSH session');
    } else {
      // No sshd here (it needs root and openssh-server): a session recorded as the SSH engine records it.
      sessionId = randomUUID();
      const store = gw.gateway.parts.store;
      const startedAt = Date.now() - 5000;
      await store.createSession({ id: sessionId, protocol: 'ssh', connection: 'build-host', issuer: gw.issuer.issuer, subject: 'agent-a', clientId: 'agent-a', groups: ['ai-agents'], startedAt });
      await store.appendRecording([
        { sessionId, seq: 1, t: 10, type: 'statement', data: { command: `printf … ${SSH_TEXT}`, kind: 'ssh', effect: 'allow', rule: 'ops#0' } },
        { sessionId, seq: 2, t: 20, type: 'resize', data: { cols: 80, rows: 12 } },
        { sessionId, seq: 3, t: 400, type: 'output', data: { data: `${SSH_TEXT}\r\n` } },
        { sessionId, seq: 4, t: 900, type: 'output', data: { data: 'uptime checked\r\n' } },
      ]);
      await store.endSession(sessionId, startedAt + 1000, 'client closed the connection');
    }

    const auditor = await open();
    await signIn(auditor, 'auditor-1');
    await auditor.goto(`${gw.base}/#/sessions?protocol=ssh`);
    await auditor.getByRole('link', { name: /^Replay agent-a's ssh session on build-host/ }).first().click();
    await auditor.waitForURL(new RegExp(`#/sessions/${sessionId}`));
    const player = auditor.getByRole('figure', { name: /Terminal recording of agent-a on build-host/ });
    await player.waitFor();
    await player.locator('.ap-term-text').waitFor();
    await player.getByLabel('Speed').selectOption('2');
    await player.getByRole('button', { name: 'End' }).click();
    await until(async () => ((await player.locator('.ap-term-text').textContent()) ?? '').includes(SSH_TEXT) || undefined, 'the recorded text in the player', 10_000);
    assert.match((await player.locator('.ap-term-text').textContent()) ?? '', /uptime checked/);
    const position = player.getByLabel('Position');
    assert.notEqual(await position.inputValue(), '0');
    await player.getByRole('button', { name: 'Start' }).click();
    await until(async () => ((await position.inputValue()) === '0' ? true : undefined), 'the player back at the start', 5000);
    await player.getByRole('button', { name: 'End' }).click();
    await until(async () => ((await player.locator('.ap-term-text').textContent()) ?? '').includes(SSH_TEXT) || undefined, 'the text again');
    await shot(auditor, 'replay-ssh', true);
  });

  test('audit: the hash chain verifies, events filter by type, and the export is JSON lines', async () => {
    await gw.gateway.parts.audit.flush();
    const auditor = await open();
    await signIn(auditor, 'auditor-1');
    await auditor.getByRole('link', { name: 'Audit' }).click();
    await auditor.getByText(/Intact\. \d+ events verified/).waitFor();
    await auditor.getByLabel('Type').fill('review.denied');
    await auditor.getByRole('button', { name: 'Apply' }).click();
    await auditor.waitForURL(/type=review\.denied/);
    const table = auditor.locator('table.audit');
    await table.locator('tbody tr').first().waitFor();
    const types = await table.locator('tbody tr td:nth-child(3)').allTextContents();
    assert.ok(types.length >= 2, `denied reviews: ${types.join(',')}`);
    assert.ok(types.every((t) => t === 'review.denied'), types.join(','));
    const download = auditor.waitForEvent('download');
    await auditor.getByRole('button', { name: 'Export JSON lines' }).click();
    const file = await (await download).path();
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    assert.equal(lines.length, types.length);
    for (const line of lines) {
      const e = JSON.parse(line) as { type: string; hash: string; prev_hash: string; seq: number };
      assert.equal(e.type, 'review.denied');
      assert.match(e.hash, /\S/);
    }
    await auditor.getByRole('button', { name: 'Clear' }).click();
    await table.locator('tbody tr').nth(3).waitFor();
    await shot(auditor, 'audit');
  });

  test('the console is served with a strict CSP and caching, and no page broke it', async () => {
    const res = await fetch(`${gw.base}/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.equal(csp.match(/https?:\/\/[^\s;]+/g)?.join(' '), gw.issuer.issuer, `no origin but the issuer's token endpoint: ${csp}`);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const html = await res.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, html);
    const a = await fetch(`${gw.base}${asset}`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(a.status, 200);
    assert.match(a.headers.get('cache-control') ?? '', /immutable/);
    const again = await fetch(`${gw.base}${asset}`, { headers: { 'if-none-match': a.headers.get('etag') ?? '' } });
    assert.equal(again.status, 304);
    assert.deepEqual(problems, []);
  });

  test('every page has labelled controls, one h1 and AA contrast', () => {
    assert.deepEqual(a11y, []);
  });
});
