// The node's IPv6 address, as calico/node takes it: IP6 (none by default, autodetect, or an
// address) and IP6_AUTODETECTION_METHOD, written to the Node's spec.bgp.ipv6Address beside the
// IPv4 one; `tortiectl get nodes -o wide` shows it in calicoctl's IPV6 column. Detection itself
// in a namespace with ULA addresses: test/net/02-netns.
import t from 'tap';
import { join } from 'node:path';
import { resolveConfig } from '../../src/node/config';
import { registerNode } from '../../src/node/run';
import { ResourceClient } from '../../src/client/resources';
import { EmbeddedDatastore } from '../../src/datastore';
import { silentLogger } from '../../src/util/log';
import { Topology } from '../../src/util/netns';
import { cliFor } from '../cli/helpers/cli';

t.test('IP6 and IP6_AUTODETECTION_METHOD: defaults, environment, flags, refusals naming the variable', async (t) => {
  const d = resolveConfig({ nodeName: 'n1' }, {});
  t.equal(d.ip6, 'none', 'no IPv6 address unless asked for (calico/node\'s default)');
  t.equal(d.ip6AutodetectionMethod, 'first-found');
  const e = resolveConfig({ nodeName: 'n1' }, { IP6: 'autodetect', IP6_AUTODETECTION_METHOD: 'interface=eth1' });
  t.same([e.ip6, e.ip6AutodetectionMethod], ['autodetect', 'interface=eth1']);
  const f = resolveConfig({ nodeName: 'n1', ip6: 'fd00:2::10/64', ip6AutodetectionMethod: 'can-reach=fd00:99::1' }, { IP6: 'autodetect' });
  t.same([f.ip6, f.ip6AutodetectionMethod], ['fd00:2::10/64', 'can-reach=fd00:99::1'], 'flags win over the environment');
  t.equal(resolveConfig({ nodeName: 'n1' }, { IP6: 'NONE' }).ip6, 'none');
  t.throws(() => resolveConfig({ nodeName: 'n1' }, { IP6: '10.0.2.10/24' }), { message: /IP6: "10\.0\.2\.10\/24" is not "autodetect", "none" or an IPv6 address/ });
  t.throws(() => resolveConfig({ nodeName: 'n1', ip6: 'fd00::zz' }), { message: /--ip6: "fd00::zz"/ });
});

t.test('registerNode writes spec.bgp.ipv6Address beside ipv4Address; get nodes -o wide shows it', async (t) => {
  const cli = cliFor(t, 'tortie-node-ip6-');
  const ds = new EmbeddedDatastore({ dir: cli.storeDir });
  t.teardown(() => ds.close());
  const rc = new ResourceClient(ds);
  const n = await registerNode(rc, 'node1', '198.18.1.10/24', silentLogger, 'fd00:1::10/64');
  t.same(n.spec.bgp, { ipv4Address: '198.18.1.10/24', ipv6Address: 'fd00:1::10/64' });
  await rc.update({ ...n, spec: { ...n.spec, bgp: { ...n.spec.bgp, asNumber: 64600 } } });
  const kept = await registerNode(rc, 'node1', '198.18.1.10/24', silentLogger, undefined);
  t.equal(kept.spec.bgp?.ipv6Address, 'fd00:1::10/64', 'IP6 none: the stored IPv6 address is kept');
  const moved = await registerNode(rc, 'node1', '198.18.1.10/24', silentLogger, 'fd00:2::10/80');
  t.same(moved.spec.bgp, { ipv4Address: '198.18.1.10/24', ipv6Address: 'fd00:2::10/80', asNumber: 64600 }, 'a new IPv6 address replaces it; the rest stays');
  await registerNode(rc, 'node2', undefined, silentLogger, 'fd00:1::11/64');
  t.same(await cli.run(['get', 'nodes', '-o', 'wide']), {
    code: 0, stderr: '',
    stdout: 'NAME    ASN       IPV4             IPV6            \n' +
            'node1   64600     198.18.1.10/24   fd00:2::10/80   \n' +
            'node2   (64512)                    fd00:1::11/64   \n\n',
  }, 'calicoctl\'s columns: the IPv6 address with its subnet');
});

t.test('resolveNodeAddress6 in a namespace: IP6=autodetect finds the ULA address, IP6=none nothing', async (t) => {
  const topo = Topology.create('ip6node');
  t.teardown(() => topo.destroy());
  const node = await topo.addNetns('node');
  const peer = await topo.addNetns('peer');
  await topo.addVeth(node, 'eth0', peer, 'eth0');
  await node.exec(['ip', '-6', 'addr', 'add', 'fd00:1::10/64', 'dev', 'eth0', 'nodad']);
  // Run in a child inside the namespace: detection acts in the caller's namespace.
  const script = `const {resolveConfig}=require(${JSON.stringify(join(__dirname, '../../src/node/config.js'))});` +
    `const {resolveNodeAddress6}=require(${JSON.stringify(join(__dirname, '../../src/node/run.js'))});` +
    'resolveNodeAddress6(resolveConfig({nodeName:"n1"},process.env)).then((d)=>console.log(JSON.stringify(d??null)),(e)=>{console.log(JSON.stringify({error:e.message}));});';
  const run = async (env: Record<string, string>): Promise<unknown> => {
    const r = await node.exec(['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, '-e', script]);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  t.match(await run({ IP6: 'autodetect' }), { address: 'fd00:1::10/64', ifname: 'eth0' });
  t.equal(await run({ IP6: 'none' }), null);
  t.match(await run({ IP6: 'autodetect', IP6_AUTODETECTION_METHOD: 'interface=nomatch' }), { error: /^IP6: IPv6 IP autodetection \(interface=nomatch\): no interface address qualifies/ });
});
