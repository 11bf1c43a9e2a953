/**
 * Loads the tortie datapath objects through the native addon and exposes their maps through
 * the narrow interfaces the rest of src/dataplane/bpf uses.
 *
 *   loadWep(opts)       bpf/out/tortie_wep.bpf.o: tortie_from_wep / tortie_to_wep (tc on cali*)
 *   loadPrefilter(opts) bpf/out/tortie_xdp.bpf.o: tortie_xdp_prefilter (XDP on the uplink)
 *   loadUplink(opts)    bpf/out/tortie_uplink.bpf.o: tortie_uplink_in / _out (tc on the uplink)
 *   loadHep(opts)       bpf/out/tortie_hep.bpf.o: tortie_hep_in / _out (tc on other host interfaces)
 *
 * Maps are pinned by name under `pinRoot` (default /sys/fs/bpf/tortie); a second load with the
 * same root reuses the pinned maps, so several objects and a restarted agent share one state.
 * Load-time constants: conntrack timeouts (the same object is given to the sweep), events on/off;
 * conntrack size = `ctMaxEntries` (default derived from memory).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BpfMap, BpfObject, isBpfError, type BpfProgram } from '../native';
import { TortieError } from '../../util/errors';
import { CALICO_CT_TIMEOUTS, ctTimeoutConstants, defaultCtMaxEntries, type CtMapOps, type CtTimeouts } from './conntrack';
import { MAP } from './codecs';
import { EpCounterSlots } from './counters';
import { POLICY_MAP_KEYS, SIZED_MAPS, SIZED_MAP_KEYS, type SizedMapKey } from './map-sizes';
import { NET_MAP } from './net-codecs';
import { DEFAULT_NAT_MAX_ENTRIES, DEFAULT_NAT_QUOTA, DEFAULT_NAT_TIMEOUTS, natTimeoutConstants, validateNatTimeouts, type NatTimeouts } from './nat';
import type { MapOps, PolicyMaps } from './apply';
import { DEFAULT_HOST_ROUTING, HOST_ROUTE_STATS, HOST_ROUTE_V6, HOST_ROUTING_MODES, type HostRouteFamily, type HostRouteStats, type HostRoutingMode, type HostRoutingState } from './host-routing';
import { sumPerCpuCounters } from './net-codecs';

export interface LoadOptions {
  /** bpffs directory for the pinned maps. */
  pinRoot?: string;
  /** Directory of the compiled objects (default <project>/bpf/out). */
  objectDir?: string;
  ctMaxEntries?: number;
  /** Conntrack entries one workload address may own (default ctMaxEntries / 8; 0 = no quota). */
  ctQuota?: number;
  ctTimeouts?: CtTimeouts;
  /** Ring-buffer events (default true). */
  events?: boolean;
  /** A denied flow is reported (deny + Log events) at most once per this many seconds (default 1). */
  denyReportIntervalSec?: number;
  /**
   * Per-endpoint event budget of the workload programs (deny + Log events), per CPU: refill
   * rate in events per second (default 50; 0 = no budget) and burst (default 100). Over
   * budget, events are counted per endpoint (tortie_evbud_v1 `suppressed`), not emitted.
   */
  eventBudget?: { perSec: number; burst: number };
  /** max_entries overrides by map key (e.g. `{ pol: 4_000_000 }`); the table maps must hold the
   *  old and the new table of every endpoint switching at the same time. Every object sharing a
   *  map must be given the same size (BpfDataplane passes its own to all of them); the policy
   *  maps default to DEFAULT_POLICY_MAP_SIZES. A pinned map of another size is replaced (see
   *  replaceResizedPins). */
  mapSizes?: Partial<Record<keyof typeof MAP | SizedMapKey, number>>;
  /** tortie_wep only: Felix's defaultEndpointToHostAction (default Drop, as Calico). */
  endpointToHostAction?: EndpointToHostAction;
  /** tortie_wep only: BPF host routing from workloads (bpf/lib/host_route.h). `auto` turns it on
   *  where the kernel verifies bpf_redirect_peer / _neigh, `off` keeps the kernel's path.
   *  Default off (src/dataplane/bpf/host-routing.ts). */
  hostRouting?: HostRoutingMode;
}

export { DEFAULT_HOST_ROUTING, HOST_ROUTING_MODES, type HostRoutingMode, type HostRoutingState } from './host-routing';

/** tortie_hrst_v2 summed over CPUs, for one family (default IPv4): packets redirected into a local
 *  workload (`peer`; `peerFib`: those of them whose destination the fib found, not tortie_epdst_v1),
 *  declined, redirected to the uplink (`uplink`: next hop known; `uplinkNeigh`: bpf_redirect_neigh). */
export function readHostRouteStats(m: BpfMap, family: HostRouteFamily = 4): HostRouteStats {
  if (family === 4) return sumPerCpuCounters(m, HOST_ROUTE_STATS);
  const skip = Array.from({ length: HOST_ROUTE_V6 }, (_, i) => `_${i}`);
  const all = sumPerCpuCounters(m, [...skip, ...HOST_ROUTE_STATS]);
  return Object.fromEntries(HOST_ROUTE_STATS.map((k) => [k, all[k]])) as HostRouteStats;
}

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/tortie';

export const DEFAULT_EVENT_BUDGET = { perSec: 50, burst: 100 } as const;

/** The token bucket's load-time constants (bpf/lib/drop.h ev_budget): ns of credit per event, cap. */
export function eventBudgetConstants(b: { perSec: number; burst: number }): { costNs: bigint; burstNs: bigint } {
  if (!(Number.isFinite(b.perSec) && b.perSec >= 0 && b.perSec <= 1e9)) throw new RangeError(`eventBudget.perSec: ${b.perSec} is not a rate in 0..1e9 events/s`);
  if (!(Number.isInteger(b.burst) && b.burst >= 1 && b.burst <= 1e6)) throw new RangeError(`eventBudget.burst: ${b.burst} is not an integer in 1..1000000`);
  if (b.perSec === 0) return { costNs: 0n, burstNs: 0n };
  const cost = BigInt(Math.max(1, Math.round(1e9 / b.perSec)));
  return { costNs: cost, burstNs: cost * BigInt(b.burst) };
}

export function defaultObjectDir(): string {
  // dist/src/dataplane/bpf → project root is four levels up; src/... (ts-node) three.
  const up = __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../../..' : '../../..';
  return path.resolve(__dirname, up, 'bpf', 'out');
}

const BATCH = 8192;

/** MapOps over a native map: delete ignores a missing key; the batch forms use
 *  BPF_MAP_{UPDATE,DELETE}_BATCH in chunks (a delete batch stops at a missing key, so a failed
 *  chunk is finished key by key). */
export function mapOps(m: BpfMap): MapOps {
  const full = (e: unknown): unknown => (isBpfError(e, 'E2BIG') || isBpfError(e, 'ENOSPC') ? new MapFullError(m, e) : e);
  return {
    lookup: (k) => m.lookup(k),
    update: (k, v) => { try { m.update(k, v); } catch (e) { throw full(e); } },
    delete: (k) => { m.tryDelete(k); },
    updateMany: (entries) => {
      for (let i = 0; i < entries.length; i += BATCH) {
        const chunk = entries.slice(i, i + BATCH);
        try { m.updateBatch(chunk.map((e) => e.key), chunk.map((e) => e.value)); } catch (e) { throw full(e); }
      }
    },
    updatePacked: (p) => {
      for (let i = 0; i < p.count; i += BATCH) {
        const n = Math.min(BATCH, p.count - i);
        const keys = p.keys.subarray(i * p.keySize, (i + n) * p.keySize);
        const values = p.values.subarray(i * p.valueSize, (i + n) * p.valueSize);
        try { m.updateBatchPacked(keys, values, n); } catch (e) { throw full(e); }
      }
    },
    // One syscall per call on a libuv worker: callers pass one table's batch at a time.
    updatePackedAsync: async (p) => {
      if (p.count === 0) return;
      const keys = p.keys.subarray(0, p.count * p.keySize);
      const values = p.values.subarray(0, p.count * p.valueSize);
      try { await m.updateBatchPackedAsync(keys, values, p.count); } catch (e) { throw full(e); }
    },
    deletePacked: (p) => {
      for (let i = 0; i < p.count; i += BATCH) {
        const n = Math.min(BATCH, p.count - i);
        const keys = p.keys.subarray(i * p.keySize, (i + n) * p.keySize);
        try { m.deleteBatchPacked(keys, n); } catch {
          for (let j = 0; j < n; j++) m.tryDelete(keys.subarray(j * p.keySize, (j + 1) * p.keySize));
        }
      }
    },
    entries: () => {
      const { keys, values } = m.entries();
      return keys.map((key, i) => ({ key, value: values[i] }));
    },
    deleteMany: (keys) => {
      for (let i = 0; i < keys.length; i += BATCH) {
        const chunk = keys.slice(i, i + BATCH);
        try { m.deleteBatch(chunk); } catch { for (const k of chunk) m.tryDelete(k); }
      }
    },
  };
}

/**
 * A write failed because the map holds max_entries entries (E2BIG from a hash, ENOSPC from an
 * LPM trie): names the map, its capacity and the setting that sizes it.
 */
export class MapFullError extends TortieError {
  readonly map: string;
  readonly capacity: number;
  constructor(m: BpfMap, cause: unknown) {
    const sized = POLICY_MAP_KEYS.find((k) => SIZED_MAPS[k].name === m.name);
    const knob = m.name === MAP.ct4 ? 'bpfMapSizeConntrack (FelixConfiguration) or --ct-max-entries'
      : sized !== undefined ? `--bpf-map-sizes ${sized}=N (TORTIE_BPF_MAP_SIZES)` : undefined;
    super('ERR_BPF_MAP_FULL', `BPF map ${m.name} is full (max_entries ${m.maxEntries})${knob ? `: raise it with ${knob}` : ''} (${(cause as Error).message})`, { cause });
    this.map = m.name;
    this.capacity = m.maxEntries;
  }
}

export function ctMapOps(m: BpfMap): CtMapOps {
  return {
    entries: function* () {
      const { keys, values } = m.lookupBatch();
      for (let i = 0; i < keys.length; i++) yield [keys[i], values[i]] as [Buffer, Buffer];
    },
    dump: () => m.lookupBatchPacked(),
    deleteMany: (keys) => {
      if (keys.length === 0) return;
      try { m.deleteBatch(keys); } catch { for (const k of keys) m.tryDelete(k); }
    },
  };
}

export interface WepDatapath {
  obj: BpfObject;
  fromWep: BpfProgram;
  toWep: BpfProgram;
  maps: Record<keyof typeof MAP, BpfMap | undefined>;
  policyMaps: PolicyMaps;
  ct: CtMapOps;
  ctTimeouts: CtTimeouts;
  /** tortie_ctq4_v1 (per-workload entry counts) and the quota / size it was loaded with. */
  ctq: BpfMap;
  /** tortie_ct6_v1 and tortie_ctq6_v1: the IPv6 conntrack table and its per-workload counts. */
  ct6: CtMapOps;
  ctq6: BpfMap;
  ctQuota: number;
  ctMaxEntries: number;
  hostRouting: HostRoutingState;
  close(): void;
}

export { DEFAULT_POLICY_MAP_SIZES, POLICY_MAP_KEYS, SIZED_MAPS, type PolicyMapKey, type SizedMapKey } from './map-sizes';

/**
 * A pinned map's max_entries cannot change, and libbpf refuses to reuse a pin whose definition
 * differs (load fails with EINVAL). When a sized map (SIZED_MAPS) is to be sized differently
 * from its pin (a new configuration or a new default), the pins of its whole group are removed so
 * the load creates them afresh, together: a table id then never refers to another generation's
 * entries. Programs still attached from the previous run keep their own references until they
 * are replaced; until the agent's first apply writes the new maps, workloads fail closed
 * (DROP_NO_TABLE) as at a first start, and remote routes take the kernel's path. Returns the
 * names of the maps whose size changed.
 */
export function replaceResizedPins(obj: BpfObject, pinRoot: string): string[] {
  const want = new Map(obj.maps().map((m) => [m.name, m.maxEntries]));
  const resized: string[] = [];
  const groups = new Set<string>();
  for (const k of SIZED_MAP_KEYS) {
    const { name, group } = SIZED_MAPS[k];
    const pin = path.join(pinRoot, name);
    if (!want.has(name) || !fs.existsSync(pin)) continue;
    let have: number;
    try {
      const m = BpfMap.openPinned(pin);
      have = m.maxEntries;
      m.close();
    } catch {
      continue; // not a map we can open: let the load report it
    }
    if (have !== want.get(name)) { resized.push(name); groups.add(group); }
  }
  for (const k of SIZED_MAP_KEYS) {
    if (groups.has(SIZED_MAPS[k].group)) fs.rmSync(path.join(pinRoot, SIZED_MAPS[k].name), { force: true });
  }
  return resized;
}

function applyConstants(obj: BpfObject, opts: LoadOptions, hasCt: boolean): { timeouts: CtTimeouts; ctQuota: number; ctMaxEntries: number } {
  const timeouts = opts.ctTimeouts ?? CALICO_CT_TIMEOUTS;
  const ctMaxEntries = opts.ctMaxEntries ?? defaultCtMaxEntries(os.totalmem());
  const ctQuota = opts.ctQuota ?? Math.floor(ctMaxEntries / 8);
  if (!Number.isInteger(ctQuota) || ctQuota < 0 || ctQuota > 2 ** 31) throw new RangeError(`ct quota ${ctQuota}: need an integer >= 0`);
  if (hasCt) {
    for (const [k, v] of Object.entries(ctTimeoutConstants(timeouts))) obj.setConstant(k, v);
    obj.setMapMaxEntries(MAP.ct4, ctMaxEntries);
    if (obj.maps().some((m) => m.name === MAP.ct6)) obj.setMapMaxEntries(MAP.ct6, ctMaxEntries);
    obj.setConstant('ct_quota', ctQuota);
  }
  const present = new Set(obj.maps().map((m) => m.name));
  for (const [k, n] of Object.entries(opts.mapSizes ?? {}) as [keyof typeof MAP, number][]) {
    if (k === 'ct4' || k === 'ct6' || k in SIZED_MAPS || !present.has(MAP[k])) continue; // ct4/ct6 are sized by ctMaxEntries
    obj.setMapMaxEntries(MAP[k], n);
  }
  for (const k of SIZED_MAP_KEYS) {
    const n = (opts.mapSizes as Partial<Record<SizedMapKey, number>> | undefined)?.[k] ?? SIZED_MAPS[k].entries;
    if (present.has(SIZED_MAPS[k].name)) obj.setMapMaxEntries(SIZED_MAPS[k].name, n);
  }
  replaceResizedPins(obj, opts.pinRoot ?? DEFAULT_PIN_ROOT);
  obj.setConstant('events_enabled', opts.events === false ? 0 : 1);
  const { costNs, burstNs } = eventBudgetConstants(opts.eventBudget ?? DEFAULT_EVENT_BUDGET);
  if (obj.constants().some((c) => c.name === 'ep_event_cost_ns')) {
    obj.setConstant('ep_event_cost_ns', costNs);
    obj.setConstant('ep_event_burst_ns', burstNs);
  }
  if (hasCt) obj.setConstant('deny_report_interval_ns', BigInt(Math.round((opts.denyReportIntervalSec ?? 1) * 1e9)));
  return { timeouts, ctQuota, ctMaxEntries };
}

function mapsOf(obj: BpfObject): Record<keyof typeof MAP, BpfMap | undefined> {
  const names = new Set(obj.maps().map((m) => m.name));
  const out = {} as Record<keyof typeof MAP, BpfMap | undefined>;
  for (const [k, name] of Object.entries(MAP) as [keyof typeof MAP, string][]) {
    out[k] = names.has(name) ? obj.map(name) : undefined;
  }
  return out;
}

/**
 * Pins of maps a newer version replaced (the LRU tables that became plain hashes for fairness, under a new
 * name): a node upgraded in place would otherwise keep them in kernel memory forever. Programs
 * still attached from the previous run hold their own reference until they are replaced.
 */
function unpinReplaced(pinRoot: string, names: string[]): void {
  for (const n of names) fs.rmSync(path.join(pinRoot, n), { force: true });
}

/**
 * Felix's defaultEndpointToHostAction for new flows from a workload to the node itself (after
 * its egress policy allowed them): Drop (Calico's default) or Accept. Return hands the packet to
 * the host's own processing as Felix does (its iptables INPUT chain; host endpoint policy does
 * not police workload-to-host traffic), so it is Accept here.
 */
export type EndpointToHostAction = 'Drop' | 'Accept' | 'Return';

export async function loadWep(opts: LoadOptions = {}): Promise<WepDatapath> {
  const mode = opts.hostRouting ?? DEFAULT_HOST_ROUTING;
  if (!HOST_ROUTING_MODES.includes(mode)) throw new RangeError(`hostRouting ${String(mode)}: need ${HOST_ROUTING_MODES.join(' or ')}`);
  if (mode === 'off') return loadWepOnce(opts, { mode, active: false, reason: 'off by configuration' });
  // The probe is the program itself: the verifier accepts bpf_redirect_peer only where the
  // kernel has it (5.10+, and from tc only; bpf_check_mtu, which the variant calls too, 5.12+). Any refusal loads the kernel-path variant, whose
  // own failure, if any, is the one reported.
  try {
    return await loadWepOnce(opts, { mode, active: true, reason: 'bpf_redirect_peer, bpf_redirect_neigh and bpf_check_mtu verified' });
  } catch (e) {
    const why = (e as Error).message.split('\n')[0]!;
    return loadWepOnce(opts, { mode, active: false, reason: `kernel path: the host-routing variant did not load (${why})` });
  }
}

async function loadWepOnce(opts: LoadOptions, hostRouting: HostRoutingState): Promise<WepDatapath> {
  const obj = BpfObject.open(path.join(opts.objectDir ?? defaultObjectDir(), 'tortie_wep.bpf.o'),
    { pinRoot: opts.pinRoot ?? DEFAULT_PIN_ROOT });
  try {
    const { timeouts: ctTimeouts, ctQuota, ctMaxEntries } = applyConstants(obj, opts, true);
    const toHost = opts.endpointToHostAction ?? 'Drop';
    if (!['Drop', 'Accept', 'Return'].includes(toHost)) throw new RangeError(`endpointToHostAction ${String(toHost)}: need Drop, Accept or Return`);
    obj.setConstant('endpoint_to_host_accept', toHost === 'Drop' ? 0 : 1);
    obj.setConstant('host_routing', hostRouting.active ? 1 : 0);
    await obj.load();
    unpinReplaced(opts.pinRoot ?? DEFAULT_PIN_ROOT, ['tortie_ct4_v1', 'tortie_ct4_v2', 'tortie_frag4_v1', 'tortie_hrst_v1']);
    const maps = mapsOf(obj);
    const need = (k: keyof typeof MAP): BpfMap => maps[k]!;
    return {
      obj,
      fromWep: obj.program('tortie_from_wep'),
      toWep: obj.program('tortie_to_wep'),
      maps,
      policyMaps: {
        ep: mapOps(need('ep')), epaddr: mapOps(need('epaddr')), epdst: maps.epdst && mapOps(maps.epdst), tbl: mapOps(need('tbl')),
        counterSlots: maps.epcnt && maps.cnt && new EpCounterSlots(maps.cnt, maps.epcnt),
        proj: mapOps(need('proj')), spc: mapOps(need('spc')), pol: mapOps(need('pol')),
      },
      ct: ctMapOps(need('ct4')),
      ctTimeouts,
      ctq: need('ctq4'),
      ct6: ctMapOps(need('ct6')),
      ctq6: need('ctq6'),
      ctQuota,
      ctMaxEntries,
      hostRouting,
      close: () => obj.close(),
    };
  } catch (e) {
    obj.close();
    throw e;
  }
}

export interface PrefilterDatapath {
  obj: BpfObject;
  prog: BpfProgram;
  pf4: BpfMap;
  pf6: BpfMap;
  cnt: BpfMap;
  close(): void;
}

export async function loadPrefilter(opts: LoadOptions & { countPassed?: boolean } = {}): Promise<PrefilterDatapath> {
  const obj = BpfObject.open(path.join(opts.objectDir ?? defaultObjectDir(), 'tortie_xdp.bpf.o'),
    { pinRoot: opts.pinRoot ?? DEFAULT_PIN_ROOT });
  try {
    applyConstants(obj, opts, false);
    obj.setConstant('count_passed', opts.countPassed === false ? 0 : 1);
    await obj.load();
    return {
      obj, prog: obj.program('tortie_xdp_prefilter'), pf4: obj.map(MAP.pf4), pf6: obj.map(MAP.pf6), cnt: obj.map(MAP.cnt),
      close: () => obj.close(),
    };
  } catch (e) {
    obj.close();
    throw e;
  }
}

/** NAT-outgoing tunables (load-time constants of tortie_uplink, bpf/lib/nat.h). */
export interface NatOptions {
  /** The only ports mappings use (default 20000–29999); must not overlap the node's
   *  ip_local_port_range (RouteManager checks). The workload's own port is kept when inside. */
  portMin?: number;
  portMax?: number;
  /** Candidates tried before DROP_NAT_NO_PORT (default 24, the most: NAT_MAX_RETRIES in
   *  bpf/lib/nat.h). With the range full of closed flows' tombstones each refuses about half the
   *  SYNs, so 16 left ~1 SYN in 65,000 without a port, 24 ~1 in 16 million. */
  retries?: number;
  /** tortie_nat4_v2 size, and tortie_nat6_v1's (two entries per flow; default 131072 each). */
  maxEntries?: number;
  /** Flows one workload address may hold (default 8192; 0 = no quota). */
  quota?: number;
  /** Mapping timeouts, for the program and the sweep (default DEFAULT_NAT_TIMEOUTS). */
  timeouts?: Partial<NatTimeouts>;
}

/** NatOptions with every default applied and checked; throws a RangeError naming the bad field. */
export function resolveNatOptions(nat: NatOptions = {}): Required<Omit<NatOptions, 'timeouts'>> & { timeouts: NatTimeouts } {
  const min = nat.portMin ?? 20000, max = nat.portMax ?? 29999;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535 || min > max) {
    throw new RangeError(`nat port range ${min}-${max}: need 1 <= portMin <= portMax <= 65535`);
  }
  const retries = nat.retries ?? 24;
  if (!Number.isInteger(retries) || retries < 0 || retries > 24) throw new RangeError(`nat retries ${retries}: need 0..24`);
  const quota = nat.quota ?? DEFAULT_NAT_QUOTA;
  if (!Number.isInteger(quota) || quota < 0 || quota > 2 ** 31) throw new RangeError(`nat quota ${quota}: need an integer >= 0`);
  const maxEntries = nat.maxEntries ?? DEFAULT_NAT_MAX_ENTRIES;
  if (!Number.isInteger(maxEntries) || maxEntries < 2 || maxEntries > 2 ** 26) throw new RangeError(`nat maxEntries ${maxEntries}: need an integer in 2..67108864`);
  const timeouts = { ...DEFAULT_NAT_TIMEOUTS, ...nat.timeouts };
  validateNatTimeouts(timeouts);
  return { portMin: min, portMax: max, retries, quota, maxEntries, timeouts };
}

export interface UplinkDatapath {
  obj: BpfObject;
  /** tc ingress on the uplink: IPIP and VXLAN decap from known nodes, reverse SNAT. */
  ingress: BpfProgram;
  /** tc egress on the uplink: IPIP / VXLAN encap of kernel-routed workload traffic, SNAT. */
  egress: BpfProgram;
  maps: {
    rt4: BpfMap; pool4: BpfMap; node4: BpfMap; netcfg: BpfMap; nat4: BpfMap; natq4: BpfMap; netstat: BpfMap; cnt: BpfMap; vxcfg: BpfMap; vxst: BpfMap;
    /** NAT66 (bpf/lib/nat6.h): mappings, counts per workload, IPv6 pools, node addresses, this node's IPv6 parameters,
     *  first fragments' translations. */
    nat6: BpfMap; natq6: BpfMap; pool6: BpfMap; node6: BpfMap; netcfg6: BpfMap; nfrag6: BpfMap;
    /** VXLAN over IPv6 (bpf/lib/vxlan6.h): remote IPv6 workload routes, counters. */
    rt6: BpfMap; vx6st: BpfMap;
  };
  /** The NAT options it was loaded with (defaults applied): the sweep uses the same timeouts. */
  nat: ReturnType<typeof resolveNatOptions>;
  close(): void;
}

/** bpf/out/tortie_uplink.bpf.o; its networking maps are shared (pinned) with tortie_wep's. */
export async function loadUplink(opts: LoadOptions & { nat?: NatOptions; ct4?: BpfMap; ct6?: BpfMap } = {}): Promise<UplinkDatapath> {
  const obj = BpfObject.open(path.join(opts.objectDir ?? defaultObjectDir(), 'tortie_uplink.bpf.o'),
    { pinRoot: opts.pinRoot ?? DEFAULT_PIN_ROOT });
  try {
    applyConstants(obj, opts, false);
    // The workloads' conntrack, NAT's judge of a closed flow (bpf/lib/nat.h tortie_natct4); without
    // it the program's own map stays empty and mappings wait for the sweep.
    if (opts.ct4) obj.reuseMap('tortie_natct4', opts.ct4);
    if (opts.ct6) obj.reuseMap('tortie_natct6', opts.ct6);
    const nat = resolveNatOptions(opts.nat);
    obj.setConstant('nat_port_min', nat.portMin);
    obj.setConstant('nat_port_max', nat.portMax);
    obj.setConstant('nat_retries', nat.retries);
    obj.setConstant('nat_quota', nat.quota);
    for (const [k, v] of Object.entries(natTimeoutConstants(nat.timeouts))) obj.setConstant(k, v);
    obj.setMapMaxEntries(NET_MAP.nat4, nat.maxEntries);
    obj.setMapMaxEntries(NET_MAP.nat6, nat.maxEntries);
    await obj.load();
    unpinReplaced(opts.pinRoot ?? DEFAULT_PIN_ROOT, ['tortie_nat4_v1', 'tortie_natfrag4_v1', 'tortie_hct4_v1']);
    const m = (n: string) => obj.map(n);
    return {
      obj, ingress: obj.program('tortie_uplink_in'), egress: obj.program('tortie_uplink_out'),
      maps: {
        rt4: m(NET_MAP.rt4), pool4: m(NET_MAP.pool4), node4: m(NET_MAP.node4), netcfg: m(NET_MAP.netcfg),
        nat4: m(NET_MAP.nat4), natq4: m(NET_MAP.natq4), netstat: m(NET_MAP.netstat), cnt: m(MAP.cnt),
        vxcfg: m(NET_MAP.vxcfg), vxst: m(NET_MAP.vxst),
        nat6: m(NET_MAP.nat6), natq6: m(NET_MAP.natq6), pool6: m(NET_MAP.pool6), node6: m(NET_MAP.node6),
        netcfg6: m(NET_MAP.netcfg6), nfrag6: m(NET_MAP.nfrag6), rt6: m(NET_MAP.rt6), vx6st: m(NET_MAP.vx6st),
      },
      nat,
      close: () => obj.close(),
    };
  } catch (e) {
    obj.close();
    throw e;
  }
}

export interface HepDatapath {
  obj: BpfObject;
  /** tc ingress / egress on a host interface other than the uplink (lib/hostep.h). */
  ingress: BpfProgram;
  egress: BpfProgram;
  /** tortie_hep_v1, tortie_fs4_v1, tortie_hct4_v2, tortie_hlt4_v1 and their IPv6 peers tortie_fs6_v1,
   *  tortie_hct6_v1, tortie_hlt6_v1: pinned, shared with tortie_uplink's. */
  maps: { hep: BpfMap; fs4: BpfMap; hct4: BpfMap; hlt4: BpfMap; fs6: BpfMap; hct6: BpfMap; hlt6: BpfMap; cnt: BpfMap };
  close(): void;
}

/** bpf/out/tortie_hep.bpf.o: host endpoint policy for host interfaces besides the uplink. */
export async function loadHep(opts: LoadOptions = {}): Promise<HepDatapath> {
  const obj = BpfObject.open(path.join(opts.objectDir ?? defaultObjectDir(), 'tortie_hep.bpf.o'),
    { pinRoot: opts.pinRoot ?? DEFAULT_PIN_ROOT });
  try {
    applyConstants(obj, opts, false);
    await obj.load();
    unpinReplaced(opts.pinRoot ?? DEFAULT_PIN_ROOT, ['tortie_hct4_v1']);
    const m = (n: string) => obj.map(n);
    return {
      obj, ingress: obj.program('tortie_hep_in'), egress: obj.program('tortie_hep_out'),
      maps: { hep: m(MAP.hep), fs4: m(MAP.fs4), hct4: m(MAP.hct4), hlt4: m(MAP.hlt4), fs6: m(MAP.fs6), hct6: m(MAP.hct6), hlt6: m(MAP.hlt6), cnt: m(MAP.cnt) },
      close: () => obj.close(),
    };
  } catch (e) {
    obj.close();
    throw e;
  }
}
