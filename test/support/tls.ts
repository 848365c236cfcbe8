import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCert {
  cert: string;
  key: string;
  /** Files holding `cert` and `key` (removed by `cleanup`). */
  certFile: string;
  keyFile: string;
  cleanup(): Promise<void>;
}

/** A self-signed certificate for `localhost` / 127.0.0.1, made with the openssl CLI. */
export async function makeTestCert(cn = 'localhost'): Promise<TestCert> {
  const dir = await mkdtemp(join(tmpdir(), 'gh-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile]);
  return {
    cert: await readFile(certFile, 'utf8'),
    key: await readFile(keyFile, 'utf8'),
    certFile,
    keyFile,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
