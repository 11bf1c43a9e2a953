// Loads the real workload programs under a unique bpffs pin root and runs packets through them
// with BPF_PROG_TEST_RUN. Test runs happen in this process's namespace with skb->ifindex = 1
// (the kernel's default device for test runs), so the endpoint under test is keyed by ifindex 1.
// Everything pinned is removed by close().
import { pinRoot, removePinRoot } from './pins';
import { loadWep, type LoadOptions, type WepDatapath } from '../dataplane/bpf/loader';
import { EndpointPolicyWriter } from '../dataplane/bpf/apply';
import { readCounters, type CounterRow } from '../dataplane/bpf/counters';
import { encodeClassPrefix } from '../dataplane/bpf/encode';
import { Dir } from '../dataplane/bpf/drop-reasons';
import { RingBuffer } from '../dataplane/native';
import { decodeEvent, type FlowEvent } from '../dataplane/bpf/counters';
import type { VerdictTable } from '../calc/types';

export const TEST_IFINDEX = 1;
export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;

/** A test's pin root: the testbed's scheme (src/testbed/pins.ts) under `tortie-test-<label>-…`. */
export function uniquePinRoot(label: string): string {
  return pinRoot(`test-${label}`);
}

export { removePinRoot };

export interface RunResult { retval: number; pass: boolean; reason: number }

export class WepHarness {
  readonly writer: EndpointPolicyWriter;
  private events: FlowEvent[] = [];
  private rb?: RingBuffer;

  private constructor(readonly dp: WepDatapath, readonly pinRoot: string) {
    this.writer = new EndpointPolicyWriter(dp.policyMaps);
  }

  static async create(label: string, opts: LoadOptions = {}): Promise<WepHarness> {
    const pinRoot = uniquePinRoot(label);
    try {
      // Accept unless a test asks: BPF_PROG_TEST_RUN runs on lo of the test process's own
      // namespace, where bpf_fib_lookup answers "not forwarded" (local) or "forwarding disabled"
      // for any destination, so Drop would refuse every new flow from the workload as host-bound.
      // The kernel path unless a test asks: that namespace's fib is not a node's, and an
      // interface of it whose ifindex is also a test endpoint's would be taken for a local
      // workload by host routing (lib/host_route.h).
      const dp = await loadWep({ ctMaxEntries: 65536, endpointToHostAction: 'Accept', hostRouting: 'off', ...opts, pinRoot });
      return new WepHarness(dp, pinRoot);
    } catch (e) {
      removePinRoot(pinRoot);
      throw e;
    }
  }

  setClasses(prefixes: [string, number][]): void {
    for (const [cidr, classId] of prefixes) {
      const v6 = cidr.includes(':');
      const e = encodeClassPrefix({ family: v6 ? 6 : 4, cidr, classId })!;
      (v6 ? this.dp.maps.cls6! : this.dp.maps.cls4!).update(e.key, e.value);
    }
  }

  setEndpoint(ips: string[], ingress: VerdictTable, egress: VerdictTable, id = 7) {
    return this.writer.applyEndpointPolicy({ ifindex: TEST_IFINDEX, id, ipNetworks: ips, tables: { ingress, egress } });
  }

  counters(): CounterRow[] { return readCounters(this.dp.maps.cnt!, this.dp.maps); }

  /** Runs one packet; `reason` is the counter slot that moved (0 = forwarded). */
  run(hook: 'from' | 'to', pkt: Buffer): RunResult {
    const dir = hook === 'from' ? Dir.EGRESS : Dir.INGRESS;
    const before = this.counters().filter((r) => r.ifindex === TEST_IFINDEX && r.dir === dir);
    const prog = hook === 'from' ? this.dp.fromWep : this.dp.toWep;
    const r = prog.testRun(pkt);
    const after = this.counters().filter((r) => r.ifindex === TEST_IFINDEX && r.dir === dir);
    const moved = after.filter((a) => a.packets !== (before.find((b) => b.reason === a.reason)?.packets ?? 0n));
    if (moved.length !== 1) throw new Error(`expected one counter to move, got ${moved.length}`);
    return { retval: r.retval, pass: r.retval === TC_ACT_OK, reason: moved[0].reason };
  }

  startEvents(): void {
    this.rb = RingBuffer.open(this.dp.maps.events!, (rec) => { this.events.push(decodeEvent(rec)); });
  }

  /**
   * Events taken from now until `done` holds for all taken so far (polled every 10 ms; at most
   * `timeoutMs`, then what arrived). The ring is FIFO: once the events of the last packet sent
   * are in, every earlier one is too — waiting on them instead of a fixed delay is exact under load.
   */
  async eventsUntil(done: (ev: FlowEvent[]) => boolean, timeoutMs = 10_000): Promise<FlowEvent[]> {
    const end = Date.now() + timeoutMs;
    while (!done(this.events) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    const e = this.events;
    this.events = [];
    return e;
  }

  clearConntrack(): void {
    for (const ct of [this.dp.maps.ct4!, this.dp.maps.ct6!]) {
      const keys = ct.keys();
      for (const k of keys) ct.tryDelete(k);
    }
  }

  close(): void {
    this.rb?.close();
    this.dp.close();
    removePinRoot(this.pinRoot);
  }
}

export { testHostRouting } from './modes';
