/**
 * BGP benchmark. Prints figures; asserts nothing.
 *
 *   node dist/bench/bgp-bench.js [--nodes-routes 100] [--endpoints 10000] [--bird-nodes 10] [--samples 10]
 *
 * 1. Routes and route-map entries on one node of a 100-node cluster with 10,000 endpoints,
 *    before (routeSource datastore: one /32 per remote workload) and after (routeSource bgp: one
 *    route per remote block). The endpoints are real IPAM allocations (IpamClient, embedded
 *    store, blockSize 26); both sets are programmed by the real route manager into a node
 *    namespace and counted there (`ip route show proto 122`, the rt4 map). The BGP set is the
 *    blocks affine to the other nodes — what their birds advertise (render.ts's tortie_blocks).
 * 2. Propagation: on a cluster of N bird2 nodes (BgpDriver + BirdDaemon each, node-to-node mesh)
 *    plus an FRR ToR peering with all of them (a global BGPPeer), the time from a node's first
 *    workload address in a new block (IpamClient.assign returned) until the ToR has the block's
 *    route and until every other node has it in its learned table.
 * Everything runs in namespaces this process creates and removes (src/util/netns).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlatCluster, SingleNode, run, pinRoot as newPinRoot, type Netns } from '../src/testbed';
import { EmbeddedDatastore } from '../src/datastore';
import { ResourceClient } from '../src/client/resources';
import { IpamClient } from '../src/ipam';
import { RouteManager } from '../src/dataplane/routing';
import { BirdDaemon } from '../src/bgp/bird';
import { BgpDriver } from '../src/bgp/driver';
import { FrrTor } from '../src/lab/tor';
import { silentLogger } from '../src/util/log';
import { validateResource, type Resource } from '../src/model';
import type { RoutingState } from '../src/calc/types';
import { median } from './lib/stats';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const ROUTE_NODES = arg('nodes-routes', 100);
const ENDPOINTS = arg('endpoints', 10_000);
const BIRD_NODES = arg('bird-nodes', 10);
const SAMPLES = arg('samples', 10);

const V3 = 'projectcalico.org/v3';
const res = (kind: string, name: string, spec: unknown): Resource => validateResource({ apiVersion: V3, kind, metadata: { name }, spec });
const nodeIp = (i: number) => `198.18.${1 + Math.floor(i / 200)}.${10 + (i % 200)}`;

async function routeCounts(dir: string): Promise<void> {
  const ds = new EmbeddedDatastore({ dir: path.join(dir, 'store-routes') });
  const bed = await SingleNode.create('bgpbench', { nodeIp: '198.18.0.2', outsideIp: '198.18.0.1', prefix: 16 });
  const pinRoot = newPinRoot('bgpbench', { create: false });
  try {
    const rc = new ResourceClient(ds);
    await rc.create(res('IPPool', 'pods', { cidr: '192.168.0.0/16' }) as never);
    const ipam = new IpamClient(ds);
    const perNode = Math.floor(ENDPOINTS / ROUTE_NODES);
    const wl: { cidr: string; node: string }[] = [];
    const t0 = performance.now();
    for (let i = 0; i < ROUTE_NODES; i++) {
      const r = await ipam.assign({ handleId: `h${i}`, node: `node-${i}`, num: perNode });
      for (const ip of r.ips) wl.push({ cidr: ip.cidr, node: `node-${i}` });
    }
    const blocks = new Map<string, string>();
    for (const kv of (await ds.list('/calico/ipam/v2/assignment/ipv4/block/')).items) {
      const b = kv.value as { cidr: string; affinity: string | null };
      if (b.affinity?.startsWith('host:')) blocks.set(b.cidr, b.affinity.slice(5));
    }
    process.stdout.write(`  ${wl.length} endpoints on ${ROUTE_NODES} nodes allocated by IPAM in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${blocks.size} blocks\n`);

    const ns = bed.node;
    const routing: RoutingState = {
      pools: [{ name: 'pods', cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, disabled: false, blockSize: 26 }],
      nodes: [{ name: 'node-0', ipv4Address: '198.18.0.2/16' }, ...Array.from({ length: ROUTE_NODES - 1 }, (_, i) => ({ name: `node-${i + 1}`, ipv4Address: `${nodeIp(i + 1)}/16` }))],
      workloadRoutes: wl,
    };
    const count = async (m: RouteManager) => ({
      kernel: (await ns.exec(['ip', '-4', 'route', 'show', 'proto', '122'])).stdout.split('\n').filter(Boolean).length,
      map: m.maps.rt4.keys().length,
    });
    const netns = { name: ns.name, path: ns.path };
    const before = await RouteManager.open({ pinRoot, netns });
    before.setState('node-0', routing);
    let t = performance.now();
    await before.apply();
    const applyBefore = performance.now() - t;
    const cBefore = await count(before);
    before.close();
    const after = await RouteManager.open({ pinRoot, netns, routeSource: 'bgp' });
    after.setState('node-0', routing);
    after.setLearnedRoutes(new Map([...blocks].filter(([, n]) => n !== 'node-0')));
    t = performance.now();
    await after.apply(); // reconcile: sweeps the /32s and writes the blocks
    const cAfter = await count(after);
    after.setLearnedRoutes(new Map([...blocks].filter(([, n]) => n !== 'node-0')));
    after.close();
    const fresh = await RouteManager.open({ pinRoot: `${pinRoot}-fresh`, netns, routeSource: 'bgp' });
    await ns.sh('ip route flush proto 122');
    fresh.setState('node-0', routing);
    fresh.setLearnedRoutes(new Map([...blocks].filter(([, n]) => n !== 'node-0')));
    t = performance.now();
    await fresh.apply();
    const applyAfter = performance.now() - t;
    fresh.close();
    fs.rmSync(`${pinRoot}-fresh`, { recursive: true, force: true });
    process.stdout.write(`  routes on node-0 (${ROUTE_NODES} nodes, ${wl.length} endpoints):\n`);
    process.stdout.write(`    datastore mode (per workload): ${cBefore.kernel} kernel routes, ${cBefore.map} rt4 entries, first apply ${applyBefore.toFixed(0)} ms\n`);
    process.stdout.write(`    bgp mode (per block):          ${cAfter.kernel} kernel routes, ${cAfter.map} rt4 entries, first apply ${applyAfter.toFixed(0)} ms\n`);
    process.stdout.write(`    ratio: ${(cBefore.kernel / Math.max(1, cAfter.kernel)).toFixed(1)}× fewer kernel routes, ${(cBefore.map / Math.max(1, cAfter.map)).toFixed(1)}× fewer route-map entries\n`);
  } finally {
    bed.destroySync();
    fs.rmSync(pinRoot, { recursive: true, force: true });
    await ds.close();
  }
}

async function propagation(dir: string): Promise<void> {
  const ds = new EmbeddedDatastore({ dir: path.join(dir, 'store-prop') });
  const bed = await FlatCluster.create('bgpprop');
  const drivers: BgpDriver[] = [];
  let tor: FrrTor | undefined;
  try {
    const rc = new ResourceClient(ds);
    await rc.create(res('IPPool', 'pods', { cidr: '192.168.0.0/16' }) as never);
    await rc.create(res('BGPPeer', 'tor', { peerIP: '198.18.1.1', asNumber: 65001 }) as never);
    const torNs = await bed.attach('tor', 'ptor', '198.18.1.1/24');
    const nodes: { name: string; ip: string; ns: Netns }[] = [];
    for (let i = 0; i < BIRD_NODES; i++) {
      const n = await bed.addNode(i);
      await rc.create(res('Node', n.name, { bgp: { ipv4Address: `${n.ip}/24` } }) as never);
      nodes.push(n);
    }
    tor = new FrrTor(torNs, '198.18.1.1', 65001);
    await tor.start(nodes.map((n) => ({ ip: n.ip, asNumber: 64512 })));
    for (const n of nodes) {
      const bird = new BirdDaemon({ dir: path.join(dir, `${n.name}.bird`), netnsPath: n.ns.path });
      const d = new BgpDriver({ nodeName: n.name, datastore: ds, bird, log: silentLogger, debounceMs: 10 });
      await d.start();
      drivers.push(d);
    }
    const t0 = performance.now();
    for (;;) {
      const s = await tor.sessions();
      if (nodes.every((n) => s.get(n.ip) === 'Established')) break;
      if (performance.now() - t0 > 120_000) throw new Error('ToR sessions not established in 120 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    process.stdout.write(`  ${BIRD_NODES} bird2 nodes (mesh ${BIRD_NODES * (BIRD_NODES - 1) / 2} sessions) + FRR ToR established in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    // Let the mesh settle too (the ToR may be faster than the last mesh session).
    await new Promise((r) => setTimeout(r, 3000));

    const ipam = new IpamClient(ds);
    const torTimes: number[] = [];
    const confTimes: number[] = [];
    const allTimes: number[] = [];
    for (let s = 0; s < SAMPLES; s++) {
      const n = nodes[s % nodes.length]!;
      const driver = drivers[s % nodes.length]!;
      const appliedBefore = driver.applied;
      const start = performance.now();
      const r = await ipam.assign({ handleId: `w${s}`, node: n.name });
      const assigned = performance.now();
      const block = r.ips[0]!.block;
      const others = nodes.filter((o) => o !== n);
      // One polling loop per observer, so a slow observer (vtysh) does not delay the others.
      const seen = async (check: () => Promise<boolean>): Promise<number> => {
        for (;;) {
          if (await check()) return performance.now() - assigned;
          if (performance.now() - assigned > 30_000) throw new Error(`block ${block} not propagated in 30 s`);
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      const [confAt, torAt, ...nodeAt] = await Promise.all([
        seen(async () => driver.applied > appliedBefore),
        seen(async () => (await tor!.vtysh(`show ip route ${block} json`)).includes(`"ip":"${n.ip}"`)),
        ...others.map((o) => seen(async () =>
          (await run(['ip', '-n', o.ns.name, '-4', 'route', 'show', 'table', '122', block], { allowFail: true })).stdout.includes(`via ${n.ip}`))),
      ]);
      const allAt = Math.max(...nodeAt);
      confTimes.push(confAt);
      torTimes.push(torAt);
      allTimes.push(allAt);
      process.stdout.write(`    sample ${s + 1}: ${n.name} new block ${block} (assign ${(assigned - start).toFixed(0)} ms) → own bird configured ${confAt.toFixed(0)} ms, ToR ${torAt.toFixed(0)} ms, all ${others.length} other nodes ${allAt.toFixed(0)} ms\n`);
      // Next sample on a fresh block of the next node: release nothing (each node gets one new block).
    }
    process.stdout.write(`  first workload → route, ${SAMPLES} samples (each observer polled every ~5 ms plus one command's run time):\n`);
    process.stdout.write(`    own bird configured: median ${median(confTimes).toFixed(0)} ms, max ${Math.max(...confTimes).toFixed(0)} ms\n`);
    process.stdout.write(`    ToR (FRR):          median ${median(torTimes).toFixed(0)} ms, max ${Math.max(...torTimes).toFixed(0)} ms\n`);
    process.stdout.write(`    every other node:   median ${median(allTimes).toFixed(0)} ms, max ${Math.max(...allTimes).toFixed(0)} ms\n`);
  } finally {
    for (const d of drivers) await d.stop('down').catch(() => undefined);
    await tor?.stop();
    bed.destroySync();
    tor?.cleanup();
    await ds.close();
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tortie-bgp-bench-'));
  try {
    process.stdout.write(`load average at start: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores\n`);
    process.stdout.write('1. routes and route-map entries, datastore mode vs BGP (per block)\n');
    await routeCounts(dir);
    process.stdout.write(`2. propagation of a new block on ${BIRD_NODES} bird2 nodes + an FRR ToR\n`);
    await propagation(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bgp-bench: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
