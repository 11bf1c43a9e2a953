// Underlay next hops asked of a real kernel (a namespace of its own): many at once in one
// `ip -batch` (prefetchNextHops) give the same answers as one `ip route get` each (nextHop); an
// address with no route gets no answer from the batch and nextHop still reports it.
import t from 'tap';
import { Topology } from '../../src/util/netns';
import { KernelRoutes } from '../../src/dataplane/routing/kernel-routes';
import { silentLogger } from '../../src/util/log';

t.test('prefetchNextHops = nextHop per address, unreachable ones left to nextHop', async (t) => {
  const topo = Topology.create('nexthops');
  t.teardown(() => topo.destroy());
  const n = await topo.addNetns('node');
  const peer = await topo.addNetns('peer');
  await topo.addVeth(n, 'eth0', peer, 'eth0');
  await n.sh('ip addr add 198.18.0.1/24 dev eth0 && ip link set eth0 up && ip route add 198.18.5.0/24 via 198.18.0.254 dev eth0 && ip route add 198.18.6.0/24 via 198.18.0.253 dev eth0');
  const addrs = ['198.18.5.7', '198.18.6.9', '198.18.0.9', '198.18.5.8', '198.18.9.9', '198.18.5.7'];
  const batched = new KernelRoutes({ proto: 122, netns: n.name, log: silentLogger });
  await batched.prefetchNextHops(addrs);
  t.same(Object.fromEntries(batched.nextHops), {
    '198.18.5.7': '198.18.0.254', '198.18.5.8': '198.18.0.254', '198.18.6.9': '198.18.0.253', '198.18.0.9': '198.18.0.9',
  }, 'routed via their gateways, on-link to themselves; 198.18.9.9 (no route) has no answer');
  const single = new KernelRoutes({ proto: 122, netns: n.name, log: silentLogger });
  for (const a of ['198.18.5.7', '198.18.6.9', '198.18.0.9', '198.18.5.8']) t.equal(await single.nextHop(a), batched.nextHops.get(a), a);
  await t.rejects(batched.nextHop('198.18.9.9'), { code: 'ERR_ROUTES_UNREACHABLE' }, 'nextHop reports the unreachable one');
  await batched.prefetchNextHops(['198.18.5.7', '198.18.6.9']);
  t.equal(batched.nextHops.size, 4, 'cached addresses are not asked again');
});
