import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { silentLogger } from '../../src/core/log.js';
import type { SessionContext, SessionEvent } from '../../src/core/sessions/types.js';
import { FLAG_FIN, SpdyEncoder, SpdyParser, type SpdyFrame } from '../../src/engines/kubernetes/spdy.js';
import { SpdyExecProxy } from '../../src/engines/kubernetes/spdy-exec.js';

/** Two connected loopback sockets. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect(port, '127.0.0.1');
  const b = await accepted;
  server.close();
  await new Promise<void>((r) => a.once('connect', () => r()));
  return [a, b];
}

interface Harness {
  /** The agent's end and the API server's end, as they see the proxy. */
  agent: Socket;
  apiServer: Socket;
  events: SessionEvent[];
  closed: Promise<{ exitCode?: number; reason: string }>;
  ended: AbortController;
  /** Everything that reached each end, parsed. */
  atAgent: () => SpdyFrame[];
  atApiServer: () => SpdyFrame[];
}

async function harness(tty = false): Promise<Harness> {
  const [agent, proxyClient] = await socketPair();
  const [proxyUpstream, apiServer] = await socketPair();
  const events: SessionEvent[] = [];
  const session = { id: 'sess-1', record: (e: SessionEvent) => events.push(e), masker: { active: false } } as unknown as SessionContext;
  const ended = new AbortController();
  const closed = new Promise<{ exitCode?: number; reason: string }>((resolve) => {
    new SpdyExecProxy({ client: proxyClient, upstream: proxyUpstream, clientHead: Buffer.alloc(0), upstreamHead: Buffer.alloc(0), session, ended: ended.signal, tty, logger: silentLogger(), onClose: resolve });
  });
  const collect = (s: Socket): (() => SpdyFrame[]) => {
    const p = new SpdyParser();
    const frames: SpdyFrame[] = [];
    s.on('data', (c: Buffer) => frames.push(...p.push(c)));
    s.on('error', () => undefined);
    return () => frames;
  };
  return { agent, apiServer, events, closed, ended, atAgent: collect(agent), atApiServer: collect(apiServer) };
}

const closedSocket = (s: Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));
const settle = (ms = 120): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('the exec is relayed unchanged and recorded: stdin, stdout, stderr, resizes, the exit code', async () => {
  const h = await harness();
  const client = new SpdyEncoder();
  const server = new SpdyEncoder();
  const fromAgent = Buffer.concat([
    client.synStream({ streamId: 1, headers: [['streamtype', 'error']] }),
    client.synStream({ streamId: 3, headers: [['streamtype', 'stdin']] }),
    client.synStream({ streamId: 5, headers: [['streamtype', 'stdout']] }),
    client.synStream({ streamId: 7, headers: [['streamtype', 'stderr']] }),
    client.synStream({ streamId: 9, headers: [['streamtype', 'resize']] }),
    SpdyEncoder.data(9, Buffer.from('{"Width":80,"Height":24}\n{"Width":1')),
    SpdyEncoder.data(9, Buffer.from('00,"Height":30}\n')),
    SpdyEncoder.data(3, Buffer.from('typed input\n'), FLAG_FIN),
  ]);
  // written in small pieces: frames cut anywhere still pass whole
  for (let i = 0; i < fromAgent.length; i += 7) h.agent.write(fromAgent.subarray(i, i + 7));
  const status = JSON.stringify({ metadata: {}, status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
  const fromServer = Buffer.concat([
    ...[1, 3, 5, 7, 9].map((id) => server.synReply(id, [])),
    SpdyEncoder.data(5, Buffer.from('out line\n')),
    SpdyEncoder.data(7, Buffer.from('err line\n')),
    SpdyEncoder.data(5, Buffer.alloc(0), FLAG_FIN),
    SpdyEncoder.data(1, Buffer.from(status), FLAG_FIN),
    SpdyEncoder.goaway(9),
  ]);
  await settle();
  h.apiServer.end(fromServer);
  const r = await h.closed;
  assert.deepEqual(r.exitCode, 3);
  assert.equal(r.reason, 'exec ended');
  await settle();
  // byte for byte, both ways
  assert.deepEqual(Buffer.concat(h.atApiServer().map((f) => f.raw)), fromAgent);
  assert.deepEqual(Buffer.concat(h.atAgent().map((f) => f.raw)), fromServer);
  const of = (type: string): SessionEvent[] => h.events.filter((e) => e.type === type);
  assert.deepEqual(of('input'), [{ type: 'input', data: 'typed input\n' }]);
  assert.deepEqual(of('output').map((e) => (e as { data: string }).data).sort(), ['err line\n', 'out line\n']);
  assert.deepEqual(of('resize'), [{ type: 'resize', cols: 80, rows: 24 }, { type: 'resize', cols: 100, rows: 30 }]);
  assert.ok(of('note').some((e) => (e as { message: string }).message.startsWith('exec status: {"metadata"')));
});

test('malformed SPDY from the API server closes both sides and is recorded', async () => {
  const h = await harness();
  h.agent.write(new SpdyEncoder().synStream({ streamId: 1, headers: [['streamtype', 'error']] }));
  await settle();
  h.apiServer.write(new SpdyEncoder().synReply(1, []));
  await settle();
  h.apiServer.write(Buffer.from('8003000100000002ffff', 'hex'));
  const r = await h.closed;
  assert.equal(r.reason, 'malformed SPDY from the API server: SPDY control frame of type 1 with a length of 2; the exec was closed');
  await Promise.all([closedSocket(h.agent), closedSocket(h.apiServer)]);
  assert.deepEqual(h.events.find((e) => e.type === 'error'), { type: 'error', code: 'ERR_PROTOCOL', message: r.reason });
  // the good frame went through; the chunk holding the bad one was not passed on
  assert.deepEqual(h.atAgent().map((f) => f.kind), ['syn_reply']);
});

test('the session\'s end cuts the API server and tells the agent on the error stream, stdout finished', async () => {
  const h = await harness();
  const client = new SpdyEncoder();
  h.agent.write(Buffer.concat([client.synStream({ streamId: 1, headers: [['streamtype', 'error']] }), client.synStream({ streamId: 3, headers: [['streamtype', 'stdout']] })]));
  await settle();
  const server = new SpdyEncoder();
  h.apiServer.write(Buffer.concat([server.synReply(1, []), server.synReply(3, []), SpdyEncoder.data(3, Buffer.from('started\n'))]));
  await settle();
  h.ended.abort('token expired');
  const r = await h.closed;
  assert.equal(r.reason, 'gatehouse: session ended: token expired');
  await closedSocket(h.apiServer);
  await closedSocket(h.agent);
  const frames = h.atAgent();
  const tail = frames.slice(-2);
  assert.deepEqual(tail.map((f) => (f.kind === 'data' ? [f.streamId, f.fin] : f.kind)), [[1, true], [3, true]]);
  const st = tail[0]?.kind === 'data' ? (JSON.parse(tail[0].data.toString()) as Record<string, unknown>) : {};
  assert.deepEqual([st.status, st.reason, st.message], ['Failure', 'Forbidden', 'gatehouse: session ended: token expired']);
  assert.ok(h.events.some((e) => e.type === 'error' && e.code === 'ERR_SESSION_ENDED'));
});
