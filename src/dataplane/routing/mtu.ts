/**
 * Felix's MTU handling on this node: the IPIP MTU the tunnelled routes and the workload program's
 * fast path use, and Calico's MTU file the CNI plugin sizes new workloads by.
 *
 * Contract:
 * - The IPIP MTU is `ipipMTU` when set, else detected: the smallest MTU of the host interfaces
 *   matching `mtuIfacePattern` (the uplink's when none matches), less the 20-byte IPIP header
 *   (AWS: 9001 → 8981). `detect()` reads the links (`ip -j link show`) and logs what changed.
 * - The MTU file (Calico's /var/lib/calico/mtu) holds the IPIP MTU when an enabled IPv4 pool
 *   encapsulates, else the host MTU; written atomically (temporary file + rename), only when its
 *   text changes.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ipJson } from '../../util/exec';
import type { Logger } from '../../util/log';
import type { RoutingState } from '../../calc/types';
import { IPIP_OVERHEAD } from './plan';

/** Felix's default MTUIfacePattern: the usual names of physical NICs. */
export const DEFAULT_MTU_PATTERN = '^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)';

export interface MtuOptions {
  ipipMtu: number;
  ifacePattern: string;
  file?: string;
}

export interface MtuInForce { host: number; ipip: number; from: string }

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
    const { ipipMtu, ifacePattern } = this.opts;
    const found = smallestMatchingMtu(links, ifacePattern);
    const host = found ?? uplink.mtu;
    const ipip = ipipMtu || host - IPIP_OVERHEAD;
    const from = ipipMtu ? 'ipipMTU' : found !== undefined ? `smallest MTU of the interfaces matching ${ifacePattern}` : `uplink ${uplink.name} (no interface matches ${ifacePattern})`;
    if (this.current?.host !== host || this.current?.ipip !== ipip) this.o.log.info({ hostMtu: host, ipipMtu: ipip, from }, 'MTU');
    return (this.current = { host, ipip, from });
  }

  /** Calico's MTU file: what the CNI plugin gives new workloads (IPIP MTU when a pool encapsulates). */
  writeFile(pools: RoutingState['pools']): void {
    const file = this.opts.file;
    if (!file || !this.current) return;
    const encap = pools.some((p) => p.cidr.includes('.') && p.ipipMode !== 'Never' && !p.disabled);
    const text = `${encap ? this.current.ipip : this.current.host}\n`;
    if (text === this.writtenFile) return;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
    this.writtenFile = text;
  }
}
