/**
 * Micro-benchmarks of the PostgreSQL engine's socket-free parts: SQL classification (parse and
 * cache hit) and the wire parsers. Run: `node --import tsx bench/pg-codec.ts`. Prints medians.
 */
import { classifyPostgres, clearClassifierCache, initClassifier } from '../src/engines/postgres/classify.js';
import { BackendParser, FrontendParser, backend, decodeDataRow, frontend, serializeDataRow } from '../src/engines/postgres/protocol.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median time per call in microseconds over `rounds` rounds of `n` calls. */
function measure(label: string, n: number, fn: (i: number) => void, rounds = 15): number {
  for (let i = 0; i < n; i++) fn(i);
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    per.push(Number(process.hrtime.bigint() - t) / 1000 / n);
  }
  const m = median(per);
  console.log(`${label.padEnd(58)} ${m.toFixed(2).padStart(9)} µs`);
  return m;
}

const t0 = performance.now();
await initClassifier();
console.log(`${'initClassifier() (WASM load)'.padEnd(58)} ${(performance.now() - t0).toFixed(1).padStart(9)} ms`);

const join =
  'SELECT u.id, u.email, o.total FROM public.users u JOIN orders o ON o.user_id = u.id LEFT JOIN payments p ON p.order_id = o.id WHERE u.created_at > now() - interval \'7 days\' AND o.status = $1 ORDER BY o.total DESC LIMIT 50';

measure('classify join query, uncached (parse + walk)', 200, (i) => {
  clearClassifierCache();
  classifyPostgres(join + (i % 2 ? ' ' : ''));
});
classifyPostgres(join);
measure('classify join query, cache hit', 100000, () => {
  classifyPostgres(join);
});
measure('classify pgbench -S query, uncached', 200, () => {
  clearClassifierCache();
  classifyPostgres('SELECT abalance FROM pgbench_accounts WHERE aid = $1;');
});

const bindExec = Buffer.concat([frontend.bind('', 'S_1', ['12345']), frontend.describe('P'), frontend.execute(), frontend.sync()]);
const fp = new FrontendParser({ typed: true });
measure('FrontendParser: Bind+Describe+Execute+Sync (one chunk)', 100000, () => {
  fp.push(bindExec);
});

const row = backend.dataRow(['12345', 'alice@example.com', '4111111111111111', null, '2026-11-25 10:00:00+00']);
const rows = Buffer.concat(Array.from({ length: 100 }, () => row));
const bp = new BackendParser();
measure('BackendParser: 100 DataRows of 5 columns (one chunk)', 5000, () => {
  bp.push(rows);
});
const [dr] = new BackendParser().push(row);
measure('decodeDataRow + serializeDataRow (5 columns, 1 masked)', 100000, () => {
  const v = decodeDataRow(dr!);
  v[2] = Buffer.from('************1111');
  serializeDataRow(v);
});
