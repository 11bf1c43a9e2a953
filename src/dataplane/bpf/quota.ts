/**
 * Per-workload quota counters (tortie_natq4_v1, tortie_ctq4_v1, tortie_ctq6_v1; bpf/shared/maps.h and
 * bpf/lib/quota.h): per workload address CREATED and MOVED (written by the programs, atomically)
 * and RELEASED (written only by the agent's sweeps). Live entries = CREATED - RELEASED - MOVED.
 */
import type { BpfMap } from '../native';
import { QUOTA, quota4KeyCodec, quotaValueCodec } from './net-codecs';
import { quota6KeyCodec } from './codecs';

/** A key of either quota map, by its size (struct tortie_quota4_key: 8 bytes, tortie_quota6_key: 20). */
function decodeQuotaKey(k: Buffer): { addr: string; kind: number } {
  return k.length === quota4KeyCodec.size ? quota4KeyCodec.decode(k) : quota6KeyCodec.decode(k);
}

export interface QuotaRow { addr: string; created: bigint; released: bigint; moved: bigint; live: number }

/** Every workload's counters, most entries first. */
export function readQuota(m: BpfMap): QuotaRow[] {
  const { keys, values } = m.entries();
  const by = new Map<string, QuotaRow>();
  keys.forEach((k, i) => {
    const key = decodeQuotaKey(k);
    const count = quotaValueCodec.decode(values[i]!).count;
    const row = by.get(key.addr) ?? { addr: key.addr, created: 0n, released: 0n, moved: 0n, live: 0 };
    if (key.kind === QUOTA.CREATED) row.created = count;
    else if (key.kind === QUOTA.RELEASED) row.released = count;
    else row.moved = count;
    by.set(key.addr, row);
  });
  for (const r of by.values()) {
    const gone = r.released + r.moved;
    r.live = r.created > gone ? Number(r.created - gone) : 0;
  }
  return [...by.values()].sort((a, b) => b.live - a.live);
}

export function quotaKey(addr: string, kind: number): Buffer {
  return addr.includes(':') ? quota6KeyCodec.encode({ addr, kind }) : quota4KeyCodec.encode({ addr, kind });
}

export function readQuotaCounter(m: BpfMap, addr: string, kind: number): bigint {
  const v = m.lookup(quotaKey(addr, kind));
  return v ? quotaValueCodec.decode(v).count : 0n;
}

export function writeReleased(m: BpfMap, addr: string, count: bigint): void {
  m.update(quotaKey(addr, QUOTA.RELEASED), quotaValueCodec.encode({ count: count < 0n ? 0n : count }));
}
