/**
 * The BIRD 2 configuration of one node, rendered from datastore state (what Calico's confd
 * templates do for BIRD 1, written for bird2's syntax).
 *
 * Contract: `renderBird(state)` is pure — the same state gives byte-identical text (peers
 * sorted by address, blocks by CIDR) — and never throws for any validated input: what
 * cannot be rendered (a peer without an address, a missing secret) is left out and reported in
 * `problems`, one sentence each, so the caller can log it. `effectiveBgpConfig` applies Calico's
 * defaults (asNumber 64512, mesh on, port 179, Info, 120 s restart time) and the node-specific
 * `node.<name>` resource on top of `default`.
 *
 *   nodes, BGPConfiguration, BGPPeer, pools,        ┌──────────────┐
 *   this node's affine blocks, borrowed addresses ──►│  renderBird  │──► bird.conf text + problems
 *   secrets (name, key) → text                       └──────────────┘
 *
 * What the text does (names matter: `tortiectl node status` reads the peer type from them):
 * - `Mesh_<ip>` node-to-node mesh peers (when nodeToNodeMeshEnabled), passive towards nodes
 *   whose address string sorts after ours (Calico's rule, so only one side connects and a
 *   graceful restart is not aborted by a crossing connection); `Node_<ip>` peers from BGPPeers
 *   with `node`/`nodeSelector`, `Global_<ip>` from global BGPPeers; `_port_<n>` appended for a
 *   peer port other than 179; a mesh neighbour is reached on its own listenPort. As in Calico's
 *   template, a route reflector (routeReflectorClusterID) takes no part in the mesh and the mesh
 *   skips route reflectors. Peers with a peerSelector resolve to the selected nodes' addresses
 *   and AS numbers; a route reflector treats iBGP peers without its cluster ID as `rr client`;
 *   keepOriginalNextHop applies to eBGP peers only (Calico's rule).
 * - Static protocols: `tortie_blocks` (blackholes for this node's affine blocks: exported to
 *   the kernel and to peers), `tortie_borrowed` (a /32 per address this node uses from another
 *   node's block: advertised only), `tortie_services` (serviceClusterIPs/serviceExternalIPs:
 *   advertised only).
 * - Two kernel protocols: `tortie_kernel_blocks` installs the own-block blackholes in the main
 *   table; `tortie_kernel_learned` writes every route learned from a peer inside a pool to a
 *   private table (DEFAULT_LEARNED_TABLE, looked up by no rule). tortie-node reads that table
 *   and programs the routes itself (kernel routes with its own protocol number and BPF
 *   route-map entries; IPIP or direct by the pool's mode — the kernel here has no ipip module,
 *   so bird must not install routes that need it). `persist` keeps bird's routes when it
 *   stops; graceful restart lets peers keep ours while it restarts.
 * - IPv6 (what Calico's bird6 template does, in the same bird2): when this node has
 *   `bgp.ipv6Address`, sessions to IPv6 addresses carry the ipv6 channel (IPv4 sessions carry
 *   ipv4 only, as Calico's separate bird and bird6 do): mesh peers to every node with an IPv6
 *   address (same passive rule on the IPv6 address strings, `source address` our IPv6 address),
 *   BGPPeers with an IPv6 peerIP, and for peerSelector peers the selected nodes' IPv6 addresses
 *   too. The IPv6 pools, own IPv6 blocks (`tortie_blocks6`), borrowed /128s and IPv6 service CIDRs
 *   get their own static, kernel and pipe protocols (`tortie_learned6` into the same kernel table).
 *   The router id is the IPv4 address, or on a node with only an IPv6 address Calico's
 *   `CALICO_ROUTER_ID=hash` value (routerIdHash) — BGP router ids are four octets even in MP-BGP.
 */
import {
  DEFAULT_AS_NUMBER,
  DEFAULT_BGP_PORT,
  DEFAULT_MAX_RESTART_SECONDS,
  parseDuration,
  parsePeerIP,
  type BGPConfiguration,
  type BGPLogSeverity,
  type BGPPassword,
  type BGPPeer,
  type IPPool,
  type Node,
} from '../model';
import { parseSelector } from '../selector';
import { createHash } from 'node:crypto';
import { formatIP, parseIP } from '../primitives';

export interface BgpState {
  /** The node this configuration is for. */
  nodeName: string;
  nodes: readonly Node[];
  bgpConfigurations: readonly BGPConfiguration[];
  bgpPeers: readonly BGPPeer[];
  pools: readonly IPPool[];
  /** This node's affine blocks (CIDRs, IPv4 and IPv6). */
  blocks: readonly string[];
  /** Addresses this node's workloads use from blocks affine to other nodes. */
  borrowed: readonly string[];
  /** Kernel table bird writes learned routes to (default DEFAULT_LEARNED_TABLE). */
  learnedTable?: number;
  /** Resolves a password secret; undefined when it does not exist. */
  secret?: (name: string, key: string) => string | undefined;
}

/** The kernel table bird installs learned routes in; no ip rule looks it up. */
export const DEFAULT_LEARNED_TABLE = 122;

export interface EffectiveBgpConfig {
  asNumber: number;
  nodeToNodeMeshEnabled: boolean;
  listenPort: number;
  logSeverityScreen: BGPLogSeverity;
  nodeMeshPassword?: BGPPassword;
  nodeMeshMaxRestartSeconds: number;
  serviceClusterIPs: string[];
  serviceExternalIPs: string[];
}

export interface RenderResult {
  config: string;
  problems: string[];
  /** Peers rendered, by protocol name (for callers and tests). */
  peers: RenderedPeer[];
}

export type PeerType = 'node-to-node mesh' | 'global' | 'node specific';

export interface RenderedPeer {
  protocol: string;
  type: PeerType;
  ip: string;
  port: number;
  asNumber: number;
  passive: boolean;
  rrClient: boolean;
}

export function effectiveBgpConfig(configs: readonly BGPConfiguration[], nodeName: string): EffectiveBgpConfig {
  const def = configs.find((c) => c.metadata.name === 'default')?.spec ?? {};
  const mine = configs.find((c) => c.metadata.name === `node.${nodeName}`)?.spec ?? {};
  return {
    asNumber: def.asNumber ?? DEFAULT_AS_NUMBER,
    nodeToNodeMeshEnabled: def.nodeToNodeMeshEnabled ?? true,
    listenPort: mine.listenPort ?? def.listenPort ?? DEFAULT_BGP_PORT,
    logSeverityScreen: mine.logSeverityScreen ?? def.logSeverityScreen ?? 'Info',
    nodeMeshPassword: def.nodeMeshPassword,
    nodeMeshMaxRestartSeconds: restartSeconds(def.nodeMeshMaxRestartTime),
    serviceClusterIPs: (def.serviceClusterIPs ?? []).map((b) => b.cidr),
    serviceExternalIPs: (def.serviceExternalIPs ?? []).map((b) => b.cidr),
  };
}

function restartSeconds(d: string | undefined): number {
  const s = d === undefined ? undefined : parseDuration(d);
  return s === undefined ? DEFAULT_MAX_RESTART_SECONDS : Math.max(1, Math.round(s));
}

/** The node's BGP IPv4 address without its prefix, or undefined. */
export function nodeIPv4(n: Node): string | undefined {
  const a = n.spec.bgp?.ipv4Address;
  return a === undefined ? undefined : a.split('/')[0];
}

/** The node's BGP IPv6 address without its prefix, in the canonical (RFC 5952) form, or undefined. */
export function nodeIPv6(n: Node): string | undefined {
  const a = n.spec.bgp?.ipv6Address;
  return a === undefined ? undefined : formatIP(parseIP(a.split('/')[0]!));
}

/**
 * Calico's router id from a node name (`CALICO_ROUTER_ID=hash`): the first four bytes of the
 * name's SHA-256 as an IPv4 address, a first octet above 223 lowered by 32 (no class D/E ids).
 */
export function routerIdHash(nodeName: string): string {
  const b = createHash('sha256').update(nodeName).digest();
  return [b[0]! > 223 ? b[0]! - 32 : b[0]!, b[1], b[2], b[3]].join('.');
}

/** Calico's protocol-name form of an address: dots (and colons) become underscores. */
function ipId(ip: string): string {
  return ip.replace(/[.:]/g, '_');
}

function protocolName(prefix: 'Mesh' | 'Node' | 'Global', ip: string, port: number): string {
  return `${prefix}_${ipId(ip)}${port === DEFAULT_BGP_PORT ? '' : `_port_${port}`}`;
}

/** Which kind of peer a bird protocol name is, by Calico's prefixes. */
export function peerTypeOf(protocol: string): PeerType | undefined {
  if (protocol.startsWith('Mesh_')) return 'node-to-node mesh';
  if (protocol.startsWith('Node_')) return 'node specific';
  if (protocol.startsWith('Global_')) return 'global';
  return undefined;
}

function selects(selector: string | undefined, labels: Record<string, string> | undefined): boolean {
  if (selector === undefined) return true;
  return parseSelector(selector).evaluate(labels ?? {});
}

interface PeerPlan extends RenderedPeer {
  family: 4 | 6;
  password?: BGPPassword;
  restartSeconds: number;
  keepNextHop: boolean;
  sourceAddress: boolean;
  allowLocalAs?: number;
  rrClusterId?: string;
}

/** Calico's mesh rule: the node whose address string sorts lower connects, the other listens. */
function passiveTowards(peerIp: string, ownIp: string): boolean {
  return peerIp > ownIp;
}

export function renderBird(state: BgpState): RenderResult {
  const problems: string[] = [];
  const eff = effectiveBgpConfig(state.bgpConfigurations, state.nodeName);
  const me = state.nodes.find((n) => n.metadata.name === state.nodeName);
  const ownIp = me === undefined ? undefined : nodeIPv4(me);
  const ownIp6 = me === undefined ? undefined : nodeIPv6(me);
  if (me === undefined || (ownIp === undefined && ownIp6 === undefined)) {
    problems.push(`node ${state.nodeName} has neither spec.bgp.ipv4Address nor spec.bgp.ipv6Address: BGP is not configured on it`);
    return { config: '', problems, peers: [] };
  }
  const ownOf = (family: 4 | 6): string | undefined => (family === 4 ? ownIp : ownIp6);
  const addrOf = (n: Node, family: 4 | 6): string | undefined => (family === 4 ? nodeIPv4(n) : nodeIPv6(n));
  const ownAs = me.spec.bgp?.asNumber ?? eff.asNumber;
  const learnedTable = state.learnedTable ?? DEFAULT_LEARNED_TABLE;
  const ownCluster = me.spec.bgp?.routeReflectorClusterID;
  const asOf = (n: Node): number => n.spec.bgp?.asNumber ?? eff.asNumber;

  const plans = new Map<string, PeerPlan>();
  const add = (p: PeerPlan): void => {
    if (p.ip === ownOf(p.family)) return;
    const key = `${p.ip}:${p.port}`;
    if (!plans.has(key)) plans.set(key, p);
  };

  // Node-to-node mesh, as Calico's template: a route reflector takes no part in it, and the
  // mesh skips nodes that are route reflectors; each neighbour on its own listen port.
  if (eff.nodeToNodeMeshEnabled && ownCluster === undefined) {
    for (const family of [4, 6] as const) for (const n of sortedNodes(state.nodes)) {
      const ip = addrOf(n, family);
      const own = ownOf(family);
      if (ip === undefined || own === undefined || n.metadata.name === state.nodeName || n.spec.bgp?.routeReflectorClusterID !== undefined) continue;
      const port = effectiveBgpConfig(state.bgpConfigurations, n.metadata.name).listenPort;
      add({
        family,
        protocol: protocolName('Mesh', ip, port),
        type: 'node-to-node mesh',
        ip,
        port,
        asNumber: asOf(n),
        passive: passiveTowards(ip, own),
        rrClient: false,
        password: eff.nodeMeshPassword,
        restartSeconds: eff.nodeMeshMaxRestartSeconds,
        keepNextHop: false,
        sourceAddress: true,
      });
    }
  }

  // Explicit peers: node-specific first (they are the more specific statement), then global.
  const peers = [...state.bgpPeers].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const applies = (p: BGPPeer): boolean =>
    p.spec.node !== undefined ? p.spec.node === state.nodeName : selects(p.spec.nodeSelector, me.metadata.labels);
  const specific = (p: BGPPeer): boolean => p.spec.node !== undefined || p.spec.nodeSelector !== undefined;
  for (const pass of [true, false]) {
    for (const p of peers) {
      if (specific(p) !== pass || !applies(p)) continue;
      const prefix = pass ? 'Node' : 'Global';
      const type: PeerType = pass ? 'node specific' : 'global';
      const common = {
        type,
        password: p.spec.password,
        restartSeconds: restartSeconds(p.spec.maxRestartTime),
        keepNextHop: p.spec.keepOriginalNextHop === true,
        sourceAddress: p.spec.sourceAddress !== 'None',
        allowLocalAs: p.spec.numAllowedLocalASNumbers,
      };
      if (p.spec.peerIP !== undefined) {
        const pi = parsePeerIP(p.spec.peerIP);
        if (pi === undefined) {
          problems.push(`BGPPeer ${p.metadata.name}: peerIP ${p.spec.peerIP} is not an address, ip:port or [ipv6]:port; peer left out`);
          continue;
        }
        const family = pi.ip.includes(':') ? 6 : 4;
        if (ownOf(family) === undefined) {
          problems.push(`BGPPeer ${p.metadata.name}: peer ${p.spec.peerIP} is IPv${family} and node ${state.nodeName} has no spec.bgp.ipv${family}Address; peer left out`);
          continue;
        }
        const port = pi.port ?? DEFAULT_BGP_PORT;
        const asNumber = p.spec.asNumber ?? eff.asNumber;
        // Calico's rule: a route reflector's iBGP peer outside its cluster is its client.
        const theirCluster = state.nodes.find((n) => addrOf(n, family) === pi.ip)?.spec.bgp?.routeReflectorClusterID;
        add({
          ...common,
          family,
          protocol: protocolName(prefix, pi.ip, port),
          ip: pi.ip,
          port,
          asNumber,
          passive: false,
          rrClient: ownCluster !== undefined && asNumber === ownAs && theirCluster !== ownCluster,
          rrClusterId: ownCluster,
        });
      } else {
        for (const family of [4, 6] as const) for (const n of sortedNodes(state.nodes)) {
          if (n.metadata.name === state.nodeName || !selects(p.spec.peerSelector, n.metadata.labels)) continue;
          const ip = addrOf(n, family);
          const own = ownOf(family);
          if (ip === undefined || own === undefined) continue;
          const theirCluster = n.spec.bgp?.routeReflectorClusterID;
          const port = effectiveBgpConfig(state.bgpConfigurations, n.metadata.name).listenPort;
          add({
            ...common,
            family,
            protocol: protocolName(prefix, ip, port),
            ip,
            port,
            asNumber: asOf(n),
            // Between tortie nodes the same one-side-connects rule as the mesh (Calico's
            // template leaves selector peers active on both sides; bird resolves the collision).
            passive: passiveTowards(ip, own),
            rrClient: ownCluster !== undefined && asOf(n) === ownAs && theirCluster !== ownCluster,
            rrClusterId: ownCluster,
          });
        }
      }
    }
  }

  const plan = [...plans.values()].sort((a, b) => a.protocol.localeCompare(b.protocol));
  const out: string[] = [];
  const L = (s = ''): void => {
    out.push(s);
  };
  L(`# Generated by tortie for node ${state.nodeName}. Do not edit: tortie-node rewrites it.`);
  L(`router id ${ownIp ?? routerIdHash(state.nodeName)};`);
  L('timeformat protocol iso short;');
  L(`log stderr ${LOG_CLASSES[eff.logSeverityScreen]};`);
  L();
  L(`define TORTIE_AS = ${ownAs};`);
  const pools = state.pools.filter((p) => !p.spec.cidr.includes(':'));
  L(`define TORTIE_POOLS = ${prefixSet(pools.map((p) => `${p.spec.cidr}+`))};`);
  L(`define TORTIE_NO_EXPORT = ${prefixSet(pools.filter((p) => p.spec.disableBGPExport).map((p) => `${p.spec.cidr}+`))};`);
  const v6 = ownIp6 !== undefined;
  const pools6 = state.pools.filter((p) => p.spec.cidr.includes(':'));
  if (v6) {
    L(`define TORTIE_POOLS6 = ${prefixSet(pools6.map((p) => `${p.spec.cidr}+`), 6)};`);
    L(`define TORTIE_NO_EXPORT6 = ${prefixSet(pools6.filter((p) => p.spec.disableBGPExport).map((p) => `${p.spec.cidr}+`), 6)};`);
  }
  L();
  L('protocol device {');
  L('  scan time 10;');
  L('}');
  L();
  L('# Connected routes: for resolving next hops only (never exported).');
  L('protocol direct {');
  L('  ipv4 { import all; export none; };');
  if (v6) L('  ipv6 { import all; export none; };');
  L('  interface "-cali*", "-tortie*", "*";');
  L('}');
  L();
  L('# This node\'s affine blocks: blackholed in the kernel, advertised to peers.');
  L('protocol static tortie_blocks {');
  L('  ipv4;');
  for (const b of state.blocks.filter((c) => !c.includes(':')).sort()) L(`  route ${b} blackhole;`);
  L('}');
  L();
  L('# Addresses this node uses from other nodes\' blocks: advertised as /32, not installed.');
  L('protocol static tortie_borrowed {');
  L('  ipv4;');
  for (const a of state.borrowed.filter((c) => !c.includes(':')).sort()) L(`  route ${a.split('/')[0]}/32 blackhole;`);
  L('}');
  L();
  L('# serviceClusterIPs / serviceExternalIPs: advertised, not installed.');
  L('protocol static tortie_services {');
  L('  ipv4;');
  for (const c of [...eff.serviceClusterIPs, ...eff.serviceExternalIPs].filter((c) => !c.includes(':')).sort()) {
    L(`  route ${c} blackhole;`);
  }
  L('}');
  L();
  L('filter tortie_export_to_bgp_peers {');
  L('  if net ~ TORTIE_NO_EXPORT then reject;');
  L('  if proto = "tortie_blocks" || proto = "tortie_borrowed" || proto = "tortie_services" then accept;');
  // A route reflector passes on what its clients advertise (bird applies the iBGP rules).
  L(`  if source = RTS_BGP && net ~ TORTIE_POOLS then ${ownCluster !== undefined ? 'accept' : 'reject'};`);
  L('  reject;');
  L('}');
  L();
  L('# Own blocks as blackholes in the main table (workload /32s are more specific).');
  L('protocol kernel tortie_kernel_blocks {');
  L('  learn off;');
  L('  persist;');
  L('  scan time 10;');
  L('  graceful restart;');
  L('  ipv4 { import none; export filter { if proto = "tortie_blocks" then accept; reject; }; };');
  L('}');
  L();
  L(`# Routes learned from peers, in table ${learnedTable} (no rule looks it up): tortie-node reads it and`);
  L('# programs kernel routes and BPF route-map entries, with IPIP where the pool says so.');
  L('ipv4 table tortie_learned4;');
  L('protocol pipe tortie_pipe_learned {');
  L('  table master4;');
  L('  peer table tortie_learned4;');
  L('  import none;');
  L('  export filter { if source = RTS_BGP && net ~ TORTIE_POOLS then accept; reject; };');
  L('}');
  L('protocol kernel tortie_kernel_learned {');
  L(`  kernel table ${learnedTable};`);
  L('  learn off;');
  L('  persist;');
  L('  scan time 10;');
  L('  graceful restart;');
  L('  ipv4 { table tortie_learned4; import none; export all; };');
  L('}');
  L();
  L('template bgp tortie_peer {');
  L('  description "Connection to BGP peer";');
  L(`  local as TORTIE_AS;`);
  if (eff.listenPort !== DEFAULT_BGP_PORT) L(`  local port ${eff.listenPort};`);
  L('  graceful restart on;');
  L('  connect delay time 2;');
  L('  connect retry time 5;');
  L('  error wait time 5, 30;');
  L('  ipv4 {');
  L('    import filter { if net ~ TORTIE_POOLS then accept; reject; };');
  L('    export filter tortie_export_to_bgp_peers;');
  L('    gateway recursive;');
  L('  };');
  L('}');
  if (v6) renderV6(L, state, eff, ownCluster, learnedTable);

  const rendered: RenderedPeer[] = [];
  for (const p of plan) {
    let secret: string | undefined;
    if (p.password !== undefined) {
      const { name, key } = p.password.secretKeyRef;
      secret = state.secret?.(name, key);
      if (secret === undefined) {
        problems.push(`${p.protocol}: password secret ${name}/${key} not found; peer left out`);
        continue;
      }
      if (!BIRD_STRING_OK.test(secret)) {
        problems.push(`${p.protocol}: password secret ${name}/${key} contains '"', a backslash or a control character, which bird's strings cannot hold; peer left out`);
        continue;
      }
    }
    L();
    L(`protocol bgp ${p.protocol} from ${p.family === 6 ? 'tortie_peer6' : 'tortie_peer'} {`);
    L(`  neighbor ${p.ip}${p.port === DEFAULT_BGP_PORT ? '' : ` port ${p.port}`} as ${p.asNumber};`);
    if (p.sourceAddress) L(`  source address ${ownOf(p.family)};`);
    if (p.passive) L('  passive on; # the peer connects to us (one side connects, see Calico)');
    L(`  graceful restart time ${p.restartSeconds};`);
    if (secret !== undefined) L(`  password ${birdString(secret)};`);
    if (p.allowLocalAs !== undefined) L(`  allow local as ${p.allowLocalAs};`);
    if (p.rrClient) {
      L('  rr client;');
      L(`  rr cluster id ${p.rrClusterId};`);
    }
    // Calico keeps the next hop for eBGP peers only (iBGP keeps it anyway).
    if (p.keepNextHop && p.asNumber !== ownAs) L(`  ipv${p.family} { next hop keep on; };`);
    L('}');
    rendered.push({ protocol: p.protocol, type: p.type, ip: p.ip, port: p.port, asNumber: p.asNumber, passive: p.passive, rrClient: p.rrClient });
  }
  return { config: out.join('\n') + '\n', problems, peers: rendered };
}

const LOG_CLASSES: Record<BGPLogSeverity, string> = {
  Debug: 'all',
  Info: '{ info, remote, warning, error, auth, fatal, bug }',
  Warning: '{ warning, error, auth, fatal, bug }',
  Error: '{ error, fatal, bug }',
  Fatal: '{ fatal, bug }',
};

function sortedNodes(nodes: readonly Node[]): Node[] {
  return [...nodes].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

/** bird2 refuses an empty prefix set; a prefix no pool route can be stands for "none". */
function prefixSet(items: string[], family: 4 | 6 = 4): string {
  const list = [...new Set(items)].sort();
  return `[ ${list.length === 0 ? (family === 6 ? '::/128' : '0.0.0.0/32') : list.join(', ')} ]`;
}

/**
 * The IPv6 half (this node has an IPv6 address): own IPv6 blocks, borrowed /128s and IPv6
 * service CIDRs advertised, own blocks blackholed in the main table, learned IPv6 pool routes
 * into the learned-routes kernel table, and the template IPv6 sessions derive from.
 */
function renderV6(L: (s?: string) => void, state: BgpState, eff: EffectiveBgpConfig, ownCluster: string | undefined, learnedTable: number): void {
  const v6 = (c: string): boolean => c.includes(':');
  L();
  L('# IPv6: this node\'s affine IPv6 blocks, borrowed addresses (/128) and IPv6 service CIDRs.');
  L('protocol static tortie_blocks6 {');
  L('  ipv6;');
  for (const b of state.blocks.filter(v6).sort()) L(`  route ${b} blackhole;`);
  L('}');
  L('protocol static tortie_borrowed6 {');
  L('  ipv6;');
  for (const a of state.borrowed.filter(v6).sort()) L(`  route ${a.split('/')[0]}/128 blackhole;`);
  L('}');
  L('protocol static tortie_services6 {');
  L('  ipv6;');
  for (const c of [...eff.serviceClusterIPs, ...eff.serviceExternalIPs].filter(v6).sort()) L(`  route ${c} blackhole;`);
  L('}');
  L();
  L('filter tortie_export6_to_bgp_peers {');
  L('  if net ~ TORTIE_NO_EXPORT6 then reject;');
  L('  if proto = "tortie_blocks6" || proto = "tortie_borrowed6" || proto = "tortie_services6" then accept;');
  L(`  if source = RTS_BGP && net ~ TORTIE_POOLS6 then ${ownCluster !== undefined ? 'accept' : 'reject'};`);
  L('  reject;');
  L('}');
  L();
  L('protocol kernel tortie_kernel_blocks6 {');
  L('  learn off;');
  L('  persist;');
  L('  scan time 10;');
  L('  graceful restart;');
  L('  ipv6 { import none; export filter { if proto = "tortie_blocks6" then accept; reject; }; };');
  L('}');
  L();
  L(`# IPv6 routes learned from peers, in table ${learnedTable} too (tortie-node programs them).`);
  L('ipv6 table tortie_learned6;');
  L('protocol pipe tortie_pipe_learned6 {');
  L('  table master6;');
  L('  peer table tortie_learned6;');
  L('  import none;');
  L('  export filter { if source = RTS_BGP && net ~ TORTIE_POOLS6 then accept; reject; };');
  L('}');
  L('protocol kernel tortie_kernel_learned6 {');
  L(`  kernel table ${learnedTable};`);
  L('  learn off;');
  L('  persist;');
  L('  scan time 10;');
  L('  graceful restart;');
  L('  ipv6 { table tortie_learned6; import none; export all; };');
  L('}');
  L();
  L('template bgp tortie_peer6 {');
  L('  description "Connection to BGP peer";');
  L('  local as TORTIE_AS;');
  if (eff.listenPort !== DEFAULT_BGP_PORT) L(`  local port ${eff.listenPort};`);
  L('  graceful restart on;');
  L('  connect delay time 2;');
  L('  connect retry time 5;');
  L('  error wait time 5, 30;');
  L('  ipv6 {');
  L('    import filter { if net ~ TORTIE_POOLS6 then accept; reject; };');
  L('    export filter tortie_export6_to_bgp_peers;');
  L('    gateway recursive;');
  L('  };');
  L('}');
}

/** bird's string literals have no escapes: no quote, backslash or control character inside. */
// eslint-disable-next-line no-control-regex
const BIRD_STRING_OK = /^[^"\\\x00-\x1f\x7f]{1,80}$/;

function birdString(s: string): string {
  return `"${s}"`;
}
