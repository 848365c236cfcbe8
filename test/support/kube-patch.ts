/**
 * The three PATCH flavours the Kubernetes API server accepts, for the test stand-in:
 * JSON merge patch (RFC 7386), JSON patch (RFC 6902) and a strategic merge patch that knows the
 * merge keys of the built-in types kubectl patches (containers by name, ports by number, …) and the
 * `$patch`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…` and `$retainKeys` directives.
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export class PatchError extends Error {
  override readonly name = 'PatchError';
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

/** RFC 7386. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// RFC 6902

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: Json, tokens: string[]): { parent: Json; key: string } {
  let cur: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[index(cur, t, false)] ?? null;
    else if (isObj(cur) && Object.prototype.hasOwnProperty.call(cur, t)) cur = cur[t] ?? null;
    else throw new PatchError(`doc is missing path: /${tokens.join('/')}`);
  }
  return { parent: cur, key: tokens[tokens.length - 1] ?? '' };
}

function index(arr: Json[], t: string, forAdd: boolean): number {
  if (forAdd && t === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(t)) throw new PatchError(`invalid array index ${t}`);
  const i = Number(t);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new PatchError(`array index ${i} out of bounds`);
  return i;
}

function getAt(doc: Json, path: string): Json {
  let cur: Json = doc;
  for (const t of pointer(path)) {
    if (Array.isArray(cur)) cur = cur[index(cur, t, false)] ?? null;
    else if (isObj(cur) && Object.prototype.hasOwnProperty.call(cur, t)) cur = cur[t] ?? null;
    else throw new PatchError(`doc is missing path: ${path}`);
  }
  return cur;
}

function addAt(doc: Json, path: string, value: Json): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return clone(value);
  const { parent, key } = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(index(parent, key, true), 0, clone(value));
  else if (isObj(parent)) parent[key] = clone(value);
  else throw new PatchError(`doc is missing path: ${path}`);
  return doc;
}

function removeAt(doc: Json, path: string): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) throw new PatchError('cannot remove the whole document');
  const { parent, key } = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(index(parent, key, false), 1);
  else if (isObj(parent) && Object.prototype.hasOwnProperty.call(parent, key)) delete parent[key];
  else throw new PatchError(`unable to remove nonexistent key: ${key}: missing value`);
  return doc;
}

function deepEqual(a: Json, b: Json): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObj(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k] ?? null)]));
  return v;
}

/** RFC 6902: add, remove, replace, move, copy, test. */
export function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch is an array of operations');
  let out = clone(doc);
  for (const op of ops) {
    if (!isObj(op) || typeof op.op !== 'string' || typeof op.path !== 'string') throw new PatchError('each operation needs "op" and "path"');
    const path = op.path;
    switch (op.op) {
      case 'add':
        if (!('value' in op)) throw new PatchError('add operation needs a value');
        out = addAt(out, path, op.value ?? null);
        break;
      case 'remove':
        out = removeAt(out, path);
        break;
      case 'replace':
        if (!('value' in op)) throw new PatchError('replace operation needs a value');
        getAt(out, path);
        out = pointer(path).length === 0 ? clone(op.value ?? null) : addAt(removeAt(out, path), path, op.value ?? null);
        break;
      case 'move':
      case 'copy': {
        if (typeof op.from !== 'string') throw new PatchError(`${op.op} operation needs "from"`);
        const v = clone(getAt(out, op.from));
        if (op.op === 'move') out = removeAt(out, op.from);
        out = addAt(out, path, v);
        break;
      }
      case 'test':
        if (!deepEqual(getAt(out, path), op.value ?? null)) throw new PatchError(`testing value ${path} failed`);
        break;
      default:
        throw new PatchError(`unexpected operation ${JSON.stringify(op.op)}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// strategic merge patch

/** `patchMergeKey` of list fields in the built-in types, by field name. */
const MERGE_KEYS: Record<string, string | ((items: Json[]) => string)> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  imagePullSecrets: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  hostAliases: 'ip',
  conditions: 'type',
  ownerReferences: 'uid',
  ports: (items) => (items.some((i) => isObj(i) && 'containerPort' in i) ? 'containerPort' : 'port'),
  resourceClaims: 'name',
};
/** Primitive lists with `patchStrategy: merge` (union instead of replace). */
const MERGED_PRIMITIVE_LISTS = new Set(['finalizers']);

function mergeKeyFor(field: string, a: Json[], b: Json[]): string | undefined {
  const k = MERGE_KEYS[field];
  if (k === undefined) return undefined;
  return typeof k === 'string' ? k : k([...a, ...b]);
}

function mergeList(field: string, original: Json[] | undefined, patch: Json[], order: Json[] | undefined): Json[] {
  const base = original ?? [];
  if (patch.some((p) => isObj(p) && p.$patch === 'replace')) return clone(patch.filter((p) => !(isObj(p) && p.$patch === 'replace')));
  const key = mergeKeyFor(field, base, patch);
  if (key === undefined) {
    if (MERGED_PRIMITIVE_LISTS.has(field)) return [...base, ...patch.filter((p) => !base.some((b) => deepEqual(b, p)))];
    return clone(patch);
  }
  const out = clone(base);
  for (const p of patch) {
    if (!isObj(p)) continue;
    const at = out.findIndex((o) => isObj(o) && deepEqual(o[key] ?? null, p[key] ?? null));
    if (p.$patch === 'delete') {
      if (at !== -1) out.splice(at, 1);
      continue;
    }
    if (at === -1) out.push(strategicMergePatch(undefined, p));
    else out[at] = strategicMergePatch(out[at], p);
  }
  if (order !== undefined) {
    const pos = (o: Json): number => order.findIndex((x) => isObj(x) && isObj(o) && deepEqual(x[key] ?? null, o[key] ?? null));
    const ordered = out.filter((o) => pos(o) !== -1).sort((a, b) => pos(a) - pos(b));
    return [...ordered, ...out.filter((o) => pos(o) === -1)];
  }
  return out;
}

/**
 * A strategic merge patch (`application/strategic-merge-patch+json`) for the built-in types: maps
 * merge as in a merge patch, lists with a known merge key merge element by element, other lists
 * are replaced; `$patch: replace|delete`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`
 * and `$retainKeys` are honoured.
 */
export function strategicMergePatch(original: Json | undefined, patch: Json): Json {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === 'delete') return null;
  const replace = patch.$patch === 'replace';
  const out: Obj = !replace && isObj(original) ? clone(original) : {};
  const orders: Record<string, Json[]> = {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$setElementOrder/') && Array.isArray(v)) orders[k.slice('$setElementOrder/'.length)] = v;
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.some((d) => deepEqual(d, x)));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    if (Array.isArray(v)) {
      const cur = out[k];
      out[k] = mergeList(k, Array.isArray(cur) ? cur : undefined, v, orders[k]);
      continue;
    }
    if (isObj(v)) {
      const merged = strategicMergePatch(out[k], v);
      if (merged === null) delete out[k];
      else out[k] = merged;
      continue;
    }
    out[k] = v;
  }
  for (const [field, order] of Object.entries(orders)) {
    const cur = out[field];
    if (Array.isArray(cur) && !(field in patch)) out[field] = mergeList(field, cur, [], order);
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys.filter((x): x is string => typeof x === 'string'));
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}
