// Parts of the MySQL engine without sockets: row masking in the text and binary protocols (with a
// fuzz of random rows), the classifier's shape cache (differential against fresh classification),
// the parser's view of executes pipelined behind a prepare, and the wire errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { createMasker } from '../../src/core/masking/index.js';
import type { MaskSpec } from '../../src/core/policy/types.js';
import { GatehouseError, isGatehouseError } from '../../src/core/errors.js';
import { classifyMysql, clearMysqlClassifierCache, mysqlUseTarget } from '../../src/engines/mysql/classify.js';
import {
  Capability,
  ClientParser,
  ColumnFlag,
  ColumnType,
  client,
  decodeBinaryRow,
  decodeTextRow,
  encodeBinaryRow,
  encodePacket,
  encodeTextRow,
  type BinaryValue,
  type ColumnDefinition,
} from '../../src/engines/mysql/protocol.js';
import { columnRef, maskBinaryRow, maskTextRow, rowPlan, sampleBinaryRow, sampleTextRow } from '../../src/engines/mysql/result-masking.js';
import { denialPacket, errorPacket } from '../../src/engines/mysql/wire-error.js';

const spec = (over: Partial<MaskSpec>): MaskSpec => ({ columns: [], paths: [], detectors: [], strategy: 'redact', rule: { policy: 'test', index: 0, effect: 'mask' }, ...over });
const masker = createMasker([spec({ columns: ['shop.users.ssn', 'users.salary'], detectors: ['payment_card'] }), spec({ columns: ['users.note'], strategy: 'null' })], { hashKey: 'k'.repeat(32) });
const CARD = '4111 1111 1111 1111';

function col(name: string, type: number, over: Partial<ColumnDefinition> = {}): ColumnDefinition {
  return {
    name: 'ColumnDefinition',
    sequenceId: 0,
    raw: Buffer.alloc(0),
    payload: Buffer.alloc(0),
    catalog: 'def',
    schema: 'shop',
    table: 'u',
    orgTable: 'users',
    columnName: name,
    orgName: name,
    characterSet: 45,
    columnLength: 0,
    type,
    flags: 0,
    decimals: 0,
    defaultValue: undefined,
    ...over,
  };
}

const COLS = [col('id', ColumnType.LONG), col('ssn', ColumnType.VAR_STRING), col('card', ColumnType.VAR_STRING), col('note', ColumnType.BLOB), col('when', ColumnType.DATETIME)];

test('column origin: org_table and org_name, the alias for computed columns', () => {
  assert.deepStrictEqual(columnRef(col('x', ColumnType.VAR_STRING, { columnName: 'x', orgName: 'ssn' })), { schema: 'shop', table: 'users', column: 'ssn' });
  assert.deepStrictEqual(columnRef(col('x', ColumnType.VAR_STRING, { schema: '', table: '', orgTable: '', orgName: '' })), { column: 'x' });
});

test('text rows: column rules, detectors, NULL strategy; unchanged rows are not rewritten', () => {
  const plan = rowPlan(COLS, masker);
  assert.equal(plan.passthrough, false);
  const row = encodeTextRow(['1', '123-45-6789', CARD, 'private', '2024-01-02 03:04:05']);
  const out = maskTextRow(row, plan);
  assert.ok(out);
  assert.deepStrictEqual(decodeTextRow(out, 5), ['1', '[redacted]', '[card]', null, '2024-01-02 03:04:05']);
  const clean = encodeTextRow(['2', null, 'no card here', null, null]);
  assert.equal(maskTextRow(clean, plan), undefined);
  assert.deepStrictEqual(sampleTextRow(out, 5), ['1', '[redacted]', '[card]', null, '2024-01-02 03:04:05']);
  assert.deepStrictEqual(sampleTextRow(encodeTextRow(['x'.repeat(5000)]), 1), ['<5000 bytes>']);
});

test('binary rows: strings are rewritten; numbers and dates pass unchanged or fail closed', () => {
  const plan = rowPlan(COLS, masker);
  const when = { year: 2024, month: 1, day: 2, hour: 3, minute: 4, second: 5, microsecond: 0 };
  const values: BinaryValue[] = [1, Buffer.from('123-45-6789'), Buffer.from(CARD), Buffer.from('private'), when];
  const out = maskBinaryRow(encodeBinaryRow(COLS, values), plan);
  assert.ok(out);
  const back = decodeBinaryRow(out, COLS);
  assert.deepStrictEqual(back.map((v) => (Buffer.isBuffer(v) ? v.toString() : v)), [1, '[redacted]', '[card]', null, when]);
  assert.deepStrictEqual(sampleBinaryRow(out, COLS), ['1', '[redacted]', '[card]', null, '2024-01-02 03:04:05']);
  // A detector over an INT column: nothing found, the value passes.
  const detectOnly = rowPlan([col('n', ColumnType.LONG, { orgTable: 'other' })], masker);
  assert.equal(maskBinaryRow(encodeBinaryRow(detectOnly.columns, [42]), detectOnly), undefined);
  // A column rule over an INT column would change it: the binary form cannot carry "[redacted]".
  const salary = rowPlan([col('salary', ColumnType.LONG)], masker);
  assert.throws(() => maskBinaryRow(encodeBinaryRow(salary.columns, [5000]), salary), (e: unknown) => isGatehouseError(e, 'ERR_MASKING_FAILED'));
  // A card number hidden in a BIGINT is found by the detector: refused, not passed.
  const big = rowPlan([col('n', ColumnType.LONGLONG, { orgTable: 'other' })], masker);
  assert.throws(() => maskBinaryRow(encodeBinaryRow(big.columns, [4111111111111111n]), big), (e: unknown) => isGatehouseError(e, 'ERR_MASKING_FAILED'));
});

test('fuzz: random rows either mask to well-formed rows or fail closed with ERR_MASKING_FAILED / ERR_PROTOCOL', () => {
  const types = [ColumnType.TINY, ColumnType.LONG, ColumnType.LONGLONG, ColumnType.DOUBLE, ColumnType.VAR_STRING, ColumnType.BLOB, ColumnType.DATE, ColumnType.DATETIME, ColumnType.TIME, ColumnType.NEWDECIMAL, ColumnType.JSON];
  const names = ['ssn', 'salary', 'card', 'note', 'other'];
  const strings = [CARD, '4111111111111111', 'hello', '', 'AKIAIOSFODNN7EXAMPLE', 'x'.repeat(300), 'zoë 🦊'];
  for (let round = 0; round < 2000; round++) {
    const n = 1 + randomInt(6);
    const cols = Array.from({ length: n }, () => col(names[randomInt(names.length)]!, types[randomInt(types.length)]!, randomInt(2) ? { flags: ColumnFlag.UNSIGNED } : {}));
    const values: BinaryValue[] = cols.map((c) => {
      if (randomInt(5) === 0) return null;
      switch (c.type) {
        case ColumnType.TINY:
          return randomInt(128);
        case ColumnType.LONG:
          return randomInt(2 ** 31 - 1);
        case ColumnType.LONGLONG:
          return randomInt(2) ? 4111111111111111n : BigInt(randomInt(2 ** 47));
        case ColumnType.DOUBLE:
          return Math.random() * 1e6;
        case ColumnType.DATE:
          return { year: 2000 + randomInt(30), month: 1 + randomInt(12), day: 1 + randomInt(28), hour: 0, minute: 0, second: 0, microsecond: 0 };
        case ColumnType.DATETIME:
          return { year: 2000, month: 1, day: 1, hour: randomInt(24), minute: randomInt(60), second: randomInt(60), microsecond: randomInt(2) * randomInt(999999) };
        case ColumnType.TIME:
          return { negative: randomInt(2) === 1, days: randomInt(3), hours: randomInt(24), minutes: randomInt(60), seconds: randomInt(60), microseconds: 0 };
        default:
          return randomInt(4) === 0 ? randomBytes(randomInt(40)) : Buffer.from(strings[randomInt(strings.length)]!);
      }
    });
    const plan = rowPlan(cols, masker);
    for (const binary of [true, false]) {
      const payload = binary ? encodeBinaryRow(cols, values) : encodeTextRow(values.map((v) => (v === null ? null : Buffer.isBuffer(v) ? v : String(v))));
      // Mutations: a valid row most of the time, otherwise a damaged one.
      const input = randomInt(4) === 0 ? Buffer.concat([payload.subarray(0, randomInt(payload.length + 1)), randomBytes(randomInt(4))]) : payload;
      try {
        const out = binary ? maskBinaryRow(input, plan) : maskTextRow(input, plan);
        if (out !== undefined) {
          const decoded = binary ? decodeBinaryRow(out, cols) : decodeTextRow(out, n);
          assert.equal(decoded.length, n);
          for (const v of decoded) if (typeof v === 'string' || Buffer.isBuffer(v)) assert.ok(!String(v).includes(CARD) && !String(v).includes('4111111111111111'));
        }
      } catch (e) {
        assert.ok(e instanceof GatehouseError && (e.code === 'ERR_MASKING_FAILED' || e.code === 'ERR_PROTOCOL'), `round ${round}: ${String(e)}`);
      }
    }
  }
});

test('shape cache: statements that differ only in literals classify exactly as a fresh classification would', () => {
  const templates = [
    (_a: string, n: string) => `SELECT c FROM sbtest1 WHERE id = ${n}`,
    (a: string, n: string) => `select * from users where email = '${a}' and id > ${n} limit ${n}`,
    (a: string, n: string) => `INSERT INTO items VALUES (${n}, '${a}'), (${n}, 'x')`,
    (a: string, n: string) => `UPDATE items SET name = '${a}' WHERE id = ${n}; SELECT '${a}'`,
    (_a: string, n: string) => `/*!50000 DROP TABLE t${n} */`,
    (a: string, _n: string) => `SELECT * FROM '${a}'`,
    (_a: string, n: string) => `SELECT ${n} FROM ${n}`,
    (a: string, _n: string) => `PREPARE s FROM '${a}'`,
    (a: string, _n: string) => `EXECUTE IMMEDIATE '${a}'`,
    (a: string, _n: string) => `SET gatehouse.reason = '${a}'`,
    (a: string, _n: string) => `SELECT LOAD_FILE('${a}')`,
    (a: string, n: string) => `WITH c AS (SELECT '${a}') SELECT * FROM c, t WHERE t.x = ${n}`,
  ];
  const literals = ['DROP TABLE secrets', 'secrets', 'abc', 'SELECT * FROM public_t', 'mysql.user', "it''s"];
  for (const t of templates) {
    const texts = literals.map((a, k) => t(a, String(k + 1)));
    const fresh = texts.map((x) => {
      clearMysqlClassifierCache();
      return JSON.stringify(classifyMysql(x));
    });
    clearMysqlClassifierCache();
    for (const [k, x] of texts.entries()) assert.equal(JSON.stringify(classifyMysql(x)), fresh[k], x);
  }
  // The shape is reused (and cheap): a thousand point selects.
  clearMysqlClassifierCache();
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) assert.equal(classifyMysql(`SELECT c FROM sbtest1 WHERE id = ${i}`)[0]!.text, `SELECT c FROM sbtest1 WHERE id = ${i}`);
  assert.ok(performance.now() - t0 < 2000, `${performance.now() - t0} ms`);
  // Literals that the grammar reads as names never share a classification.
  assert.deepStrictEqual(classifyMysql("SELECT * FROM 'a'")[0]!.tables, [{ name: 'a', access: 'read' }]);
  assert.deepStrictEqual(classifyMysql("SELECT * FROM 'secrets'")[0]!.tables, [{ name: 'secrets', access: 'read' }]);
});

test('long literals reach the grammar shortened: a 20 MB INSERT classifies quickly', () => {
  const t0 = performance.now();
  const st = classifyMysql(`INSERT INTO blobs VALUES (1, '${'x'.repeat(20_000_000)}')`);
  assert.equal(st[0]!.type, 'insert');
  assert.deepStrictEqual(st[0]!.tables, [{ name: 'blobs', access: 'write' }]);
  assert.ok(performance.now() - t0 < 5000, `${performance.now() - t0} ms`);
});

test('USE targets', () => {
  assert.equal(mysqlUseTarget('USE shop'), 'shop');
  assert.equal(mysqlUseTarget('use `My``Db`'), 'my`db');
  assert.equal(mysqlUseTarget('USE /* x */ shop ;'), 'shop');
  assert.equal(mysqlUseTarget('USE shop, other'), undefined);
  assert.equal(mysqlUseTarget('USE /* x */ shop'), 'shop');
  assert.equal(mysqlUseTarget('SELECT 1'), undefined);
});

test('an execute pipelined behind a prepare is not decoded with the statement prepared before', () => {
  const caps = (Capability.PROTOCOL_41 | Capability.SECURE_CONNECTION | Capability.PLUGIN_AUTH) >>> 0;
  const p = new ClientParser({ phase: 'command', capabilities: caps });
  p.registerStatement(1, 1);
  const bytes = Buffer.concat([
    encodePacket(client.stmtPrepare('SELECT 1'), 0),
    encodePacket(client.stmtExecute({ statementId: 0xffffffff, params: [] }), 0),
  ]);
  const msgs = p.push(bytes);
  assert.deepStrictEqual(msgs.map((m) => m.name), ['ComStmtPrepare', 'ComStmtExecute']);
  const exec = msgs[1]!;
  assert.ok(exec.name === 'ComStmtExecute' && exec.params === null, 'not decoded against statement 1');
  p.registerStatement(2, 0);
  assert.equal(p.statement(0xffffffff)?.paramCount, 0);
});

test('wire errors: 1142 for refusals with the rule, login errors as a MySQL server says them', () => {
  assert.deepStrictEqual(denialPacket({ effect: 'deny', rule: { policy: 'p', index: 2, effect: 'deny' }, reason: 'no DDL' }), { code: 1142, sqlState: '42000', message: 'gatehouse: no DDL (refused by rule p#2; ERR_ACCESS_DENIED)' });
  assert.equal(errorPacket(new GatehouseError('ERR_TOKEN_EXPIRED', 'token expired'), 'login').code, 1045);
  assert.equal(errorPacket(new GatehouseError('ERR_ACCESS_DENIED', 'x'), 'login').code, 1044);
  assert.equal(errorPacket(new GatehouseError('ERR_ACCESS_DENIED', 'x')).code, 1142);
  assert.equal(errorPacket(new GatehouseError('ERR_UNKNOWN_CONNECTION', 'x'), 'login').code, 1049);
  assert.equal(errorPacket(new GatehouseError('ERR_TLS_REQUIRED', 'x'), 'login').code, 3159);
  assert.equal(errorPacket(new GatehouseError('ERR_PROTOCOL', 'x'), 'login').code, 1043);
});
