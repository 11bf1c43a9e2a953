// Real packets through the wep programs for network sets and profiles in the compiler: a
// GlobalNetworkSet matched by a rule selector (edited live), and the kns.<ns> profile derived
// from a Namespace object alone (no stored Profile) letting a workload's traffic through. One body
// for IPv4 and IPv6 (dual-stack workloads; the set's nets and the probes of the family under test).
import t from 'tap';
import { namespace, wep as fixtureWep } from '../../src/testbed/fixtures';
import { SingleNode, type Workload } from '../../src/testbed';
import { uniquePinRoot, removePinRoot, testHostRouting } from '../../src/testbed/wep-harness';
import { loadWep, type WepDatapath } from '../../src/dataplane/bpf/loader';
import type { GlobalNetworkPolicy, GlobalNetworkSet, Namespace, WorkloadEndpoint } from '../../src/model';

const V3 = 'projectcalico.org/v3' as const;
const FAMILIES = {
  4: { web: '192.168.10.1', a: '192.168.10.2', b: '192.168.10.3', host: 32, bothNet: '192.168.10.0/30', otherNet: '10.200.0.0/16' },
  6: { web: 'fd00:10:20::1', a: 'fd00:10:20::2', b: 'fd00:10:20::3', host: 128, bothNet: 'fd00:10:20::/126', otherNet: 'fd00:99::/32' },
} as const;
type Name = 'web' | 'a' | 'b';

const wep = (name: Name): WorkloadEndpoint => fixtureWep(`ns1/${name}`, { ip: [FAMILIES[4][name], FAMILIES[6][name]], labels: { app: name }, profiles: ['kns.ns1'] });
const trusted = (nets: string[]): GlobalNetworkSet => ({ apiVersion: V3, kind: 'GlobalNetworkSet', metadata: { name: 'trusted', labels: { role: 'trusted' } }, spec: { nets } });
const webFromTrusted: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'web-from-trusted' },
  spec: { selector: "app == 'web'", types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "role == 'trusted'" }, destination: { ports: [8080] } }] } };
const ns1: Namespace = namespace('ns1');

t.test('network sets and derived namespace profiles, with real packets', async (t) => {
  const topo = await SingleNode.create('dpsets', { outsideRoutesPools: true });
  const pinRoot = uniquePinRoot('sets');
  let dp: WepDatapath | undefined;
  t.teardown(async () => { dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });

  const w = {} as Record<Name, Workload>;
  for (const k of ['web', 'a', 'b'] as const) w[k] = await topo.addWorkload(k, FAMILIES[4][k], { ip6: FAMILIES[6][k] });
  dp = await loadWep({ pinRoot, hostRouting: testHostRouting(), ctMaxEntries: 65536 });
  // No Profile resource anywhere: kns.ns1 exists only because Namespace ns1 does.
  const { pd, graph, update } = topo.program(dp, [ns1, wep('web'), wep('a'), wep('b'), webFromTrusted]);
  t.same(pd.pendingEndpoints, [], 'every endpoint bound to its interface');
  await w.web.ns.spawn(['socat', 'TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=0', 'EXEC:cat']);
  await w.web.ns.sh('for i in $(seq 50); do ss -ltn | grep -q :8080 && exit 0; sleep 0.1; done; exit 1');

  for (const v of [4, 6] as const) t.test(`IPv${v}`, async (t) => {
    const IP = FAMILIES[v];
    const host = (ip: string) => `${ip}/${IP.host}`;
    const tcp = async (from: Workload) => (await from.ns.sh(`echo hi | timeout 3 socat -T1 - TCP${v}:${v === 4 ? IP.web : `[${IP.web}]`}:8080,connect-timeout=1`,
      { allowFail: true, timeoutMs: 10_000 })).stdout.trim() === 'hi';
    const ping = async (from: Workload, to: string) =>
      (await from.ns.exec(['ping', `-${v}`, '-c', '1', '-W', '1', to], { allowFail: true, timeoutMs: 10_000 })).code === 0;

    update(ns1, trusted([host(IP.a), IP.otherNet]));
    t.ok(await tcp(w.a), 'a (in the trusted set) -> web:8080 allowed');
    t.notOk(await tcp(w.b), 'b (not in the set) -> web:8080 denied');
    t.ok(await ping(w.web, IP.a), 'web -> a: allowed by the derived kns.ns1 profile (a has no policy)');

    update(trusted([host(IP.b)]));
    t.notOk(await tcp(w.a), 'set edited: a no longer trusted');
    t.ok(await tcp(w.b), 'b now trusted');

    update(trusted([IP.bothNet])); // web, a and b, as one CIDR
    t.ok(await tcp(w.a), `a inside the set's ${IP.bothNet}`);
    t.ok(await tcp(w.b), `b inside the set's ${IP.bothNet}`);

    update(trusted([FAMILIES[v === 4 ? 6 : 4].bothNet]));
    t.notOk(await tcp(w.a), 'a set of the other family\'s nets only: a not trusted');

    graph.onDelete('Namespace', 'ns1');
    pd.applyDelta(graph.flush());
    t.notOk(await ping(w.web, IP.a), 'namespace deleted: its profile went too, nothing allows web -> a');
  });
});
