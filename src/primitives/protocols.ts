/**
 * IP protocol numbers and the protocol sets the model, the compiler and the datapath share.
 */

/** IANA protocol numbers tortie names anywhere (packets, rules, encapsulation). */
export const IPPROTO = { ICMP: 1, IPIP: 4, TCP: 6, UDP: 17, GRE: 47, ICMPV6: 58, SCTP: 132, UDPLITE: 136 } as const;

/** Calico's protocol names (numorstring.Protocol, spelled as Calico's validator wants them). */
export const PROTOCOL_NUMBERS: Readonly<Record<'TCP' | 'UDP' | 'ICMP' | 'ICMPv6' | 'SCTP' | 'UDPLite', number>> = {
  TCP: IPPROTO.TCP,
  UDP: IPPROTO.UDP,
  ICMP: IPPROTO.ICMP,
  ICMPv6: IPPROTO.ICMPV6,
  SCTP: IPPROTO.SCTP,
  UDPLite: IPPROTO.UDPLITE,
};
export type ProtocolName = keyof typeof PROTOCOL_NUMBERS;
export const PROTOCOL_NAMES = Object.keys(PROTOCOL_NUMBERS) as readonly ProtocolName[];

const EXACT: ReadonlyMap<string, number> = new Map(Object.entries(PROTOCOL_NUMBERS));
const LOWER: ReadonlyMap<string, number> = new Map(Object.entries(PROTOCOL_NUMBERS).map(([k, v]) => [k.toLowerCase(), v]));

/** The number of a Calico protocol name; `ignoreCase` for Calico v1 documents and the compiler. */
export function protocolNumberOfName(name: string, ignoreCase = false): number | undefined {
  return ignoreCase ? LOWER.get(name.toLowerCase()) : EXACT.get(name);
}

/**
 * Protocols whose packets carry L4 ports the datapath reads (and a rule's ports match):
 * TCP, UDP, SCTP, UDPLite.
 */
export const PORT_PROTOCOLS: readonly number[] = [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.SCTP, IPPROTO.UDPLITE];

/** Protocols a rule may name ports for, as Calico's validator (numorstring SupportsPorts). */
export const RULE_PORT_PROTOCOLS: readonly number[] = [IPPROTO.TCP, IPPROTO.UDP, IPPROTO.SCTP];

/** Protocols whose type/code a rule's icmp / notICMP match. */
export const ICMP_PROTOCOLS: readonly number[] = [IPPROTO.ICMP, IPPROTO.ICMPV6];

const PORT_PROTOCOL_SET = new Uint8Array(256);
for (const p of PORT_PROTOCOLS) PORT_PROTOCOL_SET[p] = 1;

export function isPortProtocol(p: number): boolean {
  return PORT_PROTOCOL_SET[p] === 1;
}

export function isIcmpProtocol(p: number): boolean {
  return p === IPPROTO.ICMP || p === IPPROTO.ICMPV6;
}
