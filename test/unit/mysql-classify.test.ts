import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyMysql, clearMysqlClassifierCache, configureMysqlClassifier } from '../../src/engines/mysql/classify.js';
import type { SqlStatement } from '../../src/core/command.js';

type Expect = Partial<Omit<SqlStatement, 'tables' | 'unknownReason'>> & { tables?: [string, 'read' | 'write'][]; reason?: RegExp };

/** Compares the fields given in `e` (tables as [name, access] pairs and functions, both in any order). */
function expectStatement(s: SqlStatement | undefined, e: Expect, label: string): void {
  assert.ok(s, `${label}: statement missing`);
  if (e.type !== undefined) assert.equal(s.type, e.type, `${label}: type (${s.unknownReason ?? ''})`);
  if ('subtype' in e) assert.equal(s.subtype, e.subtype, `${label}: subtype`);
  if (e.text !== undefined) assert.equal(s.text, e.text, `${label}: text`);
  if (e.tables !== undefined) assert.deepStrictEqual(s.tables.map((t) => [t.name, t.access]).sort(), [...e.tables].sort(), `${label}: tables`);
  if (e.functions !== undefined) assert.deepStrictEqual([...s.functions].sort(), [...e.functions].sort(), `${label}: functions`);
  if ('program' in e) assert.equal(s.program, e.program, `${label}: program`);
  if (e.reason) assert.match(s.unknownReason ?? '', e.reason, `${label}: unknownReason`);
  if (s.type === 'unknown') assert.ok(s.unknownReason, `${label}: an unknown statement says why`);
}

const U = (reason?: RegExp): Expect => ({ type: 'unknown', tables: [], ...(reason ? { reason } : {}) });

const cases: [string, Expect | Expect[]][] = [
  // Plain statements and case.
  ['sElEcT * FrOm Users', { type: 'select', tables: [['users', 'read']] }],
  ['SELECT 1', { type: 'select', tables: [], functions: [] }],
  [
    'select u.id, o.total from shop.users u join orders o on o.uid = u.id left join (select max(x) m from audit.events) e on true where u.id in (select uid from bans)',
    { type: 'select', tables: [['shop.users', 'read'], ['orders', 'read'], ['audit.events', 'read'], ['bans', 'read']], functions: ['max'] },
  ],
  ['SELECT * FROM `My Db`.`Secret``s`', { type: 'select', tables: [['my db.secret`s', 'read']] }],
  ['SELECT * FROM "secrets"', { type: 'select', tables: [['secrets', 'read']] }],
  ['SELECT a FROM t1 UNION ALL SELECT b FROM t2', { type: 'select', tables: [['t1', 'read'], ['t2', 'read']] }],
  ['SELECT EXISTS(SELECT 1 FROM t)', { type: 'select', tables: [['t', 'read']] }],
  ['SELECT * FROM t FOR UPDATE', { type: 'select', tables: [['t', 'read']] }],
  ['select @@version_comment limit 1', { type: 'select', tables: [] }],
  ['SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()', { type: 'select', tables: [['information_schema.tables', 'read']], functions: ['count', 'database'] }],
  ['TABLE secrets', { type: 'select', subtype: 'table', tables: [['secrets', 'read']] }],
  // CTEs: names are not tables, with MySQL's scoping.
  ['WITH c AS (SELECT * FROM a) SELECT * FROM c JOIN b', { type: 'select', tables: [['a', 'read'], ['b', 'read']] }],
  ['WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets', { type: 'select', tables: [['secrets', 'read']] }],
  ['WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b', { type: 'select', tables: [['b', 'read']] }],
  ['WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r', { type: 'select', tables: [] }],
  ['SELECT * FROM t WHERE x IN (WITH secrets AS (SELECT 1) SELECT * FROM secrets) AND y IN (SELECT 1 FROM secrets)', { type: 'select', tables: [['t', 'read'], ['secrets', 'read']] }],
  // DML: targets are written.
  ['INSERT INTO t (a) SELECT b FROM s', { type: 'insert', tables: [['t', 'write'], ['s', 'read']] }],
  ['INSERT INTO t (a, b) VALUES (?, ?), (?, ?)', { type: 'insert', tables: [['t', 'write']] }],
  ['INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = (SELECT max(x) FROM s)', { type: 'insert', tables: [['t', 'write'], ['s', 'read']] }],
  ['INSERT IGNORE INTO db.t SET a = 1', { type: 'insert', tables: [['db.t', 'write']] }],
  ['REPLACE INTO t SELECT * FROM s', { type: 'insert', subtype: 'replace', tables: [['t', 'write'], ['s', 'read']] }],
  ['UPDATE t SET a = a + 1 WHERE id = 1 LIMIT 1', { type: 'update', tables: [['t', 'write']] }],
  ['UPDATE t1 JOIN t2 ON t1.a = t2.a SET t1.b = t2.b', { type: 'update', tables: [['t1', 'write'], ['t2', 'read']] }],
  ['UPDATE t1 AS x JOIN t2 ON 1 SET x.b = 1', { type: 'update', tables: [['t1', 'write'], ['t2', 'read']] }],
  ['UPDATE t1 JOIN t2 ON 1 SET b = 1', { type: 'update', tables: [['t1', 'write'], ['t2', 'write']] }],
  ['UPDATE t SET a = (SELECT max(b) FROM s)', { type: 'update', tables: [['t', 'write'], ['s', 'read']], functions: ['max'] }],
  ['DELETE FROM t WHERE a IN (SELECT b FROM s)', { type: 'delete', tables: [['t', 'write'], ['s', 'read']] }],
  ['DELETE t1 FROM t1 JOIN t2 ON t1.a = t2.a', { type: 'delete', tables: [['t1', 'write'], ['t2', 'read']] }],
  ['DELETE a FROM secrets AS a JOIN s ON 1', { type: 'delete', tables: [['secrets', 'write'], ['s', 'read']] }],
  ['DELETE t1, t2 FROM t1 JOIN t2 ON 1', { type: 'delete', tables: [['t1', 'write'], ['t2', 'write']] }],
  // Multi-statement strings, split respecting quotes, backticks and comments.
  [
    'SELECT 1; DROP TABLE x',
    [
      { type: 'select', text: 'SELECT 1', tables: [] },
      { type: 'ddl', subtype: 'drop_table', text: 'DROP TABLE x', tables: [['x', 'write']] },
    ],
  ],
  ["SELECT ';' FROM t; DELETE FROM u", [{ type: 'select', tables: [['t', 'read']] }, { type: 'delete', tables: [['u', 'write']] }]],
  ['SELECT `a;b` FROM t', { type: 'select', tables: [['t', 'read']] }],
  ['SELECT 1 /* ; DROP TABLE x */', { type: 'select', tables: [] }],
  ['SELECT 1; -- ; DROP TABLE x', { type: 'select', tables: [] }],
  ['SELECT 1;;', { type: 'select' }],
  ["SELECT 'it''s' FROM t; SELECT \"q\"\"q\" FROM u", [{ type: 'select', tables: [['t', 'read']] }, { type: 'select', tables: [['u', 'read']] }]],
  // Comments.
  ['SELECT 1 # DROP TABLE x', { type: 'select', tables: [] }],
  ['SELECT 1 -- DROP TABLE x\n FROM secrets', { type: 'select', tables: [['secrets', 'read']] }],
  ['SELECT 1 --\tx\nFROM secrets', { type: 'select', tables: [['secrets', 'read']] }],
  // `--` without a following space is not a comment: 1 - -1, then FROM secrets.
  ['SELECT 1--1 FROM secrets', { type: 'select', tables: [['secrets', 'read']] }],
  ['SELECT 1--1; DROP TABLE x', [{ type: 'select' }, { type: 'ddl', subtype: 'drop_table', tables: [['x', 'write']] }]],
  ["SELECT * FROM t WHERE a = '/*' AND b = (SELECT x FROM secrets) -- */'", { type: 'select', tables: [['t', 'read'], ['secrets', 'read']] }],
  ['SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t', { type: 'select', tables: [['t', 'read']] }],
  // Executable comments: the server runs their content.
  ['/*!50000 DROP TABLE t */', { type: 'ddl', subtype: 'drop_table', tables: [['t', 'write']] }],
  ['/*! DROP TABLE t */', { type: 'ddl', subtype: 'drop_table', tables: [['t', 'write']] }],
  ['DROP /*!32302 TEMPORARY */ TABLE t', { type: 'ddl', subtype: 'drop_table', tables: [['t', 'write']] }],
  ['/*M!100100 DROP TABLE t */', { type: 'ddl', subtype: 'drop_table', tables: [['t', 'write']] }],
  ['/*m! DELETE FROM t */', { type: 'delete', tables: [['t', 'write']] }],
  ['SELECT 1 /*!, (SELECT x FROM secrets) */', { type: 'select', tables: [['secrets', 'read']] }],
  ['/*!50000 SELECT 1 */ FROM secrets', { type: 'select', tables: [['secrets', 'read']] }],
  ["/*! SELECT '*/' FROM secrets */", { type: 'select', tables: [['secrets', 'read']] }],
  ['SELECT 1 /*!50000 ; DROP TABLE t */', U(/separator inside an executable comment/)],
  ['/*!5000 DROP TABLE t */', U(/5 or 6 digits/)],
  ['/*!1234567 DROP TABLE t */', U(/5 or 6 digits/)],
  ['/*! SELECT 1 /* x */ */', U(/comment inside an executable comment/)],
  ['/*! SELECT 1 /*! 2 */ */', U(/nested executable comment/)],
  ['/*! DROP TABLE t', U(/unterminated executable comment/)],
  ['SELECT 1 /* unterminated', U(/unterminated comment/)],
  ["SELECT 'unterminated", U(/unterminated string/)],
  // sql_mode-dependent lexing is refused when the text can be read two ways.
  ["SELECT '\\'; DROP TABLE t; -- '", U(/ambiguous/)],
  ['SELECT "\\"; DROP TABLE t; -- "', U(/ambiguous/)],
  ["SELECT 'a\\\\b' FROM t", { type: 'select', tables: [['t', 'read']] }],
  ["SELECT 'a\\nb' FROM t", { type: 'select', tables: [['t', 'read']] }],
  // Client commands and compound statements.
  ['DELIMITER //', U(/client command/)],
  ['BEGIN NOT ATOMIC DROP TABLE t; END', [U(/compound/), U(/compound/)]],
  ['IF 1 THEN DROP TABLE t; END IF', [U(/compound/), U(/compound/)]],
  ['lbl: BEGIN END', U(/compound/)],
  ['CREATE PROCEDURE p() BEGIN DROP TABLE t; END', [U(/compound body/), U(/compound/)]],
  // Dangerous functions and file access.
  ["SELECT LOAD_FILE('/etc/passwd')", { type: 'select', functions: ['load_file'], program: undefined }],
  ['SELECT SLEEP(5), BENCHMARK(1000000, MD5(1))', { type: 'select', functions: ['sleep', 'benchmark', 'md5'] }],
  ['SELECT * FROM t WHERE id = 1 AND sleep(10)', { type: 'select', tables: [['t', 'read']], functions: ['sleep'] }],
  ['SELECT db.f(1)', { type: 'select', functions: ['f', 'db.f'] }],
  ["SELECT * FROM t INTO OUTFILE '/tmp/x'", { type: 'select', tables: [['t', 'read']], program: true }],
  ["SELECT a INTO DUMPFILE '/tmp/x' FROM t", { type: 'select', tables: [['t', 'read']], program: true }],
  ['SELECT a FROM t INTO @v', { type: 'select', tables: [['t', 'read']], program: undefined }],
  ["LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t", { type: 'load', subtype: 'load_data_local', tables: [['t', 'write']], program: true }],
  ["LOAD DATA INFILE '/var/lib/x' REPLACE INTO TABLE db.t FIELDS TERMINATED BY ','", { type: 'load', subtype: 'load_data', tables: [['db.t', 'write']], program: true }],
  ["LOAD XML LOCAL INFILE 'x.xml' INTO TABLE t ROWS IDENTIFIED BY '<r>'", { type: 'load', subtype: 'load_xml_local', tables: [['t', 'write']], program: true }],
  ["CREATE FUNCTION f RETURNS STRING SONAME 'lib_mysqludf_sys.so'", { type: 'ddl', subtype: 'create_function', program: true }],
  ["INSTALL PLUGIN x SONAME 'x.so'", { type: 'utility', subtype: 'install_plugin', program: true }],
  ["BINLOG 'AAAA'", U(/BINLOG/)],
  // HANDLER reads tables directly.
  ['HANDLER secrets OPEN AS s', { type: 'select', subtype: 'handler_open', tables: [['secrets', 'read']] }],
  ['HANDLER s READ `PRIMARY` FIRST', { type: 'select', subtype: 'handler_read', tables: [['s', 'read']] }],
  ['HANDLER s READ NEXT WHERE sleep(1)', { type: 'select', subtype: 'handler_read', functions: ['sleep'] }],
  ['HANDLER s CLOSE', { type: 'utility', subtype: 'handler_close' }],
  // Dynamic SQL.
  ['PREPARE s FROM @sql', U(/dynamic SQL/)],
  ["PREPARE s FROM CONCAT('DROP ', 'TABLE t')", U(/dynamic SQL/)],
  ["PREPARE s FROM 'DELETE FROM t WHERE id = ?'", { type: 'prepare', subtype: 'delete', tables: [['t', 'write']] }],
  ["PREPARE s FROM 'SELECT 1; DROP TABLE t'", U(/several statements/)],
  ["PREPARE s FROM 'SELECT \\\\n'", U(/backslashes/)],
  ["PREPARE s FROM 'SELECT \\'x\\''", U(/ambiguous/)],
  ['EXECUTE s', { type: 'execute' }],
  ['EXECUTE s USING @a, @b', { type: 'execute' }],
  ["EXECUTE IMMEDIATE 'DROP TABLE t'", { type: 'ddl', subtype: 'drop_table', tables: [['t', 'write']] }],
  ['EXECUTE IMMEDIATE @sql', U(/dynamic SQL/)],
  ['DEALLOCATE PREPARE s', { type: 'deallocate' }],
  ['DROP PREPARE s', { type: 'deallocate' }],
  // Transactions.
  ['BEGIN', { type: 'tcl', subtype: 'begin' }],
  ['BEGIN WORK', { type: 'tcl', subtype: 'begin' }],
  ['START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY', { type: 'tcl', subtype: 'begin' }],
  ['COMMIT WORK AND NO CHAIN NO RELEASE', { type: 'tcl', subtype: 'commit' }],
  ['ROLLBACK', { type: 'tcl', subtype: 'rollback' }],
  ['ROLLBACK WORK TO SAVEPOINT a', { type: 'tcl', subtype: 'rollback_to' }],
  ['SAVEPOINT a', { type: 'tcl', subtype: 'savepoint' }],
  ['RELEASE SAVEPOINT a', { type: 'tcl', subtype: 'release' }],
  ["XA START 'x'", { type: 'tcl', subtype: 'xa_start' }],
  ['COMMIT (SELECT 1)', U()],
  // SET.
  ['SET autocommit = 0', { type: 'set', subtype: 'set' }],
  ['SET @a = 1, @b := 2', { type: 'set', subtype: 'set_user_variable' }],
  ['SET @a = (SELECT x FROM secrets)', { type: 'set', tables: [['secrets', 'read']] }],
  ["SET @a = LOAD_FILE('/etc/shadow')", { type: 'set', functions: ['load_file'] }],
  ['SET GLOBAL max_connections = 1', { type: 'set', subtype: 'set_global' }],
  ['SET @@global.general_log = 1', { type: 'set', subtype: 'set_global' }],
  ['SET PERSIST x = 1', { type: 'set', subtype: 'set_global' }],
  ['SET SESSION sql_mode = "NO_BACKSLASH_ESCAPES"', { type: 'set', subtype: 'set_sql_mode' }],
  ['SET @@session.sql_mode = ""', { type: 'set', subtype: 'set_sql_mode' }],
  ['SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci', { type: 'set', subtype: 'set_names' }],
  ['SET CHARACTER SET gbk', { type: 'set', subtype: 'set_character_set' }],
  ['SET character_set_client = sjis', { type: 'set', subtype: 'set_names' }],
  ['SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', { type: 'set', subtype: 'set_transaction' }],
  ["SET PASSWORD FOR u = PASSWORD('x')", { type: 'dcl', subtype: 'set_password' }],
  ['SET ROLE admin', { type: 'dcl', subtype: 'set_role' }],
  ['SET DEFAULT ROLE admin FOR u', { type: 'dcl', subtype: 'set_default_role' }],
  ['SET STATEMENT max_statement_time = 1 FOR DROP TABLE t', U(/SET STATEMENT/)],
  // SHOW, DESCRIBE, EXPLAIN, USE.
  ['SHOW TABLES', { type: 'show', subtype: 'show_tables' }],
  ['SHOW FULL PROCESSLIST', { type: 'show', subtype: 'show_full_processlist' }],
  ['SHOW CREATE TABLE db.t', { type: 'show', subtype: 'show_create_table', tables: [['db.t', 'read']] }],
  ['SHOW FULL COLUMNS FROM t FROM db', { type: 'show', subtype: 'show_full_columns', tables: [['db.t', 'read']] }],
  ['SHOW INDEX FROM t', { type: 'show', subtype: 'show_index', tables: [['t', 'read']] }],
  ["SHOW VARIABLES LIKE 'char%'", { type: 'show', subtype: 'show_variables' }],
  ["SHOW VARIABLES WHERE Variable_name IN ('a', 'b')", { type: 'show', subtype: 'show_variables' }],
  ['SHOW GRANTS FOR CURRENT_USER()', { type: 'show', subtype: 'show_grants' }],
  ['SHOW TABLES WHERE (SELECT 1 FROM secrets)', U(/complex condition/)],
  ['SHOW TABLES WHERE sleep(5)', U(/complex condition/)],
  ['DESCRIBE t', { type: 'show', subtype: 'describe', tables: [['t', 'read']] }],
  ['DESC db.t col', { type: 'show', subtype: 'describe', tables: [['db.t', 'read']] }],
  ['EXPLAIN SELECT * FROM t', { type: 'explain', subtype: 'select', tables: [['t', 'read']] }],
  ['EXPLAIN FORMAT=JSON DELETE FROM t', { type: 'explain', subtype: 'delete', tables: [['t', 'write']] }],
  ['EXPLAIN ANALYZE DELETE FROM t', { type: 'delete', subtype: 'explain_analyze', tables: [['t', 'write']] }],
  ['ANALYZE DELETE FROM t WHERE 1', { type: 'delete', subtype: 'explain_analyze', tables: [['t', 'write']] }],
  ['ANALYZE FORMAT=JSON SELECT * FROM secrets', { type: 'select', subtype: 'explain_analyze', tables: [['secrets', 'read']] }],
  ['USE shop', { type: 'use', tables: [] }],
  // DCL.
  ['GRANT SELECT, INSERT ON db.t TO u@h', { type: 'dcl', subtype: 'grant', tables: [['db.t', 'write']] }],
  ["GRANT ALL PRIVILEGES ON *.* TO 'u'@'%' WITH GRANT OPTION", { type: 'dcl', subtype: 'grant', tables: [] }],
  ['GRANT ALL ON db.* TO u', { type: 'dcl', subtype: 'grant', tables: [] }],
  ['GRANT admin TO u', { type: 'dcl', subtype: 'grant_role' }],
  ['REVOKE ALL ON db.t FROM u', { type: 'dcl', subtype: 'revoke', tables: [['db.t', 'write']] }],
  ['REVOKE admin FROM u', { type: 'dcl', subtype: 'revoke_role' }],
  ["CREATE USER 'eve'@'%' IDENTIFIED BY 'x'", { type: 'dcl', subtype: 'create_user' }],
  ["CREATE OR REPLACE USER eve IDENTIFIED VIA mysql_native_password USING PASSWORD('x')", { type: 'dcl', subtype: 'create_user' }],
  ['ALTER USER u ACCOUNT LOCK', { type: 'dcl', subtype: 'alter_user' }],
  ['DROP USER IF EXISTS u', { type: 'dcl', subtype: 'drop_user' }],
  ['RENAME USER a TO b', { type: 'dcl', subtype: 'rename_user' }],
  ['CREATE ROLE r', { type: 'dcl', subtype: 'create_role' }],
  // DDL.
  ['CREATE TABLE t (a int, b varchar(10) REFERENCES y(id))', { type: 'ddl', subtype: 'create_table', tables: [['t', 'write'], ['y', 'read']] }],
  ['CREATE TEMPORARY TABLE t (a int)', { type: 'ddl', subtype: 'create_table', tables: [['t', 'write']] }],
  ['CREATE TABLE t AS SELECT * FROM s', { type: 'ddl', subtype: 'create_table', tables: [['t', 'write'], ['s', 'read']] }],
  ['CREATE TABLE t LIKE s', { type: 'ddl', subtype: 'create_table', tables: [['t', 'write'], ['s', 'read']] }],
  ['CREATE VIEW v AS SELECT * FROM secrets', { type: 'ddl', subtype: 'create_view', tables: [['v', 'write'], ['secrets', 'read']] }],
  ['CREATE INDEX i ON t (a)', { type: 'ddl', subtype: 'create_index', tables: [['t', 'write']] }],
  ['CREATE DATABASE d', { type: 'ddl', subtype: 'create_database' }],
  ['CREATE SCHEMA IF NOT EXISTS d', { type: 'ddl', subtype: 'create_database' }],
  ['DROP DATABASE d', { type: 'ddl', subtype: 'drop_database' }],
  ['DROP TABLE IF EXISTS a, b.c', { type: 'ddl', subtype: 'drop_table', tables: [['a', 'write'], ['b.c', 'write']] }],
  ['DROP TEMPORARY TABLE IF EXISTS t', { type: 'ddl', subtype: 'drop_table', tables: [['t', 'write']] }],
  ['DROP VIEW v', { type: 'ddl', subtype: 'drop_view', tables: [['v', 'write']] }],
  ['DROP INDEX i ON t', { type: 'ddl', subtype: 'drop_index', tables: [['t', 'write']] }],
  ['DROP PROCEDURE IF EXISTS p', { type: 'ddl', subtype: 'drop_procedure' }],
  ['ALTER TABLE t ADD COLUMN b int, DROP COLUMN c', { type: 'ddl', subtype: 'alter_table', tables: [['t', 'write']] }],
  ['ALTER TABLE t RENAME TO u', { type: 'ddl', subtype: 'alter_table', tables: [['t', 'write'], ['u', 'write']] }],
  ['TRUNCATE TABLE db.t', { type: 'ddl', subtype: 'truncate', tables: [['db.t', 'write']] }],
  ['TRUNCATE t', { type: 'ddl', subtype: 'truncate', tables: [['t', 'write']] }],
  ['RENAME TABLE a TO b, c.d TO e', { type: 'ddl', subtype: 'rename_table', tables: [['a', 'write'], ['b', 'write'], ['c.d', 'write'], ['e', 'write']] }],
  ['CREATE PROCEDURE p() SELECT 1', { type: 'ddl', subtype: 'create_procedure' }],
  ['CREATE DEFINER=`root`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1', { type: 'ddl', subtype: 'create_trigger', tables: [['t', 'write']] }],
  ["CREATE DEFINER='root'@'localhost' EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t", { type: 'ddl', subtype: 'create_event' }],
  // Locks, calls, DO, maintenance, utility.
  ['LOCK TABLES t READ, u AS x WRITE, v LOW_PRIORITY WRITE', { type: 'lock', subtype: 'lock_tables', tables: [['t', 'read'], ['u', 'write'], ['v', 'write']] }],
  ['LOCK TABLE t READ LOCAL', { type: 'lock', subtype: 'lock_tables', tables: [['t', 'read']] }],
  ['UNLOCK TABLES', { type: 'lock', subtype: 'unlock_tables' }],
  ['CALL p(1)', { type: 'call', functions: ['p'] }],
  ['CALL db.p()', { type: 'call', functions: ['p', 'db.p'] }],
  ['DO SLEEP(1)', { type: 'do', functions: ['sleep'] }],
  ['DO (SELECT x FROM secrets)', { type: 'do', tables: [['secrets', 'read']] }],
  ['OPTIMIZE TABLE a, b', { type: 'vacuum', subtype: 'optimize', tables: [['a', 'write'], ['b', 'write']] }],
  ['REPAIR NO_WRITE_TO_BINLOG TABLE t QUICK', { type: 'vacuum', subtype: 'repair', tables: [['t', 'write']] }],
  ['ANALYZE TABLE t', { type: 'vacuum', subtype: 'analyze', tables: [['t', 'read']] }],
  ['CHECK TABLE t', { type: 'vacuum', subtype: 'check', tables: [['t', 'read']] }],
  ['CHECKSUM TABLE t EXTENDED', { type: 'vacuum', subtype: 'checksum', tables: [['t', 'read']] }],
  ['FLUSH PRIVILEGES', { type: 'utility', subtype: 'flush' }],
  ['KILL QUERY 5', { type: 'utility', subtype: 'kill' }],
  ['SHUTDOWN', { type: 'utility', subtype: 'shutdown' }],
  ["CHANGE MASTER TO MASTER_HOST = 'evil'", { type: 'utility', subtype: 'change_master' }],
  ['START SLAVE', { type: 'utility', subtype: 'start_replica' }],
  ['PURGE BINARY LOGS BEFORE NOW()', { type: 'utility', subtype: 'purge' }],
  ['HELP \'SELECT\'', { type: 'show', subtype: 'help' }],
  // Empty and unsupported.
  ['', { type: 'empty' }],
  ['  /* only a comment */ -- and another', { type: 'empty' }],
  [';;', { type: 'empty' }],
  ['VALUES (1)', U(/unsupported statement VALUES/)],
  ['FOO BAR', U(/unsupported statement FOO/)],
  ["'just a string'", U(/does not start with a keyword/)],
  ['SELECT * FROM t PARTITION (p0)', U(/parse error/)],
  ['SELECT 1\0; DROP TABLE t', U(/NUL/)],
];

test('classification table', () => {
  for (const [sql, expected] of cases) {
    const got = classifyMysql(sql);
    const exp = Array.isArray(expected) ? expected : [expected];
    assert.equal(got.length, exp.length, `${sql}: statement count (${JSON.stringify(got.map((s) => s.type + ':' + (s.unknownReason ?? '')))})`);
    exp.forEach((e, i) => expectStatement(got[i], e, `${sql} [${i}]`));
  }
});

test('statement texts are the original slices, comments included', () => {
  const got = classifyMysql("  SELECT 1 /* a */ ;\n/*!50000 DROP TABLE t */ ; SELECT 'x;y'  ");
  assert.deepStrictEqual(
    got.map((s) => s.text),
    ['SELECT 1 /* a */', '/*!50000 DROP TABLE t */', "SELECT 'x;y'"],
  );
});

test('known NO_BACKSLASH_ESCAPES state resolves the ambiguity', () => {
  const sql = "SELECT '\\'; DROP TABLE t; -- '";
  assert.equal(classifyMysql(sql)[0]?.type, 'unknown');
  const noEscapes = classifyMysql(sql, { noBackslashEscapes: true });
  assert.deepStrictEqual(
    noEscapes.map((s) => [s.type, s.subtype]),
    [
      ['select', undefined],
      ['ddl', 'drop_table'],
    ],
  );
  const escapes = classifyMysql(sql, { noBackslashEscapes: false });
  // With escapes, ANSI_QUOTES does not matter for single quotes: one SELECT of a string.
  assert.deepStrictEqual(escapes.map((s) => s.type), ['select']);
  // Double quotes still depend on ANSI_QUOTES.
  assert.equal(classifyMysql('SELECT "\\"; DROP TABLE t; -- "', { noBackslashEscapes: false })[0]?.type, 'unknown');
});

test('results are cached by text, frozen, and the cache can be cleared and sized', () => {
  clearMysqlClassifierCache();
  const a = classifyMysql('SELECT * FROM cached_t');
  const b = classifyMysql('SELECT * FROM cached_t');
  assert.equal(a, b, 'same array from the cache');
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a[0]) && Object.isFrozen(a[0]!.tables) && Object.isFrozen(a[0]!.tables[0]));
  assert.throws(() => (a[0] as { type: string }).type = 'x');
  clearMysqlClassifierCache();
  assert.notEqual(classifyMysql('SELECT * FROM cached_t'), a);
  configureMysqlClassifier({ cacheEntries: 2 });
  const x = classifyMysql('SELECT 1');
  classifyMysql('SELECT 1, 2');
  classifyMysql('SELECT 1, 2, 3');
  assert.notEqual(classifyMysql('SELECT 1'), x, 'evicted (LRU of 2)');
  configureMysqlClassifier({ maxStatementLength: 50 });
  assert.match(classifyMysql(`SELECT '${'x'.repeat(60)}'`)[0]?.unknownReason ?? '', /longer than 50/);
  configureMysqlClassifier({ cacheEntries: 5000, maxStatementLength: 1024 * 1024, dialect: 'mysql' });
  // The MySQL grammar first: same results for what both grammars parse.
  assert.equal(classifyMysql('SELECT a->"$.x" FROM t')[0]?.type, 'select');
  configureMysqlClassifier({ dialect: 'mariadb' });
});

test('deeply nested input is unknown, not a crash', () => {
  const deep = `SELECT ${'('.repeat(3000)}1${')'.repeat(3000)}`;
  const [s] = classifyMysql(deep);
  assert.equal(s?.type, 'unknown');
  const many = Array.from({ length: 300 }, (_, i) => `SELECT ${i}`).join(';');
  assert.equal(classifyMysql(many).length, 300);
});

test('every statement type the classifier emits is a SqlStatementType', () => {
  const allowed = new Set(['select', 'insert', 'update', 'delete', 'ddl', 'dcl', 'tcl', 'call', 'do', 'set', 'show', 'explain', 'prepare', 'execute', 'deallocate', 'lock', 'vacuum', 'utility', 'use', 'load', 'empty', 'unknown']);
  for (const [sql] of cases) for (const s of classifyMysql(sql)) assert.ok(allowed.has(s.type), `${sql}: ${s.type}`);
});
