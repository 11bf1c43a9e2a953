/**
 * Sizes of the maps the agent fills in proportion to the cluster (no native code here:
 * src/node/config.ts reads them).
 *
 * Defaults sized for Felix's design target (100,000 endpoints, 2,000 policies, 100 local
 * endpoints; docs/benchmarks.md "Control plane at scale"): measured needs there are up to 2.8
 * million projection entries (tortie_proj_v1), 1.1 million verdict prefixes (tortie_pol_v1),
 * 101,000 class prefixes (tortie_cls4_v1) and one route per remote workload (tortie_rt4_v1,
 * 99,900; Calico's bpfMapSizeRoute default is 262,144). All are BPF_F_NO_PREALLOC maps: entries
 * cost kernel memory only when written, except a hash map's bucket array (16 B per bucket,
 * rounded up to a power of two: 64 MiB for tortie_proj_v1 at this size).
 * `--bpf-map-sizes` / TORTIE_BPF_MAP_SIZES override them.
 */
export type SizedMapKey = 'cls4' | 'tbl' | 'proj' | 'spc' | 'pol' | 'rt4';
/** Kept for callers that name the policy maps only. */
export type PolicyMapKey = SizedMapKey;

export interface SizedMap {
  /** The map's name in the BPF objects. */
  name: string;
  entries: number;
  /**
   * Maps replaced together when one of them is resized: a table id must never refer to
   * another generation's projection or cells. The agent rewrites each group from its own state.
   */
  group: 'policy' | 'routes';
}

export const SIZED_MAPS: Readonly<Record<SizedMapKey, SizedMap>> = {
  cls4: { name: 'tortie_cls4_v1', entries: 262_144, group: 'policy' },
  tbl: { name: 'tortie_tbl_v1', entries: 16_384, group: 'policy' },
  proj: { name: 'tortie_proj_v1', entries: 4_194_304, group: 'policy' },
  spc: { name: 'tortie_spc_v1', entries: 65_536, group: 'policy' },
  pol: { name: 'tortie_pol_v1', entries: 2_097_152, group: 'policy' },
  rt4: { name: 'tortie_rt4_v1', entries: 262_144, group: 'routes' },
};

export const SIZED_MAP_KEYS = Object.keys(SIZED_MAPS) as SizedMapKey[];
export const POLICY_MAP_KEYS = SIZED_MAP_KEYS;

export const DEFAULT_POLICY_MAP_SIZES: Readonly<Record<SizedMapKey, number>> = Object.fromEntries(
  SIZED_MAP_KEYS.map((k) => [k, SIZED_MAPS[k].entries])) as Record<SizedMapKey, number>;
