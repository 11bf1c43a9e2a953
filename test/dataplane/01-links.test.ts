import t from 'tap';
import { once } from 'node:events';
import { Topology } from '../../src/util/netns';
import { LinkWatcher, parseLinkList, type LinkInfo } from '../../src/dataplane/links';

t.test('parseLinkList reads ip -j link output', async (t) => {
  const links = parseLinkList(JSON.stringify([
    { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], address: '00:00:00:00:00:00' },
    { ifindex: 7, ifname: 'cali1234567890a', flags: ['BROADCAST'], address: 'ee:ee:ee:ee:ee:ee' },
  ]));
  t.same(links, [
    { name: 'lo', ifindex: 1, up: true, mac: '00:00:00:00:00:00' },
    { name: 'cali1234567890a', ifindex: 7, up: false, mac: 'ee:ee:ee:ee:ee:ee' },
  ]);
  t.throws(() => parseLinkList('not json'));
});

t.test('watcher reports cali* links appearing and disappearing in a node namespace', async (t) => {
  const topo = Topology.create('links');
  t.teardown(() => topo.destroy());
  const node = await topo.addNetns('node');
  const wl = await topo.addNetns('wl');
  await topo.addVeth(node, 'calipre', wl, 'eth0');
  const w = new LinkWatcher({ netns: node.name, filter: (n) => n.startsWith('cali'), resyncMs: 60_000 });
  t.teardown(() => w.stop());
  const initial: LinkInfo[] = [];
  w.on('add', (l: LinkInfo) => initial.push(l));
  await w.start();
  t.same(initial.map((l) => l.name), ['calipre'], 'existing link reported, others filtered out');
  t.equal(w.byName('calipre')?.ifindex, await node.ifindex('calipre'));

  const added = once(w, 'add');
  await topo.addVeth(node, 'calinew', wl, 'eth1');
  const [l] = (await added) as [LinkInfo];
  t.equal(l.name, 'calinew');
  t.equal(l.ifindex, await node.ifindex('calinew'));
  t.equal(w.byIndex(l.ifindex)?.name, 'calinew', 'indexed by ifindex');
  t.equal(w.byName('calinew')?.ifindex, l.ifindex, 'indexed by name');

  const removed = once(w, 'remove');
  await node.exec(['ip', 'link', 'del', 'calinew']);
  const [r] = (await removed) as [LinkInfo];
  t.equal(r.name, 'calinew');
  t.notOk(w.byName('calinew'));
  t.notOk(w.byIndex(r.ifindex), 'gone from both indexes');
});
