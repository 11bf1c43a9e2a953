/**
 * IpamClient: Calico-style block IPAM over any `Datastore`, safe under concurrent use from many
 * processes and nodes because every change is a compare-and-swap on one key.
 *
 * Datastore layout: Calico's own (records.ts, block.ts): blocks, per-node affinities, handles
 * with a count per block, and Calico's IPAM configuration, so Calico and tortie can allocate
 * from the same pools side by side (an address Calico's block marks allocated is never handed
 * out; releasing by handle updates the handle record Calico reads).
 *
 * Assignment (for one handle, on one node):
 *   0. If the handle already owns addresses, return them (assign is idempotent by handle).
 *   1. Try the node's own blocks (affinity `host:<node>`), lowest address first.
 *   2. All full (or none yet): claim a block no node has claimed, from a usable pool: pending
 *      affinity → create the block (fails if someone else created it first) → confirm. Nothing
 *      is claimed ahead of need; Calico's IPAM config `auto_allocate_blocks` (false: never) and
 *      `maxBlocksPerHost` (at most that many per node) are honoured.
 *   3. No unclaimed block left in any usable pool: borrow a free address from another node's
 *      block (Calico's non-strict affinity), so every address of the pool can be handed out;
 *      not with the config's `strict_affinity`.
 *   A usable pool is IPv4, not `disabled`, allows Workload use, and its `nodeSelector` matches
 *   the Node resource's labels (a missing Node has no labels). Addresses inside an
 *   IPReservation's reservedCIDRs are skipped (they stay free in their block) and refused when
 *   requested by address (assignIp: ERR_IPAM_RESERVED).
 *
 * Consistency (Calico's order): before addresses are written into a block, the handle record's
 * count for that block is raised by as many (and lowered again when the block write loses its
 * compare-and-swap); a release frees the addresses in the block first, then lowers the count.
 * So a crash between the two writes leaves at worst a count above what the block holds
 * (harmless: release by handle cleans it), never an address that release-by-handle cannot find
 * (a leak). A block write is a CAS on the revision read; on conflict the block is re-read and the
 * choice redone, so two writers can never take the same ordinal. Released addresses go through
 * Calico's cooldown (`ipCooldownSeconds`) when the config sets one.
 */
import { createHash } from 'node:crypto';
import type { Datastore, JsonValue, KeyValue } from '../datastore/types';
import { casLoop } from '../datastore/cas';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../datastore/errors';
import { resourceKey, resourcePrefix } from '../datastore/keys';
import { metaTimestamp } from '../model/values';
import { parseSelector } from '../selector';
import { silentLogger, type Logger } from '../util/log';
import { BACKOFF } from '../util/retry';
import {
  allocate, allocateOrdinal, checkBlock, collectCooldown, formatV4Net, handleOf, inUse, newBlock, nextSequence,
  ordinalToIp, ordinalsOfHandle, parseV4Net, releaseHandle, segmentToCidr, v4Contains, withClaimTime, type BlockRecord, type V4Net,
} from './block';
import { IpamError } from './errors';
import {
  IPAM_CONFIG_KEY, adjustHandle, affinityKey, affinityPrefix, affinityValue, blockKey, blockPrefix, decodeHandle, decodeIpamConfig,
  encodeHandle, handleKey, type IpamConfig,
} from './records';
import { cidr4Of, formatCidr4, IPPOOL_DEFAULTS, ipv4ToU32, nthSubnet4, subnetCount4 } from '../primitives';

export { affinityKey, affinityPrefix, blockKey, blockPrefix, handleKey } from './records';

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

/** Parses a stored IPPool resource loosely (the resource layer validated it on write). */
export function poolFromResource(value: unknown): PoolInfo | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as { metadata?: { name?: unknown }; spec?: Record<string, unknown> };
  const spec = r.spec ?? {};
  if (typeof spec.cidr !== 'string' || typeof r.metadata?.name !== 'string') return undefined;
  let net: V4Net;
  try { net = parseV4Net(spec.cidr); } catch { return undefined; } // IPv6 pools: not handled by this IPAM yet
  const blockSize = typeof spec.blockSize === 'number' ? spec.blockSize : IPPOOL_DEFAULTS.blockSizeV4;
  if (blockSize < net.prefix || blockSize > 32) return undefined;
  const uses = Array.isArray(spec.allowedUses) ? spec.allowedUses.filter((u): u is string => typeof u === 'string') : [...IPPOOL_DEFAULTS.allowedUses];
  return {
    name: r.metadata.name,
    cidr: formatV4Net(net),
    net,
    blockSize,
    disabled: spec.disabled === true,
    nodeSelector: typeof spec.nodeSelector === 'string' ? spec.nodeSelector : IPPOOL_DEFAULTS.nodeSelector,
    ipipMode: typeof spec.ipipMode === 'string' ? spec.ipipMode : IPPOOL_DEFAULTS.ipipMode,
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

  /** Calico's IPAM configuration (`/calico/ipam/v2/config`), or its defaults when none is stored. */
  async ipamConfig(): Promise<IpamConfig> {
    return decodeIpamConfig((await this.ds.get(IPAM_CONFIG_KEY))?.value);
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
    const handle = decodeHandle(hkv.value, hkv.key);
    const pools = await this.listPools();
    const out: AssignedIp[] = [];
    for (const cidr of Object.keys(handle.block)) {
      const kv = await this.ds.get(blockKey(cidr));
      if (!kv) continue;
      const b = checkBlock(kv.value, kv.key);
      for (const o of ordinalsOfHandle(b, handleId)) out.push(this.describe(b, o, pools));
    }
    return out;
  }

  private describe(b: BlockRecord, ordinal: number, pools: readonly PoolInfo[]): AssignedIp {
    const ip = ordinalToIp(b, ordinal);
    const n = ipv4ToU32(ip);
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
    const [reserved, config] = await Promise.all([this.reservedRanges(), this.ipamConfig()]);
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
        got.push(...await this.allocFromBlock(cidr, args.handleId, want - got.length, attrs, pools, host, reserved, config));
        if (got.length >= want) break;
      }
      if (got.length >= want) break;
      // 2. A new block; the next round allocates from it (another process of this node may
      //    fill it first, in which case we claim again).
      if (await this.mayClaim(args.node, config) && await this.claimBlock(args.node, pools)) continue;
      // 3. Borrow from other nodes' blocks (never with strict affinity).
      const before = got.length;
      for (const b of config.strictAffinity ? [] : await this.listBlocks()) {
        if (b.affinity === host || b.unallocated.length === 0 || !inPools(b.cidr)) continue;
        got.push(...await this.allocFromBlock(b.cidr, args.handleId, want - got.length, attrs, pools, undefined, reserved, config));
        if (got.length >= want) break;
      }
      if (got.length >= want) break;
      if (got.length === before) {
        // Give back what this call took so a failed assign leaves nothing behind.
        if (got.length > existing.length) await this.releaseByHandle(args.handleId);
        const limits = [
          ...(config.strictAffinity ? ['strict_affinity: no borrowing from other nodes\' blocks'] : []),
          ...(!config.autoAllocateBlocks ? ['auto_allocate_blocks is off'] : []),
          ...(config.maxBlocksPerHost > 0 ? [`maxBlocksPerHost ${config.maxBlocksPerHost}`] : []),
        ];
        throw new IpamError('ERR_IPAM_EXHAUSTED',
          `no free address left in the IP pools usable by node ${JSON.stringify(args.node)} (${pools.map((p) => p.cidr).join(', ')})` +
          (limits.length ? `; Calico IPAM config: ${limits.join(', ')}` : ''));
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
    try { addr = ipv4ToU32(args.ip); } catch {
      throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `requested address ${JSON.stringify(args.ip)} is not an IPv4 address`);
    }
    const pools = (await this.listPools()).filter((p) => v4Contains(p.net, addr) && p.allowedUses.includes('Workload'));
    const pool = pools.find((p) => !p.disabled);
    if (!pool) {
      throw new IpamError('ERR_IPAM_NO_POOLS', `requested address ${args.ip} is not in any ${pools.length ? 'enabled ' : ''}IP pool for workloads`);
    }
    const hit = (await this.reservedRanges()).find((r) => v4Contains(r, addr));
    if (hit) throw new IpamError('ERR_IPAM_RESERVED', `requested address ${args.ip} is reserved (IPReservation range ${formatV4Net(hit)})`);
    const cidr = formatCidr4(cidr4Of(addr, pool.blockSize));
    const key = blockKey(cidr);
    const attrs = { node: args.node, ...(args.attrs ?? {}) };
    const config = await this.ipamConfig();
    return this.cas(`block ${cidr}`, async () => {
      let kv = await this.ds.get(key);
      if (!kv) {
        await this.claimSpecific(args.node, cidr);
        kv = await this.ds.get(key);
        if (!kv) throw new IpamError('ERR_IPAM_CONTENTION', `block ${cidr} could not be created`, { recoverable: true });
      }
      const b = collectCooldown(checkBlock(kv.value, key), config.ipCooldownSeconds);
      if (config.strictAffinity && b.affinity !== `host:${args.node}`) {
        throw new IpamError('ERR_IPAM_IN_USE', `requested address ${args.ip} is in block ${b.cidr} of ${b.affinity ?? 'no node'}; Calico's IPAM config sets strict_affinity`);
      }
      const ordinal = addr - parseV4Net(b.cidr).base;
      const cur = b.allocations[ordinal];
      if (cur !== null && cur !== undefined) {
        const attr = b.attributes[cur];
        if (typeof attr?.releasedAt === 'string') throw new IpamError('ERR_IPAM_IN_USE', `requested address ${args.ip} was released at ${attr.releasedAt} and is in its cooldown (ipCooldownSeconds ${config.ipCooldownSeconds})`);
        const owner = handleOf(attr);
        if (owner === args.handleId) return this.describe(b, ordinal, pools);
        throw new IpamError('ERR_IPAM_IN_USE', `requested address ${args.ip} is already assigned (handle ${owner || '<none>'})`);
      }
      const next = allocateOrdinal(b, ordinal, args.handleId, attrs)!;
      await this.writeCounted(args.handleId, b.cidr, 1, () => this.ds.update(key, next as unknown as JsonValue, { expectedRevision: kv!.modRevision }));
      return this.describe(next, ordinal, pools);
    });
  }

  /** Allocates up to `n` addresses from one block by CAS; [] if it is full, gone or not ours. */
  private async allocFromBlock(cidr: string, handleId: string, n: number, attrs: Record<string, string>,
    pools: readonly PoolInfo[], requireAffinity: string | undefined, reserved: readonly V4Net[] = [], config?: IpamConfig): Promise<AssignedIp[]> {
    const key = blockKey(cidr);
    return this.cas(`block ${cidr}`, async () => {
      const kv = await this.ds.get(key);
      if (!kv) return [];
      const b = collectCooldown(checkBlock(kv.value, key), config?.ipCooldownSeconds ?? 0);
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
      const { block, ordinals } = allocate(b, n, handleId, attrs, skip);
      await this.writeCounted(handleId, b.cidr, ordinals.length, () => this.ds.update(key, block as unknown as JsonValue, { expectedRevision: kv.modRevision }));
      return ordinals.map((o) => this.describe(block, o, pools));
    });
  }

  /**
   * A block write that hands `n` addresses to `handleId`, in Calico's order: the handle's count
   * for the block goes up first, and down again when the write lost its compare-and-swap (not
   * written). Any other failure may have been applied, so the count stays: too high is
   * harmless (release by handle cleans it), too low is not.
   */
  private async writeCounted(handleId: string, cidr: string, n: number, write: () => Promise<unknown>): Promise<void> {
    await this.adjustHandle(handleId, cidr, n);
    try {
      await write();
    } catch (err) {
      if (err instanceof ConflictError || err instanceof NotFoundError) await this.adjustHandle(handleId, cidr, -n);
      throw err;
    }
  }

  /**
   * Raises (or lowers) the handle's count of addresses in `cidr` by `n` (Calico's
   * incrementHandle / decrementHandle); the record is deleted when it holds nothing more.
   */
  private async adjustHandle(handleId: string, cidr: string, n: number): Promise<void> {
    if (n === 0) return;
    const key = handleKey(handleId);
    await this.cas(`handle ${handleId}`, async () => {
      const kv = await this.ds.get(key);
      if (!kv) {
        if (n > 0) await this.ds.create(key, encodeHandle(adjustHandle({ block: {}, deleted: false }, cidr, n)));
        return;
      }
      const next = adjustHandle(decodeHandle(kv.value, kv.key), cidr, n);
      if (Object.keys(next.block).length === 0) await this.ds.delete(key, { expectedRevision: kv.modRevision });
      else await this.ds.update(key, encodeHandle(next), { expectedRevision: kv.modRevision });
    }, [ConflictError, AlreadyExistsError, NotFoundError]);
  }

  /** Whether Calico's IPAM config lets `node` claim one more block. */
  private async mayClaim(node: string, config: IpamConfig): Promise<boolean> {
    if (!config.autoAllocateBlocks) return false;
    if (config.maxBlocksPerHost <= 0) return true;
    return (await this.affineBlockCidrs(node)).length < config.maxBlocksPerHost;
  }

  /**
   * Claims one unclaimed block from `pools` for `node`; false when none is left. Blocks are
   * scanned from an offset derived from the node name so that nodes rarely race for the same one.
   */
  async claimBlock(node: string, pools: readonly PoolInfo[]): Promise<string | false> {
    const taken = new Set((await this.ds.list(blockPrefix())).items.map((kv) => segmentToCidr(kv.key.slice(kv.key.lastIndexOf('/') + 1))));
    const seed = createHash('sha1').update(node).digest().readUInt32BE(0);
    for (const pool of pools) {
      const poolNet = { addr: pool.net.base, len: pool.net.prefix };
      const count = subnetCount4(poolNet, pool.blockSize);
      const start = seed % count;
      for (let i = 0; i < count; i++) {
        const cidr = formatCidr4(nthSubnet4(poolNet, pool.blockSize, (start + i) % count));
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
      await this.ds.create(aKey, affinityValue('pending'));
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
    await this.ds.put(aKey, affinityValue('confirmed'));
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

  /**
   * Frees every address owned by `handleId` and deletes its handle record; returns them.
   * Unknown handle: []. Each block listed in the handle is swept, then the record is deleted by
   * compare-and-swap; if it changed meanwhile (an assign added a block), the sweep is redone.
   */
  async releaseByHandle(handleId: string): Promise<string[]> {
    checkHandle(handleId);
    const key = handleKey(handleId);
    const released: string[] = [];
    const config = await this.ipamConfig();
    return this.cas(`handle ${handleId}`, async () => {
      const hkv: KeyValue | undefined = await this.ds.get(key);
      if (!hkv) return released;
      const h = decodeHandle(hkv.value, hkv.key);
      for (const cidr of Object.keys(h.block)) released.push(...await this.releaseInBlock(cidr, handleId, config));
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

  /** The stamp a release writes: `releasedAt` now when Calico's config asks for a cooldown. */
  private static cooldownStamp(config: IpamConfig): string | undefined {
    return config.ipCooldownSeconds > 0 ? metaTimestamp() : undefined;
  }

  /**
   * Frees the handle's addresses in one block. A block left empty and without affinity is
   * deleted, as Calico does.
   */
  private async releaseInBlock(cidr: string, handleId: string, config: IpamConfig): Promise<string[]> {
    const key = blockKey(cidr);
    return this.cas(`block ${cidr}`, async () => {
      const kv = await this.ds.get(key);
      if (!kv) return [];
      const { block: released, ordinals } = releaseHandle(checkBlock(kv.value, key), handleId, undefined, IpamClient.cooldownStamp(config));
      if (ordinals.length === 0) return [];
      const block = collectCooldown(released, config.ipCooldownSeconds);
      if (inUse(block) === 0 && block.affinity === null) await this.ds.delete(key, { expectedRevision: kv.modRevision });
      else await this.ds.update(key, block as unknown as JsonValue, { expectedRevision: kv.modRevision });
      return ordinals.map((o) => ordinalToIp(block, o));
    });
  }

  /**
   * Frees one address whoever holds it (calicoctl `ipam release --ip`); returns the handle it
   * belonged to ('' for an allocation without one), or undefined when it was not allocated (or
   * is in its release cooldown). The handle's count for the block goes down by one.
   */
  async releaseIp(ip: string): Promise<string | undefined> {
    let addr: number;
    try { addr = ipv4ToU32(ip); } catch {
      throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `${JSON.stringify(ip)} is not an IPv4 address`);
    }
    const config = await this.ipamConfig();
    const freed = await this.cas(`the block of ${ip}`, async () => {
      const kv = (await this.ds.list(blockPrefix())).items.find((x) => v4Contains(parseV4Net(segmentToCidr(x.key.slice(x.key.lastIndexOf('/') + 1))), addr));
      if (!kv) return undefined;
      const b = checkBlock(kv.value, kv.key);
      const ordinal = addr - parseV4Net(b.cidr).base;
      const a = b.allocations[ordinal];
      if (a === null || a === undefined || typeof b.attributes[a]?.releasedAt === 'string') return undefined;
      const handleId = handleOf(b.attributes[a]);
      const { block } = releaseHandle(b, handleId, new Set([ordinal]), IpamClient.cooldownStamp(config));
      await this.ds.update(kv.key, collectCooldown(block, config.ipCooldownSeconds) as unknown as JsonValue, { expectedRevision: kv.modRevision });
      return { handleId, block };
    });
    if (!freed) return undefined;
    if (freed.handleId) await this.adjustHandle(freed.handleId, freed.block.cidr, -1);
    return freed.handleId;
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
        else await this.ds.update(kv.key, withClaimTime({ ...b, affinity: null, sequenceNumber: nextSequence(b) }, undefined) as unknown as JsonValue, { expectedRevision: kv.modRevision });
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
