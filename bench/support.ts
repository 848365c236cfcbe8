/**
 * Helpers the database benchmarks share: command-line numbers, free ports, waiting for a listener,
 * a bare Node TCP relay (the floor of any Node proxy on the machine) and the median of runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';

export const args = process.argv.slice(2);

/** The number after `--<name>` on the command line, else `dflt`. */
export function arg(name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(args[i + 1]);
}

/** A TCP port nobody listens on right now (on 127.0.0.1). */
export function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Waits until something accepts connections on 127.0.0.1:`port`; throws `<what> did not start` after `timeoutMs`. */
export async function waitPort(port: number, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`${what} did not start`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Starts a TCP relay in Node with no logic at all (no parsing, no policy) in front of
 * 127.0.0.1:`targetPort`: what one more hop through a Node process costs on this machine.
 */
export async function startRelay(targetPort: number): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const net = require('node:net'); net.createServer({ noDelay: true }, (c) => { const u = net.connect({ host: '127.0.0.1', port: ${targetPort}, noDelay: true }); c.pipe(u); u.pipe(c); c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); }).listen(${port}, '127.0.0.1');`,
    ],
    { stdio: 'ignore' },
  );
  return { child, port };
}

/** The median (the mean of the two middle values for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
