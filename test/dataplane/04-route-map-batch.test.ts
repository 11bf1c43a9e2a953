// The route maps' writes (src/dataplane/routing/route-map.ts) go in BPF_MAP_UPDATE_BATCH calls; a
// batch the kernel refuses is redone entry by entry, so that the mirror holds exactly what is in
// the map when an update throws, and the next write repairs the rest; a full map makes room by
// dropping what the desired state no longer has before writing again. Real LPM tries (the kernel's
// own batch semantics: a refused batch may have written a prefix of its entries).
import t, { type Test } from 'tap';
import { BpfMap } from '../../src/dataplane/native';
import { RouteMaps } from '../../src/dataplane/routing/route-map';
import { lpm4KeyCidr, routeCodec } from '../../src/dataplane/bpf/net-codecs';
import type { UplinkDatapath } from '../../src/dataplane/bpf/loader';
import type { DesiredNetworking } from '../../src/dataplane/routing/plan';

const BPF_F_NO_PREALLOC = 1;

function routes(n: number, from = 0): DesiredNetworking['routes'] {
  return Array.from({ length: n }, (_, i) => ({ cidr: `192.168.${from + i}.0/26`, nextHop: '198.18.0.11', flags: 1 }));
}

function desired(r: DesiredNetworking['routes']): DesiredNetworking {
  return { routes: r, routes6: [] } as unknown as DesiredNetworking;
}

function kernel(m: BpfMap): Map<string, string> {
  const { keys, values } = m.entries();
  return new Map(keys.map((k, i) => [lpm4KeyCidr(k), `${routeCodec.decode(values[i]!).next_hop}/${routeCodec.decode(values[i]!).flags}`]));
}

function setup(t: Test, maxEntries: number): { rm: RouteMaps; rt4: BpfMap } {
  const rt4 = BpfMap.create({ type: 'LPM_TRIE', keySize: 8, valueSize: 8, maxEntries, flags: BPF_F_NO_PREALLOC, name: 'tt_rt4_batch' });
  const rt6 = BpfMap.create({ type: 'LPM_TRIE', keySize: 20, valueSize: 20, maxEntries: 4, flags: BPF_F_NO_PREALLOC, name: 'tt_rt6_batch' });
  t.teardown(() => { rt4.close(); rt6.close(); });
  const maps = { rt4, rt6 } as unknown as UplinkDatapath['maps'];
  return { rm: new RouteMaps(maps), rt4 };
}

t.test('routes written in batches: the map equals the desired state, unchanged entries not rewritten', async (t) => {
  const { rm, rt4 } = setup(t, 20_000);
  rm.writeRoutes(desired(routes(200)));
  t.equal(kernel(rt4).size, 200, 'all 200 routes in the map');
  t.same([...kernel(rt4).keys()].sort(), routes(200).map((r) => r.cidr).sort(), 'exactly the desired prefixes');
  t.equal(rm.size(rt4), 200, 'the mirror counts them');
  const w = rm.writes;
  rm.writeRoutes(desired(routes(200)));
  t.equal(rm.writes, w, 'the same state again writes nothing');
  rm.writeRoutes(desired([...routes(150), ...routes(10, 240)]));
  t.same([...kernel(rt4).keys()].sort(), [...routes(150), ...routes(10, 240)].map((r) => r.cidr).sort(), '50 swept, 10 added');
  t.equal(rm.writes, w + 60, 'only the differences written');
});

t.test('a batch the kernel refuses: entry by entry, the mirror holds what was written, the next write repairs it', async (t) => {
  const { rm, rt4 } = setup(t, 4);
  t.throws(() => rm.writeRoutes(desired(routes(6))), /ENOSPC/, 'six routes into a map of four: the write fails, naming why');
  const k = kernel(rt4);
  t.equal(k.size, 4, 'the map is full (four written)');
  t.equal(rm.size(rt4), 4, 'the mirror holds the four the map holds');
  const w = rm.writes;
  rm.writeRoutes(desired([...k.keys()].map((cidr) => ({ cidr, nextHop: '198.18.0.11', flags: 1 }))));
  t.equal(rm.writes, w, 'the mirror agreed with the map entry for entry: nothing rewritten');
  // A full map whose desired state swaps two routes for two new ones: the writes cannot go first,
  // so the dropped routes make room and the writes run again.
  const keep = [...k.keys()].slice(0, 2).map((cidr) => ({ cidr, nextHop: '198.18.0.11', flags: 1 }));
  rm.writeRoutes(desired([...keep, ...routes(2, 100)]));
  t.same([...kernel(rt4).keys()].sort(), [...keep, ...routes(2, 100)].map((r) => r.cidr).sort(), 'a full map takes a swap: exactly the desired routes');
  t.equal(rm.size(rt4), 4, 'the mirror agrees');
});
