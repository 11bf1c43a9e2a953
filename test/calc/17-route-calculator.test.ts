/**
 * RouteCalculator is a calc graph node of its own (routing is not the policy compiler's): fed
 * alone from a ResourceState, in any order, it gives the routing part of CalcGraph's output.
 * Random sequences of endpoints (local and remote, some sharing an address), nodes, pools and
 * deletions, flushed at random points: after each flush the standalone node's delta equals the
 * routing fields of the graph's delta, the deltas applied to a mirror give its snapshot, and the
 * snapshot equals a reference computed from the resources. The final resources fed in one flush,
 * in order and reversed: the same final snapshot.
 */
import t from 'tap';
import { CalcGraph, ResourceState, resourceKey, RouteCalculator, type RouteDelta, type RoutingState } from '../../src/calc';
import type { IPPool, Resource, ResourceKind, WorkloadEndpoint } from '../../src/model';
import { node, wep } from '../../src/testbed/fixtures';
import { Gen, rng } from '../../src/testbed/fuzz/random';
import ipaddr from 'ipaddr.js';

type Event = { op: 'upsert'; r: Resource } | { op: 'delete'; kind: ResourceKind; key: string };

const NODES = ['node1', 'node2', 'node3'];

function pool(name: string, cidr: string, ipipMode: 'Always' | 'CrossSubnet' | 'Never', natOutgoing: boolean): IPPool {
  return { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr, ipipMode, natOutgoing } };
}

function events(g: Gen, n: number): Event[] {
  const out: Event[] = [];
  for (let i = 0; i < n; i++) {
    const k = g.int(10);
    if (k < 6) {
      // Few addresses for many endpoints: owners collide, and an address moves between nodes.
      const ips = g.some(['192.168.0.1', '192.168.0.2', '192.168.1.7', '192.168.9.0/30', 'fd00::1', 'fd00:10:0:0::2', 'fd00:10::1:0/124', 'not-an-ip'], 2);
      out.push({ op: 'upsert', r: wep(`ns${g.int(2)}/w${g.int(6)}`, { ip: ips, node: g.pick(NODES) }) });
    } else if (k < 7) {
      out.push({ op: 'delete', kind: 'WorkloadEndpoint', key: `ns${g.int(2)}/w${g.int(6)}` });
    } else if (k < 8) {
      out.push({ op: 'upsert', r: node(g.pick(NODES), {}, `198.18.0.${10 + g.int(3)}/24`) });
    } else if (k < 9) {
      out.push({ op: 'upsert', r: pool(`pool${g.int(2)}`, g.pick(['192.168.0.0/16', '192.168.0.0/24']), g.pick(['Always', 'CrossSubnet', 'Never'] as const), g.chance(0.5)) });
    } else {
      out.push(g.chance(0.5) ? { op: 'delete', kind: 'Node', key: g.pick(NODES) } : { op: 'delete', kind: 'IPPool', key: `pool${g.int(2)}` });
    }
  }
  return out;
}

/** The standalone node with its own store, fed as CalcGraph feeds it. */
class Standalone {
  readonly resources = new ResourceState();
  readonly routes = new RouteCalculator(this.resources, 'node1');
  apply(e: Event): void {
    if (e.op === 'upsert') {
      this.routes.mark(e.r.kind, resourceKey(e.r));
      this.resources.upsert(e.r);
    } else {
      this.routes.mark(e.kind, e.key);
      this.resources.delete(e.kind, e.key);
    }
  }
  flush(): RouteDelta {
    const d: RouteDelta = { routingChanged: false, workloadRoutesUpserted: [], workloadRoutesRemoved: [] };
    this.routes.emit(d);
    return d;
  }
}

function feed(g: CalcGraph, e: Event): void {
  if (e.op === 'upsert') g.onUpdate(e.r);
  else g.onDelete(e.kind, e.key);
}

/**
 * Routes straight from the resources: every address of an endpoint on another node (IPv4, and
 * IPv6 in the compressed form), to the node of its smallest-key owner; IPv4 first.
 */
function referenceRoutes(eps: Iterable<WorkloadEndpoint>): { cidr: string; node: string }[] {
  const owner = new Map<string, { key: string; node: string; sort: number[] }>();
  for (const w of eps) {
    if (w.spec.node === 'node1') continue;
    const key = `${w.metadata.namespace}/${w.metadata.name}`;
    for (const n of w.spec.ipNetworks ?? []) {
      let cidr: string;
      let sort: number[];
      const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(n);
      if (m !== null) {
        cidr = n;
        sort = [4, ...n.split(/[./]/).map(Number)];
      } else if (n.includes(':') && ipaddr.IPv6.isValidCIDR(n)) {
        const len = ipaddr.IPv6.parseCIDR(n)[1];
        const net = ipaddr.IPv6.networkAddressFromCIDR(n);
        cidr = `${net.toString()}/${len}`;
        sort = [6, ...net.toByteArray(), len];
      } else continue;
      const cur = owner.get(cidr);
      if (cur === undefined || key < cur.key) owner.set(cidr, { key, node: w.spec.node!, sort });
    }
  }
  return [...owner]
    .sort((a, b) => {
      const x = a[1].sort;
      const y = b[1].sort;
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
      return 0;
    })
    .map(([cidr, o]) => ({ cidr, node: o.node }));
}

function finalSnapshot(evs: Event[]): RoutingState {
  const s = new Standalone();
  for (const e of evs) s.apply(e);
  s.flush();
  return s.routes.snapshot();
}

t.test('RouteCalculator alone gives CalcGraph routing output, deltas rebuild its snapshot, any order', async (t) => {
  for (let seed = 1; seed <= 40; seed++) {
    const g = new Gen(rng(seed));
    const evs = events(g, 60);
    const graph = new CalcGraph({ nodeName: 'node1' });
    const alone = new Standalone();
    let routing: RoutingState | undefined;
    const mirror = new Map<string, string>();
    let flushes = 0;
    for (let i = 0; i < evs.length; i++) {
      feed(graph, evs[i]!);
      alone.apply(evs[i]!);
      if (i < evs.length - 1 && !g.chance(0.3)) continue;
      flushes++;
      const gd = graph.flush();
      const ad = alone.flush();
      const fromGraph: RouteDelta = { routingChanged: gd.routingChanged, workloadRoutesUpserted: gd.workloadRoutesUpserted, workloadRoutesRemoved: gd.workloadRoutesRemoved };
      if (gd.routing !== undefined) fromGraph.routing = gd.routing;
      t.same(ad, fromGraph, `seed ${seed} flush ${flushes}: the node's delta is the graph's routing delta`);
      if (ad.routing !== undefined) routing = ad.routing;
      for (const c of ad.workloadRoutesRemoved) mirror.delete(c);
      for (const r of ad.workloadRoutesUpserted) mirror.set(r.cidr, r.node);
      const snap = alone.routes.snapshot();
      t.same(graph.snapshot().routing, snap, `seed ${seed} flush ${flushes}: same snapshot as the graph`);
      t.same({ pools: snap.pools, nodes: snap.nodes }, { pools: routing?.pools ?? [], nodes: routing?.nodes ?? [] }, `seed ${seed}: routing deltas give the snapshot`);
      t.same([...mirror].map(([cidr, node]) => ({ cidr, node })).sort((a, b) => (a.cidr < b.cidr ? -1 : 1)), [...snap.workloadRoutes].sort((a, b) => (a.cidr < b.cidr ? -1 : 1)), `seed ${seed}: route deltas give the snapshot`);
      t.same(snap.workloadRoutes, referenceRoutes(alone.resources.endpoints.values()), `seed ${seed}: routes as the reference computes them`);
      t.same(snap.pools.map((p) => p.name), [...alone.resources.pools.keys()].sort(), `seed ${seed}: every pool, by name`);
      t.same(snap.nodes.map((n) => n.name), [...alone.resources.nodes.keys()].sort(), `seed ${seed}: every node, by name`);
    }
    const final = alone.routes.snapshot();
    t.same(finalSnapshotOfState(alone.resources), final, `seed ${seed}: squashed into one flush`);
    t.same(finalSnapshotOfState(alone.resources, true), final, `seed ${seed}: the state fed in reverse`);
  }
});

/** The snapshot of a node fed the current resources of a store, in one flush (optionally reversed). */
function finalSnapshotOfState(s: ResourceState, reversed = false): RoutingState {
  const rs: Resource[] = [...s.pools.values(), ...s.nodes.values(), ...s.endpoints.values()];
  if (reversed) rs.reverse();
  return finalSnapshot(rs.map((r) => ({ op: 'upsert', r })));
}
