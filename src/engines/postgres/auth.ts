/**
 * Client-side authentication toward the upstream PostgreSQL server, with the credentials Gatehouse
 * holds: SCRAM-SHA-256 (RFC 5802, RFC 7677; no channel binding, GS2 header `n,,`), MD5 and cleartext.
 * See https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { GatehouseError } from '../../core/errors.js';
import { frontend, type AuthenticationMessage } from './protocol.js';

const pbkdf2Async = promisify(pbkdf2);

function authError(message: string, detail?: string): GatehouseError {
  return new GatehouseError('ERR_UPSTREAM', message, detail === undefined ? {} : { detail });
}

/** The PasswordMessage payload for MD5 authentication: `'md5' + md5(md5(password + user) + salt)`. */
export function md5PasswordResponse(user: string, password: string, salt: Uint8Array): string {
  const inner = createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex');
  return 'md5' + createHash('md5').update(inner, 'latin1').update(salt).digest('hex');
}

/**
 * SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords: ASCII passwords are used as they
 * are; others are mapped (non-ASCII spaces to SPACE, "commonly mapped to nothing" removed) and NFKC
 * normalized; a result with prohibited characters falls back to the raw password, as libpq does.
 * The bidirectional-text check is not implemented (such passwords are used normalized).
 */
export function saslPrep(password: string): string {
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  let mapped = '';
  for (const ch of password) {
    const cp = ch.codePointAt(0)!;
    if (NON_ASCII_SPACE.has(cp) || (cp >= 0x2000 && cp <= 0x200b)) mapped += ' ';
    else if (!MAPPED_TO_NOTHING.has(cp) && !(cp >= 0x180b && cp <= 0x180d) && !(cp >= 0xfe00 && cp <= 0xfe0f)) mapped += ch;
  }
  mapped = mapped.normalize('NFKC');
  return PROHIBITED.test(mapped) ? password : mapped;
}

/** RFC 3454 C.1.2 (besides U+2000–U+200B). */
const NON_ASCII_SPACE = new Set([0xa0, 0x1680, 0x202f, 0x205f, 0x3000]);
/** RFC 3454 B.1 (besides the ranges tested inline). */
const MAPPED_TO_NOTHING = new Set([0xad, 0x34f, 0x1806, 0x200c, 0x200d, 0x2060, 0xfeff]);
/** Controls, private use, surrogates, unassigned, spaces and the C.8/C.9 format characters. */
const PROHIBITED = /[\p{Cc}\p{Co}\p{Cs}\p{Cn}\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\ufff9-\ufffd]/u;

const MAX_ITERATIONS = 10_000_000;
const saltedCache = new Map<string, Buffer>();
const SALTED_CACHE_SIZE = 64;

/** PBKDF2 of the password, cached per (password, salt, iterations): reconnects skip the key stretching. */
async function saltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const key = createHash('sha256').update(password, 'utf8').update('\0').update(salt).update(`\0${iterations}`).digest('base64');
  const hit = saltedCache.get(key);
  if (hit) {
    saltedCache.delete(key);
    saltedCache.set(key, hit);
    return hit;
  }
  const salted = await pbkdf2Async(saslPrep(password), salt, iterations, 32, 'sha256');
  saltedCache.set(key, salted);
  if (saltedCache.size > SALTED_CACHE_SIZE) saltedCache.delete(saltedCache.keys().next().value!);
  return salted;
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function attributes(message: string, what: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw authError('upstream SCRAM exchange failed', `malformed ${what}: ${JSON.stringify(message.slice(0, 200))}`);
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * One SCRAM-SHA-256 exchange as the client. Call `clientFirstMessage()`, then
 * `clientFinalMessage(serverFirst)` with the AuthenticationSASLContinue data, then
 * `verifyServerFinal(serverFinal)` with the AuthenticationSASLFinal data (it throws unless the
 * server proved it knows the password).
 */
export class ScramSha256Client {
  readonly mechanism = 'SCRAM-SHA-256';
  private readonly clientNonce: string;
  private readonly user: string;
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | undefined;
  private verified = false;

  /**
   * @param options.user the SCRAM user name; PostgreSQL ignores it (the startup packet's user counts), libpq sends ''.
   * @param options.nonce fixed client nonce, for tests only.
   */
  constructor(
    private readonly password: string,
    options: { user?: string; nonce?: string } = {},
  ) {
    this.clientNonce = options.nonce ?? randomBytes(18).toString('base64');
    this.user = (options.user ?? '').replaceAll('=', '=3D').replaceAll(',', '=2C');
  }

  /** True once the server's signature has been verified. */
  get serverVerified(): boolean {
    return this.verified;
  }

  clientFirstMessage(): string {
    this.clientFirstBare = `n=${this.user},r=${this.clientNonce}`;
    return `n,,${this.clientFirstBare}`;
  }

  async clientFinalMessage(serverFirst: string): Promise<string> {
    if (!this.clientFirstBare) throw authError('upstream SCRAM exchange failed', 'client-first-message not sent');
    const attrs = attributes(serverFirst, 'server-first-message');
    if (attrs.has('m')) throw authError('upstream SCRAM exchange failed', 'unsupported mandatory extension');
    const nonce = attrs.get('r') ?? '';
    const saltB64 = attrs.get('s') ?? '';
    const iterText = attrs.get('i') ?? '';
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length || !PRINTABLE.test(nonce)) {
      throw authError('upstream SCRAM exchange failed', 'server nonce does not extend the client nonce');
    }
    if (!saltB64 || !BASE64.test(saltB64)) throw authError('upstream SCRAM exchange failed', 'invalid salt');
    if (!/^[1-9][0-9]{0,9}$/.test(iterText) || Number(iterText) > MAX_ITERATIONS) {
      throw authError('upstream SCRAM exchange failed', `invalid iteration count ${JSON.stringify(iterText.slice(0, 20))}`);
    }
    const salted = await saltedPassword(this.password, Buffer.from(saltB64, 'base64'), Number(iterText));
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  verifyServerFinal(serverFinal: string): void {
    if (!this.expectedServerSignature) throw authError('upstream SCRAM exchange failed', 'server-final-message before client-final-message');
    const attrs = attributes(serverFinal, 'server-final-message');
    const err = attrs.get('e');
    if (err !== undefined) throw authError('upstream authentication failed', `SCRAM server error: ${err}`);
    const v = attrs.get('v') ?? '';
    const got = BASE64.test(v) ? Buffer.from(v, 'base64') : Buffer.alloc(0);
    if (got.length !== 32 || !timingSafeEqual(got, this.expectedServerSignature)) {
      throw authError('upstream authentication failed', 'invalid SCRAM server signature');
    }
    this.verified = true;
  }
}

export interface UpstreamCredentials {
  user: string;
  /** Absent for trust / certificate authentication. */
  password?: string;
  /** Send the password in cleartext when the server asks (as libpq does). Default true. */
  allowCleartext?: boolean;
  /** Answer MD5 challenges. Default true. */
  allowMd5?: boolean;
}

/**
 * Answers the upstream server's Authentication* requests with the connection's credentials. Feed it
 * every `R` message; it returns the bytes to send (or `undefined` when there is nothing to send) and
 * throws `GatehouseError('ERR_UPSTREAM')` for methods it cannot or may not use. A SCRAM exchange must
 * end with a verified server signature before AuthenticationOk is accepted.
 */
export class UpstreamAuthenticator {
  private scram: ScramSha256Client | undefined;
  private ok = false;

  constructor(private readonly creds: UpstreamCredentials) {}

  /** True after AuthenticationOk. */
  get authenticated(): boolean {
    return this.ok;
  }

  private requirePassword(method: string): string {
    if (this.creds.password === undefined) throw authError('upstream authentication failed', `server requested ${method} but the connection has no password`);
    return this.creds.password;
  }

  async respond(msg: AuthenticationMessage): Promise<Buffer | undefined> {
    if (this.ok) throw authError('upstream authentication failed', `unexpected ${msg.name} after AuthenticationOk`);
    switch (msg.name) {
      case 'AuthenticationOk':
        if (this.scram && !this.scram.serverVerified) throw authError('upstream authentication failed', 'server skipped SCRAM final verification');
        this.ok = true;
        return undefined;
      case 'AuthenticationCleartextPassword':
        if (this.creds.allowCleartext === false) throw authError('upstream authentication failed', 'server requested a cleartext password, not allowed for this connection');
        return frontend.password(this.requirePassword('a cleartext password'));
      case 'AuthenticationMD5Password':
        if (this.creds.allowMd5 === false) throw authError('upstream authentication failed', 'server requested MD5 authentication, not allowed for this connection');
        return frontend.password(md5PasswordResponse(this.creds.user, this.requirePassword('MD5 authentication'), msg.salt));
      case 'AuthenticationSASL': {
        if (this.scram) throw authError('upstream authentication failed', 'repeated SASL request');
        if (!msg.mechanisms.includes('SCRAM-SHA-256')) {
          throw authError('upstream authentication failed', `no supported SASL mechanism among ${msg.mechanisms.join(', ')}`);
        }
        this.scram = new ScramSha256Client(this.requirePassword('SCRAM-SHA-256'));
        return frontend.saslInitialResponse(this.scram.mechanism, this.scram.clientFirstMessage());
      }
      case 'AuthenticationSASLContinue':
        if (!this.scram) throw authError('upstream authentication failed', 'SASLContinue without SASL');
        return frontend.saslResponse(await this.scram.clientFinalMessage(msg.data.toString('utf8')));
      case 'AuthenticationSASLFinal':
        if (!this.scram) throw authError('upstream authentication failed', 'SASLFinal without SASL');
        this.scram.verifyServerFinal(msg.data.toString('utf8'));
        return undefined;
      default:
        throw authError('upstream authentication failed', `unsupported authentication method ${msg.name}`);
    }
  }
}
