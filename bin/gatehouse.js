#!/usr/bin/env node
// The gatehouse command. Runs the compiled CLI (npm ci builds it through the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  console.error('gatehouse: dist/ is missing; run `npm run build` (npm ci runs it for you)');
  process.exit(1);
}
await import(compiled.href);
