/**
 * BPF host routing from workloads (bpf/lib/host_route.h): the modes the agent accepts, what the
 * loader chose, the names of its counters (loader.ts readHostRouteStats). No addon import here,
 * so configuration code can validate the mode.
 *
 * Default `auto`: a packet between two workloads of one node skips the destination cali*'s tc
 * egress and is judged there by the source's program instead, and packets leaving through the
 * uplink skip the kernel's forwarding, where the kernel verifies bpf_redirect_peer and
 * bpf_redirect_neigh (else the kernel path loads). `off` keeps the kernel's forwarding path. The
 * whole test set passed with it on, and it is faster than the kernel path on every same-node
 * figure (docs/benchmarks.md, BPF host routing).
 */

/** `auto`: BPF host routing where the kernel has its helpers; `off`: the kernel's forwarding path. */
export type HostRoutingMode = 'auto' | 'off';
export const HOST_ROUTING_MODES: readonly HostRoutingMode[] = ['auto', 'off'];
export const DEFAULT_HOST_ROUTING: HostRoutingMode = 'auto';

/** What loadWep chose, and why (tortie-node doctor and the agent's log print it). */
export interface HostRoutingState {
  mode: HostRoutingMode;
  /** true: tortie_from_wep routes itself (bpf_redirect_peer into local workloads, redirects to the uplink). */
  active: boolean;
  reason: string;
}

/** enum tortie_hr_stat (bpf/lib/host_route.h), in index order; IPv6's follow at HOST_ROUTE_V6 (bpf/lib/host_route6.h). */
export const HOST_ROUTE_STATS = ['peer', 'declined', 'uplink', 'uplinkNeigh', 'peerFib'] as const;
/** TORTIE_HR_V6: where IPv6's counters start in tortie_hrst_v2. */
export const HOST_ROUTE_V6 = 5;
export type HostRouteFamily = 4 | 6;
export type HostRouteStats = Record<typeof HOST_ROUTE_STATS[number], bigint>;
/** Every counter at zero (the kernel path: nothing host-routed). */
export const NO_HOST_ROUTE_STATS: Readonly<HostRouteStats> = Object.freeze(
  Object.fromEntries(HOST_ROUTE_STATS.map((k) => [k, 0n])) as HostRouteStats);
