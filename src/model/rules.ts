/**
 * Policy and profile rules (Calico's Rule, EntityRule, ICMPFields, Port).
 *
 * Contract: `validateRules` returns the rules in Calico's canonical value forms (ports as a
 * number / "min:max" / name, numeric protocol strings as numbers, nets as given — they must
 * already be strictly masked), with empty lists and empty entity rules omitted as Calico's
 * `omitempty` does; or `undefined` after reporting every problem.
 *
 * Choices where tortie differs from Calico, because tortie cannot honour the field:
 * `http` (L7 match, needs Envoy) and `services` (Kubernetes Service match) are rejected
 * rather than ignored — ignoring them would make an Allow rule allow more than written.
 */
import type { Issues } from './errors';
import { checkSelector } from './selectors';
import type { Action, EntityRule, ICMPFields, Port, Protocol, Rule, ServiceAccountMatch } from './types';
import {
  asArray,
  asInteger,
  asObject,
  asString,
  asStringArray,
  checkKnownFields,
  describe,
  dnsSubdomainProblem,
  field,
  has,
  index,
  own,
  parsePort,
  parseProtocol,
  protocolNumber,
  protocolSupportsPorts,
  quote,
  asAnnotations,
} from './values';
import { formatCidr, isMasked, maskCidr, tryParseCidr } from '../primitives';

export const MAX_RULES = 1024;
const MAX_NETS = 256;
const MAX_PORTS = 50;
const ACTIONS: readonly Action[] = ['Allow', 'Deny', 'Log', 'Pass'];

const RULE_FIELDS = [
  'action',
  'ipVersion',
  'protocol',
  'icmp',
  'notProtocol',
  'notICMP',
  'source',
  'destination',
  'http',
  'metadata',
] as const;

const ENTITY_FIELDS = [
  'nets',
  'selector',
  'namespaceSelector',
  'ports',
  'notNets',
  'notSelector',
  'notPorts',
  'serviceAccounts',
  'services',
] as const;

/** A rule list (`spec.ingress` etc.): a list of at most 1024 rules. */
export function validateRules(v: unknown, path: string, issues: Issues): Rule[] | undefined {
  const arr = asArray(v, path, issues);
  if (arr === undefined) return undefined;
  if (arr.length > MAX_RULES) {
    issues.add(path, `has ${arr.length} rules, more than the ${MAX_RULES} allowed`);
    return undefined;
  }
  const out: Rule[] = [];
  let ok = true;
  arr.forEach((r, i) => {
    const rule = validateRule(r, index(path, i), issues);
    if (rule === undefined) ok = false;
    else out.push(rule);
  });
  return ok ? out : undefined;
}

export function validateRule(v: unknown, path: string, issues: Issues): Rule | undefined {
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  const before = issues.list.length;
  checkKnownFields(o, RULE_FIELDS, path, issues);

  let action: Action | undefined;
  if (!has(o, 'action')) {
    issues.add(field(path, 'action'), `is required (one of ${ACTIONS.join(', ')})`);
  } else {
    const a = own(o, 'action');
    if (typeof a === 'string' && (ACTIONS as readonly string[]).includes(a)) action = a as Action;
    else issues.add(field(path, 'action'), `must be one of ${ACTIONS.join(', ')}, got ${describe(a)}`);
  }

  let ipVersion: number | undefined;
  if (has(o, 'ipVersion')) {
    const iv = own(o, 'ipVersion');
    if (iv === 4 || iv === 6) ipVersion = iv;
    else issues.add(field(path, 'ipVersion'), `must be 4 or 6, got ${describe(iv)}`);
  }

  const protocol = optProtocol(o, 'protocol', path, issues);
  const notProtocol = optProtocol(o, 'notProtocol', path, issues);
  const icmp = has(o, 'icmp') ? validateIcmp(own(o, 'icmp'), field(path, 'icmp'), issues) : undefined;
  const notICMP = has(o, 'notICMP') ? validateIcmp(own(o, 'notICMP'), field(path, 'notICMP'), issues) : undefined;

  if (has(o, 'icmp')) {
    const pn = protocol === undefined ? 0 : protocolNumber(protocol);
    if (pn !== 1 && pn !== 58) {
      issues.add(field(path, 'icmp'), 'requires protocol ICMP or ICMPv6');
    }
  }
  for (const [key, p] of [
    ['protocol', protocol],
    ['notProtocol', notProtocol],
  ] as const) {
    if (p === undefined || ipVersion === undefined) continue;
    const pn = protocolNumber(p);
    if (pn === 1 && ipVersion !== 4) issues.add(field(path, key), `ICMP requires ipVersion 4, not ${ipVersion}`);
    if (pn === 58 && ipVersion !== 6) issues.add(field(path, key), `ICMPv6 requires ipVersion 6, not ${ipVersion}`);
  }

  if (has(o, 'http')) {
    issues.add(
      field(path, 'http'),
      'HTTP (application-layer) matches are not supported by tortie; remove the http field',
    );
  }
  let metadata: Rule['metadata'];
  if (has(o, 'metadata')) {
    const mp = field(path, 'metadata');
    const m = asObject(own(o, 'metadata'), mp, issues);
    if (m !== undefined) {
      checkKnownFields(m, ['annotations'], mp, issues);
      if (has(m, 'annotations')) {
        const ann = asAnnotations(own(m, 'annotations'), field(mp, 'annotations'), issues);
        if (ann !== undefined && Object.keys(ann).length > 0) metadata = { annotations: ann };
      }
    }
  }

  const ctx: NetsContext = { ipVersion, seen4: false, seen6: false };
  const source = has(o, 'source')
    ? validateEntityRule(own(o, 'source'), field(path, 'source'), issues, protocol, ctx)
    : undefined;
  const destination = has(o, 'destination')
    ? validateEntityRule(own(o, 'destination'), field(path, 'destination'), issues, protocol, ctx)
    : undefined;

  if (issues.list.length !== before || action === undefined) return undefined;
  const rule: Rule = { action };
  if (ipVersion !== undefined) rule.ipVersion = ipVersion;
  if (protocol !== undefined) rule.protocol = protocol;
  if (icmp !== undefined) rule.icmp = icmp;
  if (notProtocol !== undefined) rule.notProtocol = notProtocol;
  if (notICMP !== undefined) rule.notICMP = notICMP;
  if (source !== undefined && Object.keys(source).length > 0) rule.source = source;
  if (destination !== undefined && Object.keys(destination).length > 0) rule.destination = destination;
  if (metadata !== undefined) rule.metadata = metadata;
  return rule;
}

function optProtocol(o: Record<string, unknown>, key: string, path: string, issues: Issues): Protocol | undefined {
  if (!has(o, key)) return undefined;
  const r = parseProtocol(own(o, key));
  if ('error' in r) {
    issues.add(field(path, key), r.error);
    return undefined;
  }
  return r.value;
}

function validateIcmp(v: unknown, path: string, issues: Issues): ICMPFields | undefined {
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  checkKnownFields(o, ['type', 'code'], path, issues);
  const out: ICMPFields = {};
  if (has(o, 'type')) {
    const t = asInteger(own(o, 'type'), field(path, 'type'), issues, 0, 254);
    if (t !== undefined) out.type = t;
  }
  if (has(o, 'code')) {
    const c = asInteger(own(o, 'code'), field(path, 'code'), issues, 0, 255);
    if (c !== undefined) out.code = c;
    if (!has(o, 'type')) issues.add(field(path, 'code'), 'an ICMP code requires an ICMP type');
  }
  return out;
}

interface NetsContext {
  ipVersion: number | undefined;
  seen4: boolean;
  seen6: boolean;
}

function validateEntityRule(
  v: unknown,
  path: string,
  issues: Issues,
  protocol: Protocol | undefined,
  ctx: NetsContext,
): EntityRule | undefined {
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  checkKnownFields(o, ENTITY_FIELDS, path, issues);
  const out: EntityRule = {};

  for (const key of ['nets', 'notNets'] as const) {
    if (!has(o, key)) continue;
    const nets = validateNets(own(o, key), field(path, key), issues, key === 'notNets', ctx);
    if (nets !== undefined && nets.length > 0) out[key] = nets;
  }
  for (const key of ['selector', 'notSelector'] as const) {
    if (!has(o, key)) continue;
    const s = checkSelector(own(o, key), field(path, key), issues, 'forbidden');
    if (s.text !== undefined) out[key] = s.text;
  }
  if (has(o, 'namespaceSelector')) {
    const s = checkSelector(own(o, 'namespaceSelector'), field(path, 'namespaceSelector'), issues, 'alone');
    if (s.text !== undefined) out.namespaceSelector = s.text;
  }
  for (const key of ['ports', 'notPorts'] as const) {
    if (!has(o, key)) continue;
    const ports = validatePorts(own(o, key), field(path, key), issues, protocol);
    if (ports !== undefined && ports.length > 0) out[key] = ports;
  }
  if (has(o, 'serviceAccounts')) {
    const sa = validateServiceAccounts(own(o, 'serviceAccounts'), field(path, 'serviceAccounts'), issues);
    if (sa !== undefined && Object.keys(sa).length > 0) out.serviceAccounts = sa;
  }
  if (has(o, 'services')) {
    issues.add(field(path, 'services'), 'Kubernetes Service matches are not supported by tortie; use selector or nets');
  }
  return out;
}

function validateNets(
  v: unknown,
  path: string,
  issues: Issues,
  negated: boolean,
  ctx: NetsContext,
): string[] | undefined {
  const arr = asStringArray(v, path, issues);
  if (arr === undefined) return undefined;
  if (arr.length > MAX_NETS) {
    issues.add(path, `has ${arr.length} entries, more than the ${MAX_NETS} allowed`);
    return undefined;
  }
  let v4 = false;
  let v6 = false;
  const out: string[] = [];
  let ok = true;
  arr.forEach((s, i) => {
    const p = index(path, i);
    const c = tryParseCidr(s);
    if (c === undefined) {
      issues.add(p, `${quote(s)} is not a valid CIDR (e.g. 10.0.0.0/8)`);
      ok = false;
      return;
    }
    if (!isMasked(c)) {
      issues.add(p, `${quote(s)} has host bits set (did you mean ${formatCidr(maskCidr(c))}?)`);
      ok = false;
      return;
    }
    if (negated && c.prefix === 0) {
      issues.add(p, `${quote(s)} in a negated match excludes every address, so the rule could never match`);
      ok = false;
      return;
    }
    if (c.ip.version === 4) v4 = true;
    else v6 = true;
    out.push(formatCidr(c));
  });
  if (ctx.ipVersion !== undefined && ((v4 && ctx.ipVersion !== 4) || (v6 && ctx.ipVersion !== 6))) {
    issues.add(path, `CIDR version does not match the rule's ipVersion ${ctx.ipVersion}`);
    ok = false;
  }
  if ((v4 && v6) || (v4 && ctx.seen6) || (v6 && ctx.seen4)) {
    issues.add(path, 'a rule cannot mix IPv4 and IPv6 CIDRs');
    ok = false;
  }
  ctx.seen4 = ctx.seen4 || v4;
  ctx.seen6 = ctx.seen6 || v6;
  return ok ? out : undefined;
}

function validatePorts(v: unknown, path: string, issues: Issues, protocol: Protocol | undefined): Port[] | undefined {
  const arr = asArray(v, path, issues);
  if (arr === undefined) return undefined;
  if (arr.length > MAX_PORTS) {
    issues.add(path, `has ${arr.length} entries, more than the ${MAX_PORTS} allowed`);
    return undefined;
  }
  if (arr.length > 0 && protocol !== undefined && !protocolSupportsPorts(protocol)) {
    issues.add(path, `ports can only be used with protocol TCP, UDP or SCTP, not ${protocol}`);
    return undefined;
  }
  const out: Port[] = [];
  let ok = true;
  arr.forEach((e, i) => {
    const p = parsePort(e);
    if ('error' in p) {
      issues.add(index(path, i), p.error);
      ok = false;
      return;
    }
    if (p.kind === 'range' && protocol === undefined) {
      issues.add(index(path, i), `numeric port ${quote(String(p.value))} requires protocol TCP, UDP or SCTP`);
      ok = false;
      return;
    }
    out.push(p.value);
  });
  return ok ? out : undefined;
}

function validateServiceAccounts(v: unknown, path: string, issues: Issues): ServiceAccountMatch | undefined {
  const o = asObject(v, path, issues);
  if (o === undefined) return undefined;
  checkKnownFields(o, ['names', 'selector'], path, issues);
  const out: ServiceAccountMatch = {};
  if (has(o, 'names')) {
    const names = asStringArray(own(o, 'names'), field(path, 'names'), issues);
    if (names !== undefined) {
      names.forEach((n, i) => {
        const prob = dnsSubdomainProblem(n);
        if (prob !== null) issues.add(index(field(path, 'names'), i), `service account name ${prob}`);
      });
      if (names.length > 0) out.names = names;
    }
  }
  if (has(o, 'selector')) {
    const s = checkSelector(own(o, 'selector'), field(path, 'selector'), issues, 'forbidden');
    if (s.text !== undefined) out.selector = s.text;
  }
  return out;
}

/** A string field that must be a DNS subdomain name (Calico's `name` validator). */
export function asResourceName(v: unknown, path: string, issues: Issues): string | undefined {
  const s = asString(v, path, issues);
  if (s === undefined) return undefined;
  const prob = dnsSubdomainProblem(s);
  if (prob !== null) {
    issues.add(path, prob);
    return undefined;
  }
  return s;
}
