/**
 * The SSH engine's socket-free parts: known_hosts matching, the passive SFTP auditor (every
 * packet split at every byte boundary), the terminal recorder's cut points, and the OpenSSH key
 * encoding of the generated host key (checked by ssh-keygen when it is installed).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEd25519, loadOrCreateHostKey } from '../../src/engines/ssh/host-key.js';
import { blobKeyType, hostKeyAlgorithms, keyFingerprint, parseKnownHosts, verifyHostKey } from '../../src/engines/ssh/known-hosts.js';
import { isBinaryChunk, safeCut, StreamRecorder } from '../../src/engines/ssh/recorder.js';
import { describeSftp, MAX_PACKET, SftpAuditor, SftpProtocolError, type SftpOperation } from '../../src/engines/ssh/sftp-audit.js';

describe('known_hosts', () => {
  const a = generateEd25519('a');
  const b = generateEd25519('b');
  const keyOf = (p: { publicKey: string }): string => p.publicKey.split(' ').slice(0, 2).join(' ');

  test('plain, bracketed port, wildcard, negation and hashed names', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[10.0.0.9]:2222').digest();
    const { entries, errors } = parseKnownHosts(
      [
        '# comment',
        `build.example.com,10.0.0.5 ${keyOf(a)}`,
        `[127.0.0.1]:2200 ${keyOf(a)}`,
        `*.prod.example.com,!bastion.prod.example.com ${keyOf(b)}`,
        `|1|${salt.toString('base64')}|${hash.toString('base64')} ${keyOf(b)}`,
        'garbage line',
      ].join('\n'),
    );
    assert.equal(entries.length, 4);
    assert.equal(errors.length, 1);
    assert.equal(verifyHostKey(entries, 'build.example.com', 22, a.blob).ok, true);
    assert.equal(verifyHostKey(entries, '10.0.0.5', 22, a.blob).ok, true);
    assert.equal(verifyHostKey(entries, '10.0.0.5', 2222, a.blob).ok, false, 'another port is another host');
    assert.equal(verifyHostKey(entries, '127.0.0.1', 2200, a.blob).ok, true);
    assert.equal(verifyHostKey(entries, 'db.prod.example.com', 22, b.blob).ok, true);
    const neg = verifyHostKey(entries, 'bastion.prod.example.com', 22, b.blob);
    assert.equal(neg.ok, false);
    assert.equal(neg.ok ? '' : neg.why, 'unknown-host');
    assert.equal(verifyHostKey(entries, '10.0.0.9', 2222, b.blob).ok, true, 'hashed entry');
    const wrong = verifyHostKey(entries, 'build.example.com', 22, b.blob);
    assert.equal(wrong.ok, false);
    if (!wrong.ok) {
      assert.equal(wrong.why, 'mismatch');
      assert.deepEqual(wrong.pinned, [`ssh-ed25519 ${keyFingerprint(a.blob)}`]);
      assert.equal(wrong.presented, `ssh-ed25519 ${keyFingerprint(b.blob)}`);
    }
  });

  test('@revoked refuses a key; @cert-authority is not a pin', () => {
    const { entries } = parseKnownHosts(`host1 ${keyOf(a)}\n@revoked * ${keyOf(a)}\n@cert-authority * ${keyOf(b)}\n`);
    const v = verifyHostKey(entries, 'host1', 22, a.blob);
    assert.equal(v.ok ? '' : v.why, 'revoked');
    assert.equal(verifyHostKey(entries, 'host2', 22, b.blob).ok, false);
  });

  test('host key algorithms follow the pinned keys', () => {
    const rsa = `AAAAB3NzaC1yc2EAAAADAQABAAAAgQ${'A'.repeat(170)}`;
    const { entries } = parseKnownHosts(`h ${keyOf(a)}\nh ssh-rsa ${rsa}\n`);
    assert.deepEqual(hostKeyAlgorithms(entries, 'h', 22), ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    assert.deepEqual(hostKeyAlgorithms(entries, 'other', 22), []);
    assert.equal(blobKeyType(a.blob), 'ssh-ed25519');
  });

  test('a key whose blob does not match its type is rejected', () => {
    const { entries, errors } = parseKnownHosts(`h ssh-rsa ${a.publicKey.split(' ')[1]}\n`);
    assert.equal(entries.length, 0);
    assert.match(errors[0] ?? '', /not a ssh-rsa key/);
  });
});

describe('host key', () => {
  test('generated once with mode 0600, then reused; ssh-keygen reads it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gh-hk-'));
    try {
      const path = join(dir, 'sub', 'ssh_host_ed25519_key');
      const first = await loadOrCreateHostKey(path);
      assert.equal(first.generated, true);
      assert.equal(first.type, 'ssh-ed25519');
      const again = await loadOrCreateHostKey(path);
      assert.equal(again.generated, false);
      assert.equal(again.fingerprint, first.fingerprint);
      const kg = spawnSync('ssh-keygen', ['-l', '-f', path], { encoding: 'utf8' });
      if (kg.status === 0) assert.match(kg.stdout, new RegExp(first.fingerprint.replace(/[+/]/g, '\\$&')));
      await writeFile(join(dir, 'bad'), 'not a key');
      await assert.rejects(loadOrCreateHostKey(join(dir, 'bad')), /not a private key/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// --- SFTP packets (draft-ietf-secsh-filexfer-02) ------------------------------------------------

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const n = Buffer.alloc(4);
  n.writeUInt32BE(b.length);
  return Buffer.concat([n, b]);
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
function packet(type: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  return Buffer.concat([u32(body.length), body]);
}
const NO_ATTRS = u32(0);
const status = (id: number, code: number): Buffer => packet(101, u32(id), u32(code), str('msg'), str(''));

/** A conversation: each request with its answer (a handle is only used once the server gave it). */
function conversation(): [Buffer, Buffer][] {
  const h = Buffer.from('handle-1');
  const data = randomBytes(70_000);
  return [
    [packet(1, u32(3)), packet(2, u32(3))],
    [packet(14, u32(1), str('dir'), NO_ATTRS), status(1, 0)],
    [packet(3, u32(2), str('dir/f.bin'), u32(0x02 | 0x08 | 0x10), NO_ATTRS), packet(102, u32(2), str(h))],
    [packet(6, u32(3), str(h), u64(0), str(data)), status(3, 0)],
    [packet(5, u32(4), str(h), u64(0), u32(32768)), packet(103, u32(4), str(randomBytes(1000)))],
    [packet(4, u32(5), str(h)), status(5, 0)],
    [packet(18, u32(6), str('dir/f.bin'), str('dir/g.bin')), status(6, 0)],
    [packet(200, u32(7), str('posix-rename@openssh.com'), str('dir/g.bin'), str('dir/h.bin')), status(7, 0)],
    [packet(20, u32(8), str('/etc/passwd'), str('dir/link')), status(8, 0)],
    [packet(13, u32(9), str('/etc/shadow')), status(9, 3)],
    [packet(17, u32(10), str('dir')), packet(105, u32(10), NO_ATTRS)],
    [packet(15, u32(11), str('dir')), status(11, 0)],
  ];
}

const EXPECTED = [
  'sftp mkdir "dir": ok',
  'sftp open "dir/f.bin" (write, creat, trunc): ok',
  'sftp close "dir/f.bin" (read 1000 bytes, wrote 70000 bytes): ok',
  'sftp rename "dir/f.bin" to "dir/g.bin": ok',
  'sftp rename "dir/g.bin" to "dir/h.bin": ok',
  'sftp symlink "dir/link" -> "/etc/passwd": ok',
  'sftp remove "/etc/shadow": permission denied',
  'sftp rmdir "dir": ok',
];

/** Feeds each request, then its answer, every packet split into pieces at `cut(packet)`. */
function audit(steps: [Buffer, Buffer][], cut: (b: Buffer) => number[] = () => []): string[] {
  const a = new SftpAuditor();
  const out: SftpOperation[] = [];
  const feed = (buf: Buffer, f: (c: Buffer) => SftpOperation[]): void => {
    let last = 0;
    for (const s of [...cut(buf).filter((x) => x > last && x < buf.length), buf.length]) {
      out.push(...f(buf.subarray(last, s)));
      last = s;
    }
  };
  for (const [c, srv] of steps) {
    feed(c, (x) => a.client(x));
    feed(srv, (x) => a.server(x));
  }
  out.push(...a.end());
  return out.map(describeSftp);
}

describe('SFTP auditor', () => {
  test('reports operations with paths, modes, byte counts and outcomes', () => {
    assert.deepEqual(audit(conversation()), EXPECTED);
  });

  test('the same with every packet split at every point (a stride through data)', () => {
    const steps = conversation();
    const longest = Math.max(...steps.flat().map((b) => b.length));
    for (let at = 1; at < longest; at += at < 400 ? 1 : 331) {
      assert.deepEqual(audit(steps, () => [at]), EXPECTED, `split at ${at}`);
    }
  });

  test('byte by byte, and everything in one chunk with pipelined requests', () => {
    const steps = conversation();
    assert.deepEqual(
      audit(steps, (b) => Array.from({ length: b.length }, (_, i) => i)),
      EXPECTED,
    );
    // A client pipelines: the open, then (after its handle) write, read and close at once.
    const a = new SftpAuditor();
    const out: SftpOperation[] = [];
    const [init, mkdir, open, write, read, close, ...rest] = steps;
    for (const [c, srv] of [init!, mkdir!, open!]) out.push(...a.client(c), ...a.server(srv));
    out.push(...a.client(Buffer.concat([write![0], read![0], close![0]])));
    out.push(...a.server(Buffer.concat([write![1], read![1], close![1]])));
    for (const [c, srv] of rest) out.push(...a.client(c), ...a.server(srv));
    assert.deepEqual(out.map(describeSftp), EXPECTED);
  });

  test('unanswered operations and open handles are reported at the end', () => {
    const a = new SftpAuditor();
    a.client(Buffer.concat([packet(3, u32(1), str('x'), u32(1), NO_ATTRS)]));
    a.server(packet(102, u32(1), str('h')));
    a.client(packet(13, u32(2), str('y')));
    assert.deepEqual(a.end().map(describeSftp), ['sftp remove "y": no answer', 'sftp close "x" (read 0 bytes, wrote 0 bytes): channel closed']);
  });

  test('oversized or truncated packets are protocol errors', () => {
    assert.throws(() => new SftpAuditor().client(Buffer.concat([u32(MAX_PACKET + 1), Buffer.from([6])])), SftpProtocolError);
    assert.throws(() => new SftpAuditor().client(packet(13, u32(1), u32(100))), SftpProtocolError);
    assert.throws(() => new SftpAuditor().client(Buffer.concat([u32(300 * 1024), Buffer.from([13])])), SftpProtocolError);
  });
});

describe('terminal recorder', () => {
  test('cuts at line ends, or whitespace well before the end, and never inside a PEM block', () => {
    assert.equal(safeCut('hello\nwor'), 6);
    assert.equal(safeCut('hello wor'), 0, 'a short line is held whole');
    assert.equal(safeCut(`${'x'.repeat(200)} ${'z'.repeat(150)}`), 201, 'a long line is cut at whitespace well before its end');
    assert.equal(safeCut('card 4111 1111 1111 1111'), 0, 'a card in groups is not split');
    assert.equal(safeCut(`${'y'.repeat(300)} password: hunter2hunter2`), 0, 'a name and its value near the end are held together');
    assert.equal(safeCut('AKIAIOSFOD'), 0);
    assert.equal(safeCut('ok\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n'), 3);
    assert.equal(safeCut('-----BEGIN X-----\nAA\n-----END X-----\nnext '), 37);
  });

  test('a secret written a byte at a time is emitted whole', async () => {
    const out: string[] = [];
    const r = new StreamRecorder({ limit: 1 << 20, emit: (t) => out.push(t) });
    for (const ch of 'token sk_live_4eC39HqLyjWDarjtT1zdp7dc\n') {
      r.push(Buffer.from(ch));
      await new Promise((res) => setTimeout(res, 2));
    }
    await new Promise((res) => setTimeout(res, 120));
    r.close();
    assert.ok(out.some((t) => t.includes('sk_live_4eC39HqLyjWDarjtT1zdp7dc')), JSON.stringify(out));
    assert.equal(out.join(''), 'token sk_live_4eC39HqLyjWDarjtT1zdp7dc\n');
  });

  test('a held tail is released after a while; the limit is reported', async () => {
    const out: string[] = [];
    let skipped = 0;
    const r = new StreamRecorder({ limit: 10, emit: (t) => out.push(t), onTruncated: (n) => (skipped = n) });
    r.push(Buffer.from('partial'));
    await new Promise((res) => setTimeout(res, 1200));
    assert.deepEqual(out, ['partial']);
    r.push(Buffer.from('0123456789'));
    r.close();
    assert.equal(out.join(''), 'partial012');
    assert.equal(skipped, 7);
  });

  test('UTF-8 split across chunks stays text; binary chunks become markers', () => {
    const out: string[] = [];
    const bin: number[] = [];
    const r = new StreamRecorder({ limit: 1 << 20, emit: (t) => out.push(t), onBinary: (n) => bin.push(n) });
    const euro = Buffer.from('prix: 5 € ');
    assert.equal(isBinaryChunk(euro.subarray(0, 10)), false);
    r.push(euro.subarray(0, 10));
    r.push(euro.subarray(10));
    r.push(Buffer.from([0, 1, 2, 255]));
    r.push(randomBytes(100).fill(0x80, 0, 1));
    r.push(Buffer.from('after\n'));
    r.close();
    assert.equal(out.join(''), 'prix: 5 € after\n');
    assert.deepEqual(bin, [104]);
  });
});
