/**
 * Small helpers shared by the calc graph's nodes: multimap add/remove (a set emptied by a remove
 * is deleted, so an add and its matching remove leave the map as it was), the label index's
 * (key, value) key, and 32-bit ids by hash with probing.
 */
import { createHash } from 'node:crypto';

/** Label (key, value) as one map key. */
export const kv = (k: string, v: string): string => `${k}\u0000${v}`;

export function addTo<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  s.add(v);
}

export function removeFrom<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (s === undefined) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

/** 32-bit id of a key, ≥ 1, probing past ids taken by other keys. */
export function hashId(key: string, taken: (id: number) => boolean): number {
  for (let salt = 0; ; salt++) {
    const h = createHash('sha1').update(salt === 0 ? key : `${salt}\u0000${key}`).digest().readUInt32BE(0);
    if (h !== 0 && !taken(h)) return h;
  }
}
