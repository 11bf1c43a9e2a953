/**
 * `ipam check` (calicoctl's consistency report): compares what IPAM has allocated with what the
 * datastore's WorkloadEndpoints and Nodes use, so leaks left by runtimes that never called DEL
 * (or addresses in use that IPAM does not know about) can be found and released.
 *
 *   leaked      allocated to a workload (attributes carry a containerID, or Calico's pod) but held by no
 *               WorkloadEndpoint, or the endpoint holding it is another container's
 *   unknown     an endpoint address inside a pool that IPAM has not allocated
 *   duplicate   one address on several endpoints
 *   tunnel      a Node's ipv4IPIPTunnelAddr not allocated to its `ipip-tunnel-addr-<node>` handle
 * Pure read: nothing is changed. Releasing a leak is `IpamClient.releaseByHandle(handleId)`.
 */
import type { Datastore } from '../datastore/types';
import { resourcePrefix } from '../datastore/keys';
import { handleOf, ordinalToIp, secondaryOf } from './block';
import { compareAddrText, formatAddr, netContains, tryParseAddr } from './net';
import { IpamClient } from './client';

export interface IpamAllocation { ip: string; block: string; handleId: string; attrs: Record<string, string> }
export interface IpamCheckReport {
  blocks: number;
  allocations: number;
  endpoints: number;
  leaked: IpamAllocation[];
  unknown: { ip: string; endpoint: string }[];
  duplicate: { ip: string; endpoints: string[] }[];
  tunnel: { node: string; ip: string; problem: string }[];
}

interface WepLite { name: string; namespace: string; containerID?: string; pod?: string; ips: string[] }

export async function ipamCheck(ds: Datastore): Promise<IpamCheckReport> {
  const ipam = new IpamClient(ds);
  const [blocks, pools, wepList, nodeList] = await Promise.all([
    ipam.listBlocks(), ipam.listPools(), ds.list(resourcePrefix('workloadendpoints')), ds.list(resourcePrefix('nodes')),
  ]);
  const allocs = new Map<string, IpamAllocation>();
  for (const b of blocks) {
    b.allocations.forEach((a, o) => {
      if (a === null) return;
      const attr = b.attributes[a]!;
      const ip = ordinalToIp(b, o);
      if (typeof attr.releasedAt === 'string') return; // in Calico's release cooldown: owned by nobody
      allocs.set(ip, { ip, block: b.cidr, handleId: handleOf(attr), attrs: secondaryOf(attr) });
    });
  }
  const weps: WepLite[] = wepList.items.map((kv) => {
    const v = kv.value as { metadata?: { name?: string; namespace?: string }; spec?: { containerID?: string; pod?: string; ipNetworks?: string[] } };
    return {
      name: `${v.metadata?.namespace ?? 'default'}/${v.metadata?.name ?? kv.key}`,
      namespace: v.metadata?.namespace ?? 'default',
      containerID: v.spec?.containerID,
      pod: v.spec?.pod,
      // Both families, in the canonical text the allocations are keyed by.
      ips: (v.spec?.ipNetworks ?? []).map((n) => { const a = tryParseAddr(n.split('/')[0]!); return a === undefined ? n.split('/')[0]! : formatAddr(a); }),
    };
  });
  const byIp = new Map<string, WepLite[]>();
  for (const w of weps) for (const ip of w.ips) byIp.set(ip, [...(byIp.get(ip) ?? []), w]);

  const report: IpamCheckReport = {
    blocks: blocks.length, allocations: allocs.size, endpoints: weps.length, leaked: [], unknown: [], duplicate: [], tunnel: [],
  };
  for (const a of allocs.values()) {
    // A workload allocation: tortie's CNI records the containerID, Calico's the pod (k8s).
    if (a.attrs.containerID === undefined && a.attrs.pod === undefined) continue; // tunnel address, manual
    const holders = byIp.get(a.ip) ?? [];
    const holds = (w: WepLite): boolean => a.attrs.containerID !== undefined
      ? !w.containerID || w.containerID === a.attrs.containerID
      : w.pod === undefined || (w.pod === a.attrs.pod && (a.attrs.namespace === undefined || w.namespace === a.attrs.namespace));
    if (!holders.some(holds)) report.leaked.push(a);
  }
  for (const [ip, holders] of byIp) {
    if (holders.length > 1) report.duplicate.push({ ip, endpoints: holders.map((w) => w.name).sort() });
    const n = tryParseAddr(ip);
    if (!allocs.has(ip) && n !== undefined && pools.some((p) => netContains(p.net, n))) {
      for (const w of holders) report.unknown.push({ ip, endpoint: w.name });
    }
  }
  for (const kv of nodeList.items) {
    const v = kv.value as { metadata?: { name?: string }; spec?: { bgp?: { ipv4IPIPTunnelAddr?: string } } };
    const node = v.metadata?.name;
    const tip = v.spec?.bgp?.ipv4IPIPTunnelAddr;
    if (!node || !tip) continue;
    const a = allocs.get(tip);
    if (!a) report.tunnel.push({ node, ip: tip, problem: 'not allocated in IPAM' });
    else if (a.handleId !== `ipip-tunnel-addr-${node}`) report.tunnel.push({ node, ip: tip, problem: `allocated to handle ${a.handleId}` });
  }
  report.leaked.sort((x, y) => compareAddrText(x.ip, y.ip));
  report.unknown.sort((x, y) => compareAddrText(x.ip, y.ip));
  return report;
}

/**
 * Text in the spirit of `calicoctl ipam check`: the counts, and with `showIps` (default) each
 * problem address under its count (calicoctl's --show-problem-ips).
 */
export function renderIpamCheck(r: IpamCheckReport, opts: { showIps?: boolean } = {}): string {
  const list = opts.showIps ?? true;
  const out = [
    'Checking IPAM for inconsistencies...',
    '',
    `Found ${r.blocks} IPAM blocks with ${r.allocations} allocated addresses.`,
    `Found ${r.endpoints} workload endpoints.`,
    `Found ${r.leaked.length} in-use IPs that are not in active workload endpoints.`,
  ];
  if (list) for (const l of r.leaked) out.push(`  ${l.ip} handle ${l.handleId} (${Object.entries(l.attrs).map(([k, v]) => `${k}=${v}`).join(', ')})`);
  out.push(`Found ${r.unknown.length} workload endpoint IPs that are not allocated in IPAM.`);
  if (list) for (const u of r.unknown) out.push(`  ${u.ip} on ${u.endpoint}`);
  out.push(`Found ${r.duplicate.length} IPs used by more than one workload endpoint.`);
  if (list) for (const d of r.duplicate) out.push(`  ${d.ip} on ${d.endpoints.join(', ')}`);
  out.push(`Found ${r.tunnel.length} node tunnel addresses with problems.`);
  if (list) for (const t of r.tunnel) out.push(`  ${t.node}: ${t.ip} ${t.problem}`);
  out.push('', r.leaked.length + r.unknown.length + r.duplicate.length + r.tunnel.length === 0 ? 'No problems found.' : 'Problems found.');
  return out.join('\n') + '\n';
}
