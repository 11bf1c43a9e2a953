/**
 * This node's uplink: which interface it is (the one holding the node address unless named),
 * its ifindex and MTU, and the tortie_uplink tc programs on it (ingress: decapsulation and NAT
 * replies; egress: encapsulation fallback and SNAT).
 *
 * Contract:
 * - `resolve(nodeIp)` (the IPv4 node address, or the IPv6 one on an IPv6-only node) asks the kernel (`ip -j addr/link`); an interface that changed its ifindex
 *   (recreated) is attached again by the next `attach()`.
 * - `attach()` attaches both directions with replace, once per ifindex; `changed()` (the link
 *   went away or came back) makes the next attach() do it again.
 */
import { ipJson } from '../../util/exec';
import type { Logger } from '../../util/log';
import type { UplinkDatapath } from '../bpf/loader';
import { tcAttach } from '../native';
import { RouteError } from './errors';

export interface UplinkInfo { name: string; ifindex: number; mtu: number }

export class Uplink {
  /** As last resolved; undefined while the node has no address. */
  current?: UplinkInfo;
  private attachedIfindex?: number;

  constructor(private readonly o: { name?: string; netns?: { name: string; path: string }; log: Logger }) {}

  async resolve(nodeIp: string | undefined): Promise<UplinkInfo | undefined> {
    if (nodeIp === undefined) return (this.current = undefined);
    const netns = this.o.netns?.name;
    let name = this.o.name;
    if (!name) {
      const addrs = await ipJson<{ ifname: string; addr_info?: { family: string; local: string }[] }[]>([nodeIp.includes(':') ? '-6' : '-4', 'addr', 'show'], { netns });
      name = addrs.find((l) => l.addr_info?.some((a) => a.local === nodeIp))?.ifname;
      if (!name) throw new RouteError('ERR_ROUTES_NO_UPLINK', `no interface holds the node address ${nodeIp}; pass the uplink explicitly`);
    }
    const [link] = await ipJson<{ ifindex: number; ifname: string; mtu: number }[]>(['link', 'show', 'dev', name], { netns });
    if (!link) throw new RouteError('ERR_ROUTES_NO_UPLINK', `uplink ${name} does not exist`);
    if (this.current && this.current.ifindex !== link.ifindex) this.attachedIfindex = undefined;
    return (this.current = { name, ifindex: link.ifindex, mtu: link.mtu });
  }

  attach(dp: UplinkDatapath): void {
    const u = this.current;
    if (!u || this.attachedIfindex === u.ifindex) return;
    const netns = this.o.netns?.path;
    tcAttach({ iface: u.ifindex, netns, direction: 'ingress', program: dp.ingress, replace: true });
    tcAttach({ iface: u.ifindex, netns, direction: 'egress', program: dp.egress, replace: true });
    this.attachedIfindex = u.ifindex;
    this.o.log.info({ uplink: u.name, ifindex: u.ifindex }, 'uplink programs attached');
  }

  changed(): void { this.attachedIfindex = undefined; }
}
