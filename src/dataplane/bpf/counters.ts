/**
 * Reading the per-CPU counters (tortie_cnt_v1), the per-endpoint event budgets (tortie_evbud_v1)
 * and decoding ring-buffer events, for metrics, logs and tests. Counters are summed over CPUs; keys are (ifindex, direction, reason).
 * A workload endpoint's forwarded packets (reason 0) are counted in its slot of tortie_epcnt_v1
 * while it exists (tortie_endpoint.slot; an array index is cheaper per packet than the hash) and
 * folded into its tortie_cnt_v1 key when it goes (EpCounterSlots.retire): readCounters with the
 * wep object's `ep` and `epcnt` maps shows one counter per key either way.
 */
import type { BpfMap } from '../native';
import { EPCNT_SLOTS, EV_DENY, EV_LOG, EV_PREFILTER, cntKeyCodec, cntValueCodec, endpointCodec, evbudCodec, eventCodec, u32Key, type EventRecord } from './codecs';
import { dropReasonLabel } from './drop-reasons';

export interface CounterRow { ifindex: number; dir: number; reason: number; packets: bigint; bytes: bigint }

/** The wep object's endpoint map and endpoint counter slots (both present, or no slot is read). */
export interface EpCounterMaps { ep?: BpfMap; epcnt?: BpfMap }

function sumPerCpu(m: BpfMap, value: Buffer): { packets: bigint; bytes: bigint } {
  let packets = 0n, bytes = 0n;
  for (const part of m.splitPerCpu(value)) {
    const v = cntValueCodec.decode(part);
    packets += v.packets;
    bytes += v.bytes;
  }
  return { packets, bytes };
}

/**
 * Every counter, summed over CPUs. With `fast` (the wep object's maps: `ep`, `epcnt`) the live
 * endpoints' forwarded counts in tortie_epcnt_v1 are added to their (ifindex, dir, 0) rows; without
 * it those rows hold only what endpoints that are gone (or had no slot) counted.
 */
export function readCounters(cnt: BpfMap, fast?: EpCounterMaps): CounterRow[] {
  const { keys, values } = cnt.entries();
  const rows: CounterRow[] = [];
  for (let i = 0; i < keys.length; i++) {
    const k = cntKeyCodec.decode(keys[i]);
    rows.push({ ifindex: k.ifindex, dir: k.dir, reason: k.reason, ...sumPerCpu(cnt, values[i]) });
  }
  if (!fast?.ep || !fast.epcnt) return rows;
  // Forwarded rows by (ifindex, dir), so adding the slots is linear in endpoints + rows.
  const forwarded = new Map<number, CounterRow>();
  for (const r of rows) if (r.reason === 0) forwarded.set(r.ifindex * 256 + r.dir, r);
  const { keys: epKeys, values: epValues } = fast.ep.entries();
  for (let i = 0; i < epKeys.length; i++) {
    const slot = endpointCodec.decode(epValues[i]).slot;
    if (slot <= 0 || slot >= EPCNT_SLOTS) continue;
    const ifindex = epKeys[i].readUInt32LE(0);
    for (const dir of [0, 1]) {
      const v = fast.epcnt.lookup(u32Key(slot * 2 + dir));
      if (!v) continue;
      const c = sumPerCpu(fast.epcnt, v);
      if (c.packets === 0n && c.bytes === 0n) continue;
      const row = forwarded.get(ifindex * 256 + dir);
      if (row) { row.packets += c.packets; row.bytes += c.bytes; } else rows.push({ ifindex, dir, reason: 0, ...c });
    }
  }
  return rows;
}

/**
 * Hands out endpoint counter slots (tortie_endpoint.slot, tortie_epcnt_v1). A slot is zeroed
 * before it is given out (a packet of its previous endpoint still in flight then is not counted
 * for the next one) and, when its endpoint goes, what it counted is added to that endpoint's
 * tortie_cnt_v1 (ifindex, dir, 0) keys, so the counter neither drops nor jumps. Freed slots are
 * reused last (first in, first out). Slots run out at EPCNT_SLOTS - 1 endpoints: the rest get 0
 * and count in tortie_cnt_v1 as before.
 */
export class EpCounterSlots {
  private readonly free: number[] = [];
  private readonly used = new Set<number>();

  constructor(private readonly cnt: BpfMap, private readonly epcnt: BpfMap) {
    for (let s = 1; s < Math.min(EPCNT_SLOTS, epcnt.maxEntries / 2); s++) this.free.push(s);
  }

  /** A slot a previous agent gave an endpoint that is still there: kept. False if it cannot be (taken, out of range). */
  adopt(slot: number): boolean {
    const i = this.free.indexOf(slot);
    if (i < 0) return false;
    this.free.splice(i, 1);
    this.used.add(slot);
    return true;
  }

  /** A zeroed slot, or 0 when none is left. */
  take(): number {
    const slot = this.free.shift();
    if (slot === undefined) return 0;
    this.zero(slot);
    this.used.add(slot);
    return slot;
  }

  /** The endpoint behind `ifindex` is gone (its tortie_ep_v1 entry deleted): its counts move to tortie_cnt_v1. */
  retire(ifindex: number, slot: number): void {
    if (!this.used.delete(slot)) return;
    for (const dir of [0, 1]) {
      const v = this.epcnt.lookup(u32Key(slot * 2 + dir));
      if (!v) continue;
      const add = this.epcnt.splitPerCpu(v).map((b) => cntValueCodec.decode(b));
      if (add.every((c) => c.packets === 0n && c.bytes === 0n)) continue;
      const key = cntKeyCodec.encode({ ifindex, dir, reason: 0 });
      const cur = this.cnt.lookup(key);
      const have = cur ? this.cnt.splitPerCpu(cur).map((b) => cntValueCodec.decode(b)) : [];
      const sum = add.map((c, i) => cntValueCodec.encode({
        packets: c.packets + (have[i]?.packets ?? 0n), bytes: c.bytes + (have[i]?.bytes ?? 0n) }));
      try {
        this.cnt.update(key, this.cnt.joinPerCpu(sum));
      } catch {
        // tortie_cnt_v1 full: the programs could not have added this key either; the count is lost.
      }
    }
    this.zero(slot);
    this.free.push(slot);
  }

  private zero(slot: number): void {
    const z = this.epcnt.joinPerCpu([]);
    this.epcnt.update(u32Key(slot * 2), z);
    this.epcnt.update(u32Key(slot * 2 + 1), z);
  }
}

/** Packets counted for (ifindex, dir, reason), 0 if none. */
export function counterPackets(rows: CounterRow[], ifindex: number, dir: number, reason: number): bigint {
  return rows.find((r) => r.ifindex === ifindex && r.dir === dir && r.reason === reason)?.packets ?? 0n;
}

/** One endpoint's event budget counts (tortie_evbud_v1), summed over CPUs. */
export interface EventBudgetRow { ifindex: number; emitted: bigint; suppressed: bigint; lost: bigint }

export function readEventBudgets(evbud: BpfMap): EventBudgetRow[] {
  const { keys, values } = evbud.entries();
  const rows: EventBudgetRow[] = [];
  for (let i = 0; i < keys.length; i++) {
    const row: EventBudgetRow = { ifindex: keys[i].readUInt32LE(0), emitted: 0n, suppressed: 0n, lost: 0n };
    for (const part of evbud.splitPerCpu(values[i])) {
      const v = evbudCodec.decode(part);
      row.emitted += v.emitted;
      row.suppressed += v.suppressed;
      row.lost += v.lost;
    }
    rows.push(row);
  }
  return rows;
}

export interface FlowEvent {
  kind: 'deny' | 'log' | 'prefilter' | 'unknown';
  tsNs: bigint;
  ifindex: number;
  endpointId: number;
  direction: 'ingress' | 'egress' | 'uplink';
  ruleId: number;
  reason: string;
  protocol: number;
  src: string;
  dst: string;
  srcPort: number;
  /** Destination port, or ICMP type << 8 | code. */
  dstPort: number;
}

export function decodeEvent(buf: Buffer): FlowEvent {
  const e: EventRecord = eventCodec.decode(buf);
  const kind = e.kind === EV_DENY ? 'deny' : e.kind === EV_LOG ? 'log' : e.kind === EV_PREFILTER ? 'prefilter' : 'unknown';
  const direction = e.dir === 0 ? 'ingress' : e.dir === 1 ? 'egress' : 'uplink';
  return {
    kind, tsNs: e.ts_ns, ifindex: e.ifindex, endpointId: e.ep_id, direction, ruleId: e.rule,
    reason: dropReasonLabel(e.reason), protocol: e.proto,
    src: e.saddr, dst: e.daddr,
    srcPort: e.sport, dstPort: e.dport,
  };
}
