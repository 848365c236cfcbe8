/**
 * A real OpenSSH sshd for integration tests: started as root on a free port on 127.0.0.1 with a
 * fresh Ed25519 host key, accepting only public key logins of the unprivileged user
 * {@link SSHD_USER} (created on first use) with a fresh client key. sftp is `internal-sftp`.
 * Needs Debian's openssh-server (`/usr/sbin/sshd`); `.ci/run` installs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';

export const SSHD = '/usr/sbin/sshd';
/** The target account: unprivileged, so a policy failure in a test cannot harm the machine. */
export const SSHD_USER = 'gh-ssh-test';

export interface TestSshd {
  port: number;
  user: string;
  dir: string;
  /** The sshd's host public key line (`ssh-ed25519 AAAA…`). */
  hostPublicKey: string;
  /** known_hosts file pinning this sshd's key for `[127.0.0.1]:port`. */
  knownHostsFile: string;
  /** A known_hosts file with another key for the same host (a "wrong" host key). */
  wrongKnownHostsFile: string;
  /** The private key the gateway logs in with. */
  clientKeyFile: string;
  /** Everything sshd logged (`-e`). */
  log(): string;
  close(): Promise<void>;
}

/** True when this machine can run the sshd tests (sshd installed, running as root). */
export function sshdAvailable(): boolean {
  return existsSync(SSHD) && typeof process.getuid === 'function' && process.getuid() === 0;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

/** Creates the unprivileged test user once (no password; not locked, so sshd lets keys in). */
export function ensureTestUser(): void {
  if (spawnSync('id', [SSHD_USER]).status === 0) return;
  run('useradd', ['-m', '-s', '/bin/sh', SSHD_USER]);
  // A locked account ('!' in /etc/shadow) is refused by sshd without PAM; '*' is "no password".
  run('usermod', ['-p', '*', SSHD_USER]);
}

function waitForPort(port: number, child: ChildProcess, logs: () => string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null) return reject(new Error(`sshd exited (${child.exitCode}): ${logs()}`));
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > end) reject(new Error(`sshd did not listen on ${port}: ${logs()}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startSshd(opts: { extraConfig?: string[] } = {}): Promise<TestSshd> {
  ensureTestUser();
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(tmpdir(), 'gh-sshd-'));
  // sshd reads authorized_keys as the target user.
  await chmod(dir, 0o755);
  const keygen = (file: string): void => run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'gatehouse-test', '-f', file]);
  keygen(join(dir, 'host_ed25519'));
  keygen(join(dir, 'other_host_ed25519'));
  keygen(join(dir, 'client_ed25519'));
  await chmod(join(dir, 'client_ed25519'), 0o600);
  const clientPub = await readFile(join(dir, 'client_ed25519.pub'), 'utf8');
  await writeFile(join(dir, 'authorized_keys'), clientPub, { mode: 0o644 });
  const hostPub = (await readFile(join(dir, 'host_ed25519.pub'), 'utf8')).trim();
  const otherPub = (await readFile(join(dir, 'other_host_ed25519.pub'), 'utf8')).trim();
  const port = await freePort();
  const [type, key] = hostPub.split(' ');
  const [otype, okey] = otherPub.split(' ');
  await writeFile(join(dir, 'known_hosts'), `# the test sshd\n[127.0.0.1]:${port} ${type} ${key}\n`);
  await writeFile(join(dir, 'wrong_known_hosts'), `[127.0.0.1]:${port} ${otype} ${okey}\n`);
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `AllowUsers ${SSHD_USER}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'AcceptEnv LANG LC_* GH_*',
    'AllowTcpForwarding yes',
    'AllowAgentForwarding yes',
    'X11Forwarding no',
    'PrintMotd no',
    'PrintLastLog no',
    'MaxStartups 100',
    'MaxSessions 50',
    'LogLevel VERBOSE',
    'Subsystem sftp internal-sftp -l INFO',
    ...(opts.extraConfig ?? []),
  ].join('\n');
  await writeFile(join(dir, 'sshd_config'), `${config}\n`);
  let logs = '';
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  try {
    await waitForPort(port, child, () => logs);
  } catch (e) {
    if (child.pid !== undefined && child.exitCode === null) child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    port,
    user: SSHD_USER,
    dir,
    hostPublicKey: hostPub,
    knownHostsFile: join(dir, 'known_hosts'),
    wrongKnownHostsFile: join(dir, 'wrong_known_hosts'),
    clientKeyFile: join(dir, 'client_ed25519'),
    log: () => logs,
    async close() {
      if (child.exitCode === null) {
        const gone = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
