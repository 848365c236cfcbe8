import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as cryptoConstants, createHash, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import {
  UpstreamAuthenticator,
  cachingSha2Scramble,
  cleartextPassword,
  nativePasswordScramble,
  rsaEncryptPassword,
  scrambleOf,
} from '../../src/engines/mysql/auth.js';
import {
  Capability,
  ClientParser,
  encodePacket,
  parseAuthPhasePacket,
  parseGreeting,
  server,
  type AuthPhaseMessage,
  type HandshakeResponse41,
  type HandshakeV10,
} from '../../src/engines/mysql/protocol.js';
import { isGatehouseError } from '../../src/core/errors.js';

const SCRAMBLE = Buffer.from(Array.from({ length: 20 }, (_, i) => i + 1));
const SERVER_CAPS = (Capability.LONG_PASSWORD | Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH | Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.TRANSACTIONS | Capability.MULTI_RESULTS | Capability.MULTI_STATEMENTS | Capability.CONNECT_WITH_DB | Capability.CONNECT_ATTRS | Capability.DEPRECATE_EOF | Capability.SSL | Capability.SESSION_TRACK | Capability.PS_MULTI_RESULTS) >>> 0;

test('mysql_native_password and caching_sha2_password scrambles match independent vectors', () => {
  // Vectors computed with Python's hashlib from the published constructions.
  assert.equal(nativePasswordScramble('secret', SCRAMBLE).toString('hex'), 'b32bb3a583e1340c0a1108d58b1be49781ad8c2f');
  assert.equal(nativePasswordScramble('pässwörd', Buffer.from('abcdefghijklmnopqrst')).toString('hex'), 'bbac5880403c8943680f3e56f928c964753198c0');
  assert.equal(cachingSha2Scramble('secret', SCRAMBLE).toString('hex'), '746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9');
  assert.equal(nativePasswordScramble('', SCRAMBLE).length, 0);
  assert.equal(cachingSha2Scramble('', SCRAMBLE).length, 0);
  // What a server checks: SHA1(reply XOR SHA1(scramble + stored)) == stored, with stored = SHA1(SHA1(pw)).
  const stored = createHash('sha1').update(createHash('sha1').update('secret').digest()).digest();
  const reply = nativePasswordScramble('secret', SCRAMBLE);
  const mix = createHash('sha1').update(SCRAMBLE).update(stored).digest();
  const stage1 = Buffer.from(reply.map((b, i) => b ^ mix[i]!));
  assert.ok(createHash('sha1').update(stage1).digest().equals(stored));
  // MySQL's own hash of the password is '*' + hex(SHA1(SHA1(pw))).
  assert.equal(`*${stored.toString('hex').toUpperCase()}`, '*14E65567ABDB5135D0CFD9A70B3032C179A49EE7');
});

test('scrambleOf strips the NUL servers append', () => {
  assert.deepStrictEqual(scrambleOf(Buffer.concat([SCRAMBLE, Buffer.from([0])])), SCRAMBLE);
  assert.deepStrictEqual(scrambleOf(SCRAMBLE), SCRAMBLE);
  assert.deepStrictEqual(scrambleOf(Buffer.from([1, 2, 0])), Buffer.from([1, 2]));
  assert.deepStrictEqual(cleartextPassword('tök'), Buffer.from('tök\0'));
});

test('RSA-OAEP password encryption decrypts to the password XOR the scramble', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const enc = rsaEncryptPassword('s3cr3t-ü', SCRAMBLE, publicKey);
  assert.equal(enc.length, 256);
  const plain = privateDecrypt({ key: privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, enc);
  const pw = Buffer.from(plain.map((b, i) => b ^ SCRAMBLE[i % 20]!));
  assert.deepStrictEqual(pw, Buffer.from('s3cr3t-ü\0'));
  assert.throws(() => rsaEncryptPassword('x', SCRAMBLE, 'not a key'), (e: unknown) => isGatehouseError(e, 'ERR_UPSTREAM'));
});

function greeting(plugin: string, caps = SERVER_CAPS): HandshakeV10 {
  const m = parseGreeting({ ...pktOf(server.handshakeV10({ serverVersion: '8.0.36', connectionId: 1, authPluginData: SCRAMBLE, capabilities: caps, authPlugin: plugin }), 0) });
  assert.equal(m.name, 'HandshakeV10');
  return m as HandshakeV10;
}

function pktOf(payload: Buffer, seq: number) {
  const raw = encodePacket(payload, seq);
  return { sequenceId: seq, lastSequenceId: seq, payload: raw.subarray(4), raw };
}

function parsedResponse(payload: Buffer): HandshakeResponse41 {
  const [m] = new ClientParser({ serverCapabilities: SERVER_CAPS }).push(encodePacket(payload, 1));
  assert.equal(m?.name, 'HandshakeResponse41');
  return m as HandshakeResponse41;
}

function msg(payload: Buffer, caps = SERVER_CAPS): AuthPhaseMessage {
  return parseAuthPhasePacket(pktOf(payload, 2), caps);
}

function upstreamError(fn: () => unknown, detail: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isGatehouseError(e, 'ERR_UPSTREAM'), String(e));
    assert.match(e.detail ?? '', detail);
    return true;
  });
}

test('UpstreamAuthenticator: mysql_native_password in the handshake response', () => {
  const a = new UpstreamAuthenticator({ user: 'svc', password: 'secret', database: 'shop' });
  const r = parsedResponse(a.handshakeResponse(greeting('mysql_native_password'), { attributes: { program_name: 'gatehouse' } }));
  assert.equal(r.user, 'svc');
  assert.equal(r.database, 'shop');
  assert.equal(r.authPlugin, 'mysql_native_password');
  assert.equal(r.authResponse.toString('hex'), 'b32bb3a583e1340c0a1108d58b1be49781ad8c2f');
  assert.equal(r.attributes.program_name, 'gatehouse');
  assert.ok(r.capabilities & Capability.DEPRECATE_EOF && r.capabilities & Capability.CONNECT_WITH_DB);
  assert.equal(r.capabilities & Capability.SSL, 0);
  assert.equal(r.capabilities & Capability.MULTI_STATEMENTS, 0, 'not requested by default');
  assert.equal(a.capabilities, r.capabilities);
  assert.equal(a.respond(msg(server.ok({}, SERVER_CAPS))), undefined);
  assert.ok(a.authenticated);
  upstreamError(() => a.respond(msg(server.ok({}, SERVER_CAPS))), /after OK/);
});

test('UpstreamAuthenticator: caching_sha2_password fast path (0x03) and full authentication over TLS (0x04)', () => {
  const fast = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  const r = parsedResponse(fast.handshakeResponse(greeting('caching_sha2_password')));
  assert.equal(r.authPlugin, 'caching_sha2_password');
  assert.equal(r.authResponse.toString('hex'), '746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9');
  assert.equal(fast.respond(msg(server.authMoreData(Buffer.from([0x03])))), undefined);
  assert.equal(fast.authenticated, false);
  fast.respond(msg(server.ok({}, SERVER_CAPS)));
  assert.ok(fast.authenticated);

  const tls = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  const g = greeting('caching_sha2_password');
  const ssl = tls.sslRequest(g);
  assert.equal(ssl.length, 32);
  assert.ok(ssl.readUInt32LE(0) & Capability.SSL);
  const r2 = parsedResponse(tls.handshakeResponse(g, {}, true));
  assert.ok(r2.capabilities & Capability.SSL);
  assert.deepStrictEqual(tls.respond(msg(server.authMoreData(Buffer.from([0x04])))), Buffer.from('secret\0'));
});

test('UpstreamAuthenticator: caching_sha2_password full authentication without TLS needs the RSA key', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const decrypt = (b: Buffer) => Buffer.from(privateDecrypt({ key: privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, b).map((x, i) => x ^ SCRAMBLE[i % 20]!));

  // Refused by default: whoever answers could send their own key.
  const refused = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  refused.handshakeResponse(greeting('caching_sha2_password'));
  upstreamError(() => refused.respond(msg(server.authMoreData(Buffer.from([0x04])))), /needs TLS, a pinned server public key, or allowPublicKeyRetrieval/);

  // Requested from the server (0x02), then used.
  const asked = new UpstreamAuthenticator({ user: 'svc', password: 'secret', allowPublicKeyRetrieval: true });
  asked.handshakeResponse(greeting('caching_sha2_password'));
  assert.deepStrictEqual(asked.respond(msg(server.authMoreData(Buffer.from([0x04])))), Buffer.from([0x02]));
  const enc = asked.respond(msg(server.authMoreData(Buffer.from(publicKey))));
  assert.ok(enc);
  assert.deepStrictEqual(decrypt(enc), Buffer.from('secret\0'));

  // Pinned: no round trip.
  const pinned = new UpstreamAuthenticator({ user: 'svc', password: 'secret', serverPublicKey: publicKey });
  pinned.handshakeResponse(greeting('caching_sha2_password'));
  assert.deepStrictEqual(decrypt(pinned.respond(msg(server.authMoreData(Buffer.from([0x04]))))!), Buffer.from('secret\0'));

  upstreamError(() => {
    const odd = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
    odd.handshakeResponse(greeting('caching_sha2_password'));
    odd.respond(msg(server.authMoreData(Buffer.from([0x09]))));
  }, /unexpected AuthMoreData/);
});

test('UpstreamAuthenticator: sha256_password', () => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const a = new UpstreamAuthenticator({ user: 'svc', password: 'pw', allowPublicKeyRetrieval: true });
  const r = parsedResponse(a.handshakeResponse(greeting('sha256_password')));
  assert.deepStrictEqual(r.authResponse, Buffer.from([0x01]), 'requests the public key');
  assert.equal(a.respond(msg(server.authMoreData(Buffer.from(publicKey))))?.length, 256);
  const t = new UpstreamAuthenticator({ user: 'svc', password: 'pw' });
  assert.deepStrictEqual(parsedResponse(t.handshakeResponse(greeting('sha256_password'), {}, true)).authResponse, Buffer.from('pw\0'));
});

test('UpstreamAuthenticator: authentication method switch', () => {
  const a = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  a.handshakeResponse(greeting('caching_sha2_password'));
  const other = Buffer.from('abcdefghijklmnopqrst');
  const reply = a.respond(msg(server.authSwitchRequest('mysql_native_password', Buffer.concat([other, Buffer.from([0])]))));
  assert.equal(reply?.toString('hex'), nativePasswordScramble('secret', other).toString('hex'));
  assert.equal(a.authPlugin, 'mysql_native_password');
  upstreamError(() => a.respond(msg(server.authSwitchRequest('caching_sha2_password', other))), /second authentication switch/);

  // To mysql_clear_password: only over TLS (or when explicitly allowed).
  const plain = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  plain.handshakeResponse(greeting('mysql_native_password'));
  upstreamError(() => plain.respond(msg(server.authSwitchRequest('mysql_clear_password'))), /mysql_clear_password on a connection without TLS/);
  const tls = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  tls.handshakeResponse(greeting('mysql_native_password'), {}, true);
  assert.deepStrictEqual(tls.respond(msg(server.authSwitchRequest('mysql_clear_password'))), Buffer.from('secret\0'));
  const allowed = new UpstreamAuthenticator({ user: 'svc', password: 'secret', allowCleartextWithoutTls: true });
  allowed.handshakeResponse(greeting('mysql_native_password'));
  assert.deepStrictEqual(allowed.respond(msg(server.authSwitchRequest('mysql_clear_password'))), Buffer.from('secret\0'));

  // Unsupported plugins and short scrambles.
  const ed = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  ed.handshakeResponse(greeting('mysql_native_password'));
  upstreamError(() => ed.respond(msg(server.authSwitchRequest('client_ed25519', other))), /unsupported authentication plugin "client_ed25519"/);
  const short = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  short.handshakeResponse(greeting('mysql_native_password'));
  upstreamError(() => short.respond(msg(server.authSwitchRequest('mysql_native_password', Buffer.from('abc')))), /3-byte scramble/);
});

test('UpstreamAuthenticator: unknown default plugins, cleartext defaults, errors, empty passwords', () => {
  // A default plugin the gateway does not speak: it answers with native_password and lets the server switch.
  const a = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  const r = parsedResponse(a.handshakeResponse(greeting('client_ed25519')));
  assert.equal(r.authPlugin, 'mysql_native_password');
  // A server defaulting to cleartext does not get the password without TLS.
  const c = new UpstreamAuthenticator({ user: 'svc', password: 'secret' });
  const rc = parsedResponse(c.handshakeResponse(greeting('mysql_clear_password')));
  assert.equal(rc.authPlugin, 'mysql_native_password');
  assert.ok(!rc.authResponse.includes(Buffer.from('secret')));
  // Server errors carry the server's code and message into the detail.
  const e = new UpstreamAuthenticator({ user: 'svc', password: 'bad' });
  e.handshakeResponse(greeting('mysql_native_password'));
  upstreamError(() => e.respond(msg(server.err({ code: 1045, sqlState: '28000', message: "Access denied for user 'svc'" }, SERVER_CAPS))), /server error 1045 \(28000\): Access denied/);
  // No password: empty answers.
  const n = new UpstreamAuthenticator({ user: 'root' });
  assert.equal(parsedResponse(n.handshakeResponse(greeting('mysql_native_password'))).authResponse.length, 0);
  // Order of calls.
  const o = new UpstreamAuthenticator({ user: 'svc' });
  upstreamError(() => o.respond(msg(server.ok({}, SERVER_CAPS))), /before the handshake response/);
  o.handshakeResponse(greeting('mysql_native_password'));
  upstreamError(() => o.handshakeResponse(greeting('mysql_native_password')), /already sent/);
  // A server without 4.1 secure connection is refused.
  upstreamError(() => new UpstreamAuthenticator({ user: 'x' }).handshakeResponse(greeting('mysql_native_password', SERVER_CAPS & ~Capability.SECURE_CONNECTION)), /protocol 4.1/);
  upstreamError(() => new UpstreamAuthenticator({ user: 'x' }).sslRequest(greeting('mysql_native_password', SERVER_CAPS & ~Capability.SSL)), /does not support SSL/);
});
