// tortie_hep_in / tortie_hep_out with crafted packets (BPF_PROG_TEST_RUN inside a namespace of
// the test's own, whose FIB decides "to the host" vs forwarded): the verdict and the counter of
// each stage, what passes unpoliced (no host endpoint, non-IPv4, VLAN-tagged, later fragments),
// what is INVALID whatever the policy, failsafe ports with a net, and stage pass-through.
import t from 'tap';
import { uniquePinRoot, removePinRoot, TC_ACT_OK, TC_ACT_SHOT } from '../../src/testbed/wep-harness';
import { loadHep, loadWep, mapOps } from '../../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../../src/dataplane/bpf/policy-sync';
import { encodeFailsafe } from '../../src/dataplane/bpf/encode';
import { readCounters } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { flowPacket, PROTO, ETH_P } from '../../src/dataplane/bpf/packet';
import { CalcGraph } from '../../src/calc';
import { Topology } from '../../src/util/netns';
import type { Resource } from '../../src/model';
import { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND } from '../../src/model/failsafe';

const V3 = 'projectcalico.org/v3' as const;
const HOST = '198.18.0.1';
const OUT = '198.18.0.2';
const FWD_DST = '198.18.5.5'; // routed via OUT: forwarded

t.test('host endpoint programs on crafted packets', async (t) => {
  const topo = Topology.create('heprun');
  t.teardown(() => topo.destroy());
  const ns = await topo.addNetns('node');
  const peer = await topo.addNetns('peer');
  await topo.addVeth(ns, 'up0', peer, 'up1');
  await ns.sh(`sysctl -qw net.ipv4.ip_forward=1 && ip link set lo up && ip link set up0 up && ip addr add ${HOST}/24 dev up0 && ip route add default via ${OUT}`);
  const pinRoot = uniquePinRoot('heprun');
  const w = await loadWep({ pinRoot, ctMaxEntries: 65536 });
  const h = await loadHep({ pinRoot });
  t.teardown(() => { h.close(); w.close(); removePinRoot(pinRoot); });
  const pd = new PolicyDataplane({ ...w.policyMaps, cls4: mapOps(w.maps.cls4!), cls6: mapOps(w.maps.cls6!), hep: mapOps(h.maps.hep) }, (e) => (e.host ? 0 : undefined));
  const graph = new CalcGraph({ nodeName: 'node1' });
  const apply = (...rs: Resource[]) => { for (const r of rs) graph.onUpdate(r); pd.applyDelta(graph.flush()); };
  const fs = encodeFailsafe([...DEFAULT_FAILSAFE_INBOUND, { protocol: 'TCP', port: 2222, net: '198.18.9.0/24' }], DEFAULT_FAILSAFE_OUTBOUND);
  for (const e of fs) h.maps.fs4.update(e.key, e.value);

  const counts = () => readCounters(h.maps.cnt).filter((r) => r.dir === Dir.UPLINK);
  const run = (hook: 'in' | 'out', pkt: Buffer): [number, number] => {
    const before = counts();
    const r = (hook === 'in' ? h.ingress : h.egress).testRun(pkt, { netns: ns.path });
    const moved = counts().filter((a) => a.packets !== (before.find((b) => b.reason === a.reason && b.ifindex === a.ifindex)?.packets ?? 0n));
    return [r.retval, moved.length === 1 ? moved[0]!.reason : NaN];
  };
  const syn = (src: string, dst: string, dport: number, extra: Partial<Parameters<typeof flowPacket>[0]> = {}) =>
    flowPacket({ src, dst, proto: PROTO.TCP, sport: 40000 + dport, dport, ...extra });

  // No host endpoint: nothing is policed.
  t.same(run('in', syn(OUT, HOST, 8080)), [TC_ACT_OK, R.FORWARD], 'no host endpoint: passes');

  apply(
    { apiVersion: V3, kind: 'HostEndpoint', metadata: { name: 'all', labels: { role: 'host' } }, spec: { node: 'node1', interfaceName: '*' } } as Resource,
    { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'deny-all' }, spec: { selector: "role == 'host'", types: ['Ingress', 'Egress'] } } as Resource,
  );
  t.same(run('in', syn(OUT, HOST, 8080)), [TC_ACT_SHOT, R.HEP_POLICY], 'to the host: normal deny-all');
  t.same(run('in', syn(OUT, HOST, 22)), [TC_ACT_OK, R.FORWARD], 'tcp 22: failsafe');
  t.same(run('in', flowPacket({ src: OUT, dst: HOST, proto: PROTO.UDP, sport: 67, dport: 68 })), [TC_ACT_OK, R.FORWARD], 'udp 68: failsafe');
  t.same(run('in', flowPacket({ src: OUT, dst: HOST, proto: PROTO.UDP, sport: 1000, dport: 22 })), [TC_ACT_SHOT, R.HEP_POLICY], 'udp 22 is not tcp 22');
  t.same(run('in', syn('198.18.9.7', HOST, 2222)), [TC_ACT_OK, R.FORWARD], 'failsafe with a net: from inside it');
  t.same(run('in', syn(OUT, HOST, 2222)), [TC_ACT_SHOT, R.HEP_POLICY], 'failsafe with a net: not from outside it');
  t.same(run('in', syn(OUT, FWD_DST, 8080)), [TC_ACT_OK, R.FORWARD], 'forwarded, no applyOnForward policy: passes');
  t.same(run('out', syn(HOST, OUT, 7000)), [TC_ACT_SHOT, R.HEP_POLICY], 'from the host (no input interface): normal egress deny');
  t.same(run('out', flowPacket({ src: HOST, dst: OUT, proto: PROTO.UDP, sport: 5353, dport: 53 })), [TC_ACT_OK, R.FORWARD], 'udp 53 out: failsafe');
  t.same(run('in', flowPacket({ src: OUT, dst: HOST, proto: PROTO.UDP, sport: 53, dport: 5353 })), [TC_ACT_OK, R.FORWARD], 'its reply: tracked');
  t.same(run('in', flowPacket({ src: OUT, dst: HOST, proto: PROTO.UDP, sport: 53, dport: 5354 })), [TC_ACT_SHOT, R.HEP_POLICY], 'another port from 53: not a reply');

  // Unpoliced shapes, and INVALID.
  t.same(run('in', syn(OUT, HOST, 8080, { eth: { vlans: [7] } })), [TC_ACT_OK, R.FORWARD], 'VLAN-tagged: passes (as on the uplink)');
  t.same(run('in', flowPacket({ src: OUT, dst: HOST, proto: PROTO.UDP, sport: 1, dport: 9, eth: { ethertype: ETH_P.ARP } })), [TC_ACT_OK, R.FORWARD], 'non-IPv4: passes');
  t.same(run('in', flowPacket({ src: OUT, dst: HOST, proto: PROTO.UDP, payload: Buffer.alloc(32), ip: { fragOffset: 100, id: 9 } })), [TC_ACT_OK, R.FORWARD],
    'a later fragment passes (its first fragment was judged)');
  t.same(run('in', syn(OUT, HOST, 22, { flags: 'SF' })), [TC_ACT_SHOT, R.TCP_BAD_FLAGS], 'SYN+FIN: INVALID even on a failsafe port');
  t.same(run('in', syn(OUT, HOST, 8080, { ip: { totalLength: 10 } })), [TC_ACT_SHOT, R.BAD_TOTLEN], 'a lying IPv4 header: dropped as malformed');

  // preDNAT and doNotTrack: decided or passed through to the next stage.
  apply(
    { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'dnt' }, spec: { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, types: ['Ingress'],
      ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [9000] } }, { action: 'Allow', protocol: 'TCP', destination: { ports: [9001] } }] } } as Resource,
    { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'pre' }, spec: { selector: "role == 'host'", preDNAT: true, applyOnForward: true,
      ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [9002] } }, { action: 'Allow', protocol: 'TCP', destination: { ports: [9003] } }] } } as Resource,
  );
  t.same(run('in', syn(OUT, HOST, 9000)), [TC_ACT_SHOT, R.HEP_UNTRACKED], 'doNotTrack deny');
  t.same(run('in', syn(OUT, FWD_DST, 9000)), [TC_ACT_SHOT, R.HEP_UNTRACKED], 'doNotTrack deny of forwarded traffic');
  t.same(run('in', syn(OUT, HOST, 9001)), [TC_ACT_OK, R.FORWARD], 'doNotTrack allow: accepted untracked');
  t.same(run('out', syn(HOST, OUT, 40000 + 9001, { flags: 'SA', sport: 9001 })), [TC_ACT_SHOT, R.HEP_POLICY], '…so its reply has no conntrack entry: normal deny-all');
  t.same(run('in', syn(OUT, HOST, 9002)), [TC_ACT_SHOT, R.HEP_PREDNAT], 'doNotTrack passes through, preDNAT denies');
  t.same(run('in', syn(OUT, HOST, 9003)), [TC_ACT_OK, R.FORWARD], 'preDNAT allow skips the normal deny-all');
  t.same(run('out', syn(HOST, OUT, 40000 + 9003, { flags: 'SA', sport: 9003 })), [TC_ACT_OK, R.FORWARD], '…and its reply is tracked');
  t.same(run('in', syn(OUT, HOST, 9004)), [TC_ACT_SHOT, R.HEP_POLICY], 'neither decides: the normal stage');
  t.same(run('in', syn(OUT, HOST, 22)), [TC_ACT_OK, R.FORWARD], 'failsafe still');

  // applyOnForward: forwarded traffic only, default deny once such a policy applies.
  apply({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'fwd' }, spec: { selector: "role == 'host'", applyOnForward: true, types: ['Ingress'],
    ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [443] } }] } } as Resource);
  t.same(run('in', syn(OUT, FWD_DST, 443)), [TC_ACT_OK, R.FORWARD], 'forwarded to 443: allowed');
  t.same(run('in', syn(OUT, FWD_DST, 8080)), [TC_ACT_OK, R.FORWARD], 'the flow forwarded before the policy: tracked, keeps its verdict');
  t.same(run('in', syn(OUT, FWD_DST, 8080, { sport: 50001 })), [TC_ACT_SHOT, R.HEP_FORWARD], 'a new flow forwarded to 8080: hep_forward');
  t.same(run('in', syn(OUT, FWD_DST, 22)), [TC_ACT_SHOT, R.HEP_FORWARD], 'failsafe ports do not apply to forwarded traffic');
  t.same(run('in', syn(OUT, HOST, 443)), [TC_ACT_OK, R.FORWARD], 'applyOnForward policies apply to the host too');

  // Host endpoint conntrack follows TCP as workload conntrack does: windows, closed flows.
  const open7443 = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'in-7443' }, spec: { selector: "role == 'host'", types: ['Ingress'],
    ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [7443] } }] } } as Resource;
  apply(open7443);
  const toHost = (flags: string, seq: number, ack = 0) => flowPacket({ src: OUT, dst: HOST, proto: PROTO.TCP, sport: 41000, dport: 7443, flags, seq, ack });
  const fromHost = (flags: string, seq: number, ack = 0) => flowPacket({ src: HOST, dst: OUT, proto: PROTO.TCP, sport: 7443, dport: 41000, flags, seq, ack });
  t.same(run('in', toHost('S', 1000)), [TC_ACT_OK, R.FORWARD], 'SYN to 7443: allowed, tracked');
  t.same(run('out', fromHost('SA', 5000, 1001)), [TC_ACT_OK, R.FORWARD], 'SYN-ACK: the tracked reply');
  t.same(run('in', toHost('A', 1001, 5001)), [TC_ACT_OK, R.FORWARD], 'ACK: established');
  t.same(run('in', toHost('R', 1001 + 10_000_000)), [TC_ACT_SHOT, R.CT_INVALID], 'a RST far outside the window: INVALID, dropped');
  t.same(run('out', fromHost('R', 5001 + 10_000_000)), [TC_ACT_SHOT, R.CT_INVALID], 'the same leaving');
  t.same(run('in', toHost('FA', 1001 + 10_000_000, 5001)), [TC_ACT_SHOT, R.CT_INVALID], 'a FIN outside the window: INVALID');
  t.same(run('in', toHost('PA', 1001, 5001)), [TC_ACT_OK, R.FORWARD], 'the flow itself goes on');
  t.same(run('in', toHost('R', 1001)), [TC_ACT_OK, R.FORWARD], 'an in-window RST closes it');
  apply({ ...open7443, spec: { ...open7443.spec, ingress: [] } } as Resource);
  t.same(run('in', toHost('S', 90000)), [TC_ACT_SHOT, R.HEP_POLICY], 'a fresh SYN on the closed tuple meets policy again (now denying)');
});
