/**
 * IpamClient: Calico-style block IPAM over any `Datastore`, safe under concurrent use from many
 * processes and nodes because every change is a compare-and-swap on one key.
 *
 * Datastore layout (all JSON):
 *   /tortie/ipam/v2/block/<a.b.c.d-NN>                       BlockRecord (block.ts)
 *   /tortie/ipam/v2/host/<node>/ipv4/block/<a.b.c.d-NN>      {state: pending|confirmed}: the
 *                                                            per-node index of claimed blocks
 *   /tortie/ipam/v2/handle/<handleId>                        {handleId, blocks: [cidr…]}: the
 *                                                            blocks that may hold the handle's
 *                                                            addresses
 *
 * Assignment (for one handle, on one node):
 *   0. If the handle already owns addresses, return them (assign is idempotent by handle).
 *   1. Try the node's own blocks (affinity `host:<node>`), lowest address first.
 *   2. All full (or none yet): claim a block no node has claimed, from a usable pool: pending
 *      affinity → create the block (fails if someone else created it first) → confirm. There is
 *      no per-node block limit and nothing is claimed ahead of need.
 *   3. No unclaimed block left in any usable pool: borrow a free address from another node's
 *      block (Calico's non-strict affinity), so every address of the pool can be handed out.
 *   A usable pool is IPv4, not `disabled`, allows Workload use, and its `nodeSelector` matches
 *   the Node resource's labels (a missing Node has no labels). Addresses inside an
 *   IPReservation's reservedCIDRs are skipped (they stay free in their block) and refused when
 *   requested by address (assignIp: ERR_IPAM_RESERVED).
 *
 * Consistency: before an address is written into a block, the handle record names that block;
 * so a crash between the two writes leaves at worst a handle pointing at a block without its
 * address (harmless), never an address that release-by-handle cannot find (a leak). A block
 * write is a CAS on the revision read; on conflict the block is re-read and the choice redone,
 * so two writers can never take the same ordinal.
 */
import { createHash } from 'node:crypto';
import type { Datastore, JsonValue, KeyValue } from '../datastore/types';
import { casLoop } from '../datastore/cas';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../datastore/errors';
import { resourceKey, resourcePrefix, tortieKey } from '../datastore/keys';
import { parseSelector } from '../selector';
import { silentLogger, type Logger } from '../util/log';
import { BACKOFF } from '../util/retry';
import {
  allocate, allocateOrdinal, checkBlock, cidrToSegment, formatV4Net, inUse, intToIpv4, ipv4ToInt, newBlock, ordinalToIp,
  ordinalsOfHandle, parseV4Net, releaseHandle, segmentToCidr, v4Contains, type BlockRecord, type V4Net,
} from './block';
import { IpamError } from './errors';

export const DEFAULT_BLOCK_SIZE = 26;
const HANDLE_RE = /^[A-Za-z0-9][A-Za-z0-9._:@=+-]{0,252}$/;

export interface PoolInfo {
  name: string;
  cidr: string;
  net: V4Net;
  blockSize: number;
  disabled: boolean;
  nodeSelector: string;
  ipipMode: string;
  natOutgoing: boolean;
  /** Calico's allowedUses: 'Workload', 'Tunnel'. */
  allowedUses: string[];
}

export interface AssignArgs {
  /** Owner of the addresses; Calico's CNI uses `<network>.<containerID>`. */
  handleId: string;
  node: string;
  /** Stored with the allocation (namespace, pod, container id, …); `node` is always added. */
  attrs?: Record<string, string>;
  /** Number of addresses (default 1). */
  num?: number;
  /** Restrict to these pools (names or CIDRs); they must still be usable by the node. */
  pools?: string[];
  /** What the address is for (pool `allowedUses`); default Workload. */
  use?: 'Workload' | 'Tunnel';
}

export interface AssignedIp {
  /** e.g. "192.168.0.5" */
  ip: string;
  /** Host route form, e.g. "192.168.0.5/32". */
  cidr: string;
  block: string;
  /** Name of the pool containing the block ('' if the pool has since been deleted). */
  pool: string;
}

export interface AssignResult {
  ips: AssignedIp[];
  /** True when the handle already owned these addresses (a repeated assign). */
  existing: boolean;
}

export interface IpamClientOptions {
  logger?: Logger;
  /** CAS attempts per key before giving up with a recoverable ERR_IPAM_CONTENTION. */
  maxRetries?: number;
}

interface HandleRecord { handleId: string; blocks: string[] }

export function blockKey(cidr: string): string {
  return tortieKey('ipam', 'v2', 'block', cidrToSegment(cidr));
}
export function blockPrefix(): string {
  return tortieKey('ipam', 'v2', 'block') + '/';
}
export function affinityKey(node: string, cidr: string): string {
  return tortieKey('ipam', 'v2', 'host', node, 'ipv4', 'block', cidrToSegment(cidr));
}
export function affinityPrefix(node: string): string {
  return tortieKey('ipam', 'v2', 'host', node, 'ipv4', 'block') + '/';
}
export function handleKey(handleId: string): string {
  return tortieKey('ipam', 'v2', 'handle', handleId);
}

/** Parses a stored IPPool resource loosely (the resource layer validated it on write). */
export function poolFromResource(value: unknown): PoolInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as { metadata?: { name?: unknown }; spec?: Record<string, unknown> };
  const spec = r.spec ?? {};
  if (typeof spec.cidr !== 'string' || typeof r.metadata?.name !== 'string') return undefined;
  let net: V4Net;
  try { net = parseV4Net(spec.cidr); } catch { return undefined; } // IPv6 pools: not handled by this IPAM yet
  const blockSize = typeof spec.blockSize === 'number' ? spec.blockSize : DEFAULT_BLOCK_SIZE;
  if (blockSize < net.prefix || blockSize > 32) return undefined;
  const uses = Array.isArray(spec.allowedUses) ? spec.allowedUses.filter((u): u is string => typeof u === 'string') : ['Workload', 'Tunnel'];
  return {
    name: r.metadata.name,
    cidr: formatV4Net(net),
    net,
    blockSize,
    disabled: spec.disabled === true,
    nodeSelector: typeof spec.nodeSelector === 'string' ? spec.nodeSelector : 'all()',
    ipipMode: typeof spec.ipipMode === 'string' ? spec.ipipMode : 'Never',
    natOutgoing: spec.natOutgoing === true,
    allowedUses: uses,
  };
}

/** The IPv4 ranges of a stored IPReservation (IPv6 entries: this IPAM never assigns IPv6). */
export function reservedFromResource(value: unknown): V4Net[] {
  const spec = (value as { spec?: { reservedCIDRs?: unknown } } | null)?.spec;
  if (!Array.isArray(spec?.reservedCIDRs)) return [];
  const out: V4Net[] = [];
  for (const c of spec.reservedCIDRs) {
    if (typeof c !== 'string') continue;
    try { out.push(parseV4Net(c.includes('/') ? c : `${c}/32`)); } catch { /* IPv6 */ }
  }
  return out;
}

export class IpamClient {
  private readonly log: Logger;
  private readonly maxRetries: number;

  constructor(private readonly ds: Datastore, opts: IpamClientOptions = {}) {
    this.log = opts.logger ?? silentLogger;
    this.maxRetries = opts.maxRetries ?? 200;
  }

  /**
   * IPAM's compare-and-swap loop (src/datastore/cas.ts): `step` re-runs after a lost race (by
   * default a ConflictError or NotFoundError) up to maxRetries times, then `what` is reported as
   * recoverable contention.
   */
  private cas<T>(what: string, step: () => Promise<T>, conflicts: readonly (typeof ConflictError | typeof NotFoundError | typeof AlreadyExistsError)[] = [ConflictError, NotFoundError]): Promise<T> {
    return casLoop(step, {
      attempts: this.maxRetries,
      conflicts,
      backoff: BACKOFF.ipamConflict,
      exhausted: () => new IpamError('ERR_IPAM_CONTENTION', `${what} kept changing under ${this.maxRetries} attempts`, { recoverable: true }),
    });
  }

  // ------------------------------------------------------------------ pools

  /** Every IPv4 range of every IPReservation: never assigned, automatically or on request. */
  async reservedRanges(): Promise<V4Net[]> {
    const res = await this.ds.list(resourcePrefix('ipreservations'));
    return res.items.flatMap((kv) => reservedFromResource(kv.value));
  }

  /** Every IPv4 pool, in name order (disabled ones and every allowedUses included). */
  async listPools(): Promise<PoolInfo[]> {
    const res = await this.ds.list(resourcePrefix('ippools'));
    const out: PoolInfo[] = [];
    for (const kv of res.items) {
      const p = poolFromResource(kv.value);
      if (p) out.push(p);
    }
    return out;
  }

  /** Pools `node` may assign from for `use`: enabled, allowing that use, nodeSelector matching the Node's labels. */
  async usablePools(node: string, restrictTo?: readonly string[], use: 'Workload' | 'Tunnel' = 'Workload'): Promise<PoolInfo[]> {
    const [all, labels] = await Promise.all([this.listPools(), this.nodeLabels(node)]);
    const pools = all.filter((p) => p.allowedUses.includes(use));
    let candidates = pools;
    if (restrictTo && restrictTo.length > 0) {
      candidates = [];
      for (const want of restrictTo) {
        let wantCidr: string | undefined;
        try { wantCidr = formatV4Net(parseV4Net(want)); } catch { wantCidr = undefined; }
        const p = all.find((x) => x.name === want || x.cidr === wantCidr);
        if (!p) throw new IpamError('ERR_IPAM_NO_POOLS', `requested IP pool ${JSON.stringify(want)} does not exist (by name or CIDR)`);
        if (p.disabled) throw new IpamError('ERR_IPAM_NO_POOLS', `requested IP pool ${JSON.stringify(want)} is disabled`);
        if (!p.allowedUses.includes(use)) throw new IpamError('ERR_IPAM_NO_POOLS', `requested IP pool ${JSON.stringify(want)} does not allow ${use} use (allowedUses: ${p.allowedUses.join(', ')})`);
        candidates.push(p);
      }
    }
    return candidates.filter((p) => {
      if (p.disabled) return false;
      try {
        return parseSelector(p.nodeSelector).evaluate(labels);
      } catch (err) {
        this.log.warn({ pool: p.name, nodeSelector: p.nodeSelector, err }, 'ignoring IP pool with an invalid nodeSelector');
        return false;
      }
    });
  }

  private async nodeLabels(node: string): Promise<Record<string, string>> {
    const kv = await this.ds.get(resourceKey('nodes', node));
    const labels = (kv?.value as { metadata?: { labels?: unknown } } | undefined)?.metadata?.labels;
    if (typeof labels !== 'object' || labels === null) return {};
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') out[k] = v;
    return out;
  }

  // ------------------------------------------------------------------ reads

  async listBlocks(): Promise<BlockRecord[]> {
    const res = await this.ds.list(blockPrefix());
    return res.items.map((kv) => checkBlock(kv.value, kv.key));
  }

  /** Blocks claimed by `node`, per its affinity index, in address order. */
  async affineBlockCidrs(node: string): Promise<string[]> {
    const res = await this.ds.list(affinityPrefix(node));
    const cidrs = res.items.map((kv) => segmentToCidr(kv.key.slice(kv.key.lastIndexOf('/') + 1)));
    return cidrs.sort((a, b) => parseV4Net(a).base - parseV4Net(b).base);
  }

  /** The addresses a handle owns now (empty when none or unknown). */
  async ipsByHandle(handleId: string): Promise<AssignedIp[]> {
    checkHandle(handleId);
    const hkv = await this.ds.get(handleKey(handleId));
    if (!hkv) return [];
    const handle = hkv.value as unknown as HandleRecord;
    const pools = await this.listPools();
    const out: AssignedIp[] = [];
    for (const cidr of handle.blocks ?? []) {
      const kv = await this.ds.get(blockKey(cidr));
      if (!kv) continue;
      const b = checkBlock(kv.value, kv.key);
      for (const o of ordinalsOfHandle(b, handleId)) out.push(this.describe(b, o, pools));
    }
    return out;
  }

  private describe(b: BlockRecord, ordinal: number, pools: readonly PoolInfo[]): AssignedIp {
    const ip = ordinalToIp(b, ordinal);
    const n = ipv4ToInt(ip.split('.').map(Number));
    return { ip, cidr: `${ip}/32`, block: b.cidr, pool: pools.find((p) => v4Contains(p.net, n))?.name ?? '' };
  }

  // ------------------------------------------------------------------ assign

  async assign(args: AssignArgs): Promise<AssignResult> {
    checkHandle(args.handleId);
    if (typeof args.node !== 'string' || args.node.length === 0) {
      throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `node ${JSON.stringify(args.node)} must be a non-empty string`);
    }
    const want = args.num ?? 1;
    if (!Number.isInteger(want) || want < 1 || want > 256) {
      throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `num ${JSON.stringify(args.num)} must be an integer 1–256`);
    }
    const existing = await this.ipsByHandle(args.handleId);
    if (existing.length >= want) return { ips: existing, existing: true };

    const pools = await this.usablePools(args.node, args.pools, args.use ?? 'Workload');
    if (pools.length === 0) {
      throw new IpamError('ERR_IPAM_NO_POOLS', `no enabled IPv4 pool is usable by node ${JSON.stringify(args.node)} (check the pools' disabled and nodeSelector fields)`);
    }
    const host = `host:${args.node}`;
    const reserved = await this.reservedRanges();
    // The node is always recorded: routing needs to know where a borrowed address lives.
    const attrs = { node: args.node, ...(args.attrs ?? {}) };
    const got: AssignedIp[] = [...existing];
    const inPools = (cidr: string): boolean => {
      const n = parseV4Net(cidr);
      return pools.some((p) => v4Contains(p.net, n.base) && n.prefix >= p.net.prefix);
    };

    for (let round = 0; got.length < want; round++) {
      if (round >= this.maxRetries) {
        throw new IpamError('ERR_IPAM_CONTENTION', `could not assign an address to ${args.handleId} after ${round} rounds of contention`, { recoverable: true });
      }
      // 1. Our own blocks.
      for (const cidr of await this.affineBlockCidrs(args.node)) {
        if (!inPools(cidr)) continue;
        got.push(...await this.allocFromBlock(cidr, args.handleId, want - got.length, attrs, pools, host, reserved));
        if (got.length >= want) break;
      }
      if (got.length >= want) break;
      // 2. A new block; the next round allocates from it (another process of this node may
      //    fill it first, in which case we claim again).
      if (await this.claimBlock(args.node, pools)) continue;
      // 3. Borrow from other nodes' blocks.
      const before = got.length;
      for (const b of await this.listBlocks()) {
        if (b.affinity === host || b.unallocated.length === 0 || !inPools(b.cidr)) continue;
        got.push(...await this.allocFromBlock(b.cidr, args.handleId, want - got.length, attrs, pools, undefined, reserved));
        if (got.length >= want) break;
      }
      if (got.length >= want) break;
      if (got.length === before) {
        // Give back what this call took so a failed assign leaves nothing behind.
        if (got.length > existing.length) await this.releaseByHandle(args.handleId);
        throw new IpamError('ERR_IPAM_EXHAUSTED',
          `no free address left in the IP pools usable by node ${JSON.stringify(args.node)} (${pools.map((p) => p.cidr).join(', ')})`);
      }
    }
    this.log.debug({ handleId: args.handleId, node: args.node, ips: got.map((g) => g.ip) }, 'assigned');
    return { ips: got, existing: false };
  }

  /**
   * Assigns one specific address (Calico's AssignIP; CNI_ARGS `IP=`): it must lie in an
   * enabled pool allowing Workload use (the nodeSelector is not applied to an explicit
   * request, as in Calico). Its block is claimed for `node` if nobody has it yet. Repeating the
   * request for the same handle succeeds; an address held by another handle is
   * ERR_IPAM_IN_USE.
   */
  async assignIp(args: { ip: string; handleId: string; node: string; attrs?: Record<string, string> }): Promise<AssignedIp> {
    checkHandle(args.handleId);
    let addr: number;
    try { addr = parseV4Net(`${args.ip}/32`, 'requested address').base; } catch {
      throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `requested address ${JSON.stringify(args.ip)} is not an IPv4 address`);
    }
    const pools = (await this.listPools()).filter((p) => v4Contains(p.net, addr) && p.allowedUses.includes('Workload'));
    const pool = pools.find((p) => !p.disabled);
    if (!pool) {
      throw new IpamError('ERR_IPAM_NO_POOLS', `requested address ${args.ip} is not in any ${pools.length ? 'enabled ' : ''}IP pool for workloads`);
    }
    const hit = (await this.reservedRanges()).find((r) => v4Contains(r, addr));
    if (hit) throw new IpamError('ERR_IPAM_RESERVED', `requested address ${args.ip} is reserved (IPReservation range ${formatV4Net(hit)})`);
    const size = 2 ** (32 - pool.blockSize);
    const cidr = `${intToIpv4(Math.floor(addr / size) * size)}/${pool.blockSize}`;
    const key = blockKey(cidr);
    const attrs = { node: args.node, ...(args.attrs ?? {}) };
    return this.cas(`block ${cidr}`, async () => {
      let kv = await this.ds.get(key);
      if (!kv) {
        await this.claimSpecific(args.node, cidr);
        kv = await this.ds.get(key);
        if (!kv) throw new IpamError('ERR_IPAM_CONTENTION', `block ${cidr} could not be created`, { recoverable: true });
      }
      const b = checkBlock(kv.value, key);
      const ordinal = addr - parseV4Net(b.cidr).base;
      const cur = b.allocations[ordinal];
      if (cur !== null && cur !== undefined) {
        const owner = b.attributes[cur]?.handle_id;
        if (owner === args.handleId) return this.describe(b, ordinal, pools);
        throw new IpamError('ERR_IPAM_IN_USE', `requested address ${args.ip} is already assigned (handle ${owner})`);
      }
      await this.addBlockToHandle(args.handleId, b.cidr);
      const next = allocateOrdinal(b, ordinal, args.handleId, attrs)!;
      await this.ds.update(key, next as unknown as JsonValue, { expectedRevision: kv.modRevision });
      return this.describe(next, ordinal, pools);
    });
  }

  /** Allocates up to `n` addresses from one block by CAS; [] if it is full, gone or not ours. */
  private async allocFromBlock(cidr: string, handleId: string, n: number, attrs: Record<string, string>,
    pools: readonly PoolInfo[], requireAffinity: string | undefined, reserved: readonly V4Net[] = []): Promise<AssignedIp[]> {
    const key = blockKey(cidr);
    return this.cas(`block ${cidr}`, async () => {
      const kv = await this.ds.get(key);
      if (!kv) return [];
      const b = checkBlock(kv.value, key);
      if (requireAffinity !== undefined && b.affinity !== requireAffinity) {
        // Our index says the block is ours but it is not (a claim that lost, or affinity
        // released): drop the stale index entry so later assigns stop looking at it.
        if (requireAffinity.startsWith('host:')) await this.deleteIfPresent(affinityKey(requireAffinity.slice(5), b.cidr));
        return [];
      }
      if (b.unallocated.length === 0) return [];
      const base = parseV4Net(b.cidr).base;
      const skip = reserved.length === 0 ? undefined : (o: number) => reserved.some((r) => v4Contains(r, base + o));
      if (skip !== undefined && b.unallocated.every(skip)) return [];
      await this.addBlockToHandle(handleId, b.cidr);
      const { block, ordinals } = allocate(b, n, handleId, attrs, skip);
      await this.ds.update(key, block as unknown as JsonValue, { expectedRevision: kv.modRevision });
      return ordinals.map((o) => this.describe(block, o, pools));
    });
  }

  private async addBlockToHandle(handleId: string, cidr: string): Promise<void> {
    const key = handleKey(handleId);
    await this.cas(`handle ${handleId}`, async () => {
      const kv = await this.ds.get(key);
      if (!kv) {
        await this.ds.create(key, { handleId, blocks: [cidr] });
        return;
      }
      const h = kv.value as unknown as HandleRecord;
      if (h.blocks.includes(cidr)) return;
      await this.ds.update(key, { handleId, blocks: [...h.blocks, cidr] }, { expectedRevision: kv.modRevision });
    }, [ConflictError, AlreadyExistsError, NotFoundError]);
  }

  /**
   * Claims one unclaimed block from `pools` for `node`; false when none is left. Blocks are
   * scanned from an offset derived from the node name so that nodes rarely race for the same one.
   */
  async claimBlock(node: string, pools: readonly PoolInfo[]): Promise<string | false> {
    const taken = new Set((await this.ds.list(blockPrefix())).items.map((kv) => segmentToCidr(kv.key.slice(kv.key.lastIndexOf('/') + 1))));
    const seed = createHash('sha1').update(node).digest().readUInt32BE(0);
    for (const pool of pools) {
      const blockSize = 2 ** (32 - pool.blockSize);
      const count = pool.net.size / blockSize;
      const start = seed % count;
      for (let i = 0; i < count; i++) {
        const cidr = `${intToIpv4(pool.net.base + ((start + i) % count) * blockSize)}/${pool.blockSize}`;
        if (taken.has(cidr)) continue;
        if (await this.claimSpecific(node, cidr)) return cidr;
      }
    }
    return false;
  }

  private async claimSpecific(node: string, cidr: string): Promise<boolean> {
    const host = `host:${node}`;
    const aKey = affinityKey(node, cidr);
    try {
      await this.ds.create(aKey, { state: 'pending' });
    } catch (err) {
      // Ours already (another process of this node is claiming it, or an earlier attempt
      // crashed between the writes): go on and make the block exist.
      if (!(err instanceof AlreadyExistsError)) throw err;
    }
    try {
      await this.ds.create(blockKey(cidr), newBlock(cidr, host) as unknown as JsonValue);
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      const kv = await this.ds.get(blockKey(cidr));
      if (!kv || (kv.value as { affinity?: unknown }).affinity !== host) {
        await this.deleteIfPresent(aKey);
        return false;
      }
    }
    await this.ds.put(aKey, { state: 'confirmed' });
    this.log.info({ node, block: cidr }, 'claimed IPAM block');
    return true;
  }

  private async deleteIfPresent(key: string, expectedRevision?: number): Promise<boolean> {
    try {
      await this.ds.delete(key, expectedRevision === undefined ? undefined : { expectedRevision });
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /**
   * The node's IPIP tunnel address (Calico's `ipv4IPIPTunnelAddr`): one address from a pool
   * with IPIP enabled that allows Tunnel use, under the handle `ipip-tunnel-addr-<node>`
   * (idempotent like any handle). Undefined when no usable pool has IPIP on.
   */
  async assignTunnelAddress(node: string): Promise<string | undefined> {
    const pools = (await this.usablePools(node, undefined, 'Tunnel')).filter((p) => p.ipipMode !== 'Never');
    if (pools.length === 0) return undefined;
    const res = await this.assign({ handleId: `ipip-tunnel-addr-${node}`, node, attrs: { type: 'ipipTunnelAddress' }, pools: pools.map((p) => p.name), use: 'Tunnel' });
    return res.ips[0]?.ip;
  }

  // ------------------------------------------------------------------ release

  /** Frees every address owned by `handleId`; returns them. Unknown handle: []. */
  async releaseByHandle(handleId: string): Promise<string[]> {
    checkHandle(handleId);
    const key = handleKey(handleId);
    const released: string[] = [];
    // A conflict on the delete: a block was added to the handle meanwhile, so sweep again.
    return this.cas(`handle ${handleId}`, async () => {
      const hkv: KeyValue | undefined = await this.ds.get(key);
      if (!hkv) return released;
      const h = hkv.value as unknown as HandleRecord;
      for (const cidr of h.blocks ?? []) released.push(...await this.releaseInBlock(cidr, handleId));
      try {
        await this.ds.delete(key, { expectedRevision: hkv.modRevision });
      } catch (err) {
        if (err instanceof NotFoundError) return released;
        throw err;
      }
      this.log.debug({ handleId, released }, 'released');
      return released;
    }, [ConflictError]);
  }

  private async releaseInBlock(cidr: string, handleId: string): Promise<string[]> {
    const key = blockKey(cidr);
    return this.cas(`block ${cidr}`, async () => {
      const kv = await this.ds.get(key);
      if (!kv) return [];
      const b = checkBlock(kv.value, key);
      const { block, ordinals } = releaseHandle(b, handleId);
      if (ordinals.length === 0) return [];
      await this.ds.update(key, block as unknown as JsonValue, { expectedRevision: kv.modRevision });
      return ordinals.map((o) => ordinalToIp(block, o));
    });
  }

  /**
   * Frees one address whoever holds it (calicoctl `ipam release --ip`); returns the handle it
   * belonged to, or undefined when it was not allocated. The handle record forgets the block
   * once the handle holds nothing more there (and is deleted when it holds nothing at all).
   */
  async releaseIp(ip: string): Promise<string | undefined> {
    let addr: number;
    try { addr = parseV4Net(`${ip}/32`).base; } catch {
      throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `${JSON.stringify(ip)} is not an IPv4 address`);
    }
    const freed = await this.cas(`the block of ${ip}`, async () => {
      const kv = (await this.ds.list(blockPrefix())).items.find((x) => v4Contains(parseV4Net(segmentToCidr(x.key.slice(x.key.lastIndexOf('/') + 1))), addr));
      if (!kv) return undefined;
      const b = checkBlock(kv.value, kv.key);
      const ordinal = addr - parseV4Net(b.cidr).base;
      const a = b.allocations[ordinal];
      if (a === null || a === undefined) return undefined;
      const handleId = b.attributes[a]!.handle_id ?? '';
      const { block } = releaseHandle(b, handleId, new Set([ordinal]));
      await this.ds.update(kv.key, block as unknown as JsonValue, { expectedRevision: kv.modRevision });
      return { handleId, block };
    });
    if (!freed) return undefined;
    const { handleId, block } = freed;
    if (handleId && ordinalsOfHandle(block, handleId).length === 0) await this.forgetBlock(handleId, block.cidr);
    return handleId;
  }

  private async forgetBlock(handleId: string, cidr: string): Promise<void> {
    const key = handleKey(handleId);
    // Best effort: a handle still changing after every attempt keeps the stale block entry
    // (releaseByHandle sweeps blocks that no longer hold the handle).
    await this.cas(`handle ${handleId}`, async () => {
      const kv = await this.ds.get(key);
      if (!kv) return;
      const h = kv.value as unknown as HandleRecord;
      const blocks = h.blocks.filter((c) => c !== cidr);
      try {
        if (blocks.length === 0 && (await this.ipsByHandle(handleId)).length === 0) await this.ds.delete(key, { expectedRevision: kv.modRevision });
        else if (blocks.length !== h.blocks.length) await this.ds.update(key, { handleId, blocks }, { expectedRevision: kv.modRevision });
      } catch (err) {
        if (err instanceof NotFoundError) return;
        throw err;
      }
    }, [ConflictError]).catch((e: unknown) => {
      if (!(e instanceof IpamError && e.code === 'ERR_IPAM_CONTENTION')) throw e;
    });
  }

  /**
   * Gives up `node`'s claims (node removal): empty blocks are deleted, blocks still holding
   * addresses lose their affinity (their addresses stay valid until released). Returns the
   * CIDRs of the blocks it released.
   */
  async releaseHostAffinities(node: string): Promise<string[]> {
    const host = `host:${node}`;
    const done: string[] = [];
    for (const cidr of await this.affineBlockCidrs(node)) {
      await this.cas(`block ${cidr}`, async () => {
        const kv = await this.ds.get(blockKey(cidr));
        if (!kv) return;
        const b = checkBlock(kv.value, kv.key);
        if (b.affinity !== host) return;
        if (inUse(b) === 0) await this.ds.delete(kv.key, { expectedRevision: kv.modRevision });
        else await this.ds.update(kv.key, { ...b, affinity: null, sequenceNumber: b.sequenceNumber + 1 } as unknown as JsonValue, { expectedRevision: kv.modRevision });
        done.push(cidr);
      });
      await this.deleteIfPresent(affinityKey(node, cidr));
    }
    return done;
  }
}

export function checkHandle(handleId: string): void {
  if (typeof handleId !== 'string' || !HANDLE_RE.test(handleId)) {
    throw new IpamError('ERR_IPAM_INVALID_ARGUMENT',
      `handle id ${JSON.stringify(handleId)} must be 1–253 characters of letters, digits and . _ : @ = + - (starting with a letter or digit)`);
  }
}
