/**
 * Writes encoded policy into the maps with the atomicity contract of the datapath:
 *
 *   applyEndpointPolicy(ifindex, endpoint, {ingress, egress} tables)
 *     1. every table the endpoint will use is complete in the maps (projection, source-port
 *        classes and cells first, the tortie_tbl_v1 entry last) — TableRegistry.acquire;
 *     2. new anti-spoofing addresses are added;
 *     3. ONE update of the endpoint's tortie_ep_v1 entry switches both directions to the new
 *        table ids (the "flip"; the map is BPF_F_NO_PREALLOC so readers see old or new whole);
 *     4. addresses no longer wanted are removed, and the old tables are released: a table no
 *        endpoint references loses its tortie_tbl_v1 entry first, then its cells.
 *   With `epdst` (host routing) and the workload's MAC known, each host address (/32, /128) of
 *   the endpoint also names the endpoint in tortie_epdst_v1 (its cali*, its id, both MACs),
 *   written after the flip and removed (addresses dropped) before it; the datapath follows such
 *   an entry only while tortie_ep_v1 has the same id on that interface. Two endpoints claiming
 *   one address (an address moving between workloads) : the latest claim is written; when it is
 *   withdrawn the entry goes back to the other claimant, and is removed with the last one.
 *   A packet therefore sees the whole old table or the whole new one, never a mix or nothing;
 *   flows already in conntrack keep their verdict until they expire (Calico's behaviour).
 *
 * Table ids are allocated from a counter that only grows, so an id freed in step 4 is never
 * handed to a different table while a packet might still hold the old endpoint value.
 * Tables are shared by content (the compiler's hash id), with reference counts.
 *
 * `MapOps` is the narrow map interface this module needs; src/dataplane/bpf/maps.ts adapts the
 * native addon's maps to it (and tests may use the same adapter over real maps).
 */
import type { ProjectionEntry } from '../../calc/types';
import {
  AF_INET, AF_INET6, EPADDR_FIXED_BITS, EP_F_DISABLED, epDstCodec, epDstKeyCodec, HEP_SLOT, HEP_SLOTS, HLT_FIXED_BITS, endpointCodec, hlt4KeyCodec, hlt6KeyCodec, epAddrKeyCodec, hostepCodec, projKeyCodec, tableCodec, u32Key, u32Value,
  type Endpoint,
} from './codecs';
import { encodeProjection, encodeTablePacked, entriesOf, keysOf, prefix4, prefix6, type Entry, type PackedEntries, type PackedTableEntries } from './encode';
import { PackedTable, type AnyTable } from './packed-table';
import { TortieError } from '../../util/errors';
import type { EpCounterSlots } from './counters';

export interface MapOps {
  lookup(key: Buffer): Buffer | undefined;
  update(key: Buffer, value: Buffer): void;
  /** Deletes; a missing key is not an error. */
  delete(key: Buffer): void;
  /** Optional batch forms (BPF_MAP_*_BATCH); same semantics as a loop of the above. */
  updateMany?(entries: readonly Entry[]): void;
  deleteMany?(keys: readonly Buffer[]): void;
  /** Optional packed forms of the batches (entries side by side, no per-entry Buffers). */
  updatePacked?(entries: PackedEntries): void;
  /**
   * Optional: updatePacked with the kernel's work off the JS thread (a libuv worker); resolves
   * when every entry is written, rejects as updatePacked throws. `entries` must not change meanwhile.
   */
  updatePackedAsync?(entries: PackedEntries): Promise<void>;
  deletePacked?(entries: PackedEntries): void;
  /** Every entry (used once, when recovering state after an agent restart). */
  entries?(): Entry[];
}

function updateAll(m: MapOps, entries: readonly Entry[]): void {
  if (entries.length === 0) return;
  if (m.updateMany) m.updateMany(entries);
  else for (const e of entries) m.update(e.key, e.value);
}

function updatePackedAll(m: MapOps, p: PackedEntries): void {
  if (p.count === 0) return;
  if (m.updatePacked) m.updatePacked(p);
  else updateAll(m, entriesOf(p));
}

/** updatePackedAll, off the JS thread where the map offers it. */
async function updatePackedAllAsync(m: MapOps, p: PackedEntries): Promise<void> {
  if (p.count === 0) return;
  if (m.updatePackedAsync) await m.updatePackedAsync(p);
  else updatePackedAll(m, p);
}

/** Deletes the keys of `p` (its values are not looked at). */
function deletePackedAll(m: MapOps, p: PackedEntries): void {
  if (p.count === 0) return;
  if (m.deletePacked) m.deletePacked(p);
  else deleteAll(m, keysOf(p));
}

function deleteAll(m: MapOps, keys: readonly Buffer[]): void {
  if (keys.length === 0) return;
  if (m.deleteMany) m.deleteMany(keys);
  else for (const k of keys) m.delete(k);
}

export interface PolicyMaps {
  ep: MapOps;
  epaddr: MapOps;
  /** tortie_epdst_v1 (the wep object's); absent: no address -> endpoint entries are written. */
  epdst?: MapOps;
  /** Endpoint counter slots (tortie_epcnt_v1); absent: endpoints get slot 0 (counted in tortie_cnt_v1). */
  counterSlots?: EpCounterSlots;
  tbl: MapOps;
  proj: MapOps;
  spc: MapOps;
  pol: MapOps;
}

export class ApplyError extends TortieError {
  constructor(code: string, message: string) { super(code, message); }
}

/**
 * A loaded table. Neither its encoded entries nor its object form are kept (at 100 endpoints ×
 * thousands of projection entries they were the agent's largest allocations): the table is kept
 * packed, and encodeTablePacked is deterministic, so erase() re-encodes it as it was written to find
 * its keys.
 */
interface TableRef { id: number; hash: string; refs: number; table: PackedTable; extraProj: Set<number> }

/** A table found in the maps at start-up (written by a previous agent), not yet adopted. */
interface Orphan { id: number; hash: string; refs: number }

/**
 * A table whose content (projection, source-port classes, cells) prepare() wrote, without its
 * tortie_tbl_v1 entry: nothing can use its id yet (the datapath fails closed on an id without that
 * entry, and no endpoint names it). acquire() completes it with that entry alone.
 */
interface Prepared { id: number; hash: string; table: PackedTable; meta: Entry }

/** Tables prepare() encodes ahead of the writes in flight (bounds the encoded bytes held at once). */
const PREPARE_WINDOW = 8;

export class TableRegistry {
  private readonly byHash = new Map<string, TableRef>();
  private readonly byId = new Map<number, TableRef>();
  private readonly orphansById = new Map<number, Orphan>();
  private readonly orphansByHash = new Map<string, Orphan>();
  private readonly prepared = new Map<string, Prepared>();
  /** Recovered tables whose projection prepare() rewrote already (acquire() adopts them without). */
  private readonly orphanProjWritten = new Set<number>();
  private nextId: number;

  constructor(private readonly maps: PolicyMaps, firstId = 1) { this.nextId = firstId; }

  /** Numeric id of a loaded table, by the compiler's hash id. */
  idOf(hash: string): number | undefined { return this.byHash.get(hash)?.id; }
  refsOf(hash: string): number { return this.byHash.get(hash)?.refs ?? 0; }
  get size(): number { return this.byHash.size; }

  /**
   * After an agent restart: tables already in the maps (complete ones have their tortie_tbl_v1
   * entry, which carries the compiler's hash) become orphans that acquire() adopts under their
   * old id when the compiler produces the same table again, so live endpoints keep their table
   * without a rewrite. New ids start above every id found, so none is ever reused.
   */
  recover(): void {
    for (const e of this.maps.tbl.entries?.() ?? []) {
      const id = e.key.readUInt32LE(0);
      const o: Orphan = { id, hash: tableCodec.decode(e.value).hash.toString('hex'), refs: 0 };
      this.orphansById.set(id, o);
      if (!this.orphansByHash.has(o.hash)) this.orphansByHash.set(o.hash, o);
      this.nextId = Math.max(this.nextId, id + 1);
    }
  }

  /** A recovered endpoint references `id`. */
  holdRecovered(id: number): void {
    const o = this.orphansById.get(id);
    if (o) o.refs++;
    this.nextId = Math.max(this.nextId, id + 1);
  }

  get orphanCount(): number { return this.orphansById.size; }

  /** Deletes recovered tables nothing references (call after the first full apply). */
  sweepOrphans(): number {
    let n = 0;
    for (const o of [...this.orphansById.values()]) if (o.refs <= 0) { this.eraseOrphan(o); n++; }
    return n;
  }

  /** Tables prepare() wrote and no acquire() has completed yet. */
  get preparedCount(): number { return this.prepared.size; }

  /**
   * Writes the content of every table in `tables` that is not loaded yet — projection, source-port
   * classes and cells, not its tortie_tbl_v1 entry — with the large batches off the JS thread
   * (MapOps.updatePackedAsync) while the next tables are encoded, one batch in flight per map, so
   * that a later acquire() of such a table writes its tortie_tbl_v1 entry only. Until then its
   * id is in no endpoint and has no tortie_tbl_v1 entry: nothing reads the content, and the
   * order of the contract (content, then the table's entry, then the flip) holds.
   * A table a previous agent left (recovered, not adopted yet) is not rewritten: only the
   * rewrite of its projection that acquire() does when it adopts it is done here, off the JS
   * thread, and acquire() then skips it.
   * On a failure, every table prepared here is erased again (after the writes in flight
   * settled) and the error is rethrown. Tables prepared and never acquired are erased by
   * dropPrepared().
   */
  async prepare(tables: Iterable<AnyTable>): Promise<void> {
    let proj: Promise<void> = Promise.resolve();
    let pol: Promise<void> = Promise.resolve();
    const inFlight: Promise<unknown>[] = [];
    const mine: Prepared[] = [];
    const orphans: number[] = [];
    let failed = false;
    try {
      for (const t of tables) {
        const orphan = this.orphansByHash.get(t.id);
        if (orphan !== undefined && !this.orphanProjWritten.has(orphan.id)) {
          // A table a previous agent wrote: acquire() adopts it under its id after rewriting its
          // projection (idempotent, picks up additions); that rewrite goes off the JS thread too.
          const enc = encodeTablePacked(t instanceof PackedTable ? t : PackedTable.pack(t), orphan.id);
          this.orphanProjWritten.add(orphan.id);
          orphans.push(orphan.id);
          proj = proj.then(() => updatePackedAllAsync(this.maps.proj, enc.proj));
          proj.catch(() => undefined);
          inFlight.push(proj);
          while (inFlight.length > PREPARE_WINDOW) await inFlight.shift();
          continue;
        }
        if (this.byHash.has(t.id) || orphan !== undefined || this.prepared.has(t.id)) continue;
        const packed = t instanceof PackedTable ? t : PackedTable.pack(t);
        const id = this.allocId();
        const enc = encodeTablePacked(packed, id);
        const p: Prepared = { id, hash: t.id, table: packed, meta: enc.meta };
        this.prepared.set(p.hash, p);
        mine.push(p);
        updateAll(this.maps.spc, enc.spc);
        // Each map's batches one after the other (an LPM trie takes one lock per update: two
        // writers would only spin); a failed one skips the rest of its chain.
        proj = proj.then(() => updatePackedAllAsync(this.maps.proj, enc.proj));
        pol = pol.then(() => updatePackedAllAsync(this.maps.pol, enc.pol));
        const both = Promise.all([proj, pol]);
        // Awaited below (in order, or settled on a failure): a rejection is never left unhandled.
        for (const x of [proj, pol, both]) x.catch(() => undefined);
        inFlight.push(both);
        while (inFlight.length > PREPARE_WINDOW) await inFlight.shift();
      }
      await Promise.all(inFlight);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      if (failed) {
        await Promise.allSettled([proj, pol, ...inFlight]);
        for (const p of mine) this.dropOne(p);
        for (const id of orphans) this.orphanProjWritten.delete(id); // acquire() rewrites them itself
      }
    }
  }

  /** Erases the tables prepare() wrote that no acquire() completed (call when the snapshot is written). */
  dropPrepared(): number {
    const n = this.prepared.size;
    for (const p of [...this.prepared.values()]) this.dropOne(p);
    this.orphanProjWritten.clear();
    return n;
  }

  private dropOne(p: Prepared): void {
    if (this.prepared.get(p.hash) !== p) return;
    this.prepared.delete(p.hash);
    this.erase({ id: p.id, hash: p.hash, refs: 0, table: p.table, extraProj: new Set() });
  }

  /**
   * Ensures the table is fully written, adds a reference and returns its numeric id. A table
   * already loaded is only counted (its content is not looked at, so a PackedTable is not unpacked).
   */
  acquire(t: AnyTable): number {
    const have = this.byHash.get(t.id);
    if (have) { have.refs++; return have.id; }
    const prepared = this.prepared.get(t.id);
    if (prepared) {
      // Its content is in the maps (prepare()): the tortie_tbl_v1 entry makes it usable.
      this.maps.tbl.update(prepared.meta.key, prepared.meta.value);
      this.prepared.delete(t.id);
      const ref: TableRef = { id: prepared.id, hash: t.id, refs: 1, table: prepared.table, extraProj: new Set() };
      this.byHash.set(t.id, ref);
      this.byId.set(ref.id, ref);
      return ref.id;
    }
    const packed = t instanceof PackedTable ? t : PackedTable.pack(t);
    const orphan = this.orphansByHash.get(t.id);
    if (orphan) {
      // Complete in the maps already (its meta entry exists). Projection entries are rewritten
      // (idempotent, same keys and values) to pick up additions made while no agent ran.
      if (!this.orphanProjWritten.delete(orphan.id)) updatePackedAll(this.maps.proj, encodeTablePacked(packed, orphan.id).proj);
      const ref: TableRef = { id: orphan.id, hash: t.id, refs: orphan.refs + 1, table: packed, extraProj: new Set() };
      this.orphansById.delete(orphan.id);
      this.orphansByHash.delete(orphan.hash);
      this.byHash.set(t.id, ref);
      this.byId.set(ref.id, ref);
      return ref.id;
    }
    const id = this.allocId();
    const enc = encodeTablePacked(packed, id);
    const ref: TableRef = { id, hash: t.id, refs: 1, table: packed, extraProj: new Set() };
    try {
      updatePackedAll(this.maps.proj, enc.proj);
      updateAll(this.maps.spc, enc.spc);
      updatePackedAll(this.maps.pol, enc.pol);
      this.maps.tbl.update(enc.meta.key, enc.meta.value); // last: now the table is usable
    } catch (err) {
      this.erase(ref, enc);
      throw err;
    }
    this.byHash.set(t.id, ref);
    this.byId.set(id, ref);
    return id;
  }

  /** Drops a reference; the last one deletes the table (meta first, then its entries). */
  release(id: number): void {
    const orphan = this.orphansById.get(id);
    if (orphan) { if (--orphan.refs <= 0) this.eraseOrphan(orphan); return; }
    const ref = this.byId.get(id);
    if (!ref) return;
    if (--ref.refs > 0) return;
    this.byId.delete(id);
    this.byHash.delete(ref.hash);
    this.erase(ref);
  }

  /** Projection entries added to a live table (CalcDelta.projectionAdded): new global classes. */
  addProjection(hash: string, entries: ProjectionEntry[]): void {
    const ref = this.byHash.get(hash);
    if (!ref) return;
    for (const p of entries) {
      const e = encodeProjection(ref.id, p.globalClass, p.localClass);
      this.maps.proj.update(e.key, e.value);
      ref.extraProj.add(p.globalClass);
    }
  }

  removeProjection(hash: string, globalClasses: number[]): void {
    const ref = this.byHash.get(hash);
    if (!ref) return;
    for (const g of globalClasses) {
      this.maps.proj.delete(projKeyCodec.encode({ table: ref.id, gclass: g }));
      ref.extraProj.delete(g);
    }
  }

  private erase(ref: TableRef, written: PackedTableEntries = encodeTablePacked(ref.table, ref.id)): void {
    this.maps.tbl.delete(written.meta.key); // first: from now on the id fails closed
    deletePackedAll(this.maps.pol, written.pol);
    deleteAll(this.maps.spc, written.spc.map((e) => e.key));
    deletePackedAll(this.maps.proj, written.proj);
    deleteAll(this.maps.proj, [...ref.extraProj].map((g) => projKeyCodec.encode({ table: ref.id, gclass: g })));
  }

  /** Deletes a table known only by id: its meta first, then every entry keyed by that id. */
  private eraseOrphan(o: Orphan): void {
    this.orphansById.delete(o.id);
    if (this.orphansByHash.get(o.hash) === o) this.orphansByHash.delete(o.hash);
    this.maps.tbl.delete(u32Key(o.id));
    const mine = (m: MapOps, off: number): Buffer[] => (m.entries?.() ?? []).map((e) => e.key).filter((k) => k.readUInt32LE(off) === o.id);
    deleteAll(this.maps.pol, mine(this.maps.pol, 4));
    deleteAll(this.maps.spc, mine(this.maps.spc, 4));
    deleteAll(this.maps.proj, mine(this.maps.proj, 0));
  }

  private allocId(): number {
    if (this.nextId > 0xffffffff) throw new ApplyError('ERR_DATAPATH_TABLE_IDS', 'table ids exhausted (2^32 allocations); restart the agent');
    return this.nextId++;
  }
}

export interface EndpointPolicy {
  /** Host-side cali* ifindex (the tortie_ep_v1 key). */
  ifindex: number;
  /** Agent-assigned endpoint id reported in events. */
  id: number;
  /** Addresses the workload may send from (canonical CIDRs, usually /32). */
  ipNetworks: string[];
  tables: { ingress: AnyTable; egress: AnyTable };
  disabled?: boolean;
  /** The workload's MAC and its cali*'s: with both, host routing finds it by address (tortie_epdst_v1). */
  mac?: string;
  hostMac?: string;
}

interface EpState { tableIds: number[]; addrKeys: Map<string, Buffer>; version: number; dstKeys: Map<string, Buffer>; slot: number }

/** tortie_epdst_v1 keys of the host addresses (/32, /128) among `ipNetworks`. */
function epDstKeys(ipNetworks: readonly string[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const c of ipNetworks) {
    const v6 = c.includes(':');
    const { addr, len } = v6 ? prefix6(c) : prefix4(c);
    if (len !== (v6 ? 128 : 32)) continue;
    const k = epDstKeyCodec.encode({ family: v6 ? AF_INET6 : AF_INET, addr });
    out.set(k.toString('hex'), k);
  }
  return out;
}

function epAddrKey(ifindex: number, cidr: string): Buffer | null {
  if (cidr.includes(':')) {
    const { addr, len } = prefix6(cidr);
    return epAddrKeyCodec.encode({ prefixlen: EPADDR_FIXED_BITS + len, ifindex, family: AF_INET6, addr });
  }
  const { addr, len } = prefix4(cidr);
  return epAddrKeyCodec.encode({ prefixlen: EPADDR_FIXED_BITS + len, ifindex, family: AF_INET, addr });
}

/** Per-node endpoint programming: owns the TableRegistry and each endpoint's current state. */
export class EndpointPolicyWriter {
  readonly tables: TableRegistry;
  private readonly eps = new Map<number, EpState>();
  /** tortie_epdst_v1: per address (key hex), the endpoints claiming it (ifindex -> value), latest last. */
  private readonly dstClaims = new Map<string, { key: Buffer; by: Map<number, Buffer> }>();

  /** `firstTableId`: ids continue after those a previous run left in the kernel (never reused). */
  constructor(private readonly maps: PolicyMaps, firstTableId = 1) { this.tables = new TableRegistry(maps, firstTableId); }

  /**
   * Adopts what a previous agent left in the maps: endpoints (their table ids and addresses)
   * and tables (TableRegistry.recover). Call once, before the first apply.
   * Returns the ifindexes of the endpoints found.
   */
  recover(): number[] {
    this.tables.recover();
    const addrs = new Map<number, Map<string, Buffer>>();
    for (const e of this.maps.epaddr.entries?.() ?? []) {
      const ifindex = e.key.readUInt32LE(4);
      if (!addrs.has(ifindex)) addrs.set(ifindex, new Map());
      addrs.get(ifindex)!.set(e.key.toString('hex'), e.key);
    }
    const found: number[] = [];
    for (const e of this.maps.ep.entries?.() ?? []) {
      const ifindex = e.key.readUInt32LE(0);
      const v = endpointCodec.decode(e.value);
      const tableIds = v.table.filter((id) => id !== 0);
      for (const id of tableIds) this.tables.holdRecovered(id);
      // Its counter slot stays its own (a slot out of range or claimed twice: a new one at the next apply).
      const slot = v.slot > 0 && this.maps.counterSlots?.adopt(v.slot) ? v.slot : 0;
      this.eps.set(ifindex, { tableIds, addrKeys: addrs.get(ifindex) ?? new Map(), version: v.version, dstKeys: new Map(), slot });
      found.push(ifindex);
    }
    // Address entries of endpoints still there are theirs (rewritten by the next apply); others go.
    for (const e of this.maps.epdst?.entries?.() ?? []) {
      const st = this.eps.get(epDstCodec.decode(e.value).ifindex);
      if (!st) { this.maps.epdst!.delete(e.key); continue; }
      const h = e.key.toString('hex');
      st.dstKeys.set(h, e.key);
      this.dstClaims.set(h, { key: e.key, by: new Map([[epDstCodec.decode(e.value).ifindex, e.value]]) });
    }
    return found;
  }

  current(ifindex: number): Endpoint | undefined {
    const v = this.maps.ep.lookup(u32Key(ifindex));
    return v ? endpointCodec.decode(v) : undefined;
  }

  /** See the module contract. Returns the endpoint value written. */
  applyEndpointPolicy(p: EndpointPolicy): Endpoint {
    if (p.tables.ingress.direction !== 'ingress' || p.tables.egress.direction !== 'egress') {
      throw new ApplyError('ERR_DATAPATH_TABLE_DIRECTION',
        `endpoint ${p.id} (ifindex ${p.ifindex}): tables.ingress/egress have directions ${p.tables.ingress.direction}/${p.tables.egress.direction}`);
    }
    const prev = this.eps.get(p.ifindex);
    const newIds: number[] = [];
    try {
      newIds.push(this.tables.acquire(p.tables.ingress));
      newIds.push(this.tables.acquire(p.tables.egress));
    } catch (err) {
      for (const id of newIds) this.tables.release(id);
      throw err;
    }
    const addrKeys = new Map<string, Buffer>();
    for (const c of p.ipNetworks) {
      const k = epAddrKey(p.ifindex, c);
      if (k) addrKeys.set(k.toString('hex'), k);
    }
    for (const [h, k] of addrKeys) if (!prev?.addrKeys.has(h)) this.maps.epaddr.update(k, u32Value(0));
    const dstKeys = this.maps.epdst && p.mac && p.hostMac ? epDstKeys(p.ipNetworks) : new Map<string, Buffer>();
    for (const h of prev?.dstKeys.keys() ?? []) if (!dstKeys.has(h)) this.withdrawDst(h, p.ifindex);

    const old = this.current(p.ifindex);
    const value: Endpoint = {
      id: p.id,
      flags: p.disabled ? EP_F_DISABLED : 0,
      table: newIds,
      version: ((old?.version ?? prev?.version ?? 0) + 1) >>> 0,
      slot: prev?.slot || this.maps.counterSlots?.take() || 0,
    };
    this.maps.ep.update(u32Key(p.ifindex), endpointCodec.encode(value)); // the flip
    if (dstKeys.size > 0) {
      const v = epDstCodec.encode({ ifindex: p.ifindex, ep_id: p.id, mac: p.mac!, host_mac: p.hostMac! });
      for (const [h, k] of dstKeys) this.claimDst(h, k, p.ifindex, v);
    }

    if (prev) for (const [h, k] of prev.addrKeys) if (!addrKeys.has(h)) this.maps.epaddr.delete(k);
    for (const id of prev?.tableIds ?? []) this.tables.release(id);
    this.eps.set(p.ifindex, { tableIds: newIds, addrKeys, version: value.version, dstKeys, slot: value.slot });
    return value;
  }

  /** The entry of the address this endpoint lives at, as it claims it now (the latest claim wins). */
  private claimDst(h: string, key: Buffer, ifindex: number, value: Buffer): void {
    let c = this.dstClaims.get(h);
    if (!c) { c = { key, by: new Map() }; this.dstClaims.set(h, c); }
    const same = c.by.get(ifindex)?.equals(value) && [...c.by.keys()].pop() === ifindex;
    c.by.delete(ifindex);
    c.by.set(ifindex, value);
    if (!same) this.maps.epdst!.update(key, value);
  }

  /** This endpoint no longer claims the address: its entry goes to the latest other claimant, or away. */
  private withdrawDst(h: string, ifindex: number): void {
    const c = this.dstClaims.get(h);
    if (!c?.by.has(ifindex)) return;
    const wasOwner = [...c.by.keys()].pop() === ifindex;
    c.by.delete(ifindex);
    if (c.by.size === 0) { this.dstClaims.delete(h); this.maps.epdst!.delete(c.key); return; }
    if (wasOwner) this.maps.epdst!.update(c.key, [...c.by.values()].pop()!);
  }

  /** The ifindex tortie_epdst_v1 names for an address (what the writer wrote), for tests. */
  dstOwnerOf(h: string): number | undefined { return [...(this.dstClaims.get(h)?.by.keys() ?? [])].pop(); }

  /** Removes an endpoint (its interface is going away): entry, addresses, table references. */
  removeEndpoint(ifindex: number): void {
    const prev = this.eps.get(ifindex);
    for (const h of prev?.dstKeys.keys() ?? []) this.withdrawDst(h, ifindex);
    this.maps.ep.delete(u32Key(ifindex));
    if (!prev) return;
    if (prev.slot) this.maps.counterSlots?.retire(ifindex, prev.slot);
    for (const k of prev.addrKeys.values()) this.maps.epaddr.delete(k);
    for (const id of prev.tableIds) this.tables.release(id);
    this.eps.delete(ifindex);
  }
}

/**
 * A stage compiled per region of its rules' local-side nets (ingress destination.nets/notNets,
 * egress source.nets/notNets): each region's net, canonical, with its table; one region is
 * `0.0.0.0/0` (addresses in none of the nets).
 */
export type LocalDispatch = { cidr: string; table: AnyTable }[];

/** A host endpoint's tables by stage (enum tortie_hep_slot); absent = the stage has no policy. */
export type HostEndpointTables = Partial<Record<keyof typeof HEP_SLOT, AnyTable | LocalDispatch>>;

interface HepState { tableIds: number[]; dispatch: number[]; version: number }

/**
 * Host endpoints in tortie_hep_v1 (key: ifindex, 0 for the `*` endpoint), with the same
 * atomicity as workload endpoints: every table complete first, one update switches all the
 * stages, then the old tables are released. Tables are shared with the workload endpoints'
 * registry (same content, same id). A LocalDispatch stage gets a dispatch id of its own in
 * tortie_hlt4_v1 and, for IPv6 local nets, tortie_hlt6_v1 (the slot's flag bit set): its entries are written before the flip and deleted
 * after the flip away from it; dispatch ids only grow, like table ids.
 */
export class HostEndpointWriter {
  private readonly heps = new Map<number, HepState>();
  /** Dispatch id → its tortie_hlt4_v1 keys and tortie_hlt6_v1 keys. */
  private readonly dispatchKeys = new Map<number, { k4: Buffer[]; k6: Buffer[] }>();
  private nextDispatch = 1;
  constructor(private readonly map: MapOps, private readonly tables: TableRegistry, private readonly hlt?: MapOps, private readonly hlt6?: MapOps) {}

  /** Adopts what a previous agent left (call after TableRegistry.recover, before the first apply). */
  recover(): number[] {
    const found: number[] = [];
    const dispatches = new Map<number, { keys: { k4: Buffer[]; k6: Buffer[] }; tables: number[] }>();
    const found6 = (this.hlt6?.entries?.() ?? []).map((e) => ({ e, id: hlt6KeyCodec.decode(e.key).id, v6: true }));
    for (const { e, id, v6 } of [...(this.hlt?.entries?.() ?? []).map((e) => ({ e, id: hlt4KeyCodec.decode(e.key).id, v6: false })), ...found6]) {
      let d = dispatches.get(id);
      if (d === undefined) dispatches.set(id, (d = { keys: { k4: [], k6: [] }, tables: [] }));
      (v6 ? d.keys.k6 : d.keys.k4).push(e.key);
      d.tables.push(e.value.readUInt32LE(0));
      this.nextDispatch = Math.max(this.nextDispatch, id + 1);
    }
    for (const e of this.map.entries?.() ?? []) {
      const key = e.key.readUInt32LE(0);
      const v = hostepCodec.decode(e.value);
      const tableIds: number[] = [];
      const dispatch: number[] = [];
      v.table.forEach((id, slot) => {
        if (id === 0) return;
        if (((v.flags >>> slot) & 1) === 0) { tableIds.push(id); return; }
        const d = dispatches.get(id);
        if (d === undefined) return; // a dispatch without entries: the stage fails closed until rewritten
        dispatch.push(id);
        this.dispatchKeys.set(id, d.keys);
        tableIds.push(...d.tables);
      });
      for (const id of tableIds) this.tables.holdRecovered(id);
      this.heps.set(key, { tableIds, dispatch, version: v.version });
      found.push(key);
    }
    // Dispatches no host endpoint names (an agent stopped between writing and flipping).
    for (const [id, d] of dispatches) {
      if (this.dispatchKeys.has(id)) continue;
      if (d.keys.k4.length > 0) deleteAll(this.hlt!, d.keys.k4);
      if (d.keys.k6.length > 0) deleteAll(this.hlt6!, d.keys.k6);
    }
    return found;
  }

  apply(key: number, id: number, tables: HostEndpointTables): void {
    const prev = this.heps.get(key);
    const ids = new Array<number>(HEP_SLOTS).fill(0);
    let flags = 0;
    const acquired: number[] = [];
    const dispatch: number[] = [];
    try {
      for (const [slot, t] of Object.entries(tables) as [keyof typeof HEP_SLOT, AnyTable | LocalDispatch | undefined][]) {
        if (t === undefined) continue;
        if (!Array.isArray(t)) {
          const n = this.tables.acquire(t);
          acquired.push(n);
          ids[HEP_SLOT[slot]] = n;
          continue;
        }
        if (this.hlt === undefined) throw new ApplyError('ERR_DATAPATH_NO_HLT', `host endpoint stage ${slot} matches local-side nets but tortie_hlt4_v1 is not loaded`);
        const did = this.nextDispatch++;
        const entries: Entry[] = [];
        const entries6: Entry[] = [];
        for (const { cidr, table } of t) {
          const n = this.tables.acquire(table);
          acquired.push(n);
          if (cidr.includes(':')) {
            const { addr, len } = prefix6(cidr);
            entries6.push({ key: hlt6KeyCodec.encode({ prefixlen: HLT_FIXED_BITS + len, id: did, addr }), value: u32Value(n) });
          } else {
            const { addr, len } = prefix4(cidr);
            entries.push({ key: hlt4KeyCodec.encode({ prefixlen: HLT_FIXED_BITS + len, id: did, addr }), value: u32Value(n) });
          }
        }
        if (entries6.length > 0 && this.hlt6 === undefined) throw new ApplyError('ERR_DATAPATH_NO_HLT', `host endpoint stage ${slot} matches IPv6 local-side nets but tortie_hlt6_v1 is not loaded`);
        this.dispatchKeys.set(did, { k4: entries.map((e) => e.key), k6: entries6.map((e) => e.key) });
        dispatch.push(did);
        updateAll(this.hlt, entries);
        if (entries6.length > 0) updateAll(this.hlt6!, entries6);
        ids[HEP_SLOT[slot]] = did;
        flags |= 1 << HEP_SLOT[slot];
      }
    } catch (err) {
      for (const d of dispatch) this.dropDispatch(d);
      for (const n of acquired) this.tables.release(n);
      throw err;
    }
    const version = ((prev?.version ?? 0) + 1) >>> 0;
    this.map.update(u32Key(key), hostepCodec.encode({ id, flags, table: ids, version })); // the flip
    for (const d of prev?.dispatch ?? []) this.dropDispatch(d);
    for (const n of prev?.tableIds ?? []) this.tables.release(n);
    this.heps.set(key, { tableIds: acquired, dispatch, version });
  }

  remove(key: number): void {
    this.map.delete(u32Key(key));
    const prev = this.heps.get(key);
    if (!prev) return;
    for (const d of prev.dispatch) this.dropDispatch(d);
    for (const n of prev.tableIds) this.tables.release(n);
    this.heps.delete(key);
  }

  private dropDispatch(d: number): void {
    const keys = this.dispatchKeys.get(d);
    if (keys !== undefined && this.hlt !== undefined) deleteAll(this.hlt, keys.k4);
    if (keys !== undefined && this.hlt6 !== undefined && keys.k6.length > 0) deleteAll(this.hlt6, keys.k6);
    this.dispatchKeys.delete(d);
  }

  keys(): number[] { return [...this.heps.keys()]; }
  /** Live local-address dispatches (tortie_hlt4_v1 ids). */
  get dispatchCount(): number { return this.dispatchKeys.size; }
}
