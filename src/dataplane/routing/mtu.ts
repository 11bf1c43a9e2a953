/**
 * Felix's MTU handling on this node: the IPIP and VXLAN MTUs the tunnelled routes and the workload
 * program's fast path use, and Calico's MTU file the CNI plugin sizes new workloads by.
 *
 * Contract:
 * - The IPIP MTU is `ipipMTU` when set, else detected: the smallest MTU of the host interfaces
 *   matching `mtuIfacePattern` (the uplink's when none matches), less the 20-byte IPIP header
 *   (AWS: 9001 → 8981). The VXLAN MTU likewise: `vxlanMtu` when set, else the same host MTU less
 *   the 50 bytes of VXLAN (ENCAP_OVERHEAD); the IPv6 VXLAN MTU (outer IPv6) `vxlanMtuV6`, else the
 *   host MTU less 70. `detect()` reads the links (`ip -j link show`) and logs
 *   what changed.
 * - The MTU file (Calico's /var/lib/calico/mtu) holds the smallest MTU of the encapsulations the
 *   enabled IPv4 pools use (IPIP, VXLAN) and IPv6 VXLAN when an enabled IPv6 pool has a
 *   vxlanMode, else the host MTU; written atomically (temporary file +
 *   rename), only when its text changes.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ipJson } from '../../util/exec';
import type { Logger } from '../../util/log';
import type { RoutingState } from '../../calc/types';
import { ENCAP_OVERHEAD } from '../../primitives';

/** Felix's default MTUIfacePattern: the usual names of physical NICs. */
export const DEFAULT_MTU_PATTERN = '^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)';

export interface MtuOptions {
  ipipMtu: number;
  /** Felix's vxlanMTU (0 or absent: detected). */
  vxlanMtu?: number;
  /** Felix's vxlanMTUV6 (0 or absent: detected: the host MTU less 70). */
  vxlanMtuV6?: number;
  ifacePattern: string;
  file?: string;
}

export interface MtuInForce { host: number; ipip: number; vxlan: number; vxlan6: number; from: string }

/** Felix's MTU detection: the smallest MTU of the links whose name matches `pattern`; undefined when none does. */
export function smallestMatchingMtu(links: readonly { ifname: string; mtu: number }[], pattern: string): number | undefined {
  const re = new RegExp(pattern);
  let best: number | undefined;
  for (const l of links) if (re.test(l.ifname) && (best === undefined || l.mtu < best)) best = l.mtu;
  return best;
}

export class Mtu {
  private opts: MtuOptions;
  /** Host MTU (detected) and the IPIP MTU in force, as of the last detect(). */
  current?: MtuInForce;
  private writtenFile?: string;

  constructor(opts: MtuOptions | undefined, private readonly o: { netns?: string; log: Logger }) {
    this.opts = opts ?? { ipipMtu: 0, ifacePattern: DEFAULT_MTU_PATTERN };
  }

  /** New settings (FelixConfiguration); throws on a bad pattern before anything changes. */
  set(m: MtuOptions): void {
    new RegExp(m.ifacePattern);
    this.opts = { ...m };
  }

  async detect(uplink: { name: string; mtu: number }): Promise<MtuInForce> {
    const links = await ipJson<{ ifname: string; mtu: number }[]>(['link', 'show'], { netns: this.o.netns });
    const { ipipMtu, vxlanMtu, vxlanMtuV6, ifacePattern } = this.opts;
    const found = smallestMatchingMtu(links, ifacePattern);
    const host = found ?? uplink.mtu;
    const ipip = ipipMtu || host - ENCAP_OVERHEAD.ipip;
    const vxlan = vxlanMtu || host - ENCAP_OVERHEAD.vxlan;
    const vxlan6 = vxlanMtuV6 || host - ENCAP_OVERHEAD.vxlan6;
    const from = found !== undefined ? `smallest MTU of the interfaces matching ${ifacePattern}` : `uplink ${uplink.name} (no interface matches ${ifacePattern})`;
    if (this.current?.host !== host || this.current?.ipip !== ipip || this.current?.vxlan !== vxlan || this.current?.vxlan6 !== vxlan6) {
      this.o.log.info({ hostMtu: host, ipipMtu: ipip, vxlanMtu: vxlan, vxlanMtuV6: vxlan6, from, ipipMTU: ipipMtu || undefined, vxlanMTU: vxlanMtu || undefined }, 'MTU');
    }
    return (this.current = { host, ipip, vxlan, vxlan6, from: ipipMtu ? 'ipipMTU' : from });
  }

  /** Calico's MTU file: what the CNI plugin gives new workloads (the smallest encapsulation MTU in use). */
  writeFile(pools: RoutingState['pools']): void {
    const file = this.opts.file;
    if (!file || !this.current) return;
    const enabled = pools.filter((p) => p.cidr.includes('.') && !p.disabled);
    let mtu = this.current.host;
    if (enabled.some((p) => p.ipipMode !== 'Never')) mtu = Math.min(mtu, this.current.ipip);
    if (enabled.some((p) => p.vxlanMode !== 'Never' && p.vxlanMode !== '')) mtu = Math.min(mtu, this.current.vxlan);
    // IPv6 pools with VXLAN (outer IPv6): Felix's pod MTU takes vxlanMTUV6 into the minimum too.
    if (pools.some((p) => p.cidr.includes(':') && !p.disabled && p.vxlanMode !== 'Never' && p.vxlanMode !== '')) mtu = Math.min(mtu, this.current.vxlan6);
    const text = `${mtu}\n`;
    if (text === this.writtenFile) return;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
    this.writtenFile = text;
  }
}
