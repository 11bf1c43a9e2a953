/**
 * Seeded random scenarios for the differential and replay tests: small clusters whose policies
 * exercise every rule field, with packets aimed at the interesting addresses and ports.
 */
import type { EntityRule, Port, Resource, Rule, WorkloadEndpointPort } from '../../model';
import type { PolicyPacket } from '../../calc';
import { gns, gnp, namespace, netset, np, profile, tier, wep } from '../fixtures';

/** mulberry32: small, fast, good enough for test generation. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  some<T>(xs: readonly T[], max: number): T[] {
    const n = 1 + this.int(max);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(this.pick(xs));
    return [...new Set(out)];
  }
}

const KEYS = ['app', 'tier', 'env', 'role'];
const VALUES = ['a', 'b', 'c'];
const NETS = ['192.168.0.0/16', '192.168.1.0/24', '10.0.0.0/8', '192.168.1.5/32', '192.168.2.0/25', '0.0.0.0/0', '10.1.0.0/16', 'fd00::/64'];
const SET_NETS = ['192.168.1.0/24', '192.168.1.0/28', '192.168.1.5/32', '10.0.0.0/8', '10.200.0.0/16', '192.168.2.1/32', '8.8.8.0/24', '192.168.0.0/16'];
/** Dual-stack scenarios add these: ULA prefixes around the endpoints' IPv6 addresses, ::/0. */
const NETS6 = ['fd00:10::/64', 'fd00:10::5/128', '::/0', 'fd00::/8', 'fd00:10:0:2::/64', 'fd00:20::/48'];
const SET_NETS6 = ['fd00:10::/64', 'fd00:10::1/128', 'fd00:10:0:2::/80', 'fd00:20::/48', 'fd00:10::/48'];
/**
 * 4: IPv4 only (the scenarios the IPv4 tests always had: 4 draws no extra random numbers);
 * 'dual': dual-stack endpoints (some of one family only), IPv6 nets and sets, ipVersion and
 * ICMPv6 rules, and packets of both families.
 */
export type Family = 4 | 'dual';
const PORT_NAMES = ['http', 'dns', 'metrics'];
const NUM_PORTS = [22, 53, 80, 443, 8080, 9090];

function leaf(g: Gen): string {
  const k = g.pick(KEYS);
  switch (g.int(8)) {
    case 0:
      return `${k} == "${g.pick(VALUES)}"`;
    case 1:
      return `${k} != "${g.pick(VALUES)}"`;
    case 2:
      return `has(${k})`;
    case 3:
      return `!has(${k})`;
    case 4:
      return `${k} in {${g.some(VALUES, 2).map((v) => `"${v}"`).join(', ')}}`;
    case 5:
      return `${k} not in {"${g.pick(VALUES)}"}`;
    case 6:
      return 'all()';
    default:
      return `${k} == "${g.pick(VALUES)}"`;
  }
}

export function selector(g: Gen): string {
  const n = 1 + g.int(2);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(leaf(g));
  return parts.join(g.chance(0.6) ? ' && ' : ' || ');
}

function ports(g: Gen): Port[] {
  const out: Port[] = [];
  const n = 1 + g.int(2);
  for (let i = 0; i < n; i++) {
    switch (g.int(4)) {
      case 0:
        out.push(g.pick(NUM_PORTS));
        break;
      case 1: {
        const a = g.pick(NUM_PORTS);
        out.push(`${a}:${a + g.int(2000)}`);
        break;
      }
      case 2:
        out.push(g.pick(PORT_NAMES));
        break;
      default:
        out.push(String(g.pick(NUM_PORTS)));
    }
  }
  return out;
}

function entity(g: Gen, portsOk: boolean, fam: Family): EntityRule | undefined {
  const nets = fam === 4 ? NETS : [...NETS, ...NETS6];
  if (g.chance(0.35)) return undefined;
  const e: EntityRule = {};
  if (g.chance(0.4)) e.selector = selector(g);
  if (g.chance(0.15)) e.notSelector = selector(g);
  if (g.chance(0.15)) e.namespaceSelector = g.pick(['env == "prod"', 'all()', 'global()', 'env != "prod"', 'has(env)']);
  if (g.chance(0.3)) e.nets = g.some(nets, 2);
  if (g.chance(0.15)) e.notNets = g.some(nets, 2);
  if (g.chance(0.1)) e.serviceAccounts = g.chance(0.5) ? { names: g.some(['sa1', 'sa2'], 2) } : { selector: `${g.pick(KEYS)} == "${g.pick(VALUES)}"` };
  if (portsOk && g.chance(0.4)) e.ports = ports(g);
  if (portsOk && g.chance(0.15)) e.notPorts = ports(g);
  return e;
}

export function rule(g: Gen, fam: Family = 4): Rule {
  const r: Rule = { action: g.pick(['Allow', 'Allow', 'Deny', 'Pass', 'Log'] as const) };
  let portsOk = false;
  switch (g.int(9)) {
    case 0:
    case 1:
      r.protocol = 'TCP';
      portsOk = true;
      break;
    case 2:
      r.protocol = g.chance(0.5) ? 'UDP' : 17;
      portsOk = true;
      break;
    case 3:
      if (fam !== 4 && g.chance(0.5)) {
        r.protocol = 'ICMPv6';
        if (g.chance(0.6)) r.icmp = g.chance(0.5) ? { type: g.pick([128, 129]) } : { type: 1, code: g.pick([0, 4]) };
        if (g.chance(0.3)) r.notICMP = { type: g.pick([128, 129, 1]) };
        break;
      }
      r.protocol = 'ICMP';
      if (g.chance(0.6)) r.icmp = g.chance(0.5) ? { type: g.pick([0, 8]) } : { type: 3, code: g.pick([0, 4]) };
      if (g.chance(0.3)) r.notICMP = { type: g.pick([0, 8, 3]) };
      break;
    case 4:
      r.protocol = g.pick([47, 'SCTP', 6] as const);
      portsOk = r.protocol !== 47;
      break;
    case 5:
      r.notProtocol = g.pick(['TCP', 'UDP', 1] as const);
      portsOk = g.chance(0.3); // ports without a protocol: tortie's semantics, both sides must agree
      break;
    default:
      portsOk = g.chance(0.1);
  }
  if (g.chance(fam === 4 ? 0.03 : 0.2)) r.ipVersion = g.pick([4, 6]);
  const s = entity(g, portsOk, fam);
  const d = entity(g, portsOk, fam);
  if (s) r.source = s;
  if (d) r.destination = d;
  return r;
}

function rules(g: Gen, max: number, fam: Family): Rule[] {
  const out: Rule[] = [];
  const n = g.int(max + 1);
  for (let i = 0; i < n; i++) out.push(rule(g, fam));
  return out;
}

export interface Scenario {
  resources: Resource[];
  locals: string[];
  /** Addresses worth aiming packets at. */
  addresses: string[];
}

export function scenario(g: Gen, fam: Family = 4): Scenario {
  const res: Resource[] = [];
  res.push(namespace('ns1', { env: 'prod', team: g.pick(VALUES) }));
  if (g.chance(0.8)) res.push(namespace('ns2', { env: g.pick(['dev', 'prod']) }));
  const tiers = ['default'];
  for (const name of ['t1', 't2']) {
    if (!g.chance(0.5)) continue;
    tiers.push(name);
    if (g.chance(0.8)) res.push(tier(name, g.chance(0.8) ? g.pick([10, 20, 2_000_000]) : undefined, g.chance(0.3) ? 'Pass' : 'Deny'));
  }
  const profiles = ['p1', 'p2', 'kns.ns1'];
  for (const p of profiles) {
    if (g.chance(0.2)) continue; // referenced but missing
    const spec: Parameters<typeof profile>[1] = { ingress: rules(g, 2, fam), egress: rules(g, 2, fam) };
    if (g.chance(0.5)) spec.labelsToApply = { [g.pick(KEYS)]: g.pick(VALUES) };
    res.push(profile(p, spec));
  }
  const locals: string[] = [];
  const addresses: string[] = [];
  const nEps = 4 + g.int(8);
  for (let i = 0; i < nEps; i++) {
    const ns = g.pick(['ns1', 'ns2']);
    const key = `${ns}/ep${i}`;
    const labels: Record<string, string> = {};
    for (const k of KEYS) if (g.chance(0.5)) labels[k] = g.pick(VALUES);
    const ip4 = g.chance(0.5) ? `192.168.1.${i}` : `192.168.${g.pick([0, 2, 3])}.${i + 1}`;
    let ip: string | string[] = ip4;
    if (fam !== 4) {
      // The IPv6 address mirrors the IPv4 one's choices; some endpoints have one family only.
      const ip6 = g.chance(0.5) ? `fd00:10::${i.toString(16)}` : `fd00:10:0:${g.pick([0, 2, 3])}::${(i + 1).toString(16)}`;
      const which = g.int(10);
      ip = which === 0 ? [ip4] : which === 1 ? [ip6] : [ip4, ip6];
      addresses.push(...ip);
    } else addresses.push(ip4);
    const local = i < 2 || g.chance(0.3);
    const ports: WorkloadEndpointPort[] = [];
    for (const name of PORT_NAMES) {
      if (g.chance(0.4)) ports.push({ name, protocol: g.pick(['TCP', 'UDP', 'TCP']), port: g.pick(NUM_PORTS) });
    }
    const o: Parameters<typeof wep>[1] = { labels, ip, node: local ? 'node1' : 'node2', ports };
    if (g.chance(0.7)) o.profiles = g.some(profiles, 2);
    if (g.chance(0.4)) o.sa = g.pick(['sa1', 'sa2']);
    res.push(wep(key, o));
    if (local) locals.push(key);
  }
  const nPol = g.int(7);
  for (let i = 0; i < nPol; i++) {
    const spec: Parameters<typeof gnp>[1] = { selector: selector(g), ingress: rules(g, 3, fam), egress: rules(g, 3, fam) };
    if (g.chance(0.7)) spec.order = g.pick([1, 5, 5, 10, 100]);
    const t = g.pick(tiers);
    if (t !== 'default' || g.chance(0.3)) spec.tier = t;
    if (g.chance(0.7)) spec.types = g.pick([['Ingress'], ['Egress'], ['Ingress', 'Egress']] as const).slice() as ('Ingress' | 'Egress')[];
    if (g.chance(0.5)) res.push(gnp(`pol${i}`, spec));
    else res.push(np(`${g.pick(['ns1', 'ns2'])}/pol${i}`, spec));
  }
  // Network sets: labelled CIDRs overlapping the endpoints' addresses, the rules' nets and each
  // other (drawn last, so the scenarios above are what they were before sets existed).
  const nSets = g.int(4);
  for (let i = 0; i < nSets; i++) {
    const labels: Record<string, string> = {};
    for (const k of KEYS) if (g.chance(0.5)) labels[k] = g.pick(VALUES);
    const nets = g.some(fam === 4 ? SET_NETS : [...SET_NETS, ...SET_NETS6], 3);
    if (g.chance(0.5)) res.push(gns(`set${i}`, nets, labels));
    else res.push(netset(`${g.pick(['ns1', 'ns2', 'ns3'])}/set${i}`, nets, labels));
  }
  return { resources: res, locals, addresses };
}

export function packet(g: Gen, s: Scenario, fam: Family = 4): PolicyPacket {
  if (fam !== 4 && g.chance(0.5)) return packet6(g, s);
  const v4 = s.addresses.filter((a) => !a.includes(':'));
  const remoteIP = g.chance(0.6) && v4.length > 0
    ? g.pick(v4)
    : g.chance(0.5)
      ? g.pick(['192.168.1.5', '192.168.1.200', '10.1.2.3', '10.200.0.1', '192.168.2.1', '8.8.8.8', '192.168.9.9'])
      : `${g.int(256)}.${g.int(256)}.${g.int(256)}.${g.int(256)}`;
  return ports4or6(g, s, remoteIP, g.pick([6, 6, 17, 1, 132, 47, 58]), [0, 3, 8, 11]);
}

/** An IPv6 packet: ULA addresses near the endpoints' and the nets', ICMPv6 of echo and error types. */
function packet6(g: Gen, s: Scenario): PolicyPacket {
  const hex = () => g.int(0x10000).toString(16);
  const remoteIP = g.chance(0.6) && s.addresses.some((a) => a.includes(':'))
    ? g.pick(s.addresses.filter((a) => a.includes(':')))
    : g.chance(0.5)
      ? g.pick(['fd00:10::5', 'fd00:10::200', 'fd00:10:0:2::1', 'fd00:20::1', 'fd00:20:1::9', 'fd00:99::9', '2001:db8::1'])
      : `fd${g.int(256).toString(16).padStart(2, '0')}:${hex()}:${hex()}:${hex()}::${hex()}`;
  return ports4or6(g, s, remoteIP, g.pick([6, 6, 17, 58, 132, 47, 1]), [128, 129, 1, 3]);
}

function ports4or6(g: Gen, s: Scenario, remoteIP: string, protocol: number, icmpTypes: number[]): PolicyPacket {
  const port = (): number => (g.chance(0.7) ? g.pick(NUM_PORTS) + g.pick([0, 0, 1, -1, 500]) : g.int(65536));
  const p: PolicyPacket = { endpoint: g.pick(s.locals), direction: g.chance(0.5) ? 'ingress' : 'egress', remoteIP, protocol };
  if (protocol === 1 || protocol === 58) {
    p.icmpType = g.pick(icmpTypes);
    p.icmpCode = g.pick([0, 4, 1]);
  } else {
    p.srcPort = port();
    p.dstPort = port();
  }
  return p;
}
