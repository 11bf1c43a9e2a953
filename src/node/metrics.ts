/**
 * Prometheus metrics of the agent (prom-client, one registry per agent so tests can run several).
 * Names follow Felix's where one exists (felix_* → tortie_*).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
  readonly datastoreReconnects = new Counter({
    name: 'tortie_datastore_reconnects_total', help: 'Times the datastore connection was lost and resumed', registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: 'tortie_resyncs_total', help: 'Full resyncs with the datastore (start, compaction)', registers: [this.registry],
  });
  readonly inSync = new Gauge({
    name: 'tortie_in_sync', help: '1 once the initial datastore snapshot has been applied to the kernel', registers: [this.registry],
  });

  constructor(withDefaults = true) {
    if (withDefaults) collectDefaultMetrics({ register: this.registry, prefix: 'tortie_node_' });
  }
}
