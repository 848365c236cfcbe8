/**
 * The wire codec and upstream authenticator against real PostgreSQL servers: scratch clusters with
 * SCRAM-SHA-256 (over TLS) and md5, and the machine's trust-auth server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import { UpstreamAuthenticator } from '../../src/engines/postgres/auth.js';
import { BackendParser, decodeDataRow, frontend, type AuthenticationMessage, type BackendMessage } from '../../src/engines/postgres/protocol.js';
import { PG_HOST, PG_PORT, clusterQuery, startScratchCluster, type ScratchCluster } from '../support/pg.js';
import { makeTestCert, type TestCert } from '../support/tls.js';

class WireClient {
  private queue: BackendMessage[] = [];
  private waiting: ((m: BackendMessage) => void) | undefined;
  private failure: unknown;
  parser = new BackendParser();
  stream: Duplex;

  constructor(stream: Duplex) {
    this.stream = stream;
    this.attach(stream);
  }

  attach(stream: Duplex): void {
    this.stream = stream;
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const m of this.parser.push(chunk)) this.deliver(m);
      } catch (e) {
        this.failure = e;
      }
    });
  }

  private deliver(m: BackendMessage): void {
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w(m);
    } else this.queue.push(m);
  }

  next(): Promise<BackendMessage> {
    if (this.failure) return Promise.reject(this.failure);
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout waiting for a backend message')), 5000);
      this.waiting = (x) => {
        clearTimeout(t);
        resolve(x);
      };
    });
  }

  /** Messages up to and including ReadyForQuery. */
  async untilReady(): Promise<BackendMessage[]> {
    const out: BackendMessage[] = [];
    for (;;) {
      const m = await this.next();
      out.push(m);
      if (m.name === 'ReadyForQuery') return out;
    }
  }

  write(b: Buffer): void {
    this.stream.write(b);
  }
}

function tcp(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

/** Startup + authentication; returns the client and what the server sent up to ReadyForQuery. */
async function login(c: WireClient, user: string, password: string | undefined, database = 'postgres'): Promise<BackendMessage[]> {
  c.write(frontend.startupMessage({ user, database, application_name: 'gatehouse-test', client_encoding: 'UTF8' }));
  const auth = new UpstreamAuthenticator({ user, ...(password === undefined ? {} : { password }) });
  for (;;) {
    const m = await c.next();
    if (m.name === 'ErrorResponse') return [m];
    assert.equal(m.type, 'R', `expected authentication, got ${m.name}`);
    const reply = await auth.respond(m as AuthenticationMessage);
    if (reply) c.write(reply);
    if (auth.authenticated) break;
  }
  return c.untilReady();
}

async function exercise(c: WireClient): Promise<void> {
  c.write(frontend.query("SELECT 1 AS n, NULL::text AS nothing, 'Zoë' AS name; SELECT pg_sleep(0)"));
  const res = await c.untilReady();
  assert.deepStrictEqual(
    res.map((m) => m.name),
    ['RowDescription', 'DataRow', 'CommandComplete', 'RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery'],
  );
  const desc = res[0]!;
  assert.ok(desc.name === 'RowDescription');
  assert.deepStrictEqual(
    desc.fields.map((f) => [f.name, f.typeOid, f.format]),
    [
      ['n', 23, 0],
      ['nothing', 25, 0],
      ['name', 25, 0],
    ],
  );
  assert.deepStrictEqual(decodeDataRow(res[1] as { raw: Buffer }), [Buffer.from('1'), null, Buffer.from('Zoë')]);
  assert.ok(res[2]!.name === 'CommandComplete' && res[2]!.tag === 'SELECT 1');

  // Extended protocol, pipelined, with a binary result column.
  c.write(
    Buffer.concat([
      frontend.parse('s1', 'SELECT $1::int + 1 AS x, $2::text AS y', [23, 25]),
      frontend.bind('p1', 's1', ['41', 'hi'], [0], [1, 0]),
      frontend.describe('P', 'p1'),
      frontend.execute('p1', 0),
      frontend.sync(),
    ]),
  );
  const ext = await c.untilReady();
  assert.deepStrictEqual(
    ext.map((m) => m.name),
    ['ParseComplete', 'BindComplete', 'RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery'],
  );
  const row = decodeDataRow(ext[3] as { raw: Buffer });
  assert.equal(row[0]!.readInt32BE(0), 42);
  assert.equal(row[1]!.toString(), 'hi');

  // An error, then the session goes on.
  c.write(frontend.query('SELECT * FROM no_such_table'));
  const err = await c.untilReady();
  assert.ok(err[0]!.name === 'ErrorResponse');
  assert.equal(err[0]!.code, '42P01');
  const last = err.at(-1)!;
  assert.ok(last.name === 'ReadyForQuery' && last.status === 'I');

  c.write(frontend.terminate());
  c.stream.end();
}

let scram: ScratchCluster | undefined;
let md5: ScratchCluster | undefined;
let cert: TestCert | undefined;

before(async () => {
  cert = await makeTestCert();
  [scram, md5] = await Promise.all([startScratchCluster({ auth: 'scram-sha-256', tls: cert }), startScratchCluster({ auth: 'md5' })]);
  await clusterQuery(scram, "CREATE ROLE svc LOGIN PASSWORD 's3cr3t-ü'");
  await clusterQuery(md5, "CREATE ROLE svc LOGIN PASSWORD 'md5-pass'");
});

after(async () => {
  await Promise.all([scram?.stop(), md5?.stop()]);
  await cert?.cleanup();
});

test('SCRAM-SHA-256 over TLS: SSLRequest, handshake, login, simple and extended queries', async () => {
  const sock = await tcp(scram!.port);
  const c = new WireClient(sock);
  c.parser.expectEncryptionResponse();
  c.write(frontend.sslRequest());
  const answer = await c.next();
  assert.ok(answer.name === 'EncryptionResponse' && answer.accepted);
  sock.removeAllListeners('data');
  const secure = tlsConnect({ socket: sock, rejectUnauthorized: false, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  c.attach(secure);
  const ready = await login(c, 'svc', 's3cr3t-ü');
  assert.ok(ready.some((m) => m.name === 'BackendKeyData'));
  assert.ok(ready.some((m) => m.name === 'ParameterStatus' && m.parameter === 'server_version'));
  await exercise(c);
});

test('SCRAM-SHA-256 with a wrong password is refused by the server', async () => {
  const c = new WireClient(await tcp(scram!.port));
  const res = await login(c, 'svc', 'wrong');
  assert.ok(res[0]!.name === 'ErrorResponse');
  assert.equal(res[0]!.code, '28P01');
  assert.equal(res[0]!.severity, 'FATAL');
  c.stream.destroy();
});

test('md5 login and queries', async () => {
  const c = new WireClient(await tcp(md5!.port));
  await login(c, 'svc', 'md5-pass');
  await exercise(c);
});

test('trust login to the machine server, COPY out and a cancel request', async () => {
  const c = new WireClient(await tcp(PG_PORT, PG_HOST));
  const ready = await login(c, 'postgres', undefined);
  const key = ready.find((m) => m.name === 'BackendKeyData');
  assert.ok(key && key.name === 'BackendKeyData');

  c.write(frontend.query('COPY (SELECT g, g * 2 FROM generate_series(1, 3) g) TO STDOUT'));
  const copy = await c.untilReady();
  assert.deepStrictEqual(
    copy.map((m) => m.name),
    ['CopyOutResponse', 'CopyData', 'CopyData', 'CopyData', 'CopyDone', 'CommandComplete', 'ReadyForQuery'],
  );
  assert.equal(Buffer.concat(copy.filter((m) => m.name === 'CopyData').map((m) => (m as { data: Buffer }).data)).toString(), '1\t2\n2\t4\n3\t6\n');

  c.write(frontend.query('SELECT pg_sleep(10)'));
  await new Promise((r) => setTimeout(r, 200));
  const cancel = await tcp(PG_PORT, PG_HOST);
  cancel.end(frontend.cancelRequest(key.processId, key.secretKey));
  const res = await c.untilReady();
  const err = res.find((m) => m.name === 'ErrorResponse');
  assert.ok(err && err.name === 'ErrorResponse');
  assert.equal(err.code, '57014');
  c.write(frontend.terminate());
  c.stream.end();
});
