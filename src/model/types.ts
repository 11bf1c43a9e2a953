/**
 * projectcalico.org/v3 resource types, in Calico's own field names.
 *
 * Contract: these are the shapes of *validated* resources as produced by
 * `validateResource` / `parseResources`: defaults applied, value forms canonical (ports as
 * a number, "min:max" or a name; numeric protocols as numbers), selectors kept as written
 * (Calico stores the user's text; parse them with src/selector). Fields optional here are
 * optional in Calico too; after validation the fields marked "Defaulted" are always
 * present, and an absent boolean means false (Calico's omitempty). Changes to this file
 * are additive only: the policy compiler, datastore, CLI and IPAM build on it.
 */
import type { FelixHonouredSpec } from './felix-fields';

export const API_VERSION_V3 = 'projectcalico.org/v3' as const;
export type ApiVersionV3 = typeof API_VERSION_V3;

export interface ObjectMeta {
  name: string;
  /** Present only on namespaced kinds (NetworkPolicy, WorkloadEndpoint). */
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  uid?: string;
  creationTimestamp?: string;
}

/** Calico's numorstring.Protocol: a name (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite) or 1–255. */
export type Protocol = string | number;
/** Calico's numorstring.Port: a number, `"80"`, `"min:max"` or a named port. */
export type Port = number | string;

export type Action = 'Allow' | 'Deny' | 'Log' | 'Pass';
export type PolicyType = 'Ingress' | 'Egress';
export type EncapMode = 'Never' | 'Always' | 'CrossSubnet';

export interface ICMPFields {
  /** 0–254. */
  type?: number;
  /** 0–255; only valid together with `type`. */
  code?: number;
}

export interface ServiceAccountMatch {
  names?: string[];
  selector?: string;
}

export interface ServiceMatch {
  name?: string;
  namespace?: string;
}

export interface EntityRule {
  nets?: string[];
  selector?: string;
  namespaceSelector?: string;
  ports?: Port[];
  notNets?: string[];
  notSelector?: string;
  notPorts?: Port[];
  serviceAccounts?: ServiceAccountMatch;
  /** Calico's Kubernetes-service match; accepted by the model, not enforced by tortie. */
  services?: ServiceMatch;
}

export interface HTTPPath {
  exact?: string;
  prefix?: string;
}

export interface HTTPMatch {
  methods?: string[];
  paths?: HTTPPath[];
}

export interface RuleMetadata {
  annotations?: Record<string, string>;
}

export interface Rule {
  action: Action;
  /** 4 or 6. */
  ipVersion?: number;
  protocol?: Protocol;
  icmp?: ICMPFields;
  notProtocol?: Protocol;
  notICMP?: ICMPFields;
  source?: EntityRule;
  destination?: EntityRule;
  /** Application-layer match: needs Calico's L7 (Envoy) support; tortie rejects it. */
  http?: HTTPMatch;
  metadata?: RuleMetadata;
}

// ---------------------------------------------------------------- IPPool

export interface IPPoolSpec {
  cidr: string;
  /** Defaulted: Never. */
  vxlanMode?: EncapMode;
  /** Defaulted: Never. */
  ipipMode?: EncapMode;
  natOutgoing?: boolean;
  disabled?: boolean;
  disableBGPExport?: boolean;
  /** Defaulted: 26 (v4) / 122 (v6). */
  blockSize?: number;
  /** Defaulted: `all()`. */
  nodeSelector?: string;
  /** Pods in namespaces matching this may use the pool (IPAM); absent = any namespace. */
  namespaceSelector?: string;
  /** Defaulted: ['Workload', 'Tunnel']. */
  allowedUses?: ('Workload' | 'Tunnel' | 'LoadBalancer')[];
  /** Defaulted: Automatic. */
  assignmentMode?: 'Automatic' | 'Manual';
}

export interface IPPool {
  apiVersion: ApiVersionV3;
  kind: 'IPPool';
  metadata: ObjectMeta;
  spec: IPPoolSpec;
}

// ---------------------------------------------------------------- Node

export interface NodeBGPSpec {
  asNumber?: number;
  /**
   * Address WITH its subnet, e.g. `10.0.2.10/24` (host bits kept); decides "same subnet".
   * A bare address is normalised to `/32`.
   */
  ipv4Address?: string;
  /** As ipv4Address; a bare address is normalised to `/128`. */
  ipv6Address?: string;
  ipv4IPIPTunnelAddr?: string;
  routeReflectorClusterID?: string;
}

export interface OrchRef {
  nodeName?: string;
  orchestrator: string;
}

export interface NodeAddress {
  address: string;
  type?: 'InternalIP' | 'ExternalIP' | 'CalicoNodeIP';
}

export interface NodeSpec {
  bgp?: NodeBGPSpec;
  ipv4VXLANTunnelAddr?: string;
  ipv6VXLANTunnelAddr?: string;
  vxlanTunnelMACAddr?: string;
  vxlanTunnelMACAddrV6?: string;
  orchRefs?: OrchRef[];
  addresses?: NodeAddress[];
}

export interface Node {
  apiVersion: ApiVersionV3;
  kind: 'Node';
  metadata: ObjectMeta;
  spec: NodeSpec;
}

// ---------------------------------------------------------------- WorkloadEndpoint

export interface WorkloadEndpointPort {
  name: string;
  /** Required; TCP, UDP or SCTP (by name or number). */
  protocol: Protocol;
  port: number;
  hostPort?: number;
  hostIP?: string;
}

export interface IPNAT {
  internalIP: string;
  externalIP: string;
}

export interface WorkloadEndpointSpec {
  orchestrator?: string;
  workload?: string;
  node?: string;
  containerID?: string;
  pod?: string;
  endpoint?: string;
  serviceAccountName?: string;
  /** Host routes: `/32` (v4) or `/128` (v6). A bare address is normalised to a host route. */
  ipNetworks?: string[];
  ipNATs?: IPNAT[];
  ipv4Gateway?: string;
  ipv6Gateway?: string;
  profiles?: string[];
  /** ≤ 15 characters (Linux IFNAMSIZ - 1). */
  interfaceName?: string;
  mac?: string;
  ports?: WorkloadEndpointPort[];
  allowSpoofedSourcePrefixes?: string[];
}

export interface WorkloadEndpoint {
  apiVersion: ApiVersionV3;
  kind: 'WorkloadEndpoint';
  /** metadata.namespace defaulted to `default`. */
  metadata: ObjectMeta;
  spec: WorkloadEndpointSpec;
}

// ---------------------------------------------------------------- Profile

export interface ProfileSpec {
  ingress?: Rule[];
  egress?: Rule[];
  labelsToApply?: Record<string, string>;
}

export interface Profile {
  apiVersion: ApiVersionV3;
  kind: 'Profile';
  metadata: ObjectMeta;
  spec: ProfileSpec;
}

// ---------------------------------------------------------------- Tier

export interface TierSpec {
  /** Unset = last (after all ordered tiers). The built-in tiers have fixed orders: default
   *  1000000, kube-admin 1000, kube-baseline 10000000 (defaulted when absent). */
  order?: number;
  /** Defaulted: Deny (Pass for kube-admin and kube-baseline). */
  defaultAction?: 'Deny' | 'Pass';
}

export interface Tier {
  apiVersion: ApiVersionV3;
  kind: 'Tier';
  metadata: ObjectMeta;
  spec: TierSpec;
}

// ---------------------------------------------------------------- Policies

export interface NetworkPolicySpec {
  /** Defaulted: `default`. */
  tier?: string;
  /** Unset = last within the tier. */
  order?: number;
  ingress?: Rule[];
  egress?: Rule[];
  /** Defaulted: `all()` (Calico treats an empty selector as all()). */
  selector?: string;
  /** Defaulted from the rule lists as Calico does: egress rules only → [Egress]; ingress and
   *  egress rules → [Ingress, Egress]; otherwise [Ingress]. */
  types?: PolicyType[];
  serviceAccountSelector?: string;
  performanceHints?: string[];
}

export interface GlobalNetworkPolicySpec extends NetworkPolicySpec {
  doNotTrack?: boolean;
  preDNAT?: boolean;
  applyOnForward?: boolean;
  namespaceSelector?: string;
}

export interface NetworkPolicy {
  apiVersion: ApiVersionV3;
  kind: 'NetworkPolicy';
  /** metadata.namespace defaulted to `default`. */
  metadata: ObjectMeta;
  spec: NetworkPolicySpec;
}

export interface GlobalNetworkPolicy {
  apiVersion: ApiVersionV3;
  kind: 'GlobalNetworkPolicy';
  metadata: ObjectMeta;
  spec: GlobalNetworkPolicySpec;
}

// ---------------------------------------------------------------- Namespace

/**
 * A Kubernetes namespace as far as policy cares: its name and labels (namespaceSelector
 * matches these). Calico itself reads them from Kubernetes; tortie stores them as a resource.
 */
export interface Namespace {
  apiVersion: ApiVersionV3;
  kind: 'Namespace';
  metadata: ObjectMeta;
  spec?: Record<string, never>;
}

// ---------------------------------------------------------------- BGP

/** A reference to a key of a secret (Calico: a Kubernetes Secret; tortie: a file, see src/bgp). */
export interface SecretKeySelector {
  name: string;
  key: string;
}

export interface BGPPassword {
  secretKeyRef: SecretKeySelector;
}

export interface ServiceIPBlock {
  cidr: string;
}

export type BGPLogSeverity = 'Debug' | 'Info' | 'Warning' | 'Error' | 'Fatal';

/**
 * Stored as written (Calico's fields are pointers: absent = default). The defaults —
 * asNumber 64512, nodeToNodeMeshEnabled true, listenPort 179, logSeverityScreen Info,
 * nodeMeshMaxRestartTime 120s — are applied by src/bgp when it resolves the effective
 * configuration. `nodeToNodeMeshEnabled`, `asNumber`, `service*IPs`, `nodeMeshPassword` and
 * `nodeMeshMaxRestartTime` are only valid on the `default` resource (as Calico).
 */
export interface BGPConfigurationSpec {
  logSeverityScreen?: BGPLogSeverity;
  nodeToNodeMeshEnabled?: boolean;
  asNumber?: number;
  serviceClusterIPs?: ServiceIPBlock[];
  serviceExternalIPs?: ServiceIPBlock[];
  listenPort?: number;
  nodeMeshPassword?: BGPPassword;
  /** A Go duration as written (`120s`, `5m`). */
  nodeMeshMaxRestartTime?: string;
  bindMode?: 'None';
}

export interface BGPConfiguration {
  apiVersion: ApiVersionV3;
  kind: 'BGPConfiguration';
  metadata: ObjectMeta;
  spec: BGPConfigurationSpec;
}

export interface BGPPeerSpec {
  /** This peering applies to that node only (exclusive with nodeSelector). */
  node?: string;
  /** `ip`, `ip:port` or `[v6]:port`. Exclusive with peerSelector. */
  peerIP?: string;
  /** Required with peerIP; not allowed with peerSelector (the selected nodes' AS is used). */
  asNumber?: number;
  nodeSelector?: string;
  peerSelector?: string;
  keepOriginalNextHop?: boolean;
  password?: BGPPassword;
  /** Defaulted: UseNodeIP. */
  sourceAddress?: 'UseNodeIP' | 'None';
  /** A Go duration as written. */
  maxRestartTime?: string;
  numAllowedLocalASNumbers?: number;
}

export interface BGPPeer {
  apiVersion: ApiVersionV3;
  kind: 'BGPPeer';
  metadata: ObjectMeta;
  spec: BGPPeerSpec;
}

// ---------------------------------------------------------------- network sets

export interface NetworkSetSpec {
  /** CIDRs (a bare address is normalised to a host route), masked as Calico's dataplane uses them. */
  nets?: string[];
  /** Calico Enterprise's DNS-based egress match; accepted by the model, refused by tortie. */
  allowedEgressDomains?: string[];
}

/** A labelled set of CIDRs that rule selectors match (cluster-wide). */
export interface GlobalNetworkSet {
  apiVersion: ApiVersionV3;
  kind: 'GlobalNetworkSet';
  metadata: ObjectMeta;
  spec: NetworkSetSpec;
}

/** A labelled set of CIDRs in a namespace: matched by rule selectors (and namespaceSelector). */
export interface NetworkSet {
  apiVersion: ApiVersionV3;
  kind: 'NetworkSet';
  /** metadata.namespace defaulted to `default`. */
  metadata: ObjectMeta;
  spec: NetworkSetSpec;
}

// ---------------------------------------------------------------- HostEndpoint

export interface HostEndpointPort {
  name: string;
  protocol: Protocol;
  port: number;
}

export interface HostEndpointSpec {
  /** The node the interface is on (required). */
  node?: string;
  /** One host interface (≤ 15 characters), or `*` for all of the node's non-workload
   *  interfaces. Either this or expectedIPs is required. */
  interfaceName?: string;
  /** The endpoint's addresses: rule selectors that match the endpoint match these; without an
   *  interfaceName, the interface holding one of them is the one policed. */
  expectedIPs?: string[];
  profiles?: string[];
  /** Named ports (rule ports may name them). */
  ports?: HostEndpointPort[];
}

/** One or all of a node's own interfaces, policed by host endpoint policy. */
export interface HostEndpoint {
  apiVersion: ApiVersionV3;
  kind: 'HostEndpoint';
  metadata: ObjectMeta;
  spec: HostEndpointSpec;
}

// ---------------------------------------------------------------- IPReservation

export interface IPReservationSpec {
  /** Addresses or CIDRs IPAM must never hand out (bare addresses normalised to host routes). */
  reservedCIDRs?: string[];
}

export interface IPReservation {
  apiVersion: ApiVersionV3;
  kind: 'IPReservation';
  metadata: ObjectMeta;
  spec: IPReservationSpec;
}

// ---------------------------------------------------------------- ClusterInformation

/** Cluster-wide facts written by tortie-node at start-up (Calico: calico-node); one, `default`. */
export interface ClusterInformationSpec {
  /** 32 hex digits, made once. */
  clusterGUID?: string;
  /** Comma-separated, from CLUSTER_TYPE (Calico: e.g. `k8s,bgp`). */
  clusterType?: string;
  /** The version of the node software that last started (`v0.1.0`). */
  calicoVersion?: string;
  /** Set true at start-up when unset; tortie refuses false (it does not pause on it). */
  datastoreReady?: boolean;
  variant?: string;
}

export interface ClusterInformation {
  apiVersion: ApiVersionV3;
  kind: 'ClusterInformation';
  metadata: ObjectMeta;
  spec: ClusterInformationSpec;
}

// ---------------------------------------------------------------- FelixConfiguration

/**
 * Felix's configuration, `default` (every node) and `node.<nodename>`. Only the fields tortie
 * honours are typed here; the model keeps any other Calico field as written and tortie refuses
 * it at apply (src/model/enforced.ts), so none is stored without being in force.
 */
/**
 * The honoured fields with their validated types, as src/model/felix-fields.ts's table defines
 * them; any other field a document carries is kept as written for src/model/enforced.ts to refuse
 * or warn about.
 */
export type FelixConfigurationSpec = FelixHonouredSpec & { [field: string]: unknown };

/** Calico's bpfConntrackTimeouts keys. */
export type FelixConntrackTimer = 'creationGracePeriod' | 'tcpSynSent' | 'tcpEstablished' | 'tcpFinsSeen' | 'tcpResetSeen' | 'udpTimeout' | 'genericTimeout' | 'icmpTimeout';

export interface FelixConfiguration {
  apiVersion: ApiVersionV3;
  kind: 'FelixConfiguration';
  metadata: ObjectMeta;
  spec: FelixConfigurationSpec;
}

// ---------------------------------------------------------------- unions

export type Resource =
  | IPPool
  | Node
  | WorkloadEndpoint
  | Profile
  | Tier
  | NetworkPolicy
  | GlobalNetworkPolicy
  | Namespace
  | BGPConfiguration
  | BGPPeer
  | GlobalNetworkSet
  | NetworkSet
  | HostEndpoint
  | IPReservation
  | ClusterInformation
  | FelixConfiguration;

export type ResourceKind = Resource['kind'];

export const RESOURCE_KINDS: readonly ResourceKind[] = [
  'IPPool',
  'Node',
  'WorkloadEndpoint',
  'Profile',
  'Tier',
  'NetworkPolicy',
  'GlobalNetworkPolicy',
  'Namespace',
  'BGPConfiguration',
  'BGPPeer',
  'GlobalNetworkSet',
  'NetworkSet',
  'HostEndpoint',
  'IPReservation',
  'ClusterInformation',
  'FelixConfiguration',
];

/** Kinds whose resources live in a namespace (metadata.namespace required, default `default`). */
export const NAMESPACED_KINDS: ReadonlySet<ResourceKind> = new Set<ResourceKind>([
  'WorkloadEndpoint',
  'NetworkPolicy',
  'NetworkSet',
]);

export type ResourceOfKind<K extends ResourceKind> = Extract<Resource, { kind: K }>;

/** calicoctl's list shape for `get` of many: `kind: IPPoolList` etc. */
export interface ResourceList<R extends Resource = Resource> {
  apiVersion: ApiVersionV3;
  kind: `${ResourceKind}List`;
  metadata: { resourceVersion?: string };
  items: R[];
}
