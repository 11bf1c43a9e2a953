/**
 * The lab: a three-node tortie cluster in network namespaces on this machine, built from the real
 * parts — a `tortie-node` per node on a shared embedded datastore, workloads created by the real
 * `tortie` CNI plugin, the Calico docs' v1 ipPool applied with `tortiectl` — and a connectivity
 * matrix measured with real traffic and packet captures.
 *
 *            198.18.1.0/24 (br1 in rtr)             198.18.2.0/24
 *   node-a .10 ──┐                                ┌── node-c .10
 *   node-b .11 ──┴── rtr (.1 / .1 / .1) ──────────┘
 *                          │ 198.18.3.0/24
 *                       outside .10  (no routes to the pools: replies need SNAT)
 *
 * Dual stack (`--ipv6`): each subnet also has a ULA /64 (fd00:198:18:<n>::/64, the router ::1,
 * the hosts the same last number as in IPv4), a second pool fd00:10::/48 (natOutgoing, blocks /122)
 * and every workload gets one address of each family through the CNI plugin's IPAM
 * (`assign_ipv6`). The IPv6 pool has vxlanMode CrossSubnet: node-c, in another subnet, is reached
 * over VXLAN in outer IPv6 (bpf/lib/vxlan6.h), node-a and node-b directly.
 *
 * Contract: every namespace, process, capture and bpffs pin the lab makes is removed by
 * `destroy()`, which also runs on exit and on SIGINT/SIGTERM (src/util/netns). Addresses: the
 * underlay and the outside host use 198.18.0.0/15 (and ULA fd00:198:18::/48 with --ipv6),
 * workloads the seed pool 192.168.0.0/16 (and ULA fd00:10::/48).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, run, type Netns } from '../util/netns';
import {
  ThreeNodeCluster, AgentProcess, agentRunArgs, agentLogFile, makeCniPath, runPlugin, containerId as newContainerId, pinRoot, removePinRoot,
  tcpConnects, pings, httpSource, serveSourceEcho, PROJECT_ROOT, binPath,
} from '../testbed';
import { CONFIG_CHANGED_EXIT_CODE } from '../node/felix-live';
import { FrrTor } from './tor';
import { parseBirdProtocols, bgpPeers } from '../bgp/status';
import { birdDir } from '../node/bird-dir';
import { cidr4Contains, tryIpv4ToU32, tryParseCidr4 } from '../primitives';

/**
 * BGP mode's pools: the seed pool's settings on half the range, and a pool without NAT outgoing
 * whose workloads the outside host reaches through the ToR's BGP routes.
 */
export const BGP_POOLS_YAML = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: default-ipv4-ippool}
spec: {cidr: 192.168.0.0/17, ipipMode: CrossSubnet, natOutgoing: true}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: edge}
spec: {cidr: 192.168.128.0/17, ipipMode: CrossSubnet, natOutgoing: false}
`;

/** The lab's pool with VXLAN instead of IPIP (`--vxlan`): the seed pool's settings otherwise. */
export const VXLAN_POOL_YAML = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: default-ipv4-ippool}
spec: {cidr: 192.168.0.0/16, vxlanMode: CrossSubnet, natOutgoing: true}
`;

/** The IPv6 pool of the dual-stack lab (`--ipv6`): ULA, NAT outgoing, Calico's default /122 blocks,
 *  VXLAN (outer IPv6) to nodes in another IPv6 subnet. */
export const IPV6_POOL_YAML = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: default-ipv6-ippool}
spec: {cidr: 'fd00:10::/48', natOutgoing: true, vxlanMode: CrossSubnet}
`;

/** The ULA underlay address of an IPv4 underlay host: 198.18.<n>.<h> → fd00:198:18:<n>::<h> (h as written). */
export function underlay6(ip4: string): string {
  const [, , n, h] = ip4.split('.');
  return `fd00:198:18:${n}::${h}`;
}

/** The lab's ToR AS (FRR in `rtr`); the nodes keep Calico's default 64512. */
export const TOR_AS = 65001;

export { PROJECT_ROOT };

/** The seed pool exactly as the Calico docs write it (v1 format). */
export const SEED_POOL_YAML = `apiVersion: v1
kind: ipPool
metadata:
  cidr: 192.168.0.0/16
spec:
  ipip:
    enabled: true
    mode: cross-subnet
  nat-outgoing: true
`;

/** The example policy: only app=web may reach app=db, on tcp/5432. Namespace profile allows the rest. */
export const EXAMPLE_POLICY_YAML = `apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: kns.default
spec:
  ingress:
  - action: Allow
  egress:
  - action: Allow
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: db-allow-web
spec:
  selector: app == 'db'
  types:
  - Ingress
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: app == 'web'
    destination:
      ports:
      - 5432
`;

export interface LabNode { name: string; ns: Netns; ip: string; prefix: number; ip6?: string; agent?: AgentProcess; healthPort: number; pinRoot: string }
export interface LabWorkload { name: string; node: LabNode; ns: Netns; ip: string; ip6?: string; labels: Record<string, string>; containerId: string }

/** How a packet crossed: within one node, over the underlay unencapsulated, in IPIP or in VXLAN. */
export type PathKind = 'local' | 'direct' | 'IPIP' | 'VXLAN';

export interface Cell {
  from: string;
  to: string;
  what: string;
  /** `unsupported`: what tortie does not do here (the traffic is expected not to get through). */
  expect: { allowed: boolean; path?: PathKind; seenSource?: string; unsupported?: string };
  got: { allowed: boolean; path?: PathKind; seenSource?: string };
  ok: boolean;
}

export class Lab {
  readonly topo = Topology.create('lab');
  readonly storeDir = mkdtempSync(join(tmpdir(), 'tortie-lab-store-'));
  /** A CNI bin directory as a runtime would have it (`tortie`, `tortie-ipam`; a socket nobody serves). */
  private readonly cni = makeCniPath();
  readonly cniBin = this.cni.dir;
  /** The agents' pin roots are `<pinBase>/<node>` (each agent makes its own). */
  readonly pinBase = pinRoot('lab', { create: false });
  /** The agents' run dir (TORTIE_RUN_DIR: pid files, each node's bird directory): private, so the host's /run/tortie never lists lab agents. */
  readonly runDir = mkdtempSync(join(tmpdir(), 'tortie-lab-run-'));
  rtr!: Netns;
  outside!: Netns;
  readonly outsideIp = '198.18.3.10';
  readonly nodes = new Map<string, LabNode>();
  readonly workloads = new Map<string, LabWorkload>();
  /** BGP mode: agents run bird2 (--bgp, routes from BGP), `rtr` runs FRR as the ToR. */
  readonly bgp: boolean;
  tor?: FrrTor;
  private readonly log: (s: string) => void;

  /** The pools' encapsulation across subnets (--vxlan: vxlanMode CrossSubnet instead of ipipMode). */
  readonly encap: 'IPIP' | 'VXLAN';
  /** Dual stack (--ipv6): ULA underlay and pool, workloads of both families, the IPv6 cells. */
  readonly ipv6: boolean;
  get outsideIp6(): string { return underlay6(this.outsideIp); }

  constructor(opts: { log?: (s: string) => void; bgp?: boolean; vxlan?: boolean; ipv6?: boolean } = {}) {
    this.log = opts.log ?? (() => undefined);
    this.bgp = opts.bgp ?? false;
    this.encap = opts.vxlan ? 'VXLAN' : 'IPIP';
    this.ipv6 = opts.ipv6 ?? false;
    // Runs after the agents are killed, also when a signal or exit tears the topology down.
    this.topo.onDestroy(() => this.removeFiles());
  }

  private removeFiles(): void {
    this.tor?.cleanup();
    this.cni.cleanup();
    for (const dir of [this.storeDir, this.runDir]) rmSync(dir, { recursive: true, force: true });
    removePinRoot(this.pinBase);
  }

  get env(): NodeJS.ProcessEnv {
    // NODE_OPTIONS cleared: children of a test runner must not inherit its loaders.
    // TORTIE_CNI_SOCKET=none: the lab's agents serve no CNI socket (the lab runs the plugin
    // processes in each node itself; a shared default socket would reach one node's agent).
    // TORTIE_RUN_DIR: the lab's own (pid files, each node's bird directory).
    return { ...process.env, NODE_OPTIONS: '', DATASTORE_TYPE: 'embedded', TORTIE_DATASTORE_DIR: this.storeDir, TORTIE_CNI_SOCKET: 'none', TORTIE_RUN_DIR: this.runDir };
  }

  async build(): Promise<void> {
    this.log('building namespaces: rtr, node-a, node-b, node-c, outside');
    const bed = await ThreeNodeCluster.create('lab', { topo: this.topo });
    this.rtr = bed.router;
    this.outside = bed.outside;
    let port = 21000 + Math.floor(Math.random() * 20000);
    for (const n of bed.nodes.values()) {
      this.nodes.set(n.name, { name: n.name, ns: n.ns, ip: n.ip, prefix: n.prefix, healthPort: port++, pinRoot: `${this.pinBase}/${n.name}` });
    }
    if (this.ipv6) await this.addIpv6Underlay();
    if (this.bgp) {
      this.tor = new FrrTor(this.rtr, '198.18.1.1', TOR_AS);
      await this.tor.start([...this.nodes.values()].map((n) => ({ ip: n.ip, asNumber: 64512 })));
      this.log(`ToR: FRR bgpd in rtr, AS ${TOR_AS}, peers ${[...this.nodes.values()].map((n) => n.ip).join(', ')}`);
    }
    // The outside host answers HTTP with the source address it saw.
    serveSourceEcho(this.outside, this.outsideIp);
  }

  /** The ULA underlay next to the IPv4 one: router ::1 on each subnet, nodes and the outside host by their IPv4 host number. */
  private async addIpv6Underlay(): Promise<void> {
    const rtrAddrs = ['br1', 'br2', 'o'].map((dev, i) => `ip -6 addr add fd00:198:18:${i + 1}::1/64 dev ${dev} nodad`);
    await this.rtr.sh(['sysctl -qw net.ipv6.conf.all.forwarding=1', ...rtrAddrs].join(' && '));
    const host = async (ns: Netns, ip4: string) => {
      const ip6 = underlay6(ip4);
      await ns.sh(`ip -6 addr add ${ip6}/64 dev eth0 nodad && ip -6 route add default via ${ip6.replace(/::\d+$/, '::1')}`);
      return ip6;
    };
    for (const n of this.nodes.values()) n.ip6 = await host(n.ns, n.ip);
    await host(this.outside, this.outsideIp);
    this.log(`IPv6 underlay (ULA): ${[...this.nodes.values()].map((n) => `${n.name} ${n.ip6}/64`).join(', ')}, outside ${this.outsideIp6}`);
  }

  async tortiectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return run([process.execPath, binPath('tortiectl.js'), ...args], { input, env: this.env, allowFail: true });
  }

  startAgent(n: LabNode): void {
    const agent = new AgentProcess(n.ns, {
      args: agentRunArgs({ nodeName: n.name, ip: `${n.ip}/${n.prefix}`, storeDir: this.storeDir, pinRoot: n.pinRoot,
        extra: [...(this.bgp ? ['--bgp'] : []), ...(n.ip6 ? ['--ip6', `${n.ip6}/64`] : [])] }),
      healthPort: n.healthPort, env: this.env, logFile: agentLogFile(process.env.TORTIE_LAB_AGENT_LOGS, n.name),
    });
    n.agent = agent;
    // As systemd's Restart=always: an agent that exits 129 to apply a FelixConfiguration change
    // (as Felix does) is started again; teardown kills with SIGKILL, which never gives 129.
    agent.child.once('exit', (code) => { if (code === CONFIG_CHANGED_EXIT_CODE && n.agent === agent) this.startAgent(n); });
  }

  async waitReady(n: LabNode, timeoutMs = 30_000): Promise<void> {
    if (!n.agent) throw new Error(`${n.name}: no agent started`);
    await n.agent.waitReady(timeoutMs, `${n.name}: agent`);
  }

  async startAgents(): Promise<void> {
    for (const n of this.nodes.values()) this.startAgent(n);
    for (const n of this.nodes.values()) await this.waitReady(n);
    this.log(`agents ready on ${[...this.nodes.keys()].join(', ')}`);
  }

  /** Creates a workload namespace and runs the real CNI ADD for it inside its node. */
  async addWorkload(name: string, nodeName: string, labels: Record<string, string>, pools?: string[]): Promise<LabWorkload> {
    const node = this.nodes.get(nodeName);
    if (!node) throw new Error(`no node ${nodeName}`);
    const ns = await this.topo.addNetns(name);
    const containerId = newContainerId();
    const conf = {
      cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tortie', nodename: node.name, datastore_type: 'embedded',
      datastore_path: this.storeDir, mtu: this.encap === 'VXLAN' ? 1450 : 1480, ipam: { type: 'tortie-ipam', ...(pools ? { ipv4_pools: pools } : {}), ...(this.ipv6 ? { assign_ipv6: 'true' } : {}) }, labels,
    };
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: containerId, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}` };
    const r = await runPlugin(node.ns, 'tortie', env, conf, this.cniBin, { netOnly: true, baseEnv: this.env });
    if (r.code !== 0) throw new Error(`CNI ADD for ${name} on ${nodeName} failed: ${r.stdout}${r.stderr}`);
    const result = JSON.parse(r.stdout) as { ips: { address: string }[] };
    const addrs = result.ips.map((x) => x.address.split('/')[0]!);
    const ip = addrs.find((a) => !a.includes(':'));
    const ip6 = addrs.find((a) => a.includes(':'));
    if (!ip || (this.ipv6 && !ip6)) throw new Error(`CNI ADD for ${name} on ${nodeName}: expected ${this.ipv6 ? 'an IPv4 and an IPv6 address' : 'an IPv4 address'}, got ${addrs.join(', ') || 'none'}`);
    const w: LabWorkload = { name, node, ns, ip, ...(ip6 ? { ip6 } : {}), labels, containerId };
    this.workloads.set(name, w);
    this.log(`workload ${name} on ${nodeName}: ${ip}${ip6 ? ` ${ip6}` : ''} ${JSON.stringify(labels)}`);
    return w;
  }

  /** Counts IPIP, VXLAN and plain pool packets crossing the router while `fn` runs (live tcpdump). */
  async capture<T>(fn: () => Promise<T>): Promise<{ result: T; ipip: number; vxlan: number; plainPool: number }> {
    const filter = `ip proto 4 or udp port 4789 or net 192.168.0.0/16${this.ipv6 ? ' or net fd00:10::/48' : ''}`;
    const dump = this.rtr.spawn(['tcpdump', '-i', 'any', '-n', '-l', filter]);
    let out = '';
    dump.stdout?.on('data', (d) => { out += String(d); });
    let started = false;
    dump.stderr?.on('data', (d) => { if (String(d).includes('listening on')) started = true; });
    for (let i = 0; i < 50 && !started; i++) await new Promise((r) => setTimeout(r, 50));
    try {
      const result = await fn();
      await new Promise((r) => setTimeout(r, 300));
      const all = out.split('\n').filter((l) => l.trim());
      // VXLAN prints as "IP <outer>.<port> > <outer>.4789: VXLAN, flags [I] (0x08), vni N" and the
      // inner packet on the next line (not counted as plain pool traffic).
      const vxlan = all.filter((l) => /: VXLAN, /.test(l)).length;
      const lines = all.filter((l, i) => i === 0 || !/: VXLAN, /.test(all[i - 1]!));
      // IPIP prints as "IP <outer> > <outer>: IP <inner> > <inner>: …"; plain pool traffic has a 192.168 outer header.
      const ipip = lines.filter((l) => /\bIP [\d.]+ > [\d.]+: IP /.test(l)).length;
      const plainPool = lines.filter((l) => /\bIP 192\.168\.[\d.]+ > [\d.]+: (?!IP )/.test(l) || /\bIP6 fd00:10:[\da-f:.]+ > /.test(l)).length;
      return { result, ipip, vxlan, plainPool };
    } finally {
      dump.kill('SIGKILL');
    }
  }

  tcp(from: LabWorkload, to: LabWorkload, port: number): Promise<boolean> {
    return tcpConnects(from.ns, to.ip, port, 2);
  }

  ping(from: LabWorkload, to: LabWorkload): Promise<boolean> {
    return pings(from.ns, to.ip, 2);
  }

  /** HTTP GET to the outside host; the body is the source address it saw. */
  outsideSees(from: LabWorkload): Promise<string | undefined> {
    return httpSource(from.ns, this.outsideIp);
  }

  listen(w: LabWorkload, port: number): void {
    w.ns.spawn(['nc', '-lk', '-p', String(port)], { stdio: 'ignore' });
    // OpenBSD nc listens on one family: a second listener for IPv6.
    if (w.ip6) w.ns.spawn(['nc', '-6', '-lk', '-p', String(port)], { stdio: 'ignore' });
  }

  /** The standard scenario: seed pool, example policy, four workloads, then the matrix. */
  async setUpScenario(): Promise<void> {
    const vx = this.encap === 'VXLAN';
    const poolYaml = this.bgp ? (vx ? BGP_POOLS_YAML.replaceAll('ipipMode:', 'vxlanMode:') : BGP_POOLS_YAML) : vx ? VXLAN_POOL_YAML : SEED_POOL_YAML;
    const pool = await this.tortiectl(['apply', '-f', '-'], poolYaml);
    if (pool.code !== 0) throw new Error(`tortiectl apply (pool) failed: ${pool.stdout}${pool.stderr}`);
    const mode = vx ? 'vxlan cross-subnet' : 'ipip cross-subnet';
    this.log(this.bgp ? `tortiectl apply -f - (pools default-ipv4-ippool and edge (no NAT), ${mode}): ${pool.stdout.trim()}`
      : `tortiectl apply -f - (${vx ? 'v3 IPPool' : 'v1 ipPool'}, ${mode}, nat-outgoing): ${pool.stdout.trim()}`);
    if (this.ipv6) {
      const p6 = await this.tortiectl(['apply', '-f', '-'], IPV6_POOL_YAML);
      if (p6.code !== 0) throw new Error(`tortiectl apply (IPv6 pool) failed: ${p6.stdout}${p6.stderr}`);
      this.log(`tortiectl apply -f - (v3 IPPool fd00:10::/48, nat-outgoing, vxlan cross-subnet; workloads get an IPv4 and an IPv6 address: assign_ipv6): ${p6.stdout.trim()}`);
    }
    const pol = await this.tortiectl(['apply', '-f', '-'], EXAMPLE_POLICY_YAML);
    if (pol.code !== 0) throw new Error(`tortiectl apply (policy) failed: ${pol.stdout}${pol.stderr}`);
    this.log(`tortiectl apply -f - (profile kns.default, policy db-allow-web): ${pol.stdout.trim()}`);
    if (this.bgp) {
      const peers = await this.tortiectl(['apply', '-f', '-'], this.torPeersYaml());
      if (peers.code !== 0) throw new Error(`tortiectl apply (BGPPeers) failed: ${peers.stdout}${peers.stderr}`);
      this.log(`tortiectl apply -f - (a BGPPeer per node to the ToR): ${peers.stdout.trim()}`);
    }
    await this.startAgents();
    const main = this.bgp ? ['default-ipv4-ippool'] : undefined;
    await this.addWorkload('a-web', 'node-a', { app: 'web' }, main);
    await this.addWorkload('b-db', 'node-b', { app: 'db' }, main);
    await this.addWorkload('c-web', 'node-c', { app: 'web' }, main);
    await this.addWorkload('c-client', 'node-c', { app: 'client' }, main);
    // The IPv6 cells' same-node pair: a web client next to the db (node-b).
    if (this.ipv6) await this.addWorkload('b-web', 'node-b', { app: 'web' }, main);
    if (this.ipv6) serveSourceEcho(this.outside, this.outsideIp6);
    if (this.bgp) {
      // Answers HTTP with the source it saw: the outside host's request through the ToR.
      const edge = await this.addWorkload('a-edge', 'node-a', { app: 'edge' }, ['edge']);
      serveSourceEcho(edge.ns, edge.ip);
    }
    for (const w of this.workloads.values()) for (const p of [5432, 8080]) this.listen(w, p);
    await new Promise((r) => setTimeout(r, 500));
  }

  private async retryUntil(check: () => Promise<boolean>, want: boolean, ms = 4000): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await check();
      if (v === want || Date.now() > deadline) return v;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** A TCP connection from `from` to `ip` (retried until it gives `want`) and the path the router saw. */
  private async tcpPath(from: LabWorkload, ip: string, port: number, want: boolean): Promise<{ result: boolean; seen: PathKind }> {
    const { result, ipip, vxlan, plainPool } = await this.capture(() => this.retryUntil(() => tcpConnects(from.ns, ip, port, 2), want));
    return { result, seen: ipip > 0 ? 'IPIP' : vxlan > 0 ? 'VXLAN' : plainPool > 0 ? 'direct' : 'local' };
  }

  async matrix(): Promise<Cell[]> {
    const w = (n: string) => this.workloads.get(n)!;
    const cells: Cell[] = [];
    const tcpCell = async (from: string, to: string, port: number, allowed: boolean, path: PathKind) => {
      const { result, seen } = await this.tcpPath(w(from), w(to).ip, port, allowed);
      const got = { allowed: result, path: result ? seen : undefined };
      cells.push({ from, to, what: `tcp/${port}`, expect: { allowed, path: allowed ? path : undefined }, got, ok: result === allowed && (!result || seen === path) });
    };
    await tcpCell('a-web', 'b-db', 5432, true, 'direct');
    await tcpCell('c-web', 'b-db', 5432, true, this.encap);
    await tcpCell('c-client', 'b-db', 5432, false, this.encap);
    await tcpCell('a-web', 'b-db', 8080, false, 'direct');
    await tcpCell('b-db', 'c-client', 8080, true, this.encap);
    await tcpCell('c-web', 'c-client', 8080, true, 'local');
    // defaultEndpointToHostAction is Drop (Calico's default): a workload does not reach its own
    // node's services although its profile allows all egress; another node's address it does.
    for (const [from, node, allowed] of [['a-web', 'node-a', false], ['a-web', 'node-c', true]] as const) {
      const ip = this.nodes.get(node)!.ip;
      const got = await this.retryUntil(() => pings(w(from).ns, ip, 2), allowed);
      cells.push({ from, to: `${node} (${ip})`, what: allowed ? 'ping (another node)' : 'ping (its own node: defaultEndpointToHostAction Drop)',
        expect: { allowed }, got: { allowed: got }, ok: got === allowed });
    }
    for (const [from, node] of [['a-web', 'node-a'], ['c-client', 'node-c']] as const) {
      const seen = await this.outsideSees(w(from));
      const want = this.nodes.get(node)!.ip;
      cells.push({ from, to: 'outside', what: 'http (NAT outgoing)', expect: { allowed: true, seenSource: want }, got: { allowed: seen !== undefined, seenSource: seen }, ok: seen === want });
    }
    if (this.ipv6) cells.push(...await this.matrix6());
    return cells;
  }

  /** Same-subnet nodes (node-a, node-b) hold a direct IPv6 path; node-c across the router is reached over VXLAN. */
  private sameSubnet(a: LabNode, b: LabNode): boolean {
    return a.ip.split('.').slice(0, 3).join('.') === b.ip.split('.').slice(0, 3).join('.');
  }

  /** The IPv6 cells (--ipv6): policy on one node, across nodes in one subnet (direct) and across subnets (VXLAN), NAT66 to the outside. */
  async matrix6(): Promise<Cell[]> {
    const w = (n: string) => this.workloads.get(n)!;
    const cells: Cell[] = [];
    const tcpCell = async (from: string, to: string, port: number, allowed: boolean) => {
      const a = w(from), b = w(to);
      const path: PathKind = a.node === b.node ? 'local' : this.sameSubnet(a.node, b.node) ? 'direct' : 'VXLAN';
      const { result, seen } = await this.tcpPath(a, b.ip6!, port, allowed);
      cells.push({ from, to, what: `tcp6/${port}`, expect: { allowed, path: allowed ? path : undefined },
        got: { allowed: result, path: result ? seen : undefined }, ok: result === allowed && (!result || seen === path) });
    };
    await tcpCell('b-web', 'b-db', 5432, true);
    await tcpCell('b-web', 'b-db', 8080, false);
    await tcpCell('c-web', 'c-client', 8080, true);
    await tcpCell('a-web', 'b-db', 5432, true);
    await tcpCell('a-web', 'b-db', 8080, false);
    await tcpCell('b-db', 'a-web', 8080, true);
    await tcpCell('c-web', 'b-db', 5432, true);
    await tcpCell('c-web', 'b-db', 8080, false);
    await tcpCell('b-db', 'c-client', 8080, true);
    for (const [from, node] of [['a-web', 'node-a'], ['c-client', 'node-c']] as const) {
      const seen = await this.retryValue(() => httpSource(w(from).ns, this.outsideIp6), (v) => v !== undefined, 4000);
      const want = this.nodes.get(node)!.ip6!;
      cells.push({ from, to: 'outside (IPv6)', what: 'http (NAT66 outgoing)', expect: { allowed: true, seenSource: want }, got: { allowed: seen !== undefined, seenSource: seen }, ok: seen === want });
    }
    return cells;
  }

  /** Node-specific BGPPeers: each node peers with the ToR's address on its own subnet. */
  torPeersYaml(): string {
    return [...this.nodes.values()].map((n) => `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor-${n.name}
spec:
  node: ${n.name}
  peerIP: ${n.ip.replace(/\.\d+$/, '.1')}
  asNumber: ${TOR_AS}
`).join('---\n');
  }

  /** The BGP rows: each node's sessions, the ToR's sessions, its routes, outside → workload via the ToR. */
  async bgpMatrix(): Promise<Cell[]> {
    const cells: Cell[] = [];
    const tor = this.tor!;
    for (const n of this.nodes.values()) {
      const sock = join(birdDir(this.runDir, n.name), 'bird.ctl');
      const want = this.nodes.size; // mesh to the others + the ToR
      const peers = await this.retryValue(async () => {
        const r = await run(['birdc', '-s', sock, 'show', 'protocols'], { allowFail: true });
        return bgpPeers(parseBirdProtocols(r.stdout));
      }, (p) => p.length === want && p.every((x) => x.info.startsWith('Established')), 30_000);
      for (const p of peers) {
        const ok = p.info.startsWith('Established');
        cells.push({ from: n.name, to: `${p.address} (${p.type})`, what: 'BGP session', expect: { allowed: true }, got: { allowed: ok }, ok });
      }
    }
    const sessions = await this.retryValue(() => tor.sessions(), (m) => [...this.nodes.values()].every((n) => m.get(n.ip) === 'Established'), 30_000);
    for (const n of this.nodes.values()) {
      const ok = sessions.get(n.ip) === 'Established';
      cells.push({ from: 'ToR (FRR)', to: n.name, what: 'BGP session', expect: { allowed: true }, got: { allowed: ok }, ok });
    }
    const blockOf = (ip: string, routes: Map<string, string>) => [...routes].find(([p]) => inCidr(ip, p));
    const routes = await this.retryValue(() => tor.routes(), (r) => [...this.workloads.values()].every((w) => blockOf(w.ip, r)?.[1] === w.node.ip), 30_000);
    for (const w of this.workloads.values()) {
      const hit = blockOf(w.ip, routes);
      const ok = hit !== undefined && hit[1] === w.node.ip;
      cells.push({ from: 'ToR (FRR)', to: `${w.node.name}'s block of ${w.name}`, what: `route ${hit?.[0] ?? '(none)'} via ${hit?.[1] ?? '-'}`, expect: { allowed: true }, got: { allowed: ok }, ok });
    }
    const edge = this.workloads.get('a-edge')!;
    const r = await this.retryValue(() => httpSource(this.outside, edge.ip), (v) => v !== undefined, 8000);
    cells.push({ from: 'outside', to: 'a-edge', what: 'http via the ToR (no NAT)', expect: { allowed: true, seenSource: this.outsideIp }, got: { allowed: r !== undefined, seenSource: r }, ok: r === this.outsideIp });
    return cells;
  }

  private async retryValue<T>(get: () => Promise<T>, done: (v: T) => boolean, ms: number): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      let v: T | undefined;
      try {
        v = await get();
        if (done(v) || Date.now() > deadline) return v;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes.values()) await n.agent?.kill('SIGKILL');
    this.topo.destroySync(); // then removeFiles()
  }
}

function inCidr(ip: string, cidr: string): boolean {
  const c = tryParseCidr4(cidr), a = tryIpv4ToU32(ip);
  return c !== undefined && a !== undefined && cidr4Contains(c, a);
}

export function formatMatrix(cells: Cell[]): string {
  const rows = cells.map((c) => {
    const exp = c.expect.seenSource ? `source ${c.expect.seenSource}` : c.expect.unsupported ?? `${c.expect.allowed ? 'allowed' : 'denied'}${c.expect.path ? `, ${c.expect.path}` : ''}`;
    const got = c.got.seenSource !== undefined || c.expect.seenSource ? `source ${c.got.seenSource ?? '(no reply)'}`
      : `${c.got.allowed ? 'allowed' : c.expect.unsupported ? 'unreachable' : 'denied'}${c.got.path ? `, ${c.got.path}` : ''}`;
    return [c.ok ? 'ok  ' : 'FAIL', `${c.from} → ${c.to}`, c.what, exp, got];
  });
  const head = ['', 'path', 'traffic', 'expected', 'observed'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}
