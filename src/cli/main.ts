/**
 * The `gatehouse` command: serve, demo, token, policy, audit (and, through the HTTP API, reviews,
 * grants, sessions and revocations).
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { loadConfig, parseDuration } from '../config/index.js';
import { verifyAudit } from '../core/audit/verify.js';
import type { Command as GatehouseCommand } from '../core/command.js';
import { isGatehouseError } from '../core/errors.js';
import { DevIssuer } from '../core/identity/dev-issuer.js';
import type { Identity } from '../core/identity/types.js';
import { validateCustomDetectors } from '../core/masking/index.js';
import { formatExplanation, loadPolicies, PolicyEngine } from '../core/policy/index.js';
import { classifyPostgres, initClassifier } from '../engines/postgres/classify.js';
import { customDetectors, dataDirOf, Gateway, type DevIssuerInfo } from '../gateway.js';
import { openStore } from '../store/index.js';
import { registerApiCommands } from './api-commands.js';
import { startDemo } from './demo.js';

const program = new Command();
program
  .name('gatehouse')
  .description('Identity-aware gateway between AI agents and production infrastructure (PostgreSQL, MySQL, Kubernetes, SSH)')
  .version('0.1.0')
  .showHelpAfterError();

function list(v: string, prev: string[] = []): string[] {
  return [...prev, ...v.split(',').map((s) => s.trim()).filter((s) => s !== '')];
}

program
  .command('serve')
  .description('run the gateway from a configuration file')
  .requiredOption('-c, --config <file>', 'gatehouse.yaml')
  .action(async (o: { config: string }) => {
    const config = await loadConfig(o.config);
    const gw = await Gateway.start(config);
    process.on('SIGHUP', () => {
      gw.reloadPolicies().catch((e: unknown) => gw.parts.logger.error({ err: isGatehouseError(e) ? e.toJSON() : e }, 'policy reload failed; the previous policies stay in force'));
    });
    const stop = (): void => {
      gw.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program
  .command('demo')
  .description('run the gateway on embedded defaults: an embedded PostgreSQL with sample data, the SQLite store in ./data, a development token issuer')
  .option('--data <dir>', 'data directory', 'data')
  .option('--postgres <host:port>', 'PostgreSQL listener', '127.0.0.1:15432')
  .option('--http <host:port>', 'HTTP listener (API, console, development issuer)', '127.0.0.1:8080')
  .action(async (o: { data: string; postgres: string; http: string }) => {
    const demo = await startDemo({ dataDir: o.data, postgres: o.postgres, http: o.http });
    const http = demo.gateway.address('http')!;
    const base = `http://${http.host}:${http.port}`;
    process.stdout.write(
      [
        '',
        'Gatehouse demo is running.',
        '',
        `  Embedded PostgreSQL (PGlite) on 127.0.0.1:${demo.databasePort}, connection "demo"; policy: ${join(resolve(o.data), 'demo-policy.yaml')}`,
        `  Console:  ${base}/   (sign in as approver-1 to approve held commands)`,
        `  HTTP API: ${base}/api   (health: ${base}/healthz)`,
        '',
        'Connect as the agent "agent-1" (group ai-agents) with a fresh one-hour token:',
        '',
        `  ${demo.psqlCommand}`,
        '',
        'Then try:  SELECT * FROM customers;      -- card numbers and API keys come back masked',
        '           DROP TABLE orders;            -- blocked by policy',
        '           DELETE FROM orders WHERE id=2; -- held for a DBA to approve',
        '',
        'Mint more tokens with:  npx gatehouse token --sub agent-2 --groups ai-agents',
        'Approver token (dba-1, groups dba, gatehouse-admins):',
        `  export GATEHOUSE_TOKEN='${demo.approverToken}'`,
        `  npx gatehouse reviews list --server ${base}`,
        '',
        'Ctrl-C stops the demo.',
        '',
      ].join('\n'),
    );
    const stop = (): void => {
      demo.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program
  .command('token')
  .description('mint an access token from the development issuer of a running demo (never for production)')
  .requiredOption('--sub <subject>', 'subject (the agent or human identity)')
  .option('--groups <list>', 'comma-separated groups', list, [])
  .option('--scopes <list>', 'comma-separated scopes', list, [])
  .option('--ttl <duration>', 'lifetime (e.g. 15m, 1h)', '1h')
  .option('--data <dir>', 'the demo data directory', 'data')
  .option('-c, --config <file>', 'a gatehouse.yaml with identity.dev_issuer: true (its data directory is used)')
  .action(async (o: { sub: string; groups: string[]; scopes: string[]; ttl: string; data: string; config?: string }) => {
    const dir = o.config ? dataDirOf(await loadConfig(o.config)) : resolve(o.data);
    let info: DevIssuerInfo;
    try {
      info = JSON.parse(await readFile(join(dir, 'dev-issuer.json'), 'utf8')) as DevIssuerInfo;
    } catch {
      throw new Error(`no development issuer in ${dir}: start \`gatehouse demo\` (or serve with identity.dev_issuer: true) first`);
    }
    const ttl = parseDuration(o.ttl);
    if (ttl === undefined || ttl <= 0) throw new Error(`invalid --ttl ${o.ttl}`);
    const issuer = await DevIssuer.create({ issuer: info.issuer, keyFile: info.keyFile });
    const token = await issuer.mint({ sub: o.sub, groups: o.groups, scopes: o.scopes, audience: info.audience, ttlSec: Math.ceil(ttl / 1000) });
    process.stdout.write(`${token}\n`);
  });

const policy = program.command('policy').description('policy as code: check files, explain decisions');

policy
  .command('check')
  .description('validate the configuration, every policy file and the custom detectors')
  .requiredOption('-c, --config <file>', 'gatehouse.yaml')
  .action(async (o: { config: string }) => {
    const config = await loadConfig(o.config);
    const set = await loadPolicies(config.policies, config.baseDir);
    const problems = validateCustomDetectors(customDetectors(config));
    if (problems.length > 0) {
      for (const p of problems) process.stderr.write(`${o.config}: masking.detectors ${p.detector}: ${p.problem}\n`);
      process.exitCode = 1;
      return;
    }
    const rules = set.policies.reduce((n, p) => n + p.rules.length, 0);
    process.stdout.write(`ok: ${set.policies.length} ${set.policies.length === 1 ? 'policy' : 'policies'}, ${rules} rules, ${config.connections.length} connections\n`);
  });

policy
  .command('explain')
  .description('show the decision for one command and the rule that made it')
  .requiredOption('-c, --config <file>', 'gatehouse.yaml')
  .requiredOption('--sub <subject>', 'subject')
  .option('--groups <list>', 'comma-separated groups', list, [])
  .option('--client-id <id>', 'client id')
  .option('--issuer <url>', 'issuer', 'https://issuer.invalid')
  .option('--claim <k=v>', 'extra claim (repeatable)', (v: string, prev: string[] = []) => [...prev, v], [])
  .requiredOption('--connection <name>', 'connection name')
  .addOption(new Option('--sql <text>', 'a PostgreSQL statement (or several)').conflicts(['k8s', 'ssh']))
  .addOption(new Option('--k8s <attributes>', 'a Kubernetes request: verb=delete,resource=pods,namespace=prod[,group=apps,subresource=exec,name=x]').conflicts(['ssh']))
  .option('--ssh <command>', 'an SSH exec command line')
  .option('--at <time>', 'evaluate at this ISO time (schedules)')
  .action(async (o: { config: string; sub: string; groups: string[]; clientId?: string; issuer: string; claim: string[]; connection: string; sql?: string; k8s?: string; ssh?: string; at?: string }) => {
    const config = await loadConfig(o.config);
    const engine = new PolicyEngine(await loadPolicies(config.policies, config.baseDir));
    const claims: Record<string, unknown> = { sub: o.sub, groups: o.groups };
    for (const c of o.claim) {
      const i = c.indexOf('=');
      if (i > 0) claims[c.slice(0, i)] = c.slice(i + 1);
    }
    const identity: Identity = { issuer: o.issuer, subject: o.sub, groups: o.groups, scopes: [], expiresAt: Date.now() + 3600_000, claims, ...(o.clientId ? { clientId: o.clientId } : {}) };
    let cmd: GatehouseCommand;
    if (o.sql !== undefined) {
      await initClassifier();
      cmd = { kind: 'sql', dialect: 'postgres', text: o.sql, statements: [...classifyPostgres(o.sql)] };
    } else if (o.k8s !== undefined) {
      const a: Record<string, string> = {};
      for (const kv of o.k8s.split(',')) {
        const i = kv.indexOf('=');
        if (i > 0) a[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
      }
      cmd = { kind: 'k8s', verb: a.verb ?? 'get', group: a.group ?? '', resource: a.resource ?? '', ...(a.subresource ? { subresource: a.subresource } : {}), ...(a.namespace ? { namespace: a.namespace } : {}), ...(a.name ? { name: a.name } : {}) };
    } else if (o.ssh !== undefined) {
      cmd = { kind: 'ssh', channel: 'exec', command: o.ssh };
    } else {
      throw new Error('give one of --sql, --k8s or --ssh');
    }
    const at = o.at ? new Date(o.at) : new Date();
    if (Number.isNaN(at.getTime())) throw new Error(`invalid --at ${o.at}`);
    process.stdout.write(`${formatExplanation(engine.explain(identity, o.connection, cmd, at))}\n`);
  });

const audit = program.command('audit').description('the hash-chained audit log');

audit
  .command('verify')
  .description('verify the audit chain and its signed checkpoints; reports the first broken link')
  .requiredOption('-c, --config <file>', 'gatehouse.yaml')
  .option('--public-key <file>', 'Ed25519 public key (PEM) the checkpoints were signed with')
  .action(async (o: { config: string; publicKey?: string }) => {
    const config = await loadConfig(o.config);
    const store = await openStore(config.store.kind === 'sqlite' ? `sqlite:${config.store.path}` : config.store.url);
    try {
      let publicKey: string | undefined;
      if (o.publicKey) publicKey = await readFile(o.publicKey, 'utf8');
      else if (config.audit.signingKey) publicKey = await readFile(config.audit.signingKey, 'utf8');
      const r = await verifyAudit(store, publicKey ? { publicKey } : {});
      if (r.ok) process.stdout.write(`ok: ${r.events} events, ${r.checkpoints} checkpoints verified\n`);
      else {
        process.stdout.write(`BROKEN at event ${r.firstBroken!.seq}: ${r.firstBroken!.reason} (${r.events} events before it verified)\n`);
        process.exitCode = 1;
      }
    } finally {
      await store.close();
    }
  });

registerApiCommands(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`gatehouse: ${isGatehouseError(e) ? e.message : e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
