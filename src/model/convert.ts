/**
 * Conversions of other formats into projectcalico.org/v3 resources:
 *  - Calico v1 (`apiVersion: v1`) `ipPool` and `node`, the format older Calico docs show,
 *    converted the way calicoctl's v1→v3 converter did; `policy` and `profile` in
 *    convert-v1-policy.ts;
 *  - Kubernetes core `v1` Namespace (name and labels, for namespaceSelector);
 *  - Kubernetes `networking.k8s.io/v1` NetworkPolicy, converted the way Calico's
 *    Kubernetes backend does (name `knp.default.<name>`, tier default, order 1000, pod
 *    selectors scoped with `projectcalico.org/orchestrator == 'k8s'`).
 *
 * Contract: `toV3(input)` takes any JSON value: v3 input is validated as is; v1 and
 * Kubernetes input is checked in its own terms (problems name the input's field paths),
 * converted, then validated as v3. It returns a validated Resource or `{ problems }`; it
 * never throws. `convertToV3` is the throwing form.
 */
import { Issues, ValidationError, type Problem } from './errors';
import { META_FIELDS, checkResource, describeInput, parseAsNumber } from './validate';
import { API_VERSION_V3, type Resource } from './types';
import { convertV1Policy, convertV1Profile } from './convert-v1-policy';
import {
  asArray,
  asBoolean,
  asLabels,
  asObject,
  asString,
  checkKnownFields,
  describe,
  dnsLabelProblem,
  dnsSubdomainProblem,
  field,
  has,
  index,
  isObject,
  labelValueProblem,
  own,
  portNameProblem,
  qualifiedNameProblem,
  quote,
  type JsonObject,
} from './values';
import { type Cidr, cidrContains, formatCidr, IPPOOL_DEFAULTS, LABEL_ORCHESTRATOR, maskCidr, tryParseCidr } from '../primitives';

export const K8S_NETWORKING_API = 'networking.k8s.io/v1';
/** Name prefix of NetworkPolicies converted from Kubernetes, as in Calico. */
export const K8S_POLICY_PREFIX = 'knp.default.';
/** Order Calico gives every converted Kubernetes NetworkPolicy. */
export const K8S_POLICY_ORDER = 1000;

export type ConvertResult = { resource: Resource; problems?: undefined } | { resource?: undefined; problems: Problem[] };

export function convertToV3(input: unknown): Resource {
  const r = toV3(input);
  if (r.problems !== undefined) throw new ValidationError(r.problems);
  return r.resource;
}

export function toV3(input: unknown): ConvertResult {
  if (isObject(input)) {
    const api = own(input, 'apiVersion');
    const kind = own(input, 'kind');
    if (api === 'v1' && typeof kind === 'string') {
      // Calico v1 kinds are lower camel case (ipPool, node); Kubernetes core v1 kinds are
      // capitalised, and of those only Namespace means something to tortie.
      if (kind === 'Namespace') return thenValidate(convertK8sNamespace(input), input, 'Namespace (v1)');
      if (kind === 'ipPool' || kind === 'ippool') return thenValidate(convertV1IPPool(input), input, 'ipPool (v1)');
      if (kind === 'node') return thenValidate(convertV1Node(input), input, 'node (v1)');
      if (kind === 'policy') return thenValidate(convertV1Policy(input), input, 'policy (v1)');
      if (kind === 'profile') return thenValidate(convertV1Profile(input), input, 'profile (v1)');
      const { name } = describeInput(input);
      if (/^[A-Z]/.test(kind)) {
        return {
          problems: [{
            kind: `${kind} (v1)`,
            name,
            path: 'kind',
            reason: `${kind} is a Kubernetes-only resource: tortie has no Kubernetes API datastore to hold it (of Kubernetes core v1 it takes Namespace, and NetworkPolicy from ${K8S_NETWORKING_API})`,
          }],
        };
      }
      return {
        problems: [
          {
            kind: `${kind} (v1)`,
            name,
            path: 'kind',
            reason: `converting v1 ${quote(kind)} is not supported (Calico v1 ipPool, node, policy and profile, and Kubernetes Namespace, are); write it as ${API_VERSION_V3}`,
          },
        ],
      };
    }
    if (api === K8S_NETWORKING_API) {
      if (kind === 'NetworkPolicy') {
        return thenValidate(convertK8sNetworkPolicy(input), input, `NetworkPolicy (${K8S_NETWORKING_API})`);
      }
      return {
        problems: [
          {
            kind: typeof kind === 'string' ? `${kind} (${K8S_NETWORKING_API})` : undefined,
            path: 'kind',
            reason: `only NetworkPolicy is accepted from ${K8S_NETWORKING_API}, got ${describe(kind)}`,
          },
        ],
      };
    }
  }
  return checkResource(input);
}

export type Converted = { value: JsonObject; issues?: undefined } | { value?: undefined; issues: Issues; name?: string };

function thenValidate(c: Converted, input: unknown, inputKind: string): ConvertResult {
  if (c.issues !== undefined) {
    return { problems: c.issues.toProblems(inputKind, c.name ?? describeInput(input).name) };
  }
  return checkResource(c.value);
}

// ---------------------------------------------------------------- Calico v1

/** calicoctl's CIDRToName: `192.168.0.0/16` → `192-168-0-0-16`. */
export function cidrToName(c: Cidr): string {
  let s = formatCidr(c);
  for (let i = 0; i < 3; i++) s = s.replace('.', '-');
  for (let i = 0; i < 7; i++) s = s.replace(':', '-');
  return s.replace('/', '-');
}

/** libcalico-go's normalizeName, its v1 node-name conversion (lower-case; invalid runs → '-'; dots collapsed). */
export function convertNodeName(v1Name: string): string {
  let n = v1Name.toLowerCase().replace(/\//g, '.');
  n = n.replace(/[^-.a-z0-9]+/g, '-');
  n = n.replace(/[.-]*[.][.-]*/g, '.');
  return n.replace(/^[.-]*/, '').replace(/[.-]*$/, '');
}

function convertV1IPPool(o: JsonObject): Converted {
  const issues = new Issues();
  checkKnownFields(o, ['apiVersion', 'kind', 'metadata', 'spec'], '', issues);
  const meta = asObject(own(o, 'metadata'), 'metadata', issues);
  let cidr: Cidr | undefined;
  if (meta !== undefined) {
    checkKnownFields(meta, ['cidr'], 'metadata', issues);
    const s = asString(own(meta, 'cidr'), 'metadata.cidr', issues);
    if (s !== undefined) {
      const c = tryParseCidr(s);
      if (c === undefined) issues.add('metadata.cidr', `${quote(s)} is not a valid CIDR (e.g. 192.168.0.0/16)`);
      else cidr = maskCidr(c);
    }
  }
  const spec = own(o, 'spec') === undefined ? {} : asObject(own(o, 'spec'), 'spec', issues);
  let ipipMode: string = IPPOOL_DEFAULTS.ipipMode;
  let natOutgoing: boolean = IPPOOL_DEFAULTS.natOutgoing;
  let disabled = false;
  if (spec !== undefined) {
    checkKnownFields(spec, ['ipip', 'nat-outgoing', 'disabled'], 'spec', issues);
    if (has(spec, 'ipip')) {
      const ipip = asObject(own(spec, 'ipip'), 'spec.ipip', issues);
      if (ipip !== undefined) {
        checkKnownFields(ipip, ['enabled', 'mode'], 'spec.ipip', issues);
        const enabled = has(ipip, 'enabled') ? asBoolean(own(ipip, 'enabled'), 'spec.ipip.enabled', issues) : false;
        let mode = 'always';
        if (has(ipip, 'mode') && own(ipip, 'mode') !== '') {
          const m = asString(own(ipip, 'mode'), 'spec.ipip.mode', issues);
          if (m !== undefined) {
            if (m.toLowerCase() === 'always' || m.toLowerCase() === 'cross-subnet') mode = m.toLowerCase();
            else issues.add('spec.ipip.mode', `must be always or cross-subnet, got ${quote(m)}`);
          }
        }
        if (enabled === true) ipipMode = mode === 'cross-subnet' ? 'CrossSubnet' : 'Always';
      }
    }
    if (has(spec, 'nat-outgoing')) natOutgoing = asBoolean(own(spec, 'nat-outgoing'), 'spec.nat-outgoing', issues) ?? false;
    if (has(spec, 'disabled')) disabled = asBoolean(own(spec, 'disabled'), 'spec.disabled', issues) ?? false;
  }
  if (!issues.empty || cidr === undefined) return { issues };
  const v3spec: JsonObject = { cidr: formatCidr(cidr), ipipMode, vxlanMode: IPPOOL_DEFAULTS.vxlanMode };
  if (natOutgoing) v3spec.natOutgoing = true;
  if (disabled) v3spec.disabled = true;
  return {
    value: { apiVersion: API_VERSION_V3, kind: 'IPPool', metadata: { name: cidrToName(cidr) }, spec: v3spec },
  };
}

function convertV1Node(o: JsonObject): Converted {
  const issues = new Issues();
  checkKnownFields(o, ['apiVersion', 'kind', 'metadata', 'spec'], '', issues);
  const meta = asObject(own(o, 'metadata'), 'metadata', issues);
  let name: string | undefined;
  if (meta !== undefined) {
    checkKnownFields(meta, ['name'], 'metadata', issues);
    const n = asString(own(meta, 'name'), 'metadata.name', issues);
    if (n !== undefined) {
      name = convertNodeName(n);
      if (name === '') issues.add('metadata.name', `${quote(n)} does not give a usable node name`);
    }
  }
  const v3spec: JsonObject = {};
  const spec = own(o, 'spec') === undefined ? {} : asObject(own(o, 'spec'), 'spec', issues);
  if (spec !== undefined) {
    checkKnownFields(spec, ['bgp', 'orchRefs'], 'spec', issues);
    if (has(spec, 'bgp')) {
      const b = asObject(own(spec, 'bgp'), 'spec.bgp', issues);
      if (b !== undefined) {
        checkKnownFields(b, ['asNumber', 'ipv4Address', 'ipv6Address'], 'spec.bgp', issues);
        if (!has(b, 'ipv4Address') && !has(b, 'ipv6Address')) {
          issues.add('spec.bgp', 'needs ipv4Address or ipv6Address');
        }
        const bgp: JsonObject = {};
        for (const key of ['ipv4Address', 'ipv6Address']) {
          if (has(b, key)) bgp[key] = own(b, key);
        }
        if (has(b, 'asNumber')) {
          const asn = parseAsNumber(own(b, 'asNumber'));
          if (typeof asn === 'string') issues.add('spec.bgp.asNumber', asn);
          else bgp.asNumber = asn;
        }
        v3spec.bgp = bgp;
      }
    }
    if (has(spec, 'orchRefs')) v3spec.orchRefs = own(spec, 'orchRefs');
  }
  if (!issues.empty || name === undefined) return { issues, name };
  return { value: { apiVersion: API_VERSION_V3, kind: 'Node', metadata: { name }, spec: v3spec } };
}

// ---------------------------------------------------------------- Kubernetes Namespace

/** A Kubernetes core/v1 Namespace: only its name and labels matter (namespaceSelector). */
function convertK8sNamespace(o: JsonObject): Converted {
  const issues = new Issues();
  checkKnownFields(o, ['apiVersion', 'kind', 'metadata', 'spec', 'status'], '', issues);
  const meta = asObject(own(o, 'metadata'), 'metadata', issues);
  if (meta === undefined) return { issues };
  checkKnownFields(meta, META_FIELDS, 'metadata', issues);
  if (!issues.empty) return { issues };
  const v3meta: JsonObject = {};
  for (const key of ['name', 'labels', 'annotations', 'resourceVersion', 'uid', 'creationTimestamp']) {
    if (has(meta, key)) v3meta[key] = own(meta, key);
  }
  return { value: { apiVersion: API_VERSION_V3, kind: 'Namespace', metadata: v3meta } };
}

// ---------------------------------------------------------------- Kubernetes NetworkPolicy


interface K8sPeer {
  selector?: string;
  namespaceSelector?: string;
  nets?: string[];
  notNets?: string[];
}

/** `undefined` port = no port restriction; protocol undefined only for the match-all entry. */
interface K8sPort {
  protocol: string | undefined;
  ports: (number | string)[] | undefined;
}

function convertK8sNetworkPolicy(o: JsonObject): Converted {
  const issues = new Issues();
  checkKnownFields(o, ['apiVersion', 'kind', 'metadata', 'spec', 'status'], '', issues);
  const meta = asObject(own(o, 'metadata'), 'metadata', issues);
  let name: string | undefined;
  let namespace = 'default';
  const v3meta: JsonObject = {};
  if (meta !== undefined) {
    checkKnownFields(meta, META_FIELDS, 'metadata', issues);
    const n = asString(own(meta, 'name'), 'metadata.name', issues);
    if (n !== undefined) {
      const prob = dnsSubdomainProblem(n);
      if (prob !== null) issues.add('metadata.name', prob);
      else name = n;
    }
    if (has(meta, 'namespace') && own(meta, 'namespace') !== '') {
      const ns = asString(own(meta, 'namespace'), 'metadata.namespace', issues);
      if (ns !== undefined) {
        const prob = dnsLabelProblem(ns);
        if (prob !== null) issues.add('metadata.namespace', prob);
        else namespace = ns;
      }
    }
    for (const key of ['resourceVersion', 'creationTimestamp']) {
      if (has(meta, key)) v3meta[key] = own(meta, key);
    }
  }

  const spec = own(o, 'spec') === undefined ? {} : asObject(own(o, 'spec'), 'spec', issues);
  let selector = '';
  const ingressRules: JsonObject[] = [];
  const egressRules: JsonObject[] = [];
  let types: string[] = [];
  if (spec !== undefined) {
    checkKnownFields(spec, ['podSelector', 'policyTypes', 'ingress', 'egress'], 'spec', issues);
    selector = labelSelectorToCalico(own(spec, 'podSelector') ?? {}, 'spec.podSelector', issues, 'pod') ?? '';

    for (const dir of ['ingress', 'egress'] as const) {
      if (!has(spec, dir)) continue;
      const arr = asArray(own(spec, dir), `spec.${dir}`, issues);
      arr?.forEach((r, i) => {
        const p = index(`spec.${dir}`, i);
        const rule = asObject(r, p, issues);
        if (rule === undefined) return;
        const peersKey = dir === 'ingress' ? 'from' : 'to';
        checkKnownFields(rule, [peersKey, 'ports'], p, issues);
        const converted = k8sRuleToCalico(rule, peersKey, p, issues, dir === 'ingress');
        (dir === 'ingress' ? ingressRules : egressRules).push(...converted);
      });
    }

    // Kubernetes' own defaulting (the API server does it; files skip the API server):
    // absent policyTypes → Ingress, plus Egress if the policy has egress rules.
    const rawTypes = own(spec, 'policyTypes');
    if (rawTypes === undefined || (Array.isArray(rawTypes) && rawTypes.length === 0)) {
      types = ['Ingress'];
      const eg = own(spec, 'egress');
      if (Array.isArray(eg) && eg.length > 0) types.push('Egress');
    } else {
      const arr = asArray(rawTypes, 'spec.policyTypes', issues);
      arr?.forEach((t, i) => {
        if (t !== 'Ingress' && t !== 'Egress') {
          issues.add(index('spec.policyTypes', i), `must be Ingress or Egress, got ${describe(t)}`);
        } else if (types.includes(t)) {
          issues.add(index('spec.policyTypes', i), `${t} is listed more than once`);
        } else types.push(t);
      });
      // Calico's order: Ingress before Egress.
      types.sort((a, b) => (a === b ? 0 : a === 'Ingress' ? -1 : 1));
    }
  }
  const displayName = name === undefined ? undefined : `${namespace}/${name}`;
  if (!issues.empty || name === undefined) return { issues, name: displayName };

  const v3spec: JsonObject = {
    tier: 'default',
    order: K8S_POLICY_ORDER,
    selector,
    types,
  };
  if (ingressRules.length > 0) v3spec.ingress = ingressRules;
  if (egressRules.length > 0) v3spec.egress = egressRules;
  return {
    value: {
      apiVersion: API_VERSION_V3,
      kind: 'NetworkPolicy',
      metadata: { name: K8S_POLICY_PREFIX + name, namespace, ...v3meta },
      spec: v3spec,
    },
  };
}

function k8sRuleToCalico(
  rule: JsonObject,
  peersKey: 'from' | 'to',
  path: string,
  issues: Issues,
  ingress: boolean,
): JsonObject[] {
  const before = issues.list.length;
  // Absent or empty `from`/`to` = every peer; absent or empty `ports` = every port.
  const peers: (K8sPeer | null)[] = [];
  if (has(rule, peersKey)) {
    const arr = asArray(own(rule, peersKey), field(path, peersKey), issues);
    arr?.forEach((p, i) => {
      const peer = k8sPeer(p, index(field(path, peersKey), i), issues);
      if (peer !== undefined) peers.push(peer);
    });
  }
  if (peers.length === 0) peers.push(null);

  const ports: (K8sPort | null)[] = [];
  if (has(rule, 'ports')) {
    const arr = asArray(own(rule, 'ports'), field(path, 'ports'), issues);
    arr?.forEach((p, i) => {
      const port = k8sPort(p, index(field(path, 'ports'), i), issues);
      if (port !== undefined) ports.push(port);
    });
  }
  if (ports.length === 0) ports.push(null);
  if (issues.list.length !== before) return [];

  // Group ports per protocol; a protocol with any "all ports" entry matches all its ports,
  // and an entry with no protocol and no port makes the whole rule match everything.
  let byProto = new Map<string, (number | string)[] | undefined>();
  for (const port of ports) {
    if (port === null) {
      byProto = new Map([['', undefined]]);
      break;
    }
    const proto = port.protocol ?? 'TCP';
    if (port.ports === undefined) byProto.set(proto, undefined);
    else if (!byProto.has(proto)) byProto.set(proto, [...port.ports]);
    else {
      const existing = byProto.get(proto);
      if (existing !== undefined) existing.push(...port.ports);
    }
  }
  const out: JsonObject[] = [];
  for (const proto of [...byProto.keys()].sort()) {
    const portList = byProto.get(proto);
    const simplified = portList === undefined ? undefined : simplifyPorts(portList);
    for (const peer of peers) {
      const r: JsonObject = { action: 'Allow' };
      if (proto !== '') r.protocol = proto;
      const peerFields: JsonObject = {};
      if (peer !== null) {
        if (peer.selector !== undefined) peerFields.selector = peer.selector;
        if (peer.namespaceSelector !== undefined) peerFields.namespaceSelector = peer.namespaceSelector;
        if (peer.nets !== undefined) peerFields.nets = peer.nets;
        if (peer.notNets !== undefined) peerFields.notNets = peer.notNets;
      }
      const portFields: JsonObject = simplified !== undefined && simplified.length > 0 ? { ports: simplified } : {};
      if (ingress) {
        if (Object.keys(peerFields).length > 0) r.source = peerFields;
        if (Object.keys(portFields).length > 0) r.destination = portFields;
      } else {
        const dest = { ...portFields, ...peerFields };
        if (Object.keys(dest).length > 0) r.destination = dest;
      }
      out.push(r);
    }
  }
  return out;
}

function k8sPeer(v: unknown, path: string, issues: Issues): K8sPeer | undefined {
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  checkKnownFields(o, ['podSelector', 'namespaceSelector', 'ipBlock'], path, issues);
  const hasPod = has(o, 'podSelector') && own(o, 'podSelector') !== null;
  const hasNs = has(o, 'namespaceSelector') && own(o, 'namespaceSelector') !== null;
  const hasBlock = has(o, 'ipBlock') && own(o, 'ipBlock') !== null;
  if (hasBlock) {
    if (hasPod || hasNs) {
      issues.add(path, 'ipBlock cannot be combined with podSelector or namespaceSelector');
      return undefined;
    }
    return ipBlock(own(o, 'ipBlock'), field(path, 'ipBlock'), issues);
  }
  if (!hasPod && !hasNs) {
    issues.add(path, 'must set at least one of podSelector, namespaceSelector or ipBlock');
    return undefined;
  }
  const peer: K8sPeer = {};
  // A pod selector alone means "in the policy's namespace": the rule keeps no
  // namespaceSelector, which Calico reads as the policy's own namespace.
  const sel = labelSelectorToCalico(hasPod ? own(o, 'podSelector') : null, field(path, 'podSelector'), issues, 'pod');
  if (sel !== undefined) peer.selector = sel;
  if (hasNs) {
    const ns = labelSelectorToCalico(own(o, 'namespaceSelector'), field(path, 'namespaceSelector'), issues, 'namespace');
    if (ns !== undefined) peer.namespaceSelector = ns;
  }
  return peer;
}

function ipBlock(v: unknown, path: string, issues: Issues): K8sPeer | undefined {
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  checkKnownFields(o, ['cidr', 'except'], path, issues);
  const s = asString(own(o, 'cidr'), field(path, 'cidr'), issues);
  if (s === undefined) return undefined;
  const c = tryParseCidr(s);
  if (c === undefined) {
    issues.add(field(path, 'cidr'), `${quote(s)} is not a valid CIDR`);
    return undefined;
  }
  const cidr = maskCidr(c);
  const peer: K8sPeer = { nets: [formatCidr(cidr)] };
  if (has(o, 'except')) {
    const arr = asArray(own(o, 'except'), field(path, 'except'), issues);
    const notNets: string[] = [];
    arr?.forEach((e, i) => {
      const ep = index(field(path, 'except'), i);
      const es = asString(e, ep, issues);
      if (es === undefined) return;
      const ec = tryParseCidr(es);
      if (ec === undefined) {
        issues.add(ep, `${quote(es)} is not a valid CIDR`);
        return;
      }
      const m = maskCidr(ec);
      if (!cidrContains(cidr, m) || m.prefix === cidr.prefix) {
        issues.add(ep, `${quote(es)} must be strictly within ${formatCidr(cidr)}`);
        return;
      }
      notNets.push(formatCidr(m));
    });
    if (notNets.length > 0) peer.notNets = notNets;
  }
  return peer;
}

function k8sPort(v: unknown, path: string, issues: Issues): K8sPort | undefined {
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  checkKnownFields(o, ['protocol', 'port', 'endPort'], path, issues);
  let protocol = 'TCP';
  if (has(o, 'protocol')) {
    const p = own(o, 'protocol');
    if (p === 'TCP' || p === 'UDP' || p === 'SCTP') protocol = p;
    else issues.add(field(path, 'protocol'), `must be TCP, UDP or SCTP, got ${describe(p)}`);
  }
  if (!has(o, 'port')) {
    if (has(o, 'endPort')) issues.add(field(path, 'endPort'), 'requires port');
    return { protocol, ports: undefined };
  }
  const port = own(o, 'port');
  if (typeof port === 'number') {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      issues.add(field(path, 'port'), `${port} is not a valid port (1 to 65535)`);
      return undefined;
    }
    if (has(o, 'endPort')) {
      const end = own(o, 'endPort');
      if (typeof end !== 'number' || !Number.isInteger(end) || end < port || end > 65535) {
        issues.add(field(path, 'endPort'), `must be an integer from port (${port}) to 65535, got ${describe(end)}`);
        return undefined;
      }
      return { protocol, ports: [end === port ? port : `${port}:${end}`] };
    }
    return { protocol, ports: [port] };
  }
  if (typeof port === 'string') {
    if (/^\d+$/.test(port)) {
      issues.add(field(path, 'port'), `${quote(port)} must be a number, not a string, or a port name`);
      return undefined;
    }
    const prob = portNameProblem(port);
    if (prob !== null) {
      issues.add(field(path, 'port'), prob);
      return undefined;
    }
    if (has(o, 'endPort')) {
      issues.add(field(path, 'endPort'), 'cannot be used with a named port');
      return undefined;
    }
    return { protocol, ports: [port] };
  }
  issues.add(field(path, 'port'), `must be a number or a port name, got ${describe(port)}`);
  return undefined;
}

/**
 * Calico's SimplifyPorts: named ports pass through; numeric ports and ranges are merged
 * into the fewest ranges, in ascending order. Lists of ≤ 1 entry, or with ≤ 1 numeric
 * port in all, are returned unchanged.
 */
export function simplifyPorts(ports: (number | string)[]): (number | string)[] {
  if (ports.length <= 1) return ports;
  const named: (number | string)[] = [];
  const ranges: [number, number][] = [];
  let numericCount = 0;
  for (const p of ports) {
    if (typeof p === 'number') {
      ranges.push([p, p]);
      numericCount += 1;
    } else {
      const m = /^(\d+):(\d+)$/.exec(p);
      if (m === null) named.push(p);
      else {
        const lo = Number(m[1]);
        const hi = Number(m[2]);
        ranges.push([lo, hi]);
        numericCount += hi - lo + 1;
      }
    }
  }
  if (numericCount <= 1) return ports;
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return [...named, ...merged.map(([lo, hi]) => (lo === hi ? lo : `${lo}:${hi}`))];
}

/**
 * A Kubernetes LabelSelector in Calico syntax. Pod selectors are prefixed with the
 * orchestrator match (so they never select non-Kubernetes endpoints); a missing (null)
 * pod selector gives just that prefix. An empty namespace selector selects every
 * namespace: `all()`.
 */
function labelSelectorToCalico(v: unknown, path: string, issues: Issues, type: 'pod' | 'namespace'): string | undefined {
  const terms: string[] = type === 'pod' ? [`${LABEL_ORCHESTRATOR} == 'k8s'`] : [];
  if (v === null || v === undefined) return terms.join(' && ');
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  checkKnownFields(o, ['matchLabels', 'matchExpressions'], path, issues);
  const before = issues.list.length;
  const labels: [string, string][] = [];
  if (has(o, 'matchLabels')) {
    const ml = asLabels(own(o, 'matchLabels'), field(path, 'matchLabels'), issues);
    if (ml !== undefined) labels.push(...Object.entries(ml));
  }
  const exprs: string[] = [];
  if (has(o, 'matchExpressions')) {
    const arr = asArray(own(o, 'matchExpressions'), field(path, 'matchExpressions'), issues);
    arr?.forEach((e, i) => {
      const ep = index(field(path, 'matchExpressions'), i);
      const eo = asObject(e, ep, issues);
      if (eo === undefined) return;
      checkKnownFields(eo, ['key', 'operator', 'values'], ep, issues);
      const key = asString(own(eo, 'key'), field(ep, 'key'), issues);
      if (key === undefined) return;
      const kprob = qualifiedNameProblem(key);
      if (kprob !== null) {
        issues.add(field(ep, 'key'), kprob);
        return;
      }
      const op = own(eo, 'operator');
      const rawValues = own(eo, 'values');
      const values: string[] = [];
      if (rawValues !== undefined && rawValues !== null) {
        const va = asArray(rawValues, field(ep, 'values'), issues);
        va?.forEach((x, j) => {
          const s = asString(x, index(field(ep, 'values'), j), issues);
          if (s === undefined) return;
          const vprob = labelValueProblem(s);
          if (vprob !== null) issues.add(index(field(ep, 'values'), j), vprob);
          else values.push(s);
        });
      }
      switch (op) {
        case 'In':
        case 'NotIn':
          if (values.length === 0 && (!Array.isArray(rawValues) || rawValues.length === 0)) {
            issues.add(field(ep, 'values'), `must be non-empty for operator ${op}`);
            return;
          }
          exprs.push(`${key} ${op === 'In' ? 'in' : 'not in'} { '${values.join("', '")}' }`);
          break;
        case 'Exists':
        case 'DoesNotExist':
          if (Array.isArray(rawValues) && rawValues.length > 0) {
            issues.add(field(ep, 'values'), `must be empty for operator ${op}`);
            return;
          }
          exprs.push(op === 'Exists' ? `has(${key})` : `! has(${key})`);
          break;
        default:
          issues.add(field(ep, 'operator'), `must be In, NotIn, Exists or DoesNotExist, got ${describe(op)}`);
      }
    });
  }
  if (issues.list.length !== before) return undefined;
  if (type === 'namespace' && labels.length === 0 && exprs.length === 0) return 'all()';
  for (const [k, val] of labels) terms.push(`${k} == '${val}'`);
  terms.push(...exprs);
  return terms.join(' && ');
}
