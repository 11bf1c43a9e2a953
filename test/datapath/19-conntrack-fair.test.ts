// Conntrack fairness with real packets (docs/security.md, "Fair state tables"): one workload floods new UDP flows
// (bounded: 2,000 of two datagrams each, paced) into a small conntrack table (256 entries) while another workload holds an
// idle TCP connection on which the server then speaks first: that packet passes the client's
// ingress (whose policy denies everything) only through the connection's conntrack entry.
// The flooder is refused past its quota (counted ct_quota drops on its interface); the idle
// connection survives; the sweep's per-workload counts match the table. One body for IPv4 and
// IPv6 (dual-stack workloads; each family has its own table, tortie_ct6_v1, and quota counts).
import t from 'tap';
import { namespace, wep as fixtureWep } from '../../src/testbed/fixtures';
import { SingleNode, OUTSIDE_IP, OUTSIDE_IP6, type Workload } from '../../src/testbed';
import { uniquePinRoot, removePinRoot, testHostRouting } from '../../src/testbed/wep-harness';
import { loadWep, type WepDatapath } from '../../src/dataplane/bpf/loader';
import { readCounters, counterPackets } from '../../src/dataplane/bpf/counters';
import { DropReason as R, Dir, dropReasonLabel } from '../../src/dataplane/bpf/drop-reasons';
import { ctStatus, sweepConntrack } from '../../src/dataplane/bpf/conntrack';
import { NodeMetrics } from '../../src/node/metrics';
import { readQuota } from '../../src/dataplane/bpf/quota';
import type { GlobalNetworkPolicy, Namespace, WorkloadEndpoint } from '../../src/model';
import { PySockets } from '../../src/testbed/probes';

const V3 = 'projectcalico.org/v3' as const;
const IP4 = { web: '192.168.10.1', client: '192.168.10.2', flood: '192.168.10.3' };
const IP6 = { web: 'fd00:10:19::1', client: 'fd00:10:19::2', flood: 'fd00:10:19::3' };
const QUOTA = 32;
const TABLE = 256;
const FLOOD = 2000;

const wep = (name: keyof typeof IP4): WorkloadEndpoint => fixtureWep(`ns1/${name}`, { ip: [IP4[name], IP6[name]], labels: { app: name } });

const policies: GlobalNetworkPolicy[] = [
  { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'web-ingress' },
    spec: { selector: "app == 'web'", types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "app == 'client'" }, destination: { ports: [8080] } }] } },
  { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'egress-all' },
    spec: { selector: 'all()', types: ['Egress'], egress: [{ action: 'Allow' }] } },
];
const ns1: Namespace = namespace('ns1');

t.test('a flood of new flows is refused past the workload\'s conntrack quota; another workload\'s idle connection survives', async (t) => {
  const topo = await SingleNode.create('ctfair', { outsideRoutesPools: true, ipv6: true });
  const pinRoot = uniquePinRoot('ctfair');
  let dp: WepDatapath | undefined;
  const socks: PySockets[] = [];
  t.teardown(async () => { for (const s of socks) s.close(); dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });
  const w = {} as Record<keyof typeof IP4, Workload>;
  for (const k of ['web', 'client', 'flood'] as const) w[k] = await topo.addWorkload(k, IP4[k], { ip6: IP6[k] });
  dp = await loadWep({ pinRoot, hostRouting: testHostRouting(), ctMaxEntries: TABLE, ctQuota: QUOTA });
  topo.program(dp, [ns1, wep('web'), wep('client'), wep('flood'), ...policies]);
  const web = new PySockets(w.web.ns), client = new PySockets(w.client.ns), flood = new PySockets(w.flood.ns);
  socks.push(web, client, flood);
  const counted = () => counterPackets(readCounters(dp!.maps.cnt!, dp!.maps), w.flood.ifindex, Dir.EGRESS, R.CT_QUOTA);

  for (const v of [4, 6] as const) t.test(`IPv${v}`, async (t) => {
    const IP = v === 4 ? IP4 : IP6;
    const OUT = v === 4 ? OUTSIDE_IP : OUTSIDE_IP6;
    const [ct, ctq] = v === 4 ? [dp!.ct, dp!.ctq] : [dp!.ct6, dp!.ctq6];
    await web.run(`
conns${v} = []
tcp_echo('${IP.web}', 8080, conns${v})
_ = 1`);
    t.equal(await client.run(`
c${v} = socket.create_connection(('${IP.web}', 8080), timeout=10); c${v}.sendall(b'before'); _ = c${v}.recv(100).decode()`), 'echo:before', 'the client\'s connection works');

    const counted0 = counted(); // the counter is the interface's, both families
    const refused = () => counted() - counted0;
    t.equal(await flood.run(`
f = socket.socket(family('${OUT}'), socket.SOCK_DGRAM)
for i in range(${FLOOD}):
    f.sendto(b'x', ('${OUT}', 10000 + i))
    f.sendto(b'y', ('${OUT}', 10000 + i))
    if i % 100 == 99:
        time.sleep(0.02)
_ = ${FLOOD}`, 30_000), FLOOD);
    const want = BigInt(2 * (FLOOD - QUOTA)); // two datagrams per flow: a flow with state is a used one
    for (let i = 0; i < 50 && refused() < want; i++) await new Promise((r) => setTimeout(r, 100));
    t.equal(refused(), want, `${want} datagrams of ${FLOOD - QUOTA} new flows refused with ct_quota on the flooder's interface`);
    t.equal(readQuota(ctq).find((r) => r.addr === IP.flood)?.live, QUOTA, 'the flooder owns exactly its quota');
    // The server speaks first on the idle connection: without the client's entry, web -> client
    // would be a new flow that the client's ingress policy (none: deny) refuses.
    await web.run(`conns${v}[0].sendall(b'push'); _ = 1`);
    t.equal(await client.run(`_ = c${v}.recv(100).decode()`), 'push', 'the idle connection survives (the server\'s push passes only through conntrack)');
    t.equal(await client.run(`c${v}.sendall(b'after'); _ = c${v}.recv(100).decode()`), 'echo:after', 'and keeps working both ways');

    const sw = sweepConntrack(ct, dp!.ctTimeouts, process.hrtime.bigint(), ctq);
    t.equal(sw.byOwner!.get(IP.flood), QUOTA, 'the sweep sees the same count');
    t.equal(sw.byOwner!.get(IP.client), 1, 'the client owns its connection\'s entry');
    t.same(readQuota(ctq).filter((r) => r.live > 0).map((r) => [r.addr, r.live]).sort(), [[IP.client, 1], [IP.flood, QUOTA]],
      'counts after the sweep\'s correction');

    // The agent's metrics from that sweep (what BpfDataplane.housekeeping hands to NodeMetrics).
    const metrics = new NodeMetrics(false);
    metrics.recordConntrack(ctStatus(sw, dp!.ctMaxEntries, dp!.ctQuota, sw.expired));
    metrics.drops.set({ reason: dropReasonLabel(R.CT_QUOTA) }, Number(refused()));
    const text = await metrics.registry.metrics();
    t.match(text, /^tortie_conntrack_workloads_at_quota 1$/m, 'metric: one workload at its quota');
    t.match(text, new RegExp(`^tortie_conntrack_workload_entries_max ${QUOTA}$`, 'm'));
    t.match(text, new RegExp(`^tortie_conntrack_workload_quota ${QUOTA}$`, 'm'));
    t.match(text, new RegExp(`^tortie_conntrack_capacity ${TABLE}$`, 'm'));
    t.match(text, new RegExp(`^tortie_conntrack_entries ${sw.live}$`, 'm'));
    t.match(text, new RegExp(`^tortie_dropped_packets\\{reason="ct_quota"\\} ${want}$`, 'm'));
  });
});
