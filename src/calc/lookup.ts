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
import { maskOf, parseCidr4, parseIPv4 } from './ipv4';
import { isIcmpProtocol, isPortProtocol } from './semantics';
import { PROTO_OTHER, type CompiledState, type PolicyPacket, type Verdict, type VerdictCell, type VerdictTable } from './types';

export interface LookupResult {
  action: Verdict;
  ruleId: number;
  logRuleIds: number[];
  globalClass: number;
  localClass: number;
}

interface TableIdx {
  t: VerdictTable;
  projection: Map<number, number>;
  protocols: Set<number>;
  srcClasses: Map<number, { portMin: number; portMax: number; srcPortClass: number }[]>;
  cells: Map<string, VerdictCell[]>;
}

export class TableIndex {
  private readonly lpm = new Map<string, number>();
  private readonly lens: number[];
  private readonly tables = new Map<string, TableIdx>();
  private readonly endpoints: Map<string, CompiledState['endpoints'][number]>;

  constructor(state: CompiledState) {
    const lens = new Set<number>();
    for (const p of state.classes.prefixes) {
      const c = parseCidr4(p.cidr)!;
      this.lpm.set(`${c.addr}/${c.len}`, p.classId);
      lens.add(c.len);
    }
    this.lens = [...lens].sort((a, b) => b - a);
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
        projection: new Map(t.projection.map((e) => [e.globalClass, e.localClass])),
        protocols: new Set(t.protocols),
        srcClasses: new Map(t.srcPortClasses.map((s) => [s.protocol, s.ranges])),
        cells,
      });
    }
    this.endpoints = new Map(state.endpoints.map((e) => [e.key, e]));
  }

  classOf(ip: number): number {
    for (const len of this.lens) {
      const id = this.lpm.get(`${(ip & maskOf(len)) >>> 0}/${len}`);
      if (id !== undefined) return id;
    }
    return 0;
  }

  lookup(packet: PolicyPacket): LookupResult {
    const ep = this.endpoints.get(packet.endpoint);
    if (ep === undefined) throw new UnknownEndpointError(packet.endpoint);
    const ti = this.tables.get(ep.tables[packet.direction]);
    if (ti === undefined) throw new CalcError('ERR_CALC_LOOKUP_MISS', `endpoint "${ep.key}": table ${ep.tables[packet.direction]} missing`);
    const ip = parseIPv4(packet.remoteIP);
    if (ip === undefined) throw new CalcError('ERR_CALC_BAD_PACKET', `packet.remoteIP: "${packet.remoteIP}" is not an IPv4 address`);
    const g = this.classOf(ip);
    const lc = ti.projection.get(g) ?? 0;
    const proto = ti.protocols.has(packet.protocol) ? packet.protocol : PROTO_OTHER;
    let sport = 0;
    let dport = 0;
    if (isPortProtocol(packet.protocol)) {
      sport = packet.srcPort ?? 0;
      dport = packet.dstPort ?? 0;
    } else if (isIcmpProtocol(packet.protocol)) {
      dport = ((packet.icmpType ?? 0) << 8) | (packet.icmpCode ?? 0);
    }
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
