/**
 * Drop reasons: the TypeScript mirror of `enum tortie_drop_reason` in bpf/shared/drop.h.
 * test/datapath checks this table against the enum in the compiled objects' BTF, so the two
 * cannot drift. Values are negative; 0 is "forwarded" (the counter slot for accepted packets).
 */

export const DropReason = {
  FORWARD: 0,
  TRUNC_ETH: -1,
  TRUNC_IP: -2,
  BAD_IHL: -3,
  BAD_TOTLEN: -4,
  TRUNC_L4: -5,
  UNKNOWN_IFACE: -6,
  SPOOFED_SRC: -7,
  POLICY_DENY: -8,
  NO_TABLE: -9,
  PREFILTER: -10,
  DNT_DENY: -11,
  UNSUPPORTED_L3: -12,
  VLAN: -13,
  FRAG_UNKNOWN: -14,
  CT_INVALID: -15,
  BAD_TCP_HDR: -16,
  ENDPOINT_DISABLED: -17,
  FRAG_TINY: -18,
  BAD_IP_VERSION: -19,
  IPIP_UNKNOWN_SRC: -20,
  IPIP_BAD_INNER: -21,
  NAT_NO_PORT: -22,
  TCP_BAD_FLAGS: -24,
  NAT_ICMP: -25,
  IP_SRCROUTE: -26,
  TO_HOST_DENIED: -27,
  NAT_QUOTA: -30,
  NAT_TABLE_FULL: -31,
  CT_QUOTA: -32,
  CT_TABLE_FULL: -33,
  ENCAP_TRIM: -36,
  ENCAP_HEADROOM: -37,
  ENCAP_STORE: -38,
  DECAP_HEADROOM: -39,
  FWD_TTL: -40,
  FWD_MAC: -41,
  NAT_L4_CSUM: -42,
  NAT_PORT: -43,
  NAT_ADDR: -44,
  NAT_FRAG_ADDR: -45,
  ICMP_QUOTE: -46,
  ICMP_OUTER: -47,
  HEP_POLICY: -48,
  HEP_FORWARD: -49,
  HEP_PREDNAT: -50,
  HEP_UNTRACKED: -51,
  IP6_EXT_CHAIN: -52,
  IP6_BAD_EXT: -53,
  IP6_SRCROUTE: -54,
  ICMP6_ROUTER: -55,
  ICMP6_ND_SCOPE: -56,
  VXLAN6_CSUM: -57,
  NAT6_ADDR: -64,
  NAT6_FRAG: -65,
  NAT6_ICMP: -66,
  NAT6_FRAG_ADDR: -67,
  VXLAN_UNKNOWN_SRC: -72,
  VXLAN_BAD_HDR: -73,
  VXLAN_VNI: -74,
  VXLAN_BAD_INNER: -75,
  VXLAN_INNER_SRC: -76,
} as const;

export type DropReasonName = keyof typeof DropReason;

/** The C enumerator name for a TS name (`POLICY_DENY` → `DROP_POLICY_DENY`, FORWARD → `TORTIE_FORWARD`). */
export function cEnumeratorName(name: DropReasonName): string {
  return name === 'FORWARD' ? 'TORTIE_FORWARD' : `DROP_${name}`;
}

const byValue = new Map<number, DropReasonName>(
  (Object.keys(DropReason) as DropReasonName[]).map((k) => [DropReason[k], k]),
);

/** Name of a reason code as metrics/log label (`policy_deny`); unknown codes as `unknown_<n>`. */
export function dropReasonLabel(code: number): string {
  const n = byValue.get(code);
  return n ? n.toLowerCase() : `unknown_${code}`;
}

/** Direction codes (enum tortie_dir). */
export const Dir = { INGRESS: 0, EGRESS: 1, UPLINK: 2 } as const;
