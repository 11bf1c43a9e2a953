/**
 * The policies the suite measures, written once and rendered twice: as Calico resources (for
 * tortie's compiler) and as the iptables/ipset rules Calico's classic dataplane programs for
 * the same resources. Pure.
 *
 * The benchmark node has a client and a server workload in namespace `bench` (profile
 * `kns.bench` allows everything, as Kubernetes' namespace profile does). A GlobalNetworkPolicy
 * on the server allows ingress only from endpoints labelled `role == 'member'`:
 *   - `rules - 1` filler rules, TCP to ports 20000… that no test uses (a packet of the test
 *     traffic walks past all of them), then one rule allowing everything from members;
 *   - the member set holds the client plus `members - 1` endpoints on other nodes, addresses
 *     taken from the benchmarking range 198.18.16.0–198.19.255.255 in a scattered order (never
 *     configured on any interface, never sent to).
 *
 * iptables rendering follows Felix's chain layout: FORWARD → cali-FORWARD → from/to-workload
 * dispatch (one rule per interface) → per-endpoint chain: RELATED,ESTABLISHED accept first,
 * INVALID drop, clear the accept mark, the endpoint's policy chains (each allow rule sets the
 * mark and is followed by a RETURN on the mark), profile chains when no policy applies, drop
 * when nothing accepted. Selector memberships are `hash:ip` ipsets (`cali40s:…`).
 *
 * Every rendering takes an address family (default 4). With 6 the same shape is rendered for the
 * IPv6 figures: the client and server are dual stack (their ULA addresses next to the IPv4 ones,
 * as the CNI plugin wires them), the remote members have ULA addresses in fd00:18::/32 (never
 * configured on any interface, never sent to), the ipset is Felix's `cali60s:…` of family inet6
 * for ip6tables-restore, the nftables table is `table ip6 calico` with an `ipv6_addr` set.
 *
 * nftables rendering follows the shape of Felix's nftables dataplane (Calico 3.31): one `calico`
 * table per address family (`table ip calico`, `table ip6 calico`), chains named after the
 * iptables table they stand for (`filter-…`, `raw-…`), a base chain on the forward hook, the
 * from/to-workload dispatch as `iifname`/`oifname` verdict maps onto per-endpoint chains, the
 * same endpoint and policy chains in the same order with the same mark bits (Felix renders both
 * dataplanes from one rule model), named `ipv4_addr` sets for selectors, kernel conntrack
 * (`ct state`), and a counter on every rule as Felix writes them.
 */
import { type GlobalNetworkPolicy, type Namespace, type Node, type Profile, type Resource, type Rule, type WorkloadEndpoint } from '../../src/model';
import { k8sWep } from '../../src/testbed/fixtures';
import { u32ToIpv4 } from '../../src/primitives';

export const BENCH_NODE = 'bench-node';
export const BENCH_NS = 'bench';
export const CLIENT = { name: 'client', ip: '192.168.255.1', ip6: 'fd00:255::1', hostIf: 'calibenchcli' } as const;
export const SERVER = { name: 'server', ip: '192.168.255.2', ip6: 'fd00:255::2', hostIf: 'calibenchsrv' } as const;
export const FILLER_PORT_BASE = 20000;
export const MEMBER_SET = 'cali40s:bench-member';
/** The member set of the IPv6 rendering (Felix names its IPv6 sets cali60s:…). */
export const MEMBER_SET6 = 'cali60s:bench-member';
const V3 = 'projectcalico.org/v3' as const;
const ACCEPT_MARK = '0x10000/0x10000';

export interface PolicyScale { rules: number; members: number }
export type Family = 4 | 6;

export class ScenarioError extends Error {
  readonly code = 'ERR_BENCH_SCENARIO';
  constructor(message: string) {
    super(message);
    this.name = 'ScenarioError';
  }
}

const MEMBER_SPACE_START = (198 << 24 | 18 << 16 | 16 << 8) >>> 0; // 198.18.16.0
const MEMBER_SPACE = 131072 - 4096;                                  // …to 198.19.255.255
const MEMBER_STEP = 7919;                                            // prime, coprime to the space

export function checkScale(s: PolicyScale): void {
  if (!Number.isInteger(s.rules) || s.rules < 1 || s.rules > 50_000) throw new ScenarioError(`rules must be an integer in [1, 50000], got ${s.rules}`);
  if (!Number.isInteger(s.members) || s.members < 1 || s.members > MEMBER_SPACE) {
    throw new ScenarioError(`members must be an integer in [1, ${MEMBER_SPACE}], got ${s.members}`);
  }
}

/** Address of remote member k (0-based): a permutation of the member space, so no two collide. */
export function memberAddress(k: number): string {
  return u32ToIpv4((MEMBER_SPACE_START + ((k * MEMBER_STEP) % MEMBER_SPACE)) >>> 0);
}

/** IPv6 address of remote member k: the same permutation, in fd00:18::/32 (ULA). */
export function memberAddress6(k: number): string {
  const n = (k * MEMBER_STEP) % MEMBER_SPACE;
  return `fd00:18::${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
}

const memberOf = (f: Family) => (f === 6 ? memberAddress6 : memberAddress);
const clientIp = (f: Family) => (f === 6 ? CLIENT.ip6 : CLIENT.ip);

/** `ip6` alone: an IPv6-only endpoint; `ip` and `ip6`: dual stack. `mac`: the workload's
 *  interface's, as Calico's CNI plugin writes it into the endpoint (spec.mac). */
function wep(pod: string, node: string, ip: string | undefined, labels: Record<string, string>, iface: string, ip6?: string, mac?: string): WorkloadEndpoint {
  const w = k8sWep({ node, pod, ip: ip ?? ip6!, iface, namespace: BENCH_NS, labels, profiles: [`kns.${BENCH_NS}`] });
  w.spec.ipNetworks = [...(ip ? [`${ip}/32`] : []), ...(ip6 ? [`${ip6}/128`] : [])];
  if (mac) w.spec.mac = mac;
  return w;
}

/** The local workloads' MACs (their eth0's), which the CNI plugin puts in their endpoints. */
export interface WorkloadMacs { client?: string; server?: string }

export function serverPolicy(s: PolicyScale, version = 0): GlobalNetworkPolicy {
  const member = { selector: "role == 'member'" };
  const ingress: Rule[] = [];
  for (let i = 0; i < s.rules - 1; i++) {
    ingress.push({ action: 'Allow', protocol: 'TCP', source: member, destination: { ports: [FILLER_PORT_BASE + i] } });
  }
  ingress.push({ action: 'Allow', source: member });
  return {
    apiVersion: V3, kind: 'GlobalNetworkPolicy',
    metadata: { name: 'bench-server-ingress', ...(version ? { annotations: { 'bench/version': String(version) } } : {}) },
    spec: { order: 100, selector: "app == 'server'", types: ['Ingress'], ingress },
  };
}

/**
 * Everything tortie's compiler needs for one scale point (node, namespace, profile, endpoints,
 * policy). Family 6: client and server dual stack, the remote members IPv6 only.
 */
/**
 * The scenario as Calico resources. `macs`: the client's and server's endpoints carry their
 * workloads' MACs, as the CNI plugin writes them (tortie's host routing then finds a local
 * destination by its address; without, by a fib lookup per packet).
 */
export function calicoResources(s: PolicyScale, family: Family = 4, macs: WorkloadMacs = {}): Resource[] {
  checkScale(s);
  const out: Resource[] = [];
  out.push({ apiVersion: V3, kind: 'Node', metadata: { name: BENCH_NODE, labels: { 'bench/node': 'true' } }, spec: { bgp: { ipv4Address: '198.18.0.10/24' } } } as Node);
  out.push({ apiVersion: V3, kind: 'Namespace', metadata: { name: BENCH_NS, labels: {} } } as Namespace);
  out.push({ apiVersion: V3, kind: 'Profile', metadata: { name: `kns.${BENCH_NS}` }, spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] } } as Profile);
  const v6 = family === 6;
  out.push(wep(CLIENT.name, BENCH_NODE, CLIENT.ip, { app: 'client', role: 'member' }, CLIENT.hostIf, v6 ? CLIENT.ip6 : undefined, macs.client));
  out.push(wep(SERVER.name, BENCH_NODE, SERVER.ip, { app: 'server' }, SERVER.hostIf, v6 ? SERVER.ip6 : undefined, macs.server));
  for (let k = 0; k < s.members - 1; k++) {
    out.push(wep(`member-${k}`, 'bench-remote', v6 ? undefined : memberAddress(k), { app: 'remote', role: 'member' }, `calim${k}`, v6 ? memberAddress6(k) : undefined));
  }
  out.push(serverPolicy(s));
  return out;
}

/** `ipset restore` input: the member set (client + remote members) of `family`. */
export function ipsetRestore(s: PolicyScale, family: Family = 4): string {
  checkScale(s);
  const set = family === 6 ? MEMBER_SET6 : MEMBER_SET;
  const member = memberOf(family);
  const lines = [`create ${set} hash:ip family ${family === 6 ? 'inet6' : 'inet'} hashsize 1024 maxelem ${Math.max(1_048_576, s.members * 2)}`, `add ${set} ${clientIp(family)}`];
  for (let k = 0; k < s.members - 1; k++) lines.push(`add ${set} ${member(k)}`);
  return lines.join('\n') + '\n';
}

function endpointChains(suffix: string, fromWl: boolean, policies: string[], profiles: string[]): string[] {
  const ch = `cali-${fromWl ? 'fw' : 'tw'}-${suffix}`;
  const r = [
    `-A ${ch} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A ${ch} -m conntrack --ctstate INVALID -j DROP`,
    `-A ${ch} -j MARK --set-xmark 0x0/0x10000`,
  ];
  if (policies.length > 0) {
    for (const p of policies) {
      r.push(`-A ${ch} -m mark --mark 0x0/0x20000 -j ${p}`, `-A ${ch} -m mark --mark ${ACCEPT_MARK} -j RETURN`);
    }
    r.push(`-A ${ch} -m mark --mark 0x0/0x20000 -j DROP`);
  } else {
    for (const p of profiles) r.push(`-A ${ch} -j ${p}`, `-A ${ch} -m mark --mark ${ACCEPT_MARK} -j RETURN`);
    r.push(`-A ${ch} -j DROP`);
  }
  return r;
}

/**
 * `iptables-restore` input for the filter table: what Felix programs for the same resources
 * (the client's egress falls to its profile, the server's ingress to the policy). Family 6: the
 * `ip6tables-restore` input, identical but for the set it matches.
 */
export function iptablesRestore(s: PolicyScale, family: Family = 4): string {
  checkScale(s);
  const pol = 'cali-pi-bench-server-ingr';
  const pro = `cali-pro-kns.${BENCH_NS}`;
  const pri = `cali-pri-kns.${BENCH_NS}`;
  const chains = ['cali-FORWARD', 'cali-from-wl-dispatch', 'cali-to-wl-dispatch', 'cali-fw-benchcli', 'cali-tw-benchcli', 'cali-fw-benchsrv', 'cali-tw-benchsrv', pol, pro, pri];
  const L: string[] = ['*filter', ...chains.map((c) => `:${c} - [0:0]`)];
  L.push('-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD');
  L.push('-A cali-FORWARD -m mark --mark 0x0/0x10000 -j MARK --set-xmark 0x0/0x70000');
  L.push('-A cali-FORWARD -i cali+ -j cali-from-wl-dispatch');
  L.push('-A cali-FORWARD -o cali+ -j cali-to-wl-dispatch');
  L.push(`-A cali-FORWARD -m mark --mark ${ACCEPT_MARK} -j ACCEPT`);
  L.push(`-A cali-from-wl-dispatch -i ${CLIENT.hostIf} -g cali-fw-benchcli`, `-A cali-from-wl-dispatch -i ${SERVER.hostIf} -g cali-fw-benchsrv`, '-A cali-from-wl-dispatch -j DROP');
  L.push(`-A cali-to-wl-dispatch -o ${CLIENT.hostIf} -g cali-tw-benchcli`, `-A cali-to-wl-dispatch -o ${SERVER.hostIf} -g cali-tw-benchsrv`, '-A cali-to-wl-dispatch -j DROP');
  L.push(...endpointChains('benchcli', true, [], [pro]));
  L.push(...endpointChains('benchcli', false, [], [pri]));
  L.push(...endpointChains('benchsrv', true, [], [pro]));
  L.push(...endpointChains('benchsrv', false, [pol], []));
  L.push(`-A ${pro} -j MARK --set-xmark ${ACCEPT_MARK}`, `-A ${pro} -m mark --mark ${ACCEPT_MARK} -j RETURN`);
  L.push(`-A ${pri} -j MARK --set-xmark ${ACCEPT_MARK}`, `-A ${pri} -m mark --mark ${ACCEPT_MARK} -j RETURN`);
  const set = `-m set --match-set ${family === 6 ? MEMBER_SET6 : MEMBER_SET} src`;
  for (let i = 0; i < s.rules - 1; i++) {
    L.push(`-A ${pol} -p tcp ${set} -m multiport --destination-ports ${FILLER_PORT_BASE + i} -j MARK --set-xmark ${ACCEPT_MARK}`);
    L.push(`-A ${pol} -m mark --mark ${ACCEPT_MARK} -j RETURN`);
  }
  L.push(`-A ${pol} ${set} -j MARK --set-xmark ${ACCEPT_MARK}`, `-A ${pol} -m mark --mark ${ACCEPT_MARK} -j RETURN`);
  L.push('COMMIT', '');
  return L.join('\n');
}

/** Number of iptables rules `iptablesRestore` programs (reported next to the figures). */
export function iptablesRuleCount(s: PolicyScale): number {
  return iptablesRestore(s).split('\n').filter((l) => l.startsWith('-A ')).length;
}

// ------------------------------------------------------------------ nftables

export const NFT_TABLE = 'calico';
/** The member set's name in the nftables table (nft set names take no colon). */
export const NFT_MEMBER_SET = 'cali40s-bench-member';
const NFT_ACCEPT = '0x00010000';
const NFT_PASS = '0x00020000';

function nftEndpointChain(T: string, ch: string, policies: string[], profiles: string[]): string[] {
  const accepted = `meta mark & ${NFT_ACCEPT} == ${NFT_ACCEPT}`;
  const r = [
    `add rule ${T} ${ch} ct state established,related counter accept`,
    `add rule ${T} ${ch} ct state invalid counter drop`,
    `add rule ${T} ${ch} counter meta mark set meta mark & 0xfffeffff`,
  ];
  if (policies.length > 0) {
    for (const p of policies) {
      r.push(`add rule ${T} ${ch} meta mark & ${NFT_PASS} == 0x00000000 counter jump ${p}`, `add rule ${T} ${ch} ${accepted} counter return`);
    }
    r.push(`add rule ${T} ${ch} meta mark & ${NFT_PASS} == 0x00000000 counter drop`);
  } else {
    for (const p of profiles) r.push(`add rule ${T} ${ch} counter jump ${p}`, `add rule ${T} ${ch} ${accepted} counter return`);
    r.push(`add rule ${T} ${ch} counter drop`);
  }
  return r;
}

/**
 * `nft -f` input: the whole `calico` table for the scenario, replacing any earlier one (the
 * table is created, then deleted and created again, so a reload is atomic and leaves nothing of
 * the previous scale). `prefilterUplink`: also the doNotTrack deny of `prefilterPolicy` as a
 * raw-priority drop on that interface (IPv4 only). `family` 6: `table ip6 calico` for the IPv6
 * rendering of the scenario.
 */
export function nftablesRuleset(s: PolicyScale, opts: { prefilterUplink?: string; family?: Family } = {}): string {
  checkScale(s);
  const family = opts.family ?? 4;
  if (family === 6 && opts.prefilterUplink) throw new ScenarioError('the prefilter scenario is IPv4 only');
  const T = `${nftFamily(family)} ${NFT_TABLE}`;
  const pol = 'filter-cali-pi-bench-server-ingr';
  const pro = `filter-cali-pro-kns.${BENCH_NS}`;
  const pri = `filter-cali-pri-kns.${BENCH_NS}`;
  const fw = (e: string) => `filter-cali-fw-${e}`;
  const tw = (e: string) => `filter-cali-tw-${e}`;
  const accepted = `meta mark & ${NFT_ACCEPT} == ${NFT_ACCEPT}`;
  const setAccept = `meta mark set meta mark | ${NFT_ACCEPT}`;
  const L: string[] = [`add table ${T}`, `delete table ${T}`, `add table ${T}`];
  L.push(`add set ${T} ${NFT_MEMBER_SET} { type ${family === 6 ? 'ipv6_addr' : 'ipv4_addr'}; }`);
  const member = memberOf(family);
  const members = [clientIp(family), ...Array.from({ length: s.members - 1 }, (_, k) => member(k))];
  for (let i = 0; i < members.length; i += 5000) L.push(`add element ${T} ${NFT_MEMBER_SET} { ${members.slice(i, i + 5000).join(', ')} }`);
  const chains = ['filter-cali-FORWARD', 'filter-cali-from-wl-dispatch', 'filter-cali-to-wl-dispatch', fw('benchcli'), tw('benchcli'), fw('benchsrv'), tw('benchsrv'), pol, pro, pri];
  for (const c of chains) L.push(`add chain ${T} ${c}`);
  L.push(`add map ${T} filter-cali-from-wl-dispatch { type ifname : verdict; }`, `add map ${T} filter-cali-to-wl-dispatch { type ifname : verdict; }`);
  L.push(`add element ${T} filter-cali-from-wl-dispatch { "${CLIENT.hostIf}" : goto ${fw('benchcli')}, "${SERVER.hostIf}" : goto ${fw('benchsrv')} }`);
  L.push(`add element ${T} filter-cali-to-wl-dispatch { "${CLIENT.hostIf}" : goto ${tw('benchcli')}, "${SERVER.hostIf}" : goto ${tw('benchsrv')} }`);
  L.push(`add chain ${T} filter-FORWARD { type filter hook forward priority filter; policy accept; }`);
  L.push(`add rule ${T} filter-FORWARD counter jump filter-cali-FORWARD`);
  L.push(`add rule ${T} filter-cali-FORWARD meta mark & ${NFT_ACCEPT} == 0x00000000 counter meta mark set meta mark & 0xfff8ffff`);
  L.push(`add rule ${T} filter-cali-FORWARD iifname "cali*" counter jump filter-cali-from-wl-dispatch`);
  L.push(`add rule ${T} filter-cali-FORWARD oifname "cali*" counter jump filter-cali-to-wl-dispatch`);
  L.push(`add rule ${T} filter-cali-FORWARD ${accepted} counter accept`);
  // An interface named cali* with no endpoint is dropped, as in Felix.
  L.push(`add rule ${T} filter-cali-from-wl-dispatch iifname vmap @filter-cali-from-wl-dispatch`, `add rule ${T} filter-cali-from-wl-dispatch counter drop`);
  L.push(`add rule ${T} filter-cali-to-wl-dispatch oifname vmap @filter-cali-to-wl-dispatch`, `add rule ${T} filter-cali-to-wl-dispatch counter drop`);
  L.push(...nftEndpointChain(T, fw('benchcli'), [], [pro]));
  L.push(...nftEndpointChain(T, tw('benchcli'), [], [pri]));
  L.push(...nftEndpointChain(T, fw('benchsrv'), [], [pro]));
  L.push(...nftEndpointChain(T, tw('benchsrv'), [pol], []));
  for (const p of [pro, pri]) L.push(`add rule ${T} ${p} counter ${setAccept}`, `add rule ${T} ${p} ${accepted} counter return`);
  const src = `${family === 6 ? 'ip6' : 'ip'} saddr @${NFT_MEMBER_SET}`;
  for (let i = 0; i < s.rules - 1; i++) {
    L.push(`add rule ${T} ${pol} ${src} tcp dport ${FILLER_PORT_BASE + i} counter ${setAccept}`);
    L.push(`add rule ${T} ${pol} ${accepted} counter return`);
  }
  L.push(`add rule ${T} ${pol} ${src} counter ${setAccept}`, `add rule ${T} ${pol} ${accepted} counter return`);
  if (opts.prefilterUplink) {
    L.push(`add chain ${T} raw-PREROUTING { type filter hook prerouting priority raw; policy accept; }`);
    L.push(`add rule ${T} raw-PREROUTING iifname "${opts.prefilterUplink}" ip saddr ${PREFILTER_SOURCE} counter drop`);
  }
  return L.join('\n') + '\n';
}

/** Number of rules `nftablesRuleset` programs (reported next to the figures). */
export function nftablesRuleCount(s: PolicyScale, family: Family = 4): number {
  return nftablesRuleset(s, { family }).split('\n').filter((l) => l.startsWith('add rule ')).length;
}

/** The nftables family keyword of the table for `family`. */
export function nftFamily(family: Family): 'ip' | 'ip6' {
  return family === 6 ? 'ip6' : 'ip';
}

// ------------------------------------------------------------------ prefilter

export const PREFILTER_SOURCE = '198.18.1.0/24';

/** A doNotTrack policy on the node's host endpoint denying a source range (Calico's way to drop early). */
export function prefilterPolicy(): GlobalNetworkPolicy {
  return {
    apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'bench-deny-early' },
    spec: { order: 10, selector: "bench/node == 'true'", doNotTrack: true, applyOnForward: true, types: ['Ingress'],
      ingress: [{ action: 'Deny', source: { nets: [PREFILTER_SOURCE] } }] },
  };
}

/** What Felix programs for that policy: a raw-table DROP in PREROUTING. */
export function iptablesRawDrop(uplink: string): string {
  return ['*raw', ':cali-PREROUTING - [0:0]', '-A PREROUTING -j cali-PREROUTING',
    `-A cali-PREROUTING -i ${uplink} -s ${PREFILTER_SOURCE} -j DROP`, 'COMMIT', ''].join('\n');
}
