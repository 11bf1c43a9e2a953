/**
 * Agent-side observability of the datapath:
 *   - ConntrackSweeper: runs sweepConntrack every `intervalMs` (default 10 s) off the packet
 *     path, keeps the last occupancy (live entries / capacity) for metrics;
 *   - datapathStats(): drops per reason (summed over CPUs and interfaces), forwarded packets,
 *     and per-map entry counts, ready for the node's gauges (tortie_dropped_packets, ...);
 *   - FlowEventStream: ring-buffer records → FlowEvent with the compiler's RuleInfo attached
 *     (tier/policy/rule for flow logs), delivered to a callback.
 * Errors in a periodic sweep are handed to `onError` and never stop the timer.
 */
import type { BpfMap } from '../native';
import { RingBuffer } from '../native';
import type { RuleInfo } from '../../calc/types';
import { sweepConntrack, type CtMapOps, type CtTimeouts, type SweepResult } from './conntrack';
import { decodeEvent, readCounters, type FlowEvent } from './counters';
import { dropReasonLabel } from './drop-reasons';

export interface Occupancy { live: number; capacity: number; ratio: number; expiredLastSweep: number; sweptAtMs: number }

export class ConntrackSweeper {
  private timer?: NodeJS.Timeout;
  private last?: Occupancy;

  constructor(
    private readonly ct: CtMapOps,
    private readonly capacity: number,
    private readonly timeouts: CtTimeouts,
    private readonly opts: { intervalMs?: number; onError?: (e: unknown) => void; onSweep?: (r: SweepResult) => void } = {},
  ) {}

  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => { try { this.sweepNow(); } catch (e) { this.opts.onError?.(e); } }, this.opts.intervalMs ?? 10_000);
    this.timer.unref();
    return this;
  }

  stop(): void { if (this.timer) clearInterval(this.timer); this.timer = undefined; }

  sweepNow(): SweepResult {
    const r = sweepConntrack(this.ct, this.timeouts);
    this.last = { live: r.live, capacity: this.capacity, ratio: r.live / this.capacity, expiredLastSweep: r.expired, sweptAtMs: Date.now() };
    this.opts.onSweep?.(r);
    return r;
  }

  occupancy(): Occupancy | undefined { return this.last; }
}

export interface DatapathStats {
  /** Dropped packets per reason label (`policy_deny`, `spoofed_src`, ...). */
  drops: Record<string, number>;
  forwarded: number;
  /** Entries per map name (iterated; call at metrics-scrape cadence, not per packet). */
  mapEntries: Record<string, { entries: number; capacity: number }>;
}

export function datapathStats(cnt: BpfMap, maps: BpfMap[] = []): DatapathStats {
  const drops: Record<string, number> = {};
  let forwarded = 0;
  for (const r of readCounters(cnt)) {
    if (r.reason === 0) forwarded += Number(r.packets);
    else drops[dropReasonLabel(r.reason)] = (drops[dropReasonLabel(r.reason)] ?? 0) + Number(r.packets);
  }
  const mapEntries: DatapathStats['mapEntries'] = {};
  for (const m of maps) mapEntries[m.info.name] = { entries: m.keys().length, capacity: m.info.maxEntries };
  return { drops, forwarded, mapEntries };
}

export interface FlowLogRecord extends FlowEvent { rule?: RuleInfo }

export class FlowEventStream {
  private readonly rb: RingBuffer;
  private rules = new Map<number, RuleInfo>();

  constructor(events: BpfMap, onEvent: (e: FlowLogRecord) => void) {
    this.rb = RingBuffer.open(events, (rec) => {
      const e: FlowLogRecord = decodeEvent(rec);
      const rule = this.rules.get(e.ruleId);
      if (rule) e.rule = rule;
      onEvent(e);
    });
  }

  /** The compiler's rule table (CompiledState.rules / CalcDelta.rulesUpserted). */
  setRules(rules: Iterable<RuleInfo>): void { this.rules = new Map([...rules].map((r) => [r.id, r])); }
  upsertRules(rules: Iterable<RuleInfo>): void { for (const r of rules) this.rules.set(r.id, r); }
  removeRules(ids: Iterable<number>): void { for (const id of ids) this.rules.delete(id); }

  close(): void { this.rb.close(); }
}
