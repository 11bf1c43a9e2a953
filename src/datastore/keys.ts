/**
 * Keys and values: the key layout, key checks and the stored form of values.
 *
 * Key layout of tortie resources in a datastore (both backends):
 *
 *   /tortie/v3/<kind-plural>/<name>                 cluster-scoped (ippools, nodes, globalnetworkpolicies, …)
 *   /tortie/v3/<kind-plural>/<namespace>/<name>     namespaced (networkpolicies, workloadendpoints, …)
 *
 * <kind-plural> is the lower-case plural of the v3 kind (Calico's `/calico/resources/v3/
 * projectcalico.org/<plural>/…` shape without the group). Other data (IPAM blocks, handles,
 * affinities) lives under `/tortie/ipam/v2/…`, built with `tortieKey`. Every prefix helper ends
 * with '/' so that a prefix scan of `ippools` never matches `ippoolsx`. Segments are non-empty
 * and contain no '/' and no control characters (Kubernetes names are DNS labels or subdomains;
 * workload endpoint names contain '-' and '.').
 */
import { InvalidKeyError, InvalidValueError } from './errors';
import type { JsonValue } from './types';

export const KEY_ROOT = '/tortie/';
export const RESOURCE_ROOT = '/tortie/v3/';

// eslint-disable-next-line no-control-regex
const BAD_SEGMENT = /[/\x00-\x1f\x7f]/;

function checkSegment(what: string, seg: string, full: string): void {
  if (typeof seg !== 'string' || seg.length === 0) throw new InvalidKeyError(full, `${what} is empty`);
  if (BAD_SEGMENT.test(seg)) throw new InvalidKeyError(full, `${what} ${JSON.stringify(seg)} contains '/' or a control character`);
  if (seg === '.' || seg === '..') throw new InvalidKeyError(full, `${what} may not be ${JSON.stringify(seg)}`);
}

/** Key of one resource. `namespace` must be given exactly for namespaced kinds. */
export function resourceKey(plural: string, name: string, namespace?: string): string {
  const full = namespace === undefined ? `${RESOURCE_ROOT}${plural}/${name}` : `${RESOURCE_ROOT}${plural}/${namespace}/${name}`;
  checkSegment('kind', plural, full);
  if (plural !== plural.toLowerCase()) throw new InvalidKeyError(full, `kind ${JSON.stringify(plural)} must be lower-case plural`);
  if (namespace !== undefined) checkSegment('namespace', namespace, full);
  checkSegment('name', name, full);
  return full;
}

/** Prefix of all resources of a kind (optionally in one namespace), ending in '/'. */
export function resourcePrefix(plural: string, namespace?: string): string {
  const full = namespace === undefined ? `${RESOURCE_ROOT}${plural}/` : `${RESOURCE_ROOT}${plural}/${namespace}/`;
  checkSegment('kind', plural, full);
  if (namespace !== undefined) checkSegment('namespace', namespace, full);
  return full;
}

export interface ParsedResourceKey {
  plural: string;
  namespace?: string;
  name: string;
}

/** Inverse of resourceKey; undefined for keys outside the resource layout. */
export function parseResourceKey(key: string): ParsedResourceKey | undefined {
  if (!key.startsWith(RESOURCE_ROOT)) return undefined;
  const parts = key.slice(RESOURCE_ROOT.length).split('/');
  if (parts.some((p) => p.length === 0)) return undefined;
  if (parts.length === 2) return { plural: parts[0], name: parts[1] };
  if (parts.length === 3) return { plural: parts[0], namespace: parts[1], name: parts[2] };
  return undefined;
}

/** Any other tortie key: `/tortie/<seg>/<seg>/…` (e.g. tortieKey('ipam', 'v2', 'block', '192.168.0.0-26')). */
export function tortieKey(...segments: string[]): string {
  const full = KEY_ROOT + segments.join('/');
  if (segments.length === 0) throw new InvalidKeyError(full, 'no segments');
  segments.forEach((s, i) => checkSegment(`segment ${i}`, s, full));
  return full;
}

/** Validates a raw key given to a Datastore method. */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || !key.startsWith('/')) throw new InvalidKeyError(String(key), "must be a string starting with '/'");
  if (key.length > 4096) throw new InvalidKeyError(key.slice(0, 64) + '…', 'longer than 4096 characters');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(key)) throw new InvalidKeyError(key, 'contains a control character');
}

/** The smallest string greater than every string with this prefix (etcd's range_end), or '' (none). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // etcd: "\0" as range_end means "to the end of the keyspace"
}

/** A value's stored form (both backends): its JSON text. Throws InvalidValueError naming the key. */
export function encodeValue(key: string, value: JsonValue): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new InvalidValueError(key, `not JSON-serialisable: ${(e as Error).message}`);
  }
  if (text === undefined) throw new InvalidValueError(key, `not JSON-serialisable: ${typeof value}`);
  return text;
}
