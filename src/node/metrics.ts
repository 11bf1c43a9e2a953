/**
 * Prometheus metrics of the agent (prom-client, one registry per agent so tests can run several).
 *
 * Two families side by side in one registry:
 * - tortie's own names (`tortie_*`), the project's figures;
 * - Felix's names (`felix_*`, FELIX_NAMES below, the one place they are listed) for the figures
 *   tortie has, with Felix's types and meanings, so Calico dashboards and alerts keep working.
 *   Felix metrics tortie has no figure for are not served (never a constant pretending).
 *
 * Extending: other parts add metrics with `gauge()`/`counter()` (idempotent by name, so two
 * managers asking for the same metric share it); a Felix equivalent goes into FELIX_NAMES.
 */
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, Summary, collectDefaultMetrics } from 'prom-client';
import type { NatStatus } from '../dataplane/bpf/nat';
import type { CtStatus } from '../dataplane/bpf/conntrack';
import { HOST_ROUTE_STATS, type HostRouteStats } from '../dataplane/bpf/host-routing';

/** Felix's metric names tortie serves, with Felix's type and help (felix/… in projectcalico/calico). */
export const FELIX_NAMES = {
  activeLocalEndpoints: { name: 'felix_active_local_endpoints', type: 'gauge', help: 'Number of active endpoints on this host.' },
  activeLocalPolicies: { name: 'felix_active_local_policies', type: 'gauge', help: 'Number of active policies on this host.' },
  activeLocalSelectors: { name: 'felix_active_local_selectors', type: 'gauge', help: 'Number of active selectors on this host.' },
  clusterNumHosts: { name: 'felix_cluster_num_hosts', type: 'gauge', help: 'Total number of Calico hosts in the cluster.' },
  clusterNumWorkloadEndpoints: { name: 'felix_cluster_num_workload_endpoints', type: 'gauge', help: 'Total number of workload endpoints cluster-wide.' },
  clusterNumPolicies: { name: 'felix_cluster_num_policies', type: 'gauge', help: 'Total number of policies in the cluster.' },
  clusterNumProfiles: { name: 'felix_cluster_num_profiles', type: 'gauge', help: 'Total number of profiles in the cluster.' },
  intDataplaneApplyTime: { name: 'felix_int_dataplane_apply_time_seconds', type: 'summary', help: 'Time in seconds that it took to apply a dataplane update.' },
  intDataplaneFailures: { name: 'felix_int_dataplane_failures', type: 'counter', help: 'Number of times dataplane updates failed and will be retried.' },
  resyncsStarted: { name: 'felix_resyncs_started', type: 'counter', help: 'Number of times Felix has started resyncing with the datastore.' },
  calcGraphUpdateTime: { name: 'felix_calc_graph_update_time_seconds', type: 'summary', help: 'Seconds to update calculation graph for each datastore OnUpdate call.' },
  calcGraphUpdatesProcessed: { name: 'felix_calc_graph_updates_processed', type: 'counter', help: 'Number of datastore updates processed by the calculation graph.' },
  bpfConntrackSweeps: { name: 'felix_bpf_conntrack_sweeps', type: 'counter', help: 'Number of contrack table sweeps made so far' },
  bpfConntrackUsed: { name: 'felix_bpf_conntrack_used', type: 'gauge', help: 'Number of used entries visited during a conntrack table sweep' },
  bpfConntrackCleaned: { name: 'felix_bpf_conntrack_cleaned', type: 'gauge', help: 'Number of entries cleaned during a conntrack table sweep' },
  bpfConntrackExpired: { name: 'felix_bpf_conntrack_expired', type: 'gauge', help: 'Number of entries cleaned during a conntrack table sweep due to expiration' },
} as const;

/** Calculation-graph figures behind felix_active_local_* and felix_cluster_* (CalcGraph.stats()). */
export interface CalcStats {
  localEndpoints: number;
  activeLocalPolicies: number;
  activeSelectors: number;
  hosts: number;
  workloadEndpoints: number;
  policies: number;
  profiles: number;
}

const SUMMARY_PERCENTILES = [0.5, 0.9, 0.99];

/**
 * The agent's start-up phases, in the order they end (a phase that overlaps others, like the
 * BPF programs loading beside the datastore list, ends where it ends):
 * - `http_up`: health / metrics listeners answering (store opened, node registered);
 * - `listed`: the datastore's first list received (not yet decoded or fed);
 * - `in_sync`: the whole list fed into the calculation graph;
 * - `dataplane_open`: BPF programs loaded and attached (runs beside the list);
 * - `compiled`: the calculation graph's first flush and its snapshot;
 * - `kernel_written`: that snapshot reconciled into the kernel (policy maps, endpoints, routes): ready;
 * - `heap_compacted`: the compaction after the first sync (src/node/heap.ts) done.
 */
export const STARTUP_PHASES = ['http_up', 'listed', 'in_sync', 'dataplane_open', 'compiled', 'kernel_written', 'heap_compacted'] as const;
export type StartupPhase = (typeof STARTUP_PHASES)[number];

export class NodeMetrics {
  readonly registry = new Registry();
  readonly policyProgrammingSeconds = new Histogram({
    name: 'tortie_policy_programming_seconds',
    help: 'Time from a datastore change being received to the kernel maps reflecting it',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly applySeconds = new Histogram({
    name: 'tortie_dataplane_apply_seconds',
    help: 'Duration of one dataplane apply (all managers)',
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly applyFailures = new Counter({
    name: 'tortie_dataplane_apply_failures_total', help: 'Dataplane applies that failed and will be retried',
    labelNames: ['manager'] as const, registers: [this.registry],
  });
  /** The heap compaction after the initial sync (src/node/heap.ts): its duration once done, 0 before. */
  readonly heapCompactSeconds = new Gauge({
    name: 'tortie_node_heap_compact_seconds', help: 'Duration of the heap compaction after the initial sync (0 until it ran)',
    registers: [this.registry],
  });
  /**
   * When each start-up phase ended, recorded by the agent itself (a scrape can come late: the
   * first flush holds the event loop), as wall time and as the process's CPU time (user + system,
   * all threads) since the process started. Absent until the phase ended.
   */
  readonly startupPhaseSeconds = new Gauge({
    name: 'tortie_node_startup_phase_seconds', help: 'Wall time from process start to the end of each start-up phase (absent until it ended)',
    labelNames: ['phase'] as const, registers: [this.registry],
  });
  readonly startupPhaseCpuSeconds = new Gauge({
    name: 'tortie_node_startup_phase_cpu_seconds', help: 'Process CPU time (user + system, all threads) from process start to the end of each start-up phase',
    labelNames: ['phase'] as const, registers: [this.registry],
  });
  readonly startupPhaseJsCpuSeconds = new Gauge({
    name: 'tortie_node_startup_phase_js_thread_cpu_seconds', help: "CPU time of the agent's JavaScript thread alone (user + system, /proc) from process start to the end of each start-up phase (absent without /proc)",
    labelNames: ['phase'] as const, registers: [this.registry],
  });
  private readonly phasesSeen = new Set<StartupPhase>();
  readonly endpoints = new Gauge({
    name: 'tortie_local_endpoints', help: 'Workload endpoints programmed on this node', registers: [this.registry],
  });
  readonly mapEntries = new Gauge({
    name: 'tortie_bpf_map_entries', help: 'Entries in a tortie BPF map', labelNames: ['map'] as const, registers: [this.registry],
  });
  readonly mapCapacity = new Gauge({
    name: 'tortie_bpf_map_capacity', help: 'max_entries of a tortie BPF map', labelNames: ['map'] as const, registers: [this.registry],
  });
  readonly conntrackEntries = new Gauge({
    name: 'tortie_conntrack_entries', help: 'Live BPF conntrack entries', registers: [this.registry],
  });
  readonly drops = new Gauge({
    name: 'tortie_dropped_packets', help: 'Packets dropped by the datapath, by reason (sum over CPUs and endpoints)',
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  readonly flowEvents = new Gauge({
    name: 'tortie_flow_events',
    help: 'Flow events (denied flows, Log hits) by outcome, totals since start: emitted by the datapath, suppressed there (an endpoint over its event budget), lost (ring full), received by the agent, logged individually, aggregated (over the flow-log rate: summarised)',
    labelNames: ['outcome'] as const, registers: [this.registry],
  });
  readonly natFlows = new Gauge({
    name: 'tortie_nat_mappings', help: 'Live NAT-outgoing mappings (flows), by address family ("4": IPv4 NAT, "6": NAT66)', labelNames: ['family'] as const, registers: [this.registry],
  });
  readonly natCapacity = new Gauge({
    name: 'tortie_nat_table_capacity', help: 'NAT table size in entries (two per flow); a full table refuses new flows', labelNames: ['family'] as const, registers: [this.registry],
  });
  readonly natQuota = new Gauge({
    name: 'tortie_nat_workload_quota', help: 'NAT mappings (flows) one workload address may hold (0 = no quota)', labelNames: ['family'] as const, registers: [this.registry],
  });
  readonly natWorkloadsAtQuota = new Gauge({
    name: 'tortie_nat_workloads_at_quota', help: 'Workload addresses holding their whole NAT quota (new flows refused: tortie_dropped_packets{reason="nat_quota"})', labelNames: ['family'] as const, registers: [this.registry],
  });
  readonly natMaxWorkloadFlows = new Gauge({
    name: 'tortie_nat_workload_mappings_max', help: 'Largest number of NAT mappings held by one workload address', labelNames: ['family'] as const, registers: [this.registry],
  });
  readonly natExpired = new Counter({
    name: 'tortie_nat_expired_total', help: 'NAT mappings deleted by the sweep after their flow ended (live mappings are never evicted)', labelNames: ['family'] as const, registers: [this.registry],
  });
  private readonly natExpiredSeen = { 4: 0, 6: 0 };
  readonly ctCapacity = new Gauge({
    name: 'tortie_conntrack_capacity', help: 'Conntrack table size; a full table refuses new flows', registers: [this.registry],
  });
  readonly ctQuota = new Gauge({
    name: 'tortie_conntrack_workload_quota', help: 'Conntrack entries one workload address may own (0 = no quota)', registers: [this.registry],
  });
  readonly ctWorkloadsAtQuota = new Gauge({
    name: 'tortie_conntrack_workloads_at_quota', help: 'Workload addresses owning their whole conntrack quota (new flows refused: tortie_dropped_packets{reason="ct_quota"})', registers: [this.registry],
  });
  readonly ctMaxWorkloadEntries = new Gauge({
    name: 'tortie_conntrack_workload_entries_max', help: 'Largest number of conntrack entries owned by one workload address', registers: [this.registry],
  });
  readonly ctExpired = new Counter({
    name: 'tortie_conntrack_expired_total', help: 'Conntrack entries deleted by the sweep after their flow ended (live entries are never evicted)', registers: [this.registry],
  });
  private ctExpiredSeen = 0;

  readonly hostRouting = new Gauge({
    name: 'tortie_bpf_host_routing', help: '1 when BPF host routing is on (bpf_redirect_peer/neigh verified), 0 on the kernel forwarding path', registers: [this.registry],
  });
  readonly hostRouted = new Gauge({
    name: 'tortie_host_routed_packets',
    help: 'Packets BPF host routing handled since load, by outcome: peer (redirected into a local workload), peer_fib (of those, found by a fib lookup rather than by address), uplink (to the uplink, next hop known), uplink_neigh (to the uplink via bpf_redirect_neigh), declined (left to the kernel path); family 4 or 6',
    labelNames: ['outcome', 'family'] as const, registers: [this.registry],
  });

  /** Sets the host-routing metrics from a status read. */
  recordHostRouting(h: { active: boolean; stats: HostRouteStats; stats6: HostRouteStats }): void {
    this.hostRouting.set(h.active ? 1 : 0);
    // Label values in Prometheus' snake case: uplinkNeigh -> uplink_neigh.
    for (const [family, stats] of [['4', h.stats], ['6', h.stats6]] as const) {
      for (const k of HOST_ROUTE_STATS) this.hostRouted.set({ outcome: k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), family }, Number(stats[k]));
    }
  }

  readonly datastoreReconnects = new Counter({
    name: 'tortie_datastore_reconnects_total', help: 'Times the datastore connection was lost and resumed', registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: 'tortie_resyncs_total', help: 'Full resyncs with the datastore (start, compaction)', registers: [this.registry],
  });
  readonly inSync = new Gauge({
    name: 'tortie_in_sync', help: '1 once the initial datastore snapshot has been applied to the kernel', registers: [this.registry],
  });

  /** Sets one family's NAT metrics from a status read (label family="4": tortie_nat4_v2, "6":
   *  NAT66's tortie_nat6_v1); the expired counter follows that family's running total. */
  recordNat(s: NatStatus, family: 4 | 6 = 4): void {
    const l = { family: String(family) };
    this.natFlows.set(l, s.flows);
    this.natCapacity.set(l, s.capacity);
    this.natQuota.set(l, s.quota);
    this.natWorkloadsAtQuota.set(l, s.workloadsAtQuota);
    this.natMaxWorkloadFlows.set(l, s.maxWorkloadFlows);
    const seen = this.natExpiredSeen[family];
    if (s.expiredTotal > seen) this.natExpired.inc(l, s.expiredTotal - seen);
    this.natExpiredSeen[family] = s.expiredTotal;
    this.mapEntries.set({ map: `nat${family}` }, s.entries);
    this.mapCapacity.set({ map: `nat${family}` }, s.capacity);
  }

  /** Sets the conntrack table metrics from a status read. */
  recordConntrack(s: CtStatus): void {
    this.conntrackEntries.set(s.entries);
    this.ctCapacity.set(s.capacity);
    this.ctQuota.set(s.quota);
    this.ctWorkloadsAtQuota.set(s.workloadsAtQuota);
    this.ctMaxWorkloadEntries.set(s.maxWorkloadEntries);
    if (s.expiredTotal > this.ctExpiredSeen) this.ctExpired.inc(s.expiredTotal - this.ctExpiredSeen);
    this.ctExpiredSeen = s.expiredTotal;
    this.mapCapacity.set({ map: 'ct4' }, s.capacity);
  }

  // ------------------------------------------------------------ Felix's names (FELIX_NAMES)
  readonly felix = {
    activeLocalEndpoints: this.gauge(FELIX_NAMES.activeLocalEndpoints),
    activeLocalPolicies: this.gauge(FELIX_NAMES.activeLocalPolicies),
    activeLocalSelectors: this.gauge(FELIX_NAMES.activeLocalSelectors),
    clusterNumHosts: this.gauge(FELIX_NAMES.clusterNumHosts),
    clusterNumWorkloadEndpoints: this.gauge(FELIX_NAMES.clusterNumWorkloadEndpoints),
    clusterNumPolicies: this.gauge(FELIX_NAMES.clusterNumPolicies),
    clusterNumProfiles: this.gauge(FELIX_NAMES.clusterNumProfiles),
    intDataplaneApplyTime: this.summary(FELIX_NAMES.intDataplaneApplyTime),
    intDataplaneFailures: this.counter(FELIX_NAMES.intDataplaneFailures),
    resyncsStarted: this.counter(FELIX_NAMES.resyncsStarted),
    calcGraphUpdateTime: this.summary(FELIX_NAMES.calcGraphUpdateTime),
    calcGraphUpdatesProcessed: this.counter(FELIX_NAMES.calcGraphUpdatesProcessed),
    bpfConntrackSweeps: this.counter(FELIX_NAMES.bpfConntrackSweeps),
    bpfConntrackUsed: this.gauge(FELIX_NAMES.bpfConntrackUsed),
    bpfConntrackCleaned: this.gauge(FELIX_NAMES.bpfConntrackCleaned),
    bpfConntrackExpired: this.gauge(FELIX_NAMES.bpfConntrackExpired),
  };

  constructor(withDefaults = true) {
    if (withDefaults) collectDefaultMetrics({ register: this.registry, prefix: 'tortie_node_' });
  }

  /** A gauge in this registry, created on first use (same name → same metric). */
  gauge<L extends string = string>(o: { name: string; help: string; labelNames?: readonly L[] }): Gauge<L> {
    const have = this.registry.getSingleMetric(o.name);
    if (have) return have as Gauge<L>;
    return new Gauge<L>({ name: o.name, help: o.help, labelNames: o.labelNames ?? [], registers: [this.registry] });
  }

  counter<L extends string = string>(o: { name: string; help: string; labelNames?: readonly L[] }): Counter<L> {
    const have = this.registry.getSingleMetric(o.name);
    if (have) return have as Counter<L>;
    return new Counter<L>({ name: o.name, help: o.help, labelNames: o.labelNames ?? [], registers: [this.registry] });
  }

  summary(o: { name: string; help: string }): Summary {
    const have = this.registry.getSingleMetric(o.name);
    if (have) return have as Summary;
    return new Summary({ name: o.name, help: o.help, percentiles: SUMMARY_PERCENTILES, maxAgeSeconds: 600, ageBuckets: 5, registers: [this.registry] });
  }

  /**
   * Records the end of a start-up phase, the first time only (a later resync is not start-up).
   * Returns the wall and CPU seconds since process start, or undefined if already recorded.
   */
  startupPhase(phase: StartupPhase): { wallS: number; cpuS: number; jsCpuS?: number } | undefined {
    if (this.phasesSeen.has(phase)) return undefined;
    this.phasesSeen.add(phase);
    const wallS = performance.now() / 1000;
    const cpu = process.cpuUsage();
    const cpuS = (cpu.user + cpu.system) / 1e6;
    const jsCpuS = jsThreadCpuSeconds();
    this.startupPhaseSeconds.set({ phase }, wallS);
    this.startupPhaseCpuSeconds.set({ phase }, cpuS);
    if (jsCpuS !== undefined) this.startupPhaseJsCpuSeconds.set({ phase }, jsCpuS);
    return { wallS, cpuS, jsCpuS };
  }

  /** felix_active_local_* and felix_cluster_* from the calculation graph's current figures. */
  setCalcStats(s: CalcStats): void {
    this.felix.activeLocalEndpoints.set(s.localEndpoints);
    this.felix.activeLocalPolicies.set(s.activeLocalPolicies);
    this.felix.activeLocalSelectors.set(s.activeSelectors);
    this.felix.clusterNumHosts.set(s.hosts);
    this.felix.clusterNumWorkloadEndpoints.set(s.workloadEndpoints);
    this.felix.clusterNumPolicies.set(s.policies);
    this.felix.clusterNumProfiles.set(s.profiles);
  }

  /** One conntrack sweep's figures (tortie's and Felix's names). */
  recordConntrackSweep(r: { scanned: number; live: number; expired: number }): void {
    this.conntrackEntries.set(r.live);
    this.felix.bpfConntrackSweeps.inc();
    this.felix.bpfConntrackUsed.set(r.scanned);
    this.felix.bpfConntrackCleaned.set(r.expired);
    this.felix.bpfConntrackExpired.set(r.expired);
  }
}

/**
 * CPU time (user + system) of this process's main thread — the JavaScript thread — from
 * /proc/self/task/<pid>/stat (clock ticks of 10 ms); undefined where that cannot be read. What
 * the process CPU adds to it ran on other threads (libuv workers: BPF loads, map batches; V8's
 * GC helpers).
 */
export function jsThreadCpuSeconds(): number | undefined {
  try {
    const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]); // fields 14 and 15: utime, stime
    return Number.isFinite(ticks) ? ticks / 100 : undefined;
  } catch {
    return undefined;
  }
}
