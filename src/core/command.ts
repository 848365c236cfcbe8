/**
 * What an engine extracted from the wire. The core never sees bytes: every protocol turns its traffic
 * into one of these, and policy, approvals, audit and recording work only on them.
 */

export type SqlStatementType =
  | 'select'
  | 'insert'
  | 'update'
  | 'delete'
  | 'merge'
  | 'ddl'
  | 'dcl'
  | 'tcl'
  | 'copy'
  | 'call'
  | 'do'
  | 'set'
  | 'show'
  | 'explain'
  | 'prepare'
  | 'execute'
  | 'deallocate'
  | 'listen'
  | 'notify'
  | 'lock'
  | 'vacuum'
  | 'utility'
  | 'use'
  | 'load'
  | 'empty'
  | 'unknown';

export interface SqlTableRef {
  /** Lower-cased, schema-qualified when the statement qualifies it (`public.users`), else bare (`users`). */
  name: string;
  access: 'read' | 'write';
}

export interface SqlStatement {
  type: SqlStatementType;
  /** Finer type, e.g. `create_table`, `drop_table`, `truncate`, `grant`, `begin`, `copy_from`. */
  subtype?: string;
  /** The statement's own text (for a multi-statement query, just this one). */
  text: string;
  tables: SqlTableRef[];
  /** Lower-cased function names called anywhere in the statement (`pg_read_file`, `load_file`). */
  functions: string[];
  /**
   * Column names the statement references, lower-cased; `*` for a star or a whole-row reference.
   * Engines use it to keep column masks on values of computed result columns (`lower(ssn)`).
   */
  columns?: string[];
  /** `COPY … PROGRAM`, `INTO OUTFILE`, `LOAD DATA LOCAL`: the statement reaches the server's OS. */
  program?: boolean;
  /** Why it is `unknown` (parse error text, unsupported node), for logs and explain. */
  unknownReason?: string;
}

export interface SqlCommand {
  kind: 'sql';
  dialect: 'postgres' | 'mysql';
  /** The whole text the client sent. */
  text: string;
  params?: unknown[];
  statements: SqlStatement[];
}

export interface K8sCommand {
  kind: 'k8s';
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** Request path, for logs and regex rules. */
  path?: string;
}

export interface SshCommand {
  kind: 'ssh';
  channel: 'exec' | 'shell' | 'sftp' | 'forward' | 'agent' | 'subsystem';
  command?: string;
}

export type Command = SqlCommand | K8sCommand | SshCommand;

/** The text a `regex` rule matches and the audit log shows (masked before it is stored). */
export function commandText(cmd: Command): string {
  switch (cmd.kind) {
    case 'sql':
      return cmd.text;
    case 'k8s':
      if (cmd.resource === '' && cmd.path !== undefined) return `${cmd.verb} ${cmd.path}`;
      return `${cmd.verb} ${cmd.group ? `${cmd.resource}.${cmd.group}` : cmd.resource}${cmd.subresource ? `/${cmd.subresource}` : ''}${cmd.namespace ? ` -n ${cmd.namespace}` : ''}${cmd.name ? ` ${cmd.name}` : ''}`;
    case 'ssh':
      return cmd.command ?? cmd.channel;
  }
}
