/**
 * The four dataplanes the suite compares, switched on one BenchTopology:
 *   - bare: routed veths, no programs, no rules (the physical limit here);
 *   - tortie: the real BpfDataplane (src/dataplane, default options: Calico networking on)
 *     programmed with CalcGraph's compiled state: programs on every cali* interface, the XDP
 *     prefilter (only while it has entries, as the agent attaches it) and the IPIP/NAT tc
 *     programs on the uplink;
 *   - iptables: the rules and ipsets Calico's classic dataplane programs for the same resources;
 *   - nftables: the same policies as one `calico` table in the shape of Calico's nftables
 *     dataplane (verdict-map dispatch, named sets, kernel conntrack; bench/lib/scenarios.ts).
 *
 * Contract:
 * - Exactly one dataplane is active at a time; `use(name)` leaves the node in that state (no
 *   tortie program attached, no iptables rule or ipset left when another one is active).
 *   Switching tortie on/off attaches/detaches programs only: its maps stay programmed, so a
 *   switch costs milliseconds and repeats can interleave. iptables on/off restores/flushes the
 *   node namespace's ruleset (`nft flush ruleset` with the nft backend, so no netfilter hook or
 *   conntrack stays registered for the others); nftables on/off loads its table with `nft -f`
 *   and flushes the ruleset the same way.
 * - `program(scale)` compiles (once per scale, then cached) and writes the policy for the next
 *   measurements on tortie (a full reconcile of the maps), iptables and nftables (kept as
 *   restore text / an nft script, loaded when that dataplane becomes active). With `family: 6`
 *   the scenario's IPv6 rendering: dual-stack client and server, IPv6 members; iptables is then
 *   ip6tables (an inet6 ipset), nftables a `table ip6 calico`.
 * - `close()` detaches everything it attached, flushes rules, closes handles and removes its pin
 *   root. It is safe to call twice and after a failure half way.
 */
import { rmSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CalcGraph, type CompiledState } from '../../src/calc';
import type { Resource } from '../../src/model';
import { BpfDataplane } from '../../src/dataplane/dataplane';
import { loadPrefilter, loadUplink, loadWep, readHostRouteStats, type PrefilterDatapath, type UplinkDatapath, type WepDatapath } from '../../src/dataplane/bpf/loader';
import { NO_HOST_ROUTE_STATS, type HostRouteStats } from '../../src/dataplane/bpf/host-routing';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { Dir } from '../../src/dataplane/bpf/drop-reasons';
import { tcAttach, tcDestroyHook, xdpAttach, xdpDetach } from '../../src/dataplane/native';
import type { DataplaneName } from './results';
import type { BenchTopology } from './topology';
import { BENCH_NODE, calicoResources, iptablesRestore, ipsetRestore, iptablesRawDrop, NFT_TABLE, nftablesRuleset, prefilterPolicy, type Family, type PolicyScale } from './scenarios';

export type IptablesBackend = 'nft' | 'legacy';

export interface ProgramTimings { compileMs: number; reconcileMs: number; tableCells: number; prefixes: number; iptablesRules: number; nftablesRules: number }

export class DataplaneSwitch {
  readonly pinRoot = `/sys/fs/bpf/tortie-bench-${randomBytes(4).toString('hex')}`;
  private dp?: BpfDataplane;
  private wep?: WepDatapath;
  private pf?: PrefilterDatapath;
  private up?: UplinkDatapath;
  /** The same prefilter built with flow events off (a diagnostic variant, see prefilterEvents). */
  private pfQuiet?: PrefilterDatapath;
  private active: DataplaneName | undefined;
  private filterRules = '';
  private rawRules = '';
  private ipsets = '';
  private nftScript = '';
  /** The family of what `program` wrote last (iptables or ip6tables rules). */
  private family: Family = 4;
  /** ip6tables rules were loaded at least once (legacy backend: their tables then need flushing). */
  private ip6Loaded = false;
  private state?: CompiledState;
  private readonly cache = new Map<string, { state: CompiledState; compileMs: number; filter: string; ipsets: string; raw: string; nft: string }>();
  flowEvents = 0;

  constructor(private readonly t: BenchTopology, private readonly backend: IptablesBackend = 'nft') {}

  get current(): DataplaneName | undefined { return this.active; }

  /** Loads tortie (maps pinned under a unique root) and leaves the node bare. */
  async open(): Promise<void> {
    this.dp = await BpfDataplane.open({
      pinRoot: this.pinRoot, interfacePrefix: 'cali', uplink: 'eth0', netns: { name: this.t.node.name, path: this.t.node.path },
      onFlow: () => { this.flowEvents++; },
    });
    // Handles on the same programs (same object, same pinned maps) to re-attach after a bare phase.
    this.wep = await loadWep({ pinRoot: this.pinRoot });
    this.pf = await loadPrefilter({ pinRoot: this.pinRoot });
    this.pfQuiet = await loadPrefilter({ pinRoot: this.pinRoot, events: false });
    // The agent's default (Calico networking on) also puts IPIP/NAT programs on the uplink.
    this.up = await loadUplink({ pinRoot: this.pinRoot });
    this.active = 'tortie';
    await this.use('bare');
  }

  /** iptables-restore (ip6tables-restore for IPv6 rules) of the chosen backend, replacing only the tables in its input. */
  private restore(family: Family = this.family): string[] {
    return [`${family === 6 ? 'ip6tables' : 'iptables'}-${this.backend === 'nft' ? 'nft' : 'legacy'}-restore`, '--noflush'];
  }

  /**
   * Compiles `resources` (default: the scenario at `scale`) with a fresh CalcGraph, writes the
   * result into tortie's maps, and prepares the iptables equivalent for the next activation.
   */
  async program(scale: PolicyScale, opts: { prefilter?: boolean; family?: Family } = {}): Promise<ProgramTimings> {
    if (!this.dp) throw new Error('dataplane switch not open');
    const family = opts.family ?? 4;
    if (family === 6 && opts.prefilter) throw new Error('the prefilter scenario is IPv4 only');
    const key = JSON.stringify([scale.rules, scale.members, opts.prefilter === true, family]);
    let c = this.cache.get(key);
    if (!c) {
      const resources: Resource[] = calicoResources(scale, family, { client: this.t.client.mac, server: this.t.server.mac });
      if (opts.prefilter) resources.push(prefilterPolicy());
      const t0 = performance.now();
      const g = new CalcGraph({ nodeName: BENCH_NODE });
      for (const r of resources) g.onUpdate(r);
      g.flush();
      const state = g.snapshot();
      c = {
        state, compileMs: performance.now() - t0,
        filter: iptablesRestore(scale, family), ipsets: ipsetRestore(scale, family), raw: opts.prefilter ? iptablesRawDrop('eth0') : '',
        nft: nftablesRuleset(scale, opts.prefilter ? { prefilterUplink: 'eth0' } : { family }),
      };
      this.cache.set(key, c);
    }
    const t1 = performance.now();
    await this.dp.reconcile(c.state);
    const t2 = performance.now();
    this.state = c.state;
    // iptables switches off with the rules of the family it switched on with.
    if (this.active === 'iptables') await this.iptablesOff();
    // The nftables script replaces its own family's table only.
    if (this.active === 'nftables' && this.family !== family) await this.nftablesOff();
    this.family = family;
    this.filterRules = c.filter;
    this.ipsets = c.ipsets;
    this.rawRules = c.raw;
    this.nftScript = c.nft;
    if (this.active === 'iptables') await this.iptablesOn();
    if (this.active === 'nftables') await this.nftablesOn(); // the script replaces its own table
    return {
      compileMs: c.compileMs, reconcileMs: t2 - t1,
      tableCells: c.state.tables.reduce((a, t) => a + t.cells.length, 0), prefixes: c.state.classes.prefixes.length,
      iptablesRules: c.filter.split('\n').filter((l) => l.startsWith('-A ')).length,
      nftablesRules: c.nft.split('\n').filter((l) => l.startsWith('add rule ')).length,
    };
  }

  /** Drops the compiled states kept by `program` (a sweep revisits its levels each repeat). */
  forget(): void {
    this.cache.clear();
  }

  get compiled(): CompiledState | undefined { return this.state; }

  /** Host routing's counters of `family` (tortie_hrst_v2): peer redirects, and those whose
   *  destination the fib found rather than tortie_epdst_v1 (`peerFib`), ... */
  hostRouteStats(family: 4 | 6 = 4): HostRouteStats {
    const m = this.wep?.maps.hrst;
    return m ? readHostRouteStats(m, family) : { ...NO_HOST_ROUTE_STATS };
  }

  /** Whether tortie's workload programs route themselves (host routing, the agent's default `auto`) or take the kernel path. */
  get hostRouting(): string {
    const h = this.wep?.hostRouting;
    return h ? `${h.mode}: ${h.active ? 'active (bpf_redirect_peer between local workloads)' : `kernel path (${h.reason})`}` : 'not loaded';
  }

  async use(next: DataplaneName): Promise<void> {
    if (next === this.active) return;
    if (this.active === 'tortie') await this.tortieOff();
    if (this.active === 'iptables') await this.iptablesOff();
    if (this.active === 'nftables') await this.nftablesOff();
    this.active = undefined;
    if (next === 'tortie') await this.tortieOn();
    if (next === 'iptables') await this.iptablesOn();
    if (next === 'nftables') await this.nftablesOn();
    this.active = next;
    // Let the neighbour/route caches and any queued work settle before measuring.
    await new Promise((r) => setTimeout(r, 100));
  }

  private ifaces(): string[] {
    return [this.t.client.hostIf, this.t.server.hostIf];
  }

  private async tortieOn(): Promise<void> {
    const netns = this.t.node.path;
    for (const iface of this.ifaces()) {
      tcAttach({ iface, netns, direction: 'ingress', program: this.wep!.fromWep, replace: true });
      tcAttach({ iface, netns, direction: 'egress', program: this.wep!.toWep, replace: true });
    }
    // As the agent: the XDP prefilter only while it has entries (the prefilter group's doNotTrack
    // deny); without, the uplink has no XDP program (and its veth peer keeps GSO).
    if (this.dp!.prefilterEntries > 0) xdpAttach({ iface: 'eth0', netns, program: this.pf!.prog, mode: 'native', replace: true });
    tcAttach({ iface: 'eth0', netns, direction: 'ingress', program: this.up!.ingress, replace: true });
    tcAttach({ iface: 'eth0', netns, direction: 'egress', program: this.up!.egress, replace: true });
  }

  private async tortieOff(): Promise<void> {
    const netns = this.t.node.path;
    for (const iface of [...this.ifaces(), 'eth0']) tcDestroyHook({ iface, netns });
    xdpDetach({ iface: 'eth0', netns, mode: 'native' });
    xdpDetach({ iface: 'eth0', netns, mode: 'generic' }); // BpfDataplane falls back to generic mode
  }

  private async iptablesOn(): Promise<void> {
    const node = this.t.node;
    await node.exec(['ipset', 'restore'], { input: this.ipsets, timeoutMs: 120_000 });
    if (this.family === 6) this.ip6Loaded = true;
    await node.exec(this.restore(), { input: this.filterRules, timeoutMs: 120_000 });
    if (this.rawRules) await node.exec(this.restore(4), { input: this.rawRules, timeoutMs: 30_000 });
  }

  private async iptablesOff(): Promise<void> {
    const node = this.t.node;
    if (this.backend === 'nft') await node.exec(['nft', 'flush', 'ruleset'], { timeoutMs: 60_000 });
    else {
      // ip6tables' legacy tables only once IPv6 rules were loaded (flushing registers them).
      for (const bin of this.ip6Loaded ? ['iptables-legacy', 'ip6tables-legacy'] : ['iptables-legacy']) {
        for (const table of ['filter', 'raw']) {
          await node.exec([bin, '-t', table, '-F'], { timeoutMs: 60_000 });
          await node.exec([bin, '-t', table, '-X'], { timeoutMs: 60_000 });
        }
      }
    }
    await node.exec(['ipset', 'destroy'], { timeoutMs: 60_000, allowFail: true });
  }

  private async nftablesOn(): Promise<void> {
    if (!this.nftScript) throw new Error('nftables: nothing programmed yet (call program() first)');
    await this.t.node.exec(['nft', '-f', '-'], { input: this.nftScript, timeoutMs: 120_000 });
  }

  private async nftablesOff(): Promise<void> {
    await this.t.node.exec(['nft', 'flush', 'ruleset'], { timeoutMs: 60_000 });
  }

  /**
   * While tortie is active: swaps the uplink's XDP program for the variant without ring-buffer
   * flow events (false) or back to the agent's (true), to measure what per-drop events cost.
   */
  prefilterEvents(on: boolean): void {
    if (this.active !== 'tortie') throw new Error('prefilterEvents: tortie is not the active dataplane');
    const prog = on ? this.pf!.prog : this.pfQuiet!.prog;
    xdpAttach({ iface: 'eth0', netns: this.t.node.path, program: prog, mode: 'native', replace: true });
  }

  /** Back to bare whatever state a failure left: detach and flush everything, ignoring errors. */
  async reset(): Promise<void> {
    await this.tortieOff().catch(() => undefined);
    await this.iptablesOff().catch(() => undefined);
    await this.nftablesOff().catch(() => undefined);
    this.active = 'bare';
  }

  /** Packets the XDP prefilter dropped on the uplink so far (any drop reason: deny list or doNotTrack deny). */
  prefilterDrops(): bigint {
    if (!this.pf) return 0n;
    return readCounters(this.pf.cnt).filter((r) => r.dir === Dir.UPLINK && r.reason < 0).reduce((a, r) => a + r.packets, 0n);
  }

  /** Packets the iptables raw DROP matched so far. */
  async iptablesRawDrops(): Promise<bigint> {
    const bin = this.backend === 'nft' ? 'iptables-nft' : 'iptables-legacy';
    const r = await this.t.node.exec([bin, '-t', 'raw', '-L', 'cali-PREROUTING', '-v', '-x', '-n'], { allowFail: true });
    const m = /^\s*(\d+)\s+\d+\s+DROP/m.exec(r.stdout);
    return m ? BigInt(m[1]!) : 0n;
  }

  /** Packets the nftables raw-priority prefilter drop matched so far (its rule's counter). */
  async nftablesRawDrops(): Promise<bigint> {
    const r = await this.t.node.exec(['nft', 'list', 'chain', 'ip', NFT_TABLE, 'raw-PREROUTING'], { allowFail: true });
    const m = /counter packets (\d+) bytes \d+ drop/.exec(r.stdout);
    return m ? BigInt(m[1]!) : 0n;
  }

  async close(): Promise<void> {
    try {
      if (this.active === 'tortie') await this.tortieOff().catch(() => undefined);
      if (this.active === 'iptables') await this.iptablesOff().catch(() => undefined);
      if (this.active === 'nftables') await this.nftablesOff().catch(() => undefined);
    } finally {
      this.active = undefined;
      await this.dp?.close().catch(() => undefined);
      this.wep?.close();
      this.pf?.close();
      this.up?.close();
      this.pfQuiet?.close();
      this.pfQuiet = undefined;
      this.dp = undefined;
      this.wep = undefined;
      this.pf = undefined;
      this.up = undefined;
      if (existsSync(this.pinRoot)) rmSync(this.pinRoot, { recursive: true, force: true });
    }
  }

  /** Synchronous last-resort cleanup (exit/signal): the pin root; the namespaces go with the topology. */
  closeSync(): void {
    try { this.wep?.close(); this.pf?.close(); this.pfQuiet?.close(); this.up?.close(); } catch { /* best effort */ }
    if (existsSync(this.pinRoot)) rmSync(this.pinRoot, { recursive: true, force: true });
  }
}
