/**
 * How PostgreSQL sessions end through the gateway: idle timeout, a kill, the target going away or
 * never answering, a session whose token lapsed while the gateway was still logging in to the
 * target, and the gateway shutting down. The agent always gets a FATAL ErrorResponse, then EOF.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { frontend, type BackendMessage, type ErrorResponse } from '../../src/engines/postgres/protocol.js';
import { PG_HOST, PG_PORT } from '../support/pg.js';
import { freePort } from '../support/net.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { eventually, pgClient, simpleQuery, rfqStatus, tcp, WireClient } from './pg-engine-support.js';

const POLICY = `
policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    rules:
      - { effect: allow, sql: { types: [select, tcl] } }
`;

/** A TCP relay to the machine's PostgreSQL that holds each new connection `delayMs` before relaying. */
async function slowRelay(delayMs: number): Promise<{ port: number; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((down) => {
    sockets.add(down);
    down.pause();
    down.on('error', () => undefined);
    setTimeout(() => {
      const up = connect(PG_PORT, PG_HOST);
      sockets.add(up);
      up.on('error', () => down.destroy());
      down.on('close', () => up.destroy());
      up.on('close', () => down.destroy());
      down.pipe(up).pipe(down);
      down.resume();
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    sockets.forEach((s) => s.destroy());
    return close(cb);
  }) as Server['close'];
  return { port: (server.address() as AddressInfo).port, server };
}

let gw: TestGateway;
let token: string;
let relay: { port: number; server: Server };

before(async () => {
  relay = await slowRelay(3000);
  const closedPort = await freePort();
  gw = await startTestGateway({
    policy: POLICY,
    extraConfig: 'sessions: { idle_timeout: 2s }',
    connections: [
      `  - { name: slow, type: postgres, target: "postgres://postgres@127.0.0.1:${relay.port}/postgres" }`,
      `  - { name: down, type: postgres, target: "postgres://postgres@127.0.0.1:${closedPort}/postgres" }`,
    ].join('\n'),
  });
  token = await gw.token();
});
after(async () => {
  await gw?.close();
  relay?.server.close();
});

function fatalOf(msgs: readonly BackendMessage[]): ErrorResponse | undefined {
  return msgs.find((m): m is ErrorResponse => m.name === 'ErrorResponse' && m.severity === 'FATAL');
}

test('an idle session ends with FATAL 57P05; a long query is not idle', async () => {
  const idle = await WireClient.login(gw.pgPort, token);
  const busy = await WireClient.login(gw.pgPort, token);
  try {
    busy.write(frontend.query('SELECT pg_sleep(3)'));
    const msgs = await idle.untilClosed(8000);
    assert.equal(fatalOf(msgs)?.code, '57P05');
    const r = await busy.untilReady(8000);
    assert.equal(r.find((m) => m.name === 'ErrorResponse'), undefined, 'the long query was not cut off');
    assert.equal(rfqStatus(r), 'I');
  } finally {
    idle.end();
    busy.end();
  }
});

test('a session killed by an administrator ends with FATAL', async () => {
  const w = await WireClient.login(gw.pgPort, token, { application_name: 'gh-kill' });
  const [s] = gw.gateway.parts.sessions.live();
  assert.ok(s);
  await gw.gateway.parts.store.events.publish('session.kill', { id: s.id, reason: 'killed in a test' });
  const msgs = await w.untilClosed(5000);
  assert.equal(fatalOf(msgs)?.code, '57P01');
  assert.match(fatalOf(msgs)?.message ?? '', /killed in a test/);
});

test('the target ending the backend ends the session with FATAL', async () => {
  const w = await WireClient.login(gw.pgPort, token, { application_name: 'gh-terminated' });
  assert.equal(rfqStatus(await simpleQuery(w, 'SELECT 1')), 'I');
  await gw.db!.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gh-terminated'");
  const msgs = await w.untilClosed(5000);
  assert.ok(fatalOf(msgs), 'a FATAL error before EOF');
  await eventually(() => gw.gateway.parts.sessions.live().length === 0, 5000, 'the session to end');
});

test('a target that cannot be reached refuses the login with 08006, without its address', async () => {
  const w = new WireClient(await tcp(gw.pgPort));
  w.write(frontend.startupMessage({ user: 'agent', database: 'down' }));
  assert.equal((await w.next()).name, 'AuthenticationCleartextPassword');
  w.write(frontend.password(token));
  const msgs = await w.untilClosed(15_000);
  const fatal = fatalOf(msgs);
  assert.equal(fatal?.code, '08006');
  assert.doesNotMatch(fatal?.message ?? '', /127\.0\.0\.1|ECONNREFUSED/);
  assert.equal(gw.gateway.parts.sessions.live().length, 0);
});

test('a token that lapses while the gateway logs in to the target ends the login, not a zombie session', async () => {
  const short = await gw.issuer.token({ ttlSec: 1 });
  const w = new WireClient(await tcp(gw.pgPort));
  w.write(frontend.startupMessage({ user: 'agent', database: 'slow' }));
  assert.equal((await w.next()).name, 'AuthenticationCleartextPassword');
  w.write(frontend.password(short));
  // The relay holds the target connection 3 s; the token is gone by then.
  const msgs = await w.untilClosed(10_000);
  assert.match(fatalOf(msgs)?.message ?? '', /token expired/, `got ${msgs.map((m) => m.name).join(', ')}`);
  assert.ok(!msgs.some((m) => m.name === 'ReadyForQuery'), 'no ReadyForQuery for a session that already ended');
  assert.equal(gw.gateway.parts.sessions.live().length, 0);
});

test('gateway shutdown ends live sessions with FATAL 57P01 before closing', async () => {
  const w = await WireClient.login(gw.pgPort, token);
  const c = await pgClient(gw, token);
  const pgError = new Promise<Error & { code?: string }>((resolve) => c.on('error', resolve));
  await gw.gateway.close();
  const msgs = await w.untilClosed(5000);
  assert.equal(fatalOf(msgs)?.code, '57P01');
  assert.match(fatalOf(msgs)?.message ?? '', /shutting down/);
  assert.equal((await pgError).code, '57P01');
});
