/**
 * src/dataplane/bpf — the tortie eBPF datapath as the agent sees it.
 *
 * Contract:
 *   - loader: loadWep / loadPrefilter open bpf/out objects through the native addon, set the
 *     load-time constants (conntrack timeouts and size, events), pin maps by name under a
 *     bpffs root so objects and restarts share state;
 *   - encoding (encode.ts, codecs.ts): the compiler's CompiledState/CalcDelta → map entries,
 *     layouts checked against BTF; drop reasons mirrored from bpf/shared/drop.h;
 *   - PolicyDataplane / EndpointPolicyWriter: atomic per-endpoint updates (complete new
 *     tables, one endpoint-map flip, then deletion of the old ones);
 *   - conntrack housekeeping, counters, flow events (observe.ts);
 *   - packet.ts: a packet builder for prog-test-run tests and benchmarks.
 *
 *   CompiledState ──encode──> tables (proj/spc/pol/tbl) ──acquire──> tortie_ep_v1 flip ──> release old
 *        classes ──────────> tortie_cls4_v1           prefilter ──> tortie_pf4_v1
 */
export { loadWep, loadPrefilter, mapOps, ctMapOps, defaultObjectDir, DEFAULT_PIN_ROOT } from './loader';
export type { LoadOptions, WepDatapath, PrefilterDatapath } from './loader';
export { PolicyDataplane } from './policy-sync';
export type { PolicyDataplaneMaps } from './policy-sync';
export { EndpointPolicyWriter, TableRegistry, ApplyError } from './apply';
export type { MapOps, PolicyMaps, EndpointPolicy } from './apply';
export { encodeTable, encodeClassPrefix, encodePrefilter, portRangeToPrefixes, cidr4ForMap, EncodeError } from './encode';
export type { Entry, EncodedTable } from './encode';
export { sweepConntrack, defaultCtMaxEntries, CALICO_CT_TIMEOUTS, ctTimeoutConstants } from './conntrack';
export type { CtTimeouts, SweepResult, CtMapOps } from './conntrack';
export { readCounters, counterPackets, decodeEvent } from './counters';
export type { CounterRow, FlowEvent } from './counters';
export { ConntrackSweeper, FlowEventStream, datapathStats } from './observe';
export type { Occupancy, DatapathStats, FlowLogRecord } from './observe';
export { DropReason, Dir, dropReasonLabel } from './drop-reasons';
export * as codecs from './codecs';
