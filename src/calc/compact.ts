/**
 * Compact containers for the calc graph's long-lived indexes (memory: at 10,000 endpoints most
 * of these hold one element, and a Set per element costs ~150 bytes more than the element).
 *
 * Contract of `Few<T>` (a set of T that is usually one element): `undefined` is the empty set, a
 * bare T one element, a Set two or more. `fewAdd`/`fewDelete` return the new value (the caller
 * stores it back); iteration order is unspecified, so callers must not depend on it. T must not
 * itself be a Set.
 */

export type Few<T> = T | Set<T> | undefined;

export function fewSize<T>(f: Few<T>): number {
  if (f === undefined) return 0;
  return f instanceof Set ? f.size : 1;
}

export function fewHas<T>(f: Few<T>, v: T): boolean {
  if (f === undefined) return false;
  return f instanceof Set ? f.has(v) : f === v;
}

export function fewAdd<T>(f: Few<T>, v: T): Few<T> {
  if (f === undefined || f === v) return v;
  if (f instanceof Set) return f.add(v);
  return new Set([f, v]);
}

export function fewDelete<T>(f: Few<T>, v: T): Few<T> {
  if (f === undefined || f === v) return undefined;
  if (!(f instanceof Set)) return f;
  f.delete(v);
  if (f.size > 1) return f;
  // Back to one element (or none): drop the Set.
  for (const x of f) return x;
  return undefined;
}

/** The elements, to iterate (the Set itself when there are several: do not mutate meanwhile). */
export function fewValues<T>(f: Few<T>): Iterable<T> {
  if (f === undefined) return [];
  return f instanceof Set ? f : [f];
}
