/**
 * PackedTable: a VerdictTable held in typed arrays, for the tables the dataplane must keep after
 * writing them (to bind endpoints that arrive later, and to find a table's keys when it is
 * erased). As objects, 200 tables of ~1,600 projection entries took ~22 MiB of the agent's heap;
 * packed they take ~8 bytes per projection entry and 32 bytes per cell plus a small header.
 *
 * Contract: `unpack(pack(t))` deep-equals `t` (the compiler's VerdictTable, projection pairs sorted by
 * global class); `withProjection` returns a new table, the receiver is never modified.
 */
import type { Direction, ProjectionEntry, SrcPortRange, VerdictCell, VerdictTable } from '../../calc/types';
import { EncodeError } from './encode-error';

/** Cell fields in order, one u32 each; logs are a slice of `logs` from `logStart`. */
export const CELL_WORDS = 8;
export const C_LOCAL = 0;
export const C_PROTO = 1;
export const C_SPC = 2;
export const C_PORT_MIN = 3;
export const C_PORT_MAX = 4;
export const C_ACTION = 5; // 1 = allow, 0 = deny
export const C_RULE = 6;
export const C_LOG_START = 7; // the logs of cell i are logs[cells[i*8+7] .. cells[(i+1)*8+7]) (or logs.length)

export class PackedTable {
  private constructor(
    readonly id: string,
    readonly direction: Direction,
    readonly localClassCount: number,
    readonly protocols: readonly number[],
    readonly srcPortClasses: readonly { protocol: number; ranges: readonly SrcPortRange[] }[],
    /** [global0, local0, global1, local1, …], sorted by global class. */
    private readonly proj: Uint32Array,
    private readonly cellWords: Uint32Array,
    private readonly logs: Uint32Array,
    /** VerdictTable.passThroughRule (host endpoint doNotTrack/preDNAT tables). */
    readonly passThroughRule?: number,
  ) {}

  /** Throws EncodeError when a number does not fit the table's u32 fields. */
  static pack(t: VerdictTable): PackedTable {
    const u32 = (v: number, what: string): number => {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new EncodeError(`table ${t.id}: ${what} ${v} is not a u32`);
      return v;
    };
    // The projection is u32 pairs already (a Uint32Array); it must be whole pairs, sorted.
    if (t.projection.length % 2 !== 0) throw new EncodeError(`table ${t.id}: projection of odd length ${t.projection.length}`);
    for (let i = 2; i < t.projection.length; i += 2) {
      if (t.projection[i]! <= t.projection[i - 2]!) throw new EncodeError(`table ${t.id}: projection not sorted by global class at ${t.projection[i]}`);
    }
    for (const c of t.cells) {
      for (const [k, v] of [['cell local class', c.localClass], ['cell protocol', c.protocol], ['cell source-port class', c.srcPortClass],
        ['cell port', c.portMin], ['cell port', c.portMax], ['cell rule id', c.ruleId]] as const) u32(v, k);
      for (const l of c.logRuleIds) u32(l, 'log rule id');
    }
    const proj = t.projection.slice();
    const cells = new Uint32Array(t.cells.length * CELL_WORDS);
    const logs: number[] = [];
    t.cells.forEach((c, i) => {
      const o = i * CELL_WORDS;
      cells[o + C_LOCAL] = c.localClass;
      cells[o + C_PROTO] = c.protocol;
      cells[o + C_SPC] = c.srcPortClass;
      cells[o + C_PORT_MIN] = c.portMin;
      cells[o + C_PORT_MAX] = c.portMax;
      cells[o + C_ACTION] = c.action === 'allow' ? 1 : 0;
      cells[o + C_RULE] = c.ruleId;
      cells[o + C_LOG_START] = logs.length;
      logs.push(...c.logRuleIds);
    });
    return new PackedTable(t.id, t.direction, t.localClassCount, [...t.protocols],
      t.srcPortClasses.map((s) => ({ protocol: s.protocol, ranges: s.ranges.map((r) => ({ ...r })) })),
      proj, cells, Uint32Array.from(logs), t.passThroughRule === undefined ? undefined : u32(t.passThroughRule, 'pass-through rule id'));
  }

  get projectionSize(): number { return this.proj.length / 2; }

  /**
   * The packed arrays themselves, for the map encoder (encode.ts): projection pairs, cell words
   * (CELL_WORDS per cell, fields at the C_* offsets) and log rule ids. Read only: never modify.
   */
  columns(): { proj: Uint32Array; cells: Uint32Array; logs: Uint32Array } {
    return { proj: this.proj, cells: this.cellWords, logs: this.logs };
  }
  get cellCount(): number { return this.cellWords.length / CELL_WORDS; }

  projection(): ProjectionEntry[] {
    const out: ProjectionEntry[] = new Array(this.proj.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = { globalClass: this.proj[2 * i]!, localClass: this.proj[2 * i + 1]! };
    return out;
  }

  unpack(): VerdictTable {
    const cells: VerdictCell[] = new Array(this.cellCount);
    for (let i = 0; i < cells.length; i++) {
      const o = i * CELL_WORDS;
      const end = i + 1 < cells.length ? this.cellWords[o + CELL_WORDS + C_LOG_START]! : this.logs.length;
      cells[i] = {
        localClass: this.cellWords[o + C_LOCAL]!,
        protocol: this.cellWords[o + C_PROTO]!,
        srcPortClass: this.cellWords[o + C_SPC]!,
        portMin: this.cellWords[o + C_PORT_MIN]!,
        portMax: this.cellWords[o + C_PORT_MAX]!,
        action: this.cellWords[o + C_ACTION] === 1 ? 'allow' : 'deny',
        ruleId: this.cellWords[o + C_RULE]!,
        logRuleIds: Array.from(this.logs.subarray(this.cellWords[o + C_LOG_START]!, end)),
      };
    }
    return {
      id: this.id,
      direction: this.direction,
      localClassCount: this.localClassCount,
      projection: this.proj.slice(),
      protocols: [...this.protocols],
      srcPortClasses: this.srcPortClasses.map((s) => ({ protocol: s.protocol, ranges: s.ranges.map((r) => ({ ...r })) })),
      cells,
      ...(this.passThroughRule !== undefined ? { passThroughRule: this.passThroughRule } : {}),
    };
  }

  /**
   * This table with projection entries added or replaced (`add`, by global class) and removed
   * (`remove`, global classes); the result stays sorted by global class.
   */
  withProjection(add: readonly ProjectionEntry[], remove: readonly number[] = []): PackedTable {
    const m = new Map<number, number>();
    for (let i = 0; i < this.proj.length; i += 2) m.set(this.proj[i]!, this.proj[i + 1]!);
    for (const g of remove) m.delete(g);
    for (const p of add) m.set(p.globalClass, p.localClass);
    const keys = [...m.keys()].sort((a, b) => a - b);
    const proj = new Uint32Array(keys.length * 2);
    keys.forEach((g, i) => { proj[2 * i] = g; proj[2 * i + 1] = m.get(g)!; });
    return new PackedTable(this.id, this.direction, this.localClassCount, this.protocols, this.srcPortClasses, proj, this.cellWords, this.logs, this.passThroughRule);
  }
}

/** A table as the writer accepts it: the compiler's form or the packed one. */
export type AnyTable = VerdictTable | PackedTable;

export function unpacked(t: AnyTable): VerdictTable {
  return t instanceof PackedTable ? t.unpack() : t;
}
