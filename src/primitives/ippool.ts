/**
 * IPPool defaults: what Calico (libcalico-go's pool client and validator) fills in for a field
 * the user left out. The validator (src/model/validate.ts) writes them into every stored pool;
 * readers of stored pools (IPAM, the compiler's routing inputs) fall back to the same values for
 * a record written before a default existed.
 */

export const IPPOOL_DEFAULTS = {
  /** Block size of an IPv4 pool (a /26: 64 addresses per node claim). */
  blockSizeV4: 26,
  /** Block size of an IPv6 pool. */
  blockSizeV6: 122,
  ipipMode: 'Never',
  vxlanMode: 'Never',
  natOutgoing: false,
  /** Every node may take blocks from the pool. */
  nodeSelector: 'all()',
  allowedUses: ['Workload', 'Tunnel'] as readonly ('Workload' | 'Tunnel')[],
  assignmentMode: 'Automatic',
} as const;

/** The blockSize values Calico accepts, per family (inclusive). */
export const IPPOOL_BLOCK_SIZE_RANGE = { 4: [20, 32], 6: [116, 128] } as const;

/** The default block size of a pool of this family. */
export function defaultBlockSize(family: 4 | 6): number {
  return family === 6 ? IPPOOL_DEFAULTS.blockSizeV6 : IPPOOL_DEFAULTS.blockSizeV4;
}

/**
 * Bytes an encapsulation adds to a workload's IPv4 packet on the underlay (Calico's: the IPIP and
 * VXLAN MTUs are the host MTU less these). IPIP: the outer IPv4 header. VXLAN: outer IPv4, UDP,
 * the VXLAN header and the inner Ethernet header (bpf/lib/vxlan.h VXLAN_OVERHEAD).
 */
/** Bytes each encapsulation adds to the inner packet (vxlan6: VXLAN in outer IPv6, Calico's vxlan-v6.calico). */
export const ENCAP_OVERHEAD = { ipip: 20, vxlan: 50, vxlan6: 70 } as const;

/** Calico's VXLAN defaults (FelixConfiguration vxlanVNI, vxlanPort). */
export const VXLAN_DEFAULTS = { vni: 4096, port: 4789 } as const;
