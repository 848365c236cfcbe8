/**
 * Request attributes as the API server's RequestInfoFactory derives them: the upstream table
 * (k8s.io/apiserver/pkg/endpoints/request/requestinfo_test.go) plus exec/attach/logs, selectors,
 * percent-decoding and the Command mapping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDiscoveryRequest, isLongRunning, parseGoQuery, parseRequestInfo, toK8sCommand } from '../../src/engines/kubernetes/request-info.js';
import { isGatehouseError } from '../../src/core/errors.js';
import { commandText } from '../../src/core/command.js';

type Row = [method: string, url: string, verb: string, prefix: string, group: string, version: string, ns: string, resource: string, sub: string, name: string, parts: string[]];

// TestGetAPIRequestInfo success cases, verbatim.
const UPSTREAM: Row[] = [
  ['GET', '/api/v1/namespaces', 'list', 'api', '', 'v1', '', 'namespaces', '', '', ['namespaces']],
  ['GET', '/api/v1/namespaces/other', 'get', 'api', '', 'v1', 'other', 'namespaces', '', 'other', ['namespaces', 'other']],
  ['GET', '/api/v1/namespaces/other/pods', 'list', 'api', '', 'v1', 'other', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/namespaces/other/pods/foo', 'get', 'api', '', 'v1', 'other', 'pods', '', 'foo', ['pods', 'foo']],
  ['HEAD', '/api/v1/namespaces/other/pods/foo', 'get', 'api', '', 'v1', 'other', 'pods', '', 'foo', ['pods', 'foo']],
  ['GET', '/api/v1/pods', 'list', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['HEAD', '/api/v1/pods', 'list', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/namespaces/other/pods/foo', 'get', 'api', '', 'v1', 'other', 'pods', '', 'foo', ['pods', 'foo']],
  ['GET', '/api/v1/namespaces/other/pods', 'list', 'api', '', 'v1', 'other', 'pods', '', '', ['pods']],
  ['PATCH', '/api/v1/namespaces/new-namespace', 'patch', 'api', '', 'v1', 'new-namespace', 'namespaces', '', 'new-namespace', ['namespaces', 'new-namespace']],
  // special verbs
  ['GET', '/api/v1/proxy/namespaces/other/pods/foo', 'proxy', 'api', '', 'v1', 'other', 'pods', '', 'foo', ['pods', 'foo']],
  ['GET', '/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource', 'proxy', 'api', '', 'v1', 'other', 'pods', '', 'foo', ['pods', 'foo', 'subpath', 'not', 'a', 'subresource']],
  ['GET', '/api/v1/watch/pods', 'watch', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/pods?watch=true', 'watch', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/pods?watch=false', 'list', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/watch/namespaces/other/pods', 'watch', 'api', '', 'v1', 'other', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/namespaces/other/pods?watch=1', 'watch', 'api', '', 'v1', 'other', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/namespaces/other/pods?watch=0', 'list', 'api', '', 'v1', 'other', 'pods', '', '', ['pods']],
  // subresource identification
  ['GET', '/api/v1/namespaces/other/pods/foo/status', 'get', 'api', '', 'v1', 'other', 'pods', 'status', 'foo', ['pods', 'foo', 'status']],
  ['GET', '/api/v1/namespaces/other/pods/foo/proxy/subpath', 'get', 'api', '', 'v1', 'other', 'pods', 'proxy', 'foo', ['pods', 'foo', 'proxy', 'subpath']],
  ['PUT', '/api/v1/namespaces/other/finalize', 'update', 'api', '', 'v1', 'other', 'namespaces', 'finalize', 'other', ['namespaces', 'other', 'finalize']],
  ['PUT', '/api/v1/namespaces/other/status', 'update', 'api', '', 'v1', 'other', 'namespaces', 'status', 'other', ['namespaces', 'other', 'status']],
  // verb identification
  ['PATCH', '/api/v1/namespaces/other/pods/foo', 'patch', 'api', '', 'v1', 'other', 'pods', '', 'foo', ['pods', 'foo']],
  ['DELETE', '/api/v1/namespaces/other/pods/foo', 'delete', 'api', '', 'v1', 'other', 'pods', '', 'foo', ['pods', 'foo']],
  ['POST', '/api/v1/namespaces/other/pods', 'create', 'api', '', 'v1', 'other', 'pods', '', '', ['pods']],
  // deletecollection verb identification
  ['DELETE', '/api/v1/nodes', 'deletecollection', 'api', '', 'v1', '', 'nodes', '', '', ['nodes']],
  ['DELETE', '/api/v1/namespaces', 'deletecollection', 'api', '', 'v1', '', 'namespaces', '', '', ['namespaces']],
  ['DELETE', '/api/v1/namespaces/other/pods', 'deletecollection', 'api', '', 'v1', 'other', 'pods', '', '', ['pods']],
  ['DELETE', '/apis/extensions/v1/namespaces/other/pods', 'deletecollection', 'apis', 'extensions', 'v1', 'other', 'pods', '', '', ['pods']],
  // api group identification
  ['POST', '/apis/extensions/v1/namespaces/other/pods', 'create', 'apis', 'extensions', 'v1', 'other', 'pods', '', '', ['pods']],
  // api version identification
  ['POST', '/apis/extensions/v1beta3/namespaces/other/pods', 'create', 'apis', 'extensions', 'v1beta3', 'other', 'pods', '', '', ['pods']],
];

// Streaming subresources and other shapes kubectl sends.
const MORE: Row[] = [
  ['POST', '/api/v1/namespaces/prod/pods/web-0/exec?command=sh&command=-c&command=id&stdout=true', 'create', 'api', '', 'v1', 'prod', 'pods', 'exec', 'web-0', ['pods', 'web-0', 'exec']],
  ['GET', '/api/v1/namespaces/prod/pods/web-0/exec?command=id&stdout=true', 'get', 'api', '', 'v1', 'prod', 'pods', 'exec', 'web-0', ['pods', 'web-0', 'exec']],
  ['GET', '/api/v1/namespaces/prod/pods/web-0/attach?stdin=true', 'get', 'api', '', 'v1', 'prod', 'pods', 'attach', 'web-0', ['pods', 'web-0', 'attach']],
  ['POST', '/api/v1/namespaces/prod/pods/web-0/portforward?ports=8080', 'create', 'api', '', 'v1', 'prod', 'pods', 'portforward', 'web-0', ['pods', 'web-0', 'portforward']],
  ['GET', '/api/v1/namespaces/prod/pods/web-0/log?follow=true&container=app', 'get', 'api', '', 'v1', 'prod', 'pods', 'log', 'web-0', ['pods', 'web-0', 'log']],
  ['POST', '/api/v1/namespaces/prod/pods/web-0/eviction', 'create', 'api', '', 'v1', 'prod', 'pods', 'eviction', 'web-0', ['pods', 'web-0', 'eviction']],
  ['PATCH', '/apis/apps/v1/namespaces/prod/deployments/web/scale', 'patch', 'apis', 'apps', 'v1', 'prod', 'deployments', 'scale', 'web', ['deployments', 'web', 'scale']],
  ['PUT', '/apis/apps/v1/namespaces/prod/deployments/web/status', 'update', 'apis', 'apps', 'v1', 'prod', 'deployments', 'status', 'web', ['deployments', 'web', 'status']],
  ['GET', '/api/v1/namespaces/prod/services/web:80/proxy/healthz', 'get', 'api', '', 'v1', 'prod', 'services', 'proxy', 'web:80', ['services', 'web:80', 'proxy', 'healthz']],
  ['GET', '/api/v1/nodes/n1', 'get', 'api', '', 'v1', '', 'nodes', '', 'n1', ['nodes', 'n1']],
  ['GET', '/apis/rbac.authorization.k8s.io/v1/clusterroles', 'list', 'apis', 'rbac.authorization.k8s.io', 'v1', '', 'clusterroles', '', '', ['clusterroles']],
  ['POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', 'create', 'apis', 'authorization.k8s.io', 'v1', '', 'selfsubjectaccessreviews', '', '', ['selfsubjectaccessreviews']],
  ['GET', '/apis/apps/v1/deployments?watch=true&allowWatchBookmarks=true', 'watch', 'apis', 'apps', 'v1', '', 'deployments', '', '', ['deployments']],
  ['OPTIONS', '/api/v1/namespaces/other/pods', '', 'api', '', 'v1', 'other', 'pods', '', '', ['pods']],
  // a trailing slash is trimmed, as strings.Trim does
  ['GET', '/api/v1/namespaces/other/pods/', 'list', 'api', '', 'v1', 'other', 'pods', '', '', ['pods']],
  // the path is percent-decoded before it is split (Go's URL.Path)
  ['GET', '/api/v1/namespaces/%6F%74her/pods/foo', 'get', 'api', '', 'v1', 'other', 'pods', '', 'foo', ['pods', 'foo']],
  // the query does not change a named get; a HEAD on the collection is a list
  ['GET', '/api/v1/namespaces/other/pods/foo?watch=true', 'get', 'api', '', 'v1', 'other', 'pods', '', 'foo', ['pods', 'foo']],
  ['GET', '/api/v1/pods?watch=TRUE', 'watch', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/pods?watch=FALSE', 'list', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/pods?watch=', 'watch', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/pods?watch', 'watch', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/pods?watch=false&watch=true', 'list', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  ['GET', '/api/v1/pods?watch;x=1&watch=1', 'watch', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
];

for (const [method, url, verb, prefix, group, version, ns, resource, sub, name, parts] of [...UPSTREAM, ...MORE]) {
  test(`${method} ${url}`, () => {
    const i = parseRequestInfo(method, url);
    assert.equal(i.isResourceRequest, true);
    assert.deepEqual(
      { verb: i.verb, prefix: i.apiPrefix, group: i.apiGroup, version: i.apiVersion, ns: i.namespace, resource: i.resource, sub: i.subresource, name: i.name, parts: i.parts },
      { verb, prefix, group, version, ns, resource, sub, name, parts },
    );
  });
}

// Targets strict mode refuses, read as upstream reads them when strict is off.
const LENIENT: Row[] = [
  ['GET', '//api/v1/pods//', 'list', 'api', '', 'v1', '', 'pods', '', '', ['pods']],
  // %2F separates, as in Go's decoded URL.Path
  ['GET', '/api/v1/namespaces/other/pods/a%2Fb', 'get', 'api', '', 'v1', 'other', 'pods', 'b', 'a', ['pods', 'a', 'b']],
  // no dot-segment resolution: `..` is a name
  ['GET', '/api/v1/namespaces/other/pods/../secrets/db', 'get', 'api', '', 'v1', 'other', 'pods', 'secrets', '..', ['pods', '..', 'secrets', 'db']],
  ['GET', '/api/v1/namespaces/other//pods', 'get', 'api', '', 'v1', 'other', '', '', 'pods', ['', 'pods']],
];

for (const [method, url, verb, prefix, group, version, ns, resource, sub, name, parts] of LENIENT) {
  test(`lenient ${method} ${url}`, () => {
    const i = parseRequestInfo(method, url, { strict: false });
    assert.deepEqual(
      { verb: i.verb, prefix: i.apiPrefix, group: i.apiGroup, version: i.apiVersion, ns: i.namespace, resource: i.resource, sub: i.subresource, name: i.name, parts: i.parts },
      { verb, prefix, group, version, ns, resource, sub, name, parts },
    );
    assert.throws(() => parseRequestInfo(method, url), (e) => isGatehouseError(e, 'ERR_BAD_REQUEST'), 'strict mode refuses it');
  });
}

test('strict mode refuses paths other URL parsers rewrite (WHATWG resolves dot segments, reads \\ as /)', () => {
  const whatwg = (t: string): string => new URL(t, 'https://upstream.example').pathname;
  assert.equal(whatwg('/api/v1/namespaces/x/pods/%2e%2e/secrets/db'), '/api/v1/namespaces/x/secrets/db');
  for (const t of ['/api/v1/namespaces/x/pods/%2e%2e/secrets/db', '/api/v1/namespaces/x/pods/./p', '/api/v1/namespaces/x/pods\\..\\secrets', '/api/v1/namespaces/x/pods/a%5Cb', '//evil.example/api/v1/pods', '/api/v1/namespaces/x/pods/a%2fb', '/api/v1//pods']) {
    assert.throws(() => parseRequestInfo('GET', t), (e) => isGatehouseError(e, 'ERR_BAD_REQUEST'), t);
  }
  assert.equal(parseRequestInfo('GET', '/api/v1/namespaces/x/services/https:web:443/proxy/').subresource, 'proxy');
  assert.equal(parseRequestInfo('GET', '/api/v1/namespaces/x/pods/p.1').name, 'p.1');
});

test('non-resource requests (upstream error cases and TestGetNonAPIRequestInfo)', () => {
  const nonResource = ['/', '/api/version/', '/apis/group/version/', '/badprefix/version/resource', '/apis/version/resource', '/not-api/version/resource',
    '/apis/extensions/v1beta1', '/apis/extensions/v1beta1/', '/api/version', '/api', '', '/healthz', '/livez', '/readyz', '/version', '/openapi/v2', '/openapi/v3/apis/apps/v1', '/apis', '/apis/apps', '/apis/apps/v1', '/api/v1', '/metrics', '/logs/kube-apiserver.log'];
  for (const url of nonResource) {
    const i = parseRequestInfo('GET', url === '' ? '/' : url);
    assert.equal(i.isResourceRequest, false, url);
    assert.equal(i.verb, 'get', url);
    assert.equal(i.resource, '', url);
  }
  const resource = ['/api/version/resource', '/apis/group/version/resource/name/subresource', '/api/version/resource/name/subresource', '/apis/batch/v1/job', '/apis/batch/v1/job/foo', '/apis/batch/v1/job/foo/scale'];
  for (const url of resource) assert.equal(parseRequestInfo('GET', url).isResourceRequest, true, url);
  assert.equal(parseRequestInfo('POST', '/api').verb, 'post');
  assert.equal(parseRequestInfo('HEAD', '/version').verb, 'head');
});

test('TestFieldSelectorParsing: metadata.name in a list or watch names the object', () => {
  const cases: [url: string, name: string, verb: string][] = [
    ['/apis/group/version/resource', '', 'list'],
    ['/apis/group/version/resource?fieldSelector=metadata.name=name1', 'name1', 'list'],
    ['/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1', 'name1', 'watch'],
    ['/apis/group/version/resource?fieldSelector=foo=bar', '', 'list'],
    ['/apis/group/version/resource?fieldSelector=metadata.name=name1,foo', '', 'list'],
    ['/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true', '', 'watch'],
    ['/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false', '', 'list'],
    // and the finer points of fields.ParseSelector / RequiresExactMatch
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3D%3Dweb-0', 'web-0', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name!%3Dweb-0', '', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=status.phase%3DRunning,metadata.name%3Dweb-0', 'web-0', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Db,metadata.name%3Da', 'a', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Da%5C%2Cb', 'a,b', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Da%3Db', '', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Da%5Cb', '', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3D..', '', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Da%25b', '', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Da/b', '', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3D', '', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name=x&fieldSelector=metadata.name=y', 'x', 'list'],
    // other list options that fail to decode drop the name (upstream logs and falls back)
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dx&limit=abc', '', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dx&timeoutSeconds=1.5&watch=1', '', 'watch'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dx&labelSelector=a%20in%20(', '', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dx&labelSelector=app%3Dweb,tier+in+(a,b),!old', 'x', 'list'],
    ['/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dx&limit=500&timeoutSeconds=-3', 'x', 'list'],
    // a watch by path prefix is never a "get", so its selector names nothing
    ['/api/v1/watch/namespaces/ns/pods?fieldSelector=metadata.name%3Dx', '', 'watch'],
  ];
  for (const [url, name, verb] of cases) {
    const i = parseRequestInfo('GET', url);
    assert.deepEqual({ name: i.name, verb: i.verb }, { name, verb }, url);
  }
});

test('selectors are reported for list, watch and deletecollection (authorization with selectors)', () => {
  const l = parseRequestInfo('GET', '/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn1');
  assert.equal(l.labelSelector, 'app=web');
  assert.equal(l.fieldSelector, 'spec.nodeName=n1');
  const dc = parseRequestInfo('DELETE', '/api/v1/namespaces/ns/pods?labelSelector=app%3Dweb');
  assert.equal(dc.verb, 'deletecollection');
  assert.equal(dc.labelSelector, 'app=web');
  const viaPath = parseRequestInfo('GET', '/api/v1/watch/namespaces/ns/pods?labelSelector=app%3Dweb');
  assert.equal(viaPath.labelSelector, undefined);
  const get = parseRequestInfo('GET', '/api/v1/namespaces/ns/pods/p?labelSelector=app%3Dweb');
  assert.equal(get.labelSelector, undefined);
});

test('unparseable requests are refused the way Go and the request-info filter refuse them', () => {
  for (const url of ['/api/v1/namespaces/a%zz/pods', '/api/v1/namespaces/a%2/pods', '/api/v1/pods\x00', 'api/v1/pods', '/api/v1/namespaces/%ff/pods']) {
    assert.throws(() => parseRequestInfo('GET', url), (e) => isGatehouseError(e, 'ERR_BAD_REQUEST'), JSON.stringify(url));
  }
  // a special verb without anything after it: the upstream filter answers 500
  assert.throws(() => parseRequestInfo('GET', '/api/v1/watch'), (e) => isGatehouseError(e, 'ERR_BAD_REQUEST'));
  assert.throws(() => parseRequestInfo('GET', '/apis/apps/v1/proxy/'), (e) => isGatehouseError(e, 'ERR_BAD_REQUEST'));
  // a bad escape in the query only drops that pair
  assert.equal(parseRequestInfo('GET', '/api/v1/pods?watch=%zz').verb, 'list');
  // absolute-form targets are read like origin-form
  assert.equal(parseRequestInfo('GET', 'https://kube.example:6443/api/v1/namespaces/x/pods/y').name, 'y');
});

test('Go query parsing: + is a space, semicolons drop the pair, repeated keys keep order', () => {
  const q = parseGoQuery('a=1+2&b=%2B&a=3&c;d=4&e&=f&g=%G1');
  assert.deepEqual([...q.entries()], [['a', ['1 2', '3']], ['b', ['+']], ['e', ['']], ['', ['f']]]);
});

test('toK8sCommand keeps the verb the API server reports and exposes the subresource', () => {
  const exec = toK8sCommand(parseRequestInfo('GET', '/api/v1/namespaces/prod/pods/web-0/exec?command=id'));
  assert.deepEqual(exec, { kind: 'k8s', verb: 'get', group: '', resource: 'pods', subresource: 'exec', namespace: 'prod', name: 'web-0', path: '/api/v1/namespaces/prod/pods/web-0/exec' });
  assert.equal(commandText(exec), 'get pods/exec -n prod web-0');
  const spdy = toK8sCommand(parseRequestInfo('POST', '/api/v1/namespaces/prod/pods/web-0/exec?command=id'));
  assert.equal(spdy.verb, 'create');
  assert.equal(spdy.subresource, 'exec');
  const list = toK8sCommand(parseRequestInfo('GET', '/apis/apps/v1/deployments'));
  assert.deepEqual(list, { kind: 'k8s', verb: 'list', group: 'apps', resource: 'deployments', path: '/apis/apps/v1/deployments' });
  assert.equal(commandText(list), 'list deployments.apps');
  const version = toK8sCommand(parseRequestInfo('GET', '/version?timeout=32s'));
  assert.deepEqual(version, { kind: 'k8s', verb: 'get', group: '', resource: '', path: '/version' });
  const ns = toK8sCommand(parseRequestInfo('DELETE', '/api/v1/namespaces/prod'));
  assert.deepEqual(ns, { kind: 'k8s', verb: 'delete', group: '', resource: 'namespaces', namespace: 'prod', name: 'prod', path: '/api/v1/namespaces/prod' });
});

test('discovery and long-running classification', () => {
  for (const p of ['/api', '/api/v1', '/apis', '/apis/apps', '/apis/apps/v1', '/version', '/openapi/v2', '/openapi/v3', '/openapi/v3/api/v1']) {
    assert.equal(isDiscoveryRequest(parseRequestInfo('GET', p)), true, p);
  }
  for (const [m, p] of [['GET', '/healthz'], ['POST', '/api'], ['GET', '/api/v1/pods'], ['GET', '/metrics']] as const) {
    assert.equal(isDiscoveryRequest(parseRequestInfo(m, p)), false, p);
  }
  for (const p of ['/api/v1/pods?watch=1', '/api/v1/watch/pods', '/api/v1/namespaces/a/pods/b/exec', '/api/v1/namespaces/a/pods/b/log', '/api/v1/namespaces/a/pods/b/portforward', '/api/v1/proxy/nodes/n1']) {
    assert.equal(isLongRunning(parseRequestInfo('GET', p)), true, p);
  }
  for (const p of ['/api/v1/pods', '/api/v1/namespaces/a/pods/b', '/version']) assert.equal(isLongRunning(parseRequestInfo('GET', p)), false, p);
});
