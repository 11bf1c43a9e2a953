// The lab in BGP mode: agents run bird2 (routes from BGP), FRR is the ToR. Every matrix cell, then
// the BGP life cycle on the real cluster: node status, an agent restart that keeps routes
// (graceful restart), mesh off → connectivity lost → route reflector → restored, a node leaving.
import t from 'tap';
import { join } from 'node:path';
import { Lab, formatMatrix, type LabNode } from '../../src/lab/lab';
import { leftoverNamespaces, run } from '../../src/util/netns';
import { AGENT_BIN } from '../../src/node/launch';
import { cidr4Of, formatCidr4, ipv4ToU32 } from '../../src/primitives';

/** The IPAM block (/26) holding a workload address. */
const block26 = (ip: string): string => formatCidr4(cidr4Of(ipv4ToU32(ip), 26));

const TORTIECTL = join(AGENT_BIN, '..', 'tortiectl.js');

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

t.test('lab in BGP mode', async (t) => {
  const lab = new Lab({ bgp: true });
  t.teardown(() => lab.destroy());
  await lab.build();
  await lab.setUpScenario();
  const cells = [...await lab.matrix(), ...await lab.bgpMatrix()];
  t.comment('\n' + formatMatrix(cells));
  for (const c of cells) t.ok(c.ok, `${c.from} → ${c.to} ${c.what}: expected ${JSON.stringify(c.expect)}, got ${JSON.stringify(c.got)}`);
  t.ok(cells.filter((c) => c.what === 'BGP session').length >= 12, 'rows for every session');

  const node = (n: string): LabNode => lab.nodes.get(n)!;
  const w = (n: string) => lab.workloads.get(n)!;
  const torRoute = async (ip: string) => [...(await lab.tor!.routes())].find(([p]) => p === block26(ip))?.[1];
  const tortieRoutes = async (n: LabNode) => (await n.ns.exec(['ip', '-4', 'route', 'show', 'proto', '122'])).stdout;
  const bBlock = block26(w('b-db').ip);

  await t.test('routes come from BGP, one per block (not one per workload)', async (t) => {
    const r = await tortieRoutes(node('node-a'));
    t.ok(r.split('\n').some((l) => l.startsWith(`${bBlock} via ${node('node-b').ip} `)), `b-db's block via node-b:\n${r}`);
    t.notOk(r.split('\n').some((l) => l.startsWith(`${w('b-db').ip} `)), 'no /32 for b-db');
  });

  await t.test('tortiectl node status: Calico\'s BGP tables from bird2', async (t) => {
    const a = node('node-a');
    const r = await run(['nsenter', `--net=${a.ns.path}`, '--', process.execPath, TORTIECTL, 'node', 'status', '--name=node-a', `--run-dir=${lab.runDir}`],
      { env: { ...lab.env, FELIX_HEALTHPORT: String(a.healthPort) }, allowFail: true });
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /^tortie process is running\.\n/);
    t.match(r.stdout, /IPv4 BGP status\n\+-+\+-+\+-+\+-+\+-+\+\n\| PEER ADDRESS \|     PEER TYPE     \| STATE \|  SINCE   \|    INFO     \|/);
    t.match(r.stdout, /\| 198\.18\.1\.1 +\| node specific     \| up    \| \d\d:\d\d:\d\d \| Established \|/);
    t.match(r.stdout, /\| 198\.18\.1\.11 +\| node-to-node mesh \| up    \| \d\d:\d\d:\d\d \| Established \|/);
    t.match(r.stdout, /\| 198\.18\.2\.10 +\| node-to-node mesh \| up    \| \d\d:\d\d:\d\d \| Established \|/);
    t.match(r.stdout, /IPv6 BGP status\nNo IPv6 peers found\.\n/);
  });

  await t.test('serviceClusterIPs / serviceExternalIPs are advertised to the ToR by every node', async (t) => {
    const r = await lab.tortiectl(['apply', '-f', '-'], 'apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n' +
      'spec: {serviceClusterIPs: [{cidr: 198.19.200.0/24}], serviceExternalIPs: [{cidr: 198.19.201.0/24}]}\n');
    t.equal(r.code, 0, r.stderr);
    const routes = await until('ToR has the service CIDRs', () => lab.tor!.routes(), (m) => m.has('198.19.200.0/24') && m.has('198.19.201.0/24'));
    t.ok([...lab.nodes.values()].some((n) => routes.get('198.19.200.0/24') === n.ip), 'via a node');
    const bad = await until('not installed on the nodes', () => tortieRoutes(node('node-a')), () => true);
    t.notMatch(bad, /198\.19\.20[01]/, 'nodes do not route service CIDRs to each other');
  });

  await t.test('agent restart: routes stay at the ToR and the other nodes (graceful restart)', async (t) => {
    const b = node('node-b');
    const gw = await torRoute(w('b-db').ip);
    t.equal(gw, b.ip, 'ToR routes b-db\'s block via node-b');
    let missing = 0;
    let checks = 0;
    let polling = true;
    const watcher = (async () => {
      while (polling) {
        checks++;
        if (await torRoute(w('b-db').ip) !== b.ip) missing++;
        if (!(await tortieRoutes(node('node-a'))).includes(`${bBlock} via ${b.ip}`)) missing++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await b.agent!.kill('SIGTERM');
    t.equal(b.agent!.exitCode, 0, 'agent stopped cleanly (bird shut down for a graceful restart)');
    t.ok(await lab.tcp(w('a-web'), w('b-db'), 5432), 'traffic flows while node-b\'s agent and bird are down');
    lab.startAgent(b);
    await lab.waitReady(b);
    await until('node-b sessions back', async () => (await lab.tor!.sessions()).get(b.ip), (s) => s === 'Established');
    polling = false;
    await watcher;
    t.ok(checks > 5, `watched ${checks} times`);
    t.equal(missing, 0, 'b-db\'s block never left the ToR nor node-a');
  });

  await t.test('mesh off → node-to-node routes gone → route reflector → restored', async (t) => {
    // Without the ToR's routes (its peers deleted) the nodes only have each other.
    const del = await lab.tortiectl(['delete', 'bgppeer', 'tor-node-a', 'tor-node-b', 'tor-node-c']);
    t.equal(del.code, 0, del.stderr);
    await until('ToR lost the blocks', () => lab.tor!.routes(), (r) => r.size === 0);
    // Routes learned from the ToR (eBGP, preferred over the mesh's iBGP) are withdrawn now: wait
    // for node-a to route node-b's block over the mesh before probing.
    await until('node-a routes node-b\'s block over the mesh', () => tortieRoutes(node('node-a')), (s) => s.includes(`${bBlock} via ${node('node-b').ip}`));
    // The switch from the ToR's path to the mesh's is a withdraw and an add in bird and in the
    // route manager: connectivity comes back once both are through, so probe until it does.
    t.ok(await until('mesh: a-web → b-db', () => lab.tcp(w('a-web'), w('b-db'), 5432), (ok) => ok, 20_000), 'mesh: a-web → b-db');
    const off = await lab.tortiectl(['apply', '-f', '-'], 'apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false}\n');
    t.equal(off.code, 0, off.stderr);
    await until('node-a lost node-b\'s block', () => tortieRoutes(node('node-a')), (s) => !s.includes(bBlock));
    t.notOk(await lab.tcp(w('a-web'), w('b-db'), 5432), 'mesh off: a-web → b-db lost');
    const label = await lab.tortiectl(['label', 'nodes', 'node-c', 'route-reflector=true']);
    t.equal(label.code, 0, label.stderr);
    const patch = await lab.tortiectl(['patch', 'node', 'node-c', '-p', '{"spec":{"bgp":{"routeReflectorClusterID":"224.0.0.1"}}}']);
    t.equal(patch.code, 0, patch.stderr);
    const rr = await lab.tortiectl(['apply', '-f', '-'], `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: peer-with-route-reflectors}
spec: {nodeSelector: all(), peerSelector: "route-reflector == 'true'"}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: reflectors-to-clients}
spec: {nodeSelector: "route-reflector == 'true'", peerSelector: "!has(route-reflector)"}
`);
    t.equal(rr.code, 0, rr.stderr);
    await until('node-a has node-b\'s block again (reflected by node-c)', () => tortieRoutes(node('node-a')), (s) => s.includes(`${bBlock} via ${node('node-b').ip}`));
    t.ok(await lab.tcp(w('a-web'), w('b-db'), 5432), 'route reflector: a-web → b-db restored');
    t.ok(await lab.tcp(w('c-web'), w('b-db'), 5432), 'and from the reflector\'s own workload');
  });

  await t.test('a node leaving: its blocks are withdrawn from the others', async (t) => {
    const cBlock = block26(w('c-web').ip);
    // Back to the mesh and the ToR peers for this step.
    const back = await lab.tortiectl(['apply', '-f', '-'], lab.torPeersYaml());
    t.equal(back.code, 0, back.stderr);
    await until('the ToR has node-c\'s block', () => lab.tor!.routes(), (r) => r.has(cBlock));
    await lab.tortiectl(['apply', '-f', '-'], 'apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: true}\n');
    await until('node-a has node-c\'s block', () => tortieRoutes(node('node-a')), (s) => s.includes(cBlock));
    const d = await lab.tortiectl(['delete', 'node', 'node-c']);
    t.equal(d.code, 0, d.stderr);
    for (const n of ['node-a', 'node-b']) {
      await until(`${n} lost node-c's block`, () => tortieRoutes(node(n)), (s) => !s.includes(cBlock));
    }
    await until('the ToR lost node-c\'s block', () => lab.tor!.routes(), (r) => !r.has(cBlock));
    t.pass('withdrawn from the nodes and the ToR');
  });

  const prefix = lab.topo.prefix;
  await lab.destroy();
  t.same(leftoverNamespaces(prefix), [], 'lab namespaces removed');
});
