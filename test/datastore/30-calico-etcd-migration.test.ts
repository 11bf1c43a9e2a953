// Taking over a cluster whose etcd Calico populated: test/fixtures/calico-etcd holds one JSON
// file per key, written as libcalico-go writes them (which struct each file follows:
// test/fixtures/calico-etcd/README.md). They are loaded byte for byte (Go's compact json.Marshal
// form) into a real etcd; then tortiectl and a real agent (real calc graph) read every kind, IPAM
// allocates around Calico's allocations, and tortie's writes are compared byte for byte with
// what libcalico-go would write (test/fixtures/calico-etcd-expected).
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EtcdCluster } from '../../src/testbed/etcd';
import { EtcdDatastore } from '../../src/datastore/etcd';
import { EmbeddedDatastore, decodeValue, encodeValue, resourcePrefix } from '../../src/datastore';
import { KIND_PLURAL, ResourceClient, isNamespaced } from '../../src/client/resources';
import { IpamClient, blockKey, handleKey, ipamCheck, ipamShow } from '../../src/ipam';
import { CalcGraph } from '../../src/calc';
import type { CalcDelta, CompiledState } from '../../src/calc/types';
import { checkResource, type Resource, type ResourceKind } from '../../src/model';
import { Agent, type Dataplane } from '../../src/node/agent';
import { NodeMetrics } from '../../src/node/metrics';
import { silentLogger } from '../../src/util/log';
import { REPO_ROOT, cliFor } from '../cli/helpers/cli';
import { fixtureKeys, goJson } from './helpers/go-json';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'calico-etcd');
const EXPECTED = path.join(REPO_ROOT, 'test', 'fixtures', 'calico-etcd-expected');
const fixtures = (): Map<string, string> => fixtureKeys(FIXTURES);

const POD_A = 'k8s-pod-network.8d3ab1c2e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeeff';
const POD_OLD = 'k8s-pod-network.c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00';
const BLOCK_A = '192.168.10.0/26';

t.test('a Calico-populated etcd: tortie reads every kind, allocates around Calico, writes what libcalico-go reads',
  { skip: fs.existsSync('/usr/bin/etcd') ? false : 'no /usr/bin/etcd on this machine' }, async (t) => {
    const cluster = await EtcdCluster.start(1);
    t.teardown(() => cluster.stop());
    const ds = new EtcdDatastore({ endpoints: cluster.endpoints() });
    t.teardown(() => ds.close());
    const raw = async (key: string): Promise<string | null> => ds.client.get(key).string();
    const fx = fixtures();
    for (const [key, text] of fx) await ds.client.put(key).value(text);
    t.equal(fx.size, 30, 'every fixture key loaded');

    // Every resource Calico wrote is valid in tortie's model, listed under its own name.
    const rc = new ResourceClient(ds);
    const byKind = new Map<ResourceKind, string[]>();
    for (const key of fx.keys()) {
      const m = /^\/calico\/resources\/v3\/projectcalico\.org\/([^/]+)\/(?:[^/]+\/)?([^/]+)$/.exec(key);
      if (!m) continue;
      const kind = (Object.keys(KIND_PLURAL) as ResourceKind[]).find((k) => KIND_PLURAL[k] === m[1]);
      t.ok(kind, `${key}: a kind tortie knows`);
      if (!kind) continue;
      byKind.set(kind, [...(byKind.get(kind) ?? []), m[2]!]);
    }
    t.equal(byKind.size, 14, 'fixtures cover every Calico kind tortie has (all but Namespace)');
    for (const [kind, names] of byKind) {
      const listed = (await rc.list(kind)).items;
      for (const name of names) {
        const r = listed.find((x) => x.metadata.name === name);
        t.ok(r, `${kind} ${name} listed`);
        const checked = checkResource(r);
        t.same(checked.problems, undefined, `${kind} ${name} is valid in tortie's model (the agent would not drop it)`);
      }
    }

    // tortiectl, as a user runs it against that etcd: `get <kind> -A` names every resource.
    const cli = cliFor(t, 'tortiectl-migration-');
    const env = { PATH: process.env.PATH, DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: cluster.endpoints().join(',') };
    for (const [kind, names] of byKind) {
      const out = await cli.run(['get', kind, ...(isNamespaced(kind) ? ['-A'] : []), '-o', 'yaml'], { env });
      t.equal(out.code, 0, `tortiectl get ${kind}: ${out.stderr}`);
      for (const name of names) t.match(out.stdout, `name: ${name}`, `tortiectl get ${kind} shows ${name}`);
    }
    const shown = await cli.run(['ipam', 'show', '--show-blocks'], { env });
    t.equal(shown.code, 0, shown.stderr);
    t.match(shown.stdout, /192\.168\.10\.0\/26/, 'ipam show lists Calico\'s blocks');
    const check = await ipamCheck(ds);
    t.same(check.leaked.map((l) => [l.ip, l.handleId]), [['192.168.10.17', POD_OLD]], 'ipam check finds the address Calico leaked (pod old-1 is gone)');
    t.same([check.unknown, check.duplicate, check.tunnel], [[], [], []], 'and nothing else');
    const spawned = await cli.spawn(['get', 'workloadendpoints', '-A'], { env });
    t.equal(spawned.code, 0, spawned.stderr);
    t.match(spawned.stdout, /db-1 +node-b +192\.168\.20\.65\/32/, 'the installed tortiectl launcher too');
    const usage = await ipamShow(ds);
    t.same(usage.nodes.map((n) => [n.node, n.inUse]), [['node-a', 3], ['node-b', 2]], 'Calico\'s allocations counted per node');

    // A real agent on node-a (real calc graph; a dataplane that records what it is given).
    const graph = new CalcGraph({ nodeName: 'node-a' });
    const seen: CompiledState[] = [];
    const dp: Dataplane = {
      async reconcile(s: CompiledState) { seen.push(s); },
      async apply(_d: CalcDelta) { /* deltas after the first state are not needed here */ },
      async close() { /* nothing held */ },
    };
    const agentDs = new EtcdDatastore({ endpoints: cluster.endpoints() });
    const agent = new Agent({ nodeName: 'node-a', datastore: agentDs, calc: graph, dataplane: dp, log: silentLogger, metrics: new NodeMetrics(false) });
    t.teardown(async () => { await agent.stop(); await agentDs.close(); });
    await agent.start();
    await agent.settled();
    const st = graph.resources;
    t.same([...st.pools.keys()], ['default-ipv4-ippool']);
    t.same([...st.nodes.keys()].sort(), ['node-a', 'node-b']);
    t.same([...st.endpoints.keys()].sort(), ['default/node--a-k8s-web--1-eth0', 'default/node--b-k8s-db--1-eth0']);
    t.same([...st.tiers.keys()].sort(), ['default', 'kube-admin', 'kube-baseline']);
    t.same([...st.policies.keys()].sort(), ['GlobalNetworkPolicy/allow-web-to-db', 'NetworkPolicy/default/web-ingress']);
    t.same([...st.profiles.keys()].sort(), ['kns.default', 'ksa.default.default'], 'the profiles kube-controllers wrote');
    t.same([...st.globalNetworkSets.keys()], ['trusted-outside']);
    t.same([...st.networkSets.keys()], ['default/partners']);
    t.equal(seen.length, 1, 'one reconcile after in-sync');
    t.same(seen[0]!.endpoints.map((e) => e.key), ['default/node--a-k8s-web--1-eth0'], 'node-a\'s own workload is local');
    t.ok(seen[0]!.routing.workloadRoutes.some((r) => r.cidr === '192.168.20.65/32' && r.node === 'node-b'), 'a route to node-b\'s workload');

    // IPAM around Calico's allocations: the next address is the first of Calico's unallocated
    // list (ordinal 1), never one Calico's block marks allocated (0, 5, 17).
    const ipam = new IpamClient(ds);
    const got = await ipam.assign({ handleId: 'tortie-migration.1', node: 'node-a', attrs: { namespace: 'default', pod: 'new-1' } });
    t.same(got.ips.map((x) => x.ip), ['192.168.10.1']);
    t.equal(await raw(blockKey(BLOCK_A)), goJson(path.join(EXPECTED, 'block-192.168.10.0-26-after-assign.json')),
      'the block, byte for byte as libcalico-go\'s AutoAssign writes it');
    t.equal(await raw(handleKey('tortie-migration.1')), goJson(path.join(EXPECTED, 'handle-tortie-migration.1.json')), 'the handle, as Calico writes it');

    // The node keeps the IPIP tunnel address Calico gave it: same handle, assign is idempotent.
    t.equal(await ipam.assignTunnelAddress('node-a'), '192.168.10.0');

    // Releasing a Calico allocation by its handle updates Calico's block and removes its handle.
    t.same(await ipam.releaseByHandle(POD_OLD), ['192.168.10.17']);
    t.equal(await raw(blockKey(BLOCK_A)), goJson(path.join(EXPECTED, 'block-192.168.10.0-26-after-release.json')),
      'the block, byte for byte as libcalico-go\'s ReleaseByHandle writes it');
    t.equal(await raw(handleKey(POD_OLD)), null, 'Calico\'s handle record is gone');
    t.same((await ipam.ipsByHandle(POD_A)).map((x) => x.ip), ['192.168.10.5'], 'Calico\'s other pods keep their addresses');

    // Exhaust node-a's block: tortie never hands out 0 or 5 (still Calico's), and then claims
    // a new block in Calico's format (affinity key, affinity_claim_time, nanosecond sequence).
    const handed = new Set<string>(['192.168.10.1']);
    for (let i = 0; i < 62; i++) {
      const r = await ipam.assign({ handleId: `tortie-fill.${i}`, node: 'node-a' });
      for (const x of r.ips) handed.add(x.ip);
    }
    t.notOk(handed.has('192.168.10.0') || handed.has('192.168.10.5'), 'Calico\'s tunnel and pod addresses were never handed out');
    t.equal([...handed].filter((ip) => ip.startsWith('192.168.10.')).length, 62, 'every other address of Calico\'s block was');
    t.equal(handed.size, 63, 'the 63rd address came from a new block');
    const newBlocks = (await ipam.affineBlockCidrs('node-a')).filter((c) => c !== BLOCK_A);
    t.equal(newBlocks.length, 1, 'then one more block was claimed for node-a');
    const aff = await raw(`/calico/ipam/v2/host/node-a/ipv4/block/${newBlocks[0]!.replace('/', '-')}`);
    t.equal(aff, '{"state":"confirmed","deleted":false}', 'the affinity, as Calico writes it');
    const nb = await raw(blockKey(newBlocks[0]!));
    t.match(nb, new RegExp(`^\\{"cidr":"${newBlocks[0]!.replace(/\./g, '\\.')}","affinity":"host:node-a","affinity_claim_time":"\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ","allocations":\\[`));
    t.match(nb, /"sequenceNumber":\d{19},"sequenceNumberForAllocation":\{"0":\d{19}\},"deleted":false\}$/, 'a nanosecond sequence number, kept exact');

    // Every Calico resource read by tortie and written back unchanged is stored as Calico stored
    // it: the same JSON (fields, values, types); byte for byte where tortie keeps Go's field order.
    const sameBytes: string[] = [];
    for (const [key, text] of fx) {
      const m = /^\/calico\/resources\/v3\/projectcalico\.org\/([^/]+)\/(?:([^/]+)\/)?([^/]+)$/.exec(key);
      if (!m || m[3] === 'default-ipv4-ippool') continue; // the pool is updated below
      const kind = (Object.keys(KIND_PLURAL) as ResourceKind[]).find((k) => KIND_PLURAL[k] === m[1])!;
      const r = (await rc.get(kind, m[3]!, m[2]))!;
      await rc.update(r);
      const back = (await raw(key))!;
      // Calico since October 2025 (projectcalico/calico#11116) omits a rule's empty
      // source/destination; older releases wrote {}:
      // tortie writes the newer form, which every version reads alike.
      const older = kind === 'Profile' ? back.replace(/"action":"Allow"\}/g, '"action":"Allow","source":{},"destination":{}}') : back;
      t.same(JSON.parse(older), JSON.parse(text), `${kind} ${m[3]}: written back as Calico wrote it`);
      if (older === text) sameBytes.push(`${kind} ${m[3]}`);
    }
    t.equal(sameBytes.length, 19, `byte for byte: ${sameBytes.join(', ')}`);

    // Resources tortie writes: Calico's key, Go's field order, uid and creationTimestamp, no
    // resourceVersion; the stored uid survives an apply without one (calicoctl's Update needs it).
    await rc.apply({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkSet', metadata: { name: 'tortie-set', labels: { a: 'b' } }, spec: { nets: ['198.18.5.0/24'] } } as Resource);
    const gns = await raw('/calico/resources/v3/projectcalico.org/globalnetworksets/tortie-set');
    t.match(gns, /^\{"kind":"GlobalNetworkSet","apiVersion":"projectcalico\.org\/v3","metadata":\{"name":"tortie-set","uid":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","creationTimestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ","labels":\{"a":"b"\}\},"spec":\{"nets":\["198\.18\.5\.0\/24"\]\}\}$/);
    const uid = (JSON.parse(gns!) as { metadata: { uid: string } }).metadata.uid;
    await rc.apply({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkSet', metadata: { name: 'tortie-set' }, spec: { nets: ['198.18.6.0/24'] } } as Resource);
    t.equal((JSON.parse((await raw('/calico/resources/v3/projectcalico.org/globalnetworksets/tortie-set'))!) as { metadata: { uid: string } }).metadata.uid, uid, 'uid kept');
    // Updating a Calico-written resource keeps Calico's uid and creationTimestamp.
    const pool = (await rc.get('IPPool', 'default-ipv4-ippool'))!;
    await rc.update({ ...pool, spec: { ...pool.spec, natOutgoing: false } });
    const poolRaw = JSON.parse((await raw('/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool'))!) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
    t.same(poolRaw.metadata, { name: 'default-ipv4-ippool', uid: '6b3e2a7d-8c9f-4e1a-8b5c-6d7e8f9a0b17', creationTimestamp: '2024-05-01T10:00:00Z' });
    t.equal(poolRaw.spec.natOutgoing, undefined, 'natOutgoing false is omitted, as Go omits it');
    // A policy carries the name annotation Calico >= 3.30 writes; tortie hides it on read.
    await rc.apply({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'tortie-deny' }, spec: { selector: "app == 'db'", ingress: [{ action: 'Deny' }] } } as Resource);
    const gnp = JSON.parse((await raw('/calico/resources/v3/projectcalico.org/globalnetworkpolicies/tortie-deny'))!) as { metadata: { annotations: Record<string, string> } };
    t.equal(gnp.metadata.annotations['projectcalico.org/metadata'], '{"name":"tortie-deny"}');
    t.equal((await rc.get('GlobalNetworkPolicy', 'tortie-deny'))!.metadata.annotations, undefined, 'not shown to users');
    // A Namespace (Calico stores none in etcd) goes under tortie's own group.
    await rc.apply({ apiVersion: 'projectcalico.org/v3', kind: 'Namespace', metadata: { name: 'prod' } } as Resource);
    t.ok(await raw('/calico/resources/v3/tortie.io/namespaces/prod'), 'Namespace under /calico/resources/v3/tortie.io/');
    const outside = (await ds.list('/')).items.map((kv) => kv.key).filter((k) => !k.startsWith('/calico/'));
    t.same(outside, [], 'tortie wrote nothing outside /calico/');
  });

t.test('the embedded store uses the same key layout', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-layout-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ds = new EmbeddedDatastore({ dir });
  t.teardown(() => ds.close());
  // Calico's pool, loaded as etcd would hold it, is read by the same client code.
  const poolKey = '/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool';
  await ds.put(poolKey, decodeValue(goJson(path.join(FIXTURES, poolKey + '.json'))));
  const rc = new ResourceClient(ds);
  t.same((await rc.list('IPPool')).items.map((p) => p.metadata.name), ['default-ipv4-ippool']);
  const got = await new IpamClient(ds).assign({ handleId: 'h1', node: 'n1' });
  const keys = (await ds.list('')).items.map((kv) => kv.key);
  t.ok(keys.includes(blockKey(got.ips[0]!.block)) && blockKey(got.ips[0]!.block).startsWith('/calico/ipam/v2/assignment/ipv4/block/'));
  t.ok(keys.includes('/calico/ipam/v2/handle/h1'));
  t.ok(keys.includes(`/calico/ipam/v2/host/n1/ipv4/block/${got.ips[0]!.block.replace('/', '-')}`));
  t.ok(resourcePrefix('ippools').startsWith('/calico/resources/v3/projectcalico.org/'));
  // Sequence numbers beyond 2^53 survive the embedded store's log and reopen exactly.
  await ds.close();
  const again = new EmbeddedDatastore({ dir });
  t.teardown(() => again.close());
  t.match(encodeValue('k', (await again.get(blockKey(got.ips[0]!.block)))!.value), /"sequenceNumber":\d{19},/);
});
