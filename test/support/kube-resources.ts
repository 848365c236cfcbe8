/**
 * The built-in resource types the Kubernetes stand-in serves: discovery data, defaulting on
 * create, the server-side `Table` columns `kubectl get` prints, and the fields a field selector may
 * name. Shapes follow the real API server's (1.3x) answers.
 */
import type { Json } from './kube-patch.js';

export type Obj = { [k: string]: Json };

export interface ColumnDefinition {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  format: string;
  description: string;
  priority: number;
}

export interface SubresourceType {
  name: string;
  kind: string;
  group?: string;
  version?: string;
  verbs: string[];
}

export interface ResourceType {
  group: string;
  version: string;
  /** Plural, lower case: `pods`. */
  resource: string;
  kind: string;
  listKind: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  subresources: SubresourceType[];
  columns: ColumnDefinition[];
  cells(obj: Obj, now: Date): Json[];
  /** Fields a field selector may name, besides metadata.name / metadata.namespace. */
  fields?(obj: Obj): Record<string, string>;
  /** Fills what the API server defaults on create (mutates). */
  defaults?(obj: Obj, ctx: DefaultContext): void;
}

export interface DefaultContext {
  nextIp(pool: 'pod' | 'service'): string;
  nodeName: string;
}

export const groupVersion = (t: { group: string; version: string }): string => (t.group ? `${t.group}/${t.version}` : t.version);

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const NAME_DESC = 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';
const AGE_DESC = 'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata';

const col = (name: string, type: ColumnDefinition['type'], description: string, priority = 0, format = ''): ColumnDefinition => ({ name, type, format, description, priority });
const NAME = col('Name', 'string', NAME_DESC, 0, 'name');
const AGE = col('Age', 'string', AGE_DESC);

const o = (v: Json | undefined): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {});
const a = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
const s = (v: Json | undefined): string => (typeof v === 'string' ? v : '');
const n = (v: Json | undefined): number => (typeof v === 'number' ? v : 0);
const meta = (obj: Obj): Obj => o(obj.metadata);

/** `duration.HumanDuration`, as the API server prints ages. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const sec = seconds % 60;
    return sec === 0 ? `${minutes}m` : `${minutes}m${sec}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

const age = (obj: Obj, now: Date): string => {
  const ts = s(meta(obj).creationTimestamp);
  return ts ? humanDuration(now.getTime() - Date.parse(ts)) : '<unknown>';
};

const selectorString = (sel: Obj): string => Object.entries(sel).map(([k, v]) => `${k}=${s(v)}`).join(',');

function podCells(pod: Obj, now: Date): Json[] {
  const spec = o(pod.spec);
  const status = o(pod.status);
  const containers = a(spec.containers);
  const statuses = a(status.containerStatuses).map(o);
  const ready = statuses.filter((c) => c.ready === true).length;
  const restarts = statuses.reduce((sum, c) => sum + n(c.restartCount), 0);
  let reason = s(status.phase) || 'Pending';
  if (s(status.reason)) reason = s(status.reason);
  for (const c of statuses) {
    const st = o(c.state);
    if (s(o(st.waiting).reason)) reason = s(o(st.waiting).reason);
    else if (s(o(st.terminated).reason)) reason = s(o(st.terminated).reason);
  }
  if (meta(pod).deletionTimestamp) reason = 'Terminating';
  return [s(meta(pod).name), `${ready}/${containers.length}`, reason, String(restarts), age(pod, now), s(status.podIP) || '<none>', s(spec.nodeName) || '<none>', s(status.nominatedNodeName) || '<none>', '<none>'];
}

function podDefaults(pod: Obj, ctx: DefaultContext): void {
  const spec = (pod.spec = o(pod.spec));
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.serviceAccountName ??= 'default';
  spec.serviceAccount ??= spec.serviceAccountName;
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  spec.nodeName ??= ctx.nodeName;
  for (const c of a(spec.containers).map(o)) {
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.imagePullPolicy ??= s(c.image).endsWith(':latest') || !s(c.image).includes(':') ? 'Always' : 'IfNotPresent';
    c.resources ??= {};
    for (const p of a(c.ports).map(o)) p.protocol ??= 'TCP';
  }
  if (pod.status === undefined || Object.keys(o(pod.status)).length === 0) {
    const ip = ctx.nextIp('pod');
    const started = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    pod.status = {
      phase: 'Running',
      conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: started })),
      hostIP: '10.0.0.10',
      hostIPs: [{ ip: '10.0.0.10' }],
      podIP: ip,
      podIPs: [{ ip }],
      startTime: started,
      qosClass: 'BestEffort',
      containerStatuses: a(spec.containers).map(o).map((c) => ({
        name: s(c.name),
        state: { running: { startedAt: started } },
        lastState: {},
        ready: true,
        restartCount: 0,
        image: s(c.image),
        imageID: `docker.io/library/${s(c.image)}@sha256:${'0'.repeat(64)}`,
        containerID: `containerd://${'c'.repeat(64)}`,
        started: true,
      })),
    };
  }
}

function deploymentDefaults(d: Obj): void {
  const spec = (d.spec = o(d.spec));
  spec.replicas ??= 1;
  spec.revisionHistoryLimit ??= 10;
  spec.progressDeadlineSeconds ??= 600;
  spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
  deploymentStatus(d);
}

/** No controllers run: a deployment reports every replica ready at once. */
export function deploymentStatus(d: Obj): void {
  const replicas = n(o(d.spec).replicas);
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  d.status = {
    observedGeneration: n(meta(d).generation) || 1,
    replicas,
    updatedReplicas: replicas,
    readyReplicas: replicas,
    availableReplicas: replicas,
    conditions: [
      { type: 'Available', status: 'True', lastUpdateTime: now, lastTransitionTime: now, reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' },
      { type: 'Progressing', status: 'True', lastUpdateTime: now, lastTransitionTime: now, reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${s(meta(d).name)}" has successfully progressed.` },
    ],
  };
  if (replicas === 0) {
    const st = o(d.status);
    delete st.readyReplicas;
    delete st.availableReplicas;
  }
}

function core(resource: string, kind: string, singular: string, namespaced: boolean, extra: Partial<ResourceType> & Pick<ResourceType, 'columns' | 'cells'>): ResourceType {
  return { group: '', version: 'v1', resource, kind, listKind: `${kind}List`, singular, namespaced, shortNames: [], categories: [], verbs: ALL_VERBS, subresources: [], ...extra };
}

/** The types the stand-in serves. */
export function builtinResourceTypes(): ResourceType[] {
  return [
    core('namespaces', 'Namespace', 'namespace', false, {
      shortNames: ['ns'],
      verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
      subresources: [{ name: 'finalize', kind: 'Namespace', verbs: ['update'] }, { name: 'status', kind: 'Namespace', verbs: ['get', 'patch', 'update'] }],
      columns: [NAME, col('Status', 'string', 'The status of the namespace'), AGE],
      cells: (x, now) => [s(meta(x).name), s(o(x.status).phase) || 'Active', age(x, now)],
      fields: (x) => ({ 'status.phase': s(o(x.status).phase) }),
      defaults: (x) => {
        const m = meta(x);
        m.labels = { ...o(m.labels), 'kubernetes.io/metadata.name': s(m.name) };
        x.spec = { finalizers: ['kubernetes'], ...o(x.spec) };
        x.status = { phase: 'Active' };
      },
    }),
    core('nodes', 'Node', 'node', false, {
      shortNames: ['no'],
      subresources: [{ name: 'proxy', kind: 'NodeProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update'] }, { name: 'status', kind: 'Node', verbs: ['get', 'patch', 'update'] }],
      columns: [NAME, col('Status', 'string', 'The status of the node'), col('Roles', 'string', 'The roles of the node'), AGE, col('Version', 'string', 'Kubelet Version reported by the node.'),
        col('Internal-IP', 'string', 'List of addresses reachable to the node.', 1), col('External-IP', 'string', 'List of addresses reachable to the node.', 1), col('OS-Image', 'string', 'OS Image reported by the node.', 1), col('Kernel-Version', 'string', 'Kernel Version reported by the node.', 1), col('Container-Runtime', 'string', 'Container Runtime Version reported by the node.', 1)],
      cells: (x, now) => {
        const info = o(o(x.status).nodeInfo);
        const ready = a(o(x.status).conditions).map(o).find((c) => c.type === 'Ready');
        const ip = a(o(x.status).addresses).map(o).find((ad) => ad.type === 'InternalIP');
        return [s(meta(x).name), ready?.status === 'True' ? 'Ready' : 'NotReady', '<none>', age(x, now), s(info.kubeletVersion), s(ip?.address) || '<none>', '<none>', s(info.osImage), s(info.kernelVersion), s(info.containerRuntimeVersion)];
      },
    }),
    core('pods', 'Pod', 'pod', true, {
      shortNames: ['po'],
      categories: ['all'],
      subresources: [
        { name: 'attach', kind: 'PodAttachOptions', verbs: ['create', 'get'] },
        { name: 'binding', kind: 'Binding', verbs: ['create'] },
        { name: 'ephemeralcontainers', kind: 'Pod', verbs: ['get', 'patch', 'update'] },
        { name: 'eviction', kind: 'Eviction', group: 'policy', version: 'v1', verbs: ['create'] },
        { name: 'exec', kind: 'PodExecOptions', verbs: ['create', 'get'] },
        { name: 'log', kind: 'Pod', verbs: ['get'] },
        { name: 'portforward', kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
        { name: 'proxy', kind: 'PodProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update'] },
        { name: 'resize', kind: 'Pod', verbs: ['get', 'patch', 'update'] },
        { name: 'status', kind: 'Pod', verbs: ['get', 'patch', 'update'] },
      ],
      columns: [NAME,
        col('Ready', 'string', 'The aggregate readiness state of this pod for accepting traffic.'),
        col('Status', 'string', 'The aggregate status of the containers in this pod.'),
        col('Restarts', 'string', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
        AGE,
        col('IP', 'string', 'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', 1),
        col('Node', 'string', 'NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName.', 1),
        col('Nominated Node', 'string', 'nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.', 1),
        col('Readiness Gates', 'string', 'If specified, all readiness gates will be evaluated for pod readiness.', 1)],
      cells: podCells,
      fields: (x) => ({ 'spec.nodeName': s(o(x.spec).nodeName), 'spec.restartPolicy': s(o(x.spec).restartPolicy), 'spec.schedulerName': s(o(x.spec).schedulerName), 'spec.serviceAccountName': s(o(x.spec).serviceAccountName), 'status.phase': s(o(x.status).phase), 'status.podIP': s(o(x.status).podIP), 'status.nominatedNodeName': s(o(x.status).nominatedNodeName) }),
      defaults: podDefaults,
    }),
    core('secrets', 'Secret', 'secret', true, {
      columns: [NAME, col('Type', 'string', 'Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types'), col('Data', 'integer', 'Data contains the secret data. Each key must consist of alphanumeric characters, \'-\', \'_\' or \'.\'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4'), AGE],
      cells: (x, now) => [s(meta(x).name), s(x.type), Object.keys(o(x.data)).length, age(x, now)],
      fields: (x) => ({ type: s(x.type) }),
      defaults: (x) => {
        x.type ??= 'Opaque';
        const sd = o(x.stringData);
        if (Object.keys(sd).length > 0) {
          const data = o(x.data);
          for (const [k, v] of Object.entries(sd)) data[k] = Buffer.from(s(v)).toString('base64');
          x.data = data;
        }
        delete x.stringData;
      },
    }),
    core('configmaps', 'ConfigMap', 'configmap', true, {
      shortNames: ['cm'],
      columns: [NAME, col('Data', 'integer', 'Data contains the configuration data. Each key must consist of alphanumeric characters, \'-\', \'_\' or \'.\'.'), AGE],
      cells: (x, now) => [s(meta(x).name), Object.keys(o(x.data)).length + Object.keys(o(x.binaryData)).length, age(x, now)],
    }),
    core('services', 'Service', 'service', true, {
      shortNames: ['svc'],
      categories: ['all'],
      verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
      subresources: [{ name: 'proxy', kind: 'ServiceProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update'] }, { name: 'status', kind: 'Service', verbs: ['get', 'patch', 'update'] }],
      columns: [NAME, col('Type', 'string', 'type determines how the Service is exposed.'), col('Cluster-IP', 'string', 'clusterIP is the IP address of the service.'), col('External-IP', 'string', 'List of IP addresses for which nodes in the cluster will also accept traffic for this service.'), col('Port(s)', 'string', 'The list of ports that are exposed by this service.'), AGE, col('Selector', 'string', 'Route service traffic to pods with label keys and values matching this selector.', 1)],
      cells: (x, now) => {
        const spec = o(x.spec);
        const ports = a(spec.ports).map(o).map((p) => `${n(p.port)}${p.nodePort ? `:${n(p.nodePort)}` : ''}/${s(p.protocol) || 'TCP'}`).join(',');
        const sel = selectorString(o(spec.selector));
        return [s(meta(x).name), s(spec.type) || 'ClusterIP', s(spec.clusterIP) || '<none>', a(spec.externalIPs).map(s).join(',') || '<none>', ports || '<none>', age(x, now), sel || '<none>'];
      },
      defaults: (x, ctx) => {
        const spec = (x.spec = o(x.spec));
        spec.type ??= 'ClusterIP';
        spec.sessionAffinity ??= 'None';
        if (spec.clusterIP === undefined && spec.type !== 'ExternalName') {
          spec.clusterIP = ctx.nextIp('service');
          spec.clusterIPs = [spec.clusterIP];
        }
        spec.ipFamilies ??= ['IPv4'];
        spec.ipFamilyPolicy ??= 'SingleStack';
        spec.internalTrafficPolicy ??= 'Cluster';
        for (const p of a(spec.ports).map(o)) {
          p.protocol ??= 'TCP';
          p.targetPort ??= p.port ?? 0;
        }
        x.status ??= { loadBalancer: {} };
      },
    }),
    core('serviceaccounts', 'ServiceAccount', 'serviceaccount', true, {
      shortNames: ['sa'],
      subresources: [{ name: 'token', kind: 'TokenRequest', group: 'authentication.k8s.io', version: 'v1', verbs: ['create'] }],
      columns: [NAME, col('Secrets', 'integer', 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.'), AGE],
      cells: (x, now) => [s(meta(x).name), a(x.secrets).length, age(x, now)],
    }),
    core('events', 'Event', 'event', true, {
      shortNames: ['ev'],
      columns: [col('Last Seen', 'string', 'Time when this Event was last observed.'), col('Type', 'string', 'Type of this event (Normal, Warning), new types could be added in the future.'), col('Reason', 'string', 'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.'), col('Object', 'string', 'The object that this event is about.'), col('Message', 'string', 'A human-readable description of the status of this operation.')],
      cells: (x, now) => {
        const io = o(x.involvedObject);
        const last = s(x.lastTimestamp) || s(meta(x).creationTimestamp);
        return [last ? humanDuration(now.getTime() - Date.parse(last)) : '<unknown>', s(x.type), s(x.reason), `${s(io.kind).toLowerCase()}/${s(io.name)}`, s(x.message)];
      },
      fields: (x) => {
        const io = o(x.involvedObject);
        return { 'involvedObject.kind': s(io.kind), 'involvedObject.name': s(io.name), 'involvedObject.namespace': s(io.namespace), 'involvedObject.uid': s(io.uid), 'involvedObject.apiVersion': s(io.apiVersion), 'involvedObject.resourceVersion': s(io.resourceVersion), 'involvedObject.fieldPath': s(io.fieldPath), reason: s(x.reason), reportingComponent: s(x.reportingComponent), source: s(o(x.source).component), type: s(x.type) };
      },
    }),
    {
      group: 'authorization.k8s.io', version: 'v1', resource: 'selfsubjectaccessreviews', kind: 'SelfSubjectAccessReview', listKind: 'SelfSubjectAccessReviewList', singular: 'selfsubjectaccessreview', namespaced: false,
      shortNames: [], categories: [], verbs: ['create'], subresources: [],
      columns: [NAME], cells: (x) => [s(meta(x).name)],
    },
    {
      group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', listKind: 'DeploymentList', singular: 'deployment', namespaced: true,
      shortNames: ['deploy'], categories: ['all'], verbs: ALL_VERBS,
      subresources: [{ name: 'scale', kind: 'Scale', group: 'autoscaling', version: 'v1', verbs: ['get', 'patch', 'update'] }, { name: 'status', kind: 'Deployment', verbs: ['get', 'patch', 'update'] }],
      columns: [NAME, col('Ready', 'string', 'Number of the pod with ready state'), col('Up-to-date', 'string', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.'), col('Available', 'string', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'), AGE,
        col('Containers', 'string', 'Names of each container in the template.', 1), col('Images', 'string', 'Images referenced by each container in the template.', 1), col('Selector', 'string', 'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.', 1)],
      cells: (x, now) => {
        const spec = o(x.spec);
        const st = o(x.status);
        const cs = a(o(o(spec.template).spec).containers).map(o);
        return [s(meta(x).name), `${n(st.readyReplicas)}/${n(spec.replicas)}`, n(st.updatedReplicas), n(st.availableReplicas), age(x, now), cs.map((c) => s(c.name)).join(','), cs.map((c) => s(c.image)).join(','), selectorString(o(o(spec.selector).matchLabels))];
      },
      defaults: deploymentDefaults,
    },
  ];
}
