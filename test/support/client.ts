/**
 * Helpers the engine integration tests share: running a real client (psql, mysql) as a child process,
 * waiting for a condition, and taking the error a promise rejects with.
 */
import { spawn } from 'node:child_process';

export interface ClientRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd` with `input` on its stdin and collects its output (UTF-8). Killed after `timeoutMs`;
 * `env` replaces the environment when given.
 */
export function runClient(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...(opts.env ? { env: opts.env } : {}), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** The error a promise rejects with (fails if it resolves). */
export async function rejection<T = Error & { code?: string; detail?: string; hint?: string; errno?: number; sqlState?: string; sqlMessage?: string }>(p: Promise<unknown>): Promise<T> {
  try {
    await p;
  } catch (e) {
    return e as T;
  }
  throw new Error('expected a rejection');
}

/** Polls `f` every 50 ms until it returns something other than undefined or false; fails after `ms`. */
export async function until<T>(f: () => Promise<T | undefined | false> | T | undefined | false, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
