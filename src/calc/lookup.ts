/**
 * Table lookup as the datapath does it (types.ts, "Per packet"): LPM of the remote address to a
 * global class, the endpoint's table for the direction, projection to a local class, protocol
 * bucket, source-port class, destination-port-value cell. Used by the differential tests and as
 * the executable specification for the BPF encoder.
 *
 * Contract: `new TableIndex(state)` indexes a CompiledState once; `lookup(packet)` returns the
 * cell's verdict, or throws CalcError ERR_CALC_LOOKUP_MISS if the tables are incomplete (a
 * compiler bug: tables must cover every packet).
 */
import { CalcError, UnknownEndpointError } from './errors';
import { cidr6Contains, cidr6Key, isIcmpProtocol, isPortProtocol, mask6, prefixMask, tryParseCidrOrIp4, tryParseCidrOrIp6, tryIpv4ToU32 } from '../primitives';
import { PROTO_OTHER, type CompiledState, type HostSlot, type LocalEndpoint, type PolicyPacket, type ProjectionEntry, type Verdict, type VerdictCell, type VerdictTable } from './types';

export interface LookupResult {
  action: Verdict;
  ruleId: number;
  logRuleIds: number[];
  globalClass: number;
  localClass: number;
}

/** VerdictTable.projection as entries. */
export function projectionEntries(p: Uint32Array): ProjectionEntry[] {
  const out: ProjectionEntry[] = new Array<ProjectionEntry>(p.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = { globalClass: p[2 * i]!, localClass: p[2 * i + 1]! };
  return out;
}

/**
 * JSON.stringify replacer for compiled output (deltas, snapshots): a table's projection as its
 * list of entries (as it was before it was packed), not as a typed array's index-keyed object.
 */
export function compiledJson(key: string, v: unknown): unknown {
  return key === 'projection' && v instanceof Uint32Array ? projectionEntries(v) : v;
}

/** Entries as VerdictTable.projection (sorted by global class here; each must be a u32). */
export function packProjection(entries: readonly ProjectionEntry[]): Uint32Array {
  const sorted = [...entries].sort((a, b) => a.globalClass - b.globalClass);
  const out = new Uint32Array(2 * sorted.length);
  sorted.forEach((e, i) => {
    for (const v of [e.globalClass, e.localClass]) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`projection: ${v} is not a u32`);
    }
    out[2 * i] = e.globalClass;
    out[2 * i + 1] = e.localClass;
  });
  return out;
}

interface TableIdx {
  t: VerdictTable;
  projection: Map<number, number>;
  protocols: Set<number>;
  srcClasses: Map<number, { portMin: number; portMax: number; srcPortClass: number }[]>;
  cells: Map<string, VerdictCell[]>;
}

/** The (source, destination) port values of a packet as tables use them (see types.ts). */
export function portValues(p: Pick<PolicyPacket, 'protocol' | 'srcPort' | 'dstPort' | 'icmpType' | 'icmpCode'>): [number, number] {
  if (isPortProtocol(p.protocol)) return [p.srcPort ?? 0, p.dstPort ?? 0];
  if (isIcmpProtocol(p.protocol)) return [0, ((p.icmpType ?? 0) << 8) | (p.icmpCode ?? 0)];
  return [0, 0];
}

export class TableIndex {
  private readonly lpm = new Map<string, number>();
  private readonly lens: number[];
  private readonly lpm6 = new Map<string, number>();
  private readonly lens6: number[];
  private readonly tables = new Map<string, TableIdx>();
  private readonly endpoints: Map<string, CompiledState['endpoints'][number]>;

  constructor(state: CompiledState) {
    const lens = new Set<number>();
    const lens6 = new Set<number>();
    for (const p of state.classes.prefixes) {
      if (p.family === 6) {
        const c = tryParseCidrOrIp6(p.cidr)!;
        this.lpm6.set(cidr6Key(c), p.classId);
        lens6.add(c.len);
        continue;
      }
      const c = tryParseCidrOrIp4(p.cidr)!;
      this.lpm.set(`${c.addr}/${c.len}`, p.classId);
      lens.add(c.len);
    }
    this.lens = [...lens].sort((a, b) => b - a);
    this.lens6 = [...lens6].sort((a, b) => b - a);
    for (const t of state.tables) {
      const cells = new Map<string, VerdictCell[]>();
      for (const c of t.cells) {
        const k = `${c.localClass}|${c.protocol}|${c.srcPortClass}`;
        let l = cells.get(k);
        if (l === undefined) cells.set(k, (l = []));
        l.push(c);
      }
      this.tables.set(t.id, {
        t,
        projection: new Map(projectionEntries(t.projection).map((e) => [e.globalClass, e.localClass])),
        protocols: new Set(t.protocols),
        srcClasses: new Map(t.srcPortClasses.map((s) => [s.protocol, s.ranges])),
        cells,
      });
    }
    this.endpoints = new Map(state.endpoints.map((e) => [e.key, e]));
  }

  classOf(ip: number): number {
    for (const len of this.lens) {
      const id = this.lpm.get(`${(ip & prefixMask(len)) >>> 0}/${len}`);
      if (id !== undefined) return id;
    }
    return 0;
  }

  classOf6(ip: bigint): number {
    for (const len of this.lens6) {
      const id = this.lpm6.get(cidr6Key({ addr6: ip & mask6(len), len }));
      if (id !== undefined) return id;
    }
    return 0;
  }

  lookup(packet: PolicyPacket): LookupResult {
    const ep = this.endpoints.get(packet.endpoint);
    if (ep === undefined) throw new UnknownEndpointError(packet.endpoint);
    return this.lookupIn(ep.tables[packet.direction], packet, `endpoint "${ep.key}": `);
  }

  /** The lookup in one table by id (a host endpoint's other stages: LocalEndpoint.host.tables). */
  lookupIn(tableId: string, packet: PolicyPacket, where = ''): LookupResult {
    const ti = this.tables.get(tableId);
    if (ti === undefined) throw new CalcError('ERR_CALC_LOOKUP_MISS', `${where}table ${tableId} missing`);
    const ip = tryIpv4ToU32(packet.remoteIP);
    const ip6 = ip === undefined ? tryParseCidrOrIp6(packet.remoteIP) : undefined;
    if (ip === undefined && (ip6 === undefined || ip6.len !== 128)) {
      throw new CalcError('ERR_CALC_BAD_PACKET', `packet.remoteIP: "${packet.remoteIP}" is not an IPv4 or IPv6 address`);
    }
    const g = ip !== undefined ? this.classOf(ip) : this.classOf6(ip6!.addr6);
    const lc = ti.projection.get(g) ?? 0;
    const proto = ti.protocols.has(packet.protocol) ? packet.protocol : PROTO_OTHER;
    const [sport, dport] = portValues(packet);
    let spc = 0;
    for (const r of ti.srcClasses.get(proto) ?? []) {
      if (sport >= r.portMin && sport <= r.portMax) {
        spc = r.srcPortClass;
        break;
      }
    }
    const list = ti.cells.get(`${lc}|${proto}|${spc}`) ?? [];
    let lo = 0;
    let hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = list[mid]!;
      if (dport < c.portMin) hi = mid - 1;
      else if (dport > c.portMax) lo = mid + 1;
      else return { action: c.action, ruleId: c.ruleId, logRuleIds: c.logRuleIds, globalClass: g, localClass: lc };
    }
    throw new CalcError(
      'ERR_CALC_LOOKUP_MISS',
      `table ${ti.t.id}: no cell for local class ${lc}, protocol ${proto}, source-port class ${spc}, port ${dport}`,
    );
  }
}

/**
 * Structural check of a compiled state against the contract in types.ts: every table's cells are
 * sorted and partition [0, 65535] for every (local class, protocol bucket, source-port class),
 * source-port ranges are sorted and disjoint, projections point into the table, every endpoint's
 * tables exist and every cell's rules are in the rule table. Returns the problems found (empty =
 * valid). For tests and for the datapath encoder's assertions.
 */
/**
 * The table a host endpoint's stage uses for a packet whose local address (arriving: destination,
 * leaving: source) is `localIP` (either family): the region of the longest listed net of its family
 * holding it, as the datapath's tortie_hlt4_v1 / tortie_hlt6_v1 lookup; the slot's table when the stage does not depend on the local address.
 */
export function hostStageTable(e: LocalEndpoint, slot: 'ingress' | 'egress' | HostSlot, localIP: string): string | undefined {
  const root = slot === 'ingress' || slot === 'egress' ? e.tables[slot] : e.host?.tables[slot];
  const regions = e.host?.local?.[slot];
  if (regions === undefined) return root;
  const ip = tryIpv4ToU32(localIP);
  const ip6 = ip === undefined ? tryParseCidrOrIp6(localIP) : undefined;
  if (ip === undefined && (ip6 === undefined || ip6.len !== 128)) throw new CalcError('ERR_CALC_BAD_PACKET', `localIP ${localIP}: not an IP address`);
  let best: { len: number; table: string } | undefined;
  for (const r of regions) {
    let len: number;
    if (ip !== undefined) {
      const c = tryParseCidrOrIp4(r.cidr);
      if (c === undefined || ((ip & prefixMask(c.len)) >>> 0) !== c.addr) continue;
      len = c.len;
    } else {
      const c = tryParseCidrOrIp6(r.cidr);
      if (c === undefined || !cidr6Contains(c, ip6!.addr6)) continue;
      len = c.len;
    }
    if (best === undefined || len > best.len) best = { len, table: r.table };
  }
  return best?.table;
}

export function validateCompiled(state: CompiledState): string[] {
  const problems: string[] = [];
  const rules = new Set(state.rules.map((r) => r.id));
  const classes = new Set(state.classes.classes.map((c) => c.classId));
  for (const p of state.classes.prefixes) if (!classes.has(p.classId)) problems.push(`prefix ${p.cidr}: unknown class ${p.classId}`);
  const tables = new Set<string>();
  for (const t of state.tables) {
    tables.add(t.id);
    const where = `table ${t.id}`;
    if (t.projection.length % 2 !== 0) problems.push(`${where}: projection of odd length ${t.projection.length}`);
    for (let i = 2; i < t.projection.length; i += 2) {
      if (t.projection[i]! <= t.projection[i - 2]!) problems.push(`${where}: projection not sorted by global class at ${t.projection[i]}`);
    }
    for (const e of projectionEntries(t.projection)) {
      if (e.localClass < 1 || e.localClass >= t.localClassCount) problems.push(`${where}: projection ${e.globalClass} → ${e.localClass} out of range`);
      if (!classes.has(e.globalClass)) problems.push(`${where}: projection of unknown class ${e.globalClass}`);
    }
    const spcCount = new Map<number, number>();
    for (const s of t.srcPortClasses) {
      let prev = -1;
      let max = 0;
      for (const r of s.ranges) {
        if (r.portMin <= prev || r.portMax < r.portMin || r.portMax > 65535) problems.push(`${where}: bad source-port range ${r.portMin}-${r.portMax}`);
        prev = r.portMax;
        max = Math.max(max, r.srcPortClass);
      }
      spcCount.set(s.protocol, max + 1);
    }
    const expected: string[] = [];
    for (let lc = 0; lc < t.localClassCount; lc++) {
      for (const p of [...t.protocols, PROTO_OTHER]) {
        for (let spc = 0; spc < (spcCount.get(p) ?? 1); spc++) expected.push(`${lc}|${p}|${spc}`);
      }
    }
    const groups = new Map<string, VerdictCell[]>();
    let last: VerdictCell | undefined;
    for (const c of t.cells) {
      if (last !== undefined) {
        const order = last.localClass - c.localClass || last.protocol - c.protocol || last.srcPortClass - c.srcPortClass || last.portMin - c.portMin;
        if (order >= 0) problems.push(`${where}: cells not sorted at ${c.localClass}/${c.protocol}/${c.srcPortClass}/${c.portMin}`);
      }
      last = c;
      const k = `${c.localClass}|${c.protocol}|${c.srcPortClass}`;
      let g = groups.get(k);
      if (g === undefined) groups.set(k, (g = []));
      g.push(c);
      if (!rules.has(c.ruleId)) problems.push(`${where}: cell names unknown rule ${c.ruleId}`);
      for (const l of c.logRuleIds) if (!rules.has(l)) problems.push(`${where}: cell logs unknown rule ${l}`);
    }
    for (const k of expected) {
      const g = groups.get(k);
      if (g === undefined) {
        problems.push(`${where}: no cells for ${k}`);
        continue;
      }
      let next = 0;
      for (const c of g) {
        if (c.portMin !== next || c.portMax < c.portMin) problems.push(`${where}: ${k} gap or overlap at ${c.portMin}`);
        next = c.portMax + 1;
      }
      if (next !== 65536) problems.push(`${where}: ${k} does not reach 65535`);
      groups.delete(k);
    }
    for (const k of groups.keys()) problems.push(`${where}: unexpected cells for ${k}`);
  }
  for (const e of state.endpoints) {
    for (const id of [e.tables.ingress, e.tables.egress, ...Object.values(e.host?.tables ?? {})]) if (!tables.has(id)) problems.push(`endpoint ${e.key}: missing table ${id}`);
    for (const [slot, regions] of Object.entries(e.host?.local ?? {})) {
      const root = slot === 'ingress' || slot === 'egress' ? e.tables[slot] : e.host!.tables[slot as HostSlot];
      if (regions?.find((r) => r.cidr === '0.0.0.0/0')?.table !== root) problems.push(`endpoint ${e.key}: ${slot}: the 0.0.0.0/0 region is not the slot's table`);
      for (const r of regions ?? []) if (!tables.has(r.table)) problems.push(`endpoint ${e.key}: ${slot} ${r.cidr}: missing table ${r.table}`);
    }
  }
  return problems;
}
