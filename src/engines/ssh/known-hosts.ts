/**
 * known_hosts: the target's host key, pinned in the connection's configuration. Gatehouse never
 * trusts a target's key on first use: a connection without a matching entry is refused.
 *
 * Format (OpenSSH sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): `[@marker] hostpatterns keytype base64key
 * [comment]`. Host patterns are comma-separated, `*` and `?` wildcards, `!` negation; a non-default
 * port is written `[host]:port`; hashed names are `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
 * Markers: `@revoked` (this key is refused for every host it names) and `@cert-authority` (host
 * certificates: not supported here, such lines are skipped). Key blobs are RFC 4253 §6.6 public keys.
 */
import { createHmac, createHash, timingSafeEqual } from 'node:crypto';

export interface KnownHostEntry {
  marker?: 'revoked' | 'cert-authority';
  /** Comma-separated patterns, or undefined for a hashed entry. */
  patterns?: string[];
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  key: Buffer;
  /** 1-based line number. */
  line: number;
}

export interface KnownHostsParse {
  entries: KnownHostEntry[];
  /** Lines that could not be read: `line N: why`. */
  errors: string[];
}

/** Parses known_hosts text. Malformed lines are reported in `errors` and skipped. */
export function parseKnownHosts(text: string): KnownHostsParse {
  const entries: KnownHostEntry[] = [];
  const errors: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else {
        errors.push(`line ${lineNo}: unknown marker ${m}`);
        return;
      }
    }
    const [hosts, keyType, b64] = fields;
    if (hosts === undefined || keyType === undefined || b64 === undefined) {
      errors.push(`line ${lineNo}: expected "hosts keytype key"`);
      return;
    }
    const key = Buffer.from(b64, 'base64');
    if (key.length < 8 || key.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')) {
      errors.push(`line ${lineNo}: the key is not valid base64`);
      return;
    }
    // The blob starts with its own type name; it must agree with the keytype field.
    const nameLen = key.readUInt32BE(0);
    if (4 + nameLen > key.length || key.subarray(4, 4 + nameLen).toString('latin1') !== keyType) {
      errors.push(`line ${lineNo}: the key blob is not a ${keyType} key`);
      return;
    }
    const entry: KnownHostEntry = { keyType, key, line: lineNo, ...(marker ? { marker } : {}) };
    if (hosts.startsWith('|1|')) {
      const [, , salt, hash] = hosts.split('|');
      if (salt === undefined || hash === undefined) {
        errors.push(`line ${lineNo}: malformed hashed host name`);
        return;
      }
      entry.hashed = { salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
    } else {
      entry.patterns = hosts.split(',').filter((p) => p !== '');
    }
    entries.push(entry);
  });
  return { entries, errors };
}

/** The name a host is looked up by: `host` on port 22, else `[host]:port`. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, s: string): boolean {
  let re = '';
  for (const ch of pattern) re += ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${re}$`, 'i').test(s);
}

/** True when the entry names `host:port` (negated patterns win, as in OpenSSH). */
export function entryMatches(e: KnownHostEntry, host: string, port: number): boolean {
  const name = hostKeyName(host, port);
  if (e.hashed) {
    const mac = createHmac('sha1', e.hashed.salt).update(name).digest();
    return mac.length === e.hashed.hash.length && timingSafeEqual(mac, e.hashed.hash);
  }
  let matched = false;
  for (const p of e.patterns ?? []) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) matched = true;
  }
  return matched;
}

/** `SHA256:<base64>` of a public key blob, as `ssh-keygen -l` prints it. */
export function keyFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
export function blobKeyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return 4 + n <= blob.length ? blob.subarray(4, 4 + n).toString('latin1') : 'unknown';
}

export type HostKeyVerdict =
  | { ok: true; entry: KnownHostEntry }
  | { ok: false; why: 'revoked' | 'mismatch' | 'unknown-host'; presented: string; pinned: string[] };

/** Checks the key a target presented against the pinned entries for `host:port`. */
export function verifyHostKey(entries: readonly KnownHostEntry[], host: string, port: number, presented: Buffer): HostKeyVerdict {
  const mine = entries.filter((e) => entryMatches(e, host, port));
  const fp = `${blobKeyType(presented)} ${keyFingerprint(presented)}`;
  const pinned = mine.filter((e) => e.marker === undefined).map((e) => `${e.keyType} ${keyFingerprint(e.key)}`);
  if (mine.some((e) => e.marker === 'revoked' && e.key.equals(presented))) return { ok: false, why: 'revoked', presented: fp, pinned };
  const hit = mine.find((e) => e.marker === undefined && e.key.equals(presented));
  if (hit) return { ok: true, entry: hit };
  return { ok: false, why: pinned.length === 0 ? 'unknown-host' : 'mismatch', presented: fp, pinned };
}

/**
 * Host key algorithms to offer the target, most preferred first: only those of the pinned keys, so
 * the target proves possession of a key we can check (as OpenSSH orders by known_hosts).
 */
export function hostKeyAlgorithms(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.marker !== undefined || !entryMatches(e, host, port)) continue;
    const algos = e.keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [e.keyType];
    for (const a of algos) if (!out.includes(a)) out.push(a);
  }
  return out;
}
