// Real packets through the wep programs for network sets and profiles in the compiler: a
// GlobalNetworkSet matched by a rule selector (edited live), and the kns.<ns> profile derived
// from a Namespace object alone (no stored Profile) letting a workload's traffic through.
import t from 'tap';
import { namespace, wep as fixtureWep } from '../../src/testbed/fixtures';
import { SingleNode, type Workload } from '../../src/testbed';
import { uniquePinRoot, removePinRoot, testHostRouting } from '../../src/testbed/wep-harness';
import { loadWep, type WepDatapath } from '../../src/dataplane/bpf/loader';
import type { GlobalNetworkPolicy, GlobalNetworkSet, Namespace, WorkloadEndpoint } from '../../src/model';

const V3 = 'projectcalico.org/v3' as const;
const IP = { web: '192.168.10.1', a: '192.168.10.2', b: '192.168.10.3' };

const wep = (name: string, ip: string, app: string): WorkloadEndpoint => fixtureWep(`ns1/${name}`, { ip, labels: { app }, profiles: ['kns.ns1'] });
const trusted = (nets: string[]): GlobalNetworkSet => ({ apiVersion: V3, kind: 'GlobalNetworkSet', metadata: { name: 'trusted', labels: { role: 'trusted' } }, spec: { nets } });
const webFromTrusted: GlobalNetworkPolicy = { apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: 'web-from-trusted' },
  spec: { selector: "app == 'web'", types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "role == 'trusted'" }, destination: { ports: [8080] } }] } };
const ns1: Namespace = namespace('ns1');

t.test('network sets and derived namespace profiles, with real packets', async (t) => {
  const topo = await SingleNode.create('dpsets', { outsideRoutesPools: true });
  const pinRoot = uniquePinRoot('sets');
  let dp: WepDatapath | undefined;
  t.teardown(async () => { dp?.close(); await topo.destroy(); removePinRoot(pinRoot); });

  const w: Record<'web' | 'a' | 'b', Workload> = {
    web: await topo.addWorkload('web', IP.web),
    a: await topo.addWorkload('a', IP.a),
    b: await topo.addWorkload('b', IP.b),
  };
  dp = await loadWep({ pinRoot, hostRouting: testHostRouting(), ctMaxEntries: 65536 });
  // No Profile resource anywhere: kns.ns1 exists only because Namespace ns1 does.
  const { pd, graph, update } = topo.program(dp, [ns1, wep('web', IP.web, 'web'), wep('a', IP.a, 'a'), wep('b', IP.b, 'b'), trusted([IP.a + '/32', '10.200.0.0/16']), webFromTrusted]);
  t.same(pd.pendingEndpoints, [], 'every endpoint bound to its interface');
  await w.web.ns.spawn(['socat', 'TCP-LISTEN:8080,fork,reuseaddr', 'EXEC:cat']);
  await w.web.ns.sh('for i in $(seq 50); do ss -ltn | grep -q :8080 && exit 0; sleep 0.1; done; exit 1');
  const tcp = (from: Workload) => from.ns.sh(`echo hi | timeout 4 socat -T2 - TCP:${IP.web}:8080,connect-timeout=2`, { allowFail: true, timeoutMs: 10_000 });
  const ping = (from: Workload, to: string) => from.ns.exec(['ping', '-c', '2', '-W', '1', '-i', '0.2', to], { allowFail: true, timeoutMs: 10_000 });
  const apply = update;

  t.equal((await tcp(w.a)).stdout.trim(), 'hi', 'a (in the trusted set) -> web:8080 allowed');
  t.not((await tcp(w.b)).stdout.trim(), 'hi', 'b (not in the set) -> web:8080 denied');
  t.equal((await ping(w.web, IP.a)).code, 0, 'web -> a: allowed by the derived kns.ns1 profile (a has no policy)');

  apply(trusted([IP.b + '/32']));
  t.not((await tcp(w.a)).stdout.trim(), 'hi', 'set edited: a no longer trusted');
  t.equal((await tcp(w.b)).stdout.trim(), 'hi', 'b now trusted');

  apply(trusted(['192.168.10.0/30'])); // .0–.3: a and b both, as one CIDR
  t.equal((await tcp(w.a)).stdout.trim(), 'hi', 'a inside the set\'s /30');
  t.equal((await tcp(w.b)).stdout.trim(), 'hi', 'b inside the set\'s /30');

  graph.onDelete('Namespace', 'ns1');
  pd.applyDelta(graph.flush());
  t.not((await ping(w.web, IP.a)).code, 0, 'namespace deleted: its profile went too, nothing allows web -> a');
});
