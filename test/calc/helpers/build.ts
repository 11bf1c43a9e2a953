/** Resource builders for calc tests (plain v3 objects, as validation would produce). */
import type {
  GlobalNetworkPolicy,
  GlobalNetworkPolicySpec,
  GlobalNetworkSet,
  NetworkSet,
  Namespace,
  NetworkPolicy,
  NetworkPolicySpec,
  Node,
  Profile,
  ProfileSpec,
  Tier,
  WorkloadEndpoint,
  WorkloadEndpointPort,
} from '../../../src/model';

const V3 = 'projectcalico.org/v3' as const;

export function wep(
  key: string,
  o: { labels?: Record<string, string>; ip?: string | string[]; node?: string; profiles?: string[]; ports?: WorkloadEndpointPort[]; sa?: string; iface?: string } = {},
): WorkloadEndpoint {
  const [namespace, name] = key.split('/') as [string, string];
  const ips = o.ip === undefined ? [] : Array.isArray(o.ip) ? o.ip : [o.ip];
  const w: WorkloadEndpoint = {
    apiVersion: V3,
    kind: 'WorkloadEndpoint',
    metadata: { name, namespace, labels: { ...(o.labels ?? {}) } },
    spec: {
      orchestrator: 'k8s',
      node: o.node ?? 'node1',
      ipNetworks: ips.map((i) => (i.includes('/') ? i : `${i}/32`)),
      interfaceName: o.iface ?? `cali${name}`.slice(0, 15),
      profiles: o.profiles ?? [],
    },
  };
  if (o.ports) w.spec.ports = o.ports;
  if (o.sa) w.spec.serviceAccountName = o.sa;
  return w;
}

export function gnp(name: string, spec: GlobalNetworkPolicySpec): GlobalNetworkPolicy {
  return { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name }, spec };
}

export function np(key: string, spec: NetworkPolicySpec): NetworkPolicy {
  const [namespace, name] = key.split('/') as [string, string];
  return { apiVersion: V3, kind: 'NetworkPolicy', metadata: { name, namespace }, spec };
}

export function profile(name: string, spec: ProfileSpec): Profile {
  return { apiVersion: V3, kind: 'Profile', metadata: { name }, spec };
}

export function tier(name: string, order?: number, defaultAction?: 'Deny' | 'Pass'): Tier {
  const spec: Tier['spec'] = {};
  if (order !== undefined) spec.order = order;
  if (defaultAction !== undefined) spec.defaultAction = defaultAction;
  return { apiVersion: V3, kind: 'Tier', metadata: { name }, spec };
}

export function namespace(name: string, labels: Record<string, string> = {}): Namespace {
  return { apiVersion: V3, kind: 'Namespace', metadata: { name, labels } };
}

export function node(name: string, labels: Record<string, string> = {}, ipv4Address?: string): Node {
  const n: Node = { apiVersion: V3, kind: 'Node', metadata: { name, labels }, spec: {} };
  if (ipv4Address) n.spec.bgp = { ipv4Address };
  return n;
}

export function gns(name: string, nets: string[], labels: Record<string, string> = {}): GlobalNetworkSet {
  return { apiVersion: V3, kind: 'GlobalNetworkSet', metadata: { name, labels }, spec: { nets } };
}

export function netset(key: string, nets: string[], labels: Record<string, string> = {}): NetworkSet {
  const [namespace, name] = key.split('/') as [string, string];
  return { apiVersion: V3, kind: 'NetworkSet', metadata: { name, namespace, labels }, spec: { nets } };
}
