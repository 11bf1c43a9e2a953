/**
 * src/calc/types — the datapath-agnostic compiled form of policy for one node.
 *
 * Contract (between the policy compiler in src/calc and the map encoder in src/dataplane/bpf):
 *
 * Per packet, for a local endpoint E and a direction D (ingress = to the workload, egress = from
 * it), the datapath finds the verdict with a constant number of lookups:
 *
 *   1. g  = LPM(remote address) in `classes.prefixes` (absent → global class 0)
 *           remote address = source IP for ingress, destination IP for egress;
 *   2. t  = E.tables[D] (a table id); l = t.projection[g] (absent → local class 0);
 *   3. p  = the packet's IP protocol if it is in t.protocols, else PROTO_OTHER;
 *   4. sp = class of the packet's source port in t.srcPortClasses[p] (no entry for p, or the
 *           port is in no listed range → source-port class 0);
 *   5. the cell of t with (localClass l, protocol p, srcPortClass sp) whose [portMin, portMax]
 *      contains the packet's destination port value → action, deciding rule, Log rules hit.
 *
 * Port values (`portValues` in lookup.ts is the executable definition):
 *   - TCP (6), UDP (17), SCTP (132), UDPLite (136): the L4 source / destination ports;
 *   - ICMP (1), ICMPv6 (58): source port 0, destination port value = type << 8 | code, so ICMP
 *     type/code rules use the same dimension as ports;
 *   - any other protocol: both 0.
 * For every (localClass, protocol, srcPortClass) that a table has, its cells partition
 * [0, 65535] exactly (no gap, no overlap), and every table has cells for every local class in
 * [0, localClassCount) × (protocols ∪ {PROTO_OTHER}) × its source-port classes: a lookup never
 * misses. Cells are sorted by (localClass, protocol, srcPortClass, portMin).
 *
 * Protocol semantics the cells encode: ports/notPorts only match TCP/UDP/SCTP/UDPLite packets,
 * icmp/notICMP only ICMP/ICMPv6 packets (a rule with such a match never matches other protocols).
 *
 * Both families: `classes.prefixes` holds IPv4 (family 4) and IPv6 (family 6) prefixes of one
 * partition (a class id means the same membership in either family), so one table serves IPv4 and
 * IPv6 packets. Rules are rendered per family as Felix does (rules.ts): ipVersion, and a
 * nets/notNets list with CIDRs of one family only, restrict a rule to that family.
 *
 * Why this split: the global class LPM is shared by all tables (one entry per distinct
 * membership combination of the prefixes that matter), each table only distinguishes the
 * classes that change its verdicts (the projection, typically small), and Pass/Log/order/
 * negations are all resolved into the cells at compile time. Local classes are verdict-
 * equivalence classes: two global classes with identical cells in a table share one local class;
 * local class 0 is the one of "member of none of this table's sets" and is never projected to, so
 * the projection lists only the global classes that this table treats differently from unknown
 * addresses. Local classes are numbered by a hash of their cells (0 first), so the numbering is a
 * function of current state.
 *
 * Identity and atomicity:
 *   - A table id is a content hash of its cells, source-port classes and the policy definition
 *     it was built from. Endpoints with equal definitions share one table. A table's cells never
 *     change under the same id; a change yields a new id and the endpoint switches over (the
 *     datapath double-buffers per endpoint).
 *   - `projection` entries of a table can be added or removed under the same id, but an existing
 *     (table, global class) pair never changes its local class. Ordering for the datapath: apply
 *     projection additions and new tables before prefix changes and endpoint switches, and
 *     projection removals / table removals after them (CalcDelta says which is which).
 *   - Global class ids are a pure function of the class's membership signature (a 32-bit hash,
 *     probing on the rare collision), 0 = "member of no set". Rule ids are likewise a hash of
 *     (tier, policy, direction, index/kind). Both are ≥ 1 and < 2^32.
 *
 * Output depends only on the current resources (not on the order updates arrived in).
 */
import type { IpFamily } from '../primitives';

/** Address family of a prefix. Only 4 is compiled today; the types are ready for 6. */
export type IPFamily = IpFamily;

/** Protocol value meaning "any protocol not listed in the table's `protocols`". */
export const PROTO_OTHER = 256;

// Protocol sets (PORT_PROTOCOLS: ports are read; ICMP_PROTOCOLS: type/code go in the destination
// port value): src/primitives/protocols.ts.

export type Direction = 'ingress' | 'egress';
export const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];

export type Verdict = 'allow' | 'deny';

// ---------------------------------------------------------------------------- classes

/** One LPM entry: every address under `prefix` not covered by a longer entry is in `classId`. */
export interface ClassPrefix {
  family: IPFamily;
  /** Canonical CIDR text, host bits zero, e.g. `10.0.0.0/8`, `192.168.1.7/32`. */
  cidr: string;
  classId: number;
}

/**
 * The partition of remote addresses. A prefix with an empty membership (class 0) is not listed:
 * absence means class 0.
 */
export interface AddressClasses {
  /** Sorted by (family, address, prefix length). */
  prefixes: ClassPrefix[];
  /**
   * Live global class ids (excluding 0), sorted; for debugging each maps to a human-readable
   * membership description (set keys, see `setKeys`).
   */
  classes: GlobalClassInfo[];
}

export interface GlobalClassInfo {
  classId: number;
  /** Sorted keys of the sets this class is a member of (e.g. `sel:…`, `cidr:…`, `np:…=6:80`). */
  members: string[];
}

// ---------------------------------------------------------------------------- tables

export interface SrcPortRange {
  portMin: number;
  portMax: number;
  /** ≥ 1; ports in no range are in source-port class 0. */
  srcPortClass: number;
}

export interface VerdictCell {
  localClass: number;
  /** IP protocol number, or PROTO_OTHER. */
  protocol: number;
  srcPortClass: number;
  /** Inclusive destination port value range (see "Port values"). */
  portMin: number;
  portMax: number;
  action: Verdict;
  /** Rule id (see RuleInfo) of the rule, end of tier or default that decided. */
  ruleId: number;
  /** Ids of the Log rules matched before the decision, in evaluation order. */
  logRuleIds: number[];
}

export interface VerdictTable {
  /** Content hash, 16 lowercase hex digits. */
  id: string;
  direction: Direction;
  /** Number of local classes; local class 0 is the class of addresses in no relevant set. */
  localClassCount: number;
  /**
   * global class id → local class id (≥ 1 only; absent = 0), packed: pairs [globalClass,
   * localClass] one after the other (length = 2 × entries), sorted by globalClass. Packed because
   * a table's projection has one entry per global class with one of its atoms (~14,000 at
   * 100,000 endpoints): as objects, building them was a large share of a policy edit's flush.
   * `projectionEntries` / `packProjection` (lookup.ts) convert.
   */
  projection: Uint32Array;
  /** Protocols this table distinguishes, sorted; all others are looked up as PROTO_OTHER. */
  protocols: number[];
  /** Per protocol (incl. PROTO_OTHER) that matches on source ports, its source-port classes. */
  srcPortClasses: { protocol: number; ranges: SrcPortRange[] }[];
  cells: VerdictCell[];
  /**
   * Tables of a host endpoint's doNotTrack and preDNAT stages only: the rule id of the cells in
   * which no policy decided (kind 'stage-end'); the datapath goes on to the next stage there.
   */
  passThroughRule?: number;
}

export interface ProjectionEntry {
  globalClass: number;
  localClass: number;
}

// ---------------------------------------------------------------------------- rules (flow logs)

export type PolicyKind = 'GlobalNetworkPolicy' | 'NetworkPolicy' | 'Profile';

export type RuleKind =
  /** A rule of a policy or profile, `index` is its position in the direction's list. */
  | 'rule'
  /** End of a tier in which some policy applied and none decided: the tier's default (Deny). */
  | 'end-of-tier'
  /** No policy applied and no profile decided (or the endpoint has no profile): drop. */
  | 'no-profile-match'
  /**
   * Host endpoints' doNotTrack and preDNAT tables: no policy of the stage decided, so the packet
   * goes on to the next stage (action 'Pass'; the cells carry it as a deny whose rule is the
   * table's `passThroughRule`).
   */
  | 'stage-end';

export interface RuleInfo {
  id: number;
  kind: RuleKind;
  direction: Direction;
  /** Tier name for policy rules and end-of-tier; absent for profile rules and defaults. */
  tier?: string;
  policy?: { kind: PolicyKind; namespace?: string; name: string };
  /** Index in the policy's/profile's rule list for kind 'rule'. */
  index?: number;
  /** Action of the rule ('Log' for log rules); for defaults the verdict applied. */
  action: 'Allow' | 'Deny' | 'Pass' | 'Log';
}

// ---------------------------------------------------------------------------- endpoints

export interface LocalEndpoint {
  /** `namespace/name` of the WorkloadEndpoint. */
  key: string;
  namespace: string;
  name: string;
  interfaceName?: string;
  /** Canonical CIDRs of spec.ipNetworks (for anti-spoofing). */
  ipNetworks: string[];
  mac?: string;
  /** Table id per direction (a host endpoint: its normal policy, for traffic to/from the host). */
  tables: { ingress: string; egress: string };
  /** A HostEndpoint of this node (key `HostEndpoint:<name>`, namespace ''). */
  host?: LocalHostEndpoint;
}

/**
 * A host endpoint's stages besides its normal ingress/egress tables. An absent slot means the
 * stage has no policy: forwarded traffic is allowed in that direction (Calico: with no
 * applyOnForward policy, forwarded traffic is not policed), doNotTrack / preDNAT go on.
 */
export type HostSlot = 'forwardIngress' | 'forwardEgress' | 'preDNAT' | 'untrackedIngress' | 'untrackedEgress';
export const HOST_SLOTS: readonly HostSlot[] = ['forwardIngress', 'forwardEgress', 'preDNAT', 'untrackedIngress', 'untrackedEgress'];

export interface LocalHostEndpoint {
  /** One interface, `*` (every host interface that has no host endpoint of its own), or absent
   *  (the interface holding one of expectedIPs). */
  interfaceName?: string;
  expectedIPs: string[];
  tables: Partial<Record<HostSlot, string>>;
  /**
   * Stages whose rules match the local address (ingress destination.nets/notNets, egress
   * source.nets/notNets): the stage's table per region of those nets, each region named by its
   * canonical net (`0.0.0.0/0`: in none of them; that region's table is also the stage's entry in
   * `tables`). A packet takes the table of the longest listed net holding its local address.
   */
  local?: Partial<Record<'ingress' | 'egress' | HostSlot, { cidr: string; table: string }[]>>;
}

// ---------------------------------------------------------------------------- prefilter

/**
 * Stateless uplink prefilter from doNotTrack GlobalNetworkPolicies that select this node's
 * (implicit) host endpoint: ingress Deny rules whose only match is `source.nets` become deny-
 * listed CIDRs. Other doNotTrack / preDNAT / applyOnForward rules are not enforced by tortie;
 * they are listed in `skipped` with the reason so the agent can log them.
 */
export interface Prefilter {
  deny: { family: IPFamily; cidr: string; ruleId: number }[];
  skipped: { ruleId: number; reason: string }[];
}

// ---------------------------------------------------------------------------- routing

/** Routing inputs, passed through for src/dataplane's route manager (not designed here). */
export interface RoutingState {
  pools: { name: string; cidr: string; ipipMode: string; vxlanMode: string; natOutgoing: boolean; disabled: boolean; blockSize: number }[];
  nodes: { name: string; ipv4Address?: string; ipv6Address?: string; ipv4IPIPTunnelAddr?: string }[];
  /** Remote workload routes: every non-local WorkloadEndpoint address and its node. */
  workloadRoutes: { cidr: string; node: string }[];
}

// ---------------------------------------------------------------------------- whole state

export interface CompiledState {
  nodeName: string;
  classes: AddressClasses;
  /** Sorted by id. Only tables referenced by a local endpoint. */
  tables: VerdictTable[];
  /** Sorted by key. */
  endpoints: LocalEndpoint[];
  /** Sorted by id. The rules of the policies/profiles in live tables, and the prefilter's. */
  rules: RuleInfo[];
  prefilter: Prefilter;
  routing: RoutingState;
}

/**
 * What changed since the previous flush. Apply in this order for atomicity:
 *   1. rulesUpserted; tablesAdded; projectionAdded (new classes become reachable in old tables);
 *   2. prefixesUpserted / prefixesRemoved (addresses move between classes);
 *   3. endpointsUpserted (switch to new table ids) / endpointsRemoved;
 *   4. projectionRemoved; tablesRemoved; rulesRemoved.
 * `classesAdded`/`classesRemoved` list global class ids that appeared / disappeared.
 */
export interface CalcDelta {
  classesAdded: GlobalClassInfo[];
  classesRemoved: number[];
  prefixesUpserted: ClassPrefix[];
  prefixesRemoved: { family: IPFamily; cidr: string }[];
  tablesAdded: VerdictTable[];
  tablesRemoved: string[];
  /** Additions to tables that are neither added nor removed in this delta. */
  projectionAdded: { tableId: string; entries: ProjectionEntry[] }[];
  projectionRemoved: { tableId: string; globalClasses: number[] }[];
  endpointsUpserted: LocalEndpoint[];
  endpointsRemoved: string[];
  rulesUpserted: RuleInfo[];
  rulesRemoved: number[];
  prefilterChanged: boolean;
  prefilter?: Prefilter;
  /** Pools or nodes changed: `routing` carries both lists in full (workloadRoutes left empty). */
  routingChanged: boolean;
  routing?: RoutingState;
  /** Remote workload routes, as deltas (the full list is in snapshots only). */
  workloadRoutesUpserted: { cidr: string; node: string }[];
  workloadRoutesRemoved: string[];
}

// ---------------------------------------------------------------------------- reference evaluator

/** A packet as the policy sees it, from the local endpoint's point of view. */
export interface PolicyPacket {
  direction: Direction;
  /** `namespace/name` of the local WorkloadEndpoint. */
  endpoint: string;
  /** Remote address (source for ingress, destination for egress), IPv4 dotted quad. */
  remoteIP: string;
  /** Local address; defaults to the endpoint's first address of the family. */
  localIP?: string;
  protocol: number;
  srcPort?: number;
  dstPort?: number;
  icmpType?: number;
  icmpCode?: number;
}

export interface EvalResult {
  action: Verdict;
  /** The deciding rule as a RuleInfo without id (ids are the compiler's business). */
  decidedBy: Omit<RuleInfo, 'id'>;
  logs: Omit<RuleInfo, 'id'>[];
}
