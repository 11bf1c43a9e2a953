/**
 * Validation of the BGP kinds, BGPConfiguration and BGPPeer, following libcalico-go's
 * validator; called from validate.ts's per-kind switch.
 *
 * Contract: like every validator here, returns the validated resource (stored as written:
 * Calico's BGP fields are pointers whose absence means "default"; src/bgp resolves the
 * defaults) or adds every problem to `issues`. Calico fields tortie does not implement are
 * refused by name ("is a Calico field tortie does not implement"), never silently dropped.
 */
import type { Issues } from './errors';
import { checkSelector } from './selectors';
import type {
  BGPConfiguration,
  BGPConfigurationSpec,
  BGPLogSeverity,
  BGPPassword,
  BGPPeer,
  BGPPeerSpec,
  ObjectMeta,
  ServiceIPBlock,
} from './types';
import { API_VERSION_V3 } from './types';
import {
  asArray,
  asBoolean,
  asCidr,
  asInteger,
  asObject,
  asString,
  checkKnownFields,
  describe,
  dnsSubdomainProblem,
  field,
  has,
  index,
  own,
  quote,
  type JsonObject,
} from './values';
import { formatCidr, formatIP, isMasked, tryParseIP } from '../primitives';
import { parseAsNumber } from './validate';

/** Calico's default AS number for nodes without their own. */
export const DEFAULT_AS_NUMBER = 64512;
export const DEFAULT_BGP_PORT = 179;
/** Calico's default for nodeMeshMaxRestartTime / maxRestartTime (BIRD's graceful restart time). */
export const DEFAULT_MAX_RESTART_SECONDS = 120;

const NOT_IMPLEMENTED = 'is a Calico field tortie does not implement';

const BGPCONFIG_FIELDS = [
  'logSeverityScreen',
  'nodeToNodeMeshEnabled',
  'asNumber',
  'serviceClusterIPs',
  'serviceExternalIPs',
  'listenPort',
  'nodeMeshPassword',
  'nodeMeshMaxRestartTime',
  'bindMode',
];
const BGPCONFIG_REFUSED = [
  'serviceLoadBalancerIPs',
  'communities',
  'prefixAdvertisements',
  'localWorkloadPeeringIPV4',
  'localWorkloadPeeringIPV6',
  'ignoredInterfaces',
  'programClusterRoutes',
];
/** Only the cluster-wide `default` resource may set these (Calico's rule). */
const DEFAULT_ONLY: readonly (keyof BGPConfigurationSpec)[] = [
  'nodeToNodeMeshEnabled',
  'asNumber',
  'serviceClusterIPs',
  'serviceExternalIPs',
  'nodeMeshPassword',
  'nodeMeshMaxRestartTime',
];
const SEVERITIES: readonly BGPLogSeverity[] = ['Debug', 'Info', 'Warning', 'Error', 'Fatal'];

const BGPPEER_FIELDS = [
  'node',
  'peerIP',
  'asNumber',
  'nodeSelector',
  'peerSelector',
  'keepOriginalNextHop',
  'password',
  'sourceAddress',
  'maxRestartTime',
  'numAllowedLocalASNumbers',
];
const BGPPEER_REFUSED = [
  'ttlSecurity',
  'reachableBy',
  'filters',
  'localWorkloadSelector',
  'nextHopMode',
  'keepaliveTime',
  'reversePeering',
];

function refuse(s: JsonObject, names: readonly string[], issues: Issues): void {
  for (const n of names) if (has(s, n)) issues.add(field('spec', n), NOT_IMPLEMENTED);
}

/** `default` or `node.<node name>`: the only BGPConfiguration names Calico acts on. */
export function bgpConfigNameProblem(name: string): string | null {
  if (name === 'default') return null;
  if (name.startsWith('node.')) {
    const p = dnsSubdomainProblem(name.slice(5));
    return p === null ? null : `the node name in ${quote(name)}: ${p}`;
  }
  return `${quote(name)} must be "default" or "node.<node name>" (other names have no effect in Calico)`;
}

export function bgpConfiguration(meta: ObjectMeta, s: JsonObject, issues: Issues): BGPConfiguration {
  checkKnownFields(s, [...BGPCONFIG_FIELDS, ...BGPCONFIG_REFUSED], 'spec', issues);
  refuse(s, BGPCONFIG_REFUSED, issues);
  const spec: BGPConfigurationSpec = {};
  if (has(s, 'logSeverityScreen')) {
    const v = own(s, 'logSeverityScreen');
    if (SEVERITIES.includes(v as BGPLogSeverity)) spec.logSeverityScreen = v as BGPLogSeverity;
    else issues.add('spec.logSeverityScreen', `must be one of ${SEVERITIES.join(', ')}, got ${describe(v)}`);
  }
  if (has(s, 'nodeToNodeMeshEnabled')) {
    const b = asBoolean(own(s, 'nodeToNodeMeshEnabled'), 'spec.nodeToNodeMeshEnabled', issues);
    if (b !== undefined) spec.nodeToNodeMeshEnabled = b;
  }
  if (has(s, 'asNumber')) {
    const a = asNumber(own(s, 'asNumber'), 'spec.asNumber', issues);
    if (a !== undefined) spec.asNumber = a;
  }
  for (const key of ['serviceClusterIPs', 'serviceExternalIPs'] as const) {
    if (!has(s, key)) continue;
    const l = serviceBlocks(own(s, key), `spec.${key}`, issues);
    if (l !== undefined && l.length > 0) spec[key] = l;
  }
  if (has(s, 'listenPort')) {
    const p = asInteger(own(s, 'listenPort'), 'spec.listenPort', issues, 1, 65535);
    if (p !== undefined) spec.listenPort = p;
  }
  if (has(s, 'nodeMeshPassword')) {
    const p = password(own(s, 'nodeMeshPassword'), 'spec.nodeMeshPassword', issues);
    if (p !== undefined) spec.nodeMeshPassword = p;
  }
  if (has(s, 'nodeMeshMaxRestartTime')) {
    const d = restartTime(own(s, 'nodeMeshMaxRestartTime'), 'spec.nodeMeshMaxRestartTime', issues);
    if (d !== undefined) spec.nodeMeshMaxRestartTime = d;
  }
  if (has(s, 'bindMode')) {
    const v = own(s, 'bindMode');
    if (v === 'None') spec.bindMode = 'None';
    else if (v === 'NodeIP') issues.add('spec.bindMode', `NodeIP ${NOT_IMPLEMENTED} (bird2 listens on all addresses of the node's namespace)`);
    else issues.add('spec.bindMode', `must be None or NodeIP, got ${describe(v)}`);
  }
  if (meta.name !== 'default' && meta.name !== '') {
    for (const k of DEFAULT_ONLY) {
      if (spec[k] !== undefined) issues.add(field('spec', k), 'can only be set on the BGPConfiguration named "default"');
    }
  }
  return { apiVersion: API_VERSION_V3, kind: 'BGPConfiguration', metadata: meta, spec };
}

export function bgpPeer(meta: ObjectMeta, s: JsonObject, issues: Issues): BGPPeer {
  checkKnownFields(s, [...BGPPEER_FIELDS, ...BGPPEER_REFUSED], 'spec', issues);
  refuse(s, BGPPEER_REFUSED, issues);
  const spec: BGPPeerSpec = {};
  if (has(s, 'node')) {
    const n = asString(own(s, 'node'), 'spec.node', issues);
    if (n !== undefined && n !== '') {
      const p = dnsSubdomainProblem(n);
      if (p !== null) issues.add('spec.node', p);
      else spec.node = n;
    }
  }
  if (has(s, 'peerIP')) {
    const v = own(s, 'peerIP');
    const p = typeof v === 'string' ? parsePeerIP(v) : undefined;
    if (p === undefined) issues.add('spec.peerIP', `${typeof v === 'string' ? quote(v) : describe(v)} is not an IP address, ip:port or [ipv6]:port`);
    else if (v !== '') spec.peerIP = p.port === undefined ? p.ip : p.ip.includes(':') ? `[${p.ip}]:${p.port}` : `${p.ip}:${p.port}`;
  }
  if (has(s, 'asNumber')) {
    const a = asNumber(own(s, 'asNumber'), 'spec.asNumber', issues);
    if (a !== undefined) spec.asNumber = a;
  }
  for (const key of ['nodeSelector', 'peerSelector'] as const) {
    if (!has(s, key)) continue;
    const r = checkSelector(own(s, key), `spec.${key}`, issues, 'forbidden');
    if (r.text !== undefined) spec[key] = r.text;
  }
  if (has(s, 'keepOriginalNextHop')) {
    const b = asBoolean(own(s, 'keepOriginalNextHop'), 'spec.keepOriginalNextHop', issues);
    if (b) spec.keepOriginalNextHop = true;
  }
  if (has(s, 'password')) {
    const p = password(own(s, 'password'), 'spec.password', issues);
    if (p !== undefined) spec.password = p;
  }
  if (has(s, 'sourceAddress')) {
    const v = own(s, 'sourceAddress');
    if (v === 'UseNodeIP' || v === 'None') spec.sourceAddress = v;
    else issues.add('spec.sourceAddress', `must be UseNodeIP or None, got ${describe(v)}`);
  }
  if (has(s, 'maxRestartTime')) {
    const d = restartTime(own(s, 'maxRestartTime'), 'spec.maxRestartTime', issues);
    if (d !== undefined) spec.maxRestartTime = d;
  }
  if (has(s, 'numAllowedLocalASNumbers')) {
    const n = asInteger(own(s, 'numAllowedLocalASNumbers'), 'spec.numAllowedLocalASNumbers', issues, 0, 10);
    if (n !== undefined && n > 0) spec.numAllowedLocalASNumbers = n;
  }
  // libcalico-go's cross-field rules.
  if (spec.node !== undefined && spec.nodeSelector !== undefined) {
    issues.add('spec', 'node and nodeSelector cannot both be set');
  }
  if (spec.peerIP !== undefined && spec.peerSelector !== undefined) {
    issues.add('spec', 'peerIP and peerSelector cannot both be set');
  }
  if (spec.peerSelector !== undefined && spec.asNumber !== undefined) {
    issues.add('spec.asNumber', 'must not be set with peerSelector (the selected nodes\' AS numbers are used)');
  }
  if (spec.peerIP !== undefined && spec.asNumber === undefined && !has(s, 'asNumber')) {
    issues.add('spec.asNumber', 'is required with peerIP');
  }
  if (spec.peerIP === undefined && spec.peerSelector === undefined && !has(s, 'peerIP') && !has(s, 'peerSelector')) {
    issues.add('spec', 'one of peerIP or peerSelector is required');
  }
  return { apiVersion: API_VERSION_V3, kind: 'BGPPeer', metadata: meta, spec };
}

function asNumber(v: unknown, path: string, issues: Issues): number | undefined {
  const a = parseAsNumber(v);
  if (typeof a === 'string') {
    issues.add(path, a);
    return undefined;
  }
  return a;
}

function serviceBlocks(v: unknown, path: string, issues: Issues): ServiceIPBlock[] | undefined {
  const arr = asArray(v, path, issues);
  if (arr === undefined) return undefined;
  const out: ServiceIPBlock[] = [];
  arr.forEach((e, i) => {
    const p = index(path, i);
    const o = asObject(e, p, issues);
    if (o === undefined) return;
    checkKnownFields(o, ['cidr'], p, issues);
    const c = asCidr(own(o, 'cidr'), field(p, 'cidr'), issues);
    if (c === undefined) return;
    if (!isMasked(c.cidr)) issues.add(field(p, 'cidr'), `${quote(c.text)} has host bits set`);
    else out.push({ cidr: formatCidr(c.cidr) });
  });
  return out;
}

function password(v: unknown, path: string, issues: Issues): BGPPassword | undefined {
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  checkKnownFields(o, ['secretKeyRef'], path, issues);
  const refPath = field(path, 'secretKeyRef');
  if (!has(o, 'secretKeyRef')) {
    issues.add(refPath, 'is required (a secret name and key)');
    return undefined;
  }
  const r = asObject(own(o, 'secretKeyRef'), refPath, issues);
  if (r === undefined) return undefined;
  checkKnownFields(r, ['name', 'key', 'optional'], refPath, issues);
  if (has(r, 'optional')) issues.add(field(refPath, 'optional'), NOT_IMPLEMENTED);
  const name = asString(own(r, 'name'), field(refPath, 'name'), issues);
  const key = asString(own(r, 'key'), field(refPath, 'key'), issues);
  if (name === undefined || key === undefined) return undefined;
  let ok = true;
  const np = dnsSubdomainProblem(name);
  if (np !== null) {
    issues.add(field(refPath, 'name'), np);
    ok = false;
  }
  // A Kubernetes secret key: [-._a-zA-Z0-9]+, and not "." / "..".
  if (!/^[-._a-zA-Z0-9]{1,253}$/.test(key) || key === '.' || key === '..') {
    issues.add(field(refPath, 'key'), `${quote(key)} is not a valid secret key (letters, digits, '-', '_', '.')`);
    ok = false;
  }
  return ok ? { secretKeyRef: { name, key } } : undefined;
}

const DURATION_RE = /^(?:(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns))+$/;
const UNIT_SECONDS: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, 'µs': 1e-6, ns: 1e-9 };

/** A Go duration (`90s`, `2m30s`) in seconds; undefined if it is not one. */
export function parseDuration(s: string): number | undefined {
  if (!DURATION_RE.test(s)) return s === '0' ? 0 : undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) total += Number(m[1]) * UNIT_SECONDS[m[2]];
  return total;
}

/** BGP graceful restart's restart time is a 12-bit field (RFC 4724): whole seconds 1–4095. */
function restartTime(v: unknown, path: string, issues: Issues): string | undefined {
  const s = asString(v, path, issues);
  if (s === undefined) return undefined;
  const secs = parseDuration(s);
  if (secs === undefined) {
    issues.add(path, `${quote(s)} is not a duration (e.g. 120s, 5m)`);
    return undefined;
  }
  if (secs < 1 || secs > 4095) {
    issues.add(path, `${quote(s)} is out of range (1s to 4095s: BGP's restart time is 12 bits)`);
    return undefined;
  }
  return s;
}

/** `1.2.3.4`, `1.2.3.4:1179`, `fd00::1`, `[fd00::1]:1179` → address (canonical) and port. */
export function parsePeerIP(s: string): { ip: string; port?: number } | undefined {
  let host = s;
  let port: number | undefined;
  const v6 = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s);
  const v4 = /^([0-9.]+):(\d{1,5})$/.exec(s);
  if (v6 !== null) {
    host = v6[1];
    port = Number(v6[2]);
  } else if (v4 !== null) {
    host = v4[1];
    port = Number(v4[2]);
  }
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  const ip = tryParseIP(host);
  if (ip === undefined) return undefined;
  if (v6 !== null && ip.version !== 6) return undefined;
  return { ip: formatIP(ip), port };
}
