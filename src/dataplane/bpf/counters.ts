/**
 * Reading the per-CPU counters (tortie_cnt_v1), the per-endpoint event budgets (tortie_evbud_v1)
 * and decoding ring-buffer events, for metrics, logs and tests. Counters are summed over CPUs; keys are (ifindex, direction, reason).
 */
import type { BpfMap } from '../native';
import { EV_DENY, EV_LOG, EV_PREFILTER, cntKeyCodec, cntValueCodec, evbudCodec, eventCodec, type EventRecord } from './codecs';
import { dropReasonLabel } from './drop-reasons';

export interface CounterRow { ifindex: number; dir: number; reason: number; packets: bigint; bytes: bigint }

export function readCounters(cnt: BpfMap): CounterRow[] {
  const { keys, values } = cnt.entries();
  const rows: CounterRow[] = [];
  for (let i = 0; i < keys.length; i++) {
    const k = cntKeyCodec.decode(keys[i]);
    let packets = 0n, bytes = 0n;
    for (const part of cnt.splitPerCpu(values[i])) {
      const v = cntValueCodec.decode(part);
      packets += v.packets;
      bytes += v.bytes;
    }
    rows.push({ ifindex: k.ifindex, dir: k.dir, reason: k.reason, packets, bytes });
  }
  return rows;
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
