// Host endpoints end to end, with real packets in namespaces: the agent's kernel side
// (BpfDataplane: compiled tables, tortie_hep_v1, failsafe ports, the uplink's programs and
// tortie_hep_in/out on other host interfaces) in a "node" namespace whose uplink eth0 leads to
// an "outside" namespace, with one workload. Listeners run inside the node namespace (tcp 8080
// a service, tcp 22 and 179 failsafe ports). Each case checks the drop counter of its stage.
import t from 'tap';
import { SingleNode, NODE_IP as NODE_UPLINK_IP, OUTSIDE_IP as EXT_IP, type Workload } from '../../src/testbed';
import { uniquePinRoot, removePinRoot } from '../../src/testbed/wep-harness';
import { BpfDataplane } from '../../src/dataplane/dataplane';
import { readCounters, counterPackets } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir } from '../../src/dataplane/bpf/drop-reasons';
import { CalcGraph } from '../../src/calc';
import type { Netns } from '../../src/util/netns';
import type { FlowLog } from '../../src/dataplane/dataplane';
import type { GlobalNetworkPolicy, GlobalNetworkPolicySpec, HostEndpoint, Resource } from '../../src/model';
import { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND } from '../../src/model/failsafe';

const V3 = 'projectcalico.org/v3' as const;
const WL_IP = '192.168.40.1';
const EXT2_IP = '198.18.2.2';
const NODE_ETH1_IP = '198.18.2.1';
/** The node's second address on its uplink (for rules' local-side nets). */
const NODE_UPLINK_IP2 = '198.18.0.11';

const gnp = (name: string, spec: GlobalNetworkPolicySpec): GlobalNetworkPolicy => ({ apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name }, spec });
const hep = (name: string, spec: HostEndpoint['spec'], labels: Record<string, string> = { role: 'host' }): HostEndpoint =>
  ({ apiVersion: V3, kind: 'HostEndpoint', metadata: { name, labels }, spec: { node: 'node1', ...spec } });
const BASE: Resource[] = [
  { apiVersion: V3, kind: 'Namespace', metadata: { name: 'ns1', labels: {} } },
  { apiVersion: V3, kind: 'Node', metadata: { name: 'node1' }, spec: { bgp: { ipv4Address: `${NODE_UPLINK_IP}/24` } } },
  { apiVersion: V3, kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, blockSize: 26, nodeSelector: 'all()' } },
  { apiVersion: V3, kind: 'WorkloadEndpoint', metadata: { name: 'w', namespace: 'ns1', labels: { app: 'w' } },
    spec: { orchestrator: 'k8s', node: 'node1', ipNetworks: [`${WL_IP}/32`], interfaceName: 'caliw', profiles: [] } },
  gnp('workload-open', { selector: "app == 'w'", types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] }),
] as Resource[];
const DENY_ALL_HOST = gnp('host-deny-all', { selector: "role == 'host'", types: ['Ingress', 'Egress'] });
const ALLOW_ALL_HOST = gnp('host-allow-all', { selector: "role == 'host'", types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] });

interface Node {
  topo: SingleNode; dp: BpfDataplane; w: Workload; ext2: Netns; eth0: number; eth1: number; flows: FlowLog[];
  /** How often open() said its last BPF load started (onLastLoad), and whether it was open by then. */
  lastLoads: { calls: number; openAtCall: boolean };
  /** Compiles BASE + rs with the real CalcGraph and reconciles the dataplane with it. */
  apply(rs: Resource[]): Promise<void>;
  /** Closes the dataplane (programs and maps stay) and opens another on the same pins. */
  reopen(o: Partial<Parameters<typeof BpfDataplane.open>[0]>): Promise<void>;
  drops(ifindex: number, reason: number): bigint;
}

async function node(label: string): Promise<Node> {
  const topo = await SingleNode.create(label, { outsideRoutesPools: true });
  const pinRoot = uniquePinRoot(label);
  const st: { dp?: BpfDataplane } = {};
  const cleanup = async () => { await st.dp?.close().catch(() => undefined); await topo.destroy(); removePinRoot(pinRoot); };
  try {
    const w = await topo.addWorkload('w', WL_IP);
    // A second host interface (for the `*` host endpoint) to another outside namespace.
    const ext2 = await topo.topo.addNetns('ext2');
    await topo.topo.addVeth(topo.node, 'eth1', ext2, 'eth0');
    await topo.node.sh(`ip link set eth1 up && ip addr add ${NODE_ETH1_IP}/24 dev eth1`);
    await topo.node.sh(`ip addr add ${NODE_UPLINK_IP2}/24 dev eth0`);
    await ext2.sh(`ip link set lo up && ip link set eth0 up && ip addr add ${EXT2_IP}/24 dev eth0`);
    for (const port of [8080, 22, 179]) await topo.node.spawn(['socat', `TCP-LISTEN:${port},fork,reuseaddr`, 'EXEC:cat']);
    await topo.outside.spawn(['socat', 'TCP-LISTEN:7000,fork,reuseaddr', 'EXEC:cat']);
    await topo.outside.spawn(['socat', `UDP-RECVFROM:53,fork,bind=${EXT_IP}`, 'EXEC:cat']);
    await topo.outside.spawn(['socat', `UDP-RECVFROM:5000,fork,bind=${EXT_IP}`, 'EXEC:cat']);
    for (const port of [8080, 8081]) await w.ns.spawn(['socat', `TCP-LISTEN:${port},fork,reuseaddr`, 'EXEC:cat']);
    for (const [ns, ports] of [[topo.node, [8080, 22, 179]], [topo.outside, [7000]], [w.ns, [8080, 8081]]] as const) {
      for (const port of ports) await ns.sh(`for i in $(seq 100); do ss -ltn | grep -q ':${port} ' && exit 0; sleep 0.05; done; exit 1`);
    }
    await topo.outside.sh(`for i in $(seq 100); do ss -lun | grep -q ':5000 ' && exit 0; sleep 0.05; done; exit 1`);
    const flows: FlowLog[] = [];
    const open = (o: Partial<Parameters<typeof BpfDataplane.open>[0]>) => BpfDataplane.open({
      pinRoot, interfacePrefix: 'cali', uplink: 'eth0', netns: { name: topo.node.name, path: topo.node.path }, linkResyncMs: 60_000,
      endpointToHostAction: 'Accept', onFlow: (f) => flows.push(f), ...o,
    });
    const lastLoads = { calls: 0, openAtCall: false };
    const opening = open({ onLastLoad: () => { lastLoads.calls++; lastLoads.openAtCall = st.dp !== undefined; } });
    st.dp = await opening;
    let last: Resource[] = [];
    const n: Node = {
      topo, dp: st.dp, w, ext2, flows, lastLoads, eth0: await topo.node.ifindex('eth0'), eth1: await topo.node.ifindex('eth1'),
      apply: async (rs) => {
        last = rs;
        const g = new CalcGraph({ nodeName: 'node1' });
        for (const r of [...BASE, ...rs]) g.onUpdate(r);
        g.flush();
        await n.dp.reconcile(g.snapshot());
      },
      reopen: async (o) => {
        await st.dp!.close();
        st.dp = undefined;
        n.dp = st.dp = await open(o);
        await n.apply(last);
      },
      drops: (ifindex, reason) => counterPackets(readCounters(n.dp.maps.cnt!), ifindex, Dir.UPLINK, reason),
    };
    return n;
  } catch (e) {
    await cleanup();
    throw e;
  } finally {
    t.teardown(cleanup);
  }
}

// One node for every case (each case applies its whole resource set; flows differ by port or
// ephemeral port, so host endpoint conntrack entries of one case do not serve another).
let shared: Promise<Node> | undefined;
const theNode = (): Promise<Node> => (shared ??= node('hep'));

/**
 * `bind`: the source address to connect from. `wait`: how long the TCP handshake may take (s).
 * What must be denied waits DENY_WAIT: on these veths an unpoliced handshake takes milliseconds
 * (kernel to kernel, no scheduling of the listener in between), so a connection the stage let
 * through still shows within it; the longer wait is for what must pass. A UDP reply comes from a
 * forked `cat`, so UDP keeps its 1 s either way.
 */
const DENY_WAIT = 0.5;
const tcp = async (from: Netns, dst: string, port: number, bind?: string, wait = DENY_WAIT): Promise<boolean> => (await from.sh(
  `echo hi-${port} | timeout 4 socat -T2 - TCP:${dst}:${port},connect-timeout=${wait}${bind !== undefined ? `,bind=${bind}` : ''}`,
  { allowFail: true, timeoutMs: 10_000 })).stdout.trim() === `hi-${port}`;
const udp = async (from: Netns, dst: string, port: number, wait = 1): Promise<boolean> => (await from.sh(
  `echo hu-${port} | timeout 3 socat -T${wait} - UDP:${dst}:${port}`, { allowFail: true, timeoutMs: 10_000 })).stdout.trim() === `hu-${port}`;
// What must get through gets two tries of 1.5 s (a loaded machine can lose a connect); what must
// not is tried once (the mutation runs in the commit log show each of those fails without enforcement).
const tcpOk = async (from: Netns, dst: string, port: number, bind?: string): Promise<boolean> => (await tcp(from, dst, port, bind, 1.5)) || tcp(from, dst, port, bind, 1.5);
const udpOk = async (from: Netns, dst: string, port: number): Promise<boolean> => (await udp(from, dst, port, 1)) || udp(from, dst, port, 1);

t.test('a host endpoint with deny-all: the node\'s service is closed, failsafe ports stay open, its own outbound is denied but DNS', async (t) => {
  const n = await theNode();
  t.same(n.lastLoads, { calls: 1, openAtCall: false }, 'open() announced its last BPF load once, before it resolved (the agent compiles meanwhile)');
  await n.apply([]);
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 8080), 'no host endpoint: the node\'s service is reachable');
  t.ok(await tcpOk(n.topo.node, EXT_IP, 7000), 'no host endpoint: the node reaches outside');

  await n.apply([hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST]);
  let before = n.drops(n.eth0, R.HEP_POLICY);
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'outside -> node tcp 8080: denied');
  t.ok(n.drops(n.eth0, R.HEP_POLICY) > before, 'counted as hep_policy on eth0');
  t.ok((n.dp.housekeeping().drops.hep_policy ?? 0n) > 0n, 'and in the status behind tortie_dropped_packets{reason="hep_policy"}');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 22), 'tcp 22 (failsafe inbound) still reachable');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 179), 'tcp 179 (failsafe inbound) still reachable');
  before = n.drops(n.eth0, R.HEP_POLICY);
  t.notOk(await tcp(n.topo.node, EXT_IP, 7000), 'node -> outside tcp 7000: denied');
  t.ok(n.drops(n.eth0, R.HEP_POLICY) > before, 'counted');
  t.ok(await udpOk(n.topo.node, EXT_IP, 53), 'node -> outside udp 53 (failsafe outbound) passes, and its reply');
  t.notOk(await udp(n.topo.node, EXT_IP, 5000), 'node -> outside udp 5000: denied');
  t.ok(await tcpOk(n.topo.outside, WL_IP, 8080), 'forwarded outside -> workload: not policed (no applyOnForward policy)');
  t.ok(n.flows.some((f) => f.kind === 'deny' && f.endpoint === 'HostEndpoint:eth0' && f.interface === 'eth0' && f.reason === 'hep_policy' &&
    f.rule?.kind === 'end-of-tier' && f.dstPort === 8080), 'deny flow log: the host endpoint, its interface, the end of the tier that denied');

  // Failsafe ports are configuration (Felix's failsafeInboundHostPorts/…Outbound…).
  await n.reopen({ failsafe: { inbound: [{ protocol: 'TCP', port: 179 }], outbound: [] } });
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 22), 'failsafe inbound without 22: tcp 22 denied');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 179), 'tcp 179 still failsafe');
  t.notOk(await udp(n.topo.node, EXT_IP, 53), 'failsafe outbound empty: udp 53 denied');
  await n.reopen({ failsafe: { inbound: [...DEFAULT_FAILSAFE_INBOUND], outbound: [...DEFAULT_FAILSAFE_OUTBOUND] } });
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 22), 'defaults again: tcp 22 open');
});

t.test('the built-in projectcalico-default-allow profile: a host endpoint naming it is open when no policy decides', async (t) => {
  const n = await theNode();
  await n.apply([hep('eth0', { interfaceName: 'eth0', profiles: ['projectcalico-default-allow'] })]);
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 8080), 'outside -> node tcp 8080 (not failsafe): allowed by the profile');
  t.ok(await tcpOk(n.topo.node, EXT_IP, 7000), 'node -> outside tcp 7000: allowed by the profile');

  await n.apply([hep('eth0', { interfaceName: 'eth0' })]);
  const before = n.drops(n.eth0, R.HEP_POLICY);
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'without the profile and without policy: tcp 8080 denied');
  t.ok(n.drops(n.eth0, R.HEP_POLICY) > before, 'counted as hep_policy on eth0');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 22), 'failsafe tcp 22 still open');

  await n.apply([hep('eth0', { interfaceName: 'eth0', profiles: ['projectcalico-default-allow'] }), DENY_ALL_HOST]);
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'with the profile under a deny-all policy: the policy decides, denied');
});

t.test('a host endpoint found by expectedIPs; its policy\'s rules and direction', async (t) => {
  const n = await theNode();
  await n.apply([hep('by-ip', { expectedIPs: [NODE_UPLINK_IP] }),
    gnp('host-in', { selector: "role == 'host'", types: ['Ingress'], ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [8080] } }, { action: 'Allow' }] })]);
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'the deny rule applies on the interface holding the address');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 179), 'tcp 179 allowed (failsafe, and the allow rule)');
  t.notOk(await tcp(n.topo.node, EXT_IP, 7000), 'no egress policy: the node\'s own outbound is denied by default');
  t.ok(await tcpOk(n.ext2, NODE_ETH1_IP, 8080), 'eth1 has no host endpoint: not policed');
});

t.test('preDNAT: an outside source denied toward a workload before anything else; other traffic goes on', async (t) => {
  const n = await theNode();
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), ALLOW_ALL_HOST,
    gnp('pre', { selector: "role == 'host'", preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny', protocol: 'TCP', source: { nets: [`${EXT_IP}/32`] }, destination: { ports: [8080] } }] })]);
  const before = n.drops(n.eth0, R.HEP_PREDNAT);
  t.notOk(await tcp(n.topo.outside, WL_IP, 8080), 'outside -> workload tcp 8080: denied by preDNAT');
  t.ok(n.drops(n.eth0, R.HEP_PREDNAT) > before, 'counted as hep_prednat');
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'and toward the node itself (preDNAT applies to all arriving traffic)');
  t.ok(await tcpOk(n.topo.outside, WL_IP, 8081), 'tcp 8081: no preDNAT rule decided, forwarded (no applyOnForward policy)');
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), ALLOW_ALL_HOST,
    gnp('pre', { selector: "role == 'host'", preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny', source: { nets: [`${EXT_IP}/32`] } }] })]);
  t.notOk(await tcp(n.topo.outside, WL_IP, 8081), 'preDNAT deny of everything from the outside host: the workload too');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 22), 'failsafe ports skip preDNAT');
  // preDNAT Allow skips the normal policy: open the node's 8080 with preDNAT only.
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST,
    gnp('pre', { selector: "role == 'host'", preDNAT: true, applyOnForward: true, ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [8080] } }] })]);
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 8080), 'a preDNAT allow skips the (deny-all) normal policy; the reply passes as tracked');
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 7000), 'what preDNAT does not decide meets the normal policy');
});

t.test('applyOnForward: forwarded traffic allowed or denied by applyOnForward policies only', async (t) => {
  const n = await theNode();
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST]);
  t.ok(await tcpOk(n.topo.outside, WL_IP, 8080), 'deny-all without applyOnForward: forwarded traffic flows');
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST,
    gnp('fwd', { selector: "role == 'host'", applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [8081] } }] })]);
  const before = n.drops(n.eth0, R.HEP_FORWARD);
  t.notOk(await tcp(n.topo.outside, WL_IP, 8080), 'outside -> workload 8080: denied by the applyOnForward policy');
  t.ok(n.drops(n.eth0, R.HEP_FORWARD) > before, 'counted as hep_forward');
  t.ok(await tcpOk(n.topo.outside, WL_IP, 8081), 'outside -> workload 8081: allowed (its replies leave eth0 as tracked)');
  t.ok(await tcpOk(n.w.ns, EXT_IP, 7000), 'workload -> outside: no egress applyOnForward policy, allowed');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 22), 'to the host: failsafe still');
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'to the host: the normal deny-all');
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST,
    gnp('fwd', { selector: "role == 'host'", applyOnForward: true, types: ['Egress'], egress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [7000] } }, { action: 'Allow' }] })]);
  t.notOk(await tcp(n.w.ns, EXT_IP, 7000), 'workload -> outside 7000: denied leaving eth0 (forward egress)');
  t.ok(await tcpOk(n.topo.outside, WL_IP, 8080), 'outside -> workload: no ingress applyOnForward policy any more');
});

t.test('doNotTrack: stateless in both directions, before conntrack; an allow needs the reply rule', async (t) => {
  const n = await theNode();
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST,
    gnp('dnt', { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [8080] } }] })]);
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'untracked allow in: the SYN passes, but the SYN-ACK meets the normal deny-all (no conntrack entry)');
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST,
    gnp('dnt', { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, types: ['Ingress', 'Egress'],
      ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: [8080] } }],
      egress: [{ action: 'Allow', protocol: 'TCP', source: { ports: [8080] } }] })]);
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 8080), 'with the reply rule (egress from port 8080) the connection works, untracked');
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), ALLOW_ALL_HOST,
    gnp('dnt', { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Deny', source: { nets: [`${EXT_IP}/32`] } }] })]);
  const before = n.drops(n.eth0, R.HEP_UNTRACKED);
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'untracked deny from the outside host, though the normal policy allows all');
  t.ok(n.drops(n.eth0, R.HEP_UNTRACKED) > before, 'counted as hep_untracked');
  t.notOk(await tcp(n.topo.outside, WL_IP, 8080), 'forwarded traffic too (doNotTrack applies to all arriving traffic)');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 22), 'failsafe ports skip doNotTrack');
});

t.test('a rule\'s local-side nets match the packet\'s own address on the host endpoint\'s side', async (t) => {
  const n = await theNode();
  const only = (name: string, spec: GlobalNetworkPolicySpec) => [hep('eth0', { interfaceName: 'eth0' }), gnp(name, { selector: "role == 'host'", ...spec })];
  // Ingress destination.nets: one of the node's two uplink addresses.
  await n.apply(only('to-one', { types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { nets: [`${NODE_UPLINK_IP}/32`], ports: [8080] } }], egress: [{ action: 'Allow' }] }));
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 8080), 'destination.nets: to the named address, allowed');
  let before = n.drops(n.eth0, R.HEP_POLICY);
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP2, 8080), 'destination.nets: to the node\'s other address, denied');
  t.ok(n.drops(n.eth0, R.HEP_POLICY) > before, 'counted as hep_policy');
  // Ingress destination.notNets: the mirror image.
  await n.apply(only('not-one', { types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow', protocol: 'TCP', destination: { notNets: [`${NODE_UPLINK_IP}/32`], ports: [8080] } }], egress: [{ action: 'Allow' }] }));
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'destination.notNets: to the excluded address, denied');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP2, 8080), 'destination.notNets: to the other address, allowed');
  // Egress source.nets: the node's own connections by the address they leave from.
  await n.apply(only('from-two', { types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow', protocol: 'TCP', source: { nets: [`${NODE_UPLINK_IP2}/32`] } }] }));
  t.ok(await tcpOk(n.topo.node, EXT_IP, 7000, NODE_UPLINK_IP2), 'source.nets: from the named address, allowed');
  before = n.drops(n.eth0, R.HEP_POLICY);
  t.notOk(await tcp(n.topo.node, EXT_IP, 7000, NODE_UPLINK_IP), 'source.nets: from the other address, denied');
  t.ok(n.drops(n.eth0, R.HEP_POLICY) > before, 'counted as hep_policy');
  // preDNAT destination.nets on forwarded traffic: the workload's address, before anything else.
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), ALLOW_ALL_HOST,
    gnp('pre', { selector: "role == 'host'", preDNAT: true, applyOnForward: true, ingress: [{ action: 'Deny', protocol: 'TCP', destination: { nets: [`${WL_IP}/32`] } }] })]);
  before = n.drops(n.eth0, R.HEP_PREDNAT);
  t.notOk(await tcp(n.topo.outside, WL_IP, 8080), 'preDNAT destination.nets: forwarded to the workload, denied');
  t.ok(n.drops(n.eth0, R.HEP_PREDNAT) > before, 'counted as hep_prednat');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 8080), 'preDNAT destination.nets: to the node, not decided there; the normal allow');
  // preDNAT allow by destination under a deny-all normal policy.
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST,
    gnp('pre', { selector: "role == 'host'", preDNAT: true, applyOnForward: true, ingress: [{ action: 'Allow', protocol: 'TCP', destination: { nets: [`${NODE_UPLINK_IP2}/32`] } }] })]);
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP2, 8080), 'preDNAT allow to the named address skips the deny-all');
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'to the other address the deny-all decides');
  // doNotTrack destination.nets: untracked deny of one address only.
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), ALLOW_ALL_HOST,
    gnp('dnt', { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Deny', destination: { nets: [`${NODE_UPLINK_IP2}/32`] } }] })]);
  before = n.drops(n.eth0, R.HEP_UNTRACKED);
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP2, 8080), 'doNotTrack destination.nets: to the named address, denied untracked');
  t.ok(n.drops(n.eth0, R.HEP_UNTRACKED) > before, 'counted as hep_untracked');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 8080), 'to the other address: the normal allow');
  // doNotTrack egress source.notNets.
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), ALLOW_ALL_HOST,
    gnp('dnt', { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, types: ['Egress'], egress: [{ action: 'Deny', protocol: 'TCP', source: { notNets: [`${NODE_UPLINK_IP2}/32`] }, destination: { ports: [7000] } }] })]);
  t.notOk(await tcp(n.topo.node, EXT_IP, 7000, NODE_UPLINK_IP), 'doNotTrack source.notNets: from an address outside the net, denied');
  t.ok(await tcpOk(n.topo.node, EXT_IP, 7000, NODE_UPLINK_IP2), 'from the excluded address: the normal allow');
  t.equal(n.dp.hostMaps.hlt4.keys().length, 2, 'the stage dispatches on the local address: tortie_hlt4_v1 has its net and 0.0.0.0/0');
  await n.reopen({});
  t.equal(n.dp.hostMaps.hlt4.keys().length, 2, 'an agent restart adopts the dispatch and leaves no stale entries');
  t.notOk(await tcp(n.topo.node, EXT_IP, 7000, NODE_UPLINK_IP), 'after the restart: still denied');
  t.ok(await tcpOk(n.topo.node, EXT_IP, 7000, NODE_UPLINK_IP2), 'after the restart: still allowed');
  await n.apply([hep('eth0', { interfaceName: 'eth0' }), ALLOW_ALL_HOST]);
  t.equal(n.dp.hostMaps.hlt4.keys().length, 0, 'and its entries go with the policy');
});

t.test('interfaceName "*": every host interface but the workloads\'', async (t) => {
  const n = await theNode();
  await n.apply([hep('all', { interfaceName: '*' }), DENY_ALL_HOST]);
  const before = n.drops(n.eth1, R.HEP_POLICY);
  t.notOk(await tcp(n.ext2, NODE_ETH1_IP, 8080), 'via eth1: denied');
  t.ok(n.drops(n.eth1, R.HEP_POLICY) > before, 'counted on eth1 (tortie_hep_in)');
  t.ok(await tcpOk(n.ext2, NODE_ETH1_IP, 22), 'via eth1: failsafe');
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'via eth0 (the uplink): denied');
  t.ok(await tcpOk(n.topo.outside, NODE_UPLINK_IP, 179), 'via eth0: failsafe');
  t.ok(await tcpOk(n.w.ns, EXT_IP, 7000), 'workload traffic forwarded: no applyOnForward policy');
  // A named host endpoint takes its interface from the `*` one.
  await n.apply([hep('all', { interfaceName: '*' }), DENY_ALL_HOST, hep('eth1', { interfaceName: 'eth1' }, { role: 'open' }),
    gnp('open', { selector: "role == 'open'", types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] })]);
  t.ok(await tcpOk(n.ext2, NODE_ETH1_IP, 8080), 'eth1 has its own host endpoint (allow-all): open');
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'eth0 still under `*`');
});

t.test('expectedIPs are a host endpoint\'s addresses for rule selectors', async (t) => {
  const n = await theNode();
  const gw = (ip: string) => hep('gw', { interfaceName: 'eth0', expectedIPs: [ip] }, { role: 'gateway' });
  const remote = { ...gw(EXT_IP), spec: { ...gw(EXT_IP).spec, node: 'node2' } } as HostEndpoint;
  const only = gnp('workload-open', { selector: "app == 'w'", types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow', source: { selector: "role == 'gateway'" } }], egress: [{ action: 'Allow' }] });
  await n.apply([remote, only]);
  t.ok(await tcpOk(n.topo.outside, WL_IP, 8080), 'the workload admits the gateway host endpoint\'s address');
  await n.apply([{ ...remote, spec: { ...remote.spec, expectedIPs: ['198.18.9.9'] } }, only]);
  t.notOk(await tcp(n.topo.outside, WL_IP, 8080), 'with another expectedIP the same source is denied');
});

t.test('NAT outgoing under a deny-all host endpoint: the SNATed flow\'s replies are established', async (t) => {
  const n = await theNode();
  const natPool = { ...BASE.find((r) => r.kind === 'IPPool')!, spec: { cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, blockSize: 26, nodeSelector: 'all()' } } as Resource;
  await n.apply([natPool, hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST]);
  t.ok(await tcpOk(n.w.ns, EXT_IP, 7000), 'workload -> outside, SNATed to the node: the reply to the node address is translated back and passes');
  t.notOk(await tcp(n.topo.outside, NODE_UPLINK_IP, 8080), 'the node itself stays closed');
  await n.apply([natPool, hep('eth0', { interfaceName: 'eth0' }), DENY_ALL_HOST,
    gnp('dnt', { selector: "role == 'host'", doNotTrack: true, applyOnForward: true, types: ['Ingress'], ingress: [{ action: 'Deny', protocol: 'TCP', source: { ports: [7000] } }] })]);
  t.notOk(await tcp(n.w.ns, EXT_IP, 7000), 'a doNotTrack deny still sees the reply as it arrives');
});
