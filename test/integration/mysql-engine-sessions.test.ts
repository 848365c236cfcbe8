/**
 * MySQL engine sessions against the real MariaDB: reviews approved and denied through the HTTP API,
 * the end of a session at token expiry, revocation, kill and idle timeout (mid-statement too),
 * `KILL QUERY` of the agent's own connection, TLS from the agent, character sets, compression
 * refused, a malicious target's LOCAL INFILE request, and garbage bytes that never crash the listener.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, privateDecrypt, randomBytes, constants as cryptoConstants } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { networkInterfaces } from 'node:os';
import {
  Capability,
  ClientParser,
  ColumnType,
  Sequence,
  client,
  generateScramble,
  server,
  type ClientMessage,
} from '../../src/engines/mysql/index.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { makeTestCert, type TestCert } from '../support/tls.js';
import { WireClient, mysql2Connect, mysqlCli, rejection, startMysqlGateway, until, type MysqlGateway } from './mysql-engine-support.js';

const POLICY = `policies:
  - name: agents
    subjects: { groups: [ai-agents, dba] }
    connections: [prod-mysql, evil-mysql]
    rules:
      - { effect: deny, sql: { subtypes: ["drop_*"] }, reason: "dropping is not allowed" }
      - { effect: review, sql: { types: [ddl] }, approvers: { groups: [dba] }, reason: "schema changes need a DBA" }
      - { effect: review, sql: { types: [delete] }, approvers: { groups: [dba], require_reason: true }, reason: "deletes need a reason" }
      - { effect: allow, sql: { types: [select, insert, set, show, tcl, empty, utility] } }
`;

async function api(gw: TestGateway, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

describe('MySQL engine: reviews and the end of sessions', () => {
  let g: MysqlGateway;

  before(async () => {
    g = await startMysqlGateway({
      policy: POLICY,
      setupMysql: "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50)); INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three');",
      extraConfig: 'review: { hold_timeout: 20s, valid_for: 5m }',
    });
  });

  after(async () => {
    await g?.close();
  });

  async function pendingReview(dba: string, fragment: string): Promise<Record<string, unknown>> {
    return until(async () => {
      const r = await api(g.gw, dba, 'GET', '/api/reviews?state=pending');
      return (r.json as unknown as Record<string, unknown>[]).find((x) => String(x.command).includes(fragment));
    }, `a pending review for ${fragment}`);
  }

  async function tableExists(name: string): Promise<boolean> {
    const rows = (await g.db.query('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?', [name])) as unknown[];
    return (rows[1] as { n: number }[])[0]!.n === 1;
  }

  test('a held DDL statement waits silently and runs once a DBA approves it through the API', async () => {
    const c = await mysql2Connect(g.port, await g.token());
    const dba = await g.token({ clientId: 'dba-1' });
    let settled = false;
    const running = c.query('CREATE TABLE approved_t (x INT)').finally(() => (settled = true));
    const review = await pendingReview(dba, 'approved_t');
    assert.equal(review.subject, 'agent-a');
    assert.equal(settled, false, 'held until approved');
    const ok = await api(g.gw, dba, 'POST', `/api/reviews/${String(review.id)}/approve`, { reason: 'fine' });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    await running;
    assert.equal(await tableExists('approved_t'), true);
    await c.end();
  });

  test('a denied review answers 1142 with the approver reason; SET gatehouse.reason is the justification', async () => {
    const token = await g.token();
    const dba = await g.token({ clientId: 'dba-1' });
    const c = await mysql2Connect(g.port, token);
    const held = c.query('CREATE TABLE denied_t (x INT)').catch((e: Error & { errno?: number }) => e);
    const review = await pendingReview(dba, 'denied_t');
    await api(g.gw, dba, 'POST', `/api/reviews/${String(review.id)}/deny`, { reason: 'not in this sprint' });
    const e = await held;
    assert.ok(e instanceof Error);
    assert.equal((e as { errno?: number }).errno, 1142);
    assert.match(e.message, /not in this sprint/);
    assert.equal(await tableExists('denied_t'), false);
    // The justification: the gateway answers SET gatehouse.reason itself (MariaDB would refuse it).
    assert.match((await rejection(c.query('DELETE FROM items WHERE id = 3'))).message, /justification/);
    await c.query("SET gatehouse.reason = 'removing test row 3'");
    const del = c.query('DELETE FROM items WHERE id = 3');
    const r2 = await pendingReview(dba, 'DELETE FROM items');
    assert.equal(r2.justification, 'removing test row 3');
    await api(g.gw, dba, 'POST', `/api/reviews/${String(r2.id)}/approve`, {});
    const [res] = (await del) as unknown as [{ affectedRows: number }];
    assert.equal(res.affectedRows, 1);
    await c.end();
  });

  test('the session ends when the token expires: the next command fails with the reason, a new login is refused', async () => {
    const token = await g.gw.issuer.token({ ttlSec: 3 });
    const c = await mysql2Connect(g.port, token);
    const [rows] = await c.query('SELECT 1 AS one');
    assert.deepStrictEqual(rows, [{ one: 1 }]);
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    await until(() => (errors.length > 0 ? true : undefined), 'the end of the session', 8000);
    assert.match(errors[0]!.message, /token expired/);
    const cli = await mysqlCli(g.port, token, ['-e', 'SELECT 1']);
    assert.match(cli.stderr, /ERROR 1045 \(28000\).*(expired|exp)/i);
  });

  test('token expiry in the middle of a statement stops it on the target and answers with the reason', async () => {
    const token = await g.gw.issuer.token({ ttlSec: 2 });
    const c = await mysql2Connect(g.port, token);
    const t0 = Date.now();
    const e = await rejection(c.query('SELECT SLEEP(30)'));
    assert.ok(Date.now() - t0 < 10_000, `ended after ${Date.now() - t0} ms`);
    assert.match(e.message, /token expired/);
    // KILL QUERY reached the target: no SLEEP(30) is left running there.
    await until(async () => {
      const rows = (await g.db.query("SELECT COUNT(*) AS n FROM information_schema.processlist WHERE info = 'SELECT SLEEP(30)'")) as unknown[];
      return (rows[1] as { n: number }[])[0]!.n === 0 ? true : undefined;
    }, 'the statement to stop on the target');
  });

  test('a revocation ends a live session within a second', async () => {
    const c = await mysql2Connect(g.port, await g.token({ clientId: 'agent-b' }));
    const ended = new Promise<Error>((resolve) => c.on('error', resolve));
    const admin = await g.token({ clientId: 'admin-1' });
    const t0 = Date.now();
    const r = await api(g.gw, admin, 'POST', '/api/revocations', { client_id: 'agent-b', reason: 'compromised' });
    assert.equal(r.status, 201);
    const e = await ended;
    assert.ok(Date.now() - t0 < 1500, `ended after ${Date.now() - t0} ms`);
    assert.match(e.message, /revoked/);
    const again = await rejection(mysql2Connect(g.port, await g.token({ clientId: 'agent-b' })));
    assert.match(again.message, /revoked/);
    await api(g.gw, admin, 'DELETE', `/api/revocations/${String(r.json.id)}`);
    const c3 = await mysql2Connect(g.port, await g.token({ clientId: 'agent-b' }));
    await c3.end();
  });

  test('an admin kills a live session through the API; KILL QUERY of the agent’s own connection stops its statement', async () => {
    const c = await mysql2Connect(g.port, await g.token());
    const running = rejection(c.query('SELECT SLEEP(30)'));
    await new Promise((r) => setTimeout(r, 300));
    const other = await mysql2Connect(g.port, await g.token());
    // mysql2's threadId is the gateway's connection id (from its greeting), as the mysql CLI's Ctrl-C uses it.
    await other.query(`KILL QUERY ${c.threadId}`);
    const e = await running;
    assert.match(e.message, /interrupted/i);
    const [rows] = await c.query('SELECT 2 AS two');
    assert.deepStrictEqual(rows, [{ two: 2 }]);
    // Someone else's connection id is not the agent's to kill: it goes to policy and the target.
    const admin = await g.token({ clientId: 'admin-1' });
    const sessions = (await api(g.gw, await g.token({ clientId: 'auditor-1' }), 'GET', '/api/sessions?live=true&connection=prod-mysql')).json as unknown as { id: string }[];
    const ended = new Promise<Error>((resolve) => c.on('error', resolve));
    for (const s of sessions) await api(g.gw, admin, 'POST', `/api/sessions/${s.id}/kill`, { reason: 'test' });
    assert.match((await ended).message, /killed/);
    await other.end().catch(() => undefined);
  });

  test('idle sessions end after the idle timeout', async () => {
    const gw = await startTestGateway({
      policy: POLICY,
      noDatabase: true,
      issuer: g.gw.issuer,
      listen: { mysql: '127.0.0.1:0' },
      connections: `  - { name: prod-mysql, type: mysql, target: "${g.db.url}", idle_timeout: 1s }`,
    });
    try {
      const c = await mysql2Connect(gw.gateway.address('mysql')!.port, await gw.token());
      const ended = new Promise<Error>((resolve) => c.on('error', resolve));
      await c.query('SELECT 1');
      const e = await ended;
      assert.match(e.message, /idle/);
    } finally {
      await gw.close();
    }
  });

  test('character sets that can hide a backslash are refused, at the handshake and by SET NAMES', async () => {
    const e = await rejection(mysql2Connect(g.port, await g.token(), { charset: 'GBK_CHINESE_CI' }));
    assert.match(e.message, /character set 28 is not supported/);
    const c = await mysql2Connect(g.port, await g.token());
    for (const sql of ['SET NAMES gbk', "SET character_set_client = 'big5'", 'SET collation_connection = gbk_chinese_ci', 'SET CHARACTER SET sjis']) {
      assert.match((await rejection(c.query(sql))).message, /backslash byte/, sql);
    }
    await c.query('SET NAMES utf8mb4');
    await c.end();
  });

  test('a client that asks for compression anyway is refused cleanly; one without pluggable auth too', async () => {
    const base = (Capability.LONG_PASSWORD | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.CONNECT_WITH_DB) >>> 0;
    await assert.rejects(WireClient.login(g.port, await g.token(), 'prod-mysql', base | Capability.COMPRESS, true), /ERR 1043: .*compression is not supported/);
    await assert.rejects(WireClient.login(g.port, await g.token(), 'prod-mysql', base & ~Capability.PLUGIN_AUTH, true), /ERR 1043: .*pluggable authentication/);
    await assert.rejects(WireClient.login(g.port, await g.token(), 'no-such-connection'), /ERR 1049: .*does not exist/);
    await assert.rejects(WireClient.login(g.port, 'not-a-token'), /ERR 1045: /);
  });

  test('garbage bytes never crash the listener: before the handshake, inside it, and after login', async () => {
    const rnd = (n: number): Buffer => randomBytes(n);
    for (let i = 0; i < 40; i++) {
      const s = await new Promise<Socket>((resolve, reject) => {
        const sock = connect(g.port, '127.0.0.1', () => resolve(sock));
        sock.once('error', reject);
      });
      s.on('error', () => undefined);
      s.resume();
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
      const variant = i % 4;
      if (variant === 0) s.write(rnd(1 + (i % 300)));
      else if (variant === 1) s.write(Buffer.concat([Buffer.from([0x20, 0, 0, 1]), rnd(32)]));
      else if (variant === 2) s.write(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 1]), rnd(64)]));
      else s.write(Buffer.concat([client.sslRequest({ capabilities: Capability.PROTOCOL_41 }).subarray(0, 20), rnd(100)]));
      s.end();
      // The gateway refuses and closes at once (within the 2 s it waits for its error to be read).
      const t0 = Date.now();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
      assert.ok(Date.now() - t0 < 4000, `variant ${variant}: closed after ${Date.now() - t0} ms`);
      s.destroy();
    }
    // After login: garbage in the command phase ends that session only.
    const c = await WireClient.login(g.port, await g.token());
    const unknown = await c.command(Buffer.concat([Buffer.from([0xe0]), rnd(40)]), 'simple');
    assert.equal(unknown[0]?.name, 'ErrPacket', 'an unknown command byte is refused');
    // A command with a sequence id other than 0 is a protocol violation: that session ends.
    c.socket.write(Buffer.concat([Buffer.from([0x05, 0, 0, 7]), rnd(5), rnd(2000)]));
    await until(() => (c.closed ? true : undefined), 'the garbage session to end');
    const ok = await mysql2Connect(g.port, await g.token());
    const [rows] = await ok.query('SELECT name FROM items WHERE id = 1');
    assert.deepStrictEqual(rows, [{ name: 'one' }]);
    await ok.end();
  });
});

describe('MySQL engine: TLS from the agent', () => {
  let cert: TestCert;
  let g: MysqlGateway;
  const lanAddress = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

  before(async () => {
    cert = await makeTestCert();
    g = await startMysqlGateway({ policy: POLICY, tls: { certFile: cert.certFile, keyFile: cert.keyFile }, listenAddress: lanAddress ? '0.0.0.0:0' : '127.0.0.1:0' });
  });

  after(async () => {
    await g?.close();
    await cert?.cleanup();
  });

  test('the mysql CLI with --ssl and mysql2 with ssl log in over TLS with the listener certificate', async () => {
    const token = await g.token();
    // --ssl-verify-server-cert: the login fails unless TLS is up with the listener's certificate.
    const r = await mysqlCli(g.port, token, ['--ssl', `--ssl-ca=${cert.certFile}`, '--ssl-verify-server-cert', '--skip-column-names', '-e', 'SELECT 42']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /42/);
    const c = await mysql2Connect(g.port, token, { ssl: { ca: cert.cert } });
    const [rows] = await c.query('SELECT 7 AS seven');
    assert.deepStrictEqual(rows, [{ seven: 7 }]);
    await c.end();
  });

  test('off loopback, the token is taken only inside TLS', { skip: lanAddress === undefined ? 'no non-loopback IPv4 address' : false }, async () => {
    const token = await g.token();
    // MariaDB's client uses TLS on its own when offered: --skip-ssl keeps it in the clear.
    const plain = await mysqlCli(g.port, token, ['--skip-ssl', '-e', 'SELECT 1'], { host: lanAddress! });
    assert.match(plain.stderr, /ERROR 3159 .*only over TLS/);
    const tls = await mysqlCli(g.port, token, ['--ssl', `--ssl-ca=${cert.certFile}`, '--skip-column-names', '-e', 'SELECT 1'], { host: lanAddress! });
    assert.equal(tls.code, 0, tls.stderr);
    assert.equal(tls.stdout, '1\n');
  });
});

describe('MySQL engine: a malicious target', () => {
  let fake: Server;
  let fakePort = 0;
  const received: Buffer[] = [];
  let gw: TestGateway;

  before(async () => {
    // A target that answers every query by asking the client for /etc/passwd.
    fake = createServer((sock) => {
      const parser = new ClientParser({ serverCapabilities: 0xffffffff });
      const seq = new Sequence();
      let caps = 0;
      let awaitingFile = false;
      sock.on('error', () => undefined);
      sock.on('data', (chunk: Buffer) => {
        let msgs: ClientMessage[];
        try {
          msgs = parser.push(chunk);
        } catch {
          sock.destroy();
          return;
        }
        for (const m of msgs) {
          if (m.name.startsWith('Com')) seq.reset();
          seq.receive({ sequenceId: m.sequenceId, lastSequenceId: m.sequenceId, payload: m.payload, raw: m.raw });
          if (m.name === 'HandshakeResponse41') {
            caps = parser.capabilities;
            sock.write(seq.frame(server.ok({}, caps)));
            parser.expectCommands();
          } else if (m.name === 'ComQuery') {
            awaitingFile = true;
            parser.expectLocalInfileData();
            sock.write(seq.frame(server.localInfileRequest('/etc/passwd')));
          } else if (m.name === 'LocalInfileData' && awaitingFile) {
            received.push(m.data);
            if (m.data.length === 0) {
              awaitingFile = false;
              sock.write(seq.frame(server.ok({ affectedRows: 0 }, caps)));
            }
          } else if (m.name === 'ComQuit') sock.end();
        }
      });
      const caps0 = (Capability.LONG_PASSWORD | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.TRANSACTIONS | Capability.MULTI_RESULTS | Capability.DEPRECATE_EOF | Capability.SESSION_TRACK | Capability.LOCAL_FILES | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS) >>> 0;
      sock.write(seq.frame(server.handshakeV10({ serverVersion: '8.0.0-evil', connectionId: 1, authPluginData: generateScramble(), capabilities: caps0 })));
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    fakePort = (fake.address() as { port: number }).port;
    gw = await startTestGateway({ policy: POLICY, noDatabase: true, listen: { mysql: '127.0.0.1:0' }, connections: `  - { name: evil-mysql, type: mysql, target: "mysql://svc:pw@127.0.0.1:${fakePort}/x" }` });
  });

  after(async () => {
    await gw?.close();
    await new Promise<void>((r) => fake.close(() => r()));
  });

  test('a LOCAL INFILE request for a statement that is not an allowed LOAD DATA LOCAL gets an empty file; the agent an error', async () => {
    const c = await WireClient.login(gw.gateway.address('mysql')!.port, await gw.token(), 'evil-mysql', (Capability.LONG_PASSWORD | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CONNECT_WITH_DB | Capability.LOCAL_FILES | Capability.TRANSACTIONS | Capability.DEPRECATE_EOF) >>> 0);
    const r = await c.query('SELECT 1');
    assert.match(r.error?.message ?? '', /LOAD DATA LOCAL INFILE is not allowed/);
    assert.deepStrictEqual(received.map((b) => b.length), [0], 'the target got an empty file, nothing of the agent’s');
    c.close();
  });
});

interface Sha2Target {
  port: number;
  /** Per login: `fast` (scramble matched the cache), `full-rsa`, `full-tls`, or `refused`. */
  logins: string[];
  close(): Promise<void>;
}

/**
 * A target speaking caching_sha2_password as MySQL 8 does (MariaDB has no such plugin): the first
 * login of a user takes the full path (RSA-encrypted password, or cleartext inside TLS), later ones
 * the fast path from the server's cache. Queries get a one-row result.
 */
async function startSha2Target(password: string, cert?: TestCert): Promise<Sha2Target> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const sha256 = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();
  const stored = sha256(sha256(password));
  const context = cert ? createSecureContext({ cert: cert.cert, key: cert.key }) : undefined;
  let cached = false;
  const logins: string[] = [];
  const CAPS = (Capability.LONG_PASSWORD | Capability.LONG_FLAG | Capability.CONNECT_WITH_DB | Capability.PROTOCOL_41 | Capability.TRANSACTIONS | Capability.SECURE_CONNECTION | Capability.MULTI_STATEMENTS | Capability.MULTI_RESULTS | Capability.PS_MULTI_RESULTS | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CONNECT_ATTRS | Capability.DEPRECATE_EOF | Capability.SESSION_TRACK | Capability.LOCAL_FILES | (cert ? Capability.SSL : 0)) >>> 0;
  const srv = createServer((sock) => {
    const scramble = generateScramble();
    const seq = new Sequence();
    const parser = new ClientParser({ serverCapabilities: CAPS });
    let caps = 0;
    let stream: Duplex = sock;
    let state: 'hello' | 'full' | 'key' | 'ready' = 'hello';
    const send = (payload: Buffer): void => void stream.write(seq.frame(payload));
    const done = (how: string, ok: boolean): void => {
      logins.push(ok ? how : 'refused');
      if (ok) {
        cached = true;
        send(server.ok({}, caps));
        parser.expectCommands();
        state = 'ready';
      } else {
        send(server.err({ code: 1045, sqlState: '28000', message: 'Access denied' }, caps));
        stream.end();
      }
    };
    const onData = (chunk: Buffer): void => {
      let msgs: ClientMessage[];
      try {
        msgs = parser.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const m of msgs) {
        if (m.name.startsWith('Com')) seq.reset();
        seq.receive({ sequenceId: m.sequenceId, lastSequenceId: m.sequenceId, payload: m.payload, raw: m.raw });
        if (m.name === 'SSLRequest') {
          sock.removeAllListeners('data');
          sock.pause();
          const early = parser.takeTlsBytes();
          if (early.length > 0) sock.unshift(early);
          const secure = new TLSSocket(sock, { isServer: true, secureContext: context! });
          secure.once('secure', () => parser.startTls());
          secure.on('data', onData);
          secure.on('error', () => sock.destroy());
          stream = secure;
        } else if (m.name === 'HandshakeResponse41') {
          caps = parser.capabilities;
          const mix = sha256(Buffer.concat([stored, scramble]));
          const stage1 = Buffer.from(m.authResponse.map((b, i) => b ^ mix[i]!));
          if (!sha256(stage1).equals(stored)) {
            done('scramble', false);
          } else if (cached) {
            send(server.authMoreData(Buffer.from([0x03])));
            done('fast', true);
          } else {
            state = 'full';
            send(server.authMoreData(Buffer.from([0x04])));
          }
        } else if (m.name === 'AuthResponse') {
          if (state === 'full' && stream !== sock) done('full-tls', m.data.toString('utf8').replace(/\0$/, '') === password);
          else if (state === 'full' && m.data.length === 1 && m.data[0] === 0x02) {
            state = 'key';
            send(server.authMoreData(Buffer.from(publicKey)));
          } else if (state === 'key') {
            const plain = privateDecrypt({ key: privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, m.data);
            done('full-rsa', Buffer.from(plain.map((b, i) => b ^ scramble[i % 20]!)).toString('utf8').replace(/\0$/, '') === password);
          } else done('unexpected', false);
        } else if (m.name === 'ComQuery') {
          stream.write(Buffer.concat(server.textResultSet({ columns: [{ name: 'answer', type: ColumnType.VAR_STRING }], rows: [['sha2 target']] }, caps).map((x) => seq.frame(x))));
        } else if (m.name === 'ComPing' || m.name === 'ComInitDb') send(server.ok({}, caps));
        else if (m.name === 'ComQuit') stream.end();
      }
    };
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
    send(server.handshakeV10({ serverVersion: '8.0.36-sha2-test', connectionId: 9, authPluginData: scramble, capabilities: CAPS, authPlugin: 'caching_sha2_password' }));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as { port: number }).port, logins, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

describe('MySQL engine: a caching_sha2_password target, in the clear and over TLS', () => {
  let cert: TestCert;
  const targets: Sha2Target[] = [];
  const gateways: TestGateway[] = [];

  before(async () => {
    cert = await makeTestCert();
  });

  after(async () => {
    for (const g of gateways) await g.close();
    for (const t of targets) await t.close();
    await cert?.cleanup();
  });

  async function gatewayFor(target: string, extra = ''): Promise<TestGateway> {
    const gw = await startTestGateway({ policy: POLICY, noDatabase: true, listen: { mysql: '127.0.0.1:0' }, connections: `  - { name: prod-mysql, type: mysql, target: "${target}"${extra} }` });
    gateways.push(gw);
    return gw;
  }

  async function ask(gw: TestGateway): Promise<unknown> {
    const c = await mysql2Connect(gw.gateway.address('mysql')!.port, await gw.token());
    const [rows] = await c.query('SELECT answer');
    await c.end();
    return rows;
  }

  test('full authentication with the RSA key (when allowed), then the fast path', async () => {
    const t = await startSha2Target('sha2-secret');
    targets.push(t);
    const refusing = await gatewayFor(`mysql://svc:sha2-secret@127.0.0.1:${t.port}/app`);
    const e = await rejection(mysql2Connect(refusing.gateway.address('mysql')!.port, await refusing.token()));
    assert.match(e.message, /upstream authentication failed \(ERR_UPSTREAM\)/);
    const gw = await gatewayFor(`mysql://svc:sha2-secret@127.0.0.1:${t.port}/app?allow-public-key-retrieval=true`);
    assert.deepStrictEqual(await ask(gw), [{ answer: 'sha2 target' }]);
    assert.deepStrictEqual(await ask(gw), [{ answer: 'sha2 target' }]);
    assert.ok(t.logins.includes('full-rsa'), t.logins.join(','));
    assert.equal(t.logins.at(-1), 'fast');
  });

  test('over TLS (ssl-mode VERIFY_IDENTITY with the connection CA): the full path sends the password inside TLS', async () => {
    const t = await startSha2Target('tls-secret', cert);
    targets.push(t);
    const gw = await gatewayFor(`mysql://svc:tls-secret@127.0.0.1:${t.port}/app`, `, tls: { ca: "${cert.certFile}" }`);
    assert.deepStrictEqual(await ask(gw), [{ answer: 'sha2 target' }]);
    assert.ok(t.logins.includes('full-tls'), t.logins.join(','));
    assert.deepStrictEqual(await ask(gw), [{ answer: 'sha2 target' }]);
    assert.equal(t.logins.at(-1), 'fast');
    // A wrong password is refused by the target; the agent learns the target refused, not the password.
    const bad = await gatewayFor(`mysql://svc:wrong@127.0.0.1:${t.port}/app`, `, tls: { ca: "${cert.certFile}" }`);
    const e = await rejection(mysql2Connect(bad.gateway.address('mysql')!.port, await bad.token()));
    assert.match(e.message, /upstream authentication failed \(ERR_UPSTREAM\)/);
    assert.doesNotMatch(e.message, /wrong/);
  });
});
