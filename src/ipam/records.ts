/**
 * Calico's IPAM keys and the records stored under them other than blocks (block.ts), written
 * exactly as libcalico-go writes them so Calico and tortie share one IPAM:
 *
 *   /calico/ipam/v2/assignment/ipv4/block/<a.b.c.d-nn>     AllocationBlock (block.ts)
 *   /calico/ipam/v2/assignment/ipv6/block/<fd00:10::-122>  the same for an IPv6 block (Go's
 *                                                          text form of the CIDR, '/' → '-')
 *   /calico/ipam/v2/host/<node>/ipv4/block/<a.b.c.d-nn>    BlockAffinity {"state", "deleted"}
 *                                                          (model/block_affinity.go); the
 *                                                          per-node index of claimed blocks
 *                                                          (…/ipv6/block/… for IPv6 blocks)
 *   /calico/ipam/v2/handle/<handle id>                     IPAMHandle {"block": {cidr: count},
 *                                                          "deleted"} (model/ipam_handle.go): how
 *                                                          many addresses the handle holds per block
 *   /calico/ipam/v2/config                                 IPAMConfig (model/ipam_config.go):
 *                                                          strict_affinity, auto_allocate_blocks,
 *                                                          maxBlocksPerHost, ipCooldownSeconds
 *                                                          (each omitted when false / 0)
 *
 * Go writes map keys sorted; so do the encoders here.
 */
import { IPAM_ROOT, ipamKey } from '../datastore/keys';
import type { JsonValue } from '../datastore/types';
import { cidrToSegment } from './block';
import { IpamError } from './errors';
import type { IpFamily } from '../primitives';

/** `ipv4` / `ipv6`: the family segment of a key, from a CIDR's text (IPv6 text has a ':'). */
const famSeg = (cidr: string): string => (cidr.includes(':') ? 'ipv6' : 'ipv4');

export function blockKey(cidr: string): string {
  return ipamKey('assignment', famSeg(cidr), 'block', cidrToSegment(cidr));
}
export function blockPrefix(family: IpFamily = 4): string {
  return ipamKey('assignment', `ipv${family}`, 'block') + '/';
}
export function affinityKey(node: string, cidr: string): string {
  return ipamKey('host', node, famSeg(cidr), 'block', cidrToSegment(cidr));
}
export function affinityPrefix(node: string, family: IpFamily = 4): string {
  return ipamKey('host', node, `ipv${family}`, 'block') + '/';
}
export function handleKey(handleId: string): string {
  return ipamKey('handle', handleId);
}
export function handlePrefix(): string {
  return ipamKey('handle') + '/';
}
export const IPAM_CONFIG_KEY = `${IPAM_ROOT}config`;

// ------------------------------------------------------------------ affinity

export type AffinityState = 'pending' | 'confirmed' | 'pendingDeletion';

export function affinityValue(state: AffinityState): JsonValue {
  return { state, deleted: false };
}

// ------------------------------------------------------------------ handle

/** A handle record: addresses held per block CIDR (counts > 0). */
export interface HandleRecord {
  block: Record<string, number>;
  deleted: boolean;
}

export function encodeHandle(h: HandleRecord): JsonValue {
  const block: Record<string, number> = {};
  for (const k of Object.keys(h.block).sort()) if (h.block[k]! > 0) block[k] = h.block[k]!;
  return { block, deleted: h.deleted };
}

export function decodeHandle(value: unknown, key: string): HandleRecord {
  const v = value as { block?: unknown; deleted?: unknown } | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new IpamError('ERR_IPAM_CORRUPT', `IPAM handle at ${key} is not an object`);
  const block: Record<string, number> = {};
  if (v.block !== undefined && v.block !== null) {
    if (typeof v.block !== 'object' || Array.isArray(v.block)) throw new IpamError('ERR_IPAM_CORRUPT', `IPAM handle at ${key}: block is not an object`);
    for (const [cidr, n] of Object.entries(v.block as Record<string, unknown>)) {
      if (!Number.isInteger(n) || (n as number) < 0) throw new IpamError('ERR_IPAM_CORRUPT', `IPAM handle at ${key}: count of block ${cidr} is not a non-negative integer`);
      block[cidr] = n as number;
    }
  }
  return { block, deleted: v.deleted === true };
}

/** The handle with `n` more (or, negative, fewer) addresses in `cidr`; entries at 0 are dropped. */
export function adjustHandle(h: HandleRecord, cidr: string, n: number): HandleRecord {
  const block = { ...h.block };
  const next = (block[cidr] ?? 0) + n;
  if (next > 0) block[cidr] = next;
  else delete block[cidr];
  return { block, deleted: h.deleted };
}

// ------------------------------------------------------------------ config

/** Calico's IPAM configuration as its IPAM reads it. */
export interface IpamConfig {
  /** Never borrow from another node's block (nor hand out addresses of a block without affinity). */
  strictAffinity: boolean;
  /** Claim new blocks when the node's are full. */
  autoAllocateBlocks: boolean;
  /** At most this many blocks per node (0: no limit). */
  maxBlocksPerHost: number;
  /** A released address stays unusable this long (0: reusable at once, still last in line). */
  ipCooldownSeconds: number;
}

/** Calico's defaults when no configuration is stored (ipam.go GetIPAMConfig). */
export const DEFAULT_IPAM_CONFIG: Readonly<IpamConfig> = { strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0, ipCooldownSeconds: 0 };

/** A stored config; its omitted fields are false / 0, as Go decodes them. undefined: defaults. */
export function decodeIpamConfig(value: unknown): IpamConfig {
  if (value === undefined) return { ...DEFAULT_IPAM_CONFIG };
  const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const int = (x: unknown): number => (Number.isInteger(x) && (x as number) > 0 ? (x as number) : 0);
  return {
    strictAffinity: v.strict_affinity === true,
    autoAllocateBlocks: v.auto_allocate_blocks === true,
    maxBlocksPerHost: int(v.maxBlocksPerHost),
    ipCooldownSeconds: int(v.ipCooldownSeconds),
  };
}

export function encodeIpamConfig(c: IpamConfig): JsonValue {
  const out: Record<string, JsonValue> = {};
  if (c.strictAffinity) out.strict_affinity = true;
  if (c.autoAllocateBlocks) out.auto_allocate_blocks = true;
  if (c.maxBlocksPerHost > 0) out.maxBlocksPerHost = c.maxBlocksPerHost;
  if (c.ipCooldownSeconds > 0) out.ipCooldownSeconds = c.ipCooldownSeconds;
  return out;
}
