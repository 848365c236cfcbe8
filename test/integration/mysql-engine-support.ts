/**
 * Helpers for the MySQL engine tests (mysql-engine*.test.ts): a database and a gateway user of their
 * own on the machine's real MariaDB (127.0.0.1:3306, root without a password), a gateway with a
 * `prod-mysql` connection to it, the real `mysql` (MariaDB) client as a child process, the mysql2
 * driver, and a raw wire client built from the codec for what no driver sends.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import mysql2 from 'mysql2/promise';
import {
  Capability,
  PacketParser,
  ResponseReader,
  Sequence,
  client,
  decodeTextRow,
  parseAuthPhasePacket,
  parseGreeting,
  responseKind,
  type ClientCommand,
  type HandshakeV10,
  type Packet,
  type ResponseKind,
  type ResponseMessage,
} from '../../src/engines/mysql/index.js';
import { runClient, type ClientRun } from '../support/client.js';
import { startTestGateway, type TestGateway, type TestGatewayOptions } from '../support/gateway.js';

export { rejection, until } from '../support/client.js';

export const MYSQL_HOST = process.env.MYSQL_HOST_TEST ?? '127.0.0.1';
export const MYSQL_PORT = Number(process.env.MYSQL_PORT_TEST ?? 3306);

/** A query as root, on a connection of its own. */
export async function rootQuery(sql: string, values?: unknown[]): Promise<unknown> {
  const c = await mysql2.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: 'root', multipleStatements: true });
  try {
    const [rows] = await c.query(sql, values);
    return rows;
  } finally {
    await c.end();
  }
}

export interface TestMysql {
  database: string;
  user: string;
  password: string;
  /** `mysql://…` target URL for the gateway's connection. */
  url: string;
  query(sql: string, values?: unknown[]): Promise<unknown>;
  drop(): Promise<void>;
}

/** A fresh database and a user (mysql_native_password) that owns it. */
export async function createTestMysql(prefix: string, setupSql = ''): Promise<TestMysql> {
  const suffix = randomBytes(4).toString('hex');
  const database = `gh_${prefix}_${suffix}`;
  const user = `gh_gw_${suffix}`;
  const password = randomBytes(12).toString('hex');
  const hosts = ['%', 'localhost', '127.0.0.1'];
  await rootQuery(
    [
      `CREATE DATABASE \`${database}\``,
      ...hosts.map((h) => `CREATE USER '${user}'@'${h}' IDENTIFIED VIA mysql_native_password USING PASSWORD('${password}')`),
      ...hosts.map((h) => `GRANT ALL ON \`${database}\`.* TO '${user}'@'${h}'`),
      ...hosts.map((h) => `GRANT PROCESS ON *.* TO '${user}'@'${h}'`),
    ].join(';'),
  );
  if (setupSql) await rootQuery(`USE \`${database}\`; ${setupSql}`);
  return {
    database,
    user,
    password,
    url: `mysql://${user}:${password}@${MYSQL_HOST}:${MYSQL_PORT}/${database}`,
    query: (sql, values) => rootQuery(`USE \`${database}\`; ${sql}`, values),
    async drop() {
      await rootQuery([`DROP DATABASE IF EXISTS \`${database}\``, ...hosts.map((h) => `DROP USER IF EXISTS '${user}'@'${h}'`)].join(';'));
    },
  };
}

export interface MysqlGateway {
  gw: TestGateway;
  db: TestMysql;
  port: number;
  token: TestGateway['token'];
  close(): Promise<void>;
}

/** A gateway with a mysql listener and a `prod-mysql` connection to a fresh test database. */
export async function startMysqlGateway(o: Omit<TestGatewayOptions, 'listen' | 'noDatabase'> & { setupMysql?: string; connectionExtra?: string; listenAddress?: string }): Promise<MysqlGateway> {
  const db = await createTestMysql('mysql', o.setupMysql ?? '');
  let gw: TestGateway;
  try {
    gw = await startTestGateway({
      ...o,
      noDatabase: true,
      listen: { mysql: o.listenAddress ?? '127.0.0.1:0' },
      connections: [`  - { name: prod-mysql, type: mysql, target: "${db.url}"${o.connectionExtra ? `, ${o.connectionExtra}` : ''} }`, ...(o.connections ? [o.connections] : [])].join('\n'),
    });
  } catch (e) {
    await db.drop();
    throw e;
  }
  return {
    gw,
    db,
    port: gw.gateway.address('mysql')!.port,
    token: (opts) => gw.token(opts),
    async close() {
      await gw.close();
      await db.drop();
    },
  };
}

/** Runs the real `mysql` client (MariaDB's) through the gateway: `--batch`, the token as the password. */
export function mysqlCli(port: number, token: string, args: string[], opts: { input?: string; timeoutMs?: number; host?: string; database?: string } = {}): Promise<ClientRun> {
  const argv = ['--no-defaults', '-h', opts.host ?? '127.0.0.1', '-P', String(port), '-u', 'agent', `--password=${token}`, '--batch', '--connect-timeout=10', ...args, opts.database ?? 'prod-mysql'];
  return runClient('mysql', argv, { input: opts.input, timeoutMs: opts.timeoutMs });
}

/** A mysql2 connection through the gateway (mysql_clear_password on request of the gateway). */
export async function mysql2Connect(port: number, token: string, options: Partial<mysql2.ConnectionOptions> = {}): Promise<mysql2.Connection> {
  const c = await mysql2.createConnection({ host: '127.0.0.1', port, user: 'agent', password: token, database: 'prod-mysql', enableCleartextPlugin: true, ...options } as mysql2.ConnectionOptions);
  c.on('error', () => undefined);
  return c;
}

const WIRE_CAPS =
  (Capability.LONG_PASSWORD |
    Capability.LONG_FLAG |
    Capability.CONNECT_WITH_DB |
    Capability.PROTOCOL_41 |
    Capability.TRANSACTIONS |
    Capability.SECURE_CONNECTION |
    Capability.MULTI_STATEMENTS |
    Capability.MULTI_RESULTS |
    Capability.PS_MULTI_RESULTS |
    Capability.PLUGIN_AUTH |
    Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA |
    Capability.DEPRECATE_EOF) >>>
  0;

/**
 * A client made of the codec alone, for what no driver sends (COM_FIELD_LIST, COM_CHANGE_USER,
 * COM_SHUTDOWN, pipelined prepare + execute, garbage after login).
 */
export class WireClient {
  readonly parser = new PacketParser({ maxPayloadBytes: 64 * 1024 * 1024 });
  readonly seq = new Sequence();
  readonly socket: Socket;
  capabilities = 0;
  greeting!: HandshakeV10;
  closed = false;
  private queue: Packet[] = [];
  private waiting: ((p: Packet | Error) => void) | undefined;
  private failure: Error | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const p of this.parser.push(chunk)) this.deliver(p);
      } catch (e) {
        this.fail(e as Error);
      }
    });
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => {
      this.closed = true;
      this.fail(new Error('connection closed'));
    });
  }

  static async connect(port: number): Promise<WireClient> {
    const s = await new Promise<Socket>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => resolve(sock));
      sock.once('error', reject);
    });
    return new WireClient(s);
  }

  /** Connects and logs in with the token as a cleartext password; throws `ERR <code>: <message>` on refusal. */
  static async login(port: number, token: string, database = 'prod-mysql', caps = WIRE_CAPS, asked = false): Promise<WireClient> {
    const c = await WireClient.connect(port);
    const g = parseGreeting(await c.next());
    if (g.name !== 'HandshakeV10') throw new Error(`refused: ${g.message}`);
    c.greeting = g;
    // `asked`: send the capabilities as given, even those the server did not offer.
    c.capabilities = asked ? caps : (caps & g.capabilities) >>> 0;
    c.send(client.handshakeResponse41({ capabilities: c.capabilities, user: 'agent', authResponse: Buffer.alloc(20, 1), database, authPlugin: 'mysql_native_password' }));
    for (;;) {
      const m = parseAuthPhasePacket(await c.next(), c.capabilities);
      if (m.name === 'OkPacket') return c;
      if (m.name === 'ErrPacket') throw new Error(`ERR ${m.code}: ${m.message}`);
      if (m.name === 'AuthSwitchRequest' && m.plugin === 'mysql_clear_password') c.send(Buffer.from(`${token}\0`));
      else throw new Error(`unexpected ${m.name}`);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.waiting;
    this.waiting = undefined;
    w?.(e);
  }

  private deliver(p: Packet): void {
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w(p);
    } else this.queue.push(p);
  }

  /** The next packet (sequence id checked). */
  async next(timeoutMs = 20_000): Promise<Packet> {
    const p =
      this.queue.shift() ??
      (await new Promise<Packet>((resolve, reject) => {
        if (this.failure) {
          reject(this.failure);
          return;
        }
        const t = setTimeout(() => reject(new Error('timeout waiting for a packet')), timeoutMs);
        this.waiting = (x) => {
          clearTimeout(t);
          if (x instanceof Error) reject(x);
          else resolve(x);
        };
      }));
    this.seq.receive(p);
    return p;
  }

  send(payload: Buffer): void {
    this.socket.write(this.seq.frame(payload));
  }

  /** Sends a command without reading its answer. */
  sendCommand(payload: Buffer): void {
    this.seq.reset();
    this.send(payload);
  }

  /** Reads one command's whole answer. */
  async answer(kind: ResponseKind, columns?: ResponseReader['columns']): Promise<ResponseMessage[]> {
    const rr = new ResponseReader(kind, { capabilities: this.capabilities, ...(columns ? { columns } : {}) });
    const out: ResponseMessage[] = [];
    while (!rr.done) out.push(rr.read(await this.next()));
    return out;
  }

  /** Sends a command and reads its whole answer. */
  async command(payload: Buffer, kind?: ResponseKind): Promise<ResponseMessage[]> {
    this.sendCommand(payload);
    return this.answer(kind ?? responseKind({ name: commandNameOf(payload[0]!) } as ClientCommand) ?? 'simple');
  }

  /** A text query's rows, or its error. */
  async query(sql: string): Promise<{ rows: (string | null)[][]; error?: { code: number; message: string } }> {
    const msgs = await this.command(client.query(sql), 'query');
    const rows: (string | null)[][] = [];
    let n = 0;
    for (const m of msgs) {
      if (m.name === 'ColumnCount') n = m.count;
      if (m.name === 'TextRow') rows.push(decodeTextRow(m.payload, n));
      if (m.name === 'ErrPacket') return { rows, error: { code: m.code, message: m.message } };
    }
    return { rows };
  }

  close(): void {
    if (!this.closed) {
      this.sendCommand(client.quit());
      this.socket.end();
    }
  }
}

function commandNameOf(byte: number): ClientCommand['name'] {
  switch (byte) {
    case 0x03:
      return 'ComQuery';
    case 0x16:
      return 'ComStmtPrepare';
    case 0x17:
      return 'ComStmtExecute';
    case 0x04:
      return 'ComFieldList';
    case 0x09:
      return 'ComStatistics';
    case 0x1c:
      return 'ComStmtFetch';
    default:
      return 'ComPing';
  }
}
