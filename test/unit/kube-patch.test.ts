/**
 * The stand-in's patch flavours: RFC 7386 merge patch, RFC 6902 JSON patch and the strategic merge
 * patch kubectl apply sends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PatchError, jsonPatch, mergePatch, strategicMergePatch, type Json } from '../support/kube-patch.js';

test('merge patch (RFC 7386 appendix A)', () => {
  const cases: [Json, Json, Json][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  ];
  for (const [doc, patch, want] of cases) assert.deepEqual(mergePatch(doc, patch), want, JSON.stringify(patch));
});

test('JSON patch (RFC 6902)', () => {
  assert.deepEqual(jsonPatch({ foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }]), { foo: ['bar', 'qux', 'baz'] });
  assert.deepEqual(jsonPatch({ foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: 'x' }]), { foo: ['bar', 'x'] });
  assert.deepEqual(jsonPatch({ baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }]), { foo: 'bar' });
  assert.deepEqual(jsonPatch({ baz: 'qux' }, [{ op: 'replace', path: '/baz', value: 'boo' }]), { baz: 'boo' });
  assert.deepEqual(jsonPatch({ foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } }, [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }]), { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } });
  assert.deepEqual(jsonPatch({ 'a/b': { '~': 1 } }, [{ op: 'copy', from: '/a~1b/~0', path: '/c' }]), { 'a/b': { '~': 1 }, c: 1 });
  assert.throws(() => jsonPatch({ baz: 'qux' }, [{ op: 'test', path: '/baz', value: 'bar' }]), PatchError);
  assert.throws(() => jsonPatch({ a: 1 }, [{ op: 'remove', path: '/b' }]), PatchError);
  assert.throws(() => jsonPatch({ a: [1] }, [{ op: 'replace', path: '/a/1', value: 2 }]), PatchError);
  assert.throws(() => jsonPatch({}, { op: 'add' }), PatchError);
});

test('strategic merge patch: containers by name, directives, merged primitive lists', () => {
  const pod: Json = {
    metadata: { finalizers: ['a'], labels: { x: '1' } },
    spec: { containers: [{ name: 'app', image: 'v1', ports: [{ containerPort: 80 }], env: [{ name: 'A', value: '1' }] }, { name: 'side', image: 's1' }], volumes: [{ name: 'v', emptyDir: {} }] },
  };
  // what kubectl apply sends after changing one image
  const applied = strategicMergePatch(pod, { spec: { '$setElementOrder/containers': [{ name: 'side' }, { name: 'app' }], containers: [{ name: 'app', image: 'v2' }] } } as Json) as { spec: { containers: { name: string; image: string; ports?: unknown }[] } };
  assert.deepEqual(applied.spec.containers.map((c) => `${c.name}=${c.image}`), ['side=s1', 'app=v2']);
  assert.deepEqual(applied.spec.containers[1]?.ports, [{ containerPort: 80 }]);
  const deleted = strategicMergePatch(pod, { spec: { containers: [{ name: 'side', $patch: 'delete' }] } }) as { spec: { containers: { name: string }[] } };
  assert.deepEqual(deleted.spec.containers.map((c) => c.name), ['app']);
  const replaced = strategicMergePatch(pod, { spec: { volumes: [{ $patch: 'replace' }, { name: 'w', secret: { secretName: 's' } }] } }) as { spec: { volumes: unknown[] } };
  assert.deepEqual(replaced.spec.volumes, [{ name: 'w', secret: { secretName: 's' } }]);
  const fin = strategicMergePatch(pod, { metadata: { finalizers: ['b', 'a'] } }) as { metadata: { finalizers: string[] } };
  assert.deepEqual(fin.metadata.finalizers, ['a', 'b']);
  const unfin = strategicMergePatch(pod, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } }) as { metadata: { finalizers: string[] } };
  assert.deepEqual(unfin.metadata.finalizers, []);
  const mapReplace = strategicMergePatch(pod, { metadata: { labels: { $patch: 'replace', y: '2' } } }) as { metadata: { labels: unknown } };
  assert.deepEqual(mapReplace.metadata.labels, { y: '2' });
  const retained = strategicMergePatch({ strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } }, { strategy: { $retainKeys: ['type'], type: 'Recreate' } });
  assert.deepEqual(retained, { strategy: { type: 'Recreate' } });
  const env = strategicMergePatch(pod, { spec: { containers: [{ name: 'app', env: [{ name: 'B', value: '2' }, { name: 'A', $patch: 'delete' }] }] } }) as { spec: { containers: { env: unknown }[] } };
  assert.deepEqual(env.spec.containers[0]?.env, [{ name: 'B', value: '2' }]);
  const svcPorts = strategicMergePatch({ ports: [{ port: 80, name: 'http' }, { port: 443, name: 'https' }] }, { ports: [{ port: 443, targetPort: 8443 }] });
  assert.deepEqual(svcPorts, { ports: [{ port: 80, name: 'http' }, { port: 443, name: 'https', targetPort: 8443 }] });
  assert.deepEqual(strategicMergePatch({ args: ['a', 'b'] }, { args: ['c'] }), { args: ['c'] }, 'lists without a merge key are replaced');
});
