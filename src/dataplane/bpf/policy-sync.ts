/**
 * PolicyDataplane: keeps the BPF policy maps equal to the compiler's output for this node.
 *
 *   applySnapshot(state)  — the whole CompiledState (start-up, resync): classes, every local
 *                           endpoint; prefixes and endpoints no longer wanted are removed.
 *   prepareSnapshot(state) — optional, before applySnapshot of the same state (async): writes
 *                           what no endpoint uses yet — the class prefixes and the content of
 *                           the tables not loaded — with the large batches on a libuv worker
 *                           while the JS thread encodes the next table (or does other work:
 *                           the dataplane programs routes meanwhile); applySnapshot then only
 *                           completes each table (its tortie_tbl_v1 entry) and flips endpoints.
 *   applyDelta(delta)     — a CalcDelta, in the order its contract requires:
 *                             1. tables/projection additions (known tables; projection entries
 *                                of live tables written at once),
 *                             2. prefix upserts/removals (tortie_cls4_v1),
 *                             3. endpoint switches (applyEndpointPolicy: complete new tables,
 *                                one flip, old tables released) and removals,
 *                             4. projection/table removals.
 *
 * Endpoints are bound to interfaces through `resolveIfindex(endpoint)` (the agent's link
 * watcher); an endpoint whose interface is not there yet is kept pending and applied by
 * `retryPending()` — until then its cali* interface has no tortie_ep_v1 entry and fails closed.
 * Endpoint ids reported in events are assigned here, stable per endpoint key for the process.
 * Memory: tables are kept packed (PackedTable) and class prefixes as their CIDR strings only
 * (the map key is recomputed to delete), since at 10,000 endpoints these mirrors were a sizeable
 * part of the agent's heap.
 */
import type { CalcDelta, CompiledState, LocalEndpoint } from '../../calc/types';
import type { HostEndpointTables, LocalDispatch, MapOps, PolicyMaps } from './apply';
import { EndpointPolicyWriter, HostEndpointWriter } from './apply';
import { cidr4ForMap, cls4KeyOf, cls6KeyOf, encodeClassPrefix, type Entry, type PackedEntries } from './encode';
import { PackedTable } from './packed-table';
import { WORKLOAD_HOST_MAC, formatCidr, maskCidr, parseCidr, u32ToIpv4 } from '../../primitives';

/** The canonical text of an IPv6 prefix (as the compiler writes it). */
function prefixKey6(cidr: string): string {
  return formatCidr(maskCidr(parseCidr(cidr)));
}

export interface PolicyDataplaneMaps extends PolicyMaps {
  cls4: MapOps;
  /** tortie_cls6_v1: IPv6 class prefixes. */
  cls6: MapOps;
  /** tortie_hep_v1; without it host endpoints stay pending (never written). */
  hep?: MapOps;
  /** tortie_hlt4_v1: host endpoint stages that match local-side nets. */
  hlt4?: MapOps;
  /** tortie_hlt6_v1: the same for IPv6 local addresses. */
  hlt6?: MapOps;
}

export class PolicyDataplane {
  readonly writer: EndpointPolicyWriter;
  private readonly tables = new Map<string, PackedTable>();
  /** Class prefixes in tortie_cls4_v1 and tortie_cls6_v1, by canonical CIDR (IPv6 ones contain ':'). */
  private readonly prefixes = new Set<string>();
  private readonly bound = new Map<string, number>(); // endpoint key → ifindex
  private readonly pending = new Map<string, LocalEndpoint>();
  private readonly ids = new Map<string, number>();
  private readonly keyById = new Map<number, string>();
  private readonly recovered = new Set<number>();
  private nextEpId = 1;

  readonly hosts?: HostEndpointWriter;
  private readonly recoveredHosts = new Set<number>();

  /**
   * `resolveIfindex`: a workload endpoint's cali* ifindex; for a host endpoint (`host` set) the
   * tortie_hep_v1 key: its interface's ifindex, 0 for `*`.
   */
  constructor(private readonly maps: PolicyDataplaneMaps, private readonly resolveIfindex: (ep: LocalEndpoint) => number | undefined) {
    this.writer = new EndpointPolicyWriter(maps);
    if (maps.hep) this.hosts = new HostEndpointWriter(maps.hep, this.writer.tables, maps.hlt4, maps.hlt6);
  }

  get pendingEndpoints(): string[] { return [...this.pending.keys()]; }
  ifindexOf(key: string): number | undefined { return this.bound.get(key); }
  /** Endpoints currently bound to an interface. */
  get boundCount(): number { return this.bound.size; }
  /** The endpoint key behind an id reported in datapath events. */
  endpointKeyOf(id: number): string | undefined { return this.keyById.get(id); }
  /** (Re)binds one endpoint after its interface appeared or was recreated; false = pending. */
  bind(e: LocalEndpoint): boolean { return this.upsertEndpoint(e); }

  /**
   * After an agent restart, before the first applySnapshot: adopts the endpoints, tables and
   * class prefixes already in the maps, so the snapshot only writes differences (tables the
   * compiler produces again keep their ids; endpoints whose tables did not change are not
   * switched at all) and removes what is no longer wanted.
   */
  recover(): { endpoints: number; tables: number; prefixes: number } {
    const eps = this.writer.recover();
    for (const i of eps) this.recovered.add(i);
    for (const k of this.hosts?.recover() ?? []) this.recoveredHosts.add(k);
    let prefixes = 0;
    for (const e of this.maps.cls4.entries?.() ?? []) {
      const len = e.key.readUInt32LE(0);
      const a = e.key.readUInt32BE(4);
      const cidr = `${u32ToIpv4(a)}/${len}`;
      // A key this agent would not write (host bits set, length > 32) cannot be wanted: drop it.
      let canonical = false;
      try { canonical = cls4KeyOf(cidr).equals(e.key); } catch { /* not a CIDR */ }
      if (!canonical) { this.maps.cls4.delete(e.key); continue; }
      this.prefixes.add(cidr);
      prefixes++;
    }
    for (const e of this.maps.cls6.entries?.() ?? []) {
      const len = e.key.readUInt32LE(0);
      const parts: string[] = [];
      for (let i = 0; i < 8; i++) parts.push(e.key.readUInt16BE(4 + 2 * i).toString(16));
      const cidr = `${parts.join(':')}/${len}`;
      let canonical = '';
      try { canonical = prefixKey6(cidr); } catch { /* not a CIDR */ }
      if (canonical === '' || !cls6KeyOf(canonical).equals(e.key)) { this.maps.cls6.delete(e.key); continue; }
      this.prefixes.add(canonical);
      prefixes++;
    }
    return { endpoints: eps.length, tables: this.writer.tables.orphanCount, prefixes };
  }

  /** The snapshot prepareSnapshot() wrote the class prefixes of, and those prefixes (applySnapshot of it skips them). */
  private preparedFor?: { state: CompiledState; want: Set<string> };

  /**
   * Writes what applySnapshot(s) would write first and nothing uses yet, with the large batches
   * off the JS thread: the class prefixes (as applySnapshot would: before any endpoint flips) and
   * the content of the tables that endpoints which can be bound now will use (TableRegistry.prepare).
   * Call applySnapshot(s) with the same state next, in the same serialised step; on a failure
   * nothing it wrote is used and applySnapshot must not be called for it (the reconcile is retried).
   */
  async prepareSnapshot(s: CompiledState): Promise<void> {
    this.preparedFor = undefined;
    for (const t of s.tables) this.tables.set(t.id, PackedTable.pack(t));
    const want = new Set<string>();
    const cls = this.writeClassPrefixes(s, want);
    // In the order applySnapshot acquires them (the same table ids as without preparing); host
    // endpoints' tables and those of endpoints without their interface yet are left to it.
    const used = new Set<string>();
    for (const e of s.endpoints) {
      if (e.host !== undefined || this.resolveIfindex(e) === undefined) continue;
      used.add(e.tables.ingress);
      used.add(e.tables.egress);
    }
    const tables = [...used].map((id) => this.tables.get(id)).filter((t) => t !== undefined);
    const written = await Promise.allSettled([cls, this.writer.tables.prepare(tables)]);
    for (const r of written) if (r.status === 'rejected') { this.writer.tables.dropPrepared(); throw r.reason; }
    this.preparedFor = { state: s, want };
  }

  /** tortie_cls4_v1 / tortie_cls6_v1 entries of every prefix of `s` (IPv4 off the JS thread when possible). */
  private async writeClassPrefixes(s: CompiledState, want: Set<string>): Promise<void> {
    const e = this.encodeClassPrefixes(s, want, this.maps.cls4.updatePackedAsync !== undefined);
    for (const x of e.entries6) this.maps.cls6.update(x.key, x.value);
    if (e.packed4) {
      if (e.packed4.count > 0) await this.maps.cls4.updatePackedAsync!(e.packed4);
    } else this.writeCls4(e.entries);
  }

  /**
   * The class prefixes of `s` as map entries, each recorded in `want` and this.prefixes. With
   * `packed`, the IPv4 ones go straight into one buffer (no Buffer per entry: ~100,000 at Felix's
   * scale), the bytes encodeClassPrefix gives: prefix length (u32 LE), network (big-endian), class
   * id (u32 LE).
   */
  private encodeClassPrefixes(s: CompiledState, want: Set<string>, packed: boolean): { entries: Entry[]; entries6: Entry[]; packed4?: PackedEntries } {
    const entries: Entry[] = [];
    const entries6: Entry[] = [];
    let n4 = 0;
    if (packed) for (const p of s.classes.prefixes) if (p.family !== 6) n4++;
    const keys = Buffer.allocUnsafe(n4 * 8);
    const values = Buffer.allocUnsafe(n4 * 4);
    let i = 0;
    for (const p of s.classes.prefixes) {
      if (p.family !== 6 && packed) {
        const c = cidr4ForMap(p.cidr);
        keys.writeUInt32LE(c.len, i * 8);
        keys.writeUInt32BE(c.addr, i * 8 + 4);
        values.writeUInt32LE(p.classId, i * 4);
        i++;
      } else {
        const e = encodeClassPrefix(p);
        if (!e) continue;
        (p.family === 6 ? entries6 : entries).push(e);
      }
      want.add(p.cidr);
      this.prefixes.add(p.cidr);
    }
    const packed4 = packed ? { count: i, keySize: 8, valueSize: 4, keys: keys.subarray(0, i * 8), values: values.subarray(0, i * 4) } : undefined;
    return { entries, entries6, ...(packed4 ? { packed4 } : {}) };
  }

  private writeCls4(entries: Entry[]): void {
    if (this.maps.cls4.updateMany) this.maps.cls4.updateMany(entries);
    else for (const e of entries) this.maps.cls4.update(e.key, e.value);
  }

  applySnapshot(s: CompiledState): void {
    try {
      this.applySnapshotNow(s);
    } finally {
      this.preparedFor = undefined;
      // Tables prepared for endpoints that did not bind after all: their content goes.
      this.writer.tables.dropPrepared();
    }
  }

  private applySnapshotNow(s: CompiledState): void {
    let want = new Set<string>();
    if (this.preparedFor?.state === s) {
      want = this.preparedFor.want;
    } else {
      for (const t of s.tables) this.tables.set(t.id, PackedTable.pack(t));
      const e = this.encodeClassPrefixes(s, want, false);
      this.writeCls4(e.entries);
      for (const x of e.entries6) this.maps.cls6.update(x.key, x.value);
    }
    for (const cidr of this.prefixes) if (!want.has(cidr)) { this.deletePrefix(cidr); this.prefixes.delete(cidr); }
    const eps = new Set(s.endpoints.map((e) => e.key));
    for (const e of s.endpoints) this.upsertEndpoint(e);
    for (const k of [...this.bound.keys(), ...this.pending.keys()]) if (!eps.has(k)) this.removeEndpoint(k);
    const live = new Set(s.tables.map((t) => t.id));
    for (const id of this.tables.keys()) if (!live.has(id)) this.tables.delete(id);
    // Endpoints a previous agent programmed that this snapshot does not bind any more.
    const boundNow = new Set([...this.bound].filter(([k]) => !this.hostKeys.has(k)).map(([, i]) => i));
    for (const i of this.recovered) if (!boundNow.has(i)) this.writer.removeEndpoint(i);
    this.recovered.clear();
    const hostsNow = new Set([...this.bound].filter(([k]) => this.hostKeys.has(k)).map(([, i]) => i));
    for (const k of this.recoveredHosts) if (!hostsNow.has(k)) this.hosts?.remove(k);
    this.recoveredHosts.clear();
    this.writer.tables.sweepOrphans();
  }

  private deletePrefix(cidr: string): void {
    if (cidr.includes(':')) this.maps.cls6.delete(cls6KeyOf(cidr));
    else this.maps.cls4.delete(cls4KeyOf(cidr));
  }

  applyDelta(d: CalcDelta): void {
    for (const t of d.tablesAdded) this.tables.set(t.id, PackedTable.pack(t));
    for (const pa of d.projectionAdded) {
      const t = this.tables.get(pa.tableId);
      if (t) this.tables.set(t.id, t.withProjection(pa.entries));
      this.writer.tables.addProjection(pa.tableId, pa.entries);
    }
    for (const p of d.prefixesUpserted) {
      const e = encodeClassPrefix(p);
      if (!e) continue;
      (p.family === 6 ? this.maps.cls6 : this.maps.cls4).update(e.key, e.value);
      this.prefixes.add(p.cidr);
    }
    for (const p of d.prefixesRemoved) {
      if (!this.prefixes.has(p.cidr)) continue;
      this.deletePrefix(p.cidr);
      this.prefixes.delete(p.cidr);
    }
    for (const e of d.endpointsUpserted) this.upsertEndpoint(e);
    for (const k of d.endpointsRemoved) this.removeEndpoint(k);
    for (const pr of d.projectionRemoved) {
      const t = this.tables.get(pr.tableId);
      if (t) this.tables.set(t.id, t.withProjection([], pr.globalClasses));
      this.writer.tables.removeProjection(pr.tableId, pr.globalClasses);
    }
    for (const id of d.tablesRemoved) this.tables.delete(id);
  }

  /** Applies endpoints whose interfaces have appeared since. Returns how many were applied. */
  retryPending(): number {
    let n = 0;
    for (const e of [...this.pending.values()]) if (this.upsertEndpoint(e)) n++;
    return n;
  }

  /** Forgets the binding of an interface that disappeared (the kernel removed its tc programs). */
  interfaceGone(key: string): void {
    const ifindex = this.bound.get(key);
    if (ifindex === undefined) return;
    if (this.hostKeys.has(key)) this.hosts?.remove(ifindex);
    else this.writer.removeEndpoint(ifindex);
    this.bound.delete(key);
  }

  /** Keys of the bound or pending host endpoints. */
  private readonly hostKeys = new Set<string>();

  /** Host endpoints waiting for their interface (or for a tortie_hep_v1 map). */
  get pendingHostEndpoints(): LocalEndpoint[] { return [...this.pending.values()].filter((e) => e.host !== undefined); }

  private epId(key: string): number {
    let id = this.ids.get(key);
    if (id === undefined) { id = this.nextEpId++; this.ids.set(key, id); this.keyById.set(id, key); }
    return id;
  }

  private upsertHostEndpoint(e: LocalEndpoint): boolean {
    this.hostKeys.add(e.key);
    const key = this.hosts ? this.resolveIfindex(e) : undefined;
    const tables: HostEndpointTables = { in: this.tables.get(e.tables.ingress), out: this.tables.get(e.tables.egress) };
    let complete = tables.in !== undefined && tables.out !== undefined;
    for (const [slot, id] of Object.entries(e.host!.tables)) {
      const t = this.tables.get(id);
      if (t === undefined) complete = false;
      tables[slot as keyof HostEndpointTables] = t;
    }
    for (const [slot, regions] of Object.entries(e.host!.local ?? {})) {
      const dispatch: LocalDispatch = [];
      for (const { cidr, table } of regions ?? []) {
        const t = this.tables.get(table);
        if (t === undefined) complete = false;
        else dispatch.push({ cidr, table: t });
      }
      tables[(slot === 'ingress' ? 'in' : slot === 'egress' ? 'out' : slot) as keyof HostEndpointTables] = dispatch;
    }
    // Two host endpoints on one interface: the one sorting first keeps it (deterministic).
    const owner = key === undefined ? undefined : [...this.bound].find(([k, i]) => i === key && k !== e.key && this.hostKeys.has(k))?.[0];
    if (key === undefined || !complete || (owner !== undefined && owner < e.key)) {
      const prev = this.bound.get(e.key);
      if (prev !== undefined) { this.hosts?.remove(prev); this.bound.delete(e.key); }
      this.pending.set(e.key, e);
      return false;
    }
    if (owner !== undefined) { this.bound.delete(owner); this.pending.set(owner, this.lastHost.get(owner)!); }
    const prev = this.bound.get(e.key);
    if (prev !== undefined && prev !== key) this.hosts!.remove(prev);
    this.hosts!.apply(key, this.epId(e.key), tables);
    this.bound.set(e.key, key);
    this.lastHost.set(e.key, e);
    this.pending.delete(e.key);
    return true;
  }

  private readonly lastHost = new Map<string, LocalEndpoint>();

  private upsertEndpoint(e: LocalEndpoint): boolean {
    if (e.host !== undefined) return this.upsertHostEndpoint(e);
    const ifindex = this.resolveIfindex(e);
    const ingress = this.tables.get(e.tables.ingress);
    const egress = this.tables.get(e.tables.egress);
    if (ifindex === undefined || !ingress || !egress) { this.pending.set(e.key, e); return false; }
    const prev = this.bound.get(e.key);
    if (prev !== undefined && prev !== ifindex) this.writer.removeEndpoint(prev);
    let id = this.ids.get(e.key);
    if (id === undefined) { id = this.nextEpId++; this.ids.set(e.key, id); this.keyById.set(id, e.key); }
    // The cali*'s MAC is the one tortie's CNI plugin gives every host side (it refuses others).
    this.writer.applyEndpointPolicy({ ifindex, id, ipNetworks: e.ipNetworks, tables: { ingress, egress }, mac: e.mac, hostMac: WORKLOAD_HOST_MAC });
    this.bound.set(e.key, ifindex);
    this.pending.delete(e.key);
    return true;
  }

  private removeEndpoint(key: string): void {
    this.pending.delete(key);
    const ifindex = this.bound.get(key);
    if (this.hostKeys.has(key)) {
      if (ifindex !== undefined) this.hosts?.remove(ifindex);
      this.hostKeys.delete(key);
      this.lastHost.delete(key);
    } else if (ifindex !== undefined) this.writer.removeEndpoint(ifindex);
    this.bound.delete(key);
  }
}
