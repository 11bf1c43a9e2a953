// Loads tortie_uplink under a unique pin root and runs packets through its tc programs with
// BPF_PROG_TEST_RUN; `reason` is the counter slot that moved (0 = passed). Cleans up on close().
import { loadUplink, type NatOptions, type UplinkDatapath } from '../dataplane/bpf/loader';
import { readCounters } from '../dataplane/bpf/counters';
import { Dir } from '../dataplane/bpf/drop-reasons';
import {
  lpm4Key, lpm6Key, netcfgCodec, netcfg6Codec, nodeInfoCodec, nodeKeyCodec, node6KeyCodec, poolCodec, routeCodec, readNetStats, readVxStats,
  vxcfgCodec, route6Codec, sumPerCpuCounters, VX6STAT, NETCFG_KEY, type NetStats, type VxStats,
} from '../dataplane/bpf/net-codecs';
import { uniquePinRoot, removePinRoot } from './wep-harness';
import type { BpfMap } from '../dataplane/native';

export const TC_OK = 0;
export const TC_SHOT = 2;
export const TC_REDIRECT = 7;

export interface UplinkRun { retval: number; reason: number; data: Buffer }

export class UplinkHarness {
  /** Namespace (path) the programs run in when run() is given none: the node-socket lookups of
   *  the NAT code then see only that namespace's sockets (tests keep it empty), not the host's. */
  netns?: string;

  private constructor(readonly dp: UplinkDatapath, readonly pinRoot: string) {}

  /** pinRoot: another harness's, to share its maps (both close() it). `conntrack`: the workloads'
   *  conntrack tables (a WepHarness's), NAT's judge of a closed TCP flow, as the agent passes them. */
  static async create(label: string, nat?: NatOptions, pinRoot = uniquePinRoot(label),
    conntrack: { ct4?: BpfMap; ct6?: BpfMap; objectDir?: string } = {}): Promise<UplinkHarness> {
    try {
      return new UplinkHarness(await loadUplink({ pinRoot, nat, ...conntrack }), pinRoot);
    } catch (e) {
      removePinRoot(pinRoot);
      throw e;
    }
  }

  config(nodeIp: string, uplinkIfindex = 0): void {
    this.dp.maps.netcfg.update(NETCFG_KEY, netcfgCodec.encode({ node_ip: nodeIp, uplink_ifindex: uplinkIfindex, ipip_mtu: 0, snat_ip: '0.0.0.0' }));
  }
  pool(cidr: string, flags: number): void { this.dp.maps.pool4.update(lpm4Key(cidr), poolCodec.encode({ flags })); }
  node(ip: string, flags = 0): void { this.dp.maps.node4.update(nodeKeyCodec.encode({ addr: ip }), nodeInfoCodec.encode({ flags })); }
  route(cidr: string, nextHop: string, flags: number): void {
    this.dp.maps.rt4.update(lpm4Key(cidr), routeCodec.encode({ next_hop: nextHop, flags }));
  }
  /** NAT66: this node's IPv6 address (tortie_netcfg6_v1), IPv6 pools and node addresses. */
  config6(nodeIp6: string, snatIp6 = '::'): void {
    this.dp.maps.netcfg6.update(NETCFG_KEY, netcfg6Codec.encode({ node_ip6: nodeIp6, snat_ip6: snatIp6 }));
  }
  pool6(cidr: string, flags: number): void { this.dp.maps.pool6.update(lpm6Key(cidr), poolCodec.encode({ flags })); }
  node6(ip: string, flags = 0): void { this.dp.maps.node6.update(node6KeyCodec.encode({ addr: ip }), nodeInfoCodec.encode({ flags })); }
  /** tortie_rt6_v1 (VXLAN over IPv6): a remote IPv6 workload prefix behind a node's IPv6 address. */
  route6(cidr: string, nextHop: string, flags: number): void {
    this.dp.maps.rt6.update(lpm6Key(cidr), route6Codec.encode({ next_hop: nextHop, flags }));
  }
  vx6Stats(): Record<typeof VX6STAT[number], bigint> { return sumPerCpuCounters(this.dp.maps.vx6st, VX6STAT); }
  stats(): NetStats { return readNetStats(this.dp.maps.netstat); }
  /** tortie_vxcfg_v1: VXLAN on with this VNI and port (vni 0: off). */
  vxlan(vni: number, port = 4789, mtu = 0): void { this.dp.maps.vxcfg.update(NETCFG_KEY, vxcfgCodec.encode({ vni, port, mtu })); }
  vxStats(): VxStats { return readVxStats(this.dp.maps.vxst); }

  run(hook: 'in' | 'out', pkt: Buffer, netns = this.netns): UplinkRun {
    const count = () => readCounters(this.dp.maps.cnt).filter((r) => r.dir === Dir.UPLINK);
    const before = count();
    const r = (hook === 'in' ? this.dp.ingress : this.dp.egress).testRun(pkt, { netns });
    const moved = count().filter((a) => a.packets !== (before.find((b) => b.reason === a.reason && b.ifindex === a.ifindex)?.packets ?? 0n));
    if (moved.length !== 1) throw new Error(`expected one counter to move, got ${moved.length}`);
    return { retval: r.retval, reason: moved[0]!.reason, data: r.data };
  }

  close(): void {
    this.dp.close();
    removePinRoot(this.pinRoot);
  }
}
