import t from 'tap';
import { once } from 'node:events';
import { Topology } from '../../src/util/netns';
import { LinkWatcher, parseLinkList, parseMonitorLine, type LinkInfo } from '../../src/dataplane/links';

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

t.test('parseMonitorLine reads ip -o monitor link lines (captured from iproute2 6.1)', async (t) => {
  const add = parseMonitorLine('3: cali1@x@p1: <NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN> mtu 1500 qdisc noqueue state LOWERLAYERDOWN group default \\    link/ether fe:7e:4d:1c:68:88 brd ff:ff:ff:ff:ff:ff');
  t.same(add, { deleted: false, ifindex: 3, label: 'cali1@x@p1', up: true, mtu: 1500, mac: 'fe:7e:4d:1c:68:88' });
  const del = parseMonitorLine('Deleted 2: p2@NONE: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff');
  t.same(del, { deleted: true, ifindex: 2, label: 'p2@NONE', up: false, mtu: 1500, mac: '02:00:00:00:00:01' });
  t.equal(parseMonitorLine('garbage'), undefined);
});

t.test('watcher follows renames, up/down and names containing @ without missing or inventing links', async (t) => {
  const topo = Topology.create('linkr');
  t.teardown(() => topo.destroy());
  const node = await topo.addNetns('node');
  const wl = await topo.addNetns('wl');
  const w = new LinkWatcher({ netns: node.name, filter: (n) => n.startsWith('cali'), resyncMs: 60_000 });
  t.teardown(() => w.stop());
  await w.start();
  const events: string[] = [];
  w.on('add', (l: LinkInfo) => events.push(`add ${l.name} ${l.up}`));
  w.on('change', (l: LinkInfo) => events.push(`change ${l.name} ${l.up}`));
  w.on('remove', (l: LinkInfo) => events.push(`remove ${l.name}`));
  const until = async (what: () => boolean): Promise<void> => {
    for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 10));
    t.ok(what(), `reached: ${events.join(' | ')}`);
  };
  await topo.addVeth(node, 'calistart', wl, 'eth0');
  await until(() => w.byName('calistart') !== undefined);
  await node.exec(['ip', 'link', 'set', 'calistart', 'name', 'cali@odd']);
  await until(() => w.byName('cali@odd') !== undefined);
  t.equal(w.byName('cali@odd')?.ifindex, await node.ifindex('cali@odd'), 'a name containing @ is read whole');
  t.notOk(w.byName('cali'), 'no link invented from the part before @');
  await node.exec(['ip', 'link', 'set', 'cali@odd', 'up']);
  await until(() => w.byName('cali@odd')?.up === true);
  await node.exec(['ip', 'link', 'set', 'cali@odd', 'down']);
  await node.exec(['ip', 'link', 'set', 'cali@odd', 'name', 'calirenamed']);
  await until(() => w.byName('calirenamed') !== undefined && !w.byName('cali@odd'));
  t.equal(w.byName('calirenamed')?.up, false);
  await node.exec(['ip', 'link', 'set', 'calirenamed', 'name', 'other']);
  await until(() => w.list().length === 0);
  t.same(w.list(), [], 'renamed out of the filter: forgotten');
  await node.exec(['ip', 'link', 'set', 'other', 'name', 'calib']);
  await until(() => w.byName('calib') !== undefined);
  await node.exec(['ip', 'link', 'del', 'calib']);
  await until(() => w.list().length === 0);
  t.same(w.list(), []);
});
