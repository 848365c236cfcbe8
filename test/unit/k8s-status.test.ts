/**
 * Kubernetes Status objects shaped as apimachinery's apierrors builds them, and the mapping from
 * Gatehouse errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError, type GatehouseErrorCode } from '../../src/core/errors.js';
import {
  alreadyExistsStatus, authorizationForbiddenStatus, conflictStatus, execErrorStatus, execExitStatus, forbiddenMessage, forbiddenStatus, goQuote, invalidStatus,
  notFoundStatus, statusFromError, statusResponse, successStatus, tooManyRequestsStatus, unauthorizedStatus, watchErrorEvent,
} from '../../src/engines/kubernetes/status.js';

test('Forbidden: the wording kubectl prints after "Error from server (Forbidden):"', () => {
  assert.deepEqual(forbiddenStatus({ group: '', resource: 'pods', name: 'web-0' }, 'deleting pods in prod needs an approval'), {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
    message: 'pods "web-0" is forbidden: deleting pods in prod needs an approval',
    reason: 'Forbidden', details: { name: 'web-0', kind: 'pods' }, code: 403,
  });
  assert.equal(forbiddenStatus({ group: 'apps', resource: 'deployments' }, 'no').message, 'deployments.apps is forbidden: no');
  assert.deepEqual(forbiddenStatus({ group: 'apps', resource: 'deployments' }, 'no').details, { group: 'apps', kind: 'deployments' });
  assert.equal(forbiddenStatus({}, 'no').message, 'forbidden: no');
  assert.equal(forbiddenStatus({}, 'no').details, undefined);
});

test('the authorizer\'s own refusal text, namespaced, cluster-scoped and non-resource', () => {
  const base = { user: 'agent@example.com', isResourceRequest: true, apiGroup: '', resource: 'pods' };
  assert.equal(forbiddenMessage({ ...base, verb: 'get', subresource: 'exec', namespace: 'prod' }), 'User "agent@example.com" cannot get resource "pods/exec" in API group "" in the namespace "prod"');
  assert.equal(forbiddenMessage({ ...base, verb: 'list', resource: 'nodes' }), 'User "agent@example.com" cannot list resource "nodes" in API group "" at the cluster scope');
  assert.equal(forbiddenMessage({ user: 'a', verb: 'get', isResourceRequest: false, path: '/metrics' }), 'User "a" cannot get path "/metrics"');
  const s = authorizationForbiddenStatus({ ...base, verb: 'delete', namespace: 'prod', name: 'web-0' }, 'outside the access window');
  assert.equal(s.message, 'pods "web-0" is forbidden: User "agent@example.com" cannot delete resource "pods" in API group "" in the namespace "prod": outside the access window');
  assert.deepEqual(s.details, { name: 'web-0', kind: 'pods' });
});

test('NotFound, AlreadyExists, Conflict, Invalid, Unauthorized, TooManyRequests, Success', () => {
  assert.deepEqual(notFoundStatus({ group: 'apps', resource: 'deployments', name: 'web' }), {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'deployments.apps "web" not found', reason: 'NotFound', details: { name: 'web', group: 'apps', kind: 'deployments' }, code: 404,
  });
  assert.equal(alreadyExistsStatus({ resource: 'pods', name: 'p' }).message, 'pods "p" already exists');
  assert.equal(alreadyExistsStatus({ resource: 'pods', name: 'p' }).code, 409);
  assert.equal(conflictStatus({ resource: 'configmaps', name: 'c' }, 'stale').message, 'Operation cannot be fulfilled on configmaps "c": stale');
  const inv = invalidStatus('Pod', '', 'p', [{ field: 'metadata.name', message: 'Required value' }]);
  assert.equal(inv.message, 'Pod "p" is invalid: metadata.name: Required value');
  assert.equal(inv.code, 422);
  assert.deepEqual(inv.details?.causes, [{ reason: 'FieldValueInvalid', message: 'Required value', field: 'metadata.name' }]);
  assert.deepEqual(unauthorizedStatus(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  assert.equal(tooManyRequestsStatus('slow down', 3).details?.retryAfterSeconds, 3);
  assert.deepEqual(successStatus({ name: 'c', kind: 'configmaps' }), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: 'c', kind: 'configmaps' }, code: 200 });
  assert.equal(goQuote('a"b\\c'), '"a\\"b\\\\c"');
});

test('statusFromError maps every kind of refusal and never shows the internal detail', () => {
  const cases: [GatehouseErrorCode, number, string][] = [
    ['ERR_ACCESS_DENIED', 403, 'Forbidden'],
    ['ERR_REVIEW_REQUIRED', 403, 'Forbidden'],
    ['ERR_REVIEW_PENDING', 403, 'Forbidden'],
    ['ERR_REVIEW_DENIED', 403, 'Forbidden'],
    ['ERR_REVIEW_TIMEOUT', 403, 'Forbidden'],
    ['ERR_NO_GRANT', 403, 'Forbidden'],
    ['ERR_SESSION_ENDED', 403, 'Forbidden'],
    ['ERR_TOKEN_INVALID', 401, 'Unauthorized'],
    ['ERR_TOKEN_EXPIRED', 401, 'Unauthorized'],
    ['ERR_TOKEN_REVOKED', 401, 'Unauthorized'],
    ['ERR_UNAUTHENTICATED', 401, 'Unauthorized'],
    ['ERR_UNKNOWN_CONNECTION', 404, 'NotFound'],
    ['ERR_CONFLICT', 409, 'Conflict'],
    ['ERR_BAD_REQUEST', 400, 'BadRequest'],
    ['ERR_PROTOCOL', 400, 'BadRequest'],
    ['ERR_UPSTREAM', 503, 'ServiceUnavailable'],
    ['ERR_ISSUER_UNAVAILABLE', 503, 'ServiceUnavailable'],
    ['ERR_MASKING_FAILED', 500, 'InternalError'],
    ['ERR_INTERNAL', 500, 'InternalError'],
  ];
  for (const [code, http, reason] of cases) {
    const s = statusFromError(new GatehouseError(code, 'public text', { detail: 'secret internal detail' }), { resource: 'pods', name: 'p' });
    assert.equal(s.code, http, code);
    assert.equal(s.reason, reason, code);
    assert.ok(!JSON.stringify(s).includes('secret internal detail'), code);
  }
  const denied = statusFromError(new GatehouseError('ERR_ACCESS_DENIED', 'no rule allows this'), { group: '', resource: 'secrets', name: 'db' });
  assert.equal(denied.message, 'secrets "db" is forbidden: no rule allows this');
  assert.equal(statusFromError(new GatehouseError('ERR_UNKNOWN_CONNECTION', 'no connection "prod"')).message, 'no connection "prod"');
});

test('statusResponse: headers as the API server sends them', () => {
  const r = statusResponse(unauthorizedStatus());
  assert.equal(r.statusCode, 401);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['www-authenticate'], 'Bearer');
  assert.equal(r.headers['content-length'], String(r.body.length));
  assert.deepEqual(JSON.parse(r.body.toString()), unauthorizedStatus());
  assert.equal(statusResponse(tooManyRequestsStatus('x', 2)).headers['retry-after'], '2');
  assert.deepEqual(watchErrorEvent(notFoundStatus({ resource: 'pods', name: 'p' })).type, 'ERROR');
});

test('exec error channel: Success, NonZeroExitCode with the ExitCode cause, InternalError', () => {
  assert.deepEqual(execExitStatus(0), { metadata: {}, status: 'Success' });
  assert.deepEqual(execExitStatus(3, ['sh', '-c', 'exit 3']), {
    metadata: {}, status: 'Failure',
    message: 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3',
    reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] },
  });
  assert.deepEqual(execErrorStatus('refused by policy', 'Forbidden', 403), { metadata: {}, status: 'Failure', message: 'refused by policy', reason: 'Forbidden', code: 403 });
});
