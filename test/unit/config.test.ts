import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isGatehouseError } from '../../src/core/errors.js';
import { defaultConfig, formatDuration, loadConfig, parseConfig, parseDuration, parseHostPort, substituteEnv, toConnection } from '../../src/config/index.js';
import { loadPolicies, PolicyEngine } from '../../src/core/policy/index.js';
import type { PolicyDefinition } from '../../src/core/policy/index.js';

const ENV = { PG_PASSWORD: 's3cret', MASK_KEY: 'mask-key-0123456789' };

/** The error lines of a configuration that must not load. */
function errors(text: string, env: Record<string, string> = ENV, file = 'gatehouse.yaml'): string[] {
  try {
    parseConfig(text, file, env, '/srv/gatehouse');
  } catch (e) {
    assert.ok(isGatehouseError(e, 'ERR_CONFIG'), String(e));
    return e.message.split('\n');
  }
  assert.fail('expected ERR_CONFIG');
}

const FULL = `# every top-level key
listen: { postgres: 127.0.0.1:15432, mysql: 127.0.0.1:13306, ssh: 127.0.0.1:12222, http: 127.0.0.1:8080, kubernetes: "[::1]:8443" }
tls: { cert: tls/gw.crt, key: /etc/gatehouse/gw.key }
store: sqlite:./data/gatehouse.db
instance_id: gw-1
identity:
  issuers:
    - issuer: https://example.okta.com/oauth2/default
      audience: api://gatehouse
      groups_claim: groups
      algorithms: [RS256]
    - issuer: https://token.actions.githubusercontent.com
      audience: [gatehouse, sts.amazonaws.com]
      groups_claim: repository_owner
      jwks_uri: https://token.actions.githubusercontent.com/.well-known/jwks
  clock_tolerance: 30s
  dev_issuer: false
connections:
  - { name: prod-pg, type: postgres, target: "postgres://svc:\${PG_PASSWORD}@127.0.0.1:5432/app" }
  - name: prod-mysql
    type: mysql
    target: mysql://svc:pw@10.0.0.5:3306/app
    tls: { ca: certs/ca.pem, reject_unauthorized: true, servername: db.internal }
    allow_plaintext: false
    max_grant: 4h
    idle_timeout: 10m
  - name: cluster
    type: kubernetes
    target: https://10.0.0.1:6443
    token: "\${K8S_TOKEN:-dev-token}"
    impersonate: { user: gatehouse-agent, groups: [agents] }
  - { name: bastion, type: ssh, target: "ssh://deploy@10.0.0.9:22", known_hosts: ssh/known_hosts, private_key: ssh/id_ed25519 }
policies:
  - name: agents-on-prod
    subjects: { groups: [ai-agents] }          # also: subjects: { sub: [...], client_id: [...], claims: {k: v} }
    connections: [prod-pg]
    require_grant: false
    rules:
      - { effect: deny,   sql: { types: [ddl, dcl] }, reason: "schema and privilege changes are blocked" }
      - { effect: deny,   sql: { functions: [pg_read_file, lo_export] } }
      - { effect: review, sql: { types: [delete, update] }, approvers: { groups: [dba] } }
      - { effect: allow,  sql: { types: [select, insert] } }
      - { effect: mask,   columns: ["*.card_number", "users.ssn"], detectors: [payment_card, api_key], strategy: redact }
      - { effect: deny,   k8s: { verbs: [delete], namespaces: [prod] } }
      - { effect: deny,   ssh: { command: "^rm\\\\s+-rf" } }
  - ./policies/*.yaml
review: { hold_timeout: 60s, valid_for: 15m }
roles: { admin: { groups: [gatehouse-admins] }, approver: { groups: [dba], subjects: [alice@example.com] }, auditor: { groups: [auditors] } }
audit: { signing_key: keys/audit.pem, checkpoint_every: 1000 }
masking:
  hash_key: "\${MASK_KEY}"
  max_value_bytes: 1048576
  detectors:
    - { name: acme_token, pattern: "acme_[A-Za-z0-9]{16}", examples: [acme_0123456789abcdef] }
    - { name: iban, pattern: "(?i)\\\\b[A-Z]{2}\\\\d{2}[A-Z0-9]{11,30}\\\\b", validator: iban, examples: [DE89370400440532013000] }
sessions: { idle_timeout: 30m, max_duration: 12h }
log: { level: info, file: logs/gatehouse.log }
recording: { enabled: true }
`;

describe('parseConfig: a valid configuration', () => {
  const c = parseConfig(FULL, '/srv/gatehouse/gatehouse.yaml', ENV);

  it('maps every section to camelCase with defaults and milliseconds', () => {
    assert.equal(c.file, '/srv/gatehouse/gatehouse.yaml');
    assert.equal(c.baseDir, '/srv/gatehouse');
    assert.deepEqual(c.listen, { postgres: '127.0.0.1:15432', mysql: '127.0.0.1:13306', ssh: '127.0.0.1:12222', http: '127.0.0.1:8080', kubernetes: '[::1]:8443' });
    assert.deepEqual(c.tls, { cert: '/srv/gatehouse/tls/gw.crt', key: '/etc/gatehouse/gw.key' });
    assert.deepEqual(c.store, { kind: 'sqlite', path: '/srv/gatehouse/data/gatehouse.db' });
    assert.equal(c.instanceId, 'gw-1');
    assert.deepEqual(c.identity, {
      issuers: [
        { issuer: 'https://example.okta.com/oauth2/default', audience: ['api://gatehouse'], groupsClaim: 'groups', algorithms: ['RS256'] },
        {
          issuer: 'https://token.actions.githubusercontent.com',
          audience: ['gatehouse', 'sts.amazonaws.com'],
          groupsClaim: 'repository_owner',
          jwksUri: 'https://token.actions.githubusercontent.com/.well-known/jwks',
        },
      ],
      clockToleranceMs: 30_000,
      devIssuer: false,
    });
    assert.deepEqual(c.approverIssuers, c.identity.issuers);
    assert.deepEqual(c.review, { holdTimeoutMs: 60_000, validForMs: 900_000 });
    assert.deepEqual(c.roles, {
      admin: { groups: ['gatehouse-admins'], subjects: [] },
      approver: { groups: ['dba'], subjects: ['alice@example.com'] },
      auditor: { groups: ['auditors'], subjects: [] },
    });
    assert.deepEqual(c.audit, { signingKey: '/srv/gatehouse/keys/audit.pem', checkpointEvery: 1000 });
    assert.equal(c.masking.hashKey, 'mask-key-0123456789');
    assert.equal(c.masking.maxValueBytes, 1_048_576);
    assert.deepEqual(c.masking.detectors.map((d) => [d.name, d.validator]), [['acme_token', undefined], ['iban', 'iban']]);
    assert.deepEqual(c.sessions, { idleTimeoutMs: 1_800_000, maxDurationMs: 43_200_000 });
    assert.deepEqual(c.log, { level: 'info', file: '/srv/gatehouse/logs/gatehouse.log' });
    assert.deepEqual(c.recording, { enabled: true });
  });

  it('connections, with per-type options and their line', () => {
    assert.deepEqual(c.connections[0], {
      name: 'prod-pg',
      type: 'postgres',
      target: 'postgres://svc:s3cret@127.0.0.1:5432/app',
      allowPlaintext: false,
      source: '/srv/gatehouse/gatehouse.yaml:19',
    });
    assert.deepEqual(c.connections[1], {
      name: 'prod-mysql',
      type: 'mysql',
      target: 'mysql://svc:pw@10.0.0.5:3306/app',
      tls: { rejectUnauthorized: true, ca: '/srv/gatehouse/certs/ca.pem', servername: 'db.internal' },
      maxGrantMs: 14_400_000,
      allowPlaintext: false,
      idleTimeoutMs: 600_000,
      source: '/srv/gatehouse/gatehouse.yaml:20',
    });
    assert.equal(c.connections[2]?.token, 'dev-token');
    assert.deepEqual(c.connections[2]?.impersonate, { user: 'gatehouse-agent', groups: ['agents'] });
    assert.equal(c.connections[3]?.knownHosts, '/srv/gatehouse/ssh/known_hosts');
    assert.equal(c.connections[3]?.privateKey, '/srv/gatehouse/ssh/id_ed25519');
    assert.deepEqual(toConnection(c.connections[3] ?? assert.fail()), {
      name: 'bastion',
      type: 'ssh',
      target: 'ssh://deploy@10.0.0.9:22',
      options: { knownHosts: '/srv/gatehouse/ssh/known_hosts', privateKey: '/srv/gatehouse/ssh/id_ed25519', allowPlaintext: false },
    });
  });

  it('accepts the example policy inline, next to a glob', () => {
    assert.equal(c.policies.length, 2);
    const [inline, glob] = c.policies as [PolicyDefinition, string];
    assert.equal(glob, './policies/*.yaml');
    assert.equal(inline.name, 'agents-on-prod');
    assert.equal(inline.source, '/srv/gatehouse/gatehouse.yaml:34');
    assert.equal(inline.rules[0]?.source, '/srv/gatehouse/gatehouse.yaml:39');
    assert.equal(inline.rules[6]?.ssh?.command, '^rm\\s+-rf');
    assert.deepEqual(inline.rules[2]?.approvers, { groups: ['dba'], subjects: [], minApprovals: 1, requireReason: false });
  });

  it('fills in defaults for an empty file', () => {
    const d = parseConfig('', '/x/gatehouse.yaml', {});
    assert.deepEqual(d.listen, {});
    assert.deepEqual(d.store, { kind: 'sqlite', path: '/x/data/gatehouse.db' });
    assert.deepEqual(d.policies, []);
    assert.deepEqual(d.connections, []);
    assert.deepEqual(d.identity, { issuers: [], clockToleranceMs: 30_000, devIssuer: false });
    assert.equal(d.masking.maxValueBytes, 1_048_576);
    assert.equal(d.log.level, 'info');
    assert.equal(d.recording.enabled, true);
    assert.equal(d.audit.checkpointEvery, 1000);
  });

  it('other store forms and separate approver issuers', () => {
    assert.deepEqual(parseConfig('store: postgres://gh:pw@db:5432/gatehouse', '/x/g.yaml', {}).store, { kind: 'postgres', url: 'postgres://gh:pw@db:5432/gatehouse' });
    assert.deepEqual(parseConfig('store: "sqlite::memory:"', '/x/g.yaml', {}).store, { kind: 'sqlite', path: ':memory:' });
    assert.deepEqual(parseConfig('store: sqlite:///var/lib/gh.db', '/x/g.yaml', {}).store, { kind: 'sqlite', path: '/var/lib/gh.db' });
    const c2 = parseConfig(
      'identity: { issuers: [ { issuer: "http://127.0.0.1:9000", audience: x } ] }\napprover_issuers: [ { issuer: "https://login.example.com", audience: console } ]\n',
      '/x/g.yaml',
      {},
    );
    assert.deepEqual(c2.approverIssuers, [{ issuer: 'https://login.example.com', audience: ['console'], groupsClaim: 'groups' }]);
  });

  it('defaultConfig: what `gatehouse demo` starts from', () => {
    const d = defaultConfig('/tmp/demo');
    assert.equal(d.file, undefined);
    assert.deepEqual(d.listen, { postgres: '127.0.0.1:15432', http: '127.0.0.1:8080' });
    assert.deepEqual(d.store, { kind: 'sqlite', path: '/tmp/demo/data/gatehouse.db' });
    assert.equal(d.identity.devIssuer, true);
    assert.deepEqual(d.review, { holdTimeoutMs: 60_000, validForMs: 900_000 });
    assert.deepEqual(d.policies, []);
  });
});

describe('environment substitution', () => {
  it('substitutes in string values after parsing, keeping them strings', () => {
    const c = parseConfig(
      `instance_id: "\${ID}"
connections:
  - { name: a, type: postgres, target: "postgres://u:\${PW}@h:5432/db?x=\${X:-1}&y=\${EMPTY:-fallback}&z=$\${LITERAL}" }
masking:
  hash_key: \${KEY}
  max_value_bytes: "\${MAX:-2048}"
audit:
  checkpoint_every: \${EVERY}
recording:
  enabled: \${REC:-false}
sessions:
  idle_timeout: \${IDLE:-5m}
`,
      '/x/g.yaml',
      { ID: 'gw-2', PW: 'p@ss: [not yaml]', EMPTY: '', KEY: '12345', EVERY: '250' },
    );
    assert.equal(c.instanceId, 'gw-2');
    assert.equal(c.connections[0]?.target, 'postgres://u:p@ss: [not yaml]@h:5432/db?x=1&y=fallback&z=${LITERAL}');
    assert.equal(c.masking.hashKey, '12345');
    assert.equal(c.masking.maxValueBytes, 2048);
    assert.equal(c.audit.checkpointEvery, 250);
    assert.equal(c.recording.enabled, false);
    assert.equal(c.sessions.idleTimeoutMs, 300_000);
  });

  it('a missing variable is an error naming file:line:col and the key path', () => {
    const lines = errors('connections:\n  - name: prod-pg\n    type: postgres\n    target: "postgres://svc:${PG_PASSWORD}@127.0.0.1:5432/app"\n', {});
    assert.deepEqual(lines, ['gatehouse.yaml:4:5: connections[0].target: environment variable PG_PASSWORD is not set (write ${PG_PASSWORD:-default} for a default)']);
  });

  it('reports every missing variable and malformed reference', () => {
    assert.deepEqual(errors('masking: { hash_key: "${A}${B}" }\ninstance_id: "${not valid}"\nlog: { file: "${UNCLOSED" }\n', {}), [
      'gatehouse.yaml:1:12: masking.hash_key: environment variable A is not set (write ${A:-default} for a default)',
      'gatehouse.yaml:1:12: masking.hash_key: environment variable B is not set (write ${B:-default} for a default)',
      'gatehouse.yaml:2:1: instance_id: invalid variable reference "${not valid}" (use ${NAME} or ${NAME:-default})',
      'gatehouse.yaml:3:8: log.file: invalid variable reference "${UNCLOSED" (use ${NAME} or ${NAME:-default})',
    ]);
  });

  it('never substitutes keys; leaves $ alone elsewhere', () => {
    assert.deepEqual(substituteEnv('price: $5 and $HOME', { HOME: '/root' }), { value: undefined, missing: [], invalid: [] });
    assert.deepEqual(substituteEnv('${A:-x:-y}', {}), { value: 'x:-y', missing: [], invalid: [] });
    assert.deepEqual(errors('${KEY}: 1\n', {}), ['gatehouse.yaml:1:1: ["${KEY}"]: unknown key']);
  });
});

describe('parseConfig: errors', () => {
  it('unknown keys, with file:line:col', () => {
    assert.deepEqual(errors('listen:\n  postgres: 127.0.0.1:15432\n  postgress: 127.0.0.1:5432\n'), ['gatehouse.yaml:3:3: listen.postgress: unknown key']);
    assert.deepEqual(errors('connections:\n  - name: a\n    type: postgres\n    target: postgres://h/db\n    password: x\n'), ['gatehouse.yaml:5:5: connections[0].password: unknown key']);
    assert.deepEqual(errors('colour: blue\n'), ['gatehouse.yaml:1:1: colour: unknown key']);
  });

  it('the example location format', () => {
    assert.deepEqual(errors('# a comment\nlisten: {}\nconnections:\n  - name: ok\n    type: postgres\n    target: postgres://h/db\n  - name: bad\n    type: mongodb\n    target: mongodb://h/db\n'), [
      'gatehouse.yaml:8:5: connections[1].type: expected one of postgres|mysql|kubernetes|ssh',
    ]);
  });

  it('bad durations', () => {
    assert.deepEqual(errors('review: { hold_timeout: 5 minutes, valid_for: -3 }\nsessions:\n  idle_timeout: true\n'), [
      'gatehouse.yaml:1:11: review.hold_timeout: invalid duration "5 minutes": use 30s, 15m, 2h, 1d or a number of seconds',
      'gatehouse.yaml:1:36: review.valid_for: invalid duration -3: use 30s, 15m, 2h, 1d or a number of seconds',
      'gatehouse.yaml:3:3: sessions.idle_timeout: invalid duration true: use 30s, 15m, 2h, 1d or a number of seconds',
    ]);
  });

  it('duplicate connection names name both lines', () => {
    assert.deepEqual(
      errors('connections:\n  - { name: prod, type: postgres, target: "postgres://h/db" }\n  - { name: other, type: mysql, target: "mysql://h/db" }\n  - { name: prod, type: mysql, target: "mysql://h/db" }\n'),
      ['gatehouse.yaml:4:7: connections[2].name: duplicate connection name "prod" (lines 2 and 4)'],
    );
  });

  it('type-specific options, targets, listeners, issuers', () => {
    assert.deepEqual(
      errors(`listen: { postgres: "localhost", http: "0.0.0.0:99999", ssh: "[::1]:22" }
identity:
  issuers:
    - { issuer: "http://idp.example.com", audience: [] }
    - { issuer: "https://idp.example.com", audience: x, algorithms: [HS256] }
    - { issuer: "https://idp.example.com", audience: y }
connections:
  - { name: a, type: postgres, target: "mysql://h/db", known_hosts: kh }
  - { name: b, type: ssh, target: "ssh://host:22" }
  - { name: "c d", type: kubernetes, target: "https://k:6443", allow_plaintext: true, tls: { cert: c.pem } }
`),
      [
        'gatehouse.yaml:1:11: listen.postgres: expected host:port (127.0.0.1:15432, [::1]:8080)',
        'gatehouse.yaml:1:34: listen.http: expected host:port (127.0.0.1:15432, [::1]:8080)',
        'gatehouse.yaml:4:9: identity.issuers[0].issuer: expected a https URL (http only on loopback)',
        'gatehouse.yaml:4:43: identity.issuers[0].audience: must not be empty',
        'gatehouse.yaml:5:70: identity.issuers[1].algorithms[0]: expected one of RS256|RS384|RS512|PS256|PS384|PS512|ES256|ES384|ES512|EdDSA',
        'gatehouse.yaml:6:9: identity.issuers[2].issuer: duplicate issuer "https://idp.example.com" (lines 5 and 6)',
        'gatehouse.yaml:8:32: connections[0].target: expected a postgres:// or postgresql:// URL with a host',
        'gatehouse.yaml:8:56: connections[0].known_hosts: only for type ssh',
        'gatehouse.yaml:9:27: connections[1].target: expected ssh://user@host[:port]',
        'gatehouse.yaml:10:7: connections[2].name: expected a name of letters, digits and . _ - (it is the database / user / URL path agents use)',
        'gatehouse.yaml:10:64: connections[2].allow_plaintext: only for type postgres or mysql',
        'gatehouse.yaml:10:94: connections[2].tls.cert: tls.cert and tls.key go together',
      ],
    );
  });

  it('wrong types and missing required keys', () => {
    assert.deepEqual(errors('connections:\n  - { name: a, type: postgres }\nlisten: 8080\nroles: { admin: { groups: 3 } }\ntls: { cert: a.pem }\n'), [
      'gatehouse.yaml:2:5: connections[0].target: required',
      'gatehouse.yaml:3:1: listen: expected a mapping, got a number',
      'gatehouse.yaml:4:19: roles.admin.groups: expected a list, got a number',
      'gatehouse.yaml:5:1: tls.key: required',
    ]);
    assert.deepEqual(errors('- a\n- b\n'), ['gatehouse.yaml:1:1: expected a mapping of settings, got a list']);
  });

  it('detectors are checked against their examples', () => {
    assert.deepEqual(errors('masking:\n  detectors:\n    - { name: t, pattern: "tok_[0-9]+", examples: [tok_1, tik_2] }\n    - { name: u, pattern: "(", examples: [x] }\n'), [
      'gatehouse.yaml:3:59: masking.detectors[0].examples[1]: example does not match the pattern',
      'gatehouse.yaml:4:18: masking.detectors[1].pattern: invalid regular expression: /(/: Unterminated group',
    ]);
  });

  it('inline policies are validated with their location', () => {
    assert.deepEqual(errors('policies:\n  - name: p\n    subjects: { team: x }\n    rules: [ { effect: allow, sql: { types: [selct] } } ]\n  - 42\n'), [
      'gatehouse.yaml:3:17: policies[0].subjects.team: unknown key',
      'gatehouse.yaml:4:46: policies[0].rules[0].sql.types[0]: expected one of select|insert|update|delete|merge|ddl|dcl|tcl|copy|call|do|set|show|explain|prepare|execute|deallocate|listen|notify|lock|vacuum|utility|use|load|empty|unknown|read|write',
      'gatehouse.yaml:5:5: policies[1]: expected a file glob or a policy, got a number',
    ]);
    assert.deepEqual(errors('policies: { name: p }\n'), ['gatehouse.yaml:1:1: policies: expected a file glob, a list of globs or a list of policies, got a mapping']);
  });

  it('YAML syntax errors and duplicate keys', () => {
    const [syntax] = errors('listen:\n  postgres: [127.0.0.1:15432\n');
    assert.match(syntax ?? '', /^gatehouse\.yaml:\d+:\d+: YAML: /);
    const [dup] = errors('log: { level: info }\nlog: { level: debug }\n');
    assert.match(dup ?? '', /^gatehouse\.yaml:2:1: YAML: Map keys must be unique/);
  });

  it('collects several errors at once, in file order', () => {
    const lines = errors(`listen: { postgres: nope }
store: mongodb://x
review: { hold_timeout: soon }
log: { level: loud, colour: red }
connections:
  - { name: x, type: postgres, target: "postgres://u:\${NOPE}@h/db" }
`);
    assert.deepEqual(lines, [
      'gatehouse.yaml:1:11: listen.postgres: expected host:port (127.0.0.1:15432, [::1]:8080)',
      'gatehouse.yaml:2:1: store: expected sqlite:<path> or postgres://…',
      'gatehouse.yaml:3:11: review.hold_timeout: invalid duration "soon": use 30s, 15m, 2h, 1d or a number of seconds',
      'gatehouse.yaml:4:8: log.level: expected one of fatal|error|warn|info|debug|trace|silent',
      'gatehouse.yaml:4:21: log.colour: unknown key',
      'gatehouse.yaml:6:32: connections[0].target: environment variable NOPE is not set (write ${NOPE:-default} for a default)',
    ]);
  });

  it('never echoes a substituted secret', () => {
    const lines = errors('connections:\n  - { name: x, type: postgres, target: "${T}" }\n', { T: 'mysql://root:hunter2@h/db' });
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines.join('\n'), /hunter2/);
  });
});

describe('loadConfig from disk', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-config-'));
    await mkdir(join(dir, 'etc', 'policies'), { recursive: true });
    await writeFile(
      join(dir, 'etc', 'policies', 'agents.yaml'),
      "policies:\n  - { name: from-file, subjects: { groups: [ai-agents] }, rules: [ { effect: allow, sql: { types: [select] } } ] }\n",
    );
    await writeFile(
      join(dir, 'etc', 'gatehouse.yaml'),
      `tls: { cert: certs/gw.crt, key: ../keys/gw.key }
store: sqlite:state/gh.db
connections:
  - { name: db, type: postgres, target: "postgres://svc:\${PW}@127.0.0.1:5432/app", tls: { ca: certs/ca.pem } }
policies: policies/*.yaml
`,
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves relative paths against the file directory, and policies load from there', async () => {
    const c = await loadConfig(join(dir, 'etc', 'gatehouse.yaml'), { PW: 'pw' });
    assert.equal(c.baseDir, join(dir, 'etc'));
    assert.deepEqual(c.tls, { cert: join(dir, 'etc', 'certs', 'gw.crt'), key: join(dir, 'keys', 'gw.key') });
    assert.deepEqual(c.store, { kind: 'sqlite', path: join(dir, 'etc', 'state', 'gh.db') });
    assert.equal(c.connections[0]?.tls?.ca, join(dir, 'etc', 'certs', 'ca.pem'));
    assert.equal(c.connections[0]?.target, 'postgres://svc:pw@127.0.0.1:5432/app');
    assert.deepEqual(c.policies, ['policies/*.yaml']);
    const set = await loadPolicies(c.policies, c.baseDir);
    assert.deepEqual(set.policies.map((p) => [p.name, p.source]), [['from-file', 'policies/agents.yaml:2']]);
    const engine = new PolicyEngine(set);
    assert.equal(engine.canConnect({ issuer: 'i', subject: 's', groups: ['ai-agents'], scopes: [], expiresAt: 0, claims: {} }, 'db').ok, true);
  });

  it('a missing file is ERR_CONFIG', async () => {
    await assert.rejects(loadConfig(join(dir, 'nope.yaml')), (e: unknown) => isGatehouseError(e, 'ERR_CONFIG') && /nope\.yaml: cannot read configuration: ENOENT/.test(e.message));
  });

  it('errors carry the path as given', async () => {
    await writeFile(join(dir, 'bad.yaml'), 'listen:\n  http: nowhere\n');
    await assert.rejects(loadConfig(join(dir, 'bad.yaml')), { message: `${join(dir, 'bad.yaml')}:2:3: listen.http: expected host:port (127.0.0.1:15432, [::1]:8080)` });
  });
});

describe('helpers', () => {
  it('parseDuration', () => {
    const cases: [unknown, number | undefined][] = [
      ['30s', 30_000], ['15m', 900_000], ['2h', 7_200_000], ['1d', 86_400_000], ['500ms', 500], ['1h30m', 5_400_000],
      [30, 30_000], ['45', 45_000], [1.5, 1500], [0, 0], ['0s', 0],
      ['', undefined], ['5 minutes', undefined], ['-1s', undefined], [-1, undefined], ['1w', undefined], [true, undefined], [null, undefined], [Number.NaN, undefined],
    ];
    for (const [input, ms] of cases) assert.equal(parseDuration(input), ms, String(input));
    assert.equal(formatDuration(5_400_000), '1h30m');
    assert.equal(formatDuration(0), '0s');
  });

  it('parseHostPort', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:15432'), { host: '127.0.0.1', port: 15432 });
    assert.deepEqual(parseHostPort('[::1]:8080'), { host: '::1', port: 8080 });
    assert.deepEqual(parseHostPort('gateway.internal:0'), { host: 'gateway.internal', port: 0 });
    for (const bad of ['localhost', ':8080', '127.0.0.1:', '127.0.0.1:65536', '[nope]:80', 'a b:80', '::1:80']) assert.equal(parseHostPort(bad), undefined, bad);
  });
});
