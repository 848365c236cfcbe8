import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { ScramSha256Client, UpstreamAuthenticator, md5PasswordResponse, saslPrep } from '../../src/engines/postgres/auth.js';
import { BackendParser, FrontendParser, backend, type AuthenticationMessage } from '../../src/engines/postgres/protocol.js';
import { isGatehouseError } from '../../src/core/errors.js';

// RFC 7677 section 3.
const RFC = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function auth(bytes: Buffer): AuthenticationMessage {
  const [m] = new BackendParser().push(bytes);
  assert.ok(m && m.type === 'R');
  return m as AuthenticationMessage;
}

function upstreamError(p: Promise<unknown> | (() => unknown), pattern: RegExp): Promise<void> | void {
  const check = (e: unknown): boolean => {
    assert.ok(isGatehouseError(e, 'ERR_UPSTREAM'), String(e));
    assert.match(String((e as { detail?: string }).detail), pattern);
    return true;
  };
  return typeof p === 'function' ? assert.throws(p, check) : assert.rejects(p, check);
}

test('SCRAM-SHA-256 client reproduces the RFC 7677 test vector', async () => {
  const c = new ScramSha256Client('pencil', { user: 'user', nonce: 'rOprNGfwEbeRWgbNEkqO' });
  assert.equal(c.clientFirstMessage(), RFC.clientFirst);
  assert.equal(await c.clientFinalMessage(RFC.serverFirst), RFC.clientFinal);
  assert.equal(c.serverVerified, false);
  c.verifyServerFinal(RFC.serverFinal);
  assert.equal(c.serverVerified, true);
});

test('SCRAM client refuses a forged server signature, a foreign nonce, bad parameters and server errors', async () => {
  const forged = new ScramSha256Client('pencil', { user: 'user', nonce: 'rOprNGfwEbeRWgbNEkqO' });
  forged.clientFirstMessage();
  await forged.clientFinalMessage(RFC.serverFirst);
  await upstreamError(() => forged.verifyServerFinal('v=' + Buffer.alloc(32).toString('base64')), /invalid SCRAM server signature/);
  await upstreamError(() => forged.verifyServerFinal('e=invalid-proof'), /SCRAM server error: invalid-proof/);
  await upstreamError(() => forged.verifyServerFinal('v=***'), /invalid SCRAM server signature/);

  const cases: [string, RegExp][] = [
    ['r=someoneElse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', /nonce/],
    ['r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', /nonce/],
    ['r=rOprNGfwEbeRWgbNEkqOx,s=,i=4096', /salt/],
    ['r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0', /iteration count/],
    ['r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999', /iteration count/],
    ['m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', /mandatory extension/],
    ['garbage', /malformed server-first-message/],
  ];
  for (const [serverFirst, pattern] of cases) {
    const c = new ScramSha256Client('pencil', { nonce: 'rOprNGfwEbeRWgbNEkqO' });
    c.clientFirstMessage();
    await upstreamError(c.clientFinalMessage(serverFirst), pattern);
  }
});

test('MD5 response is md5 + md5(md5(password + user) + salt)', () => {
  assert.equal(md5PasswordResponse('postgres', 'secret', Buffer.from([1, 2, 3, 4])), 'md5bb41a296aab6baccb36ff243a562abff');
});

test('saslPrep leaves ASCII alone, maps spaces, drops invisible characters, normalizes NFKC', () => {
  assert.equal(saslPrep('pencil\t'), 'pencil\t');
  assert.equal(saslPrep('I\u00adX'), 'IX');
  assert.equal(saslPrep('a\u00a0b'), 'a b');
  assert.equal(saslPrep('\u2168'), 'IX');
  assert.equal(saslPrep('\u00aa'), 'a');
  assert.equal(saslPrep('é\u0007'), 'é\u0007', 'prohibited output falls back to the raw password');
});

/** A minimal SCRAM server built from the RFC formulas, to run the authenticator end to end. */
function scramServer(password: string, salt: Buffer, iterations: number) {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  let clientFirstBare = '';
  let serverFirst = '';
  return {
    first(initial: Buffer): string {
      const body = initial.subarray(5);
      const nul = body.indexOf(0);
      assert.equal(body.toString('utf8', 0, nul), 'SCRAM-SHA-256');
      const len = body.readInt32BE(nul + 1);
      const msg = body.toString('utf8', nul + 5, nul + 5 + len);
      assert.ok(msg.startsWith('n,,'));
      clientFirstBare = msg.slice(3);
      const nonce = clientFirstBare.split(',')[1]!.slice(2);
      serverFirst = `r=${nonce}SERVER,s=${salt.toString('base64')},i=${iterations}`;
      return serverFirst;
    },
    final(response: Buffer, tamper = false): string {
      const msg = response.subarray(5).toString('utf8');
      const [withoutProof, proofAttr] = [msg.slice(0, msg.lastIndexOf(',p=')), msg.slice(msg.lastIndexOf(',p=') + 3)];
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const sig = createHmac('sha256', storedKey).update(authMessage).digest();
      const proof = Buffer.from(proofAttr, 'base64');
      const recovered = Buffer.from(proof.map((b, i) => b ^ sig[i]!));
      assert.ok(createHash('sha256').update(recovered).digest().equals(storedKey), 'client proof verifies');
      const serverSig = createHmac('sha256', serverKey).update(authMessage).digest();
      if (tamper) serverSig[0] = serverSig[0]! ^ 1;
      return `v=${serverSig.toString('base64')}`;
    },
  };
}

test('UpstreamAuthenticator runs a full SCRAM exchange and requires the server signature', async () => {
  const server = scramServer('s3cr3t', Buffer.from('saltsaltsalt'), 4096);
  const a = new UpstreamAuthenticator({ user: 'svc', password: 's3cr3t' });
  const initial = await a.respond(auth(backend.authenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'])));
  assert.ok(initial);
  const [parsed] = new FrontendParser({ typed: true }).push(initial);
  assert.equal(parsed?.name, 'PasswordMessage');
  const response = await a.respond(auth(backend.authenticationSASLContinue(server.first(initial))));
  assert.ok(response);
  assert.equal(await a.respond(auth(backend.authenticationSASLFinal(server.final(response)))), undefined);
  assert.equal(a.authenticated, false);
  assert.equal(await a.respond(auth(backend.authenticationOk())), undefined);
  assert.equal(a.authenticated, true);

  const tampered = scramServer('s3cr3t', Buffer.from('salt2'), 4096);
  const b = new UpstreamAuthenticator({ user: 'svc', password: 's3cr3t' });
  const i2 = (await b.respond(auth(backend.authenticationSASL(['SCRAM-SHA-256']))))!;
  const r2 = (await b.respond(auth(backend.authenticationSASLContinue(tampered.first(i2)))))!;
  await upstreamError(b.respond(auth(backend.authenticationSASLFinal(tampered.final(r2, true)))), /invalid SCRAM server signature/);

  const skip = new UpstreamAuthenticator({ user: 'svc', password: 's3cr3t' });
  await skip.respond(auth(backend.authenticationSASL(['SCRAM-SHA-256'])));
  await upstreamError(skip.respond(auth(backend.authenticationOk())), /skipped SCRAM final/);
});

test('UpstreamAuthenticator: cleartext, md5, trust, and refusals', async () => {
  const clear = new UpstreamAuthenticator({ user: 'svc', password: 'pw' });
  const pw = await clear.respond(auth(backend.authenticationCleartextPassword()));
  assert.ok(pw?.equals(Buffer.from('p\0\0\0\x07pw\0', 'latin1')));

  const md5 = new UpstreamAuthenticator({ user: 'postgres', password: 'secret' });
  const m = (await md5.respond(auth(backend.authenticationMD5Password(Buffer.from([1, 2, 3, 4])))))!;
  assert.equal(m.subarray(5, m.length - 1).toString(), 'md5bb41a296aab6baccb36ff243a562abff');

  const trust = new UpstreamAuthenticator({ user: 'svc' });
  assert.equal(await trust.respond(auth(backend.authenticationOk())), undefined);
  assert.equal(trust.authenticated, true);
  await upstreamError(trust.respond(auth(backend.authenticationOk())), /after AuthenticationOk/);

  await upstreamError(new UpstreamAuthenticator({ user: 'svc' }).respond(auth(backend.authenticationCleartextPassword())), /no password/);
  await upstreamError(new UpstreamAuthenticator({ user: 'svc', password: 'x', allowCleartext: false }).respond(auth(backend.authenticationCleartextPassword())), /cleartext/);
  await upstreamError(new UpstreamAuthenticator({ user: 'svc', password: 'x', allowMd5: false }).respond(auth(backend.authenticationMD5Password(Buffer.alloc(4)))), /MD5/);
  await upstreamError(new UpstreamAuthenticator({ user: 'svc', password: 'x' }).respond(auth(backend.authenticationSASL(['SCRAM-SHA-256-PLUS']))), /no supported SASL mechanism/);
  const gss = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 7]);
  await upstreamError(new UpstreamAuthenticator({ user: 'svc', password: 'x' }).respond(auth(gss)), /unsupported authentication method AuthenticationGSS/);
});
