/**
 * Calico v1 `policy` and `profile` documents (`apiVersion: v1`, the calicoctl 1.x/2.x format)
 * converted to projectcalico.org/v3 the way libcalico-go's v1→v3 migration converters do:
 *
 *   policy  → GlobalNetworkPolicy named convertNameNoDots(name) (normalised, dots → '-', and
 *             `-<first 8 hex of sha1(original)>` appended when the name changed); order,
 *             selector, doNotTrack, preDNAT, annotations kept; applyOnForward forced true with
 *             doNotTrack/preDNAT; types lower→Capitalised, or defaulted from the rule lists
 *   profile → Profile named convertName(name) (`k8s_ns.` becomes `kns.`, dots kept, the same
 *             qualifier); metadata.labels and tags merged into spec.labelsToApply (a tag is a
 *             label with an empty value; a tag equal to a label key is an error)
 *   rules   → action capitalised (`next-tier` → Pass, absent → Allow); protocol names in
 *             v3 case (tcp → TCP, icmpv6 → ICMPv6, udplite → UDPLite); `net` + `nets` → nets,
 *             masked; `tag` → `<tag> == ''` and-ed to the selector; `calico/k8s_ns` in
 *             selectors → `projectcalico.org/namespace`
 *
 * Contract: returns `{ value }` (a v3 object, validated by the caller) or `{ issues }` naming
 * the v1 input's field paths. Pure.
 */
import { createHash } from 'node:crypto';
import { Issues } from './errors';
import { API_VERSION_V3 } from './types';
import {
  asArray,
  asBoolean,
  asCidr,
  asLabels,
  asObject,
  asString,
  asStringArray,
  checkKnownFields,
  describe,
  field,
  has,
  index,
  own,
  quote,
  type JsonObject,
} from './values';
import { formatCidr, LABEL_NAMESPACE, maskCidr, PROTOCOL_NAMES } from '../primitives';

import type { Converted } from './convert';
import { convertNodeName as normalizeV1Name } from './convert';

function qualifiedName(orig: string, final: string): string {
  if (orig === final) return orig;
  return `${final}-${createHash('sha1').update(orig).digest('hex').slice(0, 8)}`;
}

export function convertV1PolicyName(v1Name: string): string {
  return qualifiedName(v1Name, normalizeV1Name(v1Name).replace(/\./g, '-'));
}

export function convertV1ProfileName(v1Name: string): string {
  const n = v1Name.startsWith('k8s_ns.') ? `kns.${v1Name.slice('k8s_ns.'.length)}` : v1Name;
  return qualifiedName(n, normalizeV1Name(n));
}

function convertSelector(sel: string): string {
  return sel.split('calico/k8s_ns').join(LABEL_NAMESPACE);
}

function mergeTag(sel: string | undefined, tag: string | undefined): string | undefined {
  if (tag === undefined || tag === '') return sel;
  return sel !== undefined && sel !== '' ? `(${sel}) && ${tag} == ''` : `${tag} == ''`;
}

const V1_PROTOCOLS: ReadonlyMap<string, string> = new Map(PROTOCOL_NAMES.map((n) => [n.toLowerCase(), n]));
const V1_ACTIONS: Readonly<Record<string, string>> = { allow: 'Allow', deny: 'Deny', log: 'Log', pass: 'Pass', 'next-tier': 'Pass' };

function protocol(v: unknown, path: string, issues: Issues): string | number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const p = V1_PROTOCOLS.get(v.toLowerCase());
    if (p !== undefined) return p;
    if (/^\d+$/.test(v)) return Number(v);
  }
  issues.add(path, `must be one of ${[...V1_PROTOCOLS.keys()].join(', ')} or a number, got ${describe(v)}`);
  return undefined;
}

function nets(e: JsonObject, single: string, multi: string, path: string, issues: Issues): string[] | undefined {
  const out: string[] = [];
  const add = (s: unknown, p: string) => {
    const c = asCidr(s, p, issues);
    if (c !== undefined) out.push(formatCidr(maskCidr(c.cidr)));
  };
  if (has(e, single)) add(own(e, single), field(path, single));
  if (has(e, multi)) asArray(own(e, multi), field(path, multi), issues)?.forEach((n, i) => add(n, index(field(path, multi), i)));
  return out.length > 0 ? out : undefined;
}

const V1_ENTITY_FIELDS = ['tag', 'net', 'nets', 'selector', 'ports', 'notTag', 'notNet', 'notNets', 'notSelector', 'notPorts'];

function entity(v: unknown, path: string, issues: Issues): JsonObject | undefined {
  const e = asObject(v, path, issues);
  if (e === undefined) return undefined;
  checkKnownFields(e, V1_ENTITY_FIELDS, path, issues);
  const out: JsonObject = {};
  const str = (k: string) => (has(e, k) ? asString(own(e, k), field(path, k), issues) : undefined);
  const n = nets(e, 'net', 'nets', path, issues);
  if (n !== undefined) out.nets = n;
  const sel = mergeTag(str('selector') !== undefined ? convertSelector(str('selector')!) : undefined, str('tag'));
  if (sel !== undefined && sel !== '') out.selector = sel;
  if (has(e, 'ports')) out.ports = own(e, 'ports');
  const nn = nets(e, 'notNet', 'notNets', path, issues);
  if (nn !== undefined) out.notNets = nn;
  const nsel = mergeTag(str('notSelector') !== undefined ? convertSelector(str('notSelector')!) : undefined, str('notTag'));
  if (nsel !== undefined && nsel !== '') out.notSelector = nsel;
  if (has(e, 'notPorts')) out.notPorts = own(e, 'notPorts');
  return Object.keys(out).length > 0 ? out : undefined;
}

function rules(v: unknown, path: string, issues: Issues): JsonObject[] | undefined {
  const arr = asArray(v, path, issues);
  if (arr === undefined) return undefined;
  return arr.map((raw, i) => {
    const p = index(path, i);
    const r = asObject(raw, p, issues) ?? {};
    checkKnownFields(r, ['action', 'ipVersion', 'protocol', 'icmp', 'notProtocol', 'notICMP', 'source', 'destination'], p, issues);
    const out: JsonObject = { action: 'Allow' };
    if (has(r, 'action')) {
      const a = asString(own(r, 'action'), field(p, 'action'), issues);
      if (a !== undefined && a !== '') {
        const v3 = V1_ACTIONS[a.toLowerCase()];
        if (v3 === undefined) issues.add(field(p, 'action'), `must be one of allow, deny, log, pass (next-tier), got ${quote(a)}`);
        else out.action = v3;
      }
    }
    if (has(r, 'ipVersion')) out.ipVersion = own(r, 'ipVersion');
    for (const key of ['protocol', 'notProtocol']) {
      if (!has(r, key)) continue;
      const pr = protocol(own(r, key), field(p, key), issues);
      if (pr !== undefined) out[key] = pr;
    }
    for (const key of ['icmp', 'notICMP']) if (has(r, key)) out[key] = own(r, key);
    for (const key of ['source', 'destination']) {
      if (!has(r, key)) continue;
      const e = entity(own(r, key), field(p, key), issues);
      if (e !== undefined) out[key] = e;
    }
    return out;
  });
}

function v1Meta(o: JsonObject, allowed: string[], issues: Issues): { meta?: JsonObject; name?: string } {
  checkKnownFields(o, ['apiVersion', 'kind', 'metadata', 'spec'], '', issues);
  const meta = asObject(own(o, 'metadata'), 'metadata', issues);
  if (meta === undefined) return {};
  checkKnownFields(meta, allowed, 'metadata', issues);
  const name = asString(own(meta, 'name'), 'metadata.name', issues);
  if (name === '') issues.add('metadata.name', 'is required');
  return { meta, name: name === '' ? undefined : name };
}

export function convertV1Policy(o: JsonObject): Converted {
  const issues = new Issues();
  const { meta, name } = v1Meta(o, ['name', 'annotations'], issues);
  const spec = own(o, 'spec') === undefined ? {} : asObject(own(o, 'spec'), 'spec', issues);
  const v3meta: JsonObject = {};
  if (name !== undefined) {
    const converted = convertV1PolicyName(name);
    v3meta.name = converted;
    if (converted === '' || converted.startsWith('-')) issues.add('metadata.name', `${quote(name)} does not give a usable policy name`);
  }
  if (meta !== undefined && has(meta, 'annotations')) v3meta.annotations = own(meta, 'annotations');
  const v3spec: JsonObject = {};
  if (spec !== undefined) {
    checkKnownFields(spec, ['order', 'selector', 'ingress', 'egress', 'doNotTrack', 'preDNAT', 'applyOnForward', 'types'], 'spec', issues);
    if (has(spec, 'order')) v3spec.order = own(spec, 'order');
    const sel = has(spec, 'selector') ? asString(own(spec, 'selector'), 'spec.selector', issues) : undefined;
    if (sel !== undefined && sel !== '') v3spec.selector = convertSelector(sel);
    const ingress = has(spec, 'ingress') ? rules(own(spec, 'ingress'), 'spec.ingress', issues) : undefined;
    const egress = has(spec, 'egress') ? rules(own(spec, 'egress'), 'spec.egress', issues) : undefined;
    if (ingress !== undefined && ingress.length > 0) v3spec.ingress = ingress;
    if (egress !== undefined && egress.length > 0) v3spec.egress = egress;
    const flag = (k: string) => (has(spec, k) ? asBoolean(own(spec, k), `spec.${k}`, issues) === true : false);
    const dnt = flag('doNotTrack');
    const pre = flag('preDNAT');
    if (dnt) v3spec.doNotTrack = true;
    if (pre) v3spec.preDNAT = true;
    if (flag('applyOnForward') || dnt || pre) v3spec.applyOnForward = true;
    const types = has(spec, 'types') ? asStringArray(own(spec, 'types'), 'spec.types', issues) : undefined;
    if (types !== undefined && types.length > 0) {
      v3spec.types = types.map((t, i) => {
        const l = t.toLowerCase();
        if (l !== 'ingress' && l !== 'egress') issues.add(index('spec.types', i), `must be ingress or egress, got ${quote(t)}`);
        return l === 'egress' ? 'Egress' : 'Ingress';
      });
    } else if (egress === undefined || egress.length === 0) v3spec.types = ['Ingress'];
    else if (ingress === undefined || ingress.length === 0) v3spec.types = ['Egress'];
    else v3spec.types = ['Ingress', 'Egress'];
  }
  if (!issues.empty || name === undefined) return { issues, name };
  return { value: { apiVersion: API_VERSION_V3, kind: 'GlobalNetworkPolicy', metadata: v3meta, spec: v3spec } };
}

export function convertV1Profile(o: JsonObject): Converted {
  const issues = new Issues();
  const { meta, name } = v1Meta(o, ['name', 'labels', 'tags'], issues);
  const spec = own(o, 'spec') === undefined ? {} : asObject(own(o, 'spec'), 'spec', issues);
  const v3meta: JsonObject = {};
  if (name !== undefined) v3meta.name = convertV1ProfileName(name);
  const v3spec: JsonObject = {};
  const labels: Record<string, string> = {};
  if (meta !== undefined && has(meta, 'labels')) Object.assign(labels, asLabels(own(meta, 'labels'), 'metadata.labels', issues) ?? {});
  if (meta !== undefined && has(meta, 'tags')) {
    asStringArray(own(meta, 'tags'), 'metadata.tags', issues)?.forEach((t, i) => {
      if (Object.prototype.hasOwnProperty.call(labels, t)) {
        issues.add(index('metadata.tags', i), `tag ${quote(t)} and label ${quote(`${t} == ${labels[t]}`)} have the same key; change the label key before converting`);
      } else labels[t] = '';
    });
  }
  if (Object.keys(labels).length > 0) v3spec.labelsToApply = labels;
  if (spec !== undefined) {
    checkKnownFields(spec, ['ingress', 'egress'], 'spec', issues);
    for (const key of ['ingress', 'egress']) {
      if (!has(spec, key)) continue;
      const rs = rules(own(spec, key), `spec.${key}`, issues);
      if (rs !== undefined && rs.length > 0) v3spec[key] = rs;
    }
  }
  if (!issues.empty || name === undefined) return { issues, name };
  return { value: { apiVersion: API_VERSION_V3, kind: 'Profile', metadata: v3meta, spec: v3spec } };
}
