/**
 * BpfDataplane: the kernel side of the agent. Turns the compiler's output (CompiledState
 * snapshots and CalcDeltas) into BPF map writes and program attachments on this host.
 *
 *   reconcile(state) ─┐                         ┌─> PolicyDataplane (bpf/policy-sync.ts): classes,
 *   apply(delta) ─────┼─> endpoint ⋈ interface ─┼─>   tables, endpoint flip, addresses
 *   LinkWatcher ──────┘   (by interfaceName)    ├─> tc ingress/egress on every <prefix>* link
 *                                               ├─> tortie_pf4_v1, tortie_pf6_v1 + XDP on the uplink (prefilter)
 *                                               ├─> host endpoints: tortie_hep_v1 (ifindex, 0 = `*`),
 *                                               │   failsafe ports (tortie_fs4_v1, tortie_fs6_v1), tortie_hep_in/out
 *                                               │   on host interfaces (the uplink's own programs
 *                                               │   carry it when routing is on)
 *   routing (state.routing, delta routes) ──────────> RouteManager (routing/): kernel routes, route/
 *                                                     pool/node maps, IPIP + NAT tc on the uplink
 *
 * Contract:
 * - Every interface whose name starts with the workload prefix gets the workload programs, with
 *   or without an endpoint: one without an endpoint entry fails closed (the programs drop).
 *   An endpoint's policy is written before its programs are attached.
 * - Maps are pinned under `pinRoot` and reused by a restarted agent: at open, the policy state a
 *   previous run left is adopted (PolicyDataplane.recover), so the first reconcile writes only
 *   differences, keeps table ids that are still wanted, and removes the rest.
 * - Deltas are applied in CalcDelta's order (additions before switches before removals).
 * - close() releases this process's handles only: programs stay attached and maps pinned, so
 *   the datapath keeps enforcing while the agent is down.
 */
import { mkdirSync } from 'node:fs';
import type { CalcDelta, CompiledState, LocalEndpoint, Prefilter, RuleInfo } from '../calc/types';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import { loadHep, loadPrefilter, loadWep, readHostRouteStats, type EndpointToHostAction, type LoadOptions, type HepDatapath, type HostRoutingMode, type PrefilterDatapath, type WepDatapath } from './bpf/loader';
import { NO_HOST_ROUTE_STATS, type HostRouteStats } from './bpf/host-routing';
import { execFileSync } from 'node:child_process';
import { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND, type FailsafePort } from '../model/failsafe';
import { encodeFailsafe, encodeFailsafe6 } from './bpf/encode';
import { formatIP, tryParseIP } from '../primitives';
import { PolicyDataplane } from './bpf/policy-sync';
import { mapOps } from './bpf/loader';
import { encodePrefilter, type Entry } from './bpf/encode';
import { ctStatus, mergeSweeps, sweepConntrack, type CtStatus, type CtTimeouts } from './bpf/conntrack';
import { decodeEvent, readCounters, readEventBudgets, type FlowEvent } from './bpf/counters';
import { EventBudgetTotals, FlowLogLimiter, type FlowLogLimits } from './bpf/observe';
import { dropReasonLabel } from './bpf/drop-reasons';
import { BpfProgram, RingBuffer, tcAttach, xdpAttach, xdpDetach, xdpQuery, type BpfMap } from './native';
import { LinkWatcher, type LinkInfo } from './links';
import { RouteManager, type RouteManagerOptions } from './routing';
import type { NatStatus } from './bpf/nat';

export interface BpfDataplaneOptions {
  pinRoot: string;
  /** Workload interface prefix (`cali`), or Calico's comma-separated list (`cali,veth`). */
  interfacePrefix: string;
  /** Host uplink for the XDP prefilter; none = no prefilter attached. */
  uplink?: string;
  /** Operate on another network namespace (tests): its name (for `ip -n`) and path (for setns). */
  netns?: { name: string; path: string };
  ctMaxEntries?: number;
  /** max_entries of the policy maps (loader mapSizes; default DEFAULT_POLICY_MAP_SIZES), given to every object sharing them. */
  mapSizes?: LoadOptions['mapSizes'];
  /** Conntrack entries one workload address may own (default ctMaxEntries / 8; 0 = no quota). */
  ctQuota?: number;
  /** Conntrack timeouts (load-time constants of the programs, and the sweep's; default Calico's). */
  ctTimeouts?: CtTimeouts;
  /** Felix's defaultEndpointToHostAction (default Drop, as Calico; Return acts as Accept). */
  endpointToHostAction?: EndpointToHostAction;
  /** Felix's failsafe ports for host endpoints (default Calico's). */
  failsafe?: { inbound: readonly FailsafePort[]; outbound: readonly FailsafePort[] };
  /** BPF host routing from workloads: peer redirect, uplink redirect (loader HostRoutingMode; default off). */
  hostRouting?: HostRoutingMode;
  /** Flow-log sink for denied flows and Log rule hits (default: the logger at info). */
  onFlow?: (flow: FlowLog) => void;
  /**
   * Called when open() starts its last BPF object load (verified on a worker thread, seconds at
   * start-up): from then on it needs the main thread only briefly, after that load, so the agent
   * may compile its first snapshot meanwhile instead of waiting (src/node/agent.ts).
   */
  onLastLoad?: () => void;
  /** At most this many flow logs per second go to onFlow, the rest are counted and summarised
   *  at housekeeping (default DEFAULT_FLOW_LOG_LIMITS: 20/s, bursts of 50). */
  flowLogLimits?: FlowLogLimits;
  /** Ring-buffer records handled per event-loop turn (default 256). */
  eventBatch?: number;
  /** Kernel per-endpoint event budget (loader eventBudget; default 50/s per CPU, burst 100). */
  eventBudget?: { perSec: number; burst: number };
  log?: Logger;
  objectDir?: string;
  /** Link re-list period (the monitor catches changes immediately). */
  linkResyncMs?: number;
  /** Calico networking (routes, IPIP, NAT outgoing); false = policy only. Default on. */
  routing?: false | Pick<RouteManagerOptions, 'routeProtocol' | 'nat' | 'routeSource' | 'mtu' | 'natOutgoingAddress' | 'vxlan'>;
}

export interface FlowLog {
  kind: FlowEvent['kind'];
  direction: FlowEvent['direction'];
  endpoint?: string;
  interface?: string;
  src: string;
  dst: string;
  protocol: number;
  srcPort: number;
  dstPort: number;
  reason: string;
  rule?: Omit<RuleInfo, 'id'> & { id: number };
}

/** Flow events from the kernel to the logs (totals since start). */
export interface FlowEventStatus {
  /** Events read from the ring buffer. */
  received: number;
  /** Passed to the flow-log sink individually. */
  logged: number;
  /** Only counted (over the agent's flow-log rate), in the periodic summary. */
  aggregated: number;
  /** Emitted into the ring by the programs, per the endpoints' budgets. */
  emitted: number;
  /** Not emitted: the endpoint was over its event budget (counted in the kernel). */
  suppressed: number;
  /** Lost: the ring was full (the agent behind). */
  lost: number;
}

export interface DataplaneStatus {
  endpointsProgrammed: number;
  interfaces: number;
  tables: number;
  conntrackEntries: number;
  /** The last conntrack sweep: entries visited and entries removed as expired. */
  conntrackSweep: { scanned: number; expired: number };
  drops: Record<string, bigint>;
  mapEntries: Record<string, number>;
  events: FlowEventStatus;
  /** NAT outgoing state (absent in policy-only mode). */
  nat?: NatStatus;
  /** NAT66's table (tortie_nat6_v1), the same figures. */
  nat6?: NatStatus;
  /** Conntrack table use against its size and the per-workload quota. */
  conntrack: CtStatus;
  /** BPF host routing: whether it is on, and its counters summed over CPUs (zeros when off). */
  hostRouting: { active: boolean; stats: HostRouteStats; stats6: HostRouteStats };
}


export type { CtStatus };

function hex(b: Buffer): string { return b.toString('hex'); }

/** An attached XDP program is tortie's prefilter (the kernel keeps 15 characters of its name). */
function isPrefilterProg(id: number): boolean {
  try {
    const p = BpfProgram.fromId(id);
    try { const n = p.info().name; return n.length > 0 && 'tortie_xdp_prefilter'.startsWith(n); } finally { p.close(); }
  } catch {
    return false;
  }
}

/** An address in canonical text (IPv6 compressed, lower case), or as given if unparseable. */
function canonicalIp(s: string): string {
  const ip = tryParseIP(s);
  return ip === undefined ? s : formatIP(ip);
}

export class BpfDataplane {
  private readonly log: Logger;
  private wep!: WepDatapath;
  private pf?: PrefilterDatapath;
  private hep!: HepDatapath;
  /** Local host endpoints by key (LocalEndpoint.host set). */
  private readonly hostEps = new Map<string, LocalEndpoint>();
  private readonly hostAttached = new Set<number>();
  private policy!: PolicyDataplane;
  private links!: LinkWatcher;
  private ring?: RingBuffer;
  private routes?: RouteManager;
  private readonly flowLimiter: FlowLogLimiter;
  private readonly budgets = new EventBudgetTotals();
  private ctExpired = 0;

  /** Desired endpoints by interface name (to rebind when a link appears or is recreated). */
  private readonly byInterface = new Map<string, LocalEndpoint>();
  private readonly interfaceOf = new Map<string, string>();        // endpoint key → interface name
  private readonly rules = new Map<number, RuleInfo>();
  private prefilterKeys = new Map<string, Entry>();
  /** tortie_pf6_v1's entries, as prefilterKeys. */
  private prefilterKeys6 = new Map<string, Entry>();
  private classCount = 0;

  /** Kernel state this process manages. */
  private readonly attached = new Set<number>();                   // ifindexes with programs
  /** The prefilter's mode on the uplink while attached (only while it has entries). */
  private uplinkXdp?: 'native' | 'generic';
  private uplinkMtu?: number;
  private applyChain: Promise<void> = Promise.resolve();

  private constructor(private readonly o: BpfDataplaneOptions) {
    this.log = (o.log ?? silentLogger).child({ component: 'dataplane' });
    this.flowLimiter = new FlowLogLimiter(o.flowLogLimits);
  }

  static async open(o: BpfDataplaneOptions): Promise<BpfDataplane> {
    const dp = new BpfDataplane(o);
    await dp.init();
    return dp;
  }

  private async init(): Promise<void> {
    mkdirSync(this.o.pinRoot, { recursive: true });
    this.wep = await loadWep({ pinRoot: this.o.pinRoot, ctMaxEntries: this.o.ctMaxEntries, ctQuota: this.o.ctQuota, ctTimeouts: this.o.ctTimeouts, endpointToHostAction: this.o.endpointToHostAction, hostRouting: this.o.hostRouting, objectDir: this.o.objectDir, eventBudget: this.o.eventBudget, mapSizes: this.o.mapSizes });
    this.log.info({ hostRouting: this.wep.hostRouting }, `BPF host routing ${this.wep.hostRouting.active ? 'on' : 'off'}: ${this.wep.hostRouting.reason}`);
    if (this.o.uplink) {
      this.pf = await loadPrefilter({ pinRoot: this.o.pinRoot, objectDir: this.o.objectDir, mapSizes: this.o.mapSizes });
      // Adopt what a previous run left in the pinned deny lists: the uplink keeps its prefilter
      // until the first snapshot says otherwise, and stale entries are deleted by it.
      for (const [m, keys] of [[this.pf.pf4, this.prefilterKeys], [this.pf.pf6, this.prefilterKeys6]] as const) {
        const { keys: ks, values } = m.entries();
        ks.forEach((k, i) => keys.set(hex(k), { key: k, value: values[i]! }));
      }
    }
    if (this.o.routing === false) this.o.onLastLoad?.();
    this.hep = await loadHep({ pinRoot: this.o.pinRoot, objectDir: this.o.objectDir, eventBudget: this.o.eventBudget, mapSizes: this.o.mapSizes });
    this.setFailsafe(this.o.failsafe ?? { inbound: DEFAULT_FAILSAFE_INBOUND, outbound: DEFAULT_FAILSAFE_OUTBOUND });
    if (this.o.routing !== false) {
      this.o.onLastLoad?.();
      this.routes = await RouteManager.open({
        ...(this.o.routing ?? {}), mapSizes: this.o.mapSizes, pinRoot: this.o.pinRoot, uplink: this.o.uplink, netns: this.o.netns, ct4: this.wep.maps.ct4, ct6: this.wep.maps.ct6,
        objectDir: this.o.objectDir, log: this.log,
      });
    }
    this.policy = new PolicyDataplane({ ...this.wep.policyMaps, cls4: mapOps(this.map('cls4')), cls6: mapOps(this.map('cls6')), hep: mapOps(this.hep.maps.hep), hlt4: mapOps(this.hep.maps.hlt4), hlt6: mapOps(this.hep.maps.hlt6) },
      (ep) => (ep.host ? this.hostKeyOf(ep) : ep.interfaceName ? this.links.byName(ep.interfaceName)?.ifindex : undefined));
    const recovered = this.policy.recover();
    if (recovered.endpoints + recovered.tables + recovered.prefixes > 0) this.log.info(recovered, 'adopted the policy state a previous run left');
    const events = this.wep.maps.events;
    if (events) {
      // Bounded batches, one in flight: event handling never holds the loop for long, so a
      // datastore change waits at most one batch before it reaches the kernel.
      this.ring = RingBuffer.open(events, (rec) => this.onEvent(rec), {
        onError: (e) => this.log.warn({ err: e }, 'ring buffer'), maxBatch: this.o.eventBatch ?? 256,
      });
      this.ring.unref();
    }
    this.links = new LinkWatcher({
      // Every interface: workload ones get the workload programs, host ones may have host endpoints.
      netns: this.o.netns?.name, filter: (n) => n !== 'lo',
      resyncMs: this.o.linkResyncMs, log: this.log,
    });
    this.links.on('add', (l: LinkInfo) => this.enqueue(() => this.onLinkAdd(l)));
    this.links.on('remove', (l: LinkInfo) => this.enqueue(() => this.onLinkRemove(l)));
    // The uplink's MTU changed (say, jumbo frames turned on): Felix's MTU detection runs again.
    this.links.on('change', (l: LinkInfo) => {
      if (l.name !== this.o.uplink || l.mtu === this.uplinkMtu) return;
      this.uplinkMtu = l.mtu;
      void this.enqueue(() => this.routes?.uplinkMtuChanged());
    });
    await this.links.start();
    await this.applyChain;
  }

  private map(name: keyof WepDatapath['maps']): BpfMap {
    const m = this.wep.maps[name];
    if (!m) throw new Error(`datapath object has no ${name} map`);
    return m;
  }

  /** Serialises kernel work: link events, reconciles and deltas never interleave. */
  private enqueue(fn: () => void | Promise<void>): Promise<void> {
    const next = this.applyChain.then(fn);
    this.applyChain = next.catch((e) => { this.log.error({ err: e }, 'dataplane operation failed'); });
    return next;
  }

  // ---------------------------------------------------------------- links

  private onLinkAdd(l: LinkInfo): void | Promise<void> {
    if (!matchesInterfacePrefix(this.o.interfacePrefix, l.name)) {
      this.syncHostEndpoints();
      if (l.name === this.o.uplink) { this.uplinkMtu = l.mtu; this.syncUplinkXdp(); return this.routes?.uplinkAppeared(); }
      return;
    }
    const ep = this.byInterface.get(l.name);
    if (ep && this.policy.ifindexOf(ep.key) !== l.ifindex) this.policy.bind(ep); // policy before programs
    this.attachWorkload(l);
  }

  private onLinkRemove(l: LinkInfo): void {
    this.attached.delete(l.ifindex);
    this.hostAttached.delete(l.ifindex);
    if (!matchesInterfacePrefix(this.o.interfacePrefix, l.name)) {
      for (const ep of this.hostEps.values()) if (ep.host!.interfaceName !== '*' && this.policy.ifindexOf(ep.key) === l.ifindex) this.policy.interfaceGone(ep.key);
      this.syncHostEndpoints();
    }
    if (l.name === this.o.uplink) { this.uplinkXdp = undefined; this.routes?.uplinkChanged(); return; }
    const ep = this.byInterface.get(l.name);
    if (ep && this.policy.ifindexOf(ep.key) === l.ifindex) this.policy.interfaceGone(ep.key);
  }

  private attachWorkload(l: LinkInfo): void {
    if (this.attached.has(l.ifindex)) return;
    const netns = this.o.netns?.path;
    // from the workload = ingress of the host-side veth; to the workload = its egress.
    tcAttach({ iface: l.ifindex, netns, direction: 'ingress', program: this.wep.fromWep, replace: true });
    tcAttach({ iface: l.ifindex, netns, direction: 'egress', program: this.wep.toWep, replace: true });
    this.attached.add(l.ifindex);
    this.log.debug({ iface: l.name, ifindex: l.ifindex }, 'workload programs attached');
  }

  // ---------------------------------------------------------------- host endpoints

  /** tortie_hep_v1 key of a host endpoint: 0 for `*`, its interface's ifindex, else the
   *  interface holding one of its expectedIPs; undefined while there is none. */
  private hostKeyOf(ep: LocalEndpoint): number | undefined {
    const h = ep.host!;
    if (h.interfaceName === '*') return 0;
    if (h.interfaceName !== undefined) return this.links.byName(h.interfaceName)?.ifindex;
    const byAddr = this.interfaceAddresses();
    for (const ip of h.expectedIPs) {
      const i = byAddr.get(canonicalIp(ip));
      if (i !== undefined) return i;
    }
    return undefined;
  }

  /** Address (either family, canonical text) → ifindex of this node's interfaces (read when an
   *  expectedIPs-only host endpoint is bound). */
  private interfaceAddresses(): Map<string, number> {
    const args = [...(this.o.netns ? ['-n', this.o.netns.name] : []), '-j', 'addr', 'show'];
    const out = new Map<string, number>();
    try {
      for (const l of JSON.parse(execFileSync('ip', args, { encoding: 'utf8' })) as { ifindex: number; addr_info?: { local?: string }[] }[]) {
        for (const a of l.addr_info ?? []) if (a.local) out.set(canonicalIp(a.local), l.ifindex);
      }
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'could not list interface addresses for host endpoints');
    }
    return out;
  }

  /**
   * Host interfaces that need tortie_hep_in/out: those a host endpoint names or holds, every
   * non-workload interface when a `*` endpoint exists; not the uplink when its own programs
   * (routing on) carry host endpoint policy. Programs stay attached when endpoints go (without a
   * tortie_hep_v1 entry they only count).
   */
  private syncHostEndpoints(): void {
    const wild = [...this.hostEps.values()].some((e) => e.host!.interfaceName === '*');
    const named = new Set<number>();
    for (const e of this.hostEps.values()) {
      const k = e.host!.interfaceName === '*' ? undefined : this.hostKeyOf(e);
      if (k !== undefined) named.add(k);
    }
    for (const l of this.links.list()) {
      if (matchesInterfacePrefix(this.o.interfacePrefix, l.name)) continue;
      if (l.name === this.o.uplink && this.routes) continue;
      if (!wild && !named.has(l.ifindex)) continue;
      if (this.hostAttached.has(l.ifindex)) continue;
      const netns = this.o.netns?.path;
      tcAttach({ iface: l.ifindex, netns, direction: 'ingress', program: this.hep.ingress, replace: true });
      tcAttach({ iface: l.ifindex, netns, direction: 'egress', program: this.hep.egress, replace: true });
      this.hostAttached.add(l.ifindex);
      this.log.debug({ iface: l.name, ifindex: l.ifindex }, 'host endpoint programs attached');
    }
    for (const e of this.policy.pendingHostEndpoints) this.policy.bind(e);
  }

  private trackHostEndpoints(upserted: LocalEndpoint[], removedKeys: string[], replaceAll: boolean): void {
    if (replaceAll) this.hostEps.clear();
    for (const k of removedKeys) this.hostEps.delete(k);
    for (const e of upserted) if (e.host) this.hostEps.set(e.key, e); else this.hostEps.delete(e.key);
  }

  private setFailsafe(f: { inbound: readonly FailsafePort[]; outbound: readonly FailsafePort[] }): void {
    for (const [m, want] of [[this.hep.maps.fs4, encodeFailsafe(f.inbound, f.outbound)], [this.hep.maps.fs6, encodeFailsafe6(f.inbound, f.outbound)]] as const) {
      const keep = new Set(want.map((e) => hex(e.key)));
      const { keys } = m.entries();
      for (const k of keys) if (!keep.has(hex(k))) m.tryDelete(k);
      for (const e of want) m.update(e.key, e.value);
    }
  }

  /** Deny-list entries (both families) the prefilter holds. */
  get prefilterEntries(): number {
    return this.prefilterKeys.size + this.prefilterKeys6.size;
  }

  /** The prefilter's XDP mode on the uplink, undefined while it is not attached. */
  get uplinkXdpMode(): 'native' | 'generic' | undefined {
    return this.uplinkXdp;
  }

  /**
   * The XDP prefilter is on the uplink while it has at least one entry, as Felix attaches XDP
   * only where there is something to enforce: with none the program would only pass and count,
   * and on a veth an XDP program makes the peer give up GSO (every packet sent to this node is
   * segmented to the MTU first). Entries are written before the attach and the caller's promise
   * resolves after it, so a deny entry is enforced once the apply that carried it has resolved.
   * The interface is queried, not trusted from memory: a previous run's attachment is adopted,
   * or removed when there is nothing left to enforce.
   */
  private syncUplinkXdp(): void {
    if (!this.pf || !this.o.uplink) return;
    const netns = this.o.netns?.path;
    const uplink = this.links.byName(this.o.uplink);
    if (!uplink) { this.uplinkXdp = undefined; return; }
    const q = xdpQuery({ iface: uplink.ifindex, netns });
    const ours = q.nativeProgId === this.pf.prog.id ? 'native' : q.genericProgId === this.pf.prog.id ? 'generic' : undefined;
    const want = this.prefilterEntries > 0;
    if (want && ours) { this.uplinkXdp = ours; return; }
    if (want) {
      try {
        xdpAttach({ iface: uplink.ifindex, netns, program: this.pf.prog, mode: 'native', replace: true });
        this.uplinkXdp = 'native';
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'native XDP failed on the uplink; using generic mode');
        xdpAttach({ iface: uplink.ifindex, netns, program: this.pf.prog, mode: 'generic', replace: true });
        this.uplinkXdp = 'generic';
      }
      this.log.info({ iface: this.o.uplink, mode: this.uplinkXdp, entries: this.prefilterEntries }, 'XDP prefilter attached to the uplink');
      return;
    }
    this.uplinkXdp = undefined;
    // A tortie prefilter (this run's or a previous one's, same pinned program or not) goes.
    for (const [mode, id] of [['native', q.nativeProgId], ['generic', q.genericProgId]] as const) {
      if (!id || (id !== this.pf.prog.id && !isPrefilterProg(id))) continue;
      xdpDetach({ iface: uplink.ifindex, netns, mode });
      this.log.info({ iface: this.o.uplink, mode }, 'XDP prefilter detached from the uplink: no prefilter entries');
    }
  }

  // ---------------------------------------------------------------- endpoints

  private trackEndpoints(upserted: LocalEndpoint[], removedKeys: string[], replaceAll: boolean): void {
    if (replaceAll) {
      this.byInterface.clear();
      this.interfaceOf.clear();
    }
    const drop = (key: string) => {
      const name = this.interfaceOf.get(key);
      if (name !== undefined && this.byInterface.get(name)?.key === key) this.byInterface.delete(name);
      this.interfaceOf.delete(key);
    };
    for (const key of removedKeys) drop(key);
    for (const ep of upserted) {
      drop(ep.key);
      if (!ep.interfaceName) continue;
      this.byInterface.set(ep.interfaceName, ep);
      this.interfaceOf.set(ep.key, ep.interfaceName);
    }
  }


  // ---------------------------------------------------------------- classes, prefilter

  private setPrefilter(pf: Prefilter): void {
    if (!this.pf) return;
    const want = new Map(encodePrefilter(pf).map((e) => [hex(e.key), e]));
    for (const [h, e] of want) if (this.prefilterKeys.get(h)?.value.equals(e.value) !== true) this.pf.pf4.update(e.key, e.value);
    for (const [h, e] of this.prefilterKeys) if (!want.has(h)) this.pf.pf4.tryDelete(e.key);
    this.prefilterKeys = want;
    const want6 = new Map(encodePrefilter(pf, [], true).map((e) => [hex(e.key), e]));
    for (const [h, e] of want6) if (this.prefilterKeys6.get(h)?.value.equals(e.value) !== true) this.pf.pf6.update(e.key, e.value);
    for (const [h, e] of this.prefilterKeys6) if (!want6.has(h)) this.pf.pf6.tryDelete(e.key);
    this.prefilterKeys6 = want6;
  }

  // ---------------------------------------------------------------- public API

  /**
   * The whole state: the routes (RouteManager: its own order, child processes for the kernel
   * routes) run beside the policy, whose large writes (class prefixes, new tables' content) go
   * off the JS thread first (PolicyDataplane.prepareSnapshot); then, on the JS thread, each
   * table is completed and the endpoints flip (applySnapshot). The two are independent: the
   * routes reach remote workloads, policy is enforced at the local interfaces, which fail closed
   * until their endpoint's flip. Resolves when both are done; rejects with the policy's error
   * first (after the routes settled, so that nothing of this step runs on).
   */
  reconcile(state: CompiledState): Promise<void> {
    return this.enqueue(async () => {
      // The policy's first batches are queued before the routes' planning takes the JS thread.
      const prepared = this.policy.prepareSnapshot(state);
      prepared.catch(() => undefined); // awaited below
      let routing: Promise<void> | undefined;
      if (this.routes) {
        this.routes.setState(state.nodeName, state.routing);
        routing = this.routes.apply();
        routing.catch(() => undefined); // awaited below
      }
      try {
        await prepared;
        this.reconcileNow(state);
      } catch (e) {
        await routing?.catch(() => undefined);
        throw e;
      }
      await routing;
    });
  }

  private reconcileNow(state: CompiledState): void {
    this.rules.clear();
    for (const r of state.rules) this.rules.set(r.id, r);
    this.trackEndpoints(state.endpoints, [], true);
    this.trackHostEndpoints(state.endpoints, [], true);
    this.policy.applySnapshot(state);
    this.syncHostEndpoints();
    this.classCount = state.classes.prefixes.length;
    for (const l of this.links.list()) {
      if (l.name === this.o.uplink) continue;
      if (matchesInterfacePrefix(this.o.interfacePrefix, l.name)) this.attachWorkload(l);
    }
    this.setPrefilter(state.prefilter);
    this.syncUplinkXdp();
    this.log.debug({ endpoints: this.policy.boundCount, pending: this.policy.pendingEndpoints.length, tables: this.policy.writer.tables.size }, 'reconciled');
  }

  apply(delta: CalcDelta): Promise<void> {
    return this.enqueue(async () => {
      this.applyNow(delta);
      if (this.routes?.applyDelta(delta)) await this.routes.apply();
    });
  }

  private applyNow(d: CalcDelta): void {
    for (const r of d.rulesUpserted) this.rules.set(r.id, r);
    this.trackEndpoints(d.endpointsUpserted, d.endpointsRemoved, false);
    this.trackHostEndpoints(d.endpointsUpserted, d.endpointsRemoved, false);
    this.policy.applyDelta(d); // CalcDelta's order: additions, prefixes, switches, removals
    if (d.endpointsUpserted.some((e) => e.host) || d.endpointsRemoved.length > 0) this.syncHostEndpoints();
    this.classCount += d.prefixesUpserted.length - d.prefixesRemoved.length;
    for (const id of d.rulesRemoved) this.rules.delete(id);
    if (d.prefilterChanged && d.prefilter) {
      this.setPrefilter(d.prefilter);
      this.syncUplinkXdp();
    }
  }

  // ---------------------------------------------------------------- observability

  private onEvent(rec: Buffer): void {
    let ev: FlowEvent;
    try { ev = decodeEvent(rec); } catch (e) { this.log.warn({ err: e }, 'undecodable datapath event'); return; }
    // Over the flow-log rate: counted under (kind, reason, interface) for the summary only.
    const where = this.links.byIndex(ev.ifindex)?.name ?? `ifindex ${ev.ifindex}`;
    if (!this.flowLimiter.admit(`${ev.kind} ${ev.reason} ${where}`)) return;
    const rule = this.rules.get(ev.ruleId);
    const flow: FlowLog = {
      kind: ev.kind, direction: ev.direction, endpoint: this.policy.endpointKeyOf(ev.endpointId),
      interface: this.links.byIndex(ev.ifindex)?.name,
      src: ev.src, dst: ev.dst, protocol: ev.protocol, srcPort: ev.srcPort, dstPort: ev.dstPort, reason: ev.reason,
      rule: rule ? { ...rule } : undefined,
    };
    if (this.o.onFlow) this.o.onFlow(flow);
    else this.log.info({ flow }, ev.kind === 'log' ? 'policy log' : 'flow denied');
  }

  /** Conntrack sweep and a status read for metrics; cheap enough to run every few seconds. */
  housekeeping(): DataplaneStatus {
    const now = process.hrtime.bigint();
    const ct4 = sweepConntrack(this.wep.ct, this.wep.ctTimeouts, now, this.wep.ctq);
    const ct6 = sweepConntrack(this.wep.ct6, this.wep.ctTimeouts, now, this.wep.ctq6);
    const ct = mergeSweeps(ct4, ct6);
    this.routes?.sweepNat();
    const drops: Record<string, bigint> = {};
    for (const row of readCounters(this.map('cnt'))) {
      if (row.reason === 0) continue;
      const label = dropReasonLabel(row.reason);
      drops[label] = (drops[label] ?? 0n) + row.packets;
    }
    const events = this.flowEvents();
    const mapEntries: Record<string, number> = {
      cls4: this.classCount, ep: this.policy.boundCount, ct4: ct4.live, ct6: ct6.live, pf4: this.prefilterKeys.size, pf6: this.prefilterKeys6.size,
      ...this.routes?.mapEntries(),
    };
    return {
      endpointsProgrammed: this.policy.boundCount, interfaces: this.attached.size, tables: this.policy.writer.tables.size,
      conntrackEntries: ct.live, conntrackSweep: { scanned: ct.scanned, expired: ct.expired }, drops, mapEntries, events, nat: this.routes?.natStatus(), nat6: this.routes?.natStatus(6),
      conntrack: ctStatus(ct, this.wep.ctMaxEntries, this.wep.ctQuota, (this.ctExpired += ct.expired)),
      hostRouting: {
        active: this.wep.hostRouting.active,
        stats: this.wep.maps.hrst ? readHostRouteStats(this.wep.maps.hrst) : { ...NO_HOST_ROUTE_STATS },
        stats6: this.wep.maps.hrst ? readHostRouteStats(this.wep.maps.hrst, 6) : { ...NO_HOST_ROUTE_STATS },
      },
    };
  }

  /**
   * Flow-event totals; logs one summary line for what was not logged individually since the
   * last call (the agent's sampling) and what the kernel budgets suppressed or the ring lost.
   */
  flowEvents(): FlowEventStatus {
    const evbud = this.wep.maps.evbud;
    const inc = evbud ? this.budgets.update(readEventBudgets(evbud)) : new Map<number, { suppressed: bigint; lost: bigint }>();
    const sampled = this.flowLimiter.takeSummary();
    if (sampled || inc.size > 0) {
      const kernel = [...inc].sort((a, b) => Number(b[1].suppressed + b[1].lost - a[1].suppressed - a[1].lost)).slice(0, 10)
        .map(([ifindex, v]) => ({ interface: this.links.byIndex(ifindex)?.name ?? `ifindex ${ifindex}`, suppressed: Number(v.suppressed), lost: Number(v.lost) }));
      this.log.info({ notLogged: sampled?.total ?? 0, notLoggedTop: sampled ? Object.fromEntries(sampled.byKey) : undefined, kernel },
        'flow events aggregated (over the flow-log rate or an endpoint\'s event budget)');
    }
    const t = this.flowLimiter.totals;
    return {
      received: t.received, logged: t.logged, aggregated: t.aggregated,
      emitted: Number(this.budgets.totals.emitted), suppressed: Number(this.budgets.totals.suppressed), lost: Number(this.budgets.totals.lost),
    };
  }

  /** Resolves when queued kernel work is done (tests). */
  async settled(): Promise<void> { await this.applyChain; }

  /** Interface → endpoint key currently programmed (tests, status). */
  programmedEndpoints(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [name, ep] of this.byInterface) if (this.policy.ifindexOf(ep.key) !== undefined) out.set(name, ep.key);
    return out;
  }

  get maps(): WepDatapath['maps'] { return this.wep.maps; }
  /** The host endpoint maps (tortie_hep_v1, tortie_fs4_v1, tortie_hct4_v2, tortie_hlt4_v1 and IPv6's
   *  tortie_fs6_v1, tortie_hct6_v1, tortie_hlt6_v1). */
  get hostMaps(): HepDatapath['maps'] { return this.hep.maps; }

  /** The networking side (routes, IPIP, NAT), when enabled. */
  get routing(): RouteManager | undefined { return this.routes; }

  async close(): Promise<void> {
    this.links?.stop();
    await this.applyChain;
    this.ring?.close();
    this.pf?.close();
    this.hep?.close();
    this.routes?.close();
    this.wep?.close();
  }
}

/** Whether `name` is a workload interface: it starts with one of the comma-separated prefixes. */
export function matchesInterfacePrefix(prefixes: string, name: string): boolean {
  return prefixes.split(',').some((p) => p !== '' && name.startsWith(p));
}
