// Hand-built verdict tables for unit tests that must not depend on the policy compiler:
// first-match rules over (local class, protocol, source-port class, port range) turned into
// the compiler's complete cell partition (see src/calc/types.ts).
import { PROTO_OTHER, type VerdictCell, type VerdictTable, type Direction } from '../calc/types';
import { packProjection } from '../calc/lookup';

export interface SimpleRule {
  lclass?: number;        // undefined = any local class
  proto?: number;         // undefined = any protocol (incl. PROTO_OTHER)
  sclass?: number;        // undefined = any source-port class
  portMin?: number;
  portMax?: number;
  action: 'allow' | 'deny' | 'log';
  ruleId: number;
}

export interface SimpleTableSpec {
  id: string;
  direction: Direction;
  /** global class → local class (≥ 1) */
  projection?: [number, number][];
  localClassCount?: number;
  protocols?: number[];
  srcPortClasses?: { protocol: number; ranges: { portMin: number; portMax: number; srcPortClass: number }[] }[];
  rules: SimpleRule[];
  /** rule id of the implicit deny at the end */
  defaultRule: number;
}

export function buildTable(s: SimpleTableSpec): VerdictTable {
  const projection = (s.projection ?? []).map(([g, l]) => ({ globalClass: g, localClass: l }));
  const lcount = s.localClassCount ?? Math.max(1, ...projection.map((p) => p.localClass + 1));
  const protocols = [...new Set(s.protocols ?? s.rules.filter((r) => r.proto !== undefined && r.proto !== PROTO_OTHER).map((r) => r.proto!))].sort((a, b) => a - b);
  const spcs = s.srcPortClasses ?? [];
  const cells: VerdictCell[] = [];
  for (let l = 0; l < lcount; l++) {
    for (const p of [...protocols, PROTO_OTHER]) {
      const sp = spcs.find((x) => x.protocol === p);
      const sclasses = [0, ...new Set((sp?.ranges ?? []).map((r) => r.srcPortClass))];
      for (const sc of sclasses) {
        const rules = s.rules.filter((r) => (r.lclass === undefined || r.lclass === l) &&
          (r.proto === undefined || r.proto === p) && (r.sclass === undefined || r.sclass === sc));
        const bounds = new Set<number>([0, 65536]);
        for (const r of rules) { bounds.add(r.portMin ?? 0); bounds.add((r.portMax ?? 65535) + 1); }
        const bs = [...bounds].sort((a, b) => a - b);
        for (let i = 0; i + 1 < bs.length; i++) {
          const lo = bs[i], hi = bs[i + 1] - 1;
          const logs: number[] = [];
          let action: 'allow' | 'deny' = 'deny';
          let ruleId = s.defaultRule;
          for (const r of rules) {
            if ((r.portMin ?? 0) > lo || (r.portMax ?? 65535) < hi) continue;
            if (r.action === 'log') { logs.push(r.ruleId); continue; }
            action = r.action; ruleId = r.ruleId; break;
          }
          const last = cells[cells.length - 1];
          if (last && last.localClass === l && last.protocol === p && last.srcPortClass === sc && last.action === action &&
              last.ruleId === ruleId && last.logRuleIds.join() === logs.join() && last.portMax + 1 === lo) {
            last.portMax = hi;
          } else {
            cells.push({ localClass: l, protocol: p, srcPortClass: sc, portMin: lo, portMax: hi, action, ruleId, logRuleIds: logs });
          }
        }
      }
    }
  }
  return { id: s.id, direction: s.direction, localClassCount: lcount, projection: packProjection(projection), protocols, srcPortClasses: spcs, cells };
}

/** Table that allows everything (ruleId given) in a direction. */
export function allowAll(id: string, direction: Direction, ruleId = 1): VerdictTable {
  return buildTable({ id, direction, rules: [{ action: 'allow', ruleId }], defaultRule: 999 });
}

export function denyAll(id: string, direction: Direction, ruleId = 2): VerdictTable {
  return buildTable({ id, direction, rules: [], defaultRule: ruleId });
}
