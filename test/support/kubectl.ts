/**
 * The real kubectl for the Kubernetes tests: run as a child process (asynchronously: the gateway and
 * the stand-in API server run in the test process) and a kubeconfig for an agent's token.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import YAML from 'yaml';

export const KUBECTL = '/usr/bin/kubectl';

export interface KubectlRun {
  code: number | null;
  stdout: string;
  /** stdout as bytes */
  raw: Buffer;
  stderr: string;
  ms: number;
}

export interface KubectlOptions {
  kubeconfig: string;
  /** HOME for kubectl (its cache goes there). */
  home: string;
  input?: string;
  /** Kill kubectl after this many ms (streaming commands); default 20 s. */
  killAfterMs?: number;
  /** Kill kubectl as soon as stdout satisfies this. */
  until?: (stdout: string) => boolean;
  onStart?: () => void;
  /** Extra environment (e.g. `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`). */
  env?: Record<string, string>;
}

export function kubectl(args: string[], o: KubectlOptions): Promise<KubectlRun> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(KUBECTL, args, { env: { KUBECONFIG: o.kubeconfig, HOME: o.home, PATH: process.env.PATH ?? '/usr/bin:/bin', ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const raw: Buffer[] = [];
    const hard = setTimeout(() => child.kill('SIGKILL'), o.killAfterMs ?? 20_000);
    child.stdout.on('data', (d: Buffer) => {
      raw.push(d);
      stdout += d.toString();
      if (o.until?.(stdout)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(hard);
      resolve({ code, stdout, raw: Buffer.concat(raw), stderr, ms: Date.now() - t0 });
    });
    child.stdin.end(o.input ?? '');
    o.onStart?.();
  });
}

/** Writes a kubeconfig for an agent: the cluster at `server` (CA `caPem`), the token, the namespace. */
export async function writeAgentKubeconfig(file: string, o: { server: string; caPem: string; token: string; namespace?: string }): Promise<string> {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'gatehouse', cluster: { server: o.server, 'certificate-authority-data': Buffer.from(o.caPem).toString('base64') } }],
    users: [{ name: 'agent', user: { token: o.token } }],
    contexts: [{ name: 'gatehouse', context: { cluster: 'gatehouse', user: 'agent', namespace: o.namespace ?? 'x' } }],
    'current-context': 'gatehouse',
  };
  await writeFile(file, YAML.stringify(doc), { mode: 0o600 });
  return file;
}
