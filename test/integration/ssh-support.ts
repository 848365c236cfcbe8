/**
 * Helpers for the SSH engine tests: the real OpenSSH client (through sshpass or SSH_ASKPASS) and
 * ssh2's client against the gateway's SSH listener. Everything here is asynchronous: the gateway
 * runs in the test process, so a synchronous child process would block it.
 */
import { spawn } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { ClientChannel, ExecOptions } from 'ssh2';
export { until } from '../support/client.js';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

const SSH_OPTS = ['-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=20'];

/**
 * Runs `ssh -p <port> <connection>@127.0.0.1 <command>` with the token given to sshpass. ssh logs
 * at ERROR (no "Permanently added" warning on stderr) unless `logLevel` says otherwise.
 */
export function sshpass(port: number, token: string, command: string, o: { connection?: string; args?: string[]; stdin?: string; timeoutMs?: number; logLevel?: string } = {}): Promise<CliResult> {
  return runCli('sshpass', ['-p', token, 'ssh', ...SSH_OPTS, '-o', `LogLevel=${o.logLevel ?? 'ERROR'}`, '-p', String(port), ...(o.args ?? []), `${o.connection ?? 'build-host'}@127.0.0.1`, command], {}, o.stdin, o.timeoutMs);
}

/** The same with SSH_ASKPASS (how an agent without sshpass hands ssh its token). */
export async function sshAskpass(dir: string, port: number, token: string, command: string, connection = 'build-host'): Promise<CliResult> {
  const script = join(dir, 'askpass.sh');
  await writeFile(script, '#!/bin/sh\nprintf "%s\\n" "$GH_TEST_TOKEN"\n');
  await chmod(script, 0o700);
  return runCli('ssh', [...SSH_OPTS, '-o', 'LogLevel=ERROR', '-o', 'PreferredAuthentications=password', '-p', String(port), `${connection}@127.0.0.1`, command], {
    SSH_ASKPASS: script,
    SSH_ASKPASS_REQUIRE: 'force',
    GH_TEST_TOKEN: token,
    DISPLAY: ':0',
  });
}

export function runCli(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'], detached: env.SSH_ASKPASS !== undefined });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`${cmd} timed out; stdout=${stdout} stderr=${stderr}`));
    }, timeoutMs);
    c.on('error', reject);
    c.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
    if (stdin !== undefined) c.stdin.end(stdin);
    else c.stdin.end();
  });
}

export interface GwClientOptions {
  port: number;
  token: string;
  connection?: string;
  method?: 'password' | 'keyboard-interactive';
  /** An agent (object or ssh-agent socket path) for agent forwarding. */
  agent?: ssh2.BaseAgent | string;
  /** Receives the host key the gateway presented. */
  onHostKey?: (key: Buffer) => void;
}

/** ssh2's client logged in to the gateway. Rejects with the client's error (and banner/instructions seen). */
export function gwClient(o: GwClientOptions): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    const seen: string[] = [];
    c.once('ready', () => resolve(c));
    c.once('error', (e: Error) => reject(Object.assign(e, { seen })));
    c.on('keyboard-interactive', (name: string, instructions: string, _lang: string, prompts: { prompt: string }[], finish: (answers: string[]) => void) => {
      if (prompts.length === 0) seen.push(`${name}: ${instructions}`);
      finish(prompts.map(() => o.token));
    });
    c.connect({
      host: '127.0.0.1',
      port: o.port,
      username: o.connection ?? 'build-host',
      readyTimeout: 20_000,
      tryKeyboard: o.method === 'keyboard-interactive',
      hostVerifier: (key: Buffer) => {
        o.onHostKey?.(key);
        return true;
      },
      ...(o.agent ? { agent: o.agent } : {}),
      ...(o.method === 'keyboard-interactive' ? { authHandler: ['keyboard-interactive'] } : { password: o.token, authHandler: ['password'] }),
    });
  });
}

export interface ExecResult {
  code: number | null | undefined;
  signal: string | undefined;
  stdout: Buffer;
  stderr: string;
}

/** Runs a command over an ssh2 client connection and collects everything. `stdin: null` leaves stdin open. */
export function exec(c: ssh2.Client, command: string, opts: ExecOptions = {}, stdin?: Buffer | string | null, onStream?: (s: ClientChannel) => void): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    c.exec(command, opts, (err, stream) => {
      if (err) return reject(err);
      onStream?.(stream);
      const out: Buffer[] = [];
      let stderr = '';
      let code: number | null | undefined;
      let signal: string | undefined;
      stream.on('data', (d: Buffer) => out.push(d));
      stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      stream.on('exit', (c: number | null, s?: string) => {
        code = c;
        signal = s;
      });
      stream.on('close', () => resolve({ code, signal, stdout: Buffer.concat(out), stderr }));
      if (stdin !== undefined && stdin !== null) stream.end(stdin);
      else if (stdin === undefined && !opts.pty) stream.end();
    });
  });
}

