/**
 * src/primitives: the domain values every layer shares — IP addresses and CIDRs (ip.ts: one
 * parser, one set of rules, the prefix arithmetic), Calico's label constants (labels.ts),
 * protocol numbers and sets (protocols.ts), IPPool defaults (ippool.ts), the workload veth's
 * host-side MAC (workload.ts). Base tier: it imports
 * only the error base (util/errors), and everything may import it.
 */
export * from './ip';
export * from './labels';
export * from './protocols';
export * from './ippool';
export { IpParseError } from './errors';
export * from './cidr6';
export * from './workload';
