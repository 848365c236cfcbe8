/**
 * Client-side authentication toward the upstream MySQL / MariaDB server, with the credentials
 * Gatehouse holds.
 *
 * - mysql_native_password: `SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)))`,
 *   https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_authentication_methods_native_password_authentication.html
 * - caching_sha2_password: `SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble)`, then
 *   fast auth success (0x03) or perform full authentication (0x04): the cleartext password over TLS,
 *   else the password XOR the scramble encrypted with the server's RSA key (OAEP), the key pinned or
 *   requested with 0x02. https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
 * - sha256_password (same full path; key requested with 0x01) and mysql_clear_password.
 * - Authentication method switch: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
 * - MariaDB: https://mariadb.com/kb/en/connection/#authentication-plugins
 *
 * Not implemented: MariaDB's `client_ed25519` and `parsec`, `auth_gssapi_client`, `dialog` (PAM):
 * a server asking for them gets a clear `ERR_UPSTREAM`.
 */
import { createHash, createPublicKey, publicEncrypt, constants as cryptoConstants, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../../core/errors.js';
import { AuthPlugin, CLIENT_BASIC_CAPABILITIES, Capability } from './protocol/constants.js';
import { client } from './protocol/client.js';
import type { AuthPhaseMessage, HandshakeV10 } from './protocol/server.js';

function authError(message: string, detail?: string): GatehouseError {
  return new GatehouseError('ERR_UPSTREAM', message, detail === undefined ? {} : { detail });
}

function sha1(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function bytes(password: string | Uint8Array): Buffer {
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : Buffer.from(password);
}

/** The scramble part of plugin data: the first 20 bytes (servers append a NUL). */
export function scrambleOf(data: Uint8Array): Buffer {
  const b = Buffer.from(data);
  const end = b.length > 20 ? 20 : b.length > 0 && b[b.length - 1] === 0 ? b.length - 1 : b.length;
  return b.subarray(0, end);
}

/** mysql_native_password: `SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))`; empty for an empty password. */
export function nativePasswordScramble(password: string | Uint8Array, scramble: Uint8Array): Buffer {
  const pw = bytes(password);
  if (pw.length === 0) return Buffer.alloc(0);
  const stage1 = sha1(pw);
  const stage2 = sha1(stage1);
  const mix = sha1(scramble, stage2);
  for (let i = 0; i < 20; i++) mix[i] = mix[i]! ^ stage1[i]!;
  return mix;
}

/** caching_sha2_password fast path: `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble)`; empty for an empty password. */
export function cachingSha2Scramble(password: string | Uint8Array, scramble: Uint8Array): Buffer {
  const pw = bytes(password);
  if (pw.length === 0) return Buffer.alloc(0);
  const stage1 = sha256(pw);
  const stage2 = sha256(stage1);
  const mix = sha256(stage2, scramble);
  for (let i = 0; i < 32; i++) mix[i] = mix[i]! ^ stage1[i]!;
  return mix;
}

/** The password with its terminating NUL (cleartext full authentication, mysql_clear_password). */
export function cleartextPassword(password: string | Uint8Array): Buffer {
  return Buffer.concat([bytes(password), Buffer.from([0])]);
}

/** `(password + NUL) XOR scramble` (the scramble repeated), RSA-OAEP (SHA-1) encrypted with the server key. */
export function rsaEncryptPassword(password: string | Uint8Array, scramble: Uint8Array, publicKey: string | Uint8Array | KeyObject): Buffer {
  if (scramble.length === 0) throw new RangeError('empty scramble');
  const plain = cleartextPassword(password);
  for (let i = 0; i < plain.length; i++) plain[i] = plain[i]! ^ scramble[i % scramble.length]!;
  let key: KeyObject;
  try {
    key = typeof publicKey === 'string' || publicKey instanceof Uint8Array ? createPublicKey(Buffer.from(publicKey)) : publicKey;
  } catch (e) {
    throw authError('upstream authentication failed', `invalid server RSA public key: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return publicEncrypt({ key, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plain);
  } catch (e) {
    throw authError('upstream authentication failed', `RSA encryption of the password failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export interface UpstreamCredentials {
  user: string;
  /** Absent or empty: no password. */
  password?: string;
  /** Database to select in the handshake (CLIENT_CONNECT_WITH_DB). */
  database?: string;
  /**
   * The connection is protected by other means (a local socket): full authentication may send the
   * password in cleartext. A TLS connection is declared with `handshakeResponse(greeting, options, true)`.
   * Default false.
   */
  secure?: boolean;
  /** Answer `mysql_clear_password` without TLS. Default false: the password would cross the network in the clear. */
  allowCleartextWithoutTls?: boolean;
  /**
   * caching_sha2_password / sha256_password full authentication without TLS and without a pinned
   * key: ask the server for its RSA key. Default false, as in MySQL's own clients: whoever answers
   * could hand over their own key and read the password.
   */
  allowPublicKeyRetrieval?: boolean;
  /** The server's RSA public key (PEM), pinned: full authentication without TLS uses it directly. */
  serverPublicKey?: string | KeyObject;
}

export interface HandshakeOptions {
  /**
   * Capabilities the gateway wants; intersected with the server's. Default: protocol 4.1, secure
   * connection, plugin auth (lenenc data), transactions, multi-results, CLIENT_DEPRECATE_EOF.
   * CLIENT_CONNECT_WITH_DB is added when a database is set, CLIENT_SSL by `sslRequest()`.
   */
  capabilities?: number;
  /** Default 45 (utf8mb4_general_ci). */
  characterSet?: number;
  /** Default 16 MiB. */
  maxPacketSize?: number;
  /** Connection attributes (sent when the server supports CLIENT_CONNECT_ATTRS). */
  attributes?: Readonly<Record<string, string>>;
}

type Plugin = 'mysql_native_password' | 'caching_sha2_password' | 'sha256_password' | 'mysql_clear_password';
const SUPPORTED: ReadonlySet<string> = new Set<string>([AuthPlugin.NATIVE_PASSWORD, AuthPlugin.CACHING_SHA2_PASSWORD, AuthPlugin.SHA256_PASSWORD, AuthPlugin.CLEAR_PASSWORD]);

/**
 * Authenticates the gateway to the upstream server. Use:
 *
 * 1. `parseGreeting()` the server's first packet, then send `sslRequest(greeting)` and start TLS
 *    (if wanted and supported), then `handshakeResponse(greeting)`;
 * 2. feed every following server packet, parsed with `parseAuthPhasePacket(p, auth.capabilities)`,
 *    to `respond()`; send what it returns (a payload, framed with the exchange's next sequence id);
 *    stop when `authenticated` is true. An ERR from the server throws `ERR_UPSTREAM` with the
 *    server's code and message in `detail`.
 *
 * Plugins: mysql_native_password, caching_sha2_password (fast and full paths), sha256_password,
 * mysql_clear_password (only over TLS unless allowed), and one switch between them.
 */
export class UpstreamAuthenticator {
  private caps = 0;
  private plugin: Plugin = 'mysql_native_password';
  private scramble: Buffer = Buffer.alloc(0);
  private switched = false;
  private awaitingKey = false;
  private ok = false;
  private started = false;
  private secure = false;

  constructor(private readonly creds: UpstreamCredentials) {}

  /** Capabilities negotiated in the handshake response (the parser of server packets needs them). */
  get capabilities(): number {
    return this.caps;
  }

  /** True after the server's OK. */
  get authenticated(): boolean {
    return this.ok;
  }

  /** The plugin in use (after a switch, the new one). */
  get authPlugin(): string {
    return this.plugin;
  }

  private negotiate(greeting: HandshakeV10, options: HandshakeOptions): number {
    let want = options.capabilities ?? CLIENT_BASIC_CAPABILITIES;
    if (this.creds.database) want |= Capability.CONNECT_WITH_DB;
    if (options.attributes) want |= Capability.CONNECT_ATTRS;
    // Always keep bit 0 (CLIENT_LONG_PASSWORD / CLIENT_MYSQL) as MySQL clients do.
    let caps = ((want & greeting.capabilities) | Capability.LONG_PASSWORD) >>> 0;
    if (!(caps & Capability.PROTOCOL_41) || !(caps & Capability.SECURE_CONNECTION)) {
      throw authError('upstream authentication failed', 'server does not support protocol 4.1 with secure connection');
    }
    caps &= ~(Capability.SSL | Capability.COMPRESS | Capability.OPTIONAL_RESULTSET_METADATA | Capability.ZSTD_COMPRESSION_ALGORITHM | Capability.QUERY_ATTRIBUTES);
    if (want & Capability.QUERY_ATTRIBUTES && greeting.capabilities & Capability.QUERY_ATTRIBUTES) caps |= Capability.QUERY_ATTRIBUTES;
    return caps >>> 0;
  }

  /** The SSLRequest payload (send it, then start TLS, then send `handshakeResponse`). */
  sslRequest(greeting: HandshakeV10, options: HandshakeOptions = {}): Buffer {
    if (!(greeting.capabilities & Capability.SSL)) throw authError('upstream TLS unavailable', 'server does not support SSL');
    const caps = this.negotiate(greeting, options) | Capability.SSL;
    return client.sslRequest({ capabilities: caps, characterSet: options.characterSet ?? 45, maxPacketSize: options.maxPacketSize ?? 16 * 1024 * 1024 });
  }

  /** The HandshakeResponse41 payload with the first authentication answer; `tls`: sent over the TLS stream after `sslRequest`. */
  handshakeResponse(greeting: HandshakeV10, options: HandshakeOptions = {}, tls = false): Buffer {
    if (this.started) throw authError('upstream authentication failed', 'handshake response already sent');
    this.started = true;
    this.secure = tls || this.creds.secure === true;
    this.caps = this.negotiate(greeting, options) | (tls ? Capability.SSL : 0);
    this.scramble = scrambleOf(greeting.authPluginData);
    const requested = greeting.authPlugin ?? AuthPlugin.NATIVE_PASSWORD;
    // A plugin the gateway does not speak: answer with native_password, the server switches if needed.
    this.plugin = (SUPPORTED.has(requested) ? requested : AuthPlugin.NATIVE_PASSWORD) as Plugin;
    let first: Buffer;
    if (this.plugin === 'mysql_clear_password' && !this.cleartextAllowed()) {
      // Do not volunteer the password: an empty answer lets the server switch to something else.
      this.plugin = 'mysql_native_password';
      first = nativePasswordScramble(this.creds.password ?? '', this.scramble);
    } else {
      first = this.initial(this.plugin, false);
    }
    return client.handshakeResponse41({
      capabilities: this.caps,
      characterSet: options.characterSet ?? 45,
      maxPacketSize: options.maxPacketSize ?? 16 * 1024 * 1024,
      user: this.creds.user,
      authResponse: first,
      ...(this.creds.database ? { database: this.creds.database } : {}),
      authPlugin: this.plugin,
      ...(options.attributes ? { attributes: options.attributes } : {}),
    });
  }

  private get password(): string {
    return this.creds.password ?? '';
  }

  private cleartextAllowed(): boolean {
    return this.secure || this.creds.allowCleartextWithoutTls === true;
  }

  /** The first answer of a plugin (in the handshake response or after a switch). */
  private initial(plugin: Plugin, afterSwitch: boolean): Buffer {
    switch (plugin) {
      case 'mysql_native_password':
        return nativePasswordScramble(this.password, this.scramble);
      case 'caching_sha2_password':
        return cachingSha2Scramble(this.password, this.scramble);
      case 'sha256_password':
        if (this.password === '') return Buffer.from([0]);
        return this.fullAuthentication(Buffer.from([0x01]));
      case 'mysql_clear_password':
        if (!this.cleartextAllowed()) {
          throw authError('upstream authentication failed', `server ${afterSwitch ? 'switched' : 'asked'} to mysql_clear_password on a connection without TLS`);
        }
        return cleartextPassword(this.password);
    }
  }

  /** Full authentication for the SHA-256 plugins: cleartext over TLS, else RSA with a pinned or requested key. */
  private fullAuthentication(requestKey: Buffer): Buffer {
    if (this.secure) return cleartextPassword(this.password);
    if (this.creds.serverPublicKey) return rsaEncryptPassword(this.password, this.scramble, this.creds.serverPublicKey);
    if (!this.creds.allowPublicKeyRetrieval) {
      throw authError('upstream authentication failed', `${this.plugin} full authentication needs TLS, a pinned server public key, or allowPublicKeyRetrieval`);
    }
    this.awaitingKey = true;
    return requestKey;
  }

  /** The answer to one server packet of the authentication exchange (`undefined`: nothing to send). */
  respond(msg: AuthPhaseMessage): Buffer | undefined {
    if (!this.started) throw authError('upstream authentication failed', 'server packet before the handshake response');
    if (this.ok) throw authError('upstream authentication failed', `unexpected ${msg.name} after OK`);
    switch (msg.name) {
      case 'OkPacket':
        this.ok = true;
        return undefined;
      case 'ErrPacket':
        throw authError('upstream authentication failed', `server error ${msg.code}${msg.sqlState ? ` (${msg.sqlState})` : ''}: ${msg.message}`);
      case 'AuthSwitchRequest': {
        if (this.switched) throw authError('upstream authentication failed', 'server requested a second authentication switch');
        this.switched = true;
        this.awaitingKey = false;
        if (!SUPPORTED.has(msg.plugin)) throw authError('upstream authentication failed', `unsupported authentication plugin ${JSON.stringify(msg.plugin.slice(0, 64))}`);
        this.plugin = msg.plugin as Plugin;
        if (msg.plugin !== AuthPlugin.CLEAR_PASSWORD) {
          const s = scrambleOf(msg.data);
          if (s.length < 20) throw authError('upstream authentication failed', `${msg.plugin} switch with a ${s.length}-byte scramble`);
          this.scramble = s;
        }
        return client.authResponse(this.initial(this.plugin, true));
      }
      case 'AuthMoreData':
        return this.moreData(msg.data);
    }
  }

  private moreData(data: Buffer): Buffer | undefined {
    if (this.awaitingKey) {
      this.awaitingKey = false;
      return rsaEncryptPassword(this.password, this.scramble, data);
    }
    if (this.plugin === 'caching_sha2_password' && data.length === 1) {
      if (data[0] === 0x03) return undefined; // fast auth success: OK follows
      if (data[0] === 0x04) return this.fullAuthentication(Buffer.from([0x02]));
    }
    throw authError('upstream authentication failed', `unexpected AuthMoreData for ${this.plugin}`);
  }
}
