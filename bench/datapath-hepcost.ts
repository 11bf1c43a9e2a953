/**
 * Per-packet cost of host endpoint policy (tortie_hep_in, bpf/lib/hostep.h) against workload
 * policy (tortie_to_wep) with the same policies, with 1 and with N policies selecting the
 * endpoint, measured in the same run with BPF_PROG_TEST_RUN inside a network namespace of the
 * bench's own (the host endpoint path does a FIB lookup there). Packets: a new TCP flow from an
 * address no rule allows (the whole path: stages, conntrack miss, FIB, the normal table's
 * lookups, deny), and one from an allowed address to the host (allowed, tracked; later runs
 * of the same packet are conntrack hits). Then IPv6 against IPv4 on the host endpoint: the same
 * policies with an IPv6 /64 beside each IPv4 /24 (one table for both families), the same packets
 * in each family. Prints figures; asserts nothing; nothing is sent.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/datapath-hepcost.js [repeat] [policies]
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadHep, loadWep, mapOps } from '../src/dataplane/bpf/loader';
import { PolicyDataplane } from '../src/dataplane/bpf/policy-sync';
import { eth6, flowPacket, tcp } from '../src/dataplane/bpf/packet';
import { CalcGraph } from '../src/calc';
import { Topology } from '../src/util/netns';
import type { GlobalNetworkPolicy, HostEndpoint, Resource } from '../src/model';
import { ns, wep } from './datapath-policies';
import { median } from './lib/stats';

const REPEAT = Number(process.argv[2] ?? 200_000);
const N = Number(process.argv[3] ?? 1000);
const V3 = 'projectcalico.org/v3' as const;
const SERVER = '192.168.20.1';

/** n policies selecting both the workload and the host endpoint (label app=server), each
 *  allowing one /24 of 10.0.0.0/8 to one port: n address classes, n port ranges. `localNets`:
 *  each rule also names the local side's nets (destination.nets 127.0.0.0/8 and the server's
 *  address), so the host endpoint's normal stage dispatches on the local address. */
function policies(n: number, localNets = false, dual = false): GlobalNetworkPolicy[] {
  return Array.from({ length: n }, (_, i) => ({
    apiVersion: V3, kind: 'GlobalNetworkPolicy', metadata: { name: `p${i}` },
    spec: { selector: "app == 'server'", order: i, types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP',
      source: { nets: [`10.${(i >> 8) & 255}.${i & 255}.0/24`, ...(dual ? [`fd00:a:${i.toString(16)}::/64`] : [])] },
      destination: { ports: [1000 + (i % 5000)], ...(localNets ? { nets: ['127.0.0.0/8', `${SERVER}/32`] } : {}) } }] },
  }) as GlobalNetworkPolicy);
}

const hep: HostEndpoint = { apiVersion: V3, kind: 'HostEndpoint', metadata: { name: 'all', labels: { app: 'server' } }, spec: { node: 'node1', interfaceName: '*' } };

interface Figures { wepDeny: number; hepDeny: number; hepAllowedTracked: number; hepNoEndpoint: number }
interface Figures6 { deny4: number; deny6: number; tracked4: number; tracked6: number; none4: number; none6: number }

/** Host endpoint, IPv4 and IPv6 packets through the same policies (IPv4 and IPv6 nets). */
async function measure6(netns: string, n: number): Promise<Figures6> {
  const root = `/sys/fs/bpf/tortie-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
  fs.mkdirSync(root);
  const w = await loadWep({ pinRoot: root, events: false, ctMaxEntries: 65536 });
  const h = await loadHep({ pinRoot: root, events: false });
  try {
    const graph = new CalcGraph({ nodeName: 'node1' });
    for (const r of [ns('bench'), wep('server', SERVER, 'server', 'caliserver'), ...policies(n, false, true)] as Resource[]) graph.onUpdate(r);
    graph.flush();
    const pd = new PolicyDataplane({ ...w.policyMaps, cls4: mapOps(w.maps.cls4!), cls6: mapOps(w.maps.cls6!), hep: mapOps(h.maps.hep),
      hlt4: mapOps(h.maps.hlt4), hlt6: mapOps(h.maps.hlt6) }, (e) => (e.host ? 0 : 1));
    pd.applySnapshot(graph.snapshot());
    const run = (p: Buffer) => median([0, 1, 2].map(() => h.ingress.testRun(p, { repeat: REPEAT, netns }).durationNs));
    const v6 = (src: string, dst: string, sport: number) => eth6({ src, dst, proto: 6 }, tcp({ sport, dport: 1000, flags: 'S' }));
    const none4 = run(flowPacket({ src: '198.19.200.1', dst: '127.0.0.1', proto: 6, sport: 40000, dport: 1000 }));
    const none6 = run(v6('fd00:ff::1', '::1', 40000));
    graph.onUpdate(hep);
    pd.applyDelta(graph.flush());
    return {
      deny4: run(flowPacket({ src: '198.19.200.1', dst: '127.0.0.1', proto: 6, sport: 40000, dport: 1000 })),
      deny6: run(v6('fd00:ff::1', '::1', 40000)),
      tracked4: run(flowPacket({ src: '10.0.0.7', dst: '127.0.0.1', proto: 6, sport: 40001, dport: 1000 })),
      tracked6: run(v6('fd00:a:0::7', '::1', 40001)),
      none4, none6,
    };
  } finally {
    h.close();
    w.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function measure(netns: string, n: number, localNets = false): Promise<Figures> {
  const root = `/sys/fs/bpf/tortie-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
  fs.mkdirSync(root);
  const w = await loadWep({ pinRoot: root, events: false, ctMaxEntries: 65536 });
  const h = await loadHep({ pinRoot: root, events: false });
  try {
    const graph = new CalcGraph({ nodeName: 'node1' });
    const rs: Resource[] = [ns('bench'), wep('server', SERVER, 'server', 'caliserver'), ...policies(n, localNets)];
    for (const r of rs) graph.onUpdate(r);
    graph.flush();
    const noHep = graph.snapshot();
    const pd = new PolicyDataplane({ ...w.policyMaps, cls4: mapOps(w.maps.cls4!), cls6: mapOps(w.maps.cls6!), hep: mapOps(h.maps.hep), hlt4: mapOps(h.maps.hlt4), hlt6: mapOps(h.maps.hlt6) }, (e) => (e.host ? 0 : 1));
    pd.applySnapshot(noHep);
    const run = (prog: typeof h.ingress, p: Buffer) => median([0, 1, 2].map(() => prog.testRun(p, { repeat: REPEAT, netns }).durationNs));
    const denied = flowPacket({ src: '198.19.200.1', dst: SERVER, proto: 6, sport: 40000, dport: 1000 });
    const hepNoEndpoint = run(h.ingress, denied);
    graph.onUpdate(hep);
    pd.applyDelta(graph.flush());
    const wepDeny = run(w.toWep, denied);
    const hepDeny = run(h.ingress, flowPacket({ src: '198.19.200.1', dst: '127.0.0.1', proto: 6, sport: 40000, dport: 1000 }));
    const hepAllowedTracked = run(h.ingress, flowPacket({ src: '10.0.0.7', dst: '127.0.0.1', proto: 6, sport: 40001, dport: 1000 }));
    return { wepDeny, hepDeny, hepAllowedTracked, hepNoEndpoint };
  } finally {
    h.close();
    w.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const topo = Topology.create('hepcost');
  try {
    const node = await topo.addNetns('node');
    await node.sh('ip link set lo up');
    console.log(`host endpoint vs workload policy per packet (BPF_PROG_TEST_RUN in a namespace, repeat ${REPEAT}, median of 3)`);
    const one = await measure(node.path, 1);
    const many = await measure(node.path, N);
    const row = (name: string, f: Figures) => console.log(
      `${name.padEnd(18)} workload deny ${String(f.wepDeny).padStart(4)} ns | host endpoint: deny ${String(f.hepDeny).padStart(4)} ns, ` +
      `allowed (tracked) ${String(f.hepAllowedTracked).padStart(4)} ns, interface without endpoint ${String(f.hepNoEndpoint).padStart(4)} ns`);
    const oneLocal = await measure(node.path, 1, true);
    const manyLocal = await measure(node.path, N, true);
    row('1 policy', one);
    row(`${N} policies`, many);
    row('1, local nets', oneLocal);
    row(`${N}, local nets`, manyLocal);
    console.log(`ratio ${N} / 1 policy: workload deny ${(many.wepDeny / one.wepDeny).toFixed(2)}×, host endpoint deny ${(many.hepDeny / one.hepDeny).toFixed(2)}×; ` +
      `host endpoint / workload deny at ${N}: ${(many.hepDeny / many.wepDeny).toFixed(2)}×`);
    console.log(`local-side nets (one tortie_hlt4_v1 lookup): host endpoint deny with / without at 1 policy ${(oneLocal.hepDeny / one.hepDeny).toFixed(2)}×, ` +
      `at ${N} ${(manyLocal.hepDeny / many.hepDeny).toFixed(2)}×; ${N} / 1 with them ${(manyLocal.hepDeny / oneLocal.hepDeny).toFixed(2)}×`);
    const d1 = await measure6(node.path, 1);
    const dn = await measure6(node.path, N);
    const row6 = (name: string, f: Figures6) => console.log(
      `${name.padEnd(18)} deny IPv4 ${String(f.deny4).padStart(4)} / IPv6 ${String(f.deny6).padStart(4)} ns (${(f.deny6 / f.deny4).toFixed(2)}×) | ` +
      `allowed (tracked) ${String(f.tracked4).padStart(4)} / ${String(f.tracked6).padStart(4)} ns (${(f.tracked6 / f.tracked4).toFixed(2)}×) | ` +
      `interface without endpoint ${String(f.none4).padStart(4)} / ${String(f.none6).padStart(4)} ns (${(f.none6 / f.none4).toFixed(2)}×)`);
    console.log('host endpoint, IPv6 against IPv4 (the same policies with an IPv6 /64 beside each IPv4 /24):');
    row6('1 policy', d1);
    row6(`${N} policies`, dn);
    console.log(`ratio ${N} / 1 policy: IPv4 deny ${(dn.deny4 / d1.deny4).toFixed(2)}×, IPv6 deny ${(dn.deny6 / d1.deny6).toFixed(2)}×`);
  } finally {
    await topo.destroy();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
