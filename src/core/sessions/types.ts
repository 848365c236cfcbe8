import type { Command } from '../command.js';
import type { Identity } from '../identity/types.js';
import type { CommandDecision } from '../policy/types.js';
import type { Masker } from '../masking/types.js';

/** A named target as the engines see it (the config's `connections` entry, resolved). */
export interface Connection {
  name: string;
  type: 'postgres' | 'mysql' | 'kubernetes' | 'ssh';
  /** Target URL with the credentials Gatehouse holds (`postgres://svc:…@host:5432/app`). Never logged. */
  target: string;
  /** Type-specific options from config (TLS to target, known_hosts, impersonation, …). */
  options: Readonly<Record<string, unknown>>;
}

export type SessionEvent =
  | {
      type: 'statement';
      command: Command;
      decision: CommandDecision;
      reviewId?: string;
      /** The protocol's status of the answer, when the engine knows it (Kubernetes: the HTTP status code). */
      status?: number;
    }
  | { type: 'result'; rows?: number; affected?: number; tag?: string; durationMs: number; sample?: unknown[][] }
  | { type: 'error'; code: string; message: string }
  | { type: 'params'; params: unknown[] }
  | { type: 'output' | 'input'; data: string }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'note'; message: string };

/** What an engine holds for one agent session. Built by the core's session manager. */
export interface SessionContext {
  readonly id: string;
  readonly identity: Identity;
  readonly connection: Connection;
  readonly protocol: 'postgres' | 'mysql' | 'kubernetes' | 'ssh' | 'mcp' | 'http';
  /**
   * The agent's justification for commands that need review (SQL `SET gatehouse.reason = '…'`,
   * Kubernetes header `X-Gatehouse-Reason`, SSH `GATEHOUSE_REASON`). Engines set it; reviews show it.
   */
  justification: string | undefined;
  /** Policy + grants + revocations for one command. Never throws for a denial: returns `deny`. */
  authorize(cmd: Command): Promise<CommandDecision>;
  /** The same decision, synchronously (policy is in memory): engines use it on the hot path. */
  decide(cmd: Command): CommandDecision;
  /**
   * Holds a `review` decision until approved, denied or timed out. `notify` sends the agent a
   * protocol-native "waiting for approval" message. Resolves to `allow` or `deny`.
   */
  awaitReview(cmd: Command, d: CommandDecision, notify: (msg: string) => void, signal: AbortSignal): Promise<CommandDecision>;
  /** Masking for what this session receives (from the session's policy mask rules). */
  readonly masker: Masker;
  /** Recording + audit. Never blocks: buffered and flushed in the background. */
  record(event: SessionEvent): void;
  /** Aborts on token expiry, grant end, revocation or kill; `reason` says which. */
  readonly ended: AbortSignal;
  /** Ends the session (client quit, error): writes the session end. */
  close(reason: string): Promise<void>;
}
