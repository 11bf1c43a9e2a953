/**
 * BpfDataplane: the kernel side of the agent. Turns the compiler's output (CompiledState
 * snapshots and CalcDeltas) into BPF map writes and program attachments on this host.
 *
 *   reconcile(state) ─┐                         ┌─> tortie_cls4_v1 (address classes)
 *   apply(delta) ─────┼─> endpoint ⋈ interface ─┼─> EndpointPolicyWriter: tables, ep flip, epaddr
 *   LinkWatcher ──────┘   (by interfaceName)    ├─> tc ingress/egress on every <prefix>* link
 *                                               ├─> tortie_pf4_v1 + XDP on the uplink (prefilter)
 *   routing (state.routing, delta routes) ──────────> RouteManager (routes.ts): kernel routes, route/
 *                                                     pool/node maps, IPIP + NAT tc on the uplink
 *
 * Contract:
 * - Every interface whose name starts with the workload prefix gets the workload programs, with
 *   or without an endpoint: one without an endpoint entry fails closed (the programs drop).
 *   An endpoint's policy is written before its programs are attached.
 * - Maps are pinned under `pinRoot` and reused by a restarted agent. reconcile() writes the
 *   complete desired state (table ids continue after the largest id found in the kernel, so no
 *   id is ever reused while a packet may hold it) and then sweeps every entry the state does not
 *   want: tables, endpoints, endpoint addresses, class prefixes, prefilter entries.
 * - Deltas are applied in CalcDelta's order (additions before switches before removals).
 * - close() releases this process's handles only: programs stay attached and maps pinned, so
 *   the datapath keeps enforcing while the agent is down.
 */
import { mkdirSync } from 'node:fs';
import type { CalcDelta, CompiledState, LocalEndpoint, Prefilter, RuleInfo, VerdictTable } from '../calc/types';
import type { Logger } from '../util/log';
import { silentLogger } from '../util/log';
import { loadPrefilter, loadWep, type PrefilterDatapath, type WepDatapath } from './bpf/loader';
import { EndpointPolicyWriter } from './bpf/apply';
import { cls4KeyOf, encodeClassPrefix, encodePrefilter, type Entry } from './bpf/encode';
import { epAddrKeyCodec, polKeyCodec, projKeyCodec, readU32, spcKeyCodec } from './bpf/codecs';
import { sweepConntrack } from './bpf/conntrack';
import { decodeEvent, readCounters, type FlowEvent } from './bpf/counters';
import { dropReasonLabel } from './bpf/drop-reasons';
import { RingBuffer, tcAttach, xdpAttach, type BpfMap } from './native';
import { LinkWatcher, type LinkInfo } from './links';
import { RouteManager, type RouteManagerOptions } from './routes';

export interface BpfDataplaneOptions {
  pinRoot: string;
  /** Workload interface prefix (`cali`). */
  interfacePrefix: string;
  /** Host uplink for the XDP prefilter; none = no prefilter attached. */
  uplink?: string;
  /** Operate on another network namespace (tests): its name (for `ip -n`) and path (for setns). */
  netns?: { name: string; path: string };
  ctMaxEntries?: number;
  /** Flow-log sink for denied flows and Log rule hits (default: the logger at info). */
  onFlow?: (flow: FlowLog) => void;
  log?: Logger;
  objectDir?: string;
  /** Link re-list period (the monitor catches changes immediately). */
  linkResyncMs?: number;
  /** Calico networking (routes, IPIP, NAT outgoing); false = policy only. Default on. */
  routing?: false | Pick<RouteManagerOptions, 'routeProtocol' | 'nat'>;
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

export interface DataplaneStatus {
  endpointsProgrammed: number;
  interfaces: number;
  tables: number;
  conntrackEntries: number;
  drops: Record<string, bigint>;
  mapEntries: Record<string, number>;
}

/** Stable 32-bit endpoint id for events (FNV-1a of the endpoint key). */
export function endpointId(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h === 0 ? 1 : h;
}

function hex(b: Buffer): string { return b.toString('hex'); }

export class BpfDataplane {
  private readonly log: Logger;
  private wep!: WepDatapath;
  private pf?: PrefilterDatapath;
  private writer!: EndpointPolicyWriter;
  private links!: LinkWatcher;
  private ring?: RingBuffer;
  private routes?: RouteManager;

  /** Desired state. */
  private readonly endpoints = new Map<string, LocalEndpoint>();   // key → endpoint
  private readonly byInterface = new Map<string, string>();        // interfaceName → key
  private readonly tables = new Map<string, VerdictTable>();       // hash id → table
  private readonly rules = new Map<number, RuleInfo>();
  private readonly classKeys = new Map<string, Entry>();           // hex(key) → entry
  private prefilterKeys = new Map<string, Entry>();
  private readonly endpointKeyById = new Map<number, string>();

  /** Kernel state this process manages. */
  private readonly programmed = new Map<number, string>();         // ifindex → endpoint key
  private readonly attached = new Set<number>();                   // ifindexes with programs
  private uplinkAttached = false;
  private applyChain: Promise<void> = Promise.resolve();

  private constructor(private readonly o: BpfDataplaneOptions) {
    this.log = (o.log ?? silentLogger).child({ component: 'dataplane' });
  }

  static async open(o: BpfDataplaneOptions): Promise<BpfDataplane> {
    const dp = new BpfDataplane(o);
    await dp.init();
    return dp;
  }

  private async init(): Promise<void> {
    mkdirSync(this.o.pinRoot, { recursive: true });
    this.wep = await loadWep({ pinRoot: this.o.pinRoot, ctMaxEntries: this.o.ctMaxEntries, objectDir: this.o.objectDir });
    if (this.o.uplink) this.pf = await loadPrefilter({ pinRoot: this.o.pinRoot, objectDir: this.o.objectDir });
    if (this.o.routing !== false) {
      this.routes = await RouteManager.open({
        ...(this.o.routing ?? {}), pinRoot: this.o.pinRoot, uplink: this.o.uplink, netns: this.o.netns,
        objectDir: this.o.objectDir, log: this.log,
      });
    }
    // Table ids continue after the largest one a previous run left in the kernel.
    let maxId = 0;
    for (const k of this.map('tbl').keys()) maxId = Math.max(maxId, readU32(k));
    this.writer = new EndpointPolicyWriter(this.wep.policyMaps, maxId + 1);
    const events = this.wep.maps.events;
    if (events) {
      this.ring = RingBuffer.open(events, (rec) => this.onEvent(rec), { onError: (e) => this.log.warn({ err: e }, 'ring buffer') });
      this.ring.unref();
    }
    this.links = new LinkWatcher({
      netns: this.o.netns?.name, filter: (n) => n.startsWith(this.o.interfacePrefix) || n === this.o.uplink,
      resyncMs: this.o.linkResyncMs, log: this.log,
    });
    this.links.on('add', (l: LinkInfo) => this.enqueue(() => this.onLinkAdd(l)));
    this.links.on('remove', (l: LinkInfo) => this.enqueue(() => this.onLinkRemove(l)));
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

  private onLinkAdd(l: LinkInfo): void {
    if (l.name === this.o.uplink) { this.attachUplink(); return; }
    const key = this.byInterface.get(l.name);
    if (key) this.programEndpoint(key, l.ifindex);
    this.attachWorkload(l);
  }

  private onLinkRemove(l: LinkInfo): void {
    this.attached.delete(l.ifindex);
    if (l.name === this.o.uplink) { this.uplinkAttached = false; this.routes?.uplinkChanged(); return; }
    if (this.programmed.has(l.ifindex)) {
      this.writer.removeEndpoint(l.ifindex);
      this.programmed.delete(l.ifindex);
    }
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

  private attachUplink(): void {
    if (!this.pf || this.uplinkAttached || !this.o.uplink) return;
    const netns = this.o.netns?.path;
    try {
      xdpAttach({ iface: this.o.uplink, netns, program: this.pf.prog, mode: 'native', replace: true });
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'native XDP failed on the uplink; using generic mode');
      xdpAttach({ iface: this.o.uplink, netns, program: this.pf.prog, mode: 'generic', replace: true });
    }
    this.uplinkAttached = true;
  }

  // ---------------------------------------------------------------- endpoints

  private programEndpoint(key: string, ifindex: number): void {
    const ep = this.endpoints.get(key);
    if (!ep) return;
    const ingress = this.tables.get(ep.tables.ingress);
    const egress = this.tables.get(ep.tables.egress);
    if (!ingress || !egress) {
      throw new Error(`endpoint ${key}: table ${!ingress ? ep.tables.ingress : ep.tables.egress} is not known (calc output out of order)`);
    }
    const prevKey = this.programmed.get(ifindex);
    if (prevKey !== undefined && prevKey !== key) this.writer.removeEndpoint(ifindex);
    const id = endpointId(key);
    this.endpointKeyById.set(id, key);
    this.writer.applyEndpointPolicy({ ifindex, id, ipNetworks: ep.ipNetworks, tables: { ingress, egress } });
    this.programmed.set(ifindex, key);
  }

  private upsertEndpoint(ep: LocalEndpoint): void {
    const old = this.endpoints.get(ep.key);
    if (old?.interfaceName && old.interfaceName !== ep.interfaceName) {
      this.byInterface.delete(old.interfaceName);
      const l = this.links.byName(old.interfaceName);
      if (l && this.programmed.get(l.ifindex) === ep.key) {
        this.writer.removeEndpoint(l.ifindex);
        this.programmed.delete(l.ifindex);
      }
    }
    this.endpoints.set(ep.key, ep);
    if (!ep.interfaceName) return;
    this.byInterface.set(ep.interfaceName, ep.key);
    const l = this.links.byName(ep.interfaceName);
    if (l) {
      this.programEndpoint(ep.key, l.ifindex);
      this.attachWorkload(l);
    }
  }

  private removeEndpoint(key: string): void {
    const ep = this.endpoints.get(key);
    this.endpoints.delete(key);
    if (!ep?.interfaceName) return;
    if (this.byInterface.get(ep.interfaceName) === key) this.byInterface.delete(ep.interfaceName);
    const l = this.links.byName(ep.interfaceName);
    if (l && this.programmed.get(l.ifindex) === key) {
      this.writer.removeEndpoint(l.ifindex); // the programs stay: the interface now fails closed
      this.programmed.delete(l.ifindex);
    }
  }

  // ---------------------------------------------------------------- classes, prefilter

  private setPrefilter(pf: Prefilter): void {
    if (!this.pf) return;
    const want = new Map(encodePrefilter(pf).map((e) => [hex(e.key), e]));
    for (const [h, e] of want) if (this.prefilterKeys.get(h)?.value.equals(e.value) !== true) this.pf.pf4.update(e.key, e.value);
    for (const [h, e] of this.prefilterKeys) if (!want.has(h)) this.pf.pf4.tryDelete(e.key);
    this.prefilterKeys = want;
  }

  // ---------------------------------------------------------------- public API

  reconcile(state: CompiledState): Promise<void> {
    return this.enqueue(async () => {
      this.reconcileNow(state);
      if (this.routes) {
        this.routes.setState(state.nodeName, state.routing);
        await this.routes.apply();
      }
    });
  }

  private reconcileNow(state: CompiledState): void {
    this.rules.clear();
    for (const r of state.rules) this.rules.set(r.id, r);
    this.tables.clear();
    for (const t of state.tables) this.tables.set(t.id, t);

    // Classes first (new tables may already distinguish them), then endpoints, then sweeps.
    const cls = this.map('cls4');
    const want = new Map<string, Entry>();
    for (const p of state.classes.prefixes) {
      const e = encodeClassPrefix(p);
      if (e) want.set(hex(e.key), e);
    }
    for (const e of want.values()) cls.update(e.key, e.value);
    for (const k of cls.keys()) if (!want.has(hex(k))) cls.tryDelete(k);
    this.classKeys.clear();
    for (const [h, e] of want) this.classKeys.set(h, e);

    const wantKeys = new Set(state.endpoints.map((e) => e.key));
    for (const key of [...this.endpoints.keys()]) if (!wantKeys.has(key)) this.removeEndpoint(key);
    for (const ep of state.endpoints) this.upsertEndpoint(ep);
    for (const l of this.links.list()) {
      if (l.name === this.o.uplink) this.attachUplink();
      else this.attachWorkload(l);
    }

    this.sweep();
    this.setPrefilter(state.prefilter);
    this.log.debug({ endpoints: this.programmed.size, tables: this.writer.tables.size, prefixes: want.size }, 'reconciled');
  }

  /** Removes every kernel entry no programmed endpoint or live table accounts for. */
  private sweep(): void {
    const liveIfindex = new Set(this.programmed.keys());
    const ep = this.map('ep');
    for (const k of ep.keys()) if (!liveIfindex.has(readU32(k))) ep.tryDelete(k);
    const epaddr = this.map('epaddr');
    for (const k of epaddr.keys()) if (!liveIfindex.has(epAddrKeyCodec.decode(k).ifindex)) epaddr.tryDelete(k);

    const liveTables = new Set<number>();
    for (const t of this.tables.keys()) {
      const id = this.writer.tables.idOf(t);
      if (id !== undefined) liveTables.add(id);
    }
    const tbl = this.map('tbl');
    for (const k of tbl.keys()) if (!liveTables.has(readU32(k))) tbl.tryDelete(k); // meta first: unusable from here
    const sweepBy = (m: BpfMap, tableOf: (k: Buffer) => number) => {
      for (const k of m.keys()) if (!liveTables.has(tableOf(k))) m.tryDelete(k);
    };
    sweepBy(this.map('pol'), (k) => polKeyCodec.decode(k).table);
    sweepBy(this.map('proj'), (k) => projKeyCodec.decode(k).table);
    sweepBy(this.map('spc'), (k) => spcKeyCodec.decode(k).table);
  }

  apply(delta: CalcDelta): Promise<void> {
    return this.enqueue(async () => {
      this.applyNow(delta);
      if (this.routes?.applyDelta(delta)) await this.routes.apply();
    });
  }

  private applyNow(d: CalcDelta): void {
    // 1. rules, tables, projection additions
    for (const r of d.rulesUpserted) this.rules.set(r.id, r);
    for (const t of d.tablesAdded) this.tables.set(t.id, t);
    for (const p of d.projectionAdded) {
      const t = this.tables.get(p.tableId);
      if (t) t.projection = mergeProjection(t.projection, p.entries);
      this.writer.tables.addProjection(p.tableId, p.entries);
    }
    // 2. address classes
    const cls = this.map('cls4');
    for (const p of d.prefixesUpserted) {
      const e = encodeClassPrefix(p);
      if (!e) continue;
      cls.update(e.key, e.value);
      this.classKeys.set(hex(e.key), e);
    }
    for (const p of d.prefixesRemoved) {
      if (p.family !== 4) continue;
      const k = cls4KeyOf(p.cidr);
      cls.tryDelete(k);
      this.classKeys.delete(hex(k));
    }
    // 3. endpoint switches
    for (const key of d.endpointsRemoved) this.removeEndpoint(key);
    for (const ep of d.endpointsUpserted) this.upsertEndpoint(ep);
    // 4. removals
    for (const p of d.projectionRemoved) {
      const t = this.tables.get(p.tableId);
      if (t) {
        const gone = new Set(p.globalClasses);
        t.projection = t.projection.filter((e) => !gone.has(e.globalClass));
      }
      this.writer.tables.removeProjection(p.tableId, p.globalClasses);
    }
    for (const id of d.tablesRemoved) this.tables.delete(id);
    for (const id of d.rulesRemoved) this.rules.delete(id);
    if (d.prefilterChanged && d.prefilter) this.setPrefilter(d.prefilter);
  }

  // ---------------------------------------------------------------- observability

  private onEvent(rec: Buffer): void {
    let ev: FlowEvent;
    try { ev = decodeEvent(rec); } catch (e) { this.log.warn({ err: e }, 'undecodable datapath event'); return; }
    const rule = this.rules.get(ev.ruleId);
    const flow: FlowLog = {
      kind: ev.kind, direction: ev.direction, endpoint: this.endpointKeyById.get(ev.endpointId),
      interface: this.links.list().find((l) => l.ifindex === ev.ifindex)?.name,
      src: ev.src, dst: ev.dst, protocol: ev.protocol, srcPort: ev.srcPort, dstPort: ev.dstPort, reason: ev.reason,
      rule: rule ? { ...rule } : undefined,
    };
    if (this.o.onFlow) this.o.onFlow(flow);
    else this.log.info({ flow }, ev.kind === 'log' ? 'policy log' : 'flow denied');
  }

  /** Conntrack sweep and a status read for metrics; cheap enough to run every few seconds. */
  housekeeping(): DataplaneStatus {
    const ct = sweepConntrack(this.wep.ct, this.wep.ctTimeouts);
    this.routes?.sweepNat();
    const drops: Record<string, bigint> = {};
    for (const row of readCounters(this.map('cnt'))) {
      if (row.reason === 0) continue;
      const label = dropReasonLabel(row.reason);
      drops[label] = (drops[label] ?? 0n) + row.packets;
    }
    const mapEntries: Record<string, number> = {
      cls4: this.classKeys.size, ep: this.programmed.size, ct4: ct.live, pf4: this.prefilterKeys.size,
      ...this.routes?.mapEntries(),
    };
    return {
      endpointsProgrammed: this.programmed.size, interfaces: this.attached.size, tables: this.writer.tables.size,
      conntrackEntries: ct.live, drops, mapEntries,
    };
  }

  /** Resolves when queued kernel work is done (tests). */
  async settled(): Promise<void> { await this.applyChain; }

  /** Interface → endpoint key currently programmed (tests, status). */
  programmedEndpoints(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [ifindex, key] of this.programmed) {
      const l = this.links.list().find((x) => x.ifindex === ifindex);
      out.set(l?.name ?? String(ifindex), key);
    }
    return out;
  }

  get maps(): WepDatapath['maps'] { return this.wep.maps; }

  /** The networking side (routes, IPIP, NAT), when enabled. */
  get routing(): RouteManager | undefined { return this.routes; }

  async close(): Promise<void> {
    this.links?.stop();
    await this.applyChain;
    this.ring?.close();
    this.pf?.close();
    this.routes?.close();
    this.wep?.close();
  }
}

function mergeProjection(cur: VerdictTable['projection'], add: VerdictTable['projection']): VerdictTable['projection'] {
  const m = new Map(cur.map((e) => [e.globalClass, e]));
  for (const e of add) m.set(e.globalClass, e);
  return [...m.values()].sort((a, b) => a.globalClass - b.globalClass);
}
