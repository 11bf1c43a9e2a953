/**
 * Keys and values: the key layout, key checks and the stored form of values.
 *
 * The layout is Calico's own etcd v3 layout (libcalico-go lib/backend/model: ResourceKey,
 * BlockKey, BlockAffinityKey, IPAMHandleKey, IPAMConfigKey), in both backends, so that tortie
 * can take over a cluster whose etcd Calico populated and calicoctl sees tortie's writes:
 *
 *   /calico/resources/v3/projectcalico.org/<plural>/<name>               cluster-scoped kinds
 *   /calico/resources/v3/projectcalico.org/<plural>/<namespace>/<name>   namespaced kinds
 *   /calico/ipam/v2/assignment/ipv4/block/<a.b.c.d-nn>                   IPAM blocks
 *   /calico/ipam/v2/host/<node>/ipv4/block/<a.b.c.d-nn>                  block affinities
 *   /calico/ipam/v2/handle/<handle id>                                   IPAM handles
 *   /calico/ipam/v2/config                                               IPAM configuration
 *
 * <plural> is the lower-case plural of the v3 kind. What Calico has no key for lives under the
 * API group `tortie.io` instead of `projectcalico.org`: today only Namespace
 * (`/calico/resources/v3/tortie.io/namespaces/<name>`; with the Kubernetes datastore Calico
 * reads namespaces from Kubernetes, in etcd it has none). libcalico-go only matches keys of its
 * own group, so calicoctl and Felix never see these; one watch of RESOURCE_ROOT follows both.
 * Every prefix helper ends with '/' so that a prefix scan of `ippools` never matches `ippoolsx`.
 * Segments are non-empty and contain no '/' and no control characters (Kubernetes names are DNS
 * labels or subdomains; workload endpoint names contain '-' and '.').
 */
import { InvalidKeyError, InvalidValueError } from './errors';
import type { JsonValue } from './types';

/** Root of every resource key (both API groups): what the agent watches. */
export const RESOURCE_ROOT = '/calico/resources/v3/';
/** Calico's API group: every kind libcalico-go knows. */
export const CALICO_RESOURCE_ROOT = '/calico/resources/v3/projectcalico.org/';
/** tortie's API group: kinds Calico stores nowhere in etcd. */
export const TORTIE_RESOURCE_ROOT = '/calico/resources/v3/tortie.io/';
/** Plurals stored under tortie's group. */
export const TORTIE_ONLY_PLURALS: ReadonlySet<string> = new Set(['namespaces']);
/** Root of Calico's IPAM keys. */
export const IPAM_ROOT = '/calico/ipam/v2/';

// eslint-disable-next-line no-control-regex
const BAD_SEGMENT = /[/\x00-\x1f\x7f]/;

function checkSegment(what: string, seg: string, full: string): void {
  if (typeof seg !== 'string' || seg.length === 0) throw new InvalidKeyError(full, `${what} is empty`);
  if (BAD_SEGMENT.test(seg)) throw new InvalidKeyError(full, `${what} ${JSON.stringify(seg)} contains '/' or a control character`);
  if (seg === '.' || seg === '..') throw new InvalidKeyError(full, `${what} may not be ${JSON.stringify(seg)}`);
}

function rootOf(plural: string): string {
  return TORTIE_ONLY_PLURALS.has(plural) ? TORTIE_RESOURCE_ROOT : CALICO_RESOURCE_ROOT;
}

/** Key of one resource. `namespace` must be given exactly for namespaced kinds. */
export function resourceKey(plural: string, name: string, namespace?: string): string {
  const root = rootOf(plural);
  const full = namespace === undefined ? `${root}${plural}/${name}` : `${root}${plural}/${namespace}/${name}`;
  checkSegment('kind', plural, full);
  if (plural !== plural.toLowerCase()) throw new InvalidKeyError(full, `kind ${JSON.stringify(plural)} must be lower-case plural`);
  if (namespace !== undefined) checkSegment('namespace', namespace, full);
  checkSegment('name', name, full);
  return full;
}

/** Prefix of all resources of a kind (optionally in one namespace), ending in '/'. */
export function resourcePrefix(plural: string, namespace?: string): string {
  const root = rootOf(plural);
  const full = namespace === undefined ? `${root}${plural}/` : `${root}${plural}/${namespace}/`;
  checkSegment('kind', plural, full);
  if (namespace !== undefined) checkSegment('namespace', namespace, full);
  return full;
}

export interface ParsedResourceKey {
  plural: string;
  namespace?: string;
  name: string;
}

/**
 * Inverse of resourceKey; undefined for keys outside the resource layout, and for a plural
 * under the other group's root (a `namespaces` key under projectcalico.org is not tortie's).
 */
export function parseResourceKey(key: string): ParsedResourceKey | undefined {
  const root = key.startsWith(CALICO_RESOURCE_ROOT) ? CALICO_RESOURCE_ROOT : key.startsWith(TORTIE_RESOURCE_ROOT) ? TORTIE_RESOURCE_ROOT : undefined;
  if (root === undefined) return undefined;
  // `<plural>/<name>` or `<plural>/<namespace>/<name>`, no part empty (found with indexOf: no
  // array of parts per key in a first list).
  const start = root.length;
  const a = key.indexOf('/', start);
  if (a <= start) return undefined;
  const b = key.indexOf('/', a + 1);
  if (b !== -1 && key.indexOf('/', b + 1) !== -1) return undefined; // more than three parts
  if (b === a + 1) return undefined; // empty namespace
  if ((b === -1 ? a : b) + 1 === key.length) return undefined; // empty name
  const plural = key.slice(start, a);
  if (rootOf(plural) !== root) return undefined;
  if (b === -1) return { plural, name: key.slice(a + 1) };
  return { plural, namespace: key.slice(a + 1, b), name: key.slice(b + 1) };
}

/** Any IPAM key: `/calico/ipam/v2/<seg>/<seg>/…` (e.g. ipamKey('handle', 'net.1234')). */
export function ipamKey(...segments: string[]): string {
  const full = IPAM_ROOT + segments.join('/');
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

/**
 * Integers beyond Number.MAX_SAFE_INTEGER are kept exact: Calico stores IPAM block sequence
 * numbers as uint64 nanosecond timestamps (~1.7e18), which a JavaScript number would round, so
 * a read-modify-write would corrupt them. `decodeValue` turns each such integer literal into
 * the string BIG_INT_MARK + digits, `encodeValue` writes it back as the bare literal; use
 * bigIntOf / bigIntValue to compute with them.
 */
export const BIG_INT_MARK = '\u0000int:';
const BIG_INT_STRING = /"\\u0000int:(-?\d+)"/g;

/** What Go's json.Marshal escapes inside strings (HTML-safe by default), and how. */
const GO_ESCAPES: Readonly<Record<string, string>> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };
const GO_ESCAPED = /[<>&\u2028\u2029]/g;

/*
 * JavaScript objects list integer-like keys first, in numeric order, whatever the insertion
 * order; Go writes a map's keys sorted as strings ("0", "1", "17", "5": Calico's
 * sequenceNumberForAllocation). An object with several such keys is written by hand in Go's
 * order, carried through JSON.stringify as a RAW_MARK string and spliced back afterwards.
 */
const INT_KEY = /^(?:0|[1-9]\d*)$/;
const RAW_MARK = '\u0001raw:';
const RAW_STRING = /"\\u0001raw:((?:[^"\\]|\\.)*)"/g;

function goMapOrder(this: unknown, _key: string, v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  let ints = 0;
  for (const k in v) if (INT_KEY.test(k) && ++ints > 1) break;
  if (ints < 2) return v;
  const o = v as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(o).sort()) {
    const inner = JSON.stringify(o[k], goMapOrder);
    if (inner !== undefined) parts.push(`${JSON.stringify(k)}:${inner}`);
  }
  return RAW_MARK + '{' + parts.join(',') + '}';
}

function spliceRaw(text: string): string {
  return text.replace(RAW_STRING, (_m, lit: string) => spliceRaw(JSON.parse(`"${lit}"`) as string));
}

/**
 * A value's stored form (both backends): its JSON text, as Go's json.Marshal writes it (compact;
 * map keys that are integers in Go's string order; `<`, `>`, `&`, U+2028 and U+2029 escaped —
 * they only occur inside strings, so a selector's `&&` is stored as libcalico-go stores it).
 * Throws InvalidValueError naming the key.
 */
export function encodeValue(key: string, value: JsonValue): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, goMapOrder);
  } catch (e) {
    throw new InvalidValueError(key, `not JSON-serialisable: ${(e as Error).message}`);
  }
  if (text === undefined) throw new InvalidValueError(key, `not JSON-serialisable: ${typeof value}`);
  if (text.includes('\\u0001raw:')) text = spliceRaw(text);
  if (text.includes('\\u0000int:')) text = text.replace(BIG_INT_STRING, '$1');
  return text.replace(GO_ESCAPED, (c) => GO_ESCAPES[c]!);
}

/**
 * Whether `text` holds 16 or more consecutive ASCII digits (as /\d{16}/ tests). Such a run covers
 * an index ≡ 15 (mod 16), so only those are looked at, and the run around a digit found there
 * measured: ~2× faster than the regular expression over a first list's values.
 */
function hasDigitRun16(text: string): boolean {
  const n = text.length;
  for (let i = 15; i < n; i += 16) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) continue;
    let a = i;
    while (a > 0) {
      const d = text.charCodeAt(a - 1);
      if (d < 0x30 || d > 0x39) break;
      a--;
    }
    let b = i;
    while (b + 1 < n) {
      const d = text.charCodeAt(b + 1);
      if (d < 0x30 || d > 0x39) break;
      b++;
    }
    if (b - a + 1 >= 16) return true;
  }
  return false;
}

/** Parses a stored value's JSON text, keeping integers beyond 2^53 exact (see BIG_INT_MARK). */
export function decodeValue(text: string): JsonValue {
  if (!hasDigitRun16(text)) return JSON.parse(text) as JsonValue;
  let out = '';
  let i = 0;
  let last = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // a string: skip to its closing quote
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      i++;
      continue;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < text.length && /[0-9eE.+-]/.test(text[j])) j++;
      const lit = text.slice(i, j);
      if (/^-?\d{16,}$/.test(lit) && !Number.isSafeInteger(Number(lit))) {
        out += text.slice(last, i) + JSON.stringify(BIG_INT_MARK + lit);
        last = j;
      }
      i = j;
      continue;
    }
    i++;
  }
  return JSON.parse(out + text.slice(last)) as JsonValue;
}

/** A stored integer (number or BIG_INT_MARK string) as a BigInt; undefined if it is neither. */
export function bigIntOf(v: unknown): bigint | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && v.startsWith(BIG_INT_MARK) && /^-?\d+$/.test(v.slice(BIG_INT_MARK.length))) return BigInt(v.slice(BIG_INT_MARK.length));
  return undefined;
}

/** The stored form of an integer: a number when exact, else a BIG_INT_MARK string. */
export function bigIntValue(n: bigint): number | string {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : BIG_INT_MARK + n.toString();
}
