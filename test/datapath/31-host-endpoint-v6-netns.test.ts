// IPv6 on a host endpoint with real traffic: tortie_hep_in/_out on a node's uplink veth (in a
// namespace this test made) and the XDP prefilter on the same veth; real TCP from the kernel's
// sockets. Ingress and egress policy (neighbour discovery keeps working under deny-all),
// replies tracked, applyOnForward for traffic the node forwards to a host behind it, doNotTrack
// deny and untracked allow, and the XDP IPv6 deny list. One topology for every case.
import t from 'tap';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { loadHep, loadPrefilter, loadWep, mapOps } from '../../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../../src/dataplane/bpf/policy-sync';
import { encodeFailsafe6, encodePrefilter } from '../../src/dataplane/bpf/encode';
import { readCounters, counterPackets } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { tcAttach, xdpAttach } from '../../src/dataplane/native';
import { CalcGraph } from '../../src/calc';
import { Topology, type Netns } from '../../src/util/netns';
import type { Resource } from '../../src/model';
import { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND } from '../../src/model/failsafe';

const V3 = 'projectcalico.org/v3' as const;
const NODE = 'fd00:18::1';
const PEER = 'fd00:18::2';
const DENIED = 'fd00:66::9'; // a second address of the peer, in the prefilter's deny list
const INNER_GW = 'fd00:56::1';
const INNER = 'fd00:56::5'; // a host behind the node: traffic to it is forwarded
const PY = '/usr/bin/python3';
const SERVER = `
import socket, sys, threading
def serve(port):
    s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('::', port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(b'ok'); c.close()
for p in sys.argv[1:]: threading.Thread(target=serve, args=(int(p),), daemon=True).start()
threading.Event().wait(120)
`;
const CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET6); s.settimeout(1.5)
if len(sys.argv) > 3: s.bind((sys.argv[3], 0))
s.connect((sys.argv[1], int(sys.argv[2]))); print(s.recv(8).decode())
`;
const gnp = (name: string, spec: Record<string, unknown>) => ({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name }, spec: { selector: "role == 'host'", ...spec } }) as Resource;

async function connects(from: Netns, to: string, port: number, src?: string): Promise<boolean> {
  const r = await from.exec([PY, '-c', CLIENT, to, String(port), ...(src ? [src] : [])], { allowFail: true, timeoutMs: 10_000 });
  return r.code === 0 && r.stdout.trim() === 'ok';
}

async function listening(ns: Netns, ports: number[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { stdout } = await ns.exec(['ss', '-Hltn'], { allowFail: true });
    if (ports.every((p) => stdout.includes(`:${p} `))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`servers on ${ports.join(',')} did not start in ${ns.name}`);
}

t.test('IPv6 host endpoint and XDP prefilter on a real uplink veth', async (t) => {
  const topo = Topology.create('hep6ns');
  const pinRoot = uniquePinRoot('hep6ns');
  const closers: (() => void)[] = [];
  t.teardown(async () => { for (const c of closers.reverse()) c(); await topo.destroy(); removePinRoot(pinRoot); });
  const node = await topo.addNetns('node');
  const peer = await topo.addNetns('peer');
  const inner = await topo.addNetns('inner');
  await topo.addVeth(node, 'up0', peer, 'up1');
  await topo.addVeth(node, 'fw0', inner, 'in0');
  await node.sh(`sysctl -qw net.ipv6.conf.all.forwarding=1 && ip -6 addr add ${NODE}/64 dev up0 nodad && ip -6 addr add ${INNER_GW}/64 dev fw0 nodad && ip -6 route add fd00:66::/64 via ${PEER}`);
  await peer.sh(`ip -6 addr add ${PEER}/64 dev up1 nodad && ip -6 addr add ${DENIED}/128 dev lo && ip -6 route add fd00:56::/64 via ${NODE}`);
  await inner.sh(`ip -6 addr add ${INNER}/64 dev in0 nodad && ip -6 route add default via ${INNER_GW}`);
  node.spawn([PY, '-c', SERVER, '8080', '8082', '8083', '8090']);
  peer.spawn([PY, '-c', SERVER, '7070', '7071']);
  inner.spawn([PY, '-c', SERVER, '443', '8080']);
  await Promise.all([listening(node, [8080, 8082, 8083, 8090]), listening(peer, [7070, 7071]), listening(inner, [443, 8080])]);

  t.ok(await connects(peer, NODE, 8090), 'before any program: the node answers');
  const w = await loadWep({ pinRoot, ctMaxEntries: 65536 });
  closers.push(() => w.close());
  const h = await loadHep({ pinRoot });
  closers.push(() => h.close());
  const pf = await loadPrefilter({ pinRoot });
  closers.push(() => pf.close());
  const pd = new PolicyDataplane({ ...w.policyMaps, cls4: mapOps(w.maps.cls4!), cls6: mapOps(w.maps.cls6!), hep: mapOps(h.maps.hep),
    hlt4: mapOps(h.maps.hlt4), hlt6: mapOps(h.maps.hlt6) }, (e) => (e.host ? 0 : undefined));
  for (const e of encodeFailsafe6(DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND)) h.maps.fs6.update(e.key, e.value);
  const graph = new CalcGraph({ nodeName: 'node1' });
  const apply = (...rs: Resource[]) => { for (const r of rs) graph.onUpdate(r); pd.applyDelta(graph.flush()); };
  tcAttach({ iface: 'up0', netns: node.path, direction: 'ingress', program: h.ingress, replace: true });
  tcAttach({ iface: 'up0', netns: node.path, direction: 'egress', program: h.egress, replace: true });
  const up0 = await node.ifindex('up0');
  const dropped = (reason: number) => counterPackets(readCounters(h.maps.cnt), up0, Dir.UPLINK, reason);

  apply(
    { apiVersion: V3, kind: 'HostEndpoint', metadata: { name: 'up0', labels: { role: 'host' } }, spec: { node: 'node1', interfaceName: 'up0', expectedIPs: [NODE] } } as Resource,
    gnp('in', { types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [8080, 8082] } }] }),
    gnp('out', { types: ['Egress'], egress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [7071] } }] }),
  );

  t.test('ingress and egress policy, neighbour discovery under it', async (t) => {
    await node.sh('ip -6 neigh flush dev up0');
    await peer.sh('ip -6 neigh flush dev up1');
    t.ok(await connects(peer, NODE, 8080), 'an allowed port (after the neighbour caches were flushed: ND passed)');
    t.notOk(await connects(peer, NODE, 8090), 'a port no rule allows');
    t.ok(dropped(R.HEP_POLICY) > 0n, 'counted as hep_policy');
    t.ok(await connects(node, PEER, 7071), 'egress: an allowed destination port (its replies tracked)');
    t.notOk(await connects(node, PEER, 7070), 'egress: another port');
    const { stdout } = await node.exec(['ip', '-6', 'neigh', 'show', 'dev', 'up0']);
    t.match(stdout, /REACHABLE|STALE|DELAY|PROBE/, 'the node resolved its neighbour');
  });

  t.test('applyOnForward: forwarded traffic to a host behind the node', async (t) => {
    t.ok(await connects(peer, INNER, 8080), 'no applyOnForward policy: forwarded traffic is not policed');
    apply(gnp('fwd', { applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [443] } }] }));
    t.ok(await connects(peer, INNER, 443), 'allowed forwarded port');
    const before = dropped(R.HEP_FORWARD);
    t.notOk(await connects(peer, INNER, 8080), 'another forwarded port: denied');
    t.ok(dropped(R.HEP_FORWARD) > before, 'counted as hep_forward');
  });

  t.test('doNotTrack: deny before everything, allow untracked', async (t) => {
    apply(
      gnp('dnt', { doNotTrack: true, applyOnForward: true, types: ['Ingress', 'Egress'],
        ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [8082] } }, { action: 'Allow', protocol: 'TCP', destination: { ports: [8083] } }],
        egress: [{ action: 'Allow', protocol: 'TCP', source: { ports: [8083] } }] }),
    );
    const before = dropped(R.HEP_UNTRACKED);
    t.notOk(await connects(peer, NODE, 8082), 'the normal stage allows 8082, doNotTrack denies it first');
    t.ok(dropped(R.HEP_UNTRACKED) > before, 'counted as hep_untracked');
    t.ok(await connects(peer, NODE, 8083), 'doNotTrack allow (with its reply\'s egress allow): untracked, the normal stage does not apply');
    t.ok(await connects(peer, NODE, 8080), 'the normal stage still allows 8080');
  });

  t.test('XDP prefilter: the IPv6 deny list', async (t) => {
    for (const e of encodePrefilter({ deny: [{ family: 6, cidr: 'fd00:66::/64', ruleId: 91 }], skipped: [] }, [], true)) pf.pf6.update(e.key, e.value);
    xdpAttach({ iface: 'up0', netns: node.path, program: pf.prog, mode: 'native' });
    const count = () => counterPackets(readCounters(pf.cnt), up0, Dir.UPLINK, R.DNT_DENY);
    const before = count();
    t.notOk(await connects(peer, NODE, 8080, DENIED), 'from the denied prefix: dropped before the stack');
    t.ok(count() > before, 'counted as dnt_deny by XDP');
    t.ok(await connects(peer, NODE, 8080), 'from another address: passes');
  });
});
