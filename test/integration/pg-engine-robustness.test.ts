/**
 * The PostgreSQL listener under hostile input: random bytes, mutated and truncated start-up
 * packets, random and mutated typed messages after login, and oversized messages. None may crash
 * the gateway or leak a session or a target connection; a normal client is served afterwards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { frontend, type ErrorResponse } from '../../src/engines/postgres/protocol.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { eventually, pgClient, tcp, WireClient } from './pg-engine-support.js';

const POLICY = `
policies:
  - name: agents
    subjects: { groups: [ai-agents] }
    connections: [pg]
    rules:
      - { effect: allow, sql: { types: [select, tcl, copy] } }
`;

let gw: TestGateway;
let token: string;
const crashes: unknown[] = [];
const onCrash = (e: unknown): void => {
  crashes.push(e);
};

before(async () => {
  gw = await startTestGateway({ policy: POLICY, setupSql: 'CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, $$one$$);' });
  token = await gw.token();
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
});
after(async () => {
  process.off('uncaughtException', onCrash);
  process.off('unhandledRejection', onCrash);
  await gw?.close();
});

/**
 * Writes `bytes` on a fresh connection, waits until the gateway closes it (or, with `firstAnswer`,
 * answers at all) or `waitMs` passes, then drops it. Returns what the gateway sent.
 */
async function poke(bytes: readonly Uint8Array[], waitMs = 60, firstAnswer = false): Promise<Buffer> {
  const s = await tcp(gw.pgPort);
  const got: Buffer[] = [];
  s.on('error', () => undefined);
  for (const b of bytes) s.write(b);
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, waitMs);
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    s.on('data', (d: Buffer) => {
      got.push(d);
      if (firstAnswer) done();
    });
    s.once('close', done);
  });
  s.destroy();
  return Buffer.concat(got);
}

/** The gateway still answers: an SSLRequest gets its one-byte answer. */
async function alive(): Promise<void> {
  const answer = await poke([frontend.sslRequest()], 2000, true);
  assert.equal(answer.toString('latin1', 0, 1), 'N');
}

async function serves(): Promise<void> {
  const c = await pgClient(gw, token);
  try {
    assert.deepEqual((await c.query('SELECT v FROM t WHERE id = $1', [1])).rows, [{ v: 'one' }]);
  } finally {
    await c.end();
  }
}

const STARTUP = frontend.startupMessage({ user: 'agent', database: 'pg', application_name: 'gh-fuzz' });

/** A mutation of `base`: a byte changed, cut short, bytes inserted, or the length field rewritten. */
function mutated(base: Buffer): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
      const x = Buffer.from(base);
      x[i] = b;
      return x;
    }),
    fc.nat(base.length - 1).map((n) => base.subarray(0, n)),
    fc.tuple(fc.nat(base.length), fc.uint8Array({ minLength: 1, maxLength: 32 })).map(([i, ins]) => Buffer.concat([base.subarray(0, i), ins, base.subarray(i)])),
    fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: -0x80000000, max: 0x7fffffff })).map(([at, len]) => {
      const x = Buffer.from(base);
      if (x.length >= at + 4) x.writeInt32BE(len, at);
      return x;
    }),
  );
}

test('random bytes and mutated start-up packets never crash the listener', async () => {
  const startupish = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    mutated(STARTUP),
    mutated(frontend.sslRequest()),
    mutated(frontend.cancelRequest(1234, 5678)),
    fc.tuple(fc.constant(frontend.sslRequest()), fc.uint8Array({ maxLength: 64 })).map(([a, b]) => Buffer.concat([a, b])),
    fc.tuple(mutated(STARTUP), fc.uint8Array({ maxLength: 64 })).map(([a, b]) => Buffer.concat([a, b])),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(startupish, { minLength: 1, maxLength: 8 }), async (inputs) => {
      await Promise.all(inputs.map((b) => poke([b])));
      await alive();
    }),
    { numRuns: 40 },
  );
  assert.deepEqual(crashes, []);
  await serves();
});

test('a password message that is not a token, or a message other than a password, is refused cleanly', async () => {
  for (const second of [frontend.query('SELECT 1'), Buffer.from('p\0\0\0\x04'), Buffer.from('p\0\0\0\x07abc'), Buffer.from('X\0\0\0\x04')]) {
    const answer = await poke([STARTUP, second], 3000);
    assert.equal(answer[0], 0x52, 'authentication request first');
    assert.ok(answer.includes(Buffer.from('FATAL')), `a FATAL error follows ${second.toString('latin1')}: ${answer.toString('latin1')}`);
  }
  await serves();
});

test('start-up: protocol 3.2 and _pq_ options are negotiated down to 3.0; replication connections are refused', async () => {
  const w = new WireClient(await tcp(gw.pgPort));
  w.write(frontend.startupMessage({ user: 'agent', database: 'pg', '_pq_.compression': 'on' }, 2));
  const nego = await w.next();
  assert.equal(nego.name, 'NegotiateProtocolVersion');
  assert.deepEqual(nego.name === 'NegotiateProtocolVersion' && [nego.minorVersion, nego.unsupportedOptions], [0, ['_pq_.compression']]);
  assert.equal((await w.next()).name, 'AuthenticationCleartextPassword');
  w.write(frontend.password(token));
  const ready = await w.untilReady();
  const key = ready.find((m) => m.name === 'BackendKeyData');
  assert.equal(key?.name === 'BackendKeyData' && key.secretKey.length, 4, 'a 3.0 cancel key');
  w.end();

  const r = new WireClient(await tcp(gw.pgPort));
  r.write(frontend.startupMessage({ user: 'agent', database: 'pg', replication: 'database' }));
  const err = await r.next();
  assert.equal(err.name === 'ErrorResponse' && err.code, '08P01');
  await eventually(() => r.closed, 5000, 'the refused connection to close');
});

/** Frontend message type bytes PostgreSQL knows, plus ones it does not. */
const TYPES = 'QPBDESHCXcdfFp'.split('').map((c) => c.charCodeAt(0));

test('random and mutated typed messages after login never crash the gateway or leak sessions', async () => {
  const valid = [
    frontend.query('SELECT 1'),
    frontend.query('COPY t TO STDOUT'),
    frontend.parse('s', 'SELECT $1::int', [23]),
    frontend.bind('', 's', ['1']),
    frontend.bind('p', '', ['1'], [0], [1]),
    frontend.describe('S', 's'),
    frontend.describe('P', ''),
    frontend.execute('', 0),
    frontend.close('S', 's'),
    frontend.sync(),
    frontend.flush(),
    frontend.copyData(Buffer.from('1\tx\n')),
    frontend.copyDone(),
    frontend.copyFail('x'),
    frontend.functionCall(1, ['a']),
  ];
  const typed = fc.oneof(
    fc.constantFrom(...valid),
    fc.constantFrom(...valid).chain((m) => mutated(m)),
    fc.tuple(fc.oneof(fc.constantFrom(...TYPES), fc.integer({ min: 0, max: 255 })), fc.uint8Array({ maxLength: 48 })).map(([t, body]) => {
      const x = Buffer.alloc(5 + body.length);
      x[0] = t;
      x.writeInt32BE(4 + body.length, 1);
      Buffer.from(body).copy(x, 5);
      return x;
    }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(typed, { minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 4 }), async (sessions) => {
      await Promise.all(
        sessions.map(async (msgs) => {
          const w = await WireClient.login(gw.pgPort, token, { application_name: 'gh-fuzz' });
          w.write(...msgs, frontend.sync());
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 80);
            w.socket.once('close', () => {
              clearTimeout(t);
              resolve();
            });
          });
          w.socket.destroy();
        }),
      );
      await alive();
    }),
    { numRuns: 30 },
  );
  assert.deepEqual(crashes, []);
  await serves();
  await eventually(() => gw.gateway.parts.sessions.live().length === 0, 5000, 'the fuzzed sessions to end');
  await eventually(
    async () => (await gw.db!.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'gh-fuzz'")).rows[0].n === 0,
    5000,
    'the fuzzed sessions’ target connections to close',
  );
});

test('a 70 MB Query (over the 64 MiB cap) gets a clean protocol error; the gateway keeps serving', async () => {
  const w = await WireClient.login(gw.pgPort, token);
  const size = 70 * 1024 * 1024;
  const header = Buffer.alloc(5);
  header[0] = 0x51;
  header.writeInt32BE(size + 4, 1);
  w.socket.write(header);
  // Stream the body; the gateway may close before it is all written.
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  for (let i = 0; i < 70 && !w.socket.destroyed && !w.closed; i++) {
    if (!w.socket.write(chunk)) await new Promise<void>((r) => (w.socket.once('drain', r), w.socket.once('close', r)));
  }
  const msgs = await w.untilClosed(10_000);
  const fatal = msgs.find((m): m is ErrorResponse => m.name === 'ErrorResponse');
  assert.equal(fatal?.severity, 'FATAL');
  assert.equal(fatal?.code, '08P01');
  await serves();
  // Over the start-up packet limit too.
  const big = Buffer.alloc(8);
  big.writeInt32BE(100 * 1024 * 1024, 0);
  big.writeInt32BE(196608, 4);
  const answer = await poke([big], 3000);
  assert.equal(answer[0], 0x45, 'an ErrorResponse');
  assert.deepEqual(crashes, []);
});

test('a large query under the cap passes through', async () => {
  const c = await pgClient(gw, token);
  try {
    const text = 'x'.repeat(4 * 1024 * 1024);
    const r = await c.query(`SELECT length('${text}') AS n`);
    assert.deepEqual(r.rows, [{ n: text.length }]);
    const p = await c.query('SELECT length($1) AS n', [text]);
    assert.deepEqual(p.rows, [{ n: text.length }]);
  } finally {
    await c.end();
  }
});
