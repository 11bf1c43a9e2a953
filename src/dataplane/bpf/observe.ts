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
import { decodeEvent, readCounters, type EpCounterMaps, type FlowEvent } from './counters';
import { dropReasonLabel } from './drop-reasons';

export interface Occupancy { live: number; capacity: number; ratio: number; expiredLastSweep: number; sweptAtMs: number }

export class ConntrackSweeper {
  private timer?: NodeJS.Timeout;
  private last?: Occupancy;

  constructor(
    private readonly ct: CtMapOps,
    private readonly capacity: number,
    private readonly timeouts: CtTimeouts,
    private readonly opts: { intervalMs?: number; onError?: (e: unknown) => void; onSweep?: (r: SweepResult) => void; quota?: BpfMap } = {},
  ) {}

  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => { try { this.sweepNow(); } catch (e) { this.opts.onError?.(e); } }, this.opts.intervalMs ?? 10_000);
    this.timer.unref();
    return this;
  }

  stop(): void { if (this.timer) clearInterval(this.timer); this.timer = undefined; }

  sweepNow(): SweepResult {
    const r = sweepConntrack(this.ct, this.timeouts, process.hrtime.bigint(), this.opts.quota);
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

export function datapathStats(cnt: BpfMap, maps: BpfMap[] = [], fast?: EpCounterMaps): DatapathStats {
  const drops: Record<string, number> = {};
  let forwarded = 0;
  for (const r of readCounters(cnt, fast)) {
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

/**
 * Flow-log sampling for the agent (docs/security.md, "Event budgets"): a token bucket over log lines. `admit`
 * says whether one more record may be written individually (at most `perSec` per second, bursts
 * of `burst`); a record that may not is counted under its `key` (kind, reason, endpoint) and
 * reported in the next summary instead. Logging is synchronous, so this bounds the time the
 * agent's one thread spends on flow logs however many events arrive.
 */
export interface FlowLogLimits { perSec: number; burst: number }

export const DEFAULT_FLOW_LOG_LIMITS: FlowLogLimits = { perSec: 20, burst: 50 };

export class FlowLogLimiter {
  private tokens: number;
  private last: number;
  private pending = new Map<string, number>();
  /** Totals since start: records seen, written individually, only counted. */
  readonly totals = { received: 0, logged: 0, aggregated: 0 };

  constructor(private readonly limits: FlowLogLimits = DEFAULT_FLOW_LOG_LIMITS, private readonly now: () => number = () => performance.now()) {
    if (!(limits.perSec >= 0) || !(limits.burst >= 1)) throw new RangeError(`flow log limits: perSec ${limits.perSec} must be ≥ 0 and burst ${limits.burst} ≥ 1`);
    this.tokens = limits.burst;
    this.last = now();
  }

  admit(key: string): boolean {
    this.totals.received++;
    const t = this.now();
    this.tokens = Math.min(this.limits.burst, this.tokens + ((t - this.last) / 1000) * this.limits.perSec);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.totals.logged++;
      return true;
    }
    this.totals.aggregated++;
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
    return false;
  }

  /** Counts not logged individually since the last call, largest first (at most `top` keys). */
  takeSummary(top = 10): { total: number; byKey: [string, number][] } | undefined {
    if (this.pending.size === 0) return undefined;
    const all = [...this.pending].sort((a, b) => b[1] - a[1]);
    this.pending = new Map();
    return { total: all.reduce((s, [, n]) => s + n, 0), byKey: all.slice(0, top) };
  }
}

/**
 * Totals of the kernel's per-endpoint event budgets (tortie_evbud_v1) that only grow: an entry
 * the LRU evicted and recreated restarts at zero, so each read adds per-interface increases
 * (a decrease means a new entry: its whole value is new).
 */
export class EventBudgetTotals {
  private lastRead = new Map<number, { suppressed: bigint; lost: bigint; emitted: bigint }>();
  readonly totals = { emitted: 0n, suppressed: 0n, lost: 0n };

  /** Adds a read (rows per ifindex); returns the increases per ifindex in this read. */
  update(rows: readonly { ifindex: number; emitted: bigint; suppressed: bigint; lost: bigint }[]): Map<number, { suppressed: bigint; lost: bigint }> {
    const inc = new Map<number, { suppressed: bigint; lost: bigint }>();
    const next = new Map<number, { suppressed: bigint; lost: bigint; emitted: bigint }>();
    const d = (now: bigint, was: bigint | undefined) => (was === undefined || now < was ? now : now - was);
    for (const r of rows) {
      const was = this.lastRead.get(r.ifindex);
      const s = d(r.suppressed, was?.suppressed);
      const l = d(r.lost, was?.lost);
      this.totals.emitted += d(r.emitted, was?.emitted);
      this.totals.suppressed += s;
      this.totals.lost += l;
      if (s > 0n || l > 0n) inc.set(r.ifindex, { suppressed: s, lost: l });
      next.set(r.ifindex, { suppressed: r.suppressed, lost: r.lost, emitted: r.emitted });
    }
    this.lastRead = next;
    return inc;
  }
}
