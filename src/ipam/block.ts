/**
 * Allocation blocks: the unit a node claims from a pool, and pure functions over their records.
 *
 * A block record is stored as JSON under `blockKey(cidr)` exactly as libcalico-go stores its
 * AllocationBlock (lib/backend/model/block.go), field for field and in the same order:
 *   cidr          the block, e.g. "192.168.0.64/26" or "fd00:10::40/122" (Go's text form)
 *   affinity      "host:<node>" of the node that claimed it, or null (released / orphaned)
 *   affinity_claim_time  when the affinity was claimed (RFC 3339; newer Calico only, optional)
 *   allocations   one entry per address (ordinal = offset in the block): index into
 *                 `attributes`, or null when free
 *   unallocated   free ordinals in the order they will be handed out; a released ordinal is
 *                 appended at the end so a freed address is reused as late as possible
 *   attributes    {handle_id, secondary}: the handle that owns the addresses and the workload
 *                 attributes (node, namespace, pod, container id). Newer Calico also writes
 *                 attributes with `releasedAt` (an address in its release cooldown, owned by no
 *                 handle) and `alternateOwnerAttrs`; they are kept as they are.
 *   sequenceNumber  bumped on every write; Calico starts a block at its creation time in
 *                 nanoseconds, beyond 2^53 (see keys.ts BIG_INT_MARK: kept exact)
 *   sequenceNumberForAllocation  ordinal (as a string) → sequenceNumber when it was allocated
 *   deleted       false (Calico's Kubernetes-datastore deletion marker; a block marked deleted is
 *                 treated as absent)
 * Fields tortie does not know (hostAffinity, …) are carried through every change unchanged.
 *
 * Invariants (checked by `checkBlock`): allocations.length is the block size; every ordinal is
 * either in `unallocated` exactly once or allocated, never both; every attribute index is in
 * range. Every address is usable, network and broadcast addresses of the block or pool included.
 *
 * The functions here never mutate their input: they return a new record, so a caller can
 * compare-and-swap it against the revision it read.
 */
import { bigIntOf, bigIntValue } from '../datastore/keys';
import { metaTimestamp } from '../model/values';
import { cidr4Contains, cidr4Size, formatCidr4, tryParseCidr4 } from '../primitives';
import { IpamError } from './errors';
import { formatAddr, formatNet, netContains, netSize, parseNet, type IpNet, type IpNum } from './net';

/** libcalico-go's AllocationAttribute (json: handle_id, secondary; both omitted when unset). */
export interface AllocationAttribute {
  handle_id?: string | null;
  secondary?: Record<string, string> | null;
  /** Newer Calico: the address is in its release cooldown since then (RFC 3339). */
  releasedAt?: string;
  [other: string]: unknown;
}

export interface BlockRecord {
  cidr: string;
  affinity: string | null;
  affinity_claim_time?: string;
  allocations: (number | null)[];
  unallocated: number[];
  attributes: AllocationAttribute[];
  /** A number, or a keys.ts BIG_INT_MARK string when beyond 2^53. */
  sequenceNumber: number | string;
  sequenceNumberForAllocation: Record<string, number | string> | null;
  deleted: boolean;
  [other: string]: unknown;
}

/** Most addresses a block may hold (a /20 or a /116: Calico's smallest blockSize). */
const MAX_BLOCK_ADDRESSES = 4096;

/** A block CIDR of either family; throws ERR_IPAM_INVALID_ARGUMENT when it is none or too large to be a block. */
export function parseBlockNet(text: string, what = 'block cidr'): IpNet {
  const n = parseNet(text, what);
  if (netSize(n) > BigInt(MAX_BLOCK_ADDRESSES)) {
    throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `${what} ${JSON.stringify(text)} holds more than ${MAX_BLOCK_ADDRESSES} addresses (the largest block is a /20 or /116)`);
  }
  return n;
}

/** An IPv4 network as integers: `base` is the first address (u32), `size` the address count. */
export interface V4Net {
  base: number;
  prefix: number;
  size: number;
}

/** Parses an IPv4 CIDR (host bits masked off); throws ERR_IPAM_INVALID_ARGUMENT otherwise. */
export function parseV4Net(text: string, what = 'cidr'): V4Net {
  const c = tryParseCidr4(text);
  if (c === undefined) {
    throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `${what} ${JSON.stringify(text)} is not an IPv4 CIDR`);
  }
  return { base: c.addr, prefix: c.len, size: cidr4Size(c.len) };
}

export function formatV4Net(n: V4Net): string {
  return formatCidr4({ addr: n.base, len: n.prefix });
}

export function v4Contains(outer: V4Net, addr: number): boolean {
  return cidr4Contains({ addr: outer.base, len: outer.prefix }, addr);
}

/**
 * A fresh, empty block claimed by `affinity`. As Calico, its sequence number starts at the
 * creation time in nanoseconds, so a block deleted and created again never repeats one.
 */
export function newBlock(cidr: string, affinity: string | null, now: Date = new Date()): BlockRecord {
  const net = parseBlockNet(cidr);
  const size = Number(netSize(net));
  const b: BlockRecord = {
    cidr: formatNet(net),
    affinity,
    allocations: new Array<number | null>(size).fill(null),
    unallocated: Array.from({ length: size }, (_, i) => i),
    attributes: [],
    sequenceNumber: bigIntValue(BigInt(now.getTime()) * 1_000_000n),
    sequenceNumberForAllocation: {},
    deleted: false,
  };
  // Field order as libcalico-go writes it: affinity_claim_time follows affinity.
  return affinity === null ? b : withClaimTime(b, metaTimestamp(now));
}

/** The record with `affinity_claim_time` set (right after `affinity`) or removed (undefined). */
export function withClaimTime(b: BlockRecord, time: string | undefined): BlockRecord {
  const out: BlockRecord = { cidr: b.cidr, affinity: b.affinity } as BlockRecord;
  if (time !== undefined) out.affinity_claim_time = time;
  for (const [k, v] of Object.entries(b)) if (k !== 'affinity_claim_time' && !(k in out)) out[k] = v;
  return out;
}

/** The sequence number after one more write. */
export function nextSequence(b: BlockRecord): number | string {
  return bigIntValue((bigIntOf(b.sequenceNumber) ?? 0n) + 1n);
}

/** sequenceNumberForAllocation with `set` ordinals stamped with the current number and `clear` ones removed, keys sorted as Go writes a map. */
function stampSequences(b: BlockRecord, set: readonly number[], clear: readonly number[] = []): Record<string, number | string> {
  const m: Record<string, number | string> = { ...(b.sequenceNumberForAllocation ?? {}) };
  for (const o of clear) delete m[String(o)];
  for (const o of set) m[String(o)] = b.sequenceNumber;
  return sortedKeys(m);
}

function sortedKeys<V>(m: Record<string, V>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k]!;
  return out;
}

/** The attribute entry Calico writes for an allocation (secondary's keys sorted, as Go's map). */
function attribute(handleId: string, attrs: Record<string, string>): AllocationAttribute {
  return { handle_id: handleId, secondary: sortedKeys(attrs) };
}

/** Validates a record read from the datastore; throws ERR_IPAM_CORRUPT naming the problem. */
export function checkBlock(value: unknown, key: string): BlockRecord {
  const bad = (why: string): never => {
    throw new IpamError('ERR_IPAM_CORRUPT', `IPAM block at ${key} is invalid: ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('not an object');
  const b = value as Partial<BlockRecord>;
  if (typeof b.cidr !== 'string') bad('cidr is not a string');
  let size: number;
  try { size = Number(netSize(parseBlockNet(b.cidr!))); } catch (err) { return bad(`cidr: ${(err as Error).message}`); }
  if (!(b.affinity === null || typeof b.affinity === 'string')) bad('affinity is neither null nor a string');
  if (!Array.isArray(b.allocations) || b.allocations.length !== size) bad(`allocations must have ${size} entries`);
  if (!Array.isArray(b.unallocated)) bad('unallocated is not an array');
  if (!Array.isArray(b.attributes)) bad('attributes is not an array');
  if (bigIntOf(b.sequenceNumber) === undefined) bad('sequenceNumber is not an integer');
  if (b.sequenceNumberForAllocation !== undefined && b.sequenceNumberForAllocation !== null &&
    (typeof b.sequenceNumberForAllocation !== 'object' || Array.isArray(b.sequenceNumberForAllocation))) bad('sequenceNumberForAllocation is not an object');
  if (b.deleted !== undefined && typeof b.deleted !== 'boolean') bad('deleted is not a boolean');
  b.attributes!.forEach((a, i) => {
    if (typeof a !== 'object' || a === null || Array.isArray(a)) bad(`attribute ${i} is not an object`);
    if (a.handle_id !== undefined && a.handle_id !== null && typeof a.handle_id !== 'string') bad(`attribute ${i}: handle_id is not a string`);
    if (a.secondary !== undefined && a.secondary !== null && (typeof a.secondary !== 'object' || Array.isArray(a.secondary))) bad(`attribute ${i}: secondary is not an object`);
  });
  const seen = new Set<number>();
  for (const o of b.unallocated!) {
    if (!Number.isInteger(o) || o < 0 || o >= size) bad(`unallocated ordinal ${o} out of range`);
    if (seen.has(o)) bad(`ordinal ${o} listed twice in unallocated`);
    if (b.allocations![o] !== null) bad(`ordinal ${o} is both allocated and unallocated`);
    seen.add(o);
  }
  b.allocations!.forEach((a, o) => {
    if (a === null) {
      if (!seen.has(o)) bad(`ordinal ${o} is neither allocated nor unallocated`);
    } else if (!Number.isInteger(a) || a < 0 || a >= b.attributes!.length) {
      bad(`ordinal ${o} refers to missing attribute ${a}`);
    }
  });
  // Calico leaves attribute entries nobody references (a findOrAddAttribute match, then a
  // release), so an unreferenced entry is not an error; tortie's own releases drop them.
  return b as BlockRecord;
}

export function blockNet(b: BlockRecord): IpNet {
  return parseBlockNet(b.cidr);
}

/** Addresses the block holds. */
export function blockSize(b: BlockRecord): number {
  return b.allocations.length;
}

export function ordinalToIp(b: BlockRecord, ordinal: number): string {
  const n = blockNet(b);
  return formatAddr({ family: n.family, value: n.base + BigInt(ordinal) });
}

export function ipToOrdinal(b: BlockRecord, ip: IpNum): number | undefined {
  const n = blockNet(b);
  return netContains(n, ip) ? Number(ip.value - n.base) : undefined;
}

export function inUse(b: BlockRecord): number {
  return b.allocations.length - b.unallocated.length;
}

/**
 * The handle owning an attribute entry; '' for none. A '\\r' and what follows is dropped, as
 * Calico does (its host-local migration once wrote such handles).
 */
export function handleOf(a: AllocationAttribute | undefined): string {
  const h = a?.handle_id;
  return typeof h === 'string' ? h.split('\r')[0]! : '';
}

/** The attributes of an entry (empty when unset). */
export function secondaryOf(a: AllocationAttribute | undefined): Record<string, string> {
  return a?.secondary ?? {};
}

/** Ordinals owned by `handleId`, in address order. */
export function ordinalsOfHandle(b: BlockRecord, handleId: string): number[] {
  const out: number[] = [];
  b.allocations.forEach((a, o) => {
    if (a !== null && handleOf(b.attributes[a]) === handleId) out.push(o);
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
      attributes: [...b.attributes, attribute(handleId, attrs)],
      sequenceNumber: nextSequence(b),
      sequenceNumberForAllocation: stampSequences(b, ordinals),
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
    attributes: [...b.attributes, attribute(handleId, attrs)],
    sequenceNumber: nextSequence(b),
    sequenceNumberForAllocation: stampSequences(b, [ordinal]),
  };
}

/** `allocations` pointing at the attribute entries still referenced, kept in their order. */
function dropUnreferenced(allocations: (number | null)[], attrs: readonly AllocationAttribute[]): { allocations: (number | null)[]; attributes: AllocationAttribute[] } {
  const used = new Set<number>();
  for (const a of allocations) if (a !== null && a !== undefined) used.add(a);
  const remap = new Map<number, number>();
  const attributes: AllocationAttribute[] = [];
  attrs.forEach((attr, i) => {
    if (!used.has(i)) return;
    remap.set(i, attributes.length);
    attributes.push(attr);
  });
  return { allocations: allocations.map((a) => (a === null || a === undefined ? null : remap.get(a)!)), attributes };
}

/**
 * Frees every ordinal owned by `handleId` (or only `only`, when given) and drops attribute
 * entries nobody references any more. Returns the freed ordinals (none: record unchanged).
 * With `cooldownSince` (Calico's ipCooldownSeconds > 0) the ordinals are not freed yet: they
 * point at a new `{releasedAt}` entry, owned by no handle, until `collectCooldown` frees them.
 */
export function releaseHandle(b: BlockRecord, handleId: string, only?: ReadonlySet<number>, cooldownSince?: string):
  { block: BlockRecord; ordinals: number[] } {
  const freed = ordinalsOfHandle(b, handleId).filter((o) => only === undefined || only.has(o));
  if (freed.length === 0) return { block: b, ordinals: [] };
  const all = b.allocations.slice();
  const attrs = cooldownSince === undefined ? b.attributes : [...b.attributes, { releasedAt: cooldownSince }];
  for (const o of freed) all[o] = cooldownSince === undefined ? null : attrs.length - 1;
  const { allocations, attributes } = dropUnreferenced(all, attrs);
  return {
    block: {
      ...b,
      allocations,
      unallocated: cooldownSince === undefined ? [...b.unallocated, ...freed] : b.unallocated,
      attributes,
      sequenceNumber: nextSequence(b),
      sequenceNumberForAllocation: cooldownSince === undefined ? stampSequences(b, [], freed) : stampSequences(b, freed),
    },
    ordinals: freed,
  };
}

/**
 * Frees the addresses whose release cooldown is over (attribute `releasedAt` more than
 * `cooldownSeconds` ago; with 0, every one), as Calico's garbageCollect does before it uses a
 * block. Returns the record unchanged when there is nothing to free.
 */
export function collectCooldown(b: BlockRecord, cooldownSeconds: number, now: Date = new Date()): BlockRecord {
  const limit = now.getTime() - cooldownSeconds * 1000;
  const done: number[] = [];
  b.allocations.forEach((a, o) => {
    const at = a === null ? undefined : b.attributes[a]?.releasedAt;
    if (typeof at !== 'string') return;
    if (cooldownSeconds === 0 || !(Date.parse(at) >= limit)) done.push(o);
  });
  if (done.length === 0) return b;
  const all = b.allocations.slice();
  for (const o of done) all[o] = null;
  const { allocations, attributes } = dropUnreferenced(all, b.attributes);
  return {
    ...b,
    allocations,
    unallocated: [...b.unallocated, ...done],
    attributes,
    sequenceNumber: nextSequence(b),
    sequenceNumberForAllocation: stampSequences(b, [], done),
  };
}

/** "192.168.0.64/26" → "192.168.0.64-26", "fd00::40/122" → "fd00::40-122": the form used as a datastore key segment. */
export function cidrToSegment(cidr: string): string {
  return cidr.replace('/', '-');
}

export function segmentToCidr(seg: string): string {
  const i = seg.lastIndexOf('-');
  return i < 0 ? seg : `${seg.slice(0, i)}/${seg.slice(i + 1)}`;
}
