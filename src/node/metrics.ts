/**
 * Prometheus metrics of the agent (prom-client, one registry per agent so tests can run several).
 * Names follow Felix's where one exists (felix_* → tortie_*).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NatStatus } from '../dataplane/bpf/nat';
import type { CtStatus } from '../dataplane/bpf/conntrack';

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
    name: 'tortie_nat_mappings', help: 'Live NAT-outgoing mappings (flows)', registers: [this.registry],
  });
  readonly natCapacity = new Gauge({
    name: 'tortie_nat_table_capacity', help: 'NAT table size in entries (two per flow); a full table refuses new flows', registers: [this.registry],
  });
  readonly natQuota = new Gauge({
    name: 'tortie_nat_workload_quota', help: 'NAT mappings (flows) one workload address may hold (0 = no quota)', registers: [this.registry],
  });
  readonly natWorkloadsAtQuota = new Gauge({
    name: 'tortie_nat_workloads_at_quota', help: 'Workload addresses holding their whole NAT quota (new flows refused: tortie_dropped_packets{reason="nat_quota"})', registers: [this.registry],
  });
  readonly natMaxWorkloadFlows = new Gauge({
    name: 'tortie_nat_workload_mappings_max', help: 'Largest number of NAT mappings held by one workload address', registers: [this.registry],
  });
  readonly natExpired = new Counter({
    name: 'tortie_nat_expired_total', help: 'NAT mappings deleted by the sweep after their flow ended (live mappings are never evicted)', registers: [this.registry],
  });
  private natExpiredSeen = 0;
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

  readonly datastoreReconnects = new Counter({
    name: 'tortie_datastore_reconnects_total', help: 'Times the datastore connection was lost and resumed', registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: 'tortie_resyncs_total', help: 'Full resyncs with the datastore (start, compaction)', registers: [this.registry],
  });
  readonly inSync = new Gauge({
    name: 'tortie_in_sync', help: '1 once the initial datastore snapshot has been applied to the kernel', registers: [this.registry],
  });

  /** Sets the NAT metrics from a status read (the expired counter follows the running total). */
  recordNat(s: NatStatus): void {
    this.natFlows.set(s.flows);
    this.natCapacity.set(s.capacity);
    this.natQuota.set(s.quota);
    this.natWorkloadsAtQuota.set(s.workloadsAtQuota);
    this.natMaxWorkloadFlows.set(s.maxWorkloadFlows);
    if (s.expiredTotal > this.natExpiredSeen) this.natExpired.inc(s.expiredTotal - this.natExpiredSeen);
    this.natExpiredSeen = s.expiredTotal;
    this.mapEntries.set({ map: 'nat4' }, s.entries);
    this.mapCapacity.set({ map: 'nat4' }, s.capacity);
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

  constructor(withDefaults = true) {
    if (withDefaults) collectDefaultMetrics({ register: this.registry, prefix: 'tortie_node_' });
  }
}
