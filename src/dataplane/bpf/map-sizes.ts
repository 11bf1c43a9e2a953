/** The policy maps' sizes (no native code here: src/node/config.ts reads them). */

/**
 * Sizes of the policy maps the agent writes (bpf/lib/policy.h), sized for Felix's design target
 * (100,000 endpoints, 2,000 policies, 100 local endpoints): measured needs there are up to 2.8
 * million projection entries (tortie_proj_v1) and 1.1 million verdict prefixes (tortie_pol_v1),
 * docs/benchmarks.md "Control plane at scale". BPF_F_NO_PREALLOC maps: entries cost kernel memory
 * only when written, except a hash map's bucket array (16 B per bucket, rounded up to a power of
 * two: 64 MiB for tortie_proj_v1 at this size). `--bpf-map-sizes` / TORTIE_BPF_MAP_SIZES override.
 */
export const DEFAULT_POLICY_MAP_SIZES: Readonly<Record<PolicyMapKey, number>> = {
  cls4: 262_144, tbl: 16_384, proj: 4_194_304, spc: 65_536, pol: 2_097_152,
};

/** The policy maps: the agent rewrites all of them from the compiler's output at start-up. */
export type PolicyMapKey = 'cls4' | 'tbl' | 'proj' | 'spc' | 'pol';
export const POLICY_MAP_KEYS: readonly PolicyMapKey[] = ['cls4', 'tbl', 'proj', 'spc', 'pol'];
