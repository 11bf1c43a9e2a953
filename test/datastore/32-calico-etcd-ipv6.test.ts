// A dual-stack cluster whose etcd Calico populated: test/fixtures/calico-etcd-ipv6 holds one JSON
// file per key as libcalico-go writes them (an IPv6 pool as calico/node creates it from
// CALICO_IPV6POOL_CIDR, a Node with spec.bgp.ipv6Address, a pod with an address of each family,
// IPv6 blocks, affinities and handles under /calico/ipam/v2/…/ipv6/…; see
// test/fixtures/calico-etcd/README.md). Loaded byte for byte into a real etcd; tortie reads
// them, allocates around Calico's IPv6 allocations and writes what libcalico-go would write
// (test/fixtures/calico-etcd-ipv6-expected), byte for byte.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdCluster } from '../../src/testbed/etcd';
import { EtcdDatastore } from '../../src/datastore/etcd';
import { KIND_PLURAL, ResourceClient } from '../../src/client/resources';
import { IpamClient, blockKey, handleKey, ipamCheck, ipamShow } from '../../src/ipam';
import { checkResource, type ResourceKind } from '../../src/model';
import { REPO_ROOT, cliFor } from '../cli/helpers/cli';
import { fixtureKeys, goJson } from './helpers/go-json';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'calico-etcd-ipv6');
const EXPECTED = path.join(REPO_ROOT, 'test', 'fixtures', 'calico-etcd-ipv6-expected');
const POD = 'k8s-pod-network.5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f';
const OLD = 'k8s-pod-network.0ddba11000000000000000000000000000000000000000000000000000000000';
const B6 = 'fd00:10::3a4b:19c2:e5f0:1c0/122';

t.test('a dual-stack Calico etcd: tortie reads the IPv6 pieces, allocates around them, writes what libcalico-go writes',
  { skip: fs.existsSync('/usr/bin/etcd') ? false : 'no /usr/bin/etcd on this machine' }, async (t) => {
    const cluster = await EtcdCluster.start(1);
    t.teardown(() => cluster.stop());
    const ds = new EtcdDatastore({ endpoints: cluster.endpoints() });
    t.teardown(() => ds.close());
    const raw = async (key: string): Promise<string | null> => ds.client.get(key).string();
    const fx = fixtureKeys(FIXTURES);
    for (const [key, text] of fx) await ds.client.put(key).value(text);
    t.equal(fx.size, 10, 'every fixture key loaded');
    t.ok(fx.has(`/calico/ipam/v2/assignment/ipv6/block/${B6.replace('/', '-')}`), 'the IPv6 block under Calico\'s key');

    const rc = new ResourceClient(ds);
    for (const key of fx.keys()) {
      const m = /^\/calico\/resources\/v3\/projectcalico\.org\/([^/]+)\/(?:([^/]+)\/)?([^/]+)$/.exec(key);
      if (!m) continue;
      const kind = (Object.keys(KIND_PLURAL) as ResourceKind[]).find((k) => KIND_PLURAL[k] === m[1])!;
      const r = await rc.get(kind, m[3]!, m[2]);
      t.same(checkResource(r).problems, undefined, `${kind} ${m[3]} is valid in tortie's model`);
      // Read and written back unchanged: Calico's bytes.
      await rc.update(r!);
      t.equal(await raw(key), fx.get(key), `${kind} ${m[3]}: written back byte for byte`);
    }
    t.equal((await rc.get('Node', 'node-a'))!.spec.bgp?.ipv6Address, 'fd00:1::10/64');
    t.equal((await rc.get('IPPool', 'default-ipv6-ippool'))!.spec.blockSize, 122);

    const ipam = new IpamClient(ds);
    t.same((await ipam.ipsByHandle(POD)).map((x) => x.cidr), ['192.168.10.0/32', 'fd00:10::3a4b:19c2:e5f0:1c0/128'], 'Calico\'s dual-stack handle: both addresses');
    t.same(await ipam.affineBlockCidrs('node-a', 6), [B6], 'Calico\'s IPv6 affinity index');
    const check = await ipamCheck(ds);
    t.same(check.leaked.map((l) => [l.ip, l.handleId]), [['fd00:10::3a4b:19c2:e5f0:1c1', OLD]], 'ipam check finds the IPv6 address Calico leaked');
    t.same([check.unknown, check.duplicate], [[], []], 'the pod\'s IPv6 address is known (endpoint and allocation agree)');
    const usage = await ipamShow(ds);
    t.same(usage.pools.map((p) => [p.name, p.inUse]), [['default-ipv4-ippool', 1], ['default-ipv6-ippool', 2]]);

    // tortiectl against that etcd: the IPV6 column and the v6 pool.
    const cli = cliFor(t, 'tortiectl-migration6-');
    const env = { PATH: process.env.PATH, DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: cluster.endpoints().join(',') };
    const nodes = await cli.run(['get', 'nodes', '-o', 'wide'], { env });
    t.match(nodes.stdout, /^NAME +ASN +IPV4 +IPV6 +\nnode-a +\(64512\) +198\.18\.1\.10\/24 +fd00:1::10\/64 +\n/);
    const shown = await cli.run(['ipam', 'show', '--show-blocks'], { env });
    t.match(shown.stdout, /\| Block +\| fd00:10::3a4b:19c2:e5f0:1c0\/122 +\| +64 \| 2 \(3%\)/);

    // IPv6 IPAM around Calico's allocations: the first of Calico's unallocated list (ordinal 3;
    // 2 was released and waits at the end), written as libcalico-go's AutoAssign writes it.
    const got = await ipam.assign({ handleId: 'tortie-migration.1', node: 'node-a', family: 6, attrs: { namespace: 'default', pod: 'new-1' } });
    t.same(got.ips.map((x) => x.ip), ['fd00:10::3a4b:19c2:e5f0:1c3']);
    t.equal(await raw(blockKey(B6)), goJson(path.join(EXPECTED, 'block-fd00:10::3a4b:19c2:e5f0:1c0-122-after-assign.json')),
      'the IPv6 block, byte for byte as libcalico-go writes it');
    t.equal(await raw(handleKey('tortie-migration.1')), goJson(path.join(EXPECTED, 'handle-tortie-migration.1.json')));
    t.same(await ipam.releaseByHandle(OLD), ['fd00:10::3a4b:19c2:e5f0:1c1']);
    t.equal(await raw(blockKey(B6)), goJson(path.join(EXPECTED, 'block-fd00:10::3a4b:19c2:e5f0:1c0-122-after-release.json')),
      'and after ReleaseByHandle');
    t.equal(await raw(handleKey(OLD)), null);
    t.same((await ipam.ipsByHandle(POD)).length, 2, 'the pod keeps both addresses');
  });
