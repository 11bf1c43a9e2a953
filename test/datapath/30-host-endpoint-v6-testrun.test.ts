// IPv6 on host endpoints, tortie_hep_in / tortie_hep_out with crafted packets (BPF_PROG_TEST_RUN
// inside a namespace of the test's own, whose IPv6 FIB decides "to the host" vs forwarded): every
// stage (doNotTrack, conntrack, preDNAT, normal, applyOnForward), TCP conntrack states, failsafe
// ports (with IPv6 and IPv4 nets), neighbour discovery never cut off, later fragments, local-side
// nets of either family, and rules of one family never matching the other family's packets.
// Then the XDP prefilter's IPv6 deny list (plain, VLAN-tagged, inside VXLAN of either family).
import t from 'tap';
import { uniquePinRoot, removePinRoot, TC_ACT_OK, TC_ACT_SHOT } from '../../src/testbed/wep-harness';
import { loadHep, loadPrefilter, loadUplink, loadWep, mapOps } from '../../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../../src/dataplane/bpf/policy-sync';
import { encodeFailsafe, encodeFailsafe6, encodePrefilter } from '../../src/dataplane/bpf/encode';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { eth, eth6, ext6, flowPacket, frag6, icmp6, ipv4, ipv6, tcp, udp, vxlanHeader, ETH_P, NH6, PROTO } from '../../src/dataplane/bpf/packet';
import { NET_MAP, NETCFG_KEY, netcfg6Codec, node6KeyCodec, nodeInfoCodec, vxcfgCodec, vxlan6Mac } from '../../src/dataplane/bpf/net-codecs';
import { XdpAction } from '../../src/dataplane/native';
import { CalcGraph } from '../../src/calc';
import { Topology } from '../../src/util/netns';
import type { Resource } from '../../src/model';
import { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND } from '../../src/model/failsafe';

const V3 = 'projectcalico.org/v3' as const;
const HOST = '198.18.0.1';
const OUT = '198.18.0.2';
const HOST6 = 'fd00:18::1';
const HOST6B = 'fd00:18::3'; // another address of the node
const OUT6 = 'fd00:18::2';
const FWD6 = 'fd00:55::5'; // routed via OUT6: forwarded
const LL = 'fe80::2';

const syn6 = (src: string, dst: string, dport: number, o: { flags?: string; sport?: number; seq?: number; ack?: number; hop?: number } = {}) =>
  eth6({ src, dst, proto: PROTO.TCP, hopLimit: o.hop }, tcp({ sport: o.sport ?? 40000 + dport, dport, flags: o.flags ?? 'S', seq: o.seq ?? 0, ack: o.ack ?? 0 }));
const udp6 = (src: string, dst: string, sport: number, dport: number) => eth6({ src, dst, proto: PROTO.UDP }, udp({ sport, dport }));
const icmpv6 = (src: string, dst: string, type: number, hop = 255, payload?: Buffer) =>
  eth6({ src, dst, proto: NH6.ICMP6, hopLimit: hop }, icmp6({ type, payload: payload ?? Buffer.alloc(16) }));
const syn4 = (src: string, dst: string, dport: number) => flowPacket({ src, dst, proto: PROTO.TCP, sport: 40000 + dport, dport });
const gnp = (name: string, spec: Record<string, unknown>) => ({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name }, spec: { selector: "role == 'host'", ...spec } }) as Resource;

t.test('host endpoint programs on crafted IPv6 packets', async (t) => {
  const topo = Topology.create('hep6run');
  t.teardown(() => topo.destroy());
  const ns = await topo.addNetns('node');
  const peer = await topo.addNetns('peer');
  await topo.addVeth(ns, 'up0', peer, 'up1');
  await ns.sh([
    'sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0',
    `ip link set lo up && ip link set up0 up && ip addr add ${HOST}/24 dev up0 && ip route add default via ${OUT}`,
    `ip -6 addr add ${HOST6}/64 dev up0 nodad && ip -6 addr add ${HOST6B}/64 dev up0 nodad && ip -6 route add default via ${OUT6} dev up0`,
  ].join(' && '));
  const pinRoot = uniquePinRoot('hep6run');
  const w = await loadWep({ pinRoot, ctMaxEntries: 65536 });
  const h = await loadHep({ pinRoot });
  t.teardown(() => { h.close(); w.close(); removePinRoot(pinRoot); });
  const pd = new PolicyDataplane({ ...w.policyMaps, cls4: mapOps(w.maps.cls4!), cls6: mapOps(w.maps.cls6!), hep: mapOps(h.maps.hep),
    hlt4: mapOps(h.maps.hlt4), hlt6: mapOps(h.maps.hlt6) }, (e) => (e.host ? 0 : undefined));
  const graph = new CalcGraph({ nodeName: 'node1' });
  const apply = (...rs: Resource[]) => { for (const r of rs) graph.onUpdate(r); pd.applyDelta(graph.flush()); };
  const inbound = [...DEFAULT_FAILSAFE_INBOUND, { protocol: 'TCP' as const, port: 2222, net: 'fd00:99::/64' }, { protocol: 'TCP' as const, port: 2223, net: '198.18.0.0/16' }];
  for (const e of encodeFailsafe(inbound, DEFAULT_FAILSAFE_OUTBOUND)) h.maps.fs4.update(e.key, e.value);
  for (const e of encodeFailsafe6(inbound, DEFAULT_FAILSAFE_OUTBOUND)) h.maps.fs6.update(e.key, e.value);

  const counts = () => readCounters(h.maps.cnt).filter((r) => r.dir === Dir.UPLINK);
  const up = await loadUplink({ pinRoot });
  t.teardown(() => up.close());
  const run = (hook: 'in' | 'out' | 'upin' | 'upout', pkt: Buffer): [number, number] => {
    const before = counts();
    const prog = { in: h.ingress, out: h.egress, upin: up.ingress, upout: up.egress }[hook];
    const r = prog.testRun(pkt, { netns: ns.path });
    const moved = counts().filter((a) => a.packets !== (before.find((b) => b.reason === a.reason && b.ifindex === a.ifindex)?.packets ?? 0n));
    return [r.retval, moved.length === 1 ? moved[0]!.reason : NaN];
  };
  const PASS: [number, number] = [TC_ACT_OK, R.FORWARD];
  const drop = (reason: number): [number, number] => [TC_ACT_SHOT, reason];

  t.same(run('in', syn6(OUT6, HOST6, 8080)), PASS, 'no host endpoint: IPv6 passes');
  t.same(run('in', eth6({ src: OUT6, dst: HOST6, proto: 200, exts: Array.from({ length: 9 }, () => ext6(NH6.DEST)) }, Buffer.alloc(8))), PASS,
    'no host endpoint: even a malformed IPv6 packet passes (not policed)');

  apply(
    { apiVersion: V3, kind: 'HostEndpoint', metadata: { name: 'all', labels: { role: 'host' } }, spec: { node: 'node1', interfaceName: '*', expectedIPs: [HOST, HOST6] } } as Resource,
    gnp('deny-all', { types: ['Ingress', 'Egress'] }),
  );
  t.test('normal stage, failsafe ports, forwarded traffic, conntrack of replies', async (t) => {
    t.same(run('in', syn6(OUT6, HOST6, 8080)), drop(R.HEP_POLICY), 'to the host: normal deny-all');
    t.same(run('in', syn6(OUT6, HOST6, 22)), PASS, 'tcp 22: failsafe for IPv6 too');
    t.same(run('in', udp6(LL, 'fe80::1', 547, 68)), PASS, 'udp 68: failsafe');
    t.same(run('in', udp6(OUT6, HOST6, 1000, 22)), drop(R.HEP_POLICY), 'udp 22 is not tcp 22');
    t.same(run('in', syn6('fd00:99::7', HOST6, 2222)), PASS, 'failsafe with an IPv6 net: from inside it');
    t.same(run('in', syn6(OUT6, HOST6, 2222)), drop(R.HEP_POLICY), 'failsafe with an IPv6 net: not from outside it');
    t.same(run('in', syn6(OUT6, HOST6, 2223)), drop(R.HEP_POLICY), 'a failsafe entry with an IPv4 net holds no IPv6 remote');
    t.same(run('in', syn4(OUT, HOST, 2223)), PASS, '…and does hold its IPv4 one');
    t.same(run('in', syn6(OUT6, FWD6, 8080)), PASS, 'forwarded, no applyOnForward policy: passes');
    t.same(run('out', syn6(HOST6, OUT6, 7000)), drop(R.HEP_POLICY), 'from the host: normal egress deny');
    t.same(run('out', udp6(HOST6, OUT6, 5353, 53)), PASS, 'udp 53 out: failsafe');
    t.same(run('in', udp6(OUT6, HOST6, 53, 5353)), PASS, 'its reply: tracked in tortie_hct6_v1');
    t.same(run('in', udp6(OUT6, HOST6, 53, 5354)), drop(R.HEP_POLICY), 'another port from 53: not a reply');
    t.same(run('in', udp6(OUT6, HOST6B, 53, 5353)), drop(R.HEP_POLICY), 'the same ports to another address: not a reply');
    const quote = ipv6({ src: HOST6, dst: OUT6, proto: PROTO.UDP }, udp({ sport: 5353, dport: 53 })).subarray(0, 48);
    t.same(run('in', icmpv6(OUT6, HOST6, 2, 64, quote)), PASS, 'a Packet Too Big quoting the tracked flow: related');
    const other = ipv6({ src: HOST6, dst: OUT6, proto: PROTO.UDP }, udp({ sport: 5399, dport: 53 })).subarray(0, 48);
    t.same(run('in', icmpv6(OUT6, HOST6, 2, 64, other)), drop(R.HEP_POLICY), 'one quoting an unknown flow: policy');
  });

  t.test('neighbour discovery, router messages and MLD are never cut off', async (t) => {
    t.same(run('in', icmpv6(OUT6, 'ff02::1:ff00:1', 135)), PASS, 'neighbour solicitation (hop limit 255)');
    t.same(run('in', icmpv6(OUT6, HOST6, 136)), PASS, 'neighbour advertisement to a global address');
    t.same(run('out', icmpv6(HOST6, OUT6, 136)), PASS, 'the host\'s own advertisement, leaving');
    t.same(run('out', icmpv6(HOST6, 'ff02::1:ff00:2', 135)), PASS, 'the host\'s solicitation, leaving');
    t.same(run('in', icmpv6(LL, 'ff02::1', 134)), PASS, 'router advertisement');
    t.same(run('out', icmpv6('fe80::1', 'ff02::2', 133)), PASS, 'router solicitation');
    t.same(run('in', icmpv6(LL, HOST6, 137)), PASS, 'redirect from the link');
    t.same(run('in', icmpv6(OUT6, HOST6, 135, 64)), drop(R.HEP_POLICY), 'a solicitation that crossed a router (hop limit 64): policy');
    t.same(run('in', icmpv6(LL, 'ff02::16', 143, 1)), PASS, 'MLDv2 report from a link-local source');
    t.same(run('in', icmpv6('::', 'ff02::16', 143, 1)), PASS, 'MLDv2 report from the unspecified source (DAD)');
    t.same(run('in', icmpv6(OUT6, 'ff02::16', 143, 1)), drop(R.HEP_POLICY), 'MLD from a global source: policy');
    t.same(run('in', icmpv6(OUT6, HOST6, 128, 64)), drop(R.HEP_POLICY), 'an echo request: policy');
  });

  t.test('fragments and malformed IPv6', async (t) => {
    const frag = (offset: number, mf: boolean) => eth6({ src: OUT6, dst: HOST6, proto: PROTO.UDP, exts: [frag6({ offset, mf, id: 77 })] },
      offset === 0 ? Buffer.concat([udp({ sport: 1000, dport: 9999 }), Buffer.alloc(24)]) : Buffer.alloc(32));
    t.same(run('in', frag(0, true)), drop(R.HEP_POLICY), 'a first fragment is judged by its ports');
    t.same(run('in', frag(100, false)), PASS, 'a later fragment passes (its first fragment was judged)');
    t.same(run('in', eth6({ src: OUT6, dst: HOST6, proto: 200, exts: Array.from({ length: 9 }, () => ext6(NH6.DEST)) }, Buffer.alloc(8))),
      drop(R.IP6_EXT_CHAIN), 'an extension-header chain past the bound: dropped where a host endpoint applies');
    t.same(run('in', syn6(OUT6, HOST6, 22, { flags: 'SF' })), drop(R.TCP_BAD_FLAGS), 'SYN+FIN: INVALID even on a failsafe port');
    t.same(run('in', eth({ vlans: [7] }, ipv6({ src: OUT6, dst: HOST6, proto: PROTO.TCP }, tcp({ sport: 1, dport: 8080, flags: 'S' })))), PASS,
      'VLAN-tagged: passes (as IPv4)');
  });

  t.test('doNotTrack, preDNAT, applyOnForward', async (t) => {
    apply(
      gnp('dnt', { doNotTrack: true, applyOnForward: true, types: ['Ingress'],
        ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [9000] } }, { action: 'Allow', protocol: 'TCP', destination: { ports: [9001] } }] }),
      gnp('pre', { preDNAT: true, applyOnForward: true,
        ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [9002] } }, { action: 'Allow', protocol: 'TCP', destination: { ports: [9003] } }] }),
    );
    t.same(run('in', syn6(OUT6, HOST6, 9000)), drop(R.HEP_UNTRACKED), 'doNotTrack deny');
    t.same(run('in', syn6(OUT6, FWD6, 9000)), drop(R.HEP_UNTRACKED), 'doNotTrack deny of forwarded traffic');
    t.same(run('in', syn6(OUT6, HOST6, 9001)), PASS, 'doNotTrack allow: accepted untracked');
    t.same(run('out', syn6(HOST6, OUT6, 40000 + 9001, { flags: 'SA', sport: 9001 })), drop(R.HEP_POLICY), '…so its reply has no conntrack entry');
    t.same(run('in', syn6(OUT6, HOST6, 9002)), drop(R.HEP_PREDNAT), 'doNotTrack passes through, preDNAT denies');
    t.same(run('in', syn6(OUT6, HOST6, 9003)), PASS, 'preDNAT allow skips the normal deny-all');
    t.same(run('out', syn6(HOST6, OUT6, 40000 + 9003, { flags: 'SA', sport: 9003 })), PASS, '…and its reply is tracked');
    t.same(run('in', syn6(OUT6, HOST6, 9004)), drop(R.HEP_POLICY), 'neither decides: the normal stage');
    apply(gnp('fwd', { applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [443] } }] }));
    t.same(run('in', syn6(OUT6, FWD6, 443)), PASS, 'forwarded to 443: allowed');
    t.same(run('in', syn6(OUT6, FWD6, 8080)), PASS, 'the flow forwarded before the policy: tracked');
    t.same(run('in', syn6(OUT6, FWD6, 8080, { sport: 50001 })), drop(R.HEP_FORWARD), 'a new forwarded flow to 8080: hep_forward');
    t.same(run('in', syn6(OUT6, FWD6, 22)), drop(R.HEP_FORWARD), 'failsafe ports do not apply to forwarded traffic');
    t.same(run('in', syn6(OUT6, HOST6, 443)), PASS, 'applyOnForward policies apply to the host too');
  });

  t.test('TCP conntrack states', async (t) => {
    const open = gnp('in-7443', { types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [7443] } }] });
    apply(open);
    const toHost = (flags: string, seq: number, ack = 0) => syn6(OUT6, HOST6, 7443, { sport: 41000, flags, seq, ack });
    const fromHost = (flags: string, seq: number, ack = 0) => eth6({ src: HOST6, dst: OUT6, proto: PROTO.TCP }, tcp({ sport: 7443, dport: 41000, flags, seq, ack }));
    t.same(run('in', toHost('S', 1000)), PASS, 'SYN to 7443: allowed, tracked');
    t.same(run('out', fromHost('SA', 5000, 1001)), PASS, 'SYN-ACK: the tracked reply');
    t.same(run('in', toHost('A', 1001, 5001)), PASS, 'ACK: established');
    t.same(run('in', toHost('R', 1001 + 10_000_000)), drop(R.CT_INVALID), 'a RST far outside the window: INVALID');
    t.same(run('out', fromHost('R', 5001 + 10_000_000)), drop(R.CT_INVALID), 'the same leaving');
    t.same(run('in', toHost('FA', 1001 + 10_000_000, 5001)), drop(R.CT_INVALID), 'a FIN outside the window: INVALID');
    t.same(run('in', toHost('PA', 1001, 5001)), PASS, 'the flow itself goes on');
    t.same(run('in', toHost('R', 1001)), PASS, 'an in-window RST closes it');
    apply({ ...open, spec: { ...(open as { spec: object }).spec, ingress: [] } } as Resource);
    t.same(run('in', toHost('S', 90000)), drop(R.HEP_POLICY), 'a fresh SYN on the closed tuple meets policy again');
  });

  t.test('rules of one family never match the other family\'s packets', async (t) => {
    apply(
      gnp('v4only', { types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', ipVersion: 4, destination: { ports: [8443] } }] }),
      gnp('v6only', { types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', ipVersion: 6, destination: { ports: [8444] } }] }),
      gnp('v6nets', { types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', source: { nets: ['fd00:18::/64'] }, destination: { ports: [8445] } }] }),
      gnp('v4notnets', { types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', source: { notNets: ['10.0.0.0/8'] }, destination: { ports: [8447] } }] }),
    );
    t.same(run('in', syn4(OUT, HOST, 8443)), PASS, 'ipVersion 4: IPv4 allowed');
    t.same(run('in', syn6(OUT6, HOST6, 8443)), drop(R.HEP_POLICY), 'ipVersion 4: IPv6 not');
    t.same(run('in', syn6(OUT6, HOST6, 8444)), PASS, 'ipVersion 6: IPv6 allowed');
    t.same(run('in', syn4(OUT, HOST, 8444)), drop(R.HEP_POLICY), 'ipVersion 6: IPv4 not');
    t.same(run('in', syn6(OUT6, HOST6, 8445)), PASS, 'IPv6 nets: from inside');
    t.same(run('in', syn4(OUT, HOST, 8445)), drop(R.HEP_POLICY), 'IPv6 nets only: no IPv4 version of the rule');
    t.same(run('in', syn4(OUT, HOST, 8447)), PASS, 'IPv4 notNets: IPv4 outside them allowed');
    t.same(run('in', syn6(OUT6, HOST6, 8447)), drop(R.HEP_POLICY), 'IPv4 notNets only: no IPv6 version of the rule');
  });

  t.test('local-side nets of either family (tortie_hlt4_v1 / tortie_hlt6_v1)', async (t) => {
    apply(
      gnp('local6', { types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { nets: [`${HOST6}/128`], ports: [8446] } }] }),
      gnp('local4', { types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { nets: [`${HOST}/32`], ports: [8448] } }] }),
    );
    t.same(run('in', syn6(OUT6, HOST6, 8446)), PASS, 'to the listed IPv6 address');
    t.same(run('in', syn6(OUT6, HOST6B, 8446)), drop(R.HEP_POLICY), 'to another address of the node');
    t.same(run('in', syn4(OUT, HOST, 8446)), drop(R.HEP_POLICY), 'IPv4 to the port: no IPv4 version of the rule');
    t.same(run('in', syn4(OUT, HOST, 8448)), PASS, 'the IPv4 local net');
    t.same(run('in', syn6(OUT6, HOST6, 8448)), drop(R.HEP_POLICY), 'IPv6 to the IPv4 rule\'s port: no match');
    t.same(run('in', syn6(OUT6, HOST6, 8444)), PASS, 'other IPv6 rules still hold in the dispatched stage');
    t.same(run('in', syn6(OUT6, HOST6, 22)), PASS, 'failsafe still');
  });

  t.test('the uplink\'s programs carry the same IPv6 stages (NAT66 off, then on)', async (t) => {
    for (const nat of [false, true]) {
      if (nat) up.maps.netcfg6.update(NETCFG_KEY, netcfg6Codec.encode({ node_ip6: HOST6, snat_ip6: '::' }));
      const w = nat ? 'NAT66 on' : 'NAT66 off';
      t.same(run('upin', syn6(OUT6, HOST6, 8090, { sport: nat ? 41001 : 41000 })), drop(R.HEP_POLICY), `${w}: arriving, normal deny`);
      t.same(run('upin', syn6(OUT6, HOST6, 8444, { sport: nat ? 41001 : 41000 })), PASS, `${w}: arriving, an allowed port`);
      t.same(run('upout', eth6({ src: HOST6, dst: OUT6, proto: PROTO.TCP }, tcp({ sport: 8444, dport: nat ? 41001 : 41000, flags: 'SA', seq: 1, ack: 1 }))), PASS,
        `${w}: its reply leaving, tracked`);
      t.same(run('upout', syn6(HOST6, OUT6, 7000)), drop(R.HEP_POLICY), `${w}: leaving, normal deny`);
      t.same(run('upin', icmpv6(OUT6, 'ff02::1:ff00:1', 135)), PASS, `${w}: neighbour solicitation`);
      t.same(run('upin', syn6(OUT6, FWD6, 9000)), drop(R.HEP_UNTRACKED), `${w}: doNotTrack deny of forwarded traffic`);
      t.same(run('upin', syn4(OUT, HOST, 8443)), PASS, `${w}: IPv4 beside it, unchanged`);
    }
    // VXLAN with a known node (outer IPv6) is not host endpoint traffic, as Felix allows it ahead of
    // policy; arriving, VXLAN to this node's port meets VXLAN's own checks first (bpf/lib/vxlan6.h).
    up.obj.map(NET_MAP.vxcfg).update(NETCFG_KEY, vxcfgCodec.encode({ vni: 4096, port: 4789, mtu: 0 }));
    const inner = eth({ dst: vxlan6Mac(HOST6), ethertype: ETH_P.IPV6 }, syn6(OUT6, 'fd00:10::2', 80).subarray(14)); // from the node itself
    const vx6 = (src: string, dst: string, sport: number, dport: number) =>
      eth6({ src, dst, proto: PROTO.UDP }, udp({ sport, dport, payload: Buffer.concat([vxlanHeader({ vni: 4096 }), inner]) }));
    t.same(run('upout', vx6(HOST6, OUT6, 50000, 4789)), drop(R.HEP_POLICY), 'VXLAN to an address that is not a node: policy');
    t.same(run('upin', vx6(OUT6, HOST6, 50000, 4789)), drop(R.VXLAN_UNKNOWN_SRC), 'VXLAN from an address that is not a node: refused by VXLAN\'s own check');
    up.maps.node6.update(node6KeyCodec.encode({ addr: OUT6 }), nodeInfoCodec.encode({ flags: 0 }));
    t.same(run('upout', vx6(HOST6, OUT6, 50000, 4789)), PASS, 'VXLAN to a known node: not judged');
    t.same(run('upin', vx6(OUT6, HOST6, 50001, 4789)), PASS, 'VXLAN from a known node: decapsulated, not judged');
    t.same(run('upin', udp6(OUT6, HOST6, 50002, 4790)), drop(R.HEP_POLICY), 'other UDP from that node: policy');
  });
});

t.test('XDP prefilter: IPv6 deny list', async (t) => {
  const pinRoot = uniquePinRoot('pf6');
  const dp = await loadPrefilter({ pinRoot });
  t.teardown(() => { dp.close(); removePinRoot(pinRoot); });
  const pf = { deny: [{ family: 6 as const, cidr: 'fd00:66::/48', ruleId: 601 }, { family: 4 as const, cidr: '198.18.66.0/24', ruleId: 602 }], skipped: [] };
  const e6 = encodePrefilter(pf, ['fd00:77::/32'], true);
  t.equal(e6.length, 2, 'the IPv6 entries only, for tortie_pf6_v1');
  for (const e of e6) dp.pf6.update(e.key, e.value);
  for (const e of encodePrefilter(pf)) dp.pf4.update(e.key, e.value);
  const run = (pkt: Buffer): [number, number] => {
    const count = () => readCounters(dp.cnt).filter((r) => r.dir === Dir.UPLINK);
    const before = count();
    const r = dp.prog.testRun(pkt);
    const moved = count().filter((a) => a.packets !== (before.find((b) => b.reason === a.reason && b.ifindex === a.ifindex)?.packets ?? 0n));
    return [r.retval, moved.length === 1 ? moved[0]!.reason : NaN];
  };
  const p6 = (src: string, dst: string) => ipv6({ src, dst, proto: PROTO.TCP }, tcp({ sport: 1, dport: 443, flags: 'S' }));
  t.same(run(eth({ ethertype: ETH_P.IPV6 }, p6('fd00:66:0:1::9', HOST6))), [XdpAction.DROP, R.DNT_DENY], 'doNotTrack deny source');
  t.same(run(eth({ ethertype: ETH_P.IPV6 }, p6('fd00:77:1::1', HOST6))), [XdpAction.DROP, R.PREFILTER], 'deny-listed source');
  t.same(run(eth({ ethertype: ETH_P.IPV6 }, p6('fd00:67::1', HOST6))), [XdpAction.PASS, R.FORWARD], 'a neighbour prefix passes');
  t.same(run(eth({ ethertype: ETH_P.IPV6 }, p6(HOST6, 'fd00:66::9'))), [XdpAction.PASS, R.FORWARD], 'a source CIDR does not match destinations');
  t.same(run(eth({ ethertype: ETH_P.IPV6, vlans: [10, 20] }, p6('fd00:66::9', HOST6))), [XdpAction.DROP, R.DNT_DENY], 'two VLAN tags do not hide it');
  t.same(run(flowPacket({ src: '198.18.66.9', dst: HOST, proto: PROTO.TCP, sport: 1, dport: 2 })), [XdpAction.DROP, R.DNT_DENY], 'IPv4 still judged by tortie_pf4_v1');
  t.same(run(eth({ ethertype: ETH_P.IPV6 }, Buffer.alloc(20))), [XdpAction.PASS, R.FORWARD], 'a truncated IPv6 header passes (the stack drops it)');
  // VXLAN: inner IPv6 in an IPv4 outer datagram, and an IPv6 outer datagram (Calico's VXLAN over IPv6).
  dp.obj.map(NET_MAP.vxcfg).update(NETCFG_KEY, vxcfgCodec.encode({ vni: 4096, port: 4789, mtu: 0 }));
  const innerEth6 = (inner: Buffer) => eth({ ethertype: ETH_P.IPV6 }, inner);
  const vx = (inner: Buffer) => Buffer.concat([vxlanHeader({ vni: 4096 }), inner]);
  const outer4 = (payload: Buffer) => eth({}, ipv4({ src: '198.18.0.7', dst: HOST, proto: PROTO.UDP }, Buffer.concat([udp({ sport: 5555, dport: 4789 }), payload])));
  const outer6 = (payload: Buffer) => eth({ ethertype: ETH_P.IPV6 }, ipv6({ src: 'fd00:18::7', dst: HOST6, proto: PROTO.UDP }, Buffer.concat([udp({ sport: 5555, dport: 4789 }), payload])));
  t.same(run(outer4(vx(innerEth6(p6('fd00:66::9', 'fd00:10::1'))))), [XdpAction.DROP, R.DNT_DENY], 'IPv4 VXLAN: a denied inner IPv6 source');
  t.same(run(outer4(vx(innerEth6(p6('fd00:67::9', 'fd00:10::1'))))), [XdpAction.PASS, R.FORWARD], 'IPv4 VXLAN: an allowed inner IPv6 source');
  t.same(run(outer6(vx(eth({}, ipv4({ src: '198.18.66.5', dst: '192.168.1.1', proto: PROTO.UDP }, udp({ sport: 1, dport: 2 })))))), [XdpAction.DROP, R.DNT_DENY],
    'IPv6 VXLAN: a denied inner IPv4 source');
  t.same(run(outer6(vx(innerEth6(p6('fd00:77::1', 'fd00:10::1'))))), [XdpAction.DROP, R.PREFILTER], 'IPv6 VXLAN: a deny-listed inner IPv6 source');
  t.same(run(outer6(vx(innerEth6(p6('fd00:67::1', 'fd00:10::1'))))), [XdpAction.PASS, R.FORWARD], 'IPv6 VXLAN: an allowed inner source');
});
