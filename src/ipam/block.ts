/**
 * Allocation blocks: the unit a node claims from a pool, and pure functions over their records.
 *
 * A block record (stored as JSON under `blockKey(cidr)`) is Calico's AllocationBlock in our
 * own spelling:
 *   cidr          the block, e.g. "192.168.0.64/26" (IPv4 only in this version)
 *   affinity      "host:<node>" of the node that claimed it, or null (released / orphaned)
 *   allocations   one entry per address (ordinal = offset in the block): index into
 *                 `attributes`, or null when free
 *   unallocated   free ordinals in the order they will be handed out; a released ordinal is
 *                 appended at the end so a freed address is reused as late as possible
 *   attributes    one entry per allocation call: the handle that owns the addresses and the
 *                 workload attributes (node, namespace, pod, container id)
 *   sequenceNumber  bumped on every change (a cheap "did it change" for readers)
 *
 * Invariants (checked by `checkBlock`): allocations.length is the block size; every ordinal is
 * either in `unallocated` exactly once or allocated, never both; every attribute index is in
 * range and every attribute is referenced. Every address is usable, network and broadcast
 * addresses of the block or pool included.
 *
 * The functions here never mutate their input: they return a new record, so a caller can
 * compare-and-swap it against the revision it read.
 */
import { parseCidr, type Cidr } from '../model/values';
import { IpamError } from './errors';

export interface AllocationAttribute {
  handle_id: string | null;
  secondary: Record<string, string>;
}

export interface BlockRecord {
  cidr: string;
  affinity: string | null;
  allocations: (number | null)[];
  unallocated: number[];
  attributes: AllocationAttribute[];
  sequenceNumber: number;
}

/** An IPv4 network as integers: `base` is the first address (u32), `size` the address count. */
export interface V4Net {
  base: number;
  prefix: number;
  size: number;
}

export function ipv4ToInt(bytes: readonly number[]): number {
  return ((bytes[0]! << 24) >>> 0) + (bytes[1]! << 16) + (bytes[2]! << 8) + bytes[3]!;
}

export function intToIpv4(n: number): string {
  return `${(n >>> 24) & 0xff}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** Parses an IPv4 CIDR (host bits masked off); throws ERR_IPAM_INVALID_ARGUMENT otherwise. */
export function parseV4Net(text: string, what = 'cidr'): V4Net {
  const c: Cidr | null = parseCidr(text, false);
  if (c === null || c.ip.version !== 4) {
    throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `${what} ${JSON.stringify(text)} is not an IPv4 CIDR`);
  }
  const size = 2 ** (32 - c.prefix);
  const base = size === 2 ** 32 ? 0 : Math.floor(ipv4ToInt(c.ip.bytes) / size) * size;
  return { base, prefix: c.prefix, size };
}

export function formatV4Net(n: V4Net): string {
  return `${intToIpv4(n.base)}/${n.prefix}`;
}

export function v4Contains(outer: V4Net, addr: number): boolean {
  return addr >= outer.base && addr < outer.base + outer.size;
}

/** A fresh, empty block claimed by `affinity`. */
export function newBlock(cidr: string, affinity: string | null): BlockRecord {
  const net = parseV4Net(cidr, 'block cidr');
  return {
    cidr: formatV4Net(net),
    affinity,
    allocations: new Array<number | null>(net.size).fill(null),
    unallocated: Array.from({ length: net.size }, (_, i) => i),
    attributes: [],
    sequenceNumber: 0,
  };
}

/** Validates a record read from the datastore; throws ERR_IPAM_CORRUPT naming the problem. */
export function checkBlock(value: unknown, key: string): BlockRecord {
  const bad = (why: string): never => {
    throw new IpamError('ERR_IPAM_CORRUPT', `IPAM block at ${key} is invalid: ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('not an object');
  const b = value as Partial<BlockRecord>;
  if (typeof b.cidr !== 'string') bad('cidr is not a string');
  let net: V4Net;
  try { net = parseV4Net(b.cidr!); } catch { return bad(`cidr ${JSON.stringify(b.cidr)} is not an IPv4 CIDR`); }
  if (!(b.affinity === null || typeof b.affinity === 'string')) bad('affinity is neither null nor a string');
  if (!Array.isArray(b.allocations) || b.allocations.length !== net.size) bad(`allocations must have ${net.size} entries`);
  if (!Array.isArray(b.unallocated)) bad('unallocated is not an array');
  if (!Array.isArray(b.attributes)) bad('attributes is not an array');
  if (typeof b.sequenceNumber !== 'number') bad('sequenceNumber is not a number');
  const seen = new Set<number>();
  for (const o of b.unallocated!) {
    if (!Number.isInteger(o) || o < 0 || o >= net.size) bad(`unallocated ordinal ${o} out of range`);
    if (seen.has(o)) bad(`ordinal ${o} listed twice in unallocated`);
    if (b.allocations![o] !== null) bad(`ordinal ${o} is both allocated and unallocated`);
    seen.add(o);
  }
  const used = new Set<number>();
  b.allocations!.forEach((a, o) => {
    if (a === null) {
      if (!seen.has(o)) bad(`ordinal ${o} is neither allocated nor unallocated`);
    } else {
      if (!Number.isInteger(a) || a < 0 || a >= b.attributes!.length) bad(`ordinal ${o} refers to missing attribute ${a}`);
      used.add(a);
    }
  });
  if (used.size !== b.attributes!.length) bad('an attribute entry is not referenced by any allocation');
  return b as BlockRecord;
}

export function blockNet(b: BlockRecord): V4Net {
  return parseV4Net(b.cidr);
}

export function ordinalToIp(b: BlockRecord, ordinal: number): string {
  return intToIpv4(blockNet(b).base + ordinal);
}

export function ipToOrdinal(b: BlockRecord, ip: number): number | undefined {
  const n = blockNet(b);
  return v4Contains(n, ip) ? ip - n.base : undefined;
}

export function inUse(b: BlockRecord): number {
  return b.allocations.length - b.unallocated.length;
}

/** Ordinals owned by `handleId`, in address order. */
export function ordinalsOfHandle(b: BlockRecord, handleId: string): number[] {
  const out: number[] = [];
  b.allocations.forEach((a, o) => {
    if (a !== null && b.attributes[a]?.handle_id === handleId) out.push(o);
  });
  return out;
}

/**
 * Takes up to `count` free ordinals for `handleId`; returns the new record and the ordinals
 * (fewer than asked when the block runs out, none when it is full).
 */
export function allocate(b: BlockRecord, count: number, handleId: string, attrs: Record<string, string>,
  skip?: (ordinal: number) => boolean): { block: BlockRecord; ordinals: number[] } {
  // Ordinals `skip` refuses (reserved addresses) stay unallocated, in their place in the list.
  const free = skip === undefined ? b.unallocated : b.unallocated.filter((o) => !skip(o));
  const n = Math.min(count, free.length);
  if (n <= 0) return { block: b, ordinals: [] };
  const ordinals = free.slice(0, n);
  const taken = new Set(ordinals);
  const attrIndex = b.attributes.length;
  const allocations = b.allocations.slice();
  for (const o of ordinals) allocations[o] = attrIndex;
  return {
    block: {
      ...b,
      allocations,
      unallocated: skip === undefined ? b.unallocated.slice(n) : b.unallocated.filter((o) => !taken.has(o)),
      attributes: [...b.attributes, { handle_id: handleId, secondary: { ...attrs } }],
      sequenceNumber: b.sequenceNumber + 1,
    },
    ordinals,
  };
}

/** Takes one specific ordinal for `handleId`; undefined when it is already allocated. */
export function allocateOrdinal(b: BlockRecord, ordinal: number, handleId: string, attrs: Record<string, string>): BlockRecord | undefined {
  if (ordinal < 0 || ordinal >= b.allocations.length || b.allocations[ordinal] !== null) return undefined;
  const allocations = b.allocations.slice();
  allocations[ordinal] = b.attributes.length;
  return {
    ...b,
    allocations,
    unallocated: b.unallocated.filter((o) => o !== ordinal),
    attributes: [...b.attributes, { handle_id: handleId, secondary: { ...attrs } }],
    sequenceNumber: b.sequenceNumber + 1,
  };
}

/**
 * Frees every ordinal owned by `handleId` (or only `only`, when given) and drops attribute
 * entries nobody references any more. Returns the freed ordinals (none: record unchanged).
 */
export function releaseHandle(b: BlockRecord, handleId: string, only?: ReadonlySet<number>):
  { block: BlockRecord; ordinals: number[] } {
  const freed = ordinalsOfHandle(b, handleId).filter((o) => only === undefined || only.has(o));
  if (freed.length === 0) return { block: b, ordinals: [] };
  const allocations = b.allocations.slice();
  for (const o of freed) allocations[o] = null;
  // Renumber the attributes still referenced, preserving their order.
  const remap = new Map<number, number>();
  const attributes: AllocationAttribute[] = [];
  for (let o = 0; o < allocations.length; o++) {
    const a = allocations[o];
    if (a === null || a === undefined) continue;
    let m = remap.get(a);
    if (m === undefined) {
      m = attributes.length;
      remap.set(a, m);
      attributes.push(b.attributes[a]!);
    }
    allocations[o] = m;
  }
  return {
    block: {
      ...b,
      allocations,
      unallocated: [...b.unallocated, ...freed],
      attributes,
      sequenceNumber: b.sequenceNumber + 1,
    },
    ordinals: freed,
  };
}

/** "192.168.0.64/26" → "192.168.0.64-26": the form used as a datastore key segment. */
export function cidrToSegment(cidr: string): string {
  return cidr.replace('/', '-');
}

export function segmentToCidr(seg: string): string {
  const i = seg.lastIndexOf('-');
  return i < 0 ? seg : `${seg.slice(0, i)}/${seg.slice(i + 1)}`;
}
