import t from 'tap';
import { execFileSync } from 'node:child_process';
import { Topology, leftoverNamespaces } from '../../src/util/netns';

function rootLinks(): string {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').map((l) => l.split(':')[1]?.trim()).sort().join(',');
}

t.test('two namespaces joined by a veth pass traffic; teardown removes everything', async (t) => {
  const before = rootLinks();
  const topo = Topology.create('netns');
  t.teardown(() => topo.destroy());
  const a = await topo.addNetns('a');
  const b = await topo.addNetns('b');
  await topo.addVeth(a, 'eth0', b, 'eth0', { aMac: '02:00:00:00:00:01', mtu: 1400 });
  await a.exec(['ip', 'addr', 'add', '198.18.0.1/30', 'dev', 'eth0']);
  await b.exec(['ip', 'addr', 'add', '198.18.0.2/30', 'dev', 'eth0']);
  const ping = await a.exec(['ping', '-c', '2', '-i', '0.2', '-W', '2', '198.18.0.2']);
  t.match(ping.stdout, /2 received/);
  const link = await a.exec(['ip', '-o', 'link', 'show', 'eth0']);
  t.match(link.stdout, /mtu 1400/);
  t.match(link.stdout, /02:00:00:00:00:01/);
  t.ok((await a.ifindex('eth0')) > 0);
  t.equal(rootLinks(), before, 'root namespace links unchanged');

  const sleeper = b.spawn(['sleep', '300']);
  const exited = new Promise((r) => sleeper.once('exit', r));
  await topo.destroy();
  await exited;
  t.same(leftoverNamespaces(topo.prefix), [], 'namespaces deleted');
  t.equal(rootLinks(), before, 'root namespace links still unchanged');
});

t.test('a failing command rejects with its stderr; allowFail resolves', async (t) => {
  const topo = Topology.create('netnsfail');
  t.teardown(() => topo.destroy());
  const a = await topo.addNetns('a');
  await t.rejects(a.exec(['ip', 'link', 'show', 'nosuchdev']), { code: 'ERR_NETNS_COMMAND', message: /nosuchdev/ });
  const r = await a.exec(['ip', 'link', 'show', 'nosuchdev'], { allowFail: true });
  t.not(r.code, 0);
  await t.rejects(topo.addVeth(a, 'an-interface-name-too-long', a, 'x'), /bad interface name/);
});
