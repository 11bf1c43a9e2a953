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
 *   Each call assigns in one family (`family`, default 4; Calico's Num4 / Num6): only that
 *   family's pools, blocks and affinities are used, and repeating it returns the handle's
 *   addresses of that family. A dual-stack workload makes one call per family under one handle.
 *   A usable pool is of that family, not `disabled`, allows Workload use, and its `nodeSelector` matches
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
  allocate, allocateOrdinal, blockNet, checkBlock, collectCooldown, handleOf, inUse, newBlock, nextSequence,
  ordinalToIp, ordinalsOfHandle, releaseHandle, segmentToCidr, withClaimTime, type BlockRecord,
} from './block';
import { IpamError } from './errors';
import {
  IPAM_CONFIG_KEY, adjustHandle, affinityKey, affinityPrefix, affinityValue, blockKey, blockPrefix, decodeHandle, decodeIpamConfig,
  encodeHandle, handleKey, type IpamConfig,
} from './records';
import { defaultBlockSize, IPPOOL_BLOCK_SIZE_RANGE, IPPOOL_DEFAULTS, type IpFamily } from '../primitives';
import {
  compareAddrText, compareNets, familyBits, formatAddr, formatNet, netContains, netCovers, netOf, nthSubnet, parseAddr, subnetCount, tryParseAddr,
  tryParseNet, tryParseNetOrAddr, type IpNet, type IpNum,
} from './net';

export { affinityKey, affinityPrefix, blockKey, blockPrefix, handleKey } from './records';

const HANDLE_RE = /^[A-Za-z0-9][A-Za-z0-9._:@=+-]{0,252}$/;

export interface PoolInfo {
  name: string;
  cidr: string;
  net: IpNet;
  blockSize: number;
  disabled: boolean;
  nodeSelector: string;
  ipipMode: string;
  vxlanMode: string;
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
  /** Address family (default 4). */
  family?: IpFamily;
}

export interface AssignedIp {
  /** e.g. "192.168.0.5", "fd00:10::5" */
  ip: string;
  family: IpFamily;
  /** Host route form, e.g. "192.168.0.5/32", "fd00:10::5/128". */
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
  const net = tryParseNet(spec.cidr);
  if (net === undefined) return undefined;
  // 0 or absent: the family's default, as Calico's pool client fills it in.
  const blockSize = typeof spec.blockSize === 'number' && spec.blockSize !== 0 ? spec.blockSize : defaultBlockSize(net.family);
  const [lo, hi] = IPPOOL_BLOCK_SIZE_RANGE[net.family];
  if (blockSize < net.prefix || blockSize < lo || blockSize > hi) return undefined;
  const uses = Array.isArray(spec.allowedUses) ? spec.allowedUses.filter((u): u is string => typeof u === 'string') : [...IPPOOL_DEFAULTS.allowedUses];
  return {
    name: r.metadata.name,
    cidr: formatNet(net),
    net,
    blockSize,
    disabled: spec.disabled === true,
    nodeSelector: typeof spec.nodeSelector === 'string' ? spec.nodeSelector : IPPOOL_DEFAULTS.nodeSelector,
    ipipMode: typeof spec.ipipMode === 'string' ? spec.ipipMode : IPPOOL_DEFAULTS.ipipMode,
    vxlanMode: typeof spec.vxlanMode === 'string' ? spec.vxlanMode : IPPOOL_DEFAULTS.vxlanMode,
    natOutgoing: spec.natOutgoing === true,
    allowedUses: uses,
  };
}

/** The ranges (both families) of a stored IPReservation; a bare address is its own /32 or /128. */
export function reservedFromResource(value: unknown): IpNet[] {
  const spec = (value as { spec?: { reservedCIDRs?: unknown } } | null)?.spec;
  if (!Array.isArray(spec?.reservedCIDRs)) return [];
  const out: IpNet[] = [];
  for (const c of spec.reservedCIDRs) {
    const n = typeof c === 'string' ? tryParseNetOrAddr(c) : undefined;
    if (n !== undefined) out.push(n);
  }
  return out;
}

const familyName = (f: IpFamily): string => (f === 4 ? 'IPv4' : 'IPv6');
const hostCidr = (a: IpNum): string => `${formatAddr(a)}/${familyBits(a.family)}`;

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

  /** Every range of every IPReservation (both families): never assigned, automatically or on request. */
  async reservedRanges(): Promise<IpNet[]> {
    const res = await this.ds.list(resourcePrefix('ipreservations'));
    return res.items.flatMap((kv) => reservedFromResource(kv.value));
  }

  /** Every pool of both families, in name order (disabled ones and every allowedUses included). */
  async listPools(): Promise<PoolInfo[]> {
    const res = await this.ds.list(resourcePrefix('ippools'));
    const out: PoolInfo[] = [];
    for (const kv of res.items) {
      const p = poolFromResource(kv.value);
      if (p) out.push(p);
    }
    return out;
  }

  /**
   * Pools of `family` that `node` may assign from for `use`: enabled, allowing that use,
   * nodeSelector matching the Node's labels. A requested pool of the other family is refused
   * (Calico's ResolvePools: an ipv4_pools entry must be an IPv4 pool).
   */
  async usablePools(node: string, restrictTo?: readonly string[], use: 'Workload' | 'Tunnel' = 'Workload', family: IpFamily = 4): Promise<PoolInfo[]> {
    const [all, labels] = await Promise.all([this.listPools(), this.nodeLabels(node)]);
    const pools = all.filter((p) => p.allowedUses.includes(use) && p.net.family === family);
    let candidates = pools;
    if (restrictTo && restrictTo.length > 0) {
      candidates = [];
      for (const want of restrictTo) {
        const wn = tryParseNet(want);
        const wantCidr = wn === undefined ? undefined : formatNet(wn);
        const p = all.find((x) => x.name === want || x.cidr === wantCidr);
        if (!p) throw new IpamError('ERR_IPAM_NO_POOLS', `requested IP pool ${JSON.stringify(want)} does not exist (by name or CIDR)`);
        if (p.net.family !== family) throw new IpamError('ERR_IPAM_NO_POOLS', `requested IP pool ${JSON.stringify(want)} (${p.cidr}) is not an ${familyName(family)} pool`);
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

  /** Every block of `family`, or of both families (IPv4 first) when none is given. */
  async listBlocks(family?: IpFamily): Promise<BlockRecord[]> {
    const fams: IpFamily[] = family === undefined ? [4, 6] : [family];
    const lists = await Promise.all(fams.map((f) => this.ds.list(blockPrefix(f))));
    return lists.flatMap((res) => res.items.map((kv) => checkBlock(kv.value, kv.key)));
  }

  /** Blocks of `family` claimed by `node`, per its affinity index, in address order. */
  async affineBlockCidrs(node: string, family: IpFamily = 4): Promise<string[]> {
    const res = await this.ds.list(affinityPrefix(node, family));
    const nets: IpNet[] = [];
    for (const kv of res.items) {
      const n = tryParseNet(segmentToCidr(kv.key.slice(kv.key.lastIndexOf('/') + 1)));
      if (n !== undefined && n.family === family) nets.push(n);
    }
    return nets.sort(compareNets).map(formatNet);
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
    return out.sort((x, y) => compareAddrText(x.ip, y.ip));
  }

  private describe(b: BlockRecord, ordinal: number, pools: readonly PoolInfo[]): AssignedIp {
    const n = blockNet(b);
    const a: IpNum = { family: n.family, value: n.base + BigInt(ordinal) };
    const ip = formatAddr(a);
    return { ip, family: a.family, cidr: hostCidr(a), block: b.cidr, pool: pools.find((p) => netContains(p.net, a))?.name ?? '' };
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
    const family: IpFamily = args.family ?? 4;
    if (family !== 4 && family !== 6) throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `family ${JSON.stringify(args.family)} must be 4 or 6`);
    const existing = (await this.ipsByHandle(args.handleId)).filter((x) => x.family === family);
    if (existing.length >= want) return { ips: existing, existing: true };

    const pools = await this.usablePools(args.node, args.pools, args.use ?? 'Workload', family);
    if (pools.length === 0) {
      throw new IpamError('ERR_IPAM_NO_POOLS', `no enabled ${familyName(family)} pool is usable by node ${JSON.stringify(args.node)} (check the pools' disabled and nodeSelector fields)`);
    }
    const host = `host:${args.node}`;
    const [reserved, config] = await Promise.all([this.reservedRanges(), this.ipamConfig()]);
    // The node is always recorded: routing needs to know where a borrowed address lives.
    const attrs = { node: args.node, ...(args.attrs ?? {}) };
    const got: AssignedIp[] = [...existing];
    const inPools = (cidr: string): boolean => {
      const n = tryParseNet(cidr);
      return n !== undefined && pools.some((p) => netCovers(p.net, n));
    };

    for (let round = 0; got.length < want; round++) {
      if (round >= this.maxRetries) {
        throw new IpamError('ERR_IPAM_CONTENTION', `could not assign an address to ${args.handleId} after ${round} rounds of contention`, { recoverable: true });
      }
      // 1. Our own blocks.
      for (const cidr of await this.affineBlockCidrs(args.node, family)) {
        if (!inPools(cidr)) continue;
        got.push(...await this.allocFromBlock(cidr, args.handleId, want - got.length, attrs, pools, host, reserved, config));
        if (got.length >= want) break;
      }
      if (got.length >= want) break;
      // 2. A new block; the next round allocates from it (another process of this node may
      //    fill it first, in which case we claim again).
      if (await this.mayClaim(args.node, config, family) && await this.claimBlock(args.node, pools)) continue;
      // 3. Borrow from other nodes' blocks (never with strict affinity).
      const before = got.length;
      for (const b of config.strictAffinity ? [] : await this.listBlocks(family)) {
        if (b.affinity === host || b.unallocated.length === 0 || !inPools(b.cidr)) continue;
        got.push(...await this.allocFromBlock(b.cidr, args.handleId, want - got.length, attrs, pools, undefined, reserved, config));
        if (got.length >= want) break;
      }
      if (got.length >= want) break;
      if (got.length === before) {
        // Give back what this call took so a failed assign leaves nothing behind (only those:
        // the handle's other addresses, e.g. the other family's, stay).
        if (got.length > existing.length) await this.releaseAddresses(args.handleId, got.slice(existing.length).map((g) => g.ip));
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
    const addr = tryParseAddr(args.ip);
    if (addr === undefined) {
      throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `requested address ${JSON.stringify(args.ip)} is not an IPv4 or IPv6 address`);
    }
    const pools = (await this.listPools()).filter((p) => netContains(p.net, addr) && p.allowedUses.includes('Workload'));
    const pool = pools.find((p) => !p.disabled);
    if (!pool) {
      throw new IpamError('ERR_IPAM_NO_POOLS', `requested address ${args.ip} is not in any ${pools.length ? 'enabled ' : ''}IP pool for workloads`);
    }
    const hit = (await this.reservedRanges()).find((r) => netContains(r, addr));
    if (hit) throw new IpamError('ERR_IPAM_RESERVED', `requested address ${args.ip} is reserved (IPReservation range ${formatNet(hit)})`);
    const cidr = formatNet(netOf(addr, pool.blockSize));
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
      const ordinal = Number(addr.value - blockNet(b).base);
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
    pools: readonly PoolInfo[], requireAffinity: string | undefined, reserved: readonly IpNet[] = [], config?: IpamConfig): Promise<AssignedIp[]> {
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
      const { family, base } = blockNet(b);
      const mine = reserved.filter((r) => r.family === family);
      const skip = mine.length === 0 ? undefined : (o: number) => mine.some((r) => netContains(r, { family, value: base + BigInt(o) }));
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

  /** Whether Calico's IPAM config lets `node` claim one more block of `family` (maxBlocksPerHost counts per family, as Calico's). */
  private async mayClaim(node: string, config: IpamConfig, family: IpFamily): Promise<boolean> {
    if (!config.autoAllocateBlocks) return false;
    if (config.maxBlocksPerHost <= 0) return true;
    return (await this.affineBlockCidrs(node, family)).length < config.maxBlocksPerHost;
  }

  /**
   * Claims one unclaimed block from `pools` for `node`; false when none is left. Blocks are
   * scanned from an offset derived from the node name so that nodes rarely race for the same one.
   */
  async claimBlock(node: string, pools: readonly PoolInfo[]): Promise<string | false> {
    const families = [...new Set(pools.map((p) => p.net.family))];
    const listed = await Promise.all(families.map((f) => this.ds.list(blockPrefix(f))));
    const taken = new Set(listed.flatMap((res) => res.items.map((kv) => segmentToCidr(kv.key.slice(kv.key.lastIndexOf('/') + 1)))));
    // 64 bits of seed: an IPv6 pool holds up to 2^112 blocks, and the scan stops at the first free one.
    const seed = createHash('sha1').update(node).digest().readBigUInt64BE(0);
    for (const pool of pools) {
      const count = subnetCount(pool.net, pool.blockSize);
      const start = seed % count;
      for (let i = 0n; i < count; i++) {
        const cidr = formatNet(nthSubnet(pool.net, pool.blockSize, (start + i) % count));
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
    const pools = (await this.usablePools(node, undefined, 'Tunnel', 4)).filter((p) => p.ipipMode !== 'Never');
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
    const addr = tryParseAddr(ip);
    if (addr === undefined) {
      throw new IpamError('ERR_IPAM_INVALID_ARGUMENT', `${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
    }
    const config = await this.ipamConfig();
    const freed = await this.cas(`the block of ${ip}`, async () => {
      const kv = (await this.ds.list(blockPrefix(addr.family))).items.find((x) => {
        const n = tryParseNet(segmentToCidr(x.key.slice(x.key.lastIndexOf('/') + 1)));
        return n !== undefined && netContains(n, addr);
      });
      if (!kv) return undefined;
      const b = checkBlock(kv.value, kv.key);
      const ordinal = Number(addr.value - blockNet(b).base);
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
   * Frees the given addresses of `handleId` only (what a failed assign took; Calico's CNI
   * releases the family that succeeded when the other failed), lowering the handle's counts.
   * Addresses the handle does not hold are left alone. Returns the addresses freed.
   */
  async releaseAddresses(handleId: string, ips: readonly string[]): Promise<string[]> {
    checkHandle(handleId);
    const byBlock = new Map<string, Set<number>>();
    const hkv = await this.ds.get(handleKey(handleId));
    const blocks = hkv ? Object.keys(decodeHandle(hkv.value, hkv.key).block) : [];
    for (const ip of ips) {
      const a = parseAddr(ip);
      const cidr = blocks.find((c) => { const n = tryParseNet(c); return n !== undefined && netContains(n, a); });
      if (cidr === undefined) continue;
      const n = tryParseNet(cidr)!;
      let set = byBlock.get(cidr);
      if (!set) byBlock.set(cidr, set = new Set());
      set.add(Number(a.value - n.base));
    }
    const config = await this.ipamConfig();
    const out: string[] = [];
    for (const [cidr, only] of byBlock) {
      const key = blockKey(cidr);
      const freed = await this.cas(`block ${cidr}`, async () => {
        const kv = await this.ds.get(key);
        if (!kv) return [];
        const { block, ordinals } = releaseHandle(checkBlock(kv.value, key), handleId, only, IpamClient.cooldownStamp(config));
        if (ordinals.length === 0) return [];
        await this.ds.update(key, collectCooldown(block, config.ipCooldownSeconds) as unknown as JsonValue, { expectedRevision: kv.modRevision });
        return ordinals.map((o) => ordinalToIp(block, o));
      });
      if (freed.length > 0) await this.adjustHandle(handleId, cidr, -freed.length);
      out.push(...freed);
    }
    return out;
  }

  /**
   * Gives up `node`'s claims (node removal): empty blocks are deleted, blocks still holding
   * addresses lose their affinity (their addresses stay valid until released). Returns the
   * CIDRs of the blocks it released.
   */
  async releaseHostAffinities(node: string): Promise<string[]> {
    const host = `host:${node}`;
    const done: string[] = [];
    const cidrs = [...await this.affineBlockCidrs(node, 4), ...await this.affineBlockCidrs(node, 6)];
    for (const cidr of cidrs) {
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
