/**
 * The resource kinds tortiectl knows and how each is shown in `get`'s ps/wide tables
 * (calicoctl's column headings and cell contents). The names a user may call them by are
 * src/model's (calicoctl's aliases, case-insensitive), plus the Kubernetes resource spelling.
 *
 * Contract: `lookupKind` maps any accepted spelling to the v3 kind or returns undefined;
 * `columnsOf(kind, wide)` returns the default headings; every heading a kind lists has a cell
 * function in `cellsOf(kind)`, which is also what `-o custom-columns=` may name.
 */
import { resolveKind, UNSUPPORTED_KINDS } from '../model';
import { IPPOOL_DEFAULTS } from '../primitives';
import type {
  ClusterInformation, FelixConfiguration, BGPConfiguration, BGPPeer, GlobalNetworkPolicy, GlobalNetworkSet, HostEndpoint, IPPool, IPReservation, Namespace, NetworkPolicy, NetworkSet, Node, Profile, Resource, ResourceKind, Tier,
  WorkloadEndpoint,
} from '../model/types';

/** calicoctl shows a node's ASN in parentheses when it inherits the global default (Calico's default; this column does not look up BGPConfiguration default's asNumber). */
export const DEFAULT_AS_NUMBER = '64512';

type Cell<R> = (r: R) => string;

interface KindInfo<R extends Resource = Resource> {
  kind: R['kind'];
  /** calicoctl's spelling in usage texts: `ipPool`, `globalNetworkPolicy`. */
  display: string;
  namespaced: boolean;
  headings: string[];
  wideHeadings: string[];
  cells: Record<string, Cell<R>>;
}

const text = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
const bool = (v: boolean | undefined): string => (v ? 'true' : 'false');
const joinKv = (m: Record<string, string> | undefined): string =>
  Object.entries(m ?? {}).map(([k, v]) => `${k}=${v}`).sort().join(',');

const KINDS: KindInfo[] = [
  {
    kind: 'IPPool',
    display: 'ipPool',
    namespaced: false,
    headings: ['NAME', 'CIDR', 'SELECTOR'],
    wideHeadings: ['NAME', 'CIDR', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR'],
    cells: {
      NAME: (r: IPPool) => r.metadata.name,
      CIDR: (r: IPPool) => r.spec.cidr,
      NAT: (r: IPPool) => bool(r.spec.natOutgoing),
      IPIPMODE: (r: IPPool) => r.spec.ipipMode || IPPOOL_DEFAULTS.ipipMode,
      VXLANMODE: (r: IPPool) => r.spec.vxlanMode || IPPOOL_DEFAULTS.vxlanMode,
      DISABLED: (r: IPPool) => bool(r.spec.disabled),
      DISABLEBGPEXPORT: (r: IPPool) => bool(r.spec.disableBGPExport),
      SELECTOR: (r: IPPool) => text(r.spec.nodeSelector),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'Node',
    display: 'node',
    namespaced: false,
    headings: ['NAME'],
    wideHeadings: ['NAME', 'ASN', 'IPV4', 'IPV6'],
    cells: {
      NAME: (r: Node) => r.metadata.name,
      ASN: (r: Node) => (r.spec.bgp ? (r.spec.bgp.asNumber !== undefined ? String(r.spec.bgp.asNumber) : `(${DEFAULT_AS_NUMBER})`) : ''),
      IPV4: (r: Node) => text(r.spec.bgp?.ipv4Address),
      IPV6: (r: Node) => text(r.spec.bgp?.ipv6Address),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'WorkloadEndpoint',
    display: 'workloadEndpoint',
    namespaced: true,
    headings: ['WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE'],
    wideHeadings: ['NAME', 'WORKLOAD', 'NODE', 'NETWORKS', 'INTERFACE', 'PROFILES', 'NATS'],
    cells: {
      NAME: (r: WorkloadEndpoint) => r.metadata.name,
      NAMESPACE: (r: WorkloadEndpoint) => text(r.metadata.namespace),
      NODE: (r: WorkloadEndpoint) => text(r.spec.node),
      ORCHESTRATOR: (r: WorkloadEndpoint) => text(r.spec.orchestrator),
      WORKLOAD: (r: WorkloadEndpoint) => text(r.spec.workload || r.spec.pod),
      NETWORKS: (r: WorkloadEndpoint) => (r.spec.ipNetworks ?? []).join(','),
      // Go prints each IPNAT struct as "{internal external}"; kept for scripts that parse it.
      NATS: (r: WorkloadEndpoint) => (r.spec.ipNATs ?? []).map((n) => `{${n.internalIP} ${n.externalIP}}`).join(','),
      PROFILES: (r: WorkloadEndpoint) => (r.spec.profiles ?? []).join(','),
      INTERFACE: (r: WorkloadEndpoint) => text(r.spec.interfaceName),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'Profile',
    display: 'profile',
    namespaced: false,
    headings: ['NAME'],
    wideHeadings: ['NAME', 'LABELS'],
    cells: {
      NAME: (r: Profile) => r.metadata.name,
      LABELS: (r: Profile) => joinKv(r.spec.labelsToApply),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'Tier',
    display: 'tier',
    namespaced: false,
    headings: ['NAME', 'ORDER'],
    wideHeadings: ['NAME', 'ORDER'],
    cells: {
      NAME: (r: Tier) => r.metadata.name,
      ORDER: (r: Tier) => text(r.spec.order),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'NetworkPolicy',
    display: 'networkPolicy',
    namespaced: true,
    headings: ['NAME', 'TIER'],
    wideHeadings: ['NAME', 'TIER', 'ORDER', 'SELECTOR'],
    cells: {
      NAME: (r: NetworkPolicy) => r.metadata.name,
      NAMESPACE: (r: NetworkPolicy) => text(r.metadata.namespace),
      TIER: (r: NetworkPolicy) => text(r.spec.tier ?? 'default'),
      ORDER: (r: NetworkPolicy) => text(r.spec.order),
      SELECTOR: (r: NetworkPolicy) => text(r.spec.selector),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'GlobalNetworkPolicy',
    display: 'globalNetworkPolicy',
    namespaced: false,
    headings: ['NAME'],
    wideHeadings: ['NAME', 'ORDER', 'SELECTOR'],
    cells: {
      NAME: (r: GlobalNetworkPolicy) => r.metadata.name,
      TIER: (r: GlobalNetworkPolicy) => text(r.spec.tier ?? 'default'),
      ORDER: (r: GlobalNetworkPolicy) => text(r.spec.order),
      SELECTOR: (r: GlobalNetworkPolicy) => text(r.spec.selector),
    } as Record<string, Cell<Resource>>,
  },
  {
    // Not a calicoctl kind (Calico reads namespaces from Kubernetes); tortie stores them.
    kind: 'Namespace',
    display: 'namespace',
    namespaced: false,
    headings: ['NAME'],
    wideHeadings: ['NAME', 'LABELS'],
    cells: {
      NAME: (r: Namespace) => r.metadata.name,
      LABELS: (r: Namespace) => joinKv(r.metadata.labels),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'BGPConfiguration',
    display: 'bgpConfiguration',
    namespaced: false,
    headings: ['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER'],
    wideHeadings: ['NAME', 'LOGSEVERITY', 'MESHENABLED', 'ASNUMBER'],
    cells: {
      NAME: (r: BGPConfiguration) => r.metadata.name,
      // calicoctl prints the pointer fields as stored: empty when unset.
      LOGSEVERITY: (r: BGPConfiguration) => text(r.spec.logSeverityScreen),
      MESHENABLED: (r: BGPConfiguration) => (r.spec.nodeToNodeMeshEnabled === undefined ? '' : bool(r.spec.nodeToNodeMeshEnabled)),
      ASNUMBER: (r: BGPConfiguration) => text(r.spec.asNumber),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'BGPPeer',
    display: 'bgpPeer',
    namespaced: false,
    headings: ['NAME', 'PEERIP', 'NODE', 'ASN'],
    wideHeadings: ['NAME', 'PEERIP', 'NODE', 'ASN'],
    cells: {
      NAME: (r: BGPPeer) => r.metadata.name,
      PEERIP: (r: BGPPeer) => text(r.spec.peerIP ?? r.spec.peerSelector),
      NODE: (r: BGPPeer) => text(r.spec.node ?? r.spec.nodeSelector ?? '(global)'),
      ASN: (r: BGPPeer) => text(r.spec.asNumber),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'GlobalNetworkSet',
    display: 'globalNetworkSet',
    namespaced: false,
    headings: ['NAME'],
    wideHeadings: ['NAME', 'NETS', 'LABELS'],
    cells: {
      NAME: (r: GlobalNetworkSet) => r.metadata.name,
      NETS: (r: GlobalNetworkSet) => (r.spec.nets ?? []).join(','),
      LABELS: (r: GlobalNetworkSet) => joinKv(r.metadata.labels),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'NetworkSet',
    display: 'networkSet',
    namespaced: true,
    headings: ['NAME'],
    wideHeadings: ['NAME', 'NETS', 'LABELS'],
    cells: {
      NAME: (r: NetworkSet) => r.metadata.name,
      NAMESPACE: (r: NetworkSet) => text(r.metadata.namespace),
      NETS: (r: NetworkSet) => (r.spec.nets ?? []).join(','),
      LABELS: (r: NetworkSet) => joinKv(r.metadata.labels),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'HostEndpoint',
    display: 'hostEndpoint',
    namespaced: false,
    headings: ['NAME', 'NODE'],
    wideHeadings: ['NAME', 'NODE', 'INTERFACE', 'IPS', 'PROFILES'],
    cells: {
      NAME: (r: HostEndpoint) => r.metadata.name,
      NODE: (r: HostEndpoint) => text(r.spec.node),
      INTERFACE: (r: HostEndpoint) => text(r.spec.interfaceName),
      IPS: (r: HostEndpoint) => (r.spec.expectedIPs ?? []).join(','),
      PROFILES: (r: HostEndpoint) => (r.spec.profiles ?? []).join(','),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'IPReservation',
    display: 'ipReservation',
    namespaced: false,
    headings: ['NAME'],
    wideHeadings: ['NAME', 'CIDRS'],
    cells: {
      NAME: (r: IPReservation) => r.metadata.name,
      CIDRS: (r: IPReservation) => (r.spec.reservedCIDRs ?? []).join(','),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'ClusterInformation',
    display: 'clusterInformation',
    namespaced: false,
    headings: ['NAME'],
    wideHeadings: ['NAME', 'GUID', 'TYPE', 'VERSION', 'READY'],
    cells: {
      NAME: (r: ClusterInformation) => r.metadata.name,
      GUID: (r: ClusterInformation) => text(r.spec.clusterGUID),
      TYPE: (r: ClusterInformation) => text(r.spec.clusterType),
      VERSION: (r: ClusterInformation) => text(r.spec.calicoVersion),
      READY: (r: ClusterInformation) => bool(r.spec.datastoreReady),
    } as Record<string, Cell<Resource>>,
  },
  {
    kind: 'FelixConfiguration',
    display: 'felixConfiguration',
    namespaced: false,
    headings: ['NAME'],
    wideHeadings: ['NAME'],
    cells: {
      NAME: (r: FelixConfiguration) => r.metadata.name,
    } as Record<string, Cell<Resource>>,
  },
];

const BY_KIND = new Map<ResourceKind, KindInfo>(KINDS.map((k) => [k.kind, k]));

/**
 * The kind a user means by `name`: calicoctl's aliases, any letter case, and the Kubernetes
 * resource forms `ippools.projectcalico.org` / `ippools.crd.projectcalico.org`.
 */
export function lookupKind(name: string): ResourceKind | undefined {
  return resolveKind(name.trim().replace(/\.(crd\.)?projectcalico\.org$/i, ''));
}

/** Calico kinds tortie does not implement, by calicoctl's names for them. */
const CALICO_ONLY: ReadonlyArray<[string, string[]]> = [
  ['BGPFilter', ['bgpfilter', 'bgpfilters']],
  ['KubeControllersConfiguration', ['kubecontrollersconfiguration', 'kubecontrollersconfigurations']],
  ['StagedNetworkPolicy', ['stagednetworkpolicy', 'stagednetworkpolicies', 'snp']],
  ['StagedGlobalNetworkPolicy', ['stagedglobalnetworkpolicy', 'stagedglobalnetworkpolicies', 'sgnp']],
  ['StagedKubernetesNetworkPolicy', ['stagedkubernetesnetworkpolicy', 'stagedkubernetesnetworkpolicies', 'sknp']],
];

/**
 * calicoctl's error for a kind name it does not know ("resource type 'x' is not supported"),
 * saying so when it is a Calico kind tortie does not implement.
 */
export function unknownKindMessage(name: string): string {
  const lower = name.trim().toLowerCase();
  const calico = CALICO_ONLY.find(([, aliases]) => aliases.includes(lower));
  const base = `resource type '${name}' is not supported`;
  if (!calico) return base;
  const why = Object.prototype.hasOwnProperty.call(UNSUPPORTED_KINDS, calico[0]) ? `: ${UNSUPPORTED_KINDS[calico[0]]}` : '';
  return `${base}: ${calico[0]} is a Calico resource tortie does not implement${why} (tortie has: ${kindList().join(', ')})`;
}

export function isNamespacedKind(kind: ResourceKind): boolean {
  return BY_KIND.get(kind)?.namespaced ?? false;
}

export function columnsOf(kind: ResourceKind, wide: boolean): string[] {
  const k = BY_KIND.get(kind);
  if (!k) return ['NAME'];
  return wide ? k.wideHeadings : k.headings;
}

/** Cell text of `heading` for `r`; undefined when the kind has no such column. */
export function cellOf(r: Resource, heading: string): string | undefined {
  const f = BY_KIND.get(r.kind)?.cells[heading];
  if (!f) return undefined;
  try {
    return f(r);
  } catch {
    // A stored resource another writer left without the expected shape: show an empty cell
    // rather than fail the whole listing.
    return '';
  }
}

export function headingsOf(kind: ResourceKind): string[] {
  return Object.keys(BY_KIND.get(kind)?.cells ?? {});
}

/** The kinds and their primary alias, for usage texts (calicoctl's "Valid resource types are"). */
export function kindList(): string[] {
  return KINDS.map((k) => k.display).sort();
}
