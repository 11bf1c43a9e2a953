// The IPv6 workload datapath against the real programs (BPF_PROG_TEST_RUN): policy through
// tortie_cls6_v1 and the same tables as IPv4, anti-spoofing, conntrack (replies, the TCP window,
// echo by type and id), neighbour discovery and router messages before policy, ICMPv6 errors
// related only when genuine, fragments following their first fragment at each point.
import t from 'tap';
import { WepHarness } from '../../src/testbed/wep-harness';
import { buildTable, allowAll, denyAll } from '../../src/testbed/tables';
import { DropReason as R } from '../../src/dataplane/bpf/drop-reasons';
import { sweepConntrack } from '../../src/dataplane/bpf/conntrack';
import { mapOps } from '../../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../../src/dataplane/bpf/policy-sync';
import type { CompiledState } from '../../src/calc/types';
import { readQuota } from '../../src/dataplane/bpf/quota';
import { eth6, ext6, flowPacket, frag6, ipv6, tcp, udp, icmp6, NH6, PROTO } from '../../src/dataplane/bpf/packet';

const EP = 'fd00:10::a';
const EP2 = 'fd00:10::b';
const PEER = 'fd00:20::5';
const OTHER = 'fd00:30::7';
const LL = 'fe80::1';
const GW = 'fe80::ecee:eeff:feee:eeee';

const tcp6 = (src: string, dst: string, sport: number, dport: number, flags = 'S', seq = 1000, ack = 0) =>
  eth6({ src, dst, proto: PROTO.TCP }, tcp({ sport, dport, flags, seq, ack }));
const udp6 = (src: string, dst: string, sport: number, dport: number) => eth6({ src, dst, proto: PROTO.UDP }, udp({ sport, dport }));
const icmpv6 = (src: string, dst: string, type: number, o: { id?: number; code?: number; payload?: Buffer; hop?: number } = {}) =>
  eth6({ src, dst, proto: NH6.ICMP6, hopLimit: o.hop ?? 64 }, icmp6({ type, code: o.code, id: o.id, payload: o.payload }));
// An ICMPv6 error quoting the start of a datagram (its IPv6 header and 8 bytes of L4).
const quoted = (src: string, dst: string, proto: number, l4: Buffer) => ipv6({ src, dst, proto }, l4).subarray(0, 48);
const err6 = (src: string, dst: string, quote: Buffer, type = 1) => icmpv6(src, dst, type, { payload: quote });

t.test('policy: classes from tortie_cls6_v1 feed the same tables', async (t) => {
  const h = await WepHarness.create('v6pol');
  t.teardown(() => h.close());
  // Egress: class 7 (PEER's /64) may reach tcp/80; everyone else denied.
  const egress = buildTable({
    id: 'e000000000000261', direction: 'egress', projection: [[7, 1]], protocols: [PROTO.TCP],
    rules: [{ lclass: 1, proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 11 }], defaultRule: 19,
  });
  h.setClasses([['fd00:20::/64', 7], ['192.168.0.0/16', 7]]);
  h.setEndpoint(['192.168.1.10/32', `${EP}/128`], allowAll('i000000000000261', 'ingress'), egress);
  t.equal(h.run('from', tcp6(EP, PEER, 40000, 80)).reason, R.FORWARD, 'to the allowed /64 on tcp/80');
  t.equal(h.run('from', tcp6(EP, PEER, 40001, 81)).reason, R.POLICY_DENY, 'tcp/81 denied');
  t.equal(h.run('from', tcp6(EP, OTHER, 40002, 80)).reason, R.POLICY_DENY, 'another prefix (class 0) denied');
  t.equal(h.run('from', udp6(EP, PEER, 40003, 80)).reason, R.POLICY_DENY, 'udp/80 denied');
  t.equal(h.run('to', tcp6(PEER, EP, 80, 40000, 'SA', 5000, 1001)).reason, R.FORWARD, 'the reply passes');
  t.equal(h.run('from', tcp6(EP, PEER, 40000, 80, 'A', 1001, 5001)).reason, R.FORWARD, 'established');
  // IPv4 goes through the same table: 192.168.0.0/16 is class 7 in tortie_cls4_v1.
  t.equal(h.run('from', flowPacket({ src: '192.168.1.10', dst: '192.168.5.5', proto: PROTO.TCP, sport: 40004, dport: 80 })).reason,
    R.FORWARD, 'IPv4 to the same class on tcp/80');
  t.equal(h.run('from', flowPacket({ src: '192.168.1.10', dst: '10.0.0.1', proto: PROTO.TCP, sport: 40005, dport: 80 })).reason,
    R.POLICY_DENY, 'IPv4 to class 0');
  t.equal(h.run('to', tcp6(PEER, EP, 80, 40000, 'R', 1)).reason, R.CT_INVALID, 'a RST outside the window is INVALID');
});

t.test('anti-spoofing: only the endpoint\'s IPv6 addresses may send', async (t) => {
  const h = await WepHarness.create('v6spoof');
  t.teardown(() => h.close());
  h.setEndpoint([`${EP}/128`], allowAll('i000000000000262', 'ingress'), allowAll('e000000000000262', 'egress'));
  t.equal(h.run('from', tcp6(EP, PEER, 41000, 80)).reason, R.FORWARD, 'own address');
  t.equal(h.run('from', tcp6(EP2, PEER, 41000, 80)).reason, R.SPOOFED_SRC, 'a neighbour\'s address');
  t.equal(h.run('from', tcp6(LL, PEER, 41000, 80)).reason, R.SPOOFED_SRC, 'a link-local source for non-ND traffic');
  t.equal(h.run('from', tcp6('::', PEER, 41000, 80)).reason, R.SPOOFED_SRC, 'the unspecified address');
  t.equal(h.run('to', tcp6(PEER, EP2, 80, 41000, 'S')).reason, R.FORWARD, 'ingress has no source check (policy decides)');
});

t.test('neighbour discovery and router messages are handled before policy', async (t) => {
  const h = await WepHarness.create('v6nd');
  t.teardown(() => h.close());
  h.setEndpoint([`${EP}/128`], denyAll('i000000000000263', 'ingress'), denyAll('e000000000000263', 'egress'));
  const ns = (src: string, dst: string, dir: 'from' | 'to') => h.run(dir, icmpv6(src, dst, 135, { hop: 255, payload: Buffer.alloc(16) })).reason;
  t.equal(ns('::', 'ff02::1:ff00:a', 'from'), R.FORWARD, 'DAD: NS from :: to the solicited-node group');
  t.equal(ns(EP, 'ff02::1:ffee:eeee', 'from'), R.FORWARD, 'NS for the gateway from the workload\'s address');
  t.equal(ns(LL, GW, 'from'), R.FORWARD, 'unicast NS (NUD) to the gateway from a link-local source');
  t.equal(h.run('from', icmpv6(LL, GW, 136, { hop: 255, payload: Buffer.alloc(16) })).reason, R.FORWARD, 'NA to the gateway');
  t.equal(h.run('from', icmpv6(LL, 'ff02::2', 133, { hop: 255 })).reason, R.FORWARD, 'router solicitation');
  t.equal(h.run('from', icmpv6(LL, 'ff02::16', 143, { hop: 1 })).reason, R.FORWARD, 'MLDv2 report');
  t.equal(h.run('from', icmpv6(LL, 'ff02::1', 134, { hop: 255 })).reason, R.ICMP6_ROUTER, 'a workload\'s router advertisement');
  t.equal(h.run('from', icmpv6(LL, GW, 137, { hop: 255 })).reason, R.ICMP6_ROUTER, 'a workload\'s redirect');
  t.equal(ns(EP, PEER, 'from'), R.ICMP6_ND_SCOPE, 'NS to a global address beyond the link');
  t.equal(h.run('from', icmpv6(LL, 'ff0e::16', 143, { hop: 1 })).reason, R.ICMP6_ND_SCOPE, 'MLD to a global-scope group');
  t.equal(ns(EP2, 'ff02::1:ff00:b', 'from'), R.ICMP6_ND_SCOPE, 'NS from another workload\'s address');
  t.equal(ns(GW, 'ff02::1:ff00:a', 'to'), R.FORWARD, 'the node\'s NS to the workload');
  t.equal(h.run('to', icmpv6(GW, EP, 136, { hop: 255, payload: Buffer.alloc(16) })).reason, R.FORWARD, 'the node\'s NA');
  t.equal(h.run('to', icmpv6(GW, 'ff02::1', 134, { hop: 255 })).reason, R.FORWARD, 'the node\'s RA');
  t.equal(ns(PEER, EP, 'to'), R.POLICY_DENY, 'ND from a global (routed) source is policy\'s');
  t.equal(h.run('from', icmpv6(EP, PEER, 128, { id: 1 })).reason, R.POLICY_DENY, 'echo is policy\'s (default deny)');
});

t.test('ICMPv6 echo is tracked by type and id', async (t) => {
  const h = await WepHarness.create('v6echo');
  t.teardown(() => h.close());
  const egress = buildTable({ id: 'e000000000000264', direction: 'egress', protocols: [NH6.ICMP6],
    rules: [{ proto: NH6.ICMP6, portMin: 0x8000, portMax: 0x80ff, action: 'allow', ruleId: 3 }], defaultRule: 9 });
  h.setEndpoint([`${EP}/128`], denyAll('i000000000000264', 'ingress'), egress);
  t.equal(h.run('from', icmpv6(EP, PEER, 128, { id: 77 })).reason, R.FORWARD, 'echo request out (allowed)');
  t.equal(h.run('to', icmpv6(PEER, EP, 129, { id: 77 })).reason, R.FORWARD, 'its reply comes back');
  t.equal(h.run('to', icmpv6(PEER, EP, 129, { id: 78 })).reason, R.POLICY_DENY, 'a reply with another id does not');
  t.equal(h.run('to', icmpv6(PEER, EP, 128, { id: 77 })).reason, R.POLICY_DENY, 'the peer\'s echo request with the same id does not');
});

t.test('ICMPv6 errors are related only when genuine', async (t) => {
  const h = await WepHarness.create('v6err');
  t.teardown(() => h.close());
  h.setEndpoint([`${EP}/128`], denyAll('i000000000000265', 'ingress'), allowAll('e000000000000265', 'egress'));
  t.equal(h.run('from', udp6(EP, PEER, 43000, 53)).reason, R.FORWARD, 'a UDP flow out');
  const q = quoted(EP, PEER, PROTO.UDP, udp({ sport: 43000, dport: 53 }));
  t.equal(h.run('to', err6('fd00:99::1', EP, q)).reason, R.FORWARD, 'destination unreachable from a router about it: related');
  t.equal(h.run('to', err6(PEER, EP, q, 2)).reason, R.FORWARD, 'packet too big: related');
  t.equal(h.run('to', err6(PEER, EP, q, 3)).reason, R.FORWARD, 'time exceeded: related');
  const other = quoted(EP, PEER, PROTO.UDP, udp({ sport: 43001, dport: 53 }));
  t.equal(h.run('to', err6(PEER, EP, other)).reason, R.POLICY_DENY, 'quoting a flow that does not exist: policy\'s');
  const reversed = quoted(PEER, EP, PROTO.UDP, udp({ sport: 53, dport: 43000 }));
  t.equal(h.run('to', err6(PEER, EP, reversed)).reason, R.POLICY_DENY, 'quoting the flow the wrong way round');
  t.equal(h.run('to', err6(PEER, EP2, q)).reason, R.POLICY_DENY, 'not addressed to the quoted source');
  const laterFrag = ipv6({ src: EP, dst: PEER, proto: PROTO.UDP, exts: [frag6({ offset: 2, id: 9 })] }, udp({ sport: 43000, dport: 53 })).subarray(0, 56);
  t.equal(h.run('to', err6(PEER, EP, laterFrag)).reason, R.POLICY_DENY, 'quoting a later fragment names no flow');
});

t.test('fragments follow their first fragment at each point', async (t) => {
  const h = await WepHarness.create('v6frag');
  t.teardown(() => h.close());
  const egress = buildTable({ id: 'e000000000000266', direction: 'egress', protocols: [PROTO.UDP],
    rules: [{ proto: PROTO.UDP, portMin: 53, portMax: 53, action: 'allow', ruleId: 4 }], defaultRule: 9 });
  h.setEndpoint([`${EP}/128`], denyAll('i000000000000266', 'ingress'), egress);
  const f = (id: number, offset: number, mf: boolean, l4: Buffer) =>
    eth6({ src: EP, dst: PEER, proto: PROTO.UDP, exts: [frag6({ offset, mf, id })] }, l4);
  t.equal(h.run('from', f(100, 0, true, udp({ sport: 1, dport: 53, payload: Buffer.alloc(32) }))).reason, R.FORWARD, 'allowed first fragment');
  t.equal(h.run('from', f(100, 5, false, Buffer.alloc(24))).reason, R.FORWARD, 'its later fragment follows it');
  t.equal(h.run('from', f(101, 0, true, udp({ sport: 1, dport: 54, payload: Buffer.alloc(32) }))).reason, R.POLICY_DENY, 'denied first fragment');
  t.equal(h.run('from', f(101, 5, false, Buffer.alloc(24))).reason, R.FRAG_UNKNOWN, 'its later fragment is dropped');
  t.equal(h.run('from', f(102, 5, false, Buffer.alloc(24))).reason, R.FRAG_UNKNOWN, 'a later fragment with no first');
  t.equal(h.run('to', eth6({ src: EP, dst: PEER, proto: PROTO.UDP, exts: [frag6({ offset: 5, id: 100 })] }, Buffer.alloc(24))).reason,
    R.FRAG_UNKNOWN, 'the sender\'s record does not vouch for the other point');
  t.equal(h.run('from', eth6({ src: EP, dst: PEER, proto: PROTO.UDP, exts: [ext6(NH6.DEST), frag6({ offset: 0, mf: true, id: 103 })] },
    udp({ sport: 1, dport: 53 }))).reason, R.FORWARD, 'a first fragment behind a destination options header');
  // Destination options after the fragment header: the first fragment's upper layer is UDP, the
  // later fragments' fragment header names destination options; the record must match both.
  t.equal(h.run('from', eth6({ src: EP, dst: PEER, proto: PROTO.UDP, exts: [frag6({ offset: 0, mf: true, id: 104 }), ext6(NH6.DEST)] },
    udp({ sport: 1, dport: 53, payload: Buffer.alloc(16) }))).reason, R.FORWARD, 'a first fragment with destination options after the fragment header');
  const later = eth6({ src: EP, dst: PEER, proto: PROTO.UDP, exts: [frag6({ offset: 4, id: 104 })] }, Buffer.alloc(16));
  later[14 + 40] = NH6.DEST; // the fragment header's next header, as the sender's later fragments carry it
  t.equal(h.run('from', later).reason, R.FORWARD, 'its later fragment follows it');
});

t.test('the agent sweeps tortie_ct6_v1 and keeps the per-workload counts of tortie_ctq6_v1', async (t) => {
  const h = await WepHarness.create('v6sweep', { ctQuota: 3 });
  t.teardown(() => h.close());
  h.setEndpoint([`${EP}/128`], denyAll('i000000000000267', 'ingress'), allowAll('e000000000000267', 'egress'));
  for (let i = 0; i < 3; i++) t.equal(h.run('from', udp6(EP, PEER, 44000 + i, 53)).reason, R.FORWARD, `flow ${i} within the quota`);
  t.equal(h.run('from', udp6(EP, PEER, 44003, 53)).reason, R.CT_QUOTA, 'the fourth flow is over the quota');
  const live = sweepConntrack(h.dp.ct6, h.dp.ctTimeouts, process.hrtime.bigint(), h.dp.ctq6);
  t.equal(live.live, 3, 'three live IPv6 entries');
  t.equal(live.byOwner?.get(EP), 3, 'owned by the workload\'s IPv6 address');
  const later = process.hrtime.bigint() + 3600n * 1_000_000_000n;
  const gone = sweepConntrack(h.dp.ct6, h.dp.ctTimeouts, later, h.dp.ctq6);
  t.equal(gone.expired, 3, 'expired entries deleted');
  t.equal(readQuota(h.dp.ctq6).find((r) => r.addr === EP)?.live, 0, 'the workload\'s count released');
  t.equal(h.run('from', udp6(EP, PEER, 44003, 53)).reason, R.FORWARD, 'and it may open a flow again');
});

t.test('a denied IPv6 flow is reported with its IPv6 addresses', async (t) => {
  const h = await WepHarness.create('v6evt');
  t.teardown(() => h.close());
  h.setEndpoint([`${EP}/128`], denyAll('i000000000000268', 'ingress', 21), allowAll('e000000000000268', 'egress'));
  h.startEvents();
  t.equal(h.run('to', tcp6(PEER, EP, 45000, 22)).reason, R.POLICY_DENY, 'denied');
  const ev = (await h.eventsUntil((evs) => evs.some((e) => e.kind === 'deny'))).find((e) => e.kind === 'deny');
  t.ok(ev, 'one deny event');
  t.equal(ev?.src, PEER, 'source as IPv6 text');
  t.equal(ev?.dst, EP, 'destination as IPv6 text');
  t.equal(ev?.dstPort, 22);
  t.equal(ev?.ruleId, 21, 'naming the deciding rule');
});

t.test('IPv6 class prefixes: written by PolicyDataplane, adopted and swept after a restart', async (t) => {
  const h = await WepHarness.create('v6recover');
  t.teardown(() => h.close());
  const ingress = buildTable({ id: 'aaaaaaaaaaaa0269', direction: 'ingress', projection: [[5, 1]], protocols: [PROTO.TCP],
    rules: [{ lclass: 1, proto: PROTO.TCP, portMin: 80, portMax: 80, action: 'allow', ruleId: 1 }], defaultRule: 2 });
  const egress = allowAll('eeeeeeeeeeee0269', 'egress', 3);
  const snap = (prefixes: [string, number][]): CompiledState => ({
    nodeName: 'node1',
    classes: { prefixes: prefixes.map(([cidr, classId]) => ({ family: (cidr.includes(':') ? 6 : 4) as 4 | 6, cidr, classId })), classes: [] },
    tables: [ingress, egress],
    endpoints: [{ key: 'ns/a', namespace: 'ns', name: 'a', interfaceName: 'calia', ipNetworks: [`${EP}/128`], tables: { ingress: ingress.id, egress: egress.id } }],
    rules: [], prefilter: { deny: [], skipped: [] }, routing: { pools: [], nodes: [], workloadRoutes: [] },
  });
  const maps = () => ({ ...h.dp.policyMaps, cls4: mapOps(h.dp.maps.cls4!), cls6: mapOps(h.dp.maps.cls6!) });
  const pd1 = new PolicyDataplane(maps(), () => 1);
  pd1.applySnapshot(snap([['fd00:20::/64', 5], ['fd00:30::/48', 5], ['10.0.0.0/8', 5]]));
  t.equal(h.run('to', tcp6(PEER, EP, 46000, 80)).reason, R.FORWARD, 'a remote in fd00:20::/64 (class 5) is allowed');
  t.equal(h.run('to', tcp6(OTHER, EP, 46001, 80)).reason, R.FORWARD, 'and one in fd00:30::/48');
  t.equal(h.run('to', tcp6('fd00:40::1', EP, 46003, 80)).reason, R.POLICY_DENY, 'one in neither is class 0: denied');
  // A restarted agent: a new PolicyDataplane over the same pinned maps.
  const pd2 = new PolicyDataplane(maps(), () => 1);
  t.equal(pd2.recover().prefixes, 3, 'adopts the three class prefixes (two of them IPv6)');
  pd2.applySnapshot(snap([['fd00:30::/48', 5]]));
  t.equal(h.dp.maps.cls6!.keys().length, 1, 'the IPv6 prefix no longer wanted is deleted');
  t.equal(h.dp.maps.cls4!.keys().length, 0, 'and the IPv4 one');
  h.clearConntrack();
  t.equal(h.run('to', tcp6(PEER, EP, 46002, 80)).reason, R.POLICY_DENY, 'fd00:20::/64 is class 0 now');
  t.equal(h.run('to', tcp6(OTHER, EP, 46004, 80)).reason, R.FORWARD, 'fd00:30::/48, kept, still class 5');
});

t.test('IPv6: a request the receiver denied opens no reply path; impossible TCP flags are INVALID', async (t) => {
  const h = await WepHarness.create('v6reply');
  t.teardown(() => h.close());
  // Both workloads' addresses on the interface under test: the sender's egress and the
  // receiver's ingress are the two points of one same-node flow.
  h.setEndpoint([`${EP}/128`, `${EP2}/128`], denyAll('i00000000000026a', 'ingress'), allowAll('e00000000000026a', 'egress'));
  t.equal(h.run('from', tcp6(EP, EP2, 47000, 80)).reason, R.FORWARD, 'sender egress allows');
  t.equal(h.run('to', tcp6(EP, EP2, 47000, 80)).reason, R.POLICY_DENY, 'receiver ingress denies');
  t.equal(h.run('from', tcp6(EP2, EP, 80, 47000, 'SA')).reason, R.FORWARD, 'the receiver may send');
  t.equal(h.run('to', tcp6(EP2, EP, 80, 47000, 'SA')).reason, R.POLICY_DENY, 'but its "reply" is new traffic to the sender, denied');
  for (const f of ['SF', 'SR', '', 'FPU', 'F']) {
    t.equal(h.run('from', tcp6(EP, PEER, 47001, 80, f)).reason, R.TCP_BAD_FLAGS, `"${f || 'NULL'}" is INVALID`);
  }
});
