/**
 * The gateway's own SSH host key (RFC 4253 §6.6 public key format, RFC 8709 Ed25519). Read from
 * `ssh.host_key` (default `<data dir>/ssh_host_ed25519_key`); generated there on first start when
 * absent: Ed25519 from node:crypto, written in the OpenSSH private key format (PROTOCOL.key in the
 * OpenSSH sources: `openssh-key-v1`, unencrypted) with mode 0600, its `.pub` beside it.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { GatehouseError } from '../../core/errors.js';
import { keyFingerprint } from './known-hosts.js';

function sshString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** An Ed25519 key pair in OpenSSH's formats. */
export interface OpenSshKeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` text. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… comment` (the `.pub` line). */
  publicKey: string;
  /** The RFC 4253 public key blob. */
  blob: Buffer;
}

/** Encodes a node:crypto Ed25519 private key in the OpenSSH formats. */
export function encodeEd25519(privateKey: KeyObject, comment: string): OpenSshKeyPair {
  const jwk = privateKey.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string' || typeof jwk.x !== 'string') {
    throw new GatehouseError('ERR_CONFIG', 'expected an Ed25519 private key');
  }
  const seed = Buffer.from(jwk.d, 'base64url');
  const pub = Buffer.from(jwk.x, 'base64url');
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4).readUInt32BE(0);
  let priv = Buffer.concat([u32(check), u32(check), sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad: number[] = [];
  for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
  priv = Buffer.concat([priv, Buffer.from(pad)]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0', 'latin1'), sshString('none'), sshString('none'), sshString(''), u32(1), sshString(blob), sshString(priv)]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`,
    blob,
  };
}

/** A fresh Ed25519 key pair in the OpenSSH formats. */
export function generateEd25519(comment = 'gatehouse'): OpenSshKeyPair {
  return encodeEd25519(generateKeyPairSync('ed25519').privateKey, comment);
}

export interface HostKey {
  /** The private key text as ssh2 takes it. */
  key: Buffer;
  /** RFC 4253 public key blob. */
  blob: Buffer;
  type: string;
  /** `SHA256:…`. */
  fingerprint: string;
  /** True when this start generated it. */
  generated: boolean;
  path: string;
}

/** Parses a private key file's text with ssh2; throws ERR_CONFIG when ssh2 cannot use it. */
export function parsePrivateKey(text: Buffer, path: string, what: string): { blob: Buffer; type: string } {
  const parsed = ssh2.utils.parseKey(text);
  const k = Array.isArray(parsed) ? parsed[0] : parsed;
  if (k === undefined || k instanceof Error) {
    throw new GatehouseError('ERR_CONFIG', `${what} ${path} is not a private key ssh2 can read${k instanceof Error ? `: ${k.message}` : ''}`);
  }
  if (!k.isPrivateKey()) throw new GatehouseError('ERR_CONFIG', `${what} ${path} holds no private key`);
  return { blob: k.getPublicSSH(), type: k.type };
}

/** Reads the host key at `path`, or generates and writes one there (mode 0600) when the file is missing. */
export async function loadOrCreateHostKey(path: string): Promise<HostKey> {
  let text: Buffer;
  let generated = false;
  try {
    text = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new GatehouseError('ERR_CONFIG', `cannot read the SSH host key ${path}`, { detail: (e as Error).message, cause: e });
    }
    const pair = generateEd25519('gatehouse-host-key');
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    try {
      await writeFile(path, pair.privateKey, { mode: 0o600, flag: 'wx' });
      await chmod(path, 0o600);
      await writeFile(`${path}.pub`, `${pair.publicKey}\n`, { mode: 0o644 }).catch(() => undefined);
      generated = true;
    } catch (w) {
      // Another instance wrote it first: use theirs.
      if ((w as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new GatehouseError('ERR_CONFIG', `cannot write the SSH host key ${path}`, { detail: (w as Error).message, cause: w });
      }
    }
    text = await readFile(path);
  }
  const { blob, type } = parsePrivateKey(text, path, 'the SSH host key');
  return { key: text, blob, type, fingerprint: keyFingerprint(blob), generated, path };
}

/** True when group or others may read the file (a host key should be 0600). */
export async function tooOpen(path: string): Promise<boolean> {
  try {
    return ((await stat(path)).mode & 0o077) !== 0;
  } catch {
    return false;
  }
}
