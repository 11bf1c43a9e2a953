/**
 * Shared by the netns datapath benchmarks: the same Calico-shaped node as test/datapath (node
 * namespace, cali* veths, proxy ARP) with a server and a client workload, and switching tortie
 * on (programs attached, policies compiled and applied) and off (programs detached).
 * Everything lives in namespaces created here and is removed on exit.
 */
import { SingleNode, pinRoot, removePinRoot, type Workload } from '../src/testbed';
import { loadWep, mapOps, type WepDatapath } from '../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../src/dataplane/bpf/policy-sync';
import { tcAttach, tcDetach } from '../src/dataplane/native';
import { CalcGraph, type CompiledState, type VerdictTable } from '../src/calc';
import { ns, policySet, wep } from './datapath-policies';

export const SERVER_IP = '192.168.20.1';
export const CLIENT_IP = '192.168.20.2';
/** The workloads' IPv6 addresses when the node is built with `v6` (ULA). */
export const SERVER_IP6 = 'fd00:20::1';
export const CLIENT_IP6 = 'fd00:20::2';

export class BenchNode {
  private readonly compiled = new Map<string, CompiledState>();
  private dp?: WepDatapath;
  /** The host-routing variant of the same object, on the same pinned maps (tortieOn with hostRouting). */
  private dpHr?: WepDatapath;
  private useHr = false;
  private pd?: PolicyDataplane;
  private attached = false;
  private pinRoot?: string;
  /** The workloads' MACs (their endpoints name them, as the CNI plugin's do). */
  private readonly macs = new Map<string, string>();
  private constructor(readonly topo: SingleNode, readonly server: Workload, readonly client: Workload, readonly v6: boolean) {}

  /** `v6`: the workloads are dual stack (SERVER_IP6, CLIENT_IP6), their endpoints too. */
  static async create(label: string, o: { v6?: boolean } = {}): Promise<BenchNode> {
    const topo = await SingleNode.create(label, { outsideRoutesPools: true });
    try {
      const server = await topo.addWorkload('server', SERVER_IP, o.v6 ? { ip6: SERVER_IP6 } : {});
      const client = await topo.addWorkload('client', CLIENT_IP, o.v6 ? { ip6: CLIENT_IP6 } : {});
      const n = new BenchNode(topo, server, client, o.v6 === true);
      for (const w of [server, client]) n.macs.set(w.name, (await w.ns.exec(['cat', '/sys/class/net/eth0/address'])).stdout.trim());
      return n;
    } catch (e) { await topo.destroy(); throw e; }
  }

  /** Loads the programs with `policies` × `rulesEach` filler rules selecting the server. Returns compile+apply ms. */
  /** Compiles the policy set once per shape (the compiler has its own benchmark). */
  compile(policies: number, rulesEach: number, servePorts: number[], udpPorts: number[] = []): { snap: CompiledState; ms: number } {
    const key = `${policies}x${rulesEach}:${servePorts.join(',')}:${udpPorts.join(',')}`;
    const t0 = Date.now();
    let snap = this.compiled.get(key);
    if (!snap) {
      const graph = new CalcGraph({ nodeName: 'node1' });
      const v6 = this.v6;
      for (const r of [ns('bench'), wep('server', SERVER_IP, 'server', this.server.hostIf, v6 ? SERVER_IP6 : undefined, this.macs.get('server')),
        wep('client', CLIENT_IP, 'client', this.client.hostIf, v6 ? CLIENT_IP6 : undefined, this.macs.get('client')),
        ...policySet(policies, rulesEach, servePorts, udpPorts)]) graph.onUpdate(r);
      graph.flush();
      snap = graph.snapshot();
      this.compiled.set(key, snap);
    }
    return { snap, ms: Date.now() - t0 };
  }

  /** Compile (cached), load, apply, attach. `ms` = load + apply + attach. */
  async tortieOn(policies: number, rulesEach: number, servePorts: number[], opts: { hostRouting?: boolean; udpPorts?: number[]; objectDir?: string } = {}): Promise<{ ms: number; cells: number; compileMs: number }> {
    await this.tortieOff();
    const { snap, ms: compileMs } = this.compile(policies, rulesEach, servePorts, opts.udpPorts);
    const t0 = Date.now();
    this.pinRoot = pinRoot('bench');
    const dp = await loadWep({ pinRoot: this.pinRoot, events: false, objectDir: opts.objectDir });
    this.dp = dp;
    if (opts.hostRouting) {
      this.dpHr = await loadWep({ pinRoot: this.pinRoot, events: false, hostRouting: 'auto', objectDir: opts.objectDir });
      if (!this.dpHr.hostRouting.active) throw new Error(`host routing not available: ${this.dpHr.hostRouting.reason}`);
    }
    const byIf = new Map([[this.server.hostIf, this.server.ifindex], [this.client.hostIf, this.client.ifindex]]);
    this.pd = new PolicyDataplane({ ...dp.policyMaps, cls4: mapOps(dp.maps.cls4!), cls6: mapOps(dp.maps.cls6!) }, (e) => byIf.get(e.interfaceName ?? ''));
    this.pd.applySnapshot(snap);
    this.attach();
    const serverTable = snap.tables.find((t) => t.id === snap.endpoints.find((e) => e.key === 'bench/server')!.tables.ingress)!;
    return { ms: Date.now() - t0, cells: serverTable.cells.length, compileMs };
  }

  /** Attaches the loaded programs to both cali* interfaces (maps stay as they are); with
   *  `hostRouting`, the peer-redirect variant (tortieOn must have loaded it). */
  attach(hostRouting = false): void {
    if (this.attached && this.useHr !== hostRouting) this.detach();
    const dp = hostRouting ? this.dpHr : this.dp;
    if (!dp || this.attached) return;
    for (const w of [this.server, this.client]) {
      tcAttach({ iface: w.hostIf, netns: this.topo.node.path, direction: 'ingress', program: dp.fromWep });
      tcAttach({ iface: w.hostIf, netns: this.topo.node.path, direction: 'egress', program: dp.toWep });
    }
    this.attached = true;
    this.useHr = hostRouting;
  }

  /** The programs attached now (undefined while detached). */
  programs(): { fromWep: WepDatapath['fromWep']; toWep: WepDatapath['toWep'] } | undefined {
    const dp = this.useHr ? this.dpHr : this.dp;
    return this.attached && dp ? { fromWep: dp.fromWep, toWep: dp.toWep } : undefined;
  }

  /** Detaches the programs, keeping the maps (a quick "no programs" phase). */
  detach(): void {
    if (!this.attached) return;
    for (const w of [this.server, this.client]) {
      for (const direction of ['ingress', 'egress'] as const) tcDetach({ iface: w.hostIf, netns: this.topo.node.path, direction });
    }
    this.attached = false;
  }

  /**
   * Keeps the server's tables of another compiled policy shape loaded next to the current ones,
   * so `useServerTables` can switch between them with one endpoint flip. The class prefixes are
   * the current snapshot's: compile shapes whose classes the loaded snapshot covers (class ids
   * are a function of set membership, so the client's class is the same in both).
   */
  preloadServerTables(snap: CompiledState): { ingress: VerdictTable; egress: VerdictTable } {
    const ep = snap.endpoints.find((e) => e.key === 'bench/server')!;
    const tables = {
      ingress: snap.tables.find((t) => t.id === ep.tables.ingress)!,
      egress: snap.tables.find((t) => t.id === ep.tables.egress)!,
    };
    this.pd!.writer.tables.acquire(tables.ingress); // an extra reference: never released while loaded
    this.pd!.writer.tables.acquire(tables.egress);
    return tables;
  }

  useServerTables(tables: { ingress: VerdictTable; egress: VerdictTable }): void {
    this.pd!.writer.applyEndpointPolicy({ ifindex: this.server.ifindex, id: 1, ipNetworks: [`${SERVER_IP}/32`], tables });
  }

  async tortieOff(): Promise<void> {
    if (!this.dp) return;
    this.detach();
    this.pd = undefined;
    this.dp.close();
    this.dp = undefined;
    this.dpHr?.close();
    this.dpHr = undefined;
    if (this.pinRoot) removePinRoot(this.pinRoot);
    this.pinRoot = undefined;
  }

  async destroy(): Promise<void> {
    await this.tortieOff();
    await this.topo.destroy();
  }
}

export { median } from './lib/stats';
