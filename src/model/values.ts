/**
 * Value-level checks and normalisers shared by the resource validators and converters:
 * JSON shape accessors, Kubernetes/Calico name and label rules, ports and protocols
 * (addresses and CIDRs: src/primitives).
 *
 * Contract: every function here accepts `unknown` (any JSON value) and never throws; the
 * accessors report problems into an `Issues` collector and return `undefined` on failure.
 * Reasons are written for a human who knows Calico: they say what was found and why it
 * is wrong.
 */
import type { Issues } from './errors';
import type { Port, Protocol } from './types';
import { PROTOCOL_NAMES, RULE_PORT_PROTOCOLS, protocolNumberOfName, tryParseCidrOrIp, type Cidr } from '../primitives';

// ---------------------------------------------------------------- JSON shape

export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own property only: a key such as `constructor` or `__proto__` in the input is data. */
export function own(o: JsonObject, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/**
 * Whether a field is present. `null` counts as absent, as Go's decoder (calicoctl) turns
 * `field:` / `field: null` into the zero value.
 */
export function has(o: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key) && o[key] !== undefined && o[key] !== null;
}

/** A short description of a JSON value for messages: `a number (5)`, `null`, `an array`. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string':
      return `a string (${quote(v)})`;
    case 'number':
      return `a number (${v})`;
    case 'boolean':
      return `a boolean (${v})`;
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

/** JSON-quote a string for messages, cut to a readable length. */
export function quote(s: string): string {
  const cut = s.length > 80 ? s.slice(0, 77) + '...' : s;
  return JSON.stringify(cut);
}

export function field(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

export function index(path: string, i: number): string {
  return `${path}[${i}]`;
}

/** Reports every key of `o` not in `allowed` (calicoctl decodes strictly). */
export function checkKnownFields(
  o: JsonObject,
  allowed: readonly string[],
  path: string,
  issues: Issues,
): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) issues.add(field(path, k), 'unknown field');
  }
}

export function asObject(v: unknown, path: string, issues: Issues): JsonObject | undefined {
  if (isObject(v)) return v;
  issues.add(path, `must be an object, got ${describe(v)}`);
  return undefined;
}

export function asString(v: unknown, path: string, issues: Issues): string | undefined {
  if (typeof v === 'string') return v;
  issues.add(path, `must be a string, got ${describe(v)}`);
  return undefined;
}

export function asBoolean(v: unknown, path: string, issues: Issues): boolean | undefined {
  if (typeof v === 'boolean') return v;
  issues.add(path, `must be true or false, got ${describe(v)}`);
  return undefined;
}

/** An integer within [min, max]. */
export function asInteger(
  v: unknown,
  path: string,
  issues: Issues,
  min: number,
  max: number,
): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    issues.add(path, `must be an integer, got ${describe(v)}`);
    return undefined;
  }
  if (!Number.isInteger(v)) {
    issues.add(path, `must be an integer, got ${v}`);
    return undefined;
  }
  if (v < min || v > max) {
    issues.add(path, `${v} is out of range (${min} to ${max})`);
    return undefined;
  }
  return v;
}

/** A finite number (Calico's float64 `order`). */
export function asFiniteNumber(v: unknown, path: string, issues: Issues): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  issues.add(path, `must be a finite number, got ${describe(v)}`);
  return undefined;
}

export function asArray(v: unknown, path: string, issues: Issues): unknown[] | undefined {
  if (Array.isArray(v)) return v;
  issues.add(path, `must be a list, got ${describe(v)}`);
  return undefined;
}

export function asStringArray(v: unknown, path: string, issues: Issues): string[] | undefined {
  const arr = asArray(v, path, issues);
  if (arr === undefined) return undefined;
  const out: string[] = [];
  let ok = true;
  arr.forEach((e, i) => {
    if (typeof e === 'string') out.push(e);
    else {
      asString(e, index(path, i), issues); // the issue (its path built only then)
      ok = false;
    }
  });
  return ok ? out : undefined;
}

// IP addresses and CIDRs: src/primitives/ip.ts (one parser for every layer).

/** A CIDR or a bare address (a host route) as written (`text`) and parsed; an issue at `path` when it is neither. */
export function asCidr(v: unknown, path: string, issues: Issues): { text: string; cidr: Cidr } | undefined {
  const text = asString(v, path, issues);
  if (text === undefined) return undefined;
  const cidr = tryParseCidrOrIp(text);
  if (cidr === undefined) {
    issues.add(path, `${quote(text)} is not a CIDR`);
    return undefined;
  }
  return { text, cidr };
}

// ---------------------------------------------------------------- names and labels

const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes DNS-1123 label: ≤ 63 of [a-z0-9-], alphanumeric at both ends. */
export function dnsLabelProblem(s: string): string | null {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 63) return `${quote(s)} is longer than 63 characters`;
  if (!DNS_LABEL_RE.test(s)) {
    return `${quote(s)} must consist of lower-case letters, digits and '-', and start and end with a letter or digit`;
  }
  return null;
}

/** Kubernetes DNS-1123 subdomain: dot-separated labels, ≤ 253 in all. */
export function dnsSubdomainProblem(s: string): string | null {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 253) return `${quote(s)} is longer than 253 characters`;
  if (!DNS_SUBDOMAIN_RE.test(s)) {
    return `${quote(s)} must consist of lower-case letters, digits, '-' and '.', and start and end with a letter or digit`;
  }
  return null;
}

const QUALIFIED_NAME_PART_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Kubernetes qualified name (label and annotation keys): `[prefix/]name`. */
export function qualifiedNameProblem(s: string): string | null {
  const parts = s.split('/');
  let name: string;
  if (parts.length === 1) {
    name = s;
  } else if (parts.length === 2) {
    const prefix = parts[0] as string;
    name = parts[1] as string;
    if (prefix.length === 0) return `key ${quote(s)} has an empty prefix before '/'`;
    const p = dnsSubdomainProblem(prefix);
    if (p !== null) return `key prefix ${quote(prefix)} is not a DNS subdomain (lower-case, digits, '-', '.')`;
  } else {
    return `key ${quote(s)} may contain at most one '/'`;
  }
  if (name.length === 0) return `key ${quote(s)} has an empty name part`;
  if (name.length > 63) return `key ${quote(s)}: name part is longer than 63 characters`;
  if (!QUALIFIED_NAME_PART_RE.test(name)) {
    return `key ${quote(s)}: name part must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit`;
  }
  return null;
}

export function labelValueProblem(v: string): string | null {
  if (v.length === 0) return null;
  if (v.length > 63) return `value ${quote(v)} is longer than 63 characters`;
  if (!QUALIFIED_NAME_PART_RE.test(v)) {
    return `value ${quote(v)} must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit`;
  }
  return null;
}

/** Define an own, enumerable property, so that a key like `__proto__` stays plain data. */
export function setOwn<T>(o: Record<string, T>, key: string, value: T): void {
  // Only `__proto__` is an accessor on Object.prototype: any other key assigned to a plain object
  // becomes an own, enumerable, writable data property, as defineProperty makes it, at a
  // fraction of the cost (every label of a 100,000-item first list comes through here).
  if (key === '__proto__' || Object.getPrototypeOf(o) !== Object.prototype) Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

/**
 * A map of string → string, keys sorted, each key and value checked; returns a fresh
 * object (never the input) so later mutation of the input cannot change a validated
 * resource.
 */
function asStringMap(
  v: unknown,
  path: string,
  issues: Issues,
  what: string,
  keyProblem: (k: string) => string | null,
  valueProblem: (v: string) => string | null,
): Record<string, string> | undefined {
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  const out: Record<string, string> = {};
  let ok = true;
  const keys = Object.keys(o);
  if (!isSorted(keys)) keys.sort();
  for (const k of keys) {
    const val = o[k];
    const prob =
      keyProblem(k) ??
      (typeof val !== 'string' ? `${what} value must be a string, got ${describe(val)}` : valueProblem(val));
    if (prob !== null) {
      issues.add(`${path}[${JSON.stringify(k)}]`, prob);
      ok = false;
    } else if (k === '__proto__') setOwn(out, k, val as string);
    else out[k] = val as string; // `out` is a plain object: an own data property, as setOwn makes it
  }
  return ok ? out : undefined;
}

/** Whether `a` is in the order `a.sort()` gives (UTF-16 code units), so that sorting it can be skipped. */
export function isSorted(a: readonly string[]): boolean {
  for (let i = 1; i < a.length; i++) if ((a[i - 1] as string) > (a[i] as string)) return false;
  return true;
}

/**
 * Label keys found valid (qualifiedNameProblem is pure): a first list repeats a few keys on
 * every endpoint. Bounded; cleared when full.
 */
const validLabelKeys = new Set<string>();
const VALID_LABEL_KEYS_MAX = 4096;

function labelKeyProblem(k: string): string | null {
  if (validLabelKeys.has(k)) return null;
  const prob = qualifiedNameProblem(k);
  if (prob === null) {
    if (validLabelKeys.size >= VALID_LABEL_KEYS_MAX) validLabelKeys.clear();
    validLabelKeys.add(k);
  }
  return prob;
}

/** Labels with Kubernetes' rules (qualified-name keys, label values). */
export function asLabels(v: unknown, path: string, issues: Issues): Record<string, string> | undefined {
  return asStringMap(v, path, issues, 'label', labelKeyProblem, labelValueProblem);
}

const ANNOTATIONS_MAX_BYTES = 256 * 1024;

/** Annotations: qualified-name keys (checked lower-cased, as Kubernetes does), ≤ 256 KiB. */
export function asAnnotations(
  v: unknown,
  path: string,
  issues: Issues,
): Record<string, string> | undefined {
  const out = asStringMap(v, path, issues, 'annotation', (k) => qualifiedNameProblem(k.toLowerCase()), () => null);
  if (out === undefined) return undefined;
  let size = 0;
  for (const [k, val] of Object.entries(out)) size += Buffer.byteLength(k) + Buffer.byteLength(val);
  if (size > ANNOTATIONS_MAX_BYTES) {
    issues.add(path, `annotations total ${size} bytes, more than the ${ANNOTATIONS_MAX_BYTES} allowed`);
    return undefined;
  }
  return out;
}

const PORT_NAME_CHARS_RE = /^[-a-z0-9]+$/;

/** Kubernetes IANA_SVC_NAME, the rule Calico applies to named ports. */
export function portNameProblem(s: string): string | null {
  if (s.length === 0) return 'port name must not be empty';
  if (s.length > 15) return `port name ${quote(s)} is longer than 15 characters`;
  if (!PORT_NAME_CHARS_RE.test(s)) return `port name ${quote(s)} may contain only lower-case letters, digits and '-'`;
  if (!/[a-z]/.test(s)) return `port name ${quote(s)} must contain at least one letter`;
  if (s.includes('--')) return `port name ${quote(s)} must not contain "--"`;
  if (s.startsWith('-') || s.endsWith('-')) return `port name ${quote(s)} must not begin or end with '-'`;
  return null;
}

const MAC_RE = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** 48-bit MAC with ':' or '-' separators; normalised to lower-case with ':'. */
export function parseMac(s: string): string | null {
  if (!MAC_RE.test(s)) return null;
  return s.toLowerCase().replace(/-/g, ':');
}

// ---------------------------------------------------------------- ports and protocols

/**
 * Calico's numorstring.Protocol: a name (case-sensitive, as Calico's validator) or a number
 * 1–255; a numeric string becomes a number (Calico decodes `"6"` as 6).
 */
export function parseProtocol(v: unknown): { value: Protocol } | { error: string } {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 1 || v > 255) {
      return { error: `protocol number ${v} is invalid (must be 1 to 255)` };
    }
    return { value: v };
  }
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return parseProtocol(Number(v));
    if ((PROTOCOL_NAMES as readonly string[]).includes(v)) return { value: v };
    const hint = PROTOCOL_NAMES.find((n) => n.toLowerCase() === v.toLowerCase());
    return {
      error:
        `protocol ${quote(v)} is invalid (expected one of ${PROTOCOL_NAMES.join(', ')} or a number 1 to 255)` +
        (hint !== undefined ? `; did you mean ${hint}?` : ''),
    };
  }
  return { error: `protocol must be a name or a number, got ${describe(v)}` };
}

/** The IP protocol number of a validated protocol value. */
export function protocolNumber(p: Protocol): number {
  return typeof p === 'number' ? p : (protocolNumberOfName(p) ?? 0);
}

/** Calico allows port matches only for TCP, UDP and SCTP (by name or number). */
export function protocolSupportsPorts(p: Protocol): boolean {
  return RULE_PORT_PROTOCOLS.includes(protocolNumber(p));
}

export type ParsedPort =
  | { kind: 'range'; min: number; max: number; value: Port }
  | { kind: 'named'; name: string; value: Port };

const DIGITS_RE = /^\d+$/;
const RANGE_RE = /^(\d+):(\d+)$/;

/**
 * Calico's numorstring.Port: a number, `"80"`, `"min:max"`, or a named port. The value is
 * returned in Calico's canonical form: a number for a single port, `"min:max"` for a range,
 * the name for a named port.
 */
export function parsePort(v: unknown): ParsedPort | { error: string } {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 1 || v > 65535) {
      return { error: `port ${v} is invalid (must be 1 to 65535)` };
    }
    return { kind: 'range', min: v, max: v, value: v };
  }
  if (typeof v !== 'string') {
    return { error: `port must be a number or a string, got ${describe(v)}` };
  }
  if (DIGITS_RE.test(v)) {
    const n = Number(v);
    if (n < 1 || n > 65535) return { error: `port ${quote(v)} is invalid (must be 1 to 65535)` };
    return { kind: 'range', min: n, max: n, value: n };
  }
  const m = RANGE_RE.exec(v);
  if (m !== null) {
    const min = Number(m[1]);
    const max = Number(m[2]);
    if (min < 1 || min > 65535 || max < 1 || max > 65535) {
      return { error: `range ${quote(v)} is invalid (ports must be 1 to 65535)` };
    }
    if (min > max) return { error: `range ${quote(v)} has min > max` };
    return { kind: 'range', min, max, value: min === max ? min : `${min}:${max}` };
  }
  const prob = portNameProblem(v);
  if (prob !== null) {
    return { error: `${quote(v)} is neither a port number, a "min:max" range nor a valid named port: ${prob}` };
  }
  return { kind: 'named', name: v, value: v };
}

/** Go's metav1.Time as it marshals: RFC 3339 at second precision (creationTimestamp, releasedAt, …). */
export function metaTimestamp(now: Date = new Date()): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
