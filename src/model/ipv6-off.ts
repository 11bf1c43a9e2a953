/**
 * Felix's `ipv6Support: false` (FELIX_IPV6SUPPORT=false): the agent programs no IPv6. What it
 * compiles, routes and advertises is the datastore's resources less their IPv6 parts — IPv6 pools
 * are absent, workload endpoints keep only their IPv4 `ipNetworks`, host endpoints only their
 * IPv4 `expectedIPs`, nodes no IPv6 address. A workload's IPv6 address is then unknown to the
 * dataplane: its IPv6 packets fail the source check (dropped, as Calico's BPF dataplane drops
 * IPv6 it does not program), nothing is routed to it, no IPv6 block is advertised and no NAT66
 * happens. Policies are unchanged (an `ipVersion: 6` rule or an IPv6 net then matches nothing).
 *
 * Contract: pure; the resource is not modified; undefined = treat the resource as absent.
 */
import type { Resource } from './types';
import { tryParseCidrOrIp } from '../primitives';

const isV6 = (s: string): boolean => tryParseCidrOrIp(s)?.ip.version === 6;

export function withoutIpv6(r: Resource): Resource | undefined {
  switch (r.kind) {
    case 'IPPool':
      return isV6(r.spec.cidr) ? undefined : r;
    case 'WorkloadEndpoint': {
      if (!(r.spec.ipNetworks ?? []).some(isV6) && r.spec.ipv6Gateway === undefined) return r;
      const { ipv6Gateway: _gw, ...spec } = r.spec;
      return { ...r, spec: { ...spec, ipNetworks: (r.spec.ipNetworks ?? []).filter((n) => !isV6(n)) } };
    }
    case 'HostEndpoint':
      if (!(r.spec.expectedIPs ?? []).some(isV6)) return r;
      return { ...r, spec: { ...r.spec, expectedIPs: (r.spec.expectedIPs ?? []).filter((n) => !isV6(n)) } };
    case 'Node': {
      const bgp = r.spec.bgp;
      if (bgp?.ipv6Address === undefined && r.spec.ipv6VXLANTunnelAddr === undefined) return r;
      const { ipv6VXLANTunnelAddr: _vx, ...spec } = r.spec;
      if (bgp === undefined) return { ...r, spec };
      const { ipv6Address: _a, ...rest } = bgp;
      return { ...r, spec: { ...spec, bgp: rest } };
    }
    default:
      return r;
  }
}
