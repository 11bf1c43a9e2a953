/**
 * NAT outgoing upkeep on the agent's side (the datapath is bpf/lib/nat.h): the port-range guard,
 * the sweep that returns the memory of finished flows, and the table's figures for metrics.
 *
 * Contract:
 * - `checkPortRange()` refuses (ERR_ROUTES_NAT_PORT_RANGE) while the NAT port range overlaps the
 *   node namespace's net.ipv4.ip_local_port_range: the node's unbound connect()s take ports from
 *   that range without looking at the NAT table, so an overlap would let the node pick a mapped
 *   tuple later. The manager calls it on every apply that programs the node, before anything is
 *   written (the sysctl may change while the agent runs; one small file read).
 * - `sweep(now)` deletes mappings whose flow is over (tortie_nat4_v2 and NAT66's tortie_nat6_v1) (bpf/nat.ts sweepNatEntries, with the very
 *   timeouts the program was loaded with, and the workloads' conntrack — tortie_ct4_v3, tortie_ct6_v1
 *   for NAT66 — as judge of RSTs and FINs from outside); `status(family)` reports occupancy, quota use and what the sweeps deleted, per family.
 */
import { readFileSync } from 'node:fs';
import { run } from '../../util/exec';
import type { BpfMap } from '../native';
import type { UplinkDatapath } from '../bpf/loader';
import { ctAcceptedClose, ctAcceptedClose6, readNatQuota, sweepNatEntries, NAT6, type CtCloseLookup, type NatStatus } from '../bpf/nat';
import { RouteError } from './errors';

/** net.ipv4.ip_local_port_range of the node's namespace (the given one in tests). */
export async function readLocalPortRange(netns?: string): Promise<{ min: number; max: number }> {
  const file = '/proc/sys/net/ipv4/ip_local_port_range';
  const text = netns ? (await run(['ip', 'netns', 'exec', netns, 'cat', file])).stdout : readFileSync(file, 'utf8');
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) throw new RouteError('ERR_ROUTES_NAT_PORT_RANGE', `cannot parse ${file}: "${text.trim()}"`);
  return { min: Number(m[1]), max: Number(m[2]) };
}

export class NatUpkeep {
  private readonly ctClose: CtCloseLookup | undefined;
  private readonly ctClose6: CtCloseLookup | undefined;
  /** Entries left by the last sweep (IPv4, NAT66), and deleted by all sweeps. */
  entries = 0;
  entries6 = 0;
  private expired = 0;
  private expired6 = 0;

  constructor(private readonly dp: UplinkDatapath, private readonly o: { netns?: string; ct4?: BpfMap; ct6?: BpfMap }) {
    this.ctClose = o.ct4 ? ctAcceptedClose(o.ct4) : undefined;
    this.ctClose6 = o.ct6 ? ctAcceptedClose6(o.ct6) : undefined;
  }

  async checkPortRange(): Promise<void> {
    const { portMin, portMax } = this.dp.nat;
    const eph = await readLocalPortRange(this.o.netns);
    if (portMin <= eph.max && eph.min <= portMax) {
      throw new RouteError('ERR_ROUTES_NAT_PORT_RANGE', `NAT port range ${portMin}-${portMax} overlaps the node's ` +
        `net.ipv4.ip_local_port_range ${eph.min}-${eph.max}: choose a NAT port range outside it (natPortRange) or narrow the sysctl`);
    }
  }

  /** Deletes NAT mappings whose flow is over; returns how many. */
  sweep(now = process.hrtime.bigint()): number {
    const r = sweepNatEntries(this.dp.maps, this.dp.nat.timeouts, now, this.ctClose);
    const r6 = sweepNatEntries({ nat4: this.dp.maps.nat6, natq4: this.dp.maps.natq6 }, this.dp.nat.timeouts, now, this.ctClose6, NAT6);
    this.entries = r.remaining;
    this.entries6 = r6.remaining;
    this.expired += r.deleted;
    this.expired6 += r6.deleted;
    return r.deleted + r6.deleted;
  }

  /** One family's table: IPv4 NAT (tortie_nat4_v2) or NAT66 (tortie_nat6_v1; same size, quota and timeouts). */
  status(family: 4 | 6 = 4): NatStatus {
    const v6 = family === 6;
    const rows = readNatQuota(v6 ? this.dp.maps.natq6 : this.dp.maps.natq4);
    const { quota, maxEntries } = this.dp.nat;
    return {
      flows: rows.reduce((a, r) => a + r.live, 0), entries: (v6 ? this.dp.maps.nat6 : this.dp.maps.nat4).keys().length, capacity: maxEntries, quota,
      workloadsAtQuota: quota ? rows.filter((r) => r.live >= quota).length : 0,
      maxWorkloadFlows: rows[0]?.live ?? 0, expiredTotal: v6 ? this.expired6 : this.expired,
    };
  }
}
