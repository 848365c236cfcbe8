/**
 * The SSH engine end to end: a real OpenSSH sshd started here (test/support/sshd.ts), the gateway
 * with its SSH listener and a real OIDC issuer (test/support/gateway.ts), driven by the real
 * OpenSSH client (`sshpass`, `SSH_ASKPASS`) and by ssh2's client.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Writable } from 'node:stream';
import { pino } from 'pino';
import ssh2, { type ExecOptions } from 'ssh2';
import { replayAsciicast } from '../../src/cli/replay.js';
import { keyFingerprint } from '../../src/engines/ssh/known-hosts.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { sshdAvailable, startSshd, type TestSshd } from '../support/sshd.js';
import { exec, gwClient, runCli, sshAskpass, sshpass, until } from './ssh-support.js';

const POLICY = String.raw`policies:
  - name: ops
    subjects: { groups: [ai-agents] }
    connections: [build-host, wrong-host, unpinned-host, idle-host]
    rules:
      - { effect: deny, ssh: { command: "^\\s*rm\\s+-rf\\s+/" }, reason: "recursive deletes from / are never allowed" }
      - { effect: review, ssh: { command: "deploy" }, approvers: { groups: [dba] }, reason: "deploys need a human" }
      - { effect: allow, ssh: { channels: [exec, shell, sftp] } }
  - name: admins
    subjects: { groups: [db-admins] }
    connections: [build-host]
    rules:
      - { effect: allow, ssh: { channels: [forward, agent] } }
      - { effect: deny, ssh: { channels: [sftp] }, reason: "no file transfer for admins" }
      - { effect: deny, ssh: { channels: [shell] }, reason: "no interactive shells for admins" }
  - name: masked
    subjects: { groups: [masked-agents] }
    connections: [build-host]
    rules:
      - { effect: allow, ssh: { channels: [exec, shell, sftp] } }
      - { effect: mask, detectors: [api_key] }
`;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// Raw secrets appear only in command output, never in a command line (printf joins the halves).
const STRIPE = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
const AWS = 'AKIAIOSFODNN7EXAMPLE';

describe('SSH engine against a real sshd', { skip: sshdAvailable() ? false : 'needs /usr/sbin/sshd and root' }, () => {
  let sshd: TestSshd;
  let gw: TestGateway;
  let port: number;
  let token: string;
  const logLines: string[] = [];
  const agents: number[] = [];

  before(async () => {
    sshd = await startSshd();
    const target = `ssh://${sshd.user}@127.0.0.1:${sshd.port}`;
    const logStream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(chunk.toString());
        cb();
      },
    });
    gw = await startTestGateway({
      noDatabase: true,
      policy: POLICY,
      listen: { ssh: '127.0.0.1:0' },
      connections: [
        `  - { name: build-host, type: ssh, target: "${target}", known_hosts: "${sshd.knownHostsFile}", private_key: "${sshd.clientKeyFile}" }`,
        `  - { name: wrong-host, type: ssh, target: "${target}", known_hosts: "${sshd.wrongKnownHostsFile}", private_key: "${sshd.clientKeyFile}" }`,
        `  - { name: unpinned-host, type: ssh, target: "${target}", private_key: "${sshd.clientKeyFile}" }`,
        `  - { name: idle-host, type: ssh, target: "${target}", known_hosts: "${sshd.knownHostsFile}", private_key: "${sshd.clientKeyFile}", idle_timeout: 1s }`,
      ].join('\n'),
      extraConfig: 'review: { hold_timeout: 30s, valid_for: 5m }',
      gateway: { logger: pino({ level: 'info' }, logStream) },
    });
    port = gw.gateway.address('ssh')!.port;
    token = await gw.token();
  });

  after(async () => {
    for (const pid of agents) process.kill(pid, 'SIGTERM');
    await gw?.close();
    await sshd?.close();
  });

  async function api(who: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string; json: unknown }> {
    const t = await gw.token({ clientId: who });
    const r = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${t}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, text, json };
  }

  /** A real ssh-agent holding one key; returns its socket path (stopped in `after`). */
  async function startAgent(): Promise<string> {
    const sock = join(gw.dir, 'agent.sock');
    const key = join(gw.dir, 'agent_key');
    const started = await runCli('ssh-agent', ['-a', sock]);
    const pid = /SSH_AGENT_PID=(\d+)/.exec(started.stdout)?.[1];
    if (pid) agents.push(Number(pid));
    await runCli('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'gatehouse-agent-key', '-f', key]);
    const added = await runCli('ssh-add', [key], { SSH_AUTH_SOCK: sock });
    assert.equal(added.status, 0, added.stderr);
    return sock;
  }

  async function auditCommands(session: string): Promise<string[]> {
    await gw.gateway.parts.audit.flush();
    const r = await api('auditor-1', 'GET', `/api/audit?session=${session}&type=command`);
    return (r.json as { data: { command: string; effect: string } }[]).map((e) => `${e.data.effect} ${e.data.command}`);
  }

  /** Runs `f` and returns the id of the session it opened (the one new live session). */
  async function newSession<T>(f: () => Promise<T>): Promise<{ id: string; value: T }> {
    const before = new Set(gw.gateway.parts.sessions.live().map((s) => s.id));
    let id: string | undefined;
    const off = gw.gateway.parts.sessions.onChange((e) => {
      if (e.state === 'started' && !before.has(e.id)) id ??= e.id;
    });
    try {
      const value = await f();
      return { id: await until(() => id, 'the new session'), value };
    } finally {
      off();
    }
  }

  test('the gateway host key is generated on first start (0600) and its fingerprint logged', async () => {
    const path = join(gw.dir, 'ssh_host_ed25519_key');
    const st = await stat(path);
    assert.equal(st.mode & 0o777, 0o600);
    let presented: Buffer | undefined;
    const c = await gwClient({ port, token, onHostKey: (k) => (presented = k) });
    c.end();
    const fp = keyFingerprint(presented!);
    assert.ok(logLines.some((l) => l.includes('generated the SSH host key') && l.includes(fp)), `fingerprint ${fp} in the logs`);
    const pub = (await readFile(`${path}.pub`, 'utf8')).trim().split(' ');
    assert.equal(pub[0], 'ssh-ed25519');
    assert.equal(keyFingerprint(Buffer.from(pub[1]!, 'base64')), fp);
  });

  test('allowed exec through the real ssh client: exact stdout, stderr and exit status', async () => {
    const r = await sshpass(port, token, `sh -c 'echo out; echo err >&2; exit 7'`);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.status, 7);
    const ok = await sshpass(port, token, 'id -un', { args: ['-o', 'PreferredAuthentications=password'] });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, `${sshd.user}\n`);
  });

  test('the token via SSH_ASKPASS works too', async () => {
    const r = await sshAskpass(gw.dir, port, token, 'echo askpass-ok');
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'askpass-ok\n');
    assert.equal(r.status, 0);
  });

  test('ssh2 client: exit status, exit signal, stdin and a large binary output relayed exactly', async () => {
    const c = await gwClient({ port, token });
    try {
      const r = await exec(c, `sh -c 'echo out; echo err >&2; exit 7'`);
      assert.deepEqual([r.code, r.stdout.toString(), r.stderr], [7, 'out\n', 'err\n']);
      // The login shell that runs the command kills itself: whether a shell execs its last command
      // (bash does, dash 0.5.12 does not) does not matter.
      const sig = await exec(c, 'kill -TERM $$');
      assert.equal(sig.code, null);
      assert.equal(sig.signal, 'SIGTERM');
      const input = Buffer.alloc(3 * 1024 * 1024 + 17, 'x');
      const wc = await exec(c, 'wc -c', {}, input);
      assert.equal(wc.stdout.toString().trim(), String(input.length));
      const made = await exec(c, 'head -c 4000000 /dev/urandom > ~/blob && sha256sum ~/blob');
      const sum = made.stdout.toString().split(' ')[0];
      const cat = await exec(c, 'cat ~/blob');
      assert.equal(cat.stdout.length, 4_000_000);
      assert.equal(createHash('sha256').update(cat.stdout).digest('hex'), sum);
      assert.equal(cat.code, 0);
    } finally {
      c.end();
    }
  });

  test('a signal from the agent reaches the command on the target', async () => {
    const c = await gwClient({ port, token });
    try {
      // stdin stays open: ssh2's client sends no channel requests after its own EOF.
      const r = await exec(c, 'echo started; sleep 30', {}, null, (s) => {
        s.once('data', () => s.signal('TERM'));
      });
      assert.equal(r.signal, 'SIGTERM');
    } finally {
      c.end();
    }
  });

  test('keyboard-interactive: the answer is the token; a bad token is refused with the reason', async () => {
    const c = await gwClient({ port, token, method: 'keyboard-interactive' });
    const r = await exec(c, 'echo kbd');
    c.end();
    assert.equal(r.stdout.toString(), 'kbd\n');
    await assert.rejects(gwClient({ port, token: 'not-a-token', method: 'keyboard-interactive' }), /authentication methods failed/);
    // OpenSSH shows the instruction of the prompt-less info request that carries the reason.
    const bad = await sshpass(port, 'not-a-token', 'echo never', { logLevel: 'INFO', args: ['-o', 'PreferredAuthentications=keyboard-interactive'] });
    assert.notEqual(bad.status, 0);
    assert.doesNotMatch(bad.stdout, /never/);
    assert.match(bad.stderr, /gatehouse: .*\[ERR_TOKEN_INVALID\]/);
    const badPw = await sshpass(port, 'not-a-token', 'echo never', { args: ['-o', 'PreferredAuthentications=password'] });
    assert.notEqual(badPw.status, 0);
    assert.doesNotMatch(badPw.stdout, /never/);
    // A key cannot carry a token: publickey (and none) are refused, whatever the key.
    const key = await readFile(sshd.clientKeyFile);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const k = new ssh2.Client();
        k.once('ready', () => resolve(k.end()));
        k.once('error', reject);
        k.connect({ host: '127.0.0.1', port, username: 'build-host', privateKey: key, authHandler: ['none', 'publickey'], hostVerifier: () => true });
      }),
      /authentication methods failed/,
    );
  });

  test('denied: rm -rf / gets the rule on stderr and status 126, and nothing runs', async () => {
    const r = await sshpass(port, token, 'rm -rf /');
    assert.equal(r.status, 126);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^gatehouse: recursive deletes from \/ are never allowed \(rule ops#0 at .*policy\.yaml:\d+\)\n$/);
    const c = await gwClient({ port, token });
    try {
      assert.equal((await exec(c, 'mkdir -p ~/canary && echo made')).stdout.toString(), 'made\n');
      const home = (await exec(c, 'echo $HOME')).stdout.toString().trim();
      const denied = await exec(c, `rm -rf ${home}/canary`);
      assert.equal(denied.code, 126);
      assert.match(denied.stderr, /rule ops#0/);
      assert.equal((await exec(c, 'test -d ~/canary && echo still-there')).stdout.toString(), 'still-there\n');
    } finally {
      c.end();
    }
  });

  test('a held command runs once an approver approves it through the API', async () => {
    const running = sshpass(port, token, 'echo deploy-ran', { args: ['-o', 'SetEnv=GATEHOUSE_REASON="release 1.2"'] });
    const review = await until(async () => {
      const r = await api('dba-1', 'GET', '/api/reviews?state=pending');
      return (r.json as Record<string, unknown>[]).find((x) => String(x.command).includes('deploy-ran'));
    }, 'a pending review');
    assert.equal(review.protocol, 'ssh');
    assert.equal(review.rule, 'ops#1');
    assert.equal(review.justification, 'release 1.2');
    const ok = await api('dba-1', 'POST', `/api/reviews/${String(review.id)}/approve`, { reason: 'go' });
    assert.equal(ok.status, 200, ok.text);
    const r = await running;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'deploy-ran\n');
    assert.match(r.stderr, new RegExp(`^gatehouse: waiting up to 30s for approval of review ${String(review.id)}`));
  });

  test('a held command the approver denies is refused with 126', async () => {
    const running = sshpass(port, token, 'echo deploy-denied');
    const review = await until(async () => {
      const r = await api('dba-1', 'GET', '/api/reviews?state=pending');
      return (r.json as Record<string, unknown>[]).find((x) => String(x.command).includes('deploy-denied'));
    }, 'a pending review');
    const no = await api('dba-1', 'POST', `/api/reviews/${String(review.id)}/deny`, { reason: 'not today' });
    assert.equal(no.status, 200, no.text);
    const r = await running;
    assert.equal(r.status, 126);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /gatehouse: review .* was denied by dba-1: not today \(rule ops#1/);
  });

  test('a shell with a pty: commands, window change, recorded and replayed as asciicast', async () => {
    const { id, value: c } = await newSession(() => gwClient({ port, token }));
    const out: string[] = [];
    const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => c.shell({ rows: 24, cols: 80, term: 'xterm' }, (err, s) => (err ? reject(err) : resolve(s))));
    stream.on('data', (d: Buffer) => out.push(d.toString()));
    const exited = new Promise<number | null>((resolve) => stream.on('exit', (code: number | null) => resolve(code)));
    const closed = new Promise<void>((resolve) => stream.on('close', () => resolve()));
    const seen = (s: string): Promise<true> => until(() => out.join('').includes(s) || undefined, `"${s}" in the shell`);
    stream.write('echo hello-$((6*7))\n');
    await seen('hello-42');
    stream.setWindow(30, 100, 0, 0);
    await new Promise((r) => setTimeout(r, 200));
    stream.write('stty size\n');
    await seen('30 100');
    stream.write('exit 3\n');
    assert.equal(await exited, 3);
    await closed;
    c.end();
    await until(async () => (await api('auditor-1', 'GET', `/api/sessions/${id}`)).json && ((await api('auditor-1', 'GET', `/api/sessions/${id}`)).json as { ended_at?: string }).ended_at, 'the session end');
    await gw.gateway.parts.sessions.flush();

    const cast = await api('auditor-1', 'GET', `/api/sessions/${id}/asciicast`);
    assert.equal(cast.status, 200, cast.text);
    const lines = cast.text.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    const header = lines[0] as { version: number; width: number; height: number };
    assert.deepEqual([header.version, header.width, header.height], [2, 80, 24]);
    const events = lines.slice(1) as [number, string, string][];
    const output = events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');
    const input = events.filter((e) => e[1] === 'i').map((e) => e[2]).join('');
    assert.match(output, /hello-42/);
    assert.match(input, /echo hello-\$\(\(6\*7\)\)/);
    assert.ok(events.some((e) => e[1] === 'r' && e[2] === '100x30'), 'the window change is recorded');
    const times = events.map((e) => e[0]);
    assert.deepEqual(times, [...times].sort((a, b) => a - b), 'timestamps in order');
    assert.ok(times.at(-1)! > 0.1, 'real timing is kept');

    // The CLI's replay plays the same recording.
    const rec = await api('auditor-1', 'GET', `/api/sessions/${id}/recording`);
    const sink = new PassThrough();
    let played = '';
    sink.on('data', (d: Buffer) => (played += d.toString()));
    await replayAsciicast(rec.json as { seq: number; t: number; type: string; data: Record<string, unknown> }[], { speed: 100, maxWaitSec: 0.05, out: sink });
    assert.match(played, /hello-42/);
    assert.match(played, /30 100/);

    // And `gatehouse sessions replay <id>` itself, as an auditor runs it.
    const cli = await runCli(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'sessions', 'replay', id, '--server', `http://127.0.0.1:${gw.httpPort}`, '--speed', '100', '--max-wait', '0.05'], {
      GATEHOUSE_TOKEN: await gw.token({ clientId: 'auditor-1' }),
    });
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, /hello-42/);
    assert.match(cli.stdout, /30 100/);
  });

  test('a shell denied by a rule: the reason on stderr and status 126', async () => {
    const b = await gwClient({ port, token: await gw.token({ clientId: 'agent-b' }) });
    try {
      const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => b.shell({ rows: 24, cols: 80, term: 'xterm' }, (err, s) => (err ? reject(err) : resolve(s))));
      let all = '';
      stream.on('data', (d: Buffer) => (all += d.toString()));
      stream.stderr.on('data', (d: Buffer) => (all += d.toString()));
      const code = await new Promise<number | null>((resolve) => stream.on('exit', (c: number | null) => resolve(c)));
      assert.equal(code, 126);
      assert.match(all, /^gatehouse: no interactive shells for admins \(rule admins#2 at .*policy\.yaml:\d+\)\r\n$/);
    } finally {
      b.end();
    }
  });

  test('an API key printed by a command is masked in the stored recording and audit log', async () => {
    const { id, value: r } = await newSession(async () => {
      const c = await gwClient({ port, token });
      const res = await exec(c, `printf 'key=sk_live_%s\\n' 4eC39HqLyjWDarjtT1zdp7dc; printf 'aws %s%s\\n' AKIA IOSFODNN7EXAMPLE`);
      // A secret in the command line itself must not reach the store either.
      assert.equal((await exec(c, `echo ${STRIPE} > /dev/null; echo done`)).stdout.toString(), 'done\n');
      c.end();
      return res;
    });
    // The agent gets the command's real output; what is stored is masked.
    assert.equal(r.stdout.toString(), `key=${STRIPE}\naws ${AWS}\n`);
    await until(async () => ((await api('auditor-1', 'GET', `/api/sessions/${id}`)).json as { ended_at?: string }).ended_at, 'the session end');
    await gw.gateway.parts.sessions.flush();
    await gw.gateway.parts.audit.flush();
    const rec = await api('auditor-1', 'GET', `/api/sessions/${id}/recording`);
    const text = JSON.stringify(rec.json);
    assert.ok(!text.includes(STRIPE) && !text.includes(AWS), text);
    assert.match(text, /key=\[stripe_key\]/);
    let raw = 0;
    for (const f of ['gatehouse.db', 'gatehouse.db-wal']) {
      const bytes = await readFile(join(gw.dir, f)).catch(() => Buffer.alloc(0));
      raw += bytes.includes(STRIPE) ? 1 : 0;
      raw += bytes.includes(AWS) ? 1 : 0;
    }
    assert.equal(raw, 0, 'no raw key anywhere in the SQLite files');
  });

  test('a session whose policy masks: output reaches the agent masked line by line, binary output ends the channel, sftp is refused', async () => {
    const masked = await gw.token({ groups: ['masked-agents'] });
    const { id, value: c } = await newSession(() => gwClient({ port, token: masked }));
    try {
      // A secret written in two pieces, one on stderr, a last line without its newline.
      const r = await exec(c, `printf 'key=sk_live_'; sleep 0.002; printf '%s\\n' 4eC39HqLyjWDarjtT1zdp7dc; printf 'aws %s%s\\n' AKIA IOSFODNN7EXAMPLE >&2; printf 'no newline'`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), 'key=[stripe_key]\nno newline');
      assert.equal(r.stderr, 'aws [aws_access_key]\n');
      // With a terminal too.
      const t = await exec(c, `printf 'k=%s%s\\n' sk_live_ 4eC39HqLyjWDarjtT1zdp7dc`, { pty: true }, null);
      assert.equal(t.code, 0);
      assert.equal(t.stdout.toString(), 'k=[stripe_key]\r\n');
      // Output that is not UTF-8 text cannot be inspected: the channel ends (fail closed), nothing raw passes.
      const b = await exec(c, `printf 'ok\\n'; printf '\\377\\376 %s%s\\n' sk_live_ 4eC39HqLyjWDarjtT1zdp7dc; sleep 1; echo late`);
      assert.equal(b.code, 255);
      assert.match(b.stderr, /^gatehouse: output that is not UTF-8 text cannot be inspected for masking; it was ended \[ERR_MASKING_FAILED\]\n$/);
      assert.ok(!b.stdout.includes('4eC39HqLyjWDarjtT1zdp7dc') && !b.stdout.toString().includes('late'), b.stdout.toString());
      // sftp carries file contents nothing can mask: refused.
      const sub = await new Promise<{ code: number | null | undefined; stderr: string }>((resolve, reject) => {
        c.subsys('sftp', (err, stream) => {
          if (err) return reject(err);
          let stderr = '';
          let code: number | null | undefined;
          stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          stream.on('exit', (x: number | null) => (code = x));
          stream.on('close', () => resolve({ code, stderr }));
          stream.resume();
        });
      });
      assert.equal(sub.code, 126);
      assert.match(sub.stderr, /^gatehouse: sftp cannot be inspected for masking; it is refused while this session masks output \[ERR_MASKING_FAILED\]\n$/);
      // The gateway goes on: the same connection runs the next command.
      assert.equal((await exec(c, 'echo still here')).stdout.toString(), 'still here\n');
    } finally {
      c.end();
    }
    const a = await until(async () => {
      const l = await auditCommands(id);
      return l.some((x) => x.startsWith('deny') && x.includes('sftp')) ? l : undefined;
    }, 'the sftp refusal in the audit log');
    assert.ok(a.some((x) => x.startsWith('allow') && x.includes('still here')), JSON.stringify(a));
  });

  test('a target presenting another host key is refused with a clear message', async () => {
    const r = await sshpass(port, token, 'echo never', { connection: 'wrong-host' });
    assert.equal(r.status, 255);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /gatehouse: the target of connection "wrong-host" \(\[127\.0\.0\.1\]:\d+\) presented host key ssh-ed25519 SHA256:\S+, which does not match the key pinned in its known_hosts/);
    const u = await sshpass(port, token, 'echo never', { connection: 'unpinned-host' });
    assert.equal(u.status, 255);
    assert.match(u.stderr, /never trusts a target's host key on first use/);
    const unknown = await sshpass(port, token, 'echo never', { connection: 'no-such-host' });
    assert.equal(unknown.status, 126);
    assert.match(unknown.stderr, /connection "no-such-host" does not exist/);
  });

  test('environment: only allow-listed variables reach the target', async () => {
    const c = await gwClient({ port, token });
    try {
      const r = await exec(c, 'echo "[$LANG][$LC_ALL][$GH_SECRET]"', { env: { LANG: 'C.UTF-8', LC_ALL: 'C', GH_SECRET: 'leak' } });
      assert.equal(r.stdout.toString(), '[C.UTF-8][C][]\n');
    } finally {
      c.end();
    }
  });

  test('port forwarding is refused unless a rule allows it; agent forwarding is refused', async () => {
    const echo: Server = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as AddressInfo).port;
    const forward = (c: ssh2.Client): Promise<string> =>
      new Promise((resolve, reject) => {
        c.forwardOut('127.0.0.1', 40000, '127.0.0.1', echoPort, (err, s) => {
          if (err) return reject(err);
          let got = '';
          s.on('data', (d: Buffer) => {
            got += d.toString();
            if (got === 'ping') {
              s.end();
              resolve(got);
            }
          });
          s.write('ping');
        });
      });
    try {
      const a = await gwClient({ port, token });
      await assert.rejects(forward(a), /Channel open failure/);
      await assert.rejects(new Promise((resolve, reject) => a.forwardIn('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p)))), /Unable to bind|failed/i);
      class NoAgent extends ssh2.BaseAgent {
        getIdentities(cb: (err: Error | undefined, keys?: ssh2.ParsedKey[]) => void): void {
          cb(undefined, []);
        }
        sign(_k: unknown, _d: Buffer, ...rest: unknown[]): void {
          (rest.find((r) => typeof r === 'function') as ((e: Error) => void) | undefined)?.(new Error('no'));
        }
      }
      a.end();
      const withAgent = await gwClient({ port, token, agent: new NoAgent() });
      await assert.rejects(exec(withAgent, 'echo $SSH_AUTH_SOCK', { agentForward: true } as ExecOptions), /agent forwarding/i);
      withAgent.end();

      const b = await gwClient({ port, token: await gw.token({ clientId: 'agent-b' }) });
      assert.equal(await forward(b), 'ping');
      b.end();
    } finally {
      echo.close();
    }
  });

  test('allowed by a rule: remote forwarding and agent forwarding work end to end', async () => {
    const b = await gwClient({ port, token: await gw.token({ clientId: 'agent-b' }), agent: await startAgent() });
    try {
      // ssh -R: the target listens; a connection there reaches the agent's side.
      b.on('tcp connection', (_info, accept) => {
        const s = accept();
        s.on('data', (d: Buffer) => s.end(`pong:${d.toString()}`));
      });
      const bound = await new Promise<number>((resolve, reject) => b.forwardIn('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p))));
      assert.ok(bound > 0);
      const reply = await new Promise<string>((resolve, reject) => {
        const sock = connect(bound, '127.0.0.1', () => sock.write('ping'));
        let got = '';
        sock.on('data', (d: Buffer) => (got += d.toString()));
        sock.on('end', () => resolve(got));
        sock.on('error', reject);
      });
      assert.equal(reply, 'pong:ping');
      // ssh -A: the target's ssh-add reaches the agent's own ssh-agent through the gateway.
      const listed = await exec(b, 'ssh-add -l', { agentForward: true } as ExecOptions);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout.toString(), /gatehouse-agent-key \(ED25519\)/);
    } finally {
      b.end();
    }
  });

  test('sftp: allowed with every file operation in the audit log; denied by a rule', async () => {
    const { id, value: c } = await newSession(() => gwClient({ port, token }));
    const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => c.sftp((err, s) => (err ? reject(err) : resolve(s))));
    const p = <T>(f: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T | undefined> => new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));
    await p((cb) => sftp.mkdir('gh-dir', (e) => cb(e)));
    await p((cb) => sftp.writeFile('gh-dir/a.txt', 'hello sftp', (e) => cb(e)));
    const back = await p<Buffer>((cb) => sftp.readFile('gh-dir/a.txt', cb));
    assert.equal(back?.toString(), 'hello sftp');
    await p((cb) => sftp.rename('gh-dir/a.txt', 'gh-dir/b.txt', (e) => cb(e)));
    await assert.rejects(p((cb) => sftp.unlink('/etc/passwd', (e) => cb(e))));
    await p((cb) => sftp.unlink('gh-dir/b.txt', (e) => cb(e)));
    await p((cb) => sftp.rmdir('gh-dir', (e) => cb(e)));
    sftp.end();
    c.end();
    const cmds = await until(async () => {
      const l = await auditCommands(id);
      return l.some((x) => x.includes('rmdir')) ? l : undefined;
    }, 'the sftp audit events');
    const want = [
      /^allow sftp$/,
      /^allow sftp mkdir "gh-dir": ok$/,
      /^allow sftp open "gh-dir\/a\.txt" \(write, creat, trunc\): ok$/,
      /^allow sftp close "gh-dir\/a\.txt" \(read 0 bytes, wrote 10 bytes\): ok$/,
      /^allow sftp open "gh-dir\/a\.txt" \(read\): ok$/,
      /^allow sftp close "gh-dir\/a\.txt" \(read 10 bytes, wrote 0 bytes\): ok$/,
      /^allow sftp rename "gh-dir\/a\.txt" to "gh-dir\/b\.txt": ok$/,
      /^allow sftp remove "\/etc\/passwd": permission denied$/,
      /^allow sftp remove "gh-dir\/b\.txt": ok$/,
      /^allow sftp rmdir "gh-dir": ok$/,
    ];
    for (const re of want) assert.ok(cmds.some((x) => re.test(x)), `${re} in ${JSON.stringify(cmds, null, 1)}`);

    const b = await gwClient({ port, token: await gw.token({ clientId: 'agent-b' }) });
    await assert.rejects(new Promise((resolve, reject) => b.sftp((err, s) => (err ? reject(err) : resolve(s)))));
    b.end();
  });

  test('the real sftp and scp clients work through the gateway, audited', async () => {
    const o = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'];
    const { id, value: put } = await newSession(() => runCli('sshpass', ['-p', token, 'sftp', ...o, '-P', String(port), 'build-host@127.0.0.1'], {}, 'put /etc/hostname gh-cli.txt\nrm gh-cli.txt\n'));
    assert.equal(put.status, 0, put.stderr);
    assert.match(put.stdout, /Removing .*gh-cli\.txt/);
    const { id: id2, value: scp } = await newSession(() => runCli('sshpass', ['-p', token, 'scp', ...o, '-P', String(port), '/etc/hostname', 'build-host@127.0.0.1:gh-scp.txt']));
    assert.equal(scp.status, 0, scp.stderr);
    const a = await until(async () => {
      const l = await auditCommands(id);
      return l.some((x) => x.includes('remove')) ? l : undefined;
    }, 'the sftp audit events');
    assert.ok(a.some((x) => /^allow sftp open ".*gh-cli\.txt" \(write, creat, trunc\): ok$/.test(x)), JSON.stringify(a));
    assert.ok(a.some((x) => /^allow sftp remove ".*gh-cli\.txt": ok$/.test(x)), JSON.stringify(a));
    const b = await until(async () => {
      const l = await auditCommands(id2);
      return l.some((x) => x.includes('close')) ? l : undefined;
    }, 'the scp audit events');
    assert.ok(b.some((x) => /^allow sftp close "gh-scp\.txt" \(read 0 bytes, wrote \d+ bytes\): ok$/.test(x)), JSON.stringify(b));
  });

  test('an expiring token ends a live shell with a message', async () => {
    const short = await gw.token({ ttlSec: 5 });
    const c = await gwClient({ port, token: short });
    const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => c.shell({ rows: 24, cols: 80, term: 'xterm' }, (err, s) => (err ? reject(err) : resolve(s))));
    let all = '';
    stream.on('data', (d: Buffer) => (all += d.toString()));
    stream.stderr.on('data', (d: Buffer) => (all += d.toString()));
    let code: number | null | undefined;
    stream.on('exit', (x: number | null) => (code = x));
    const ended = new Promise<void>((resolve) => c.on('close', () => resolve()));
    stream.write('echo alive\n');
    await until(() => all.includes('alive') || undefined, 'the shell');
    await ended;
    assert.match(all, /gatehouse: session ended: token expired/);
    assert.equal(code, 255);
  });

  test('a connection idle longer than its idle_timeout is ended with a message', async () => {
    const r = await sshpass(port, token, 'sleep 10; echo never', { connection: 'idle-host' });
    assert.equal(r.status, 255);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /gatehouse: session ended: idle timeout/);
  });

  test('revoking the token ends its live session with a message; a new login is refused', async () => {
    const t = await gw.token();
    const jti = (JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
    const c = await gwClient({ port, token: t });
    const running = exec(c, 'echo started; sleep 60');
    await new Promise((r) => setTimeout(r, 300));
    const rv = await api('admin-1', 'POST', '/api/revocations', { token_id: jti, reason: 'leaked' });
    assert.equal(rv.status, 201, rv.text);
    const r = await running;
    assert.equal(r.code, 255);
    assert.match(r.stderr, /gatehouse: session ended: access has been revoked/);
    c.end();
    await assert.rejects(gwClient({ port, token: t }), /authentication methods failed/);
  });

  test('a kill through the API ends a running command with a message', async () => {
    const t = await gw.token({ clientId: 'agent-b' });
    const { id, value: c } = await newSession(() => gwClient({ port, token: t }));
    const running = exec(c, 'echo started; sleep 60');
    await new Promise((r) => setTimeout(r, 300));
    const k = await api('admin-1', 'POST', `/api/sessions/${id}/kill`, { reason: 'test over' });
    assert.equal(k.status, 200, k.text);
    const r = await running;
    assert.equal(r.code, 255);
    assert.match(r.stderr, /gatehouse: session ended: killed by admin-1: test over/);
    c.end();
  });
});
