/**
 * Globs. Name globs (`prod-*`, `*.card_number`, `*@example.com`) match whole strings: `*` is any run
 * of characters, `?` one character. File globs (`policies/**\/*.yaml`) match paths segment by
 * segment: `*` and `?` stay inside one segment, `**` is any number of directories.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';

/** True when `pattern` contains a wildcard. */
export function hasGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

function escape(s: string): string {
  return s.replace(/[.+^${}()|[\]\\]/g, '\\$&');
}

/** Regular-expression source for one name glob (no anchors). */
export function globSource(pattern: string, segmentChar?: string): string {
  const any = segmentChar === undefined ? '[\\s\\S]' : `[^${escape(segmentChar)}]`;
  let out = '';
  for (const ch of pattern) out += ch === '*' ? `${any}*` : ch === '?' ? any : escape(ch);
  return out;
}

/** A compiled set of name globs: `test(s)` is true when any pattern matches all of `s`. */
export interface GlobSet {
  readonly patterns: readonly string[];
  /** True when the set matches everything (`*`). */
  readonly all: boolean;
  test(s: string): boolean;
}

/** Compiles name globs into one matcher: literal patterns go in a `Set`, the rest in one regular expression. */
export function compileGlobs(patterns: readonly string[], options: { ignoreCase?: boolean } = {}): GlobSet {
  const ignoreCase = options.ignoreCase === true;
  const norm = (s: string): string => (ignoreCase ? s.toLowerCase() : s);
  const exact = new Set<string>();
  const wild: string[] = [];
  for (const p of patterns) {
    if (hasGlob(p)) wild.push(globSource(norm(p)));
    else exact.add(norm(p));
  }
  const all = patterns.includes('*');
  const re = wild.length === 0 ? undefined : new RegExp(`^(?:${wild.join('|')})$`);
  const test = all
    ? (): boolean => true
    : re === undefined
      ? (s: string): boolean => exact.has(norm(s))
      : (s: string): boolean => {
          const n = norm(s);
          return exact.has(n) || re.test(n);
        };
  return { patterns, all, test };
}

/**
 * Files (not directories) matching a file glob, resolved against `baseDir`, sorted. A pattern without
 * wildcards names one file and yields it only if it exists. Dot-files match only patterns whose
 * segment starts with a dot.
 */
export async function globFiles(pattern: string, baseDir: string): Promise<string[]> {
  const abs = isAbsolute(pattern) ? pattern : resolve(baseDir, pattern);
  const parts = abs.split('/').filter((p) => p !== '' && p !== '.');
  let root = '/';
  let i = 0;
  while (i < parts.length && !hasGlob(parts[i] ?? '')) root = join(root, parts[i++] ?? '');
  const rest = parts.slice(i);
  const found = new Set<string>();
  if (rest.length === 0) {
    if (await isFile(root)) found.add(root);
  } else {
    await walk(root, rest, found);
  }
  return [...found].sort();
}

async function walk(dir: string, segs: readonly string[], out: Set<string>): Promise<void> {
  const [seg, ...rest] = segs;
  if (seg === undefined) return;
  if (seg === '**') {
    if (rest.length === 0) return walk(dir, ['*'], out).then(() => walkDirs(dir, (d) => walk(d, ['*'], out)));
    await walk(dir, rest, out);
    await walkDirs(dir, (d) => walk(d, rest, out));
    return;
  }
  if (seg === '..' || !hasGlob(seg)) {
    const next = join(dir, seg);
    if (rest.length === 0) {
      if (await isFile(next)) out.add(next);
    } else {
      await walk(next, rest, out);
    }
    return;
  }
  const re = new RegExp(`^${globSource(seg, '/')}$`);
  for (const e of await entries(dir)) {
    if (e.name.startsWith('.') && !seg.startsWith('.')) continue;
    if (!re.test(e.name)) continue;
    const next = join(dir, e.name);
    if (rest.length === 0) {
      if (e.isFile() || (e.isSymbolicLink() && (await isFile(next)))) out.add(next);
    } else if (e.isDirectory() || e.isSymbolicLink()) {
      await walk(next, rest, out);
    }
  }
}

/** Calls `fn` for every directory below `dir` (not `dir` itself), depth first, skipping dot-directories. */
async function walkDirs(dir: string, fn: (d: string) => Promise<void>, depth = 0): Promise<void> {
  if (depth > 32) return;
  for (const e of await entries(dir)) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const d = join(dir, e.name);
    await fn(d);
    await walkDirs(d, fn, depth + 1);
  }
}

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}
