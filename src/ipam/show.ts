/**
 * `tortiectl ipam show`: usage data per pool and per block/node, and a renderer in calicoctl's
 * table style (`+---+` borders, centred upper-case headers, numbers right-aligned,
 * "N (P%)" usage cells).
 */
import type { Datastore } from '../datastore/types';
import { handleOf, inUse, ordinalToIp, secondaryOf, type BlockRecord } from './block';
import { compareAddrText, compareNets, netCovers, netSize, parseNet } from './net';
import { IpamClient } from './client';

export interface BlockUsage {
  cidr: string;
  /** Node the block is affine to, or '' (released / orphaned). */
  node: string;
  size: number;
  inUse: number;
  free: number;
}

export interface PoolUsage {
  name: string;
  cidr: string;
  disabled: boolean;
  size: number;
  inUse: number;
  free: number;
  blocks: BlockUsage[];
}

export interface NodeUsage {
  node: string;
  blocks: string[];
  inUse: number;
  /** Addresses this node's workloads hold in other nodes' blocks are not counted here. */
  capacity: number;
}

/** An address a node uses from a block affine to another node (or to none). */
export interface BorrowedIp {
  ip: string;
  /** The node using it (its allocation's `node` attribute). */
  node: string;
  block: string;
  /** The node the block is affine to ('' if none). */
  blockOwner: string;
  handleId: string;
  /** e.g. "default/pod-a" when the allocation records namespace and pod. */
  allocatedTo: string;
}

export interface IpamShow {
  pools: PoolUsage[];
  borrowed: BorrowedIp[];
  nodes: NodeUsage[];
  /** Blocks whose CIDR lies in no current pool (pool deleted while addresses were in use). */
  orphanBlocks: BlockUsage[];
}

function blockUsage(b: BlockRecord): BlockUsage {
  const used = inUse(b);
  return {
    cidr: b.cidr,
    node: b.affinity?.startsWith('host:') ? b.affinity.slice(5) : '',
    size: b.allocations.length,
    inUse: used,
    free: b.allocations.length - used,
  };
}

export async function ipamShow(ds: Datastore): Promise<IpamShow> {
  const client = new IpamClient(ds);
  const [pools, blocks] = await Promise.all([client.listPools(), client.listBlocks()]);
  const usage = blocks.map(blockUsage).sort((a, b) => compareNets(parseNet(a.cidr), parseNet(b.cidr)));
  const claimed = new Set<BlockUsage>();
  const poolRows: PoolUsage[] = pools.map((p) => {
    const mine = usage.filter((u) => netCovers(p.net, parseNet(u.cidr)));
    mine.forEach((u) => claimed.add(u));
    const used = mine.reduce((s, u) => s + u.inUse, 0);
    // An IPv6 pool's size is beyond 2^53: a float, as calicoctl's (it prints it with %.5g).
    const size = Number(netSize(p.net));
    return { name: p.name, cidr: p.cidr, disabled: p.disabled, size, inUse: used, free: size - used, blocks: mine };
  });
  const byNode = new Map<string, NodeUsage>();
  for (const u of usage) {
    if (!u.node) continue;
    let n = byNode.get(u.node);
    if (!n) byNode.set(u.node, n = { node: u.node, blocks: [], inUse: 0, capacity: 0 });
    n.blocks.push(u.cidr);
    n.inUse += u.inUse;
    n.capacity += u.size;
  }
  const borrowed: BorrowedIp[] = [];
  for (const b of blocks) {
    const owner = b.affinity?.startsWith('host:') ? b.affinity.slice(5) : '';
    b.allocations.forEach((a, o) => {
      if (a === null) return;
      const attr = b.attributes[a]!;
      if (typeof attr.releasedAt === 'string') return; // in Calico's release cooldown
      const sec = secondaryOf(attr);
      const node = sec.node ?? '';
      if (node === owner) return;
      const ns = sec.namespace;
      const pod = sec.pod;
      borrowed.push({
        ip: ordinalToIp(b, o), node, block: b.cidr, blockOwner: owner, handleId: handleOf(attr),
        allocatedTo: pod ? `${ns ?? 'default'}/${pod}` : (sec.containerID ?? ''),
      });
    });
  }
  borrowed.sort((x, y) => compareAddrText(x.ip, y.ip));
  return {
    pools: poolRows,
    borrowed,
    nodes: [...byNode.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
    orphanBlocks: usage.filter((u) => !claimed.has(u)),
  };
}

/** A count as calicoctl prints it: exact up to 2^53, beyond (IPv6 pools) Go's %.5g. */
function count(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : n.toPrecision(5);
}

function pct(n: number, total: number): string {
  return `${count(n)} (${total === 0 ? 0 : Math.round((100 * n) / total)}%)`;
}

type Align = 'left' | 'right';

/** A calicoctl-style table (the tablewriter look calicoctl prints). */
export function renderTable(headers: string[], rows: string[][], align: Align[], headingGap: 'ceil' | 'floor' = 'ceil'): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  // Go's tablewriter puts floor(gap / 2) spaces left of a heading (`node status` follows it).
  const centre = (s: string, w: number): string => {
    const left = (headingGap === 'floor' ? Math.floor : Math.ceil)((w - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
  };
  const cell = (s: string, w: number, a: Align): string => (a === 'right' ? s.padStart(w) : s.padEnd(w));
  const out = [line, '| ' + headers.map((h, i) => centre(h, widths[i]!)).join(' | ') + ' |', line];
  for (const r of rows) out.push('| ' + r.map((c, i) => cell(c, widths[i]!, align[i] ?? 'left')).join(' | ') + ' |');
  out.push(line);
  return out.join('\n') + '\n';
}

/**
 * The `ipam show` text. Without `showBlocks`: one row per pool. With it: each pool followed by
 * its blocks, then a table of blocks per node (tortie's addition: which node holds which block).
 */
export function renderIpamShow(data: IpamShow, opts: { showBlocks?: boolean } = {}): string {
  const headers = ['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE'];
  const align: Align[] = ['left', 'left', 'right', 'left', 'left'];
  const rows: string[][] = [];
  for (const p of data.pools) {
    rows.push(['IP Pool', p.cidr, count(p.size), pct(p.inUse, p.size), pct(p.free, p.size)]);
    if (opts.showBlocks) {
      for (const b of p.blocks) rows.push(['Block', b.cidr, String(b.size), pct(b.inUse, b.size), pct(b.free, b.size)]);
    }
  }
  if (opts.showBlocks) {
    for (const b of data.orphanBlocks) rows.push(['Block', b.cidr, String(b.size), pct(b.inUse, b.size), pct(b.free, b.size)]);
  }
  let out = renderTable(headers, rows, align);
  if (opts.showBlocks) {
    const nodeRows = data.nodes.map((n) => [n.node, n.blocks.join(', '), String(n.capacity), pct(n.inUse, n.capacity)]);
    out += renderTable(['NODE', 'BLOCKS', 'IPS TOTAL', 'IPS IN USE'], nodeRows, ['left', 'left', 'right', 'left']);
  }
  return out;
}

/** `ipam show --show-borrowed`: one row per borrowed address. */
export function renderBorrowed(data: IpamShow): string {
  const rows = data.borrowed.map((b) => [b.ip, b.node || '<none>', b.block, b.blockOwner || '<none>', 'pod', b.allocatedTo || b.handleId]);
  return renderTable(['IP', 'BORROWING-NODE', 'BLOCK', 'BLOCK OWNER', 'TYPE', 'ALLOCATED-TO'], rows, ['left', 'left', 'left', 'left', 'left', 'left']);
}
