/**
 * Kubernetes `Status` objects (meta/v1), shaped the way k8s.io/apimachinery's `apierrors` builds
 * them, so `kubectl` prints Gatehouse's refusals like any API server's:
 *
 * ```
 * Error from server (Forbidden): pods "web-0" is forbidden: deleting pods in prod needs an approval
 * ```
 *
 * An engine answers a refused request with {@link statusFromError} (or one of the constructors)
 * and {@link statusResponse}; inside a watch stream with {@link watchErrorEvent}; at the end of a
 * `kubectl exec` stream (channel 3) with {@link execExitStatus}.
 * See https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md
 */
import type { GatehouseError, GatehouseErrorCode } from '../../core/errors.js';

/** `metav1.StatusReason` values a client acts on. */
export type StatusReason =
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Invalid'
  | 'ServerTimeout'
  | 'StoreReadError'
  | 'Timeout'
  | 'TooManyRequests'
  | 'BadRequest'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'InternalError'
  | 'Expired'
  | 'ServiceUnavailable'
  | 'NonZeroExitCode';

export interface StatusCause {
  /** JSON name `reason` (Go field `Type`): `FieldValueInvalid`, `ExitCode`, … */
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  /** The resource (plural, lower case) for errors about a resource, as upstream fills it. */
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: { resourceVersion?: string; continue?: string };
  status: 'Success' | 'Failure';
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** What a status is about: the API group, the resource (plural) and the object's name. */
export interface StatusTarget {
  group?: string;
  resource?: string;
  name?: string;
}

/** Go's `%q` for the strings that appear in API messages. */
export function goQuote(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `schema.GroupResource.String()`: `pods`, `deployments.apps`. */
export function qualifiedResource(t: StatusTarget): string {
  const r = t.resource ?? '';
  return t.group ? `${r}.${t.group}` : r;
}

function details(t: StatusTarget): StatusDetails {
  const d: StatusDetails = {};
  if (t.name) d.name = t.name;
  if (t.group) d.group = t.group;
  if (t.resource) d.kind = t.resource;
  return d;
}

function failure(code: number, reason: StatusReason, message: string, d?: StatusDetails): KubeStatus {
  const s: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (d !== undefined && Object.keys(d).length > 0) s.details = d;
  return s;
}

/** 401 `Unauthorized` (kubectl: `error: You must be logged in to the server (Unauthorized)`). */
export function unauthorizedStatus(message = 'Unauthorized'): KubeStatus {
  return failure(401, 'Unauthorized', message);
}

/** 403 `Forbidden`: `pods "x" is forbidden: <reason>` (`apierrors.NewForbidden`). */
export function forbiddenStatus(target: StatusTarget, reason: string): KubeStatus {
  const gr = qualifiedResource(target);
  const message = gr === '' ? `forbidden: ${reason}` : target.name ? `${gr} ${goQuote(target.name)} is forbidden: ${reason}` : `${gr} is forbidden: ${reason}`;
  return failure(403, 'Forbidden', message, details(target));
}

/** Request attributes as the authorizer's refusal names them. */
export interface ForbiddenAttributes {
  user: string;
  verb: string;
  isResourceRequest: boolean;
  path?: string;
  apiGroup?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

/**
 * The API server's own authorization refusal text (`responsewriters.forbiddenMessage`):
 * `User "x" cannot get resource "pods/exec" in API group "" in the namespace "prod"`.
 */
export function forbiddenMessage(a: ForbiddenAttributes): string {
  if (!a.isResourceRequest) return `User ${goQuote(a.user)} cannot ${a.verb} path ${goQuote(a.path ?? '')}`;
  const resource = a.subresource ? `${a.resource ?? ''}/${a.subresource}` : a.resource ?? '';
  const head = `User ${goQuote(a.user)} cannot ${a.verb} resource ${goQuote(resource)} in API group ${goQuote(a.apiGroup ?? '')}`;
  return a.namespace ? `${head} in the namespace ${goQuote(a.namespace)}` : `${head} at the cluster scope`;
}

/** The whole 403 the API server's authorization filter answers (`ForbiddenStatusError`). */
export function authorizationForbiddenStatus(a: ForbiddenAttributes, reason?: string): KubeStatus {
  const msg = forbiddenMessage(a);
  const target: StatusTarget = { group: a.apiGroup ?? '', resource: a.resource ?? '' };
  if (a.name) target.name = a.name;
  return forbiddenStatus(target, reason ? `${msg}: ${reason}` : msg);
}

/** 404 `NotFound`: `pods "x" not found`. */
export function notFoundStatus(target: StatusTarget): KubeStatus {
  const gr = qualifiedResource(target);
  return failure(404, 'NotFound', `${gr} ${goQuote(target.name ?? '')} not found`, details(target));
}

/** 409 `AlreadyExists`: `pods "x" already exists`. */
export function alreadyExistsStatus(target: StatusTarget): KubeStatus {
  const gr = qualifiedResource(target);
  return failure(409, 'AlreadyExists', `${gr} ${goQuote(target.name ?? '')} already exists`, details(target));
}

/** 409 `Conflict`: `Operation cannot be fulfilled on pods "x": <reason>`. */
export function conflictStatus(target: StatusTarget, reason: string): KubeStatus {
  const gr = qualifiedResource(target);
  return failure(409, 'Conflict', `Operation cannot be fulfilled on ${gr} ${goQuote(target.name ?? '')}: ${reason}`, details(target));
}

/** The reason the API server gives for a stale `resourceVersion` on update. */
export const OPTIMISTIC_LOCK_MESSAGE = 'the object has been modified; please apply your changes to the latest version and try again';

/** 422 `Invalid`: `Pod "x" is invalid: <field>: <message>` (kind, not resource, as upstream). */
export function invalidStatus(kind: string, group: string, name: string, causes: { field: string; message: string }[]): KubeStatus {
  const what = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const list = what.length === 1 ? what[0] ?? '' : `[${what.join(', ')}]`;
  const gk = group ? `${kind}.${group}` : kind;
  const d: StatusDetails = { name, kind, causes: causes.map((c) => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })) };
  if (group) d.group = group;
  return failure(422, 'Invalid', `${gk} ${goQuote(name)} is invalid: ${list}`, d);
}

/** 400 `BadRequest`. */
export function badRequestStatus(message: string): KubeStatus {
  return failure(400, 'BadRequest', message);
}

/** 405 `MethodNotAllowed`: `create is not supported on resources of kind "pods"`. */
export function methodNotSupportedStatus(target: StatusTarget, action: string): KubeStatus {
  return failure(405, 'MethodNotAllowed', `${action} is not supported on resources of kind ${goQuote(qualifiedResource(target))}`, details(target));
}

/** 406 `NotAcceptable`. */
export function notAcceptableStatus(accepted: string[]): KubeStatus {
  return failure(406, 'NotAcceptable', `only the following media types are accepted: ${accepted.join(', ')}`);
}

/** 415 `UnsupportedMediaType`. */
export function unsupportedMediaTypeStatus(contentType: string, supported: string[]): KubeStatus {
  return failure(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${supported.join(', ')}`, { causes: [{ message: contentType }] });
}

/** 413 `RequestEntityTooLarge`. */
export function requestEntityTooLargeStatus(message = 'the request body is too large'): KubeStatus {
  return failure(413, 'RequestEntityTooLarge', `Request entity too large: ${message}`);
}

/** 410 `Expired` for a watch or list from a compacted resourceVersion. */
export function resourceExpiredStatus(message: string): KubeStatus {
  return failure(410, 'Expired', message);
}

/** 429 `TooManyRequests` (clients retry after `retryAfterSeconds`). */
export function tooManyRequestsStatus(message: string, retryAfterSeconds?: number): KubeStatus {
  return failure(429, 'TooManyRequests', message, retryAfterSeconds === undefined ? undefined : { retryAfterSeconds });
}

/** 504 `Timeout`. */
export function timeoutStatus(message: string, retryAfterSeconds?: number): KubeStatus {
  return failure(504, 'Timeout', `Timeout: ${message}`, retryAfterSeconds === undefined ? undefined : { retryAfterSeconds });
}

/** 503 `ServiceUnavailable`. */
export function serviceUnavailableStatus(message: string): KubeStatus {
  return failure(503, 'ServiceUnavailable', message);
}

/** 500 `InternalError`: `Internal error occurred: <message>`. */
export function internalErrorStatus(message: string): KubeStatus {
  return failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] });
}

/** A `Success` status (delete of some resources, a finished exec). */
export function successStatus(d?: StatusDetails): KubeStatus {
  const s: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 };
  if (d !== undefined) s.details = d;
  return s;
}

const FORBIDDEN_CODES = new Set<GatehouseErrorCode>(['ERR_ACCESS_DENIED', 'ERR_FORBIDDEN', 'ERR_REVIEW_REQUIRED', 'ERR_REVIEW_PENDING', 'ERR_REVIEW_DENIED', 'ERR_REVIEW_TIMEOUT', 'ERR_NO_GRANT', 'ERR_SESSION_ENDED']);
const UNAUTHORIZED_CODES = new Set<GatehouseErrorCode>(['ERR_TOKEN_INVALID', 'ERR_TOKEN_EXPIRED', 'ERR_TOKEN_REVOKED', 'ERR_UNAUTHENTICATED']);

/**
 * The Status for a `GatehouseError`, with its public message (never `detail`):
 * - access denied, review required/pending/denied/timed out, no grant, session ended → 403
 *   `Forbidden`, worded as upstream (`pods "x" is forbidden: …`);
 * - token invalid/expired/revoked, unauthenticated → 401 `Unauthorized`;
 * - unknown connection, not found → 404 `NotFound` (the connection's name when no target);
 * - conflict → 409; bad request, protocol, TLS required → 400;
 * - upstream unreachable, issuer unavailable → 503 `ServiceUnavailable`;
 * - anything else (masking failed included: the answer is withheld) → 500 `InternalError`.
 */
export function statusFromError(err: Pick<GatehouseError, 'code' | 'message'>, target: StatusTarget = {}): KubeStatus {
  if (FORBIDDEN_CODES.has(err.code)) return forbiddenStatus(target, err.message);
  if (UNAUTHORIZED_CODES.has(err.code)) return unauthorizedStatus(err.message || 'Unauthorized');
  switch (err.code) {
    case 'ERR_UNKNOWN_CONNECTION':
    case 'ERR_NOT_FOUND':
      return target.resource ? notFoundStatus(target) : failure(404, 'NotFound', err.message);
    case 'ERR_CONFLICT':
      return target.resource ? conflictStatus(target, err.message) : failure(409, 'Conflict', err.message);
    case 'ERR_BAD_REQUEST':
    case 'ERR_PROTOCOL':
    case 'ERR_TLS_REQUIRED':
      return badRequestStatus(err.message);
    case 'ERR_UPSTREAM':
    case 'ERR_ISSUER_UNAVAILABLE':
      return serviceUnavailableStatus(err.message);
    default:
      return internalErrorStatus(err.message);
  }
}

/** A socket-free HTTP answer carrying a Status, with the headers the API server sends. */
export function statusResponse(status: KubeStatus): { statusCode: number; headers: Record<string, string>; body: Buffer } {
  const body = Buffer.from(`${JSON.stringify(status)}\n`);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'cache-control': 'no-cache, private',
    'x-content-type-options': 'nosniff',
    'content-length': String(body.length),
  };
  if (status.details?.retryAfterSeconds !== undefined) headers['retry-after'] = String(status.details.retryAfterSeconds);
  if (status.code === 401) headers['www-authenticate'] = 'Bearer';
  return { statusCode: status.code, headers, body };
}

/** A watch event ending a watch stream with an error (`{"type":"ERROR","object":<Status>}`). */
export function watchErrorEvent(status: KubeStatus): { type: 'ERROR'; object: KubeStatus } {
  return { type: 'ERROR', object: status };
}

/** The exec/attach error-channel status (kubelet `remotecommand`), written without type meta. */
export interface ExecStatus {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
}

/**
 * What the kubelet writes on the exec error channel (channel 3) when the command ends: `Success`
 * for exit code 0, else `NonZeroExitCode` with an `ExitCode` cause; kubectl exits with that code.
 * `command` shows in the message as the kubelet shows it (`[sh -c exit 3]`).
 */
export function execExitStatus(exitCode: number, command: string[] = []): ExecStatus {
  if (exitCode === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** An exec that could not run (or was refused mid-stream): a `Failure` on the error channel, no exit code. */
export function execErrorStatus(message: string, reason: StatusReason = 'InternalError', code = 500): ExecStatus & { code: number } {
  return { metadata: {}, status: 'Failure', message, reason, code };
}
